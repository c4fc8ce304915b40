"""POST /v1/events: formats, partial batches, idempotency, and every request limit."""

from __future__ import annotations

import asyncio
import gzip
import socket
from collections.abc import Iterator

import httpx
import orjson
import pytest

from _common import event

from .conftest import Server, start


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Server]:
    yield from start(
        tmp_path_factory,
        "ingest",
        "--rate-limit",
        "0",
        "--max-batch",
        "100",
        "--max-body-bytes",
        "200000",
        "--max-event-bytes",
        "20000",
        "--max-depth",
        "8",
    )


@pytest.fixture
def client(server: Server) -> Iterator[httpx.Client]:
    with server.client() as c:
        yield c


def post(client: httpx.Client, body: object, **headers: str) -> httpx.Response:
    return client.post("/v1/events", content=orjson.dumps(body), headers=headers)


def test_one_event_round_trip(client: httpx.Client) -> None:
    sent = event(id="one-1", severity="error", tags=["a", "b"], data={"k": [1, {"x": None}]})
    r = post(client, sent)
    assert r.status_code == 200
    assert r.json() == {"accepted": 1, "duplicates": 0, "rejected": [], "ids": ["one-1"]}
    stored = client.get("/v1/events/one-1").json()
    assert {k: stored[k] for k in sent} == sent
    assert stored["timestamp"].endswith("+00:00")


def test_array_gets_server_ids(client: httpx.Client) -> None:
    r = post(client, [event(title=f"t{i}") for i in range(3)])
    body = r.json()
    assert r.status_code == 200
    assert body["accepted"] == 3
    assert len(set(body["ids"])) == 3
    for event_id in body["ids"]:
        assert client.get(f"/v1/events/{event_id}").status_code == 200


def test_ndjson(client: httpx.Client) -> None:
    lines = [orjson.dumps(event(id=f"nd-{i}")) for i in range(3)]
    body = b"\n".join([lines[0], b"", lines[1], b"{not json", lines[2]]) + b"\n"
    r = client.post("/v1/events", content=body, headers={"Content-Type": "application/x-ndjson"})
    assert r.status_code == 200
    result = r.json()
    assert result["accepted"] == 3
    assert result["ids"] == ["nd-0", "nd-1", None, "nd-2"]
    assert result["rejected"][0]["index"] == 2
    assert result["rejected"][0]["error"].startswith("event: invalid JSON")


def test_gzip_body(client: httpx.Client) -> None:
    body = gzip.compress(orjson.dumps([event(id="gz-1"), event(id="gz-2")]))
    r = client.post(
        "/v1/events",
        content=body,
        headers={"Content-Type": "application/json", "Content-Encoding": "gzip"},
    )
    assert r.status_code == 200
    assert r.json()["ids"] == ["gz-1", "gz-2"]


def test_partial_batch_reports_each_rejection(client: httpx.Client) -> None:
    batch = [
        event(id="pb-ok-1"),
        event(severity="loud"),
        event(id="pb-ok-2"),
        {"system": "deployer", "event_type": "x.y"},
        event(colour="red"),
        "not an object",
    ]
    r = post(client, batch)
    assert r.status_code == 200
    body = r.json()
    assert body["accepted"] == 2
    assert body["ids"] == ["pb-ok-1", None, "pb-ok-2", None, None, None]
    errors = {item["index"]: item["error"] for item in body["rejected"]}
    assert errors[1].startswith("severity:")
    assert errors[3].startswith("title:")
    assert errors[4].startswith("colour: unknown field")
    assert errors[5].startswith("event:")
    assert client.get("/v1/events/count", params={"id": "pb-ok-1,pb-ok-2"}).json() == {"count": 2}


def test_every_event_rejected_is_400_with_the_same_body(client: httpx.Client) -> None:
    r = post(client, [event(title=""), event(system="Not Valid")])
    assert r.status_code == 400
    body = r.json()
    assert body["accepted"] == 0
    assert [item["index"] for item in body["rejected"]] == [0, 1]
    assert body["rejected"][0]["error"].startswith("title:")


def test_duplicates_inside_one_batch_and_across_requests(client: httpx.Client) -> None:
    r = post(client, [event(id="dup-1"), event(id="dup-1"), event(id="dup-2")])
    assert r.json()["accepted"] == 2
    assert r.json()["duplicates"] == 1
    again = post(client, [event(id="dup-1"), event(id="dup-2")]).json()
    assert (again["accepted"], again["duplicates"]) == (0, 2)
    assert client.get("/v1/events/count", params={"id": "dup-1,dup-2"}).json()["count"] == 2


