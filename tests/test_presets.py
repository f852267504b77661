"""The paper-scale presets equal docs/paper.md; requirements-gpu.txt and the accelerate configs."""

import pytest
from conftest import REPO
from datasets.utils.logging import disable_progress_bar

from paper_lib.paper_scale import presets as C

disable_progress_bar()


# == presets ====================================================================================================
_AUTHORS_DEFAULTS = {"top_k": 0, "top_p": 1.0, "num_iterations": 1, "epsilon": 0.2, "weight_decay": 0.0,
                     "lr_scheduler_type": "constant", "max_grad_norm": 0.0, "loss_type": "grpo",
                     "precision": "float32", "use_vllm": False}  # docs/paper.md §4.2, §7  # fmt: skip
_LORA = {"lora": True, "lora_r": 64, "lora_alpha": 128, "lora_dropout": 0.05, "lora_target_modules": "all-linear"}
_RL = {"prompts_per_step": 4, "temperature": 0.75, "max_completion_length": 4096}  # docs/paper.md §4.2
PAPER_TABLE = {  # preset key -> every value the paper (or the authors' code) fixes
    "overlap/G6": {"model": "qwen-1.5b", "method": "grpo", "group_size": 6, "learning_rate": 6e-6, "max_steps": 1675,
                   "eval_every": 50, "task": "openrs", "boxed_stop": True, **_RL, **_LORA, **_AUTHORS_DEFAULTS},
    "overlap/G36": {"model": "qwen-1.5b", "method": "grpo", "group_size": 36, "learning_rate": 1e-6,
                    "max_steps": 275, "eval_every": 50, **_RL, **_LORA, **_AUTHORS_DEFAULTS},
    **{f"downstream/{m}_b{b:g}_{meth}": {
        "model": m, "method": meth, "beta": b, "learning_rate": lr, "max_steps": 1000, "group_size": 6,
        "eval_every": 25, "val_size": 125, "keep_best": True, "task": "openrs", "boxed_stop": True,
        **_RL, **_LORA, **_AUTHORS_DEFAULTS}
       for m, b, lr in [("qwen-1.5b", 0.0, 1e-6), ("qwen-1.5b", 0.04, 1e-6), ("llama-1b", 0.0, 5e-7),
                        ("llama-1b", 0.04, 1e-7)]
       for meth in ("grpo", "lambda_grpo")},
    **{f"toy/n{n}_r{abs(r):g}_{meth}_s{s}": {
        "model": "gpt2", "method": meth, "group_size": 16, "max_steps": 250, "learning_rate": 1e-5, "seed": s,
        "task": "toy_tree", "toy_n": n, "toy_r_neg": r, "max_completion_length": 4, "prompts_per_step": 1}
       for n in (1, 2) for r in (-0.5, -1.0, -1.5) for meth in ("grpo", "lambda_grpo") for s in range(5)},
}  # fmt: skip


@pytest.mark.parametrize("key", sorted(PAPER_TABLE))
def test_preset_values_equal_the_paper(key):
    preset = C.paper_preset(key)
    assert {field: getattr(preset, field) for field in PAPER_TABLE[key]} == PAPER_TABLE[key]


def test_every_preset_is_in_the_table():
    found = {f"{e}/{p.name}" for e in C.PAPER_EXPERIMENTS for p in C.paper_presets(e)}
    assert found == set(PAPER_TABLE) and len(found) == 2 + 8 + 60
    assert set(C.EXPECTED_GPU_HOURS) == set(C.PAPER_EXPERIMENTS)


def test_model_keys_and_hub_ids():
    assert C.PAPER_MODELS == {
        "qwen-1.5b": "deepseek-ai/DeepSeek-R1-Distill-Qwen-1.5B",
        "llama-1b": "meta-llama/Llama-3.2-1B-Instruct",
        "gpt2": "openai-community/gpt2",
    }
    from paper_lib.paper_scale.recipe import policy_id

    assert policy_id(C.paper_preset("downstream/qwen-1.5b_b0_grpo")) == "deepseek-ai/DeepSeek-R1-Distill-Qwen-1.5B"
    assert policy_id(C.paper_preset("downstream/llama-1b_b0_grpo")) == "meta-llama/Llama-3.2-1B-Instruct"
    assert policy_id(C.paper_preset("toy/n1_r1_grpo_s0")) == "openai-community/gpt2"


