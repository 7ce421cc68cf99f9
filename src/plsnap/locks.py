"""Who blocked whom: lock-wait edges derived from one sample, blocking trees, and lock-wait episodes.

Pure functions over plain data (the capture code in :mod:`plsnap.source` collects the inputs; readers get
:class:`Edge` records back from the archive). Every edge says how it is known:

- ``lock_table``: a lock table shows both sides (InnoDB lock waits, MySQL's ``metadata_locks`` with pending
  requests, the holder of a user lock as the server reports it);
- ``derived``: the holder is in a lock table but what the waiter waits for is worked out (MariaDB's
  ``METADATA_LOCK_INFO`` lists granted locks only: the object comes from the waiter's own granted locks or
  its statement, and queue order puts new requests behind a pending exclusive one);
- ``inferred``: no lock source: the sessions an expert would suspect (an open transaction that began before
  the wait began), never proven.

Kinds: ``row`` (InnoDB record locks), ``metadata`` (table, schema and routine metadata locks), ``table``
(``LOCK TABLES`` and table-level locks) and ``user`` (``GET_LOCK``).
"""

from __future__ import annotations

import re
from collections import deque
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime, timedelta
from typing import Any

from plsnap.model import Session, Snapshot, finite, lock_edge_ok

_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
_MILLISECOND = timedelta(milliseconds=1)

MAX_INFERRED = 10
#: Transaction ages are whole seconds (TIMESTAMPDIFF truncates), waits may be milliseconds: the slack that
#: lets a transaction opened just before a wait still count as older.
AGE_SLACK = 1.0
#: MDL modes that ask for (or hold the right to) exclusive access: DDL, LOCK TABLES WRITE.
STRONG_MODES = frozenset(
    {
        "MDL_EXCLUSIVE",
        "MDL_SHARED_NO_READ_WRITE",
        "MDL_SHARED_NO_WRITE",
        "MDL_SHARED_UPGRADABLE",
        "EXCLUSIVE",
        "SHARED_NO_READ_WRITE",
        "SHARED_NO_WRITE",
        "SHARED_UPGRADABLE",
    }
)


class _Lazy:
    """A regular expression compiled when first used (``plsnap at`` never needs these: they derive lock edges at
    capture time)."""

    __slots__ = ("args", "compiled")

    def __init__(self, *args: Any) -> None:
        self.args = args
        self.compiled: re.Pattern[str] | None = None

    def __getattr__(self, name: str) -> Any:
        if self.compiled is None:
            self.compiled = re.compile(*self.args)
        return getattr(self.compiled, name)


#: Granted modes that block new ordinary requests outright (LOCK TABLES, an ALTER in its final phase).
BLOCKING_MODES = frozenset({"MDL_EXCLUSIVE", "MDL_SHARED_NO_READ_WRITE", "EXCLUSIVE", "SHARED_NO_READ_WRITE"})
#: Granted modes that block writes but not reads (LOCK TABLES READ, the copy phase of ALTER).
WRITE_BLOCKING_MODES = frozenset({"MDL_SHARED_NO_WRITE", "MDL_SHARED_READ_ONLY", "SHARED_NO_WRITE", "SHARED_READ_ONLY"})
#: Modes that LOCK TABLES takes: edges to their holders are of kind ``table``.
TABLE_LOCK_MODES = frozenset(
    {"MDL_SHARED_NO_READ_WRITE", "MDL_SHARED_READ_ONLY", "SHARED_NO_READ_WRITE", "SHARED_READ_ONLY"}
)
_MDL_WAIT = _Lazy(
    r"^Waiting for (?:table|schema|stored \w+|trigger|event|backup|global read)? ?\w* ?metadata lock", re.I
)
_TABLE_LEVEL_WAIT = _Lazy(r"^Waiting for table level lock", re.I)
_USER_LOCK_WAIT = _Lazy(r"^(?:User lock|Waiting for user lock)", re.I)
_DDL = _Lazy(
    r"^\s*(?:/\*.*?\*/\s*)*(?:alter|drop|truncate|rename|optimize|repair|analyze|create\s+(?:unique\s+|fulltext\s+|spatial\s+)?index|lock\s+tables?)\b",
    re.I | re.S,
)
_WRITE = _Lazy(r"^\s*(?:/\*.*?\*/\s*)*(?:insert|update|delete|replace|load)\b", re.I | re.S)
_IDENT = r"(?:`(?:[^`]|``)+`|[A-Za-z0-9_$]+)"
_TABLE_REF = _Lazy(
    rf"\b(?:alter\s+(?:online\s+|ignore\s+)*table|drop\s+table(?:\s+if\s+exists)?|truncate(?:\s+table)?|rename\s+table|optimize\s+table|repair\s+table|analyze\s+table|lock\s+tables?|on|into|update(?:\s+(?:low_priority|ignore))*|from|join)\s+({_IDENT}(?:\s*\.\s*{_IDENT})?)",
    re.I,
)
_GET_LOCK = _Lazy(r"\bget_lock\s*\(\s*(?:'((?:[^'\\]|\\.|'')*)'|\"((?:[^\"\\]|\\.|\"\")*)\")", re.I)


