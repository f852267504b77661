"""The run directory's formats: the contract between the writers (training) and the readers (analysis, figures).

``<root>/<experiment>/<name>/`` holds ``config.json``, ``manifest.json`` (status ``running`` → ``finished``),
``metrics.jsonl`` (``.gz`` once finished; one training row with a ``loss`` per step 1..N), ``groups.parquet``,
``completions/``, ``toy_target.json`` (toy runs), ``train.log``, and the git-ignored ``checkpoint/`` and ``best/``.
Readers need nothing but this module (and pandas for Parquet); it imports no training code, so reading logs stays
cheap (no torch, no transformers).
"""

from __future__ import annotations

import gzip
import hashlib
import json
import time
from pathlib import Path

import numpy as np

__all__ = [
    "read_json",
    "write_json",
    "read_jsonl",
    "compress",
    "truncate_after",
    "sha256_file",
    "is_finished",
    "check_coverage",
    "last_window_mean",
    "run_last_window",
]


def write_json(path: Path, obj) -> None:
    """Write atomically (temp file, then rename): a kill never leaves a half-written JSON behind."""
    tmp = path.with_suffix(path.suffix + f".tmp{time.monotonic_ns()}")
    tmp.write_text(json.dumps(obj, indent=2, sort_keys=True, default=str) + "\n")
    tmp.replace(path)


def read_json(path: Path):
    return json.loads(Path(path).read_text())


def read_jsonl(path: Path) -> list[dict]:
    """Rows of a JSONL file, or of its gzipped copy ``<path>.gz`` (finished runs are stored compressed)."""
    path = Path(path)
    gz = path.with_name(path.name + ".gz")
    if path.is_file():
        text = path.read_text()
    elif gz.is_file():
        text = gzip.decompress(gz.read_bytes()).decode()
    else:
        return []
    return [json.loads(line) for line in text.splitlines() if line.strip()]


def compress(path: Path) -> None:
    """Replace ``path`` by ``<path>.gz`` (byte-stable: no timestamp in the gzip header)."""
    if path.is_file():
        gz = path.with_name(path.name + ".gz")
        gz.write_bytes(gzip.compress(path.read_bytes(), mtime=0))
        path.unlink()


def truncate_after(path: Path, keep) -> None:
    """Keep only the rows for which ``keep(row)`` is true (rows written after the resumed checkpoint go)."""
    if path.is_file():
        rows = [r for r in read_jsonl(path) if keep(r)]
        tmp = path.with_suffix(".tmp")
        tmp.write_text("".join(json.dumps(r, sort_keys=True) + "\n" for r in rows))
        tmp.replace(path)


def sha256_file(path: Path) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            h.update(block)
    return h.hexdigest()


def is_finished(run_dir: Path) -> bool:
    try:
        return read_json(Path(run_dir) / "manifest.json").get("status") == "finished"
    except (OSError, ValueError):
        return False


def check_coverage(run_dir: Path, steps: int) -> None:
    """Raise RuntimeError unless ``metrics.jsonl`` holds one training row (with a ``loss``) for each step 1..steps."""
    logged = sorted(r["step"] for r in read_jsonl(run_dir / "metrics.jsonl") if "loss" in r)
    if logged != list(range(1, steps + 1)):
        missing = sorted(set(range(1, steps + 1)) - set(logged))
        repeated = sorted({s for s in logged if logged.count(s) > 1})
        raise RuntimeError(f"{run_dir}/metrics.jsonl does not cover steps 1..{steps} once: {len(logged)} training "
                           f"rows, missing {missing[:5]}{'…' if len(missing) > 5 else ''}, repeated {repeated[:5]}; "
                           "the run is not marked finished (delete it and train it again)")  # fmt: skip


def last_window_mean(steps, values, window: int) -> float:
    """Mean of ``values`` over the last ``window`` steps (Table 1: target frequency in the last 50 steps)."""
    steps, values = np.asarray(steps), np.asarray(values, dtype=float)
    return float(values[steps > steps.max() - window].mean())


def run_last_window(run_dir: Path, column: str, window: int) -> float:
    """Mean of one logged metric over a run's last ``window`` steps (Table 1's target frequency: 50)."""
    rows = [r for r in read_jsonl(Path(run_dir) / "metrics.jsonl") if column in r]
    if not rows:
        raise ValueError(f"{run_dir} logged no {column!r}")
    return last_window_mean([r["step"] for r in rows], [r[column] for r in rows], window)
