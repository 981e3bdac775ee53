# SPDX-License-Identifier: MIT
"""LLaDA-style generation with a PyTorch module: MED + early exit on a tiny checkpoint.

Run: PYTHONPATH=build/dev/python:tests/golden /usr/bin/python3 examples/python/llada_med_early_exit.py
"""
import tempfile

import torch

import mdlm
import torch_models as tm  # the project's PyTorch LLaDA / Dream (tests/golden)

CONFIG = {"model_type": "llada", "d_model": 64, "n_heads": 4, "n_kv_heads": 4, "n_layers": 2,
          "mlp_hidden_size": 96, "vocab_size": 320, "rope_theta": 10000.0, "weight_tying": False}
MASK_ID = 300  # LLaDA's [MASK] is a token id of the vocabulary


def main():
    torch.manual_seed(0)
    with tempfile.TemporaryDirectory() as ckpt:  # a tiny checkpoint, written and read back
        tm.save_checkpoint(tm.model_from_config(CONFIG), ckpt, dtype="BF16")
        model = tm.load_checkpoint(ckpt)

    @torch.no_grad()
    def logits(tokens):  # [L] int64 tensor -> [L, V] float32 tensor, read in place by mdlm
        return model(tokens)

    prompt = torch.tensor([11, 42, 7, 99, 5])
    t = mdlm.make_template(prompt.tolist(), reasoning_length=22, delimiter=[17], answer_length=5, mask_id=MASK_ID)
    exit_ = mdlm.EarlyExit(t, gamma=0.1)
    r = mdlm.decode(logits, template=t, block_length=14, policy=mdlm.MED(lam=0.2, k_max=32), mask_id=MASK_ID,
                    observers=[exit_], tokens_as="torch")
    a0, a1 = t.answer
    print(f"status {r.status}, NFE {r.nfe}, exit {exit_.result()['reason']}, answer {r.tokens[a0:a1].tolist()}")
    return r, exit_.result()


if __name__ == "__main__":
    main()
