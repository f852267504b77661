"""``make gpu-check``: what the paper scale's CUDA path does, checked in one call of at most ~10 minutes on a GPU.

Two forms (``--form``; ``auto`` picks *full* when the hub answers and vLLM is installed, else *stand-in*):

- **stand-in** (a GPU machine with no network: torch and transformers preinstalled, no vLLM): the ``gpu`` test tier;
  the λ weights computed on the GPU against the CPU path; a few λ-GRPO steps of a tiny model (bf16 on CUDA); and
  two steps of a paper preset (β = 0.04) on the offline stand-ins of ``tests/paper_fixtures.py``, then its held-out
  evaluation in a process of its own.
- **full** (a researcher's GPU machine with hub access and ``.venv-gpu``): the DeepSeek tokenizer against its own
  ``tokenizer.json`` and pad = EOS; two steps of the β = 0.04 λ-GRPO preset at 256 tokens (KL > 0, bias correction
  off); two steps with ``use_vllm=true`` (importance ratios logged); the evaluation of the base and the trained model
  after that training, each in its own process.

Each check says ``held``, ``failed`` (with why) or ``not checked`` (with why: no CUDA, no hub, no vLLM); the
summary goes to ``<out>/summary.md`` and ``summary.json``. Without CUDA it stops at once unless ``--allow-cpu`` (a
dry run of the script itself, where every check that needs a GPU says ``not checked``). Exit 1 if a check failed.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import time
import traceback
from collections.abc import Callable
from pathlib import Path

from paper_lib.paths import REPO_ROOT

__all__ = ["CHECKS", "main", "run_checks"]

HELD, FAILED, NOT_CHECKED = "held", "failed", "not checked"


class NotChecked(Exception):
    """Raised by a check that cannot run on this machine (the message says why)."""


def _cuda() -> bool:
    import torch

    return torch.cuda.is_available()


def _need_cuda() -> None:
    if not _cuda():
        raise NotChecked("no CUDA device")


def _subprocess(args: list[str], timeout: int = 420) -> subprocess.CompletedProcess:
    env = {**os.environ, "PYTHONHASHSEED": "0"}
    return subprocess.run([sys.executable, *args], cwd=REPO_ROOT, env=env, capture_output=True, text=True,
                          timeout=timeout)  # fmt: skip


# -- stand-in form ---------------------------------------------------------------------------------------------------
def check_gpu_tier(out: Path) -> str:
    """``pytest -m gpu``: bf16 λ-GRPO steps on CUDA, and the paper preset's CUDA test."""
    _need_cuda()
    done = _subprocess(["-m", "pytest", "-m", "gpu", "-q", "-p", "no:cacheprovider", "tests"])
    last = (done.stdout.strip().splitlines() or ["(no output)"])[-1]
    if done.returncode:
        raise AssertionError(f"pytest -m gpu: {last}\n{done.stdout[-2000:]}")
    return last


def check_trie_on_device(out: Path) -> str:
    """λ weights of random groups with shared prefixes: CUDA tensors give the CPU path's weights exactly."""
    import torch

    from paper_lib.trie import lambda_weights

    _need_cuda()
    gen = torch.Generator().manual_seed(0)
    ids = torch.randint(0, 3, (64, 8, 48), generator=gen)  # 3 tokens: deep shared prefixes
    mask = (torch.arange(48) < torch.randint(1, 49, (64, 8, 1), generator=gen)).long()
    cpu = lambda_weights(ids, mask, dtype=torch.float32)
    gpu = lambda_weights(ids.cuda(), mask.cuda(), dtype=torch.float32)
    assert gpu.device.type == "cuda" and torch.equal(gpu.cpu(), cpu), "CUDA and CPU weights differ"
    return f"{ids.shape[0]} groups of {ids.shape[1]}: identical on {torch.cuda.get_device_name()}"


def check_tiny_steps(out: Path) -> str:
    """Three λ-GRPO steps of the smoke scale's tiny model through the run loop (bf16 on CUDA, float32 on CPU)."""
    from paper_lib.rundir import read_jsonl
    from paper_lib.training.config import RunConfig
    from paper_lib.training.runs import run

    cfg = RunConfig(name="tiny", max_steps=3, warm_start_steps=20, train_size=64, val_size=8, eval_every=3,
                    save_every=3, group_size=4, prompts_per_step=2, max_completion_length=8)  # fmt: skip
    run_dir = run(cfg, out / "tiny", cache=out / "tiny" / "_warmstart")
    losses = [r["loss"] for r in read_jsonl(run_dir / "metrics.jsonl") if "loss" in r]
    assert len(losses) == 3 and all(abs(x) < float("inf") for x in losses), f"losses {losses}"
    shown = ", ".join(f"{x:.4g}" for x in losses)
    return f"{len(losses)} steps, losses {shown} ({'bf16' if _cuda() else 'float32, CPU'})"


