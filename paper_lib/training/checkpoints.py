"""Checkpoints that can be trusted: sealed with a manifest of sizes and hashes once fully written.

A run killed while writing a checkpoint leaves it unsealed (or with files that no longer match); resuming skips it
with a warning and uses the newest intact one.
"""

from __future__ import annotations

import logging
import re
from pathlib import Path

from paper_lib.rundir import read_json, sha256_file, write_json

__all__ = ["SEAL", "seal", "is_intact", "latest_intact", "checkpoint_step"]

SEAL = "paper_lib_seal.json"
_CHECKPOINT = re.compile(r"^checkpoint-(\d+)$")
log = logging.getLogger(__name__)


def _files(ckpt: Path) -> list[Path]:
    return sorted(p for p in ckpt.rglob("*") if p.is_file() and p.name != SEAL and ".tmp" not in p.name)


def seal(ckpt: Path) -> None:
    """Record every file's size and sha256; call once the checkpoint is completely written."""
    files = {str(p.relative_to(ckpt)): [p.stat().st_size, sha256_file(p)] for p in _files(ckpt)}
    write_json(ckpt / SEAL, {"files": files})


def is_intact(ckpt: Path) -> bool:
    """True when the seal exists and every sealed file is present with the same size and hash."""
    try:
        sealed = read_json(ckpt / SEAL)["files"]
    except (OSError, ValueError, KeyError):
        return False
    for name, (size, digest) in sealed.items():
        p = ckpt / name
        if not p.is_file() or p.stat().st_size != size or sha256_file(p) != digest:
            return False
    return bool(sealed)


def checkpoint_step(ckpt: Path) -> int:
    m = _CHECKPOINT.match(ckpt.name)
    if not m:
        raise ValueError(f"not a checkpoint directory name: {ckpt.name!r}")
    return int(m.group(1))


def latest_intact(output_dir: Path) -> Path | None:
    """The newest intact ``checkpoint-N`` under ``output_dir``; newer broken ones are reported and skipped."""
    if not output_dir.is_dir():
        return None
    candidates = sorted((p for p in output_dir.iterdir() if _CHECKPOINT.match(p.name)), key=checkpoint_step)
    for ckpt in reversed(candidates):
        if is_intact(ckpt):
            return ckpt
        log.warning("checkpoint %s is incomplete or corrupt; falling back to the previous one", ckpt)
    return None
