"""Tasks: the toy tree's reward table by hand, and arithmetic checked with Python's own arithmetic."""

import math
import os
import random
import re
import subprocess
import sys
from pathlib import Path

import pytest

from paper_lib.training.tasks import (
    ARITHMETIC_CHARS,
    ARITHMETIC_LEVELS,
    TOY_CHARS,
    ArithmeticTask,
    ToyTreeTask,
    arithmetic_dataset,
    arithmetic_max_lengths,
    arithmetic_problem,
    arithmetic_reward,
    arithmetic_test_sets,
    extract_answer,
    make_task,
    toy_tree_reward_func,
)

TRL_KWARGS = {"prompts": None, "completion_ids": None, "trainer_state": None}


# ---------------------------------------------------------------------------------------------------- toy tree
def test_seed_1_target_is_llrl():
    assert ToyTreeTask(n=1, r_neg=-1.0, seed=1).target == "LLRL"


def test_toy_reward_table_n1_by_hand():
    table = ToyTreeTask(n=1, r_neg=-0.5, seed=1).reward_table()  # target LLRL
    assert len(table) == 16
    assert {p for p, r in table.items() if r == 1.0} == {"LLRL"}
    assert {p for p, r in table.items() if r == -0.5} == {
        "LLLL", "LLLR", "LLRR", "LRLL", "LRLR", "LRRL", "LRRR",
    }  # fmt: skip
    assert {p for p, r in table.items() if r == 0.7} == {p for p in table if p[0] == "R"}
    assert sorted(table.values()).count(0.7) == 8


def test_toy_reward_table_n2_by_hand():
    table = ToyTreeTask(n=2, r_neg=-1.5, seed=1).reward_table()
    assert {p for p, r in table.items() if r == 1.0} == {"LLRL"}
    assert {p for p, r in table.items() if r == -1.5} == {"LLLL", "LLLR", "LLRR"}
    assert sum(r == 0.7 for r in table.values()) == 12


@pytest.mark.parametrize("n, counts", [(1, (1, 7, 8)), (2, (1, 3, 12)), (3, (1, 1, 14))])
@pytest.mark.parametrize("seed", range(6))
def test_toy_reward_counts_any_target(n, counts, seed):
    rewards = list(ToyTreeTask(n=n, r_neg=-1.0, seed=seed).reward_table().values())
    assert (rewards.count(1.0), rewards.count(-1.0), rewards.count(0.7)) == counts


def test_toy_target_deterministic_and_varied():
    assert all(ToyTreeTask(1, -1.0, s).target == ToyTreeTask(2, -0.5, s).target for s in range(20))
    targets = {ToyTreeTask(1, -1.0, s).target for s in range(20)}
    assert len(targets) >= 6 and all(re.fullmatch("[LR]{4}", t) for t in targets)
    assert len(ToyTreeTask(1, -1.0, 3, depth=7).target) == 7


def test_toy_all_paths():
    paths = ToyTreeTask(1, -1.0, 0, depth=3).all_paths()
    assert paths == ["LLL", "LLR", "LRL", "LRR", "RLL", "RLR", "RRL", "RRR"]


@pytest.mark.parametrize("completion", ["LLR", "LLRLL", "", "LLXL", "llrl", ">LLRL", None, 7])
def test_toy_invalid_completion_gets_zero(completion):
    assert ToyTreeTask(1, -1.0, seed=1).reward(completion) == 0.0


@pytest.mark.parametrize(
    "kwargs, field",
    [
        ({"n": 0, "r_neg": -1.0}, "n"),
        ({"n": 4, "r_neg": -1.0}, "n"),
        ({"n": 1, "r_neg": 0.0}, "r_neg"),
        ({"n": 1, "r_neg": 0.5}, "r_neg"),
        ({"n": 1, "r_neg": math.nan}, "r_neg"),
        ({"n": 1, "r_neg": -1.0, "depth": 0}, "depth"),
        ({"n": 2, "r_neg": -1.0, "depth": 2}, "n"),
    ],
)
def test_toy_invalid_params(kwargs, field):
    with pytest.raises(ValueError, match=rf"^{field} must"):
        ToyTreeTask(seed=0, **kwargs)


def test_toy_dataset_and_prompt():
    task = ToyTreeTask(1, -1.0, seed=1)
    ds = task.dataset(5)
    assert ds.column_names == ["prompt", "target"] and len(ds) == 5
    assert set(ds["prompt"]) == {">"} and set(ds["target"]) == {"LLRL"}
    assert task.prompt in TOY_CHARS and set(task.target) <= set(TOY_CHARS)
    with pytest.raises(ValueError, match="n_rows"):
        task.dataset(0)