@dataclass(frozen=True, slots=True)
class Edge:
    """``waiter`` waits for a lock that ``blocker`` holds (or has queued ahead of it).

    ``object`` is ``schema.table`` or a lock name; ``mode`` what the waiter asks for and ``blocker_mode`` what
    the blocker holds, when known; ``how`` is ``lock_table``, ``derived`` or ``inferred``; ``wait_s`` how long
    the waiter had waited at the sample, in seconds.
    """

    waiter: int
    blocker: int
    kind: str
    object: str | None = None
    mode: str | None = None
    blocker_mode: str | None = None
    how: str = "lock_table"
    wait_s: float | None = None

    def to_record(self) -> dict[str, Any]:
        """The archive form (keys with None values are left out)."""
        record: dict[str, Any] = {"waiter": self.waiter, "blocker": self.blocker, "kind": self.kind, "how": self.how}
        for key in ("object", "mode", "blocker_mode", "wait_s"):
            value = getattr(self, key)
            if value is not None:
                record[key] = value
        return record

    @classmethod
    def from_record(cls, record: Any) -> Edge | None:
        """An edge from the archive, or None when the record is not a valid edge."""
        if not lock_edge_ok(record):
            return None
        return cls(
            record["waiter"],
            record["blocker"],
            record["kind"],
            _short(record.get("object")),
            _short(record.get("mode")),
            _short(record.get("blocker_mode")),
            record["how"],
            finite(record.get("wait_s"), 0.0, 10 * 365 * 86400.0),
        )


def _short(value: Any) -> str | None:
    return value[:300] if isinstance(value, str) else None


def edges_of(snapshot: Snapshot) -> list[Edge]:
    """The lock-wait edges recorded with a sample (invalid entries are ignored)."""
    raw = snapshot.extra.get("locks")
    if not isinstance(raw, list):
        return []
    return [edge for edge in (Edge.from_record(r) for r in raw) if edge is not None]


# --- deriving edges at capture ---------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class RowWait:
    """One InnoDB lock wait: processlist ids of both sides, the table, both lock modes, seconds waited."""

    waiter: int
    blocker: int
    table: str | None = None
    mode: str | None = None
    blocker_mode: str | None = None
    wait_s: float | None = None


@dataclass(frozen=True, slots=True)
class MdlLock:
    """One metadata lock: the session, its mode, the object (``schema.table`` or a lock name), the object type
    (``TABLE``, ``SCHEMA``, ``USER LEVEL LOCK``, ...) and whether it is granted or pending."""

    session: int
    mode: str
    object: str
    object_type: str = "TABLE"
    granted: bool = True


@dataclass(frozen=True, slots=True)
class LockInputs:
    """What a capture could read about locks in one sample.

    ``mdl`` is None when no metadata-lock source is available (no plugin, no privilege); ``mdl_pending``
    says whether the source shows pending requests (MySQL's ``metadata_locks``) or granted ones only
    (MariaDB's ``METADATA_LOCK_INFO``). ``user_holders`` maps a user-lock name to its holder.
    ``trx_age`` maps sessions with an open transaction to its age in seconds.
    """

    row_waits: Sequence[RowWait] = ()
    mdl: Sequence[MdlLock] | None = None
    mdl_pending: bool = False
    user_holders: Mapping[str, int] = field(default_factory=dict)
    trx_age: Mapping[int, float] = field(default_factory=dict)


def waiting_kind(session: Session) -> str | None:
    """``metadata``, ``table`` or ``user`` when the session's state says it waits for such a lock."""
    state = session.state or ""
    if not state.startswith(("Waiting", "User lock")) or not session.active:
        return None
    if _USER_LOCK_WAIT.match(state):
        return "user"
    if _TABLE_LEVEL_WAIT.match(state):
        return "table"
    if _MDL_WAIT.match(state) or ("metadata lock" in state.lower() and state.lower().startswith("waiting")):
        return "metadata"
    return None


def statement_object(info: str | None, db: str | None) -> str | None:
    """The first table a statement names, as ``schema.table`` (the session's database when unqualified)."""
    if not info:
        return None
    match = _TABLE_REF.search(info[:4096])
    if match is None:
        return None
    parts = [
        p.strip().strip("`").replace("``", "`")
        for p in re.split(r"\s*\.\s*(?=(?:`|[A-Za-z0-9_$]))", match.group(1), maxsplit=1)
    ]
    if len(parts) == 2:
        return f"{parts[0]}.{parts[1]}"
    return f"{db}.{parts[0]}" if db else parts[0]


def user_lock_name(info: str | None) -> str | None:
    """The name a ``GET_LOCK('name', ...)`` statement asks for."""
    if not info:
        return None
    match = _GET_LOCK.search(info[:4096])
    if match is None:
        return None
    name = match.group(1) if match.group(1) is not None else match.group(2)
    return re.sub(r"\\(.)", r"\1", name.replace("''", "'").replace('""', '"'))


