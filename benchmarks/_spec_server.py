"""The spec's design behind a plain Starlette endpoint (an anchor of issue 17).

``python -m benchmarks._spec_server --db PATH --port N`` serves ``POST /v1/events``
(one JSON object, or an array stored with one ``executemany`` and one commit) and
``GET /health``, on one aiosqlite connection, under uvicorn's defaults.
"""

from __future__ import annotations

import argparse
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path

import aiosqlite
import uvicorn
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse
from starlette.routing import Route

from benchmarks._spec_design import INSERT, SeedEvent, open_db


def spec_app(db_path: Path) -> Starlette:
    state: dict[str, aiosqlite.Connection] = {}

    @asynccontextmanager
    async def lifespan(app: Starlette) -> AsyncIterator[None]:
        db = await open_db(db_path)
        state["db"] = db
        yield
        await db.close()

    async def post_events(request: Request) -> JSONResponse:
        db = state["db"]
        payload = await request.json()
        items = payload if isinstance(payload, list) else [payload]
        try:
            events = [SeedEvent.from_json(item) for item in items]
        except (TypeError, ValueError) as exc:
            return JSONResponse({"error": f"event: {exc}"}, 400)
        # As a ten-line endpoint would: no lock. Concurrent requests then share commits
        # (Python's sqlite3 opens one implicit transaction), which is most of its rate;
        # about 0.1% of them fail ("bad parameter or other API misuse"): a 500, counted in
        # non_2xx. Serialising them with a lock measured 350 requests/s, not ~2,000.
        await db.executemany(INSERT, [e.to_row() for e in events])
        await db.commit()
        return JSONResponse({"accepted": len(events), "ids": [e.id for e in events]})

    async def health(request: Request) -> JSONResponse:
        return JSONResponse({"status": "ok"})

    async def count(request: Request) -> JSONResponse:
        db = state["db"]
        async with db.execute("SELECT COUNT(*) FROM events") as cursor:
            row = await cursor.fetchone()
        return JSONResponse({"count": row[0] if row else 0})

    return Starlette(
        routes=[
            Route("/v1/events", post_events, methods=["POST"]),
            Route("/v1/events/count", count),
            Route("/health", health),
        ],
        lifespan=lifespan,
    )


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--db", type=Path, required=True)
    parser.add_argument("--port", type=int, required=True)
    args = parser.parse_args()
    uvicorn.run(spec_app(args.db), host="127.0.0.1", port=args.port, log_level="warning")


if __name__ == "__main__":
    main()