def test_toy_reward_func_trl_signature():
    f = toy_tree_reward_func(ToyTreeTask(2, -1.0, seed=1))
    assert f.__name__ == "toy_tree_reward"
    out = f(completions=["LLRL", "L L R L", "LLLL", "RRRR", "LLR?"], target=["LLRL"] * 5, **TRL_KWARGS)
    assert out == [1.0, 1.0, -1.0, 0.7, 0.0] and all(type(r) is float for r in out)


# -------------------------------------------------------------------------------------------------- arithmetic
def _running_results(prompt: str) -> list[int]:
    """Python's own arithmetic on each prefix ``a0 op1 a1 ... op_k a_k`` of the prompt (independent reference)."""
    assert re.fullmatch(r"[0-9]+([+-][0-9]+)+=", prompt), prompt
    terms = re.findall(r"[+-]?[0-9]+", prompt[:-1])
    return [eval("".join(terms[: k + 1])) for k in range(1, len(terms))]  # eval: no leading zeros allowed


def _sample(level: int, n: int = 300, seed: int = 0) -> list[dict]:
    rng = random.Random(seed)
    return [arithmetic_problem(rng, level) for _ in range(n)]


@pytest.mark.parametrize("level", sorted(ARITHMETIC_LEVELS))
def test_solutions_match_python_arithmetic(level):
    for row in _sample(level):
        steps = _running_results(row["prompt"])
        assert row["solution"] == ",".join(map(str, steps))
        assert row["answer"] == str(steps[-1]) == row["solution"].split(",")[-1]
        assert all(v >= 0 for v in steps) and len(steps) == ARITHMETIC_LEVELS[level][0]
        assert set(row["prompt"] + row["solution"]) <= set(ARITHMETIC_CHARS)
        assert set(row["solution"]) <= set("0123456789,") and row["level"] == level


def test_reference_on_the_docstring_example():
    assert _running_results("7+5-3=") == [12, 9]  # 7+5 = 12, 12-3 = 9: the module docstring's example
    assert extract_answer("12,9") == "9" and arithmetic_reward(["12,9"], ["9"]) == [1.0]


def test_max_lengths_by_hand():
    # level 5: five operands <= 19, four operators, "=" -> 15; running maxima 38,57,76,95 -> 8 + 3 commas
    assert arithmetic_max_lengths(5) == (15, 11)
    assert arithmetic_max_lengths(1) == (6, 2)  # "19+19=" -> "38"
    for level in ARITHMETIC_LEVELS:
        max_prompt, max_completion = arithmetic_max_lengths(level)
        assert max_prompt <= 24 and max_completion <= 24
        rows = _sample(level, n=500)
        assert max(len(r["prompt"]) for r in rows) <= max_prompt
        assert max(len(r["solution"]) for r in rows) <= max_completion


def test_levels_rise_in_difficulty():
    sets = arithmetic_test_sets(100, seed=0)
    assert list(sets) == ["level1", "level2", "level3", "level4", "level5"]
    n_ops = [sum(p.count("+") + p.count("-") for p in ds["prompt"]) / len(ds) for ds in sets.values()]
    lengths = [sum(map(len, ds["solution"])) / len(ds) for ds in sets.values()]
    assert n_ops == [1, 2, 2, 3, 4]  # levels 2 and 3: two operations, operands up to 9 and up to 19
    assert all(a < b for a, b in zip(lengths, lengths[1:]))


def test_datasets_deterministic_by_seed():
    a = arithmetic_dataset(50, (1, 2, 3), seed=7).to_list()
    assert a == arithmetic_dataset(50, [1, 2, 3], seed=7).to_list()
    assert a != arithmetic_dataset(50, (1, 2, 3), seed=8).to_list()
    assert arithmetic_test_sets(20, 3)["level4"].to_list() == arithmetic_test_sets(20, 3)["level4"].to_list()
    assert [r["level"] for r in a[:6]] == [1, 2, 3, 1, 2, 3]


def test_test_sets_disjoint_from_training():
    task = ArithmeticTask(seed=0, n_test=100)
    tests = task.test_sets()
    held_out = [p for ds in tests.values() for p in ds["prompt"]]
    train = task.train(600)
    assert len(held_out) == len(set(held_out)) == 500
    assert len(set(train["prompt"])) == 600 and not set(train["prompt"]) & set(held_out)
    assert set(train["level"]) == {1, 2, 3} and train.column_names == ["prompt", "answer", "solution", "level"]