def test_switches_and_their_errors():
    switched = C.paper_presets("downstream", loss_type="dapo", precision="bf16", use_vllm=True, vllm_mode="server")
    assert all((p.loss_type, p.precision, p.lora, p.use_vllm, p.vllm_mode) == ("dapo", "bf16", True, True, "server")
               for p in switched)  # fmt: skip
    assert not any(p.lora for p in C.paper_presets("downstream", lora=False))
    with pytest.raises(ValueError, match="PaperPreset.precision: bf16 with lora=False"):
        C.paper_presets("downstream", precision="bf16", lora=False)  # no float32 master weights: refused
    swapped = C.paper_presets("downstream", llama_lr_by_beta={0.0: 1e-7, 0.04: 5e-7})
    assert {p.beta: p.learning_rate for p in swapped if p.model == "llama-1b"} == {0.0: 1e-7, 0.04: 5e-7}
    with pytest.raises(ValueError, match="unknown PaperPreset field"):
        C.paper_presets("toy", lr=1.0)
    with pytest.raises(ValueError, match="PaperPreset.loss_type"):
        C.paper_presets("overlap", loss_type="bnpo")
    with pytest.raises(ValueError, match="unknown paper experiment"):
        C.paper_presets("table3")
    with pytest.raises(ValueError, match="unknown paper preset"):
        C.paper_preset("downstream/qwen-7b_b0_grpo")


@pytest.mark.parametrize("kw, field", [(dict(eval_every=-1), "eval_every"), (dict(max_completion_length=0),
                         "max_completion_length"), (dict(seed=-1), "seed"), (dict(val_size=0), "val_size"),
                         (dict(lora="ture"), "lora"), (dict(max_steps="abc"), "max_steps"),
                         (dict(temperature=float("nan")), "temperature"), (dict(top_p=0.0), "top_p")])  # fmt: skip
def test_bad_presets_name_the_field(kw, field):
    with pytest.raises(ValueError, match=f"PaperPreset.{field}"):
        C.paper_preset("downstream/qwen-1.5b_b0_grpo", **kw)


def test_switch_values_are_parsed_strictly():
    import argparse

    from paper_lib.paper_scale.presets import parse_switch

    assert parse_switch("lora=False") == ("lora", False) and parse_switch("use_vllm=1") == ("use_vllm", True)
    for bad, field in (("lora=ture", "lora"), ("max_steps=abc", "max_steps"), ("use_vllm=", "use_vllm")):
        with pytest.raises(argparse.ArgumentTypeError, match=f"--set {field}: "):
            parse_switch(bad)


def test_grpo_kwargs_map_the_preset():
    preset = C.paper_preset("downstream/llama-1b_b0.04_lambda_grpo")
    kw = C.grpo_config_kwargs(preset, "/out")
    expected = {"process_weighting": True, "num_generations": 6, "per_device_train_batch_size": 1,
                "gradient_accumulation_steps": 24, "learning_rate": 1e-7, "beta": 0.04, "loss_type": "grpo",
                "temperature": 0.75, "top_k": 0, "top_p": 1.0, "max_completion_length": 4096, "num_iterations": 1,
                "epsilon": 0.2, "weight_decay": 0.0, "lr_scheduler_type": "constant", "max_grad_norm": 0.0,
                "bf16": False, "model_init_kwargs": {"dtype": "float32"}, "use_vllm": False, "max_steps": 1000,
                "chat_template_kwargs": {"date_string": C.LLAMA_DATE_STRING}}  # fmt: skip
    assert {k: kw[k] for k in expected} == expected and "vllm_mode" not in kw
    grpo = C.grpo_config_kwargs(C.paper_preset("downstream/qwen-1.5b_b0_grpo", use_vllm=True, vllm_mode="server"), "o")
    assert grpo["process_weighting"] is False and grpo["vllm_mode"] == "server" and "chat_template_kwargs" not in grpo
    assert grpo["vllm_importance_sampling_correction"] is False  # box-stopped rollouts keep their weight
    assert C.grpo_config_kwargs(preset, "o", num_processes=4)["gradient_accumulation_steps"] == 6
    assert C.grpo_config_kwargs(preset, "o", num_processes=4, per_device_train_batch_size=3)[
        "gradient_accumulation_steps"] == 2  # fmt: skip
    with pytest.raises(ValueError, match="do not split over 5 process"):
        C.grpo_config_kwargs(preset, "o", num_processes=5)


