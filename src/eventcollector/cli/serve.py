"""``eventcollector serve`` (the HTTP API on uvicorn) and ``eventcollector keys``.

The server package is imported inside the commands, so the rest of the CLI works
without the ``server`` extra and only these commands name it when it is missing.
"""

from __future__ import annotations

import asyncio
import os
import socket
from dataclasses import replace
from pathlib import Path
from typing import TYPE_CHECKING, Annotated
from urllib.parse import urlsplit, urlunsplit

import typer

from eventcollector.cli._common import CliError, DbOpt
from eventcollector.cli.app import app

if TYPE_CHECKING:
    from eventcollector.alert_rules import RuleLimits
    from eventcollector.alerts import NotifySettings
    from eventcollector.server.app import Service
    from eventcollector.server.auth import KeyStore

_LIMITS = "Limits"
_STREAMS = "Streams"
_DOORS = "Other doors (docs/ingest.md)"
_RETENTION = "Retention (docs/guarantees.md)"
_ALERTS = "Alerts (docs/alerts.md)"

KeysFileOpt = Annotated[
    Path | None,
    typer.Option(
        "--keys-file",
        envvar="EVENTCOLLECTOR_KEYS_FILE",
        help="API key file [default: beside the SQLite database, <db>.keys.json].",
        show_default=False,
    ),
]


def _db_target(db: str | None) -> str:
    from eventcollector.config import default_db_path

    return db or os.fspath(default_db_path())


def _key_store(db: str | None, keys_file: Path | None) -> KeyStore:
    from eventcollector.server.auth import KeyStore, default_keys_file

    return KeyStore(keys_file or default_keys_file(_db_target(db)))


