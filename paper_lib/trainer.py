r"""λ-GRPO as a thin subclass of TRL's ``GRPOTrainer`` (paper Eq. 9).

Every token's loss, policy *and* KL term, is divided by $|\lambda^{(i,t)}|$, the number of completions of its group
that share its prefix. The normaliser stays the unweighted token count, as in the paper and the authors' code.

How it plugs into TRL 1.16 (pinned; ``tests/test_trainer_contract.py`` fails loudly if the hooks move):

1. ``_generate_and_score_completions`` (the only place where whole groups exist): after ``super()``, gather the
   group's completion ids from every rank, compute the weights there, slice this rank's rows back exactly as TRL
   slices the advantages, and return per-token advantages ``a_i · w_{i,t}`` of shape (B, T), a path TRL supports
   by design. Because ``w > 0``, ``min(P·w·a, clip(P)·w·a) = w·min(P·a, clip(P)·a)``: the policy term is weighted
   exactly, for every loss type whose per-token term is linear in the advantage's magnitude.
2. ``_compute_loss`` (only when β > 0): TRL adds the KL as ``per_token_loss + self.beta * per_token_kl``. For the
   duration of the call ``self.beta`` is a float that multiplies that (B, T) tensor by the weights, so the KL
   term is divided by |λ| too. Everything else in TRL runs unchanged.

``process_weighting=False`` leaves both hooks inert: the trainer is TRL's GRPO, bit for bit.

The paper scale adds a third hook in its own subclass (rollouts end at the first closed ``\\boxed{…}``:
:class:`paper_lib.paper_scale.trainer.BoxedLambdaGRPOTrainer`).
"""

from __future__ import annotations

from dataclasses import dataclass, field

import torch
from trl import GRPOConfig, GRPOTrainer

from paper_lib import vocab
from paper_lib.tree import GROUP_STAT_NAMES, group_statistics
from paper_lib.trie import lambda_weights

__all__ = ["SUPPORTED_LOSS_TYPES", "LambdaGRPOConfig", "LambdaGRPOTrainer"]

# Loss types whose aggregation is a token-count normaliser over (per_token_loss * mask): the λ weights then act
# token by token exactly as Eq. 9 says (tested against paper_lib.losses).
SUPPORTED_LOSS_TYPES = ("grpo", "bnpo", "dr_grpo", "dapo")


@dataclass
class LambdaGRPOConfig(GRPOConfig):
    r"""``trl.GRPOConfig`` plus one switch.

    Parameters:
        process_weighting (`bool`, *optional*, defaults to `True`):
            Divide every token's loss (policy and KL terms) by $|\lambda^{(i,t)}|$ (λ-GRPO, paper Eq. 9).
            `False` is exactly TRL's GRPO.

    One default differs from TRL's: left unset on a machine without CUDA (and without ``use_cpu``), ``bf16`` is
    False, where TRL's True makes HF refuse to start.
    """

    process_weighting: bool = field(
        default=True,
        metadata={"help": "Divide each token's loss (policy and KL) by |λ^(i,t)| (λ-GRPO, Eq. 9). False = TRL GRPO."},
    )
    scale_matched: bool = field(
        default=False,
        metadata={
            "help": "Control arm (needs process_weighting=False): GRPO's loss times the batch's mean λ weight, one "
            "global scalar per step. Separates 're-weights process steps' from 'merely shrinks the step size'."
        },
    )

    allowed_token_ids: list[int] | None = field(
        default=None,
        metadata={
            "help": "Restrict the policy to these token ids, for sampling *and* training: a fixed bias of "
            f"{-1e4:g} on every other id of the LM head (paper_lib.vocab), so the log-probs TRL differentiates are "
            "those of the distribution it samples. (suppress_tokens in generation_kwargs restricts sampling only.)"
        },
    )

    def __post_init__(self):
        if self.bf16 is None and not self.fp16 and not self.use_cpu and not torch.cuda.is_available():
            self.bf16 = False  # TRL's default (True) makes HF refuse to start on a machine without a GPU
        if self.num_generations is not None and self.num_generations < 2:
            raise ValueError(f"num_generations must be >= 2 (groups need an advantage), got {self.num_generations}")
        if self.process_weighting and self.scale_matched:
            raise ValueError("scale_matched=True is the GRPO control arm: it needs process_weighting=False")
        if self.process_weighting or self.scale_matched:
            self._check_supported()
        if self.allowed_token_ids is not None:
            self.allowed_token_ids = vocab.check_token_ids(self.allowed_token_ids)
            if self.use_vllm:  # vLLM samples from its own copy of the weights, which has no bias buffer
                allowed = {"allowed_token_ids": self.allowed_token_ids}
                self.generation_kwargs = {**(self.generation_kwargs or {}), **allowed}
        super().__post_init__()

    def _check_supported(self) -> None:
        if self.loss_type not in SUPPORTED_LOSS_TYPES:
            raise ValueError(
                f"loss_type={self.loss_type!r} is not supported with process_weighting=True; use one of "
                f"{SUPPORTED_LOSS_TYPES} (token-level losses where the λ weights act token by token)"
            )
        if self.importance_sampling_level != "token":
            raise ValueError(
                "importance_sampling_level='sequence' is not supported with process_weighting=True: a sequence-level "
                "ratio mixes the tokens of different process steps, so per-token λ weights lose their meaning"
            )
        if self.use_liger_kernel:
            raise ValueError(
                "use_liger_kernel=True is not supported with process_weighting=True: the fused Liger loss bypasses "
                "the per-token advantages and KL weighting that λ-GRPO needs"
            )


