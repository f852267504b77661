"""What a run trains, as a *recipe*: the starting policy and the trainer's parts, handed to :func:`.runs.run`.

:func:`~paper_lib.training.runs.run` owns the run directory's life (lock, resume, manifest, finish) at every scale
and builds the trainer once, from a :class:`TrainerParts`. A recipe supplies what differs between scales:

- :data:`CPU_RECIPE` (this module; the smoke and small scales): a :class:`~paper_lib.training.config.RunConfig`, an
  offline model warm-started once per :meth:`~paper_lib.training.config.RunConfig.warm_start_key`, the arithmetic or
  toy task, greedy validation;
- :data:`paper_lib.paper_scale.recipe.PAPER_RECIPE`: a paper preset, its hub model and data, the boxed stop.

:func:`grpo_arguments` is the one translation of a config into ``LambdaGRPOConfig`` arguments that both use.
"""

from __future__ import annotations

import fcntl
import functools
import os
import shutil
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from paper_lib.rundir import write_json
from paper_lib.training import tasks, toy_start
from paper_lib.training.config import RunConfig
from paper_lib.training.evaluate import Validation, reward_rows, reward_summary
from paper_lib.training.provenance import seed_everything

__all__ = ["TrainerParts", "CpuRecipe", "CPU_RECIPE", "grpo_arguments", "is_main_process", "cuda"]

_REQUIRED_COLUMNS = {"arithmetic": {"prompt", "answer"}, "sums": {"prompt", "answer"}, "toy_tree": {"prompt"}}


@dataclass
class TrainerParts:
    """Everything :func:`~paper_lib.training.runs.build_trainer` needs besides the policy and the run directory."""

    tokenizer: object
    train_dataset: object
    reward_funcs: list[Callable]
    args: object  # a LambdaGRPOConfig
    trainer_class: type
    completions_every: int  # how often the recorder dumps sampled completions
    validate: Validation | None = None  # greedy validation every ``eval_every`` steps, split over the ranks
    eval_every: int = 0
    target_metric: bool = False  # also log the share of completions that hit the toy target
    peft_config: object = None


def is_main_process() -> bool:
    """Rank 0 of a multi-process launch (or the only process): the one that writes shared files."""
    return os.environ.get("RANK", "0") == "0"


def cuda() -> bool:
    import torch

    return torch.cuda.is_available()


def grpo_arguments(*, output_dir: str, method: str, seed: int, max_steps: int, group_size: int, batch_size: int,
                   accumulation: int, learning_rate: float, beta: float, loss_type: str, temperature: float,
                   max_completion_length: int, max_grad_norm: float, save_every: int, bf16: bool,
                   **extra) -> dict:  # fmt: skip
    """``LambdaGRPOConfig`` keyword arguments shared by every scale; ``extra`` adds or overrides scale-specific ones.

    Fixed here for every run: the paper's k3 KL gradient (``use_bias_correction_kl=False``; TRL 1.16's default
    multiplies it by the ratio, DeepSeek-V3.2's estimator), one log row per step, no external loggers.
    """
    return dict(
        output_dir=str(output_dir), process_weighting=method == "lambda_grpo", seed=seed, max_steps=max_steps,
        num_generations=group_size, per_device_train_batch_size=batch_size, gradient_accumulation_steps=accumulation,
        learning_rate=learning_rate, beta=beta, use_bias_correction_kl=False, loss_type=loss_type,
        temperature=temperature, max_completion_length=max_completion_length, max_grad_norm=max_grad_norm,
        save_strategy="steps", save_steps=save_every, logging_steps=1, report_to="none", bf16=bf16,
        model_init_kwargs={"dtype": "bfloat16" if bf16 else "float32"},
    ) | extra  # fmt: skip


class CpuRecipe:
    """The smoke and small scales: a :class:`~paper_lib.training.config.RunConfig` on an offline model."""

    def check(self, cfg) -> None:
        if not isinstance(cfg, RunConfig):
            raise TypeError(f"the CPU recipe trains a RunConfig, got {type(cfg).__name__}; a paper preset trains with "
                            "paper_lib.paper_scale.recipe.PAPER_RECIPE (python -m paper_lib.paper_scale)")  # fmt: skip

    def policy(self, cfg: RunConfig, cache: Path) -> Path:
        """The initial policy (model + tokenizer) on disk, warm-started once per ``cfg.warm_start_key()``, shared."""
        out = cache / cfg.warm_start_key()
        if not is_main_process():  # other ranks wait for rank 0's warm start instead of racing it
            _wait_for(out / "warm_start.json")
        cache.mkdir(parents=True, exist_ok=True)
        with open(cache / f"{out.name}.lock", "w") as lock:  # parallel workers of `experiments run --jobs N`
            fcntl.flock(lock, fcntl.LOCK_EX)
            if not (out / "warm_start.json").is_file():
                _warm_start(cfg, out)
        return out

    def parts(self, cfg: RunConfig, policy: Path, run_dir: Path) -> TrainerParts:
        from transformers import AutoTokenizer

        from paper_lib.trainer import LambdaGRPOTrainer

        task = toy_start.toy_task(cfg, policy, run_dir) if cfg.task == "toy_tree" else _task(cfg)
        train, val = _datasets(cfg, task)
        _check_columns(cfg, train)
        tokenizer = AutoTokenizer.from_pretrained(policy)
        validate = None
        if val is not None:
            reward, max_new = task.reward_funcs()[0], cfg.max_completion_length
            rows = functools.partial(reward_rows, tokenizer=tokenizer, reward_fn=reward, max_new_tokens=max_new)
            validate = Validation(val, rows, reward_summary)
        return TrainerParts(tokenizer=tokenizer, train_dataset=train, reward_funcs=task.reward_funcs(),
                            args=_grpo_args(cfg, run_dir, tokenizer, task), trainer_class=LambdaGRPOTrainer,
                            completions_every=cfg.completions_every, validate=validate, eval_every=cfg.eval_every,
                            target_metric=cfg.task == "toy_tree")  # fmt: skip


