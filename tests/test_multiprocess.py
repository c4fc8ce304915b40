"""Several processes writing one SQLite file at once: nothing lost, nothing duplicated."""

from __future__ import annotations

import sqlite3
import subprocess
import sys
from pathlib import Path

WRITER = r"""
import asyncio, sys
from eventcollector import EventCollector

async def main(path, name, n):
    async with EventCollector(path) as collector:
        # Concurrent collects (group commit) and batches, interleaved with the others.
        for start in range(0, n, 50):
            await asyncio.gather(*(
                collector.collect(system="mahavishnu", event_type="test.run",
                                  title=f"{name} {i}", id=f"{name}-{i}", tags=[name])
                for i in range(start, start + 50)
            ))
        await collector.cleanup_old_events(retention_days=365)

asyncio.run(main(sys.argv[1], sys.argv[2], int(sys.argv[3])))
"""

PROCESSES = 4
EVENTS = 400


def test_processes_writing_one_file(tmp_path: Path) -> None:
    db = tmp_path / "shared.db"
    procs = [
        subprocess.Popen(
            [sys.executable, "-c", WRITER, str(db), f"p{k}", str(EVENTS)],
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        for k in range(PROCESSES)
    ]
    for proc in procs:
        _out, err = proc.communicate(timeout=120)
        assert proc.returncode == 0, err
        assert "locked" not in err
        assert "busy" not in err
    conn = sqlite3.connect(db)
    try:
        ids = [row[0] for row in conn.execute("SELECT id FROM events")]
        tag_rows = conn.execute("SELECT count(*) FROM event_tags").fetchone()[0]
        rollup = conn.execute("SELECT sum(n) FROM event_counts").fetchone()[0]
        fts = conn.execute(
            "SELECT count(*) FROM events_fts WHERE events_fts MATCH 'p0'"
        ).fetchone()[0]
    finally:
        conn.close()
    expected = {f"p{k}-{i}" for k in range(PROCESSES) for i in range(EVENTS)}
    assert len(ids) == len(set(ids))
    assert set(ids) == expected
    assert tag_rows == rollup == len(expected)
    assert fts == EVENTS
