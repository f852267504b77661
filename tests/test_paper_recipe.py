"""The paper scale trains (issue 8): the boxed stop inside the trainer, a preset through the real run loop on
local stand-ins for the hub model and data, the held-out evaluation of its best checkpoint, the paper-scale
experiment lists and the command line. Offline, CPU, seconds."""

import dataclasses
import json

import pytest
from conftest import REPO
from datasets import Dataset
from paper_fixtures import EOS, build_mirror, byte_tokenizer, scripted_model

from paper_lib.experiments import plan as experiments
from paper_lib.experiments import runner
from paper_lib.paper_scale import boxed
from paper_lib.paper_scale import recipe as paper_runs
from paper_lib.paper_scale.data import BENCHMARK_NAMES
from paper_lib.paper_scale.presets import PaperPreset, paper_preset, paper_presets
from paper_lib.rundir import read_json
from paper_lib.training import runs

FIXTURES = REPO / "tests" / "fixtures" / "paper"


@pytest.fixture(scope="module")
def tok():
    return byte_tokenizer()


def _trainer(tok, tmp_path, boxed_stop: bool, seen: list, max_len: int = 24):
    from paper_lib.paper_scale.trainer import BoxedLambdaGRPOTrainer
    from paper_lib.trainer import LambdaGRPOConfig, LambdaGRPOTrainer

    prompts = [[{"role": "user", "content": f"What is {k}?"}] for k in range(2)]
    args = LambdaGRPOConfig(output_dir=str(tmp_path / "out"), num_generations=4,
                            per_device_train_batch_size=8, max_completion_length=max_len, max_steps=1,
                            learning_rate=1e-3, temperature=0.75, loss_type="dapo", report_to="none",
                            save_strategy="no", logging_steps=1, use_cpu=True, seed=0)  # fmt: skip

    def reward(completions, completion_ids, **kwargs):
        seen.extend(zip([c[0]["content"] for c in completions], completion_ids))
        return [float(len(c[0]["content"]) % 2) for c in completions]

    trainer_class = BoxedLambdaGRPOTrainer if boxed_stop is True else boxed_stop or LambdaGRPOTrainer
    return trainer_class(model=scripted_model(tok, strength=30.0), reward_funcs=reward, args=args,
                             train_dataset=Dataset.from_list([{"prompt": p} for p in prompts]),
                             processing_class=tok)  # fmt: skip


def test_trainer_stops_rollouts_at_the_first_box(tok, tmp_path, monkeypatch):
    """The scripted policy writes ``\\boxed{1}`` then ``z`` forever: with the stop every rollout is the box and EOS,
    forced inside HF generate (the logits processor is installed for the call and removed after it)."""
    installed = []
    original = boxed.boxed_logits_processor
    monkeypatch.setattr(boxed, "boxed_logits_processor", lambda t: installed.append(t) or original(t))
    seen = []
    trainer = _trainer(tok, tmp_path, boxed_stop=True, seen=seen)
    trainer.train()
    assert len(seen) == 8 and installed
    eos = tok.convert_tokens_to_ids(EOS)
    for text, ids in seen:
        assert text == "\\boxed{1}"
        assert ids[-1] == eos and tok.decode(ids[:-1]) == "\\boxed{1}"
    logged = [h for h in trainer.state.log_history if "completions/boxed_stop_frac" in h]
    assert logged and logged[0]["completions/boxed_stop_frac"] == 1.0
    assert "generate" not in vars(trainer.accelerator.unwrap_model(trainer.model_wrapped))


@pytest.mark.parametrize("paper", [True, False], ids=["paper-scale trainer", "TRL's own sampling"])
def test_the_paper_scale_samples_in_eval_mode_and_trains_in_train_mode(tok, tmp_path, paper):
    """As the authors' generate: LoRA dropout (or any dropout) is off while sampling, on again for the loss. TRL's own
    trainer samples in train mode, which the second case shows."""
    from paper_lib.paper_scale.trainer import PaperLambdaGRPOTrainer
    from paper_lib.trainer import LambdaGRPOTrainer

    trainer = _trainer(tok, tmp_path, boxed_stop=PaperLambdaGRPOTrainer if paper else LambdaGRPOTrainer, seen=[],
                       max_len=4)  # fmt: skip
    model = trainer.accelerator.unwrap_model(trainer.model_wrapped)
    modes, generate, forward = [], model.generate, model.forward
    model.generate = lambda *a, **k: modes.append(("generate", model.training)) or generate(*a, **k)
    model.forward = lambda *a, **k: modes.append(("forward", model.training)) or forward(*a, **k)
    trainer.train()
    assert ("generate", not paper) in modes and ("generate", paper) not in modes
    assert ("forward", True) in modes  # the loss's forward pass in train mode


