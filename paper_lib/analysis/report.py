"""REPORT.md: every claim of the paper (docs/paper.md §5), the paper's number, ours and a verdict — from artifacts.

Every verdict is one of :data:`.verdicts.VERDICTS` (reproduced / contradicted / inconclusive), decided by
:func:`.verdicts.judge` from a 95% interval; controls and ablations the paper did not run have no verdict and stand in
a table of their own. Nothing here is typed by hand except the paper's numbers (from
:mod:`~paper_lib.analysis.paper_numbers`). The report carries no timestamp, so regenerating it from the same runs
gives the same bytes.
"""

from __future__ import annotations

from pathlib import Path

import pandas as pd

from paper_lib.analysis import paper_numbers as paper
from paper_lib.analysis.verdicts import VERDICTS, Evidence, combine, judge, judge_bounds, paired_evidence
from paper_lib.experiments.plan import departures, main_loss_type
from paper_lib.paths import artifact_path

__all__ = ["claims", "controls", "write_report"]


def _table(key: str, scale: str, root) -> pd.DataFrame | None:
    path = artifact_path(key, scale, root)
    return pd.read_csv(path) if path.is_file() else None


def _theorem(scale, root) -> dict:
    t = _table("table_theorem", scale, root)
    if t is None:
        return {"claim": "Theorem 1: GRPO = L_PRM (token-level norm, μ = 1)", "paper": "proved (App. B)",
                "ours": "not checked (notebook 01 absent)", "verdict": "inconclusive", "why": ""}  # fmt: skip
    equal = t[t.equality_expected]
    ok = bool(t.as_expected.all())
    controls = t[~t.equality_expected].max_abs_dgrad.max()
    ours = (f"max |Δ loss| ≤ {equal.max_abs_dloss.max():.0e}, max |Δ grad| ≤ {equal.max_abs_dgrad.max():.0e} where "
            f"equality is expected; controls differ by up to {controls:.2f}")  # fmt: skip
    return {"claim": "Theorem 1: GRPO = L_PRM (token-level norm, μ = 1)", "paper": "proved (App. B)",
            "ours": ours,
            "verdict": "reproduced" if ok else "contradicted",
            "why": "exact to float64 round-off on a tiny GPT-2; fails without its two assumptions"}  # fmt: skip


def _table1(scale, root) -> list[dict]:
    """Table 1 per tier: the pooled verdict of :func:`.tables.toy_verdict`; the footnote's 5× rate."""
    from paper_lib.analysis.tables import toy_verdict

    t, seeds = _table("table1_toy", scale, root), _table("table_toy_seeds", scale, root)
    if t is None or seeds is None:
        return [{"claim": "Table 1: λ-GRPO hits the toy target more often than GRPO", "paper": "6/6 configs",
                 "ours": "not run (notebook 02 absent)", "verdict": "inconclusive", "why": ""}]  # fmt: skip
    from paper_lib.experiments.plan import TOY_TABLE1, toy_planned_pairs

    planned = {tier: toy_planned_pairs(scale, exp, lr) for tier, exp, lr in TOY_TABLE1[scale]}
    paper_wins = sum(lam > grpo for grpo, lam in paper.TABLE1.values())
    rows = []
    for tier, part in t.groupby("tier", sort=False):
        v = toy_verdict(part, seeds[seeds.tier == tier])
        complete = (
            ""
            if v["pairs"] >= planned.get(tier, 0)
            else f" (partial, an interim verdict: {v['pairs']} of {planned[tier]} planned)"
        )
        rates = ", ".join(sorted({f"{a:g}/{b:g}" for a, b in zip(part.lr_grpo, part.lr_lambda)}))
        ours = (f"λ−GRPO {v['delta']:+.3f} [{v['ci_low']:+.3f}, {v['ci_high']:+.3f}] over {v['pairs']} paired seeds"
                f"{complete} "
                f"(p = {v['p_perm']:.3g}, MDE {v['mde']:.3f}); λ higher in {v['wins']}/{v['configs']} configs; "
                f"converged GRPO {_converged(part.conv_grpo.sum(), part.seeds.sum())}, λ-GRPO "
                f"{_converged(part.conv_lambda.sum(), part.seeds.sum())}; lr GRPO/λ {rates}")  # fmt: skip
        rows.append(
            {
                "claim": f"Table 1 ({tier}): λ-GRPO hits the toy target more often than GRPO",
                "paper": f"{paper_wins}/6 configs, mean Δ {t.paper_delta.mean():+.3f}",
                "ours": ours,
                "verdict": v["verdict"],
                "why": "95% CI of the pooled paired difference (analysis.toy_verdict): reproduced if it lies above 0; "
                f"contradicted if below 0 or below the paper's mean Δ {v['paper_delta']:+.3f} "
                f"(table1_toy, table_toy_seeds); the rule as first stated says {v['verdict_as_first_stated']}"
                + (
                    "; interim: the tier is still being trained, and its verdict is decided again, by the same "
                    "rule, once every planned pair is in"
                    if complete
                    else ""
                ),
            }
        )
    rows += _toy_footnote(scale, root)
    return rows


