#!/usr/bin/python3
# SPDX-License-Identifier: MIT
"""Python-path benchmarks of the mdlm package (issue 19), at V = 126464, L = 256 (LLaDA's sizes).

1. Per-step overhead of mdlm.decode with a Python callable over the same decode in C++: both read
   the same fixed fp32 logit array (the model costs nothing, so the ratio is the Python path's whole
   overhead: the call, the int64 token array, DLPack/buffer acquisition, the GIL round trips).
2. The step API (mdlm.select) against reference PyTorch sampler code on the same tensors: LLaDA's
   low-confidence rule (softmax, argmax, gather, top-k) and Dream's entropy rule (softmax, max,
   entropy, top-k of -entropy), written from the samplers' descriptions.

Run: PYTHONPATH=build/dev/python /usr/bin/python3 bench/python/overhead.py [--reps N]
"""
import argparse
import time

import numpy as np

import mdlm

L, V, MASK = 256, 126464, 126336


def best_of(f, reps):
    t = []
    for _ in range(reps):
        t0 = time.perf_counter()
        f()
        t.append(time.perf_counter() - t0)
    return min(t)


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--reps", type=int, default=5)
    args = ap.parse_args()
    rng = np.random.default_rng(0)
    logits = (rng.standard_normal((L, V), dtype=np.float32) * 2.0)
    prompt = [1] * 32
    canvas = mdlm.make_canvas(prompt, L - 32, MASK)
    policy = mdlm.MED(lam=0.2, k_max=8)

    def cpp():
        return mdlm._mdlm._decode_constant(logits, MASK, canvas, policy, 32)

    def py():
        return mdlm.decode(lambda t: logits, prompt, gen_length=L - 32, block_length=32, policy=policy,
                           mask_id=MASK, vocab_size=V)

    a, b = cpp(), py()
    assert np.array_equal(a.tokens, b.tokens) and a.nfe == b.nfe, "Python path and C++ differ"
    tc, tp = best_of(cpp, args.reps), best_of(py, args.reps)
    print(f"decode L={L} V={V} MED(0.2, 8) block 32: NFE {a.nfe}; C++ {1e3 * tc / a.nfe:.3f} ms/step, "
          f"Python callable {1e3 * tp / a.nfe:.3f} ms/step, overhead {100 * (tp / tc - 1):+.2f} %")

    import torch

    z = torch.from_numpy(logits)
    masked = list(range(32, L))
    k = 8

    def llada_ref():
        p = torch.softmax(z[32:], dim=-1)
        x0 = torch.argmax(z[32:], dim=-1)
        conf = torch.gather(p, -1, x0.unsqueeze(-1)).squeeze(-1)
        return torch.topk(conf, k).indices, x0

    def dream_ref():
        p = torch.softmax(z[32:], dim=-1)
        conf, x0 = p.max(dim=-1)
        neg_entropy = (p * torch.log(p + 1e-10)).sum(dim=-1)
        return torch.sort(neg_entropy, descending=True).indices[:k], x0

    llada_pol = mdlm.FixedCount(score="confidence", schedule="per_step", per_step=k)
    dream_pol = mdlm.FixedCount(score="neg_entropy", schedule="per_step", per_step=k)
    with torch.no_grad():
        for name, ref, pol in (("LLaDA confidence+topk", llada_ref, llada_pol),
                               ("Dream entropy+sort", dream_ref, dream_pol)):
            idx, x0 = ref()
            pos, tok = mdlm.select(pol, masked, logits=z)
            assert sorted((idx + 32).tolist()) == sorted(pos.tolist()), name
            tr = best_of(ref, args.reps)
            tm = best_of(lambda: mdlm.select(pol, masked, logits=z), args.reps)
            print(f"step API {name} [{L - 32}, {V}] fp32, torch threads {torch.get_num_threads()}: "
                  f"PyTorch {1e3 * tr:.2f} ms, mdlm.select {1e3 * tm:.2f} ms, ratio torch/mdlm {tr / tm:.2f}")


if __name__ == "__main__":
    main()
