r"""Notebook 06: what λ-GRPO's weights cost (docs/paper.md §3.2: 1.19e-7 and 1.21e-7 s/token at G = 6 and 36).

Three measurements, all in one process on this machine:

1. **Kernel** (this module). Seconds per completion token of :func:`paper_lib.trie.lambda_weights` against our
   re-implementation of the authors' ``InfPRMTree`` (:func:`paper_lib.reference.authors_lambda_weights`, with a
   short fake prompt in front, as the authors build the trie over prompt + completion), one group per call, on
   synthetic rollouts shaped like sampled reasoning: ~2k tokens, a long opening shared by the whole group, then
   random branching (:func:`realistic_group`). The two are timed in alternating blocks of calls, and each number
   is the median block; the paper's figures are listed beside them, labelled as the paper's (other hardware, other
   data). Also the peak memory of one call, in a fresh process (:func:`peak_extra_memory_mb`).
2. **Training step** (:mod:`paper_lib.bench.steps`). Wall time of a λ-GRPO step over a GRPO step, same
   configuration and seed, the two trainers trained alternately in rounds of a few steps (:func:`step_times`), for
   the tiny model and for SmolLM2-135M.
3. **Breakdown** (:mod:`paper_lib.bench.steps`). Where one small-scale step goes: generation, rewards, forward +
   backward, optimizer, the λ weights with the per-group statistics, logging, and the rest
   (:func:`fig_step_breakdown`).

This module assembles ``table_overhead`` (:func:`overhead_table`) and is the entry point:
``python -m paper_lib.bench --scale small`` writes ``table_overhead`` and ``fig_step_breakdown``; ``--quick``
shrinks every measurement to a smoke test. The step functions notebook 06 calls are importable from here too.
"""

from __future__ import annotations

import argparse
import functools
import os
import statistics
import time
from collections import defaultdict
from dataclasses import dataclass
from pathlib import Path

import pandas as pd
import torch

from paper_lib.analysis.paper_numbers import OVERHEAD_S_PER_TOKEN
from paper_lib.bench.steps import (
    breakdown,
    skipped_step_table,
    step_table,
    step_times,
    torch_threads,
)
from paper_lib.reference import authors_lambda_weights
from paper_lib.tree import group_statistics
from paper_lib.trie import lambda_weights

__all__ = [
    "GROUP_SIZES",
    "BenchConfig",
    "bench_config",
    "realistic_group",
    "memory_case",
    "peak_extra_memory_mb",
    "compare_kernels",
    "kernel_seconds_per_token",
    "kernel_table",
    "sharing_sweep",
    "overhead_table",
    "run_bench",
    "machine",
    "save_bench",
    "main",
    # from paper_lib.bench.steps, for notebook 06
    "step_times",
    "step_table",
    "breakdown",
]

GROUP_SIZES = (6, 36, 64)


# ---------------------------------------------------------------------------------------------------------------
# Synthetic rollouts


def realistic_group(
    G: int,
    seed: int = 0,
    mean_len: int = 2048,
    len_sd: int = 512,
    opening: tuple[float, float] = (0.3, 0.9),
    segment: int = 64,
    vocab: int = 50_000,
) -> tuple[torch.Tensor, torch.Tensor]:
    """A right-padded ``(G, T)`` group shaped like sampled reasoning rollouts, and its mask.

    Every completion starts with one opening of ``U(*opening) * mean_len`` tokens; then the group splits in two at
    random, each part shares a further ``Exp(segment)``-token stretch, and so on down to single completions, which
    run on to their own length ``N(mean_len, len_sd)`` (at least 64 tokens). Token ids are uniform in
    ``range(vocab)``. Seeded: the same arguments give the same group.
    """
    gen = torch.Generator().manual_seed(seed)
    uniform = lambda: float(torch.rand((), generator=gen))  # noqa: E731
    targets = (torch.randn(G, generator=gen) * len_sd + mean_len).clamp(min=64).long().tolist()
    seqs: list[list[int]] = [[] for _ in range(G)]

    def grow(members, n: int) -> None:
        tokens = torch.randint(0, vocab, (n,), generator=gen).tolist()
        for m in members:
            seqs[m].extend(tokens)

    grow(range(G), int((opening[0] + (opening[1] - opening[0]) * uniform()) * mean_len))
    stack = [list(range(G))]
    while stack:
        members = stack.pop()
        if len(members) == 1:
            grow(members, max(0, targets[members[0]] - len(seqs[members[0]])))
            continue
        shuffled = [members[k] for k in torch.randperm(len(members), generator=gen).tolist()]
        cut = 1 + int(uniform() * (len(members) - 1))
        for part in (shuffled[:cut], shuffled[cut:]):
            grow(part, int(-segment * torch.log1p(-torch.rand((), generator=gen)).item()))
            stack.append(part)
    T = max(len(s) for s in seqs)
    ids, mask = torch.zeros(G, T, dtype=torch.long), torch.zeros(G, T, dtype=torch.long)
    for i, s in enumerate(seqs):
        ids[i, : len(s)], mask[i, : len(s)] = torch.tensor(s, dtype=torch.long), 1
    return ids, mask


