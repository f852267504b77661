"""The experiments of notebooks 02–05 as lists of runs per scale (trained as units by
:mod:`paper_lib.experiments.runner`; notebooks only read the run directories).

Every departure from the paper's setting is in the configs below with the reason, and REPORT.md lists them.
"""

from __future__ import annotations

import logging
from pathlib import Path

from paper_lib.paper_scale.presets import PaperPreset, paper_presets
from paper_lib.paths import check_scale, results_dir
from paper_lib.training.config import RunConfig

__all__ = [
    "EXPERIMENTS",
    "TOY_TABLE1",
    "TOY_SWEEPS",
    "best_toy_rates",
    "toy_planned_pairs",
    "experiment_runs",
    "design_power_runs",
    "example_run",
    "runs_root",
    "departures",
    "main_loss_type",
]

log = logging.getLogger(__name__)
EXPERIMENTS = ("toy", "toy_best", "toy_ablation", "toy_lm", "toy_high_lr", "design", "process_sets", "training",
               "norm_ablation")  # fmt: skip
TOY_EXPERIMENTS = ("toy", "toy_best", "toy_ablation", "toy_lm", "toy_high_lr")
TOY_CONFIGS = [(n, r) for n in (1, 2) for r in (-0.5, -1.0, -1.5)]  # docs/paper.md §4.3
# The toy design, fixed before any λ-GRPO comparison was looked at (README "The toy task"):
TOY_RATES = {
    "tiny-qwen2": (3e-5, 1e-4, 3e-4, 1e-3),  # >= 30x around the rates where the tiny model moves at all
    "smollm2-135m": (1e-6, 3e-6, 1e-5, 5e-5),
}  # the paper's 1e-5, its footnote's 5x, and two lower rates
TOY_LM_RATE = 1e-5  # docs/paper.md §4.3: the paper's rate; the full 6-config table of the pretrained-LM tier
TOY_SEEDS = {"sweep": range(10), "best": range(10, 30), "lm": range(5)}  # best: fresh seeds at the selected rate
# Table 1 per tier: (tier, experiment, learning rate or None for the rates its runs carry), per scale.
TOY_TABLE1 = {"small": [("tiny model", "toy_best", None), ("pretrained LM", "toy_lm", TOY_LM_RATE)],
              "paper": [("GPT-2 small", "toy", None)]}  # fmt: skip
TOY_TABLE1["smoke"] = TOY_TABLE1["small"]
TOY_SWEEPS = {"small": [("tiny model", "toy"), ("pretrained LM", "toy_lm")],
              "paper": [("GPT-2 small", "toy"), ("GPT-2 small", "toy_high_lr")]}  # fmt: skip
TOY_SWEEPS["smoke"] = TOY_SWEEPS["small"]

