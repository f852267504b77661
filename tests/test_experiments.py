"""Experiment definitions: valid configs, the paper's settings where we keep them, unique run names."""

import json

import pytest

from paper_lib.experiments.plan import (
    EXPERIMENTS,
    TOY_CONFIGS,
    TOY_RATES,
    best_toy_rates,
    experiment_runs,
    runs_root,  # fmt: skip
)
from paper_lib.experiments.runner import main
from paper_lib.paths import SCALES

_EMPTY = {("paper", "norm_ablation"), ("paper", "toy_best"), ("paper", "design"), ("paper", "toy_ablation"),
          ("paper", "toy_lm"),
          ("small", "toy_high_lr"), ("smoke", "toy_high_lr")}  # fmt: skip


@pytest.mark.parametrize("scale", SCALES)
@pytest.mark.parametrize("name", [e for e in EXPERIMENTS if e != "toy_best"])
def test_every_run_config_is_valid_and_uniquely_named(name, scale):
    runs = experiment_runs(name, scale)
    assert runs or (scale, name) in _EMPTY  # not run at that scale (the sweeps cover it, or SET=… runs it)
    assert len({n for n, _ in runs}) == len(runs)
    for run_name, cfg in runs:
        assert cfg.validate() is cfg and cfg.name == run_name


def test_toy_keeps_the_papers_design_at_small_scale():
    runs = [cfg for _, cfg in experiment_runs("toy", "small")]
    assert {(c.toy_n, c.toy_r_neg) for c in runs} == set(TOY_CONFIGS) and len(TOY_CONFIGS) == 6  # docs/paper.md §4.3
    assert {c.group_size for c in runs} == {16} and {c.max_steps for c in runs} == {250}
    assert {c.seed for c in runs} == set(range(10)) and {c.method for c in runs} == {"grpo", "lambda_grpo"}
    rates = sorted({c.learning_rate for c in runs})
    assert len(rates) >= 3 and rates[-1] / rates[0] >= 30  # the sweep: >= 3 rates over >= 30x
    assert {(c.temperature, c.max_grad_norm, c.toy_mask) for c in runs} == {(0.75, 0.0, "policy")}
    assert len(runs) == 6 * 2 * len(rates) * 10
    lm = [cfg for _, cfg in experiment_runs("toy_lm", "small")]
    assert {c.model for c in lm} == {"smollm2-135m"}
    assert {c.learning_rate for c in lm} == set(TOY_RATES["smollm2-135m"])
    at_paper_rate = [c for c in lm if c.learning_rate == 1e-5]  # docs/paper.md §4.3: 6 configs x 2 methods x 5 seeds
    assert len(at_paper_rate) == 60 and {(c.toy_n, c.toy_r_neg) for c in at_paper_rate} == set(TOY_CONFIGS)
    other = [c for c in lm if c.learning_rate != 1e-5]
    assert {(c.toy_n, c.toy_r_neg) for c in other} == {(1, -1.0)} and len(other) == 3 * 2 * 5
    ablation = [cfg for _, cfg in experiment_runs("toy_ablation", "small")]
    assert {c.toy_mask for c in ablation} == {"sampling_only"} and len(ablation) == len(rates) * 2 * 10


def _finish(run_dir, freqs):
    run_dir.mkdir(parents=True)
    (run_dir / "manifest.json").write_text(json.dumps({"status": "finished"}))
    rows = [{"step": s + 1, "target_frequency": f} for s, f in enumerate(freqs)]
    (run_dir / "metrics.jsonl").write_text("".join(json.dumps(r) + "\n" for r in rows))


