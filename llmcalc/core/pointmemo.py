"""A per-process table of a function that is elementwise in one array argument: each distinct point computed once.

The serving planner asks for the same decode forward FLOPs over batch grids
that overlap from one replica to the next: 1 … 4096 in flight, the same divided by the pipeline depth, rounded up
per attention group, … (issue #13: plan-serve under 0.3 s). :class:`PointTable` keeps ``f``'s values at every
point asked so far and calls ``f`` only on the points it has not seen, in one vectorised call.

Why the numbers cannot change: ``f`` must be elementwise, each output element computed from the input element
at the same position by the same IEEE-754 operations whatever else the array holds (+, −, ×, ÷, min, max, ceil,
comparisons and selections: each correctly rounded per element, no reduction over the array). Then
``f(x)[j] == f(y)[i]`` bit for bit whenever ``x[j] == y[i]``, and a value read from the table is the value a
direct call would give. Only finite positive points are tabled (no −0.0/+0.0 or NaN ambiguity in the lookup).
"""

from __future__ import annotations

import numpy as np


def distinct(x) -> np.ndarray:
    """``np.unique(x)``, sorted distinct values, without numpy.ma: numpy 2's plain ``np.unique`` asks
    ``np.ma.is_masked`` and so imports numpy.ma (~10 ms of a one-liner's start-up, issue #13); asking for the
    indices too takes the path that does not."""
    return np.unique(x, return_index=True)[0]


MAX_POINTS = 1 << 17  # one table's points before it starts afresh (1 MB of inputs + 1 MB of values)


class PointTable:
    """``f``'s values at the distinct points asked so far, for ONE setting of ``f``'s other inputs."""

    __slots__ = ("x", "y")

    def __init__(self):
        self.x = np.empty(0)  # sorted distinct points
        self.y = np.empty(0)  # f at each of them

    def __call__(self, f, points) -> np.ndarray:
        """``f(points)`` (an array of points' shape), calling ``f`` on the points not in the table only; ``f``
        receives a sorted 1-D float64 array of distinct points and returns an array of the same shape."""
        p = np.asarray(points, dtype=float)
        flat = p.ravel()
        pos = np.searchsorted(self.x, flat)
        if self.x.size:
            hit = self.x[np.minimum(pos, self.x.size - 1)] == flat
        else:
            hit = np.zeros(flat.shape, dtype=bool)
        if not hit.all():
            if self.x.size + int(np.count_nonzero(~hit)) > MAX_POINTS:  # start afresh: every point of this call new
                self.x, self.y = np.empty(0), np.empty(0)
                hit = np.zeros(flat.shape, dtype=bool)
            new = np.sort(flat[~hit])  # distinct, sorted (np.unique's hash path would import numpy.ma: ~7 ms)
            new = new[np.concatenate(([True], new[1:] != new[:-1]))]
            y_new = np.asarray(f(new), dtype=float)
            if y_new.shape != new.shape:
                raise ValueError(f"PointTable: f returned shape {y_new.shape} for {new.shape} points")
            x = np.concatenate((self.x, new))
            order = np.argsort(x, kind="stable")
            self.x, self.y = x[order], np.concatenate((self.y, y_new))[order]
            pos = np.searchsorted(self.x, flat)
        return self.y[pos].reshape(p.shape)


def tableable(points) -> bool:
    """Points a table may answer: a float or integer array (not 0-d) of finite values > 0."""
    a = np.asarray(points)
    return a.ndim > 0 and a.size > 0 and a.dtype.kind in "iuf" and bool(np.all(np.isfinite(a) & (a > 0)))
