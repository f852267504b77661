"""Fail fast before the paper scale: ``python -m paper_lib.paper_scale.preflight --scale paper`` (docs/paper.md §10).

The paper scale trains 1.5B models for hundreds of GPU-hours from hub downloads, so a machine without CUDA or without
hub access must stop within seconds, with nothing written, saying exactly what is missing. Every problem is listed
at once (not only the first), and the exit status is 1 when one is fatal. ``--scale smoke`` and ``--scale small``
need nothing and exit 0 at once.

Checks at ``--scale paper``:

- **CUDA**: ``torch.cuda.is_available()`` with at least one device (fatal).
- **hub access** (fatal): ``HF_HUB_OFFLINE`` / ``TRANSFORMERS_OFFLINE`` / ``HF_DATASETS_OFFLINE`` must not be set
  (the Makefile exports them for the offline scales), and the hub's API must answer a model-info request for
  DeepSeek-R1-Distill-Qwen-1.5B within ``--hub-timeout`` seconds (``HF_ENDPOINT`` is respected), and the gated
  Llama-3.2-1B-Instruct must let this machine's token (``HF_TOKEN`` or ``huggingface-cli login``) download a file.
- **peft** (fatal): the presets train the authors' LoRA adapters by default; it comes with requirements-gpu.txt.
- **vLLM** (optional, fatal only with ``--engine vllm`` or ``--set use_vllm=true``): installed, at a version trl 1.16
  accepts (0.22–0.31).

``--set FIELD=VALUE`` takes the switches ``make reproduce SCALE=paper SET="…"`` passes to every run: with
``mirror=DIR`` the hub is not needed and the mirror must hold every model and data file instead; with ``lora=false``
peft is not needed; with ``use_vllm=true`` vLLM is.
"""

from __future__ import annotations

import argparse
import importlib.metadata
import importlib.util
import os
import sys
import urllib.error
import urllib.request
from pathlib import Path

from paper_lib.paths import SCALES, check_scale

__all__ = [
    "OFFLINE_VARIABLES",
    "check_cuda",
    "check_gated",
    "check_hub",
    "check_mirror",
    "check_peft",
    "check_vllm",
    "check_vllm_server",
    "main",
    "problems",
]

OFFLINE_VARIABLES = ("HF_HUB_OFFLINE", "TRANSFORMERS_OFFLINE", "HF_DATASETS_OFFLINE")
PROBE_MODEL = "deepseek-ai/DeepSeek-R1-Distill-Qwen-1.5B"  # docs/paper.md §4.1; public, so no token is needed
GATED_MODEL = "meta-llama/Llama-3.2-1B-Instruct"  # docs/paper.md §4.1; downloads need an accepted licence and a token
VLLM_RANGE = ("0.22.0", "0.31.0")  # what trl 1.16.0's `vllm` extra accepts
_GPU_INSTALL = "pip install -r requirements-gpu.txt"


def check_cuda() -> str | None:
    """None if CUDA is usable, else what is missing."""
    import torch

    if not torch.cuda.is_available() or torch.cuda.device_count() < 1:
        build = f"torch {torch.__version__}, CUDA build {torch.version.cuda or 'none'}"
        return f"CUDA: no CUDA device is available ({build}); the paper scale needs a GPU (docs/paper.md §10)"
    return None


def _truthy(value: str | None) -> bool:
    return value is not None and value.strip().lower() not in ("", "0", "false", "no", "off")