@app.command()
def serve(
    host: Annotated[str, typer.Option(help="Address to bind (beyond loopback needs a key).")] = (
        "127.0.0.1"
    ),
    port: Annotated[int, typer.Option(help="TCP port.", min=0, max=65535)] = 8765,
    db: DbOpt = None,
    keys_file: KeysFileOpt = None,
    allow_origin: Annotated[
        list[str] | None,
        typer.Option(
            help="Origin of another site allowed on the streams and to write (repeat).",
            rich_help_panel=_STREAMS,
        ),
    ] = None,
    max_body_bytes: Annotated[int, typer.Option(min=1, rich_help_panel=_LIMITS)] = 16 * 2**20,
    max_event_bytes: Annotated[int, typer.Option(min=1, rich_help_panel=_LIMITS)] = 512 * 2**10,
    max_batch: Annotated[int, typer.Option(min=1, rich_help_panel=_LIMITS)] = 10_000,
    max_depth: Annotated[int, typer.Option(min=1, rich_help_panel=_LIMITS)] = 32,
    rate_limit: Annotated[
        float | None,
        typer.Option(
            min=0,
            help="Events/s per key and system; 0 disables "
            "[default: none without API keys, 50,000 per key with keys].",
            show_default=False,
            rich_help_panel=_LIMITS,
        ),
    ] = None,
    rate_burst: Annotated[
        float | None,
        typer.Option(min=1, help="Bucket size [default: the rate].", rich_help_panel=_LIMITS),
    ] = None,
    max_pending: Annotated[
        int,
        typer.Option(min=1, help="Uncommitted events before 503.", rich_help_panel=_LIMITS),
    ] = 100_000,
    query_timeout: Annotated[
        float,
        typer.Option(
            min=0,
            help="Seconds one read statement may run before it is cancelled (503); 0: none.",
            rich_help_panel=_LIMITS,
        ),
    ] = 10.0,
    stream_queue: Annotated[
        int, typer.Option(min=1, help="Undelivered events per stream.", rich_help_panel=_STREAMS)
    ] = 10_000,
    stream_max_bytes: Annotated[
        int,
        typer.Option(
            min=1, help="Undelivered bytes (as JSON) per stream.", rich_help_panel=_STREAMS
        ),
    ] = 8 * 1024 * 1024,
    max_streams: Annotated[
        int,
        typer.Option(
            min=1, help="Live streams open at once; more get 503.", rich_help_panel=_STREAMS
        ),
    ] = 256,
    stream_send_timeout: Annotated[float, typer.Option(min=0.01, rich_help_panel=_STREAMS)] = 10.0,
    otlp_port: Annotated[
        int | None,
        typer.Option(
            min=0,
            max=65535,
            help="Also listen here (OTLP's is 4318) for /v1/logs and /v1/traces only.",
            rich_help_panel=_DOORS,
        ),
    ] = None,
    syslog_tcp: Annotated[
        str | None,
        typer.Option(help="Syslog over TCP on HOST:PORT (no auth).", rich_help_panel=_DOORS),
    ] = None,
    syslog_udp: Annotated[
        str | None,
        typer.Option(help="Syslog over UDP on HOST:PORT (no auth).", rich_help_panel=_DOORS),
    ] = None,
    syslog_max_connections: Annotated[int, typer.Option(min=1, rich_help_panel=_DOORS)] = 256,
    syslog_idle_timeout: Annotated[
        float, typer.Option(min=0.01, help="Seconds.", rich_help_panel=_DOORS)
    ] = 300.0,
    log_level: Annotated[str, typer.Option(help="uvicorn log level.")] = "info",
    access_log: Annotated[bool, typer.Option(help="Log every request.")] = False,
    index: Annotated[
        list[str] | None,
        typer.Option(
            "--index",
            metavar="PATH",
            help="Create an expression index on this data path first (repeatable).",
        ),
    ] = None,
    retention: Annotated[
        list[str] | None,
        typer.Option(
            "--retention",
            metavar="FILTER=AGE",
            help="Delete the events FILTER selects ('*': all) once older than AGE "
            "(90s, 30m, 12h, 2d, 1w); repeatable, the shortest age that applies wins.",
            rich_help_panel=_RETENTION,
        ),
    ] = None,
    retention_interval: Annotated[
        str,
        typer.Option(
            metavar="DURATION", help="How often the rules run.", rich_help_panel=_RETENTION
        ),
    ] = "1h",
    archive_dir: Annotated[
        Path | None,
        typer.Option(
            metavar="DIR",
            help="Archive what the rules delete first: one gzipped JSON Lines file per run.",
            file_okay=False,
            rich_help_panel=_RETENTION,
        ),
    ] = None,
    alerts: Annotated[
        Path | None,
        typer.Option(
            "--alerts",
            metavar="FILE",
            help="Alert rules ([[alert]] tables in TOML); refused whole if one is bad.",
            rich_help_panel=_ALERTS,
        ),
    ] = None,
    alerts_min_interval: Annotated[
        float | None,
        typer.Option(
            min=0.01,
            help="Lower the minimum window (1m) and interval (10s) of rules to these seconds,"
            " and evaluate as often (for tests and demos).",
            rich_help_panel=_ALERTS,
        ),
    ] = None,
    public_url: Annotated[
        str | None,
        typer.Option(
            help="Base URL in notices' links [default: http://HOST:PORT].", rich_help_panel=_ALERTS
        ),
    ] = None,
    smtp_host: Annotated[
        str, typer.Option(envvar="EVENTCOLLECTOR_SMTP_HOST", rich_help_panel=_ALERTS)
    ] = "localhost",
    smtp_port: Annotated[
        int,
        typer.Option(envvar="EVENTCOLLECTOR_SMTP_PORT", min=1, max=65535, rich_help_panel=_ALERTS),
    ] = 25,
    smtp_from: Annotated[
        str, typer.Option(envvar="EVENTCOLLECTOR_SMTP_FROM", rich_help_panel=_ALERTS)
    ] = "eventcollector@localhost",
    smtp_tls: Annotated[
        str,
        typer.Option(
            envvar="EVENTCOLLECTOR_SMTP_TLS",
            help="auto (TLS on port 465, else STARTTLS when offered), starttls, tls or off.",
            rich_help_panel=_ALERTS,
        ),
    ] = "auto",
    smtp_user: Annotated[
        str | None,
        typer.Option(
            envvar="EVENTCOLLECTOR_SMTP_USER",
            help="Log in as this user; the password comes from $EVENTCOLLECTOR_SMTP_PASSWORD.",
            rich_help_panel=_ALERTS,
        ),
    ] = None,
    notify_timeout: Annotated[
        float, typer.Option(min=0.01, help="Seconds per attempt.", rich_help_panel=_ALERTS)
    ] = 10.0,
    notify_retries: Annotated[
        int, typer.Option(min=0, max=10, help="Attempts after the first.", rich_help_panel=_ALERTS)
    ] = 3,
    notify_backoff: Annotated[
        float,
        typer.Option(
            min=0, help="Seconds before the first retry, doubling.", rich_help_panel=_ALERTS
        ),
    ] = 1.0,
) -> None:
    """Run the collector's HTTP API (see docs/http-api.md); default 127.0.0.1:8765.

    \b
    Example:
      eventcollector serve --db /var/lib/events.db \\
          --retention 'severity:debug=2d' --retention '*=30d' --archive-dir /var/archive
    """
    import uvicorn

    from eventcollector.alerts import NotifySettings, SmtpServer
    from eventcollector.collector import EventCollector
    from eventcollector.server import ServerSettings, create_app, http_protocol
    from eventcollector.server.auth import bind_refusal

    target = _db_target(db)
    keys = _key_store(db, keys_file)
    refusal = bind_refusal(host, keys)
    if refusal is not None:
        raise CliError(refusal, 2)
    settings = ServerSettings(
        max_body_bytes=max_body_bytes,
        max_event_bytes=max_event_bytes,
        max_batch=max_batch,
        max_depth=max_depth,
        rate_limit=rate_limit,
        rate_burst=rate_burst,
        allow_origins=tuple(allow_origin or ()),
        stream_queue=stream_queue,
        stream_max_bytes=stream_max_bytes,
        max_streams=max_streams,
        stream_send_timeout=stream_send_timeout,
    )
    if otlp_port is not None and otlp_port == port:
        raise CliError("otlp-port: must differ from --port", 2)
    services = _syslog(syslog_tcp, syslog_udp, syslog_max_connections, syslog_idle_timeout)
    services += _retention(retention or [], retention_interval, archive_dir)
    limits = _rule_limits(alerts_min_interval)
    settings = replace(settings, alert_limits=limits)
    base_url = public_url or f"http://{host if ':' not in host else f'[{host}]'}:{port}"
    try:
        # The password only from the environment: a command line is visible in ps.
        password = os.environ.get("EVENTCOLLECTOR_SMTP_PASSWORD")
        smtp = SmtpServer(smtp_host, smtp_port, smtp_tls, smtp_user, password)
    except ValueError as exc:
        raise CliError(str(exc), 2) from None
    notify = NotifySettings(
        timeout=notify_timeout,
        retries=notify_retries,
        backoff=notify_backoff,
        smtp=smtp,
        smtp_from=smtp_from,
        base_url=base_url,
    )
    services.append(_alert_service(alerts, limits, notify, alerts_min_interval))
    if index:
        asyncio.run(_create_indexes(target, index))
    collector = EventCollector(target, max_pending=max_pending, query_timeout=query_timeout or None)
    config = uvicorn.Config(
        create_app(collector, settings, keys=keys, otlp_port=otlp_port, services=services),
        host=host,
        port=port,
        log_level=log_level,
        access_log=access_log,
        lifespan="on",
        http=http_protocol(),
        server_header=False,
        timeout_graceful_shutdown=10,
    )
    sockets = None if otlp_port is None else [config.bind_socket(), _listen(host, otlp_port)]
    typer.echo(_summary(target, keys, base_url), err=True)
    uvicorn.Server(config).run(sockets=sockets)


