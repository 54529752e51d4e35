"""``llmcalc calibrate``: fit the training efficiency terms to your measured step times, write a profile."""

from __future__ import annotations

import typer

from ._app import app
from ._common import EXPLAIN_OPT, FORCE_OPT, JSON_OPT, table, user_errors, write_out


@app.command()
@user_errors
def calibrate(model: str | None = typer.Argument(None, help="Model of a single measured layout (or use "
                                                 "--measurements FILE).", show_default=False),
              hardware: str | None = typer.Option(None, "--hardware", "-H", help="Accelerator (default: the file's "
                                                  "'hardware:', else h100-sxm)."),
              measurements: str | None = typer.Option(None, "--measurements", "-m", help="YAML with 'hardware:' and "
                                                      "a list of measured layouts (see README)."),
              gpus: int | None = typer.Option(None, "--gpus", "-n"), tp: int = typer.Option(1, "--tp"),
              pp: int = typer.Option(1, "--pp"), dp: int | None = typer.Option(None, "--dp"),
              cp: int = typer.Option(1, "--cp"), ep: int = typer.Option(1, "--ep"),
              zero: int = typer.Option(0, "--zero"), sp: bool | None = typer.Option(None, "--sp/--no-sp"),
              interleave: int = typer.Option(1, "--interleave", "-v"),
              micro_batch: int = typer.Option(1, "--micro-batch", "-b"), seq: int = typer.Option(2048, "--seq", "-L"),
              global_batch: int | None = typer.Option(None, "--global-batch"),
              recompute: str = typer.Option("none", "--recompute"),
              attention: str = typer.Option("flash", "--attention", help="flash or unfused."),
              tp_comm_overlap: bool = typer.Option(False, "--tp-comm-overlap"),
              step_time: str | None = typer.Option(None, "--step-time", help="Measured step time: 2.1 or '2.1 s'."),
              tokens_per_s: float | None = typer.Option(None, "--tokens-per-s", help="Measured tokens/s (all GPUs)."),
              fit: str | None = typer.Option(None, "--fit", help="Comma list of terms to fit: matmul (default), "
                                             "attention_flash, attention_unfused, moe, half_width."),
              output: str | None = typer.Option(None, "--output", "-o", help="Write the profile YAML here (an "
                                                "existing file only with --force)."),
              force: bool = FORCE_OPT,
              as_json: bool = JSON_OPT, explain: bool = EXPLAIN_OPT) -> None:
    """Fit efficiency terms to measured step times (least squares on log time); write a --profile YAML."""
    import json

    from ..core.catalogue import load_hardware
    from ..core.efficiency import training_efficiency
    from ..core.errors import LlmcalcError
    from ..validation.calibrate import fit as fit_
    from ..validation.calibrate import measurement_from, profile_yaml, read_measurements

    hw = load_hardware(hardware) if hardware else None
    rows, names = [], None
    if measurements is not None:
        hw, rows, names = read_measurements(measurements, hw)
    if model is not None:
        hw = hw or load_hardware("h100-sxm")
        row = {"model": model, "tp": tp, "pp": pp, "cp": cp, "ep": ep, "zero": zero, "interleave": interleave,
               "micro_batch": micro_batch, "seq": seq, "global_batch": global_batch, "recompute": recompute,
               "attention": attention, "tp_comm_overlap": tp_comm_overlap, "step_time": step_time,
               "tokens_per_s": tokens_per_s}
        row.update({k: v for k, v in (("gpus", gpus), ("dp", dp), ("sp", sp)) if v is not None})
        rows.append(measurement_from(row, hw, "", options=True))
    if not rows:
        raise LlmcalcError("calibrate needs a measured layout: MODEL with --global-batch and --step-time (or "
                           "--tokens-per-s), or --measurements FILE")
    if fit is not None:
        names = tuple(x.strip() for x in fit.split(",") if x.strip())
    names = names or ("matmul",)
    base = training_efficiency(hw)
    f = fit_(rows, base, names, origin=f"calibrated ({len(rows)} measurement(s))")
    text = profile_yaml(f, hw.name)
    if output:
        write_out(text, output, force=force)
    if as_json:
        typer.echo(json.dumps({"hardware": hw.name, "fitted": {n: getattr(f.efficiency, n) for n in names},
                               "defaults": {n: getattr(base, n) for n in names},
                               "rms_log_residual": f.rms_log_residual, "warnings": list(f.warnings),
                               "measurements": [{"label": a, "measured_s": b, "predicted_s": c, "residual": d}
                                                for a, b, c, d in f.rows]}, indent=2))
        return
    typer.echo(f"Calibrated on {len(rows)} measured layout(s) on {hw.display_name}: least squares on "
               f"ln(predicted/measured) step time")
    typer.echo(table([(n, f"{getattr(base, n):.4g}", f"{getattr(f.efficiency, n):.4g}") for n in names],
                     ("term", "default", "fitted")))
    typer.echo(table([(a, f"{b:.4g} s", f"{c:.4g} s", f"{d:+.2%}") for a, b, c, d in f.rows],
                     ("measurement", "measured", "predicted", "residual")))
    typer.echo(f"rms log residual {f.rms_log_residual:.3g}"
               + (" (as many terms as measurements: an exact fit, no check of the model)"
                  if len(names) == len(rows) else ""))
    for w in f.warnings:
        typer.echo(f"  * {w}")
    if explain:  # the step-time derivation of the first measurement under the fitted efficiencies
        from ..training.step import training_step

        m0 = rows[0]
        typer.echo(f"\nobjective: minimise sum over measurements of ln(predicted/measured)^2 (Gauss-Newton)\n"
                   f"derivation of '{m0.label}' under the fitted profile:")
        typer.echo(training_step(m0.model, hw, m0.layout, global_batch=m0.global_batch, micro_batch=m0.micro_batch,
                                 seq=m0.seq, gpus=m0.layout.gpus, recompute=m0.recompute, efficiency=f.efficiency,
                                 attention=m0.attention, tp_comm_overlap=m0.tp_comm_overlap,
                                 check_memory=False).explain())
    if not output:
        typer.echo("\n" + text.rstrip())
    else:
        typer.echo(f"use it with: llmcalc step ... --profile {output}")
