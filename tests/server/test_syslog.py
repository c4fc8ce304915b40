"""serve --syslog-tcp / --syslog-udp: util-linux logger and Python's SysLogHandler against
the real server; framing, garbage, oversized messages, idle and surplus connections."""

from __future__ import annotations

import logging
import logging.handlers
import shutil
import socket
import subprocess
import time
from collections.abc import Iterator
from typing import Any

import pytest

from _common import free_port

from .conftest import Server, start

LOGGER = shutil.which("logger")


@pytest.fixture(scope="module")
def syslog_port() -> int:
    return free_port()


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory, syslog_port: int) -> Iterator[Server]:
    address = f"127.0.0.1:{syslog_port}"
    yield from start(
        tmp_path_factory, "syslog", "--rate-limit", "0", "--syslog-tcp", address,
        "--syslog-udp", address, "--syslog-max-connections", "3", "--syslog-idle-timeout", "1",
    )  # fmt: skip


def wait_for(server: Server, count: int = 1, **params: Any) -> list[dict[str, Any]]:
    """The stored events matching ``params`` once there are ``count`` (syslog has no answer)."""
    deadline = time.monotonic() + 15
    with server.client() as client:
        while True:
            events: list[dict[str, Any]] = client.get("/v1/events", params=params).json()["events"]
            if len(events) >= count or time.monotonic() > deadline:
                return events
            time.sleep(0.05)


def metric(server: Server, outcome: str, transport: str = "tcp") -> float:
    with server.client() as client:
        text = client.get("/metrics").text
    prefix = f'eventcollector_syslog_messages_total{{outcome="{outcome}",transport="{transport}"}}'
    values = [
        float(line.rsplit(" ", 1)[1]) for line in text.splitlines() if line.startswith(prefix)
    ]
    return sum(values)


def logger(port: int, *args: str) -> None:
    if LOGGER is None:
        pytest.skip("util-linux logger is not installed")
    done = subprocess.run(
        [LOGGER, "-n", "127.0.0.1", "-P", str(port), *args],
        capture_output=True, text=True, timeout=30, check=False,
    )  # fmt: skip
    assert done.returncode == 0, done.stderr


def tcp_send(port: int, *chunks: bytes) -> socket.socket:
    sock = socket.create_connection(("127.0.0.1", port), timeout=5)
    for chunk in chunks:
        sock.sendall(chunk)
    return sock


def test_logger_rfc5424_octet_counting(server: Server, syslog_port: int) -> None:
    logger(
        syslog_port, "--tcp", "--rfc5424", "--octet-count", "-t", "Billing-App",
        "--msgid", "INVOICE.sent", "--sd-id", "order@32473", "--sd-param", 'id="A-17"',
        "-p", "local3.err", "invoice mailed",
    )  # fmt: skip
    (event,) = wait_for(server, system="billing-app")
    assert event["event_type"] == "invoice.sent"
    assert event["severity"] == "error"
    assert event["title"] == event["description"] == "invoice mailed"
    assert event["data"]["order@32473"] == {"id": "A-17"}
    assert event["metadata"]["facility"] == "local3"
    assert event["metadata"]["hostname"] == socket.gethostname()


def test_logger_udp_and_rfc3164(server: Server, syslog_port: int) -> None:
    logger(syslog_port, "-d", "-t", "udp-5424", "-p", "daemon.notice", "over udp")
    logger(syslog_port, "-d", "--rfc3164", "-t", "udp-3164", "-p", "user.debug", "old udp")
    logger(syslog_port, "--tcp", "--rfc3164", "-t", "tcp-3164", "-p", "mail.warning", "old tcp")
    (udp,) = wait_for(server, system="udp-5424")
    assert (udp["severity"], udp["event_type"], udp["title"]) == (
        "info",
        "syslog.daemon",
        "over udp",
    )
    (old_udp,) = wait_for(server, system="udp-3164")
    assert (old_udp["severity"], old_udp["event_type"]) == ("debug", "syslog.user")
    assert old_udp["metadata"]["hostname"] == socket.gethostname()
    (old_tcp,) = wait_for(server, system="tcp-3164")
    assert (old_tcp["severity"], old_tcp["event_type"]) == ("warning", "syslog.mail")
    assert old_tcp["title"] == "old tcp"
    assert abs(time.time() - _epoch(old_tcp["timestamp"])) < 120  # local time, no year


