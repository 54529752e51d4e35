"""llmcalc.core.record (the specs' schema layer) against pydantic, its independent reference.

tests/specs_pydantic_reference.py is the spec module as it was written on pydantic v2 (strict, extra="forbid",
frozen) before issue #13 moved the specs off it for start-up time. On every catalogue entry and on generated
mutations of them (a field replaced by a value of another kind, removed, or joined by an unknown one), both must
accept the same documents with the same values, and reject the same documents at the same fields with the same
error type and wording (pydantic's union errors, which name each alternative, are compared by field).
"""

from __future__ import annotations

import copy
import math
import pickle
import sys
from pathlib import Path

import pytest
import yaml
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from llmcalc.core import specs as ours
from llmcalc.core.catalogue import catalogue_dir
from llmcalc.core.record import ValidationError

sys.path.insert(0, str(Path(__file__).parent))
import specs_pydantic_reference as ref  # noqa: E402
from pydantic import ValidationError as PydanticError  # noqa: E402

DOCS = [(kind, yaml.safe_load(p.read_text(encoding="utf-8")))
        for kind in ("models", "hardware") for p in sorted(catalogue_dir(kind).glob("*.yaml"))]
CLASSES = {"models": (ours.Model, ref.Model), "hardware": (ours.Hardware, ref.Hardware)}

VALUES = st.one_of(
    st.integers(-3, 3), st.integers(min_value=2**62, max_value=2**70), st.booleans(), st.none(),
    st.floats(allow_nan=True, allow_infinity=True), st.sampled_from([
        "80 GiB", "450 GB/s", "989 TFLOP/s", "3.4 us", "700 W", "2.49 USD/h", "1 TB", "80", "", "rope", "all",
        "alternate", "bf16", "switch", "torus", "per_direction", "2025-02", "2025-02-30x", "nvlink", "rmsnorm"]),
    st.lists(st.integers(-2, 4), max_size=3), st.just({}), st.just({"value": 80}), st.just({"bf16": "1 PFLOP/s"}),
    st.just([1.5]), st.just({"x": 1}), st.text(max_size=4))


def _paths(node, prefix=()):
    out = [prefix] if prefix else []
    if isinstance(node, dict):
        for k, v in node.items():
            out += _paths(v, (*prefix, k))
    elif isinstance(node, list):
        for i, v in enumerate(node):
            out += _paths(v, (*prefix, i))
    return out


def _outcome(cls, doc, context):
    try:
        return "ok", cls.model_validate(doc, context=context).model_dump()
    except (ValidationError, PydanticError) as e:
        errs = set()
        for x in e.errors():
            loc = []
            for part in x["loc"]:  # pydantic tags a union's alternatives and a function validator in the location
                if isinstance(part, str) and part != "[key]" and ("[" in part or part.startswith("function-")):
                    break
                loc.append(part)
            union = len(loc) < len(x["loc"]) or x["type"] == "union_error"
            errs.add((tuple(loc), "union" if union else x["type"], "" if union else x["msg"]))
        return "error", errs


def _mutate(doc, data, kind):
    doc = copy.deepcopy(doc)
    for _ in range(data.draw(st.integers(1, 3))):
        paths = _paths(doc)
        path = data.draw(st.sampled_from(paths))
        *up, last = path
        parent = doc
        for p in up:
            parent = parent[p]
        action = data.draw(st.sampled_from(["replace", "replace", "delete", "extra"]))
        if action == "replace":
            parent[last] = copy.deepcopy(data.draw(VALUES))
        elif action == "delete" and isinstance(parent, dict):
            del parent[last]
        elif isinstance(parent, dict):
            parent[data.draw(st.sampled_from(["d_modle", "extra", "n_head", "bw"]))] = 1
    return doc


@pytest.mark.parametrize("i", range(len(DOCS)), ids=[d["name"] for _, d in DOCS])
def test_every_catalogue_entry_reads_the_same(i):
    kind, doc = DOCS[i]
    mine, theirs = CLASSES[kind]
    a, b = _outcome(mine, doc, {"yaml": True}), _outcome(theirs, doc, {"yaml": True})
    assert a[0] == "ok" and a == b
    m, r = mine.model_validate(doc, context={"yaml": True}), theirs.model_validate(doc, context={"yaml": True})
    assert m.model_dump(mode="json", exclude_defaults=True) == r.model_dump(mode="json", exclude_defaults=True)
    assert m.model_dump(mode="json", exclude_none=True) == r.model_dump(mode="json", exclude_none=True)


