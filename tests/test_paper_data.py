"""The paper scale's data and scoring (OpenRS, the five benchmarks, math-verify), on local fixtures."""

import json
import random

import pytest
from conftest import REPO
from datasets import Dataset
from datasets.utils.logging import disable_progress_bar
from paper_fixtures import (
    ASSISTANT,
    BOS,
    USER,
)

from paper_lib.paper_scale import data as paper_data
from paper_lib.paper_scale.boxed import truncate_text

disable_progress_bar()
FIXTURES = REPO / "tests" / "fixtures" / "paper"


# == data and scoring ===========================================================================================
def test_openrs_loader_and_split(tmp_path):
    files = FIXTURES / "openrs.jsonl"
    full = paper_data.load_source(paper_data.OPENRS, files, cache_dir=str(tmp_path))
    assert full.column_names == ["id", "problem", "gold", "gold_extraction", "source"] and len(full) == 8
    assert full[0]["gold"] == "We add: $2+3=5$. The answer is $\\boxed{5}$."  # the authors' gold column: solution
    train, val = paper_data.load_openrs(val_size=3, seed=0, data_files=files, cache_dir=str(tmp_path))
    assert len(train) == 5 and len(val) == 3 and set(train["id"]).isdisjoint(val["id"])
    assert set(train["id"]) | set(val["id"]) == set(full["id"])
    again = paper_data.load_openrs(val_size=3, seed=0, data_files=files, cache_dir=str(tmp_path))[1]
    other = paper_data.load_openrs(val_size=3, seed=1, data_files=files, cache_dir=str(tmp_path))[1]
    assert again["id"] == val["id"] and other["id"] != val["id"]
    with pytest.raises(ValueError, match="val_size must be an integer in 1..7"):
        paper_data.openrs_splits(full, val_size=8)


def test_hub_path_is_the_same_code_path(monkeypatch, tmp_path):
    """The hub call is one thin function; with it returning the fixture's rows the result equals the local load."""
    rows = [json.loads(x) for x in (FIXTURES / "aime24.jsonl").read_text().splitlines()]
    calls = []

    def fake_hub(source, cache_dir):
        calls.append((source.hub_id, source.split))
        return Dataset.from_list(rows)

    monkeypatch.setattr(paper_data, "_hub_dataset", fake_hub)
    source = paper_data.BENCHMARKS["aime24"]
    hub = paper_data.load_source(source)
    local = paper_data.load_source(source, FIXTURES / "aime24.jsonl", cache_dir=str(tmp_path))
    assert calls == [("HuggingFaceH4/aime_2024", "train")] and hub.to_list() == local.to_list()
    with pytest.raises(ValueError, match="aime24 .* has 2 items; the paper's has 30"):
        paper_data.load_benchmarks(["aime24"])


BENCH_TABLE = {  # name -> (hub id, split, first problem, first gold, gold extraction)
    "aime24": ("HuggingFaceH4/aime_2024", "train", "Find the remainder", "24", "latex+expr"),
    "math500": ("HuggingFaceH4/MATH-500", "test", "What is $\\frac{6}{8}$", "Divide by 2: $\\boxed{\\frac{3}{4}}$.",
                "latex"),
    "amc23": ("knoveleng/AMC-23", "train", "What is $3^3$?", "27.0", "latex+expr"),
    "minerva": ("knoveleng/Minerva-Math", "train", "A wave has period", "$f=1/T=\\boxed{0.5}$ Hz.", "latex"),
    "olympiadbench": ("knoveleng/OlympiadBench", "train", "Compute $1+2+3+4$.", "$10$", "latex+expr"),
}  # fmt: skip


def test_benchmark_loaders(tmp_path):
    data = paper_data.load_benchmarks(data_dir=FIXTURES, cache_dir=str(tmp_path))
    assert list(data) == list(BENCH_TABLE) == list(paper_data.BENCHMARK_NAMES)
    assert [s.n_items for s in paper_data.BENCHMARKS.values()] == [30, 500, 40, 272, 675]  # docs/paper.md §4.1
    for name, (hub_id, split, problem, gold, extraction) in BENCH_TABLE.items():
        source, first = paper_data.BENCHMARKS[name], data[name][0]
        assert (source.hub_id, source.split) == (hub_id, split)
        assert first["problem"].startswith(problem) and first["gold"] == gold
        assert first["gold_extraction"] == extraction and len(data[name]) == 2


