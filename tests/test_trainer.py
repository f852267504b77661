"""LambdaGRPOTrainer against TRL's own GRPOTrainer and against paper_lib.losses."""

from pathlib import Path

import pytest
import torch
from conftest import save_tiny_policy
from datasets import Dataset

from paper_lib import losses
from paper_lib.prm import outcome_advantages
from paper_lib.trainer import LambdaGRPOConfig, LambdaGRPOTrainer
from paper_lib.trie import lambda_weights

CHARS = "0123456789+-=,"


def _length_reward(completions, **kwargs):
    """A reward with variance inside every group, so that every step really updates the policy."""
    return [float(len(c) % 3) / 2 for c in completions]


def _data(n=32):
    return Dataset.from_list([{"prompt": f"{a}+{b}=", "answer": str(a + b)} for a in range(8) for b in range(4)][:n])


@pytest.fixture(scope="module")
def policy(tmp_path_factory):
    """A tiny Qwen2 saved to disk (TRL builds the β > 0 reference model from the policy's path)."""
    return save_tiny_policy(tmp_path_factory.mktemp("policy"), CHARS)


def _trainer(policy, cls=LambdaGRPOTrainer, config_cls=LambdaGRPOConfig, steps=4, reward=_length_reward, **kw):
    from trl import GRPOConfig

    path, tokenizer = policy
    extra = {} if config_cls is GRPOConfig else {"process_weighting": kw.pop("process_weighting", True)}
    settings = dict(output_dir="/tmp/unused", use_cpu=True, report_to="none", save_strategy="no", disable_tqdm=True,
                    logging_steps=1, num_generations=4, per_device_train_batch_size=8, max_completion_length=6,
                    learning_rate=3e-3, max_steps=steps, seed=3)  # fmt: skip
    args = config_cls(**(settings | extra | kw))
    return cls(model=path, reward_funcs=reward, args=args, train_dataset=_data(), processing_class=tokenizer)


def _weights_after_training(trainer):
    trainer.train()
    return {k: v.detach().clone() for k, v in trainer.model.state_dict().items()}


@pytest.mark.parametrize("loss_type", ["grpo", "dapo"])
def test_process_weighting_off_is_bit_identical_to_trl(policy, loss_type):
    from trl import GRPOConfig, GRPOTrainer

    trl_weights = _weights_after_training(_trainer(policy, GRPOTrainer, GRPOConfig, loss_type=loss_type))
    ours = _weights_after_training(_trainer(policy, process_weighting=False, loss_type=loss_type))
    lam = _weights_after_training(_trainer(policy, process_weighting=True, loss_type=loss_type))
    assert all(torch.equal(trl_weights[k], ours[k]) for k in trl_weights)
    assert not all(torch.equal(trl_weights[k], lam[k]) for k in trl_weights)  # λ-GRPO really changes the update


def _fixed_batch(trainer, gen):
    """A generation batch with heavy prefix sharing, in the shape TRL's loss expects."""
    G, B, T = 4, 8, 6
    ids = torch.randint(3, 5, (B, T), generator=gen)  # two tokens only: long shared prefixes
    ids[4:, :2] = ids[4, :2]
    lengths = torch.randint(1, T + 1, (B,), generator=gen)
    mask = (torch.arange(T) < lengths[:, None]).long()
    rewards = torch.randint(0, 2, (B,), generator=gen).float()
    rewards[::G] = 1 - rewards[1::G]  # no group with equal rewards
    advantages = outcome_advantages(rewards.view(-1, G)).flatten()
    prompt = torch.tensor([[1, 4, 13, 5, 15]] * B)
    inputs = {"prompt_ids": prompt, "prompt_mask": torch.ones_like(prompt), "completion_ids": ids,
              "completion_mask": mask, "advantages": advantages, "num_items_in_batch": mask.sum()}  # fmt: skip
    return inputs, rewards


