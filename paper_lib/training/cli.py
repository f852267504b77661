"""Command line for one run: ``python -m paper_lib.training --name demo --method lambda_grpo --max_steps 20``.

Arguments are the fields of :class:`paper_lib.training.config.RunConfig`, parsed by TRL's own ``TrlParser`` (so
``--config run.yaml`` works too). Multi-GPU: ``accelerate launch [--config_file …] -m paper_lib.training …``.
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field

from paper_lib.training.config import RunConfig

os.environ.setdefault("HF_HUB_OFFLINE", "1")


_REPORT_TO_HELP = "loggers that also get every metric: tensorboard (in <run>/tensorboard), wandb, both, or none"


@dataclass
class Where:
    root: str = field(default="results/cli/runs", metadata={"help": "folder that receives the run directory"})
    cache: str | None = field(default=None, metadata={"help": "warm-start cache (default <root>/_warmstart)"})
    report_to: str = field(default="tensorboard", metadata={"help": _REPORT_TO_HELP})


def main(argv: list[str] | None = None) -> int:
    from trl import TrlParser

    parser = TrlParser((RunConfig, Where), description="Train one GRPO or λ-GRPO run into <root>/<name>.",
                       epilog="--config run.yaml reads these options from a YAML file (command-line values win); "
                       "--debug shows the traceback of an error.")  # fmt: skip
    cfg, where = parser.parse_args_and_config(args=argv)
    from paper_lib.training.provenance import pin_cpu_kernels
    from paper_lib.training.runs import run

    pin_cpu_kernels()  # CPU runs reproduce across AVX2 and AVX-512 machines

    print(run(cfg, where.root, where.cache, report_to=where.report_to))
    return 0
