"""Trainer callbacks that write a run directory: metrics.jsonl, groups.jsonl, completions/, sealed checkpoints, best/.

Each writer is append-only during training; :func:`truncate_after` cuts the files back to a checkpoint's step when a
killed run resumes, so no step is lost or recorded twice.
"""

from __future__ import annotations

import functools
import json
import logging
import math
import shutil
from pathlib import Path

import torch
from transformers import TrainerCallback

from paper_lib.rundir import read_json, read_jsonl, write_json
from paper_lib.training.checkpoints import SEAL, seal
from paper_lib.training.evaluate import validate

__all__ = ["RunRecorder", "GreedyValidation", "counting", "mean_step_loss"]

log = logging.getLogger(__name__)


def _clean(value):
    """JSON-safe scalars: tensors to numbers, NaN to None."""
    if isinstance(value, torch.Tensor):
        value = value.item()
    if isinstance(value, float) and not math.isfinite(value):
        return None
    return value


def _text(value) -> str:
    """A prompt or completion as text: a conversation (the paper scale's chat format) gives its last turn."""
    if isinstance(value, list) and value and isinstance(value[-1], dict):
        return str(value[-1].get("content", ""))
    return value


def _append(path: Path, rows: list[dict]) -> None:
    with path.open("a") as f:
        for row in rows:
            f.write(json.dumps({k: _clean(v) for k, v in row.items()}, sort_keys=True) + "\n")


def counting(reward_fn, target_metric: bool = False):
    """Count rewards that are None or NaN (TRL treats them as unscorable: advantage 0) and log their share.

    With ``target_metric`` (toy task) also log the share of completions that hit the target (reward exactly 1).
    """

    @functools.wraps(reward_fn)
    def wrapped(*args, **kwargs):
        values = reward_fn(*args, **kwargs)
        bad = sum(v is None or (isinstance(v, float) and math.isnan(v)) for v in values)
        if "log_metric" in kwargs:
            kwargs["log_metric"]("reward_invalid_frac", bad / max(len(values), 1))
            if target_metric:
                kwargs["log_metric"]("target_frequency", sum(v == 1.0 for v in values) / max(len(values), 1))
        return values

    return wrapped


def mean_step_loss(rows: list[dict], steps: int) -> float:
    """The training loss averaged over steps 1..``steps``, from logged rows that each average the steps since the
    previous one (``logging_steps`` of them): what HF's ``train_loss`` is for a run that was never interrupted."""
    total, last = 0.0, 0
    for row in sorted((r for r in rows if "loss" in r), key=lambda r: r["step"]):
        total, last = total + row["loss"] * (row["step"] - last), row["step"]
    return total / max(steps, 1)


class RunRecorder(TrainerCallback):
    """Per-step metrics, per-group process-set statistics, sampled completions, and checkpoint seals."""

    def __init__(self, run_dir: Path, completions_every: int):
        self.run_dir, self.completions_every = run_dir, completions_every
        self.trainer = None  # set by runs.py once the trainer exists

    def on_log(self, args, state, control, logs=None, **kwargs):
        if not state.is_world_process_zero or not logs:
            return
        if "train_loss" in logs:  # HF's summary averages only the steps this process trained; the log has them all
            logs["train_loss"] = mean_step_loss(read_jsonl(self.run_dir / "metrics.jsonl"), state.global_step)
        _append(self.run_dir / "metrics.jsonl", [{"step": state.global_step, **logs}])
        if self.trainer is not None:
            _append(self.run_dir / "groups.jsonl", self.trainer.group_stats)
            self.trainer.group_stats.clear()
            if self.completions_every and state.global_step % self.completions_every == 0:
                self._dump_completions(state.global_step)

    def _dump_completions(self, step: int) -> None:
        logs = self.trainer._logs  # TRL keeps the latest generation batch here for its own completion logging
        rewards = {name: list(v) for name, v in logs["rewards"].items()}
        rows = [
            {"step": step, "prompt": _text(p), "completion": _text(c), "advantage": a}
            | {k: v[i] for k, v in rewards.items()}
            for i, (p, c, a) in enumerate(zip(logs["prompt"], logs["completion"], logs["advantages"]))
        ]
        out = self.run_dir / "completions"
        out.mkdir(exist_ok=True)
        (out / f"step_{step:06d}.jsonl").unlink(missing_ok=True)
        _append(out / f"step_{step:06d}.jsonl", rows)

    def on_save(self, args, state, control, **kwargs):
        if state.is_world_process_zero:
            seal(Path(args.output_dir) / f"checkpoint-{state.global_step}")


# What a checkpoint holds besides the model (and tokenizer): left out of best/.
_TRAINING_STATE = {"optimizer.pt", "scheduler.pt", "trainer_state.json", "training_args.bin", "scaler.pt", SEAL}


class GreedyValidation(TrainerCallback):
    """Greedy accuracy on a validation set every ``every`` steps (a :class:`~.evaluate.Validation`, its items split
    over the ranks); the best model is kept in ``run_dir/best``.

    An improvement forces a checkpoint at that step, and ``best/`` is a copy of that sealed checkpoint's model files
    (not a fresh ``save_pretrained`` of rank 0's model, which under ZeRO-3 holds only its partition), so ``best/``
    never holds a step that a resumed run would replay.
    """

    def __init__(self, run_dir: Path, every: int, validation):
        self.run_dir, self.every, self.validation = run_dir, every, validation
        score = run_dir / "best" / "score.json"
        self.best = read_json(score)["accuracy"] if score.is_file() else -math.inf
        self.pending: dict | None = None

    def on_step_end(self, args, state, control, model=None, **kwargs):
        if not self.every or (state.global_step % self.every and state.global_step != state.max_steps):
            return
        result = validate(self.validation, model)  # split over the ranks; every rank gets the same result
        if state.is_world_process_zero:
            _append(self.run_dir / "metrics.jsonl", [{"step": state.global_step, **result}])
        log.info("step %d validation %s", state.global_step, result)
        if result["val/accuracy"] > self.best:
            self.best = result["val/accuracy"]
            self.pending = {"step": state.global_step, "accuracy": self.best}
            control.should_save = True

    def on_save(self, args, state, control, model=None, **kwargs):
        if self.pending is None or not state.is_world_process_zero:
            return
        tmp, best = self.run_dir / "best.tmp", self.run_dir / "best"
        shutil.rmtree(tmp, ignore_errors=True)
        ckpt = Path(args.output_dir) / f"checkpoint-{state.global_step}"
        shutil.copytree(ckpt, tmp, ignore=lambda _, names: [n for n in names if n in _TRAINING_STATE or
                                                            n.startswith(("rng_state", "global_step"))])  # fmt: skip
        write_json(tmp / "score.json", self.pending)
        shutil.rmtree(best, ignore_errors=True)
        tmp.rename(best)
        self.pending = None