def test_toy_best_takes_each_methods_best_sweep_rate_on_fresh_seeds(tmp_path):
    sweep = experiment_runs("toy", "smoke")
    with pytest.raises(ValueError, match="needs the finished toy sweep; 8 of 8"):
        experiment_runs("toy_best", "smoke", root=tmp_path)
    root = runs_root("smoke", tmp_path) / "toy"
    for name, cfg in sweep:  # GRPO is best at the higher rate; λ-GRPO ties, so the lower rate is taken
        high = cfg.learning_rate == max(c.learning_rate for _, c in sweep)
        freq = 0.6 if cfg.method == "grpo" and high else 0.3
        _finish(root / name, [0.0] * 5 + [freq] * 50)  # only the last 50 steps count
    assert best_toy_rates(root, sweep) == {(1, -1.0, "grpo"): 1e-3, (1, -1.0, "lambda_grpo"): 1e-4}
    best = experiment_runs("toy_best", "smoke", root=tmp_path)
    assert {(c.method, c.learning_rate) for _, c in best} == {("grpo", 1e-3), ("lambda_grpo", 1e-4)}
    assert {c.seed for _, c in best}.isdisjoint({c.seed for _, c in sweep})  # fresh seeds


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


def test_shared_position_profile_against_brute_force():
    """Per tenth of each completion, the share of tokens with |λ| ≥ 2, from prefix comparisons done by hand."""
    import math

    import torch

    from paper_lib.experiments.overlap import shared_position_profile
    from paper_lib.reference import process_set_sizes_bruteforce

    gen = torch.Generator().manual_seed(0)
    for _ in range(20):
        G, T = 6, 13
        ids = torch.randint(0, 3, (G, T), generator=gen)
        lengths = torch.randint(1, T + 1, (G,), generator=gen)
        mask = (torch.arange(T) < lengths[:, None]).long()
        seqs = [ids[i, : lengths[i]].tolist() for i in range(G)]
        sizes = process_set_sizes_bruteforce(seqs)
        shared, total = [0] * 10, [0] * 10
        for seq, row in zip(seqs, sizes):
            for t, size in enumerate(row):
                b = 10 * t // len(seq)
                total[b] += 1
                shared[b] += size >= 2
        expected = [s / n if n else math.nan for s, n in zip(shared, total)]
        got = shared_position_profile(ids, mask)
        assert all((math.isnan(e) and math.isnan(g)) or abs(e - g) < 1e-6 for e, g in zip(expected, got))


def test_the_sums_design_pilots_are_grpo_only_on_one_unreported_seed():
    from paper_lib.experiments.plan import SUMS_PILOT_SEED, SUMS_PILOT_WARM_STARTS, SUMS_WARM_START

    runs = [cfg for _, cfg in experiment_runs("design", "small")]
    pilots = [c for c in runs if c.name.startswith("pilot_")]
    assert {c.method for c in runs} == {"grpo"} and {c.seed for c in pilots} == {SUMS_PILOT_SEED}
    assert sorted(c.warm_start_steps for c in pilots) == sorted(SUMS_PILOT_WARM_STARTS)
    spread = [c for c in runs if c not in pilots]
    assert {c.warm_start_steps for c in spread} == {SUMS_WARM_START} and len({c.seed for c in spread}) == 4
    assert {c.task for c in runs} == {"sums"}
    reported = [c for e in ("training", "norm_ablation", "process_sets") for _, c in experiment_runs(e, "small")]
    assert not {c.seed for c in runs} & {c.seed for c in reported}  # design seeds are never reported
    assert {c.task for c in reported} == {"sums"} and {c.warm_start_steps for c in reported} == {SUMS_WARM_START}


def test_each_warm_start_gets_its_own_held_out_base(tmp_path):
    from paper_lib.experiments.downstream import base_result_file
    from paper_lib.rundir import write_json

    a, b = tmp_path / "pilot_ws1000", tmp_path / "pilot_ws3000"
    assert base_result_file(a, "k1000") == tmp_path / "base_downstream.json"  # the first is the experiment's
    write_json(tmp_path / "base_downstream.json", {"warm_start_key": "k1000"})
    assert base_result_file(a, "k1000") == tmp_path / "base_downstream.json"  # runs sharing it reuse it
    assert base_result_file(b, "k3000") == b / "base_downstream.json"  # another warm start: the run's own
    write_json(tmp_path / "base_downstream.json", {"level1": {"accuracy": 0.5}})  # no key: of an unknown start
    assert base_result_file(a, "k1000") == a / "base_downstream.json"
