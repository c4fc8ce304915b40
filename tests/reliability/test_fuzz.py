"""Property 9: under fuzzed input the status-code contract holds (bad input is 4xx).

Schemathesis generates requests from our own ``/openapi.json`` (valid and invalid
ones) against the real server; Hypothesis generates events, valid and hostile,
posted one by one and as batches. Any 5xx fails, and so does a server-side
traceback in the log. Runs are kept small (``max_examples``); the slow variant of
the event fuzzer runs more.
"""

from __future__ import annotations

import json
import os
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
import schemathesis
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from hypothesis.errors import Unsatisfiable
from schemathesis import GenerationMode
from schemathesis.core.result import Ok

from ._support import Server


@pytest.fixture(scope="module")
def fuzz_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Server]:
    server = Server(tmp_path_factory.mktemp("fuzz"), "--rate-limit", "0", "--max-batch", "200")
    try:
        yield server
    finally:
        log = server.stop()
        assert "Traceback" not in log, log


# Live streams never end by themselves: their filters are the same parser as the
# queries' (fuzzed here), the streams themselves are tested in tests/server/test_streams.py.
_UNFUZZED_PATHS = frozenset({"/v1/stream", "/v1/ws"})


def test_openapi_fuzz_never_5xx(fuzz_server: Server) -> None:
    """Valid and invalid requests generated from our own OpenAPI document.

    Each operation's schemathesis strategy is run by Hypothesis directly rather than
    through schemathesis's pytest plugin, which breaks with newer pytest releases.
    """
    schema = schemathesis.openapi.from_url(f"{fuzz_server.url}/openapi.json")
    operations = []
    for result in schema.get_all_operations():
        assert isinstance(result, Ok), f"the OpenAPI document has an invalid operation: {result}"
        operations.append(result.ok())
    fuzzed = [op for op in operations if op.path not in _UNFUZZED_PATHS]
    assert fuzzed, "the OpenAPI document lists no operations"
    for operation in fuzzed:
        _fuzz(operation.as_strategy(generation_mode=GenerationMode.POSITIVE))
    negative = 0
    for operation in fuzzed:
        try:
            _fuzz(operation.as_strategy(generation_mode=GenerationMode.NEGATIVE))
        except Unsatisfiable:
            continue  # nothing of this operation can be made invalid (no parameters, say)
        negative += 1
    assert negative, "no operation had invalid input to generate"


def _fuzz(strategy: st.SearchStrategy[Any]) -> None:
    @given(case=strategy)
    @settings(
        max_examples=15, deadline=None, suppress_health_check=list(HealthCheck), database=None
    )
    def check(case: Any) -> None:
        response = case.call(timeout=30)
        not_a_server_error_result = response.status_code < 500
        assert not_a_server_error_result, (case.method, case.formatted_path, response.text[:500])
        if response.status_code >= 400:
            assert "error" in response.json()

    check()


# -- Hypothesis events --------------------------------------------------------------

json_scalars = st.none() | st.booleans() | st.integers() | st.floats() | st.text(max_size=30)
json_values = st.recursive(
    json_scalars,
    lambda children: (
        st.lists(children, max_size=4) | st.dictionaries(st.text(max_size=10), children, max_size=4)
    ),
    max_leaves=20,
)
FIELDS = [
    "id", "timestamp", "system", "event_type", "severity", "title", "description", "data",
    "tags", "correlation_id", "source_component", "duration_ms", "metadata", "bogus",
]  # fmt: skip
plausible = {
    "system": st.sampled_from(["deployer", "Not Valid", "", "a" * 70, "x-y_z"]),
    "event_type": st.sampled_from(["workflow.started", "x", "A.B", "", "a." * 40]),
    "severity": st.sampled_from(["info", "error", "loud", "", "INFO"]),
    "timestamp": st.sampled_from(
        ["2024-05-01T12:00:00", "2024-05-01T12:00:00+02:00", "3000-01-01T00:00:00Z", "yesterday"]
    ),
    "title": st.text(max_size=50),
    "duration_ms": st.integers(min_value=-(2**70), max_value=2**70),
    "tags": st.lists(st.text(max_size=10), max_size=5),
}
events = st.dictionaries(
    st.sampled_from(FIELDS),
    st.one_of(json_values, *(plausible.values())),
    max_size=8,
) | st.fixed_dictionaries(
    {k: plausible[k] for k in ("system", "event_type", "title")},
    optional={
        k: plausible.get(k, json_values)
        for k in FIELDS
        if k not in ("system", "event_type", "title")
    },
)


def dumps(value: Any) -> bytes:
    """JSON as Python writes it: big integers, and NaN/Infinity (not JSON) too."""
    return json.dumps(value).encode()


bodies = st.one_of(
    events.map(dumps),
    st.lists(events | json_values, max_size=6).map(dumps),
    st.binary(max_size=200),
    st.lists(events, min_size=1, max_size=4).map(lambda es: b"\n".join(dumps(e) for e in es)),
)

EXAMPLES = 1_000 if os.environ.get("EVENTCOLLECTOR_SLOW") == "1" else 150


def test_hypothesis_events_are_4xx_never_5xx(fuzz_server: Server, tmp_path: Path) -> None:
    with httpx.Client(base_url=fuzz_server.url, timeout=30) as client:

        @settings(max_examples=EXAMPLES, deadline=None, database=None)
        @given(body=bodies, ndjson=st.booleans())
        def post(body: bytes, ndjson: bool) -> None:
            kind = "application/x-ndjson" if ndjson else "application/json"
            r = client.post("/v1/events", content=body, headers={"Content-Type": kind})
            assert r.status_code in (200, 400, 413), (r.status_code, body[:300], r.text[:300])
            result = r.json()
            if r.status_code == 400:
                assert result["error"].split(":")[0]
            if r.status_code == 200:
                for event_id in result["ids"]:
                    if event_id is not None:  # what was acknowledged can be read back
                        got = client.get(f"/v1/events/{event_id}")
                        assert got.status_code == 200, event_id

        post()
