"""Statement texts by reference: what a rollup stores instead of a statement's text.

A statement text is most of a rollup's bytes, and a summary shows only a few of them (the examples of its top
groups, the texts of its longest executions). A rollup therefore stores, for each text, where it is in the raw
rows (the ``ts`` of the line and the session id) and a digest of it; a :class:`TextRef` stands for the text
until the reader fetches the few it shows (:func:`plsnap.query.resolve_texts`). Texts are compared by digest, so
an execution read from a rollup continues one stitched from raw rows exactly as in one pass.
"""

from __future__ import annotations

import functools
from datetime import datetime

try:  # CPython's own BLAKE2, which hashlib re-exports: importing hashlib also loads OpenSSL (~2-3 ms of `at`)
    from _blake2 import blake2b
except ImportError:  # pragma: no cover - an interpreter built without it
    from hashlib import blake2b


def digest(text: str) -> str:
    """A 40-bit digest of a statement text (hex): texts are only ever compared for one session id in one line,
    or between sightings of one session within a second of the same start, where it cannot collide."""
    return blake2b(text.encode("utf-8", "surrogatepass"), digest_size=5).hexdigest()


class TextRef(str):
    """A statement text not read yet: a running session ``sid`` in the line with ``ts`` has it, the first one
    whose text has the digest ``key`` (an execution's text) or, for a group's example, the first one whose
    ``group`` (dimension, value) it belongs to. As a string it is a placeholder no statement text can be, equal
    for references to the same text (or to a group's example)."""

    __slots__ = ("group", "key", "sid", "ts")
    key: str | None
    sid: int
    ts: datetime
    group: tuple[str, str] | None

    def __new__(cls, key: str | None, ts: datetime, sid: int, group: tuple[str, str] | None = None) -> TextRef:
        token = "\x00t" + key if key is not None else "\x00e" + "\x00".join(group or ("", ""))
        ref = super().__new__(cls, token)
        ref.key, ref.ts, ref.sid, ref.group = key, ts, sid, group
        return ref


@functools.lru_cache(maxsize=65536)
def _cached_digest(text: str) -> str:
    return digest(text)


def text_key(text: str | None) -> str | None:
    """What texts are compared by: the digest (of the text, or the one a reference carries)."""
    if text is None:
        return None
    if isinstance(text, TextRef):
        return text.key or str(text)
    return _cached_digest(text)
