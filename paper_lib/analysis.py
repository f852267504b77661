"""Tables of notebooks 02–05 from the tidy frames of :mod:`paper_lib.collect`, the paper's numbers beside."""

from __future__ import annotations

import numpy as np
import pandas as pd

from paper_lib import paper_numbers as paper
from paper_lib.stats import last_window_mean, mean_ci, paired_t, peak

__all__ = ["toy_table", "flat_trees_table", "per_step_process_stats", "peaks_table", "peak_claims"]

CONVERGED = 0.5  # a seed "converged on the target" when the target is > half of its last-50-step samples


def _ci_cell(values, bounds: tuple[float, float] = (0.0, 1.0)) -> dict:
    """Mean and 95% t-interval of a proportion over seeds, the interval clipped to the proportion's range."""
    m, lo, hi = mean_ci(values)
    return {"mean": m, "ci_low": max(lo, bounds[0]), "ci_high": min(hi, bounds[1])}


def toy_table(df: pd.DataFrame, base_lr: float, window: int = 50) -> pd.DataFrame:
    """Table 1: target frequency in the last ``window`` steps per (lr, n, r_neg, method), mean and 95% CI.

    The paper's value is given beside rows at ``base_lr`` only (at 5× the rate the paper reports only that neither
    method converged in any configuration).
    """
    per_seed = (
        df.groupby(["learning_rate", "toy_n", "toy_r_neg", "label", "seed"])
        .apply(lambda g: last_window_mean(g.step, g.target_frequency, window), include_groups=False)
        .rename("freq")
        .reset_index()
    )
    rows = []
    for (lr, n, r, label), g in per_seed.groupby(["learning_rate", "toy_n", "toy_r_neg", "label"], sort=False):
        paper_grpo, paper_lambda = paper.TABLE1[(n, r)]
        paper_value = {"GRPO": paper_grpo, "λ-GRPO": paper_lambda}.get(label, np.nan) if lr == base_lr else np.nan
        converged = int((g.freq > CONVERGED).sum())
        rows.append({"lr": lr, "n": n, "r_neg": r, "method": label, **_ci_cell(g.freq),
                     "seeds_converged": converged, "seeds": len(g), "paper": paper_value})  # fmt: skip
    table = pd.DataFrame(rows)
    lam = table[table.method == "λ-GRPO"].set_index(["lr", "n", "r_neg"])["mean"]
    table["delta_vs_lambda"] = table.apply(lambda r: lam.get((r.lr, r.n, r.r_neg), np.nan) - r["mean"], axis=1)
    return table.sort_values(["lr", "n", "r_neg", "method"], ascending=[True, True, False, True], ignore_index=True)


def flat_trees_table(groups: pd.DataFrame) -> pd.DataFrame:
    """§3.2: flat B(G) trees among all groups per group size, ours beside the paper's."""
    rows = []
    for G, g in groups.groupby("group_size"):
        flat, total = int(g.flat.sum()), len(g)
        p_flat, p_total = paper.FLAT_TREES.get(G, (np.nan, np.nan))
        rows.append({"G": G, "flat": flat, "groups": total, "non_flat_share": 1 - flat / total,
                     "paper_flat": p_flat, "paper_groups": p_total,
                     "paper_non_flat_share": 1 - p_flat / p_total if p_total == p_total else np.nan})  # fmt: skip
    return pd.DataFrame(rows)


def per_step_process_stats(groups: pd.DataFrame) -> pd.DataFrame:
    """Per run and step: mean / median over that step's groups of path depth and intermediate proportion."""
    agg = {"depth_mean": "mean", "depth_median": "median", "intermediate_mean": "mean",
           "intermediate_median": "median"}  # fmt: skip
    return groups.groupby(["group_size", "step"]).agg(agg).reset_index()


