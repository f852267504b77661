"""One policy for sampling and training: the restricted LM head, its pruned twin, and the toy task's start."""

import math

import pytest
import torch
from conftest import save_tiny_policy

from paper_lib import vocab
from paper_lib.trainer import LambdaGRPOConfig, LambdaGRPOTrainer
from paper_lib.training import toy_start
from paper_lib.training.models import char_tokenizer, tiny_qwen2
from paper_lib.training.smollm2 import prune_vocabulary
from paper_lib.training.tasks import TOY_CHARS, ToyTreeTask


@pytest.fixture(scope="module")
def toy_policy(tmp_path_factory):
    return save_tiny_policy(tmp_path_factory.mktemp("toy_policy"), TOY_CHARS)


def _toy_trainer(toy_policy, mask: str, steps: int = 3, temperature: float = 0.75):
    from paper_lib.training.toy_start import toy_policy_kwargs

    path, tokenizer = toy_policy
    task = ToyTreeTask(n=1, r_neg=-1.0, seed=0, prompt=toy_start.bos_prompt(tokenizer))
    args = LambdaGRPOConfig(output_dir="/tmp/unused", use_cpu=True, report_to="none", save_strategy="no",
                            disable_tqdm=True, logging_steps=1, num_generations=16, per_device_train_batch_size=16,
                            max_completion_length=4, learning_rate=1e-2, max_steps=steps, seed=0, loss_type="dapo",
                            bf16=False, temperature=temperature, **toy_policy_kwargs(mask, tokenizer))  # fmt: skip
    return LambdaGRPOTrainer(model=path, reward_funcs=task.reward_funcs(), args=args, train_dataset=task.dataset(16),
                             processing_class=tokenizer)  # fmt: skip


def _log_probs(trainer, ids):
    """The per-token log-probs (and entropies) TRL's loss differentiates, for completions of 4 tokens."""
    attention = torch.ones_like(ids)
    logps, entropy, _ = trainer._get_per_token_logps_and_entropies(trainer.model, ids, attention, 4,
                                                                   compute_entropy=True)  # fmt: skip
    return logps, entropy


def _all_paths(tokenizer):
    task = ToyTreeTask(n=1, r_neg=-1.0, seed=0)
    bos = tokenizer.bos_token_id
    return torch.tensor([[bos, *tokenizer.convert_tokens_to_ids(list(p))] for p in task.all_paths()])


def test_trl_trains_on_the_log_of_the_restricted_distribution(toy_policy):
    """The log-probs in TRL's loss are log softmax over {L, R} of the model's own logits, at the temperature."""
    path, tokenizer = toy_policy
    trainer = _toy_trainer(toy_policy, "policy")
    ids = _all_paths(tokenizer)
    logps, entropy = _log_probs(trainer, ids)
    plain = tiny_qwen2(tokenizer, seed=0)  # the same weights, no restriction: the reference is computed by hand
    allowed = ToyTreeTask.allowed_token_ids(tokenizer)
    logits = plain(input_ids=ids).logits[:, :-1][:, -4:][..., allowed] / 0.75
    ref = torch.log_softmax(logits, -1)
    expected = ref.gather(-1, (ids[:, -4:, None] == allowed[1]).long()).squeeze(-1)
    torch.testing.assert_close(logps, expected, atol=1e-6, rtol=1e-5)
    torch.testing.assert_close(entropy, -(ref.exp() * ref).sum(-1), atol=1e-6, rtol=1e-5)
    assert float(entropy.max()) <= math.log(2) + 1e-6
    assert torch.allclose(logps.sum(-1).exp().sum(), torch.tensor(1.0))  # the 16 paths carry all the mass


def test_sampling_only_mask_trains_the_full_softmax(toy_policy):
    """The labelled ablation: the same rollouts, but the loss differentiates log π_full = log π_LR + log q_LR."""
    _, tokenizer = toy_policy
    ids = _all_paths(tokenizer)
    restricted, _ = _log_probs(_toy_trainer(toy_policy, "policy"), ids)
    full, entropy = _log_probs(_toy_trainer(toy_policy, "sampling_only"), ids)
    assert (full < restricted - 1e-3).all()  # q_LR < 1: every token pays the mass outside {L, R}
    assert float(entropy.detach().max()) > math.log(2)  # the symptom in the old runs: entropy above ln 2


def test_restricted_training_logs_entropy_below_ln2_and_samples_only_paths(toy_policy):
    trainer = _toy_trainer(toy_policy, "policy", steps=3, temperature=1.0)
    completions, original = [], trainer.reward_funcs[0]
    trainer.reward_funcs[0] = lambda **kw: (completions.extend(kw["completions"]), original(**kw))[1]
    trainer.train()
    entropies = [row["entropy"] for row in trainer.state.log_history if "entropy" in row]
    assert len(entropies) == 3 and max(entropies) <= math.log(2)
    assert len(completions) == 48 and set(completions) <= set(ToyTreeTask(n=1, r_neg=-1.0, seed=0).all_paths())


