// SPDX-License-Identifier: MIT
// Encode throughput (MB/s of UTF-8 text, one thread) of mdlm::text::tokenizer on a corpus file,
// encoded paragraph by paragraph (blank-line separated), the way bench/tokenizer/bench.mjs runs
// @huggingface/tokenizers on the same file. Environment: MDLM_BENCH_TOKENIZER (a directory with
// tokenizer.json or vocab.json + merges.txt), MDLM_BENCH_CORPUS (a UTF-8 text file).
// bench/tokenizer/run.sh runs both and prints the ratio.
#include <benchmark/benchmark.h>

#include <cstdlib>
#include <fstream>
#include <iterator>
#include <stdexcept>
#include <string>
#include <vector>

#include "mdlm/tokenizer/tokenizer.hpp"

namespace {

std::string env(const char* name) {
  const char* v = std::getenv(name);
  if (v == nullptr || *v == '\0') throw std::runtime_error(std::string(name) + " is not set");
  return v;
}

struct corpus {
  std::vector<std::string> paragraphs;
  std::size_t bytes = 0;
};

const corpus& the_corpus() {
  static const corpus c = [] {
    std::ifstream f(env("MDLM_BENCH_CORPUS"), std::ios::binary);
    const std::string text{std::istreambuf_iterator<char>(f), std::istreambuf_iterator<char>()};
    corpus out;
    std::size_t i = 0;
    while (i < text.size()) {
      std::size_t j = text.find("\n\n", i);
      j = j == std::string::npos ? text.size() : j + 2;
      out.paragraphs.push_back(text.substr(i, j - i));
      out.bytes += j - i;
      i = j;
    }
    return out;
  }();
  return c;
}

const mdlm::text::tokenizer& the_tokenizer() {
  static const auto t = mdlm::text::tokenizer::load(env("MDLM_BENCH_TOKENIZER"));
  return t;
}

void bm_encode(benchmark::State& state) {
  const auto& c = the_corpus();
  const auto& t = the_tokenizer();
  std::size_t tokens = 0;
  for (const auto& p : c.paragraphs) tokens += t.encode(p).size();  // warm the word cache once
  for (auto _ : state) {
    for (const auto& p : c.paragraphs) benchmark::DoNotOptimize(t.encode(p));
  }
  state.SetBytesProcessed(static_cast<std::int64_t>(state.iterations() * c.bytes));
  state.counters["tokens"] = static_cast<double>(tokens);
  state.counters["corpus_bytes"] = static_cast<double>(c.bytes);
}
// Rates per CPU second of the one encoding thread (robust to a loaded machine; bench.mjs measures
// node's CPU time the same way).
BENCHMARK(bm_encode)->Name("tokenizer_encode/one_thread")->Unit(benchmark::kMillisecond);

void bm_decode(benchmark::State& state) {
  const auto& c = the_corpus();
  const auto& t = the_tokenizer();
  std::vector<std::vector<mdlm::token_id>> ids;
  for (const auto& p : c.paragraphs) ids.push_back(t.encode(p));
  for (auto _ : state) {
    for (const auto& x : ids) benchmark::DoNotOptimize(t.decode(x));
  }
  state.SetBytesProcessed(static_cast<std::int64_t>(state.iterations() * c.bytes));
}
BENCHMARK(bm_decode)->Name("tokenizer_decode/one_thread")->Unit(benchmark::kMillisecond);

}  // namespace

BENCHMARK_MAIN();