def derive_edges(sessions: Sequence[Session], inputs: LockInputs) -> list[Edge]:
    """Every lock-wait edge of one sample, each labelled with how it is known (see the module docstring)."""
    edges: list[Edge] = [
        Edge(w.waiter, w.blocker, "row", w.table, w.mode, w.blocker_mode, "lock_table", w.wait_s)
        for w in inputs.row_waits
        if w.waiter != w.blocker
    ]
    by_id = {s.id: s for s in sessions}
    waiters = [(s, kind) for s in sessions if (kind := waiting_kind(s)) is not None]
    for session, kind in waiters:
        if kind == "user":
            edges += _user_edges(session, inputs)
        elif inputs.mdl is not None and inputs.mdl_pending:
            edges += _mdl_edges_pending(session, kind, inputs.mdl)
        elif inputs.mdl is not None:
            edges += _mdl_edges_granted(session, kind, inputs.mdl, waiters)
    proven = {e.waiter for e in edges}
    for session, kind in waiters:
        if session.id not in proven:
            edges += _queue_edges(session, kind, waiters) or _inferred_edges(session, kind, sessions, inputs)
    return _dedupe([e for e in edges if e.blocker in by_id or e.how != "inferred"])


def _dedupe(edges: Iterable[Edge]) -> list[Edge]:
    seen: dict[tuple[int, int, str], Edge] = {}
    rank = {"lock_table": 0, "derived": 1, "inferred": 2}
    for edge in edges:
        key = (edge.waiter, edge.blocker, edge.kind)
        if key not in seen or rank[edge.how] < rank[seen[key].how]:
            seen[key] = edge
    return list(seen.values())


def _wait_of(session: Session) -> float | None:
    return session.elapsed_seconds


def _user_edges(session: Session, inputs: LockInputs) -> list[Edge]:
    name = user_lock_name(session.info)
    if name is None:
        return []
    holder = inputs.user_holders.get(name)
    if holder is None and inputs.mdl is not None:
        holder = next(
            (m.session for m in inputs.mdl if m.granted and m.object_type == "USER LEVEL LOCK" and m.object == name),
            None,
        )
    if holder is None or holder == session.id:
        return []
    return [Edge(session.id, holder, "user", name, None, None, "lock_table", _wait_of(session))]


def _is_ddl(session: Session) -> bool:
    return bool(_DDL.match(session.info or ""))


def _mdl_object(session: Session, mdl: Sequence[MdlLock]) -> tuple[str | None, str | None]:
    """(object, the waiter's own granted strong mode on it) for a MariaDB metadata-lock waiter."""
    own = [m for m in mdl if m.session == session.id and m.granted and m.object_type == "TABLE"]
    strong = [m for m in own if m.mode in STRONG_MODES]
    if strong:
        return strong[0].object, strong[0].mode
    return statement_object(session.info, session.db), None


def _mdl_edges_granted(
    session: Session, kind: str, mdl: Sequence[MdlLock], waiters: Sequence[tuple[Session, str]]
) -> list[Edge]:
    """MariaDB (granted locks only): the waiter's object is derived; who blocks it follows from the modes."""
    target, own_mode = _mdl_object(session, mdl)
    if target is None:
        return []
    holders = [
        m for m in mdl if m.granted and m.object == target and m.object_type == "TABLE" and m.session != session.id
    ]
    wait = _wait_of(session)
    exclusive = own_mode is not None or _is_ddl(session)
    if exclusive:
        return [
            Edge(session.id, h.session, _kind_for(h.mode, kind), target, "MDL_EXCLUSIVE", h.mode, "derived", wait)
            for h in holders
        ]
    edges = [
        Edge(session.id, other.id, "metadata", target, "MDL_SHARED", "MDL_EXCLUSIVE (pending)", "derived", wait)
        for other, other_kind in waiters
        if other.id != session.id
        and other_kind == "metadata"
        and _queued_exclusive(other, target, mdl)
        and (other.elapsed_seconds or 0.0) >= (wait or 0.0)
    ]
    writes = bool(_WRITE.match(session.info or ""))
    edges += [
        Edge(session.id, h.session, _kind_for(h.mode, kind), target, "MDL_SHARED", h.mode, "derived", wait)
        for h in holders
        if h.mode in BLOCKING_MODES or (writes and h.mode in WRITE_BLOCKING_MODES)
    ]
    return edges


def _queued_exclusive(session: Session, target: str, mdl: Sequence[MdlLock]) -> bool:
    """True when ``session`` is a pending exclusive request on ``target`` (a DDL waiting for it)."""
    found, own_mode = _mdl_object(session, mdl)
    return found == target and (own_mode is not None or _is_ddl(session))


def _kind_for(holder_mode: str | None, kind: str) -> str:
    return "table" if holder_mode in TABLE_LOCK_MODES else kind


