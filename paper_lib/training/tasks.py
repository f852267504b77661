r"""Tasks for the small and smoke scales: the paper's toy binary tree (§4.3) and a synthetic arithmetic task.

**Toy tree** (docs/paper.md §4.3). From the one-character prompt ``">"`` (a stand-in for ``<bos>``) the model writes
``depth`` tokens from {L, R}. A target path $T$ drawn from the seed earns +1.0, every other path that shares
$T$'s first $n$ tokens earns $r_{neg} < 0$, and every remaining path earns +0.7. At depth 4 and $n = 1$ that is
1 / 7 / 8 paths; at $n = 2$ it is 1 / 3 / 12.

**Arithmetic** (our CPU stand-in for the paper's math reasoning). A prompt chains sums and differences of
non-negative integers; the completion writes the running result after each operation, comma-separated, so the
last field is the answer and nothing follows it (the tokenizer adds EOS)::

    prompt "7+5-3="   completion "12,9"   answer "9"

Subtrahends never exceed the running result, so every intermediate value is a non-negative integer. Samples
of one prompt agree on their first steps when those are right, which is what gives λ-GRPO real process sets.
Levels 1..5 add operations or widen the operands (``ARITHMETIC_LEVELS``: 1 op ≤ 19, 2 ops ≤ 9, 2 ops ≤ 19,
3 ops ≤ 19, 4 ops ≤ 19), small enough that a 2-layer character model warm-starts to about 40% on level 1 in a
minute of CPU, so GRPO has signal. Training draws from levels 1–3; one held-out set per level (disjoint across
levels) stands in for AIME24 / MATH-500 / AMC23 / Minerva / OlympiadBench. Build the test sets first and pass
their prompts as ``exclude`` to the training set (:class:`ArithmeticTask` does).

Reward functions follow TRL's signature ``f(prompts=..., completions=..., completion_ids=..., **columns)`` and
ignore spaces, since a character tokenizer's ``decode`` may put one between tokens.
"""

from __future__ import annotations

import itertools
import math
import random
import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import ClassVar

from datasets import Dataset

__all__ = [
    "ARITHMETIC_CHARS",
    "ARITHMETIC_LEVELS",
    "TASKS",
    "TOY_CHARS",
    "ArithmeticTask",
    "SUM_LEVELS",
    "SumTask",
    "ToyTreeTask",
    "arithmetic_dataset",
    "arithmetic_max_lengths",
    "arithmetic_problem",
    "arithmetic_reward",
    "arithmetic_test_sets",
    "extract_answer",
    "make_task",
    "extract_sum_answer",
    "sum_max_completion_length",
    "sum_problem",
    "sum_reward",
    "toy_tree_reward_func",
]

TOY_CHARS = "LR>"
ARITHMETIC_CHARS = "0123456789+-=,"
# level -> (number of operations, largest operand); the running result can exceed the largest operand.
ARITHMETIC_LEVELS = {1: (1, 19), 2: (2, 9), 3: (2, 19), 4: (3, 19), 5: (4, 19)}
# sums: level -> (number of terms, largest term); the solution adds them in a random order (:func:`sum_problem`).
# Sums: (terms, largest term). Training levels 1-3 (5-7 terms) were picked on GRPO pilots (README "The reasoning
# stand-in"): shorter sums left the warm start either unable or sure of one order; 8-9 terms test longer sums.
SUM_LEVELS = {1: (5, 19), 2: (6, 19), 3: (7, 19), 4: (8, 19), 5: (9, 19)}
_INTEGER = re.compile(r"-?[0-9]+")


def _clean(text) -> str | None:
    """``text`` without whitespace, or None when it is not a string."""
    return "".join(text.split()) if isinstance(text, str) else None