# Departures from the paper at the small scale (quoted in REPORT.md). The paper's values are in docs/paper.md §4.
DEPARTURES = {
    "toy": "a tiny random 2-layer Qwen2 (64 wide) instead of GPT-2 small; a learning-rate sweep (3e-5, 1e-4, 3e-4, "
    "1e-3; 10 seeds each) instead of the paper's single 1e-5, because a random tiny model has no comparable rate; "
    "every seed starts from the same random init; the target is drawn from the starting policy (training.toy_start); "
    "temperature 0.75 and no gradient clipping (the authors' trainer defaults; docs/paper.md §4.3 does not say)",
    "toy_best": "each method at its own best sweep rate (by mean target frequency over seeds 0-9), retrained on 20 "
    "fresh seeds (10-29) so that the selection does not bias the comparison",
    "toy_ablation": "the sampling-only mask (suppress_tokens in generation, full-vocabulary softmax in the loss): not "
    "the paper's setting but the bias an implementer gets by masking only generation; n = 1, r_neg = -1, every rate",
    "toy_lm": "SmolLM2-135M-Instruct (pretrained, 135M; GPT-2 small is not available offline; float32 on CPU, "
    "its vocabulary pruned to the tokens the task uses, which leaves every log-prob unchanged) at the paper's "
    "settings (lr 1e-5, G = 16, 250 steps, 5 seeds, from BOS); also 1e-6, 3e-6 and the footnote's 5e-5 at n = 1, "
    "r_neg = -1; temperature 0.75, no clipping",
    "toy_high_lr": "covered by the sweeps (toy: 33x range; toy_lm: the footnote's 5e-5)",
    "design": "GRPO-only pilots of the sums stand-in (one seed, 100, not reported) at four warm-start lengths; the "
    'design is the pilot rule\'s pick (README "The reasoning stand-in"), fixed before any λ-GRPO run of the task',
    "process_sets": 'a tiny model warm-started on the sums stand-in (README "The reasoning stand-in") instead of '
    "DeepSeek-R1-Distill-Qwen-1.5B on OpenRS; 300 steps at G = 6 and 50 at G = 36 (the paper: 1675 and 275, the "
    "same trajectory budget per G); one learning rate (1e-4) for both G instead of 6e-6 / 1e-6; temperature 0.75",
    "training": "the same tiny model and task; 300 steps instead of 1000; 20 seeds per (method, β) (the power "
    "analysis's count, notebook 04) instead of one run per cell; learning rate 1e-4 (carried over from the earlier "
    "arithmetic stand-in's pilot); temperature 0.75; validation on 100 items, held-out sets of 100 items per level",
    "norm_ablation": "per-sequence normalisation (TRL loss_type 'grpo', the authors' code) vs the paper's "
    "token-level; β = 0, 5 seeds (an ablation, not a claim of the paper)",
}


# The paper scale runs the paper's settings; what it cannot take from the paper is a choice, listed here.
PAPER_DEPARTURES = {
    "toy": "GPT-2 small, lr 1e-5, G = 16, 250 steps, 5 seeds as the paper; one prompt per step, β = 0, "
    "temperature 0.75, no clipping and full fine-tuning are our choices where docs/paper.md §4.3 is silent; the "
    "policy is restricted to L/R in the LM head for sampling and training, the prompt is BOS, the target is drawn "
    "from the starting policy's paths with probability 0.05-0.12 (paper_lib.training.toy_start)",
    "toy_high_lr": "the footnote's 5× learning rate (5e-5)",
    "process_sets": "the paper's two runs (G = 6: lr 6e-6, 1675 steps; G = 36: lr 1e-6, 275 steps) with the "
    "authors' code defaults: LoRA r64/α128, float32, per-sequence normalisation; seeded (the authors never seed)",
    "training": "the paper's 8 runs (one per cell, seed 0) with the authors' code defaults (LoRA r64/α128, "
    "float32, per-sequence normalisation); the 125 validation questions are drawn from OpenRS with seed 0 (their "
    "source is not stated); Llama's learning rate is 5e-7 at β = 0 and 1e-7 at β = 0.04 (docs/paper.md §9.4: the "
    "assignment is not stated)",
    "norm_ablation": "not run by default at this scale (the token-level arm: SET=loss_type=dapo)",
    "design": "not run at this scale (the CPU stand-in's pilots)",
    "toy_best": "not run at this scale (one rate, the paper's)",
    "toy_ablation": "not run by default at this scale (SET=toy_mask=sampling_only)",
    "toy_lm": "not run at this scale (the paper's GPT-2 small runs are 'toy')",
}


def departures(scale: str) -> dict[str, str]:
    """How each experiment departs from the paper at ``scale`` (quoted by notebooks 02–04 and REPORT.md)."""
    check_scale(scale)
    return PAPER_DEPARTURES if scale == "paper" else DEPARTURES


def runs_root(scale: str, root: Path | str | None = None) -> Path:
    return results_dir(scale, root) / "runs"


