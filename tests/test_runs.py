"""Run directories: determinism, skip-when-finished, bad configs, checkpoint integrity; kill/resume (slow)."""

import json
import logging
import os
import signal
import subprocess
import sys
import time

import pytest
from conftest import REPO
from transformers import TrainerCallback

from paper_lib.rundir import read_jsonl
from paper_lib.training.callbacks import mean_step_loss
from paper_lib.training.checkpoints import SEAL, latest_intact, seal
from paper_lib.training.config import RunConfig
from paper_lib.training.provenance import CPU_KERNEL_ENV
from paper_lib.training.recipe import _check_columns
from paper_lib.training.runs import is_finished, run

TIMING = ("step_time", "train_runtime", "train_samples_per_second", "train_steps_per_second")  # wall-clock
TINY = dict(max_steps=6, warm_start_steps=20, train_size=200, val_size=16, eval_every=3, save_every=3, group_size=4,
            prompts_per_step=2, max_completion_length=12)  # fmt: skip


def _comparable(run_dir):
    return [{k: v for k, v in row.items() if k not in TIMING} for row in read_jsonl(run_dir / "metrics.jsonl")]


def test_same_config_and_seed_give_identical_metrics(tmp_path):
    cfg = RunConfig(name="det", **TINY)
    a, b = run(cfg, tmp_path / "a", cache=tmp_path / "cache"), run(cfg, tmp_path / "b", cache=tmp_path / "cache")
    rows = _comparable(a)
    assert rows == _comparable(b) and len(rows) > 6
    assert any("val/accuracy" in r for r in rows) and any(r.get("process/n_steps") for r in rows)
    manifest = json.loads((a / "manifest.json").read_text())
    assert manifest["status"] == "finished" and manifest["steps"] == 6 and manifest["git"]["commit"]
    assert manifest["world_size"] == 1 and isinstance(manifest["command"], list)  # how it was launched
    assert (a / "groups.parquet").is_file() and (a / "best" / "score.json").is_file()
    other = run(RunConfig(name="det", **(TINY | {"seed": 1})), tmp_path / "c", cache=tmp_path / "cache")
    assert _comparable(other) != rows  # the seed matters


def test_best_is_a_copy_of_the_sealed_checkpoint(tmp_path):
    """best/ holds the model files of the checkpoint at the best validation step (so under ZeRO-3 it is the gathered
    model the checkpoint holds, not rank 0's partition), without the optimizer state."""
    run_dir = run(RunConfig(name="b", **(TINY | {"max_steps": 3, "eval_every": 3})), tmp_path, cache=tmp_path / "c")
    best, ckpt = run_dir / "best", run_dir / "checkpoint" / "checkpoint-3"
    assert json.loads((best / "score.json").read_text())["step"] == 3
    assert (best / "model.safetensors").read_bytes() == (ckpt / "model.safetensors").read_bytes()
    assert not {"optimizer.pt", "scheduler.pt", SEAL} & {p.name for p in best.iterdir()}


def test_a_resume_from_an_older_checkpoint_drops_the_abandoned_best(tmp_path):
    from paper_lib.training.runs import _prepare_run_dir

    for step in (3, 6):
        (tmp_path / "checkpoint" / f"checkpoint-{step}").mkdir(parents=True)
        (tmp_path / "checkpoint" / f"checkpoint-{step}" / "model.safetensors").write_bytes(os.urandom(8))
    seal(tmp_path / "checkpoint" / "checkpoint-3")  # checkpoint-6 was never sealed: the run resumes from 3
    (tmp_path / "best").mkdir()
    (tmp_path / "best" / "score.json").write_text(json.dumps({"step": 6, "accuracy": 0.5}))
    assert _prepare_run_dir(RunConfig(name="x"), tmp_path).name == "checkpoint-3"
    assert not (tmp_path / "best").exists()


class _Interrupt(TrainerCallback):
    def on_step_end(self, args, state, control, **kwargs):
        if state.global_step == 4:  # after checkpoint-3 was saved
            raise KeyboardInterrupt


