"""One configured training run → its run directory (DESIGN.md §6).

``results/<scale>/runs/<experiment>/<name>/``: ``config.json``, ``manifest.json``, ``metrics.jsonl``,
``groups.parquet``, ``completions/``, ``best/``, ``train.log`` and ``checkpoint/`` (git-ignored). A finished run
(manifest status ``finished``) is skipped; an interrupted one resumes from its newest intact checkpoint, with the
rows logged after that checkpoint dropped first, so no step is lost or recorded twice.

A run is a :class:`~paper_lib.training.config.RunConfig` (smoke and small scales: offline models, warm start) or a
:class:`~paper_lib.paper_scale.presets.PaperPreset` (the paper scale: hub models and data, built by
:mod:`paper_lib.paper_scale.recipe`); the run directory's life cycle is the same for both.
"""

from __future__ import annotations

import contextlib
import fcntl
import functools
import logging
import math
import os
import shutil
import socket
import time
from pathlib import Path

import pandas as pd

from paper_lib.paper_scale.presets import PaperPreset
from paper_lib.training import tasks, toy_start
from paper_lib.training.callbacks import GreedyValidation, RunRecorder, compress, read_jsonl, truncate_after
from paper_lib.training.checkpoints import checkpoint_step, latest_intact
from paper_lib.training.config import RunConfig
from paper_lib.training.evaluate import greedy_accuracy
from paper_lib.training.provenance import (
    device_name,
    git_state,
    read_json,
    seed_everything,
    utc_now,
    versions,
    write_json,
)

__all__ = ["run", "is_finished", "prepare_policy", "build_trainer", "load_metrics", "counting", "one_writer"]

log = logging.getLogger(__name__)
_REQUIRED_COLUMNS = {"arithmetic": {"prompt", "answer"}, "toy_tree": {"prompt"}}


def _is_main() -> bool:
    """Rank 0 of a multi-process launch (or the only process): the one that writes shared files."""
    return os.environ.get("RANK", "0") == "0"


def _wait_for(path: Path, timeout_s: float = 3600) -> None:
    deadline = time.monotonic() + timeout_s
    while not path.exists():
        if time.monotonic() > deadline:
            raise TimeoutError(f"rank {os.environ.get('RANK')} waited {timeout_s:.0f} s for {path}")
        time.sleep(0.5)


def is_finished(run_dir: Path) -> bool:
    try:
        return read_json(run_dir / "manifest.json").get("status") == "finished"
    except (OSError, ValueError):
        return False


def load_metrics(run_dir: Path) -> pd.DataFrame:
    return pd.DataFrame(read_jsonl(Path(run_dir) / "metrics.jsonl"))


@contextlib.contextmanager
def _log_to(path: Path):
    """Send this package's, transformers' and TRL's log records to ``path`` as well as the screen."""
    handler = logging.FileHandler(path)
    handler.setFormatter(logging.Formatter("%(asctime)s %(levelname)s %(name)s: %(message)s"))
    loggers = [logging.getLogger(n) for n in ("paper_lib", "transformers", "trl")]
    for lg in loggers:
        lg.addHandler(handler)
    logging.getLogger("paper_lib").setLevel(logging.INFO)
    try:
        yield
    finally:
        for lg in loggers:
            lg.removeHandler(handler)
        handler.close()


# -- task, data, policy -----------------------------------------------------------------------------------------
def _task(cfg: RunConfig):
    """The arithmetic task (the toy task's target depends on the starting policy: :func:`toy_start.toy_task`)."""
    if cfg.task == "toy_tree":
        raise ValueError("the toy task is built from its starting policy: use toy_start.toy_task(cfg, policy)")
    return tasks.ArithmeticTask(seed=cfg.task_seed)


def _datasets(cfg: RunConfig, task):
    """Training prompts and the greedy-validation set (disjoint from training and test prompts)."""
    if cfg.task == "toy_tree":
        return task.dataset(cfg.max_steps * cfg.prompts_per_step), None
    train = task.train(cfg.train_size)
    exclude = set(train["prompt"]) | {p for ds in task.test_sets().values() for p in ds["prompt"]}
    val = tasks.arithmetic_dataset(cfg.val_size, task.train_levels, seed=cfg.task_seed + 1, exclude=exclude)
    return train, val


