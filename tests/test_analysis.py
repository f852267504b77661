"""Table 2 / Table 3 from run folders of both layouts (CPU scales and the paper scale), by hand-made numbers."""

import json
import re

import numpy as np
import pandas as pd
import pytest

from paper_lib.analysis.tables import downstream_frame, table2, table2_markdown, table3


def _write(path, obj):
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(obj))


def _sets(**acc):
    return {name: {"accuracy": a, "sem": 0.1, "n": 10, "engine": "hf"} for name, a in acc.items()}


@pytest.fixture
def paper_layout(tmp_path):
    """Two models, one β, one run per cell, as the paper: base_<model>/ and <run>/benchmarks/summary.json."""
    accs = {  # (model, method) -> (aime24, math500)
        ("qwen-1.5b", "base"): (0.2, 0.5), ("qwen-1.5b", "grpo"): (0.1, 0.6), ("qwen-1.5b", "lambda_grpo"): (0.3, 0.7),
        ("llama-1b", "base"): (0.0, 0.2), ("llama-1b", "grpo"): (0.1, 0.3), ("llama-1b", "lambda_grpo"): (0.0, 0.1),
    }  # fmt: skip
    for (model, method), (a, m) in accs.items():
        run = f"base_{model}" if method == "base" else f"{model}_b0_{method}"
        summary = _sets(aime24=a, math500=m) | {"average": {"accuracy": (a + m) / 2}}
        _write(tmp_path / run / "benchmarks" / "summary.json", summary)
        if method != "base":
            _write(tmp_path / run / "config.json", {"model": model, "method": method, "beta": 0.0, "seed": 0})
    return tmp_path


def test_paper_layout_tables_are_per_model(paper_layout):
    df = downstream_frame(paper_layout)
    assert len(df) == 6 * 3  # six evaluated models × (two benchmarks + the average)
    t2 = table2(df).set_index(["model", "version", "set"])
    assert t2.loc[("qwen-1.5b", "λ-GRPO", "aime24"), "colour"] == "green"  # 0.3 > GRPO 0.1 and > Base 0.2
    assert t2.loc[("llama-1b", "λ-GRPO", "math500"), "colour"] == "red"  # 0.1 < GRPO 0.3 and < Base 0.2
    assert t2.loc[("llama-1b", "Base", "average"), "mean"] == pytest.approx(0.1)
    t3 = table3(df).set_index(["model", "set"])
    assert t3.loc[("qwen-1.5b", "math500"), "lambda_minus_grpo"] == pytest.approx(0.1)
    assert t3.loc[("llama-1b", "aime24"), "lambda_minus_base"] == pytest.approx(0.0)
    assert np.isnan(t3.loc[("qwen-1.5b", "average"), "p_paired"])  # one run per cell: no test
    md = table2_markdown(table2(df))
    assert md.count("| qwen-1.5b |") == 3 and md.count("| llama-1b |") == 3


def test_cpu_layout_keeps_one_base_per_experiment(tmp_path):
    _write(tmp_path / "base_downstream.json", _sets(level1=0.5) | {"level1": {"accuracy": 0.5, "sem": 0.1, "n": 4,
                                                                               "correct": [1, 0, 1, 0]}})  # fmt: skip
    for seed, acc in ((0, 0.75), (1, 0.25)):
        run = tmp_path / f"b0_lambda_grpo_s{seed}"
        _write(run / "config.json", {"model": "tiny-qwen2", "method": "lambda_grpo", "beta": 0.0, "seed": seed})
        _write(run / "downstream.json", {"checkpoint_step": 10} | _sets(level1=acc))
    df = downstream_frame(tmp_path)
    assert set(df.model) == {"tiny-qwen2"} and set(df.version) == {"Base", "λ-GRPO"}
    lam = df[(df.version == "λ-GRPO") & (df.set == "level1")].sort_values("seed").accuracy.tolist()
    assert lam == [0.75, 0.25]