def check_stand_in_preset(out: Path) -> str:
    """Two steps of downstream/qwen-1.5b_b0.04_lambda_grpo on the offline stand-ins (bf16 + LoRA on CUDA when peft
    is installed), trained and evaluated in processes of their own, as ``make reproduce SCALE=paper`` runs them."""
    import importlib.util

    sys.path.insert(0, str(REPO_ROOT / "tests"))
    from paper_fixtures import build_mirror

    lora = _cuda() and importlib.util.find_spec("peft") is not None
    mirror = build_mirror(out / "mirror", layers=lora)  # LoRA needs linear layers to adapt
    sets = [f"mirror={mirror}", "max_steps=2", "val_size=4", "eval_every=2", "max_completion_length=16",
            *(["precision=bf16", "lora=true"] if lora else ["lora=false"])]  # fmt: skip
    how = "bf16 + LoRA" if lora else "float32, full fine-tuning (bf16 needs LoRA, LoRA needs peft and CUDA here)"
    # no KL check: a stand-in's rollouts of a group are alike, so the advantages and the update are 0 (the full form
    # checks KL > 0 on the real model)
    return f"{how}: " + _train_then_evaluate(out / "stand_in", "training/qwen-1.5b_b0.04_lambda_grpo", sets, kl=False)


def _train_then_evaluate(root: Path, unit: str, sets: list[str], kl: bool = True) -> str:
    from paper_lib.rundir import read_json, read_jsonl

    args = ["--unit", unit, "--scale", "paper", "--root", str(root), *(a for s in sets for a in ("--set", s))]
    for command in ("worker", "evaluate"):
        done = _subprocess(["-m", "paper_lib.experiments", command, *args])
        if done.returncode:
            raise AssertionError(f"{command} failed:\n{done.stderr[-2000:]}")
    run_dir = root / "runs" / unit
    rows = [r for r in read_jsonl(run_dir / "metrics.jsonl") if "loss" in r]
    assert [r["step"] for r in rows] == [1, 2], f"steps {[r['step'] for r in rows]}"
    if kl:
        assert rows[-1].get("kl", 0.0) > 0.0, f"β = 0.04 but the KL at step 2 is {rows[-1].get('kl')}"
    base = run_dir.parent / f"base_{unit.split('/')[1].split('_')[0]}" / "benchmarks" / "summary.json"
    trained = read_json(run_dir / "benchmarks" / "summary.json")
    assert base.is_file(), f"no base-model evaluation at {base}"
    return f"kl {rows[-1].get('kl', float('nan')):.3g} at step 2; benchmarks: {sorted(trained)[:3]}…"


# -- full form -------------------------------------------------------------------------------------------------------
def _need_hub() -> None:
    from paper_lib.paper_scale.preflight import check_hub

    if problem := check_hub():
        raise NotChecked(problem)


def check_deepseek_tokenizer(out: Path) -> str:
    """transformers' DeepSeek tokenizer (rebuilt as a Qwen2 tokenizer under 5.x) encodes as its tokenizer.json does,
    and its pad token is EOS."""
    from huggingface_hub import hf_hub_download
    from tokenizers import Tokenizer

    from paper_lib.paper_scale.data import prompt_ids
    from paper_lib.paper_scale.presets import PAPER_MODELS, paper_preset
    from paper_lib.paper_scale.recipe import load_tokenizer

    _need_hub()
    hub_id = PAPER_MODELS["qwen-1.5b"]
    tok = load_tokenizer(paper_preset("downstream/qwen-1.5b_b0_grpo"), hub_id)
    raw = Tokenizer.from_file(hf_hub_download(hub_id, "tokenizer.json"))
    texts = ["Compute $\\frac{1}{2}+\\frac{1}{3}$.", "  leading spaces, é and 日本語 \n\n", "\\boxed{42}</think>"]
    for text in texts:
        ours, theirs = tok(text, add_special_tokens=False)["input_ids"], raw.encode(text, add_special_tokens=False).ids
        assert ours == theirs, f"{text!r}: {ours[:12]} vs tokenizer.json {theirs[:12]}"
    assert tok.pad_token == tok.eos_token, f"pad {tok.pad_token!r} is not EOS {tok.eos_token!r}"
    ids = prompt_ids(tok, texts[0])
    assert ids.count(tok.bos_token_id) == 1, "the chat prompt does not hold exactly one BOS"
    return f"{type(tok).__name__}: {len(texts)} texts as tokenizer.json; pad = EOS = {tok.eos_token!r}"


def check_kl_preset(out: Path) -> str:
    """Two steps of downstream/qwen-1.5b_b0.04_lambda_grpo at 256 tokens: KL > 0, bias correction off; then the
    base and trained models evaluated in processes of their own."""
    from paper_lib.paper_scale.presets import grpo_config_kwargs, paper_preset

    _need_cuda()
    _need_hub()
    assert grpo_config_kwargs(paper_preset("downstream/qwen-1.5b_b0.04_lambda_grpo"), "x")[
        "use_bias_correction_kl"] is False, "the preset multiplies the KL by the ratio"  # fmt: skip
    sets = ["max_steps=2", "val_size=4", "eval_every=2", "max_completion_length=256"]
    return _train_then_evaluate(out / "full", "training/qwen-1.5b_b0.04_lambda_grpo", sets)


