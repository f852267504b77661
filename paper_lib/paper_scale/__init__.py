r"""The paper scale (GPUs, the paper's hub models and data): presets, their recipe, data, benchmarks, the boxed stop.

``presets`` holds every value with its source in the paper; ``recipe`` turns a preset into the trainer's parts for
:func:`paper_lib.training.runs.run`; ``boxed`` ends rollouts at the first closed ``\boxed{…}``; ``benchmarks``
evaluates Table 2; ``preflight`` stops a run early when the machine lacks what it needs.
``python -m paper_lib.paper_scale --preset <experiment>/<name>`` trains one preset.
"""
