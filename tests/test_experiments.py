"""Experiment definitions: valid configs, the paper's settings where we keep them, unique run names."""

import pytest

from paper_lib.experiments import EXPERIMENTS, TOY_CONFIGS, experiment_runs, main
from paper_lib.paths import SCALES


@pytest.mark.parametrize("scale", SCALES)
@pytest.mark.parametrize("name", EXPERIMENTS)
def test_every_run_config_is_valid_and_uniquely_named(name, scale):
    runs = experiment_runs(name, scale)
    assert runs or (scale, name) == ("paper", "norm_ablation")  # not run at the paper scale by default
    assert len({n for n, _ in runs}) == len(runs)
    for run_name, cfg in runs:
        assert cfg.validate() is cfg and cfg.name == run_name


def test_toy_keeps_the_papers_design_at_small_scale():
    runs = [cfg for _, cfg in experiment_runs("toy", "small")]
    assert {(c.toy_n, c.toy_r_neg) for c in runs} == set(TOY_CONFIGS) and len(TOY_CONFIGS) == 6  # PAPER.md §4.3
    assert {c.group_size for c in runs} == {16} and {c.max_steps for c in runs} == {250}
    assert {c.seed for c in runs} == set(range(5))
    assert {c.method for c in runs} == {"grpo", "lambda_grpo", "scaled_grpo"}
    high = experiment_runs("toy_high_lr", "small")
    assert {c.learning_rate for _, c in high} == {5 * runs[0].learning_rate}  # the footnote's 5× rate


def test_training_arms_share_one_warm_start():
    runs = [cfg for _, cfg in experiment_runs("training", "small") + experiment_runs("process_sets", "small")]
    assert len({c.warm_start_key() for c in runs}) == 1
    assert {(c.beta, c.method) for _, c in experiment_runs("training", "small")} == {
        (b, m) for b in (0.0, 0.04) for m in ("grpo", "lambda_grpo")
    }


def test_unknown_experiment_and_list(capsys):
    with pytest.raises(ValueError, match="unknown experiment"):
        experiment_runs("chess", "small")
    assert main(["list", "--scale", "smoke", "--experiments", "process_sets"]) == 0
    assert capsys.readouterr().out.split() == ["process_sets/G6", "process_sets/G36"]
