"""The client is the "client" extra: without httpx the core and the logging handler work,
and asking for a server names the extra."""

from __future__ import annotations

import subprocess
import sys

_WITHOUT_HTTPX = "import sys\nsys.modules['httpx'] = None  # as if the extra were missing\n"


def _run(code: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-c", _WITHOUT_HTTPX + code],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )


def test_core_and_logging_handler_import_without_httpx() -> None:
    done = _run(
        "import eventcollector, eventcollector.logging_handler, eventcollector.client\n"
        "from eventcollector.client import INSIDE_CLIENT\n"
        "print(INSIDE_CLIENT.get())\n"
    )
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == "False"


def test_a_server_url_without_httpx_names_the_extra() -> None:
    done = _run(
        "from eventcollector import EventCollector\n"
        "try:\n"
        "    EventCollector(url='http://127.0.0.1:9')\n"
        "except ImportError as exc:\n"
        "    print(exc)\n"
    )
    assert done.returncode == 0, done.stderr
    assert "pip install 'eventcollector[client]'" in done.stdout