def _epoch(timestamp: str) -> float:
    from datetime import datetime

    return datetime.fromisoformat(timestamp).timestamp()


def test_python_syslog_handler(server: Server, syslog_port: int) -> None:
    log = logging.getLogger("test_syslog.handler")
    log.propagate = False
    for socktype, ident in ((socket.SOCK_STREAM, "py-tcp: "), (socket.SOCK_DGRAM, "py-udp: ")):
        handler = logging.handlers.SysLogHandler(("127.0.0.1", syslog_port), socktype=socktype)
        handler.ident = ident
        log.addHandler(handler)
        log.error("first %s", socktype.name)
        log.warning("second line one\nline two")
        log.removeHandler(handler)
        handler.close()
    for system in ("py-tcp", "py-udp"):
        events = {e["severity"]: e for e in wait_for(server, 2, system=system)}
        assert events["error"]["event_type"] == "syslog.user"
        assert events["error"]["title"].startswith("first SOCK_")
        assert events["warning"]["title"] == "second line one"
        assert events["warning"]["description"] == "second line one\nline two"


def test_framing_oversized_and_garbage(server: Server, syslog_port: int) -> None:
    malformed = metric(server, "malformed")
    big = b"<13>1 - - framing - - - " + b"x" * 70_000
    good = b"<13>1 - - framing - - - after the big one"
    two = b"<14>1 - - framing - - - first of two\n<14>1 - - framing - - - second of two\n"
    sock = tcp_send(
        syslog_port,
        b"%d %s" % (len(big), big),  # octet counted, over 64 KiB: skipped
        b"%d %s" % (len(good), good),
        b"\xff\xfe not syslog at all\n",  # newline framed garbage: skipped
        two[:30], two[30:],  # split across reads
        big + b"\n",  # newline framed, over 64 KiB: skipped
        b"<14>1 - - framing - - - last",  # closed by the connection's end
        b"\n",
    )  # fmt: skip
    sock.close()
    events = wait_for(server, 4, system="framing")
    assert sorted(e["title"] for e in events) == [
        "after the big one", "first of two", "last", "second of two",
    ]  # fmt: skip
    assert metric(server, "malformed") - malformed == 3
    udp_malformed = metric(server, "malformed", "udp")
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as udp:
        udp.sendto(b"\x00\x01 binary junk", ("127.0.0.1", syslog_port))
        udp.sendto(b"<13>1 - - framing - - - udp still works", ("127.0.0.1", syslog_port))
    assert wait_for(server, 5, system="framing")
    assert metric(server, "malformed", "udp") - udp_malformed == 1


def test_broken_octet_count_closes_only_that_connection(server: Server, syslog_port: int) -> None:
    sock = tcp_send(syslog_port, b"12345678901 <13>x")
    assert sock.recv(10) == b""  # closed: the next frame cannot be found
    sock.close()
    logger(syslog_port, "--tcp", "--octet-count", "-t", "after-broken", "fine")
    assert wait_for(server, system="after-broken")


def test_idle_and_surplus_connections_are_closed(server: Server, syslog_port: int) -> None:
    idle = [tcp_send(syslog_port) for _ in range(3)]
    time.sleep(0.2)
    surplus = tcp_send(syslog_port)  # over --syslog-max-connections 3
    started = time.monotonic()
    assert surplus.recv(10) == b""
    assert time.monotonic() - started < 0.5
    surplus.close()
    for sock in idle:  # --syslog-idle-timeout 1
        assert sock.recv(10) == b""
        assert time.monotonic() - started < 5
        sock.close()
    with server.client() as client:
        text = client.get("/metrics").text
    assert "eventcollector_syslog_refused_connections_total 1.0" in text
    assert server.process.poll() is None


def test_bad_address_is_refused(tmp_path: Any) -> None:
    from _common import cli

    done = cli("serve", "--db", str(tmp_path / "e.db"), "--syslog-udp", "nowhere")
    assert done.returncode == 2
    assert "syslog-udp: expected HOST:PORT, got 'nowhere'" in done.stderr
