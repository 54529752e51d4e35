"""Per-process caches keyed by the identity of the objects a result was computed from.

Specs (a Model, a Hardware) are frozen, so what was computed from one object holds as long as the object lives,
and its ``id()`` is an exact key provided no other object can take that id while the entry lives: each entry
keeps the objects themselves. A cache is bounded and starts afresh when full. Results are shared: callers only
read them (issue #13: a planner asks 10³-10⁵ times for the same counts, ledgers and collective times).
"""

from __future__ import annotations


class HeldCache:
    """Values by (the identities of ``held`` objects, a hashable ``key``)."""

    __slots__ = ("_entries", "limit")

    def __init__(self, limit: int):
        self._entries: dict = {}
        self.limit = limit

    def get(self, held: tuple, key):
        """The value kept for these objects and this key, else None (a None value is never kept)."""
        hit = self._entries.get((*map(id, held), key))
        if hit is not None and all(a is b for a, b in zip(hit[0], held, strict=True)):
            return hit[1]
        return None

    def put(self, held: tuple, key, value):
        """Keep ``value`` (returned) for these objects and this key."""
        if len(self._entries) >= self.limit:
            self._entries.clear()
        self._entries[(*map(id, held), key)] = (held, value)
        return value

    def clear(self) -> None:
        self._entries.clear()

    def __len__(self) -> int:
        return len(self._entries)