def test_exhausted_level_raises():
    every_level1 = {f"{a}+{b}=" for a in range(50) for b in range(50)} | {
        f"{a}-{b}=" for a in range(50) for b in range(a + 1)
    }
    assert {r["prompt"] for r in _sample(1, n=2000)} <= every_level1
    with pytest.raises(ValueError, match="n=1 exceeds"):
        arithmetic_dataset(1, (1,), seed=0, exclude=every_level1)


@pytest.mark.parametrize("bad", [0, 6, True, "1"])
def test_invalid_level(bad):
    with pytest.raises(ValueError, match="level must be"):
        arithmetic_problem(random.Random(0), bad)


@pytest.mark.parametrize(
    "completion, expected",
    [
        ("12,9", "9"),
        ("1 2 , 9", "9"),
        ("12,9\n", "9"),
        ("9", "9"),
        ("12,09", "9"),
        ("12,-3", "-3"),
        ("", None),
        ("   ", None),
        ("12,", None),
        (",,,", None),
        ("12,x9", None),
        ("12,9a", None),
        ("12,+9", None),
        ("-", None),
        ("12,٩", None),  # a Unicode digit that str.isdigit accepts
        (None, None),
        (9, None),
    ],
)
def test_extract_answer(completion, expected):
    assert extract_answer(completion) == expected


def test_arithmetic_reward():
    completions = ["12,9", "12,8", "garbage", "", "1 2 , 9", "9,", None, "12,9,9"]
    out = arithmetic_reward(completions=completions, answer=["9"] * 8, level=[2] * 8, **TRL_KWARGS)
    assert out == [1.0, 0.0, 0.0, 0.0, 1.0, 0.0, 0.0, 1.0] and all(type(r) is float for r in out)
    rows = _sample(5, n=50)
    assert arithmetic_reward([r["solution"] for r in rows], [r["answer"] for r in rows]) == [1.0] * 50
    with pytest.raises(ValueError, match="answer"):
        arithmetic_reward(["1"], ["1", "2"])


# ---------------------------------------------------------------------------------------------------- registry
def test_make_task():
    assert make_task("toy_tree", n=1, r_neg=-1.0, seed=0) == ToyTreeTask(1, -1.0, 0)
    assert make_task("arithmetic", seed=2).reward_funcs() == [arithmetic_reward]
    with pytest.raises(ValueError, match=r"unknown task 'x'; known: \['arithmetic', 'sums', 'toy_tree'\]"):
        make_task("x")


def test_does_not_import_trl():
    code = "import sys, paper_lib.training.tasks; assert 'trl' not in sys.modules"
    env = {**os.environ, "HF_HUB_OFFLINE": "1"}
    subprocess.run([sys.executable, "-c", code], check=True, env=env, cwd=Path(__file__).resolve().parents[1])


def test_a_level_that_runs_out_leaves_the_cycle():
    """Level 1 has about 600 distinct problems: 2000 rows fill from levels 2 and 3 once it runs out (the README's
    default train_size), while a size no level exhausts gives exactly the rows of a plain cycle."""
    import random

    from paper_lib.training.tasks import arithmetic_problem

    big = arithmetic_dataset(2000, (1, 2, 3), seed=0)
    assert len(set(big["prompt"])) == 2000 and 500 < big["level"].count(1) < 667
    rng, seen, plain = random.Random("arithmetic:0:(1, 2, 3)"), set(), []
    while len(plain) < 300:  # the plain cycle, written out
        row = arithmetic_problem(rng, (1, 2, 3)[len(plain) % 3])
        if row["prompt"] not in seen:
            seen.add(row["prompt"])
            plain.append(row)
    assert arithmetic_dataset(300, (1, 2, 3), seed=0).to_list() == plain
    with pytest.raises(ValueError, match="exceeds the"):
        arithmetic_dataset(700, (1,), seed=0)