def _summary(target: str, keys: KeyStore, url: str) -> str:
    """What a person starting the server needs to know first: where the events go, where
    to look, and who may use it (a password in a database URL is not shown)."""
    if target.startswith(("postgresql://", "postgres://")):
        parts = urlsplit(target)
        host = parts.hostname or ""
        user = f"{parts.username}@" if parts.username else ""
        where = urlunsplit(
            parts._replace(netloc=f"{user}{host}" + (f":{parts.port}" if parts.port else ""))
        )
        stored = f"events in PostgreSQL ({where})"
    else:
        stored = f"events in {target} (SQLite)"
    access = (
        f"API keys from {keys.path}"
        if keys.has_active
        else "no API keys: anyone who can reach the port may read and write"
    )
    at = "on the port uvicorn prints below" if url.endswith(":0") else f"at {url}/"
    return f"eventcollector: {stored}; web UI and API {at}; {access}"


def _syslog(
    tcp: str | None, udp: str | None, max_connections: int, idle_timeout: float
) -> list[Service]:
    if tcp is None and udp is None:
        return []
    from eventcollector.server.syslog import SyslogListener, parse_address

    try:
        return [
            SyslogListener(
                tcp=None if tcp is None else parse_address(tcp, "syslog-tcp"),
                udp=None if udp is None else parse_address(udp, "syslog-udp"),
                max_connections=max_connections,
                idle_timeout=idle_timeout,
            )
        ]
    except ValueError as exc:
        raise CliError(str(exc), 2) from None


def _retention(rules: list[str], interval: str, archive_dir: Path | None) -> list[Service]:
    """The retention schedule of ``--retention``, or a usage error naming the rule."""
    from eventcollector.filters import parse_duration
    from eventcollector.retention import parse_rules
    from eventcollector.server.retention import RetentionSchedule

    if not rules:
        if archive_dir is not None:
            raise CliError("archive-dir: archives what --retention rules delete; give a rule", 2)
        return []
    try:
        parsed = parse_rules(rules)
        every = parse_duration(interval).total_seconds()
    except ValueError as exc:
        message = str(exc) if str(exc).startswith("retention:") else f"retention-interval: {exc}"
        raise CliError(message, 2) from None
    if not every > 0:
        raise CliError("retention-interval: must be more than 0", 2)
    if archive_dir is not None:
        _check_writable(archive_dir)
    return [RetentionSchedule(parsed, interval=every, archive_dir=archive_dir)]


