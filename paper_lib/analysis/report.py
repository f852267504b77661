"""REPORT.md: every claim of the paper (docs/paper.md §5), the paper's number, ours and a verdict — from artifacts.

Nothing here is typed by hand except the paper's numbers (from :mod:`~paper_lib.analysis.paper_numbers`). The report
carries no timestamp, so regenerating it from the same runs gives the same bytes.
"""

from __future__ import annotations

from pathlib import Path

import pandas as pd

from paper_lib.analysis import paper_numbers as paper
from paper_lib.experiments.plan import departures, main_loss_type
from paper_lib.paths import artifact_path

__all__ = ["claims", "write_report"]


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
            "verdict": "reproduced" if ok else "not reproduced",
            "why": "exact to float64 round-off on a tiny GPT-2; fails without its two assumptions"}  # fmt: skip


def _table1(scale, root) -> list[dict]:
    """Table 1 per tier: the pooled verdict of :func:`.tables.toy_verdict`; the footnote's 5× rate; the
    sampling-only ablation."""
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
        complete = "" if v["pairs"] >= planned.get(tier, 0) else f" (partial: {v['pairs']} of {planned[tier]} planned)"
        rates = ", ".join(sorted({f"{a:g}/{b:g}" for a, b in zip(part.lr_grpo, part.lr_lambda)}))
        ours = (f"λ−GRPO {v['delta']:+.3f} [{v['ci_low']:+.3f}, {v['ci_high']:+.3f}] over {v['pairs']} paired seeds"
                f"{complete} "
                f"(p = {v['p_perm']:.3g}, MDE {v['mde']:.3f}); λ higher in {v['wins']}/{v['configs']} configs; "
                f"converged GRPO {_converged(part.conv_grpo.sum(), part.seeds.sum())}, λ-GRPO "
                f"{_converged(part.conv_lambda.sum(), part.seeds.sum())}; lr GRPO/λ {rates}")  # fmt: skip
        if v["verdict_as_first_stated"] != v["verdict"]:
            ours += f" (the rule as first stated: {v['verdict_as_first_stated']})"
        rows.append(
            {
                "claim": f"Table 1 ({tier}): λ-GRPO hits the toy target more often than GRPO",
                "paper": f"{paper_wins}/6 configs, mean Δ {t.paper_delta.mean():+.3f}",
                "ours": ours,
                "verdict": v["verdict"] + (" (interim)" if complete else ""),
                "why": "pooled sign-flip test and 95% CI of the paired difference (analysis.toy_verdict); "
                "'not reproduced' needs p < 0.05 against λ, or no effect with a CI below half the "
                "paper's Δ (table1_toy, table_toy_seeds)"
                + (
                    "; interim: the tier is still being trained, and its verdict is decided again, by the same "
                    "rule, once every planned pair is in"
                    if complete
                    else ""
                ),
            }
        )
    rows += _toy_footnote(scale, root) + _toy_ablation(scale, root)
    return rows


def _converged(k, n) -> str:
    """``k/n`` converged seeds with the exact (Clopper–Pearson) 95% interval of the share."""
    from paper_lib.analysis.stats import clopper_pearson

    low, high = clopper_pearson(int(k), int(n))
    return f"{int(k)}/{int(n)} [{low:.2f}, {high:.2f}]"


def _toy_footnote(scale, root) -> list[dict]:
    rates = _table("table_toy_rates", scale, root)
    high = None if rates is None else rates[rates.lr == 5e-5]  # the paper's 5x rate (the pretrained tiers)
    if high is None or high.empty:
        return []
    conv = {m: f"{int(g.converged.sum())}/{int(g.seeds.sum())}" for m, g in high.groupby("method")}
    total, seeds = int(high.converged.sum()), int(high.seeds.sum())
    worst = float((high.converged / high.seeds).max())
    verdict = "reproduced" if total == 0 else ("not reproduced" if worst > 0.5 else "inconclusive")
    return [{"claim": "Footnote: at 5× the learning rate (5e-5) neither method converges on the target",
             "paper": "no config converges", "ours": f"{', '.join(sorted(set(high.tier)))}, lr 5e-5: converged {conv}",
             "verdict": verdict, "why": f"{total}/{seeds} seeds converged (> 50% of last-50-step samples on target); "
                                        "'not reproduced' needs more than half of a method's seeds"}]  # fmt: skip