class _WeightedBeta(float):
    """β that, multiplied by TRL's (B, T) ``per_token_kl``, also applies the λ weights (Eq. 9 weights the KL too).

    TRL compares ``self.beta`` with 0.0 elsewhere; a float subclass keeps those comparisons as they are.
    """

    def __new__(cls, beta: float, weights: torch.Tensor):
        obj = super().__new__(cls, beta)
        obj.weights = weights
        return obj

    def __mul__(self, other):
        if not isinstance(other, torch.Tensor) or other.dim() == 0:
            return float(self) * other
        if other.shape != self.weights.shape:  # an unweighted KL would be a silent departure from Eq. 9
            raise ValueError(
                f"β multiplies a {tuple(other.shape)} tensor, but the λ weights are "
                f"{tuple(self.weights.shape)}: TRL's per-token KL no longer lines up with them"
            )
        return float(self) * self.weights.to(other.dtype) * other

    __rmul__ = __mul__

    @classmethod
    def __torch_function__(cls, func, types, args=(), kwargs=None):
        """``tensor * β`` lands here (torch's multiplication would take β for a plain float): weighted likewise."""
        betas = [a for a in args if isinstance(a, _WeightedBeta)]
        if func in _MULTIPLY and len(args) == 2 and len(betas) == 1 and not kwargs:
            return betas[0] * next(a for a in args if a is not betas[0])
        return func(*(float(a) if isinstance(a, _WeightedBeta) else a for a in args), **(kwargs or {}))


_MULTIPLY = (torch.Tensor.mul, torch.Tensor.__mul__, torch.Tensor.__rmul__, torch.mul)


