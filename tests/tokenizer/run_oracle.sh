#!/usr/bin/env bash
# SPDX-License-Identifier: MIT
# The tokenizer_oracle test: installs the JavaScript oracles (scripts/npm-oracle.sh), writes their
# expected outputs (oracle/oracle.mjs) and runs test_tokenizer "[oracle]" against them.
# Usage: run_oracle.sh TEST_BINARY NPM_DIR OUT_DIR SHARED_MODELS_DIR. Exit 77 (skipped) without node.
set -euo pipefail
here="$(cd "$(dirname "$0")" && pwd)"
test_bin=$1 npm_dir=$2 out=$3 shared=$4
"$here/../../scripts/npm-oracle.sh" "$npm_dir"
if [ -d "$shared/dream-v0-instruct-7b" ]; then
  echo "run_oracle.sh: Dream's tokenizer from $shared/dream-v0-instruct-7b"
else
  echo "run_oracle.sh: $shared not found; Dream's slow layout is written from the Qwen3 vocabulary instead"
fi
node "$here/oracle/oracle.mjs" --npm "$npm_dir" --data "$here/data" --corpus "$here/corpus.json" --out "$out" --shared "$shared"
MDLM_TOKENIZER_ORACLE="$out/manifest.json" "$test_bin" "[oracle]" --warn NoAssertions