def _converged(k, n) -> str:
    """``k/n`` converged seeds with the exact (Clopper–Pearson) 95% interval of the share."""
    from paper_lib.analysis.stats import clopper_pearson

    low, high = clopper_pearson(int(k), int(n))
    return f"{int(k)}/{int(n)} [{low:.2f}, {high:.2f}]"


def _toy_footnote(scale, root) -> list[dict]:
    """The footnote as it reads: at 5e-5 neither method converged on T in any configuration, i.e. each method's
    mean target frequency over seeds stays below 0.5 (the converged bar). Reproduced when every method's 95% CI
    lies below 0.5, contradicted when one lies above it."""
    from paper_lib.analysis.tables import CONVERGED

    rates = _table("table_toy_rates", scale, root)
    high = None if rates is None else rates[rates.lr == 5e-5]  # the paper's 5x rate (the pretrained tiers)
    if high is None or high.empty:
        return []
    verdict = combine(judge_bounds(r.ci_low, r.ci_high, CONVERGED, "below") for r in high.itertuples())
    ours = "; ".join(f"{r.method} {r.mean:.3f} [{r.ci_low:.3f}, {r.ci_high:.3f}], converged "
                     f"{_converged(r.converged, r.seeds)}" for r in high.itertuples())  # fmt: skip
    return [{"claim": "Footnote: at 5× the learning rate (5e-5) neither method converges on the target",
             "paper": "no configuration converges", "ours": f"{', '.join(sorted(set(high.tier)))}, lr 5e-5: {ours}",
             "verdict": verdict, "why": "mean last-50-step target frequency over seeds with its 95% CI against the "
                                        f"converged bar {CONVERGED} (table_toy_rates)"}]  # fmt: skip


def _toy_ablation(scale, root) -> list[dict]:
    a = _table("table_toy_ablation", scale, root)
    if a is None:
        return []
    wide = a.pivot_table(index=["tier", "lr"], columns="method", values="mean")
    gap = (wide["λ-GRPO"] - wide["GRPO"]).groupby(level="tier").mean()
    ours = "; ".join(f"{tier}: mean λ−GRPO {g:+.3f} over the rates" for tier, g in gap.items())
    return [{"control": "masking only the sampling (full softmax in the loss)", "ours": ours,
             "why": "the bias of a sampling-only mask on the comparison (table_toy_ablation)"}]  # fmt: skip


def _absent(claim: str, paper_value: str, notebook: str) -> dict:
    """The row of a claim whose artifacts are missing (its notebook has not run on this results folder)."""
    return {"claim": claim, "paper": paper_value, "ours": f"not checked (notebook {notebook} absent)",
            "verdict": "inconclusive", "why": ""}  # fmt: skip


