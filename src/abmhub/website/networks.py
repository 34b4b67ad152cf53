"""The optional network-owner dataset (iptoasn): who owns the network a visit came from.

`abmhub ip-data import FILE` streams an iptoasn TSV (`ip2asn-v4.tsv`, `ip2asn-v6.tsv`, or the
combined file, gzipped or not) into `ip_networks`, replacing what was there. The collector
keeps the ranges in memory (sorted starts, a bisect per lookup) and reloads them when the
table changes. A visit's network owner is matched to an account by name when the visits are
aggregated (`aggregate.py`): honest limits in docs/website.md.
"""

from __future__ import annotations

import bisect
import gzip
from collections.abc import Callable, Iterable
from pathlib import Path
from typing import IO

from sqlalchemy import Connection, delete, func, select

from abmhub.db.engine import Database
from abmhub.db.queries import insert_rows
from abmhub.db.tables import ip_networks
from abmhub.website.addresses import iter_iptoasn, parse_address

BATCH = 10_000


def _hex(value: int) -> str:
    return f"{value:032x}"


def import_iptoasn(
    db: Database, lines: Iterable[str], *, progress: Callable[[int], None] | None = None
) -> tuple[int, int]:
    """Replace the dataset with these lines in one transaction: (ranges stored, lines skipped)."""
    parsed = iter_iptoasn(lines)
    stored = 0
    with db.write() as tx:
        tx.conn.execute(delete(ip_networks))
        batch: list[tuple[object, ...]] = []
        for entry in parsed:
            batch.append(
                (entry.version, _hex(entry.start), _hex(entry.end), entry.asn, entry.country, entry.description)
            )
            if len(batch) >= BATCH:
                stored += _store(tx.conn, batch, progress)
                batch = []
        stored += _store(tx.conn, batch, progress)
    return stored, parsed.skipped


def _store(conn: Connection, batch: list[tuple[object, ...]], progress: Callable[[int], None] | None) -> int:
    insert_rows(conn, ip_networks, ("version", "start_hex", "end_hex", "asn", "country", "owner"), batch)
    if progress is not None:
        progress(len(batch))
    return len(batch)


def open_lines(path: Path) -> IO[str]:
    """A text stream of the file, gunzipped when it ends in `.gz`."""
    if path.suffix == ".gz":
        return gzip.open(path, "rt", encoding="utf-8", errors="replace")
    return path.open(encoding="utf-8", errors="replace")


class NetworkTable:
    """The ranges in memory: `owner(ip)` in O(log n); empty (and free) without a dataset."""

    def __init__(self) -> None:
        self._version: tuple[int, int] | None = None
        self._starts: dict[int, list[int]] = {4: [], 6: []}
        self._rows: dict[int, list[tuple[int, str]]] = {4: [], 6: []}

    def refresh(self, conn: Connection) -> None:
        version = tuple(conn.execute(select(func.count(), func.coalesce(func.max(ip_networks.c.id), 0))).one())
        if version == self._version:
            return
        starts: dict[int, list[int]] = {4: [], 6: []}
        rows: dict[int, list[tuple[int, str]]] = {4: [], 6: []}
        query = select(ip_networks.c.version, ip_networks.c.start_hex, ip_networks.c.end_hex, ip_networks.c.owner)
        for ip_version, start, end, owner in conn.execute(
            query.order_by(ip_networks.c.version, ip_networks.c.start_hex)
        ):
            starts[ip_version].append(int(start, 16))
            rows[ip_version].append((int(end, 16), owner))
        self._starts, self._rows, self._version = starts, rows, (int(version[0]), int(version[1]))

    def owner(self, address: str) -> str | None:
        if not self._rows[4] and not self._rows[6]:
            return None  # no dataset: the usual case, and every unmatched visit asks
        ip = parse_address(address)  # remembered, and IPv4-mapped addresses as IPv4
        if ip is None:
            return None
        starts = self._starts[ip.version]
        at = bisect.bisect_right(starts, int(ip)) - 1
        if at < 0:
            return None
        end, owner = self._rows[ip.version][at]
        return owner if int(ip) <= end else None