def test_lora_arguments_and_peft():
    preset = C.paper_preset("overlap/G6")
    assert C.lora_config_kwargs(preset) == {"r": 64, "lora_alpha": 128, "lora_dropout": 0.05, "bias": "none",
                                            "task_type": "CAUSAL_LM", "target_modules": "all-linear"}  # fmt: skip
    assert C.lora_config_kwargs(C.paper_preset("toy/n1_r1_grpo_s0")) is None
    assert C.peft_config(C.paper_preset("overlap/G6", lora=False)) is None
    try:
        import peft  # noqa: F401
    except ImportError:
        with pytest.raises(ImportError, match="requirements-gpu.txt"):
            C.peft_config(preset)
    else:
        assert C.peft_config(preset).r == 64


def test_lambda_grpo_config_accepts_the_kwargs(tmp_path):
    from paper_lib.trainer import LambdaGRPOConfig

    for key in ("overlap/G36", "downstream/llama-1b_b0_lambda_grpo", "toy/n2_r1.5_lambda_grpo_s4"):
        args = LambdaGRPOConfig(**C.grpo_config_kwargs(C.paper_preset(key), str(tmp_path)))
        preset = C.paper_preset(key)
        assert args.generation_batch_size == preset.completions_per_step  # one generation batch per RL step
        assert args.process_weighting == (preset.method == "lambda_grpo") and args.max_grad_norm == 0.0
    server = C.paper_preset("downstream/qwen-1.5b_b0_grpo", use_vllm=True, vllm_mode="server")
    args = LambdaGRPOConfig(**C.grpo_config_kwargs(server, str(tmp_path)))
    assert args.use_vllm and args.vllm_mode == "server"


# == requirements-gpu.txt and the accelerate configs ============================================================
def _pins(path):
    out = {}
    for line in path.read_text().splitlines():
        line = line.split("#")[0].strip()
        if "==" in line:
            name, version = line.split("==")
            out[name.split("[")[0].lower()] = version
    return out


def test_requirements_gpu_pins():
    from importlib.metadata import requires

    from packaging.requirements import Requirement

    cpu, gpu = _pins(REPO / "requirements.txt"), _pins(REPO / "requirements-gpu.txt")
    assert {k: v for k, v in gpu.items() if k in cpu and k != "numpy"} == {
        k: v for k, v in cpu.items() if k != "numpy"
    }
    assert gpu["numpy"].startswith("2.3.")  # vllm -> mistral_common[image] needs numpy<2.4 on Python 3.11
    assert {"vllm", "peft", "deepspeed"} <= set(gpu) and gpu["torch"] == cpu["torch"] == "2.13.0"
    trl_vllm = [Requirement(r) for r in requires("trl") if r.startswith("vllm") and "extra" in r]
    assert trl_vllm and all(r.specifier.contains(gpu["vllm"]) for r in trl_vllm)


@pytest.mark.parametrize(("name", "kind", "stage"), [("ddp", "MULTI_GPU", None), ("zero2", "DEEPSPEED", 2),
                                                     ("zero3", "DEEPSPEED", 3)])  # fmt: skip
def test_accelerate_configs_load(name, kind, stage):
    from accelerate.commands.config.config_args import load_config_from_file

    cfg = load_config_from_file(str(REPO / "configs" / "accelerate" / f"{name}.yaml"))
    assert cfg.distributed_type.name == kind and cfg.mixed_precision == "no" and cfg.num_machines == 1
    assert (cfg.deepspeed_config or {}).get("zero_stage") == stage
