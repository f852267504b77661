"""The runner: ``python -m paper_lib.experiments run --scale small --jobs 2`` trains every run of
:mod:`paper_lib.experiments.plan` not yet finished, in ``jobs`` worker processes; a run that fails is reported and
the others go on (rerun to redo it alone). Finished runs are skipped, so with every run present the command returns
in seconds. ``list`` prints the plan without training.

At the paper scale each run trains in a process of its own (``--launch``: the command that starts it, e.g.
``accelerate launch …``), and each held-out evaluation in another, so vLLM never shares a GPU with an earlier run's
cached memory or engine; ``--in-process`` keeps them all in one (the CPU dry run, where only imports would be saved).
"""

from __future__ import annotations

import argparse
import dataclasses
import logging
import os
import shlex
import subprocess
import sys
import traceback
from pathlib import Path

from paper_lib.experiments.plan import EXPERIMENTS, experiment_runs, runs_root
from paper_lib.paper_scale.presets import PaperPreset
from paper_lib.paths import SCALES
from paper_lib.training.config import RunConfig
from paper_lib.training.provenance import pin_cpu_kernels

log = logging.getLogger(__name__)


def _smoke(cfg: RunConfig | PaperPreset) -> RunConfig | PaperPreset:
    """Smoke runs: a short warm start and small data, the same code path."""
    if not isinstance(cfg, RunConfig) or cfg.task == "toy_tree":
        return cfg
    return dataclasses.replace(cfg, warm_start_steps=20, train_size=120, val_size=16)


# -- running -------------------------------------------------------------------------------------------------------
@dataclasses.dataclass(frozen=True)
class _Plan:
    """What every worker trains from: the scale, the results folder and (paper scale) the preset switches."""

    scale: str
    root: Path | None = None
    sets: tuple[str, ...] = ()  # FIELD=VALUE, as given to --set
    report_to: str = "none"  # loggers besides metrics.jsonl (committed results stay compact: none by default)

    def runs(self, name: str) -> list[tuple[str, RunConfig | PaperPreset]]:
        from paper_lib.paper_scale.presets import parse_switch

        return experiment_runs(name, self.scale, root=self.root, **dict(parse_switch(s) for s in self.sets))

    def units(self, names) -> list[tuple[str, str]]:
        return [(exp, run) for exp in names for run, _ in self.runs(exp)]

    def config(self, exp: str, name: str) -> RunConfig | PaperPreset:
        found = [cfg for run, cfg in self.runs(exp) if run == name]
        if not found:
            raise ValueError(f"no run {exp}/{name} at scale {self.scale}")
        return _smoke(found[0]) if self.scale == "smoke" else found[0]

    def folder(self, exp: str) -> Path:
        return runs_root(self.scale, self.root) / exp

    @property
    def warmstart(self) -> Path:
        return runs_root(self.scale, self.root) / "_warmstart"

    def argv(self) -> list[str]:
        return ["--scale", self.scale, *(["--root", str(self.root)] if self.root else []),
                *(a for s in self.sets for a in ("--set", s)), "--report-to", self.report_to]  # fmt: skip


def _run_units(plan: _Plan, units: list[tuple[str, str]], evaluate: bool = True) -> int:
    """Train the given runs in this process, one after another, then (``evaluate``) their held-out evaluations; a
    failing run does not stop the others. Returns the number of failures.

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
    failed, trained = 0, []
    for exp, name in tqdm(units, desc=f"runs ({plan.scale})"):
        cfg = _smoke(configs[(exp, name)]) if plan.scale == "smoke" else configs[(exp, name)]
        try:
            recipe = PAPER_RECIPE if isinstance(cfg, PaperPreset) else CPU_RECIPE
            trained.append((exp, cfg, run(cfg, plan.folder(exp), plan.warmstart, recipe, plan.report_to)))
        except Exception:  # noqa: BLE001 - one run's failure must not stop the others; it is reported
            failed += 1
            log.error("run %s/%s failed:\n%s", exp, name, traceback.format_exc())
    for exp, cfg, run_dir in tqdm(trained if evaluate else [], desc=f"held-out evaluation ({plan.scale})"):
        try:
            _evaluate(exp, cfg, run_dir, plan.warmstart)
        except Exception:  # noqa: BLE001 - as above
            failed += 1
            log.error("evaluation of %s/%s failed:\n%s", exp, cfg.name, traceback.format_exc())
    return failed


def _run_isolated(plan: _Plan, units: list[tuple[str, str]], launch: list[str]) -> int:
    """The paper scale: each run in a process of its own, started with ``launch`` (``accelerate launch …`` for
    several GPUs), then each held-out evaluation in a plain process of its own. A fresh process per run and per
    evaluation gives vLLM a GPU that no earlier run's cached memory or engine still holds."""
    failed, trained = 0, []
    for exp, name in units:
        cmd = [*launch, "-m", "paper_lib.experiments", "worker", "--unit", f"{exp}/{name}", *plan.argv()]
        if subprocess.run(cmd).returncode:
            failed += 1
            log.error("run %s/%s failed (its train.log says why)", exp, name)
        elif _is_evaluated(exp, plan.config(exp, name)):
            trained.append(f"{exp}/{name}")
    for unit in trained:
        cmd = [sys.executable, "-m", "paper_lib.experiments", "evaluate", "--unit", unit, *plan.argv()]
        if subprocess.run(cmd).returncode:
            failed += 1
            log.error("evaluation of %s failed", unit)
    return failed


