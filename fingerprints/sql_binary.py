"""PostgreSQL's binary formats for the database index, made and read by numpy.

:func:`copy_rows` writes rows of integer columns with binary ``COPY``; :class:`Int4Array` sends
an ``int4[]`` parameter in the binary array format. Both avoid a Python object per value, which
for tens of thousands of values would cost more than the database work. psycopg 3 only (the
driver of ``postgresql+psycopg://`` URLs). Reads no settings.
"""

from __future__ import annotations

import struct
from typing import Any

import numpy as np
from psycopg.adapt import Dumper
from psycopg.pq import Format
from sqlalchemy import Connection

_COPY_HEADER = b"PGCOPY\n\xff\r\n\x00" + struct.pack("!ii", 0, 0)
_COPY_TRAILER = struct.pack("!h", -1)
_SESSION = "SET jit = off; SET max_parallel_workers_per_gather = 0"
_PREPARED = "copyguard_sql_index"  # marks what of a DBAPI connection is set up


class Int4Array:
    """An ``int4[]`` query parameter made from a numpy array (see :class:`Int4ArrayDumper`)."""

    def __init__(self, values: np.ndarray) -> None:
        self.values = np.asarray(values, dtype=np.int32)


class Int4ArrayDumper(Dumper):
    """Sends an :class:`Int4Array` in PostgreSQL's binary array format, built by numpy: a
    Python int per element would cost more than the lookup itself."""

    format = Format.BINARY
    oid = 1007  # int4[]

    def dump(self, obj: Any) -> bytes:
        values = obj.values
        elements = np.empty(len(values), dtype=[("size", ">i4"), ("value", ">i4")])
        elements["size"] = 4
        elements["value"] = values
        # dimensions, has nulls, element type (int4), length, lower bound
        return struct.pack("!iiiii", 1, 0, 23, len(values), 1) + elements.tobytes()


def prepared(connection: Connection, *, settings: bool = True) -> Connection:
    """``connection`` set up, once per database connection, for lookups: :class:`Int4Array`
    parameters and, with ``settings``, no JIT compilation and no parallel workers (see
    fingerprints.sql_index). Inside a caller's transaction pass ``settings=False``: a rollback
    would undo them while the connection still counted as set up."""
    info = connection.connection.info
    if not info.get(_PREPARED + ":dumper"):
        connection.connection.driver_connection.adapters.register_dumper(  # type: ignore[union-attr]
            Int4Array, Int4ArrayDumper)
        info[_PREPARED + ":dumper"] = True
    if settings and not info.get(_PREPARED + ":settings"):
        connection.exec_driver_sql(_SESSION)
        info[_PREPARED + ":settings"] = True
    return connection


def as_int4(hashes: np.ndarray) -> np.ndarray:
    """uint32 hashes as the int32 of the same bits (what an int4 column holds)."""
    return np.asarray(hashes, dtype=np.uint32).view(np.int32)


def copy_rows(connection: Connection, target: str, columns: list[np.ndarray],
              small: tuple[int, ...] = ()) -> None:
    """Rows with these columns into ``target`` by binary COPY (int4 columns, but int2 for the
    column positions in ``small``)."""
    count = len(columns[0])
    if count == 0:
        return
    kinds = ["i2" if number in small else "i4" for number in range(len(columns))]
    layout: list[tuple[str, str]] = [("fields", ">i2")]
    for number, kind in enumerate(kinds):
        layout += [(f"size{number}", ">i4"), (f"value{number}", ">" + kind)]
    rows = np.empty(count, dtype=layout)
    rows["fields"] = len(columns)
    for number, (column, kind) in enumerate(zip(columns, kinds, strict=True)):
        rows[f"size{number}"] = int(kind[1])
        rows[f"value{number}"] = column
    driver: Any = connection.connection.driver_connection
    with driver.cursor() as cursor, cursor.copy(
            f"COPY {target} FROM STDIN (FORMAT BINARY)") as copy:
        copy.write(_COPY_HEADER + rows.tobytes() + _COPY_TRAILER)