def peaks_table(val: pd.DataFrame) -> pd.DataFrame:
    """Peak validation accuracy and the first step reaching it, per run."""
    rows = []
    keys = ["run", "model", "label", "beta", "seed", "loss_type"]
    for (run, model, label, beta, seed, loss_type), g in val.groupby(keys):
        g = g.dropna(subset=["val/accuracy"]).sort_values("step")
        top, step = peak(g.step, g["val/accuracy"])
        start = float(g["val/accuracy"].iloc[0])
        rows.append({"run": run, "model": model, "method": label, "beta": beta, "seed": seed, "loss_type": loss_type,
                     "peak_accuracy": top, "peak_step": step, "first_validation": start})  # fmt: skip
    return pd.DataFrame(rows).sort_values(["model", "loss_type", "beta", "method", "seed"], ignore_index=True)


def peak_claims(peaks: pd.DataFrame) -> pd.DataFrame:
    """The paper's three validation claims per (model, normalisation, β), from paired seeds."""
    rows = []
    for (model, loss_type, beta), g in peaks.groupby(["model", "loss_type", "beta"]):
        a = g[g.method == "λ-GRPO"].set_index("seed")
        b = g[g.method == "GRPO"].set_index("seed").loc[a.index]
        single = float(a.peak_accuracy.mean() - b.peak_accuracy.mean()), np.nan  # one run per cell: no test
        diff, p = paired_t(a.peak_accuracy, b.peak_accuracy) if len(a) > 1 else single
        rows.append({
            "model": model, "loss_type": loss_type, "beta": beta, "seeds": len(a),
            "lambda_peak": a.peak_accuracy.mean(), "grpo_peak": b.peak_accuracy.mean(),
            "every_lambda_seed_higher": bool((a.peak_accuracy > b.peak_accuracy).all()),
            "seeds_lambda_higher": int((a.peak_accuracy > b.peak_accuracy).sum()),
            "abs_improvement": diff, "rel_improvement": diff / b.peak_accuracy.mean(), "paired_p": p,
            "lambda_peak_step": a.peak_step.mean(), "grpo_peak_step": b.peak_step.mean(),
            "step_ratio": a.peak_step.mean() / b.peak_step.mean(),
        })  # fmt: skip
    return pd.DataFrame(rows)


# -- Table 2 / Table 3 ---------------------------------------------------------------------------------------------
COLOURS = {(True, True): "green", (True, False): "yellow", (False, True): "orange", (False, False): "red"}
_SWATCH = {"green": "🟩", "yellow": "🟨", "orange": "🟧", "red": "🟥"}


def downstream_frame(experiment_dir) -> pd.DataFrame:
    """Per evaluated model and held-out set: accuracy (trained runs and each starting policy, version 'Base'), and
    the mean over the sets (``set == "average"``, Table 2's Avg.). One row per (run, set)."""
    from paper_lib.collect import METHOD_LABELS
    from paper_lib.downstream import load_downstream

    labels = METHOD_LABELS | {"base": "Base"}
    rows = [
        {"run": r["run"], "model": r["model"], "version": labels[r["method"]], "beta": r["beta"], "seed": r["seed"],
         "set": name, "accuracy": s["accuracy"], "sem": s["sem"], "n": s["n"]}
        for r in load_downstream(experiment_dir) for name, s in r["sets"].items()
    ]  # fmt: skip
    df = pd.DataFrame(rows)
    avg = df.groupby(["run", "model", "version", "beta", "seed"], dropna=False).accuracy.mean().reset_index()
    return pd.concat([df, avg.assign(set="average", sem=np.nan, n=np.nan)], ignore_index=True)


def table2(df: pd.DataFrame) -> pd.DataFrame:
    """Table 2: per model, (version, β) and set, the mean accuracy over seeds with a 95% CI (Base: ± SEM)."""
    return pd.concat([_table2_model(model, g) for model, g in df.groupby("model", sort=False)], ignore_index=True)


