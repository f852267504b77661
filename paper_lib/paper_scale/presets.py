"""The paper-scale presets (docs/paper.md §4, §10): the paper's runs as frozen dataclasses, each value with its source.

What the paper leaves open is a switch that defaults to the authors' code (docs/paper.md §7): LoRA, precision,
normalisation, vLLM. :func:`grpo_config_kwargs` turns a preset into TRL's constructor arguments;
:mod:`paper_lib.paper_scale.recipe` trains it. No import of torch/trl/peft until a function needs it.
"""

from __future__ import annotations

import argparse
from dataclasses import asdict, dataclass

__all__ = [
    "EXPECTED_GPU_HOURS",
    "LLAMA_DATE_STRING",
    "LLAMA_LR_BY_BETA",
    "PAPER_EXPERIMENTS",
    "PaperPreset",
    "chat_template_kwargs",
    "grpo_config_kwargs",
    "lora_config_kwargs",
    "mirror_files",
    "paper_preset",
    "paper_presets",
    "parse_switch",
    "SWITCHES",
    "peft_config",
]

PAPER_EXPERIMENTS = ("overlap", "downstream", "toy")
# Hub ids of the paper's models. Never loaded by the tests or the smoke/small scales: there is no hub here.
PAPER_MODELS: dict[str, str] = {
    "qwen-1.5b": "deepseek-ai/DeepSeek-R1-Distill-Qwen-1.5B",  # "Qwen" in Table 2 (docs/paper.md §4.1)
    "llama-1b": "meta-llama/Llama-3.2-1B-Instruct",  # "Llama" in Table 2 (docs/paper.md §4.1)
    "gpt2": "openai-community/gpt2",  # GPT-2 small (124M), the synthetic toy task (docs/paper.md §4.1)
}


def mirror_files() -> list[str]:
    """What a complete mirror holds, relative to it: each model's ``config.json``, OpenRS and the five benchmarks."""
    from paper_lib.paper_scale.data import BENCHMARK_NAMES

    models = [f"{hub_id}/config.json" for hub_id in PAPER_MODELS.values()]
    return [*models, "openrs.jsonl", *(f"{name}.jsonl" for name in BENCHMARK_NAMES)]


PAPER_LOSS_TYPES = ("grpo", "dapo")  # authors' code: 'grpo' per-sequence (their default) | 'dapo' (docs/paper.md §7)
PAPER_PRECISIONS = ("float32", "bf16")
# docs/paper.md §4.2: Llama's learning rate is "5e-7 / 1e-7 depending on β"; which β gets which rate is NOT stated
# (docs/paper.md §9.4). We assume the order as listed (β = 0 → 5e-7, β = 0.04 → 1e-7); pass llama_lr_by_beta to swap.
LLAMA_LR_BY_BETA = {0.0: 5e-7, 0.04: 1e-7}
# Llama 3.2's chat template writes today's date into the system turn unless `date_string` is given; we fix it to the
# template's own fallback so prompts do not change from day to day (the authors' runs carried their run date).
LLAMA_DATE_STRING = "26 Jul 2024"
# docs/paper.md §10 (INFERRED there: the paper reports no GPU-hours), one H100, HF generate; vLLM cuts generation time.
EXPECTED_GPU_HOURS = {
    "overlap": "order of 100 GPU-hours per run (about 40k trajectories of up to 4096 tokens), 2 runs",
    "downstream": "order of 100 GPU-hours per run (about 24k trajectories), 8 runs: several hundred in total",
    "toy": "minutes per run (250 steps of 16 four-token completions, GPT-2 small), 60 runs",
}


