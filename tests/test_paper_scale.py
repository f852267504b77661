"""The paper scale (issue 8): presets equal PAPER.md, data/scoring/evaluation on local fixtures, the boxed stop,
the preflight, requirements-gpu.txt and the accelerate configs. Everything runs offline; one test needs CUDA."""

import json
import os
import subprocess
import sys
import time
import types

import pytest
import torch
from conftest import REPO
from datasets import Dataset
from datasets.utils.logging import disable_progress_bar
from paper_fixtures import ASSISTANT, BOS, USER, byte_tokenizer, random_qwen2, scripted_model, token_ids

from paper_lib.paper_scale import benchmarks as paper_eval
from paper_lib.paper_scale import boxed, preflight
from paper_lib.paper_scale import data as paper_data
from paper_lib.paper_scale import presets as C
from paper_lib.paper_scale.boxed import BoxScanner, first_box_end, truncate_ids, truncate_text

disable_progress_bar()
FIXTURES = REPO / "tests" / "fixtures" / "paper"


# -- offline stand-ins for the paper's tokenizer and model (tests/paper_fixtures.py) --------------------------------
@pytest.fixture(scope="module")
def tok():
    return byte_tokenizer()


_ids = token_ids


@pytest.fixture(scope="module")
def random_model(tok):
    return random_qwen2(tok)


# == 1. presets ====================================================================================================
_AUTHORS_DEFAULTS = {"top_k": 0, "top_p": 1.0, "num_iterations": 1, "epsilon": 0.2, "weight_decay": 0.0,
                     "lr_scheduler_type": "constant", "max_grad_norm": 0.0, "loss_type": "grpo",
                     "precision": "float32", "use_vllm": False}  # PAPER.md §4.2, §7  # fmt: skip
_LORA = {"lora": True, "lora_r": 64, "lora_alpha": 128, "lora_dropout": 0.05, "lora_target_modules": "all-linear"}
_RL = {"prompts_per_step": 4, "temperature": 0.75, "max_completion_length": 4096}  # PAPER.md §4.2
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
    switched = C.paper_presets("downstream", loss_type="dapo", precision="bf16", lora=False, use_vllm=True,
                               vllm_mode="server")  # fmt: skip
    assert all((p.loss_type, p.precision, p.lora, p.use_vllm, p.vllm_mode) == ("dapo", "bf16", False, True, "server")
               for p in switched)  # fmt: skip
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


# == 2. the boxed stop =============================================================================================
BOX_CASES = [  # text, what is kept
    ("So \\boxed{34}. Done", "So \\boxed{34}"),
    ("\\boxed{\\frac{1}{2}} then \\boxed{3}", "\\boxed{\\frac{1}{2}}"),  # nested braces; two boxes: the first
    ("a \\boxed{{x}^{2}+\\sqrt{\\frac{a}{b}}} b", "a \\boxed{{x}^{2}+\\sqrt{\\frac{a}{b}}}"),
    ("no box at all", "no box at all"),
    ("\\boxed{unclosed {x}", "\\boxed{unclosed {x}"),
    ("\\boxed{} then more", "\\boxed{}"),
    ("\\boxed{\\{1,2\\}}!", "\\boxed{\\{1,2\\}}"),
    ("\\boxed{\\left\\{ x \\right.}!", "\\boxed{\\left\\{ x \\right.}"),  # escaped brace: BoxedLP would never stop
    ("\\boxed {5} \\boxed{6} x", "\\boxed {5} \\boxed{6}"),  # only "\boxed{" opens, as in BoxedLP
    ("}} \\fbox{1} \\boxed{é}ü", "}} \\fbox{1} \\boxed{é}"),
]


@pytest.mark.parametrize(("text", "kept"), BOX_CASES)
def test_truncate_text(text, kept):
    assert truncate_text(text) == kept
    assert (first_box_end(text) is None) == (kept == text)


