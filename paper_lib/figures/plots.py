"""Figures, one function each, drawn from data computed by the library (nothing typed in by hand)."""

from __future__ import annotations

import math

import matplotlib.pyplot as plt
import numpy as np
import pandas as pd
import torch
from matplotlib.colors import Normalize

from paper_lib.groups import group_from_strings
from paper_lib.prm import step_advantages, step_rewards
from paper_lib.tree import ProcessTree, node_values

__all__ = [
    "tree_layout",
    "draw_tree",
    "fig1_process_tree",
    "fig_example_prm",
    "fig_target_freq",
    "fig_target_freq_all",
    "fig_toy_sweep",
    "fig_step_breakdown",
]

ADVANTAGE_CMAP = "RdBu"  # diverging and colour-blind safe: red = pushed down, blue = pushed up


def tree_layout(tree: ProcessTree) -> dict[int, tuple[float, float]]:
    """Node index -> (x, y): leaves left to right in depth-first order, parents above the mean of their children."""
    pos: dict[int, tuple[float, float]] = {}
    next_leaf = [0.0]

    def place(i: int) -> float:
        node = tree.nodes[i]
        xs = [place(c) for c in node.children]
        x = sum(xs) / len(xs) if xs else next_leaf[0]
        next_leaf[0] += 0 if xs else 1.0
        pos[i] = (x, -1.4 * node.level)
        return x

    place(0)
    return pos


def draw_tree(tree: ProcessTree, ax=None, decode=None, annotate=None, node_color=None, fontsize: int = 10):
    """Draw B(G): one box per process step with its tokens; ``annotate(node)`` text under it; ``node_color(node)``."""
    ax = ax or plt.gca()
    decode = decode or (lambda toks: " ".join(map(str, toks)))
    pos = tree_layout(tree)
    for node in tree.nodes:
        if node.parent is not None:
            (x0, y0), (x1, y1) = pos[node.parent], pos[node.index]
            ax.plot([x0, x1], [y0, y1], color="0.6", lw=1, zorder=1)
    for node in tree.nodes:
        x, y = pos[node.index]
        label = decode(tree.tokens(node)) or ("𝔾" if node.parent is None else "∅")
        color = node_color(node) if node_color else "white"
        ax.text(
            x,
            y,
            label,
            ha="center",
            va="center",
            fontsize=fontsize,
            zorder=2,
            bbox=dict(boxstyle="round,pad=0.3", fc=color, ec="0.3"),
        )
        if annotate:
            ax.text(
                x,
                y - 0.3,
                annotate(node),
                ha="center",
                va="top",
                fontsize=fontsize - 1,
                zorder=2,
                bbox=dict(boxstyle="square,pad=0.1", fc="white", ec="none"),
            )
    xs = [p[0] for p in pos.values()]
    ax.set_xlim(min(xs) - 0.7, max(xs) + 0.7)
    ax.set_ylim(min(p[1] for p in pos.values()) - 1.0, 0.5)
    ax.axis("off")
    return ax


def _group(strings, rewards):
    ids, mask, vocab = group_from_strings(strings)
    r = torch.tensor(rewards, dtype=torch.float64)
    tree = ProcessTree.from_tensors(ids, mask)
    decode = lambda toks: "".join(vocab[t] for t in toks)  # noqa: E731
    return tree, decode, step_rewards(ids, mask, r), step_advantages(ids, mask, r)


def _advantage_color(values: dict[int, float], vmax: float):
    # A range twice the largest |A| keeps the fills light enough to read the tokens on them.
    cmap, norm = plt.get_cmap(ADVANTAGE_CMAP), Normalize(-2 * vmax, 2 * vmax)
    return lambda n: "0.9" if math.isnan(values[n.index]) else cmap(norm(values[n.index]))