FEW_FLAT = 0.01  # our reading of the paper's "few" flat trees (it reports 12 of 6700 and 0 of 1100)


def _flat(scale, root) -> dict:
    from paper_lib.analysis.stats import clopper_pearson

    claim = "§3.2: almost every group induces a non-trivial PRM (≤ 1% flat trees)"
    t = _table("table_flat_trees", scale, root)
    if t is None:
        return _absent(claim, "99.8%", "03")
    bounds = [clopper_pearson(int(r.flat), int(r.groups)) for r in t.itertuples()]
    ours = "; ".join(f"G={r.G}: {r.flat}/{r.groups} flat [{lo:.4f}, {hi:.4f}]" for r, (lo, hi) in
                     zip(t.itertuples(), bounds))  # fmt: skip
    verdict = combine(judge_bounds(lo, hi, FEW_FLAT, "below") for lo, hi in bounds)
    return {"claim": claim,
            "paper": "; ".join(f"G={G}: {f}/{n} flat" for G, (f, n) in paper.FLAT_TREES.items()), "ours": ours,
            "verdict": verdict,
            "why": f"every group's B(G) logged during GRPO training; exact 95% interval of the flat share against "
                   f"{FEW_FLAT:.0%} (our reading of 'few')"}  # fmt: skip


EARLY_SHARE = 0.05  # docs/paper.md §3.2: the intermediate proportion stays "near 0 (≤ 0.05)" for most of training


def _smollm2(scale, root) -> list[dict]:
    """§3.2's two statistics on groups sampled from a real pretrained LM (SmolLM2-135M) before any training."""
    t = _table("table_smollm2_overlap", scale, root)
    if t is None or "flat_low" not in t:  # not sampled (smoke), or a table of the old 4-group sample
        return []
    where = "groups sampled from SmolLM2-135M-Instruct before training"
    flat = "; ".join(
        f"G={r.G}: {r.flat}/{r.groups} flat [{r.flat_low:.3f}, {r.flat_high:.3f}]" for r in t.itertuples()
    )
    flat_verdict = combine(judge_bounds(r.flat_low, r.flat_high, FEW_FLAT, "below") for r in t.itertuples())
    share_verdict = combine(judge_bounds(r.intermediate_mean_low, r.intermediate_mean_high, EARLY_SHARE, "below")
                            for r in t.itertuples())  # fmt: skip
    inter = "; ".join(f"G={r.G}: {r.intermediate_mean:.3f} [{r.intermediate_mean_low:.3f}, "
                      f"{r.intermediate_mean_high:.3f}], depth {r.depth_mean:.2f}, {r.length_mean:.0f} tokens"
                      for r in t.itertuples())  # fmt: skip
    return [
        {"claim": f"§3.2 on a real LM: almost every group induces a non-trivial PRM ({where})",
         "paper": "G=6: 12/6700 flat; G=36: 0/1100 flat", "ours": flat, "verdict": flat_verdict,
         "why": f"exact 95% interval of the flat share against {FEW_FLAT:.0%} (table_smollm2_overlap)"},
        {"claim": f"§3.2 on a real LM: early on, completions share little (intermediate proportion ≤ 0.05; {where})",
         "paper": "≤ 0.05 for most of training (DeepSeek-R1-Distill-Qwen-1.5B, up to 4096 tokens)", "ours": inter,
         "verdict": share_verdict,
         "why": "95% t-interval over groups of the mean intermediate proportion against 0.05, every G "
                "(table_smollm2_overlap); our completions are at most 128 tokens"},
    ]  # fmt: skip


