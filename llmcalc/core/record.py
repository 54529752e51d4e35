"""Frozen, validated records: the small schema layer under :mod:`llmcalc.core.specs`.

A record class lists its fields as annotations (``d_model: int = Field(ge=1, description="D")``); constructing
one, or :meth:`Record.model_validate` on a mapping, checks every field strictly and reports every problem at
once, each with its location, as pydantic v2 does in strict mode with ``extra="forbid"``, ``frozen=True``. The
method names (``model_validate``, ``model_fields``, ``model_dump``, ``model_copy``) are pydantic's, so a
notebook that knows pydantic knows these.

Why not pydantic itself: importing it and building the two schemas a one-liner loads cost ≈ 95 ms on the 2-core
development machine (``from pydantic import BaseModel`` 45 ms, the spec classes' fields 27 ms, the Model and
Hardware validators 24 ms), a third of a 0.3 s one-liner (issue #13; ``python -X importtime``). This layer
imports nothing heavier than ``re`` and ``typing``. tests/test_record.py checks it against pydantic (still
installed: typer needs it) on generated documents: the same accepted values and the same rejected fields.

Strict means: an ``int`` field takes an int, never a bool, a float or a string; a ``float`` field takes an int
or a float, never a bool; ``str`` and ``bool`` only themselves; a ``Literal`` only one of its values; lists and
mappings only ``list`` and ``dict``; a nested record a mapping or an instance of its class.
"""

from __future__ import annotations

import re
import types
import typing
from typing import Annotated, Any, Literal, get_args, get_origin

_REQUIRED = object()
_BAD = object()


class FieldInfo:
    """A field's default (or factory), its bounds, pattern and description; also the bounds alone inside
    ``Annotated[float, Field(gt=0)]``. ``annotation`` is filled in when the record class is made."""

    __slots__ = ("default", "default_factory", "gt", "ge", "lt", "le", "pattern", "description", "annotation")

    def __init__(self, default=_REQUIRED, *, default_factory=None, gt=None, ge=None, lt=None, le=None,
                 pattern: str | None = None, description: str = ""):
        self.default, self.default_factory = default, default_factory
        self.gt, self.ge, self.lt, self.le = gt, ge, lt, le
        self.pattern = re.compile(pattern) if pattern else None
        self.description, self.annotation = description, None

    def is_required(self) -> bool:
        return self.default is _REQUIRED and self.default_factory is None

    def get_default(self):
        return self.default_factory() if self.default_factory is not None else self.default

    def __repr__(self) -> str:
        return f"FieldInfo(annotation={self.annotation!r}, required={self.is_required()})"


def Field(default=_REQUIRED, **kw) -> Any:  # noqa: N802 - pydantic's spelling, so specs read as before
    return FieldInfo(default, **kw)


class Before:
    """A conversion run on the raw input before the type check: ``fn(value, context) -> value``. A ValueError it
    raises is that field's error (e.g. a quantity without a unit)."""

    __slots__ = ("fn",)

    def __init__(self, fn):
        self.fn = fn


def model_validator(*, mode: str):
    """A check of the whole record once every field is valid: ``fn(self) -> self``; a ValueError is its error."""
    assert mode == "after"

    def mark(fn):
        fn.__record_check__ = ("model", None, mode)
        return fn

    return mark


def field_validator(name: str, *, mode: str = "after"):
    """``fn(cls, value) -> value`` on one field: ``before`` the type check, or ``after`` it passed."""

    def mark(fn):
        target = fn.__func__ if isinstance(fn, classmethod) else fn
        target.__record_check__ = ("field", name, mode)
        return fn

    return mark


class ValidationError(ValueError):
    """Every problem of one document, as pydantic's: ``errors()`` lists dicts with ``type``, ``loc`` (a tuple of
    keys and indexes), ``msg`` and ``input``."""

    def __init__(self, title: str, errors: list[dict]):
        self.title, self._errors = title, errors
        lines = [f"{len(errors)} validation error{'s' if len(errors) > 1 else ''} for {title}"]
        for e in errors:
            lines.append(".".join(map(str, e["loc"])) or "(top level)")
            lines.append(f"  {e['msg']} [type={e['type']}, input={e['input']!r:.80}]")
        super().__init__("\n".join(lines))

    def errors(self) -> list[dict]:
        return list(self._errors)


_TYPE_MSG = {int: ("int_type", "Input should be a valid integer"), float: ("float_type", "Input should be a valid "
             "number"), str: ("string_type", "Input should be a valid string"), bool: ("bool_type", "Input should be "
             "a valid boolean")}


def _literal_msg(values) -> str:
    shown = [repr(v) for v in values]
    return "Input should be " + (shown[0] if len(shown) == 1 else ", ".join(shown[:-1]) + " or " + shown[-1])