def test_without_the_stop_rollouts_run_on(tok, tmp_path):
    seen = []
    _trainer(tok, tmp_path, boxed_stop=False, seen=seen, max_len=16).train()
    assert len(seen) == 8
    for text, ids in seen:
        assert text == "\\boxed{1}" + "z" * 7 and len(ids) == 16


def test_vllm_style_completions_are_cut_after_the_box(tok):
    """The engine-independent path (vLLM's ids and log-probs): cut after the box, EOS appended with log-prob 0."""
    ids = tok("\\boxed{2}zz", add_special_tokens=False)["input_ids"]
    out, logprobs, stopped = boxed.truncate_completions([ids], [[-0.5] * len(ids)], tok, max_tokens=64)
    assert stopped == 1 and tok.decode(out[0][:-1]) == "\\boxed{2}" and out[0][-1] == tok.eos_token_id
    assert logprobs[0] == [-0.5] * (len(out[0]) - 1) + [0.0]


# -- a preset through the real run loop, on a local mirror -------------------------------------------------------
@pytest.fixture(scope="module")
def mirror(tmp_path_factory):
    return build_mirror(tmp_path_factory.mktemp("mirror"))


def _tiny(key: str, mirror, **switches) -> PaperPreset:
    tiny = dict(lora=False, max_steps=2, eval_every=1, max_completion_length=16, val_size=4, prompts_per_step=2)
    return paper_preset(key, mirror=str(mirror), **(tiny | switches))


def test_a_downstream_preset_trains_validates_and_is_evaluated(mirror, tmp_path):
    from paper_lib.paper_scale import data as paper_data
    from paper_lib.paper_scale.data import score_completion

    preset = _tiny("downstream/qwen-1.5b_b0.04_lambda_grpo", mirror)
    run_dir = paper_runs.run(preset, tmp_path / "training")
    manifest = read_json(run_dir / "manifest.json")
    assert manifest["status"] == "finished" and manifest["steps"] == 2 and manifest["config"] == preset.to_dict()
    rows = runs.load_metrics(run_dir)
    train = rows.dropna(subset=["loss"])
    assert list(train.step) == [1, 2]
    assert (train["completions/boxed_stop_frac"] == 1.0).all()
    assert set(train["reward_invalid_frac"]) <= {0.0, 0.5, 1.0}  # an unparsable gold makes a whole group None
    assert set(train["process/batch_weight_mean"].round(6)) == {round(1 / 6, 6)}  # six identical rollouts per group
    # validation: the policy answers 4 to everything, so accuracy is the share of validation golds equal to 4
    _, val = paper_data.load_openrs(4, 0, mirror / "openrs.jsonl")
    expected = sum(score_completion("\\boxed{4}", g) for g in val["gold"]) / 4
    assert list(rows.dropna(subset=["val/accuracy"])["val/accuracy"]) == [expected, expected]
    assert read_json(run_dir / "best" / "score.json") == {"step": 1, "accuracy": expected}
    # Table 2: the best checkpoint and the base model on the five benchmarks
    paper_runs.evaluate_run(preset, run_dir)
    for folder in (run_dir / "benchmarks", run_dir.parent / "base_qwen-1.5b" / "benchmarks"):
        summary = json.loads((folder / "summary.json").read_text())
        assert set(summary) == {"aime24", "math500", "amc23", "minerva", "olympiadbench", "average"}
        items = [json.loads(x) for x in (folder / "math500.jsonl").read_text().splitlines()]
        assert [r["completion"] for r in items] == ["\\boxed{4}"] * len(items)


