"""The stand-in's design analysis (analysis.design) on hand-made run folders and hand-worked power figures."""

import json
import math

import numpy as np
import pytest

from paper_lib.analysis.design import mde_for_seeds, pick_warm_start, pilot_table, seeds_for_power, warm_start_check
from paper_lib.analysis.stats import mde_paired
from paper_lib.training.config import RunConfig


def _write(path, obj):
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(obj))


def _pilot(root, warm_start, intermediate, base, final, method="grpo"):
    """A finished run: 4 RL steps whose intermediate proportion goes from ``intermediate[0]`` to ``[1]``."""
    cfg = RunConfig(name=f"pilot_ws{warm_start}", task="sums", method=method, seed=100, warm_start_steps=warm_start)
    run = root / cfg.name
    _write(run / "config.json", cfg.to_dict())
    _write(run / "manifest.json", {"status": "finished"})
    steps = [{"step": s, "loss": 0.0, "reward": 0.1 * s, "process/intermediate_mean": x, "process/depth_mean": 1 + s}
             for s, x in zip(range(1, 5), np.linspace(*intermediate, 4))]  # fmt: skip
    val = [{"step": 2, "val/accuracy": 0.3}, {"step": 4, "val/accuracy": 0.5}]
    (run / "metrics.jsonl").write_text("\n".join(json.dumps(r) for r in steps + val))
    sets = lambda a: {f"level{k}": {"accuracy": a[k - 1], "sem": 0.0, "n": 1} for k in (1, 2)}  # noqa: E731
    _write(run / "downstream.json", {"checkpoint_step": 4} | sets(final))
    shared = root / "base_downstream.json"
    base_file = run / "base_downstream.json" if shared.is_file() else shared
    _write(base_file, {"warm_start_key": cfg.warm_start_key()} | sets(base))


def test_pilot_table_reads_each_run_against_its_own_warm_start(tmp_path):
    _pilot(tmp_path, 1000, (0.1, 0.2), base=(0.0, 0.1), final=(0.1, 0.1))
    _pilot(tmp_path, 3000, (0.5, 0.6), base=(0.6, 0.8), final=(0.9, 0.9))
    _pilot(tmp_path, 2000, (0.2, 0.4), base=(0.2, 0.4), final=(0.5, 0.5))
    t = pilot_table(tmp_path, window=2).set_index("warm_start_steps")
    assert list(t.index) == [1000, 2000, 3000]
    assert t.loc[2000, "base"] == pytest.approx(0.3) and t.loc[2000, "gain"] == pytest.approx(0.2)
    assert t.loc[3000, "base"] == pytest.approx(0.7) and t.loc[3000, "gain"] == pytest.approx(0.2)
    assert t.loc[1000, "intermediate_start"] == pytest.approx(0.1 + 0.1 / 6)  # the mean of the first two steps
    assert t.loc[1000, "depth_end"] == pytest.approx(4.5) and t.loc[1000, "best_validation"] == 0.5
    # 3000 gains as much as 2000 but its groups share from the start: the rule takes 2000
    assert pick_warm_start(t.reset_index(), seed=100) == 2000
    with pytest.raises(ValueError, match="no pilot on seed 7"):
        pick_warm_start(t.reset_index(), seed=7)


def test_the_design_reads_grpo_runs_only(tmp_path):
    _pilot(tmp_path, 1000, (0.1, 0.2), base=(0.0, 0.1), final=(0.1, 0.1), method="lambda_grpo")
    with pytest.raises(ValueError, match="GRPO runs only, not lambda_grpo"):
        pilot_table(tmp_path)


def test_the_seed_mde_is_the_paired_mde_of_independent_methods():
    sd = 0.03
    differences = np.array([1.0, -1.0] * 6) * sd * math.sqrt(2) * math.sqrt(11 / 12)  # sample sd √2·sd
    assert np.std(differences, ddof=1) == pytest.approx(math.sqrt(2) * sd)
    assert mde_for_seeds(sd, 12) == pytest.approx(mde_paired(differences))
    assert mde_for_seeds(sd, 12) == pytest.approx(2.8016 * math.sqrt(2) * sd / math.sqrt(12), rel=1e-4)


def test_power_analysis_picks_the_fewest_seeds_that_meet_both_figures():
    scores = [0.44, 0.46, 0.48, 0.50, 0.52]  # sd 0.0316, mean 0.48: (2.8·√2·0.0316 / 0.024)² = 27.2 → 28 seeds
    p = seeds_for_power(scores, base=0.30)
    need = min(0.05 * 0.48, 0.18 / 3)
    assert p["mde_needed"] == pytest.approx(need) and p["rl_gain"] == pytest.approx(0.18)
    n = p["seeds"]
    assert mde_for_seeds(p["sd"], n) <= need < mde_for_seeds(p["sd"], n - 1)
    assert n == 28 == math.ceil((2.8016 * math.sqrt(2) * np.std(scores, ddof=1) / need) ** 2)
    assert seeds_for_power([0.5, 0.5, 0.5], base=0.2)["seeds"] == 10  # no spread: the floor of 10
    assert seeds_for_power(scores, base=0.47)["seeds"] is None  # gain 0.01: no count up to 40 is enough
    with pytest.raises(ValueError, match="at least 2 GRPO seeds"):
        seeds_for_power([0.5], base=0.2)


def test_the_committed_design_runs_give_the_plans_warm_start_and_seed_count():
    """The plan's constants are the rule's answers on the committed GRPO design runs, not typed-in choices."""
    from pathlib import Path

    from paper_lib.experiments.plan import SUMS_PILOT_SEED, SUMS_SEEDS, SUMS_WARM_START, design_power_runs

    pilots = pilot_table(Path(__file__).resolve().parents[1] / "results/small/runs/design")
    assert pick_warm_start(pilots, SUMS_PILOT_SEED) == SUMS_WARM_START
    at_design = pilots[pilots.run.isin(design_power_runs("small"))]
    assert len(at_design) == 5 and set(at_design.warm_start_steps) == {SUMS_WARM_START}
    assert seeds_for_power(at_design.grpo, at_design.base.mean())["seeds"] == len(SUMS_SEEDS)


def test_the_warm_start_check_tells_the_same_configuration_trained_elsewhere_from_the_design_s_model(tmp_path):
    """The design measured one model; runs whose warm start has its key but other held-out items (the same
    configuration trained with other CPU kernels) are flagged, and runs of an unmeasured warm start give None."""
    design, training = tmp_path / "design", tmp_path / "training"
    key = {"warm_start_key": "sums-k"}
    level = lambda correct: {"accuracy": float(np.mean(correct)), "sem": 0.0, "n": 4, "correct": correct}  # noqa: E731
    _write(design / "pilot_ws1" / "base_downstream.json", {"warm_start_key": "sums-other", "level1": level([0] * 4)})
    _write(design / "pilot_ws2" / "base_downstream.json", key | {"level1": level([1, 1, 0, 0])})
    _write(training / "base_downstream.json", key | {"level1": level([1, 1, 0, 0])})
    assert warm_start_check(design, training) == {"warm_start_key": "sums-k", "design": 0.5, "runs": 0.5,
                                                  "identical": True}  # fmt: skip
    _write(training / "base_downstream.json", key | {"level1": level([0, 1, 1, 0])})  # same accuracy, other items
    assert warm_start_check(design, training)["identical"] is False
    _write(training / "base_downstream.json", {"warm_start_key": "sums-new", "level1": level([1, 1, 0, 0])})
    assert warm_start_check(design, training) is None
    assert warm_start_check(design, tmp_path / "absent") is None
