"""A realistic synthetic processlist history, written as a plsnap archive and as the seed's gzip files.

The simulation (deterministic for a given :class:`Spec`) keeps ``sessions`` connections. Each alternates idle
stints (``Sleep``, ``Time`` counting up since its last statement) and statements drawn from 50 templates with
Zipf-like popularity and literals that change on every run. Most statements are short; some run for seconds,
a few for minutes, and their ``Time`` grows across samples. About 78% of the sessions are idle at any sample.
Connections come and go (new ids, new client ports), and a short outage now and then leaves gap lines
(``"sessions": null``). Rows carry what plsnap records on MariaDB from ``information_schema.PROCESSLIST``
(``time_ms``, ``stage``, ``memory_used``, ``examined_rows``, ``query_id``, ``tid``...).

The same snapshots are written twice:

- as plsnap writes them: ``plsnap.model.Snapshot`` -> ``encode_line`` -> ``ArchiveWriter(fsync=False)``, each
  closed hour compacted as the daemon does;
- as the seed shell loop would have stored them: one ``<dir>/pl-YYYYmmdd-HHMMSS.gz`` file per sample holding
  ``mysql -e 'SHOW FULL PROCESSLIST'`` batch output (tab-separated, a header line, ``NULL``, backslash escapes,
  MariaDB's ``Progress`` column, the seed's own ``SHOW FULL PROCESSLIST`` row), gzip level 6 (gzip's default),
  file mtime set to the sample time. A failed sample is an empty gzip file, as ``mysql ... | gzip`` leaves.

Results are cached under ``$PLSNAP_BENCH_CACHE`` (default ``/tmp/plsnap-bench-cache``) keyed by the spec, so
reruns are instant. Run alone: ``.venv/bin/python -m benchmarks.synth_archive --days 7 --interval 10``.
"""

from __future__ import annotations

import argparse
import bisect
import gzip
import hashlib
import itertools
import json
import math
import multiprocessing
import os
import random
import shutil
import time
from collections.abc import Callable, Iterator
from dataclasses import asdict, dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path

from benchmarks.common import cache_dir
from plsnap.archive.format import encode_line
from plsnap.archive.writer import ArchiveWriter
from plsnap.config import ArchiveConfig
from plsnap.model import Session, Snapshot

GENERATOR_VERSION = 5
INSTANCE = "db1"
SERVER_VERSION = "10.11.19-MariaDB-0+deb12u1-log"
START = datetime(2026, 11, 21, 0, 0, 0, tzinfo=UTC)
SEED_HEADER = "Id\tUser\tHost\tdb\tCommand\tTime\tState\tInfo\tProgress\n"
GAP_ERROR = "connect failed: (2003) Can't connect to MySQL server on 'localhost' (111)"


@dataclass(frozen=True, slots=True)
class Spec:
    """What to simulate: ``sessions`` connections sampled every ``interval`` seconds for ``hours`` hours."""

    sessions: int = 300
    interval: float = 10.0
    hours: float = 7 * 24
    seed: int = 20261121
    idle_share: float = 0.78
    mean_life_s: float = 4 * 3600.0  # mean connection lifetime
    outage_every_h: float = 9.0  # mean hours between outages (1-5 failed samples each)

    @property
    def samples(self) -> int:
        """Number of sample instants."""
        return int(self.hours * 3600 / self.interval)

    @property
    def start(self) -> datetime:
        """First sample instant."""
        return START

    @property
    def end(self) -> datetime:
        """First instant after the simulated span."""
        return START + timedelta(hours=self.hours)

    def key(self) -> str:
        """A short hash naming this spec in the cache."""
        fields = {
            k: float(v) if isinstance(v, int) and k in ("interval", "hours") else v for k, v in asdict(self).items()
        }
        text = json.dumps({**fields, "v": GENERATOR_VERSION}, sort_keys=True)
        return hashlib.sha256(text.encode()).hexdigest()[:12]


# --- statement templates ---------------------------------------------------------------------------------

