"""Syslog (RFC 5424 and RFC 3164) over TCP and UDP into the collector: ``serve
--syslog-tcp HOST:PORT`` / ``--syslog-udp HOST:PORT`` (docs/ingest.md)."""

from __future__ import annotations

from eventcollector.server.syslog._listener import MAX_MESSAGE, SyslogListener
from eventcollector.server.syslog._parser import parse_message

__all__ = ["MAX_MESSAGE", "SyslogListener", "parse_address", "parse_message"]


def parse_address(value: str, option: str) -> tuple[str, int]:
    """``HOST:PORT`` (``[::1]:514`` for IPv6) as a pair; ``ValueError`` naming ``option``."""
    host, sep, port = value.rpartition(":")
    host = host.strip("[]")
    if not sep or not host or not port.isdigit() or not 0 <= int(port) <= 65535:
        raise ValueError(f"{option}: expected HOST:PORT, got {value!r}")
    return host, int(port)
