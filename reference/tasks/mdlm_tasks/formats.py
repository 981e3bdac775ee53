# SPDX-License-Identifier: MIT
"""How a problem is written for the model (LLaDA SFT style: prompt, then a fixed-length response
padded with EOS).

* Prompt: ``[BOS] encode(question + "\\n")``. Never masked.
* Response, ``gen_length`` tokens, in one of two forms:
  - reasoning template (paper section 4.1): ``encode(reasoning)``, EOS up to the reasoning block's end
    (``gen_length - len(delimiter) - answer_block`` tokens), ``encode("The answer is ")``, the answer's
    digits, EOS up to ``answer_block`` tokens;
  - plain (no template): ``encode(reasoning)`` then EOS up to ``gen_length``; the answer is the last
    step's result.
  The reasoning is one step per line, every line ending with a newline (``"3*4=12\\n12+12=24\\n"``).
* Inference with the template: the canvas is ``[MASK] * reasoning_block + delimiter + [MASK] *
  answer_block``; without it, ``[MASK] * gen_length``.

The same numbers are stored in tokenizer.json under ``format_spec`` for the C++ side.
"""

from . import arith

GEN_LENGTH = 64  #: response (canvas) length in tokens
ANSWER_BLOCK = 6  #: answer block length in tokens (digits, then EOS)


def format_spec():
    return {"prompt": "<|bos|>{question}\\n", "question_suffix": "\n", "gen_length": GEN_LENGTH,
            "answer_block": ANSWER_BLOCK, "answer_delimiter": arith.ANSWER_DELIMITER,
            "reasoning": "one step per line, each line ending with \\n", "pad": "eos"}


def prompt_ids(tok, question):
    return [tok.bos] + tok.encode(question + "\n")


def reasoning_block_length(tok, gen_length=GEN_LENGTH, answer_block=ANSWER_BLOCK):
    r = gen_length - len(tok.encode(arith.ANSWER_DELIMITER)) - answer_block
    if r < 1:
        raise ValueError(f"gen_length {gen_length} leaves no room for reasoning")
    return r


def template_response_ids(tok, steps, answer, gen_length=GEN_LENGTH, answer_block=ANSWER_BLOCK):
    r = reasoning_block_length(tok, gen_length, answer_block)
    reasoning = tok.encode(arith.reasoning_text(steps))
    if len(reasoning) > r:
        raise ValueError(f"reasoning of {len(reasoning)} tokens does not fit the block of {r}")
    ans = tok.encode(str(answer))
    if len(ans) > answer_block:
        raise ValueError(f"answer {answer} does not fit the answer block of {answer_block}")
    out = reasoning + [tok.eos] * (r - len(reasoning)) + tok.encode(arith.ANSWER_DELIMITER)
    out += ans + [tok.eos] * (answer_block - len(ans))
    assert len(out) == gen_length
    return out


def plain_response_ids(tok, steps, gen_length=GEN_LENGTH):
    reasoning = tok.encode(arith.reasoning_text(steps))
    if len(reasoning) > gen_length:
        raise ValueError(f"reasoning of {len(reasoning)} tokens does not fit gen_length {gen_length}")
    return reasoning + [tok.eos] * (gen_length - len(reasoning))


def template_canvas(tok, gen_length=GEN_LENGTH, answer_block=ANSWER_BLOCK):
    """(canvas ids, answer block start offset within the canvas) for inference with the template."""
    r = reasoning_block_length(tok, gen_length, answer_block)
    delim = tok.encode(arith.ANSWER_DELIMITER)
    return [tok.mask] * r + delim + [tok.mask] * answer_block, r + len(delim)


def plain_canvas(tok, gen_length=GEN_LENGTH):
    return [tok.mask] * gen_length
