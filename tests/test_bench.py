"""The overhead benchmark (notebook 06): rollouts, kernel timing (bench), step timing (bench_steps), the table and
the figure."""

import math

import pandas as pd
import pytest
import torch

from paper_lib.bench import kernel as bench
from paper_lib.bench import steps as bench_steps
from paper_lib.reference import authors_lambda_weights
from paper_lib.tree import group_statistics
from paper_lib.trie import check_group, lambda_weights

COLUMNS = ["measure", "setting", "ours", "reference", "ratio", "paper", "note"]


def test_realistic_group_is_seeded_right_padded_and_shares_an_opening():
    ids, mask = bench.realistic_group(8, seed=3)
    again = bench.realistic_group(8, seed=3)
    assert torch.equal(ids, again[0]) and torch.equal(mask, again[1])
    assert not torch.equal(ids, bench.realistic_group(8, seed=4)[0])
    lengths = check_group(ids, mask)  # right padding, 0/1
    assert 1000 < float(lengths.float().mean()) < 3000 and ids.shape[1] == int(lengths.max())
    opening = int(0.3 * 2048)
    assert (ids[:, :opening] == ids[0, :opening]).all()  # the whole group shares the opening
    assert 0.3 < float(group_statistics(ids, mask)["shared_token_frac"]) < 1.0
    assert int(ids.max()) < 50_000


def test_compare_kernels_times_each_function_per_token():
    groups = [bench.realistic_group(4, seed=k, mean_len=64, len_sd=8) for k in range(2)]
    fns = {"ours": lambda_weights, "authors": authors_lambda_weights}
    s = bench.compare_kernels(fns, groups, repeats=3, block_seconds=0.002)
    assert set(s) == {"ours", "authors"} and all(0 < v < 1e-3 for v in s.values())
    assert 0 < bench.kernel_seconds_per_token(lambda_weights, G=3, T=32, repeats=2, n_groups=1) < 1e-3


def test_kernel_table_columns_and_paper_numbers():
    cfg = bench.BenchConfig(kernel_groups=1, kernel_repeats=1, block_seconds=0.001, prompt_len=4)
    table = bench.kernel_table(cfg, sizes=(6, 5), T=48)
    assert list(table.columns) == COLUMNS and table.setting.tolist() == ["G=6", "G=5"]
    assert table.paper.iloc[0] == 1.19e-7 and math.isnan(table.paper.iloc[1])  # the paper's, labelled; none at 5
    assert (table.ratio == table.reference / table.ours).all() and "Intel i7" in table.note.iloc[0]


def _fake_steps(model="tiny-qwen2"):
    rows = []
    for method, scale in (("grpo", 1.0), ("lambda_grpo", 1.01)):
        for r in range(2):
            parts = {name: 0.01 * scale * (k + 1) for k, name in enumerate(bench_steps.SECTIONS)}
            rows.append({"model": model, "method": method, "round": r, "total": sum(parts.values()), **parts})
    return pd.DataFrame(rows)


def test_overhead_table_breakdown_and_figure(tmp_path):
    kernels = bench.kernel_table(bench.BenchConfig(1, 1, 0.001, 4), sizes=(3,), T=16)
    table = bench.overhead_table(kernels, _fake_steps(), {"smollm2-135m": "skipped at scale 'smoke'"})
    assert list(table.columns) == COLUMNS and len(table) == 3
    step = table[table.setting == "tiny-qwen2"].iloc[0]
    assert step.ratio == pytest.approx(1.01) and "λ weights + group stats" in step.note
    assert math.isnan(table[table.setting == "smollm2-135m"].ratio.iloc[0])
    parts = bench_steps.breakdown(_fake_steps())
    assert parts.index.tolist() == ["GRPO", "λ-GRPO"] and list(parts.columns) == [*bench_steps.SECTIONS, "total"]
    files = bench.save_bench({"table": table, "breakdown": parts}, "smoke", tmp_path)
    assert [f.name for f in files] == [
        "table_overhead.csv", "table_overhead.md", "fig_step_breakdown.pdf", "fig_step_breakdown.png",
    ]  # fmt: skip
    assert all(f.stat().st_size > 0 for f in files)


def test_step_times_on_the_tiny_model(tmp_path):
    steps = bench_steps.step_times("tiny-qwen2", rounds=1, steps_per_round=3, cache=tmp_path / "cache")
    assert "logical CPUs" in bench.machine()
    assert list(steps.columns) == ["model", "method", "round", "total", *bench_steps.SECTIONS]
    assert sorted(steps.method) == ["grpo", "lambda_grpo"]  # one recorded step each
    assert (steps[list(bench_steps.SECTIONS[:-1])] >= 0).all().all() and (steps.total > 0).all()
    assert (steps["generation"] > 0).all() and (steps[bench_steps.WEIGHTS] > 0).all()
    assert (steps[list(bench_steps.SECTIONS)].sum(axis=1) - steps.total).abs().max() < 1e-9
    table = bench_steps.step_table(steps)
    assert list(table.columns) == COLUMNS and table.ratio.iloc[0] > 0


def test_bench_config_scales():
    assert not bench.bench_config("smoke").smollm2 and bench.bench_config("small").smollm2
    assert bench.step_times is bench_steps.step_times and bench.breakdown is bench_steps.breakdown  # notebook 06
    with pytest.raises(ValueError, match="scale"):
        bench.bench_config("huge")
