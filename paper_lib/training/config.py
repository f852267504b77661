"""Experiment presets per scale: one frozen dataclass per experiment kind (DESIGN.md §4).

Every departure from the paper's setting is a field with a comment saying why.
"""

from __future__ import annotations

import hashlib
import json
import math
from dataclasses import asdict, dataclass

from paper_lib.paths import check_run_name

__all__ = ["RunConfig", "METHODS"]


METHODS = ("grpo", "lambda_grpo", "scaled_grpo")
_TASKS = ("arithmetic", "toy_tree")
_MODELS = ("tiny-qwen2", "smollm2-135m")


@dataclass(frozen=True)
class RunConfig:
    """One training run: task, model, method and the GRPO settings. ``validate()`` names any bad field."""

    name: str
    task: str = "arithmetic"  # "arithmetic" | "toy_tree"
    model: str = "tiny-qwen2"  # "tiny-qwen2" | "smollm2-135m"
    method: str = "lambda_grpo"  # "grpo" (TRL's GRPO) | "lambda_grpo" (Eq. 9) | "scaled_grpo" (scale-matched control)
    seed: int = 0  # sampling, data order; also the toy task's target
    max_steps: int = 20
    group_size: int = 8  # G, TRL's num_generations
    prompts_per_step: int = 4
    batch_size: int | None = None  # completions per optimizer step; default prompts_per_step * group_size
    learning_rate: float = 1e-3
    beta: float = 0.0  # KL coefficient (k3 estimator)
    loss_type: str = "dapo"  # TRL's token-level normalisation: the objective under which Theorem 1 holds
    temperature: float = 1.0
    optim: str = "adamw_torch"  # HF's optimizer name; the toy runs use "adamw_torch_fused" (3x faster on CPU)
    max_grad_norm: float = 1.0  # HF's default clipping; 0 turns it off (the authors' loop never clips)
    max_completion_length: int = 24
    train_size: int = 2000
    val_size: int = 64
    eval_every: int = 10  # greedy validation every N steps (0: never)
    save_every: int = 10  # checkpoint every N steps
    completions_every: int = 10  # dump the sampled completions every N steps (0: never)
    warm_start_steps: int = 200  # supervised steps on worked solutions before RL (0: none)
    warm_start_lr: float = 3e-3
    init_seed: int = 0  # model init and warm start: shared by all runs of an experiment
    task_seed: int = 0  # train / validation / test data
    toy_n: int = 1  # toy task: other paths sharing the target's first n tokens get r_neg
    toy_r_neg: float = -1.0
    toy_mask: str = "policy"  # "policy": L/R for sampling and training | "sampling_only": the labelled ablation

    @property
    def completions_per_step(self) -> int:
        return self.batch_size if self.batch_size is not None else self.prompts_per_step * self.group_size

    def validate(self) -> RunConfig:
        """``self``, or ValueError naming the first bad field (before anything is written)."""
        try:
            check_run_name(self.name)
        except ValueError as err:
            raise ValueError(f"RunConfig.{err}") from None
        nonneg = {f: getattr(self, f) for f in ("seed", "init_seed", "task_seed", "eval_every", "completions_every",
                                                 "warm_start_steps")}  # fmt: skip
        checks = [
            (self.task in _TASKS, "task", f"unknown task {self.task!r}; known: {list(_TASKS)}"),
            (self.model in _MODELS, "model", f"unknown model {self.model!r}; known: {list(_MODELS)}"),
            (self.method in METHODS, "method", f"unknown method {self.method!r}; known: {list(METHODS)}"),
            *_integers(self, ("max_steps", "group_size", "prompts_per_step", "max_completion_length", "train_size",
                              "val_size", "save_every", *nonneg)),
            (self.batch_size is None or is_int(self.batch_size), "batch_size",
             f"must be None or an integer, got {self.batch_size!r}"),
        ]  # fmt: skip
        fail_first("RunConfig", checks)  # the types first: the comparisons below need them
        checks = [
            (self.batch_size is None or self.batch_size >= self.group_size, "batch_size",
             f"must be None or >= group_size ({self.group_size}), got {self.batch_size!r}"),
            (self.group_size >= 2, "group_size", f"must be >= 2, got {self.group_size}"),
            (self.prompts_per_step >= 1, "prompts_per_step", f"must be >= 1, got {self.prompts_per_step}"),
            (self.completions_per_step % self.group_size == 0, "batch_size",
             f"{self.completions_per_step} completions per step do not divide into groups of {self.group_size}"),
            (finite_number(self.learning_rate) and self.learning_rate > 0, "learning_rate",
             f"must be finite and > 0, got {self.learning_rate}"),
            (finite_number(self.beta) and self.beta >= 0, "beta", f"must be finite and >= 0, got {self.beta}"),
            (self.max_steps >= 1, "max_steps", f"must be >= 1, got {self.max_steps}"),
            (finite_number(self.temperature) and self.temperature > 0, "temperature",
             f"must be finite and > 0, got {self.temperature}"),
            (finite_number(self.max_grad_norm) and self.max_grad_norm >= 0, "max_grad_norm",
             f"must be finite and >= 0 (0: no clipping), got {self.max_grad_norm}"),
            (self.optim in ("adamw_torch", "adamw_torch_fused"), "optim",
             f"must be 'adamw_torch' or 'adamw_torch_fused', got {self.optim!r}"),
            (self.toy_mask in ("policy", "sampling_only"), "toy_mask",
             f"must be 'policy' or 'sampling_only', got {self.toy_mask!r}"),
            (self.max_completion_length >= 1, "max_completion_length",
             f"must be >= 1, got {self.max_completion_length}"),
            (self.train_size >= 1, "train_size", f"must be >= 1, got {self.train_size}"),
            (self.val_size >= 1, "val_size", f"must be >= 1 (greedy validation needs prompts), got {self.val_size}"),
            (self.save_every >= 1, "save_every", f"must be >= 1, got {self.save_every}"),
            *((v >= 0, f, f"must be >= 0, got {v}") for f, v in nonneg.items()),
            (finite_number(self.warm_start_lr) and self.warm_start_lr > 0, "warm_start_lr",
             f"must be finite and > 0, got {self.warm_start_lr}"),
            (self.toy_n in (0, 1, 2, 3), "toy_n", f"must be 0, 1, 2 or 3 (the tree has depth 4), got {self.toy_n!r}"),
            (finite_number(self.toy_r_neg), "toy_r_neg", f"must be finite, got {self.toy_r_neg}"),
        ]  # fmt: skip
        fail_first("RunConfig", checks)
        return self

    def to_dict(self) -> dict:
        return asdict(self)

    def warm_start_key(self) -> str:
        """Runs that differ only in method, seed, β or RL settings share one warm start (same initial policy)."""
        fields = ("task", "model", "warm_start_steps", "warm_start_lr", "init_seed", "task_seed", "train_size")
        blob = json.dumps({k: getattr(self, k) for k in fields}, sort_keys=True)
        return f"{self.task}-{self.model}-" + hashlib.sha256(blob.encode()).hexdigest()[:10]


def is_int(value) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


def finite_number(value) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool) and math.isfinite(value)


def _integers(cfg, fields) -> list[tuple[bool, str, str]]:
    return [(is_int(getattr(cfg, f)), f, f"must be an integer, got {getattr(cfg, f)!r}") for f in fields]


def fail_first(owner: str, checks) -> None:
    """Raise ``ValueError("<owner>.<field>: <message>")`` for the first ``(ok, field, message)`` that is not ok."""
    for ok, field, message in checks:
        if not ok:
            raise ValueError(f"{owner}.{field}: {message}")