TABLES = (
    ("orders", "customer_id", "id, customer_id, status, total, currency, created_at"),
    ("order_items", "order_id", "order_id, sku, qty, price"),
    ("customers", "account_id", "id, email, first_name, last_name, country, created_at"),
    ("products", "category_id", "id, sku, name, price, stock, updated_at"),
    ("payments", "order_id", "id, order_id, provider, amount, state, created_at"),
    ("shipments", "order_id", "id, order_id, carrier, tracking_no, state, shipped_at"),
    ("carts", "customer_id", "id, customer_id, session_token, updated_at"),
    ("inventory", "warehouse_id", "sku, warehouse_id, on_hand, reserved, updated_at"),
    ("reviews", "product_id", "id, product_id, customer_id, rating, body, created_at"),
    ("audit_log", "actor_id", "id, actor_id, action, entity, entity_id, created_at"),
)
CALLERS = ("OrderService", "CheckoutController", "CatalogRepository", "ReportJob", "SyncWorker", "AdminPanel")
STATUSES = ("new", "paid", "shipped", "cancelled", "refunded", "on_hold")
# (duration class, processlist states) per shape
SHAPES: dict[str, tuple[str, tuple[str, ...]]] = {
    "point": ("short", ("Sending data", "Statistics", "executing")),
    "range": ("medium", ("Sending data", "Sorting result", "Creating sort index")),
    "update": ("short", ("Updating", "updating", "Waiting for table metadata lock")),
    "insert": ("short", ("Update", "update", "closing tables")),
    "report": ("long", ("Sending data", "Copying to tmp table", "Creating sort index", "Sorting result")),
    "inlist": ("medium", ("Sending data", "statistics", "Sending data")),
    "purge": ("long", ("Updating", "deleting from main table", "Sending data")),
    "join": ("medium", ("Sending data", "Sending data", "Creating tmp table")),
}


def _date(rng: random.Random) -> str:
    month, day, hour, minute = rng.randint(1, 11), rng.randint(1, 28), rng.randint(0, 23), rng.randint(0, 59)
    return f"2026-{month:02d}-{day:02d} {hour:02d}:{minute:02d}:00"


def _template(shape: str, table: int) -> Callable[[random.Random], str]:
    name, fk, cols = TABLES[table]
    other, _, other_cols = TABLES[(table + 3) % len(TABLES)]
    first_other = other_cols.split(", ")[1]
    caller = CALLERS[(table + len(shape)) % len(CALLERS)]

    def point(rng: random.Random) -> str:
        return f"SELECT {cols} FROM {name} WHERE id = {rng.randint(1, 9_999_999)}"

    def range_(rng: random.Random) -> str:
        return (
            f"/* {caller}.list */ SELECT {cols} FROM {name} WHERE {fk} = {rng.randint(1, 999_999)} AND "
            f"created_at >= '{_date(rng)}' ORDER BY created_at DESC LIMIT {rng.choice((20, 50, 100))}"
        )

    def update(rng: random.Random) -> str:
        return (
            f"UPDATE {name} SET status = '{rng.choice(STATUSES)}', updated_at = NOW() "
            f"WHERE id = {rng.randint(1, 9_999_999)} AND version = {rng.randint(1, 40)}"
        )

    def insert(rng: random.Random) -> str:
        n = len(cols.split(", "))
        values = ", ".join(str(rng.randint(1, 10**6)) if i % 2 else f"'{rng.getrandbits(40):x}'" for i in range(n))
        return f"INSERT INTO {name} ({cols}) VALUES ({values})"

    def report(rng: random.Random) -> str:
        return (
            f"/* {caller}.daily */ SELECT {fk}, COUNT(*) AS n, SUM(amount) AS total FROM {name} WHERE created_at "
            f"BETWEEN '{_date(rng)}' AND '{_date(rng)}' GROUP BY {fk} HAVING n > {rng.randint(1, 50)} "
            f"ORDER BY total DESC LIMIT {rng.choice((100, 500, 1000))}"
        )

    def inlist(rng: random.Random) -> str:
        ids = ", ".join(str(rng.randint(1, 99_999_999)) for _ in range(int(rng.paretovariate(1.3) * 40)))
        return f"SELECT {cols} FROM {name} WHERE id IN ({ids})"

    def purge(rng: random.Random) -> str:
        return f"DELETE FROM {name} WHERE created_at < '{_date(rng)}' LIMIT {rng.choice((1000, 5000, 10000))}"

    def join(rng: random.Random) -> str:
        return (
            f"SELECT a.{cols.split(', ')[0]}, a.{fk}, b.{first_other} FROM {name} a JOIN {other} b ON b.id = "
            f"a.{fk} WHERE a.{fk} = {rng.randint(1, 999_999)} AND b.{first_other} IS NOT NULL LIMIT "
            f"{rng.randint(1, 200)}"
        )

    makers = {
        "point": point,
        "range": range_,
        "update": update,
        "insert": insert,
        "report": report,
        "inlist": inlist,
        "purge": purge,
        "join": join,
    }
    return makers[shape]


@dataclass(frozen=True, slots=True)
class Template:
    """One statement shape over one table: its text maker, duration class, states and popularity."""

    name: str
    make: Callable[[random.Random], str]
    duration: str
    states: tuple[str, ...]
    weight: float


