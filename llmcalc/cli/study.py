"""The study kit: one-page sheets, the daily drill, sharding exercises and trade-off explainers."""

from __future__ import annotations

import json

import typer

from ._app import app
from ._common import EXPLAIN_OPT, HARDWARE_OPT, JSON_OPT, complete_models, user_errors, write_out

SHEET_MODEL = typer.Argument(None, help="Catalogue name, YAML or config.json (default llama-3.1-70b; the "
                             "notation and bytes topics use it for their examples).", autocompletion=complete_models,
                             show_default=False)


@app.command()
@user_errors
def sheet(topic: str = typer.Argument(..., help="notation, flops, attention, parallelism, bytes, memory, inference, "
                                      "serving, scaling, or all (with -o DIR)."),
          model: str | None = SHEET_MODEL, hardware: str = HARDWARE_OPT,
          fmt: str = typer.Option("text", "--format", "-f", help="text, md or html (one printable page)."),
          output: str | None = typer.Option(None, "--output", "-o", help="Write here (a folder for `all`)."),
          seq: int = typer.Option(4096, "--seq", "-L", help="Sequence length L of the training examples."),
          prompt: int = typer.Option(1000, "--prompt", help="Prompt tokens (inference, serving)."),
          out_tokens: int = typer.Option(300, "--output-tokens", help="Output tokens (inference, serving)."),
          users: float = typer.Option(10_000, "--users", help="Users to serve (1 request per user per minute)."),
          as_json: bool = JSON_OPT, explain: bool = EXPLAIN_OPT) -> None:
    """A dense one-page study sheet: this model's numbers with their formulas (text, Markdown or HTML)."""
    from pathlib import Path

    from ..core.catalogue import load_hardware, load_model
    from ..core.checks import check_count
    from ..core.errors import LlmcalcError
    from ..study.render import FORMATS, render
    from ..study.sheet import TOPICS, Inputs
    from ..study.sheet import sheet as make

    for v, o in ((seq, "--seq"), (prompt, "--prompt"), (out_tokens, "--output-tokens"), (users, "--users")):
        check_count(v, o) if o != "--users" else None
    if users <= 0:
        raise LlmcalcError(f"--users must be positive, got {users:g}")
    if fmt not in FORMATS:
        raise LlmcalcError(f"--format expects text, md or html, got {fmt!r}")
    m = load_model(model or "llama-3.1-70b")
    hw = load_hardware(hardware)
    x = Inputs(seq=seq, prompt=prompt, output=out_tokens, users=users)
    if topic == "all":
        if not output:
            raise LlmcalcError("sheet all needs -o DIR (one file per topic)")
        d = Path(output)
        try:
            d.mkdir(parents=True, exist_ok=True)
        except OSError as e:
            raise LlmcalcError(f"-o {output}: cannot create the folder ({e.strerror})") from None
        ext = {"text": "txt", "md": "md", "html": "html"}[fmt]
        for t in TOPICS:
            write_out(render(make(t, m, hw, x), fmt), str(d / f"{m.name}-{t}.{ext}"))
        return
    s = make(topic, m, hw, x)
    if as_json:
        typer.echo(json.dumps({"topic": s.topic, "title": s.title, "setting": s.setting,
                               "blocks": [{"title": b.title, "concern": b.concern, "header": list(b.header),
                                           "rows": [list(r) for r in b.rows], "notes": list(b.notes),
                                           "figures": [f.as_dict() for f in b.figures]} for b in s.blocks]},
                              indent=2, default=_default))
        return
    write_out(render(s, fmt, explain), output)


def _default(o):
    return o.tolist() if hasattr(o, "tolist") else str(o)