@pytest.mark.parametrize("beta", [0.0, 0.04])
@pytest.mark.parametrize("loss_type", ["dapo", "bnpo", "dr_grpo", "grpo"])
@pytest.mark.parametrize("process_weighting", [True, False])
def test_compute_loss_matches_paper_lib(policy, beta, loss_type, process_weighting):
    trainer = _trainer(policy, loss_type=loss_type, beta=beta, process_weighting=process_weighting)
    trainer.current_gradient_accumulation_steps = 1
    inputs, rewards = _fixed_batch(trainer, torch.Generator().manual_seed(0))
    ids, mask = inputs["completion_ids"], inputs["completion_mask"]
    weights = lambda_weights(ids.view(-1, 4, ids.shape[1]), mask.view(-1, 4, ids.shape[1])).view(ids.shape)
    if process_weighting:
        trainer._weigh(inputs, weights)
    if beta:
        with torch.no_grad():
            inputs["ref_per_token_logps"] = -torch.rand(ids.shape, generator=torch.Generator().manual_seed(1)) * 3
    trl_loss = trainer._compute_loss(trainer.model, inputs)
    w = weights if process_weighting else mask.float()
    adv = outcome_advantages(rewards.view(-1, 4)).flatten()
    # The reference: paper_lib's per-token term on TRL's own per-token log-probs (its fused LM head), aggregated as
    # each TRL loss type normalises.
    full, attention = torch.cat([inputs["prompt_ids"], ids], 1), torch.cat([inputs["prompt_mask"], mask], 1)
    logps, _, _ = trainer._get_per_token_logps_and_entropies(trainer.model, full, attention, ids.shape[1])
    per_token = -adv[:, None] * torch.ones_like(logps)  # on-policy: ratio 1, min(.) = a
    if beta:
        per_token = per_token + beta * losses.k3_kl(logps, inputs["ref_per_token_logps"])
    per_token = per_token * w
    m = mask.float()
    expected = {
        "dapo": (per_token * m).sum() / m.sum(),
        "bnpo": (per_token * m).sum() / m.sum(),
        "dr_grpo": (per_token * m).sum() / (m.shape[0] * trainer.max_completion_length),
        "grpo": ((per_token * m).sum(-1) / m.sum(-1)).mean(),
    }[loss_type]
    assert torch.allclose(trl_loss, expected, atol=1e-6), (trl_loss - expected).item()
    if loss_type in ("dapo", "grpo"):  # and the same through paper_lib.losses' own aggregation
        fn = losses.lambda_grpo_loss if process_weighting else losses.grpo_loss
        norm = "token" if loss_type == "dapo" else "sequence"
        ref = inputs.get("ref_per_token_logps")
        groups = lambda x: None if x is None else x.view(-1, 4, *x.shape[1:])  # noqa: E731
        ours = fn(groups(logps), groups(ids), groups(mask), groups(rewards), ref_logps=groups(ref), beta=beta,
                  normalization=norm)  # fmt: skip
        assert torch.allclose(trl_loss, ours, atol=1e-6)


def test_degenerate_groups_train_without_nan(policy):
    """Equal rewards, rewards that are None or NaN, and completions cut to one token (often empty) or truncated."""
    import math

    from paper_lib.training.callbacks import counting

    def flaky(completions, **kwargs):
        out = [1.0] * len(completions)
        out[0], out[1] = None, float("nan")
        return out

    trainer = _trainer(policy, reward=counting(flaky), max_completion_length=1, beta=0.04)
    trainer.train()
    logs = [h for h in trainer.state.log_history if "loss" in h]
    assert len(logs) == 4
    assert all(math.isfinite(h["loss"]) and math.isfinite(h["grad_norm"]) for h in logs)
    assert all(h["reward_invalid_frac"] == 2 / 8 for h in logs)  # counted, and treated as unscorable by TRL


@pytest.mark.parametrize("beta", [0.0, 0.04])
def test_scale_matched_grpo_is_grpo_times_the_mean_weight(policy, beta):
    """The control arm: every token (policy and KL) scaled by one number, the batch's mean λ weight."""
    grpo = _trainer(policy, process_weighting=False, beta=beta)
    scaled = _trainer(policy, process_weighting=False, scale_matched=True, beta=beta)
    inputs, _ = _fixed_batch(grpo, torch.Generator().manual_seed(0))
    ids, mask = inputs["completion_ids"], inputs["completion_mask"]
    _, stats = scaled._gathered_weights_and_stats(ids, mask)
    weights = lambda_weights(ids.view(-1, 4, ids.shape[1]), mask.view(-1, 4, ids.shape[1]))
    assert stats["batch_weight_mean"] == pytest.approx(float(weights.sum() / mask.sum()))
    if beta:
        inputs["ref_per_token_logps"] = -torch.rand(ids.shape, generator=torch.Generator().manual_seed(1)) * 3
    for t in (grpo, scaled):
        t.current_gradient_accumulation_steps = 1
    plain = grpo._compute_loss(grpo.model, dict(inputs))
    weighted = dict(inputs)
    scaled._weigh(weighted, mask.float() * stats["batch_weight_mean"])
    assert torch.allclose(scaled._compute_loss(scaled.model, weighted), plain * stats["batch_weight_mean"], atol=1e-6)


def test_scale_matched_needs_plain_grpo():
    with pytest.raises(ValueError, match="scale_matched=True is the GRPO control arm"):
        LambdaGRPOConfig(output_dir="/tmp/unused", use_cpu=True, report_to="none", scale_matched=True)