def _check_columns(cfg: RunConfig, dataset) -> None:
    missing = _REQUIRED_COLUMNS[cfg.task] - set(dataset.column_names)
    if missing:
        raise ValueError(f"dataset for task {cfg.task!r} lacks column(s) {sorted(missing)}: the reward needs them")


def prepare_policy(cfg: RunConfig | PaperPreset, cache: Path) -> Path | str:
    """The initial policy (model + tokenizer) on disk, warm-started once per ``cfg.warm_start_key()`` and shared.

    A paper preset starts from its hub model as it is (no warm start, PAPER.md §4.1).
    """
    if isinstance(cfg, PaperPreset):
        from paper_lib.paper_scale.recipe import policy_id

        return policy_id(cfg)
    out = cache / cfg.warm_start_key()
    if not _is_main():  # other ranks wait for rank 0's warm start instead of racing it
        _wait_for(out / "warm_start.json")
    cache.mkdir(parents=True, exist_ok=True)
    with open(cache / f"{out.name}.lock", "w") as lock:  # parallel workers of `experiments run --jobs N`
        fcntl.flock(lock, fcntl.LOCK_EX)
        if not (out / "warm_start.json").is_file():
            _warm_start(cfg, out)
    return out


def _warm_start(cfg: RunConfig, out: Path) -> None:
    from paper_lib import vocab
    from paper_lib.training import models
    from paper_lib.training.warmstart import supervised_warm_start

    chars = tasks.TOY_CHARS if cfg.task == "toy_tree" else tasks.ARITHMETIC_CHARS
    if cfg.model == "tiny-qwen2":
        tokenizer = models.char_tokenizer(chars)
        model = models.tiny_qwen2(tokenizer, seed=cfg.init_seed)
    else:
        model, tokenizer = models.smollm2_135m_instruct()
        if cfg.task == "toy_tree":  # the same L/R policy at 2/3 of the cost (paper_lib.vocab.prune_vocabulary)
            model, tokenizer = vocab.prune_vocabulary(model, tokenizer, "LR")
    losses = []
    if cfg.task == "arithmetic" and cfg.warm_start_steps:
        train, _ = _datasets(cfg, _task(cfg))
        seed_everything(cfg.init_seed)
        steps, lr = cfg.warm_start_steps, cfg.warm_start_lr
        model, losses = supervised_warm_start(model, tokenizer, train, steps, lr, cfg.init_seed)
    tmp = out.with_name(out.name + ".tmp")
    shutil.rmtree(tmp, ignore_errors=True)
    model.save_pretrained(tmp)
    tokenizer.save_pretrained(tmp)
    write_json(tmp / "warm_start.json", {"key_fields": cfg.to_dict(), "losses": losses})
    shutil.rmtree(out, ignore_errors=True)
    tmp.rename(out)


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


# -- the trainer ---------------------------------------------------------------------------------------------------
def _grpo_args(cfg: RunConfig, run_dir: Path, tokenizer, task):
    from paper_lib.trainer import LambdaGRPOConfig

    toy = toy_start.toy_policy_kwargs(cfg.toy_mask, tokenizer) if cfg.task == "toy_tree" else {}
    return LambdaGRPOConfig(
        output_dir=str(run_dir / "checkpoint"),
        process_weighting=cfg.method == "lambda_grpo",
        scale_matched=cfg.method == "scaled_grpo",
        seed=cfg.seed,
        max_steps=cfg.max_steps,
        num_generations=cfg.group_size,
        per_device_train_batch_size=cfg.completions_per_step,
        gradient_accumulation_steps=1,
        learning_rate=cfg.learning_rate,
        lr_scheduler_type="constant",  # as the authors' code (no scheduler)
        beta=cfg.beta,
        use_bias_correction_kl=False,  # the paper's k3 KL gradient (TRL 1.16's default multiplies it by the ratio)
        loss_type=cfg.loss_type,
        temperature=cfg.temperature,
        max_completion_length=task.depth if cfg.task == "toy_tree" else cfg.max_completion_length,
        max_grad_norm=cfg.max_grad_norm,
        optim=cfg.optim,
        **toy,
        save_strategy="steps",
        save_steps=cfg.save_every,
        save_total_limit=2,
        logging_steps=1,
        report_to="none",
        use_cpu=not _cuda(),
        bf16=_cuda(),
        gradient_checkpointing=False,
        model_init_kwargs={"dtype": "bfloat16" if _cuda() else "float32"},
    )


