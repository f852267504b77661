r"""The toy task's starting point: the prompt, the starting policy's exact path probabilities, the target rule, and
the trainer arguments that restrict the policy to L/R.

**Why the target is drawn from the starting policy.** Table 1 asks whether a method *exploits* a target it has
found. That is only testable when the target is neither already likely (a pretrained LM can put 0.2+ on one
path, and both methods then converge on it within a few steps) nor never sampled. The paper's GRPO curve starts
at 0.05–0.12 target frequency (docs/paper.md §5.1), so the rule, fixed before any λ-GRPO comparison, is:

- compute the probability of each of the $2^{depth}$ paths under the starting policy at the sampling
  temperature, exactly (one forward pass over all paths);
- the eligible paths are those with probability in :data:`TARGET_RANGE`; the seed picks one uniformly;
- if none is eligible, the path whose probability is nearest the range (by log distance) is the target.

For a randomly initialised tiny model every path is near $1/16=0.0625$, so the rule is a uniform draw; for
SmolLM2 it excludes the paths the pretrained model already prefers.
"""

from __future__ import annotations

import dataclasses
import math
import os
import random
from pathlib import Path

import torch

from paper_lib.training.tasks import ToyTreeTask

__all__ = ["TARGET_RANGE", "bos_prompt", "draw_target", "path_probabilities", "toy_policy_kwargs", "toy_task"]

TARGET_RANGE = (0.05, 0.12)  # the paper's GRPO starting target frequency at n = 1, r_neg = -1 (docs/paper.md §5.1)


def bos_prompt(tokenizer) -> str:
    """The prompt text whose encoding (as TRL encodes prompts) is the tokenizer's BOS alone: the paper's ``<bos>``.

    A tokenizer that adds BOS itself gets ``""``; one that does not gets the BOS token's text.
    """
    if tokenizer.bos_token_id is None:
        raise ValueError(f"{type(tokenizer).__name__} has no BOS token to start the toy task from")
    for text in ("", tokenizer.bos_token):
        if tokenizer(text)["input_ids"] == [tokenizer.bos_token_id]:
            return text
    raise ValueError(f"no prompt text encodes to BOS ({tokenizer.bos_token!r}) alone with {type(tokenizer).__name__}")


@torch.no_grad()
def path_probabilities(model, tokenizer, task: ToyTreeTask, temperature: float) -> dict[str, float]:
    """Path → probability of sampling it from ``task.prompt`` at ``temperature``, exactly, under ``model``.

    The model must already be restricted to L/R (:func:`paper_lib.vocab.restrict_vocabulary`), as the trainer
    samples it; the probabilities then sum to 1.
    """
    if not (math.isfinite(temperature) and temperature > 0):
        raise ValueError(f"temperature must be finite and > 0, got {temperature!r}")
    paths = task.all_paths()
    prompt = tokenizer(task.prompt)["input_ids"]
    ids = [prompt + [tokenizer.convert_tokens_to_ids(c) for c in p] for p in paths]
    input_ids = torch.tensor(ids, device=model.device)
    was_training = model.training
    model.eval()
    logits = model(input_ids=input_ids).logits[:, len(prompt) - 1 : -1].float() / temperature
    model.train(was_training)
    logps = torch.log_softmax(logits, dim=-1).gather(-1, input_ids[:, len(prompt) :, None]).squeeze(-1)
    return {p: float(v) for p, v in zip(paths, logps.sum(-1).exp().tolist())}


def draw_target(probabilities: dict[str, float], seed: int, low: float = TARGET_RANGE[0],
                high: float = TARGET_RANGE[1]) -> str:  # fmt: skip
    """The module's rule: a seeded uniform draw among paths with probability in ``[low, high]``, else the nearest."""
    if not 0 < low <= high < 1:
        raise ValueError(f"need 0 < low <= high < 1, got {low=}, {high=}")
    eligible = sorted(p for p, q in probabilities.items() if low <= q <= high)
    if eligible:
        return random.Random(f"toy-target:{seed}").choice(eligible)

    def distance(q: float) -> float:
        q = max(q, 1e-300)
        return math.log(low / q) if q < low else math.log(q / high)

    return min(sorted(probabilities), key=lambda p: distance(probabilities[p]))


def toy_task(cfg, policy: Path | str, run_dir: Path | None = None) -> ToyTreeTask:
    """The toy task of ``cfg`` started from ``policy``: BOS as the prompt, the target drawn by
    :func:`paper_lib.draw_target` from the starting policy's exact path probabilities at the sampling
    temperature. With ``run_dir``, the draw is recorded in ``toy_target.json`` (the notebooks report each seed's
    initial P(target) from it)."""
    from transformers import AutoModelForCausalLM, AutoTokenizer

    from paper_lib import vocab
    from paper_lib.rundir import write_json

    tokenizer = AutoTokenizer.from_pretrained(policy)
    task = ToyTreeTask(n=cfg.toy_n, r_neg=cfg.toy_r_neg, seed=cfg.seed, prompt=bos_prompt(tokenizer))
    model = AutoModelForCausalLM.from_pretrained(policy, dtype="float32")
    vocab.restrict_vocabulary(model, task.allowed_token_ids(tokenizer))
    probabilities = path_probabilities(model, tokenizer, task, cfg.temperature)
    del model
    target = draw_target(probabilities, cfg.seed)
    if run_dir is not None and os.environ.get("RANK", "0") == "0":  # rank 0 writes
        write_json(run_dir / "toy_target.json", {"target": target, "p0_target": probabilities[target],
                                                 "rule_range": list(TARGET_RANGE), "prompt": task.prompt,
                                                 "temperature": cfg.temperature, "p0": probabilities})  # fmt: skip
    return dataclasses.replace(task, target_path=target)


def toy_policy_kwargs(mask: str, tokenizer, use_vllm: bool = False) -> dict:
    """``LambdaGRPOConfig`` arguments that restrict the toy policy to L/R: for sampling and training (``"policy"``,
    the experiment), or for sampling only (``"sampling_only"``, the labelled ablation of :mod:`paper_lib.vocab`).

    With vLLM the sampling restriction is vLLM's own ``allowed_token_ids`` (its ``SamplingParams`` takes no
    ``suppress_tokens``); ``LambdaGRPOConfig`` adds it by itself for ``"policy"``. Dropout is off in both: with it,
    the log-probs TRL trains on are those of a randomly thinned network, not of the policy that sampled.
    """
    same = {"disable_dropout": True}  # GPT-2 small has 0.1 dropout: the trained policy would differ from the sampled
    if mask == "policy":
        return same | {"allowed_token_ids": ToyTreeTask.allowed_token_ids(tokenizer)}
    if mask == "sampling_only":
        if use_vllm:
            return same | {"generation_kwargs": {"allowed_token_ids": ToyTreeTask.allowed_token_ids(tokenizer)}}
        return same | {"generation_kwargs": ToyTreeTask.sampling_only_kwargs(tokenizer)}
    raise ValueError(f"toy_mask must be 'policy' or 'sampling_only', got {mask!r}")