def _mdl_edges_pending(session: Session, kind: str, mdl: Sequence[MdlLock]) -> list[Edge]:
    """MySQL (pending and granted locks): both sides are in the lock table."""
    pending = [m for m in mdl if m.session == session.id and not m.granted]
    edges = []
    wait = _wait_of(session)
    for request in pending:
        holders = [
            m
            for m in mdl
            if m.object == request.object and m.object_type == request.object_type and m.session != session.id
        ]
        strong = request.mode in STRONG_MODES
        for holder in holders:
            if holder.granted and (strong or holder.mode in BLOCKING_MODES or holder.mode in WRITE_BLOCKING_MODES):
                blocks = True
            elif not holder.granted:
                blocks = not strong and holder.mode in STRONG_MODES
            else:
                blocks = False
            if blocks:
                holder_mode = holder.mode if holder.granted else f"{holder.mode} (pending)"
                edge_kind = "user" if request.object_type == "USER LEVEL LOCK" else _kind_for(holder.mode, kind)
                edges.append(
                    Edge(
                        session.id,
                        holder.session,
                        edge_kind,
                        request.object,
                        request.mode,
                        holder_mode,
                        "lock_table",
                        wait,
                    )
                )
    return edges


def _queue_edges(session: Session, kind: str, waiters: Sequence[tuple[Session, str]]) -> list[Edge]:
    """Without a lock source: a statement waiting behind a DDL that waits on the same table (both named by
    their statements) is queued behind it."""
    if kind != "metadata" or _is_ddl(session):
        return []
    target = statement_object(session.info, session.db)
    if target is None:
        return []
    wait = _wait_of(session) or 0.0
    return [
        Edge(session.id, other.id, "metadata", target, "MDL_SHARED", "MDL_EXCLUSIVE (pending)", "derived", wait)
        for other, other_kind in waiters
        if other.id != session.id
        and other_kind == "metadata"
        and _is_ddl(other)
        and statement_object(other.info, other.db) == target
        and (other.elapsed_seconds or 0.0) >= wait
    ]


def _inferred_edges(session: Session, kind: str, sessions: Sequence[Session], inputs: LockInputs) -> list[Edge]:
    """The suspects: sessions whose open transaction began before this wait began, and sessions running a
    statement on the same table since before it; oldest first."""
    wait = _wait_of(session) or 0.0
    target = statement_object(session.info, session.db) if kind != "user" else user_lock_name(session.info)
    suspects = []
    for other in sessions:
        if other.id == session.id or waiting_kind(other) is not None:
            continue
        age = inputs.trx_age.get(other.id)
        if age is None:
            age = other.number("trx_age")
        running = other.elapsed_seconds if other.active else None
        same_table = kind != "user" and target is not None and statement_object(other.info, other.db) == target
        if age is not None and age + AGE_SLACK >= wait:
            suspects.append((age, other.id))
        elif same_table and running is not None and running + AGE_SLACK >= wait:
            suspects.append((running, other.id))
    suspects.sort(reverse=True)
    return [
        Edge(session.id, other_id, kind, target, None, None, "inferred", wait)
        for _, other_id in suspects[:MAX_INFERRED]
    ]


# --- blocking trees ----------------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class TreeNode:
    """A session in a blocking tree, the edge that put it under its parent, and the sessions waiting on it.

    Each waiter is placed once, under the first blocker met from the roots (breadth first); ``also`` names its
    other blockers, and ``shown_elsewhere`` marks a reference to a waiter placed under another root.
    """

    session: int
    edge: Edge | None
    children: tuple[TreeNode, ...]
    also: tuple[int, ...] = ()
    shown_elsewhere: bool = False

    def walk(self, depth: int = 0) -> Iterable[tuple[int, TreeNode]]:
        """(depth, node) for this node and every node below it, depth first (iteratively: a chain of waiters
        can be thousands deep)."""
        stack: list[tuple[int, TreeNode]] = [(depth, self)]
        while stack:
            level, node = stack.pop()
            yield level, node
            stack.extend((level + 1, child) for child in reversed(node.children))


def _under(edges: Iterable[Edge]) -> dict[int, list[int]]:
    """Blocker -> the sessions waiting on it."""
    under: dict[int, list[int]] = {}
    for edge in edges:
        under.setdefault(edge.blocker, []).append(edge.waiter)
    return under


def roots_of(edges: Sequence[Edge]) -> list[int]:
    """The root blockers: sessions that block others and wait for no one, then, for each cycle that waits on
    no one outside it (a deadlock), its lowest id. Every waiter traces to one of them."""
    ahead: dict[int, set[int]] = {}
    for edge in edges:
        ahead.setdefault(edge.waiter, set()).add(edge.blocker)
        ahead.setdefault(edge.blocker, set())
    roots = sorted(node for node, blockers in ahead.items() if not blockers)
    cycles = sorted(min(members) for members in _sink_cycles(ahead))
    return [*roots, *cycles]