def test_train_loss_after_a_resume_averages_every_step(tmp_path, monkeypatch):
    """HF's train_loss divides the losses of the steps since the resume by all the steps; the run's is their mean."""
    from paper_lib.training import runs

    cfg = RunConfig(name="r", **(TINY | {"eval_every": 0}))
    whole = run(cfg, tmp_path / "whole", cache=tmp_path / "cache")
    build = runs.build_trainer

    def interrupted(*args):
        trainer = build(*args)
        trainer.add_callback(_Interrupt())
        return trainer

    monkeypatch.setattr(runs, "build_trainer", interrupted)
    with pytest.raises(KeyboardInterrupt):
        run(cfg, tmp_path / "resumed", cache=tmp_path / "cache")
    monkeypatch.setattr(runs, "build_trainer", build)
    resumed = run(cfg, tmp_path / "resumed", cache=tmp_path / "cache")
    assert json.loads((resumed / "manifest.json").read_text())["resumed_from"] == ["checkpoint-3"]
    summary = [r["train_loss"] for r in read_jsonl(resumed / "metrics.jsonl") if "train_loss" in r]
    losses = [r["loss"] for r in read_jsonl(whole / "metrics.jsonl") if "loss" in r]
    assert len(summary) == 1 and len(losses) == 6
    assert summary == [r["train_loss"] for r in read_jsonl(whole / "metrics.jsonl") if "train_loss" in r]
    assert summary[0] == pytest.approx(sum(losses) / 6, rel=1e-12)
    assert summary[0] != pytest.approx(sum(losses[3:]) / 6, rel=1e-6)  # what HF reports after the resume


def test_mean_step_loss_weights_rows_by_the_steps_they_average():
    rows = [{"step": 2, "loss": 1.0}, {"step": 3, "loss": 4.0}, {"step": 3, "val/accuracy": 0.5}]
    assert mean_step_loss(rows, 3) == pytest.approx((2 * 1.0 + 4.0) / 3)


def test_a_skipped_checkpoint_is_reported_in_train_log(tmp_path):
    cfg = RunConfig(name="r", **(TINY | {"max_steps": 3, "eval_every": 0}))
    bad = tmp_path / "r" / "checkpoint" / "checkpoint-2"
    bad.mkdir(parents=True)
    (bad / "model.safetensors").write_bytes(b"half-written")  # never sealed
    run(cfg, tmp_path, cache=tmp_path / "cache")
    assert "checkpoint-2" in (tmp_path / "r" / "train.log").read_text()


def test_a_finished_run_is_not_redone(tmp_path):
    cfg = RunConfig(name="once", **(TINY | {"max_steps": 2, "eval_every": 0}))
    run_dir = run(cfg, tmp_path, cache=tmp_path / "cache")
    stamp = (run_dir / "manifest.json").stat().st_mtime_ns
    assert is_finished(run_dir) and (run_dir / "metrics.jsonl.gz").is_file()
    assert not (run_dir / "metrics.jsonl").exists()  # stored compressed once finished
    run(cfg, tmp_path, cache=tmp_path / "cache")
    assert (run_dir / "manifest.json").stat().st_mtime_ns == stamp
    with pytest.raises(ValueError, match="different config"):
        run(RunConfig(name="once", **(TINY | {"max_steps": 3})), tmp_path)


@pytest.mark.parametrize(
    "kw, field",
    [
        (dict(group_size=1), "group_size"),
        (dict(batch_size=10, group_size=4), "batch_size"),
        (dict(task="chess"), "task"),
        (dict(model="gpt-9"), "model"),
        (dict(learning_rate=-1e-3), "learning_rate"),
        (dict(method="ppo"), "method"),
        (dict(batch_size=0), "batch_size"),  # the cases of issue 13: each passed validate() and failed later
        (dict(beta=float("inf")), "beta"),
        (dict(temperature=float("inf")), "temperature"),
        (dict(seed=-1), "seed"),
        (dict(train_size=0), "train_size"),
        (dict(warm_start_lr=float("nan")), "warm_start_lr"),
        (dict(max_steps="abc"), "max_steps"),
        (dict(val_size=0), "val_size"),
        (dict(eval_every=-1), "eval_every"),
        (dict(toy_n=4), "toy_n"),
    ],
)
def test_bad_configs_fail_before_any_work(tmp_path, kw, field):
    with pytest.raises(ValueError, match=f"RunConfig.{field}"):
        run(RunConfig(name="bad", **kw), tmp_path)
    assert not (tmp_path / "bad").exists()


def test_a_run_that_failed_while_being_set_up_takes_the_corrected_config(tmp_path):
    """A dataset that cannot be built fails after the run directory exists: the manifest says failed and why, and
    the corrected command is not refused as 'a different config' (the run trained nothing)."""
    with pytest.raises(ValueError, match="exceeds"):
        run(RunConfig(name="r", **(TINY | {"train_size": 10**6})), tmp_path, cache=tmp_path / "cache")
    manifest = json.loads((tmp_path / "r" / "manifest.json").read_text())
    assert manifest["status"] == "failed" and "exceeds" in manifest["error"]
    assert is_finished(run(RunConfig(name="r", **(TINY | {"max_steps": 2})), tmp_path, cache=tmp_path / "cache"))