class _Checker:
    """One validation pass: the document's context (``{"yaml": True}`` for files) and the errors found."""

    __slots__ = ("context", "errors")

    def __init__(self, context):
        self.context, self.errors = context or {}, []

    def fail(self, kind: str, msg: str, loc: tuple, value) -> object:
        self.errors.append({"type": kind, "loc": loc, "msg": msg, "input": value})
        return _BAD

    def value(self, tp, v, loc: tuple):
        """``v`` checked (and converted) against the annotation ``tp``; _BAD after recording an error."""
        origin = get_origin(tp)
        if origin is Annotated:
            base, *meta = get_args(tp)
            for m in meta:
                if isinstance(m, Before):
                    try:
                        v = m.fn(v, self.context)
                    except (ValueError, AssertionError) as e:
                        return self.fail("value_error", f"Value error, {e}", loc, v)
            v = self.value(base, v, loc)
            for m in meta:
                if isinstance(m, FieldInfo) and v is not _BAD and v is not None:
                    v = self.bounds(m, v, loc)
            return v
        if origin in (types.UnionType, typing.Union):
            options = [a for a in get_args(tp) if a is not type(None)]
            if v is None and len(options) < len(get_args(tp)):
                return None
            if len(options) == 1:
                return self.value(options[0], v, loc)
            for opt in options:  # several kinds (``"all" | list[int]``): the first that takes it
                trial = _Checker(self.context)
                out = trial.value(opt, v, loc)
                if out is not _BAD:
                    return out
            return self.fail("union_error", "Input should be " + " or ".join(_describe(o) for o in options), loc, v)
        if origin is Literal:
            allowed = get_args(tp)
            if any(type(v) is type(a) and v == a for a in allowed):
                return v
            return self.fail("literal_error", _literal_msg(allowed), loc, v)
        if origin is list:
            if not isinstance(v, list):
                return self.fail("list_type", "Input should be a valid list", loc, v)
            (item,) = get_args(tp)
            out = [self.value(item, x, (*loc, i)) for i, x in enumerate(v)]
            return _BAD if _BAD in out else out
        if origin is dict:
            if not isinstance(v, dict):
                return self.fail("dict_type", "Input should be a valid dictionary", loc, v)
            kt, vt = get_args(tp)
            out, bad = {}, False
            for k, x in v.items():
                kk = self.value(kt, k, (*loc, k, "[key]"))
                xx = self.value(vt, x, (*loc, k))
                bad |= kk is _BAD or xx is _BAD
                if not bad:
                    out[kk] = xx
            return _BAD if bad else out
        if isinstance(tp, type) and issubclass(tp, Record):
            if isinstance(v, tp):
                return v
            if not isinstance(v, dict):
                return self.fail("model_type", f"Input should be a valid dictionary or instance of {tp.__name__}",
                                 loc, v)
            return tp._check(v, self, loc)
        if tp is float:
            if isinstance(v, (int, float)) and not isinstance(v, bool):
                return float(v)
        elif tp is int:
            if isinstance(v, int) and not isinstance(v, bool):
                return v
        elif tp in (str, bool):
            if isinstance(v, tp):
                return v
        else:
            raise TypeError(f"a record field cannot be of type {tp!r}")
        return self.fail(*_TYPE_MSG[tp], loc, v)

    def bounds(self, f: FieldInfo, v, loc: tuple):
        for bound, ok, kind, words in ((f.gt, lambda b: v > b, "greater_than", "greater than"),
                                       (f.ge, lambda b: v >= b, "greater_than_equal", "greater than or equal to"),
                                       (f.lt, lambda b: v < b, "less_than", "less than"),
                                       (f.le, lambda b: v <= b, "less_than_equal", "less than or equal to")):
            if bound is not None and not ok(bound):  # NaN fails every bound, as in pydantic
                return self.fail(kind, f"Input should be {words} {bound}", loc, v)
        if f.pattern is not None and isinstance(v, str) and not f.pattern.search(v):
            return self.fail("string_pattern_mismatch", f"String should match pattern '{f.pattern.pattern}'", loc, v)
        return v


def _describe(tp) -> str:
    if get_origin(tp) is Literal:
        return _literal_msg(get_args(tp)).removeprefix("Input should be ")
    if get_origin(tp) is list:
        return "a valid list"
    return getattr(tp, "__name__", str(tp))


