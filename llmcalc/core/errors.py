"""One exception family for every mistake a user can make.

Faces (CLI, dashboard) catch :class:`LlmcalcError` and show ``str(err)``; anything else is a bug
and is allowed to surface as a traceback.
"""

from __future__ import annotations

import difflib
from collections.abc import Iterable


class LlmcalcError(Exception):
    """A user error: bad input, unknown name, impossible layout. Its message is the whole story."""


class SpecError(LlmcalcError):
    """A YAML or config.json file (or a CLI value) that does not describe a valid spec."""


class UnknownNameError(LlmcalcError):
    """A model, hardware or option name that is not in the catalogue."""


class LayoutError(LlmcalcError):
    """An impossible parallel layout or workload (a degree that does not divide, a batch that does not split)."""


class NoDeploymentError(LlmcalcError):
    """Valid inputs, but no deployment of the searched family meets the targets (an answer, not a typo)."""


class UnitError(LlmcalcError, ValueError):
    """A quantity that cannot be parsed or has the wrong dimension (a ValueError, so pydantic locates it)."""


def close_matches(name: str, candidates: Iterable[str], n: int = 3) -> list[str]:
    """Names from ``candidates`` that look like ``name`` (case-insensitive), best first."""
    by_lower = {c.lower(): c for c in candidates}
    hits = difflib.get_close_matches(name.lower(), list(by_lower), n=n, cutoff=0.5)
    # Also catch prefixes and substrings, which difflib scores poorly for short inputs ("llama" -> "llama-2-7b").
    for key in by_lower:
        if len(hits) >= n:
            break
        if name.lower() in key and key not in hits:
            hits.append(key)
    return [by_lower[h] for h in hits]


# The catalogue kinds a command can list; any other kind (a topic, …) has its names spelled out in the message.
_LISTINGS = {"models": "`llmcalc list models`", "model": "`llmcalc list models`",
             "hardware": "`llmcalc list hardware`",
             "model or hardware": "`llmcalc list models` or `llmcalc list hardware`"}


def unknown_name(kind: str, name: str, candidates: Iterable[str]) -> UnknownNameError:
    """An unknown name, with close matches, else where the known names are (only commands that exist are named)."""
    candidates = list(candidates)
    hint = close_matches(name, candidates)
    msg = f"unknown {kind.removesuffix('s')} {name!r}"
    if hint:
        msg += f"; did you mean {', '.join(repr(h) for h in hint)}?"
    elif kind in _LISTINGS:
        msg += f"; {_LISTINGS[kind]} shows the {len(candidates)} known ones"
    else:
        msg += f"; known: {', '.join(candidates[:20])}" + (" …" if len(candidates) > 20 else "")
    return UnknownNameError(msg)
