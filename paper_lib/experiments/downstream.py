"""Held-out evaluation of a finished run (its best checkpoint) and of its starting policy, on the five test sets.

Writes ``downstream.json`` next to the run and ``base_downstream.json`` for its warm start: once per experiment, in
the experiment's folder, where its runs share one warm start; in the run's own folder where they do not (the design
pilots, one warm-start length each). Per test set the greedy accuracy, its SEM (ddof = 1) and the per-item 0/1
scores, so tables and paired tests are computed later from committed files, without the (git-ignored) weights.
"""

from __future__ import annotations

import logging
from pathlib import Path

from paper_lib.rundir import read_json, write_json
from paper_lib.training import tasks
from paper_lib.training.config import RunConfig
from paper_lib.training.evaluate import accuracy_sem, greedy_completions

__all__ = ["base_result_file", "evaluate_model", "evaluate_run"]

log = logging.getLogger(__name__)


def evaluate_model(model_dir: Path, tokenizer_dir: Path, cfg: RunConfig) -> dict:
    """Greedy accuracy ± SEM of the model in ``model_dir`` on each held-out level of the run's task."""
    from transformers import AutoModelForCausalLM, AutoTokenizer

    model = AutoModelForCausalLM.from_pretrained(model_dir)
    tokenizer = AutoTokenizer.from_pretrained(tokenizer_dir)  # the policy's; RL does not change it
    out = {}
    task = tasks.make_task(cfg.task, seed=cfg.task_seed)
    reward = task.reward_funcs()[0]
    for name, ds in task.test_sets().items():
        completions = greedy_completions(model, tokenizer, ds["prompt"], cfg.max_completion_length)
        correct = [float(r >= 1.0) for r in reward(completions, ds["answer"])]
        acc, sem = accuracy_sem(correct)
        out[name] = {"accuracy": acc, "sem": sem, "n": len(correct), "correct": correct}
    return out


def evaluate_run(cfg: RunConfig, run_dir: Path, warmstart_cache: Path) -> None:
    """Evaluate the run's best checkpoint (final model if it never validated), and the warm start once."""
    key = cfg.warm_start_key()
    policy = warmstart_cache / key
    base_file = base_result_file(run_dir, key)
    if not base_file.is_file():
        write_json(base_file, {"warm_start_key": key} | evaluate_model(policy, policy, cfg))
    result_file = run_dir / "downstream.json"
    if result_file.is_file():
        return
    best = run_dir / "best"
    model_dir = best if best.is_dir() else _final_checkpoint(run_dir)
    result = evaluate_model(model_dir, policy, cfg)
    step = read_json(best / "score.json")["step"] if best.is_dir() else cfg.max_steps
    write_json(result_file, {"checkpoint_step": step} | result)
    log.info("%s: held-out accuracy %s", run_dir.name, {k: round(v["accuracy"], 3) for k, v in result.items()})


def base_result_file(run_dir: Path, warm_start_key: str) -> Path:
    """Where the held-out result of the run's warm start lives: the experiment's ``base_downstream.json`` if it is
    absent or of this warm start, else the run's own (an experiment whose runs start from different policies)."""
    shared = run_dir.parent / "base_downstream.json"
    if not shared.is_file() or read_json(shared).get("warm_start_key") == warm_start_key:
        return shared
    return run_dir / "base_downstream.json"


def _final_checkpoint(run_dir: Path) -> Path:
    from paper_lib.training.checkpoints import latest_intact

    ckpt = latest_intact(run_dir / "checkpoint")
    if ckpt is None:
        raise FileNotFoundError(f"{run_dir} has neither best/ nor an intact checkpoint to evaluate")
    return ckpt