async def test_same_batch_from_16_concurrent_clients_is_stored_once(server: Server) -> None:
    batch = orjson.dumps([event(id=f"conc-{i}", title=f"c{i}") for i in range(50)])

    async def send() -> dict[str, int]:
        async with server.async_client() as c:
            r = await c.post("/v1/events", content=batch)
            assert r.status_code == 200
            result: dict[str, int] = r.json()
            return result

    results = await asyncio.gather(*(send() for _ in range(16)))
    assert sum(r["accepted"] for r in results) == 50
    assert sum(r["duplicates"] for r in results) == 50 * 15
    with server.client() as c:
        counted = c.get("/v1/events/count", params={"search": "c0"}).json()["count"]
        ids = ",".join(f"conc-{i}" for i in range(50))
        assert c.get("/v1/events/count", params={"id": ids}).json()["count"] == 50
    assert counted >= 1


# -- limits ----------------------------------------------------------------------


def test_body_too_large_by_content_length(client: httpx.Client) -> None:
    r = client.post("/v1/events", content=b"[" + b" " * 200_001 + b"]")
    assert r.status_code == 413
    assert r.json()["error"].startswith("max_body_bytes:")
    assert r.json()["limit"] == "max_body_bytes"


def test_chunked_body_too_large(client: httpx.Client) -> None:
    def chunks() -> Iterator[bytes]:
        yield b"["
        for _ in range(100):  # 1 MB in total, no Content-Length
            yield b" " * 10_000
        yield b"]"

    r = client.post("/v1/events", content=chunks())
    assert r.status_code == 413
    assert r.json()["limit"] == "max_body_bytes"


def test_gzip_bomb(client: httpx.Client) -> None:
    bomb = gzip.compress(b"[" + b" " * 50_000_000 + b"]", compresslevel=9)
    assert len(bomb) < 200_000
    r = client.post(
        "/v1/events",
        content=bomb,
        headers={"Content-Type": "application/json", "Content-Encoding": "gzip"},
    )
    assert r.status_code == 413
    assert "decompressed" in r.json()["error"]


def test_invalid_gzip(client: httpx.Client) -> None:
    r = client.post("/v1/events", content=b"nope", headers={"Content-Encoding": "gzip"})
    assert r.status_code == 400
    assert r.json()["error"].startswith("content-encoding:")


def test_batch_too_large(client: httpx.Client) -> None:
    r = post(client, [event() for _ in range(101)])
    assert r.status_code == 413
    assert r.json()["error"].startswith("max_batch:")


def test_event_too_large_is_rejected_by_index(client: httpx.Client) -> None:
    r = post(client, [event(id="small"), event(description="x" * 25_000)])
    assert r.status_code == 200
    assert r.json()["rejected"][0]["error"].startswith("max_event_bytes:")


def test_nesting_depth(client: httpx.Client) -> None:
    deep: object = "leaf"
    for _ in range(10):
        deep = {"d": deep}
    r = post(client, [event(data=deep)])
    assert r.status_code == 400
    assert r.json()["rejected"][0]["error"].startswith("max_depth:")
    shallow: object = "leaf"
    for _ in range(5):
        shallow = [shallow]
    assert post(client, event(data={"s": shallow})).status_code == 200
    # Brackets inside strings are not nesting (the server counts brackets first, then
    # walks the value only when there are more than max_depth of them).
    bracketed = {"text": "{[" * 20, "list": [{"a": [1, 2]}, {"b": "[]"}]}
    assert post(client, event(data=bracketed, title="{{{{[[[[{{{{")).status_code == 200
    deep_in_list: object = "leaf"
    for _ in range(8):
        deep_in_list = [deep_in_list]
    r = post(client, event(metadata={"m": deep_in_list}))
    assert r.json()["rejected"][0]["error"].startswith("max_depth:")


def test_hostile_nesting_is_400_not_500(client: httpx.Client) -> None:
    r = client.post("/v1/events", content=b"[" * 150_000)
    assert r.status_code == 400
    r = client.post("/v1/events", content=b'{"data":' + b"[" * 150_000)
    assert r.status_code == 400


