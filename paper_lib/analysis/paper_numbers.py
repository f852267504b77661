"""The paper's own numbers (docs/paper.md §3.2, §5), typed once here, labelled as the paper's wherever shown."""

from __future__ import annotations

__all__ = [
    "TABLE1",
    "FLAT_TREES",
    "TABLE2",
    "TABLE2_CELLS",
    "WINS",
    "paper_wins",
    "table2_row",
    "table2_relative_gain",
    "OVERHEAD_S_PER_TOKEN",
]

# Table 1 (ICML), target frequency in the last 50 steps, mean of 5 seeds: (n, r_neg) -> (GRPO, λ-GRPO).
TABLE1 = {
    (1, -0.5): (0.3995, 0.5663),
    (1, -1.0): (0.0000, 0.7535),
    (1, -1.5): (0.2000, 0.4463),
    (2, -0.5): (0.1980, 0.4292),
    (2, -1.0): (0.0488, 0.3612),
    (2, -1.5): (0.0000, 0.3820),
}
# §3.2: flat B(G) trees / all groups.
FLAT_TREES = {6: (12, 6700), 36: (0, 1100)}
# Table 2 averages over the five benchmarks: (model, β) -> {version: average}.
TABLE2 = {
    ("Qwen", None): {"Base": 0.5175},
    ("Qwen", 0.0): {"GRPO": 0.4837, "λ-GRPO": 0.5576},
    ("Qwen", 0.04): {"GRPO": 0.5394, "λ-GRPO": 0.5739},
    ("Llama", None): {"Base": 0.0814},
    ("Llama", 0.0): {"GRPO": 0.0842, "λ-GRPO": 0.1001},
    ("Llama", 0.04): {"GRPO": 0.0996, "λ-GRPO": 0.0973},
}
# Table 2's cells (docs/paper.md §5.3): (model, β, version) -> accuracy on AIME24, MATH-500, AMC23, Minerva, OB.
TABLE2_CELLS = {
    ("Qwen", None, "Base"): (0.2000, 0.8300, 0.7500, 0.2978, 0.5096),
    ("Qwen", 0.0, "GRPO"): (0.3333, 0.7660, 0.6250, 0.2500, 0.4444),
    ("Qwen", 0.0, "λ-GRPO"): (0.3667, 0.8460, 0.7500, 0.2904, 0.5348),
    ("Qwen", 0.04, "GRPO"): (0.3000, 0.8660, 0.7500, 0.2610, 0.5200),
    ("Qwen", 0.04, "λ-GRPO"): (0.4000, 0.8340, 0.8000, 0.2978, 0.5378),
    ("Llama", None, "Base"): (0.0000, 0.2280, 0.0750, 0.0478, 0.0563),
    ("Llama", 0.0, "GRPO"): (0.0000, 0.2300, 0.0750, 0.0551, 0.0607),
    ("Llama", 0.0, "λ-GRPO"): (0.0000, 0.2620, 0.1250, 0.0515, 0.0622),
    ("Llama", 0.04, "GRPO"): (0.0000, 0.2180, 0.1750, 0.0515, 0.0533),
    ("Llama", 0.04, "λ-GRPO"): (0.0333, 0.2560, 0.0750, 0.0735, 0.0489),
}


def paper_wins(version: str, against: str) -> tuple[int, int]:
    """``(wins, cells)`` of ``version`` over ``against`` ("GRPO" or "Base") across Table 2's 20 benchmark cells."""
    wins = cells = 0
    for (model, beta, v), accs in TABLE2_CELLS.items():
        if v != version:
            continue
        other = TABLE2_CELLS[(model, None, "Base") if against == "Base" else (model, beta, against)]
        wins += sum(a > b for a, b in zip(accs, other))
        cells += len(accs)
    return wins, cells


_TABLE2_ROWS = {"qwen-1.5b": "Qwen", "llama-1b": "Llama"}  # our preset names -> the paper's Table 2 rows


def table2_row(model: str) -> str:
    """The paper's Table 2 row a model is compared with: its own at the paper scale, Qwen for the CPU stand-ins."""
    return _TABLE2_ROWS.get(model, "Qwen")


def table2_relative_gain(row: str, beta: float) -> float:
    """λ-GRPO's average over GRPO's in the paper's Table 2, minus 1 (Qwen β = 0: +15.3%)."""
    q = TABLE2[(row, beta)]
    return q["λ-GRPO"] / q["GRPO"] - 1


# Win counts over the 20 benchmark cells (docs/paper.md §5.3: 15/20 and 14/20, as the paper states; GRPO over the
# base, 9/20, is counted from its Table 2 and not stated by the paper).
WINS = {"vs_grpo": paper_wins("λ-GRPO", "GRPO"), "vs_base": paper_wins("λ-GRPO", "Base"),
        "grpo_vs_base": paper_wins("GRPO", "Base")}  # fmt: skip
# §3.2 / §4.2: extra CPU time of the λ weights on an Intel i7, seconds per token.
OVERHEAD_S_PER_TOKEN = {6: 1.19e-7, 36: 1.21e-7}
