r"""Benchmark evaluation of Table 2 (docs/paper.md §4.1): greedy accuracy ± SEM on the five benchmarks.

- **Generation.** Greedy, with the boxed stop (:mod:`.boxed`), on vLLM when it is importable and CUDA is
  present, on HF ``generate`` otherwise (:func:`resolve_engine`); prompts and scoring are those of
  :mod:`paper_lib.paper_scale.data`.
- **Output.** :func:`evaluate_benchmarks` writes per-item JSONL and ``summary.json``: accuracy ± SEM (ddof = 1) over
  the scorable items, the unscorable ones counted separately (``n_unscorable``), and the authors' convention
  (unscorable = correct) alongside. :func:`greedy_rows` and :func:`summarize` are the same steps for one data set
  (validation during training).
- **LoRA adapters.** ``model`` may be a folder saved by ``PeftModel.save_pretrained`` (it holds
  ``adapter_config.json``): the base model it names is loaded, the adapter merged into it (``merge_and_unload``);
  vLLM needs a full model folder, so for vLLM the merged model and the tokenizer are saved to ``<out>/_merged``
  and deleted afterwards. peft comes with ``requirements-gpu.txt``.

``python -m paper_lib.paper_scale.benchmarks evaluate --model PATH --out DIR`` runs it from the shell.
"""

from __future__ import annotations

import argparse
import contextlib
import importlib.util
import json
import os
import shutil
import sys
from collections.abc import Mapping
from pathlib import Path

from datasets import Dataset

from paper_lib.paper_scale import boxed
from paper_lib.paper_scale.data import (
    BENCHMARK_NAMES,
    SYSTEM_PROMPT,
    load_benchmarks,
    prompt_ids,
    score_completion,
)
from paper_lib.paper_scale.presets import LLAMA_DATE_STRING
from paper_lib.training.evaluate import accuracy_sem

__all__ = [
    "ADAPTER_CONFIG",
    "adapter_base",
    "evaluate_benchmarks",
    "greedy_rows",
    "is_adapter",
    "load_merged_adapter",
    "main",
    "resolve_engine",
    "summarize",
    "template_date",
]

ADAPTER_CONFIG = "adapter_config.json"  # what PeftModel.save_pretrained writes next to the adapter weights


# -- engines -------------------------------------------------------------------------------------------------------
def resolve_engine(engine: str, model) -> str:
    """``"vllm"`` or ``"hf"``; ``"auto"`` picks vLLM when it is installed, CUDA is present and ``model`` is a path."""
    if engine not in ("auto", "vllm", "hf"):
        raise ValueError(f"engine must be 'auto', 'vllm' or 'hf', got {engine!r}")
    if engine == "vllm" and not isinstance(model, str | Path):
        raise ValueError("engine='vllm' loads the model itself: pass a path or hub id, not a model object")
    if engine != "auto":
        return engine
    import torch

    vllm_ok = importlib.util.find_spec("vllm") is not None and torch.cuda.is_available()
    return "vllm" if vllm_ok and isinstance(model, str | Path) else "hf"


def _hf_generate(model, tokenizer, prompts: list[list[int]], max_new_tokens: int, batch_size: int, stop: bool):
    """Greedy HF ``generate`` (:func:`paper_lib.training.evaluate.greedy_ids`), with the boxed stop if ``stop``."""
    from paper_lib.training.evaluate import greedy_ids

    processor = (lambda: boxed.boxed_logits_processor(tokenizer)) if stop else None
    return greedy_ids(model, tokenizer, prompts, max_new_tokens, batch_size, logits_processor=processor)


def _vllm_generate(model: str, prompts: list[list[int]], max_new_tokens: int, seed: int,
                   dtype: str) -> list[list[int]]:  # fmt: skip
    """Greedy vLLM generation from token ids in ``dtype`` (vLLM's own default, "auto", would pick each checkpoint's
    saved dtype: bf16 for the hub's base models, fp16 for merged fp32 ones); CUDA machines only."""
    from vllm import LLM, SamplingParams

    llm = LLM(model=str(model), seed=seed, dtype=dtype)
    params = SamplingParams(temperature=0.0, max_tokens=max_new_tokens)
    outputs = llm.generate([{"prompt_token_ids": p} for p in prompts], params, use_tqdm=False)
    return [list(o.outputs[0].token_ids) for o in outputs]


# -- models: checkpoints and LoRA adapters -------------------------------------------------------------------------
def is_adapter(model) -> bool:
    """Whether ``model`` is a folder holding a peft adapter (``adapter_config.json``) rather than a full model."""
    return isinstance(model, str | Path) and (Path(model) / ADAPTER_CONFIG).is_file()


def adapter_base(adapter: str | Path) -> str:
    """The base model (hub id or folder) that the adapter's ``adapter_config.json`` names."""
    base = json.loads((Path(adapter) / ADAPTER_CONFIG).read_text(encoding="utf-8")).get("base_model_name_or_path")
    if not base:
        raise ValueError(f"{Path(adapter) / ADAPTER_CONFIG} names no base model (base_model_name_or_path)")
    return str(base)