def _cuda() -> bool:
    import torch

    return torch.cuda.is_available()


def build_trainer(cfg: RunConfig | PaperPreset, policy: Path | str, run_dir: Path):
    """The λ-GRPO (or GRPO) trainer with the run directory's recorders attached."""
    if isinstance(cfg, PaperPreset):
        from paper_lib.paper_scale import recipe as paper_runs

        recorder = RunRecorder(run_dir, cfg.save_every)
        trainer = paper_runs.build_trainer(cfg, str(policy), run_dir, [recorder])
        recorder.trainer = trainer
        _quiet_progress(trainer)
        return trainer
    from transformers import AutoTokenizer

    from paper_lib.trainer import LambdaGRPOTrainer

    task = toy_start.toy_task(cfg, policy, run_dir) if cfg.task == "toy_tree" else _task(cfg)
    train, val = _datasets(cfg, task)
    _check_columns(cfg, train)
    tokenizer = AutoTokenizer.from_pretrained(policy)
    recorder = RunRecorder(run_dir, cfg.completions_every)
    callbacks = [recorder]
    if val is not None and cfg.eval_every:
        reward = task.reward_funcs()[0]
        evaluate = functools.partial(_validate, tokenizer=tokenizer, dataset=val, reward_fn=reward,
                                     max_new_tokens=cfg.max_completion_length)  # fmt: skip
        callbacks.append(GreedyValidation(run_dir, cfg.eval_every, evaluate))
    trainer = LambdaGRPOTrainer(
        model=str(policy),
        reward_funcs=[counting(f, target_metric=cfg.task == "toy_tree") for f in task.reward_funcs()],
        args=_grpo_args(cfg, run_dir, tokenizer, task),
        train_dataset=train,
        processing_class=tokenizer,
        callbacks=callbacks,
    )
    recorder.trainer = trainer
    _quiet_progress(trainer)
    return trainer


def _quiet_progress(trainer) -> None:
    """Keep TRL's tqdm bar but not its printing of every log dict (they go to metrics.jsonl)."""
    from transformers.trainer_callback import ProgressCallback

    class _Bar(ProgressCallback):
        def on_log(self, args, state, control, logs=None, **kwargs):
            pass

    if trainer.pop_callback(ProgressCallback) is not None:
        trainer.add_callback(_Bar())


def _validate(model, tokenizer, dataset, reward_fn, max_new_tokens):
    return greedy_accuracy(model, tokenizer, dataset, reward_fn, max_new_tokens)


# -- the run -------------------------------------------------------------------------------------------------------
@contextlib.contextmanager
def one_writer(run_dir: Path):
    """Hold an exclusive OS lock on ``run_dir/.writer.lock`` for as long as the block runs (the OS releases it when
    the process dies, even by ``kill -9``). A second process refuses at once, naming the holder."""
    run_dir.mkdir(parents=True, exist_ok=True)
    handle = open(run_dir / ".writer.lock", "a+")
    try:
        fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        handle.seek(0)
        holder = handle.read().strip() or "another process"
        handle.close()
        message = f"{run_dir} is being trained by {holder}; one writer per run (wait for it or stop it)"
        raise RuntimeError(message) from None
    try:
        handle.seek(0)
        handle.truncate()
        handle.write(f"pid {os.getpid()} on {socket.gethostname()} since {utc_now()}\n")
        handle.flush()
        yield
    finally:
        handle.close()


def _check_same_config(cfg: RunConfig | PaperPreset, run_dir: Path) -> None:
    config_path = run_dir / "config.json"
    if config_path.is_file() and read_json(config_path) != cfg.to_dict():
        raise ValueError(f"{run_dir} holds a run with a different config; delete it or choose another name")


def _prepare_run_dir(cfg: RunConfig | PaperPreset, run_dir: Path) -> Path | None:
    """Write config.json; return the checkpoint to resume from, after cutting the rows logged after it."""
    run_dir.mkdir(parents=True, exist_ok=True)
    write_json(run_dir / "config.json", cfg.to_dict())
    ckpt = latest_intact(run_dir / "checkpoint")
    step = checkpoint_step(ckpt) if ckpt else 0
    truncate_after(run_dir / "metrics.jsonl", lambda r: r["step"] <= step)
    truncate_after(run_dir / "groups.jsonl", lambda r: r["step"] < step)  # stats of step s are logged at s - 1
    if ckpt is None:
        shutil.rmtree(run_dir / "best", ignore_errors=True)
    return ckpt