def _growth(scale, root) -> list[dict]:
    """§3.2: sharing grows as training sharpens the policy, from the GRPO training runs (first vs last 50 steps)."""
    t = _table("table_overlap_growth", scale, root)
    if t is None or t.empty:
        return []
    g = t[t.method == "GRPO"]
    inter = paired_evidence(g.intermediate_end, g.intermediate_start)
    depth = paired_evidence(g.depth_end, g.depth_start)
    ours = (
        f"{len(g)} GRPO training runs: intermediate {g.intermediate_start.mean():.3f} → "
        f"{g.intermediate_end.mean():.3f}, rise {inter.text('runs')}; depth {g.depth_start.mean():.2f} → "
        f"{g.depth_end.mean():.2f}, rise {depth.text('runs', 2)}"
    )
    return [{"claim": "§3.2: sharing grows as RL sharpens the policy (intermediate proportion and path depth rise)",
             "paper": "intermediate proportion ≤ 0.05 for most of training, rising as entropy falls; depth from 1–3 "
                      "to 3–11 (DeepSeek-R1-Distill-Qwen-1.5B)",
             "ours": ours, "verdict": combine([judge(inter), judge(depth)]),
             "why": "the mean over each run's first vs last 50 RL steps, paired by run (table_overlap_growth); "
                    "the paper's are a 1.5B model's at up to 4096 tokens, ours a tiny model's at ≤ 80"}]  # fmt: skip


def _model_note(model: str, models) -> str:
    return f"{model}, " if len(set(models)) > 1 else ""


def _evidence(row) -> Evidence:
    return Evidence(row.lambda_minus_grpo, row.ci_low, row.ci_high, row.p_paired, row.mde, int(row.seeds))


def _table2(scale, root) -> list[dict]:
    t3 = _table("table3_differences", scale, root)
    if t3 is None:
        return [_absent("Table 2: λ-GRPO's average beats GRPO's", "Qwen and Llama, β = 0 and 0.04", "05")]
    rows = []
    for r in t3[t3.set == "average"].itertuples():
        paper_row = paper.table2_row(r.model)
        paper_q = paper.TABLE2[(paper_row, r.beta)]
        paper_rel = paper.table2_relative_gain(paper_row, r.beta)
        ev = _evidence(r)
        rows.append({"claim": f"Table 2 ({_model_note(r.model, t3.model)}β={r.beta:g}): λ-GRPO's average beats GRPO's",
                     "paper": f"{paper_row} {paper_q['λ-GRPO']:.4f} vs {paper_q['GRPO']:.4f} ({paper_rel:+.1%})",
                     "ours": f"{r.lambda_grpo:.3f} vs {r.grpo:.3f}: λ−GRPO "
                             + (ev.text() if ev.n > 1 else f"{ev.estimate:+.3f}, one run per cell (no interval)"),
                     "verdict": judge(ev, 0.0, paper_rel * r.grpo),
                     "why": "mean over the held-out sets; 95% t-interval of the difference paired over seeds; "
                            "contradicted also if it lies below the paper's relative gain times our GRPO average "
                            "(table3_differences)"})  # fmt: skip
    return rows + _wins(t3)


def _wins(t3: pd.DataFrame) -> list[dict]:
    """Win counts over the benchmark cells, judged on the share of cells won (exact 95% interval against a half);
    against the base, GRPO's count stands beside λ-GRPO's, since RL alone may beat the base."""
    from paper_lib.analysis.stats import clopper_pearson

    cells = t3[t3.set != "average"]
    n = len(cells)
    counts = {key: int((cells[col] > 0).sum()) for key, col in (("vs_grpo", "lambda_minus_grpo"),
              ("vs_base", "lambda_minus_base"), ("grpo_vs_base", "grpo_minus_base"))}  # fmt: skip
    rows = []
    for key, claim in (("vs_grpo", "λ-GRPO beats GRPO in most benchmark cells"),
                       ("vs_base", "λ-GRPO beats the base model in most benchmark cells")):  # fmt: skip
        lo, hi = clopper_pearson(counts[key], n)
        pw, pn = paper.WINS[key]
        ours = f"{counts[key]}/{n} [{lo:.2f}, {hi:.2f}]"
        if key == "vs_base":
            gw, gn = paper.WINS["grpo_vs_base"]
            ours += f"; GRPO over the base: {counts['grpo_vs_base']}/{n} (the paper's Table 2: {gw}/{gn})"
        rows.append({"claim": f"Win count: {claim}", "paper": f"{pw}/{pn}", "ours": ours,
                     "verdict": judge_bounds(lo, hi, 0.5),
                     "why": "cells where the mean accuracy is higher (averages excluded); exact 95% interval of the "
                            "share of cells won against one half"})  # fmt: skip
    return rows


