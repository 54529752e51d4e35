"""Finding and loading specs: catalogue names, YAML files and Hugging Face config.json files.

Every failure becomes a :class:`SpecError` whose message names the file, the line and column, the
field, what was expected and (for misspelt fields and names) what was close.
"""

from __future__ import annotations

import marshal
import os
from functools import lru_cache
from pathlib import Path

from .errors import SpecError, close_matches, unknown_name
from .record import ValidationError
from .specs import Hardware, Model
from .textfile import read_spec_text


@lru_cache(maxsize=1)
def _loader():
    """The safe loader, but a key given twice in one mapping is an error (YAML 1.2 §3.2.1.1 requires unique
    keys; PyYAML silently keeps the last), so ``d_model`` written twice cannot quietly pick one. Built on first
    use: ``import yaml`` costs ~20 ms, and a one-liner whose catalogue entries are in the parse cache (below)
    needs no YAML at all."""
    import yaml

    try:  # libyaml is ~10x faster; fall back to the pure-Python loader where it is missing
        from yaml import CSafeLoader as safe_loader
    except ImportError:  # pragma: no cover
        from yaml import SafeLoader as safe_loader

    class _Loader(safe_loader):
        # A date stays text (price_date is checked as a date by the spec): a constructed timestamp such as
        # 2025-02-30 fails with a bare ValueError, and a date object is no str field's value.
        yaml_implicit_resolvers = {k: [r for r in v if r[0] != "tag:yaml.org,2002:timestamp"]
                                   for k, v in safe_loader.yaml_implicit_resolvers.items()}

        def construct_mapping(self, node, deep=False):
            if isinstance(node, yaml.MappingNode):
                seen: dict = {}
                for key_node, _ in node.value:
                    if not isinstance(key_node, yaml.ScalarNode) or key_node.value == "<<":
                        continue  # merge keys may override on purpose
                    key = (key_node.tag, key_node.value)
                    if key in seen:
                        raise yaml.constructor.ConstructorError(
                            "while constructing a mapping", node.start_mark,
                            f"duplicate key {key_node.value!r} (first given on line {seen[key]})", key_node.start_mark)
                    seen[key] = key_node.start_mark.line + 1
            return super().construct_mapping(node, deep)

    return _Loader

_PKG = Path(__file__).resolve().parent.parent  # the llmcalc package (this file is llmcalc/core/)


def catalogue_dir(kind: str) -> Path:
    """The bundled ``hardware/`` or ``models/`` folder: inside the installed wheel, else the source checkout.
    ``LLMCALC_<KIND>_DIR`` replaces it; a value that is not a folder is an error, never a silent fallback."""
    var = f"LLMCALC_{kind.upper()}_DIR"
    env = os.environ.get(var)
    if env:
        if not Path(env).is_dir():
            raise SpecError(f"{var}={env!r} is not a folder; point it at a folder of {kind} YAML files or unset it")
        return Path(env)
    for d in (_PKG / "_catalogue" / kind, _PKG.parent / kind):
        if d.is_dir():
            return d
    raise SpecError(f"the bundled {kind}/ catalogue was not found next to {_PKG}; reinstall llmcalc")


def names(kind: str) -> list[str]:
    return sorted(p.stem for p in catalogue_dir(kind).glob("*.yaml"))


# ---------------------------------------------------------------- YAML with positions


def _node_at(node, loc: tuple, at_key: bool = False):
    """The YAML node at a pydantic error location (its key node if ``at_key``), or the closest ancestor."""
    import yaml

    for i, key in enumerate(loc):
        if isinstance(node, yaml.MappingNode):
            pick = 0 if at_key and i == len(loc) - 1 else 1
            nxt = next((kv[pick] for kv in node.value if kv[0].value == str(key)), None)
            if nxt is None:
                return node
            node = nxt
        elif isinstance(node, yaml.SequenceNode) and isinstance(key, int) and key < len(node.value):
            node = node.value[key]
        else:
            return node
    return node


def _fields_of(cls, loc: tuple) -> list[str]:
    """The field names allowed at ``loc`` (for 'did you mean' on misspelt keys)."""
    model = cls
    for key in loc[:-1]:
        info = model.model_fields.get(str(key)) if hasattr(model, "model_fields") else None
        if info is None:
            return []
        ann = info.annotation
        for cand in getattr(ann, "__args__", (ann,)):
            if hasattr(cand, "model_fields"):
                model = cand
                break
        else:
            return []
    return list(getattr(model, "model_fields", {}))