@pytest.mark.parametrize(("text", "kept"), BOX_CASES)
def test_scanner_is_split_invariant(text, kept):
    """Fed in two pieces at every split point, and character by character, the box closes at the same place."""
    end = first_box_end(text)
    for cut in range(len(text) + 1):
        scanner, offset, found = BoxScanner(), 0, None
        for piece in (text[:cut], text[cut:]):
            at = scanner.feed(piece)
            found = offset + at if at is not None and found is None else found
            offset += len(piece)
        assert found == end, cut
    scanner = BoxScanner()
    closes = [k + 1 for k, c in enumerate(text) if scanner.feed(c) is not None]
    assert closes == ([] if end is None else [end])


def test_truncate_ids_with_multi_character_tokens():
    pieces = ["The ", "\\bo", "xed", "{\\frac", "{1}", "{2", "}}.", " Then", " \\boxed{3}", "<eos>"]
    text = dict(enumerate(pieces)).__getitem__
    ids, lps, stopped = truncate_ids(list(range(9)), text, eos_token_id=9, logprobs=[-0.5] * 9)
    assert stopped and ids == [0, 1, 2, 3, 4, 5, 6, 9] and lps == [-0.5] * 7 + [0.0]  # the token "}}." is kept whole
    ids, lps, _ = truncate_ids([0, 1, 2, 3, 4, 5, 6, 9, 7], text, eos_token_id=9, logprobs=[-1.0] * 9)
    assert ids == [0, 1, 2, 3, 4, 5, 6, 9] and lps == [-1.0] * 8  # a sampled EOS keeps its log-prob
    assert truncate_ids([0, 1, 2, 3, 4, 5, 6], text, eos_token_id=9, max_tokens=7)[0] == [0, 1, 2, 3, 4, 5, 6]
    assert truncate_ids([0, 7], text, eos_token_id=9) == ([0, 7], None, False)
    with pytest.raises(ValueError, match="logprobs has 1 entries for 2 tokens"):
        truncate_ids([0, 7], text, logprobs=[0.0])


def test_truncate_ids_on_a_real_tokenizer(tok):
    ids = _ids(tok, "x \\boxed{\\frac{1}{2}} y \\boxed{3}")
    out, _, stopped = truncate_ids(ids, boxed.token_text(tok), eos_token_id=tok.eos_token_id)
    assert (
        stopped
        and out[-1] == tok.eos_token_id
        and tok.decode(out, skip_special_tokens=True) == "x \\boxed{\\frac{1}{2}}"
    )


def test_truncate_completions_for_a_trainer_hook(tok):
    ids = [_ids(tok, "a \\boxed{1} b"), _ids(tok, "no box"), _ids(tok, "\\boxed{2}")]
    lps = [[-0.1] * len(x) for x in ids]
    out, out_lps, stopped = boxed.truncate_completions(ids, lps, tok, max_tokens=100)
    assert stopped == 2 and [tok.decode(x, skip_special_tokens=True) for x in out] == ["a \\boxed{1}", "no box",
                                                                                       "\\boxed{2}"]  # fmt: skip
    assert [len(x) for x in out] == [len(x) for x in out_lps] and out_lps[0][-1] == 0.0 and out[1] == ids[1]
    assert boxed.truncate_completions(ids, None, tok)[1] is None