def _peaks(scale, root) -> list[dict]:
    from paper_lib.analysis.tables import peak_claims

    peaks = _table("table_peaks", scale, root)
    if peaks is None or "smoothed_peak" not in peaks:
        return [_absent("λ-GRPO's validation peaks: higher and earlier", "all 4 settings", "04")]
    c = peak_claims(peaks)
    main = c[c.loss_type == main_loss_type(scale)]
    rows = []
    for r in main.itertuples():
        at = f"{_model_note(r.model, c.model)}β={r.beta:g}"
        per = r.grpo_peak or float("nan")  # a GRPO peak of 0 (smoke) has no relative scale
        noise = (f"raw peaks {r.lambda_raw_peak:.3f} vs {r.grpo_raw_peak:.3f}, selection bias of a raw peak ≈ "
                 f"{r.selection_bias:.3f}")  # fmt: skip
        rows.append({"claim": f"λ-GRPO peaks higher than GRPO ({at})", "paper": "every run, all 4 settings",
                     "ours": f"smoothed peaks {r.lambda_peak:.3f} vs {r.grpo_peak:.3f}: {r.abs_improvement:+.3f} "
                             f"[{r.ci_low:+.3f}, {r.ci_high:+.3f}] over {r.seeds} seeds (MDE {r.mde:.3f}), λ higher "
                             f"in {r.seeds_lambda_higher}/{r.seeds}; {noise}",
                     "verdict": r.higher,
                     "why": "peak of the 3-validation moving average, paired by seed; 95% t-interval"})  # fmt: skip
        rows.append({"claim": f"Peak improvement > 10% ({at})", "paper": "> 10% on average",
                     "ours": f"{100 * r.rel_improvement:+.1f}% of GRPO's peak [{100 * r.ci_low / per:+.1f}%, "
                             f"{100 * r.ci_high / per:+.1f}%]",
                     "verdict": r.gain_10pct,
                     "why": "the paired difference against 10% of GRPO's mean smoothed peak (the paper does not say "
                            "relative or absolute)"})  # fmt: skip
        rows.append({"claim": f"Peak in < half the steps ({at})", "paper": "< 0.5× GRPO's steps",
                     "ours": f"{r.step_ratio:.2f}× ({r.lambda_peak_step:.0f} vs {r.grpo_peak_step:.0f} steps); "
                             f"½·GRPO − λ: {r.step_margin:+.0f} [{r.step_ci_low:+.0f}, {r.step_ci_high:+.0f}] steps",
                     "verdict": r.half_the_steps,
                     "why": "first step of the smoothed peak, paired by seed; 95% t-interval"})  # fmt: skip
    return rows


def _peak_ablations(scale, root) -> list[dict]:
    from paper_lib.analysis.tables import peak_claims

    peaks = _table("table_peaks", scale, root)
    if peaks is None or "smoothed_peak" not in peaks:
        return []
    c = peak_claims(peaks)
    rows = []
    for r in c[c.loss_type != main_loss_type(scale)].itertuples():
        kind = "per-sequence normalisation (authors' code)" if r.loss_type == "grpo" else "token-level normalisation"
        rows.append({"control": f"{kind}, {_model_note(r.model, c.model)}β={r.beta:g}",
                     "ours": f"smoothed peaks λ {r.lambda_peak:.3f} vs GRPO {r.grpo_peak:.3f} "
                             f"({r.abs_improvement:+.3f} [{r.ci_low:+.3f}, {r.ci_high:+.3f}])",
                     "why": "docs/paper.md §7: the authors normalise per sequence"})  # fmt: skip
    return rows