RARITY = {"short": 1.0, "medium": 0.3, "long": 0.02}  # slow statements are rare, but they stay visible


def build_templates(count: int = 50, seed: int = 1) -> list[Template]:
    """``count`` distinct templates (shape x table) with Zipf(1.1) weights times the rarity of slow shapes."""
    combos = [(shape, table) for shape in SHAPES for table in range(len(TABLES))]
    random.Random(seed).shuffle(combos)
    templates = []
    for rank, (shape, table) in enumerate(combos[:count], start=1):
        duration, states = SHAPES[shape]
        templates.append(
            Template(
                f"{shape}:{TABLES[table][0]}",
                _template(shape, table),
                duration,
                states,
                RARITY[duration] / rank**1.1,
            )
        )
    return templates


def draw_duration(rng: random.Random, kind: str) -> float:
    """Seconds a statement runs: short ones mostly sub-second, long ones up to half an hour."""
    if kind == "short":
        return rng.expovariate(1 / 0.3) if rng.random() < 0.96 else rng.uniform(5, 60)  # rare lock waits
    if kind == "medium":
        return rng.lognormvariate(1.3, 1.0)  # median 3.7 s
    return min(1800.0, rng.lognormvariate(3.0, 1.3))  # median 20 s, capped at 30 min


# --- the simulation --------------------------------------------------------------------------------------


class _Conn:
    __slots__ = (
        "busy",
        "db",
        "host",
        "id",
        "idle_extra",
        "info",
        "mem",
        "query_id",
        "rows_per_s",
        "since",
        "state",
        "template",
        "tid",
        "until",
        "user",
    )

    def __init__(self, sid: int, tid: int, user: str, host: str, db: str, now: float) -> None:  # noqa: PLR0917
        self.id, self.tid, self.user, self.host, self.db = sid, tid, user, host, db
        self.busy = False
        self.since = now  # start of the current statement or idle stint
        self.until = now  # when the current stint ends
        self.info: str | None = None
        self.template: Template | None = None
        self.state = ""
        self.mem = 95904
        self.query_id = 0
        self.rows_per_s = 0
        self.idle_extra: dict[str, object] | None = None


