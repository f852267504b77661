"""Look at one real logged group the way the paper's Fig. 1 does, as a self-contained HTML page.

The page shows the tree B(G) with each process step's step reward R and step advantage A, then every completion
with its characters coloured by their step advantage, and beside it GRPO's per-token weight (always 1, so a step
shared by |λ| completions is pushed |λ| times) against λ-GRPO's (1/|λ|, each step pushed once).
"""

from __future__ import annotations

import html
import json
import math
from pathlib import Path

import matplotlib
import torch

from paper_lib.figures.plots import ADVANTAGE_CMAP
from paper_lib.prm import step_advantages, step_rewards
from paper_lib.tree import ProcessTree, node_values
from paper_lib.trie import process_set_sizes

__all__ = ["group_html", "dump_groups", "completion_dumps", "export_groups", "write_index"]


def _tensors(completions: list[str]) -> tuple[torch.Tensor, torch.Tensor]:
    T = max((len(c) for c in completions), default=0)
    ids = torch.zeros(len(completions), max(T, 1), dtype=torch.long)
    mask = torch.zeros_like(ids)
    for i, c in enumerate(completions):
        ids[i, : len(c)] = torch.tensor([ord(ch) for ch in c], dtype=torch.long)
        mask[i, : len(c)] = 1
    return ids, mask


def _colour(a: float, vmax: float) -> str:
    r, g, b, _ = matplotlib.colormaps[ADVANTAGE_CMAP](0.5 + 0.5 * max(-1.0, min(1.0, a / (2 * vmax))))
    return f"rgb({int(255 * r)},{int(255 * g)},{int(255 * b)})"


def group_html(prompt: str, completions: list[str], rewards: list[float], title: str) -> str:
    """One group (character tokens) as an HTML page: the tree with R and A, then coloured completions."""
    ids, mask = _tensors(completions)
    r = torch.tensor(rewards, dtype=torch.float64)
    R, A, sizes = step_rewards(ids, mask, r), step_advantages(ids, mask, r), process_set_sizes(ids, mask)
    tree = ProcessTree.from_tensors(ids, mask)
    Rv, Av = node_values(tree, R), node_values(tree, A)
    decode = lambda toks: "".join(map(chr, toks))  # noqa: E731
    note = lambda n: "" if math.isnan(Av[n.index]) else f"R={Rv[n.index]:.2f} A={Av[n.index]:+.2f}"  # noqa: E731
    vmax = float(A[mask.bool()].abs().max()) if mask.any() else 1.0
    rows = []
    for i, c in enumerate(completions):
        spans = "".join(
            f'<span style="background:{_colour(float(A[i, t]), vmax or 1.0)}" title="A={float(A[i, t]):+.2f}, '
            f'|λ|={int(sizes[i, t])}, GRPO weight 1, λ-GRPO weight {1 / int(sizes[i, t]):.2f}">'
            f"{html.escape(ch)}</span>"
            for t, ch in enumerate(c)
        )
        weights = " ".join(f"{1 / int(sizes[i, t]):.2f}" for t in range(len(c)))
        rows.append(f"<tr><td>{rewards[i]:g}</td><td class=t>{spans}</td><td class=w>{weights}</td></tr>")
    return (
        f"<!doctype html><meta charset=utf-8><title>{html.escape(title)}</title>"
        "<style>body{font-family:sans-serif}.t{font-family:monospace;font-size:15px}.w{font-size:11px;color:#555}"
        "td{padding:2px 8px}pre{background:#f6f6f6;padding:8px}</style>"
        f"<h3>{html.escape(title)}</h3><p>prompt <code>{html.escape(prompt)}</code>; rewards mean {r.mean():.3f}, "
        f"sample std {r.std():.3f}</p><pre>{html.escape(tree.render(decode, note))}</pre>"
        + _legend(vmax or 1.0)
        + "<table><tr><th>reward</th><th>completion, coloured by step advantage (hover: |λ| and weights)</th>"
        "<th>λ-GRPO weight per token (GRPO: all 1)</th></tr>" + "".join(rows) + "</table>"
    )


def _legend(vmax: float) -> str:
    """The colour scale of the completions: step advantage from −2·vmax to +2·vmax (clipped beyond)."""
    stops = [-2 * vmax + k * vmax for k in range(5)]
    cells = "".join(f'<td style="background:{_colour(a, vmax)};width:64px;text-align:center">{a:+.2f}</td>'
                    for a in stops)  # fmt: skip
    return f"<p>colour = step advantage A of the token's process step:</p><table><tr>{cells}</tr></table>"


def write_index(pages: list[Path], out_dir: Path) -> Path:
    """``out_dir/index.html``: one link per group page, with its title, and what the pages show."""
    items = "".join(f'<li><a href="{html.escape(p.name)}">{html.escape(_title(p))}</a></li>' for p in pages)
    page = ("<!doctype html><meta charset=utf-8><title>Logged groups</title><style>body{font-family:sans-serif}"
            "</style><h3>Logged groups, drawn as the paper's Fig. 1</h3><p>Each page shows one group: the tree "
            "B(G) with each process step's step reward R and step advantage A, then every completion coloured by "
            "its tokens' step advantage, and λ-GRPO's per-token weight 1/|λ| (GRPO's is 1 everywhere).</p>"
            f"<ul>{items}</ul>")  # fmt: skip
    out = Path(out_dir) / "index.html"
    out.write_text(page)
    return out


def _title(page: Path) -> str:
    text = page.read_text()
    return text.split("<title>", 1)[1].split("</title>", 1)[0] if "<title>" in text else page.stem


def _reward_key(row: dict) -> str:
    keys = sorted(set(row) - {"step", "prompt", "completion", "advantage"})
    if len(keys) != 1:
        raise ValueError(f"cannot tell the reward column among {keys}; pass reward_key=")
    return keys[0]


def dump_groups(dump: Path) -> list[list[dict]]:
    """The groups of one completion dump (``completions/step_*.jsonl``), in the order their prompts first appear:
    each a list of rows (``step``, ``prompt``, ``completion``, the reward, ``advantage``)."""
    rows = [json.loads(line) for line in Path(dump).read_text().splitlines() if line.strip()]
    return [[r for r in rows if r["prompt"] == p] for p in dict.fromkeys(r["prompt"] for r in rows)]


def completion_dumps(run_dir: Path) -> list[Path]:
    """A run's completion dumps in step order."""
    return sorted((Path(run_dir) / "completions").glob("step_*.jsonl"))  # step_000050.jsonl, …


def export_groups(run_dir: Path, out_dir: Path, reward_key: str | None = None, max_groups: int = 2) -> list[Path]:
    """Write the first ``max_groups`` groups of the run's first and last completion dumps as HTML pages.

    ``reward_key``: the dump's reward column (the reward function's name); None finds the only one.
    """
    dumps = completion_dumps(run_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    written = []
    for dump in dumps[:1] + dumps[-1:]:
        for k, group in enumerate(dump_groups(dump)[:max_groups]):
            p = group[0]["prompt"]
            title = f"{Path(run_dir).parent.name}/{Path(run_dir).name}, step {group[0]['step']}, group {k}"
            key = reward_key or _reward_key(group[0])
            page = group_html(p, [r["completion"] for r in group], [r[key] for r in group], title)
            path = out_dir / f"{Path(run_dir).parent.name}_{Path(run_dir).name}_step{group[0]['step']}_g{k}.html"
            path.write_text(page)
            written.append(path)
    return written