# ---------------------------------------------------------------------------------------------------------------
# Kernel timing


@dataclass(frozen=True)
class BenchConfig:
    """How long to measure, per scale (``smoke`` is a smoke test, not a measurement)."""

    kernel_groups: int = 3  # distinct groups per G, cycled through call after call
    kernel_repeats: int = 9  # alternating blocks per kernel; the median block counts
    block_seconds: float = 0.05  # each block runs about this long
    prompt_len: int = 64  # fake prompt in front of the authors' trie (they build it over prompt + completion)
    step_rounds: int = 10  # tiny model: recorded rounds of (GRPO steps, λ-GRPO steps), after one warm-up round
    steps_per_round: int = 5  # the first and the last step of a round are not recorded
    smollm2: bool = True  # SmolLM2-135M step ratio (seconds per step on a CPU; off at smoke)
    smollm2_rounds: int = 3
    smollm2_steps_per_round: int = 3


_BENCH = {
    "smoke": BenchConfig(
        kernel_groups=1, kernel_repeats=3, block_seconds=0.01, step_rounds=1, steps_per_round=3, smollm2=False
    ),  # fmt: skip
    "small": BenchConfig(),
    "paper": BenchConfig(kernel_groups=5, kernel_repeats=15, step_rounds=20, smollm2_rounds=6),
}


def bench_config(scale: str) -> BenchConfig:
    if scale not in _BENCH:
        raise ValueError(f"scale must be one of {tuple(_BENCH)}, got {scale!r}")
    return _BENCH[scale]


def _calls_per_block(fn, groups, seconds: float) -> int:
    start = time.perf_counter()
    for ids, mask in groups:
        fn(ids, mask)
    per_call = (time.perf_counter() - start) / len(groups)
    return max(1, round(seconds / max(per_call, 1e-7)))


def compare_kernels(fns: dict, groups, repeats: int = 9, block_seconds: float = 0.05) -> dict[str, float]:
    """Seconds per completion token of each ``fn(ids, mask)``, one group per call, timed side by side.

    The functions run in alternating blocks (order reversed every repeat, so drift and cache warmth hit both);
    a block calls one function on the ``groups`` in turn for about ``block_seconds``. Returns the median over
    ``repeats`` blocks of (block time / tokens processed), per function.
    """
    tokens = [int(mask.sum()) for _, mask in groups]
    calls = {name: _calls_per_block(fn, groups, block_seconds) for name, fn in fns.items()}
    per_token: dict[str, list[float]] = defaultdict(list)
    for r in range(repeats):
        for name, fn in list(fns.items())[:: 1 if r % 2 == 0 else -1]:
            n = calls[name]
            start = time.perf_counter()
            for k in range(n):
                fn(*groups[k % len(groups)])
            elapsed = time.perf_counter() - start
            per_token[name].append(elapsed / sum(tokens[k % len(groups)] for k in range(n)))
    return {name: statistics.median(v) for name, v in per_token.items()}


def kernel_seconds_per_token(fn, G: int, T: int = 2048, repeats: int = 9, n_groups: int = 3, seed: int = 0) -> float:
    """Seconds per token of ``fn(ids, mask)`` on :func:`realistic_group` groups of ``G`` completions of ~``T``."""
    groups = [realistic_group(G, seed=seed + k, mean_len=T) for k in range(n_groups)]
    return compare_kernels({"fn": fn}, groups, repeats)["fn"]


def _ours(ids, mask):
    return lambda_weights(ids, mask, dtype=torch.float32)


def _authors(prompt_len: int):
    prompt = list(range(prompt_len))
    return functools.partial(authors_lambda_weights, prompt=prompt, dtype=torch.float32)


