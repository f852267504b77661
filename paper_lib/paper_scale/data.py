r"""Paper-scale data, prompts and scoring (docs/paper.md §4.1, §7).

- **Sources.** OpenRS (``knoveleng/open-rs``) for training and validation, and the five benchmarks of Table 2 with
  the hub ids, splits and columns that OpenRS's own evaluation uses (:data:`BENCHMARKS`). :func:`load_source` is the
  only loader: it reads the hub through the one thin function :func:`_hub_dataset`, or local JSON/JSONL files in
  the same format (the tests' fixtures, an offline mirror), and everything after that is shared.
- **Prompts.** The authors' system prompt and chat template: system + user message, generation prompt, exactly
  one BOS (their code strips the template's BOS because the tokenizer adds one; :func:`prompt_ids` is what TRL
  tokenizes for a conversational ``prompt`` column, and the tests check both give the same ids).
- **Scoring.** math-verify as in the authors' ``accuracy_reward`` (copied from OpenRS): the completion is parsed
  as LaTeX with ``\boxed`` first and no anchor-less fallback. Two deliberate differences:

  1. **An unparsable gold answer scores None, not 1.** The authors return ``True`` ("to skip this example").
     In training both give the whole group the same reward, so the advantages are 0 either way (TRL treats None as
     unscorable), but in validation and evaluation 1 would inflate accuracy.
     :func:`.benchmarks.evaluate_benchmarks` reports such items separately (``n_unscorable``) and scores
     accuracy over the scorable ones, with the authors' convention alongside (``accuracy_unscorable_as_correct``).
  2. **Only the completion is scored.** The authors decode prompt + completion; the system prompt's empty
     ``\boxed{}`` parses to nothing, but LaTeX in the problem could be picked up when the completion has no box.

- **Evaluation** on these benchmarks lives in :mod:`paper_lib.paper_scale.benchmarks`.
"""

from __future__ import annotations

import random
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from datasets import Dataset, load_dataset

__all__ = [
    "BENCHMARKS",
    "BENCHMARK_NAMES",
    "OPENRS",
    "SYSTEM_PROMPT",
    "MathSource",
    "chat_messages",
    "load_benchmarks",
    "load_openrs",
    "load_source",
    "math_accuracy_reward",
    "openrs_splits",
    "parse_gold",
    "prompt_ids",
    "prompt_text",
    "score_completion",
    "to_trl_dataset",
]

# The authors' default --system_prompt (docs/paper.md §4.1). Its empty \boxed{} is not an answer: math-verify parses
# it to nothing, and the boxed stop scans the completion only.
SYSTEM_PROMPT = "Let's think step by step and output the final answer within \\boxed{}."

_EXTRACTIONS = ("latex", "expr", "latex+expr")


@dataclass(frozen=True)
class MathSource:
    """Where a math data set lives on the hub and which columns hold the question and the gold answer.

    ``gold_extraction`` says how math-verify reads the gold: ``"latex"`` for worked solutions (a ``\\boxed`` or
    ``$…$`` answer; an anchor-less number match on prose would pick an arbitrary number), ``"latex+expr"`` for
    short answer fields such as ``"204"`` (plain numbers have no LaTeX anchor).
    """

    key: str
    hub_id: str
    split: str
    question: str
    gold: str
    gold_extraction: str
    n_items: int | None = None  # expected size (docs/paper.md §4.1), checked by load_benchmarks on hub data
    subset: str | None = None

    def __post_init__(self):
        if self.gold_extraction not in _EXTRACTIONS:
            raise ValueError(f"gold_extraction must be one of {_EXTRACTIONS}, got {self.gold_extraction!r}")