def test_a_finished_paper_run_is_not_redone_and_a_changed_one_is_refused(mirror, tmp_path):
    preset = _tiny("overlap/G6", mirror, eval_every=0)
    run_dir = paper_runs.run(preset, tmp_path)
    stamp = (run_dir / "manifest.json").stat().st_mtime_ns
    assert paper_runs.run(preset, tmp_path) == run_dir and (run_dir / "manifest.json").stat().st_mtime_ns == stamp
    with pytest.raises(ValueError, match="different config"):
        paper_runs.run(_tiny("overlap/G6", mirror, eval_every=0, seed=1), tmp_path)


def test_a_preset_whose_model_cannot_be_had_writes_nothing(mirror, tmp_path, monkeypatch):
    """Offline and not in the hub cache (or a mirror without the model): refused before a run directory exists."""
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    monkeypatch.setattr(paper_runs, "_in_hub_cache", lambda hub_id: False)
    with pytest.raises(RuntimeError, match="DeepSeek-R1-Distill-Qwen-1.5B is not in the local hub cache"):
        paper_runs.main(["--preset", "downstream/qwen-1.5b_b0_lambda_grpo", "--root", str(tmp_path / "runs")])
    empty = tmp_path / "empty_mirror"
    empty.mkdir()
    with pytest.raises(FileNotFoundError, match="lacks the model"):
        paper_runs.run(paper_preset("overlap/G6", mirror=str(empty)), tmp_path / "runs")
    assert not (tmp_path / "runs").exists()


def test_benchmarks_load_in_the_preset_precision(mirror, tmp_path, monkeypatch):
    from paper_lib.paper_scale import benchmarks as paper_eval

    seen = []
    monkeypatch.setattr(paper_eval, "evaluate_benchmarks", lambda *a, dtype, **kw: seen.append(dtype))
    for precision in ("float32", "bf16"):
        preset = _tiny("overlap/G6", mirror, precision=precision, lora=precision == "bf16")  # bf16 needs LoRA
        paper_runs._evaluate(preset, "model", tmp_path / precision)
    assert seen == ["float32", "bfloat16"]


def test_the_mirror_names_what_it_lacks(tmp_path):
    preset = _tiny("downstream/llama-1b_b0_grpo", tmp_path)
    with pytest.raises(FileNotFoundError, match="Llama-3.2-1B-Instruct"):
        paper_runs.policy_id(preset)


# -- experiments and the command line ------------------------------------------------------------------------------
def test_paper_scale_experiments_are_the_paper_presets():
    runs_of = {name: [c for _, c in experiments.experiment_runs(name, "paper")] for name in experiments.EXPERIMENTS}
    assert runs_of["training"] == paper_presets("downstream")
    assert runs_of["process_sets"] == paper_presets("overlap")
    assert runs_of["toy"] == paper_presets("toy")
    assert {c.learning_rate for c in runs_of["toy_high_lr"]} == {5e-5} and len(runs_of["toy_high_lr"]) == 60
    assert runs_of["norm_ablation"] == []
    vllm = experiments.experiment_runs("training", "paper", use_vllm=True)
    assert all(c.use_vllm for _, c in vllm)
    with pytest.raises(ValueError, match="paper scale only"):
        experiments.experiment_runs("training", "small", use_vllm=True)


def test_command_lines(capsys):
    assert paper_runs.main(["--list"]) == 0
    keys = capsys.readouterr().out.split()
    assert len(keys) == 2 + 8 + 60 and "downstream/llama-1b_b0.04_lambda_grpo" in keys
    assert paper_runs.parse_switch("lora=false") == ("lora", False)
    assert paper_runs.parse_switch("max_steps=3") == ("max_steps", 3)
    with pytest.raises(Exception, match="FIELD one of"):
        paper_runs.parse_switch("learning_rate=1")
    assert runner.main(["list", "--scale", "paper", "--experiments", "training", "--set", "seed=3"]) == 0
    assert len(capsys.readouterr().out.split()) == 8


TINY_SETS = ["lora=false", "max_steps=1", "val_size=4", "eval_every=1", "max_completion_length=16"]


