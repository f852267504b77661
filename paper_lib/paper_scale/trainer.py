r"""λ-GRPO as the authors sample at the paper scale: in eval mode, and ending every rollout at its first ``\boxed{…}``.

:class:`PaperLambdaGRPOTrainer` samples with the policy in eval mode, as the authors' ``generate`` does (TRL samples in
train mode, so LoRA's dropout of 0.05 would thin the network that samples; the loss is still computed in train mode,
as theirs). :class:`BoxedLambdaGRPOTrainer` adds the third hook: every rollout ends once its first ``\boxed{…}``
closes, as the authors' ``BoxedLP`` does (docs/paper.md §4.1, §7). ``_generate_single_turn`` forces EOS there during HF
``generate`` (so no tokens are wasted after the answer) and cuts the returned ids after the box for every engine
(vLLM included, which TRL drives itself); see :mod:`paper_lib.paper_scale.boxed`. Everything else is
:class:`paper_lib.trainer.LambdaGRPOTrainer`.
"""

from __future__ import annotations

import contextlib

from paper_lib.paper_scale import boxed
from paper_lib.trainer import LambdaGRPOTrainer

__all__ = ["PaperLambdaGRPOTrainer", "BoxedLambdaGRPOTrainer"]


class PaperLambdaGRPOTrainer(LambdaGRPOTrainer):
    """:class:`~paper_lib.trainer.LambdaGRPOTrainer` whose HF-generate rollouts are sampled in eval mode."""

    def _generate_single_turn(self, prompt_ids, images, multimodal_fields, num_generations, has_tool_images=False):
        model = self._hf_model()
        was_training = model is not None and model.training
        if was_training:
            model.eval()
        try:
            return super()._generate_single_turn(prompt_ids, images, multimodal_fields, num_generations,
                                                 has_tool_images)  # fmt: skip
        finally:
            if was_training:
                model.train()

    def _hf_model(self):
        """The model HF ``generate`` samples with, or None under vLLM (which samples from its own weights)."""
        return None if self.use_vllm else self.accelerator.unwrap_model(self.model_wrapped)


class BoxedLambdaGRPOTrainer(PaperLambdaGRPOTrainer):
    """:class:`~paper_lib.trainer.LambdaGRPOTrainer` whose rollouts end at their first closed ``\\boxed{…}``."""

    def _generate_single_turn(self, prompt_ids, images, multimodal_fields, num_generations, has_tool_images=False):
        with self._eos_forced_after_box():
            ids, logprobs = super()._generate_single_turn(prompt_ids, images, multimodal_fields, num_generations,
                                                          has_tool_images)  # fmt: skip
        ids, logprobs, stopped = boxed.truncate_completions(ids, logprobs, self._tokenizer, self.max_completion_length)
        mode = "train" if self.model.training else "eval"
        self._metrics[mode]["completions/boxed_stop_frac"].append(stopped / max(len(ids), 1))
        return ids, logprobs

    @contextlib.contextmanager
    def _eos_forced_after_box(self):
        """For this call, the model TRL generates with gets the boxed-EOS logits processor (HF generate only)."""
        model = self._hf_model()
        if model is None:
            yield
            return
        generate, tokenizer = model.generate, self._tokenizer

        def generate_with_stop(*args, **kwargs):
            kwargs.setdefault("logits_processor", boxed.boxed_logits_processor(tokenizer))
            return generate(*args, **kwargs)

        model.generate = generate_with_stop  # an instance attribute shadows the method for this call only
        try:
            yield
        finally:
            del model.generate