def _table2_model(model: str, df: pd.DataFrame) -> pd.DataFrame:
    base = df[df.version == "Base"].set_index("set")
    rows = [
        {"model": model, "version": "Base", "beta": np.nan, "set": s, "mean": r["accuracy"],
         "ci_low": r["accuracy"] - r["sem"], "ci_high": r["accuracy"] + r["sem"], "sem": r["sem"], "seeds": 1,
         "colour": ""}
        for s, r in base.iterrows()
    ]  # fmt: skip
    trained = df[df.version != "Base"]
    means = trained.groupby(["version", "beta", "set"]).accuracy.mean()
    for (version, beta, s), g in trained.groupby(["version", "beta", "set"]):
        m, lo, hi = mean_ci(g.accuracy)
        colour = ""
        if version == "λ-GRPO":
            colour = COLOURS[(m > means[("GRPO", beta, s)], m > base.loc[s, "accuracy"])]
        rows.append({"model": model, "version": version, "beta": beta, "set": s, "mean": m, "ci_low": lo,
                     "ci_high": hi, "sem": np.nan, "seeds": len(g), "colour": colour})  # fmt: skip
    return pd.DataFrame(rows)


def _cell(row) -> str:
    half = (row["ci_high"] - row["ci_low"]) / 2
    text = f"{row['mean']:.3f}" + ("" if pd.isna(half) else f" ± {half:.3f}")
    return text + (f" {_SWATCH[row['colour']]}" if row["colour"] else "")


def table2_markdown(t2: pd.DataFrame) -> str:
    """Rows as the paper's (per model: Base, then GRPO / λ-GRPO per β), cells 'mean ± half-width', colour code."""
    sets = list(dict.fromkeys(t2.set))
    lines = ["| model | version | β | " + " | ".join(sets) + " |", "|---|---|---|" + "---|" * len(sets)]
    order = [("Base", np.nan)] + [(v, b) for b in sorted(t2.beta.dropna().unique()) for v in ("GRPO", "λ-GRPO")]
    for model, rows in t2.groupby("model", sort=False):
        for version, beta in order:
            sub = rows[(rows.version == version) & ((rows.beta == beta) | (pd.isna(beta) & rows.beta.isna()))]
            cells = [_cell(sub.set_index("set").loc[s]) for s in sets]
            beta_text = "—" if pd.isna(beta) else f"{beta:g}"
            lines.append(f"| {model} | {version} | {beta_text} | " + " | ".join(cells) + " |")
    legend = "🟩 beats GRPO and Base · 🟨 beats GRPO only · 🟧 beats Base only · 🟥 neither (the paper's code)"
    return "\n".join(lines) + f"\n\nλ-GRPO cells: {legend}. Base: ± SEM; trained: ± 95% CI half-width over seeds.\n"


def table3(df: pd.DataFrame) -> pd.DataFrame:
    """Table 3: λ − GRPO (paired over seeds) and λ − Base per (model, β, set), with p-values."""
    from scipy import stats as st

    rows = []
    for (model, beta, s), g in df[df.version != "Base"].groupby(["model", "beta", "set"], sort=False):
        base = df[(df.version == "Base") & (df.model == model)].set_index("set").accuracy
        lam = g[g.version == "λ-GRPO"].set_index("seed").accuracy.sort_index()
        grpo = g[g.version == "GRPO"].set_index("seed").accuracy.loc[lam.index]
        d, p = paired_t(lam, grpo) if len(lam) > 1 else (float(lam.mean() - grpo.mean()), np.nan)
        p_base = float(st.ttest_1samp(lam, base[s]).pvalue) if len(lam) > 1 and lam.std() > 0 else np.nan
        rows.append({"model": model, "beta": beta, "set": s, "lambda_minus_grpo": d, "p_paired": p,
                     "lambda_minus_base": float(lam.mean() - base[s]), "p_vs_base": p_base})  # fmt: skip
    return pd.DataFrame(rows)


def win_table(t3: pd.DataFrame) -> pd.DataFrame:
    """Win counts over the benchmark cells (the average excluded), ours beside the paper's 15/20 and 14/20."""
    from paper_lib.stats import win_counts

    cells = t3[t3.set != "average"]
    rows = []
    for key, column in (("vs_grpo", "lambda_minus_grpo"), ("vs_base", "lambda_minus_base")):
        w = win_counts(cells[column])
        rows.append({"comparison": key, **w, "cells": len(cells), "paper_wins": paper.WINS[key][0],
                     "paper_cells": paper.WINS[key][1]})  # fmt: skip
    return pd.DataFrame(rows)