# ---------------------------------------------------------------------------------------------------- toy tree
@dataclass(frozen=True)
class ToyTreeTask:
    """The depth-``depth`` binary tree of docs/paper.md §4.3.

    The target is ``target_path`` when given (the experiments draw it from the starting policy's path
    probabilities, :func:`.toy_start.draw_target`), else a uniform draw from ``seed``. ``prompt`` is the
    text before the completion: the experiments pass the tokenizer's BOS alone, the paper's ``<bos>``
    (:func:`paper_lib.training.toy_start.bos_prompt`).
    """

    n: int
    r_neg: float
    seed: int
    depth: int = 4
    target_path: str | None = None
    prompt: str = ">"
    CHARS: ClassVar[str] = TOY_CHARS
    TOKENS: ClassVar[tuple[str, str]] = ("L", "R")

    def __post_init__(self):
        if not isinstance(self.depth, int) or self.depth < 1:
            raise ValueError(f"depth must be an integer >= 1, got {self.depth!r}")
        if not isinstance(self.n, int) or not 1 <= self.n <= self.depth - 1:
            raise ValueError(f"n must be an integer in 1..depth-1 = 1..{self.depth - 1}, got {self.n!r}")
        if not (isinstance(self.r_neg, int | float) and math.isfinite(self.r_neg) and self.r_neg < 0):
            raise ValueError(f"r_neg must be finite and < 0 (the paper uses -0.5, -1, -1.5), got {self.r_neg!r}")
        if not isinstance(self.seed, int):
            raise ValueError(f"seed must be an integer, got {self.seed!r}")
        if self.target_path is not None and self.target_path not in self.all_paths():
            raise ValueError(f"target_path must be one of the {2**self.depth} paths of L/R, got {self.target_path!r}")
        if not isinstance(self.prompt, str):
            raise ValueError(f"prompt must be a string, got {self.prompt!r}")

    @property
    def target(self) -> str:
        """The rewarded path, e.g. ``"LLRL"``: ``target_path``, or a pure function of ``seed`` and ``depth``."""
        if self.target_path is not None:
            return self.target_path
        rng = random.Random(self.seed)
        return "".join(rng.choice("LR") for _ in range(self.depth))

    def all_paths(self) -> list[str]:
        """The ``2**depth`` valid completions in lexicographic order."""
        return ["".join(p) for p in itertools.product("LR", repeat=self.depth)]

    def reward(self, completion: str) -> float:
        """+1.0 for the target, ``r_neg`` for another path through its first ``n`` tokens, +0.7 otherwise.

        An invalid completion (wrong length, a character outside {L, R}) gets 0.0. The restricted policy
        (:meth:`allowed_token_ids`) never writes one; unconstrained decoding can. Spaces are ignored.
        """
        path = _clean(completion)
        if path is None or len(path) != self.depth or set(path) - {"L", "R"}:
            return 0.0
        target = self.target
        if path == target:
            return 1.0
        return float(self.r_neg) if path[: self.n] == target[: self.n] else 0.7

    def reward_table(self) -> dict[str, float]:
        """Path → reward over :meth:`all_paths`."""
        return {p: self.reward(p) for p in self.all_paths()}

    def dataset(self, n_rows: int) -> Dataset:
        """``n_rows`` identical rows ``{"prompt", "target"}``: one prompt per group, as the paper."""
        if not isinstance(n_rows, int) or n_rows < 1:
            raise ValueError(f"n_rows must be a positive integer, got {n_rows!r}")
        return Dataset.from_list([{"prompt": self.prompt, "target": self.target}] * n_rows)

    def reward_funcs(self) -> list:
        return [toy_tree_reward_func(self)]

    @classmethod
    def allowed_token_ids(cls, tokenizer) -> list[int]:
        """The ids of ``L`` and ``R``, the policy's whole vocabulary (docs/paper.md §4.3: every other token is masked).

        Pass them as ``LambdaGRPOConfig.allowed_token_ids`` so that sampling and training see one restricted
        distribution; with ``max_completion_length = depth`` every rollout is then a path of the tree.
        """
        ids = [tokenizer.encode(c, add_special_tokens=False) for c in cls.TOKENS]
        if any(len(i) != 1 for i in ids):
            raise ValueError(f"the tokenizer must encode L and R as one token each, got {dict(zip(cls.TOKENS, ids))}")
        return [i[0] for i in ids]

    @classmethod
    def sampling_only_kwargs(cls, tokenizer) -> dict:
        """The *sampling-only* mask, a labelled ablation: ``suppress_tokens`` restricts generation to L/R while the
        loss differentiates the full-vocabulary softmax (what an implementer who masks only generation gets)."""
        allowed = set(cls.allowed_token_ids(tokenizer))
        return {"suppress_tokens": [i for i in range(len(tokenizer)) if i not in allowed]}


