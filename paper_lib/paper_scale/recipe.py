r"""The paper scale's recipe: a :class:`~paper_lib.paper_scale.presets.PaperPreset` → the trainer that reproduces it.

:func:`paper_lib.training.runs.run` owns the run directory (config, manifest, metrics, resume, best/) at every
scale; :data:`PAPER_RECIPE` gives it the pieces that differ from the CPU scales:

- the policy is the paper's hub model (:data:`.presets.PAPER_MODELS`), no warm start, LoRA r64/α128 on
  all linear layers unless ``lora=False`` (docs/paper.md §4.2, §7); Llama's pad token is ``<|end_of_text|>`` as in the
  authors' ``train.py`` (generation ends on ``<|eot_id|>``, so EOS stays in the loss);
- the data are OpenRS with the authors' system prompt and a seeded 125-question validation split, rewarded by
  math-verify (:mod:`paper_lib.paper_scale.data`), or the toy tree (GPT-2 small may only emit ``L`` and ``R``);
- rollouts end at the first closed ``\boxed{…}`` (:class:`.trainer.BoxedLambdaGRPOTrainer`); validation is greedy
  with the same stop, every ``eval_every`` steps, keeping the best checkpoint (an adapter folder under LoRA).

``python -m paper_lib.paper_scale --preset downstream/qwen-1.5b_b0_lambda_grpo`` trains one preset; under
``accelerate launch`` the gradient accumulation is set so that one optimizer step still sees ``prompts × G``
completions (docs/paper.md §4.2).
"""

from __future__ import annotations

import argparse
import functools
import os
from pathlib import Path

from paper_lib.paper_scale.presets import (
    PAPER_MODELS,
    SWITCHES,
    PaperPreset,
    chat_template_kwargs,
    grpo_config_kwargs,
    mirror_files,
    paper_preset,
    parse_switch,
    peft_config,
)

__all__ = [
    "policy_id",
    "load_tokenizer",
    "PAPER_RECIPE",
    "PaperRecipe",
    "run",
    "validation_rows",
    "validation_summary",
    "evaluate_run",
    "mirror_files",
    "source_revisions",
    "parse_switch",
    "main",
]

LLAMA_PAD = "<|end_of_text|>"  # docs/paper.md §7: the authors set Llama-3.2's pad to id 128001
TORCH_DTYPES = {"float32": "float32", "bf16": "bfloat16"}  # PaperPreset.precision -> torch dtype name


def policy_id(preset: PaperPreset) -> str:
    """The hub id the preset starts from, or its folder in the preset's local mirror."""
    hub_id = PAPER_MODELS[preset.model]
    if preset.mirror is None:
        return hub_id
    folder = Path(preset.mirror) / hub_id
    if not (folder / "config.json").is_file():
        raise FileNotFoundError(f"mirror {preset.mirror} lacks the model {hub_id} (no {folder}/config.json)")
    return str(folder)


def _in_hub_cache(hub_id: str) -> bool:
    from huggingface_hub import try_to_load_from_cache

    return isinstance(try_to_load_from_cache(hub_id, "config.json"), str)


def _mirror_file(preset: PaperPreset, name: str) -> Path | None:
    if preset.mirror is None:
        return None
    path = Path(preset.mirror) / name
    if not path.is_file():
        raise FileNotFoundError(f"mirror {preset.mirror} lacks {name}")
    return path


def load_tokenizer(preset: PaperPreset, policy: str):
    """The policy's tokenizer with the authors' pad token: Llama's ``<|end_of_text|>``, else EOS when unset."""
    from transformers import AutoTokenizer

    tokenizer = AutoTokenizer.from_pretrained(policy, padding_side="left")
    if preset.model == "llama-1b":
        tokenizer.pad_token = LLAMA_PAD
    elif tokenizer.pad_token is None:
        tokenizer.pad_token = tokenizer.eos_token
    return tokenizer


def _world_size() -> int:
    return int(os.environ.get("WORLD_SIZE", "1"))


def _data(preset: PaperPreset, policy: str, run_dir: Path):
    """``(train, validation, reward functions)`` for the preset's task."""
    from paper_lib.paper_scale import data as paper_data
    from paper_lib.training.toy_start import toy_task

    if preset.task == "toy_tree":
        task = toy_task(preset, policy, run_dir)
        return task.dataset(preset.max_steps * preset.prompts_per_step), None, task.reward_funcs()
    train, val = paper_data.load_openrs(preset.val_size, preset.data_seed, _mirror_file(preset, "openrs.jsonl"))
    return paper_data.to_trl_dataset(train), val, [paper_data.math_accuracy_reward]