def fig1_process_tree(strings, rewards):
    """The paper's Fig. 1: (1) outcome rewards, (2) the B(G) tree, (3) step rewards, (4) step advantages."""
    tree, decode, R, A = _group(strings, rewards)
    fig, axes = plt.subplots(1, 4, figsize=(18, 4.2), gridspec_kw={"width_ratios": [0.7, 1, 1, 1]})
    labels = [f"$y^{{({i + 1})}}$ {s}" for i, s in enumerate(strings)]
    bars = axes[0].barh(labels[::-1], list(rewards)[::-1], color="0.55")
    axes[0].bar_label(bars, fmt="%g", padding=3)
    axes[0].set(xlabel="outcome reward $r^{(i)}$", title="(1) outcome rewards")
    axes[0].spines[["top", "right"]].set_visible(False)
    draw_tree(tree, axes[1], decode, annotate=lambda n: f"|λ|={n.size}")
    axes[1].set_title("(2) process sets $\\mathcal{B}(\\mathbb{G})$")
    Rv, Av = node_values(tree, R), node_values(tree, A)
    fmt = lambda v: "" if math.isnan(v) else f"{v:+.2f}"  # noqa: E731
    draw_tree(tree, axes[2], decode, annotate=lambda n: fmt(Rv[n.index]).lstrip("+"))
    axes[2].set_title("(3) step rewards $R_{i,t} = r_{mean}(\\lambda)$")
    vmax = max(abs(v) for v in Av.values() if not math.isnan(v)) or 1.0
    draw_tree(tree, axes[3], decode, annotate=lambda n: fmt(Av[n.index]), node_color=_advantage_color(Av, vmax))
    axes[3].set_title("(4) step advantages $A_{i,t}$")
    fig.tight_layout()
    return fig


def fig_example_prm(strings, rewards):
    """The project page's example PRM: each step's advantage written on the tree, each leaf's reward beneath."""
    tree, decode, R, A = _group(strings, rewards)
    Av = node_values(tree, A)
    vmax = max(abs(v) for v in Av.values() if not math.isnan(v)) or 1.0

    def note(n):
        text = "" if math.isnan(Av[n.index]) else f"A={Av[n.index]:+.2f}"
        return text + (f"\nr={rewards[n.members[0]]:g}" if not n.children else "")

    fig, ax = plt.subplots(figsize=(8, 4.5))
    draw_tree(tree, ax, decode, annotate=note, node_color=_advantage_color(Av, vmax), fontsize=11)
    r = torch.tensor(rewards, dtype=torch.float64)
    ax.set_title(f"Implicit PRM of a group: mean reward {r.mean():.2f}, sample std {r.std():.2f} (ddof=1)")
    fig.tight_layout()
    return fig


# ---------------------------------------------------------------------------------------------------------------
# Training figures. GRPO and λ-GRPO have the same colours in every figure (seaborn's colour-blind palette).

METHOD_COLORS = {"GRPO": "#0173b2", "λ-GRPO": "#de8f05", "scale-matched GRPO": "#029e73"}


def _method_lines(ax, df, y: str, smooth: int, thin: bool = True) -> None:
    """One thin line per seed (every seed visible) and a bold mean per method, ``y`` smoothed by a centred rolling
    mean."""
    for label, sub in df.groupby("label", sort=False):
        color = METHOD_COLORS[label]
        wide = sub.pivot_table(index="step", columns="seed", values=y).sort_index()
        wide = wide.rolling(smooth, min_periods=1, center=True).mean()
        if thin:
            ax.plot(wide.index, wide.values, color=color, lw=0.7, alpha=0.45)
        ax.plot(wide.index, wide.mean(axis=1), color=color, lw=2.2, label=f"{label} (mean of {wide.shape[1]})")


def _paper_marks(ax, n: int, r_neg: float, last_step: float) -> None:
    """The paper's Table 1 values (last-50-step means) as markers at the right edge, labelled as the paper's."""
    from paper_lib.analysis.paper_numbers import TABLE1

    for label, value in zip(("GRPO", "λ-GRPO"), TABLE1[(n, r_neg)]):
        ax.plot([last_step], [value], marker="<", ms=9, color=METHOD_COLORS[label], mec="black", ls="none",
                label=f"paper's {label}: {value:.3f}", clip_on=False)  # fmt: skip