# -------------------------------------------------------------------------------------------------------- sums
def test_sum_problems_add_every_term_once_in_a_seeded_random_order():
    from paper_lib.training.tasks import SUM_LEVELS, extract_sum_answer, sum_max_completion_length, sum_problem

    rng = random.Random(0)
    orders = set()
    for level, (k, top) in SUM_LEVELS.items():
        for _ in range(200):
            row = sum_problem(rng, level)
            terms = [int(t) for t in row["prompt"].rstrip("=").split("+")]
            steps = row["solution"].split(",")
            assert len(terms) == k and all(0 <= t <= top for t in terms) and len(steps) == k - 1
            used, total = [], None
            for step in steps:  # every step is "running+term=new", right, and starts from the last result
                lhs, new = step.split("=")
                a, b = map(int, lhs.split("+"))
                assert a + b == int(new) and (total is None or a == total)
                used += [a, b] if total is None else [b]
                total = int(new)
            assert sorted(used) == sorted(terms) and str(total) == row["answer"] == extract_sum_answer(row["solution"])
            assert len(row["solution"]) <= sum_max_completion_length(level)
            orders.add(steps[0].split("=")[0] == f"{terms[0]}+{terms[1]}")
    assert orders == {True, False}  # the order varies: not always the prompt's
    assert sum_max_completion_length(5) == len(
        "19+19=38,38+19=57,57+19=76,76+19=95,95+19=114,114+19=133,133+19=152,152+19=171"
    )


def test_sum_reward_scores_the_final_result_only():
    from paper_lib.training.tasks import extract_sum_answer, sum_reward

    assert extract_sum_answer("3+7=10,10+15=25") == "25" and extract_sum_answer(" 3+7=10 ,10+15= 025") == "25"
    assert extract_sum_answer("3+7=10,") is None and extract_sum_answer("25") is None  # no final "…=n" step
    assert extract_sum_answer("3+7=10,10+15=") is None and extract_sum_answer(None) is None
    assert sum_reward(["1+2=4,4+3=7", "1+2=3,3+3=6"], ["7", "7"]) == [1.0, 0.0]  # wrong steps, right answer: 1
    with pytest.raises(ValueError, match="answer has 1 entries for 2"):
        sum_reward(["a", "b"], ["7"])


def test_sum_task_sets_are_disjoint_and_deterministic():
    from paper_lib.training.tasks import SumTask, make_task

    task = make_task("sums", seed=3)
    assert isinstance(task, SumTask) and task.reward_funcs()[0].__name__ == "sum_reward"
    tests = task.test_sets()
    held = {p for ds in tests.values() for p in ds["prompt"]}
    train = task.train(300)
    val = task.validation(50, exclude=set(train["prompt"]) | held)
    seen = held | set(train["prompt"])
    assert len(held) == 500 and not held & set(train["prompt"]) and not set(val["prompt"]) & seen
    assert {len(p.split("+")) for p in tests["level5"]["prompt"]} == {9}
    assert train.to_list() == SumTask(seed=3).train(300).to_list()
    with pytest.raises(ValueError, match="level must be one of"):
        SumTask(train_levels=(6,))


def test_the_sum_warm_start_sees_every_problem_in_several_orders():
    from paper_lib.training.tasks import SumTask, extract_sum_answer

    task = SumTask(seed=1)
    train = task.train(20)
    rows = task.warm_start_rows(train)
    assert len(rows) == 20 * SumTask.ORDERS and rows.to_list() == task.warm_start_rows(train).to_list()
    for k, row in enumerate(train):
        mine = rows.select(range(k * SumTask.ORDERS, (k + 1) * SumTask.ORDERS))
        assert set(mine["prompt"]) == {row["prompt"]} and set(mine["answer"]) == {row["answer"]}
        assert all(extract_sum_answer(s) == row["answer"] for s in mine["solution"])
    firsts = {s.split("+")[0] for s in rows["solution"]}
    assert len(firsts) > 10  # orders differ, not one memorisable order per problem
    from paper_lib.training.tasks import ArithmeticTask

    plain = ArithmeticTask().train(5)
    assert ArithmeticTask().warm_start_rows(plain) is plain


def test_a_redesigned_sum_task_does_not_reuse_a_cached_warm_start(monkeypatch):
    from paper_lib.training.config import RunConfig
    from paper_lib.training.tasks import SumTask

    cfg = RunConfig(name="r", task="sums")
    before, arith = cfg.warm_start_key(), RunConfig(name="r").warm_start_key()
    monkeypatch.setattr(SumTask, "ORDERS", 4)
    assert cfg.warm_start_key() != before
    monkeypatch.setattr(SumTask, "ORDERS", 8)
    monkeypatch.setattr(SumTask, "LEVELS", {**SumTask.LEVELS, 1: (4, 19)})
    assert cfg.warm_start_key() != before and RunConfig(name="r").warm_start_key() == arith
