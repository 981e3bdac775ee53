#!/usr/bin/python3
# SPDX-License-Identifier: MIT
"""PyTorch peers of the device row statistics (issue 14), on the same GPU and shapes as
bench/cuda/bench_cuda_rows.cpp: the reference samplers' own statistics code on every row of a
256 x 126464 and a 1024 x 152064 logit matrix, bf16 and fp32.

  entropy   torch.distributions.Categorical(logits=z).entropy()          (Dream / EB entropy)
  softmax   p = softmax(z, -1); x0 = argmax; p.gather(x0)                  (LLaDA low_confidence)

Prints `RESULT` lines with the times and, when --mdlm names bench_cuda_rows' JSON output, the ratios
torch time / mdlm time for the greedy rows (mdlm computes entropy, top-2, argmax and p(x0) in one pass).
"""

import argparse
import json
import sys
import time


def timed(fn, reps=20):
    import torch
    fn()
    torch.cuda.synchronize()
    best = float("inf")
    for _ in range(reps):
        t0 = time.perf_counter()
        fn()
        torch.cuda.synchronize()
        best = min(best, time.perf_counter() - t0)
    return best


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--out", required=True)
    ap.add_argument("--mdlm", help="bench_cuda_rows --benchmark_out JSON")
    args = ap.parse_args()
    try:
        import torch
    except ImportError as e:
        print(f"SKIPPED: cannot import torch ({e})")
        return 77
    if not torch.cuda.is_available():
        print("SKIPPED: no CUDA device for torch")
        return 77
    mdlm = {}
    if args.mdlm:
        try:
            with open(args.mdlm, encoding="utf-8") as f:
                for b in json.load(f)["benchmarks"]:
                    if b.get("run_type", "iteration") == "iteration" and b.get("label") == "greedy":
                        mdlm[b["name"]] = b["real_time"] * 1e-6  # microseconds -> seconds
        except (OSError, ValueError, KeyError) as e:
            print(f"note: cannot read {args.mdlm}: {e}")
    results = []
    for shape_index, (rows, vocab) in enumerate([(256, 126464), (1024, 152064)]):
        for dtype, is_bf16 in ((torch.bfloat16, 1), (torch.float32, 0)):
            z = (torch.rand(rows, vocab, device="cuda", dtype=torch.float32) * 8 - 4).to(dtype)
            t_entropy = timed(lambda: torch.distributions.Categorical(logits=z).entropy())

            def softmax_max():
                p = torch.softmax(z, dim=-1)
                x0 = torch.argmax(z, dim=-1)
                return torch.gather(p, -1, x0.unsqueeze(-1))

            t_softmax = timed(softmax_max)
            name = f"BM_rows/shape:{shape_index}/bf16:{is_bf16}/sampled:0/min_time:0.200/real_time"
            ours = mdlm.get(name)
            r = {"rows": rows, "vocab": vocab, "dtype": str(dtype), "entropy_s": t_entropy, "softmax_max_s": t_softmax,
                 "mdlm_greedy_s": ours}
            results.append(r)
            ratio = f", torch entropy / mdlm {t_entropy / ours:.2f}x, torch softmax+max / mdlm {t_softmax / ours:.2f}x" if ours else ""
            print(f"RESULT torch {rows}x{vocab} {dtype}: entropy {t_entropy * 1e6:.0f} us, softmax+max "
                  f"{t_softmax * 1e6:.0f} us{ratio}")
    with open(args.out, "w", encoding="utf-8") as f:
        json.dump({"torch": torch.__version__, "device": torch.cuda.get_device_name(0), "results": results}, f, indent=1)
    return 0


if __name__ == "__main__":
    sys.exit(main())
