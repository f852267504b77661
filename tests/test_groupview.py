"""The HTML view of a group shows the paper's Fig. 1 quantities."""

from paper_lib.figures.groupview import group_html, write_index
from paper_lib.groups import EXAMPLE_PRM_REWARDS, FIG1_GROUP


def test_group_page_has_the_tree_advantages_and_weights():
    page = group_html("?", list(FIG1_GROUP), list(EXAMPLE_PRM_REWARDS), "fig 1")
    assert "JKL  |λ|=3 [2, 3, 4]  R=0.33 A=-0.22" in page  # the project page's example, as the tree shows it
    assert "M  |λ|=1 [2]  R=1.00 A=+1.55" in page
    assert 'title="A=-0.22, |λ|=3, GRPO weight 1, λ-GRPO weight 0.33">J</span>' in page
    assert page.count("<tr>") == 1 + 1 + len(FIG1_GROUP)  # the legend, the header, one row per completion
    assert "colour = step advantage" in page and ">+1.55</td>" in page and ">-1.55</td>" in page  # ±vmax labelled


def test_the_index_links_every_page_by_its_title(tmp_path):
    pages = []
    for k in range(2):
        pages.append(tmp_path / f"g{k}.html")
        pages[-1].write_text(group_html("?", list(FIG1_GROUP), list(EXAMPLE_PRM_REWARDS), f"run/x, group {k}"))
    index = write_index(pages, tmp_path).read_text()
    assert '<a href="g0.html">run/x, group 0</a>' in index and '<a href="g1.html">run/x, group 1</a>' in index