def _toy_run(n: int, r_neg: float, method: str, lr: float, seed: int, steps: int, model: str = "tiny-qwen2",
             mask: str = "policy") -> tuple[str, RunConfig]:  # fmt: skip
    name = f"n{n}_r{abs(r_neg):g}_{method}_lr{lr:.0e}_s{seed}"
    save = 125 if model == "smollm2-135m" else 50  # a 135M checkpoint costs ~3 s to write
    cfg = RunConfig(name=name, task="toy_tree", model=model, method=method, seed=seed, max_steps=steps,
                    group_size=16, prompts_per_step=1, learning_rate=lr, temperature=0.75, max_grad_norm=0.0,
                    optim="adamw_torch_fused", toy_n=n, toy_r_neg=r_neg, toy_mask=mask, eval_every=0, save_every=save,
                    completions_every=50, warm_start_steps=0)  # fmt: skip
    return name, cfg


def _toy(scale: str, which: str, root: Path | None = None) -> list[tuple[str, RunConfig]]:
    """The toy task's runs (docs/paper.md §4.3: G = 16, 250 steps); ``which`` is one of :data:`TOY_EXPERIMENTS`."""
    smoke = scale == "smoke"
    steps = 10 if smoke else 250
    configs = TOY_CONFIGS[1:2] if smoke else TOY_CONFIGS
    methods = ("grpo", "lambda_grpo")
    if which == "toy":
        rates, seeds = TOY_RATES["tiny-qwen2"][1::2] if smoke else TOY_RATES["tiny-qwen2"], _seeds("sweep", smoke)
        return [_toy_run(n, r, m, lr, s, steps) for n, r in configs for m in methods for lr in rates for s in seeds]
    if which == "toy_best":
        best = best_toy_rates(runs_root(scale, root) / "toy", experiment_runs("toy", scale, root=root))
        return [_toy_run(n, r, m, best[(n, r, m)], s, steps) for n, r in configs for m in methods
                for s in _seeds("best", smoke)]  # fmt: skip
    if which == "toy_ablation":
        rates = TOY_RATES["tiny-qwen2"][1:2] if smoke else TOY_RATES["tiny-qwen2"]
        return [_toy_run(1, -1.0, m, lr, s, steps, mask="sampling_only") for m in methods for lr in rates
                for s in _seeds("sweep", smoke)[:1 if smoke else None]]  # fmt: skip
    if which == "toy_lm":
        model = "tiny-qwen2" if smoke else "smollm2-135m"  # CI has no SmolLM2; the same code path
        seeds = _seeds("lm", smoke)
        main = [_toy_run(n, r, m, TOY_LM_RATE, s, steps, model) for s in seeds for n, r in configs for m in methods]
        other = [lr for lr in TOY_RATES["smollm2-135m"] if lr != TOY_LM_RATE]
        extra = [] if smoke else [_toy_run(1, -1.0, m, lr, s, steps, model) for s in seeds for lr in other
                                  for m in methods]  # fmt: skip
        return main + extra
    return []  # toy_high_lr: the sweeps span the footnote's 5x (DEPARTURES)


def toy_planned_pairs(scale: str, experiment: str, learning_rate: float | None = None) -> int:
    """How many (config, seed) pairs of λ-GRPO and GRPO one Table 1 tier plans (to show how complete it is)."""
    if experiment == "toy_best":  # one rate per method, planned without the sweep
        return len(TOY_CONFIGS[1:2] if scale == "smoke" else TOY_CONFIGS) * len(_seeds("best", scale == "smoke"))
    runs = [c for _, c in experiment_runs(experiment, scale) if learning_rate in (None, c.learning_rate)]
    return len({(c.toy_n, c.toy_r_neg, c.seed) for c in runs})


def _seeds(kind: str, smoke: bool) -> list[int]:
    seeds = list(TOY_SEEDS[kind])
    return seeds[:2] if smoke else seeds


