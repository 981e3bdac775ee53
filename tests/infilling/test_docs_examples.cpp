// SPDX-License-Identifier: MIT
// The examples of docs/infilling.md, compiled and run. Each example lies between `// [doc:NAME]` and
// `// [/doc:NAME]`; the last test checks that the document quotes every example verbatim.
#include <catch2/catch.hpp>

#include <algorithm>
#include <fstream>
#include <map>
#include <sstream>
#include <stdexcept>
#include <string>
#include <vector>

#include "mdlm/mdlm.hpp"
#include "mdlm/reference/hmm.hpp"

namespace {

//! A word-level toy tokenizer over a fixed vocabulary: it stands in for the model's tokenizer in the
//! examples (the reference HMM below has one symbol per word; the mask token is id size()).
class toy_tokenizer {
 public:
  toy_tokenizer() {
    const char* words[] = {"Question:", "2", "+", "3", "=", "?", "The", "answer", "is", "\\boxed{", "}", "5",
                           "<eos>", "Write", "add.", "def", "add(a,", "b):", "return", "a", "b", "Plan:"};
    for (const char* w : words) ids_.emplace(w, static_cast<mdlm::token_id>(ids_.size()));
  }
  std::vector<mdlm::token_id> operator()(const std::string& text) const {
    std::istringstream in(text);
    std::vector<mdlm::token_id> out;
    for (std::string w; in >> w;) {
      const auto it = ids_.find(w);
      if (it == ids_.end()) throw std::invalid_argument("toy_tokenizer: unknown word " + w);
      out.push_back(it->second);
    }
    return out;
  }
  [[nodiscard]] std::size_t size() const { return ids_.size(); }
  [[nodiscard]] mdlm::token_id mask_id() const { return static_cast<mdlm::token_id>(ids_.size()); }
  [[nodiscard]] mdlm::token_id eos() const { return ids_.at("<eos>"); }

 private:
  std::map<std::string, mdlm::token_id> ids_;
};

const toy_tokenizer tok;
const mdlm::token_id mask = tok.mask_id();

mdlm::reasoning_template math_template() {
  // [doc:math-template]
  // [prompt][242 reasoning masks]["The answer is \boxed{"][10 answer masks]:
  // 242 + 4 + 10 = 256 generated positions = 8 blocks of 32 (the paper's setup, section 5.1).
  const mdlm::reasoning_template math = mdlm::make_template(
      {.prompt = tok("Question: 2 + 3 = ?"),
       .reasoning_length = 242,
       .delimiter = tok("The answer is \\boxed{"),
       .answer_length = 10},
      mask);
  // [/doc:math-template]
  return math;
}

// One exact reference model for every example: a random HMM with one symbol per toy word, as long as
// the math template's canvas.
const auto model = mdlm::reference::hmm::random(8, tok.size(), math_template().canvas.size(), 7, 0.2);

}  // namespace

TEST_CASE("docs: math template", "[infilling][docs]") {
  const auto math = math_template();
  CHECK(math.canvas.size() == 6 + 256);
  CHECK(math.spans.reasoning == mdlm::token_span{6, 248});
  CHECK(math.spans.delimiter == mdlm::token_span{248, 252});
  CHECK(math.spans.answer == mdlm::token_span{252, 262});
  CHECK(math.canvas.region_length() % 32 == 0);
}

TEST_CASE("docs: code template", "[infilling][docs]") {
  // [doc:code-template]
  // A coding task: the function signature is the delimiter, the body is the answer block, and the
  // suffix closes the sequence.
  const mdlm::reasoning_template code = mdlm::make_template(
      {.prompt = tok("Write add. Plan:"),
       .reasoning_length = 48,
       .delimiter = tok("def add(a, b):"),
       .answer_length = 12,
       .suffix = tok("<eos>")},
      mask);
  // [/doc:code-template]
  CHECK(code.spans.delimiter.size() == 3);
  CHECK(code.spans.answer == mdlm::token_span{54, 66});
  CHECK(code.spans.suffix == mdlm::token_span{66, 67});
}

TEST_CASE("docs: early exit with MED", "[infilling][docs]") {
  const auto math = math_template();
  // [doc:early-exit]
  // MED (lambda 0.2) in blocks of 32, stopping once H_UB = sum of the answer entropies < 0.1 nats.
  mdlm::early_exit exit(math, /*gamma=*/0.1);
  const mdlm::decode_options<mdlm::med> opt{.policy = {.lambda = 0.2}, .block_length = 32};
  const mdlm::decode_result r = mdlm::decode(model, math.canvas, opt, mdlm::counter_rng{1}, exit);
  const mdlm::early_exit_result& e = exit.result();
  // e.exited, e.exit_step, e.h_ub (one value per model call), e.reasoning_left_masked; r.nfe
  const mdlm::decoding_analytics a = mdlm::analyze_decoding(math, r, mask, tok.eos());
  // a.leftmost_fraction, a.mean_distance_from_leftmost, a.non_eos_tokens, a.answer_step
  // [/doc:early-exit]
  CHECK(r.ok());
  CHECK(e.h_ub.size() == r.nfe);
  const auto no_exit = mdlm::decode(model, math.canvas, opt, mdlm::counter_rng{1});
  CHECK(r.nfe <= no_exit.nfe);
  if (e.exited) {
    CHECK(r.nfe == e.exit_step + 1);
    CHECK(r.nfe < no_exit.nfe);
  }
  CHECK(a.unmasks > 0);
  REQUIRE(a.answer_step.has_value());
}

