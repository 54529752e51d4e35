"""llmcalc.core.deferred.DeferredArray: built on first use, and then the numpy array it stands for (issue #13: a
planner's sweep never reads training memory's per-layout worst-stage names)."""

from __future__ import annotations

import copy
import json
import pickle

import numpy as np

from llmcalc.core.deferred import DeferredArray
from llmcalc.core.results import _jsonable


def _names():
    calls = []

    def make():
        calls.append(1)
        return np.array([["first", "last"], ["middle", "first"]])

    return DeferredArray(make), calls


def test_built_once_on_first_use_only():
    d, calls = _names()
    assert calls == []
    assert d.shape == (2, 2) and d.ndim == 2 and d.dtype.kind == "U"
    assert d[0, 1] == "last" and d[1, 0] == "middle"
    assert calls == [1]


def test_behaves_as_the_array():
    d, _ = _names()
    ref = np.array([["first", "last"], ["middle", "first"]])
    assert np.array_equal(np.asarray(d), ref)
    assert np.array_equal(d == "first", ref == "first") and np.array_equal(d != "last", ref != "last")
    assert set(np.unique(d)) == {"first", "last", "middle"}
    assert len(d) == 2 and [list(r) for r in d] == ref.tolist()
    assert d.tolist() == ref.tolist() and json.loads(json.dumps(_jsonable(d))) == ref.tolist()
    assert repr(d) == repr(ref) and str(d) == str(ref)
    assert np.asarray(d, dtype=object).dtype == object
    c = np.array(d, copy=True)
    c[0, 0] = "x"
    assert d[0, 0] == "first"  # a requested copy is a copy


def test_pickles_and_copies_as_the_array():
    d, _ = _names()
    for other in (pickle.loads(pickle.dumps(d)), copy.deepcopy(d), copy.copy(d)):
        assert np.array_equal(np.asarray(other), np.asarray(d))