def _explain_validation(err: ValidationError, cls, origin: str, root) -> SpecError:
    lines = []
    explained = set()  # fields that a misspelling explains: not reported again as "missing"
    # Misspelt fields first: a misspelling also shows up as a "missing" field, which is the symptom, not the cause.
    for e in sorted(err.errors(), key=lambda e: e["type"] != "extra_forbidden"):
        loc = tuple(x for x in e["loc"] if not (isinstance(x, str) and x.startswith("function-")))
        field = ".".join(str(x) for x in loc) or "(top level)"
        where = origin
        if root is not None:
            node = _node_at(root, loc, at_key=e["type"] == "extra_forbidden")
            where = f"{origin}:{node.start_mark.line + 1}:{node.start_mark.column + 1}"
        if e["type"] == "extra_forbidden":
            hint = close_matches(str(loc[-1]), _fields_of(cls, loc))
            msg = f"unknown field {str(loc[-1])!r}" + (f"; did you mean {hint[0]!r}?" if hint else "")
            if hint:
                explained.add((*loc[:-1], hint[0]))
        elif e["type"] == "missing" and loc in explained:
            continue
        elif e["type"] == "missing":
            msg = f"missing required field {field!r}"
        else:
            got = e.get("input")
            msg = f"field {field!r}: {e['msg'].removeprefix('Value error, ')}"
            if got is not None and not isinstance(got, (dict, list)):
                msg += f" (got {got!r})"
        lines.append(f"{where}: {msg}")
    return SpecError("; ".join(lines))  # one line (several problems separated by "; "), as every user error


def load_yaml_spec(path: str | Path, cls, cache_as: str | None = None):
    """Read a Model or Hardware YAML file; any problem becomes one SpecError naming file:line:column.
    ``cache_as``: a catalogue entry's name, under which its parsed YAML is kept (see :func:`_cached_yaml`)."""
    return parse_yaml_spec(read_spec_text(path), cls, str(path), cache_as)


def load_user_yaml(path: str | Path, option: str):
    """A user's YAML file given to an option (``--profile``, ``--measurements``, ``--law``): read like every spec
    file (regular, UTF-8, size-limited, duplicate keys refused) and parsed; one SpecError naming the option."""
    try:
        return _load_yaml(read_spec_text(path), str(path))
    except SpecError as e:
        raise SpecError(f"{option} {e}") from None


def _load_yaml(text: str, origin: str, cache_as: str | None = None):
    """YAML -> Python data, or one SpecError naming ``origin``:line:column."""
    if cache_as is not None:
        data = _cached_yaml(cache_as, text)
        if data is not _MISS:
            return data
    import yaml

    try:
        data = yaml.load(text, Loader=_loader())
    except yaml.YAMLError as e:
        mark = getattr(e, "problem_mark", None)
        where = f"{origin}:{mark.line + 1}:{mark.column + 1}" if mark else origin
        problem = " ".join(str(getattr(e, "problem", None) or e).split())
        raise SpecError(f"{where}: invalid YAML: {problem}") from None
    except RecursionError:
        raise SpecError(f"{origin}: invalid YAML: nested too deeply") from None
    except (ValueError, OverflowError) as e:  # an explicit tag's constructor (!!timestamp 2025-02-30, !!float 1e999x)
        raise SpecError(f"{origin}: invalid YAML: {' '.join(str(e).split())[:200]}") from None
    if cache_as is not None:
        _keep_yaml(cache_as, text, data)
    return data


# ---------------------------------------------------------------- parsed catalogue entries, kept between runs
# Issue #13: `import yaml` alone is ~20 ms of a one-liner's 0.3 s, for a catalogue entry that rarely changes. The
# parse of an entry is kept in the user's cache folder as (format, YAML text, data), written with marshal (no import
# cost; it round-trips exactly the dicts, lists, strings, numbers, booleans and None a safe YAML load yields) and
# used only when the file's text is the very text that was parsed: an edited entry is parsed again, and a file that
# does not parse is never kept, so its error message is the parser's. The cache changes how fast, never what:
# unreadable or foreign cache files are parsed past, and a folder that cannot be written is simply not used.
# LLMCALC_CACHE_DIR moves it (empty: no cache); default $XDG_CACHE_HOME/llmcalc, else ~/.cache/llmcalc.
_MISS = object()
_CACHE_FORMAT = "llmcalc-yaml-1"


def _cache_file(key: str) -> Path | None:
    base = os.environ.get("LLMCALC_CACHE_DIR")
    if base is None:
        xdg = os.environ.get("XDG_CACHE_HOME")
        base = os.path.join(xdg, "llmcalc") if xdg else os.path.join(os.path.expanduser("~"), ".cache", "llmcalc")
    return Path(base) / f"{key}.marshal" if base else None


def _cached_yaml(key: str, text: str):
    path = _cache_file(key)
    try:
        kept = marshal.loads(path.read_bytes()) if path is not None else None
    except (OSError, ValueError, EOFError, TypeError):  # none yet, unreadable, or not a marshal file: parse
        return _MISS
    if isinstance(kept, tuple) and len(kept) == 3 and kept[0] == _CACHE_FORMAT and kept[1] == text:
        return kept[2]
    return _MISS


def _keep_yaml(key: str, text: str, data) -> None:
    path = _cache_file(key)
    if path is None:
        return
    try:
        blob = marshal.dumps((_CACHE_FORMAT, text, data))
    except ValueError:  # a type marshal does not write (an explicit !!timestamp): this entry is parsed every time
        return
    tmp = path.with_name(f"{path.name}.{os.getpid()}.tmp")
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        tmp.write_bytes(blob)
        os.replace(tmp, path)  # atomic: a concurrent reader sees the old file or the new one, never half of one
    except OSError:
        tmp.unlink(missing_ok=True)