def load_merged_adapter(adapter: str | Path, dtype: str = "bfloat16"):
    """The adapter's base model in ``dtype`` with the adapter merged into its weights (on the CPU)."""
    base_id = adapter_base(adapter)
    try:
        from peft import PeftModel
    except ImportError as err:
        raise ImportError(
            f"{adapter} is a LoRA adapter ({ADAPTER_CONFIG}); loading it needs peft: "
            "pip install -r requirements-gpu.txt"
        ) from err
    import torch
    from transformers import AutoModelForCausalLM

    base = AutoModelForCausalLM.from_pretrained(base_id, dtype=getattr(torch, dtype))
    return PeftModel.from_pretrained(base, str(adapter)).merge_and_unload()


def _load_hf_model(model, dtype: str):
    if not isinstance(model, str | Path):
        return model
    import torch
    from transformers import AutoModelForCausalLM

    device = "cuda" if torch.cuda.is_available() else "cpu"
    if is_adapter(model):
        return load_merged_adapter(model, dtype).to(device)
    return AutoModelForCausalLM.from_pretrained(str(model), dtype=getattr(torch, dtype)).to(device)


@contextlib.contextmanager
def _generation_model(model, tokenizer, engine: str, out: Path, dtype: str):
    """What ``engine`` generates with: a loaded model for HF, a model folder or hub id for vLLM (an adapter merged
    into its base and saved, with the tokenizer, to ``<out>/_merged``, which is deleted afterwards)."""
    if engine == "hf":
        yield _load_hf_model(model, dtype)
        return
    if not is_adapter(model):
        yield model
        return
    merged_dir = out / "_merged"
    try:
        merged = load_merged_adapter(model, dtype)
        merged.save_pretrained(merged_dir)
        tokenizer.save_pretrained(merged_dir)
        del merged
        yield str(merged_dir)
    finally:
        shutil.rmtree(merged_dir, ignore_errors=True)


# -- scoring and summaries -----------------------------------------------------------------------------------------
def _item_rows(name: str, dataset: Dataset, completions: list[list[int]], tokenizer, stop: bool, max_new: int):
    """Per item: the (box-truncated) completion, its score, and whether the boxed stop ended it."""
    text, eos, rows = boxed.token_text(tokenizer), tokenizer.eos_token_id, []
    for index, (item, ids) in enumerate(zip(dataset, completions)):
        stopped = False
        if stop:
            ids, _, stopped = boxed.truncate_ids(ids, text, eos_token_id=eos, max_tokens=max_new)
        completion = tokenizer.decode(ids, skip_special_tokens=True)
        score = score_completion(completion, item["gold"], item["gold_extraction"])
        rows.append({"benchmark": name, "index": index, "id": item["id"], "problem": item["problem"],
                     "gold": item["gold"], "completion": completion, "n_tokens": len(ids),
                     "stopped_at_box": stopped, "score": score})  # fmt: skip
    return rows


def greedy_rows(
    model,
    tokenizer,
    dataset: Dataset,
    name: str,
    *,
    max_new_tokens: int = 4096,
    engine: str = "hf",
    batch_size: int = 16,
    boxed_stop: bool = True,
    system_prompt: str | None = SYSTEM_PROMPT,
    chat_template_kwargs: Mapping | None = None,
    seed: int = 0,
    dtype: str = "bfloat16",
) -> list[dict]:
    """Greedy completions of one standardised data set, scored: one row per item (the rows of ``<name>.jsonl``).

    ``model`` is a loaded model for ``engine="hf"``, a model folder or hub id for ``engine="vllm"``.
    """
    prompts = [prompt_ids(tokenizer, p, system_prompt, **(chat_template_kwargs or {})) for p in dataset["problem"]]
    if engine == "hf":
        completions = _hf_generate(model, tokenizer, prompts, max_new_tokens, batch_size, boxed_stop)
    elif engine == "vllm":
        completions = _vllm_generate(model, prompts, max_new_tokens, seed, dtype)
    else:
        raise ValueError(f"engine must be 'hf' or 'vllm' here (see resolve_engine), got {engine!r}")
    return _item_rows(name, dataset, completions, tokenizer, boxed_stop, max_new_tokens)


def summarize(rows: list[dict]) -> dict:
    """Accuracy ± SEM over the scorable rows, the unscorable count, and the authors' unscorable-as-correct figure."""
    scored = [r["score"] for r in rows if r["score"] is not None]
    accuracy, sem = accuracy_sem(scored)
    unscorable = len(rows) - len(scored)
    as_correct = (sum(scored) + unscorable) / len(rows) if rows else float("nan")
    return {"n": len(rows), "n_scored": len(scored), "n_unscorable": unscorable, "accuracy": accuracy, "sem": sem,
            "accuracy_unscorable_as_correct": as_correct,
            "stopped_at_box": sum(r["stopped_at_box"] for r in rows)}  # fmt: skip


def _write_atomic(path: Path, text: str) -> None:
    tmp = path.with_name(path.name + ".tmp")
    tmp.write_text(text, encoding="utf-8")
    os.replace(tmp, path)


