#!/usr/bin/env bash
# SPDX-License-Identifier: MIT
# Trains the next reference model (issue 17) on a GPU machine, within a fixed time, from the
# repository root (only the working tree is needed: reference/, tests/golden/torch_models.py and the
# task data travel with it; PyTorch is on that machine). Through the device tool:
#   run(command="scripts/gpu-train.sh", timeout_s=540)
# Writes $OUT/arith-model (final) and $OUT/arith-model-base (the weaker base of the post-training
# experiment, saved at 30 % of the run) when OUT is set, else build/gpu-train/. Both are bf16
# safetensors that the CPU backend runs; evaluate them here afterwards with the C++ harness:
#   ./build/tools/mdlm eval --model <dir> -n 1000 --policy left-to-right
# The recipe: the digit tokenizer (reference/tasks/data/tokenizer.json), short prompts padded after the
# answer block, 50 % one-step drills (--drill-one-step: on two CPU cores they took the first-stage
# model from 28 % to 58 % left-to-right in 50 minutes, giving the shipped model, where numbers as
# single tokens reached 6 % in 85; see
# reference/models/arith-llada-3m/MODEL_CARD.md), a 6-layer d_model 256 LLaDA (about 5M parameters).
# To continue the shipped model instead: MDLM_TRAIN_ARGS="--init reference/models/arith-llada-3m".
# Environment:
#   MDLM_TRAIN_MINUTES   training minutes (default 6; the run also spends ~1 min starting and evaluating)
#   MDLM_TRAIN_DEVICE    cuda (default) or cpu (a dry run of the script on any machine)
#   MDLM_TRAIN_ARGS      further train.py flags (they override the recipe's)
# Exit 77 when the device is cuda and PyTorch sees no GPU.
set -euo pipefail
cd "$(dirname "$0")/.."
minutes=${MDLM_TRAIN_MINUTES:-6}
device=${MDLM_TRAIN_DEVICE:-cuda}
out=${OUT:-build/gpu-train}
# The first Python that has PyTorch: Debian's here, whichever the GPU machine has there.
python=""
for p in /usr/bin/python3 python3; do
  if command -v "$p" >/dev/null && "$p" -c 'import torch' 2>/dev/null; then python=$(command -v "$p"); break; fi
done
if [ -z "$python" ]; then
  echo "gpu-train.sh: skipped, no python3 with PyTorch"
  exit 77
fi
if [ "$device" = cuda ] && ! "$python" -c 'import torch, sys; sys.exit(0 if torch.cuda.is_available() else 1)'; then
  echo "gpu-train.sh: skipped, PyTorch sees no CUDA device"
  exit 77
fi
mkdir -p "$out"
# The time budget binds (train.py's progress is the larger of steps / max-steps and time / budget);
# `timeout` is a backstop well inside the device tool's limit.
limit=$(awk -v m="$minutes" 'BEGIN { printf "%d", (m + 3) * 60 }')
# shellcheck disable=SC2086
timeout "$limit" "$python" reference/train/train.py \
  --out "$out/arith-model" --base-out "$out/arith-model-base" --base-at 0.3 \
  --drill-fraction 0.5 --drill-one-step \
  --d-model 256 --n-layers 6 --n-heads 4 --mlp-hidden 768 --batch-size 256 --lr 2e-3 --warmup 300 \
  --max-steps 1000000 --time-budget-min "$minutes" --device "$device" --threads "$(nproc)" \
  --eval-n 200 --log-every 100 ${MDLM_TRAIN_ARGS:-} 2>&1 | tee "$out/train.log"
echo "gpu-train.sh: wrote $out/arith-model and $out/arith-model-base"
