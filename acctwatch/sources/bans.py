"""fail2ban bans as events: rows of the store's ``bans`` table (written by ``acctwatch report-ban``)
become :class:`~acctwatch.events.Ban` events for the engine.

* replay: :func:`ban_events` yields the bans with ``since <= ts < until`` in time order (the same
  half-open interval as ``replay --since/--until``), to be merged by time with the log events;
* live daemon: :class:`BanFollower` polls for rows added since the last one it returned, and keeps its
  position in the store's checkpoints so a restart neither loses nor repeats a ban.

Ban events carry ``ip``, ``jail``, ``ts`` (when the ban was reported), ``program="fail2ban"``,
``source="store:bans"`` and ``lineno`` = the row id (so ``explain`` can point at it).
"""

from __future__ import annotations

from collections.abc import Iterator
from datetime import datetime, timedelta
from typing import Any

import sqlalchemy as sa
from sqlalchemy.engine import Connection

from ..events import Ban
from ..store import Store, bans, utcnow

SOURCE = "store:bans"
CHECKPOINT = "fail2ban-bans"


def to_event(row: Any) -> Ban:
    m = row._mapping if hasattr(row, "_mapping") else row
    return Ban(ts=m["ts"], ip=m["ip"], jail=m["jail"], program="fail2ban", source=SOURCE, lineno=int(m["id"]),
               pattern=f"ban:{m['source']}")


def has_bans(store: Store) -> bool:
    with store.engine.connect() as conn:
        return conn.execute(sa.select(bans.c.id).limit(1)).first() is not None


def ban_events(store: Store, since: datetime | None = None, until: datetime | None = None,
               batch: int = 5000) -> Iterator[Ban]:
    """Bans with ``since <= ts < until`` (either bound optional), oldest first (ties by row id)."""
    q = sa.select(bans).order_by(bans.c.ts, bans.c.id)
    if since is not None:
        q = q.where(bans.c.ts >= since)
    if until is not None:
        q = q.where(bans.c.ts < until)
    # read in one go per batch: a replay may run for minutes, do not hold a read transaction open
    offset = 0
    while True:
        with store.engine.connect() as conn:
            rows = conn.execute(q.limit(batch).offset(offset)).fetchall()
        for r in rows:
            yield to_event(r)
        if len(rows) < batch:
            return
        offset += batch


def max_ban_id(store: Store) -> int:
    with store.engine.connect() as conn:
        return int(conn.execute(sa.select(sa.func.max(bans.c.id))).scalar() or 0)


class BanFollower:
    """New bans for the live daemon: call :meth:`poll` every few seconds, feed what it returns to the
    engine, and :meth:`save` the position in the same transaction as the engine's flush."""

    def __init__(self, store: Store, last_id: int = 0, key: str = CHECKPOINT) -> None:
        self.store = store
        self.last_id = last_id
        self.key = key  # the checkpoint (per instance: several daemons on one store each read every ban)
        self.saved_id = last_id

    @classmethod
    def resume(cls, store: Store, backfill: timedelta = timedelta(hours=1),
               now: datetime | None = None, key: str = CHECKPOINT) -> BanFollower:
        """From the saved checkpoint; on the first start, from the bans of the last *backfill*."""
        cp = store.get_checkpoint(key)
        if cp and isinstance(cp.get("last_id"), int):
            return cls(store, cp["last_id"], key)
        since = (now or utcnow()) - backfill
        with store.engine.connect() as conn:
            first = conn.execute(sa.select(sa.func.min(bans.c.id)).where(bans.c.ts >= since)).scalar()
        f = cls(store, int(first) - 1 if first is not None else max_ban_id(store), key)
        f.saved_id = -1  # a first start: its position is committed with the first batch
        return f

    def poll(self, limit: int = 1000) -> list[Ban]:
        q = sa.select(bans).where(bans.c.id > self.last_id).order_by(bans.c.id).limit(limit)
        with self.store.engine.connect() as conn:
            rows = conn.execute(q).fetchall()
        if rows:
            self.last_id = int(rows[-1]._mapping["id"])
        return sorted((to_event(r) for r in rows), key=lambda e: (e.ts, e.lineno))

    @property
    def moved(self) -> bool:
        return self.last_id != self.saved_id

    def save(self, conn: Connection) -> None:
        self.store.set_checkpoint(conn, self.key, {"last_id": self.last_id})
        self.saved_id = self.last_id