def run(cfg: RunConfig | PaperPreset, root: Path | str, cache: Path | str | None = None) -> Path:
    """Train one run into ``root / cfg.name`` (skipped when finished; resumed when interrupted). Only one process
    trains a run directory at a time (:func:`one_writer`); a second one raises RuntimeError naming the first."""
    cfg.validate()
    run_dir = Path(root) / cfg.name
    if run_dir.resolve().parent != Path(root).resolve():
        raise ValueError(f"run name {cfg.name!r} leaves the root {root}")
    if not _is_main():
        return _run(cfg, run_dir, cache, root)
    with one_writer(run_dir):
        return _run(cfg, run_dir, cache, root)


def _run(cfg: RunConfig | PaperPreset, run_dir: Path, cache: Path | str | None, root: Path | str) -> Path:
    _check_same_config(cfg, run_dir)
    if is_finished(run_dir):
        log.info("run %s is finished; not redone", run_dir)
        return run_dir
    run_dir.mkdir(parents=True, exist_ok=True)
    ckpt = _prepare_run_dir(cfg, run_dir) if _is_main() else latest_intact(run_dir / "checkpoint")
    with _log_to(run_dir / f"train{'' if _is_main() else '.rank' + os.environ['RANK']}.log"):
        previous = read_json(run_dir / "manifest.json") if (run_dir / "manifest.json").is_file() else {}
        manifest = {"config": cfg.to_dict(), "git": git_state(), "versions": versions(), "device": device_name(),
                    "started": previous.get("started", utc_now()), "status": "running",
                    "wall_time_s": previous.get("wall_time_s", 0.0),
                    "resumed_from": previous.get("resumed_from", []) + ([ckpt.name] if ckpt else [])}  # fmt: skip
        if _is_main():
            write_json(run_dir / "manifest.json", manifest)
        log.info("run %s: %s%s", cfg.name, cfg, f" (resuming from {ckpt})" if ckpt else "")
        policy = prepare_policy(cfg, Path(cache) if cache else Path(root) / "_warmstart")
        seed_everything(cfg.seed)
        trainer = build_trainer(cfg, policy, run_dir)
        start = time.perf_counter()
        trainer.train(resume_from_checkpoint=str(ckpt) if ckpt else None)
        if _is_main():
            _finish(run_dir, manifest, trainer.state.global_step, time.perf_counter() - start)
    return run_dir


def check_coverage(run_dir: Path, steps: int) -> None:
    """Raise RuntimeError unless ``metrics.jsonl`` holds one training row (with a ``loss``) for each step 1..steps."""
    logged = sorted(r["step"] for r in read_jsonl(run_dir / "metrics.jsonl") if "loss" in r)
    if logged != list(range(1, steps + 1)):
        missing = sorted(set(range(1, steps + 1)) - set(logged))
        repeated = sorted({s for s in logged if logged.count(s) > 1})
        raise RuntimeError(f"{run_dir}/metrics.jsonl does not cover steps 1..{steps} once: {len(logged)} training "
                           f"rows, missing {missing[:5]}{'…' if len(missing) > 5 else ''}, repeated {repeated[:5]}; "
                           "the run is not marked finished (delete it and train it again)")  # fmt: skip


def _finish(run_dir: Path, manifest: dict, steps: int, seconds: float) -> None:
    """Store the logs compactly (metrics.jsonl.gz, groups.parquet) and mark the run finished, once its metrics are
    known to cover every step exactly once."""
    check_coverage(run_dir, steps)
    pd.DataFrame(read_jsonl(run_dir / "groups.jsonl")).to_parquet(run_dir / "groups.parquet", index=False)
    (run_dir / "groups.jsonl").unlink(missing_ok=True)
    compress(run_dir / "metrics.jsonl")
    manifest |= {
        "status": "finished",
        "finished": utc_now(),
        "steps": steps,
        "wall_time_s": manifest["wall_time_s"] + seconds,
    }
    write_json(run_dir / "manifest.json", manifest)