def _outcomes(freqs: dict):
    """Long per-seed outcomes: {(tier, n, r_neg, method): [freq per seed]} (seeds 0..k-1, one lr per method)."""
    import pandas as pd

    rows = [{"tier": t, "toy_n": n, "toy_r_neg": r, "label": m, "seed": s, "freq": f, "converged": f > 0.5,
             "learning_rate": 1e-4 if m == "GRPO" else 3e-4, "p0_target": 0.07}
            for (t, n, r, m), fs in freqs.items() for s, f in enumerate(fs)]  # fmt: skip
    return pd.DataFrame(rows)


def test_toy_comparison_and_verdict_follow_the_stated_rule():
    from paper_lib.analysis.tables import toy_comparison, toy_verdict
    from paper_lib.experiments.plan import TOY_CONFIGS as TOY_CONFIGS_FOR_TESTS

    strong = {("t", n, r, m): ([0.0] * 5 if m == "GRPO" else [0.9] * 4 + [0.1]) for n, r in TOY_CONFIGS_FOR_TESTS
              for m in ("GRPO", "λ-GRPO")}  # fmt: skip
    table = toy_comparison(_outcomes(strong))
    assert len(table) == 6 and list(table.delta) == pytest.approx([0.74] * 6) and (table.seeds == 5).all()
    assert list(table.p_perm) == pytest.approx([2 / 32] * 6)  # 5 pairs, all one way: the smallest attainable p
    assert (table.conv_lambda == 4).all() and (table.conv_grpo == 0).all()
    assert set(table.lr_grpo) == {1e-4} and set(table.lr_lambda) == {3e-4}  # each method at its own rate
    seeds = _outcomes(strong).pivot_table(index=["tier", "toy_n", "toy_r_neg", "seed"], columns="label",
                                           values="freq").reset_index()  # fmt: skip
    v = toy_verdict(table, seeds)
    assert v["verdict"] == "reproduced" and v["pairs"] == 30 and v["wins"] == 6 and v["p_perm"] < 1e-3
    # the same strong effect in only 4 of 6 configs: the direction holds pooled, not in every config
    partly = {k: (v_ if k[1:3] not in TOY_CONFIGS_FOR_TESTS[4:] else [0.0] * 5) for k, v_ in strong.items()}
    tp, sp = toy_comparison(_outcomes(partly)), _outcomes(partly).pivot_table(
        index=["tier", "toy_n", "toy_r_neg", "seed"], columns="label", values="freq").reset_index()  # fmt: skip
    vp = toy_verdict(tp, sp)
    assert vp["wins"] == 4 and vp["p_perm"] < 0.05 and vp["verdict"] == "reproduced"
    assert vp["verdict_as_first_stated"] == "inconclusive"  # the first rule asked for 5 of 6 configs
    # no difference at all, measured tightly: evidence against (the CI lies below the paper's mean Δ)
    null = {k: [0.3, 0.31, 0.29, 0.3, 0.3] for k in strong}
    t0 = toy_comparison(_outcomes(null))
    s0 = _outcomes(null).pivot_table(index=["tier", "toy_n", "toy_r_neg", "seed"], columns="label",
                                     values="freq").reset_index()  # fmt: skip
    assert toy_verdict(t0, s0)["verdict"] == "contradicted"
    # GRPO clearly higher: contradicted in direction
    reverse = {k: (v_ if k[3] == "λ-GRPO" else [0.9] * 5) for k, v_ in null.items()}
    tr = toy_comparison(_outcomes(reverse))
    sr = _outcomes(reverse).pivot_table(index=["tier", "toy_n", "toy_r_neg", "seed"], columns="label",
                                        values="freq").reset_index()  # fmt: skip
    vr = toy_verdict(tr, sr)
    assert vr["verdict"] == "contradicted" and vr["ci_high"] < 0
    # noisy and small (2 seeds per config): neither
    rng = __import__("numpy").random.default_rng(1)
    noisy = {k: list(rng.choice([0.0, 1.0], 2)) for k in strong}
    tn = toy_comparison(_outcomes(noisy))
    sn = _outcomes(noisy).pivot_table(index=["tier", "toy_n", "toy_r_neg", "seed"], columns="label",
                                      values="freq").reset_index()  # fmt: skip
    vn = toy_verdict(tn, sn)
    assert vn["verdict"] == "inconclusive" and vn["mde"] > 0.2


