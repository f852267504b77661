r"""Generation that stops once the first ``\boxed{…}`` closes (docs/paper.md §4.1, §7: the authors' ``BoxedLP``).

The authors force EOS as soon as the first ``\boxed{`` of the assistant's text has its matching ``}``. Rollouts
therefore end right after the answer, which shortens them and changes how much their prefixes overlap
(docs/paper.md §7, mismatch 3). This module gives the same stop for every engine:

- :class:`BoxScanner`: a streaming brace matcher fed one decoded token at a time, so ``\boxed`` split over several
  tokens, nested braces and text after the box are all handled without re-decoding the whole completion.
- HF ``generate``: :class:`BoxedEOSLogitsProcessor` (forces EOS once the box closed, as the authors do) and
  :class:`BoxedStoppingCriteria` (stops the row without an EOS). Build them with :func:`boxed_logits_processor`
  / :func:`boxed_stopping_criteria`, one per ``generate`` call: they keep per-row state.
- vLLM (and any engine): :func:`truncate_ids` (:func:`truncate_completions` for a batch) cuts finished ids after
  the token that closes the first box and appends EOS. vLLM's ``SamplingParams`` can stop on strings, not on
  balanced braces, and TRL builds the vLLM engine itself, so the stop is applied afterwards. The result has the
  law of a forced-EOS run: every token up to the box is drawn from the same conditionals, and greedy decoding
  gives the identical sequence.

Two deliberate differences from ``BoxedLP``, both where it would never stop: the escaped braces ``\{`` and ``\}``
are literal characters in LaTeX and do not count (``BoxedLP`` counts them, so ``\boxed{\left\{ x \right.}`` never
closes), and only the completion is scanned (``BoxedLP`` splits the decoded text at the chat template's assistant
marker, which it knows only for the DeepSeek and Llama templates). The opener is exactly ``\boxed{``, as in
``BoxedLP``; ``\boxed {`` with a space does not open a box.
"""

from __future__ import annotations

import functools
from collections.abc import Callable, Sequence

import torch

__all__ = [
    "BOX_OPEN",
    "BoxScanner",
    "BoxedEOSLogitsProcessor",  # noqa: F822 - built on first access (module __getattr__)
    "BoxedStoppingCriteria",  # noqa: F822
    "box_close_token",
    "boxed_logits_processor",
    "boxed_stopping_criteria",
    "first_box_end",
    "token_text",
    "truncate_completions",
    "truncate_ids",
    "truncate_text",
]

BOX_OPEN = "\\boxed{"


class BoxScanner:
    r"""Feed text chunk by chunk; :attr:`closed` turns True at the ``}`` that closes the first ``\boxed{``.

    Inside the box ``{`` and ``}`` change the depth, and a backslash makes the next character literal (``\{``,
    ``\}``, ``\\``). Once closed, later text is ignored.
    """

    def __init__(self) -> None:
        self.closed = False
        self._depth = 0  # 0: still looking for the opener
        self._escape = False
        self._tail = ""  # the last len(BOX_OPEN) - 1 characters, so an opener split across chunks is found

    def feed(self, chunk: str) -> int | None:
        """Consume ``chunk``; return the offset in it just after the closing ``}`` if the box closes here."""
        if self.closed:
            return None
        for offset, char in enumerate(chunk):
            if self._depth == 0:
                self._look_for_opener(char)
            elif self._step_inside(char):
                self.closed = True
                return offset + 1
        return None

    def _look_for_opener(self, char: str) -> None:
        self._tail = (self._tail + char)[-len(BOX_OPEN) :]
        if self._tail == BOX_OPEN:
            self._depth, self._tail = 1, ""

    def _step_inside(self, char: str) -> bool:
        """Advance one character inside the box; True when it closes the box."""
        if self._escape:
            self._escape = False
        elif char == "\\":
            self._escape = True
        elif char == "{":
            self._depth += 1
        elif char == "}":
            self._depth -= 1
            return self._depth == 0
        return False


def first_box_end(text: str) -> int | None:
    r"""The index just after the ``}`` that closes the first ``\boxed{…}`` of ``text``; None if none closes."""
    return BoxScanner().feed(text)


