"""One configured training run → its run directory.

``results/<scale>/runs/<experiment>/<name>/``: ``config.json``, ``manifest.json``, ``metrics.jsonl``,
``groups.parquet``, ``completions/``, ``best/``, ``train.log`` and ``checkpoint/`` (git-ignored). A finished run
(manifest status ``finished``) is skipped; an interrupted one resumes from its newest intact checkpoint, with the
rows logged after that checkpoint dropped first, so no step is lost or recorded twice.

What a run trains comes from its *recipe* (:mod:`paper_lib.training.recipe`): :data:`~.recipe.CPU_RECIPE` for a
:class:`~paper_lib.training.config.RunConfig` (smoke and small scales: offline models, warm start), or
``paper_lib.paper_scale.recipe.PAPER_RECIPE`` for a paper preset (hub models and data). The run directory's life cycle
and the trainer's assembly (:func:`build_trainer`) are the same for both.
"""

from __future__ import annotations

import contextlib
import fcntl
import logging
import os
import shutil
import socket
import sys
import time
from pathlib import Path

import pandas as pd

from paper_lib.rundir import check_coverage, compress, is_finished, read_json, read_jsonl, truncate_after, write_json
from paper_lib.training.callbacks import GreedyValidation, RunRecorder, counting
from paper_lib.training.checkpoints import checkpoint_step, latest_intact
from paper_lib.training.provenance import device_name, git_state, seed_everything, utc_now, versions
from paper_lib.training.recipe import CPU_RECIPE, TrainerParts, is_main_process

__all__ = [
    "run",
    "build_trainer",
    "check_report_to",
    "REPORTERS",
    "load_metrics",
    "one_writer",
    "is_finished",
    "check_coverage",
]

log = logging.getLogger(__name__)


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


# -- the trainer ---------------------------------------------------------------------------------------------------
REPORTERS = ("none", "tensorboard", "wandb")
_REPORTER_PACKAGES = {"tensorboard": "tensorboard", "wandb": "wandb"}


def check_report_to(report_to: str | tuple[str, ...] | list[str]) -> list[str]:
    """``report_to`` (``"tensorboard"``, ``"tensorboard,wandb"``, ``"none"``…) as HF's list, or ValueError naming an
    unknown logger or one whose package is missing, before anything is written."""
    names = [n.strip() for n in (report_to.split(",") if isinstance(report_to, str) else report_to) if n.strip()]
    unknown = [n for n in names if n not in REPORTERS]
    if unknown or not names:
        raise ValueError(f"report_to: unknown logger(s) {unknown or names}; choose from {list(REPORTERS)}")
    import importlib.util

    missing = [n for n in names if n != "none" and importlib.util.find_spec(_REPORTER_PACKAGES[n]) is None]
    if missing:
        raise ValueError(f"report_to: {', '.join(missing)} is not installed (pip install {' '.join(missing)})")
    return [] if names == ["none"] else [n for n in names if n != "none"]


def build_trainer(parts: TrainerParts, policy: Path | str, run_dir: Path, report_to: list[str] | None = None):
    """The λ-GRPO (or GRPO) trainer from a recipe's parts, with the run directory's recorders attached; ``report_to``
    (HF's loggers) also receive every metric, TensorBoard's events in ``run_dir/tensorboard``."""
    parts.args.report_to = list(report_to or [])  # not part of the run's config: it changes no result
    recorder = RunRecorder(run_dir, parts.completions_every)
    callbacks = [recorder]
    if parts.validate is not None and parts.eval_every:
        callbacks.append(GreedyValidation(run_dir, parts.eval_every, parts.validate))
    trainer = parts.trainer_class(
        model=str(policy),
        reward_funcs=[counting(f, target_metric=parts.target_metric) for f in parts.reward_funcs],
        args=parts.args,
        train_dataset=parts.train_dataset,
        processing_class=parts.tokenizer,
        callbacks=callbacks,
        peft_config=parts.peft_config,
    )
    recorder.trainer = trainer
    for callback in trainer.callback_handler.callbacks:
        if type(callback).__name__ == "TensorBoardCallback":  # by default it writes under checkpoint/ (not kept)
            callback.logging_dir = str(run_dir / "tensorboard")
    _quiet_progress(trainer)
    return trainer


def _quiet_progress(trainer) -> None:
    """Keep TRL's tqdm bar, showing the last step's loss and mean reward, instead of its printing of every log dict
    (they go to metrics.jsonl)."""
    from transformers.trainer_callback import ProgressCallback

    class _Bar(ProgressCallback):
        def on_log(self, args, state, control, logs=None, **kwargs):
            shown = {k: f"{logs[k]:.4g}" for k in ("loss", "reward") if isinstance((logs or {}).get(k), float)}
            if state.is_world_process_zero and self.training_bar is not None and shown:
                self.training_bar.set_postfix(shown, refresh=False)

    if trainer.pop_callback(ProgressCallback) is not None:
        trainer.add_callback(_Bar())


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