@dataclass(frozen=True)
class PaperPreset:
    """One paper-scale run. Defaults are the downstream runs' settings; each comment names the source."""

    name: str
    experiment: str  # "overlap" (docs/paper.md §2.4) | "downstream" (§4, Table 2) | "toy" (§4.3, Table 1)
    model: str  # key of PAPER_MODELS (docs/paper.md §4.1)
    method: str  # "grpo" | "lambda_grpo" (Eq. 9)
    learning_rate: float  # docs/paper.md §4.2
    max_steps: int  # docs/paper.md §4.2
    group_size: int  # G: 6 downstream, 6 / 36 overlap, 16 toy (docs/paper.md §4.2)
    beta: float = 0.0  # KL β; {0, 0.04} downstream (docs/paper.md §4.2); 0 = the authors' CLI default where unstated
    seed: int = 0  # the authors never seed (docs/paper.md §4.2 "seeds"); toy: 5 seeds
    prompts_per_step: int = 4  # docs/paper.md §4.2: 4 prompts, 24 trajectories per optimizer step at G = 6
    temperature: float = 0.75  # docs/paper.md §4.2
    top_k: int = 0  # docs/paper.md §4.2: top-k off (authors' code)
    top_p: float = 1.0  # docs/paper.md §4.2
    max_completion_length: int = 4096  # docs/paper.md §4.2 (the code's default is 1200)
    eval_every: int = 25  # docs/paper.md §4.2: greedy validation every 25 steps (downstream)
    val_size: int = 125  # docs/paper.md §4.1: 125 questions (the §3.2 curves suggest 126, INFERRED)
    keep_best: bool = True  # docs/paper.md §4.1: the best validation checkpoint is evaluated downstream
    num_iterations: int = 1  # μ, docs/paper.md §4.2 (ratio = 1, clipping never fires)
    epsilon: float = 0.2  # docs/paper.md §4.2 (authors' default; inactive at μ = 1)
    weight_decay: float = 0.0  # docs/paper.md §4.2: Adam (AdamW with weight decay 0 is Adam)
    lr_scheduler_type: str = "constant"  # docs/paper.md §4.2: no scheduler
    max_grad_norm: float = 0.0  # docs/paper.md §7: the authors' _step never clips (TRL's default clips at 1.0)
    loss_type: str = "grpo"  # docs/paper.md §7 mismatch 1: the authors' per-sequence; "dapo": the theory's token-level
    lora: bool = True  # docs/paper.md §4.2: the code's default; whether the paper used LoRA is unknown
    lora_r: int = 64  # docs/paper.md §4.2, §7
    lora_alpha: int = 128  # docs/paper.md §4.2, §7
    lora_dropout: float = 0.05  # docs/paper.md §4.2, §7
    lora_target_modules: str = "all-linear"  # docs/paper.md §7: LORA_LAYER_MAP['all']
    precision: str = "float32"  # docs/paper.md §4.2: the authors load float32 (no torch_dtype); "bf16" is offered
    boxed_stop: bool = True  # docs/paper.md §4.1, §7: rollouts end when the first \boxed{…} closes
    use_vllm: bool = False  # docs/paper.md §4.2: the authors generate with HF generate
    vllm_mode: str = "colocate"  # TRL: "colocate" (same GPUs) | "server" (`trl vllm-serve` on other GPUs)
    task: str = "openrs"  # "openrs" (docs/paper.md §4.1) | "toy_tree" (§4.3)
    toy_n: int | None = None  # toy: other paths sharing the target's first n tokens get r_neg (docs/paper.md §4.3)
    toy_r_neg: float | None = None  # docs/paper.md §4.3
    toy_mask: str = "policy"  # toy: L/R for sampling and training | "sampling_only": the ablation (paper_lib.vocab)
    data_seed: int = 0  # the OpenRS validation split; docs/paper.md §4.1 does not say how the 125 questions were drawn
    # A local mirror of the hub for machines without access (or for offline tests): <mirror>/<hub model id>/ model
    # folders, <mirror>/openrs.jsonl and <mirror>/<benchmark>.jsonl in the hub's formats. None: the hub itself.
    mirror: str | None = None

    @property
    def completions_per_step(self) -> int:
        return self.prompts_per_step * self.group_size

    @property
    def save_every(self) -> int:
        """Checkpoints at every validation (so the best one can be kept), else every 50 steps."""
        return self.eval_every or 50

    def to_dict(self) -> dict:
        return asdict(self)

    def validate(self) -> PaperPreset:
        from paper_lib.paths import check_run_name

        try:
            check_run_name(self.name)
        except ValueError as err:
            raise ValueError(f"PaperPreset.{err}") from None
        choices = {"experiment": PAPER_EXPERIMENTS, "model": tuple(PAPER_MODELS), "method": ("grpo", "lambda_grpo"),
                   "loss_type": PAPER_LOSS_TYPES, "precision": PAPER_PRECISIONS,
                   "vllm_mode": ("colocate", "server"), "task": ("openrs", "toy_tree"),
                   "toy_mask": ("policy", "sampling_only")}  # fmt: skip
        for field, allowed in choices.items():
            if getattr(self, field) not in allowed:
                raise ValueError(f"PaperPreset.{field}: must be one of {allowed}, got {getattr(self, field)!r}")
        from paper_lib.training.config import fail_first, finite_number, is_int

        ints = ("max_steps", "group_size", "seed", "prompts_per_step", "top_k", "max_completion_length", "eval_every",
                "val_size", "num_iterations", "lora_r", "lora_alpha", "data_seed")  # fmt: skip
        bools = ("keep_best", "lora", "boxed_stop", "use_vllm")
        floats = ("learning_rate", "beta", "temperature", "top_p", "epsilon", "weight_decay", "max_grad_norm",
                  "lora_dropout")  # fmt: skip
        fail_first("PaperPreset", [
            *((is_int(getattr(self, f)), f, f"must be an integer, got {getattr(self, f)!r}") for f in ints),
            *((isinstance(getattr(self, f), bool), f, f"must be true or false, got {getattr(self, f)!r}")
              for f in bools),
            *((finite_number(getattr(self, f)), f, f"must be a finite number, got {getattr(self, f)!r}")
              for f in floats),
        ])  # fmt: skip
        fail_first("PaperPreset", [
            (self.group_size >= 2, "group_size", f"must be >= 2, got {self.group_size}"),
            (self.learning_rate > 0, "learning_rate", f"must be > 0, got {self.learning_rate}"),
            (self.max_steps >= 1, "max_steps", f"must be >= 1, got {self.max_steps}"),
            (self.beta >= 0, "beta", f"must be >= 0, got {self.beta}"),
            (self.seed >= 0 and self.data_seed >= 0, "seed", "seed and data_seed must be >= 0"),
            (self.prompts_per_step >= 1, "prompts_per_step", f"must be >= 1, got {self.prompts_per_step}"),
            (self.temperature > 0, "temperature", f"must be > 0, got {self.temperature}"),
            (0 < self.top_p <= 1, "top_p", f"must be in (0, 1], got {self.top_p}"),
            (self.top_k >= 0, "top_k", f"must be >= 0 (0: off), got {self.top_k}"),
            (self.max_completion_length >= 1, "max_completion_length",
             f"must be >= 1, got {self.max_completion_length}"),
            (self.eval_every >= 0, "eval_every", f"must be >= 0 (0: never), got {self.eval_every}"),
            (self.val_size >= 1 or not self.eval_every, "val_size",
             f"must be >= 1 when validating (eval_every={self.eval_every}), got {self.val_size}"),
            (self.num_iterations >= 1, "num_iterations", f"must be >= 1, got {self.num_iterations}"),
            (self.epsilon > 0 and self.weight_decay >= 0 and self.max_grad_norm >= 0, "epsilon",
             "epsilon must be > 0, weight_decay and max_grad_norm >= 0"),
            (self.lora_r >= 1 and self.lora_alpha >= 1 and 0 <= self.lora_dropout < 1, "lora_r",
             "lora_r and lora_alpha must be >= 1, lora_dropout in [0, 1)"),
            (self.lora or self.precision != "bf16", "precision",
             "bf16 with lora=False trains bf16 weights with no float32 master copy: AdamW updates below half a bf16 "
             "ulp vanish (1.9% of the weights changed in 10 steps at lr 1e-6); use precision=float32 or LoRA"),
        ])  # fmt: skip
        return self


