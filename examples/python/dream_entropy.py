# SPDX-License-Identifier: MIT
"""Dream-style generation (shifted logits, Dream's entropy schedule) with a PyTorch module.

Run: PYTHONPATH=build/dev/python:tests/golden /usr/bin/python3 examples/python/dream_entropy.py
"""
import tempfile

import torch

import mdlm
import torch_models as tm

CONFIG = {"model_type": "dream", "hidden_size": 64, "num_attention_heads": 4, "num_key_value_heads": 2,
          "num_hidden_layers": 2, "intermediate_size": 96, "vocab_size": 320, "rope_theta": 1e6}
MASK_ID = 300


def main():
    torch.manual_seed(1)
    with tempfile.TemporaryDirectory() as ckpt:
        tm.save_checkpoint(tm.model_from_config(CONFIG), ckpt, dtype="BF16")
        model = tm.load_checkpoint(ckpt)

    @torch.no_grad()
    def logits(tokens):  # Dream's forward applies the logit shift (row i predicts token i)
        return model(tokens).to(torch.bfloat16)  # bf16 rows, as the real models emit them

    prompt = torch.tensor([3, 14, 15, 92, 65])
    r = mdlm.decode(logits, prompt, gen_length=16, steps=16, policy=mdlm.DreamSchedule("entropy"),
                    mask_id=MASK_ID, choice=mdlm.TokenChoice(temperature=0.0))
    print(f"status {r.status}, NFE {r.nfe}, tokens {r.tokens[len(prompt):].tolist()}")
    return r


if __name__ == "__main__":
    main()
