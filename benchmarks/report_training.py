"""Predicted vs published training step times under the shipped efficiency defaults, calibration rows and
held-out test rows kept apart (llmcalc/validation/training_cases.py lists the rows and their sources).

    python benchmarks/report_training.py           # the shipped defaults, every row
    python benchmarks/report_training.py --refit    # re-run the least-squares fit that produced them

--refit fits A100 (matmul, attention_unfused, GEMM half width) on the A100 rows marked 'calibrate' and H100
(matmul and attention_flash, jointly) on the H100 rows marked 'calibrate' with llmcalc.validation.calibrate, prints
the fitted values beside the shipped ones, and evaluates every row with the refitted set. Nothing is tuned per row.
"""

from __future__ import annotations

import argparse
from dataclasses import replace


def evaluate(efficiencies: dict | None = None) -> list[dict]:
    """One dict per case: predicted and published step time, throughput error, band, role."""
    from llmcalc.core.catalogue import load_hardware
    from llmcalc.core.efficiency import training_efficiency
    from llmcalc.validation.training_cases import CASES, REFERENCE_IDS, measurement

    out = []
    for c in CASES:
        m = measurement(c)
        te = (efficiencies or {}).get(c.hardware) or training_efficiency(load_hardware(c.hardware))
        pred = m.predict(te)
        # throughput error: published time / predicted time - 1 (positive = we predict faster)
        out.append({"case": c.id, "role": c.role, "source": c.source, "predicted_s": pred, "published_s": m.step_time_s,
                    "throughput_error": m.step_time_s / pred - 1, "band": c.band,
                    "inside": abs(m.step_time_s / pred - 1) <= c.band, "reference": c.id in REFERENCE_IDS,
                    "note": c.note})
    return out


def refit() -> dict:
    """The fit that produced the shipped values, in its order: A100 matmul, unfused attention and the GEMM half
    width on Korthikanti/Narayanan (unfused attention, so FlashAttention plays no part); then each accelerator's
    A100's FlashAttention term, and H100's matmul and FlashAttention term together, on their calibration rows
    with the half width fixed."""
    from llmcalc.core.catalogue import load_hardware
    from llmcalc.core.efficiency import training_efficiency
    from llmcalc.validation.calibrate import fit
    from llmcalc.validation.training_cases import CASES, measurement

    def cal(hw, source_word):
        return [measurement(c) for c in CASES if c.role == "calibrate" and c.hardware == hw
                and source_word in c.source]

    a = fit(cal("a100-sxm-80gb", "et al."), training_efficiency(load_hardware("a100-sxm-80gb")),
            ("matmul", "attention_unfused", "half_width"), origin="refit")
    a2 = fit(cal("a100-sxm-80gb", "MosaicML"), a.efficiency, ("attention_flash",), origin="refit")
    h100 = replace(training_efficiency(load_hardware("h100-sxm")), half_width=a.efficiency.half_width)
    # matmul and FlashAttention jointly on every second row of the Megatron-Core and MosaicML H100 tables
    h = fit(cal("h100-sxm", ""), h100, ("matmul", "attention_flash"), origin="refit")
    for name, f in (("a100-sxm-80gb", a), ("a100-sxm-80gb", a2), ("h100-sxm", h)):
        vals = ", ".join(f"{p} {getattr(f.efficiency, p):.4g}" for p in f.parameters)
        print(f"refit {name}: {vals}  (rms log residual {f.rms_log_residual:.2g} over {len(f.rows)} rows)")
    return {"a100-sxm-80gb": a2.efficiency, "h100-sxm": h.efficiency}


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--refit", action="store_true", help="re-run the calibration fit first")
    args = ap.parse_args()
    effs = refit() if args.refit else None
    rows = evaluate(effs)
    print(f"{'case':28s} {'role':9s} {'pred s':>9s} {'pub s':>9s} {'tput err':>9s} {'band':>6s}  ok   note")
    for r in rows:
        flag = "yes" if r["inside"] else "NO"
        ref = " [reference]" if r["reference"] else ""
        print(f"{r['case']:28s} {r['role']:9s} {r['predicted_s']:9.3f} {r['published_s']:9.3f} "
              f"{r['throughput_error']:+9.1%} {r['band']:6.0%}  {flag:4s} {r['note']}{ref}")
    test = [r for r in rows if r["role"] == "test"]
    print(f"\nheld-out rows inside their band: {sum(r['inside'] for r in test)} of {len(test)}; "
          f"reference (acceptance) rows: {sum(r['inside'] for r in rows if r['reference'])} of "
          f"{sum(r['reference'] for r in rows)}")


if __name__ == "__main__":
    main()
