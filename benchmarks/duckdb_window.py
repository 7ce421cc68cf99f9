"""The DuckDB peer of ``plsnap window``: top statements of a time window, straight from plsnap's partitions.

Usage: ``python benchmarks/duckdb_window.py FROM TO PARTITION...`` (FROM/TO as ISO-8601 ``...Z``), prints the
top 10 groups as JSON. It reads the zstd JSON Lines partitions with ``read_json(format='newline_delimited')``,
unnests ``sessions``, keeps running statements (command not idle, info not null) and groups by a regexp
normalisation of ``info`` (lower case; quoted strings and digit runs -> ``?``; ``(?, ?, ...)`` -> ``(?+)``). That
is cruder than plsnap's pt-fingerprint semantics but groups this workload's templates the same way. This is
also the documented recipe that proves the archive is engine-readable.
"""

from __future__ import annotations

import json
import sys

import duckdb

IDLE = "('Sleep', 'Daemon', 'Binlog Dump', 'Binlog Dump GTID', 'Connect')"
QUERY = """
WITH rows AS (
    SELECT ts, unnest(sessions) AS s
    FROM read_json({files}, format = 'newline_delimited', compression = 'zstd',
                   columns = {{ts: 'VARCHAR', sessions: 'STRUCT(id BIGINT, command VARCHAR, info VARCHAR)[]'}})
    WHERE ts >= '{start}' AND ts < '{end}' AND sessions IS NOT NULL
)
SELECT regexp_replace(
           regexp_replace(
               regexp_replace(lower(s.info), '''(?:[^''\\\\]|\\\\.|'''')*''', '?', 'g'),
               '[0-9]+(?:\\.[0-9]+)?', '?', 'g'),
           '\\(\\?(?:, ?\\?)*\\)', '(?+)', 'g') AS fp,
       count(*) AS samples,
       count(DISTINCT s.id) AS sessions
FROM rows
WHERE s.command NOT IN {idle} AND s.info IS NOT NULL
GROUP BY fp
ORDER BY samples DESC, fp
LIMIT 10
"""


def top(start: str, end: str, files: list[str]) -> list[dict[str, object]]:
    """The top 10 normalised statements of ``[start, end)`` in ``files``."""
    file_list = "[" + ", ".join("'" + f.replace("'", "''") + "'" for f in files) + "]"
    sql = QUERY.format(files=file_list, start=start, end=end, idle=IDLE)
    rows = duckdb.connect().sql(sql).fetchall()
    return [{"key": fp, "samples": n, "sessions": s} for fp, n, s in rows]


def main() -> None:
    """Command-line entry point."""
    start, end, *files = sys.argv[1:]
    print(json.dumps(top(start, end, files)))


if __name__ == "__main__":
    main()