def check_vllm_steps(out: Path) -> str:
    """Two steps with ``use_vllm=true`` (colocate): trained, and the importance ratios TRL logs are present."""
    import importlib.util

    from paper_lib.rundir import read_jsonl

    _need_cuda()
    _need_hub()
    if importlib.util.find_spec("vllm") is None:
        raise NotChecked("vLLM is not installed")
    root = out / "full_vllm"
    args = ["--unit", "training/qwen-1.5b_b0_lambda_grpo", "--scale", "paper", "--root", str(root),
            *(a for s in ["use_vllm=true", "max_steps=2", "eval_every=0", "max_completion_length=256"]
              for a in ("--set", s))]  # fmt: skip
    done = _subprocess(["-m", "paper_lib.experiments", "worker", *args])
    if done.returncode:
        raise AssertionError(f"worker failed:\n{done.stderr[-2000:]}")
    rows = [r for r in read_jsonl(root / "runs" / "training" / "qwen-1.5b_b0_lambda_grpo" / "metrics.jsonl")
            if "loss" in r]  # fmt: skip
    ratios = sorted({k for r in rows for k in r if "importance" in k or "is_ratio" in k})
    assert len(rows) == 2 and ratios, f"{len(rows)} steps; importance-ratio metrics: {ratios}"
    return f"2 steps; logged {', '.join(ratios[:3])}"


CHECKS: dict[str, list[tuple[str, Callable[[Path], str]]]] = {
    "stand-in": [
        ("gpu test tier", check_gpu_tier),
        ("λ weights on the GPU", check_trie_on_device),
        ("tiny-model λ-GRPO steps", check_tiny_steps),
        ("stand-in preset, train + evaluate", check_stand_in_preset),
    ],  # fmt: skip
    "full": [
        ("DeepSeek tokenizer", check_deepseek_tokenizer),
        ("β = 0.04 preset, train + evaluate", check_kl_preset),
        ("use_vllm=true steps", check_vllm_steps),
    ],  # fmt: skip
}


# -- running and reporting -------------------------------------------------------------------------------------------
def run_checks(form: str, out: Path) -> list[dict]:
    """Every check of ``form`` (``full`` runs the stand-in checks too), each reported, none stopping the others."""
    rows = []
    for name, check in CHECKS["stand-in"] + (CHECKS["full"] if form == "full" else []):
        start = time.perf_counter()
        try:
            status, detail = HELD, check(out)
        except NotChecked as why:
            status, detail = NOT_CHECKED, str(why)
        except Exception as err:  # noqa: BLE001 - a failed check is reported, the others still run
            status, detail = FAILED, f"{err}\n{traceback.format_exc(limit=3)}"
        rows.append({"check": name, "status": status, "detail": detail, "seconds": round(time.perf_counter() - start)})
        print(f"gpu-check: {name}: {status} ({rows[-1]['seconds']} s) {detail.splitlines()[0][:200]}", flush=True)
    return rows


def _summary(rows: list[dict], form: str) -> str:
    import torch

    device = torch.cuda.get_device_name() if torch.cuda.is_available() else "no CUDA device (a CPU dry run)"
    lines = [f"# gpu-check ({form} form) on {device}", "", f"torch {torch.__version__}, CUDA {torch.version.cuda}", "",
             "| check | status | seconds | detail |", "|---|---|---|---|"]  # fmt: skip
    for r in rows:
        detail = r["detail"].splitlines()[0].replace("|", "\\|")[:300] if r["detail"] else ""
        lines.append(f"| {r['check']} | {r['status']} | {r['seconds']} | {detail} |")
    return "\n".join(lines) + "\n"


def _auto_form() -> str:
    import importlib.util

    from paper_lib.paper_scale.preflight import check_hub

    return "full" if importlib.util.find_spec("vllm") is not None and check_hub() is None else "stand-in"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--form", default="auto", choices=["auto", "full", "stand-in"])
    parser.add_argument("--out", type=Path, default=REPO_ROOT / "results" / "gpu-check")
    parser.add_argument("--allow-cpu", action="store_true", help="run without CUDA (a dry run of this script)")
    args = parser.parse_args(argv)
    if not _cuda() and not args.allow_cpu:
        print("gpu-check: no CUDA device here; nothing was run (--allow-cpu: a dry run on the CPU)", file=sys.stderr)
        return 1
    form = _auto_form() if args.form == "auto" else args.form
    args.out.mkdir(parents=True, exist_ok=True)
    rows = run_checks(form, args.out)
    (args.out / "summary.json").write_text(json.dumps({"form": form, "checks": rows}, indent=1) + "\n")
    (args.out / "summary.md").write_text(_summary(rows, form))
    print(_summary(rows, form))
    return 1 if any(r["status"] == FAILED for r in rows) else 0


if __name__ == "__main__":
    from paper_lib.cli import run_main

    sys.exit(run_main(main))
