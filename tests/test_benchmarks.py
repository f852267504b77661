"""Table 2's evaluation (HF generate and a stand-in vLLM engine), on local fixtures."""

import json
import sys
import types

import pytest
import torch
from conftest import REPO
from datasets import Dataset
from datasets.utils.logging import disable_progress_bar
from paper_fixtures import (  # noqa: F401 (fixtures)
    ASSISTANT,
    BOS,
    USER,
    byte_tokenizer,
    random_qwen2,
    scripted_model,
    token_ids,
)

from paper_lib.paper_scale import benchmarks as paper_eval
from paper_lib.paper_scale import data as paper_data

disable_progress_bar()
FIXTURES = REPO / "tests" / "fixtures" / "paper"
_ids = token_ids


# == evaluation =================================================================================================
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
                                            "stopped_at_box": 3, "engine": None, "max_new_tokens": 20,
                                            "dtype": "float32"}  # fmt: skip
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
        def __init__(self, model, seed, dtype):
            calls["llm"] = (model, seed, dtype)

        def generate(self, prompts, params, use_tqdm):
            calls["prompts"] = prompts
            out = types.SimpleNamespace(token_ids=tuple(box))
            return [types.SimpleNamespace(outputs=[out]) for _ in prompts]

    monkeypatch.setitem(sys.modules, "vllm", types.SimpleNamespace(LLM=LLM, SamplingParams=SamplingParams))
    data = {"toy": _stop_data()["toy"].select([0, 1])}
    summary = paper_eval.evaluate_benchmarks("some/model", tok, data, tmp_path, max_new_tokens=50, engine="vllm")
    assert calls["llm"] == ("some/model", 0, "bfloat16") and calls["params"] == {"temperature": 0.0, "max_tokens": 50}
    assert calls["prompts"] == [{"prompt_token_ids": paper_data.prompt_ids(tok, p)} for p in ("a", "b")]
    rows = _read(tmp_path / "toy.jsonl")
    assert [r["completion"] for r in rows] == ["\\boxed{7}"] * 2 and summary["toy"]["engine"] == "vllm"
    assert summary["toy"]["dtype"] == "bfloat16"  # one dtype, given, for base and trained models alike


def test_engine_choice():
    import importlib.util

    has_vllm = torch.cuda.is_available() and importlib.util.find_spec("vllm") is not None
    assert paper_eval.resolve_engine("auto", "path") == ("vllm" if has_vllm else "hf")
    assert paper_eval.resolve_engine("auto", object()) == "hf"
    with pytest.raises(ValueError, match="pass a path or hub id"):
        paper_eval.resolve_engine("vllm", object())
    with pytest.raises(ValueError, match="engine must be"):
        paper_eval.resolve_engine("sglang", "path")


def test_the_evaluation_cli_fixes_a_dated_template_as_training_does(tmp_path, monkeypatch):
    """Llama 3.2's template writes today's date unless told otherwise; training fixes it (presets), and so does the
    standalone evaluation, without a flag to remember."""
    from paper_lib.paper_scale.presets import LLAMA_DATE_STRING

    dated = byte_tokenizer()
    dated.chat_template = "{{ date_string }}" + dated.chat_template
    dated.save_pretrained(tmp_path / "llama")
    byte_tokenizer().save_pretrained(tmp_path / "qwen")
    seen = []
    monkeypatch.setattr(paper_eval, "evaluate_benchmarks", lambda *a, **kw: seen.append(kw["chat_template_kwargs"]))
    monkeypatch.setattr(paper_eval, "load_benchmarks", lambda *a: {})
    for folder, extra in (("llama", []), ("llama", ["--today"]), ("qwen", [])):
        paper_eval.main(["evaluate", "--model", str(tmp_path / folder), "--out", str(tmp_path / "out"), *extra])
    assert seen == [{"date_string": LLAMA_DATE_STRING}, None, None]