def parse_yaml_spec(text: str, cls, origin: str = "<yaml>", cache_as: str | None = None):
    data = _load_yaml(text, origin, cache_as)
    if not isinstance(data, dict):
        raise SpecError(f"{origin}: expected a mapping of fields at the top level, got {type(data).__name__}")
    try:
        return cls.model_validate(data, context={"yaml": True})
    except ValidationError as e:
        _other_kind(data, cls, origin)
        import yaml

        root = yaml.compose(text, Loader=_loader())
        raise _explain_validation(e, cls, origin, root) from None
    except RecursionError:
        raise SpecError(f"{origin}: nested too deeply") from None


def _other_kind(data: dict, cls, origin: str) -> None:
    """A hardware YAML given as a model (or the reverse) fails on every field: say which kind it is instead."""
    other = Hardware if cls is Model else Model if cls is Hardware else None
    if other is None:
        return
    mine, theirs = set(cls.model_fields), set(other.model_fields)
    own = sorted((set(data) & theirs) - mine, key=list(other.model_fields).index)
    if own and not (set(data) & mine) - theirs:
        how = "with -H (--hardware)" if other is Hardware else "as the MODEL argument"
        raise SpecError(f"{origin}: this is a {'hardware' if other is Hardware else 'model'} spec (it has "
                        f"{', '.join(own[:2])}), not a {'model' if cls is Model else 'hardware'} spec; give it {how}")


# ---------------------------------------------------------------- public loaders


def _looks_like_path(ref: str) -> bool:
    return ref.endswith((".yaml", ".yml", ".json")) or os.sep in ref or "/" in ref


def _check_ref(ref, what: str) -> str:
    if not isinstance(ref, str):
        raise SpecError(f"{what} must be a catalogue name or a file path (a string), got {type(ref).__name__}")
    if "\x00" in ref or not ref.strip():
        raise SpecError(f"{what} {ref!r} is not a valid name or path")
    return ref


def _exists(p: Path) -> bool:
    try:
        return p.exists()
    except (OSError, ValueError):  # a name too long for the file system, say
        return False


def load_model(ref: str | Model) -> Model:
    """A model by catalogue name (any case), by YAML path, or by Hugging Face config.json path; a Model
    (an ad-hoc one from the CLI's --d-model/--set flags) is passed through."""
    if isinstance(ref, Model):
        return ref
    return _load_model(_check_ref(ref, "model"))


@lru_cache(maxsize=256)
def _load_model(ref: str) -> Model:
    if _looks_like_path(ref):
        p = Path(ref)
        if not _exists(p):
            raise SpecError(f"{ref}: no such file")
        if p.suffix == ".json":
            from .hf_config import model_from_config_file

            return model_from_config_file(p)
        return load_yaml_spec(p, Model)
    return load_yaml_spec(_find("models", ref), Model, cache_as=f"models-{ref.strip().lower()}")


def load_hardware(ref: str) -> Hardware:
    """An accelerator by catalogue name (any case) or YAML path."""
    if isinstance(ref, Hardware):
        return ref
    return _load_hardware(_check_ref(ref, "hardware"))


@lru_cache(maxsize=64)
def _load_hardware(ref: str) -> Hardware:
    if _looks_like_path(ref):
        if not _exists(Path(ref)):
            raise SpecError(f"{ref}: no such file")
        return load_yaml_spec(ref, Hardware)
    return load_yaml_spec(_find("hardware", ref), Hardware, cache_as=f"hardware-{ref.strip().lower()}")


def _find(kind: str, name: str) -> Path:
    d = catalogue_dir(kind)
    p = d / f"{name.strip().lower()}.yaml"
    if _exists(p):
        return p
    raise unknown_name(kind, name, names(kind))


def load_spec(ref: str) -> Model | Hardware:
    """A model or an accelerator, whichever ``ref`` names (a catalogue name or a YAML/config.json path)."""
    _check_ref(ref, "name")
    if _looks_like_path(ref):
        if ref.endswith((".yaml", ".yml")) and _exists(Path(ref)):
            head = _load_yaml(read_spec_text(ref), ref)
            if isinstance(head, dict) and ("peak_flops_per_s" in head or "memory_bw_bytes_per_s" in head):
                return load_hardware(ref)
        return load_model(ref)
    key = ref.strip().lower()
    if key in names("hardware"):
        return load_hardware(key)
    if key in names("models"):
        return load_model(key)
    raise unknown_name("model or hardware", ref, names("models") + names("hardware"))


def all_models() -> list[Model]:
    return [load_model(n) for n in names("models")]


def all_hardware() -> list[Hardware]:
    return [load_hardware(n) for n in names("hardware")]


def model_to_yaml(m: Model) -> str:
    """A catalogue YAML for ``m`` (quantities are plain counts in models, so a dump round-trips)."""
    data = m.model_dump(mode="json", exclude_defaults=True)
    data = {"name": data.pop("name"), "display_name": data.pop("display_name"), **data}
    import yaml

    return yaml.safe_dump(data, sort_keys=False, default_flow_style=False, width=110)
