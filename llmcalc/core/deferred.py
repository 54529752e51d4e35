"""An array of a result's data built when it is first read.

A planner's sweep evaluates 10⁵-10⁶ layouts at once and reads a few of its results' figures; an element-wise
label array it never reads (training memory's worst stage per layout: a '<U6' array of 17 MB for GPT-3 over
three GPU counts, ~20 ms of the planner's first memory call, most of it fresh pages) is better built on demand
(issue #13, one-liners <= 0.3 s). The deferred array stands for the numpy array ``make()`` returns: indexing,
comparison, iteration, ``len``, ``np.asarray`` and every ndarray attribute (``shape``, ``tolist``, ...) give what
that array gives. ``make`` runs once, on the first such use.
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np


class DeferredArray:
    """The numpy array ``make()`` returns, built on first use (see the module docstring)."""

    __slots__ = ("_make", "_value")
    __hash__ = None  # as an ndarray: unhashable

    def __init__(self, make: Callable[[], np.ndarray]):
        self._make, self._value = make, None

    def value(self) -> np.ndarray:
        """The array itself (built now if it was not yet)."""
        if self._value is None:
            self._value = np.asarray(self._make())
            self._make = None  # what it read can go
        return self._value

    def __array__(self, dtype=None, copy=None):
        v = self.value()
        if dtype is not None and v.dtype != dtype:
            return v.astype(dtype)
        return v.copy() if copy else v

    def __reduce__(self):  # pickle and copy: the array itself
        return (np.asarray, (self.value(),))

    def __getattr__(self, name):  # shape, ndim, dtype, tolist, ...: the array's own
        if name.startswith("__"):  # numpy's other array protocols (__array_interface__, ...): __array__ serves
            raise AttributeError(name)
        return getattr(self.value(), name)

    def __getitem__(self, key):
        return self.value()[key]

    def __len__(self) -> int:
        return len(self.value())

    def __iter__(self):
        return iter(self.value())

    def __eq__(self, other):
        return self.value() == other

    def __ne__(self, other):
        return self.value() != other

    def __repr__(self) -> str:
        return repr(self.value())

    def __str__(self) -> str:
        return str(self.value())
