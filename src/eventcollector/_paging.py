"""Every event of a query, oldest first, a page at a time (export, retention archives)."""

from __future__ import annotations

from collections.abc import AsyncIterator
from datetime import datetime

from eventcollector.collector import EventCollector
from eventcollector.model import Event
from eventcollector.query import Query

__all__ = ["PAGE", "pages"]

PAGE = 5_000


async def pages(c: EventCollector, q: Query, size: int = PAGE) -> AsyncIterator[list[Event]]:
    """Every event of ``q``, oldest first, ``size`` at a time.

    Keyset paging on (timestamp, insertion order) through plain ``Query`` fields,
    so it works on every backend and each page is one short read: the next page
    starts at the last timestamp seen, skipping the events already returned at
    exactly that timestamp (later inserts at that time sort after them).
    """
    page_q = q.with_(ascending=True, order_by="timestamp", limit=size, offset=0)
    last: datetime | None = None
    seen_at_last = 0
    while True:
        page = await c.query(page_q)
        if not page:
            return
        yield page
        if len(page) < size:
            return
        end = page[-1].timestamp
        at_end = sum(1 for e in page if e.timestamp == end)
        seen_at_last = seen_at_last + at_end if end == last else at_end
        last = end
        page_q = page_q.with_(since=end, offset=seen_at_last)
