"""Properties 10 and 12: hostile input and hostile consumers leave the server's memory flat.

Already proved in tests/server (status codes, small sizes): chunked body too large,
gzip bomb, 150k-deep nesting, per-event size, Origin 403, revoked key's streams
close, a never-reading consumer is cut off. Here the full-size versions, each
with the server's RSS sampled while it happens and the process alive afterwards.
"""

from __future__ import annotations

import contextlib
import socket
import threading
import time
import zlib
from collections.abc import Iterator
from pathlib import Path

import orjson
import pytest

from _common import event, wait_until

from ._support import Server, rss_kib

#: RSS growth allowed for one hostile request (the body limit is 16 MiB).
FLAT_KIB = 96 * 1024


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Server]:
    s = Server(tmp_path_factory.mktemp("bounds"), "--rate-limit", "0", "--stream-send-timeout",
               "2")  # fmt: skip
    try:
        yield s
    finally:
        log = s.stop()
        assert "Traceback" not in log, log


class Peak:
    """Samples a process's RSS on a thread; ``growth`` over the value at the start."""

    def __init__(self, pid: int) -> None:
        self.pid = pid
        self.start = self.peak = rss_kib(pid)
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run)
        self._thread.start()

    def _run(self) -> None:
        while not self._stop.is_set():
            self.peak = max(self.peak, rss_kib(self.pid))
            time.sleep(0.01)

    def __enter__(self) -> Peak:
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join()

    @property
    def growth(self) -> int:
        return self.peak - self.start


def _alive(server: Server) -> None:
    assert server.alive()
    with server.client() as c:
        assert c.get("/health").status_code == 200
        assert c.post("/v1/events", content=orjson.dumps(event())).status_code == 200


def _status(reply: bytes) -> int:
    return int(reply.split(b" ", 2)[1]) if reply.startswith(b"HTTP/1.1 ") else 0


def test_1gb_chunked_body_is_cut_off_early(server: Server) -> None:
    chunk = b"%x\r\n%s\r\n" % (1 << 20, b" " * (1 << 20))
    sent = 0
    reply = b""
    with Peak(server.pid) as peak, socket.create_connection(("127.0.0.1", server.port)) as sock:
        sock.sendall(
            b"POST /v1/events HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n"
            b"Transfer-Encoding: chunked\r\n\r\n1\r\n[\r\n"
        )
        sock.settimeout(30)
        with contextlib.suppress(OSError):  # the server stops reading and closes
            while sent < 1 << 30:
                sock.sendall(chunk)
                sent += 1 << 20
        with contextlib.suppress(OSError):
            reply = sock.recv(65536)
    assert sent < 1 << 30, "the server read the whole gigabyte"
    assert _status(reply) in (0, 413), reply[:200]
    assert peak.growth < FLAT_KIB, f"RSS grew {peak.growth} KiB"
    print(f"1 GB chunked: cut off after {sent >> 20} MiB, RSS +{peak.growth >> 10} MiB")
    _alive(server)


def test_1gb_gzip_bomb(server: Server) -> None:
    deflate = zlib.compressobj(9, zlib.DEFLATED, 16 + zlib.MAX_WBITS)
    zeros = b" " * (1 << 20)
    bomb = b"".join([deflate.compress(b"["), *(deflate.compress(zeros) for _ in range(1024))])
    bomb += deflate.compress(b"]") + deflate.flush()
    assert len(bomb) < 2 << 20
    with Peak(server.pid) as peak, server.client() as c:
        r = c.post("/v1/events", content=bomb, headers={"Content-Encoding": "gzip"})
    assert r.status_code == 413
    assert r.json()["limit"] == "max_body_bytes"
    assert peak.growth < FLAT_KIB, f"RSS grew {peak.growth} KiB"
    _alive(server)


@pytest.mark.parametrize("prefix", [b"", b'{"system": "a", "data": ', b"[{}, "])
def test_a_million_nested_brackets(server: Server, prefix: bytes) -> None:
    with Peak(server.pid) as peak, server.client() as c:
        r = c.post("/v1/events", content=prefix + b"[" * 1_000_000)
    assert r.status_code == 400
    assert "error" in r.json()
    assert peak.growth < FLAT_KIB, f"RSS grew {peak.growth} KiB"
    _alive(server)


def test_10mb_title(server: Server) -> None:
    body = orjson.dumps(event(title="t" * (10 << 20)))
    with Peak(server.pid) as peak, server.client() as c:
        r = c.post("/v1/events", content=body)
        assert r.status_code == 400
        assert r.json()["rejected"][0]["error"].startswith("max_event_bytes:")
        # Under the event size limit the model's title limit answers, by index.
        r = c.post("/v1/events", content=orjson.dumps([event(), event(title="t" * 100_000)]))
        assert r.status_code == 200
        assert r.json()["rejected"][0]["error"].startswith("title:")
    assert peak.growth < FLAT_KIB, f"RSS grew {peak.growth} KiB"
    _alive(server)


def _stalled_websocket(server: Server) -> socket.socket:
    sock = socket.socket()
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
    sock.connect(("127.0.0.1", server.port))
    sock.sendall(
        b"GET /v1/ws?system=stalled HTTP/1.1\r\nHost: x\r\nUpgrade: websocket\r\n"
        b"Connection: Upgrade\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n"
        b"Sec-WebSocket-Version: 13\r\n\r\n"
    )
    assert sock.recv(12) == b"HTTP/1.1 101"
    return sock


def test_websockets_that_never_read_keep_server_memory_flat(server: Server) -> None:
    sockets = [_stalled_websocket(server) for _ in range(10)]
    sent = 0
    try:
        with Peak(server.pid) as peak, server.client() as c:
            body = orjson.dumps([event(system="stalled", description="s" * 4000)] * 500)
            deadline = time.monotonic() + 6  # longer than --stream-send-timeout
            while time.monotonic() < deadline:
                assert c.post("/v1/events", content=body).status_code == 200
                sent += len(body)
            # Every stalled consumer is cut off (a loaded machine may take a little longer).
            wait_until(lambda: c.get("/health").json()["subscriber_count"] == 0)
    finally:
        for sock in sockets:
            sock.close()
    # Each stream buffers at most --stream-queue events: flat, whatever was sent.
    assert peak.growth < FLAT_KIB, f"RSS grew {peak.growth} KiB"
    print(f"stalled websockets: sent {sent >> 20} MiB, server RSS +{peak.growth >> 10} MiB")
    _alive(server)


def test_server_survives_everything_above(server: Server, tmp_path: Path) -> None:
    _alive(server)