@pytest.mark.parametrize("how", ["logits_processor", "stopping_criteria", None])
def test_hf_generate_stops_at_the_box(tok, how):
    model = scripted_model(tok)
    prompts = [[tok.bos_token_id, *_ids(tok, "\n")], [tok.pad_token_id, tok.bos_token_id, *_ids(tok, "q")]]
    ids = torch.tensor([[tok.pad_token_id, *prompts[0]], prompts[1]])
    mask = torch.tensor([[0, 1, 1], [0, 1, 1]])
    extra = {}
    if how == "logits_processor":
        extra["logits_processor"] = boxed.boxed_logits_processor(tok)
    elif how == "stopping_criteria":
        extra["stopping_criteria"] = boxed.boxed_stopping_criteria(tok)
    out = model.generate(input_ids=ids, attention_mask=mask, do_sample=False, max_new_tokens=14,
                         pad_token_id=tok.pad_token_id, **extra)  # fmt: skip
    first, second = (tok.decode(row[3:], skip_special_tokens=True) for row in out)
    assert second == "z" * 14  # the other row never boxes and runs to the limit
    if how is None:
        assert first == "\\boxed{1}zzzzz"
    else:
        assert first == "\\boxed{1}"
        forced = out[0, 3 + len("\\boxed{1}")].item()
        assert forced == tok.eos_token_id  # LP: forced EOS; criteria: the row is padded (pad == EOS here)


# == 3. data and scoring ===========================================================================================
def test_openrs_loader_and_split(tmp_path):
    files = FIXTURES / "openrs.jsonl"
    full = paper_data.load_source(paper_data.OPENRS, files, cache_dir=str(tmp_path))
    assert full.column_names == ["id", "problem", "gold", "gold_extraction", "source"] and len(full) == 8
    assert full[0]["gold"] == "We add: $2+3=5$. The answer is $\\boxed{5}$."  # the authors' gold column: solution
    train, val = paper_data.load_openrs(val_size=3, seed=0, data_files=files, cache_dir=str(tmp_path))
    assert len(train) == 5 and len(val) == 3 and set(train["id"]).isdisjoint(val["id"])
    assert set(train["id"]) | set(val["id"]) == set(full["id"])
    again = paper_data.load_openrs(val_size=3, seed=0, data_files=files, cache_dir=str(tmp_path))[1]
    other = paper_data.load_openrs(val_size=3, seed=1, data_files=files, cache_dir=str(tmp_path))[1]
    assert again["id"] == val["id"] and other["id"] != val["id"]
    with pytest.raises(ValueError, match="val_size must be an integer in 1..7"):
        paper_data.openrs_splits(full, val_size=8)


def test_hub_path_is_the_same_code_path(monkeypatch, tmp_path):
    """The hub call is one thin function; with it returning the fixture's rows the result equals the local load."""
    rows = [json.loads(x) for x in (FIXTURES / "aime24.jsonl").read_text().splitlines()]
    calls = []

    def fake_hub(source, cache_dir):
        calls.append((source.hub_id, source.split))
        return Dataset.from_list(rows)

    monkeypatch.setattr(paper_data, "_hub_dataset", fake_hub)
    source = paper_data.BENCHMARKS["aime24"]
    hub = paper_data.load_source(source)
    local = paper_data.load_source(source, FIXTURES / "aime24.jsonl", cache_dir=str(tmp_path))
    assert calls == [("HuggingFaceH4/aime_2024", "train")] and hub.to_list() == local.to_list()
    with pytest.raises(ValueError, match="aime24 .* has 2 items; the paper's has 30"):
        paper_data.load_benchmarks(["aime24"])


BENCH_TABLE = {  # name -> (hub id, split, first problem, first gold, gold extraction)
    "aime24": ("HuggingFaceH4/aime_2024", "train", "Find the remainder", "24", "latex+expr"),
    "math500": ("HuggingFaceH4/MATH-500", "test", "What is $\\frac{6}{8}$", "Divide by 2: $\\boxed{\\frac{3}{4}}$.",
                "latex"),
    "amc23": ("knoveleng/AMC-23", "train", "What is $3^3$?", "27.0", "latex+expr"),
    "minerva": ("knoveleng/Minerva-Math", "train", "A wave has period", "$f=1/T=\\boxed{0.5}$ Hz.", "latex"),
    "olympiadbench": ("knoveleng/OlympiadBench", "train", "Compute $1+2+3+4$.", "$10$", "latex+expr"),
}  # fmt: skip


