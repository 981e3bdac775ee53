# SPDX-License-Identifier: MIT
"""mdlm for Python: the sampling algorithms of the mdlm C++ library for masked diffusion LMs.

A model is any callable ``tokens -> logits``: it receives the canvas as an int64 array of shape
``[L]`` (``[B, L]`` in :func:`decode_batch`) -- a NumPy array, or a ``torch.Tensor`` when the prompt
is one (or ``tokens_as="torch"``) -- and returns ``[L, V]`` logits (``[B, L, V]``) as a NumPy array,
a CPU ``torch.Tensor`` or anything with DLPack / the buffer protocol, in float32, bfloat16 or
float16, C-contiguous. The logits are read in place (no copy) by the C++ kernels, with the GIL
released; the callable runs with the GIL held. Errors of the library (``std::invalid_argument``)
arrive as ``ValueError`` with the library's message; exceptions raised by the model propagate
unchanged with their traceback. See docs/python.md.
"""

from __future__ import annotations

from typing import Any, Callable, Iterable, Optional, Sequence, Union

import numpy as np

from . import _mdlm
from ._mdlm import (  # noqa: F401  (re-exported)
    MED,
    KLASS,
    Canvas,
    DecodeResult,
    DreamOrigin,
    EarlyExit,
    EBSampler,
    FastDLLMFactor,
    FastDLLMThreshold,
    FixedCount,
    StepEvent,
    Template,
    TokenChoice,
    auc,
    make_canvas,
    make_template,
    plain_template,
    posterior_template,
    select,
)
from ._mdlm import reference  # noqa: F401

__version__: str = _mdlm.__version__

Policy = Union[MED, EBSampler, FastDLLMThreshold, FastDLLMFactor, FixedCount, DreamOrigin, KLASS]

_LLADA_REMASKING = {"low_confidence": "confidence", "random": "random"}
_DREAM_ALG = {"maskgit_plus": "tempered_confidence", "topk_margin": "margin", "entropy": "neg_entropy"}


def LLaDASchedule(remasking: str = "low_confidence") -> FixedCount:
    """LLaDA generate.py: ``steps / blocks`` calls per block, ``get_num_transfer_tokens`` counts,
    ranked by ``remasking`` ('low_confidence' or 'random'). Needs ``steps`` in :func:`decode`."""
    if remasking not in _LLADA_REMASKING:
        raise ValueError(f"remasking = '{remasking}' must be 'low_confidence' or 'random'")
    return FixedCount(score=_LLADA_REMASKING[remasking], schedule="llada_blocks")


def DreamSchedule(alg: str = "entropy", eps: float = 1e-3, alg_temp: float = 0.0) -> Union[FixedCount, DreamOrigin]:
    """Dream diffusion_generate: the timestep schedule with ``alg`` in 'origin', 'maskgit_plus',
    'topk_margin', 'entropy' (Dream's default). Needs ``steps`` in :func:`decode`."""
    if alg == "origin":
        return DreamOrigin(eps=eps)
    if alg not in _DREAM_ALG:
        raise ValueError(f"alg = '{alg}' must be 'origin', 'maskgit_plus', 'topk_margin' or 'entropy'")
    return FixedCount(score=_DREAM_ALG[alg], schedule="dream_timesteps", eps=eps, alg_temp=alg_temp)


def _shape_of(out: Any) -> tuple:
    shape = getattr(out, "shape", None)
    if shape is None:
        shape = memoryview(out).shape
    return tuple(int(s) for s in shape)


def _adapt(model: Callable, tokens_as: str) -> Callable:
    if tokens_as == "numpy":
        return model
    if tokens_as == "torch":
        import torch

        def call(t: np.ndarray) -> Any:
            return model(torch.from_numpy(t))

        return call
    raise ValueError(f"tokens_as = '{tokens_as}' must be 'numpy' or 'torch'")


def _probe(fn: Callable, first: np.ndarray) -> tuple[Callable, int]:
    """Calls the model once on the first canvas to learn V; that call's result serves step 0."""
    out = fn(first)
    vocab = _shape_of(out)[-1]
    cache = [first.copy(), out]

    def call(t: np.ndarray) -> Any:
        if cache:
            tokens, o = cache
            cache.clear()
            if t.shape == tokens.shape and np.array_equal(t, tokens):
                return o
        return fn(t)

    return call, vocab


