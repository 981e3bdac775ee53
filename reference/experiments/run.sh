#!/usr/bin/env bash
# SPDX-License-Identifier: MIT
# Regenerates every experiment of docs/results.md on the shipped arithmetic model (arXiv 2510.19990
# tables 1, 2, 5, 6, 7, 8 and figures 3-6 in miniature), then the report and its plots:
#
#   reference/experiments/run.sh [--n N] [--n-target M] [--smoke] [--tool build/tools/mdlm] [--out DIR] [--skip-posttrain]
#
#   --n N            test problems per grid setting (default 200)
#   --n-target M     test problems for the settings the targets are read from (default 1000, the
#                    targets are stated on >= 1000): left-to-right, entropy k = 1 and k = 2, and
#                    MED 0.2 + early exit at every gamma; M >= N
#   --smoke          a quick pass: N = M = 16, short grids, 10 post-training steps (for CI / checking the script)
#   --tool PATH      the mdlm binary (default build/tools/mdlm)
#   --out DIR        result directory (default reference/experiments/results); the report goes to
#                    docs/results.md and docs/img/ unless --smoke (then into DIR)
#   --skip-posttrain leave out the post-training experiment (it needs PyTorch and the most time)
#
# Every setting writes DIR/<name>.json (the `mdlm eval` summary line) and DIR/<name>.records.jsonl.
# Run from the repository root. Deterministic: the same binary and model give the same accuracies and
# NFEs (wall times vary). Environment: MODEL / BASE override the checkpoints, NOTE adds a paragraph to
# the report.
set -euo pipefail

N=200
NT=1000
SMOKE=0
TOOL=build/tools/mdlm
OUT=reference/experiments/results
POSTTRAIN=1
while [[ $# -gt 0 ]]; do
  case "$1" in
    --n) N="$2"; shift 2 ;;
    --n-target) NT="$2"; shift 2 ;;
    --smoke) SMOKE=1; N=16; NT=16; shift ;;
    --tool) TOOL="$2"; shift 2 ;;
    --out) OUT="$2"; shift 2 ;;
    --skip-posttrain) POSTTRAIN=0; shift ;;
    *) echo "run.sh: unknown argument $1" >&2; exit 2 ;;
  esac
done
MODEL=${MODEL:-reference/models/arith-llada-3m}
BASE=${BASE:-reference/models/arith-llada-3m-base}
PY=/usr/bin/python3
mkdir -p "$OUT"
[[ -x "$TOOL" ]] || { echo "run.sh: $TOOL is not built (cmake --build build --target mdlm_tool)" >&2; exit 2; }

# ev NAME [mdlm eval options...]: one setting on the N first test problems (evt: on the NT first).
ev() {
  local name="$1"; shift
  echo "== $name: mdlm eval -n ${EVAL_N:-$N} $*" >&2
  "$TOOL" eval --model "${EVAL_MODEL:-$MODEL}" -n "${EVAL_N:-$N}" --records "$OUT/$name.records.jsonl" "$@" > "$OUT/$name.json"
}
evt() { EVAL_N=$NT ev "$@"; }

if [[ $SMOKE == 1 ]]; then
  GAMMAS="0.1 1.0"; LAMBDAS="0.2"; EB_GAMMAS="0.1"; TAUS="0.9"; FT_STEPS=10; FT_COUNT=8
else
  GAMMAS="0.03 0.1 0.3 1.0"; LAMBDAS="0.1 0.2 0.3"; EB_GAMMAS="0.1 0.5 1.0"; TAUS="0.7 0.9 0.95"
  FT_STEPS=500; FT_COUNT=2000
fi