class Simulation:
    """Yields :class:`Snapshot` objects for every sample instant of ``spec``."""

    USERS = (("app", 0.7), ("report", 0.1), ("batch", 0.1), ("admin", 0.05), ("etl", 0.05))

    def __init__(self, spec: Spec) -> None:
        self.spec = spec
        self.rng = random.Random(spec.seed)
        self.templates = build_templates()
        self.weights = [t.weight for t in self.templates]
        self.cum_weights = list(itertools.accumulate(self.weights))
        self.next_id = 1000
        self.next_tid = 40000
        self.query_id = 1_000_000
        active = 1.0 - spec.idle_share
        # mean idle stint so that active time / total time ~= active share
        mean_busy = self._mean_busy()
        self.mean_idle = mean_busy * spec.idle_share / active
        t0 = spec.start.timestamp()
        self.conns = [self._new_conn(t0 - self.rng.uniform(0, 600)) for _ in range(spec.sessions)]
        for conn in self.conns:
            conn.until = t0 + self.rng.uniform(0, self.mean_idle)
            self._idle(conn, conn.since)

    def _mean_busy(self) -> float:
        rng = random.Random(99)
        total = sum(self.weights)
        mean = 0.0
        for template in self.templates:
            draws = [draw_duration(rng, template.duration) for _ in range(400)]
            mean += template.weight / total * sum(draws) / len(draws)
        return mean

    def _new_conn(self, now: float) -> _Conn:
        rng = self.rng
        user = rng.choices([u for u, _ in self.USERS], [w for _, w in self.USERS])[0]
        host = f"10.0.{rng.randint(1, 4)}.{rng.randint(10, 60)}:{rng.randint(32768, 60999)}"
        db = "reporting" if user in ("report", "etl") else "shop"
        self.next_id += 1
        self.next_tid += rng.randint(1, 9)
        conn = _Conn(self.next_id, self.next_tid, user, host, db, now)
        conn.mem = 95904 + rng.choice((0, 0, 8192, 16384, 40960))
        return conn

    def _idle(self, conn: _Conn, at: float) -> None:
        conn.busy, conn.info, conn.state, conn.since = False, None, "", at
        conn.until = at - math.log(1.0 - self.rng.random()) * self.mean_idle
        conn.idle_extra = None  # made when a sample sees it

    def _start(self, conn: _Conn, at: float) -> None:
        rng = self.rng
        cum = self.cum_weights
        template = self.templates[bisect.bisect(cum, rng.random() * cum[-1])]
        self.query_id += 1 + int(rng.random() * 400)
        conn.busy, conn.since, conn.query_id, conn.template = True, at, self.query_id, template
        conn.info = None  # made when a sample sees it: most short statements are never seen
        conn.until = at + draw_duration(rng, template.duration)

    def _session(self, conn: _Conn, now: float) -> Session:
        elapsed = now - conn.since
        if not conn.busy:
            if conn.idle_extra is None:
                conn.idle_extra = {
                    "stage": 0,
                    "max_stage": 0,
                    "progress": 0.0,
                    "memory_used": conn.mem,
                    "max_memory_used": conn.mem + 1016,
                    "examined_rows": 0,
                    "query_id": conn.query_id,
                    "tid": conn.tid,
                }
            return Session(
                conn.id, conn.user, conn.host, conn.db, "Sleep", int(elapsed), "", None,
                round(elapsed * 1000, 3), conn.idle_extra,
            )  # fmt: skip
        if conn.info is None:
            template = conn.template
            assert template is not None
            conn.info = template.make(self.rng)
            conn.state = self.rng.choice(template.states)
            conn.rows_per_s = self.rng.choice((0, 10, 1000, 50_000))
        extra = {
            "stage": 0,
            "max_stage": 0,
            "progress": 0.0,
            "memory_used": conn.mem + 30000 + int(elapsed * 97) % 200_000,
            "max_memory_used": conn.mem + 230_000,
            "examined_rows": int(elapsed * conn.rows_per_s),
            "query_id": conn.query_id,
            "tid": conn.tid,
        }
        return Session(
            conn.id, conn.user, conn.host, conn.db, "Query", int(elapsed), conn.state, conn.info,
            round(elapsed * 1000, 3), extra,
        )  # fmt: skip

    def __iter__(self) -> Iterator[Snapshot]:
        spec, rng = self.spec, self.rng
        t0 = spec.start.timestamp()
        outage_left = 0
        churn = spec.interval / spec.mean_life_s
        outage_p = spec.interval / (spec.outage_every_h * 3600)
        for k in range(spec.samples):
            now = t0 + k * spec.interval + rng.uniform(0.001, 0.004)
            ts = datetime.fromtimestamp(now, UTC)
            random_ = rng.random
            idle, start = self._idle, self._start
            for index, old in enumerate(self.conns):
                conn = old
                if not conn.busy and random_() < churn:
                    conn = self.conns[index] = self._new_conn(now - rng.uniform(0, spec.interval))
                    idle(conn, conn.since)
                while conn.until <= now:  # run the session's timeline up to now
                    if conn.busy:
                        idle(conn, conn.until)
                    else:
                        start(conn, conn.until)
            if outage_left == 0 and rng.random() < outage_p:
                outage_left = rng.randint(1, 5)
            if outage_left:
                outage_left -= 1
                yield Snapshot(ts, INSTANCE, "information_schema", SERVER_VERSION, round(rng.uniform(1, 3), 3),
                               GAP_ERROR, None, spec.interval)  # fmt: skip
                continue
            sessions = tuple(self._session(conn, now) for conn in self.conns)
            yield Snapshot(ts, INSTANCE, "information_schema", SERVER_VERSION, round(rng.uniform(6, 14), 3), None,
                           sessions, spec.interval)  # fmt: skip


# --- writers ---------------------------------------------------------------------------------------------

_ESCAPES = str.maketrans({"\\": "\\\\", "\t": "\\t", "\n": "\\n", "\x00": "\\0"})


def seed_text(snapshot: Snapshot) -> str:
    """``mysql -e 'SHOW FULL PROCESSLIST'`` batch output for ``snapshot`` (empty for a gap)."""
    if snapshot.sessions is None:
        return ""
    out = [SEED_HEADER]

    def cell(value: object) -> str:
        return "NULL" if value is None else str(value).translate(_ESCAPES)

    for s in snapshot.sessions:
        out.append(
            f"{s.id}\t{cell(s.user)}\t{cell(s.host)}\t{cell(s.db)}\t{cell(s.command)}\t{s.time}\t"
            f"{cell(s.state)}\t{cell(s.info)}\t0.000\n"
        )
    out.append(f"{(snapshot.sessions[-1].id if snapshot.sessions else 0) + 7}\tmonitor\tlocalhost\tNULL\tQuery\t0\t"
               "starting\tSHOW FULL PROCESSLIST\t0.000\n")  # fmt: skip
    return "".join(out)


