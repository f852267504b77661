"""Seeds and manifests: what ran, with which code and versions, where, and for how long."""

from __future__ import annotations

import os
import platform
import random
import subprocess
from datetime import UTC, datetime
from importlib import metadata
from pathlib import Path

import numpy as np
import torch

from paper_lib.paths import REPO_ROOT

__all__ = [
    "seed_everything",
    "git_state",
    "versions",
    "device_name",
    "pin_cpu_kernels",
    "cpu_model",
    "utc_now",
]

_PACKAGES = ("torch", "transformers", "trl", "accelerate", "datasets", "tokenizers", "numpy", "paper_lib")


def seed_everything(seed: int) -> None:
    """Seed Python, NumPy and torch (TRL reseeds from ``GRPOConfig.seed`` too, so pass the same seed there)."""
    random.seed(seed)
    np.random.seed(seed)
    torch.manual_seed(seed)


def git_state() -> dict:
    """The commit of the code that ran and whether the tree had uncommitted changes (``None`` outside git)."""

    def git(*args: str) -> str | None:
        try:
            out = subprocess.run(["git", *args], cwd=REPO_ROOT, capture_output=True, text=True, timeout=10)
        except (OSError, subprocess.TimeoutExpired):
            return None
        return out.stdout.strip() if out.returncode == 0 else None

    commit = git("rev-parse", "HEAD")
    status = git("status", "--porcelain", "--untracked-files=no")
    return {"commit": commit, "dirty": bool(status) if status is not None else None}


def versions() -> dict:
    out = {"python": platform.python_version()}
    for name in _PACKAGES:
        try:
            out[name] = metadata.version(name)
        except metadata.PackageNotFoundError:
            out[name] = None
    return out


# torch's own kernels, MKL and oneDNN each pick AVX2 or AVX-512 code at run time, and the two round differently
CPU_KERNEL_ENV = {"ATEN_CPU_CAPABILITY": "avx2", "MKL_ENABLE_INSTRUCTIONS": "AVX2", "ONEDNN_MAX_CPU_ISA": "AVX2"}


def pin_cpu_kernels() -> None:
    """Make CPU runs compute with AVX2 kernels on every x86 machine, AVX-512 or not, so that they reproduce bit for
    bit across both kinds (same thread count). Call it before the process's first tensor operation: each library
    reads its variable once. A variable already set (by the user) is left as it is."""
    for name, value in CPU_KERNEL_ENV.items():
        os.environ.setdefault(name, value)


def device_name() -> str:
    """The device a run computes on: the GPU model and count, or the CPU model, the vector instructions torch's
    kernels use and torch's thread count. Float round-off, and so a chaotic run's path, is bit-stable only where all
    three agree: a virtual machine may name two CPU generations alike ("AMD EPYC"), and AVX2 and AVX-512 kernels
    round differently (the sums warm start of 1800 steps ends at a loss of 0.209 with AVX2 kernels, 0.222 with
    AVX-512 ones, on the same machine); :func:`pin_cpu_kernels` makes the CPU scales use AVX2 everywhere."""
    if torch.cuda.is_available():
        return f"cuda: {torch.cuda.get_device_name(0)} x{torch.cuda.device_count()}"
    return f"cpu: {cpu_model()} ({torch.backends.cpu.get_cpu_capability()}), {torch.get_num_threads()} threads"


def cpu_model() -> str:
    """``/proc/cpuinfo``'s "model name" (Linux), else what :mod:`platform` knows."""
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()


def utc_now() -> str:
    return datetime.now(UTC).isoformat(timespec="seconds")
