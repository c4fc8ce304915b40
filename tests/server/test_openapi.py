"""The OpenAPI document and the answers agree: schemathesis's coverage phase with every
check (response schemas, documented status codes and headers, schema-valid data
accepted, schema-invalid data refused, ...) over every operation of /openapi.json,
against a default server.

The coverage phase is deterministic (boundary and edge values of each parameter, not
random examples), about 1,900 cases in 20-40 s here. A live stream that opens never
ends, so /v1/stream cases get a 0.3 s request timeout (the stream's answer head,
status and headers are checked; its body is the stream tests' subject). Keyless
only: a keyed run would double the time and the authorisation answers are tested in
test_auth.py.
"""

from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from .conftest import Server, start

_CHECKS_FILE = Path(__file__).with_name("_openapi_checks.py")
_CONFIG = """
request-timeout = 10
max-stream-events = 1

[checks.positive_data_acceptance]
# A 400 to schema-valid data is judged by _openapi_checks.py: only a rule that joins
# parameters may refuse it.
expected-statuses = ["2xx", "400", "401", "403", "404"]

[[operations]]
include-path = "/v1/ws"
# Plain HTTP cannot upgrade; without the headers the answer is 426 (documented).
checks.positive_data_acceptance.expected-statuses = ["2xx", "400", "401", "403", "404", "426"]

[[operations]]
include-path = "/v1/stream"
request-timeout = 0.3
"""


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Server]:
    yield from start(tmp_path_factory, "openapi")  # the options a user gets: none


def test_every_operation_agrees_with_the_document(server: Server, tmp_path: Path) -> None:
    config = tmp_path / "schemathesis.toml"
    config.write_text(_CONFIG, encoding="utf-8")
    cli = Path(sys.executable).with_name("schemathesis")
    done = subprocess.run(
        [str(cli), "--config-file", str(config), "run", f"{server.url}/openapi.json",
         "--checks", "all", "--phases", "coverage", "--no-color"],
        capture_output=True, text=True, timeout=240, cwd=tmp_path,
        env={**os.environ, "SCHEMATHESIS_HOOKS": str(_CHECKS_FILE)},
    )  # fmt: skip
    report = done.stdout + done.stderr
    assert done.returncode == 0, report[-6000:]
    assert " passed" in report, report[-2000:]
    selected = next(line for line in report.splitlines() if "Selected:" in line)
    total = selected.split("/")[-1].strip()
    assert selected.split(":")[1].strip() == f"{total}/{total}", selected  # every operation