def best_toy_rates(root: Path, sweep: list[tuple[str, RunConfig]]) -> dict[tuple[int, float, str], float]:
    """``(n, r_neg, method) -> learning rate`` with the highest mean last-50-step target frequency in the sweep
    (ties: the lower rate). Raises ValueError until every sweep run is finished."""
    from paper_lib.rundir import is_finished, run_last_window

    missing = [name for name, _ in sweep if not is_finished(root / name)]
    if missing:
        raise ValueError(f"toy_best needs the finished toy sweep; {len(missing)} of {len(sweep)} runs are not "
                         f"finished (first: {missing[0]}): run the 'toy' experiment first")  # fmt: skip
    scores: dict[tuple, list[float]] = {}
    for name, cfg in sweep:
        key = (cfg.toy_n, cfg.toy_r_neg, cfg.method, cfg.learning_rate)
        scores.setdefault(key, []).append(run_last_window(root / name, "target_frequency", 50))
    best: dict[tuple, float] = {}
    for (n, r, m, lr), values in sorted(scores.items(), key=lambda kv: kv[0][3]):
        mean = sum(values) / len(values)
        if (n, r, m) not in best or mean > best[(n, r, m)][1]:
            best[(n, r, m)] = (lr, mean)
    return {k: lr for k, (lr, _) in best.items()}


# The sums stand-in (tasks.SumTask). Its design was chosen on GRPO pilots alone (the "design" experiment): among the
# warm-start lengths below, the one whose pilot starts RL with groups that part early (intermediate proportion < 0.3
# over the first 50 steps) and gains most on the held-out average (analysis.design.pilot_table). The rule was fixed
# before the pilots ran; no λ-GRPO run of the task existed when it was applied.
SUMS_PILOT_WARM_STARTS = (1000, 1800, 2400, 3000)
SUMS_PILOT_SEED = 100
SUMS_WARM_START = 1800  # the rule's pick on the committed pilots (tests/test_design.py checks it still is)
SUMS_VARIANCE_SEEDS = range(101, 105)  # four more GRPO seeds at the pick: the spread the power analysis needs
SUMS_SEEDS = range(20)  # per (method, β): the power analysis's count (analysis.design.seeds_for_power; notebook 04)
# RL learning rate 1e-4, carried over from the earlier arithmetic stand-in, where of {3e-5, 1e-4, 3e-4, 1e-3} it was
# the one whose GRPO training reward rose most on the pilot seed 100 (1e-3 collapsed); not re-swept on sums.
_SUMS = dict(task="sums", max_completion_length=80, train_size=1200, val_size=100, learning_rate=1e-4,
             temperature=0.75, group_size=6, prompts_per_step=4)  # fmt: skip