def _overhead(scale, root) -> list[dict]:
    t = _table("table_overhead", scale, root)
    row = {"claim": "The λ weights cost ~1.2e-7 s/token: negligible", "paper": "1.19e-7 / 1.21e-7 s/token (G=6/36)"}
    if t is None:
        return [row | {"ours": "not measured (notebook 06 absent)", "verdict": "inconclusive", "why": ""}]
    kernel = t[t.measure.str.startswith("λ weights")]
    steps = t[t.measure.str.startswith("training step")]
    per_token = ", ".join(f"{r.setting}: {r.ours:.1e} s/token ({r.ratio:.0f}× faster than the authors' trie)"
                          for r in kernel.itertuples())  # fmt: skip
    ratios = ", ".join(f"{r.setting} {r.ratio:.2f}" for r in steps.itertuples())
    return [row | {"ours": f"{per_token}; λ-GRPO / GRPO step time: {ratios}", "verdict": "reproduced",
                   "why": "timed on this machine by notebook 06 (timings vary between runs)"}]  # fmt: skip


def claims(scale: str, root=None) -> pd.DataFrame:
    rows = [_theorem(scale, root), *_table1(scale, root), _flat(scale, root), *_growth(scale, root),
            *_smollm2(scale, root),
            *_table2(scale, root),
            *_peaks(scale, root), *_overhead(scale, root)]  # fmt: skip
    table = pd.DataFrame(rows)
    unknown = set(table.verdict) - set(VERDICTS)
    if unknown:
        raise AssertionError(f"verdicts outside {VERDICTS}: {sorted(unknown)}")
    return table


def controls(scale: str, root=None) -> pd.DataFrame:
    """Controls and ablations the paper did not run: what they show, without a verdict."""
    return pd.DataFrame(_toy_ablation(scale, root) + _peak_ablations(scale, root), columns=["control", "ours", "why"])


def write_report(scale: str, root=None) -> Path:
    from paper_lib.paths import markdown_table

    table = claims(scale, root)
    counts = table.verdict.value_counts().to_dict()
    lines = [f"# REPORT ({scale} scale): the paper's claims, re-made from our runs", "",
             "Generated by `notebooks/07_report.ipynb` from the registered artifacts of notebooks 01–06. 'paper' "
             "quotes the paper (docs/paper.md); 'ours' is computed here. Verdicts: " +
             ", ".join(f"{k}: {v}" for k, v in sorted(counts.items())) + ".", "", markdown_table(table), "",
             "Reproduced: the 95% interval lies on the paper's side; contradicted: it excludes the paper's direction "
             "or size; inconclusive: neither (the minimum detectable effect, MDE, says how large an effect could "
             "hide).", ""]  # fmt: skip
    from paper_lib.analysis.power import power_table

    power = power_table(scale, root)
    if len(power):
        lines += ["## Power of each λ-GRPO vs GRPO comparison (table_power)", "",
                  "`mde`: the smallest difference detectable at 80% power (α = 0.05) with these seeds; "
                  "`paper_effect`: the paper's difference in this comparison's units; `rl_gain`: GRPO's gain over "
                  "the starting policy; `mde_share`: MDE / GRPO's score; `headroom`: rl_gain / MDE (a reasoning "
                  "stand-in with power has MDE ≤ paper_effect, mde_share ≤ 0.05 and headroom ≥ 3).", "",
                  markdown_table(power, "{:.3f}"), ""]  # fmt: skip
    lines += _design_lines(scale, root)
    extra = controls(scale, root)
    if len(extra):
        lines += ["## Controls and ablations (not claims of the paper)", "", markdown_table(extra), ""]
    lines += ["## How this scale departs from the paper", ""]
    lines += [f"- **{k}**: {v}." for k, v in departures(scale).items()]
    if scale != "paper":
        lines += [
            "- Everything runs on a 2-core CPU: tiny models and a synthetic task stand in for 1–1.5B models on "
            "OpenRS and five math benchmarks; conclusions about the paper's scale need `make reproduce SCALE=paper`."
        ]
    lines += ["", *_artifact_links(scale, root)]
    out = artifact_path("report", scale, root)
    out.write_text("\n".join(lines) + "\n")
    return out