def test_a_pair_trained_on_two_cpus_stays_one_pair():
    """The two runs of a (config, seed) pair share the target; P(target) computed on two CPUs differs by round-off,
    which must not split them into two unpaired rows (it did: 20 of 21 SmolLM2 pairs were counted)."""
    import pandas as pd

    from paper_lib.analysis.tables import toy_seed_table

    cell = {"tier": "t", "toy_n": 1, "toy_r_neg": -1.0}
    outcomes = pd.DataFrame([
        cell | {"seed": 2, "label": "GRPO", "freq": 0.9, "p0_target": 0.10686372},
        cell | {"seed": 2, "label": "λ-GRPO", "freq": 1.0, "p0_target": 0.10686362},
        cell | {"seed": 3, "label": "GRPO", "freq": 0.0, "p0_target": 0.2},
    ])  # fmt: skip
    seeds = toy_seed_table(outcomes)
    assert list(seeds.columns) == ["tier", "toy_n", "toy_r_neg", "seed", "p0_target", "GRPO", "λ-GRPO"]
    assert len(seeds) == 2 and seeds.loc[0, "GRPO"] == 0.9 and seeds.loc[0, "λ-GRPO"] == 1.0
    assert abs(seeds.loc[0, "p0_target"] - 0.10686367) < 1e-12 and pd.isna(seeds.loc[1, "λ-GRPO"])


def test_the_report_links_its_figures_tables_and_group_views(tmp_path):
    from paper_lib.analysis.report import write_report
    from paper_lib.paths import artifact_files

    for key in ("fig_target_freq", "table_smollm2_overlap"):  # one figure, one table the report does not parse
        for f in artifact_files(key, "smoke", tmp_path):
            f.parent.mkdir(parents=True, exist_ok=True)
            f.write_text("x")
    (tmp_path / "groups").mkdir()
    (tmp_path / "groups" / "index.html").write_text("<ul></ul>")
    report = write_report("smoke", tmp_path)
    links = re.findall(r"\]\(([^)]+)\)", report.read_text())
    assert "figures/fig_target_freq.png" in links and "tables/table_smollm2_overlap.md" in links
    assert "groups/index.html" in links and all((report.parent / link).is_file() for link in links)


def test_each_method_is_tested_against_the_base_item_by_item(tmp_path):
    """The base is measured on the same items as the runs, so the test against it pairs items (sign flips over the
    per-item difference of the seed-averaged score and the base's), hand-worked here; both methods are counted."""
    from paper_lib.analysis.tables import win_table

    def items(name, correct):
        return {name: {"accuracy": float(np.mean(correct)), "sem": 0.1, "n": len(correct), "correct": correct}}

    _write(tmp_path / "base_downstream.json", items("level1", [0] * 12) | items("level2", [1] * 12))
    for method, per_seed in (("lambda_grpo", ([1] * 12, [1] * 12)), ("grpo", ([1] * 6 + [0] * 6,) * 2)):
        for seed, c in enumerate(per_seed):
            run = tmp_path / f"b0_{method}_s{seed}"
            _write(run / "config.json", {"model": "tiny-qwen2", "method": method, "beta": 0.0, "seed": seed})
            _write(run / "downstream.json", {"checkpoint_step": 10} | items("level1", c) | items("level2", [1] * 12))
    t3 = table3(downstream_frame(tmp_path)).set_index("set")
    assert t3.loc["level1", "lambda_minus_base"] == 1.0 and t3.loc["level1", "grpo_minus_base"] == 0.5
    assert t3.loc["level1", "p_lambda_vs_base"] == pytest.approx(2 / 2**12)  # 12 items, all +1
    assert t3.loc["level1", "p_grpo_vs_base"] == pytest.approx(2 / 2**6)  # 6 items +1, 6 items 0
    assert np.isnan(t3.loc["level2", "p_lambda_vs_base"])  # no item differs: undefined
    assert np.isnan(t3.loc["level1", "p_paired"])  # λ − GRPO is 0.5 on both seeds: no spread, no t-test
    # the average pools the items of both sets: 12 items at +1 and 12 at 0 (24 > 20 pairs: random flips, ± ~5%)
    assert t3.loc["average", "p_lambda_vs_base"] == pytest.approx(2 / 2**12, rel=0.15)
    wins = win_table(t3.reset_index()).set_index("comparison")
    assert wins.loc["vs_base", "wins"] == 1 and wins.loc["grpo_vs_base", "wins"] == 1
    assert wins.loc["vs_base", "ties"] == 1 and tuple(wins.loc["grpo_vs_base", ["paper_wins", "paper_cells"]]) == (
        9,
        20,
    )