def toy_tree_reward_func(task: ToyTreeTask):
    """A TRL reward function ``f(completions, **kwargs) -> list[float]`` for ``task``, named ``toy_tree_reward``."""

    def toy_tree_reward(completions, **kwargs) -> list[float]:
        return [task.reward(c) for c in completions]

    toy_tree_reward.__qualname__ = toy_tree_reward.__name__
    return toy_tree_reward


# -------------------------------------------------------------------------------------------------- arithmetic
def _check_level(level, table: dict[int, tuple[int, int]] | None = None) -> tuple[int, int]:
    table = ARITHMETIC_LEVELS if table is None else table
    if isinstance(level, bool) or not isinstance(level, int) or level not in table:
        raise ValueError(f"level must be one of {sorted(table)}, got {level!r}")
    return table[level]


def arithmetic_max_lengths(level: int) -> tuple[int, int]:
    """The longest possible ``(prompt, completion)`` in characters at ``level`` (all operands at the maximum)."""
    n_ops, top = _check_level(level)
    prompt = (n_ops + 1) * len(str(top)) + n_ops + 1
    completion = sum(len(str((k + 2) * top)) for k in range(n_ops)) + n_ops - 1
    return prompt, completion


def arithmetic_problem(rng: random.Random, level: int) -> dict:
    """One problem: ``{"prompt", "answer", "solution", "level"}``, e.g. ``"7+5-3="``, ``"9"``, ``"12,9"``."""
    n_ops, top = _check_level(level)
    value = rng.randint(0, top)
    prompt, steps = str(value), []
    for _ in range(n_ops):
        op = rng.choice("+-")
        operand = rng.randint(0, top) if op == "+" else rng.randint(0, min(top, value))
        value = value + operand if op == "+" else value - operand
        prompt += f"{op}{operand}"
        steps.append(str(value))
    return {"prompt": prompt + "=", "answer": str(value), "solution": ",".join(steps), "level": level}


def _levels_of(problem) -> dict[int, tuple[int, int]]:
    """The level table of a problem generator (None: :func:`arithmetic_problem`)."""
    return SUM_LEVELS if problem is sum_problem else ARITHMETIC_LEVELS


_EXHAUSTED = 200  # draws in a row that were all seen before: the level has no new problems left


def arithmetic_dataset(n: int, levels: Sequence[int], seed: int, exclude: Iterable[str] = (),
                       problem=None) -> Dataset:  # fmt: skip
    """``n`` distinct problems cycling through ``levels``, none with a prompt in ``exclude``.

    A level whose distinct problems run out (:data:`_EXHAUSTED` draws in a row already seen; level 1 has about 600)
    leaves the cycle and the others fill the rest, so ``n`` is limited by all the levels together, not by the
    smallest; while no level runs out the rows are exactly those of a plain cycle. Columns: ``prompt``, ``answer``
    (the final integer as a string), ``solution`` (the worked completion, for a supervised warm start) and
    ``level``. The same arguments always give the same rows. ``problem``: the generator, :func:`arithmetic_problem`
    by default, or :func:`sum_problem` (whose levels are :data:`SUM_LEVELS`).
    """
    problem = arithmetic_problem if problem is None else problem
    table = _levels_of(problem)
    if not isinstance(n, int) or n < 1:
        raise ValueError(f"n must be a positive integer, got {n!r}")
    if not levels:
        raise ValueError("levels must name at least one level")
    for level in levels:
        _check_level(level, table)
    tag = "arithmetic" if problem is arithmetic_problem else problem.__name__
    rng, seen, rows = random.Random(f"{tag}:{seed}:{tuple(levels)}"), set(exclude), []
    active, misses = list(levels), 0
    while len(rows) < n and active:
        level = active[len(rows) % len(active)]
        row = problem(rng, level)
        if row["prompt"] in seen:
            misses += 1
            if misses == _EXHAUSTED:
                active.remove(level)
                misses = 0
            continue
        seen.add(row["prompt"])
        rows.append(row)
        misses = 0
    if len(rows) < n:
        raise ValueError(f"n={n} exceeds the {len(rows)} distinct problems found at levels {tuple(levels)}; lower n")
    return Dataset.from_list(rows)