def seed_name(ts: datetime) -> str:
    """The seed loop's file name for a sample taken at ``ts``."""
    return f"pl-{ts:%Y%m%d-%H%M%S}.gz"


def write_plsnap(spec: Spec, instance_dir: Path, *, level: int = 3) -> dict[str, int]:
    """Write the simulation as a plsnap archive, as the daemon leaves it (each closed hour compacted at the
    default ``[archive] compact_level``); returns raw and compressed byte counts."""
    raw = samples = gaps = 0
    compact_level = ArchiveConfig().compact_level
    with ArchiveWriter(instance_dir, level=level, fsync=False, compact_level=compact_level) as writer:
        for snapshot in Simulation(spec):
            line = encode_line(snapshot.to_record())
            writer.append(line, snapshot.ts)
            raw += len(line)
            samples += 1
            gaps += snapshot.sessions is None
    return {"raw_json_bytes": raw, "samples": samples, "gaps": gaps}


def write_seed(spec: Spec, seed_dir: Path) -> dict[str, int]:
    """Write the simulation as the seed loop's gzip files; returns raw text bytes."""
    seed_dir.mkdir(parents=True, exist_ok=True)
    raw = 0
    for snapshot in Simulation(spec):
        text = seed_text(snapshot).encode()
        raw += len(text)
        path = seed_dir / seed_name(snapshot.ts)
        stamp = snapshot.ts.timestamp()
        path.write_bytes(gzip.compress(text, compresslevel=6, mtime=int(stamp)))
        os.utime(path, (stamp, stamp))
    return {"raw_text_bytes": raw}


@dataclass(frozen=True, slots=True)
class Dataset:
    """A generated data set: the plsnap archive (``data_dir``/``INSTANCE``) and the seed's files."""

    spec: Spec
    root: Path
    stats: dict[str, int]

    @property
    def data_dir(self) -> Path:
        """``--data-dir`` for the CLI."""
        return self.root / "plsnap"

    @property
    def instance_dir(self) -> Path:
        """The plsnap instance directory."""
        return self.data_dir / INSTANCE

    @property
    def seed_dir(self) -> Path:
        """The seed loop's flat directory of gzip files."""
        return self.root / "seed"


def _run(job: tuple[str, Spec, Path]) -> dict[str, int]:
    kind, spec, path = job
    return write_plsnap(spec, path) if kind == "plsnap" else write_seed(spec, path)


def generate(spec: Spec, *, seed_files: bool = True, root: Path | None = None, quiet: bool = False) -> Dataset:
    """The data set for ``spec``, from the cache or generated now (two processes, one per format)."""
    root = root or cache_dir() / f"synth-{spec.key()}{'' if seed_files else '-noseed'}"
    marker = root / "done.json"
    if marker.exists():
        return Dataset(spec, root, json.loads(marker.read_text()))
    if root.exists():
        shutil.rmtree(root)
    root.mkdir(parents=True)
    began = time.perf_counter()
    if not quiet:
        print(f"[synth] generating {spec} into {root} (cached for later runs)", flush=True)
    jobs = [("plsnap", spec, root / "plsnap" / INSTANCE)]
    if seed_files:
        jobs.append(("seed", spec, root / "seed"))
    if len(jobs) > 1:
        with multiprocessing.get_context("fork").Pool(len(jobs)) as pool:
            parts = pool.map(_run, jobs)
    else:
        parts = [_run(jobs[0])]
    stats: dict[str, int] = {}
    for part in parts:
        stats.update(part)
    stats["generate_seconds"] = round(time.perf_counter() - began)
    (root / "plsnap" / INSTANCE / ".plsnap.lock").unlink(missing_ok=True)
    marker.write_text(json.dumps(stats))
    if not quiet:
        print(f"[synth] done in {stats['generate_seconds']} s: {stats}", flush=True)
    return Dataset(spec, root, stats)


def main() -> None:
    """Generate (or find in the cache) a data set and print where it is."""
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--sessions", type=int, default=300)
    parser.add_argument("--interval", type=float, default=10.0)
    parser.add_argument("--days", type=float, default=7.0)
    parser.add_argument("--no-seed", action="store_true", help="skip the seed's gzip files")
    args = parser.parse_args()
    spec = Spec(sessions=args.sessions, interval=args.interval, hours=args.days * 24)
    dataset = generate(spec, seed_files=not args.no_seed)
    print(f"plsnap archive: --data-dir {dataset.data_dir} --instance {INSTANCE}")
    print(f"seed files:     {dataset.seed_dir}")
    print(json.dumps(dataset.stats))


if __name__ == "__main__":
    main()