# -- evaluation ----------------------------------------------------------------------------------------------------
def evaluate_benchmarks(
    model,
    tokenizer,
    benchmarks: Mapping[str, Dataset],
    out_dir: str | Path,
    *,
    max_new_tokens: int = 4096,
    engine: str = "auto",
    batch_size: int = 16,
    boxed_stop: bool = True,
    system_prompt: str | None = SYSTEM_PROMPT,
    chat_template_kwargs: Mapping | None = None,
    dtype: str = "bfloat16",
    seed: int = 0,
) -> dict[str, dict]:
    """Greedy accuracy ± SEM (ddof = 1) on each benchmark; writes ``<name>.jsonl`` per item and ``summary.json``.

    Args:
        model: a model object (HF path), or a path / hub id (loaded by vLLM, or by transformers in ``dtype``), or
            a LoRA adapter folder (merged into the base model it names; needs peft).
        benchmarks: standardised data sets (:func:`paper_lib.paper_scale.data.load_benchmarks`), by name.
        max_new_tokens: 4096 as in training (docs/paper.md §4.2; the paper does not state test-time decoding, §4.1).
        boxed_stop: end each completion once its first ``\\boxed{…}`` closes, as the authors' validation does.

    Returns:
        ``{name: summary}`` plus ``"average"``, the mean of the benchmarks' accuracies (Table 2's Avg.).
    """
    engine = resolve_engine(engine, model)
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    options = {"max_new_tokens": max_new_tokens, "engine": engine, "batch_size": batch_size, "boxed_stop": boxed_stop,
               "system_prompt": system_prompt, "chat_template_kwargs": chat_template_kwargs, "seed": seed,
               "dtype": dtype}  # fmt: skip
    loaded = dtype if isinstance(model, (str, Path)) else str(next(model.parameters()).dtype).removeprefix("torch.")
    summary = {}
    with _generation_model(model, tokenizer, engine, out, dtype) as generator:
        for name, dataset in benchmarks.items():
            rows = greedy_rows(generator, tokenizer, dataset, name, **options)
            _write_atomic(out / f"{name}.jsonl", "".join(json.dumps(r, ensure_ascii=False) + "\n" for r in rows))
            summary[name] = summarize(rows) | {"engine": engine, "max_new_tokens": max_new_tokens, "dtype": loaded}
    accuracies = [s["accuracy"] for s in summary.values()]
    summary["average"] = {"accuracy": sum(accuracies) / len(accuracies) if accuracies else float("nan")}
    _write_atomic(out / "summary.json", json.dumps(summary, indent=2, sort_keys=True) + "\n")
    return summary


def template_date(tokenizer, today: bool = False) -> dict | None:
    """The chat-template arguments that fix the date a template writes (Llama 3.2's system turn) to the one the
    paper-scale runs train and validate with; None for a template without a date, or with ``today``."""
    dated = "date_string" in str(getattr(tokenizer, "chat_template", None) or "")
    return {"date_string": LLAMA_DATE_STRING} if dated and not today else None


def _tokenizer_source(model: str, tokenizer: str | None) -> str:
    """``--tokenizer``, else ``--model``; an adapter folder saved without a tokenizer falls back to its base."""
    if tokenizer:
        return tokenizer
    if is_adapter(model) and not (Path(model) / "tokenizer_config.json").is_file():
        return adapter_base(model)
    return model


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description="Evaluate a model on the paper's five benchmarks (Table 2).")
    parser.add_argument("command", choices=["evaluate"])
    parser.add_argument("--model", required=True, help="checkpoint folder, hub id or LoRA adapter folder")
    parser.add_argument("--tokenizer", default=None, help="default: --model (an adapter without one: its base)")
    parser.add_argument("--out", required=True, help="folder for <benchmark>.jsonl and summary.json")
    parser.add_argument("--benchmarks", nargs="+", default=list(BENCHMARK_NAMES), choices=BENCHMARK_NAMES)
    parser.add_argument("--data-dir", default=None, help="local <benchmark>.jsonl files instead of the hub")
    parser.add_argument("--engine", default="auto", choices=["auto", "vllm", "hf"])
    parser.add_argument("--max-new-tokens", type=int, default=4096)
    parser.add_argument("--batch-size", type=int, default=16)
    parser.add_argument("--today", action="store_true", help="let a chat template that writes a date (Llama 3.2's) "
                        f"write today's, not {LLAMA_DATE_STRING!r} as in training")  # fmt: skip
    args = parser.parse_args(argv)
    from transformers import AutoTokenizer

    tokenizer = AutoTokenizer.from_pretrained(_tokenizer_source(args.model, args.tokenizer), padding_side="left")
    kwargs = template_date(tokenizer, today=args.today)
    summary = evaluate_benchmarks(args.model, tokenizer, load_benchmarks(args.benchmarks, args.data_dir), args.out,
                                  max_new_tokens=args.max_new_tokens, engine=args.engine, batch_size=args.batch_size,
                                  chat_template_kwargs=kwargs)  # fmt: skip
    print(json.dumps(summary, indent=2, sort_keys=True))
    return 0


if __name__ == "__main__":
    from paper_lib.cli import run_main

    sys.exit(run_main(main))