# Table 1: fixed k tokens per call (sigma_ENTROPY,k), reasoning template, pure any-order.
for k in 1 2; do evt "t1_entropy_k$k" --policy entropy --k "$k"; done
ev t1_entropy_k4 --policy entropy --k 4
# Tables 7 / 8: left-to-right vs block any-order (8, 32) vs pure any-order (t1_entropy_k1).
evt t7_left_to_right --policy left-to-right
# Reasoning helps: the template's reasoning block given as EOS, only the answer block decoded.
evt t7_answer_only --policy left-to-right --answer-only
for b in 8 32; do ev "t7_entropy_block$b" --policy entropy --block-length "$b"; done
# Figure 4 / table 6: MED vs EB-Sampler vs Fast-dLLM.
for l in $LAMBDAS; do ev "f4_med_$l" --policy med --lambda "$l"; done
for g in $EB_GAMMAS; do ev "f4_eb_$g" --policy eb --gamma "$g"; done
for t in $TAUS; do ev "f4_fast_dllm_$t" --policy fast-dllm-threshold --tau "$t"; done
# Table 2: template vs none; early exit on H_UB with one-token entropy decoding and with MED 0.2;
# Prophet's exit for comparison.
ev t2_no_template --policy entropy --no-template
for g in $GAMMAS; do
  ev "t2_exit_entropy_$g" --policy entropy --early-exit "$g"
  evt "t2_exit_med0.2_$g" --policy med --lambda 0.2 --early-exit "$g"
done
ev t2_prophet_entropy --policy entropy --prophet
ev t2_prophet_med0.2 --policy med --lambda 0.2 --prophet

# Figures 5 / 6: posterior traces (given the gold answer) for the problems one-token decoding gets
# wrong, graded exactly; answer-score AUC separating correct from incorrect traces.
echo "== posterior traces of the wrong problems" >&2
"$TOOL" posterior --model "$MODEL" -n "$NT" --only-wrong "$OUT/t1_entropy_k1.records.jsonl" --out "$OUT/posterior_wrong.jsonl"
if [[ -s "$OUT/posterior_wrong.jsonl" ]]; then
  "$TOOL" score --model "$MODEL" --traces "$OUT/posterior_wrong.jsonl" --label all_steps_correct --limit "$N" \
    --out "$OUT/score_posterior.curves.jsonl" > "$OUT/score_posterior.json"
fi
# Figure 3: the gold answer's score along the model's own traces vs final correctness.
"$TOOL" score --model "$MODEL" --traces "$OUT/t1_entropy_k1.records.jsonl" --label answer_correct --limit "$N" \
  --out "$OUT/score_own.curves.jsonl" > "$OUT/score_own.json"

# Table 5: post-training the weaker base on its own posterior traces vs on the gold traces of the
# same FT_COUNT held-out stream problems, each evaluated on the NT target problems (report.py gives the
# share of the base's traces with every step correct and the paired differences with their SE).
if [[ $POSTTRAIN == 1 ]]; then
  FT="$OUT/posttrain"
  mkdir -p "$FT"
  $PY reference/train/finetune.py --make-problems "$FT/problems.jsonl" --count "$FT_COUNT"
  # Any-order (entropy) argmax decoding of the reasoning given the answer, LLaDA's default (temperature
  # 0): the weaker base writes more correct traces this way than left to right or at temperature 1.
  "$TOOL" posterior --model "$BASE" --problems "$FT/problems.jsonl" -n 0 --policy entropy --temperature 0 \
    --out "$FT/base_posterior.jsonl"
  $PY reference/train/finetune.py --init "$BASE" --problems "$FT/problems.jsonl" --traces "$FT/base_posterior.jsonl" \
    --out "$FT/ft_posterior" --steps "$FT_STEPS"
  $PY reference/train/finetune.py --init "$BASE" --problems "$FT/problems.jsonl" --gold \
    --ids-from "$FT/base_posterior.jsonl" --out "$FT/ft_gold" --steps "$FT_STEPS"
  EVAL_MODEL="$BASE" evt t5_base --policy entropy
  EVAL_MODEL="$FT/ft_posterior" evt t5_ft_posterior --policy entropy
  EVAL_MODEL="$FT/ft_gold" evt t5_ft_gold --policy entropy
fi

if [[ $SMOKE == 1 ]]; then
  $PY reference/experiments/report.py --results "$OUT" --doc "$OUT/results.md" --img "$OUT/img"
else
  $PY reference/experiments/report.py --results "$OUT" --doc docs/results.md --img docs/img ${NOTE:+--note "$NOTE"}
fi