def _is_torch(x: Any) -> bool:
    return type(x).__module__.startswith("torch")


def _canvas_of(prompt_ids: Any, gen_length: Optional[int], template: Optional[Template], mask_id: int,
               sequence: int) -> Canvas:
    if template is not None:
        if prompt_ids is not None:
            raise ValueError("pass prompt_ids or template=, not both")
        c = template.canvas
        c.sequence = sequence if sequence else c.sequence
        return c
    if prompt_ids is None or gen_length is None:
        raise ValueError("decode needs prompt_ids and gen_length= (or template=)")
    return make_canvas(np.asarray(prompt_ids).reshape(-1).tolist(), gen_length, mask_id, sequence)


def decode(model: Callable, prompt_ids: Any = None, *, gen_length: Optional[int] = None, block_length: int = 0,
           policy: Optional[Policy] = None, choice: Optional[TokenChoice] = None, steps: int = 0, seed: int = 0,
           mask_id: Optional[int] = None, vocab_size: Optional[int] = None, observers: Iterable[Any] = (),
           template: Optional[Template] = None, sequence: int = 0, max_nfe: int = 0, interface: str = "automatic",
           tokens_as: Optional[str] = None) -> DecodeResult:
    """Decodes ``[prompt_ids][gen_length masks]`` (or a reasoning ``template``) with ``model``.

    ``model``: a callable ``tokens -> logits`` (see the module docstring) or an
    ``mdlm.reference.ExactModel`` (then decoded entirely in C++). ``policy`` defaults to
    ``MED()``; ``choice`` to greedy. ``mask_id`` is required for callables; ``vocab_size`` is read
    from the first call's result when omitted (that call serves as step 0). ``observers``: any of
    ``mdlm.EarlyExit`` and callables ``f(StepEvent) -> bool | None`` (True stops the loop).
    ``block_length`` 0 = the whole region; ``steps`` 0 = adaptive (one per position for schedules).
    Returns a :class:`DecodeResult` (``tokens``, ``nfe``, ``status``, ``message``, ...); invalid
    logits (NaN, +inf) end the run with ``status == 'invalid_logits'`` and the C++ message.
    Raises ValueError for bad arguments (the C++ messages) and whatever the model raises.
    """
    policy = MED() if policy is None else policy
    choice = TokenChoice() if choice is None else choice
    observers = list(observers)
    if isinstance(model, reference.ExactModel):
        c = _canvas_of(prompt_ids, gen_length, template, model.mask_id, sequence)
        return reference._decode(model, c, policy, choice, block_length, steps, seed, observers, max_nfe, interface)
    if mask_id is None:
        raise ValueError("mask_id = None: a callable model needs the mask token id (mask_id=...)")
    if tokens_as is None:
        tokens_as = "torch" if _is_torch(prompt_ids) else "numpy"
    fn = _adapt(model, tokens_as)
    c = _canvas_of(prompt_ids, gen_length, template, mask_id, sequence)
    if vocab_size is None:
        fn, vocab_size = _probe(fn, np.asarray(c.tokens, dtype=np.int64))
    return _mdlm._decode(fn, vocab_size, mask_id, c, policy, choice, block_length, steps, seed, observers, max_nfe,
                         interface)