def _toy_ablation(scale, root) -> list[dict]:
    a = _table("table_toy_ablation", scale, root)
    if a is None:
        return []
    wide = a.pivot_table(index=["tier", "lr"], columns="method", values="mean")
    gap = (wide["λ-GRPO"] - wide["GRPO"]).groupby(level="tier").mean()
    ours = "; ".join(f"{tier}: mean λ−GRPO {g:+.3f} over the rates" for tier, g in gap.items())
    return [{"claim": "(ablation) masking only the sampling (full softmax in the loss)", "paper": "not run",
             "ours": ours, "verdict": "reported",
             "why": "the bias of a sampling-only mask on the comparison (table_toy_ablation)"}]  # fmt: skip


def _absent(claim: str, paper_value: str, notebook: str) -> dict:
    """The row of a claim whose artifacts are missing (its notebook has not run on this results folder)."""
    return {"claim": claim, "paper": paper_value, "ours": f"not checked (notebook {notebook} absent)",
            "verdict": "inconclusive", "why": ""}  # fmt: skip


def _flat(scale, root) -> dict:
    t = _table("table_flat_trees", scale, root)
    if t is None:
        return _absent("§3.2: ≥ 99.8% of groups induce a non-trivial PRM (few flat trees)", "99.8%", "03")
    ours = "; ".join(f"G={r.G}: {r.flat}/{r.groups} flat" for r in t.itertuples())
    ok = bool((t.non_flat_share >= 0.99).all())
    return {"claim": "§3.2: ≥ 99.8% of groups induce a non-trivial PRM (few flat trees)",
            "paper": "; ".join(f"G={G}: {f}/{n} flat" for G, (f, n) in paper.FLAT_TREES.items()), "ours": ours,
            "verdict": "reproduced" if ok else "not reproduced",
            "why": "every group's B(G) logged during GRPO training"}  # fmt: skip


_PAPER_MODEL = {"qwen-1.5b": "Qwen", "llama-1b": "Llama"}  # the paper's Table 2 rows; CPU stand-ins compare with Qwen


def _model_note(model: str, models) -> str:
    return f"{model}, " if len(set(models)) > 1 else ""


def _verdict(better: bool, p: float, seeds: int) -> str:
    if not better:
        return "not reproduced"
    if seeds < 2:  # one run per cell, as the paper: no test is possible
        return "reproduced"
    return "reproduced" if p < 0.05 else "inconclusive"


def _table2(scale, root) -> list[dict]:
    t2, t3 = _table("table2_downstream", scale, root), _table("table3_differences", scale, root)
    if t2 is None or t3 is None:
        return [_absent("Table 2: λ-GRPO's average beats GRPO's", "Qwen and Llama, β = 0 and 0.04", "05")]
    avg = t2[t2.set == "average"].set_index(["model", "version", "beta"])
    rows = []
    for model in dict.fromkeys(t2.model):
        for beta in sorted(t2[t2.model == model].beta.dropna().unique()):
            lam, grpo = avg.loc[(model, "λ-GRPO", beta)], avg.loc[(model, "GRPO", beta)]
            p = t3[(t3.model == model) & (t3.beta == beta) & (t3.set == "average")].p_paired.iloc[0]
            paper_row = _PAPER_MODEL.get(model, "Qwen")
            paper_q = paper.TABLE2[(paper_row, beta)]
            test = f"paired p = {p:.2f}" if lam.seeds > 1 else "one run per cell"
            rows.append({"claim": f"Table 2 ({_model_note(model, t2.model)}β={beta:g}): λ-GRPO's average beats GRPO's",
                         "paper": f"{paper_row} {paper_q['λ-GRPO']:.4f} vs {paper_q['GRPO']:.4f}",
                         "ours": f"{lam['mean']:.3f} vs {grpo['mean']:.3f} ({test})",
                         "verdict": _verdict(lam["mean"] > grpo["mean"], p, lam.seeds),
                         "why": "mean over the five held-out sets and the seeds; paired t over seeds"})  # fmt: skip
    cells = t3[t3.set != "average"]
    for key, col in (("vs_grpo", "lambda_minus_grpo"), ("vs_base", "lambda_minus_base")):
        wins, n = int((cells[col] > 0).sum()), len(cells)
        pw, pn = paper.WINS[key]
        rows.append({"claim": f"Win count {key.replace('_', ' ')}", "paper": f"{pw}/{pn}", "ours": f"{wins}/{n}",
                     "verdict": "reproduced" if wins / n >= pw / pn else "not reproduced",
                     "why": "cells where λ-GRPO's mean accuracy is higher (averages excluded)"})  # fmt: skip
    return rows


