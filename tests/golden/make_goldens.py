#!/usr/bin/python3
# SPDX-License-Identifier: MIT
"""Golden logits of tiny LLaDA / Dream checkpoints from the independent PyTorch forward.

For every case below: `mdlm make-checkpoint` (the C++ generator) writes a tiny checkpoint, the fp32
PyTorch implementation in torch_models.py (written from shared/spec/models.md) computes the logits of a
few fixed sequences (with mask tokens), and the results are written to OUT:

* OUT/goldens.json: per case the generator arguments, the FNV-1a 64 hash of model.safetensors (so the
  C++ test can tell a generator change from a forward mismatch), the sequences and the logits file;
* OUT/<case>.f32: the logits of every sequence, concatenated, little-endian fp32, row-major [L, V].

The C++ test (tests/cpu/test_golden.cpp, tag [golden]) regenerates each checkpoint with the C++
generator and compares its forward with these logits (max abs difference <= 1e-4).

    make_goldens.py --tool build/.../mdlm [--out tests/golden/data]       # regenerate committed goldens
    make_goldens.py --tool .../mdlm --out DIR --then-run .../test_cpu     # live check (ctest golden_live)

Exits with 77 (ctest SKIP_RETURN_CODE) when torch cannot be imported.
"""

import argparse
import json
import os
import random
import subprocess
import sys
import tempfile

SKIP = 77

# name, arch, layers, d_model, heads, kv_heads, mlp, vocab, seed
CASES = [
    ("llada_tiny", "llada", 2, 64, 4, 4, 96, 320, 11),  # models.md section 6, LLaDA-tiny
    ("llada_gqa", "llada", 2, 64, 4, 2, 96, 320, 12),  # section 6, GQA path (n_kv_heads = 2)
    ("dream_tiny", "dream", 2, 64, 4, 2, 96, 320, 13),  # section 6, Dream-tiny
    ("llada_mqa", "llada", 3, 48, 2, 1, 80, 100, 14),  # one KV head, head_dim 24, three layers
    ("dream_mha", "dream", 1, 96, 3, 3, 64, 260, 15),  # no GQA, head_dim 32
]


def fnv1a64(path):
    h = 0xCBF29CE484222325
    with open(path, "rb") as f:
        data = f.read()
    for b in data:
        h = ((h ^ b) * 0x100000001B3) & 0xFFFFFFFFFFFFFFFF
    return f"{h:016x}"


def sequences(vocab, seed):
    """Fixed test sequences: prompt + masked tail, mostly masked, no mask, one token, interleaved."""
    rng = random.Random(seed)
    mask = vocab - 20
    tok = lambda: rng.randrange(0, vocab - 22)  # ordinary (non-special) ids
    s1 = [tok() for _ in range(5)] + [mask] * 7
    s2 = [tok()] + [mask] * 11
    s3 = [tok() for _ in range(7)]
    s4 = [mask]
    s5 = [tok() if i % 2 == 0 else mask for i in range(12)]
    return [s1, s2, s3, s4, s5]


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--tool", required=True, help="path of the mdlm executable")
    ap.add_argument("--out", default=os.path.join(os.path.dirname(os.path.abspath(__file__)), "data"))
    ap.add_argument("--then-run", help="test_cpu executable to run on the fresh goldens (tag [golden])")
    args = ap.parse_args()

    try:
        import numpy as np
        import torch
    except ImportError as e:  # CI without torch: the committed goldens are used instead
        print(f"make_goldens: skipped, cannot import torch/numpy ({e})")
        return SKIP
    sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
    import torch_models as tm

    torch.set_num_threads(1)
    os.makedirs(args.out, exist_ok=True)
    cases = []
    with tempfile.TemporaryDirectory(prefix="mdlm-goldens-") as scratch:
        for name, arch, layers, d, h, kv, mlp, vocab, seed in CASES:
            ckpt = os.path.join(scratch, name)
            subprocess.run([args.tool, "make-checkpoint", "--arch", arch, "--layers", str(layers), "--d-model", str(d),
                            "--heads", str(h), "--kv-heads", str(kv), "--mlp", str(mlp), "--vocab", str(vocab),
                            "--seed", str(seed), "--out", ckpt], check=True, stdout=subprocess.DEVNULL)
            model = tm.load_checkpoint(ckpt)
            seqs = sequences(vocab, seed)
            blobs = []
            with torch.no_grad():
                for s in seqs:
                    blobs.append(model(torch.tensor(s, dtype=torch.long)).numpy().astype("<f4"))
            logits_file = f"{name}.f32"
            np.concatenate([b.reshape(-1) for b in blobs]).tofile(os.path.join(args.out, logits_file))
            cases.append({"name": name, "arch": arch, "layers": layers, "d_model": d, "heads": h, "kv_heads": kv,
                          "mlp": mlp, "vocab": vocab, "seed": seed,
                          "safetensors_fnv1a64": fnv1a64(os.path.join(ckpt, "model.safetensors")),
                          "sequences": seqs, "logits_file": logits_file})
            print(f"make_goldens: {name}: {len(seqs)} sequences, max |logit| "
                  f"{max(float(abs(b).max()) for b in blobs):.3f}")
    with open(os.path.join(args.out, "goldens.json"), "w", encoding="utf-8") as f:
        head = {"generator": "tests/golden/make_goldens.py", "torch": torch.__version__, "tolerance": 1e-4}
        f.write(json.dumps(head)[:-1] + ', "cases": [\n')  # one line per case keeps diffs readable
        f.write(",\n".join(json.dumps(c) for c in cases))
        f.write("\n]}\n")
    if args.then_run:
        env = dict(os.environ, MDLM_GOLDEN_DIR=os.path.abspath(args.out))
        return subprocess.run([args.then_run, "[golden]"], env=env).returncode
    return 0


if __name__ == "__main__":
    sys.exit(main())