def check_hub(timeout_s: float = 3.0) -> str | None:
    """None if the hub answers within ``timeout_s``, else why it cannot be used (no request when offline is set)."""
    offline = [name for name in OFFLINE_VARIABLES if _truthy(os.environ.get(name))]
    if offline:
        return (f"hub access: {', '.join(f'{n}={os.environ[n]}' for n in offline)} is set, but the paper scale "
                "downloads its models and data from the Hugging Face hub; unset it (the Makefile exports it for "
                "the smoke and small scales)")  # fmt: skip
    endpoint = os.environ.get("HF_ENDPOINT", "https://huggingface.co").rstrip("/")
    url = f"{endpoint}/api/models/{PROBE_MODEL}"
    try:
        with urllib.request.urlopen(urllib.request.Request(url, method="HEAD"), timeout=timeout_s) as response:
            status = response.status
    except urllib.error.HTTPError as err:
        status = err.code
    except (OSError, ValueError) as err:  # URLError, timeouts, refused connections, a malformed HF_ENDPOINT
        return f"hub access: {url} did not answer within {timeout_s:g} s ({err}); the paper scale needs the hub"
    if status >= 400:
        return f"hub access: {url} answered HTTP {status}; the paper scale needs the hub"
    return None


def check_gated(timeout_s: float = 3.0) -> str | None:
    """None if this machine may download Llama-3.2-1B-Instruct (a gated repo: its licence accepted on the hub, and a
    token, from ``HF_TOKEN`` or ``huggingface-cli login``), else what to do. Call it once the hub answers."""
    from huggingface_hub import get_token

    endpoint = os.environ.get("HF_ENDPOINT", "https://huggingface.co").rstrip("/")
    url = f"{endpoint}/{GATED_MODEL}/resolve/main/config.json"
    token = get_token()
    headers = {"Authorization": f"Bearer {token}"} if token else {}
    try:
        with urllib.request.urlopen(urllib.request.Request(url, method="HEAD", headers=headers), timeout=timeout_s):
            return None
    except urllib.error.HTTPError as err:
        if err.code in (401, 403):
            how = "the token has no access" if token else "no token is set (HF_TOKEN or huggingface-cli login)"
            return (f"gated model: {GATED_MODEL} answered HTTP {err.code}, {how}; accept its licence on the hub "
                    "page with the account of the token, or leave out the llama-1b runs")  # fmt: skip
        return f"gated model: {url} answered HTTP {err.code}"
    except (OSError, ValueError) as err:
        return f"gated model: {url} did not answer within {timeout_s:g} s ({err})"


def check_peft() -> str | None:
    if importlib.util.find_spec("peft") is None:
        return f"peft: not installed; the paper presets train LoRA adapters by default ({_GPU_INSTALL})"
    return None


def check_vllm() -> str | None:
    """None if vLLM is installed at a version TRL accepts, else what is wrong (the import itself is not tried)."""
    if importlib.util.find_spec("vllm") is None:
        return f"vLLM: not installed ({_GPU_INSTALL})"
    from packaging.version import Version

    version = Version(Version(importlib.metadata.version("vllm")).base_version)
    low, high = VLLM_RANGE
    if not Version(low) <= version <= Version(high):
        return f"vLLM: version {version} is outside {low}..{high}, the range trl 1.16.0 accepts ({_GPU_INSTALL})"
    return None


def check_mirror(mirror: str) -> str | None:
    """Every model folder and data file the paper scale reads, in the mirror's layout (``PaperPreset.mirror``)."""
    from paper_lib.paper_scale.presets import mirror_files

    missing = [n for n in mirror_files() if not (Path(mirror) / n).is_file()]
    return f"mirror {mirror}: lacks {', '.join(missing)}" if missing else None


def check_vllm_server(switches: dict) -> str | None:
    """``vllm_mode=server`` for every run: one ``trl vllm-serve`` serves one model, and the plan trains three."""
    if not (switches.get("use_vllm") and switches.get("vllm_mode") == "server"):
        return None
    return ("vllm_mode=server: a trl vllm-serve process serves one model, but `make reproduce` trains Qwen, Llama and "
            "GPT-2 presets in turn; use the colocate mode for the whole set, or train one model's presets at a time "
            "(python -m paper_lib.paper_scale --preset …) against a server of that model")  # fmt: skip