def test_standardize_names_what_is_wrong():
    source = paper_data.BENCHMARKS["olympiadbench"]
    with pytest.raises(ValueError, match=r"lacks column\(s\) \['question'\]"):
        paper_data.standardize(Dataset.from_list([{"problem": "p", "answer": "1"}]), source)
    with pytest.raises(ValueError, match="row 0: empty gold answer"):
        paper_data.standardize(Dataset.from_list([{"question": "p", "answer": " "}]), source)
    listed = paper_data.standardize(Dataset.from_list([{"question": "p", "answer": ["$1$", "2"]}]), source)
    assert listed[0]["gold"] == "$1, 2$"  # several answers: one set
    with pytest.raises(ValueError, match=r"row 0: gold answer in column 'answer' is a dict"):
        paper_data.standardize(Dataset.from_list([{"question": "p", "answer": {"value": "1"}}]), source)
    with pytest.raises(ValueError, match="has no rows"):
        paper_data.standardize(Dataset.from_list([]), source)


def test_an_empty_data_file_is_named(tmp_path):
    (tmp_path / "aime24.jsonl").write_text("\n")
    with pytest.raises(ValueError, match="aime24: data file .*aime24.jsonl is empty"):
        paper_data.load_benchmarks(["aime24"], data_dir=tmp_path, cache_dir=str(tmp_path / "c"))
    with pytest.raises(FileNotFoundError, match="amc23: no data file"):
        paper_data.load_benchmarks(["amc23"], data_dir=tmp_path, cache_dir=str(tmp_path / "c"))


def test_a_duplicated_problem_never_sits_in_both_splits():
    rows = [{"problem": f"p{i % 5}", "gold": "$1$"} for i in range(12)]  # 5 distinct problems, most of them twice
    data = Dataset.from_list([r | {"id": str(i)} for i, r in enumerate(rows)])
    for seed in range(20):
        train, val = paper_data.openrs_splits(data, val_size=2, seed=seed)
        assert len(set(val["problem"])) == len(val) == 2 and not set(val["problem"]) & set(train["problem"])
        assert len(train) == sum(p not in val["problem"] for p in data["problem"])  # every copy of the rest trains
    distinct = Dataset.from_list([{"problem": f"p{i}", "id": str(i)} for i in range(9)])
    train, val = paper_data.openrs_splits(distinct, val_size=3, seed=4)
    order = list(range(9))
    random.Random(4).shuffle(order)
    assert val["id"] == [str(i) for i in order[:3]] and train["id"] == [str(i) for i in order[3:]]  # as before


# Gold answers as each benchmark stores them (hub row → standardised gold), with a right and a wrong boxed answer.
GOLD_FORMATS = [  # benchmark, raw gold value, right answer, wrong answer
    ("aime24", "033", "33", "3"),
    ("aime24", "204", "204", "24"),
    ("amc23", 27.0, "27", "2.7"),
    ("amc23", "\\frac{9}{4}", "2.25", "9"),
    ("olympiadbench", "$\\frac{1}{2}$", "0.5", "2"),
    ("olympiadbench", "1, 2", "1, 2", "2"),  # plain text: the last number alone would be 2
    ("olympiadbench", "(1, 2)", "(1, 2)", "2"),
    ("olympiadbench", "{1, 2}", "\\{1, 2\\}", "2"),
    ("olympiadbench", ["$1$", "$2$"], "1, 2", "2"),  # several answers in a list: a set
    ("olympiadbench", "3\\sqrt{2}", "3\\sqrt{2}", "3"),  # plain text: would be 3
    ("olympiadbench", "(-\\infty, 3]", "(-\\infty, 3]", "3"),
    ("math500", "So the pair is $\\boxed{(1, 2)}$.", "(1, 2)", "2"),
    ("minerva", "$f=1/T=\\boxed{0.5}$ Hz.", "0.5", "5"),
]


@pytest.mark.parametrize(("name", "raw", "right", "wrong"), GOLD_FORMATS)
def test_gold_answers_in_each_benchmarks_formats(name, raw, right, wrong):
    source = paper_data.BENCHMARKS[name]
    row = paper_data.standardize(Dataset.from_list([{source.question: "q", source.gold: raw}]), source)[0]
    assert paper_data.score_completion(f"so \\boxed{{{right}}}", row["gold"], row["gold_extraction"]) == 1.0
    assert paper_data.score_completion(f"so \\boxed{{{wrong}}}", row["gold"], row["gold_extraction"]) == 0.0