class Record:
    """Base of a frozen, validated record (see the module docstring)."""

    model_fields: typing.ClassVar[dict[str, FieldInfo]] = {}
    _checks: typing.ClassVar[tuple] = ()

    def __init_subclass__(cls, **kw):
        super().__init_subclass__(**kw)
        hints = typing.get_type_hints(cls, include_extras=True)  # the class's own module resolves the names
        fields: dict[str, FieldInfo] = {}
        for base in reversed(cls.__mro__[1:]):
            fields.update(getattr(base, "model_fields", {}))
        for name in cls.__dict__.get("__annotations__", {}):
            if name.startswith("_") or get_origin(hints[name]) is typing.ClassVar:
                continue
            given = cls.__dict__.get(name, _REQUIRED)
            info = given if isinstance(given, FieldInfo) else FieldInfo(given)
            info.annotation = hints[name]  # an alias's own bounds (Annotated[float, Field(gt=0)]) stay in it
            fields[name] = info
            if name in cls.__dict__:
                delattr(cls, name)  # the value lives in each instance
        cls.model_fields = fields
        checks = []
        for klass in reversed(cls.__mro__):
            for attr in klass.__dict__.values():
                fn = attr.__func__ if isinstance(attr, (classmethod, staticmethod)) else attr
                mark = getattr(fn, "__record_check__", None)
                if mark is not None:
                    checks.append((*mark, fn))
        cls._checks = tuple(checks)

    def __init__(self, **data):
        checker = _Checker(None)
        out = type(self)._check(data, checker, ())
        if checker.errors:
            raise ValidationError(type(self).__name__, checker.errors)
        self.__dict__.update(out.__dict__)

    @classmethod
    def _check(cls, data: dict, checker: _Checker, loc: tuple):
        start = len(checker.errors)
        values = {}
        for name, info in cls.model_fields.items():
            if name not in data:
                if info.is_required():
                    checker.fail("missing", "Field required", (*loc, name), data)
                else:
                    values[name] = info.get_default()
                continue
            v = data[name]
            for kind, fname, mode, fn in cls._checks:
                if kind == "field" and fname == name and mode == "before":
                    v = _run(checker, lambda fn=fn, v=v: fn(cls, v), (*loc, name), v)
            if v is not _BAD:
                v = checker.value(info.annotation, v, (*loc, name))
            if v is not _BAD:
                v = checker.bounds(info, v, (*loc, name)) if v is not None else v
            if v is not _BAD:
                for kind, fname, mode, fn in cls._checks:
                    if kind == "field" and fname == name and mode == "after" and v is not _BAD:
                        v = _run(checker, lambda fn=fn, v=v: fn(cls, v), (*loc, name), v)
            values[name] = v
        for key in data:
            if key not in cls.model_fields:
                checker.fail("extra_forbidden", "Extra inputs are not permitted", (*loc, key), data[key])
        if len(checker.errors) > start:
            return _BAD
        obj = object.__new__(cls)
        obj.__dict__.update(values)
        for kind, _, _, fn in cls._checks:
            if kind == "model" and _run(checker, lambda fn=fn: fn(obj), loc, data) is _BAD:
                return _BAD
        return obj

    @classmethod
    def model_validate(cls, data, *, context: dict | None = None):
        """A record from a mapping (an instance of the class is returned as it is); ValidationError otherwise."""
        if isinstance(data, cls):
            return data
        checker = _Checker(context)
        if not isinstance(data, dict):
            checker.fail("model_type", f"Input should be a valid dictionary or instance of {cls.__name__}", (), data)
            raise ValidationError(cls.__name__, checker.errors)
        out = cls._check(data, checker, ())
        if checker.errors:
            raise ValidationError(cls.__name__, checker.errors)
        return out

    def __setattr__(self, name, value):
        raise AttributeError(f"{type(self).__name__} is frozen: make a changed copy with model_copy(update=...)")

    def __delattr__(self, name):
        self.__setattr__(name, None)

    def __eq__(self, other):
        return type(other) is type(self) and other.__dict__ == self.__dict__

    def __hash__(self):
        return hash((type(self), *self.__dict__.values()))

    def __repr__(self) -> str:
        return f"{type(self).__name__}({', '.join(f'{k}={v!r}' for k, v in self.__dict__.items())})"

    def model_copy(self, *, update: dict | None = None, deep: bool = False):
        """A copy (``deep``: of every nested dict and record too) with ``update``'s fields replaced, NOT validated
        again, as pydantic's model_copy; :meth:`model_validate` of ``model_dump() | changes`` validates."""
        import copy

        new = object.__new__(type(self))
        new.__dict__.update(copy.deepcopy(self.__dict__) if deep else self.__dict__)
        new.__dict__.update(update or {})
        return new

    def model_dump(self, *, mode: str = "python", include=None, exclude=None, exclude_none: bool = False,
                   exclude_defaults: bool = False) -> dict:
        """The fields as plain dicts, lists and scalars (``mode`` "json" gives the same here: every field is
        already a JSON type); ``include`` / ``exclude`` sets of top-level names."""
        out = {}
        for name, info in type(self).model_fields.items():
            v = self.__dict__[name]
            if (include is not None and name not in include) or (exclude and name in exclude) or (
                    exclude_none and v is None) or (
                    exclude_defaults and not info.is_required() and v == info.get_default()):
                continue
            out[name] = _dump(v, exclude_none, exclude_defaults)
        return out

    def model_dump_json(self, **kw) -> str:
        """:meth:`model_dump` as JSON text."""
        import json

        return json.dumps(self.model_dump(**kw))


def _dump(v, exclude_none: bool, exclude_defaults: bool):
    if isinstance(v, Record):
        return v.model_dump(exclude_none=exclude_none, exclude_defaults=exclude_defaults)
    if isinstance(v, dict):
        return {k: _dump(x, exclude_none, exclude_defaults) for k, x in v.items()}
    if isinstance(v, list):
        return [_dump(x, exclude_none, exclude_defaults) for x in v]
    return v


def _run(checker: _Checker, call, loc: tuple, value):
    try:
        return call()
    except (ValueError, AssertionError) as e:
        return checker.fail("value_error", f"Value error, {e}", loc, value)
