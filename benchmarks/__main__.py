"""``python -m benchmarks``: make data, measure, print one JSON report.

    python -m benchmarks                 # 1M events, every figure of issue #6
    python -m benchmarks --quick         # 100k events, fewer repeats: a quick look
    python -m benchmarks --events 10000000 --only ingest,queries
    python -m benchmarks --only filters  # filter parse time, no data needed
    python -m benchmarks --workdir DIR --only filter_queries  # issue 12's query figures
                                         # over DIR's events.db (and PostgreSQL at 200k)
    python -m benchmarks --only otlp     # OTLP protobuf logs vs the JSON batch endpoint
    python -m benchmarks --only ui --events 100000   # the web UI, in Chromium
    python -m benchmarks --only anchors  # issue 17: beside the spec's literal design, as ratios

Nothing here is a test: figures are printed, never asserted. Record the latest in
docs/performance.md together with the machine they came from.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import sqlite3
import subprocess
import sys
import tempfile
from pathlib import Path
from typing import Any

PHASES = (
    "ingest", "queries", "http", "otlp", "postgres", "filters", "filter_queries", "issues",
    "ui", "anchors",
)  # fmt: skip


def machine() -> dict[str, Any]:
    model = ""
    try:
        with open("/proc/cpuinfo", encoding="utf-8") as info:
            model = next(
                (line.split(":", 1)[1].strip() for line in info if "model name" in line), ""
            )
    except OSError:
        pass
    return {
        "cpus": os.cpu_count(),
        "cpu_model": model,
        "python": platform.python_version(),
        "sqlite": sqlite3.sqlite_version,
        "platform": platform.platform(),
    }


def main() -> None:
    parser = argparse.ArgumentParser(
        prog="python -m benchmarks", description=__doc__.split("\n")[0]
    )
    parser.add_argument("--events", type=int, default=1_000_000)
    parser.add_argument("--quick", action="store_true", help="100k events, 10 repeats")
    parser.add_argument("--repeat", type=int, default=30, help="runs per query latency")
    parser.add_argument("--only", default=",".join(PHASES), help=f"comma list of {PHASES}")
    parser.add_argument("--workdir", type=Path, help="keep the databases here")
    parser.add_argument(
        "--postgres",
        default=os.environ.get("EVENTCOLLECTOR_TEST_POSTGRES"),
        help="PostgreSQL URL for the postgres phase (default $EVENTCOLLECTOR_TEST_POSTGRES)",
    )
    parser.add_argument("--output", type=Path, help="also write the JSON report here")
    args = parser.parse_args()
    if args.quick:
        args.events, args.repeat = 100_000, 10
    phases = {p.strip() for p in args.only.split(",") if p.strip()}
    unknown = phases - set(PHASES)
    if unknown:
        parser.error(f"--only: unknown phase(s) {sorted(unknown)}")
    workdir = args.workdir or Path(tempfile.mkdtemp(prefix="eventcollector-bench-"))
    workdir.mkdir(parents=True, exist_ok=True)
    db = workdir / "events.db"
    report: dict[str, Any] = {"machine": machine(), "events": args.events}

    if "ingest" in phases:
        for stale in workdir.glob("*.db*"):
            stale.unlink()
        # A child process, so that its peak RSS is the ingest's own.
        out = subprocess.run(
            [sys.executable, "-m", "benchmarks._ingest", "--db", str(db), "--events",
             str(args.events), "--raw-db", str(workdir / "raw.db")],
            check=True, stdout=subprocess.PIPE, text=True,
        ).stdout  # fmt: skip
        report["ingest"] = json.loads(out)
        _progress("ingest", report["ingest"])
    if "queries" in phases:
        from benchmarks._queries import run
        from eventcollector.storage.sqlite import SQLiteStorage

        report["queries"] = run(SQLiteStorage(db), args.repeat)
        _progress("queries", report["queries"])
    if "http" in phases:
        from benchmarks._http import run_http

        report["http"] = run_http(workdir, min(args.events, 200_000))
        _progress("http", report["http"])
        if "refused" in report["http"]:
            print(f"# warning: http: {report['http']['refused']}", file=sys.stderr, flush=True)
    if "otlp" in phases:
        from benchmarks._otlp import run_otlp

        report["otlp"] = run_otlp(workdir, min(args.events, 200_000))
        _progress("otlp", report["otlp"])
    if "postgres" in phases:
        if args.postgres:
            from benchmarks._postgres import run_postgres

            report["postgres"] = run_postgres(args.postgres, min(args.events, 200_000))
        else:
            report["postgres"] = {"skipped": "no --postgres URL / EVENTCOLLECTOR_TEST_POSTGRES"}
        _progress("postgres", report["postgres"])
    if "filters" in phases:
        from benchmarks._filters import run as run_filters

        report["filters"] = run_filters()
        _progress("filters", report["filters"])
    if "filter_queries" in phases:
        from benchmarks._queries import run
        from eventcollector.storage.sqlite import SQLiteStorage

        if not db.exists():
            parser.error(f"--only filter_queries: no {db} (run the ingest phase first)")
        report["filter_queries"] = {
            "sqlite": run(SQLiteStorage(db), args.repeat, only_filters=True)
        }
        if args.postgres:
            from benchmarks._postgres import run_postgres_filter_queries

            report["filter_queries"]["postgres"] = run_postgres_filter_queries(
                args.postgres, min(args.events, 200_000), args.repeat
            )
        _progress("filter_queries", report["filter_queries"])
    if "issues" in phases:
        from benchmarks._error_corpus import quality

        # Grouping quality of fingerprint v1 beside the title masking of error_groups.
        report["issues"] = quality()
        _progress("issues", report["issues"])
    if "ui" in phases:
        from benchmarks._ui import run_ui

        report["ui"] = run_ui(workdir, args.events, repeat=max(3, min(args.repeat, 10)))
        _progress("ui", report["ui"])
    if "anchors" in phases:
        # A child process (its own databases under workdir/anchors): 200k events each side.
        out = subprocess.run(
            [sys.executable, "-m", "benchmarks._anchors", "--workdir", str(workdir / "anchors"),
             "--events", str(min(args.events, 200_000)),
             "--sequential", str(min(args.events, 200_000))],
            check=True, stdout=subprocess.PIPE, text=True,
        ).stdout  # fmt: skip
        report["anchors"] = json.loads(out)
        _progress("anchors", report["anchors"])
    text = json.dumps(report, indent=2)
    print(text)
    if args.output:
        args.output.write_text(text + "\n", encoding="utf-8")


def _progress(phase: str, figures: Any) -> None:
    print(f"# {phase}: {json.dumps(figures)}", file=sys.stderr, flush=True)


if __name__ == "__main__":
    main()