def _sink_cycles(ahead: Mapping[int, set[int]]) -> list[list[int]]:
    """The strongly connected components of the waits-for graph that have edges but none leaving them (Tarjan's
    algorithm, iteratively: O(sessions + edges))."""
    index: dict[int, int] = {}
    low: dict[int, int] = {}
    component: dict[int, int] = {}
    stack: list[int] = []
    on_stack: set[int] = set()
    found: list[list[int]] = []
    for start in ahead:
        if start in index:
            continue
        work: list[tuple[int, Iterator[int]]] = [(start, iter(ahead[start]))]
        index[start] = low[start] = len(index)
        stack.append(start)
        on_stack.add(start)
        while work:
            node, successors = work[-1]
            advanced = False
            for nxt in successors:
                if nxt not in index:
                    index[nxt] = low[nxt] = len(index)
                    stack.append(nxt)
                    on_stack.add(nxt)
                    work.append((nxt, iter(ahead[nxt])))
                    advanced = True
                    break
                if nxt in on_stack:
                    low[node] = min(low[node], index[nxt])
            if advanced:
                continue
            work.pop()
            if work:
                parent = work[-1][0]
                low[parent] = min(low[parent], low[node])
            if low[node] == index[node]:
                members = []
                while True:
                    member = stack.pop()
                    on_stack.discard(member)
                    component[member] = len(found)
                    members.append(member)
                    if member == node:
                        break
                found.append(members)
    return _sinks(ahead, found, component)


def _sinks(ahead: Mapping[int, set[int]], found: list[list[int]], component: Mapping[int, int]) -> list[list[int]]:
    """The cycles among the components ``found`` that no edge leaves."""
    sinks = []
    for number, members in enumerate(found):
        leaves = any(component[b] != number for m in members for b in ahead[m])
        if not leaves and (len(members) > 1 or members[0] in ahead[members[0]]):
            sinks.append(members)
    return sinks


def _reachable_waiters(
    edges: Sequence[Edge], roots: Iterable[int], under: Mapping[int, list[int]] | None = None
) -> set[int]:
    if under is None:
        under = _under(edges)
    seen: set[int] = set()
    stack = list(roots)
    while stack:
        node = stack.pop()
        for waiter in under.get(node, []):
            if waiter not in seen:
                seen.add(waiter)
                stack.append(waiter)
    return seen


def blocking_trees(edges: Sequence[Edge], rank: Callable[[int], Any] | None = None) -> list[TreeNode]:
    """One tree per root blocker, each waiter under what it waits for, placed once (breadth first from the
    roots; its other blockers in ``also``). Roots with the most waiters first (then by ``rank``, then id)."""
    under: dict[int, list[Edge]] = {}
    blockers_of: dict[int, list[int]] = {}
    for edge in sorted(edges, key=lambda e: (e.blocker, e.waiter)):
        under.setdefault(edge.blocker, []).append(edge)
        blockers_of.setdefault(edge.waiter, []).append(edge.blocker)
    roots = roots_of(edges)
    waiting_under = {blocker: [e.waiter for e in found] for blocker, found in under.items()}
    reach = {root: len(_reachable_waiters(edges, [root], waiting_under)) for root in roots}
    roots.sort(key=lambda r: (-reach[r], rank(r) if rank is not None else 0, r))
    is_root = set(roots)
    placed: set[int] = set(roots)
    trees = []
    for root in roots:
        children: dict[int, list[tuple[Edge, bool]]] = {}
        queue = deque([root])
        while queue:
            node = queue.popleft()
            for edge in under.get(node, []):
                if edge.waiter in placed:
                    if node == root and edge.waiter not in is_root:
                        children.setdefault(node, []).append((edge, True))
                    continue
                placed.add(edge.waiter)
                children.setdefault(node, []).append((edge, False))
                queue.append(edge.waiter)
        trees.append(_build(root, children, blockers_of))
    return trees


def _build(
    root: int, children: Mapping[int, list[tuple[Edge, bool]]], blockers_of: Mapping[int, list[int]]
) -> TreeNode:
    """The tree below ``root`` (bottom up, iteratively: a chain of waiters can be thousands deep)."""
    order: list[tuple[int, Edge | None, bool]] = []
    stack: list[tuple[int, Edge | None, bool]] = [(root, None, False)]
    while stack:
        item = stack.pop()
        order.append(item)
        session, _, reference = item
        if not reference:
            stack.extend((e.waiter, e, ref) for e, ref in children.get(session, []))
    built: dict[tuple[int, int], TreeNode] = {}
    for session, edge, reference in reversed(order):
        parent = edge.blocker if edge is not None else None
        also = tuple(b for b in blockers_of.get(session, []) if b != parent)
        if reference:
            built[(session, id(edge))] = TreeNode(session, edge, (), also, shown_elsewhere=True)
            continue
        kids = tuple(built[(e.waiter, id(e))] for e, _ in children.get(session, []))
        built[(session, id(edge))] = TreeNode(session, edge, kids, also)
    return built[(root, id(None))]


def waiters_of(edges: Sequence[Edge], root: int) -> set[int]:
    """Every session waiting, directly or not, on ``root``."""
    return _reachable_waiters(edges, [root]) - {root}


