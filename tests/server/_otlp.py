"""What the OTLP tests share: a server with keys and ``--otlp-port``, and the real
OpenTelemetry SDK run in a subprocess against it."""

from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import Iterator
from typing import Any

import httpx
import pytest

from _common import cli, free_port

from .conftest import Server, start

PROTOBUF = {"Content-Type": "application/x-protobuf"}


class OtlpServer:
    """The server, its OTLP port and keys: ``ingest`` (also used by the SDK), ``read``."""

    def __init__(self, server: Server, otlp_port: int, keys: dict[str, str]) -> None:
        self.server = server
        self.otlp_url = f"http://127.0.0.1:{otlp_port}"
        self.keys = keys

    def otlp(self, key: str | None = "ingest") -> httpx.Client:
        headers = {"Authorization": f"Bearer {self.keys[key]}"} if key else {}
        return httpx.Client(base_url=self.otlp_url, headers=headers, timeout=30)

    def events(self, **params: Any) -> list[dict[str, Any]]:
        with self.server.client(self.keys["read"]) as client:
            response = client.get("/v1/events", params={"limit": 1000, **params})
            assert response.status_code == 200, response.text
            events: list[dict[str, Any]] = response.json()["events"]
            return events

    def metric(self, name: str) -> float:
        """The sum of a counter's samples in /metrics."""
        with self.server.client() as client:
            text = client.get("/metrics").text
        return sum(
            float(line.rsplit(" ", 1)[1])
            for line in text.splitlines()
            if line.startswith((f"{name}_total", f"{name}{{"))
        )

    def run_sdk(self, script: str, *args: str, **env: str) -> str:
        """Run ``script`` with the SDK configured by environment variables, as a service
        would be: OTEL_EXPORTER_OTLP_ENDPOINT is the OTLP port, the key is in
        OTEL_EXPORTER_OTLP_HEADERS. Returns its stdout."""
        environment = {
            **os.environ,
            "OTEL_EXPORTER_OTLP_ENDPOINT": self.otlp_url,
            "OTEL_EXPORTER_OTLP_HEADERS": f"Authorization=Bearer%20{self.keys['ingest']}",
            **env,
        }
        done = subprocess.run(
            [sys.executable, "-c", script, *args],
            capture_output=True,
            text=True,
            timeout=120,
            env=environment,
            check=False,
        )
        assert done.returncode == 0, done.stderr
        return done.stdout


def start_otlp(
    tmp_path_factory: pytest.TempPathFactory, name: str, *options: str
) -> Iterator[OtlpServer]:
    keys_file = tmp_path_factory.mktemp(f"{name}-keys") / "keys.json"
    keys = {}
    for key, scope in (("ingest", "ingest"), ("read", "read")):
        done = cli("keys", "create", "--scope", scope, "--keys-file", str(keys_file))
        assert done.returncode == 0, done.stderr
        keys[key] = done.stdout.strip()
    otlp_port = free_port()
    for server in start(
        tmp_path_factory, name, "--keys-file", str(keys_file), "--otlp-port", str(otlp_port),
        *options,
    ):  # fmt: skip
        yield OtlpServer(server, otlp_port, keys)
