"""Writing registered artifacts: figures as PDF + PNG and tables as CSV + Markdown, byte-stable across reruns."""

from __future__ import annotations

from pathlib import Path

from paper_lib.paths import artifact_files

__all__ = ["save_figure", "save_table", "markdown_table"]

_STABLE_METADATA = {".pdf": {"CreationDate": None, "ModDate": None}, ".png": {"Software": None}}


def save_figure(fig, key: str, scale: str, root: Path | str | None = None, dpi: int = 150) -> list[Path]:
    """Save a registered figure (PDF + PNG) with no timestamps in the files, so reruns give identical bytes."""
    files = artifact_files(key, scale, root)
    for f in files:
        f.parent.mkdir(parents=True, exist_ok=True)
        fig.savefig(f, dpi=dpi, bbox_inches="tight", metadata=_STABLE_METADATA[f.suffix])
    return files


def markdown_table(df, float_format: str = "{:.4g}") -> str:
    """A GitHub-flavoured Markdown table of a DataFrame (no extra dependency)."""

    def cell(v) -> str:
        text = float_format.format(v) if isinstance(v, float) else str(v)
        return text.replace("|", "\\|")  # a literal pipe (|λ|) would split the cell

    lines = ["| " + " | ".join(map(str, df.columns)) + " |", "|" + "---|" * len(df.columns)]
    lines += ["| " + " | ".join(cell(v) for v in row) + " |" for row in df.itertuples(index=False)]
    return "\n".join(lines) + "\n"


def save_table(df, key: str, scale: str, root: Path | str | None = None, float_format: str = "{:.4g}") -> list[Path]:
    """Save a registered table as CSV (full precision) and Markdown (``float_format``)."""
    csv, md = artifact_files(key, scale, root)
    csv.parent.mkdir(parents=True, exist_ok=True)
    df.to_csv(csv, index=False)
    md.write_text(markdown_table(df, float_format))
    return [csv, md]
