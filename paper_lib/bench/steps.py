r"""Notebook 06, training steps: the wall time of a λ-GRPO step over a GRPO step, and where a step goes.

- **Step ratio.** The same configuration and seed trained alternately, GRPO then λ-GRPO, in rounds of a few steps
  (:func:`step_times`), for the tiny model and for SmolLM2-135M; :func:`step_table` gives the rows of
  ``table_overhead`` (medians over the recorded steps).
- **Breakdown.** Each step is split into generation, rewards, forward + backward, optimizer, the λ weights with the
  per-group statistics, logging, and the rest (:data:`SECTIONS`), by wrapping the trainer's methods
  (:func:`_instrument`) and a callback that closes each step (:func:`_step_clock`);
  :func:`paper_lib.figures.plots.fig_step_breakdown` draws the means.

:mod:`.kernel` runs these next to the kernel timing and assembles the table (``python -m paper_lib.bench``).
"""

from __future__ import annotations

import contextlib
import functools
import tempfile
import time
from collections import defaultdict
from pathlib import Path

import pandas as pd
import torch

from paper_lib.training.config import RunConfig

__all__ = [
    "SECTIONS",
    "WEIGHTS",
    "breakdown",
    "skipped_step_table",
    "step_config",
    "step_table",
    "step_times",
    "torch_threads",
]

SECTIONS = ("generation", "rewards", "forward + backward", "optimizer", "λ weights + group stats", "logging", "other")
WEIGHTS = "λ weights + group stats"
STEP_MEASURE = "training step, s (ratio: λ-GRPO ÷ GRPO)"


@contextlib.contextmanager
def torch_threads(n: int):
    """Run the block with ``n`` torch threads (also used by the kernel timing of :mod:`paper_lib.bench.kernel`)."""
    before = torch.get_num_threads()
    torch.set_num_threads(n)
    try:
        yield
    finally:
        torch.set_num_threads(before)


# ---------------------------------------------------------------------------------------------------------------
# The run measured, and the clock on its trainer


def step_config(model: str = "tiny-qwen2", method: str = "lambda_grpo", steps: int = 3) -> RunConfig:
    """The run measured: the training experiment's shape (arithmetic, G = 6, 4 prompts per step, 16 new tokens for
    the tiny model; 1 prompt and 32 tokens for SmolLM2-135M), from the untrained policy (timing needs no warm
    start), no validation, no checkpoints."""
    big = model != "tiny-qwen2"
    return RunConfig(name=f"bench_{model}_{method}", task="arithmetic", model=model, method=method, group_size=6,
                     prompts_per_step=1 if big else 4, max_completion_length=32 if big else 16, max_steps=steps,
                     learning_rate=1e-4, warm_start_steps=0, train_size=200, val_size=8, eval_every=0,
                     save_every=10**6, completions_every=0)  # fmt: skip


def _instrument(trainer, sections: dict[str, float]) -> None:
    """Add the time spent in each part of a step to ``sections`` (instance attributes shadow the class's methods)."""

    def timed(name: str, fn):
        @functools.wraps(fn)
        def wrapper(*args, **kwargs):
            start = time.perf_counter()
            try:
                return fn(*args, **kwargs)
            finally:
                sections[name] += time.perf_counter() - start

        return wrapper

    for attr, name in (("_generate", "generation"), ("_calculate_rewards", "rewards"),
                       ("_gathered_weights_and_stats", WEIGHTS), ("_record_group_stats", WEIGHTS),
                       ("compute_loss", "forward + backward"), ("log", "logging")):  # fmt: skip
        setattr(trainer, attr, timed(name, getattr(trainer, attr)))
    trainer.accelerator.backward = timed("forward + backward", trainer.accelerator.backward)


def _step_clock(sections: dict[str, float], steps: list[dict]):
    """A callback that closes a step when the next one begins (so the step's logging is inside it) and times the
    optimizer. Of each ``train()`` call it keeps neither the first step (set-up of the call) nor the last one
    (nothing closes it)."""
    from transformers import TrainerCallback

    class StepClock(TrainerCallback):
        def on_train_begin(self, args, state, control, **kwargs):
            self.began, self.index = None, 0

        def on_step_begin(self, args, state, control, **kwargs):
            now = time.perf_counter()
            if self.began is not None and self.index > 1:
                steps.append({"total": now - self.began, **sections})
            sections.clear()
            self.began, self.index = now, self.index + 1

        def on_pre_optimizer_step(self, args, state, control, **kwargs):
            self.optimizer_began = time.perf_counter()

        def on_optimizer_step(self, args, state, control, **kwargs):
            sections["optimizer"] += time.perf_counter() - self.optimizer_began

    return StepClock()