@pytest.mark.parametrize("process_weighting", [True, False])
def test_kl_gradient_is_the_papers_k3_with_pi_off_the_reference(policy, process_weighting):
    """At β > 0 with π ≠ π_ref, the trainer's *gradient* equals paper_lib.losses' (plain k3, the paper's D_{i,t} and
    the authors' `_step`) once TRL's bias-corrected KL (its default, DeepSeek-V3.2's estimator) is off, as every run
    of this project sets it; with TRL's default the gradients differ (the loss values agree, which is why a
    loss-only test missed it)."""
    from paper_lib.paper_scale.presets import grpo_config_kwargs, paper_presets
    from paper_lib.training import recipe
    from paper_lib.training.config import RunConfig

    assert grpo_config_kwargs(paper_presets("downstream")[0], "/tmp/x", 1)["use_bias_correction_kl"] is False
    cpu_args = recipe._grpo_args(RunConfig(name="x", beta=0.04), Path("/tmp/x"), policy[1], None)
    assert cpu_args.use_bias_correction_kl is False
    grads = {}
    for corrected in (False, True):
        trainer = _trainer(policy, loss_type="dapo", beta=0.04, process_weighting=process_weighting,
                           use_bias_correction_kl=corrected)  # fmt: skip
        trainer.current_gradient_accumulation_steps = 1
        inputs, rewards = _fixed_batch(trainer, torch.Generator().manual_seed(0))
        ids, mask = inputs["completion_ids"], inputs["completion_mask"]
        if process_weighting:
            weights = lambda_weights(ids.view(-1, 4, ids.shape[1]), mask.view(-1, 4, ids.shape[1])).view(ids.shape)
            trainer._weigh(inputs, weights)
        inputs["ref_per_token_logps"] = -torch.rand(ids.shape, generator=torch.Generator().manual_seed(1)) * 3
        params = [p for p in trainer.model.parameters() if p.requires_grad]
        trl_grad = torch.autograd.grad(trainer._compute_loss(trainer.model, inputs), params)
        full, attention = torch.cat([inputs["prompt_ids"], ids], 1), torch.cat([inputs["prompt_mask"], mask], 1)
        logps, _, _ = trainer._get_per_token_logps_and_entropies(trainer.model, full, attention, ids.shape[1])
        fn = losses.lambda_grpo_loss if process_weighting else losses.grpo_loss
        groups = lambda x: x.view(-1, 4, *x.shape[1:])  # noqa: E731
        ref = groups(inputs["ref_per_token_logps"])
        ours = fn(groups(logps), groups(ids), groups(mask), groups(rewards), ref_logps=ref, beta=0.04,
                  normalization="token")  # fmt: skip
        ours_grad = torch.autograd.grad(ours, params)
        grads[corrected] = max(float((a - b).abs().max()) for a, b in zip(trl_grad, ours_grad))
        scale = max(float(b.abs().max()) for b in ours_grad)
    assert grads[False] < 1e-6 * max(scale, 1.0)
    assert grads[True] > 1e-3 * scale  # TRL's default is another estimator


def test_the_readme_snippet_runs_on_a_cpu_machine(policy, tmp_path):
    """README "λ-GRPO on TRL": no use_cpu, no bf16 given; on a machine without CUDA HF would refuse TRL's bf16."""
    path, tokenizer = policy
    args = LambdaGRPOConfig(output_dir=str(tmp_path / "out"), process_weighting=True, loss_type="dapo",
                            num_generations=4, per_device_train_batch_size=8, max_completion_length=6, max_steps=1,
                            beta=0.0, report_to="none", save_strategy="no")  # fmt: skip
    if not torch.cuda.is_available():
        assert args.bf16 is False
    trainer = LambdaGRPOTrainer(model=path, reward_funcs=_length_reward, args=args, train_dataset=_data(),
                                processing_class=tokenizer)  # fmt: skip
    trainer.train()
    assert trainer.state.global_step == 1


def test_an_unsaved_model_with_beta_is_refused_with_a_reason(policy):
    from transformers import AutoModelForCausalLM

    path, tokenizer = policy
    model = AutoModelForCausalLM.from_pretrained(path)
    model.config._name_or_path = ""  # as a model built in memory from a config
    args = LambdaGRPOConfig(output_dir="/tmp/unused", use_cpu=True, beta=0.04, num_generations=4,
                            per_device_train_batch_size=8, report_to="none")  # fmt: skip
    with pytest.raises(ValueError, match="save it first"):
        LambdaGRPOTrainer(model=model, reward_funcs=_length_reward, args=args, train_dataset=_data(),
                          processing_class=tokenizer)  # fmt: skip


def test_the_weighted_beta_refuses_a_kl_that_does_not_line_up_with_the_weights():
    """Eq. 9 weights the KL term too; a per-token KL of another shape must not fall back to an unweighted one."""
    from paper_lib.trainer import _WeightedBeta

    weights = torch.tensor([[1.0, 0.5], [0.25, 1.0]])
    beta = _WeightedBeta(0.04, weights)
    kl = torch.ones(2, 2)
    assert torch.equal(beta * kl, 0.04 * weights) and torch.equal(kl * beta, 0.04 * weights)
    assert beta * 2.0 == pytest.approx(0.08) and float(beta * torch.tensor(2.0)) == pytest.approx(0.08)  # scalars
    with pytest.raises(ValueError, match=r"β multiplies a \(2, 3\) tensor, but the λ weights are \(2, 2\)"):
        beta * torch.ones(2, 3)
    with pytest.raises(ValueError, match="λ weights"):
        torch.ones(3) * beta
