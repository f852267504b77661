"""Benchmark evaluation of a LoRA adapter folder (paper_eval), offline: detection, the missing-peft error, and the
merge → evaluate path with a stand-in peft (and a stand-in vLLM for the saved merged folder). The rest of the
evaluation is tested in test_benchmarks.py."""

import importlib.machinery
import json
import string
import sys
import types
from pathlib import Path

import pytest
from datasets import Dataset
from datasets.utils.logging import disable_progress_bar
from transformers.utils.import_utils import is_peft_available

from paper_lib.paper_scale import benchmarks as paper_eval
from paper_lib.training.models import char_tokenizer, tiny_qwen2

disable_progress_bar()
TEMPLATE = "{{ bos_token }}{% for m in messages %}{{ m['content'] }}\n{% endfor %}"


@pytest.fixture(scope="module")
def tok():
    tokenizer = char_tokenizer(string.ascii_letters + string.digits + " \n.'\\{}")
    tokenizer.chat_template = TEMPLATE
    return tokenizer


@pytest.fixture
def base(tok, tmp_path) -> Path:
    """A tiny full model on disk: the base model an adapter names."""
    path = tmp_path / "base"
    tiny_qwen2(tok, seed=0).save_pretrained(path)
    return path


def _adapter(folder: Path, base: str | Path | None) -> Path:
    folder.mkdir(parents=True)
    config = {"peft_type": "LORA", "r": 8} | ({"base_model_name_or_path": str(base)} if base else {})
    (folder / paper_eval.ADAPTER_CONFIG).write_text(json.dumps(config))
    return folder


def _data():
    return {"toy": Dataset.from_list([
        {"id": "t-0", "problem": "one", "gold": "1", "gold_extraction": "latex+expr"},
        {"id": "t-1", "problem": "two", "gold": "2", "gold_extraction": "latex+expr"},
    ])}  # fmt: skip


@pytest.fixture
def fake_peft(monkeypatch):
    """A stand-in ``peft`` whose merge returns the base model unchanged, recording the calls."""
    calls = []

    class PeftModel:
        @staticmethod
        def from_pretrained(model, path):
            calls.append(("from_pretrained", path))
            return types.SimpleNamespace(merge_and_unload=lambda: calls.append(("merge",)) or model)

    peft = types.ModuleType("peft")
    peft.__spec__ = importlib.machinery.ModuleSpec("peft", None)  # transformers asks find_spec("peft")
    peft.PeftModel = PeftModel
    monkeypatch.setitem(sys.modules, "peft", peft)
    is_peft_available.cache_clear()
    yield calls
    is_peft_available.cache_clear()  # transformers caches the answer: later tests must not see the stand-in


def test_adapter_detection_and_base(tmp_path):
    adapter = _adapter(tmp_path / "adapter", "org/base-model")
    assert paper_eval.is_adapter(adapter) and paper_eval.is_adapter(str(adapter))
    assert not paper_eval.is_adapter(tmp_path) and not paper_eval.is_adapter("org/hub-id")
    assert not paper_eval.is_adapter(object())
    assert paper_eval.adapter_base(adapter) == "org/base-model"
    assert paper_eval._tokenizer_source(str(adapter), None) == "org/base-model"  # no tokenizer saved with it
    assert paper_eval._tokenizer_source(str(adapter), "my/tok") == "my/tok"
    (adapter / "tokenizer_config.json").write_text("{}")
    assert paper_eval._tokenizer_source(str(adapter), None) == str(adapter)
    with pytest.raises(ValueError, match="names no base model"):
        paper_eval.adapter_base(_adapter(tmp_path / "nameless", None))


@pytest.mark.parametrize("engine", ["hf", "vllm"])
def test_adapter_without_peft_says_how_to_install_it(tok, tmp_path, monkeypatch, engine):
    monkeypatch.setitem(sys.modules, "peft", None)  # `import peft` raises ImportError, installed or not
    adapter = _adapter(tmp_path / "adapter", "org/base-model")
    with pytest.raises(ImportError, match=r"LoRA adapter .*pip install -r requirements-gpu\.txt"):
        paper_eval.evaluate_benchmarks(adapter, tok, _data(), tmp_path / "out", engine=engine, max_new_tokens=4)
    assert not (tmp_path / "out" / "_merged").exists()


def test_hf_adapter_is_merged_into_its_base(tok, base, tmp_path, fake_peft):
    adapter = _adapter(tmp_path / "adapter", base)
    kwargs = {"engine": "hf", "max_new_tokens": 4, "dtype": "float32"}
    merged = paper_eval.evaluate_benchmarks(adapter, tok, _data(), tmp_path / "a", **kwargs)
    assert fake_peft == [("from_pretrained", str(adapter)), ("merge",)]
    plain = paper_eval.evaluate_benchmarks(base, tok, _data(), tmp_path / "b", **kwargs)
    assert merged == plain  # the stand-in merge is the identity: the same greedy completions
    assert (tmp_path / "a" / "toy.jsonl").read_bytes() == (tmp_path / "b" / "toy.jsonl").read_bytes()


def test_vllm_gets_the_saved_merged_folder_and_it_is_deleted(tok, base, tmp_path, fake_peft, monkeypatch):
    seen = {}

    class LLM:
        def __init__(self, model, seed, dtype):
            assert dtype == "float32"
            folder = Path(model)
            seen["model"] = folder
            seen["files"] = {"config.json", "tokenizer_config.json"} <= {p.name for p in folder.iterdir()}

        def generate(self, prompts, params, use_tqdm):
            out = types.SimpleNamespace(token_ids=(tok.eos_token_id,))
            return [types.SimpleNamespace(outputs=[out]) for _ in prompts]

    monkeypatch.setitem(sys.modules, "vllm", types.SimpleNamespace(LLM=LLM, SamplingParams=lambda **kw: kw))
    adapter = _adapter(tmp_path / "adapter", base)
    summary = paper_eval.evaluate_benchmarks(adapter, tok, _data(), tmp_path / "out", engine="vllm", dtype="float32")
    assert seen == {"model": tmp_path / "out" / "_merged", "files": True} and ("merge",) in fake_peft
    assert not seen["model"].exists() and summary["toy"]["engine"] == "vllm"
    assert sorted(p.name for p in (tmp_path / "out").iterdir()) == ["summary.json", "toy.jsonl"]