def _args(preset: PaperPreset, run_dir: Path, tokenizer):
    from paper_lib.trainer import LambdaGRPOConfig
    from paper_lib.training.recipe import cuda
    from paper_lib.training.toy_start import toy_policy_kwargs

    kwargs = grpo_config_kwargs(preset, str(run_dir / "checkpoint"), num_processes=_world_size())
    # use_cpu on a machine without CUDA (a dry run): otherwise HF does not treat an accelerate launch as distributed
    kwargs |= {"save_total_limit": 2, "use_cpu": not cuda()}
    if preset.task == "toy_tree":
        kwargs |= toy_policy_kwargs(preset.toy_mask, tokenizer, use_vllm=preset.use_vllm)
    return LambdaGRPOConfig(**kwargs)


def validation_rows(model, dataset, tokenizer, preset: PaperPreset) -> list[dict]:
    """Each validation question's greedy answer and score, with the boxed stop (the authors' ``validate``)."""
    from paper_lib.paper_scale.benchmarks import greedy_rows

    return greedy_rows(model, tokenizer, dataset, "val", max_new_tokens=preset.max_completion_length,
                       boxed_stop=preset.boxed_stop, chat_template_kwargs=chat_template_kwargs(preset))  # fmt: skip


def validation_summary(rows: list[dict]) -> dict:
    """Greedy accuracy ± SEM over the scorable validation questions, and how many were unscorable."""
    from paper_lib.paper_scale.benchmarks import summarize

    summary = summarize(rows)
    return {f"val/{k}": summary[k] for k in ("accuracy", "sem", "n_unscorable")}


class PaperRecipe:
    """The paper scale's recipe for :func:`paper_lib.training.runs.run`: a preset → its policy and trainer parts."""

    def check(self, cfg) -> None:
        """Before anything is written: a preset, whose model is in its mirror, or in the hub cache, or on a hub
        that answers (a run started offline would otherwise leave a run directory that failed on its download)."""
        from paper_lib.paper_scale.preflight import check_hub

        if not isinstance(cfg, PaperPreset):
            raise TypeError(f"the paper recipe trains a PaperPreset, got {type(cfg).__name__}")
        hub_id = policy_id(cfg)  # in a mirror: raises when the mirror lacks the model
        if cfg.mirror is None and not _in_hub_cache(hub_id) and (problem := check_hub()):
            raise RuntimeError(f"{hub_id} is not in the local hub cache, and {problem}; or pass --set mirror=DIR")

    def policy(self, preset: PaperPreset, cache: Path) -> str:
        """The hub model as it is (no warm start, docs/paper.md §4.1); ``cache`` is not used."""
        return policy_id(preset)

    def parts(self, preset: PaperPreset, policy: str, run_dir: Path):
        from paper_lib.paper_scale.trainer import BoxedLambdaGRPOTrainer, PaperLambdaGRPOTrainer
        from paper_lib.training.evaluate import Validation
        from paper_lib.training.recipe import TrainerParts, is_main_process

        tokenizer = load_tokenizer(preset, policy)
        if is_main_process():
            _write_sources(run_dir / "sources.json", preset, ["openrs"] if preset.task != "toy_tree" else [])
        train, val, rewards = _data(preset, policy, run_dir)
        validate = None
        if val is not None:
            rows = functools.partial(validation_rows, tokenizer=tokenizer, preset=preset)
            validate = Validation(val, rows, validation_summary)
        return TrainerParts(tokenizer=tokenizer, train_dataset=train, reward_funcs=rewards,
                            args=_args(preset, run_dir, tokenizer),
                            trainer_class=BoxedLambdaGRPOTrainer if preset.boxed_stop else PaperLambdaGRPOTrainer,
                            completions_every=preset.save_every, validate=validate, eval_every=preset.eval_every,
                            target_metric=preset.task == "toy_tree", peft_config=peft_config(preset))  # fmt: skip


PAPER_RECIPE = PaperRecipe()


def run(preset: PaperPreset, root: Path | str, report_to="none") -> Path:
    """Train one preset into ``root / preset.name`` (:func:`paper_lib.training.runs.run` with :data:`PAPER_RECIPE`)."""
    from paper_lib.training import runs

    return runs.run(preset, root, recipe=PAPER_RECIPE, report_to=report_to)