def _overlap_presets() -> list[PaperPreset]:
    """§3.2 overlap study: DeepSeek-R1-Distill-Qwen-1.5B, standard GRPO (INFERRED), validation every 50 steps."""
    runs = {6: (6e-6, 1675), 36: (1e-6, 275)}  # docs/paper.md §2.4: G -> (lr, steps)
    return [PaperPreset(name=f"G{G}", experiment="overlap", model="qwen-1.5b", method="grpo", learning_rate=lr,
                        max_steps=steps, group_size=G, eval_every=50, keep_best=False)  # docs/paper.md §2.4, §5.2
            for G, (lr, steps) in runs.items()]  # fmt: skip


def _downstream_presets(llama_lr_by_beta: dict[float, float]) -> list[PaperPreset]:
    """Table 2: {Qwen, Llama} × β ∈ {0, 0.04} × {GRPO, λ-GRPO}, 1000 steps, G = 6 (docs/paper.md §4.2)."""
    lrs = {"qwen-1.5b": {0.0: 1e-6, 0.04: 1e-6}, "llama-1b": llama_lr_by_beta}  # docs/paper.md §4.2
    return [PaperPreset(name=f"{model}_b{beta:g}_{method}", experiment="downstream", model=model, method=method,
                        learning_rate=lrs[model][beta], max_steps=1000, group_size=6, beta=beta)
            for model in ("qwen-1.5b", "llama-1b") for beta in (0.0, 0.04)
            for method in ("grpo", "lambda_grpo")]  # fmt: skip