def arithmetic_test_sets(n_per_level: int, seed: int, exclude: Iterable[str] = (), problem=None) -> dict[str, Dataset]:
    """One held-out set per level: ``{"level1": Dataset, ..., "level5": Dataset}``, ``n_per_level`` rows each."""
    seen, sets = set(exclude), {}
    # levels may share problems (2 ops ≤ 9 also fits 2 ops ≤ 19): keep them apart
    for k in sorted(_levels_of(problem)):
        sets[f"level{k}"] = arithmetic_dataset(n_per_level, (k,), seed, frozenset(seen), problem)
        seen |= set(sets[f"level{k}"]["prompt"])
    return sets


def extract_answer(completion) -> str | None:
    """The last comma-separated field as a canonical integer string (``"012"`` → ``"12"``), else None.

    Spaces are ignored; an empty last field (``"12,"``), non-digits or a non-string give None. A leading minus
    is accepted, so a negative answer is read (and then simply wrong: every answer here is non-negative).
    """
    text = _clean(completion)
    if not text:
        return None
    field = text.rsplit(",", 1)[-1]
    return str(int(field)) if _INTEGER.fullmatch(field) else None


def _exact_match(extract, completions, answer) -> list[float]:
    if len(completions) != len(answer):
        raise ValueError(f"answer has {len(answer)} entries for {len(completions)} completions")
    return [float(extract(c) == str(a)) for c, a in zip(completions, answer)]


def arithmetic_reward(completions, answer, **kwargs) -> list[float]:
    """TRL reward function: 1.0 where :func:`extract_answer` equals the row's ``answer`` column, else 0.0."""
    return _exact_match(extract_answer, completions, answer)


# ---------------------------------------------------------------------------------------------------------- sums
def sum_problem(rng: random.Random, level: int) -> dict:
    """One sum of ``k`` terms whose worked solution adds them **in a random order**, one step per addition::

        prompt "7+15+3="   solution "3+7=10,10+15=25"   answer "25"

    Any order is right, so a model warm-started on such solutions starts out unsure of its first steps: sampled
    completions of one prompt part early, and share more as RL makes the policy prefer an order (docs/paper.md §3.2).
    """
    k, top = _check_level(level, SUM_LEVELS)
    terms = [rng.randint(0, top) for _ in range(k)]
    order = rng.sample(range(k), k)
    solution, total = _worked_sum([terms[j] for j in order])
    return {"prompt": "+".join(map(str, terms)) + "=", "answer": str(total), "solution": solution, "level": level}


def _worked_sum(terms: Sequence[int]) -> tuple[str, int]:
    """``terms`` added left to right, one ``running+term=new`` step each: [3, 7, 15] → ("3+7=10,10+15=25", 25)."""
    total, steps = terms[0], []
    for t in terms[1:]:
        steps.append(f"{total}+{t}={total + t}")
        total += t
    return ",".join(steps), total


def sum_max_completion_length(level: int) -> int:
    """The longest worked solution at ``level`` in characters (every term at the maximum)."""
    k, top = _check_level(level, SUM_LEVELS)
    return sum(len(f"{j * top}+{top}={(j + 1) * top}") for j in range(1, k)) + (k - 2)


def extract_sum_answer(completion) -> str | None:
    """The integer after the last ``=`` of the last comma-separated step (``"3+7=10,10+15=25"`` → ``"25"``), else
    None. Only the answer is scored (an outcome reward); the steps before it are not checked."""
    text = _clean(completion)
    if not text or "=" not in text.rsplit(",", 1)[-1]:
        return None
    field = text.rsplit("=", 1)[-1]
    return str(int(field)) if _INTEGER.fullmatch(field) else None