# --- episodes ----------------------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class BlockerIdentity:
    """Who a root blocker is across samples: a reused session id with another transaction (or user, host)
    is someone else."""

    session: int
    user: str | None
    host: str | None
    trx_started: datetime | None

    def same(self, other: BlockerIdentity) -> bool:
        """True when ``other`` is this blocker seen again."""
        if (self.session, self.user, self.host) != (other.session, other.user, other.host):
            return False
        if self.trx_started is None or other.trx_started is None:
            return True
        return abs((self.trx_started - other.trx_started).total_seconds()) <= 2.0


@dataclass(slots=True, eq=False)
class Episode:
    """Consecutive samples in which one root blocker held others up. ``root`` is the blocker as first seen,
    ``current`` as last seen (a sighting continues the episode when it is the same blocker as the last one)."""

    root: BlockerIdentity
    first_seen: datetime
    last_seen: datetime
    previous_sample: datetime | None
    next_sample: datetime | None = None
    samples: int = 0
    waiter_ms: int = 0
    peak_waiters: int = 0
    waiters: set[int] = field(default_factory=set)
    kinds: set[str] = field(default_factory=set)
    objects: set[str] = field(default_factory=set)
    hows: set[str] = field(default_factory=set)
    crosses_gap: bool = False
    first_trx_age: float | None = None
    last_trx_age: float | None = None
    command: str | None = None
    idle: bool = False
    state: str | None = None
    info: str | None = None
    trx_state: str | None = None
    rows_locked: float | None = None
    longest_wait: float = 0.0
    root_seen: bool = False
    current: BlockerIdentity | None = None

    @property
    def waiter_seconds(self) -> float:
        """Waiters x seconds: each sample weighs the time to the next one, at most its interval."""
        return self.waiter_ms / 1000

    @property
    def min_seconds(self) -> float:
        """Seconds the episode certainly lasted: between its first and last sighting, or the longest wait seen."""
        return max((self.last_seen - self.first_seen).total_seconds(), self.longest_wait)

    @property
    def max_seconds(self) -> float | None:
        """Seconds it at most lasted: from the sample before its first sighting to the one after its last
        (None when either side is unknown)."""
        if self.previous_sample is None or self.next_sample is None:
            return None
        return (self.next_sample - self.previous_sample).total_seconds()

    def absorb(self, later: Episode) -> None:
        """Add the sightings of ``later`` (the same blocker, seen right after this episode's last sighting)."""
        self.samples += later.samples
        self.last_seen = later.last_seen
        self.next_sample = later.next_sample
        self.waiter_ms += later.waiter_ms
        self.peak_waiters = max(self.peak_waiters, later.peak_waiters)
        self.waiters |= later.waiters
        self.kinds |= later.kinds
        self.objects |= later.objects
        self.hows |= later.hows
        self.crosses_gap = self.crosses_gap or later.crosses_gap
        self.longest_wait = max(self.longest_wait, later.longest_wait)
        if self.first_trx_age is None:
            self.first_trx_age = later.first_trx_age
        if later.root_seen:
            self.root_seen = True
            self.last_trx_age, self.command, self.idle = later.last_trx_age, later.command, later.idle
            self.state, self.info, self.rows_locked = later.state, later.info, later.rows_locked
        if later.trx_state is not None:
            self.trx_state = later.trx_state
        self.current = later.current


def episode_order(episode: Episode) -> tuple[int, datetime, int]:
    """Highest impact first (waiter-seconds), then first seen, then root session id."""
    return (-episode.waiter_ms, episode.first_seen, episode.root.session)


def episodes(snapshots: Iterable[Snapshot], *, interval: float | None = None) -> list[Episode]:
    """Lock-wait episodes of samples in ``ts`` order, highest impact (waiter-seconds) first.

    A root blocker seen in consecutive samples is one episode; a gap or a hole between two of its sightings
    keeps the episode going but marks it ``crosses_gap``. Each sample weighs its own interval (``interval``
    when the sample has none).
    """
    tracker = EpisodeTracker(interval=interval)
    for snapshot in snapshots:
        tracker.feed(snapshot)
    return tracker.finish()


Pending = tuple[datetime, int, list[tuple[Episode, int]]]


@dataclass(slots=True)
class EpisodePart:
    """The lock-wait episodes of one span of samples, in a form that joins with the next span's
    (:func:`merge_episodes`).

    ``heads``: episodes that began in the span's first good sample (the previous span may continue them);
    ``open``: those seen in its last good sample; ``done``: the others, in the order they ended; ``pending``: the
    last good sample's waiters, whose weight depends on when the next sample comes. ``leading_gap`` and
    ``trailing_gap``: a gap line before the first good sample, after the last one.
    """

    first_ts: datetime | None = None
    last_ts: datetime | None = None
    last_interval: float | None = None
    heads: list[Episode] = field(default_factory=list)
    open: list[Episode] = field(default_factory=list)
    done: list[Episode] = field(default_factory=list)
    pending: Pending | None = None
    leading_gap: bool = False
    trailing_gap: bool = False

    def finish(self) -> list[Episode]:
        """Every episode, highest impact first, the last sample weighing its full interval."""
        settled = _settle_copy(self, None)
        found = [*settled.done, *settled.open]
        found.sort(key=episode_order)
        return found


