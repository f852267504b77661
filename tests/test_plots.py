"""What a reader of the §3.2 figure needs to see: units, the sorted view on its own (rank) axis, the paper's line."""

import matplotlib

matplotlib.use("Agg")
import numpy as np  # noqa: E402
import pandas as pd  # noqa: E402

from paper_lib.figures.plots import fig_process_stats  # noqa: E402


def test_the_process_stats_figure_labels_units_ranks_and_the_papers_level():
    steps = np.arange(10)
    stats = pd.DataFrame({"group_size": 6, "step": steps, "depth_mean": 2 + np.sin(steps), "depth_median": 2.0,
                          "intermediate_mean": 0.1 + 0.01 * steps[::-1], "intermediate_median": 0.1})  # fmt: skip
    val = pd.DataFrame({"group_size": 6, "step": [0, 5, 9], "val/accuracy": [0.2, 0.4, 0.5]})
    fig = fig_process_stats(val, stats, caption="tiny-qwen2, lr 1e-4", n_items=100)
    main = fig.axes[:3]
    assert [ax.get_ylabel() for ax in main] == ["greedy accuracy on 100 items", "process steps per completion",
                                                "share of tokens with |λ| ≥ 2"]  # fmt: skip
    ranks = [ax for ax in fig.axes[3:] if "rank" in ax.get_xlabel()]
    assert len(ranks) == 2  # the sorted view of each statistic has its own axis, labelled as ranks
    dashed = [line for line in ranks[1].get_lines() if line.get_linestyle() == "--"]
    assert list(dashed[0].get_xdata()) == list(range(1, 11))  # x is the rank, not the step
    assert list(dashed[0].get_ydata()) == sorted(stats.intermediate_mean)  # the raw series, sorted
    assert 0.05 in [line.get_ydata()[0] for line in main[2].get_lines()]  # the paper's ≤ 0.05 is marked
    labels = [t.get_text() for t in main[2].get_legend().get_texts()]
    assert any("paper" in t for t in labels) and any("sorted" in t for t in labels)
    assert fig._suptitle.get_text() == "tiny-qwen2, lr 1e-4"