def fig_target_freq(df, n: int, r_neg: float, smooth: int = 10):
    """Target frequency per step for one toy configuration, one panel per tier (the paper's figure: n = 1,
    r_neg = −1): every seed a thin line, the mean bold, the paper's Table 1 values marked at the right."""
    sub = df[(df.toy_n == n) & (df.toy_r_neg == r_neg)]
    tiers = list(dict.fromkeys(sub.tier))
    fig, axes = plt.subplots(1, len(tiers), figsize=(6.5 * len(tiers), 4), squeeze=False, sharey=True)
    for ax, tier in zip(axes[0], tiers):
        part = sub[sub.tier == tier]
        _method_lines(ax, part, "target_frequency", smooth)
        _paper_marks(ax, n, r_neg, part.step.max())
        rates = ", ".join(f"{lab} lr {lr:g}" for lab, lr in part.groupby("label").learning_rate.first().items())
        ax.set(xlabel="training step", ylim=(-0.02, 1.02), title=f"{tier}: n = {n}, r_neg = {r_neg:g} ({rates})")
        ax.legend(frameon=False, fontsize=8)
    axes[0, 0].set_ylabel(f"target frequency ({smooth}-step mean)")
    fig.tight_layout()
    return fig


def fig_target_freq_all(df, smooth: int = 10):
    """Small multiples: every (n, r_neg) configuration of Table 1 for one tier, every seed and the means."""
    configs = sorted({(n, r) for n, r in zip(df.toy_n, df.toy_r_neg)}, key=lambda c: (c[0], -c[1]))
    cols = min(3, len(configs))
    rows = -(-len(configs) // cols)
    fig, axes = plt.subplots(rows, cols, figsize=(4.2 * cols, 3.2 * rows), sharex=True, sharey=True, squeeze=False)
    for ax, (n, r) in zip(axes.flat, configs):
        part = df[(df.toy_n == n) & (df.toy_r_neg == r)]
        _method_lines(ax, part, "target_frequency", smooth)
        _paper_marks(ax, n, r, part.step.max())
        ax.set(title=f"n = {n}, r_neg = {r:g}", ylim=(-0.02, 1.02))
    for ax in axes[-1]:
        ax.set_xlabel("training step")
    for ax in axes[:, 0]:
        ax.set_ylabel("target frequency")
    axes.flat[0].legend(frameon=False, fontsize=7)
    fig.tight_layout()
    return fig


def fig_toy_sweep(outcomes):
    """Last-50-step target frequency against the learning rate, per configuration and tier: one dot per seed
    (jittered), the mean per method as a line."""
    panels = sorted({(t, n, r) for t, n, r in zip(outcomes.tier, outcomes.toy_n, outcomes.toy_r_neg)},
                    key=lambda c: (c[0], c[1], -c[2]))  # fmt: skip
    cols = min(3, len(panels))
    rows = -(-len(panels) // cols)
    fig, axes = plt.subplots(rows, cols, figsize=(4.2 * cols, 3.2 * rows), sharey=True, squeeze=False)
    for ax, (tier, n, r) in zip(axes.flat, panels):
        part = outcomes[(outcomes.tier == tier) & (outcomes.toy_n == n) & (outcomes.toy_r_neg == r)]
        for k, (label, g) in enumerate(part.groupby("label", sort=False)):
            jitter = 1 + 0.06 * (k - 0.5) + 0.02 * ((g.seed % 5) - 2) / 2
            ax.scatter(g.learning_rate * jitter, g.freq, s=9, alpha=0.5, color=METHOD_COLORS[label])
            means = g.groupby("learning_rate").freq.mean()
            ax.plot(means.index, means.values, color=METHOD_COLORS[label], lw=2, marker="o", label=label)
        lo, hi = part.learning_rate.min(), part.learning_rate.max()
        ax.set(xscale="log", xlim=(lo / 2, hi * 2), title=f"{tier}: n = {n}, r_neg = {r:g}", ylim=(-0.03, 1.03),
               xlabel="learning rate")  # fmt: skip
    for ax in axes[:, 0]:
        ax.set_ylabel("target freq., last 50 steps")
    for ax in list(axes.flat)[len(panels) :]:
        ax.axis("off")
    axes.flat[0].legend(frameon=False, fontsize=8)
    fig.tight_layout()
    return fig


def fig_process_stats(val, stats, caption: str = "", n_items: int | None = None):
    """§3.2's 2×3 figure: validation accuracy, path depth, intermediate proportion per group size (rows).

    Solid, on the step axis: the raw per-step series (mean / median over that step's groups). Dashed, on the rank
    axis at the top: the same values sorted in ascending order, which is what the paper's monotone curves look like
    (docs/paper.md §5.2). The paper's early level of the intermediate proportion (≤ 0.05) is marked.
    """
    sizes = sorted(stats.group_size.unique(), reverse=True)
    fig, axes = plt.subplots(len(sizes), 3, figsize=(13, 3.6 * len(sizes)), squeeze=False)
    panels = [("depth", "root-to-leaf path depth", "process steps per completion"),
              ("intermediate", "intermediate proportion", "share of tokens with |λ| ≥ 2")]  # fmt: skip
    items = f" on {n_items} items" if n_items else ""
    for row, G in zip(axes, sizes):
        v = val[val.group_size == G].dropna(subset=["val/accuracy"]).sort_values("step")
        row[0].plot(v.step, v["val/accuracy"], marker="o", color="0.3")
        row[0].set(title=f"G = {G}: validation accuracy", xlabel="step", ylabel=f"greedy accuracy{items}")
        s = stats[stats.group_size == G].sort_values("step")
        for ax, (key, title, unit) in zip(row[1:], panels):
            rank = ax.twiny()  # the sorted view: x is the value's rank, not a step
            for stat, color in (("mean", "#0173b2"), ("median", "#cc78bc")):
                y = s[f"{key}_{stat}"].to_numpy()
                ax.plot(s.step, y, color=color, lw=0.8, label=f"{stat} over groups (raw, step axis)")
                rank.plot(np.arange(1, len(y) + 1), sorted(y), color=color, lw=1.5, ls="--",
                          label=f"{stat} sorted (rank axis, top)")  # fmt: skip
            rank.set_xlabel("rank of the step's value (sorted view)", fontsize=8)
            if key == "intermediate":
                ax.axhline(0.05, color="0.5", ls=":", lw=1, label="paper: ≤ 0.05 for most of training")
            ax.set(title=f"G = {G}: {title}", xlabel="step", ylabel=unit)
            if G == sizes[0] and key == "intermediate":  # one legend: raw, sorted and the paper's line
                handles = ax.get_legend_handles_labels()[0] + rank.get_legend_handles_labels()[0]
                ax.legend(handles=handles, frameon=False, fontsize=7)
    if caption:
        fig.suptitle(caption, fontsize=9, y=1.0)
    fig.tight_layout()
    return fig


def _clip(text: str, width: int = 24) -> str:
    """A box label: paper-scale steps can hold thousands of characters; short ones are shown whole."""
    return text if len(text) <= width else text[: width - 1] + "…"


def fig_bg_early_late(early: list[str], late: list[str], steps: tuple[int, int]):
    """The B(G) tree of one real group (character tokens) early and late in training (the paper's Figs. 4–5)."""
    fig, axes = plt.subplots(1, 2, figsize=(14, 4.8))
    for ax, completions, step in zip(axes, (early, late), steps):
        tree = ProcessTree([[ord(c) for c in s] for s in completions])
        draw_tree(tree, ax, decode=lambda toks: _clip("".join(map(chr, toks))), annotate=lambda n: f"|λ|={n.size}",
                  fontsize=9)  # fmt: skip
        ax.set_title(f"step {step}: {len(completions)} completions, {len(tree)} process steps")
    fig.tight_layout()
    return fig


def fig_validation_curves(val, peaks, caption: str = ""):
    """Fig. 3 (ICML Fig. 6): validation accuracy per model (rows) and β (columns): every seed's curve (thin), the
    mean with its 95% CI band over seeds per method, and a dashed line at each run's smoothed-peak step."""
    from paper_lib.analysis.stats import mean_ci

    models, betas = list(dict.fromkeys(val.model)), sorted(val.beta.unique())
    fig, axes = plt.subplots(len(models), len(betas), figsize=(6.5 * len(betas), 4 * len(models)), sharey=True,
                             squeeze=False)  # fmt: skip
    for row, model in zip(axes, models):
        for ax, beta in zip(row, betas):
            cell = val[(val.model == model) & (val.beta == beta)].dropna(subset=["val/accuracy"])
            for label, sub in cell.groupby("label", sort=False):
                color = METHOD_COLORS[label]
                for _, run in sub.groupby("run"):
                    ax.plot(run.step, run["val/accuracy"], color=color, lw=0.6, alpha=0.35)
                ci = sub.groupby("step")["val/accuracy"].apply(lambda s: mean_ci(s.to_numpy())).apply(pd.Series)
                seeds = sub.run.nunique()
                ax.plot(ci.index, ci[0], color=color, lw=2, label=f"{label}: mean of {seeds} seeds (thin: each)")
                ax.fill_between(ci.index, ci[1], ci[2], color=color, alpha=0.18, label=f"{label}: 95% CI of the mean")
                mine = peaks[(peaks.model == model) & (peaks.beta == beta) & (peaks.method == label)]
                for step in mine.smoothed_step:
                    ax.axvline(step, color=color, ls="--", lw=0.8, alpha=0.7)
            title = f"β = {beta:g}" if len(models) == 1 else f"{model}, β = {beta:g}"
            ax.set(title=title, xlabel="training step", ylabel="greedy validation accuracy (share of items)")
            ax.legend(frameon=False, fontsize=7)
    if caption:
        fig.suptitle(caption + " · dashed: each run's smoothed-peak step", fontsize=9)
    fig.tight_layout()
    return fig


def fig_step_breakdown(parts: pd.DataFrame, title: str = "", highlight: str = "λ weights + group stats"):
    """Stacked horizontal bars: where the time of one training step goes, per method, in milliseconds.

    ``parts``: one row per method, a ``total`` column and one column per part, in the order drawn
    (:func:`paper_lib.bench.steps.breakdown`); ``highlight`` is the part whose share each bar's label gives.
    """
    fig, ax = plt.subplots(figsize=(7.5, 2.2))
    left = pd.Series(0.0, index=parts.index)
    colours = plt.get_cmap("tab10").colors
    for k, name in enumerate(c for c in parts.columns if c != "total"):
        ms = 1e3 * parts[name]
        ax.barh(parts.index, ms, left=left, color=colours[k], label=name)
        left += ms
    for y, (label, total) in enumerate((1e3 * parts["total"]).items()):
        share = 100 * parts.loc[label, highlight] / parts.loc[label, "total"]
        ax.text(total, y, f" {total:.1f} ms ({share:.1f}% {highlight})", va="center", fontsize=8)
    ax.set_xlabel("milliseconds per step (mean)")
    ax.set_xlim(0, 1.45e3 * parts["total"].max())
    ax.invert_yaxis()
    ax.legend(ncol=4, fontsize=7, loc="upper center", bbox_to_anchor=(0.5, -0.35), frameon=False)
    if title:
        ax.set_title(title, fontsize=9)
    return fig