class EpisodeTracker:
    """Builds episodes incrementally: :meth:`feed` samples in ``ts`` order, then :meth:`finish` (or
    :meth:`part`, to join with other spans).

    A sample weighs the time up to the next sample, capped at its own interval, so waiter-seconds are neither
    counted twice nor lost across a burst of denser samples.
    """

    def __init__(self, *, interval: float | None = None) -> None:
        self.interval = interval
        self.state = EpisodePart()

    def feed(self, snapshot: Snapshot) -> None:
        """Add one sample or gap line (markers are ignored)."""
        if snapshot.is_marker:
            return
        state = self.state
        if snapshot.is_gap:
            if state.first_ts is None:
                state.leading_gap = True
            state.trailing_gap = True
            return
        first = state.first_ts is None
        _settle(state, snapshot.ts)
        if state.last_ts is not None and _hole_between(state.last_ts, state.last_interval, snapshot.ts, self.interval):
            state.trailing_gap = True
        edges = edges_of(snapshot)
        if edges or state.open:
            self._fold(snapshot, edges, first=first)
        if first:
            state.first_ts = snapshot.ts
        state.last_ts, state.last_interval = snapshot.ts, snapshot.interval_s
        state.trailing_gap = False

    def _fold(self, snapshot: Snapshot, edges: Sequence[Edge], *, first: bool) -> None:
        state = self.state
        by_id = {s.id: s for s in snapshot.sessions or ()}
        seen_now: list[Episode] = []
        weights: list[tuple[Episode, int]] = []
        index = _EdgeIndex(edges)
        open_now = _OpenEpisodes(state.open)
        counted: set[int] = set()
        for tree in blocking_trees(edges):
            identity = _identity(tree.session, by_id.get(tree.session), snapshot.ts)
            episode = open_now.find(identity)
            if episode is None:
                episode = Episode(identity, snapshot.ts, snapshot.ts, state.last_ts, current=identity)
                if first:
                    state.heads.append(episode)
            elif state.trailing_gap:
                episode.crosses_gap = True
            already = id(episode) in counted
            waiting = _merge_tree(episode, tree, index, by_id, snapshot, counted=not already)
            episode.current = identity
            if not already:
                counted.add(id(episode))
                seen_now.append(episode)
                weights.append((episode, waiting))
        for episode in state.open:
            if id(episode) not in counted:
                episode.next_sample = snapshot.ts
                state.done.append(episode)
        state.open = seen_now
        state.pending = (snapshot.ts, _weight(snapshot, self.interval), weights)

    def part(self) -> EpisodePart:
        """The state so far, to join with other spans (do not feed the tracker afterwards)."""
        return self.state

    def finish(self) -> list[Episode]:
        """Every episode, highest impact first."""
        return self.state.finish()


class _OpenEpisodes:
    """Open episodes by their blocker's session id, in their order (finding one is not a scan of them all:
    a sample can hold thousands of root blockers)."""

    __slots__ = ("by_session",)

    def __init__(self, episodes: Iterable[Episode]) -> None:
        self.by_session: dict[int, list[Episode]] = {}
        for episode in episodes:
            self.by_session.setdefault((episode.current or episode.root).session, []).append(episode)

    def find(self, identity: BlockerIdentity) -> Episode | None:
        """The first open episode whose blocker ``identity`` is."""
        found = self.by_session.get(identity.session, ())
        return next((e for e in found if (e.current or e.root).same(identity)), None)

    def remove(self, episode: Episode) -> None:
        """Take ``episode`` out (it was continued)."""
        self.by_session[(episode.current or episode.root).session].remove(episode)


def _settle(state: EpisodePart, next_ts: datetime | None) -> None:
    """Weigh the last sample's waiters by the time to ``next_ts`` (at most its interval; all of it for None)."""
    if state.pending is None:
        return
    ts, weight, weights = state.pending
    state.pending = None
    if next_ts is not None:
        weight = min(weight, max(0, _ms(next_ts) - _ms(ts)))
    for episode, waiting in weights:
        episode.waiter_ms += weight * waiting


def _settle_copy(part: EpisodePart, next_ts: datetime | None) -> EpisodePart:
    """``part`` with its pending weights settled, on copies of the episodes they touch."""
    copies = {id(e): _copy(e) for e in part.open}
    owned = _remap(part, copies)
    _settle(owned, next_ts)
    return owned


def _copy(episode: Episode) -> Episode:
    return replace(
        episode, waiters=set(episode.waiters), kinds=set(episode.kinds), objects=set(episode.objects),
        hows=set(episode.hows),
    )  # fmt: skip


def _remap(part: EpisodePart, copies: Mapping[int, Episode]) -> EpisodePart:
    """``part`` with the episodes in ``copies`` (by the original's id) replaced by their copies."""

    def mapped(episode: Episode) -> Episode:
        return copies.get(id(episode), episode)

    pending = None
    if part.pending is not None:
        ts, weight, weights = part.pending
        pending = (ts, weight, [(mapped(e), n) for e, n in weights])
    return replace(
        part,
        heads=[mapped(e) for e in part.heads],
        open=[mapped(e) for e in part.open],
        done=[mapped(e) for e in part.done],
        pending=pending,
    )