def test_restrict_vocabulary_is_a_fixed_bias_and_checks_its_input():
    tokenizer = char_tokenizer(TOY_CHARS)
    model = tiny_qwen2(tokenizer, seed=0)
    allowed = ToyTreeTask.allowed_token_ids(tokenizer)
    assert vocab.restricted_ids(model) is None
    vocab.restrict_vocabulary(model, allowed)
    assert vocab.restricted_ids(model) == allowed and vocab.restrict_vocabulary(model, allowed) is model
    bias = model.get_output_embeddings().bias
    assert not bias.requires_grad and "lm_head.bias" not in model.state_dict()  # checkpoints stay plain models
    probs = torch.softmax(model(input_ids=torch.tensor([[1, 5]])).logits, -1)[0, -1]
    assert math.isclose(float(probs[allowed].sum()), 1.0, rel_tol=1e-6) and int((probs > 0).sum()) == 2  # 0 elsewhere
    with pytest.raises(ValueError, match="already restricted to"):
        vocab.restrict_vocabulary(model, [3])
    for bad, message in [([], "non-empty"), ([3, 3], "repeats"), ([-1], "non-negative"), ([1.5], "non-negative"),
                         ("LR", "non-empty"), ([99], "exceed the LM head's 6 outputs")]:  # fmt: skip
        with pytest.raises(ValueError, match=message):
            vocab.restrict_vocabulary(tiny_qwen2(tokenizer, seed=0), bad)
    with pytest.raises(ValueError, match="allowed_token_ids repeats"):
        LambdaGRPOConfig(output_dir="/tmp/unused", use_cpu=True, allowed_token_ids=[4, 4])


def test_pruned_vocabulary_keeps_every_logit_of_the_kept_tokens():
    big = char_tokenizer(TOY_CHARS + "abcdefghij0123456789")
    model = tiny_qwen2(big, seed=1)
    pruned, small = prune_vocabulary(model, big, "LR")
    assert small.convert_ids_to_tokens(list(range(5))) == ["<pad>", "<bos>", "<eos>", "L", "R"]
    assert pruned.get_input_embeddings().weight.shape[0] == 5 and model.get_input_embeddings().weight.shape[0] == 26
    old = [big.convert_tokens_to_ids(t) for t in ["<pad>", "<bos>", "<eos>", "L", "R"]]
    seq_old = torch.tensor([[old[1], old[3], old[4], old[4], old[3]]])
    seq_new = torch.tensor([[1, 3, 4, 4, 3]])
    torch.testing.assert_close(pruned(input_ids=seq_new).logits, model(input_ids=seq_old).logits[..., old])
    assert small.decode([3, 4, 4]) == "LRR" and small("<bos>")["input_ids"] == [1]
    with pytest.raises(ValueError, match="characters not in the tokenizer's alphabet: \\['x'\\]"):
        prune_vocabulary(model, big, "LRx")


def test_path_probabilities_are_exact_and_the_target_rule_is_the_stated_one():
    tokenizer = char_tokenizer(TOY_CHARS)
    model = vocab.restrict_vocabulary(tiny_qwen2(tokenizer, seed=0), ToyTreeTask.allowed_token_ids(tokenizer))
    task = ToyTreeTask(n=1, r_neg=-1.0, seed=0, prompt=toy_start.bos_prompt(tokenizer))
    probs = toy_start.path_probabilities(model, tokenizer, task, temperature=0.75)
    assert sorted(probs) == task.all_paths() and math.isclose(sum(probs.values()), 1.0, rel_tol=1e-6)
    # brute force for one path: the product of next-token probabilities, one forward per prefix
    ids = [tokenizer.bos_token_id]
    p = 1.0
    for c in "LRRL":
        dist = torch.softmax(model(input_ids=torch.tensor([ids])).logits[0, -1] / 0.75, -1)
        token = tokenizer.convert_tokens_to_ids(c)
        p, ids = p * float(dist[token]), ids + [token]
    assert math.isclose(probs["LRRL"], p, rel_tol=1e-5)
    # the rule: a seeded uniform draw among paths in [low, high], else the nearest by log distance
    table = {"LL": 0.5, "LR": 0.3, "RL": 0.08, "RR": 0.12}
    assert {toy_start.draw_target(table, s) for s in range(40)} == {"RL", "RR"}
    assert toy_start.draw_target({"LL": 0.6, "LR": 0.2, "RL": 0.19, "RR": 0.01}, 0) == "RL"  # 0.19 is nearest
    assert toy_start.draw_target({"LL": 0.97, "LR": 0.01, "RL": 0.01, "RR": 0.01}, 0) == "LR"  # a tie: sorted first
    assert toy_start.bos_prompt(tokenizer) == "" and tokenizer("")["input_ids"] == [tokenizer.bos_token_id]


def test_toy_runs_hand_vllm_only_sampling_params_it_takes():
    """vLLM's SamplingParams has no suppress_tokens (it broke every toy run with use_vllm=true); allowed_token_ids."""
    from paper_lib.training.toy_start import toy_policy_kwargs

    tokenizer = char_tokenizer(TOY_CHARS)
    ids = ToyTreeTask.allowed_token_ids(tokenizer)
    args = LambdaGRPOConfig(output_dir="/tmp/unused", use_cpu=True, use_vllm=True,
                            **toy_policy_kwargs("policy", tokenizer, use_vllm=True))  # fmt: skip
    assert args.generation_kwargs == {"allowed_token_ids": ids} and args.allowed_token_ids == ids
    ablation = toy_policy_kwargs("sampling_only", tokenizer, use_vllm=True)
    assert ablation == {"generation_kwargs": {"allowed_token_ids": ids}, "disable_dropout": True}
    assert args.disable_dropout  # GPT-2 small's dropout would make the trained policy differ from the sampled one
    assert "suppress_tokens" in toy_policy_kwargs("sampling_only", tokenizer)["generation_kwargs"]  # HF generate