TEST_CASE("docs: posterior sampling given an answer", "[infilling][docs]") {
  const auto math = math_template();
  // [doc:posterior]
  // Pre-fill the answer and decode the reasoning only. A token-independent order (random), one
  // position per step and ancestral sampling (temperature 1) sample exactly from p(r | c, a).
  const std::vector<mdlm::token_id> answer = tok("5 } <eos> <eos> <eos> <eos> <eos> <eos> <eos> <eos>");
  std::vector<mdlm::reasoning_template> batch;
  for (std::uint32_t s = 0; s < 4; ++s) {
    mdlm::reasoning_template t = math;
    t.canvas.sequence = s;  // independent random numbers per trace
    batch.push_back(mdlm::posterior_template(t, answer, mask));
  }
  const std::vector<mdlm::canvas> canvases = mdlm::batch_canvases(batch);
  const mdlm::decode_options<mdlm::fixed_count> exact{
      .policy = {.score = mdlm::score_kind::random, .schedule = mdlm::count_schedule::per_step},
      .choice = {.temperature = 1.0}};
  const std::vector<mdlm::decode_result> traces =
      mdlm::decode_batch(model, std::span<const mdlm::canvas>(canvases), exact, mdlm::counter_rng{2});
  // [/doc:posterior]
  REQUIRE(traces.size() == 4);
  for (const auto& r : traces) {
    CHECK(r.status == mdlm::decode_status::completed);
    CHECK(std::equal(answer.begin(), answer.end(), r.tokens.begin() + static_cast<std::ptrdiff_t>(math.spans.answer.begin)));
    CHECK(r.nfe == 242);
  }
}

TEST_CASE("docs: answer and trace scoring, AUC", "[infilling][docs]") {
  const auto math = math_template();
  const std::vector<mdlm::token_id> answer = tok("5 } <eos> <eos> <eos> <eos> <eos> <eos> <eos> <eos>");
  const auto r = mdlm::decode(model, math.canvas, mdlm::decode_options<mdlm::med>{.block_length = 32},
                              mdlm::counter_rng{3});
  const std::vector<mdlm::token_id> trace(r.tokens.begin() + static_cast<std::ptrdiff_t>(math.spans.reasoning.begin),
                                         r.tokens.begin() + static_cast<std::ptrdiff_t>(math.spans.reasoning.end));
  const std::vector<double> correct{-1.0, -0.5}, incorrect{-3.0, -0.5};
  // [doc:scoring]
  // phi (eq. 4): log-probability of the known answer given a partial trace (answer block masked).
  const double phi = mdlm::answer_score(model, r.tokens, math.spans, answer);
  // Appendix E: unmask a complete trace left to right; phi and H_UB after every token, and averages.
  const mdlm::trace_scores s = mdlm::score_trace(model, math, trace, answer);
  // How well a score separates traces judged correct from incorrect ones (ties count one half).
  const double separation = mdlm::auc(correct, incorrect);
  // [/doc:scoring]
  CHECK(phi == s.phi.back());
  CHECK(s.phi.size() == 243);
  CHECK(separation == 0.625);  // (1 + 0 + 1 + 1/2) / 4
}

TEST_CASE("docs/infilling.md quotes every example verbatim", "[infilling][docs]") {
  auto read = [](const std::string& path) {
    std::ifstream in(path);
    REQUIRE(in.good());
    std::stringstream ss;
    ss << in.rdbuf();
    return ss.str();
  };
  const std::string source = read(std::string(MDLM_SOURCE_DIR) + "/tests/infilling/test_docs_examples.cpp");
  const std::string doc = read(std::string(MDLM_SOURCE_DIR) + "/docs/infilling.md");
  std::size_t found = 0;
  for (const char* name : {"math-template", "code-template", "early-exit", "posterior", "scoring"}) {
    const std::string open = std::string("// [doc:") + name + "]\n", close = std::string("// [/doc:") + name + "]";
    const std::size_t b = source.find(open);
    REQUIRE(b != std::string::npos);
    const std::size_t e = source.find(close, b);
    REQUIRE(e != std::string::npos);
    // The lines between the markers, with the indentation of the opening marker removed.
    const std::size_t line_start = source.rfind('\n', b) + 1;
    const std::size_t indent = b - line_start;
    std::istringstream lines(source.substr(b + open.size(), source.rfind('\n', e) + 1 - (b + open.size())));
    std::string snippet;
    for (std::string line; std::getline(lines, line);) snippet += (line.size() >= indent ? line.substr(indent) : line) + "\n";
    INFO("example " << name << ":\n" << snippet);
    CHECK(doc.find("```cpp\n" + snippet + "```") != std::string::npos);
    ++found;
  }
  CHECK(found == 5);
}