def _check_same_config(cfg, run_dir: Path) -> None:
    """A run directory keeps its config once it has trained a step; one that never did (it failed while being set
    up, e.g. on a dataset that cannot be built) takes the corrected config, as it holds nothing to lose."""
    config_path = run_dir / "config.json"
    if config_path.is_file() and read_json(config_path) != cfg.to_dict():
        if _trained_nothing(run_dir):
            log.warning("%s never trained a step: its config is replaced by the new one", run_dir)
            return
        raise ValueError(f"{run_dir} holds a run with a different config; delete it or choose another name")


def _trained_nothing(run_dir: Path) -> bool:
    logged = any("loss" in r for r in read_jsonl(run_dir / "metrics.jsonl"))
    return not logged and latest_intact(run_dir / "checkpoint") is None and not is_finished(run_dir)


def _prepare_run_dir(cfg, run_dir: Path) -> Path | None:
    """Write config.json; return the checkpoint to resume from, after cutting the rows logged after it."""
    run_dir.mkdir(parents=True, exist_ok=True)
    write_json(run_dir / "config.json", cfg.to_dict())
    ckpt = latest_intact(run_dir / "checkpoint")
    step = checkpoint_step(ckpt) if ckpt else 0
    truncate_after(run_dir / "metrics.jsonl", lambda r: r["step"] <= step)
    truncate_after(run_dir / "groups.jsonl", lambda r: r["step"] < step)  # stats of step s are logged at s - 1
    score = run_dir / "best" / "score.json"
    if ckpt is None or (score.is_file() and read_json(score)["step"] > step):  # best/ of an abandoned trajectory
        shutil.rmtree(run_dir / "best", ignore_errors=True)
    return ckpt


def run(cfg, root: Path | str, cache: Path | str | None = None, recipe=CPU_RECIPE, report_to="none") -> Path:
    """Train one run into ``root / cfg.name`` (skipped when finished; resumed when interrupted) with ``recipe`` (the
    CPU scales' by default). Only one process trains a run directory at a time (:func:`one_writer`); a second one
    raises RuntimeError naming the first. ``report_to``: loggers that get the metrics too (:func:`check_report_to`)."""
    recipe.check(cfg)
    cfg.validate()
    report_to = check_report_to(report_to)
    run_dir = Path(root) / cfg.name
    if run_dir.resolve().parent != Path(root).resolve():
        raise ValueError(f"run name {cfg.name!r} leaves the root {root}")
    if not is_main_process():
        return _run(cfg, run_dir, cache, root, recipe, report_to)
    with one_writer(run_dir):
        return _run(cfg, run_dir, cache, root, recipe, report_to)


def _run(cfg, run_dir: Path, cache: Path | str | None, root: Path | str, recipe, report_to: list[str]) -> Path:
    _check_same_config(cfg, run_dir)
    if is_finished(run_dir):
        log.info("run %s is finished; not redone", run_dir)
        return run_dir
    run_dir.mkdir(parents=True, exist_ok=True)
    with _log_to(run_dir / f"train{'' if is_main_process() else '.rank' + os.environ['RANK']}.log"):
        # inside the log: a skipped corrupt checkpoint is reported in train.log, not only on the screen
        ckpt = _prepare_run_dir(cfg, run_dir) if is_main_process() else latest_intact(run_dir / "checkpoint")
        previous = read_json(run_dir / "manifest.json") if (run_dir / "manifest.json").is_file() else {}
        manifest = {"config": cfg.to_dict(), "git": git_state(), "versions": versions(), "device": device_name(),
                    "command": sys.argv, "world_size": int(os.environ.get("WORLD_SIZE", "1")),
                    "started": previous.get("started", utc_now()), "status": "running",
                    "wall_time_s": previous.get("wall_time_s", 0.0),
                    "resumed_from": previous.get("resumed_from", []) + ([ckpt.name] if ckpt else [])}  # fmt: skip
        if is_main_process():
            write_json(run_dir / "manifest.json", manifest)
        log.info("run %s: %s%s", cfg.name, cfg, f" (resuming from {ckpt})" if ckpt else "")
        try:
            policy = recipe.policy(cfg, Path(cache) if cache else Path(root) / "_warmstart")
            seed_everything(cfg.seed)
            trainer = build_trainer(recipe.parts(cfg, policy, run_dir), policy, run_dir, report_to)
            start = time.perf_counter()
            trainer.train(resume_from_checkpoint=str(ckpt) if ckpt else None)
        except BaseException as err:  # the manifest says why the run stopped (a rerun resumes or starts it again)
            if is_main_process():
                write_json(run_dir / "manifest.json", manifest | {"status": "failed", "error": repr(err)[:2000]})
            raise
        if is_main_process():
            _finish(run_dir, manifest, trainer.state.global_step, time.perf_counter() - start)
    return run_dir


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