def check_process_count(num_processes: int, switches: dict | None = None) -> str | None:
    """Whether every paper preset's completions per step split over ``num_processes`` × a micro-batch of 1."""
    from math import gcd

    from paper_lib.paper_scale.presets import PAPER_EXPERIMENTS, paper_presets

    presets = [p for e in PAPER_EXPERIMENTS for p in paper_presets(e, **(switches or {}))]
    bad = sorted({f"{p.experiment} ({p.completions_per_step} per step)" for p in presets
                  if p.completions_per_step % num_processes})  # fmt: skip
    if not bad:
        return None
    common = gcd(*(p.completions_per_step for p in presets))
    valid = [n for n in range(1, common + 1) if common % n == 0]
    return (f"{num_processes} processes: the completions of {', '.join(bad)} do not split over them; every preset "
            f"runs on {', '.join(map(str, valid))} processes")  # fmt: skip


def problems(
    scale: str,
    engine: str = "auto",
    hub_timeout_s: float = 3.0,
    switches: dict | None = None,
    allow_cpu: bool = False,
    num_processes: int = 1,
) -> tuple[list[str], list[str]]:
    """``(fatal, warnings)`` for running ``scale`` with the preset ``switches``; both empty for the offline scales.

    ``allow_cpu`` turns a missing GPU into a warning: a dry run of the whole pipeline on a CPU, with a ``mirror`` of
    small stand-in models and short runs (``max_steps=2``), before GPU-hours are spent.
    """
    check_scale(scale)
    if engine not in ("auto", "hf", "vllm"):
        raise ValueError(f"engine must be 'auto', 'hf' or 'vllm', got {engine!r}")
    if scale != "paper":
        return [], []
    switches = switches or {}
    engine = "vllm" if switches.get("use_vllm") else engine
    source = check_mirror(switches["mirror"]) if switches.get("mirror") else check_hub(hub_timeout_s)
    if not source and not switches.get("mirror"):
        source = check_gated(hub_timeout_s)
    cuda = check_cuda()
    peft = check_peft() if switches.get("lora", True) else None
    server = check_vllm_server(switches)
    fatal = [p for p in (None if allow_cpu else cuda, source, peft, check_process_count(num_processes, switches),
                         server) if p]  # fmt: skip
    warnings = [f"{cuda}; running anyway (--allow-cpu: a dry run)"] if cuda and allow_cpu else []
    vllm = check_vllm() if engine != "hf" else None
    if vllm and engine == "vllm":
        return fatal + [vllm], warnings
    return fatal, warnings + ([f"{vllm}; generation uses HF generate"] if vllm else [])


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--scale", default="small", choices=SCALES)
    parser.add_argument("--engine", default="auto", choices=["auto", "hf", "vllm"], help="vllm: require vLLM")
    parser.add_argument("--hub-timeout", type=float, default=3.0, help="seconds to wait for the hub")
    parser.add_argument("--set", dest="sets", action="append", default=[], metavar="FIELD=VALUE",
                        help="the preset switches of the runs (python -m paper_lib.paper_scale -h)")  # fmt: skip
    parser.add_argument("--allow-cpu", action="store_true", help="a CPU dry run: a missing GPU is only a warning")
    parser.add_argument("--num-processes", type=int, default=1, help="the processes (GPUs) the runs will launch on")
    args = parser.parse_args(argv)
    from paper_lib.paper_scale.presets import parse_switch

    switches = dict(parse_switch(s) for s in args.sets)
    fatal, warnings = problems(args.scale, args.engine, args.hub_timeout, switches, args.allow_cpu,
                               args.num_processes)  # fmt: skip
    for line in warnings:
        print(f"preflight: warning: {line}", file=sys.stderr)
    for line in fatal:
        print(f"preflight: MISSING {line}", file=sys.stderr)
    if fatal:
        print(f"preflight: scale {args.scale!r} cannot run here; nothing was started or written", file=sys.stderr)
        return 1
    print(f"preflight: scale {args.scale!r}: ok")
    return 0


if __name__ == "__main__":
    from paper_lib.cli import run_main

    sys.exit(run_main(main))