def test_benchmark_loaders(tmp_path):
    data = paper_data.load_benchmarks(data_dir=FIXTURES, cache_dir=str(tmp_path))
    assert list(data) == list(BENCH_TABLE) == list(paper_data.BENCHMARK_NAMES)
    assert [s.n_items for s in paper_data.BENCHMARKS.values()] == [30, 500, 40, 272, 675]  # PAPER.md §4.1
    for name, (hub_id, split, problem, gold, extraction) in BENCH_TABLE.items():
        source, first = paper_data.BENCHMARKS[name], data[name][0]
        assert (source.hub_id, source.split) == (hub_id, split)
        assert first["problem"].startswith(problem) and first["gold"] == gold
        assert first["gold_extraction"] == extraction and len(data[name]) == 2


def test_standardize_names_what_is_wrong():
    source = paper_data.BENCHMARKS["olympiadbench"]
    with pytest.raises(ValueError, match=r"lacks column\(s\) \['question'\]"):
        paper_data.standardize(Dataset.from_list([{"problem": "p", "answer": "1"}]), source)
    with pytest.raises(ValueError, match="row 0: empty gold answer"):
        paper_data.standardize(Dataset.from_list([{"question": "p", "answer": " "}]), source)
    listed = paper_data.standardize(Dataset.from_list([{"question": "p", "answer": ["1", "2"]}]), source)
    assert listed[0]["gold"] == "1, 2"


def test_prompts_have_one_bos_and_match_trl(tok):
    problem = "What is $1+1$? é"
    ids = paper_data.prompt_ids(tok, problem)
    assert ids.count(tok.bos_token_id) == 1 and ids[0] == tok.bos_token_id
    assert tok(paper_data.prompt_text(tok, problem))["input_ids"] == ids  # the authors' text path, same ids
    text = tok.decode(ids)
    assert text == f"{BOS}{paper_data.SYSTEM_PROMPT}{USER}{problem}{ASSISTANT}<think>\n"
    trl_rows = paper_data.to_trl_dataset(Dataset.from_list([{"problem": problem, "gold": "2"}]))
    assert trl_rows[0]["prompt"] == [{"role": "system", "content": paper_data.SYSTEM_PROMPT},
                                     {"role": "user", "content": problem}]  # fmt: skip
    assert paper_data.chat_messages(problem, None) == [{"role": "user", "content": problem}]


SCORE_TABLE = [  # completion, gold, extraction, score
    ("so the answer is \\boxed{5}", "We add: $2+3=5$. The answer is $\\boxed{5}$.", "latex", 1.0),
    ("\\boxed{\\frac{6}{8}}", "Divide by 2: $\\boxed{\\frac{3}{4}}$.", "latex", 1.0),
    ("\\boxed{0.75}", "$\\boxed{\\frac{3}{4}}$", "latex", 1.0),
    ("\\boxed{27}", "27.0", "latex+expr", 1.0),
    ("\\boxed{24}", "24", "latex+expr", 1.0),
    ("\\boxed{6}", "We add: $2+3=5$. The answer is $\\boxed{5}$.", "latex", 0.0),
    ("I think it is 5", "$\\boxed{5}$", "latex", 0.0),  # no box, no LaTeX anchor: nothing parsed
    ("\\boxed{5} or maybe \\boxed{6}", "$\\boxed{5}$", "latex", 0.0),  # two boxes parse as a set: why the stop matters
    (paper_data.SYSTEM_PROMPT, "5", "latex+expr", 0.0),  # the system prompt's empty \boxed{} is no answer
    # The authors score prompt + completion; math-verify joins every box (boxed="all"), and a nearby empty one turns
    # \boxed{5} into ",5". Scoring the completion alone avoids that.
    (paper_data.SYSTEM_PROMPT + " So \\boxed{5}.", "5", "latex+expr", 0.0),
    ("So \\boxed{5}.", "5", "latex+expr", 1.0),
    ([{"role": "assistant", "content": "\\boxed{5}"}], "$5$", "latex", 1.0),  # TRL's chat completions
    ("\\boxed{5}", "It is the one named after the king of the Roman gods.", "latex", None),  # unparsable gold
    ("\\boxed{5}", "24", "latex", None),  # a bare number is no LaTeX: the authors would score 1 here
]