def test_prompts_have_one_bos_and_match_trl(tok):
    problem = "What is $1+1$? é"
    ids = paper_data.prompt_ids(tok, problem)
    assert ids.count(tok.bos_token_id) == 1 and ids[0] == tok.bos_token_id
    assert tok(paper_data.prompt_text(tok, problem))["input_ids"] == ids  # the authors' text path, same ids
    text = tok.decode(ids)
    assert text == f"{BOS}{paper_data.SYSTEM_PROMPT}{USER}{problem}{ASSISTANT}<think>\n"
    trl_rows = paper_data.to_trl_dataset(Dataset.from_list([{"problem": problem, "gold": "2"}]))
    assert trl_rows[0]["prompt"] == [{"role": "system", "content": paper_data.SYSTEM_PROMPT},
                                     {"role": "user", "content": problem}]  # fmt: skip
    assert paper_data.chat_messages(problem, None) == [{"role": "user", "content": problem}]


SCORE_TABLE = [  # completion, gold, extraction, score
    ("so the answer is \\boxed{5}", "We add: $2+3=5$. The answer is $\\boxed{5}$.", "latex", 1.0),
    ("\\boxed{\\frac{6}{8}}", "Divide by 2: $\\boxed{\\frac{3}{4}}$.", "latex", 1.0),
    ("\\boxed{0.75}", "$\\boxed{\\frac{3}{4}}$", "latex", 1.0),
    ("\\boxed{27}", "27.0", "latex+expr", 1.0),
    ("\\boxed{24}", "24", "latex+expr", 1.0),
    ("\\boxed{6}", "We add: $2+3=5$. The answer is $\\boxed{5}$.", "latex", 0.0),
    ("I think it is 5", "$\\boxed{5}$", "latex", 0.0),  # no box, no LaTeX anchor: nothing parsed
    ("\\boxed{5} or maybe \\boxed{6}", "$\\boxed{5}$", "latex", 0.0),  # two boxes parse as a set: why the stop matters
    (paper_data.SYSTEM_PROMPT, "5", "latex+expr", 0.0),  # the system prompt's empty \boxed{} is no answer
    # The authors score prompt + completion; math-verify joins every box (boxed="all"), and a nearby empty one turns
    # \boxed{5} into ",5". Scoring the completion alone avoids that.
    (paper_data.SYSTEM_PROMPT + " So \\boxed{5}.", "5", "latex+expr", 0.0),
    ("So \\boxed{5}.", "5", "latex+expr", 1.0),
    ([{"role": "assistant", "content": "\\boxed{5}"}], "$5$", "latex", 1.0),  # TRL's chat completions
    ("\\boxed{5}", "It is the one named after the king of the Roman gods.", "latex", None),  # unparsable gold
    ("\\boxed{5}", "24", "latex", None),  # a bare number is no LaTeX: the authors would score 1 here
]


@pytest.mark.parametrize(("completion", "gold", "extraction", "expected"), SCORE_TABLE)
def test_scoring(completion, gold, extraction, expected):
    assert paper_data.score_completion(completion, gold, extraction) == expected


def test_scoring_a_stopped_completion():
    two_boxes = "\\boxed{5} or maybe \\boxed{6}"
    assert paper_data.score_completion(truncate_text(two_boxes), "$5$") == 1.0


def test_reward_function_counts_unscorable(tmp_path):
    data = paper_data.load_source(paper_data.OPENRS, FIXTURES / "openrs.jsonl", cache_dir=str(tmp_path))
    completions = ["\\boxed{5}", "\\boxed{3/4}", "\\boxed{5}", "\\boxed{4}", "\\boxed{4}", "\\boxed{42}", "x", "7"]
    rewards = paper_data.math_accuracy_reward(completions, data["gold"], data["gold_extraction"])
    assert rewards == [1.0, 1.0, 0.0, 1.0, 1.0, 1.0, None, 0.0]
    assert [paper_data.parse_gold(g) is None for g in data["gold"]].count(True) == 1  # the planet's solution
    with pytest.raises(ValueError, match="gold has 8 entries for 2 completions"):
        paper_data.math_accuracy_reward(completions[:2], data["gold"])


def test_verify_is_called_in_the_authors_order():
    """math-verify is not symmetric; the authors' open_rs_reward calls verify(answer, gold), and so do we: a gold
    interval (1, 2) accepts the answer 1 < x < 2, while a gold inequality does not accept the interval."""
    assert paper_data.score_completion("so \\boxed{1<x<2}", "$(1,2)$") == 1.0
    assert paper_data.score_completion("so \\boxed{(1,2)}", "$1<x<2$") == 0.0