def _bench_trainer(cfg: RunConfig, policy: Path, run_dir: Path, steps: list[dict]):
    from transformers.trainer_callback import ProgressCallback
    from transformers.trainer_utils import SaveStrategy
    from transformers.utils.notebook import NotebookProgressCallback

    from paper_lib.training.provenance import seed_everything
    from paper_lib.training.recipe import CPU_RECIPE
    from paper_lib.training.runs import build_trainer

    seed_everything(cfg.seed)
    trainer = build_trainer(CPU_RECIPE.parts(cfg, policy, run_dir), policy, run_dir)
    trainer.args.save_strategy = SaveStrategy.NO  # not even the final checkpoint of each train() call
    # Every completion runs to full length, so that both methods generate, score and train on the same tokens.
    trainer.generation_config.min_new_tokens = trainer.generation_kwargs["min_new_tokens"] = cfg.max_completion_length
    bars = (ProgressCallback, NotebookProgressCallback)  # a progress bar drawn inside the timed steps
    for callback in [c for c in trainer.callback_handler.callbacks if isinstance(c, bars)]:
        trainer.remove_callback(callback)
    sections: dict[str, float] = defaultdict(float)
    _instrument(trainer, sections)
    trainer.add_callback(_step_clock(sections, steps))
    return trainer


# ---------------------------------------------------------------------------------------------------------------
# Measuring, and the results as table rows and a figure


def step_times(model: str = "tiny-qwen2", rounds: int = 10, steps_per_round: int = 5, scale: str = "small",
               results_dir: Path | str | None = None, cache: Path | str | None = None) -> pd.DataFrame:  # fmt: skip
    """Per-step wall time, and its parts, of GRPO and λ-GRPO trained alternately in one process.

    Both trainers start from the same policy with the same seed. Each round trains GRPO for ``steps_per_round``
    steps, then λ-GRPO (the order flips every round, so drift hits both); round 0 is a warm-up and is not
    recorded, nor are the first and last step of a round (:func:`_step_clock`). One torch thread, as the
    experiments' workers (two threads on two busy cores stall on each other). One row per recorded step:
    ``method``, ``round``, ``total`` and one column per part in :data:`SECTIONS` (``other`` = the rest).
    """
    from paper_lib.paths import results_dir as results_dir_of
    from paper_lib.training.recipe import CPU_RECIPE

    cache = Path(cache) if cache else results_dir_of(scale, results_dir) / "runs" / "_warmstart"  # git-ignored
    methods = ("grpo", "lambda_grpo")
    cfgs = {m: step_config(model, m, steps_per_round) for m in methods}
    policy = CPU_RECIPE.policy(cfgs["grpo"], cache)
    rows = []
    with tempfile.TemporaryDirectory() as tmp, torch_threads(1):  # as the experiments' workers; no oversubscription
        recorded = {m: [] for m in methods}
        trainers = {m: _bench_trainer(cfgs[m], policy, Path(tmp) / m, recorded[m]) for m in methods}
        for r in range(rounds + 1):
            for m in methods if r % 2 == 0 else methods[::-1]:
                before = len(recorded[m])
                trainers[m].train()
                rows += [{"method": m, "round": r, **s} for s in recorded[m][before:] if r > 0]
    df = pd.DataFrame(rows).fillna(0.0)
    for name in SECTIONS[:-1]:
        df[name] = df.get(name, 0.0)
    df["other"] = df["total"] - df[list(SECTIONS[:-1])].sum(axis=1)
    df.insert(0, "model", model)
    return df[["model", "method", "round", "total", *SECTIONS]]


def step_table(steps: pd.DataFrame) -> pd.DataFrame:
    """λ-GRPO / GRPO step time per model (medians over the recorded steps), as rows of ``table_overhead``."""
    rows = []
    for model, df in steps.groupby("model", sort=False):
        med = df.groupby("method")["total"].median()
        lam = df[df.method == "lambda_grpo"]
        share = float((lam[WEIGHTS] / lam["total"]).median())
        note = (f"median of {len(lam)} steps each, interleaved rounds; reference: GRPO; λ weights + group stats: "
                f"{100 * share:.2f}% of a λ-GRPO step (both methods compute them)")  # fmt: skip
        rows.append({"measure": STEP_MEASURE, "setting": model,
                     "ours": med["lambda_grpo"], "reference": med["grpo"], "ratio": med["lambda_grpo"] / med["grpo"],
                     "paper": float("nan"), "note": note})  # fmt: skip
    return pd.DataFrame(rows)


def skipped_step_table(model: str, why: str) -> pd.DataFrame:
    """The :func:`step_table` row of a model not measured (NaN numbers, ``why`` in the note)."""
    nan = float("nan")
    return pd.DataFrame([{"measure": STEP_MEASURE, "setting": model, "ours": nan,
                          "reference": nan, "ratio": nan, "paper": nan, "note": f"not measured: {why}"}])  # fmt: skip


def breakdown(steps: pd.DataFrame, model: str = "tiny-qwen2") -> pd.DataFrame:
    """Mean seconds per part of a step, one row per method (drawn by ``figures.plots.fig_step_breakdown``)."""
    df = steps[steps.model == model].groupby("method", sort=False)[list(SECTIONS) + ["total"]].mean()
    return df.rename(index={"grpo": "GRPO", "lambda_grpo": "λ-GRPO"})
