"""Training: one :class:`~paper_lib.training.config.RunConfig` → one run directory (the smoke and small scales).

``runs`` owns the run directory's life (lock, resume, finish); ``recipe`` says what a CPU-scale run trains (policy,
data, rewards, TRL arguments); ``callbacks``, ``checkpoints`` and ``provenance`` record it; ``models``, ``smollm2``,
``tasks``, ``toy_start`` and ``warmstart`` build what it starts from. ``python -m paper_lib.training`` is the CLI.
"""