def kernel_table(cfg: BenchConfig, sizes=GROUP_SIZES, T: int = 2048, seed: int = 0) -> pd.DataFrame:
    """Ours vs the authors' trie, s/token, one row per group size (single-threaded, as the authors' Python is)."""
    rows = []
    with torch_threads(1):
        for G in sizes:
            groups = [realistic_group(G, seed=seed + k, mean_len=T) for k in range(cfg.kernel_groups)]
            for ids, mask in groups:  # the same weights, or the comparison means nothing
                if not torch.equal(_ours(ids, mask), _authors(cfg.prompt_len)(ids, mask)):
                    raise AssertionError(f"our weights differ from the authors' trie at G={G}")
            s = compare_kernels({"ours": _ours, "authors": _authors(cfg.prompt_len)}, groups, cfg.kernel_repeats,
                                cfg.block_seconds)  # fmt: skip
            stats = [group_statistics(ids, mask) for ids, mask in groups]
            rows.append({
                "measure": "λ weights, s/token (ratio: authors' ÷ ours)",
                "setting": f"G={G}",
                "ours": s["ours"],
                "reference": s["authors"],
                "ratio": s["authors"] / s["ours"],
                "paper": OVERHEAD_S_PER_TOKEN.get(G, float("nan")),
                "note": f"mean length {statistics.fmean(int(m.sum()) / G for _, m in groups):.0f} tokens, "
                f"{100 * statistics.fmean(float(st['shared_token_frac']) for st in stats):.0f}% of tokens shared; "
                f"reference: authors' trie re-implemented, {cfg.prompt_len}-token prompt"
                + ("; paper: Intel i7, the authors' data" if G in OVERHEAD_S_PER_TOKEN else ""),
            })  # fmt: skip
    return pd.DataFrame(rows)


def sharing_sweep(cfg: BenchConfig, G: int = 6, openings=((0.0, 0.0), (0.3, 0.9), (0.9, 1.0)), T: int = 2048):
    """Speed-up against the authors' trie as the shared opening grows (their trie pays per shared token and per
    group member, ours per token): one row per ``opening`` range (a fraction of the mean length)."""
    rows = []
    with torch_threads(1):
        for lo, hi in openings:
            groups = [realistic_group(G, seed=k, mean_len=T, opening=(lo, hi)) for k in range(cfg.kernel_groups)]
            s = compare_kernels({"ours": _ours, "authors": _authors(cfg.prompt_len)}, groups, cfg.kernel_repeats,
                                cfg.block_seconds)  # fmt: skip
            shared = statistics.fmean(float(group_statistics(i, m)["shared_token_frac"]) for i, m in groups)
            rows.append({"G": G, "opening": f"{lo:.0%}–{hi:.0%} of {T}", "shared_tokens": shared,
                         "ours_s_per_token": s["ours"], "authors_s_per_token": s["authors"],
                         "speedup": s["authors"] / s["ours"]})  # fmt: skip
    return pd.DataFrame(rows)


_PEAK_SCRIPT = """
import json, sys, torch
from paper_lib.bench.kernel import memory_case
from paper_lib.trie import lambda_weights, process_set_sizes

def status(field):
    for line in open("/proc/self/status"):
        if line.startswith(field + ":"):
            return int(line.split()[1]) / 1024

fn = {"lambda_weights": lambda_weights, "process_set_sizes": process_set_sizes}[sys.argv[1]]
ids, mask = memory_case(int(sys.argv[2]), int(sys.argv[3]), sys.argv[4] == "prefix")
fn(ids[:2, :64], mask[:2, :64])  # load every code path first
before = status("VmRSS")
with open("/proc/self/clear_refs", "w") as f:  # resets the peak (VmHWM) to the current RSS
    f.write("5")
out = fn(ids, mask)
print(json.dumps({"before_mb": before, "peak_mb": status("VmHWM"), "output_mb": out.nbytes / 2**20}))
"""


