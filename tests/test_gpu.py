"""The GPU tier: λ-GRPO in bf16 on CUDA (skipped without it)."""

import pytest
import torch
from datasets import Dataset
from datasets.utils.logging import disable_progress_bar

disable_progress_bar()


# == GPU tier ===================================================================================================
@pytest.mark.gpu
def test_lambda_grpo_trains_in_bf16_on_cuda(tmp_path):
    if not torch.cuda.is_available():
        pytest.skip("no CUDA")
    from paper_lib.trainer import LambdaGRPOConfig, LambdaGRPOTrainer
    from paper_lib.training.models import char_tokenizer, tiny_qwen2

    tokenizer = char_tokenizer("0123456789+=,")
    tiny_qwen2(tokenizer, seed=0).save_pretrained(tmp_path / "policy")
    tokenizer.save_pretrained(tmp_path / "policy")
    data = Dataset.from_list([{"prompt": f"{a}+{b}=", "answer": str(a + b)} for a in range(4) for b in range(4)])
    args = LambdaGRPOConfig(output_dir=str(tmp_path / "out"), bf16=True, model_init_kwargs={"dtype": "bfloat16"},
                            num_generations=4, per_device_train_batch_size=8, max_completion_length=6, max_steps=3,
                            learning_rate=1e-2, beta=0.04, loss_type="grpo", report_to="none", save_strategy="no",
                            logging_steps=1, gradient_checkpointing=False, seed=0)  # fmt: skip
    reward = lambda completions, **kw: [float(len(c) % 3) for c in completions]  # variance within every group
    trainer = LambdaGRPOTrainer(model=str(tmp_path / "policy"), reward_funcs=reward, args=args, train_dataset=data,
                                processing_class=tokenizer)  # fmt: skip
    before = {k: v.detach().clone() for k, v in trainer.model.state_dict().items()}
    trainer.train()
    assert next(trainer.model.parameters()).device.type == "cuda"
    assert next(trainer.model.parameters()).dtype == torch.bfloat16
    losses = [h["loss"] for h in trainer.state.log_history if "loss" in h]
    assert len(losses) == 3 and all(torch.isfinite(torch.tensor(x)) for x in losses)
    assert any(not torch.equal(before[k], v) for k, v in trainer.model.state_dict().items())