def merge_episodes(left: EpisodePart, right: EpisodePart, *, interval: float | None = None) -> EpisodePart:
    """The episodes of two adjacent spans (``left`` before ``right``), as if tracked in one pass. Neither input
    is modified."""
    if left.first_ts is None:
        gap = left.leading_gap or left.trailing_gap
        if right.first_ts is None:
            return replace(right, leading_gap=gap or right.leading_gap, trailing_gap=gap or right.trailing_gap)
        return replace(right, leading_gap=gap or right.leading_gap)
    if right.first_ts is None:
        return replace(left, trailing_gap=left.trailing_gap or right.leading_gap or right.trailing_gap)
    mine = _remap(left, {id(e): _copy(e) for e in left.open})
    assert left.last_ts is not None
    _settle(mine, right.first_ts)
    gap = mine.trailing_gap or right.leading_gap
    gap = gap or _hole_between(left.last_ts, left.last_interval, right.first_ts, interval)
    theirs = _remap(right, {id(e): _copy(e) for e in right.heads})
    waiting = _OpenEpisodes(mine.open)
    continued: dict[int, Episode] = {}
    joined: set[int] = set()
    for head in theirs.heads:
        episode = waiting.find(head.root)
        if episode is None:
            head.previous_sample = left.last_ts
            continue
        if gap:
            episode.crosses_gap = True
        waiting.remove(episode)
        episode.absorb(head)
        continued[id(head)] = episode
        joined.add(id(episode))
    ended = []
    for episode in mine.open:
        if id(episode) not in joined:
            episode.next_sample = right.first_ts
            ended.append(episode)
    theirs = _remap(theirs, continued)
    return EpisodePart(
        first_ts=left.first_ts,
        last_ts=right.last_ts,
        last_interval=right.last_interval,
        heads=mine.heads,
        open=theirs.open,
        done=[*mine.done, *ended, *theirs.done],
        pending=theirs.pending,
        leading_gap=left.leading_gap,
        trailing_gap=right.trailing_gap,
    )


def _hole_between(before: datetime, before_interval: float | None, after: datetime, interval: float | None) -> bool:
    step = before_interval or interval
    return bool(step) and (after - before).total_seconds() > 1.5 * (step or 0.0)


def _weight(snapshot: Snapshot, interval: float | None) -> int:
    """A sample's full weight in milliseconds: its own interval (``interval`` when it has none)."""
    return round((snapshot.interval_s or interval or 0.0) * 1000)


def _ms(moment: datetime) -> int:
    return (moment - _EPOCH) // _MILLISECOND


def _identity(session_id: int, session: Session | None, ts: datetime) -> BlockerIdentity:
    if session is None:
        return BlockerIdentity(session_id, None, None, None)
    age = session.number("trx_age")
    started = ts - timedelta(seconds=age) if age is not None else None
    return BlockerIdentity(session_id, session.user, session.host, started)


class _EdgeIndex:
    """One sample's edges by blocker (the waiters under it) and by waiter, built once for all its trees."""

    __slots__ = ("by_waiter", "under")

    def __init__(self, edges: Iterable[Edge]) -> None:
        self.under: dict[int, list[int]] = {}
        self.by_waiter: dict[int, list[Edge]] = {}
        for edge in edges:
            self.under.setdefault(edge.blocker, []).append(edge.waiter)
            self.by_waiter.setdefault(edge.waiter, []).append(edge)


def _merge_tree(
    episode: Episode,
    tree: TreeNode,
    index: _EdgeIndex,
    by_id: Mapping[int, Session],
    snapshot: Snapshot,
    *,
    counted: bool,
) -> int:
    """Fold one sample's tree into its episode; returns how many sessions wait on the root."""
    waiting = _reachable_waiters((), [tree.session], index.under) - {tree.session}
    if counted:
        episode.samples += 1
    episode.last_seen = snapshot.ts
    episode.waiters |= waiting
    episode.peak_waiters = max(episode.peak_waiters, len(waiting))
    involved = waiting | {tree.session}
    for edge in (e for member in involved for e in index.by_waiter.get(member, ())):
        if edge.blocker in involved:
            episode.kinds.add(edge.kind)
            episode.hows.add(edge.how)
            if edge.object:
                episode.objects.add(edge.object)
            episode.longest_wait = max(episode.longest_wait, edge.wait_s or 0.0)
    root = by_id.get(tree.session)
    if root is not None:
        episode.root_seen = True
        age = root.number("trx_age")
        if episode.first_trx_age is None:
            episode.first_trx_age = age
        episode.last_trx_age = age
        episode.command = root.command
        episode.idle = not root.active
        episode.state = root.state
        episode.info = root.info
        trx_state = root.record.get("trx_state")
        episode.trx_state = trx_state if isinstance(trx_state, str) else episode.trx_state
        episode.rows_locked = root.number("trx_rows_locked")
    return len(waiting)
