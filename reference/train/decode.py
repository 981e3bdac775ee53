# SPDX-License-Identifier: MIT
"""Greedy left-to-right one-token-per-step decoding of a masked diffusion LM, for the training
script's accuracy check.

Each model call fills the leftmost still-masked canvas position with the argmax token of its logits
(pre-filled positions, e.g. the template's answer delimiter, are skipped), so a canvas with m masks
takes m model calls. Problems are batched by prompt length, so no padding or attention mask is
needed; the result does not depend on the batch size.
"""

import os
import sys

import torch

_HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(_HERE, "..", "tasks"))
from mdlm_tasks import arith, formats  # noqa: E402


@torch.no_grad()
def decode_left_to_right(model, prompts, canvas, device="cpu", batch_size=64):
    """prompts: list of id lists; canvas: the response canvas (list of ids, mask where to fill).
    Returns the filled response id lists (same order as ``prompts``)."""
    mask_id = model.config["mask_token_id"]
    fill = [i for i, t in enumerate(canvas) if t == mask_id]
    out = [None] * len(prompts)
    by_len = {}
    for i, p in enumerate(prompts):
        by_len.setdefault(len(p), []).append(i)
    for plen in sorted(by_len):
        idx = by_len[plen]
        for s in range(0, len(idx), batch_size):
            chunk = idx[s : s + batch_size]
            x = torch.tensor([prompts[i] + canvas for i in chunk], dtype=torch.long, device=device)
            for pos in fill:
                logits = model(x)
                x[:, plen + pos] = logits[:, plen + pos].argmax(dim=-1)
            for j, i in enumerate(chunk):
                out[i] = x[j, plen:].tolist()
    return out


def evaluate(model, tok, problems, template, device="cpu", batch_size=64):
    """Greedy left-to-right accuracy on ``problems``; returns (summary dict, per-problem records)."""
    prompts = [formats.prompt_ids(tok, p["question"]) for p in problems]
    if template:
        canvas, _ = formats.template_canvas(tok)
    else:
        canvas = formats.plain_canvas(tok)
    responses = decode_left_to_right(model, prompts, canvas, device, batch_size)
    records = []
    for p, r in zip(problems, responses):
        text = tok.decode(r)
        g = arith.grade(text, p["answer"])
        records.append({"id": p["id"], "response": text, **g})
    n = len(records)
    summary = {
        "template": template,
        "problems": n,
        "accuracy": sum(r["answer_correct"] for r in records) / n,
        "all_steps_correct": sum(r["all_steps_correct"] for r in records) / n,
        "model_calls_per_problem": sum(1 for t in canvas if t == tok.mask),
    }
    return summary, records
