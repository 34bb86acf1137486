"""Throughput caps shared by every process: a virtual clock per region pair in the database.

Each batch a worker moves is paid for at the pair's rate: under the pair row's lock the
"paid until" time moves to max(itself, now) + bytes / rate, and the worker waits until then
before it checkpoints. Whatever the number of worker processes or machines, the pair's bytes
per second stay under the rate (idle time earns no credit). Wall clock: workers on several
machines need their clocks in step (NTP), as leases already do.
"""

from __future__ import annotations

from sqlalchemy import select, update
from sqlalchemy.engine import Connection

from snapferry.storage.metadata import insert_ignoring_conflict, pair_rates

p = pair_rates.c


def pay(conn: Connection, source_region: str, dest_region: str, moved: int, rate: float,
        now: float) -> float:
    """Pay for `moved` bytes on this pair at `rate` bytes/s; returns the seconds to wait
    (from `now`, seconds since the epoch) before the bytes count as moved."""
    insert_ignoring_conflict(conn, pair_rates, {"source_region": source_region,
                                                "dest_region": dest_region, "paid_until": 0.0})
    where = (p.source_region == source_region, p.dest_region == dest_region)
    # A no-op update first: the row's write lock, so concurrent payers take turns.
    conn.execute(update(pair_rates).where(*where).values(paid_until=p.paid_until))
    paid_until = conn.execute(select(p.paid_until).where(*where)).scalar_one()
    paid_until = max(paid_until, now) + moved / rate
    conn.execute(update(pair_rates).where(*where).values(paid_until=paid_until))
    return paid_until - now
