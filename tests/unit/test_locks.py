"""Lock-wait edges, blocking trees and episodes, on synthetic samples with known truth."""

from __future__ import annotations

from dataclasses import replace

from plsnap.locks import (
    Edge,
    LockInputs,
    MdlLock,
    RowWait,
    blocking_trees,
    derive_edges,
    episodes,
    roots_of,
    statement_object,
    user_lock_name,
)
from plsnap.render import lock_tree_lines
from tests.synth import at, gap, idle, session, snap

ALTER = "ALTER TABLE t ADD COLUMN c INT"
WAIT = "Waiting for table metadata lock"


def waiting(sid: int, info: str, seconds: int, state: str = WAIT):
    """A session waiting for a lock for ``seconds``."""
    return session(sid, info, time=seconds, state=state, db="d")


def test_mariadb_pileup_from_granted_locks_only() -> None:
    """MariaDB's METADATA_LOCK_INFO lists granted locks only (as NOTES.md shows): the ALTER, holding
    SHARED_UPGRADABLE, waits on the idle reader; the SELECT, holding nothing, is queued behind the ALTER.
    Both edges are derived, and the tree has three levels with the idle holder at its root."""
    sessions = [
        idle(114, time=30, trx_age=30, trx_state="RUNNING", db="d"),
        waiting(115, ALTER, 20),
        waiting(116, "SELECT * FROM d.t", 5),
    ]
    mdl = [
        MdlLock(114, "MDL_SHARED_READ", "d.t"),
        MdlLock(115, "MDL_SHARED_UPGRADABLE", "d.t"),
        MdlLock(115, "MDL_BACKUP_ALTER_COPY", "", "Backup lock"),
        MdlLock(115, "MDL_INTENTION_EXCLUSIVE", "d", "SCHEMA"),
    ]
    edges = derive_edges(sessions, LockInputs(mdl=mdl, mdl_pending=False))
    assert sorted((e.waiter, e.blocker, e.how, e.object) for e in edges) == [
        (115, 114, "derived", "d.t"),
        (116, 115, "derived", "d.t"),
    ]
    (tree,) = blocking_trees(edges)
    assert [(depth, node.session) for depth, node in tree.walk()] == [(0, 114), (1, 115), (2, 116)]


def test_lock_tables_holder_is_a_table_lock() -> None:
    """A session holding LOCK TABLES ... WRITE blocks a reader: the edge is of kind table."""
    sessions = [idle(1, time=9, db="d"), waiting(2, "SELECT * FROM t", 4)]
    edges = derive_edges(sessions, LockInputs(mdl=[MdlLock(1, "MDL_SHARED_NO_READ_WRITE", "d.t")]))
    assert [(e.waiter, e.blocker, e.kind) for e in edges] == [(2, 1, "table")]


def test_row_lock_chain_three_deep() -> None:
    """InnoDB lock waits A <- B <- C make one tree rooted at A."""
    sessions = [idle(1, trx_age=50, trx_state="RUNNING"), session(2, "UPDATE t SET n=1 WHERE id=1"),
                session(3, "UPDATE t SET n=1 WHERE id=2")]  # fmt: skip
    inputs = LockInputs(row_waits=[RowWait(2, 1, "d.t", "X", "X", 10.0), RowWait(3, 2, "d.t", "X", "X", 4.0)])
    edges = derive_edges(sessions, inputs)
    assert roots_of(edges) == [1]
    (tree,) = blocking_trees(edges)
    assert [(d, n.session) for d, n in tree.walk()] == [(0, 1), (1, 2), (2, 3)]


def test_deadlock_cycle_still_has_a_root() -> None:
    """Two sessions waiting on each other (a deadlock about to be broken) form one tree, not none."""
    edges = [Edge(1, 2, "row"), Edge(2, 1, "row")]
    assert roots_of(edges) == [1]
    assert len(blocking_trees(edges)) == 1


def test_user_lock_and_statement_parsing() -> None:
    """GET_LOCK names and the first table of a statement are read as the server would."""
    assert user_lock_name("SELECT GET_LOCK('job''s', 10)") == "job's"
    assert user_lock_name('select get_lock("a\\"b", 1)') == 'a"b'
    assert statement_object("ALTER TABLE `shop`.`orders` ADD c INT", None) == "shop.orders"
    assert statement_object("UPDATE orders SET n = 1", "shop") == "shop.orders"
    assert statement_object("SELECT 1", "shop") is None


def test_inferred_suspects_are_older_transactions_only() -> None:
    """Without a lock source the suspects are sessions whose transaction began before the wait began."""
    sessions = [
        idle(1, trx_age=100, trx_state="RUNNING"),
        idle(2, trx_age=3, trx_state="RUNNING"),
        session(3, "SELECT 1"),
        waiting(4, ALTER, 30),
    ]
    edges = derive_edges(sessions, LockInputs())
    assert [(e.waiter, e.blocker, e.how) for e in edges] == [(4, 1, "inferred")]


def edge_snap(seconds: float, edges: list[Edge], *sessions, interval: float = 10.0):
    """A sample carrying ``edges``."""
    sample = snap(seconds, *sessions, interval=interval)
    return replace(sample, extra={"locks": [e.to_record() for e in edges]})


def holder(sid: int, began: float, now: float):
    """An idle session whose transaction began at ``T0 + began``, as seen at ``T0 + now``."""
    return idle(sid, time=int(now - began), trx_age=int(now - began), trx_state="RUNNING")