class LambdaGRPOTrainer(GRPOTrainer):
    """TRL's ``GRPOTrainer`` with λ-GRPO's per-token weights; every other TRL feature is inherited unchanged.

    Per-group process-set statistics are logged through TRL's metrics (``process/*``) every step and kept, per
    group, in ``self.group_stats`` (a list of dicts) for the run directory's ``groups.parquet``.
    """

    def __init__(self, *args, **kwargs):
        _check_reference_source(kwargs.get("model", args[0] if args else None), kwargs.get("args"),
                                kwargs.get("peft_config"))  # fmt: skip
        super().__init__(*args, **kwargs)
        if self.args.allowed_token_ids is not None:  # the policy and the reference: one restricted distribution
            for model in (self.model, self.ref_model):
                if model is not None:
                    vocab.restrict_vocabulary(model, self.args.allowed_token_ids)
        self.process_weighting = bool(getattr(self.args, "process_weighting", False))
        self.scale_matched = bool(getattr(self.args, "scale_matched", False))
        self.group_stats: list[dict] = []

    # -- hook 1: weights from whole groups ----------------------------------------------------------------------
    def _generate_and_score_completions(self, inputs):
        out = super()._generate_and_score_completions(inputs)
        weights, stats = self._gathered_weights_and_stats(out["completion_ids"], out["completion_mask"])
        self._record_group_stats(stats)
        if self.scale_matched:  # one scalar for every token: the batch's mean λ weight
            mean = stats["batch_weight_mean"]
            weights = out["completion_mask"].to(weights.dtype) * mean
        return self._weigh(out, weights) if (self.process_weighting or self.scale_matched) else out

    @staticmethod
    def _weigh(out: dict, weights: torch.Tensor) -> dict:
        """Per-token advantages ``a_i · w_{i,t}`` (B, T), and the weights for the KL term of :meth:`_compute_loss`."""
        out["advantages"] = out["advantages"].unsqueeze(-1) * weights
        out["lambda_weights"] = weights
        return out

    def _gathered_weights_and_stats(self, completion_ids, completion_mask):
        """λ weights for this rank's rows, computed on the groups gathered from every rank; and the group stats."""
        acc = self.accelerator
        local_rows, local_T = completion_ids.shape
        ids = acc.pad_across_processes(completion_ids, dim=1, pad_index=0)
        mask = acc.pad_across_processes(completion_mask, dim=1, pad_index=0)
        ids, mask = acc.gather(ids), acc.gather(mask)
        G = self.num_generations
        groups = ids.view(-1, G, ids.shape[-1]), mask.view(-1, G, mask.shape[-1])
        weights = lambda_weights(*groups, dtype=torch.float32).view(ids.shape)
        process_slice = slice(acc.process_index * local_rows, (acc.process_index + 1) * local_rows)  # as TRL
        stats = group_statistics(*groups)
        stats["batch_weight_mean"] = float(weights.sum() / mask.sum().clamp(min=1))
        return weights[process_slice, :local_T], stats

    def _record_group_stats(self, stats: dict[str, torch.Tensor]) -> None:
        mode = "train" if self.model.training else "eval"
        for name in GROUP_STAT_NAMES:
            values = stats[name].double()
            self._metrics[mode][f"process/{name}"].append(float(values.nanmean()))
        self._metrics[mode]["process/batch_weight_mean"].append(stats["batch_weight_mean"])
        if mode == "train" and self.accelerator.is_main_process:
            columns = {name: stats[name].tolist() for name in GROUP_STAT_NAMES}
            for g in range(len(columns["flat"])):
                row = {"step": self.state.global_step, "group": g} | {k: v[g] for k, v in columns.items()}
                self.group_stats.append(row)

    # -- hook 2: the KL term is weighted too ----------------------------------------------------------------------
    def _compute_loss(self, model, inputs):
        if not ((self.process_weighting or self.scale_matched) and self.beta != 0.0):
            return super()._compute_loss(model, inputs)
        beta = self.beta
        self.beta = _WeightedBeta(beta, inputs["lambda_weights"])
        try:
            return super()._compute_loss(model, inputs)
        finally:
            self.beta = beta


def _check_reference_source(model, args, peft_config) -> None:
    """TRL 1.16 builds the β > 0 reference model by reloading the policy from its config's path: an in-memory model
    that was never saved has none, and TRL fails deep inside with a hub error. Say so up front."""
    if model is None or isinstance(model, str) or args is None or args.beta == 0.0 or peft_config is not None:
        return
    if not getattr(model.config, "_name_or_path", ""):
        raise ValueError("beta > 0 needs a reference model, which TRL loads again from the policy's path, and this "
                         "in-memory model has none: save it first (model.save_pretrained(folder)) and pass the "
                         "folder as model=, or train with beta=0")  # fmt: skip
