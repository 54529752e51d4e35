"""The study kit: one-page sheets, the daily drill, sharding exercises and trade-off explainers."""

from __future__ import annotations

import json

import typer

from ._app import app
from ._common import EXPLAIN_OPT, FORCE_OPT, HARDWARE_OPT, JSON_OPT, complete_models, user_errors, write_out

SHEET_MODEL = typer.Argument(None, help="Catalogue name, YAML or config.json (default llama-3.1-70b; the "
                             "notation and bytes topics use it for their examples).", autocompletion=complete_models,
                             show_default=False)


@app.command()
@user_errors
def sheet(topic: str = typer.Argument(..., help="notation, flops, attention, parallelism, bytes, memory, inference, "
                                      "serving, scaling, or all (with -o DIR)."),
          model: str | None = SHEET_MODEL, hardware: str = HARDWARE_OPT,
          fmt: str = typer.Option("text", "--format", "-f", help="text, md or html (one printable page)."),
          output: str | None = typer.Option(None, "--output", "-o", help="Write here (a folder for `all`; an existing "
                                            "file only with --force)."),
          force: bool = FORCE_OPT,
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
            write_out(render(make(t, m, hw, x), fmt), str(d / f"{m.name}-{t}.{ext}"), force=force)
        return
    s = make(topic, m, hw, x)
    if as_json:
        typer.echo(json.dumps({"topic": s.topic, "title": s.title, "setting": s.setting,
                               "blocks": [{"title": b.title, "concern": b.concern, "header": list(b.header),
                                           "rows": [list(r) for r in b.rows], "notes": list(b.notes),
                                           "figures": [f.as_dict() for f in b.figures]} for b in s.blocks]},
                              indent=2, default=_default))
        return
    write_out(render(s, fmt, explain), output, force=force)


def _default(o):
    return o.tolist() if hasattr(o, "tolist") else str(o)


@app.command()
@user_errors
def shard(block: str = typer.Argument(..., help="mlp (2-layer ReLU MLP) or attention."),
          d: int = typer.Option(4096, "--d", help="D: model width."),
          f: int | None = typer.Option(None, "--f", show_default=False, help="F: MLP hidden width (mlp)  "
                                       "[default: 16384]."),
          batch: int = typer.Option(8, "--batch", help="B: sequences."),
          seq: int = typer.Option(2048, "--seq", help="L: tokens per sequence."),
          tp: int = typer.Option(4, "--tp", help="Tensor-parallel degree."),
          dp: int | None = typer.Option(None, "--dp", show_default=False,
                                        help="Data-parallel degree (mlp's data-parallel form)  [default: 2]."),
          heads: int | None = typer.Option(None, "--heads", show_default=False,
                                           help="H: attention heads (attention)  [default: 32]."),
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
    # each block's own options: the other block's were accepted and ignored (shard attention --dp 3 said nothing)
    other = {"mlp": (("--heads", heads), ("--kv-heads", kv_heads)), "attention": (("--f", f), ("--dp", dp))}[block]
    stray = [o for o, v in other if v is not None]
    if stray:
        raise LlmcalcError(f"{' and '.join(stray)} {'does' if len(stray) == 1 else 'do'} not apply to shard {block} "
                           f"(it takes {'--f and --dp' if block == 'mlp' else '--heads and --kv-heads'})")
    f, dp, heads = 16384 if f is None else f, 2 if dp is None else dp, 32 if heads is None else heads
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


@app.command()
@user_errors
def drill(topics: list[str] | None = typer.Argument(None, help="Topics (default: the weakest first): params, "
                                                    "chinchilla, flops, kv, tp-bytes, zero, decode, prefill, "
                                                    "train-days.", show_default=False),
          count: int = typer.Option(5, "--count", "-n", help="Questions to ask."),
          seed: int | None = typer.Option(None, "--seed", help="Random seed (default: today's date, so a day's "
                                          "drill repeats)."),
          answers: str | None = typer.Option(None, "--answers", help="File with one answer per line "
                                             "(e.g. '3.2 GB', '40ms', '1.2e12'); piped stdin works too."),
          stats: bool = typer.Option(False, "--stats", help="Per-topic accuracy and Leitner boxes, then exit."),
          history: str | None = typer.Option(None, "--history", help="History file (default: $LLMCALC_DATA_DIR/"
                                             "drill.jsonl, else $XDG_DATA_HOME/llmcalc/drill.jsonl)."),
          record: bool = typer.Option(True, "--record/--no-record", help="Append graded answers to the history."),
          as_json: bool = JSON_OPT, explain: bool = EXPLAIN_OPT) -> None:
    """Daily drill: questions from the calculators, answers with units graded (10% right, 2x close)."""
    import datetime
    import sys
    import time

    from ..core.errors import LlmcalcError
    from ..study import drill as dr

    path = dr.history_path(history)
    past = dr.load_history(path)
    if stats:
        return _drill_stats(dr, past, path, as_json)
    seed = int(datetime.date.today().strftime("%Y%m%d")) if seed is None else seed
    qs = dr.questions(topics, count, seed, past)
    given: list[str] | None
    if answers is not None:
        from ..core.errors import SpecError
        from ..core.textfile import read_spec_text

        try:  # a regular UTF-8 file of bounded size (never /dev/zero or a FIFO), like every file we read
            given = read_spec_text(answers).splitlines()
        except SpecError as e:
            raise LlmcalcError(f"--answers {e}") from None
    elif not sys.stdin.isatty():
        given = sys.stdin.read().splitlines()
    else:
        given = None  # interactive
    results, records = [], []
    for i, q in enumerate(qs):
        if not as_json:
            typer.echo(f"\nQ{i + 1}/{len(qs)} [{q.topic}] {q.text}")
        if given is None:
            while True:  # a typo ('128 kiB') is asked again, not graded
                text = typer.prompt("  your answer (with units; empty to see it)", default="", show_default=False)
                g = dr.grade(text, q.answer.value, q.answer.unit)
                if g.verdict != "unreadable":
                    break
                typer.echo(f"  cannot read that: {g.message.removeprefix('unit: ')}")
        else:
            text = given[i] if i < len(given) else ""
            g = dr.grade(text, q.answer.value, q.answer.unit)
        results.append({**q.as_dict(), "answer": text, "verdict": g.verdict, "given": g.given, "ratio": g.ratio,
                         "message": g.message})
        if g.verdict not in ("skipped", "unreadable"):
            records.append({"time": time.time(), "seed": seed, "topic": q.topic, "question": q.text,
                            "expected": dr._plain(q.answer.value), "unit": q.answer.unit, "answer": text,
                            "verdict": g.verdict, "ratio": g.ratio})
        if as_json:
            continue
        if g.verdict == "skipped":
            typer.echo(f"  answer: {q.answer.text()}")
        elif g.verdict == "unreadable":
            typer.echo(f"  {text.strip()} → UNREADABLE, not recorded ({g.message.removeprefix('unit: ')}); the "
                       f"calculator says {q.answer.text()}")
        else:
            how = f"×{g.ratio:.3g} of it" if g.ratio is not None else g.message
            typer.echo(f"  {text.strip()} → {g.verdict.upper()} (the calculator says {q.answer.text()}; {how})")
        typer.echo("  derivation:")
        for f in q.derivation:
            if explain:
                typer.echo("\n".join("    " + ln for ln in f.explain().splitlines()))
            else:
                sub = f" = {f.substituted}" if f.substituted and f.substituted != f.formula else ""
                typer.echo(f"    {f.name} = {f.text()}" + (f"   [{f.formula}{sub}]" if f.formula else ""))
    if record:
        dr.append_history(path, records)
    if as_json:
        typer.echo(json.dumps({"seed": seed, "history": str(path), "questions": results}, indent=2,
                              default=_default))
        return
    graded = [r for r in results if r["verdict"] not in ("skipped", "unreadable")]
    unread = sum(r["verdict"] == "unreadable" for r in results)
    if graded or unread:
        tally = {v: sum(r["verdict"] == v for r in graded) for v in ("right", "close", "wrong")}
        typer.echo(f"\n{tally['right']} right, {tally['close']} close, {tally['wrong']} wrong"
                   + (f", {unread} unreadable (not recorded)" if unread else "")
                   + (f"; history: {path}" if record else ""))
    else:
        typer.echo(f"\n(no answers given: seed {seed}; answer with --answers FILE, piped stdin or interactively)")


def _drill_stats(dr, past, path, as_json: bool) -> None:
    from ._common import table

    b = dr.boxes(past)
    nxt = dr.order(None, past)
    if as_json:
        typer.echo(json.dumps({"history": str(path), "answers": len(past), "topics": b, "next": nxt}, indent=2))
        return
    typer.echo(f"Drill history: {path} ({len(past)} graded answers)")
    rows = [(t, str(b[t]["box"]), str(b[t]["attempts"]), str(b[t]["right"]), str(b[t]["close"]),
             str(b[t]["wrong"]), "-" if b[t]["accuracy"] is None else f"{b[t]['accuracy']:.0%}") for t in nxt]
    typer.echo(table(rows, ("topic (next first)", "box", "asked", "right", "close", "wrong", "accuracy")))
    typer.echo("Leitner boxes 1-5: right moves a topic up, wrong back to 1; the lowest boxes come first.")


@app.command()
@user_errors
def why(topic: str = typer.Argument(..., help="zero3, gqa, mla, pp, tp-within-node or speculative."),
        model: str = typer.Argument(..., help="Catalogue name, YAML or config.json.", autocompletion=complete_models,
                                    show_default=False),
        hardware: str = HARDWARE_OPT,
        gpus: int | None = typer.Option(None, "--gpus", show_default=False, help="GPUs (zero3, pp)  [default: 64]."),
        seq: int | None = typer.Option(None, "--seq", show_default=False,
                                       help="Training sequence length (zero3, pp, tp-within-node)  [default: 4096]."),
        global_batch: int | None = typer.Option(None, "--global-batch",
                                                help="Sequences per step (zero3, pp; default --gpus)."),
        context: int | None = typer.Option(None, "--context", show_default=False,
                                           help="Context length (gqa, mla)  [default: 8192]."),
        batch: int | None = typer.Option(None, "--batch", show_default=False,
                                         help="Decode batch (gqa, mla: default 32; speculative: default 1)."),
        draft: str | None = typer.Option(None, "--draft", help="Draft model (speculative; default: the smallest "
                                         "catalogue model with the same vocabulary)."),
        alpha: float | None = typer.Option(None, "--alpha", show_default=False,
                                           help="Acceptance rate (speculative)  [default: 0.8]."),
        gamma: int | None = typer.Option(None, "--gamma", show_default=False,
                                         help="Drafted tokens per step (speculative)  [default: 4]."),
        as_json: bool = JSON_OPT, explain: bool = EXPLAIN_OPT) -> None:
    """A trade-off in this configuration's numbers: ZeRO-3, GQA, MLA, PP, TP within a node, speculative decoding."""
    from ..core.catalogue import load_hardware, load_model
    from ..core.checks import check_count, check_number
    from ..study.why import TOPIC_INPUTS
    from ..study.why import why as explain_

    for v, o in ((gpus, "--gpus"), (seq, "--seq"), (context, "--context"), (batch, "--batch"), (gamma, "--gamma"),
                 (global_batch, "--global-batch")):
        if v is not None:
            check_count(v, o)
    if alpha is not None:
        check_number(alpha, "--alpha", low=0, low_ok=True, high=1, high_ok=False)
    # each topic's own options (TOPIC_INPUTS): the others were ignored without a word (why gqa --alpha 0.5); now a
    # note says so (not an error: `why TOPIC MODEL --gpus 1` stays an answer for every topic, tests/test_errors.py)
    given = {"gpus": gpus, "seq": seq, "global_batch": global_batch, "context": context, "batch": batch,
             "draft": draft, "alpha": alpha, "gamma": gamma}
    flag = lambda name: "--" + name.replace("_", "-")  # noqa: E731
    uses = TOPIC_INPUTS.get(topic, tuple(given))
    stray = [flag(n) for n, v in given.items() if v is not None and n not in uses]
    kw = {n: v for n, v in given.items() if v is not None}  # the rest: the engine's defaults
    if draft is not None:
        kw["draft"] = load_model(draft)
    w = explain_(topic, load_model(model), load_hardware(hardware), **kw)
    if stray:
        from dataclasses import replace

        w = replace(w, notes=(f"ignored: {' and '.join(stray)} {'does' if len(stray) == 1 else 'do'} not apply to "
                              f"why {topic} (it takes {', '.join(map(flag, uses))})", *w.notes))
    if as_json:
        typer.echo(json.dumps({"topic": w.topic, "title": w.title, "text": list(w.lines),
                               "figures": [f.as_dict() for f in w.figures], "assumptions": list(w.notes)},
                              indent=2, default=_default))
        return
    typer.echo(w.title)
    for ln in w.lines:
        typer.echo(ln)
    if explain:
        typer.echo("\nwhere the numbers come from:")
        for f in w.figures:
            typer.echo(f.explain())
    for n in w.notes:
        typer.echo(f"  * {n}")
