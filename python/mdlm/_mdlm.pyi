# SPDX-License-Identifier: MIT
# Type stub of the C++ extension mdlm._mdlm (python/src/module.cpp, python/src/reference.cpp).
from typing import Any, Callable, Optional, Sequence, Union

import numpy as np
import numpy.typing as npt

reference: Any  # mdlm._mdlm.reference: ExactModel, joint_table, hmm, exact_output_distribution, ...

__version__: str

class TokenChoice:
    temperature: float
    top_p: Optional[float]
    top_k: Optional[int]
    def __init__(self, temperature: float = 0.0, top_p: Optional[float] = None, top_k: Optional[int] = None) -> None: ...

class MED:
    lam: float
    k_max: int
    def __init__(self, lam: float = 0.2, k_max: int = 32) -> None: ...

class EBSampler:
    gamma: float
    def __init__(self, gamma: float = 0.01, order: str = "entropy") -> None: ...

class FastDLLMThreshold:
    tau: float
    def __init__(self, tau: float = 0.9) -> None: ...

class FastDLLMFactor:
    factor: float
    def __init__(self, factor: float = 1.0, reference_last_rank: bool = True) -> None: ...

class FixedCount:
    per_step: int
    eps: float
    alg_temp: float
    @property
    def scheduled(self) -> bool: ...
    def __init__(self, score: str = "confidence", schedule: str = "llada_blocks", per_step: int = 1,
                 eps: float = 1e-3, alg_temp: float = 0.0) -> None: ...

class DreamOrigin:
    eps: float
    def __init__(self, eps: float = 1e-3) -> None: ...

class KLASS:
    kl_threshold: float
    confidence_threshold: float
    history: int
    def __init__(self, kl_threshold: float = 0.015, confidence_threshold: float = 0.6, history: int = 2,
                 strict_confidence: bool = True, fallback_steps_per_block: int = 0) -> None: ...

Policy = Union[MED, EBSampler, FastDLLMThreshold, FastDLLMFactor, FixedCount, DreamOrigin, KLASS]

class DecodeResult:
    @property
    def tokens(self) -> npt.NDArray[np.int64]: ...
    nfe: int
    @property
    def unmask_step(self) -> npt.NDArray[np.int32]: ...
    @property
    def status(self) -> str: ...
    masked_left: int
    message: str
    error_step: int
    error_position: int
    @property
    def interface(self) -> str: ...
    interface_note: str
    @property
    def ok(self) -> bool: ...

class StepEvent:
    step: int
    nfe: int
    block: int
    block_begin: int
    block_end: int
    batch_index: int
    @property
    def tokens(self) -> npt.NDArray[np.int64]: ...
    unmasked: list[int]
    candidates: list[int]
    entropies: list[float]

class Canvas:
    def __init__(self, tokens: Sequence[int], region_begin: int, region_end: int, sequence: int = 0) -> None: ...
    @property
    def tokens(self) -> npt.NDArray[np.int64]: ...
    region_begin: int
    region_end: int
    sequence: int

def make_canvas(prompt: Sequence[int], gen_length: int, mask_id: int, sequence: int = 0) -> Canvas: ...

class Template:
    @property
    def canvas(self) -> Canvas: ...
    @property
    def tokens(self) -> npt.NDArray[np.int64]: ...
    @property
    def prompt(self) -> tuple[int, int]: ...
    @property
    def reasoning(self) -> tuple[int, int]: ...
    @property
    def delimiter(self) -> tuple[int, int]: ...
    @property
    def answer(self) -> tuple[int, int]: ...
    @property
    def suffix(self) -> tuple[int, int]: ...

def make_template(prompt: Sequence[int], *, answer_length: int, reasoning_length: int = 0,
                  delimiter: Sequence[int] = ..., suffix: Sequence[int] = ..., mask_id: int,
                  sequence: int = 0) -> Template: ...
def plain_template(prompt: Sequence[int], gen_length: int, mask_id: int, sequence: int = 0) -> Template: ...
def posterior_template(template: Template, answer: Sequence[int], mask_id: int) -> Template: ...

class EarlyExit:
    def __init__(self, template: Union[Template, Sequence[Template]], gamma: float = 0.1) -> None: ...
    @property
    def gamma(self) -> float: ...
    def result(self, batch_index: int = 0) -> dict[str, Any]: ...
    def reset(self) -> None: ...

def auc(positives: Sequence[float], negatives: Sequence[float]) -> float: ...
def select(policy: Policy, positions: Sequence[int], *, logits: Any = None, stats: Optional[dict[str, Any]] = None,
           choice: TokenChoice = ..., seed: int = 0, sequence: int = 0, step: int = 0, step_in_block: int = 0,
           steps_per_block: int = 0, total_steps: int = 0, block_masked_at_start: int = 0, masked_total: int = 0,
           mask_id: Optional[int] = None) -> tuple[npt.NDArray[np.int64], npt.NDArray[np.int64]]: ...
def _decode(model: Callable[[Any], Any], vocab_size: int, mask_id: int, canvas: Canvas, policy: Policy,
            choice: TokenChoice, block_length: int, steps: int, seed: int, observers: list[Any], max_nfe: int,
            interface: str) -> DecodeResult: ...
def _decode_batch(model: Callable[[Any], Any], vocab_size: int, mask_id: int, canvases: list[Canvas],
                  policy: Policy, choice: TokenChoice, block_length: int, steps: int, seed: int,
                  observers: list[Any], max_nfe: int, interface: str) -> list[DecodeResult]: ...
def _decode_constant(logits: Any, mask_id: int, canvas: Canvas, policy: Policy, block_length: int) -> DecodeResult: ...
def _evaluate_answer(model: Callable[[Any], Any], vocab_size: int, mask_id: int, tokens: Any, template: Template,
                     answer: Sequence[int]) -> tuple[float, float]: ...
def _score_trace(model: Callable[[Any], Any], vocab_size: int, mask_id: int, template: Template,
                 trace: Sequence[int], answer: Sequence[int]) -> dict[str, Any]: ...