def test_the_paper_scale_starts_a_process_per_run_and_per_evaluation(mirror, tmp_path, monkeypatch):
    """Each run through the launcher (accelerate), each evaluation through plain Python, only for runs that have
    one; a failed run is reported and not evaluated."""
    import subprocess
    import sys

    commands = []

    def fake_run(cmd, env=None):
        commands.append(cmd)
        return subprocess.CompletedProcess(cmd, 1 if "training/qwen-1.5b_b0_grpo" in cmd else 0)

    monkeypatch.setattr(runner.subprocess, "run", fake_run)
    sets = [a for s in [f"mirror={mirror}", *TINY_SETS] for a in ("--set", s)]
    code = runner.main(["run", "--scale", "paper", "--experiments", "process_sets", "training", "--root",
                        str(tmp_path), "--launch", "accelerate launch --num_processes 2", *sets])  # fmt: skip
    assert code == 1  # the failed run
    trains = [c for c in commands if "worker" in c]
    evals = [c for c in commands if "evaluate" in c]
    assert len(trains) == 2 + 8 and len(evals) == 7 and len(commands) == 17
    assert all(
        c[:6] == ["accelerate", "launch", "--num_processes", "2", "-m", "paper_lib.experiments"] for c in trains
    )
    assert all(c[:3] == [sys.executable, "-m", "paper_lib.experiments"] for c in evals)
    units = [c[c.index("--unit") + 1] for c in evals]
    assert all(u.startswith("training/") for u in units) and "training/qwen-1.5b_b0_grpo" not in units
    assert all(c[-len(sets) - 2 : -2] == sets and c[c.index("--root") + 1] == str(tmp_path) for c in commands)
    assert all(c[-2:] == ["--report-to", "none"] for c in commands)


def test_a_unit_trains_then_evaluates_in_separate_commands(mirror, tmp_path):
    sets = [a for s in [f"mirror={mirror}", *TINY_SETS] for a in ("--set", s)]
    unit = ["--unit", "training/llama-1b_b0_lambda_grpo", "--scale", "paper", "--root", str(tmp_path), *sets]
    assert runner.main(["worker", *unit]) == 0
    run_dir = tmp_path / "runs" / "training" / "llama-1b_b0_lambda_grpo"
    assert read_json(run_dir / "manifest.json")["status"] == "finished" and not (run_dir / "benchmarks").exists()
    assert runner.main(["evaluate", *unit]) == 0
    assert (run_dir / "benchmarks" / "summary.json").is_file()
    assert (tmp_path / "runs" / "training" / "base_llama-1b" / "benchmarks" / "summary.json").is_file()
    sources = read_json(run_dir / "sources.json")  # what it read, pinned: the mirror's files by hash
    assert set(sources) == {"mirror", "model", "openrs"} and len(sources["openrs"]["sha256"]) == 64
    assert set(read_json(run_dir / "benchmarks" / "sources.json")) == {"mirror", "model", *BENCHMARK_NAMES}
    with pytest.raises(ValueError, match="no run training/nope at scale paper"):
        runner.main(["evaluate", *unit[:1], "training/nope", *unit[2:]])


def test_hub_revisions_are_recorded_or_said_to_be_unknown(monkeypatch):
    from types import SimpleNamespace

    import huggingface_hub

    def dataset_info(self, repo):
        if repo == "knoveleng/AMC-23":
            raise OSError("offline")
        return SimpleNamespace(sha=f"d-{repo}")

    monkeypatch.setattr(huggingface_hub.HfApi, "model_info", lambda self, repo: SimpleNamespace(sha=f"m-{repo}"))
    monkeypatch.setattr(huggingface_hub.HfApi, "dataset_info", dataset_info)
    got = paper_runs.source_revisions(paper_preset("downstream/llama-1b_b0_grpo"), ["openrs", "amc23"])
    assert got["model"] == {
        "repo": "meta-llama/Llama-3.2-1B-Instruct",
        "revision": "m-meta-llama/Llama-3.2-1B-Instruct",
    }
    assert got["openrs"] == {"repo": "knoveleng/open-rs", "revision": "d-knoveleng/open-rs"}
    assert got["amc23"]["revision"] is None and "offline" in got["amc23"]["why"]


@pytest.mark.slow
def test_each_paper_run_really_has_a_process_of_its_own(mirror, tmp_path):
    import os
    import subprocess
    import sys

    sets = [a for s in [f"mirror={mirror}", *TINY_SETS] for a in ("--set", s)]
    cmd = [sys.executable, "-m", "paper_lib.experiments", "run", "--scale", "paper", "--experiments", "process_sets",
           "--root", str(tmp_path), *sets]  # fmt: skip
    out = subprocess.run(cmd, cwd=REPO, capture_output=True, text=True, timeout=600, env={**os.environ,
                         "HF_HUB_OFFLINE": "1"})  # fmt: skip
    assert out.returncode == 0, out.stderr[-3000:]
    writers = {(d / ".writer.lock").read_text().split()[1] for d in (tmp_path / "runs" / "process_sets").iterdir()}
    assert len(writers) == 2 and str(os.getpid()) not in writers  # two processes, neither of them this one


