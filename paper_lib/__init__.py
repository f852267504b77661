"""λ-GRPO paper companion: process sets, the implicit PRM, the objectives, and λ-GRPO on TRL.

Importing ``paper_lib`` (and ``trie``, ``prm``, ``losses``) never imports TRL.
"""

from paper_lib.losses import grpo_loss, lambda_grpo_loss, prm_loss
from paper_lib.prm import step_advantages, step_rewards
from paper_lib.tree import ProcessTree
from paper_lib.trie import lambda_weights, process_set_sizes

__version__ = "0.1.0"
__all__ = [
    "ProcessTree",
    "grpo_loss",
    "lambda_grpo_loss",
    "lambda_weights",
    "prm_loss",
    "process_set_sizes",
    "step_advantages",
    "step_rewards",
]
