"""Pins the TRL version and the hooks LambdaGRPOTrainer relies on: an upgrade that moves them fails here."""

import inspect

import pytest
import trl

from paper_lib.trainer import LambdaGRPOConfig


def test_trl_version_is_pinned():
    assert trl.__version__ == "1.16.0", "LambdaGRPOTrainer was validated against trl 1.16.0; re-run the contract"


def test_hooks_are_where_we_expect_them():
    from trl import GRPOTrainer

    loss_src = inspect.getsource(GRPOTrainer._compute_loss)
    assert loss_src.count("self.beta * per_token_kl") == 1  # the KL term our weighted β multiplies
    assert "if advantages.dim() == 1:" in loss_src  # (B, T) advantages are passed through
    gen_src = inspect.getsource(GRPOTrainer._generate_and_score_completions)
    assert "self.accelerator.process_index * len(prompts)" in gen_src  # how TRL slices a rank's rows
    assert '"completion_ids": completion_ids' in gen_src and '"advantages": advantages' in gen_src
    assert "shuffle_sequence_dict" in inspect.getsource(GRPOTrainer._prepare_inputs)  # extra (B, T) keys survive
    # boxed_stop: _generate_single_turn returns (completion_ids, logprobs) and HF-generates with the unwrapped model
    single = inspect.signature(GRPOTrainer._generate_single_turn)
    assert list(single.parameters)[1:] == ["prompt_ids", "images", "multimodal_fields", "num_generations",
                                           "has_tool_images"]  # fmt: skip
    single_src = inspect.getsource(GRPOTrainer._generate_single_turn)
    assert "return completion_ids, logprobs" in single_src and "unwrapped_model.generate(" in single_src


@pytest.mark.parametrize(
    "kw, message",
    [
        (dict(loss_type="luspo"), "not supported with process_weighting"),
        (dict(loss_type="vespo"), "not supported with process_weighting"),
        (dict(loss_type="cispo"), "not supported with process_weighting"),
        (dict(importance_sampling_level="sequence"), "importance_sampling_level='sequence'"),
        (dict(use_liger_kernel=True), "Liger"),
        (dict(num_generations=1), "num_generations must be >= 2"),
    ],
)
def test_unsupported_settings_fail_at_construction(kw, message):
    with pytest.raises(ValueError, match=message):
        LambdaGRPOConfig(output_dir="/tmp/unused", use_cpu=True, report_to="none", **kw)


def test_grpo_mode_accepts_every_trl_loss():
    cfg = LambdaGRPOConfig(output_dir="/tmp/unused", use_cpu=True, report_to="none", process_weighting=False,
                           loss_type="cispo")  # fmt: skip
    assert cfg.loss_type == "cispo"
