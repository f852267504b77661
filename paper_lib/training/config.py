"""The configuration of one CPU-scale run: a frozen dataclass whose every field is checked before anything runs.

Every departure from the paper's setting is a field with a comment saying why.
"""

from __future__ import annotations

import hashlib
import json
import math
from dataclasses import asdict, dataclass, field

from paper_lib.paths import check_run_name

__all__ = ["RunConfig", "METHODS"]


METHODS = ("grpo", "lambda_grpo", "scaled_grpo")


def _opt(default, help_text: str):
    """A field with its ``--help`` text (TRL's parser shows it with the default)."""
    return field(default=default, metadata={"help": help_text})


_TASKS = ("arithmetic", "sums", "toy_tree")
_MODELS = ("tiny-qwen2", "smollm2-135m")


@dataclass(frozen=True)
class RunConfig:
    """One training run: task, model, method and the GRPO settings. ``validate()`` names any bad field."""

    name: str = field(metadata={"help": "run directory name under --root (a plain folder name)"})
    task: str = _opt(
        "arithmetic",
        "arithmetic (running results), sums (terms added in a free order) or toy_tree (the paper's §4.3 L/R tree)",
    )
    model: str = _opt("tiny-qwen2", "tiny-qwen2 (random, offline) or smollm2-135m (pretrained, from a PyPI wheel)")
    method: str = _opt("lambda_grpo", "grpo (TRL's GRPO), lambda_grpo (Eq. 9) or scaled_grpo (scale-matched control)")
    seed: int = _opt(0, "sampling and data order; also the toy task's target")
    max_steps: int = _opt(20, "RL steps (optimizer steps)")
    group_size: int = _opt(8, "G: completions per prompt (TRL's num_generations)")
    prompts_per_step: int = _opt(4, "prompts (groups) per step")
    batch_size: int | None = _opt(None, "completions per optimizer step (default prompts_per_step × group_size)")
    learning_rate: float = _opt(1e-3, "AdamW learning rate")
    beta: float = _opt(0.0, "KL coefficient (the paper's k3 estimator; > 0 loads a reference model)")
    loss_type: str = _opt("dapo", "TRL's normalisation: dapo (token-level, under which Theorem 1 holds) or grpo")
    temperature: float = _opt(1.0, "sampling temperature")
    optim: str = _opt("adamw_torch", "HF optimizer: adamw_torch or adamw_torch_fused (the toy runs; 3x faster on CPU)")
    max_grad_norm: float = _opt(1.0, "gradient clipping (HF's default 1.0; 0 turns it off, as the authors' loop)")
    max_completion_length: int = _opt(24, "new tokens per completion at most")
    train_size: int = _opt(2000, "training prompts")
    val_size: int = _opt(64, "validation prompts (greedy accuracy)")
    eval_every: int = _opt(10, "greedy validation every N steps (0: never)")
    save_every: int = _opt(10, "checkpoint every N steps (a killed run resumes from the last one)")
    completions_every: int = _opt(10, "dump the sampled completions every N steps (0: never)")
    warm_start_steps: int = _opt(200, "supervised steps on worked solutions before RL (0: none)")
    warm_start_lr: float = _opt(3e-3, "warm-start learning rate")
    init_seed: int = _opt(0, "model init and warm start (shared by the runs of an experiment)")
    task_seed: int = _opt(0, "train / validation / test data")
    toy_n: int = _opt(1, "toy task: other paths sharing the target's first n tokens get toy_r_neg (0-3)")
    toy_r_neg: float = _opt(-1.0, "toy task: the reward of those paths")
    toy_mask: str = _opt("policy", "toy task: policy (L/R for sampling and training) or sampling_only (the ablation)")

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
        key = {k: getattr(self, k) for k in fields}
        if self.task == "sums":  # its levels and orders were redesigned: a cached older warm start must not match
            from paper_lib.training.tasks import SumTask

            key |= {"levels": sorted(SumTask.LEVELS.items()), "orders": SumTask.ORDERS}
        blob = json.dumps(key, sort_keys=True)
        return f"{self.task}-{self.model}-" + hashlib.sha256(blob.encode()).hexdigest()[:10]


def is_int(value) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


def finite_number(value) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool) and math.isfinite(value)


def _integers(cfg, fields) -> list[tuple[bool, str, str]]:
    return [(is_int(getattr(cfg, f)), f, f"must be an integer, got {getattr(cfg, f)!r}") for f in fields]


def fail_first(owner: str, checks) -> None:
    """Raise ``ValueError("<owner>.<field>: <message>")`` for the first ``(ok, field, message)`` that is not ok."""
    for ok, name, message in checks:
        if not ok:
            raise ValueError(f"{owner}.{name}: {message}")