def _sums_run(name: str, steps: int, **fields) -> tuple[str, RunConfig]:
    every = dict(eval_every=max(1, steps // 30), save_every=max(1, steps // 6), completions_every=max(1, steps // 3))
    return name, RunConfig(name=name, max_steps=steps, **(_SUMS | every | fields))


def _design(scale: str) -> list[tuple[str, RunConfig]]:
    steps = 6 if scale == "smoke" else 300
    starts = SUMS_PILOT_WARM_STARTS[:1] if scale == "smoke" else SUMS_PILOT_WARM_STARTS
    seeds = SUMS_VARIANCE_SEEDS[:2] if scale == "smoke" else SUMS_VARIANCE_SEEDS
    pilots = [
        _sums_run(f"pilot_ws{w}", steps, method="grpo", seed=SUMS_PILOT_SEED, warm_start_steps=w) for w in starts
    ]
    spread = [_sums_run(f"seed_s{s}", steps, method="grpo", seed=s, warm_start_steps=SUMS_WARM_START) for s in seeds]
    return pilots + spread


def design_power_runs(scale: str) -> list[str]:
    """The design runs at the chosen warm start (its pilot and the variance seeds): the power analysis's GRPO seeds."""
    return [name for name, cfg in _design(scale) if name.startswith("seed_s") or
            (name.startswith("pilot_") and cfg.warm_start_steps == SUMS_WARM_START)]  # fmt: skip


def _process_sets(scale: str) -> list[tuple[str, RunConfig]]:
    steps = {6: 300, 36: 50} if scale != "smoke" else {6: 6, 36: 2}
    every = {G: max(1, n // 6) for G, n in steps.items()}
    return [_sums_run(f"G{G}", steps[G], method="grpo", group_size=G, warm_start_steps=SUMS_WARM_START,
                      eval_every=every[G], completions_every=every[G]) for G in (6, 36)]  # fmt: skip


def _training(scale: str, betas, loss_type: str, seeds=None) -> list[tuple[str, RunConfig]]:
    seeds = range(2) if scale == "smoke" else (seeds or SUMS_SEEDS)
    steps = 6 if scale == "smoke" else 300
    return [_sums_run(f"b{beta:g}_{method}_s{seed}", steps, method=method, seed=seed, beta=beta, loss_type=loss_type,
                      warm_start_steps=SUMS_WARM_START)
            for beta in betas for method in ("grpo", "lambda_grpo") for seed in seeds]  # fmt: skip


# At the paper scale each experiment is the paper's own runs (paper_scale.presets presets, docs/paper.md §4). The
# normalisation ablation is not run there by default: the presets already use the authors' per-sequence loss, and
# the token-level arm (`--set loss_type=dapo`) would add hundreds of GPU-hours (docs/paper.md §10).
_PAPER = {
    "toy": lambda **sw: paper_presets("toy", **sw),
    "toy_best": lambda **sw: [],  # the paper's runs are one rate; the sweeps are the CPU tiers'
    "toy_ablation": lambda **sw: [],  # SET=toy_mask=sampling_only runs the ablation of the paper's runs
    "toy_lm": lambda **sw: [],
    "toy_high_lr": lambda **sw: paper_presets("toy", **({"learning_rate": 5e-5} | sw)),  # docs/paper.md §4.3 footnote
    "process_sets": lambda **sw: paper_presets("overlap", **sw),
    "training": lambda **sw: paper_presets("downstream", **sw),
    "norm_ablation": lambda **sw: [],
    "design": lambda **sw: [],
}


def experiment_runs(name: str, scale: str, root: Path | None = None,
                    **switches) -> list[tuple[str, RunConfig | PaperPreset]]:  # fmt: skip
    """``(run name, RunConfig)`` for one experiment at one scale (``PaperPreset`` at the paper scale, where
    ``switches`` override preset fields in every run, e.g. ``use_vllm=True``). ``toy_best`` reads the finished
    ``toy`` sweep under ``root`` (default ``results/<scale>``) to pick each method's rate."""
    check_scale(scale)
    if name not in EXPERIMENTS:
        raise ValueError(f"unknown experiment {name!r}; known: {list(EXPERIMENTS)}")
    if scale == "paper":
        return [(p.name, p) for p in _PAPER[name](**switches)]
    if switches:
        raise ValueError(f"preset switches {sorted(switches)} apply to the paper scale only, not {scale!r}")
    if name in TOY_EXPERIMENTS:
        return _toy(scale, name, root)
    if name == "design":
        return _design(scale)
    if name == "process_sets":
        return _process_sets(scale)
    if name == "training":
        return _training(scale, (0.0, 0.04), "dapo")
    if name == "norm_ablation":
        return _training(scale, (0.0,), "grpo", seeds=range(5))  # an ablation: 5 seeds (DEPARTURES)
    raise ValueError(f"unknown experiment {name!r}; known: {list(EXPERIMENTS)}")


def main_loss_type(scale: str) -> str:
    """The normalisation of the main training runs at ``scale`` (the paper's token-level ``dapo`` on CPU; the
    authors' per-sequence ``grpo`` at the paper scale); other loss types are the ablation."""
    return experiment_runs("training", scale)[0][1].loss_type


def example_run(name: str, scale: str, **match) -> str:
    """The first run of an experiment whose config has every ``match`` value, e.g. ``method="lambda_grpo", beta=0``
    (run names differ between scales; notebooks pick the runs they show with this)."""
    for run_name, cfg in experiment_runs(name, scale):
        if all(getattr(cfg, k) == v for k, v in match.items()):
            return run_name
    raise ValueError(f"no run of {name!r} at scale {scale!r} has {match}")
