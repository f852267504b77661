"""The boxed stop: rollouts and evaluation end at the first closed \\boxed{…}."""

import pytest
import torch
from paper_fixtures import (
    scripted_model,
    token_ids,
)

from paper_lib.paper_scale import boxed
from paper_lib.paper_scale.boxed import BoxScanner, first_box_end, truncate_ids, truncate_text

_ids = token_ids


# == the boxed stop =============================================================================================
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
    # the appended EOS was never sampled (log-prob 0): why vLLM's importance-sampling correction is off (presets)
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
