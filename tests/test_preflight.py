"""The paper scale's preflight: it stops within seconds, writing nothing, when the machine lacks what it needs."""

import os
import subprocess
import sys
import time

import pytest
import torch
from conftest import REPO

from paper_lib.paper_scale import preflight


# == preflight ==================================================================================================
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
    monkeypatch.setattr(preflight, "check_gated", lambda timeout_s: None)
    monkeypatch.setattr(preflight, "check_peft", lambda: None)
    monkeypatch.setattr(preflight, "check_vllm", lambda: "vLLM: not installed")
    assert preflight.problems("paper", "auto") == ([], ["vLLM: not installed; generation uses HF generate"])
    assert preflight.problems("paper", "vllm") == (["vLLM: not installed"], [])
    assert preflight.problems("paper", "hf") == ([], [])
    served = preflight.problems("paper", "hf", switches={"use_vllm": True, "vllm_mode": "server"})[0]
    assert len(served) == 2 and "serves one model" in served[0]  # one server for three models, and vLLM missing
    with pytest.raises(ValueError, match="scale must be one of"):
        preflight.problems("huge")


def test_preflight_checks_the_process_count_against_every_preset():
    """The toy runs' 16 completions per step do not split over 3, 6, 12 or 24 processes (downstream's 24 do)."""
    assert all(preflight.check_process_count(n) is None for n in (1, 2, 4, 8))
    for n in (3, 6, 12, 24):
        message = preflight.check_process_count(n)
        assert message.startswith(f"{n} processes: the completions of toy (16 per step)") and "1, 2, 4, 8" in message
    fatal, _ = preflight.problems("paper", switches={"mirror": "/nonexistent"}, allow_cpu=True, num_processes=3)
    assert any(line.startswith("3 processes") for line in fatal)


def test_preflight_checks_access_to_the_gated_llama(monkeypatch):
    """A local stand-in for the hub that lets a file of the gated repo through only with the right token."""
    import http.server
    import threading

    seen = []

    class Hub(http.server.BaseHTTPRequestHandler):
        def do_HEAD(self):
            seen.append((self.path, self.headers.get("Authorization")))
            self.send_response(200 if self.headers.get("Authorization") == "Bearer good" else 401)
            self.end_headers()

        def log_message(self, *args):
            pass

    server = http.server.HTTPServer(("127.0.0.1", 0), Hub)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    monkeypatch.setenv("HF_ENDPOINT", f"http://127.0.0.1:{server.server_port}")
    try:
        monkeypatch.delenv("HF_TOKEN", raising=False)
        monkeypatch.setattr("huggingface_hub.get_token", lambda: None)
        assert "HTTP 401, no token is set" in preflight.check_gated(timeout_s=5)
        monkeypatch.setattr("huggingface_hub.get_token", lambda: "bad")
        assert "HTTP 401, the token has no access" in preflight.check_gated(timeout_s=5)
        monkeypatch.setattr("huggingface_hub.get_token", lambda: "good")
        assert preflight.check_gated(timeout_s=5) is None
    finally:
        server.shutdown()
    assert seen[-1] == ("/meta-llama/Llama-3.2-1B-Instruct/resolve/main/config.json", "Bearer good")