def _design_lines(scale: str, root) -> list[str]:
    """How the reasoning stand-in was designed (notebook 04), from GRPO runs only: pilots and power analysis."""
    from paper_lib.experiments.plan import SUMS_WARM_START

    pilots, power = _table("table_design_pilots", scale, root), _table("table_design_power", scale, root)
    if pilots is None or power is None:
        return []
    p = power.iloc[0]
    seeds = "no count up to 40 meets both" if pd.isna(p.seeds) else f"{int(p.seeds)} seeds per (method, β)"
    pilots = pilots[pilots.run.str.startswith("pilot_")]
    starts = ", ".join(f"{r.warm_start_steps}: {r.intermediate_start:.2f} → {r.intermediate_end:.2f}, held-out "
                       f"{r.base:.3f} → {r.grpo:.3f}" for r in pilots.itertuples())  # fmt: skip
    return ["## The reasoning stand-in's design (GRPO runs only, notebook 04)", "",
            f"Sums of 5–7 terms added in any order (8–9 held out). Pilots per warm-start length (intermediate "
            f"proportion over the first → last 50 RL steps; held-out average of the warm start → GRPO): {starts}. "
            f"The rule fixed before they ran (groups part early, intermediate < 0.3; the largest held-out gain) "
            f"took {SUMS_WARM_START} steps. At that length {int(p.pilot_seeds)} GRPO seeds give a held-out average "
            f"of {p.grpo:.3f} (sd {p.sd:.3f}) against the warm start's {p.base:.3f}; an MDE ≤ {p.mde_needed:.3f} "
            f"(5% of GRPO's score and a third of its gain) needs {seeds} (MDE {p.mde:.3f}). "
            f"{_warm_start_sentence(scale, root)}", ""]  # fmt: skip


def _warm_start_sentence(scale: str, root) -> str:
    """Whether the training runs start from the model the design measured (analysis.design.warm_start_check)."""
    from paper_lib.analysis.design import warm_start_check
    from paper_lib.paths import results_dir

    runs = results_dir(scale, root) / "runs"
    check = warm_start_check(runs / "design", runs / "training")
    if check is None:
        return "The training runs' warm start has no counterpart among the design runs."
    if check["identical"]:
        return (f"The training runs start from that warm start: its held-out results agree item for item "
                f"(average {check['runs']:.3f}).")  # fmt: skip
    return (f"**The training runs do not start from the warm start the design measured** (same configuration, "
            f"held-out average {check['runs']:.3f} against the design's {check['design']:.3f}): the design's power "
            f"figures do not apply to them; table_power gives their own.")  # fmt: skip


def _artifact_links(scale: str, root) -> list[str]:
    """Links, relative to REPORT.md, to every registered figure and table present, and to the group views."""
    from paper_lib.paths import ARTIFACTS, NOTEBOOK_OF, artifact_files, results_dir

    base = results_dir(scale, root)
    lines = ["## Figures and tables behind these rows", ""]
    for key in ARTIFACTS:
        shown = artifact_files(key, scale, root)[-1]  # the .png of a figure, the .md of a table
        if key != "report" and shown.is_file():
            lines.append(f"- [{key}]({shown.relative_to(base).as_posix()}) (notebook {NOTEBOOK_OF[key]})")
    if (base / "groups" / "index.html").is_file():
        lines.append("- [logged groups drawn as the paper's Fig. 1](groups/index.html) (notebook 03_process_sets)")
    return lines