@settings(max_examples=600, deadline=None, derandomize=True, suppress_health_check=[HealthCheck.too_slow])
@given(st.data())
def test_mutated_documents_are_judged_as_pydantic_judges_them(data):
    kind, doc = data.draw(st.sampled_from(DOCS))
    doc = _mutate(doc, data, kind)
    context = data.draw(st.sampled_from([{"yaml": True}, None]))
    mine, theirs = CLASSES[kind]
    a, b = _outcome(mine, doc, context), _outcome(theirs, doc, context)
    if a[0] == b[0] == "ok":
        assert a[1] == b[1] or _same_with_nan(a[1], b[1])
    else:
        assert a == b


def _same_with_nan(x, y):
    if isinstance(x, dict) and isinstance(y, dict):
        return x.keys() == y.keys() and all(_same_with_nan(x[k], y[k]) for k in x)
    if isinstance(x, float) and isinstance(y, float):
        return x == y or (math.isnan(x) and math.isnan(y))
    return x == y


def test_records_are_frozen_comparable_and_pickle():
    m = ours.Model.model_validate(DOCS[0][1], context={"yaml": True})
    with pytest.raises(AttributeError, match="frozen"):
        m.d_model = 1
    again = pickle.loads(pickle.dumps(m))
    assert again == m and again is not m and repr(again) == repr(m)
    changed = m.model_copy(update={"n_layers": m.n_layers + 1})
    assert changed != m and changed.n_layers == m.n_layers + 1 and m.attention is changed.attention


def test_keyword_construction_validates_like_model_validate():
    with pytest.raises(ValidationError) as e:
        ours.MLP(d_ff=0, gated="yes")
    assert {x["loc"] for x in e.value.errors()} == {("d_ff",), ("gated",)}
    assert ours.MLP(d_ff=8, gated=True) == ours.MLP.model_validate({"d_ff": 8, "gated": True})


def test_deleting_a_field_is_refused_like_setting_it():
    m = ours.Model.model_validate(DOCS[0][1], context={"yaml": True})
    with pytest.raises(AttributeError, match="frozen"):
        del m.d_model


def test_a_deep_copy_shares_nothing_a_shallow_one_shares_dicts():
    """pydantic's model_copy semantics: shallow by default (a changed dict shows through), deep on request."""
    kind, doc = next(d for d in DOCS if d[0] == "hardware")
    h = ours.Hardware.model_validate(doc, context={"yaml": True})
    deep = h.model_copy(deep=True)
    deep.peak_flops_per_s["bf16"] = 1.0
    assert h.peak_flops_per_s["bf16"] != 1.0 and deep.scale_up == h.scale_up and deep.scale_up is not h.scale_up
    assert h.model_copy().peak_flops_per_s is h.peak_flops_per_s


def test_dump_include_and_json_agree_with_pydantic():
    kind, doc = DOCS[0]
    mine = ours.Model.model_validate(doc, context={"yaml": True})
    theirs = ref.Model.model_validate(doc, context={"yaml": True})
    assert mine.model_dump(include={"d_model", "attention"}) == theirs.model_dump(include={"d_model", "attention"})
    import json

    assert json.loads(mine.model_dump_json()) == json.loads(theirs.model_dump_json())


@pytest.mark.parametrize("bad", [math.inf, math.nan, 10**400])
def test_a_quantity_from_python_must_be_finite(bad):
    """From Python a bare number means the field's unit; inf, NaN and an int past float's range are refused (as
    the YAML path refuses '1e400 GB'): a user test built an accelerator of infinite memory and met an
    OverflowError later."""
    kind, doc = next(d for d in DOCS if d[0] == "hardware")
    h = ours.Hardware.model_validate(doc, context={"yaml": True})
    with pytest.raises(ValidationError, match="not a finite number"):
        ours.Hardware(**dict(h.model_dump(), memory_bytes=bad))