def test_a_toy_preset_samples_only_paths_of_the_tree(mirror, tmp_path):
    """GPT-2 small's stand-in (a tiny GPT-2 on a character tokenizer) in the mirror: every rollout is four of L/R,
    and the trained policy is the sampled one (entropy <= ln 2); the sampling-only ablation is not."""
    import math

    preset = paper_preset("toy/n1_r1_lambda_grpo_s0", max_steps=3, mirror=str(mirror))
    run_dir = paper_runs.run(preset, tmp_path / "toy")
    rows = runs.load_metrics(run_dir).dropna(subset=["loss"])
    assert list(rows.step) == [1, 2, 3] and rows["target_frequency"].between(0, 1).all()
    assert (rows["completions/mean_length"] == 4).all() and rows.entropy.max() <= math.log(2)
    drawn = read_json(run_dir / "toy_target.json")  # the target rule ran on the starting policy's 16 paths
    assert len(drawn["p0"]) == 16 and math.isclose(sum(drawn["p0"].values()), 1, rel_tol=1e-5)
    assert drawn["p0_target"] == drawn["p0"][drawn["target"]]
    assert not (run_dir / "best").exists()
    ablation = paper_runs.run(dataclasses.replace(preset, toy_mask="sampling_only"), tmp_path / "toy_ablation")
    assert runs.load_metrics(ablation).entropy.max() > math.log(2)


def test_preflight_with_a_mirror_needs_no_hub_but_every_file(tmp_path):
    import shutil

    from paper_lib.paper_scale import preflight
    from paper_lib.paper_scale.presets import PAPER_MODELS

    fatal, _ = preflight.problems("paper", switches={"mirror": str(tmp_path), "lora": False})
    missing = next(p for p in fatal if p.startswith("mirror"))
    assert "openrs.jsonl" in missing and "meta-llama/Llama-3.2-1B-Instruct/config.json" in missing
    for f in FIXTURES.glob("*.jsonl"):
        shutil.copy(f, tmp_path / f.name)
    for hub_id in PAPER_MODELS.values():
        (tmp_path / hub_id).mkdir(parents=True)
        (tmp_path / hub_id / "config.json").write_text("{}")
    fatal, _ = preflight.problems("paper", switches={"mirror": str(tmp_path), "lora": False})
    assert not any(p.startswith(("mirror", "hub", "peft")) for p in fatal)  # only CUDA can be missing here
    fatal, _ = preflight.problems("paper", switches={"mirror": str(tmp_path), "use_vllm": True})
    assert any("peft" in p for p in fatal) == (preflight.check_peft() is not None)  # LoRA (the default) needs peft
    assert any("vLLM" in p for p in fatal) == (preflight.check_vllm() is not None)  # use_vllm makes vLLM fatal


@pytest.mark.gpu
def test_a_paper_preset_trains_in_bf16_on_cuda(mirror, tmp_path):
    """The gpu tier: the same short downstream preset on CUDA in bf16 (the run's manifest records the device)."""
    import torch

    if not torch.cuda.is_available():
        pytest.skip("no CUDA")
    pytest.importorskip("peft", reason="bf16 trains LoRA adapters (full fine-tuning in bf16 is refused)")
    layered = build_mirror(tmp_path / "mirror", layers=True)  # LoRA needs linear layers to adapt
    preset = _tiny("downstream/qwen-1.5b_b0.04_lambda_grpo", layered, precision="bf16", lora=True)
    run_dir = paper_runs.run(preset, tmp_path / "training")
    manifest = read_json(run_dir / "manifest.json")
    assert manifest["status"] == "finished" and "cuda" in json.dumps(manifest["device"]).lower()
    rows = runs.load_metrics(run_dir).dropna(subset=["loss"])
    assert list(rows.step) == [1, 2] and rows["loss"].notna().all()