@pytest.mark.parametrize(("completion", "gold", "extraction", "expected"), SCORE_TABLE)
def test_scoring(completion, gold, extraction, expected):
    assert paper_data.score_completion(completion, gold, extraction) == expected


def test_scoring_a_stopped_completion():
    two_boxes = "\\boxed{5} or maybe \\boxed{6}"
    assert paper_data.score_completion(truncate_text(two_boxes), "$5$") == 1.0


def test_reward_function_counts_unscorable(tmp_path):
    data = paper_data.load_source(paper_data.OPENRS, FIXTURES / "openrs.jsonl", cache_dir=str(tmp_path))
    completions = ["\\boxed{5}", "\\boxed{3/4}", "\\boxed{5}", "\\boxed{4}", "\\boxed{4}", "\\boxed{42}", "x", "7"]
    rewards = paper_data.math_accuracy_reward(completions, data["gold"], data["gold_extraction"])
    assert rewards == [1.0, 1.0, 0.0, 1.0, 1.0, 1.0, None, 0.0]
    assert [paper_data.parse_gold(g) is None for g in data["gold"]].count(True) == 1  # the planet's solution
    with pytest.raises(ValueError, match="gold has 8 entries for 2 completions"):
        paper_data.math_accuracy_reward(completions[:2], data["gold"])


# == 4. evaluation =================================================================================================
def _read(path):
    return [json.loads(x) for x in path.read_text().splitlines()]


def test_hf_evaluation_structure_and_determinism(tok, random_model, tmp_path):
    data = paper_data.load_benchmarks(data_dir=FIXTURES, cache_dir=str(tmp_path / "cache"))
    kwargs = {"max_new_tokens": 6, "engine": "hf", "batch_size": 4}
    summary = paper_eval.evaluate_benchmarks(random_model, tok, data, tmp_path / "a", **kwargs)
    paper_eval.evaluate_benchmarks(random_model, tok, data, tmp_path / "b", **kwargs)
    for name in paper_data.BENCHMARK_NAMES:
        a, b = (tmp_path / d / f"{name}.jsonl" for d in "ab")
        assert a.read_bytes() == b.read_bytes()  # greedy: identical outputs
        rows = _read(a)
        assert [r["index"] for r in rows] == [0, 1] and {r["benchmark"] for r in rows} == {name}
        assert set(rows[0]) == {"benchmark", "index", "id", "problem", "gold", "completion", "n_tokens",
                                "stopped_at_box", "score"}  # fmt: skip
        assert all(r["n_tokens"] <= 6 and r["score"] in (0.0, 1.0, None) for r in rows)
        s = summary[name]
        assert s["n"] == 2 and s["n_scored"] + s["n_unscorable"] == 2 and s["engine"] == "hf"
    assert json.loads((tmp_path / "a" / "summary.json").read_text()) == json.loads(json.dumps(summary))
    assert summary["minerva"]["n_unscorable"] == 1  # "Newton." has no LaTeX answer: counted, not scored 1
    assert not list(tmp_path.glob("*/*.tmp"))


def _stop_data():
    return {"toy": Dataset.from_list([
        {"id": "t-0", "problem": "a", "gold": "1", "gold_extraction": "latex+expr"},
        {"id": "t-1", "problem": "b", "gold": "2", "gold_extraction": "latex+expr"},
        {"id": "t-2", "problem": "c", "gold": "no answer here", "gold_extraction": "latex"},
    ])}  # fmt: skip


