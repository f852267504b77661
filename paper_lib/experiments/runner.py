"""The runner: ``python -m paper_lib.experiments run --scale small --jobs 2`` trains every run of
:mod:`paper_lib.experiments.plan` not yet finished, in ``jobs`` worker processes; a run that fails is reported and
the others go on (rerun to redo it alone). Finished runs are skipped, so with every run present the command returns
in seconds. ``list`` prints the plan without training.
"""

from __future__ import annotations

import argparse
import dataclasses
import logging
import os
import subprocess
import sys
import traceback
from pathlib import Path

from paper_lib.experiments.plan import EXPERIMENTS, experiment_runs, runs_root
from paper_lib.paper_scale.presets import PaperPreset
from paper_lib.paths import SCALES
from paper_lib.training.config import RunConfig

log = logging.getLogger(__name__)


def _smoke(cfg: RunConfig | PaperPreset) -> RunConfig | PaperPreset:
    """Smoke runs: a short warm start and small data, the same code path."""
    if not isinstance(cfg, RunConfig) or cfg.task != "arithmetic":
        return cfg
    return dataclasses.replace(cfg, warm_start_steps=20, train_size=120, val_size=16)


# -- running -------------------------------------------------------------------------------------------------------
@dataclasses.dataclass(frozen=True)
class _Plan:
    """What every worker trains from: the scale, the results folder and (paper scale) the preset switches."""

    scale: str
    root: Path | None = None
    sets: tuple[str, ...] = ()  # FIELD=VALUE, as given to --set

    def runs(self, name: str) -> list[tuple[str, RunConfig | PaperPreset]]:
        from paper_lib.paper_scale.presets import parse_switch

        return experiment_runs(name, self.scale, root=self.root, **dict(parse_switch(s) for s in self.sets))

    def units(self, names) -> list[tuple[str, str]]:
        return [(exp, run) for exp in names for run, _ in self.runs(exp)]

    def argv(self) -> list[str]:
        return ["--scale", self.scale, *(["--root", str(self.root)] if self.root else []),
                *(a for s in self.sets for a in ("--set", s))]  # fmt: skip


def _run_units(plan: _Plan, units: list[tuple[str, str]]) -> int:
    """Train the given runs in this process, one after another; a failing run does not stop the others.

    CPU scales run one thread per process: tiny models gain nothing from more, two workers on two cores do not
    oversubscribe, and the results do not depend on ``--jobs`` (a matmul's reduction order can depend on the thread
    count). Held-out evaluation follows once every run has trained (at the paper scale on rank 0 only, so the
    other ranks of an ``accelerate launch`` are not left waiting inside a collective).
    """
    import torch
    from tqdm.auto import tqdm

    from paper_lib.paper_scale.recipe import PAPER_RECIPE
    from paper_lib.training.recipe import CPU_RECIPE
    from paper_lib.training.runs import run

    if plan.scale != "paper":
        torch.set_num_threads(1)
    configs = {(exp, r): c for exp in {e for e, _ in units} for r, c in plan.runs(exp)}
    failed, trained, warmstart = 0, [], runs_root(plan.scale, plan.root) / "_warmstart"
    for exp, name in tqdm(units, desc=f"runs ({plan.scale})"):
        cfg = _smoke(configs[(exp, name)]) if plan.scale == "smoke" else configs[(exp, name)]
        try:
            recipe = PAPER_RECIPE if isinstance(cfg, PaperPreset) else CPU_RECIPE
            trained.append((exp, cfg, run(cfg, runs_root(plan.scale, plan.root) / exp, warmstart, recipe)))
        except Exception:  # noqa: BLE001 - one run's failure must not stop the others; it is reported
            failed += 1
            log.error("run %s/%s failed:\n%s", exp, name, traceback.format_exc())
    for exp, cfg, run_dir in tqdm(trained, desc=f"held-out evaluation ({plan.scale})"):
        try:
            _evaluate(exp, cfg, run_dir, warmstart)
        except Exception:  # noqa: BLE001 - as above
            failed += 1
            log.error("evaluation of %s/%s failed:\n%s", exp, cfg.name, traceback.format_exc())
    return failed


def _evaluate(exp: str, cfg: RunConfig | PaperPreset, run_dir: Path, warmstart: Path) -> None:
    """Table 2's held-out sets for the runs that have them: the five benchmarks at the paper scale (best
    checkpoint and base model), the five arithmetic levels otherwise."""
    if isinstance(cfg, PaperPreset):
        if cfg.keep_best and os.environ.get("RANK", "0") == "0":
            from paper_lib.paper_scale.recipe import evaluate_run as evaluate_paper_run

            evaluate_paper_run(cfg, run_dir)
    elif exp in ("training", "norm_ablation"):
        from paper_lib.experiments.downstream import evaluate_run

        evaluate_run(cfg, run_dir, warmstart)


def _phases(names) -> list[list[str]]:
    """The experiments in the order they can be planned: ``toy_best`` picks its rates from the finished sweep."""
    later = [n for n in names if n == "toy_best"]
    return [p for p in ([n for n in names if n not in later], later) if p]


def _launch(plan: _Plan, names, jobs: int) -> int:
    """Train phase by phase (:func:`_phases`); a phase that fails stops the ones that depend on it."""
    for phase in _phases(names):
        if code := _launch_phase(plan, phase, jobs):
            return code
    return 0


def _launch_phase(plan: _Plan, names, jobs: int) -> int:
    """Split the runs over ``jobs`` worker processes (each imports TRL once) and wait for all of them."""
    units = plan.units(names)
    if jobs <= 1:
        return 1 if _run_units(plan, units) else 0
    procs = []
    for k in range(jobs):
        cmd = [sys.executable, "-m", "paper_lib.experiments", "worker", "--shard", f"{k}/{jobs}", *plan.argv(),
               "--experiments", *names]  # fmt: skip
        procs.append(subprocess.Popen(cmd, env={**os.environ, "OMP_NUM_THREADS": "1"}))
    return max(p.wait() for p in procs)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("command", choices=["run", "worker", "list"])
    parser.add_argument("--scale", default="small", choices=SCALES)
    parser.add_argument("--experiments", nargs="+", default=list(EXPERIMENTS), choices=EXPERIMENTS)
    parser.add_argument("--jobs", type=int, default=1)
    parser.add_argument("--shard", default="0/1", help="k/n: this worker trains every n-th run starting at k")
    parser.add_argument("--root", default=None, help="results folder (default results/<scale>)")
    parser.add_argument(
        "--set",
        dest="sets",
        action="append",
        default=[],
        metavar="FIELD=VALUE",
        help="paper scale: set a preset field in every run (python -m paper_lib.paper_scale -h)",
    )
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    plan = _Plan(args.scale, Path(args.root) if args.root else None, tuple(args.sets))
    if args.command == "list":
        for phase in _phases(args.experiments):
            try:
                print("\n".join(f"{exp}/{name}" for exp, name in plan.units(phase)))
            except ValueError as err:  # toy_best before the sweep has finished
                print(f"# {', '.join(phase)}: {err}")
        return 0
    if args.command == "worker":
        k, n = map(int, args.shard.split("/"))
        return 1 if _run_units(plan, plan.units(args.experiments)[k::n]) else 0
    return _launch(plan, args.experiments, args.jobs)