def truncate_text(text: str) -> str:
    r"""``text`` up to and including the end of its first ``\boxed{…}`` (unchanged when no box closes)."""
    end = first_box_end(text)
    return text if end is None else text[:end]


def token_text(tokenizer) -> Callable[[int], str]:
    """A cached ``id -> text`` of single tokens (special tokens give ``""``).

    Braces, backslashes and letters are ASCII, so they decode the same token by token as in context; a token that is
    part of a multi-byte character decodes to a replacement character, which never matters for the box.
    """

    @functools.cache
    def text(token_id: int) -> str:
        return tokenizer.decode([token_id], skip_special_tokens=True, clean_up_tokenization_spaces=False)

    return text


def box_close_token(token_ids: Sequence[int], text: Callable[[int], str]) -> int | None:
    """The position of the token whose text closes the first box; None when no box closes."""
    scanner = BoxScanner()
    for position, token_id in enumerate(token_ids):
        if scanner.feed(text(int(token_id))) is not None:
            return position
    return None


def truncate_ids(
    token_ids: Sequence[int],
    text: Callable[[int], str],
    eos_token_id: int | None = None,
    logprobs: Sequence[float] | None = None,
    max_tokens: int | None = None,
) -> tuple[list[int], list[float] | None, bool]:
    """Cut a finished completion after the token that closes its first box, as a forced-EOS run would end.

    Args:
        token_ids: the completion's ids (no prompt).
        text: ``id -> text``, e.g. :func:`token_text`.
        eos_token_id: appended after the box (a forced EOS), unless the sampled next token already is EOS or the
            completion would exceed ``max_tokens``. None appends nothing.
        logprobs: per-token sampling log-probs (vLLM's), cut alike; a forced EOS gets 0.0, its log-prob under the
            forcing distribution.

    Returns:
        ``(ids, logprobs, stopped)``, with ``stopped`` True when a box closed.
    """
    if logprobs is not None and len(logprobs) != len(token_ids):
        raise ValueError(f"logprobs has {len(logprobs)} entries for {len(token_ids)} tokens")
    close = box_close_token(token_ids, text)
    if close is None:
        return list(token_ids), None if logprobs is None else list(logprobs), False
    keep = close + 1
    sampled_eos = eos_token_id is not None and keep < len(token_ids) and token_ids[keep] == eos_token_id
    keep += int(sampled_eos)
    ids = [int(t) for t in token_ids[:keep]]
    kept_logprobs = None if logprobs is None else [float(x) for x in logprobs[:keep]]
    if eos_token_id is not None and not sampled_eos and (max_tokens is None or keep < max_tokens):
        ids.append(int(eos_token_id))
        kept_logprobs = None if kept_logprobs is None else [*kept_logprobs, 0.0]
    return ids, kept_logprobs, True


def truncate_completions(
    completion_ids: list[list[int]],
    logprobs: list[list[float]] | None,
    tokenizer,
    max_tokens: int | None = None,
) -> tuple[list[list[int]], list[list[float]] | None, int]:
    """:func:`truncate_ids` over a batch, for a trainer hook after generation (TRL's ``_generate_single_turn``
    returns exactly ``(completion_ids, logprobs)``, lists per completion). Returns the number of boxed stops too."""
    text, eos = token_text(tokenizer), tokenizer.eos_token_id
    out_ids, out_logprobs, stopped = [], [] if logprobs is not None else None, 0
    for k, ids in enumerate(completion_ids):
        lp = None if logprobs is None else logprobs[k]
        ids, lp, hit = truncate_ids(ids, text, eos_token_id=eos, logprobs=lp, max_tokens=max_tokens)
        out_ids.append(ids)
        stopped += hit
        if out_logprobs is not None:
            out_logprobs.append(lp)
    return out_ids, out_logprobs, stopped