@pytest.mark.parametrize("name", ["../escape", "/abs/dir", "", ".", "..", "a/b", " x", ".hidden"])
def test_run_names_stay_inside_the_root(tmp_path, name):
    root = tmp_path / "root"
    with pytest.raises(ValueError, match="RunConfig.name must"):
        run(RunConfig(name=name, **TINY), root)
    assert not tmp_path.joinpath("escape").exists() and not root.exists()  # nothing written anywhere
    from paper_lib.paper_scale.presets import paper_presets

    with pytest.raises(ValueError, match="PaperPreset.name must"):
        __import__("dataclasses").replace(paper_presets("toy")[0], name=name).validate()


def test_one_writer_per_run_directory(tmp_path):
    """A second process (here: a second lock on the same folder) refuses at once and names the holder; nothing of the
    run is written by it. The lock goes with its holder."""
    from paper_lib.training.runs import one_writer

    cfg = RunConfig(name="busy", **(TINY | {"max_steps": 2, "eval_every": 0}))
    with one_writer(tmp_path / "busy"):
        holder = rf"busy is being trained by pid {os.getpid()} on .*; one writer per run"
        with pytest.raises(RuntimeError, match=holder):
            run(cfg, tmp_path, cache=tmp_path / "cache")
        assert not (tmp_path / "busy" / "config.json").exists()
    assert is_finished(run(cfg, tmp_path, cache=tmp_path / "cache"))  # released: the run goes ahead


def test_a_run_with_missing_or_repeated_metrics_is_not_finished(tmp_path):
    from paper_lib.training.runs import check_coverage

    def log(rows):
        (tmp_path / "metrics.jsonl").write_text("".join(json.dumps(r) + "\n" for r in rows))

    log([{"step": s, "loss": 0.0} for s in (1, 2, 3)] + [{"step": 3, "val/accuracy": 0.5}])  # eval rows do not count
    check_coverage(tmp_path, 3)
    log([{"step": s, "loss": 0.0} for s in (2, 3)])  # metrics.jsonl deleted and recreated mid-run
    with pytest.raises(RuntimeError, match=r"does not cover steps 1..3 once: 2 training rows, missing \[1\]"):
        check_coverage(tmp_path, 3)
    log([{"step": s, "loss": 0.0} for s in (1, 2, 2, 3)])  # two writers
    with pytest.raises(RuntimeError, match=r"repeated \[2\]"):
        check_coverage(tmp_path, 3)


def test_missing_answer_column_is_named():
    from datasets import Dataset

    with pytest.raises(ValueError, match=r"lacks column\(s\) \['answer'\]"):
        _check_columns(RunConfig(name="x"), Dataset.from_list([{"prompt": "1+1="}]))


def test_corrupt_or_partial_checkpoints_are_skipped(tmp_path, caplog):
    for step in (2, 4, 6):
        ckpt = tmp_path / f"checkpoint-{step}"
        ckpt.mkdir()
        (ckpt / "model.safetensors").write_bytes(os.urandom(64))
        if step != 6:  # checkpoint-6 was killed mid-write: never sealed
            seal(ckpt)
    (tmp_path / "checkpoint-4" / "model.safetensors").write_bytes(b"truncated")  # corrupted after sealing
    with caplog.at_level(logging.WARNING):
        assert latest_intact(tmp_path) == tmp_path / "checkpoint-2"
    assert "checkpoint-6" in caplog.text and "checkpoint-4" in caplog.text
    assert json.loads((tmp_path / "checkpoint-2" / SEAL).read_text())["files"]


def _cli(root, name, **overrides):
    args = TINY | {"max_steps": 40, "save_every": 5, "eval_every": 10} | overrides
    flags = [f"--{k}={v}" for k, v in args.items()]
    cmd = [
        sys.executable,
        "-m",
        "paper_lib.training",
        f"--name={name}",
        f"--root={root}",
        f"--cache={root}/cache",
        *flags,
    ]
    return cmd