def test_the_papers_win_counts_follow_from_its_table2_cells():
    from paper_lib.analysis.paper_numbers import TABLE2, TABLE2_CELLS, WINS

    assert WINS["vs_grpo"] == (15, 20) and WINS["vs_base"] == (14, 20)  # as docs/paper.md §5.3 states them
    for (model, beta, version), cells in TABLE2_CELLS.items():  # the cells average to the typed Avg. column
        avg = TABLE2[(model, beta)][version]
        assert np.mean(cells) == pytest.approx(avg, abs=1.5e-4)


def test_peak_claims_pair_seeds_on_smoothed_peaks():
    import pandas as pd

    from paper_lib.analysis.tables import peak_claims, peaks_table

    rows = []
    for seed in range(4):
        for label, curve in (("GRPO", [0.2, 0.3, 0.4, 0.5, 0.5, 0.4]), ("λ-GRPO", [0.2, 0.6, 0.7, 0.6, 0.5, 0.5])):
            shifted = [a + 0.01 * seed for a in curve]
            rows += [{"run": f"{label}{seed}", "model": "m", "label": label, "beta": 0.0, "seed": seed,
                      "loss_type": "dapo", "step": 10 * k, "val/accuracy": a}
                     for k, a in enumerate(shifted)]  # fmt: skip
    peaks = peaks_table(pd.DataFrame(rows), n_items=100)
    grpo = peaks[peaks.method == "GRPO"].iloc[0]
    assert grpo.peak_accuracy == 0.5 and grpo.peak_step == 30 and grpo.smoothed_step == 30  # ties: the first
    assert grpo.smoothed_peak == pytest.approx((0.4 + 0.5 + 0.5) / 3)
    assert grpo.eval_se == pytest.approx(0.05) and grpo.selection_bias == pytest.approx(0.05 * 1.2672, rel=1e-3)
    c = peak_claims(peaks).iloc[0]
    assert c.seeds == 4 and c.seeds_lambda_higher == 4 and c.higher == "reproduced"
    assert c.abs_improvement == pytest.approx(0.6333 - 0.4667, abs=1e-3)  # every seed: the same difference
    assert c.gain_10pct == "reproduced"
    assert c.lambda_peak_step == 20 and c.grpo_peak_step == 30 and c.step_ratio == pytest.approx(2 / 3)
    assert c.step_margin == -5 and c.half_the_steps == "contradicted"  # ½·30 − 20 < 0 on every seed


def test_every_committed_verdict_is_one_of_three():
    """The committed small-scale artifacts give a REPORT whose verdicts are reproduced / contradicted /
    inconclusive only; controls have no verdict."""
    from paper_lib.analysis.report import claims, controls
    from paper_lib.analysis.verdicts import VERDICTS
    from paper_lib.paths import results_dir

    table = claims("small", results_dir("small"))
    assert len(table) >= 10 and set(table.verdict) <= set(VERDICTS)
    assert "verdict" not in controls("small", results_dir("small"))