def test_episode_collapses_consecutive_samples_and_measures_impact() -> None:
    """The same root blocker in consecutive samples is one episode: first/last seen, peak and total waiters,
    waiter-seconds (each sample weighs its interval) and bounds on its duration."""
    samples = [
        snap(0, holder(1, -60, 0)),
        edge_snap(10, [Edge(2, 1, "row", "d.t", wait_s=5)], holder(1, -60, 10)),
        edge_snap(20, [Edge(2, 1, "row", "d.t", wait_s=15), Edge(3, 2, "row", "d.t", wait_s=2)], holder(1, -60, 20)),
        edge_snap(30, [Edge(3, 1, "row", "d.t", wait_s=12)], holder(1, -60, 30)),
        snap(40, holder(1, -60, 40)),
    ]
    (episode,) = episodes(samples)
    assert (episode.first_seen, episode.last_seen) == (at(10), at(30))
    assert episode.peak_waiters == 2 and episode.waiters == {2, 3}
    assert episode.waiter_seconds == 10 * (1 + 2 + 1)
    assert episode.min_seconds == 20.0 and episode.max_seconds == 40.0
    assert episode.kinds == {"row"} and episode.objects == {"d.t"} and not episode.crosses_gap
    assert episode.idle and (episode.first_trx_age, episode.last_trx_age) == (70, 90)


def test_blocker_that_changes_is_two_episodes() -> None:
    """When the root changes, the first episode ends and a second one begins; the waiter moves between them."""
    samples = [
        edge_snap(t, [Edge(9, 1 if t < 20 else 2, "row")], holder(1, -50, t), holder(2, -50, t)) for t in (0, 10, 20)
    ]
    found = episodes(samples)
    assert sorted((e.root.session, e.first_seen, e.last_seen) for e in found) == [
        (1, at(0), at(10)),
        (2, at(20), at(20)),
    ]
    assert found[0].root.session == 1, "sorted by impact"


def test_episode_across_a_gap_says_so() -> None:
    """A failed sample (or a hole) between two sightings of the same root keeps one episode, marked."""
    samples = [edge_snap(0, [Edge(2, 1, "row")], holder(1, -50, 0)), gap(10),
               edge_snap(20, [Edge(2, 1, "row")], holder(1, -50, 20)),
               edge_snap(90, [Edge(2, 1, "row")], holder(1, -50, 90))]  # fmt: skip
    (episode,) = episodes(samples)
    assert episode.crosses_gap
    assert (episode.first_seen, episode.last_seen) == (at(0), at(90))


def test_reused_session_id_is_a_new_blocker() -> None:
    """The same id with another transaction start is another blocker: two episodes, not one."""
    first = idle(7, trx_age=100, trx_state="RUNNING")
    second = idle(7, trx_age=5, trx_state="RUNNING")
    samples = [edge_snap(0, [Edge(2, 7, "row")], first), edge_snap(10, [Edge(3, 7, "row")], second)]
    assert len(episodes(samples)) == 2


def test_invalid_edges_are_ignored() -> None:
    """Edges with a bad id, kind or how never reach a tree."""
    assert Edge.from_record({"waiter": 1, "blocker": 1, "kind": "row", "how": "lock_table"}) is None
    assert Edge.from_record({"waiter": 1, "blocker": 2, "kind": "psychic", "how": "lock_table"}) is None
    assert Edge.from_record({"waiter": 1.5, "blocker": 2, "kind": "row", "how": "lock_table"}) is None
    assert Edge.from_record({"waiter": 1, "blocker": 2, "kind": "row", "how": "derived", "wait_s": -1}) == Edge(
        1, 2, "row", how="derived"
    )


def test_waiter_behind_a_deadlock_is_never_a_root() -> None:
    """A session waiting on a cycle (whose ids are higher than its own) traces to the cycle's root: it is not a
    root blocker itself, and it makes no episode of its own."""
    edges = [Edge(1000, 1001, "row"), Edge(1001, 1000, "row"), Edge(5, 1000, "row")]
    assert roots_of(edges) == [1000]
    (tree,) = blocking_trees(edges)
    assert sorted(node.session for _, node in tree.walk()) == [5, 1000, 1001]
    assert [(e.root.session, e.peak_waiters) for e in episodes([edge_snap(0, edges)])] == [(1000, 2)]


def test_cycle_that_waits_on_a_real_root_is_under_it() -> None:
    """A cycle that itself waits on a session outside it is not a root: that session is."""
    edges = [Edge(2, 3, "row"), Edge(3, 2, "row"), Edge(3, 1, "row")]
    assert roots_of(edges) == [1]


def test_chain_thousands_deep_renders_and_folds() -> None:
    """A chain of 5,000 waiters (a hostile archive) is one tree, walked, rendered and folded into one episode
    without running out of stack; deep levels are not indented without bound."""
    edges = [Edge(n + 1, n, "row", "d.t") for n in range(1, 5001)]
    (tree,) = blocking_trees(edges)
    assert [node.session for _, node in tree.walk()] == list(range(1, 5002))
    lines = lock_tree_lines(edges, None)
    assert len(lines) == 5002 and max(map(len, lines)) < 200
    (episode,) = episodes([edge_snap(0, edges)])
    assert episode.peak_waiters == 5000


def test_many_root_blockers_each_make_an_episode() -> None:
    """2,000 independent pairs in consecutive samples are 2,000 episodes, each continued, not restarted."""
    edges = [Edge(2 * n + 1, 2 * n, "row") for n in range(1, 2001)]
    found = episodes([edge_snap(t, edges, *(holder(2 * n, -50, t) for n in range(1, 2001))) for t in (0, 10)])
    assert len(found) == 2000 and {e.samples for e in found} == {2}