def _toy_presets() -> list[PaperPreset]:
    """Table 1: GPT-2 small, G = 16, 250 steps, lr 1e-5, 5 seeds, n ∈ {1, 2} × r_neg ∈ {-0.5, -1, -1.5}.

    docs/paper.md §4.3 leaves open: prompts per step (1 assumed), β (0), temperature (the authors' trainer default
    0.75), and LoRA (off: the toy is not in the authors' code, and full fine-tuning of 124M parameters is cheap).
    """
    configs = [(n, r) for n in (1, 2) for r in (-0.5, -1.0, -1.5)]  # docs/paper.md §4.3
    return [PaperPreset(name=f"n{n}_r{abs(r):g}_{method}_s{seed}", experiment="toy", model="gpt2", method=method,
                        learning_rate=1e-5, max_steps=250, group_size=16, seed=seed, prompts_per_step=1,
                        max_completion_length=4, eval_every=0, val_size=0, keep_best=False, lora=False,
                        boxed_stop=False, task="toy_tree", toy_n=n, toy_r_neg=r)  # docs/paper.md §4.3
            for n, r in configs for method in ("grpo", "lambda_grpo") for seed in range(5)]  # fmt: skip


def paper_presets(
    experiment: str, llama_lr_by_beta: dict[float, float] | None = None, **switches
) -> list[PaperPreset]:
    """The runs of one paper experiment; ``switches`` (e.g. ``lora=False, precision="bf16", loss_type="dapo",
    use_vllm=True, vllm_mode="server"``) override a field in every run."""
    builders = {"overlap": _overlap_presets, "toy": _toy_presets,
                "downstream": lambda: _downstream_presets(llama_lr_by_beta or LLAMA_LR_BY_BETA)}  # fmt: skip
    if experiment not in builders:
        raise ValueError(f"unknown paper experiment {experiment!r}; known: {list(PAPER_EXPERIMENTS)}")
    unknown = set(switches) - set(PaperPreset.__dataclass_fields__)
    if unknown:
        raise ValueError(f"unknown PaperPreset field(s) {sorted(unknown)}")
    return [PaperPreset(**(asdict(p) | switches)).validate() for p in builders[experiment]()]


def paper_preset(key: str, **switches) -> PaperPreset:
    """One preset by ``"<experiment>/<name>"``, e.g. ``"downstream/qwen-1.5b_b0.04_lambda_grpo"``."""
    experiment, _, name = key.partition("/")
    found = [p for p in paper_presets(experiment, **switches) if p.name == name]
    if not found:
        known = [f"{experiment}/{p.name}" for p in paper_presets(experiment)]
        raise ValueError(f"unknown paper preset {key!r}; known: {known}")
    return found[0]


def _gradient_accumulation(preset: PaperPreset, num_processes: int, per_device_train_batch_size: int) -> int:
    """One optimizer step per RL step (docs/paper.md §4.2): all ``prompts × G`` completions of a step accumulate."""
    per_pass = num_processes * per_device_train_batch_size
    if num_processes < 1 or per_device_train_batch_size < 1 or preset.completions_per_step % per_pass:
        raise ValueError(
            f"{preset.completions_per_step} completions per step (prompts_per_step × G) do not split over "
            f"{num_processes} process(es) × per_device_train_batch_size {per_device_train_batch_size}"
        )
    return preset.completions_per_step // per_pass


