"""The paper's own numbers (docs/paper.md §3.2, §5), typed once here, labelled as the paper's wherever shown."""

from __future__ import annotations

__all__ = ["TABLE1", "FLAT_TREES", "TABLE2", "WINS", "OVERHEAD_S_PER_TOKEN"]

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
# Win counts over the 20 benchmark cells (docs/paper.md §5.3).
WINS = {"vs_grpo": (15, 20), "vs_base": (14, 20)}
# §3.2 / §4.2: extra CPU time of the λ weights on an Intel i7, seconds per token.
OVERHEAD_S_PER_TOKEN = {6: 1.19e-7, 36: 1.21e-7}
