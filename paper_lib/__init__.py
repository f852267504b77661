"""λ-GRPO paper companion: process sets, the implicit PRM, the objectives, and λ-GRPO on TRL.

The paper's objects sit at the top (``trie``, ``tree``, ``prm``, ``losses``, ``reference``, ``groups``; torch only),
with the λ-GRPO trainer (``trainer``), the results registry (``paths``) and the run-directory format (``rundir``).
The parts above them, each a subpackage, import only downward: ``training`` → ``paper_scale`` → ``experiments`` →
``analysis`` → ``figures`` → ``bench``. The names below are loaded on first use, so reading logs
(``paper_lib.rundir``, ``paper_lib.analysis``) never imports torch's training stack, and nothing here imports TRL.
"""

import importlib

__version__ = "0.1.0"
_LAZY = {
    "ProcessTree": "tree",
    "grpo_loss": "losses",
    "lambda_grpo_loss": "losses",
    "prm_loss": "losses",
    "step_advantages": "prm",
    "step_rewards": "prm",
    "lambda_weights": "trie",
    "process_set_sizes": "trie",
}
__all__ = sorted(_LAZY)


def __getattr__(name: str):
    if name in _LAZY:
        return getattr(importlib.import_module(f"paper_lib.{_LAZY[name]}"), name)
    raise AttributeError(f"module 'paper_lib' has no attribute {name!r}")


def __dir__():
    return sorted([*globals(), *_LAZY])