def _peaks(scale, root) -> list[dict]:
    from paper_lib.analysis.tables import peak_claims

    peaks = _table("table_peaks", scale, root)
    if peaks is None:
        return [_absent("λ-GRPO's validation peaks: higher and earlier", "all 4 settings", "04")]
    c = peak_claims(peaks)
    main = c[c.loss_type == main_loss_type(scale)]
    rows = []
    for r in main.itertuples():
        at = f"{_model_note(r.model, c.model)}β={r.beta:g}"
        rows.append({"claim": f"Every λ-GRPO run peaks higher ({at})", "paper": "all 4 settings",
                     "ours": f"{r.seeds_lambda_higher}/{r.seeds} seeds; peaks {r.lambda_peak:.3f} vs "
                             f"{r.grpo_peak:.3f}",
                     "verdict": "reproduced" if r.every_lambda_seed_higher else "not reproduced",
                     "why": "paired by seed, same starting policy"})  # fmt: skip
        rows.append({"claim": f"Peak improvement > 10% ({at})", "paper": "> 10% on average",
                     "ours": f"{r.abs_improvement:+.3f} absolute, {100 * r.rel_improvement:+.1f}% relative (p = "
                             f"{r.paired_p:.2f})",
                     "verdict": _verdict(r.rel_improvement > 0.10, r.paired_p, r.seeds),
                     "why": "relative to GRPO's mean peak; the paper does not say relative or absolute"})  # fmt: skip
        rows.append({"claim": f"Peak in < half the steps ({at})", "paper": "< 0.5× GRPO's steps",
                     "ours": f"{r.step_ratio:.2f}× ({r.lambda_peak_step:.0f} vs {r.grpo_peak_step:.0f} steps)",
                     "verdict": "reproduced" if r.step_ratio < 0.5 else "not reproduced",
                     "why": "first step at the peak validation accuracy, mean over seeds"})  # fmt: skip
    for r in c[c.loss_type != main_loss_type(scale)].itertuples():
        kind = "per-sequence normalisation (authors' code)" if r.loss_type == "grpo" else "token-level normalisation"
        rows.append(
            {
                "claim": f"Ablation: {kind}, {_model_note(r.model, c.model)}β={r.beta:g}",
                "paper": "not reported",
                "ours": f"peaks λ {r.lambda_peak:.3f} vs GRPO {r.grpo_peak:.3f}",
                "verdict": "reported",
                "why": "docs/paper.md §7: the authors normalise per sequence",
            }
        )
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
    rows = [_theorem(scale, root), *_table1(scale, root), _flat(scale, root), *_table2(scale, root),
            *_peaks(scale, root), *_overhead(scale, root)]  # fmt: skip
    return pd.DataFrame(rows)


def write_report(scale: str, root=None) -> Path:
    from paper_lib.paths import markdown_table

    table = claims(scale, root)
    counts = table.verdict.value_counts().to_dict()
    lines = [f"# REPORT ({scale} scale): the paper's claims, re-made from our runs", "",
             "Generated by `notebooks/07_report.ipynb` from the registered artifacts of notebooks 01–06. 'paper' "
             "quotes the paper (docs/paper.md); 'ours' is computed here. Verdicts: " +
             ", ".join(f"{k}: {v}" for k, v in sorted(counts.items())) + ".", "", markdown_table(table), "",
             "## How this scale departs from the paper", ""]  # fmt: skip
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