def sum_reward(completions, answer, **kwargs) -> list[float]:
    """TRL reward function: 1.0 where :func:`extract_sum_answer` equals the row's ``answer`` column, else 0.0."""
    return _exact_match(extract_sum_answer, completions, answer)


@dataclass(frozen=True)
class ArithmeticTask:
    """The arithmetic task at one seed: held-out sets per level, a training set disjoint from all of them, and a
    validation set disjoint from both (:meth:`validation`)."""

    seed: int = 0
    n_test: int = 100
    train_levels: tuple[int, ...] = (1, 2, 3)
    CHARS: ClassVar[str] = ARITHMETIC_CHARS
    LEVELS: ClassVar[dict[int, tuple[int, int]]] = ARITHMETIC_LEVELS
    PROBLEM: ClassVar = staticmethod(arithmetic_problem)  # the generator of one problem at one level

    def __post_init__(self):
        if not isinstance(self.n_test, int) or self.n_test < 1:
            raise ValueError(f"n_test must be a positive integer, got {self.n_test!r}")
        if not self.train_levels:
            raise ValueError("train_levels must name at least one level")
        for level in self.train_levels:
            _check_level(level, self.LEVELS)

    def test_sets(self) -> dict[str, Dataset]:
        return arithmetic_test_sets(self.n_test, self.seed, problem=self.PROBLEM)

    def train(self, n: int) -> Dataset:
        held_out = {p for ds in self.test_sets().values() for p in ds["prompt"]}
        return arithmetic_dataset(n, self.train_levels, self.seed, exclude=held_out, problem=self.PROBLEM)

    def validation(self, n: int, exclude: Iterable[str]) -> Dataset:
        """``n`` problems of the training levels, none in ``exclude`` (pass the training and test prompts)."""
        return arithmetic_dataset(n, self.train_levels, self.seed + 1, exclude=exclude, problem=self.PROBLEM)

    def reward_funcs(self) -> list:
        return [arithmetic_reward]

    def warm_start_rows(self, train: Dataset) -> Dataset:
        """The supervised warm start's ``prompt → solution`` rows: the training rows themselves."""
        return train


@dataclass(frozen=True)
class SumTask(ArithmeticTask):
    """Sums of 5–9 terms added in a random order (:func:`sum_problem`): the CPU reasoning stand-in whose completions
    are long enough (4–8 steps, up to 78 characters) for groups to part early and share more as RL sharpens them."""

    LEVELS: ClassVar[dict[int, tuple[int, int]]] = SUM_LEVELS
    PROBLEM: ClassVar = staticmethod(sum_problem)
    ORDERS: ClassVar[int] = 8  # worked solutions per training problem in the warm start, each in its own order

    def reward_funcs(self) -> list:
        return [sum_reward]

    def warm_start_rows(self, train: Dataset) -> Dataset:
        """Each training problem with :attr:`ORDERS` worked solutions in seeded random orders, so that the warm start
        learns that any order is right instead of memorising one order per problem (which makes its first steps
        as sure as its arithmetic, and the groups of RL share long prefixes from the start)."""
        rng, rows = random.Random(f"sum-orders:{self.seed}"), []
        for row in train:
            terms = [int(t) for t in row["prompt"].rstrip("=").split("+")]
            for _ in range(self.ORDERS):
                rows.append(row | {"solution": _worked_sum(rng.sample(terms, len(terms)))[0]})
        return Dataset.from_list(rows)


# ---------------------------------------------------------------------------------------------------- registry
TASKS = {"toy_tree": ToyTreeTask, "arithmetic": ArithmeticTask, "sums": SumTask}


def make_task(name: str, **kwargs) -> ToyTreeTask | ArithmeticTask:
    """Build a task by name: ``make_task("toy_tree", n=1, r_neg=-1.0, seed=0)``."""
    if name not in TASKS:
        raise ValueError(f"unknown task {name!r}; known: {sorted(TASKS)}")
    return TASKS[name](**kwargs)