# OpenRS: ~7000 problems, one "train" split with columns problem, solution, answer, level. The authors' train.json
# has {"problem", "solution"} and their reward parses "solution" (docs/paper.md §4.1, §7).
OPENRS = MathSource("openrs", "knoveleng/open-rs", "train", "problem", "solution", "latex", 7000)
# Table 2's benchmarks with the hub ids, splits and columns of OpenRS's evaluation; sizes from docs/paper.md §4.1.
BENCHMARKS: dict[str, MathSource] = {
    "aime24": MathSource("aime24", "HuggingFaceH4/aime_2024", "train", "problem", "answer", "latex+expr", 30),
    "math500": MathSource("math500", "HuggingFaceH4/MATH-500", "test", "problem", "solution", "latex", 500),
    "amc23": MathSource("amc23", "knoveleng/AMC-23", "train", "problem", "answer", "latex+expr", 40),
    "minerva": MathSource("minerva", "knoveleng/Minerva-Math", "train", "problem", "solution", "latex", 272),
    "olympiadbench": MathSource(
        "olympiadbench", "knoveleng/OlympiadBench", "train", "question", "answer", "latex+expr", 675
    ),
}
BENCHMARK_NAMES = tuple(BENCHMARKS)


# -- loading -------------------------------------------------------------------------------------------------------
def _hub_dataset(source: MathSource, cache_dir: str | None) -> Dataset:
    """The only hub access of this module (needs network; never called by the tests)."""
    return load_dataset(source.hub_id, source.subset, split=source.split, cache_dir=cache_dir)


def _raw_dataset(source: MathSource, data_files, cache_dir: str | None) -> Dataset:
    if data_files is None:
        return _hub_dataset(source, cache_dir)
    files = [str(f) for f in data_files] if isinstance(data_files, list | tuple) else [str(data_files)]
    for f in files:
        if not Path(f).is_file():
            raise FileNotFoundError(f"{source.key}: no data file {f}")
        if not Path(f).read_bytes().strip():
            raise ValueError(f"{source.key}: data file {f} is empty (expected JSON/JSONL rows in the hub's format)")
    return load_dataset("json", data_files=files, split="train", cache_dir=cache_dir)


def _gold_string(value, source: MathSource, index: int) -> str:
    """Gold answers become strings, as in the authors' ``str(x['solution'])``. A list of answers (a problem with
    several) becomes one LaTeX set, ``"$a, b$"``; anything but text, a number or such a list is refused."""
    if isinstance(value, list | tuple) and all(isinstance(v, str | int | float) for v in value):
        value = "$" + ", ".join(str(v).strip().strip("$") for v in value) + "$" if value else None
    if not isinstance(value, str | int | float | None):
        kind = f"a {type(value).__name__} ({str(value)[:60]!r})"
        raise ValueError(f"{source.key} row {index}: gold answer in column {source.gold!r} is {kind}; expected "
                         "text, a number or a list of them")  # fmt: skip
    if value is None or str(value).strip() == "":
        raise ValueError(f"{source.key} row {index}: empty gold answer in column {source.gold!r}")
    return str(value)


def standardize(raw: Dataset, source: MathSource) -> Dataset:
    """``raw`` (the hub's columns) → ``id``, ``problem``, ``gold``, ``gold_extraction``, ``source``."""
    if len(raw) == 0:
        raise ValueError(f"{source.key} ({source.hub_id}) has no rows")
    missing = {source.question, source.gold} - set(raw.column_names)
    if missing:
        raise ValueError(
            f"{source.key} ({source.hub_id}) lacks column(s) {sorted(missing)}; it has {sorted(raw.column_names)}"
        )
    rows = []
    for index, (problem, gold) in enumerate(zip(raw[source.question], raw[source.gold])):
        if not isinstance(problem, str) or not problem.strip():
            raise ValueError(f"{source.key} row {index}: empty or non-text question in column {source.question!r}")
        rows.append({"id": f"{source.key}-{index}", "problem": problem, "gold": _gold_string(gold, source, index),
                     "gold_extraction": source.gold_extraction, "source": source.key})  # fmt: skip
    return Dataset.from_list(rows)


def load_source(source: MathSource, data_files=None, cache_dir: str | None = None) -> Dataset:
    """One source, standardised. ``data_files``: local JSON/JSONL in the hub's format instead of the hub."""
    return standardize(_raw_dataset(source, data_files, cache_dir), source)