def test_evaluation_applies_the_boxed_stop(tok, tmp_path):
    model = scripted_model(tok)
    on = paper_eval.evaluate_benchmarks(model, tok, _stop_data(), tmp_path / "on", max_new_tokens=20, engine="hf")
    off = paper_eval.evaluate_benchmarks(model, tok, _stop_data(), tmp_path / "off", max_new_tokens=20, engine="hf",
                                         boxed_stop=False)  # fmt: skip
    rows_on, rows_off = _read(tmp_path / "on" / "toy.jsonl"), _read(tmp_path / "off" / "toy.jsonl")
    assert [r["completion"] for r in rows_on] == ["\\boxed{1}"] * 3
    assert all(r["stopped_at_box"] and r["n_tokens"] == len("\\boxed{1}") + 1 for r in rows_on)  # + the forced EOS
    assert [r["completion"] for r in rows_off] == ["\\boxed{1}" + "z" * 11] * 3
    assert [r["score"] for r in rows_on] == [1.0, 0.0, None]
    assert on["toy"] | {"engine": None} == {"n": 3, "n_scored": 2, "n_unscorable": 1, "accuracy": 0.5,
                                            "sem": 0.5, "accuracy_unscorable_as_correct": 2 / 3,
                                            "stopped_at_box": 3, "engine": None, "max_new_tokens": 20}  # fmt: skip
    assert off["toy"]["stopped_at_box"] == 0


def test_vllm_path_with_a_stand_in_engine(tok, monkeypatch, tmp_path):
    """vLLM cannot run here; a stand-in with vLLM's interface checks our side: token-id prompts, greedy sampling
    params, and the boxed stop applied afterwards."""
    calls = {}
    box = _ids(tok, "\\boxed{7} and \\boxed{8}")

    class SamplingParams:
        def __init__(self, **kwargs):
            calls["params"] = kwargs

    class LLM:
        def __init__(self, model, seed):
            calls["llm"] = (model, seed)

        def generate(self, prompts, params, use_tqdm):
            calls["prompts"] = prompts
            out = types.SimpleNamespace(token_ids=tuple(box))
            return [types.SimpleNamespace(outputs=[out]) for _ in prompts]

    monkeypatch.setitem(sys.modules, "vllm", types.SimpleNamespace(LLM=LLM, SamplingParams=SamplingParams))
    data = {"toy": _stop_data()["toy"].select([0, 1])}
    summary = paper_eval.evaluate_benchmarks("some/model", tok, data, tmp_path, max_new_tokens=50, engine="vllm")
    assert calls["llm"] == ("some/model", 0) and calls["params"] == {"temperature": 0.0, "max_tokens": 50}
    assert calls["prompts"] == [{"prompt_token_ids": paper_data.prompt_ids(tok, p)} for p in ("a", "b")]
    rows = _read(tmp_path / "toy.jsonl")
    assert [r["completion"] for r in rows] == ["\\boxed{7}"] * 2 and summary["toy"]["engine"] == "vllm"


def test_engine_choice():
    import importlib.util

    has_vllm = torch.cuda.is_available() and importlib.util.find_spec("vllm") is not None
    assert paper_eval.resolve_engine("auto", "path") == ("vllm" if has_vllm else "hf")
    assert paper_eval.resolve_engine("auto", object()) == "hf"
    with pytest.raises(ValueError, match="pass a path or hub id"):
        paper_eval.resolve_engine("vllm", object())
    with pytest.raises(ValueError, match="engine must be"):
        paper_eval.resolve_engine("sglang", "path")


# == 5. preflight ==================================================================================================
def test_preflight_fails_fast_offline_without_cuda(tmp_path):
    env = {**os.environ, "HF_HUB_OFFLINE": "1", "PYTHONPATH": str(REPO)}
    start = time.monotonic()
    cmd = [sys.executable, "-m", "paper_lib.paper_scale.preflight", "--scale", "paper"]
    out = subprocess.run(cmd, cwd=tmp_path, env=env,
                         capture_output=True, text=True, timeout=60)  # fmt: skip
    elapsed = time.monotonic() - start
    assert elapsed < 10 and list(tmp_path.iterdir()) == []  # seconds, and nothing written
    if torch.cuda.is_available():
        pytest.skip("this machine has CUDA; the offline hub check is covered below")
    assert out.returncode == 1
    # `make test` also exports TRANSFORMERS_OFFLINE / HF_DATASETS_OFFLINE, which the message then lists too
    assert "MISSING CUDA" in out.stderr and "MISSING hub access: HF_HUB_OFFLINE=1" in out.stderr