def decode_batch(model: Callable, prompts: Any = None, *, gen_length: Optional[int] = None, block_length: int = 0,
                 policy: Optional[Policy] = None, choice: Optional[TokenChoice] = None, steps: int = 0,
                 seed: int = 0, mask_id: Optional[int] = None, vocab_size: Optional[int] = None,
                 observers: Iterable[Any] = (), templates: Optional[Sequence[Template]] = None,
                 max_nfe: int = 0, interface: str = "automatic",
                 tokens_as: Optional[str] = None) -> list[DecodeResult]:
    """Decodes equal-length canvases with one model call per step: ``model`` receives ``[B, L]``
    int64 tokens (B = canvases still running) and returns ``[B, L, V]`` logits. Canvas b gets
    sequence key b (its random numbers), so each result equals decoding it alone with
    ``sequence=b``. Arguments as :func:`decode`; ``prompts`` is a list of equal-length prompts."""
    policy = MED() if policy is None else policy
    choice = TokenChoice() if choice is None else choice
    if mask_id is None:
        raise ValueError("mask_id = None: a callable model needs the mask token id (mask_id=...)")
    if templates is not None:
        if prompts is not None:
            raise ValueError("pass prompts or templates=, not both")
        canvases = [t.canvas for t in templates]
        for b, cv in enumerate(canvases):
            cv.sequence = b
    else:
        if prompts is None or gen_length is None:
            raise ValueError("decode_batch needs prompts and gen_length= (or templates=)")
        if tokens_as is None and _is_torch(prompts):
            tokens_as = "torch"
        canvases = [make_canvas(np.asarray(p).reshape(-1).tolist(), gen_length, mask_id, b)
                    for b, p in enumerate(prompts)]
    fn = _adapt(model, tokens_as or "numpy")
    if vocab_size is None:
        first = np.stack([np.asarray(cv.tokens, dtype=np.int64) for cv in canvases]) if canvases else None
        fn, vocab_size = _probe(fn, first)
    return _mdlm._decode_batch(fn, vocab_size, mask_id, canvases, policy, choice, block_length, steps, seed,
                               list(observers), max_nfe, interface)


def _model_fn(model: Callable, tokens: np.ndarray, mask_id: Optional[int], vocab_size: Optional[int],
              tokens_as: str) -> tuple[Callable, int, int]:
    if isinstance(model, reference.ExactModel):
        return model, model.vocab_size, model.mask_id
    if mask_id is None:
        raise ValueError("mask_id = None: a callable model needs the mask token id (mask_id=...)")
    fn = _adapt(model, tokens_as)
    if vocab_size is None:
        fn, vocab_size = _probe(fn, tokens)
    return fn, vocab_size, mask_id


def evaluate_answer(model: Callable, tokens: Any, template: Template, answer: Sequence[int], *,
                    mask_id: Optional[int] = None, vocab_size: Optional[int] = None,
                    tokens_as: str = "numpy") -> tuple[float, float]:
    """(phi, H_UB) of ``answer`` given the canvas state ``tokens`` (infilling/answer_score.hpp): the
    answer span is masked, the model called once, and the answer rows read."""
    t = np.asarray(tokens, dtype=np.int64).reshape(-1)
    fn, v, m = _model_fn(model, t, mask_id, vocab_size, tokens_as)
    return _mdlm._evaluate_answer(fn, v, m, t, template, answer)


def answer_score(model: Callable, tokens: Any, template: Template, answer: Sequence[int], **kw: Any) -> float:
    """phi (eq. 4): sum of log p(a_j = answer_j | canvas); see :func:`evaluate_answer`."""
    return evaluate_answer(model, tokens, template, answer, **kw)[0]


def score_trace(model: Callable, template: Template, trace: Sequence[int], answer: Sequence[int], *,
                mask_id: Optional[int] = None, vocab_size: Optional[int] = None,
                tokens_as: str = "numpy") -> dict:
    """phi_t and H_UB_t along a reasoning trace (R + 1 calls) and their means
    (infilling/trace_score.hpp): a dict with 'phi', 'h_ub', 'mean_phi', 'mean_h_ub'."""
    fn, v, m = _model_fn(model, np.asarray(template.tokens, dtype=np.int64), mask_id, vocab_size, tokens_as)
    return _mdlm._score_trace(fn, v, m, template, trace, answer)


__all__ = [
    "MED", "EBSampler", "FastDLLMThreshold", "FastDLLMFactor", "FixedCount", "DreamOrigin", "KLASS",
    "LLaDASchedule", "DreamSchedule", "TokenChoice", "Canvas", "DecodeResult", "StepEvent", "Template",
    "EarlyExit", "decode", "decode_batch", "select", "make_canvas", "make_template", "plain_template",
    "posterior_template", "evaluate_answer", "answer_score", "score_trace", "auc", "reference",
]