def openrs_splits(dataset: Dataset, val_size: int = 125, seed: int = 0) -> tuple[Dataset, Dataset]:
    """A seeded train/validation split (docs/paper.md §4.1: 125 validation questions; their source is not stated).

    ``random.Random`` with an integer seed gives the same permutation on every Python version, so the split is
    fixed by ``seed`` alone. The validation rows keep their order in the permutation. A problem that occurs more
    than once is validated once and never trained on: no copy of a validation problem is in the training split.
    """
    if not isinstance(val_size, int) or not 1 <= val_size < len(set(dataset["problem"])):
        raise ValueError(f"val_size must be an integer in 1..{len(set(dataset['problem'])) - 1} (the distinct "
                         f"problems less one), got {val_size!r}")  # fmt: skip
    order = list(range(len(dataset)))
    random.Random(seed).shuffle(order)
    held_out, validation = set(), []
    for i in order:  # the first val_size distinct problems of the permutation; their copies stay out of training
        if len(held_out) < val_size and dataset[i]["problem"] not in held_out:
            held_out.add(dataset[i]["problem"])
            validation.append(i)
    train = [i for i in order if dataset[i]["problem"] not in held_out]
    return dataset.select(train), dataset.select(validation)


def load_openrs(val_size: int = 125, seed: int = 0, data_files=None, cache_dir: str | None = None):
    """``(train, validation)`` of OpenRS, standardised and split by :func:`openrs_splits`."""
    return openrs_splits(load_source(OPENRS, data_files, cache_dir), val_size, seed)


def load_benchmarks(
    names: Sequence[str] = BENCHMARK_NAMES, data_dir: str | Path | None = None, cache_dir: str | None = None
) -> dict[str, Dataset]:
    """The benchmarks by name; ``data_dir`` holds local ``<name>.jsonl`` files in the hub's format instead.

    Hub data must have the item counts of docs/paper.md §4.1 (30, 500, 40, 272, 675): a different count means a
    different version of the benchmark, and the accuracies would not be comparable.
    """
    unknown = sorted(set(names) - set(BENCHMARKS))
    if unknown:
        raise ValueError(f"unknown benchmark(s) {unknown}; known: {list(BENCHMARKS)}")
    out = {}
    for name in names:
        source = BENCHMARKS[name]
        files = None if data_dir is None else Path(data_dir) / f"{name}.jsonl"
        out[name] = load_source(source, files, cache_dir)
        if files is None and source.n_items is not None and len(out[name]) != source.n_items:
            raise ValueError(f"{name} ({source.hub_id}) has {len(out[name])} items; the paper's has {source.n_items}")
    return out


# -- prompts -------------------------------------------------------------------------------------------------------
def chat_messages(problem: str, system_prompt: str | None = SYSTEM_PROMPT) -> list[dict[str, str]]:
    """The authors' conversation: an optional system turn, then the problem as the user turn."""
    user = [{"role": "user", "content": problem}]
    return user if system_prompt is None else [{"role": "system", "content": system_prompt}, *user]


def to_trl_dataset(dataset: Dataset, system_prompt: str | None = SYSTEM_PROMPT) -> Dataset:
    """Add the conversational ``prompt`` column TRL expects (TRL applies the chat template and tokenizes it)."""
    return dataset.map(lambda row: {"prompt": chat_messages(row["problem"], system_prompt)})


def prompt_ids(tokenizer, problem: str, system_prompt: str | None = SYSTEM_PROMPT, **template_kwargs) -> list[int]:
    """The prompt's token ids as TRL builds them: the chat template, tokenized without extra special tokens."""
    encoded = tokenizer.apply_chat_template(chat_messages(problem, system_prompt), add_generation_prompt=True,
                                            tokenize=True, return_dict=True, **template_kwargs)  # fmt: skip
    return list(encoded["input_ids"])