# -- HF generate ---------------------------------------------------------------------------------------------------
class _RowScanners:
    """One :class:`BoxScanner` per batch row, fed the tokens ``generate`` appended since the last call.

    ``generate`` calls a logits processor before the first new token exists and a stopping criterion after it was
    appended: ``new_on_first_call`` (0 or 1) says how many trailing ids of the first call are already generated.
    """

    def __init__(self, tokenizer, new_on_first_call: int) -> None:
        self.text = token_text(tokenizer)
        self.new_on_first_call = new_on_first_call
        self.scanners: list[BoxScanner] = []
        self.seen: int | None = None

    def update(self, input_ids: torch.LongTensor) -> torch.BoolTensor:
        rows, length = input_ids.shape
        if self.seen is None or length != self.seen + 1 or rows != len(self.scanners):
            # a new generate call: the (left-padded) prompt is never scanned
            self.scanners, self.seen = [BoxScanner() for _ in range(rows)], length - self.new_on_first_call
        for position in range(self.seen, length):
            for scanner, token_id in zip(self.scanners, input_ids[:, position].tolist()):
                if not scanner.closed:
                    scanner.feed(self.text(token_id))
        self.seen = length
        return torch.tensor([s.closed for s in self.scanners], dtype=torch.bool, device=input_ids.device)


def _first_eos(tokenizer, eos_token_id: int | Sequence[int] | None) -> int:
    eos = tokenizer.eos_token_id if eos_token_id is None else eos_token_id
    eos = eos[0] if isinstance(eos, Sequence) else eos
    if eos is None:
        raise ValueError("the boxed stop forces EOS, but the tokenizer has no eos_token_id; pass eos_token_id=")
    return int(eos)


def _transformers_base(name: str):
    import transformers

    return getattr(transformers, name)


def boxed_logits_processor(tokenizer, eos_token_id: int | Sequence[int] | None = None):
    """A fresh ``LogitsProcessorList`` holding one :class:`BoxedEOSLogitsProcessor` (one per ``generate`` call)."""
    from transformers import LogitsProcessorList

    return LogitsProcessorList([_hf_classes()["BoxedEOSLogitsProcessor"](tokenizer, eos_token_id)])


def boxed_stopping_criteria(tokenizer):
    """A fresh ``StoppingCriteriaList`` holding one :class:`BoxedStoppingCriteria` (one per ``generate`` call)."""
    from transformers import StoppingCriteriaList

    return StoppingCriteriaList([_hf_classes()["BoxedStoppingCriteria"](tokenizer)])


def __getattr__(name: str):
    """The two HF classes are built on first use, so importing this module does not import transformers."""
    if name in ("BoxedEOSLogitsProcessor", "BoxedStoppingCriteria"):
        return _hf_classes()[name]
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


@functools.cache
def _hf_classes() -> dict[str, type]:
    LogitsProcessor = _transformers_base("LogitsProcessor")
    StoppingCriteria = _transformers_base("StoppingCriteria")

    class BoxedEOSLogitsProcessor(LogitsProcessor):
        """Force EOS in every row whose completion has closed its first box (the authors' ``BoxedLP``)."""

        def __init__(self, tokenizer, eos_token_id: int | Sequence[int] | None = None):
            self.eos_token_id = _first_eos(tokenizer, eos_token_id)
            self.rows = _RowScanners(tokenizer, new_on_first_call=0)

        def __call__(self, input_ids: torch.LongTensor, scores: torch.FloatTensor) -> torch.FloatTensor:
            done = self.rows.update(input_ids)
            if not bool(done.any()):
                return scores
            forced = torch.full_like(scores, -float("inf"))
            forced[:, self.eos_token_id] = 0.0
            return torch.where(done[:, None], forced, scores)

    class BoxedStoppingCriteria(StoppingCriteria):
        """Stop each row once its completion has closed its first box (no EOS is added)."""

        def __init__(self, tokenizer):
            self.rows = _RowScanners(tokenizer, new_on_first_call=1)

        def __call__(self, input_ids: torch.LongTensor, scores: torch.FloatTensor, **kwargs) -> torch.BoolTensor:
            return self.rows.update(input_ids)

    for cls in (BoxedEOSLogitsProcessor, BoxedStoppingCriteria):
        cls.__module__ = __name__
    return {"BoxedEOSLogitsProcessor": BoxedEOSLogitsProcessor, "BoxedStoppingCriteria": BoxedStoppingCriteria}
