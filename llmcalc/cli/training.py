"""Training compute commands: flops, chinchilla, train."""

from __future__ import annotations

import typer

from ._app import app
from ._common import EXPLAIN_OPT, HARDWARE_OPT, JSON_OPT, MODEL_ARG, emit, quantity_option, table, user_errors

RECOMPUTE_OPT = typer.Option("none", "--recompute", help="Activation recomputation: none, selective or full.")
LAW_OPT = typer.Option("epoch", "--law", help="Loss law: epoch (Besiroglu et al. 2024 refit), hoffmann (unrounded "
                       "TeX constants), hoffmann-rounded, E,A,B,alpha,beta, or a YAML file with those keys.")


def _count(text: str | None, option: str):
    """'300B', '15.6T', '3e11' -> float; the option's name in any error."""
    if text is None:
        return None
    from ..core.errors import LlmcalcError
    from ..core.units import parse_count

    try:
        return parse_count(text)
    except LlmcalcError as e:
        raise LlmcalcError(f"{option}: {e}") from None


@app.command()
@user_errors
def flops(model: str = MODEL_ARG,
          batch: int = typer.Option(1, "--batch", help="B: sequences."),
          seq: int = typer.Option(2048, "--seq", help="L: query tokens per sequence (1 for a decode step)."),
          kv_len: int | None = typer.Option(None, "--kv-len", help="M: positions attended to (default: --seq)."),
          causal: bool = typer.Option(False, "--causal", help="Causal-halved attention (Megatron-LM counter) "
                                      "instead of the full L x M rectangle (HF eager / FlopCounterMode)."),
          recompute: str = RECOMPUTE_OPT,
          mla_absorbed: bool = typer.Option(False, "--mla-absorbed", help="MLA with W_UK/W_UV absorbed (decode)."),
          as_json: bool = JSON_OPT, explain: bool = EXPLAIN_OPT) -> None:
    """FLOPs of one forward pass, matmul by matmul, with backward, training step and 6·N·D beside them."""
    from ..core.catalogue import load_model
    from ..core.units import fmt
    from ..model.flops import forward_flops

    r = forward_flops(load_model(model), batch, seq, kv_len=kv_len, causal=causal, mla_absorbed=mla_absorbed,
                      recompute=recompute.lower())
    if as_json or explain:
        emit(r, as_json, explain)
        return
    typer.echo(r.title)
    for name, block in r.data["per_layer"].items():
        att = f"; mean attended positions {fmt(block['attended_len'], '')}" if "attended_len" in block else ""
        typer.echo(f"\n{name} block: one layer, applies to {block['layers']} layer(s){att}")
        rows = [(mm["label"].split(": ", 1)[-1], mm["einsum"], fmt(mm["flops"], "FLOP")) for mm in block["matmuls"]]
        rows.append(("one layer", "", fmt(block["forward_flops_per_layer"], "FLOP")))
        typer.echo(table(rows, ("matmul", "einsum", "forward FLOPs")))
    keys = [k for k in r.keys() if "/" not in k or k.endswith(("/forward", "/backward", "/train_step"))]
    typer.echo("\ntotals")
    typer.echo(table([(r[k].name, r[k].text()) for k in keys]))
    for a in r.assumptions:
        typer.echo(f"  * {a}")


@app.command()
@user_errors
def chinchilla(model: str | None = typer.Argument(None, help="Catalogue name, YAML or config.json (optional).",
                                                  show_default=False),
               params: str | None = typer.Option(None, "--params", help="N instead of a model: 70B, 1e9."),
               flops: str | None = typer.Option(None, "--flops", help="FLOP budget C: 5.76e23."),
               law: str = LAW_OPT, as_json: bool = JSON_OPT, explain: bool = EXPLAIN_OPT) -> None:
    """Compute-optimal tokens for a model, and N/D for a FLOP budget (20x rule, a loss law, Llama 3's law)."""
    from ..model.scaling import chinchilla as chinchilla_

    spec = None
    if model is not None:
        from ..core.catalogue import load_model

        spec = load_model(model)
    budget = quantity_option(flops, "FLOP", "--flops", "5.76e23 or '3.8e25 FLOP'")
    emit(chinchilla_(spec, params=_count(params, "--params"), flops=budget, law=law), as_json, explain)