@pytest.mark.parametrize(
    "body",
    [b"", b"null", b"42", b'"text"', b"[1,", b"\xff\xfe", b'{"system": "x"'],
)
def test_malformed_json_is_400(client: httpx.Client, body: bytes) -> None:
    r = client.post("/v1/events", content=body)
    assert r.status_code == 400
    assert "error" in r.json()


def test_wrong_content_type_and_encoding(client: httpx.Client) -> None:
    r = client.post("/v1/events", content=b"a=b", headers={"Content-Type": "text/plain"})
    assert r.status_code == 415
    assert r.json()["error"].startswith("content-type:")
    r = client.post("/v1/events", content=b"{}", headers={"Content-Encoding": "br"})
    assert r.status_code == 415
    assert r.json()["error"].startswith("content-encoding:")


def test_unknown_path_and_method_are_json(client: httpx.Client) -> None:
    r = client.get("/v2/nothing")
    assert r.status_code == 404
    assert r.json()["error"].startswith("path:")
    r = client.delete("/v1/events")
    assert r.status_code == 405
    assert r.json()["error"].startswith("method:")


def test_bad_content_length_header(server: Server) -> None:
    with socket.create_connection(("127.0.0.1", server.port)) as sock:
        sock.sendall(
            b"POST /v1/events HTTP/1.1\r\nHost: x\r\nContent-Length: 5\r\n"
            b"Content-Type: application/json\r\n\r\n[{}]"
        )
        sock.shutdown(socket.SHUT_WR)
        reply = sock.recv(65536)
    assert not reply.startswith(b"HTTP/1.1 500")


def test_pipelined_requests_get_whole_responses_in_order(server: Server) -> None:
    # Responses are written one system call each (server/_protocol.py): heads and
    # bodies of several requests in flight must still leave whole and in order.
    def request(event_id: str) -> bytes:
        body = orjson.dumps(event(id=event_id))
        return (
            b"POST /v1/events HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n"
            b"Content-Length: %d\r\n\r\n%s" % (len(body), body)
        )

    ids = [f"pipelined-{i}" for i in range(5)]
    with socket.create_connection(("127.0.0.1", server.port), timeout=10) as sock:
        sock.sendall(b"".join(request(i) for i in ids))
        stream = sock.makefile("rb")
        for expected in ids:
            assert stream.readline() == b"HTTP/1.1 200 OK\r\n"
            length = None
            while (line := stream.readline()) != b"\r\n":
                name, _, value = line.partition(b":")
                if name.lower() == b"content-length":
                    length = int(value)
            assert length is not None
            assert orjson.loads(stream.read(length))["ids"] == [expected]


def test_metrics_count_by_system(client: httpx.Client) -> None:
    post(client, [event(system="metered", id="m-1"), event(system="metered", id="m-1")])
    text = client.get("/metrics").text
    assert 'eventcollector_events_accepted_total{system="metered"} 1.0' in text
    assert 'eventcollector_events_duplicate_total{system="metered"} 1.0' in text
    assert "eventcollector_events_rejected_total" in text
    assert "eventcollector_ingest_seconds_bucket" in text
    assert "eventcollector_ingest_queue_depth" in text
    assert "eventcollector_subscribers" in text


def test_openapi_document(client: httpx.Client) -> None:
    doc = client.get("/openapi.json").json()
    assert doc["openapi"].startswith("3.1")
    for path in ("/v1/events", "/v1/events/count", "/v1/stream", "/v1/ws", "/health"):
        assert path in doc["paths"]
    assert "IngestResult" in doc["components"]["schemas"]


def test_health(client: httpx.Client) -> None:
    r = client.get("/health")
    assert r.status_code == 200
    assert r.json()["status"] == "healthy"
    assert r.json()["storage"]["backend"] == "sqlite"


@pytest.mark.parametrize("tags", [[None], ["ok", None], {}, {"a": 1}])
def test_tags_that_are_not_a_list_of_strings_are_rejected(
    client: httpx.Client, tags: object
) -> None:
    # A null tag used to be acknowledged and then fail every move of the journal
    # into events (NOT NULL event_tags.tag): the store stopped taking events in.
    r = post(client, event(tags=tags))
    assert r.status_code == 400
    assert r.json()["rejected"][0]["error"].startswith("tags: expected a list of strings")
    after = post(client, event(id=f"after-bad-tags-{len(str(tags))}"))
    assert after.status_code == 200
    assert client.get(f"/v1/events/{after.json()['ids'][0]}").status_code == 200