CPU_RECIPE = CpuRecipe()


def _wait_for(path: Path, timeout_s: float = 3600) -> None:
    deadline = time.monotonic() + timeout_s
    while not path.exists():
        if time.monotonic() > deadline:
            raise TimeoutError(f"rank {os.environ.get('RANK')} waited {timeout_s:.0f} s for {path}")
        time.sleep(0.5)


# -- task, data, policy -----------------------------------------------------------------------------------------
def _task(cfg: RunConfig):
    """The arithmetic or sums task (the toy task's target depends on its starting policy: toy_start)."""
    if cfg.task == "toy_tree":
        raise ValueError("the toy task is built from its starting policy: use toy_start.toy_task(cfg, policy)")
    return tasks.make_task(cfg.task, seed=cfg.task_seed)


def _datasets(cfg: RunConfig, task):
    """Training prompts and the greedy-validation set (disjoint from training and test prompts)."""
    if cfg.task == "toy_tree":
        return task.dataset(cfg.max_steps * cfg.prompts_per_step), None
    train = task.train(cfg.train_size)
    exclude = set(train["prompt"]) | {p for ds in task.test_sets().values() for p in ds["prompt"]}
    val = task.validation(cfg.val_size, exclude)
    return train, val


def _check_columns(cfg: RunConfig, dataset) -> None:
    missing = _REQUIRED_COLUMNS[cfg.task] - set(dataset.column_names)
    if missing:
        raise ValueError(f"dataset for task {cfg.task!r} lacks column(s) {sorted(missing)}: the reward needs them")


def _warm_start(cfg: RunConfig, out: Path) -> None:
    from paper_lib.training import models
    from paper_lib.training.warmstart import supervised_warm_start

    chars = tasks.TOY_CHARS if cfg.task == "toy_tree" else tasks.ARITHMETIC_CHARS
    if cfg.model == "tiny-qwen2":
        tokenizer = models.char_tokenizer(chars)
        model = models.tiny_qwen2(tokenizer, seed=cfg.init_seed)
    else:
        from paper_lib.training import smollm2

        model, tokenizer = smollm2.smollm2_135m_instruct()
        if cfg.task == "toy_tree":  # the same L/R policy at 2/3 of the cost (smollm2.prune_vocabulary)
            model, tokenizer = smollm2.prune_vocabulary(model, tokenizer, "LR")
    losses = []
    if cfg.task != "toy_tree" and cfg.warm_start_steps:
        task = _task(cfg)
        train, _ = _datasets(cfg, task)
        seed_everything(cfg.init_seed)
        steps, lr = cfg.warm_start_steps, cfg.warm_start_lr
        model, losses = supervised_warm_start(model, tokenizer, task.warm_start_rows(train), steps, lr, cfg.init_seed)
    tmp = out.with_name(out.name + ".tmp")
    shutil.rmtree(tmp, ignore_errors=True)
    model.save_pretrained(tmp)
    tokenizer.save_pretrained(tmp)
    write_json(tmp / "warm_start.json", {"key_fields": cfg.to_dict(), "losses": losses})
    shutil.rmtree(out, ignore_errors=True)
    tmp.rename(out)


def _grpo_args(cfg: RunConfig, run_dir: Path, tokenizer, task):
    from paper_lib.trainer import LambdaGRPOConfig

    toy = toy_start.toy_policy_kwargs(cfg.toy_mask, tokenizer) if cfg.task == "toy_tree" else {}
    return LambdaGRPOConfig(**grpo_arguments(
        output_dir=str(run_dir / "checkpoint"), method=cfg.method, seed=cfg.seed, max_steps=cfg.max_steps,
        group_size=cfg.group_size, batch_size=cfg.completions_per_step, accumulation=1,
        learning_rate=cfg.learning_rate, beta=cfg.beta, loss_type=cfg.loss_type, temperature=cfg.temperature,
        max_completion_length=task.depth if cfg.task == "toy_tree" else cfg.max_completion_length,
        max_grad_norm=cfg.max_grad_norm, save_every=cfg.save_every, bf16=cuda(),
        scale_matched=cfg.method == "scaled_grpo", lr_scheduler_type="constant",  # as the authors' code
        optim=cfg.optim, save_total_limit=2, use_cpu=not cuda(), gradient_checkpointing=False, **toy,
    ))  # fmt: skip