@app.command()
@user_errors
def train(model: str | None = typer.Argument(None, help="Catalogue name, YAML or config.json (or use --params).",
                                             show_default=False),
          tokens: str = typer.Option(..., "--tokens", help="Training tokens T: 300e9, 300B, 15.6T."),
          hardware: str = HARDWARE_OPT,
          gpus: int | None = typer.Option(None, "--gpus", help="n: accelerators."),
          params: str | None = typer.Option(None, "--params", help="N instead of (or overriding) the model's."),
          mfu: float | None = typer.Option(None, "--mfu", show_default=False,
                                           help="Model FLOPs utilisation assumed (fraction of peak)  [default: 0.4]."),
          achieved_tflops: float | None = typer.Option(None, "--achieved-tflops",
                                                       help="X: achieved TFLOP/s per GPU; replaces --mfu. X is "
                                                            "compared with hardware FLOPs, 6·N·T by default: add "
                                                            "--recompute full (8·N·T) when X counts recompute as "
                                                            "Narayanan et al. 2021's does (GPT-3, 140, 1024 GPUs: "
                                                            "34 days)."),
          factor: int | None = typer.Option(None, "--flops-per-token-factor",
                                            help="6 (no recompute) or 8 (full recompute) x N per token; "
                                                 "default 8 with --recompute full, else 6."),
          recompute: str = RECOMPUTE_OPT,
          exact: bool = typer.Option(False, "--exact", help="Exact matmul count per token (needs a MODEL)."),
          seq: int = typer.Option(2048, "--seq", help="Sequence length for --exact."),
          price: str | None = typer.Option(None, "--price", help="USD per GPU-hour (default: the catalogue's)."),
          days: float | None = typer.Option(None, "--days", help="Deadline: report the GPUs needed."),
          step_time: str | None = typer.Option(None, "--step-time",
                                               help="Measured step time for MFU/HFU: '13.75 s', '850 ms'; a "
                                                    "bare number is seconds."),
          batch_tokens: str | None = typer.Option(None, "--batch-tokens", help="Tokens per step, e.g. 4M."),
          dtype: str = typer.Option("bf16", "--dtype", help="Peak FLOP/s of this data type."),
          as_json: bool = JSON_OPT, explain: bool = EXPLAIN_OPT) -> None:
    """Training FLOPs, wall-clock days, GPU-hours and cost; or GPUs for a deadline; or MFU from a step time."""
    from ..core.catalogue import load_hardware, load_model
    from ..core.errors import LlmcalcError
    from ..core.units import parse_duration
    from ..training.cost import training_cost

    if model is None and params is None:
        raise LlmcalcError("train needs a MODEL or --params N (e.g. --params 175B)")
    if exact and model is None:
        raise LlmcalcError("--exact needs a MODEL; --params alone has no architecture to count")
    from ..core.checks import check_count

    check_count(seq, "--seq")  # checked even without --exact: every option given is validated, used or not
    if recompute.lower() not in ("none", "selective", "full"):
        raise LlmcalcError(f"--recompute must be none, selective or full, got {recompute!r}")
    if mfu is not None and achieved_tflops is not None:  # one rate per GPU: --achieved-tflops replaced --mfu silently
        raise LlmcalcError(f"give either --mfu ({mfu:g}) or --achieved-tflops ({achieved_tflops:g}), not both: each "
                           "sets the rate per GPU")
    if mfu is not None and step_time is not None:  # the measured step time sets the rate (and so the MFU)
        raise LlmcalcError(f"give either --mfu ({mfu:g}) or --step-time ({step_time}), not both: a measured step time "
                           "implies its own MFU")
    r = training_cost(
        load_model(model) if model is not None else None, _count(tokens, "--tokens"), load_hardware(hardware), gpus,
        params=_count(params, "--params"), mfu=0.4 if mfu is None else mfu,
        achieved_flops_per_s=None if achieved_tflops is None else achieved_tflops * 1e12,
        flops_per_token_factor=factor, recompute=recompute.lower(), exact_seq=seq if exact else None,
        price_usd_per_hour=quantity_option(price, "USD_PER_HOUR", "--price", "2.49 or '$2.49/h'", 3600.0),
        days=days, step_time_s=None if step_time is None else parse_duration(step_time, "--step-time", bare_unit="s"),
        batch_tokens=_count(batch_tokens, "--batch-tokens"), dtype=dtype.lower())
    emit(r, as_json, explain)
