#!/usr/bin/python3
# SPDX-License-Identifier: MIT
"""PyTorch CPU equivalents of mdlm's batched statistics, timed on the shapes of mdlm_bench.

Ops (per L x V logit matrix, rows = masked positions):
  dream_entropy     torch.distributions.Categorical(logits=z).entropy()       (Dream, `entropy` ranking)
  llada_confidence  p = softmax(z); x0 = argmax(z); gather(p, -1, x0)         (LLaDA low_confidence)
  eb_entropy_sort   H = Categorical(logits=z).entropy(); sort(H); cumsum      (EB-Sampler)
Each op runs in the matrix's dtype (float32 or bfloat16, as the reference samplers do) with
torch.set_num_threads(threads). Times are medians of --repeats runs after one warm-up run: wall
clock (median_s) and process CPU time of all threads (cpu_median_s; with 1 thread the time on the
core, which is what a shared, loaded machine still measures faithfully).
Writes JSON (a list of records) to --out; run with Debian's /usr/bin/python3 (python3-torch).
"""
import argparse
import json
import platform
import statistics
import time

import torch
import torch.nn.functional as F


def dream_entropy(z):
    return torch.distributions.Categorical(logits=z).entropy()


def llada_confidence(z):
    p = F.softmax(z, dim=-1)
    x0 = torch.argmax(z, dim=-1)
    return torch.gather(p, -1, x0.unsqueeze(-1)).squeeze(-1)


def eb_entropy_sort(z):
    h = torch.distributions.Categorical(logits=z).entropy()
    sorted_h, order = torch.sort(h)
    return torch.cumsum(sorted_h, 0), order


OPS = {"dream_entropy": dream_entropy, "llada_confidence": llada_confidence, "eb_entropy_sort": eb_entropy_sort}


def make_logits(rows, vocab, dtype):
    # Logit-like values: approximately normal, standard deviation ~3 (as bench/support.hpp).
    g = torch.Generator().manual_seed(rows * 1000003 + vocab)
    z = (torch.rand(rows, vocab, generator=g) + torch.rand(rows, vocab, generator=g)
         + torch.rand(rows, vocab, generator=g) - 1.5) * 6.0
    return z.to(dtype)


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--out", required=True)
    ap.add_argument("--threads", default="1,2")
    ap.add_argument("--rows", default="256,1024")
    ap.add_argument("--vocab", default="32000,126464,152064")
    ap.add_argument("--dtypes", default="float32,bfloat16")
    ap.add_argument("--ops", default=",".join(OPS))
    ap.add_argument("--repeats", type=int, default=5)
    args = ap.parse_args()
    records = []
    with torch.no_grad():
        for rows in [int(x) for x in args.rows.split(",")]:
            for vocab in [int(x) for x in args.vocab.split(",")]:
                for dname in args.dtypes.split(","):
                    z = make_logits(rows, vocab, getattr(torch, dname))
                    for threads in [int(x) for x in args.threads.split(",")]:
                        torch.set_num_threads(threads)
                        for op in args.ops.split(","):
                            fn = OPS[op]
                            try:
                                fn(z)
                                times, cpu = [], []
                                for _ in range(args.repeats):
                                    t0, c0 = time.perf_counter(), time.process_time()
                                    fn(z)
                                    times.append(time.perf_counter() - t0)
                                    cpu.append(time.process_time() - c0)
                                rec = {"op": op, "dtype": dname, "L": rows, "V": vocab, "threads": threads,
                                       "median_s": statistics.median(times), "min_s": min(times),
                                       "cpu_median_s": statistics.median(cpu), "repeats": args.repeats}
                            except RuntimeError as e:  # an op without a kernel for this dtype
                                rec = {"op": op, "dtype": dname, "L": rows, "V": vocab, "threads": threads,
                                       "error": str(e).splitlines()[0]}
                            records.append(rec)
                            print(json.dumps(rec), flush=True)
                    del z
    meta = {"torch": torch.__version__, "python": platform.python_version(), "machine": platform.processor()}
    with open(args.out, "w") as f:
        json.dump({"meta": meta, "records": records}, f, indent=1)


if __name__ == "__main__":
    main()
