"""Figures and tables are written where the registry says, and byte-stable across reruns."""

import pandas as pd

from paper_lib.figures.plots import fig_example_prm
from paper_lib.groups import EXAMPLE_PRM_REWARDS, FIG1_GROUP
from paper_lib.paths import save_figure, save_table


def test_figures_are_byte_stable(tmp_path):
    first = [f.read_bytes() for f in save_figure(fig_example_prm(FIG1_GROUP, EXAMPLE_PRM_REWARDS), "fig_example_prm",
                                                 "smoke", tmp_path)]  # fmt: skip
    files = save_figure(fig_example_prm(FIG1_GROUP, EXAMPLE_PRM_REWARDS), "fig_example_prm", "smoke", tmp_path)
    assert [f.suffix for f in files] == [".pdf", ".png"]
    assert [f.read_bytes() for f in files] == first and all(len(b) > 1000 for b in first)


def test_tables_csv_and_markdown(tmp_path):
    df = pd.DataFrame({"setting": ["a", "|λ|"], "value": [1e-16, 0.25], "ok": [True, False]})
    csv, md = save_table(df, "table_theorem", "smoke", tmp_path, float_format="{:.3g}")
    assert pd.read_csv(csv).equals(df)
    assert md.read_text().splitlines() == ["| setting | value | ok |", "|---|---|---|", "| a | 1e-16 | True |",
                                           "| \\|λ\\| | 0.25 | False |"]  # fmt: skip