def test_the_footnote_is_judged_on_the_mean_over_seeds(tmp_path):
    """'Neither method converged in any configuration': each method's mean frequency stays below 0.5; one
    converged seed of many does not contradict it, a method whose CI lies above 0.5 does."""
    import pandas as pd

    from paper_lib.analysis.report import _toy_footnote
    from paper_lib.paths import artifact_path

    def rates(grpo, lam):
        path = artifact_path("table_toy_rates", "smoke", tmp_path)
        path.parent.mkdir(parents=True, exist_ok=True)
        rows = [{"tier": "t", "lr": 5e-5, "method": m, "mean": v[0], "ci_low": v[1], "ci_high": v[2],
                 "converged": v[3], "seeds": 30} for m, v in (("GRPO", grpo), ("λ-GRPO", lam))]  # fmt: skip
        pd.DataFrame(rows).to_csv(path, index=False)
        return _toy_footnote("smoke", tmp_path)[0]["verdict"]

    assert rates((0.05, 0.0, 0.12, 1), (0.02, 0.0, 0.05, 0)) == "reproduced"  # 1 of 30 seeds converged
    assert rates((0.05, 0.0, 0.12, 1), (0.8, 0.6, 0.95, 25)) == "contradicted"
    assert rates((0.05, 0.0, 0.12, 1), (0.45, 0.3, 0.6, 12)) == "inconclusive"


def test_table_power_puts_the_mde_beside_the_papers_effect(tmp_path):
    import pandas as pd

    from paper_lib.analysis.power import POWER_COLUMNS, power_table
    from paper_lib.paths import artifact_path

    path = artifact_path("table3_differences", "smoke", tmp_path)
    path.parent.mkdir(parents=True)
    pd.DataFrame([{"model": "tiny-qwen2", "beta": 0.0, "set": "average", "seeds": 10, "grpo": 0.40,
                   "lambda_grpo": 0.45, "lambda_minus_grpo": 0.05, "ci_low": 0.02, "ci_high": 0.08, "mde": 0.03,
                   "base": 0.25}]).to_csv(path, index=False)  # fmt: skip
    t = power_table("smoke", tmp_path)
    assert list(t.columns) == POWER_COLUMNS and len(t) == 1
    r = t.iloc[0]
    assert r.rl_gain == pytest.approx(0.15) and r.headroom == pytest.approx(5.0)
    assert r.paper_effect == pytest.approx((0.5576 / 0.4837 - 1) * 0.40)  # the paper's +15.3%, at our GRPO score
    assert r.detects_paper_effect and r.mde_share == pytest.approx(0.075)


def test_the_report_tests_whether_sharing_grows_over_the_grpo_runs(tmp_path):
    from paper_lib.analysis.report import claims
    from paper_lib.paths import artifact_path

    def row(k, rise, method="GRPO"):
        return {"run": f"{method}{k}", "method": method, "beta": 0.0, "seed": k, "intermediate_start": 0.1,
                "intermediate_end": 0.1 + rise, "depth_start": 2.0, "depth_end": 2.0 + 3 * rise}  # fmt: skip

    def verdict(rows):
        pd.DataFrame(rows).to_csv(path, index=False)
        return claims("smoke", tmp_path).set_index("claim").filter(like="sharing grows", axis=0).iloc[0]

    path = artifact_path("table_overlap_growth", "smoke", tmp_path)
    path.parent.mkdir(parents=True)
    rows = [row(k, d) for k, d in enumerate([0.10, 0.12, 0.08, 0.15])] + [row(0, -0.1, "λ-GRPO")]  # λ: not tested
    found = verdict(rows)  # every GRPO run shares more at the end: the rise's CI lies above 0
    assert found.verdict == "reproduced" and "4 GRPO training runs" in found.ours
    assert "rise +0.112 [+0.065, +0.160] over 4 runs" in found.ours
    flat = [r | {"depth_end": 2.0 - (k % 2)} for k, r in enumerate(rows)]  # depth level or falling: no evidence
    assert verdict(flat).verdict == "inconclusive"