@pytest.mark.slow
def test_sigkill_then_resume_equals_an_uninterrupted_run(tmp_path):
    env = {**os.environ, "HF_HUB_OFFLINE": "1"}
    subprocess.run(_cli(tmp_path / "ref", "r"), check=True, env=env, cwd=REPO, capture_output=True, timeout=600)
    proc = subprocess.Popen(_cli(tmp_path / "kill", "r"), env=env, cwd=REPO, stdout=subprocess.DEVNULL,
                            stderr=subprocess.DEVNULL)  # fmt: skip
    target = tmp_path / "kill" / "r" / "checkpoint" / "checkpoint-15" / SEAL
    deadline = time.time() + 300
    while not target.exists() and proc.poll() is None and time.time() < deadline:
        time.sleep(0.01)
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    killed_dir = tmp_path / "kill" / "r"
    assert not is_finished(killed_dir), "the run ended before it could be killed; make it longer"
    subprocess.run(_cli(tmp_path / "kill", "r"), check=True, env=env, cwd=REPO, capture_output=True, timeout=600)
    manifest = json.loads((killed_dir / "manifest.json").read_text())
    assert manifest["status"] == "finished" and manifest["resumed_from"]
    assert _comparable(killed_dir) == _comparable(tmp_path / "ref" / "r")
    steps = [r["step"] for r in _comparable(killed_dir) if "loss" in r]
    assert steps == list(range(1, 41))  # no step lost or duplicated


@pytest.mark.parametrize(("n", "world"), [(1, 1), (7, 1), (125, 4), (65, 4), (3, 8), (16, 3)])
def test_validation_shards_cover_the_items_once_with_equal_lengths(n, world):
    from paper_lib.training.evaluate import shard_indices

    shards = [shard_indices(n, rank, world) for rank in range(world)]
    assert len({len(indices) for indices, _ in shards}) == 1  # the same generate calls on every rank (ZeRO-3)
    real = sorted(i for indices, k in shards for i in indices[:k])
    assert real == list(range(n))  # each item scored exactly once


def test_validation_on_one_process_scores_every_item():
    from datasets import Dataset

    from paper_lib.training.evaluate import Validation, reward_summary, validate

    data = Dataset.from_list([{"x": i} for i in range(5)])
    seen = []

    def rows(model, dataset):
        seen.append(list(dataset["x"]))
        return [{"reward": float(x % 2)} for x in dataset["x"]]

    assert validate(Validation(data, rows, reward_summary), model=None) == reward_summary(
        [{"reward": float(x % 2)} for x in range(5)])  # fmt: skip
    assert seen == [[0, 1, 2, 3, 4]]


def test_metrics_also_reach_tensorboard_in_the_run_directory(tmp_path):
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

    cfg = RunConfig(name="tb", **(TINY | {"max_steps": 2, "eval_every": 0}))
    run_dir = run(cfg, tmp_path, cache=tmp_path / "cache", report_to="tensorboard")
    events = EventAccumulator(str(run_dir / "tensorboard")).Reload()
    assert [e.step for e in events.Scalars("train/loss")] == [1, 2]
    assert not list((run_dir / "checkpoint").rglob("events.out.tfevents*"))  # not under checkpoint/ (not kept)


def test_unknown_or_missing_loggers_are_named_before_anything_is_written(tmp_path):
    import importlib.util

    from paper_lib.training.runs import check_report_to

    assert check_report_to("none") == [] and check_report_to("tensorboard") == ["tensorboard"]
    with pytest.raises(ValueError, match=r"unknown logger\(s\) \['tensorbord'\]"):
        run(RunConfig(name="x", **TINY), tmp_path, report_to="tensorbord")
    assert not (tmp_path / "x").exists()
    if importlib.util.find_spec("wandb") is None:
        with pytest.raises(ValueError, match="wandb is not installed"):
            check_report_to("tensorboard,wandb")


def _capability_after_pinning(env_extra: dict) -> str:
    code = ("from paper_lib.training.provenance import device_name, pin_cpu_kernels\n"
            "pin_cpu_kernels()\nprint(device_name())")  # fmt: skip
    env = {k: v for k, v in os.environ.items() if k not in CPU_KERNEL_ENV} | env_extra
    out = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True, cwd=REPO, check=True)
    return out.stdout.strip()


@pytest.mark.skipif(not os.uname().machine.startswith("x86"), reason="AVX2 is an x86 instruction set")
def test_cpu_runs_compute_with_avx2_kernels_unless_the_user_says_otherwise():
    """An AVX-512 machine and an AVX2 one round alike only if both use AVX2 kernels; the manifest says which ran."""
    assert "(AVX2)" in _capability_after_pinning({})
    assert "(DEFAULT)" in _capability_after_pinning({"ATEN_CPU_CAPABILITY": "default"})