def test_preflight_checks(monkeypatch):
    assert preflight.main(["--scale", "small"]) == 0 and preflight.main(["--scale", "smoke"]) == 0
    for name in preflight.OFFLINE_VARIABLES:
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("HF_ENDPOINT", "http://127.0.0.1:9")  # nothing listens: refused at once, no network used
    start = time.monotonic()
    problem = preflight.check_hub(timeout_s=2)
    assert time.monotonic() - start < 5 and problem.startswith("hub access: http://127.0.0.1:9/api/models/")
    monkeypatch.setenv("TRANSFORMERS_OFFLINE", "1")
    assert "TRANSFORMERS_OFFLINE=1 is set" in preflight.check_hub()
    monkeypatch.setattr(preflight, "check_cuda", lambda: None)
    monkeypatch.setattr(preflight, "check_hub", lambda timeout_s: None)
    monkeypatch.setattr(preflight, "check_peft", lambda: None)
    monkeypatch.setattr(preflight, "check_vllm", lambda: "vLLM: not installed")
    assert preflight.problems("paper", "auto") == ([], ["vLLM: not installed; generation uses HF generate"])
    assert preflight.problems("paper", "vllm") == (["vLLM: not installed"], [])
    assert preflight.problems("paper", "hf") == ([], [])
    with pytest.raises(ValueError, match="scale must be one of"):
        preflight.problems("huge")


# == 6. requirements-gpu.txt and the accelerate configs ============================================================
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


# == 7. GPU tier ===================================================================================================
@pytest.mark.gpu
def test_lambda_grpo_trains_in_bf16_on_cuda(tmp_path):
    if not torch.cuda.is_available():
        pytest.skip("no CUDA")
    from paper_lib.trainer import LambdaGRPOConfig, LambdaGRPOTrainer
    from paper_lib.training.models import char_tokenizer, tiny_qwen2

    tokenizer = char_tokenizer("0123456789+=,")
    tiny_qwen2(tokenizer, seed=0).save_pretrained(tmp_path / "policy")
    tokenizer.save_pretrained(tmp_path / "policy")
    data = Dataset.from_list([{"prompt": f"{a}+{b}=", "answer": str(a + b)} for a in range(4) for b in range(4)])
    args = LambdaGRPOConfig(output_dir=str(tmp_path / "out"), bf16=True, model_init_kwargs={"dtype": "bfloat16"},
                            num_generations=4, per_device_train_batch_size=8, max_completion_length=6, max_steps=3,
                            learning_rate=1e-2, beta=0.04, loss_type="grpo", report_to="none", save_strategy="no",
                            logging_steps=1, gradient_checkpointing=False, seed=0)  # fmt: skip
    reward = lambda completions, **kw: [float(len(c) % 3) for c in completions]  # variance within every group
    trainer = LambdaGRPOTrainer(model=str(tmp_path / "policy"), reward_funcs=reward, args=args, train_dataset=data,
                                processing_class=tokenizer)  # fmt: skip
    before = {k: v.detach().clone() for k, v in trainer.model.state_dict().items()}
    trainer.train()
    assert next(trainer.model.parameters()).device.type == "cuda"
    assert next(trainer.model.parameters()).dtype == torch.bfloat16
    losses = [h["loss"] for h in trainer.state.log_history if "loss" in h]
    assert len(losses) == 3 and all(torch.isfinite(torch.tensor(x)) for x in losses)
    assert any(not torch.equal(before[k], v) for k, v in trainer.model.state_dict().items())