def prompt_text(tokenizer, problem: str, system_prompt: str | None = SYSTEM_PROMPT, **template_kwargs) -> str:
    """The text the authors tokenize: the chat template with its leading BOS removed when the tokenizer adds one.

    (The authors hard-code this for the DeepSeek and Llama BOS strings; ``tokenizer(prompt_text(...))`` then has a
    single BOS and equals :func:`prompt_ids`.)
    """
    text = tokenizer.apply_chat_template(chat_messages(problem, system_prompt), add_generation_prompt=True,
                                         tokenize=False, **template_kwargs)  # fmt: skip
    bos = tokenizer.bos_token
    adds_bos = bos is not None and tokenizer("")["input_ids"][:1] == [tokenizer.bos_token_id]
    return text[len(bos) :] if adds_bos and text.startswith(bos) else text


# -- scoring -------------------------------------------------------------------------------------------------------
def _configs(extraction: str) -> list:
    from math_verify import ExprExtractionConfig, LatexExtractionConfig

    if extraction not in _EXTRACTIONS:
        raise ValueError(f"extraction must be one of {_EXTRACTIONS}, got {extraction!r}")
    return {"latex": [LatexExtractionConfig()], "expr": [ExprExtractionConfig()],
            "latex+expr": [LatexExtractionConfig(), ExprExtractionConfig()]}[extraction]  # fmt: skip


def _completion_config() -> list:
    """The authors' answer parsing (OpenRS's): LaTeX only, ``\\boxed`` first, every box, no anchor-less match.

    (Their ``equations=True`` is left out: math-verify 0.9 deprecates it, its parser handles equations itself.)
    """
    from latex2sympy2_extended import NormalizationConfig
    from math_verify import LatexExtractionConfig

    norm = NormalizationConfig(nits=False, malformed_operators=False, basic_latex=True, boxed="all", units=True)
    return [LatexExtractionConfig(normalization_config=norm, boxed_match_priority=0, try_extract_without_anchor=False)]


def parse_gold(gold: str, extraction: str = "latex") -> list | None:
    r"""The parsed gold answer, or None when math-verify finds nothing to compare against.

    A short answer field (``"latex+expr"``) is one expression: without ``$`` or ``\boxed`` it is read as
    ``$gold$``, since math-verify's plain-text match keeps only the last number (``"1, 2"`` → 2, ``"(1, 2)"`` → 2,
    ``"3\sqrt{2}"`` → 3), which scores the right answer 0 and a wrong one 1.
    """
    from math_verify import parse

    text = str(gold)
    if extraction == "latex+expr" and "$" not in text and "\\boxed" not in text:
        text = f"${text}$"
    parsed = parse(text, extraction_config=_configs(extraction), extraction_mode="first_match")
    return parsed or None


def _text(completion) -> str:
    """A completion as text: TRL passes strings, or ``[{"role": "assistant", "content": …}]`` for chat prompts."""
    if isinstance(completion, str):
        return completion
    if isinstance(completion, list) and completion and isinstance(completion[-1], dict):
        return str(completion[-1].get("content", ""))
    raise ValueError(f"a completion must be a string or a list of chat messages, got {type(completion).__name__}")


def score_completion(completion, gold: str, extraction: str = "latex") -> float | None:
    """1.0 if math-verify finds the gold answer in the completion, 0.0 if not, None if the gold does not parse."""
    from math_verify import parse, verify

    gold_parsed = parse_gold(gold, extraction)
    if gold_parsed is None:
        return None
    answer = parse(_text(completion), extraction_config=_completion_config(), extraction_mode="first_match")
    return float(verify(answer, gold_parsed))  # the authors' order (math-verify documents verify(gold, target))


def math_accuracy_reward(completions, gold, gold_extraction=None, **kwargs) -> list[float | None]:
    """TRL reward function over the standardised columns ``gold`` and ``gold_extraction`` (None: unscorable)."""
    if len(gold) != len(completions):
        raise ValueError(f"gold has {len(gold)} entries for {len(completions)} completions")
    extraction = gold_extraction or ["latex"] * len(completions)
    return [score_completion(c, g, e) for c, g, e in zip(completions, gold, extraction)]