def _check_writable(directory: Path) -> None:
    """Create ``directory`` if needed and prove it writable now, not at the first run."""
    import tempfile

    try:
        directory.mkdir(parents=True, exist_ok=True)
        with tempfile.TemporaryFile(dir=directory):
            pass
    except OSError as exc:
        raise CliError(f"archive-dir: {directory}: {exc.strerror or exc}", 2) from None


def _rule_limits(min_interval: float | None) -> RuleLimits:
    from eventcollector.alert_rules import RuleLimits

    return RuleLimits() if min_interval is None else RuleLimits.lowered(min_interval)


def _alert_service(
    path: Path | None, limits: RuleLimits, notify: NotifySettings, min_interval: float | None
) -> Service:
    """The alert engine; a bad rules file is refused whole, naming the rule and key."""
    from eventcollector.alert_rules import load_rules
    from eventcollector.server.alerts import AlertService

    try:
        rules = None if path is None else load_rules(path, limits)
    except ValueError as exc:
        raise CliError(str(exc), 2) from None
    tick = 1.0 if min_interval is None else min(1.0, min_interval)
    return AlertService(rules, notify, tick)


def _listen(host: str, port: int) -> socket.socket:
    """A bound TCP socket for a second HTTP port, or a ``CliError`` naming it."""
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    sock = socket.socket(family)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    try:
        sock.bind((host.strip("[]"), port))
    except OSError as exc:
        sock.close()
        raise CliError(f"otlp-port: cannot listen on {host}:{port} ({exc.strerror})", 2) from None
    return sock


async def _create_indexes(target: str, paths: list[str]) -> None:
    """``serve --index``: the indexes exist before the server reads (see ``index add``)."""
    from eventcollector.collector import EventCollector

    collector = EventCollector(target)
    try:
        indexes = await collector.indexes()
        for path in paths:
            await indexes.add_index(path)
    finally:
        await collector.stop()


keys_app = typer.Typer(help="Manage the server's API keys (stored hashed).", no_args_is_help=True)
app.add_typer(keys_app, name="keys")


@keys_app.command("create")
def keys_create(
    scope: Annotated[
        list[str], typer.Option(help="ingest, read, triage or admin (repeat for several).")
    ],
    system: Annotated[
        str | None, typer.Option(help="Pin an ingest key to this one system.")
    ] = None,
    name: Annotated[str, typer.Option(help="A label for 'keys list'.")] = "",
    db: DbOpt = None,
    keys_file: KeysFileOpt = None,
) -> None:
    """Create a key and print it once (only its hash is stored)."""
    store = _key_store(db, keys_file)
    key, token = store.create(
        [s.strip() for value in scope for s in value.split(",") if s.strip()],
        system=system,
        name=name,
    )
    typer.echo(token)
    typer.echo(
        f"key {key.id}: scopes {','.join(key.scopes)}"
        + (f", system {key.system}" if key.system else "")
        + f" (stored in {store.path}; the key is not shown again)",
        err=True,
    )


@keys_app.command("list")
def keys_list(
    db: DbOpt = None,
    keys_file: KeysFileOpt = None,
    json_output: Annotated[bool, typer.Option("--json", help="One JSON object per key.")] = False,
) -> None:
    """List keys (never the keys themselves)."""
    import orjson

    for key in _key_store(db, keys_file).all():
        if json_output:
            typer.echo(orjson.dumps(key.public()).decode())
            continue
        state = f"revoked {key.revoked}" if key.revoked else "active"
        pinned = f" system={key.system}" if key.system else ""
        label = f" name={key.name!r}" if key.name else ""
        typer.echo(
            f"{key.id}  {','.join(key.scopes)}{pinned}{label}  created {key.created}  {state}"
        )


@keys_app.command("revoke")
def keys_revoke(
    key_id: Annotated[str, typer.Argument(help="The key id shown by 'keys list'.")],
    db: DbOpt = None,
    keys_file: KeysFileOpt = None,
) -> None:
    """Revoke a key; a running server refuses it within a second and closes its streams."""
    if not _key_store(db, keys_file).revoke(key_id):
        raise CliError(f"key: no active key {key_id!r}")
    typer.echo(f"revoked {key_id}", err=True)