def memory_case(G: int = 64, T: int = 16384, strict_prefix: bool = False, seed: int = 0):
    """A ``(G, T)`` group for the memory bound: every completion ``T`` tokens, a shared half then random tokens.

    With ``strict_prefix`` one completion stops at the shared half, and its padding sorts it (as raw bytes) after
    some of the completions it is a prefix of: the kernel's slower path (padding replaced, rows sorted again)."""
    gen = torch.Generator().manual_seed(seed)
    ids = torch.randint(0, 50_000, (G, T), generator=gen)
    ids[:, : T // 2] = ids[0, : T // 2]
    mask = torch.ones(G, T, dtype=torch.long)
    if strict_prefix:
        mask[0, T // 2 :] = 0
        ids[0, T // 2 :] = 50_000 + 255  # sorts after every other row's token at T // 2, as raw bytes
    return ids, mask


def peak_extra_memory_mb(fn: str = "lambda_weights", G: int = 64, T: int = 16384, strict_prefix: bool = False) -> dict:
    """Peak resident memory one call adds, in MiB, measured in a fresh process (Linux): the peak RSS during the
    call (``VmHWM``, reset just before it) minus the RSS before it; the output itself is included."""
    import json
    import subprocess
    import sys

    args = [sys.executable, "-c", _PEAK_SCRIPT, fn, str(G), str(T), "prefix" if strict_prefix else "plain"]
    out = subprocess.run(args, capture_output=True, text=True, check=True, env={**os.environ, "OMP_NUM_THREADS": "1"})
    result = json.loads(out.stdout.strip().splitlines()[-1])
    return {**result, "extra_mb": result["peak_mb"] - result["before_mb"]}


# ---------------------------------------------------------------------------------------------------------------
# The table: kernel rows, then the step ratios of bench_steps


def overhead_table(kernels: pd.DataFrame, steps: pd.DataFrame, skipped: dict[str, str] | None = None) -> pd.DataFrame:
    """``table_overhead``: the kernel rows, then one step-ratio row per model (``skipped``: model -> reason)."""
    parts = [kernels, step_table(steps)] + [skipped_step_table(m, why) for m, why in (skipped or {}).items()]
    return pd.concat([p for p in parts if len(p)], ignore_index=True)


# ---------------------------------------------------------------------------------------------------------------
# Entry point


def run_bench(scale: str = "small", results_dir: Path | str | None = None) -> dict:
    """Every measurement of notebook 06 at ``scale``; returns the table, the step rows and the breakdown."""
    cfg = bench_config(scale)
    kernels = kernel_table(cfg)
    steps, skipped = step_rows(cfg, scale, results_dir)
    return {"table": overhead_table(kernels, steps, skipped), "steps": steps, "breakdown": breakdown(steps)}


def step_rows(cfg: BenchConfig, scale: str, results_dir: Path | str | None = None) -> tuple[pd.DataFrame, dict]:
    """The timed steps of both methods for the tiny model and, where ``cfg`` says so, SmolLM2-135M; and the models
    skipped at this scale (model -> reason)."""
    steps = [step_times("tiny-qwen2", cfg.step_rounds, cfg.steps_per_round, scale, results_dir)]
    skipped = {}
    if cfg.smollm2:
        steps.append(step_times("smollm2-135m", cfg.smollm2_rounds, cfg.smollm2_steps_per_round, scale, results_dir))
    else:
        skipped["smollm2-135m"] = f"skipped at scale {scale!r} (seconds per step on a CPU)"
    return pd.concat(steps, ignore_index=True), skipped


def machine() -> str:
    """The machine in one line: CPU model, logical CPUs, load average, versions."""
    import platform

    import numpy as np

    from paper_lib.training.provenance import cpu_model

    load = ", ".join(f"{x:.2f}" for x in os.getloadavg())
    return (f"{cpu_model()}, {os.cpu_count()} logical CPUs, load average {load}; Python {platform.python_version()}, "
            f"torch {torch.__version__}, numpy {np.__version__}")  # fmt: skip


def save_bench(result: dict, scale: str, results_dir: Path | str | None = None) -> list[Path]:
    """Write ``table_overhead`` and ``fig_step_breakdown``."""
    import matplotlib.pyplot as plt

    from paper_lib.figures.plots import fig_step_breakdown
    from paper_lib.paths import save_figure, save_table

    files = save_table(result["table"], "table_overhead", scale, results_dir)
    fig = fig_step_breakdown(result["breakdown"], "one training step, tiny model (arithmetic, G = 6, 4 prompts)")
    files += save_figure(fig, "fig_step_breakdown", scale, results_dir)
    plt.close(fig)
    return files


def main(argv=None) -> None:
    parser = argparse.ArgumentParser(prog="python -m paper_lib.bench", description=__doc__.split("\n")[0])
    parser.add_argument("--scale", default="small", choices=tuple(_BENCH))
    parser.add_argument("--quick", action="store_true", help="smoke-test settings (scale smoke)")
    parser.add_argument("--results-dir", default=None, help="default: results/<scale>")
    args = parser.parse_args(argv)
    scale = "smoke" if args.quick else args.scale
    print(machine())
    result = run_bench(scale, args.results_dir)
    for path in save_bench(result, scale, args.results_dir):
        print(path)
    print(result["table"].to_string(index=False))