def grpo_config_kwargs(
    preset: PaperPreset, output_dir: str, num_processes: int = 1, per_device_train_batch_size: int = 1
) -> dict:
    """Keyword arguments for ``paper_lib.trainer.LambdaGRPOConfig`` that reproduce ``preset`` on TRL.

    ``per_device_train_batch_size=1`` is the paper's micro-batch (24 accumulation steps of one trajectory at
    G = 6, docs/paper.md §4.2); a larger one changes only memory and speed.
    """
    preset.validate()
    from paper_lib.training.recipe import grpo_arguments

    bf16 = preset.precision == "bf16"
    accumulation = _gradient_accumulation(preset, num_processes, per_device_train_batch_size)
    kwargs = grpo_arguments(
        output_dir=str(output_dir), method=preset.method, seed=preset.seed, max_steps=preset.max_steps,
        group_size=preset.group_size, batch_size=per_device_train_batch_size, accumulation=accumulation,
        learning_rate=preset.learning_rate, beta=preset.beta, loss_type=preset.loss_type,
        temperature=preset.temperature, max_completion_length=preset.max_completion_length,
        max_grad_norm=preset.max_grad_norm, save_every=preset.save_every, bf16=bf16,
        lr_scheduler_type=preset.lr_scheduler_type, warmup_steps=0, optim="adamw_torch",
        weight_decay=preset.weight_decay, epsilon=preset.epsilon, num_iterations=preset.num_iterations,
        scale_rewards="group", top_k=preset.top_k, top_p=preset.top_p, fp16=False, use_vllm=preset.use_vllm,
        gradient_checkpointing=True,  # memory only: the gradients are the same
    )  # fmt: skip
    if preset.use_vllm:
        # No importance-sampling correction of vLLM's samples, as the authors (they sample with HF): the boxed stop
        # appends an EOS that vLLM never sampled (sampling log-prob 0), so TRL's correction would scale nearly
        # every rewarded rollout by pi(EOS | ...\boxed{x}), about 1e-4.
        kwargs |= {"vllm_mode": preset.vllm_mode, "vllm_importance_sampling_correction": False}
    if chat_template_kwargs(preset):
        kwargs["chat_template_kwargs"] = chat_template_kwargs(preset)
    return kwargs


def chat_template_kwargs(preset: PaperPreset) -> dict:
    """Extra chat-template arguments of the preset's model: Llama 3.2's fixed date, none for the others."""
    return {"date_string": LLAMA_DATE_STRING} if preset.model == "llama-1b" else {}


def lora_config_kwargs(preset: PaperPreset) -> dict | None:
    """``peft.LoraConfig`` arguments of the authors' ``get_peft_model`` call, or None for full fine-tuning."""
    if not preset.lora:
        return None
    return {"r": preset.lora_r, "lora_alpha": preset.lora_alpha, "lora_dropout": preset.lora_dropout,
            "bias": "none", "task_type": "CAUSAL_LM", "target_modules": preset.lora_target_modules}  # fmt: skip


def peft_config(preset: PaperPreset):
    """The ``peft.LoraConfig`` (None without LoRA). peft comes with requirements-gpu.txt, not requirements.txt."""
    kwargs = lora_config_kwargs(preset)
    if kwargs is None:
        return None
    try:
        from peft import LoraConfig
    except ImportError as err:
        raise ImportError(
            f"preset {preset.name!r} trains LoRA adapters (the authors' default) and needs peft: "
            "pip install -r requirements-gpu.txt, or pass lora=False for full fine-tuning"
        ) from err
    return LoraConfig(**kwargs)


# -- the --set FIELD=VALUE switches of the command lines (paper_scale, preflight, experiments) ---------------------
def _boolean(text: str) -> bool:
    value = {"true": True, "1": True, "yes": True, "false": False, "0": False, "no": False}.get(text.strip().lower())
    if value is None:
        raise ValueError(f"expected true or false, got {text!r}")
    return value


SWITCHES = {  # the options the paper leaves open (docs/paper.md §7), and what a short trial run needs
    "lora": _boolean,
    "precision": str,
    "loss_type": str,
    "use_vllm": _boolean,
    "vllm_mode": str,
    "seed": int,
    "max_steps": int,
    "eval_every": int,
    "max_completion_length": int,
    "val_size": int,
    "mirror": str,
}


def parse_switch(text: str) -> tuple[str, object]:
    field, sep, value = text.partition("=")
    if not sep or field not in SWITCHES:
        known = ", ".join(sorted(SWITCHES))
        raise argparse.ArgumentTypeError(f"--set takes FIELD=VALUE with FIELD one of {known}; got {text!r}")
    try:
        return field, SWITCHES[field](value)
    except ValueError as err:
        raise argparse.ArgumentTypeError(f"--set {field}: {err}") from None