def _evaluate_unit(plan: _Plan, exp: str, name: str) -> int:
    cfg = plan.config(exp, name)
    _evaluate(exp, cfg, plan.folder(exp) / cfg.name, plan.warmstart)
    return 0


def _is_evaluated(exp: str, cfg: RunConfig | PaperPreset) -> bool:
    """Whether a run has Table 2's held-out evaluation: the paper presets that keep their best checkpoint, and the
    CPU scales' training, normalisation-ablation and design runs (the design is judged on the held-out gain)."""
    return cfg.keep_best if isinstance(cfg, PaperPreset) else exp in ("training", "norm_ablation", "design")


def _evaluate(exp: str, cfg: RunConfig | PaperPreset, run_dir: Path, warmstart: Path) -> None:
    """Table 2's held-out sets for the runs that have them: the five benchmarks at the paper scale (best
    checkpoint and base model), the five arithmetic levels otherwise."""
    if not _is_evaluated(exp, cfg):
        return
    if isinstance(cfg, PaperPreset):
        if os.environ.get("RANK", "0") == "0":
            from paper_lib.paper_scale.recipe import evaluate_run as evaluate_paper_run

            evaluate_paper_run(cfg, run_dir)
    else:
        from paper_lib.experiments.downstream import evaluate_run

        evaluate_run(cfg, run_dir, warmstart)


def _phases(names) -> list[list[str]]:
    """The experiments in the order they can be planned: ``toy_best`` picks its rates from the finished sweep."""
    later = [n for n in names if n == "toy_best"]
    return [p for p in ([n for n in names if n not in later], later) if p]


def _launch(plan: _Plan, names, jobs: int, launch: list[str] | None) -> int:
    """Train phase by phase (:func:`_phases`); a phase that fails stops the ones that depend on it."""
    for phase in _phases(names):
        if code := _launch_phase(plan, phase, jobs, launch):
            return code
    return 0


def _launch_phase(plan: _Plan, names, jobs: int, launch: list[str] | None) -> int:
    """Split the runs over ``jobs`` worker processes (each imports TRL once) and wait for all of them; with
    ``launch``, one process per run and per evaluation (:func:`_run_isolated`)."""
    units = plan.units(names)
    if launch is not None:
        return 1 if _run_isolated(plan, units, launch) else 0
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
    parser.add_argument("command", choices=["run", "worker", "evaluate", "list"])
    parser.add_argument("--scale", default="small", choices=SCALES)
    parser.add_argument("--experiments", nargs="+", default=list(EXPERIMENTS), choices=EXPERIMENTS)
    parser.add_argument("--jobs", type=int, default=1)
    parser.add_argument("--shard", default="0/1", help="k/n: this worker trains every n-th run starting at k")
    parser.add_argument("--root", default=None, help="results folder (default results/<scale>)")
    parser.add_argument("--unit", help="worker/evaluate: this one run, EXPERIMENT/NAME (worker: no evaluation)")
    parser.add_argument("--launch", default=None, help="paper scale: the command that starts a run's process "
                        "(default: this Python; e.g. 'accelerate launch --config_file …')")  # fmt: skip
    parser.add_argument("--report-to", default="none", help="loggers that also get every metric (tensorboard, "
                        "wandb, comma-separated); none keeps the results folder compact")  # fmt: skip
    in_process = "paper scale: all runs and evaluations in this process (a CPU dry run; not for GPUs, see above)"
    parser.add_argument("--in-process", action="store_true", help=in_process)
    parser.add_argument(
        "--set",
        dest="sets",
        action="append",
        default=[],
        metavar="FIELD=VALUE",
        help="paper scale: set a preset field in every run (python -m paper_lib.paper_scale -h)",
    )
    args = parser.parse_args(argv)
    if args.scale != "paper":  # before any tensor operation; the worker processes inherit it
        pin_cpu_kernels()
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    plan = _Plan(args.scale, Path(args.root) if args.root else None, tuple(args.sets), args.report_to)
    if args.command == "list":
        for phase in _phases(args.experiments):
            try:
                print("\n".join(f"{exp}/{name}" for exp, name in plan.units(phase)))
            except ValueError as err:  # toy_best before the sweep has finished
                print(f"# {', '.join(phase)}: {err}")
        return 0
    if args.command in ("worker", "evaluate") and args.unit:
        exp, _, name = args.unit.partition("/")
        plan.config(exp, name)  # an unknown unit is named here
        if args.command == "evaluate":
            return _evaluate_unit(plan, exp, name)
        return 1 if _run_units(plan, [(exp, name)], evaluate=False) else 0
    if args.command == "evaluate":
        parser.error("evaluate needs --unit EXPERIMENT/NAME")
    if args.command == "worker":
        k, n = map(int, args.shard.split("/"))
        return 1 if _run_units(plan, plan.units(args.experiments)[k::n]) else 0
    isolate = args.scale == "paper" and not args.in_process
    launch = shlex.split(args.launch) if args.launch else [sys.executable]
    return _launch(plan, args.experiments, args.jobs, launch if isolate else None)
