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


@app.command()
@user_errors
def shard(block: str = typer.Argument(..., help="mlp (2-layer ReLU MLP) or attention."),
          d: int = typer.Option(4096, "--d", help="D: model width."),
          f: int = typer.Option(16384, "--f", help="F: MLP hidden width (mlp)."),
          batch: int = typer.Option(8, "--batch", help="B: sequences."),
          seq: int = typer.Option(2048, "--seq", help="L: tokens per sequence."),
          tp: int = typer.Option(4, "--tp", help="Tensor-parallel degree."),
          dp: int = typer.Option(2, "--dp", help="Data-parallel degree (mlp's data-parallel form)."),
          heads: int = typer.Option(32, "--heads", help="H: attention heads (attention)."),
          kv_heads: int | None = typer.Option(None, "--kv-heads", help="G: key/value heads (default H)."),
          form: str | None = typer.Option(None, "--form", help="Only this form (mlp: single, batched, row, column, "
                                          "megatron, data; attention: unsharded, tp)."),
          hardware: str = HARDWARE_OPT,
          numpy: bool = typer.Option(False, "--numpy", help="Print a self-checking NumPy program instead."),
          as_json: bool = JSON_OPT, explain: bool = EXPLAIN_OPT) -> None:
    """Sharding exercise: every tensor's per-rank shape (einsum), FLOPs and collectives, forward and backward."""
    from ..core.catalogue import load_hardware
    from ..core.errors import LlmcalcError
    from ..core.units import fmt
    from ..study import shard as sh
    from ._common import table

    if block not in ("mlp", "attention"):
        raise LlmcalcError(f"shard expects mlp or attention, got {block!r}")
    hw = load_hardware(hardware)
    g = heads if kv_heads is None else kv_heads
    forms = (sh.shard_mlp(d, f, batch, seq, tp, hw, dp) if block == "mlp"
             else sh.shard_attention(d, heads, g, batch, seq, tp, hw))
    if form is not None:
        names = [x.name for x in forms]
        if form not in names:
            raise LlmcalcError(f"--form expects one of {', '.join(names)}, got {form!r}")
        forms = [x for x in forms if x.name == form]
    if numpy:
        from ..study.shard_numpy import attention_script, mlp_script

        typer.echo(mlp_script(d, f, batch, seq, tp, dp) if block == "mlp" else
                   attention_script(d, heads, g, batch, seq, tp), nl=False)
        return
    if as_json:
        typer.echo(json.dumps({"block": block, "hardware": hw.name, "forms": [
            {"name": x.name, "title": x.title, "ops": [o.as_dict() for o in x.ops], "totals": sh.totals(x),
             "notes": list(x.notes), "figures": [fg.as_dict() for fg in x.figures()]} for x in forms]},
            indent=2, default=_default))
        return
    sizes = f"B={batch}, L={seq}, D={d}" + (f", F={f}" if block == "mlp" else f", H={heads}, G={g}, K={d // heads}")
    typer.echo(f"Sharding exercise: {block} ({sizes}), bf16, on {hw.display_name}")
    for x in forms:
        typer.echo(f"\n{x.title}")
        if explain:
            for fg in x.figures():
                typer.echo(fg.explain())
        else:
            rows = []
            for o in x.ops:
                rows.append((f"{o.phase[:3]}  {o.what}", o.einsum, o.shape,
                             fmt(o.flops.value, "FLOP") if o.flops else "",
                             f"{o.collective} n={o.group}" if o.collective else "",
                             fmt(o.bytes_per_rank.value, "B").split(" (")[0] if o.bytes_per_rank else "",
                             fmt(o.time.value, "s") if o.time else ""))
            typer.echo(table(rows, ("step", "einsum (per rank)", "shape (per rank)", "FLOPs/rank", "collective",
                                    "bytes/rank", "time")))
        t = sh.totals(x)
        typer.echo(f"  per rank: forward {fmt(t['forward_flops'], 'FLOP')}, backward {fmt(t['backward_flops'], 'FLOP')}"
                   f"; collectives {fmt(t['bytes_per_rank'], 'B')} in {fmt(t['time_s'], 's')}")
        for n in x.notes:
            typer.echo(f"  * {n}")