# -- provenance of the hub's model and data -------------------------------------------------------------------------
def source_revisions(preset: PaperPreset, data: list[str]) -> dict:
    """The model and the data sets (``"openrs"``, benchmark names) a run or evaluation reads, pinned: the hub commit of
    each (``revision``; None with the reason when the hub cannot say, e.g. offline), or with a mirror the sha256 of
    the files read from it."""
    from paper_lib.paper_scale.data import BENCHMARKS, OPENRS
    from paper_lib.rundir import sha256_file

    sources = {"openrs": OPENRS} | BENCHMARKS
    if preset.mirror is not None:
        files = {"model": Path(policy_id(preset)) / "config.json"} | {
            k: _mirror_file(preset, f"{k}.jsonl") for k in data
        }
        return {"mirror": preset.mirror} | {k: {"sha256": sha256_file(f)} for k, f in files.items()}
    from huggingface_hub import HfApi

    api = HfApi()
    repos = {"model": (PAPER_MODELS[preset.model], api.model_info)}
    repos |= {k: (sources[k].hub_id, api.dataset_info) for k in data}
    out = {}
    for key, (repo, info) in repos.items():
        try:
            out[key] = {"repo": repo, "revision": info(repo).sha}
        except Exception as err:  # noqa: BLE001 - provenance is recorded as unknown, it never stops a run
            out[key] = {"repo": repo, "revision": None, "why": repr(err)[:300]}
    return out


def _write_sources(path: Path, preset: PaperPreset, data: list[str]) -> None:
    from paper_lib.rundir import write_json

    path.parent.mkdir(parents=True, exist_ok=True)
    write_json(path, source_revisions(preset, data))


# -- Table 2 -------------------------------------------------------------------------------------------------------
def _evaluate(preset: PaperPreset, model: str, out_dir: Path) -> None:
    from paper_lib.paper_scale.benchmarks import evaluate_benchmarks
    from paper_lib.paper_scale.data import BENCHMARK_NAMES, load_benchmarks

    if (out_dir / "summary.json").is_file():
        return
    tokenizer = load_tokenizer(preset, policy_id(preset))  # RL does not change the tokenizer
    if preset.mirror is not None:
        for name in BENCHMARK_NAMES:
            _mirror_file(preset, f"{name}.jsonl")
    _write_sources(out_dir / "sources.json", preset, list(BENCHMARK_NAMES))
    evaluate_benchmarks(model, tokenizer, load_benchmarks(data_dir=preset.mirror), out_dir,
                        max_new_tokens=preset.max_completion_length, boxed_stop=preset.boxed_stop,
                        chat_template_kwargs=chat_template_kwargs(preset),
                        dtype=TORCH_DTYPES[preset.precision])  # fmt: skip


def evaluate_run(preset: PaperPreset, run_dir: Path) -> None:
    """The five benchmarks for the run's best checkpoint (its last one if it never validated) into
    ``run_dir/benchmarks/``, and once per model for the base model into ``<experiment>/base_<model>/benchmarks/``."""
    from paper_lib.training.checkpoints import latest_intact

    _evaluate(preset, policy_id(preset), run_dir.parent / f"base_{preset.model}" / "benchmarks")
    best = run_dir / "best"
    model_dir = best if best.is_dir() else latest_intact(run_dir / "checkpoint")
    if model_dir is None:
        raise FileNotFoundError(f"{run_dir} has neither best/ nor an intact checkpoint to evaluate")
    _evaluate(preset, str(model_dir), run_dir / "benchmarks")


# -- command line ------------------------------------------------------------------------------------------------
def main(argv: list[str] | None = None) -> int:
    from paper_lib.paper_scale.presets import PAPER_EXPERIMENTS, paper_presets

    parser = argparse.ArgumentParser(description="Train one paper-scale run (docs/paper.md §4) into its run folder.")
    parser.add_argument("--preset", help="<experiment>/<name>, e.g. downstream/qwen-1.5b_b0_lambda_grpo")
    parser.add_argument("--list", action="store_true", help="print every preset key and exit")
    parser.add_argument(
        "--set",
        dest="switches",
        action="append",
        type=parse_switch,
        default=[],
        metavar="FIELD=VALUE",
        help=f"override a preset field: {', '.join(sorted(SWITCHES))}",
    )
    parser.add_argument("--root", default="results/paper/runs", help="runs folder: <root>/<experiment>/<name>")
    parser.add_argument("--report-to", default="tensorboard", help="loggers that also get every metric: tensorboard "
                        "(events in the run's tensorboard/), wandb, both comma-separated, or none")  # fmt: skip
    args = parser.parse_args(argv)
    if args.list:
        print("\n".join(f"{e}/{p.name}" for e in PAPER_EXPERIMENTS for p in paper_presets(e)))
        return 0
    if not args.preset:
        parser.error("--preset is required (or --list)")
    preset = paper_preset(args.preset, **dict(args.switches))
    print(run(preset, Path(args.root) / preset.experiment, report_to=args.report_to))
    return 0
