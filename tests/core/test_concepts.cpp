// SPDX-License-Identifier: MIT
// Concept tests for include/mdlm/concepts.hpp: a complete model satisfies every concept; a type that
// misses one requirement fails exactly the corresponding sub-concept (and the composite concepts).
#include <catch2/catch.hpp>

#include <cstddef>
#include <span>

#include "mdlm/concepts.hpp"

namespace {

using mdlm::token_id;

struct complete_model {
  std::size_t vocab_size() const { return 4; }
  token_id mask_token() const { return 3; }
  void logits(std::span<const token_id>, std::span<float>) const {}
  void logits(std::span<const token_id>, std::span<double>) const {}
  void batch_logits(std::span<const token_id>, std::size_t, std::span<float>) const {}
};

struct no_vocabulary {
  token_id mask_token() const { return 3; }
  void logits(std::span<const token_id>, std::span<float>) const {}
};

struct no_mask_token {
  std::size_t vocab_size() const { return 4; }
  void logits(std::span<const token_id>, std::span<float>) const {}
};

struct no_logits {
  std::size_t vocab_size() const { return 4; }
  token_id mask_token() const { return 3; }
};

struct wrong_logits_signature {  // takes int tokens: not callable with std::span<const token_id>
  std::size_t vocab_size() const { return 4; }
  token_id mask_token() const { return 3; }
  void logits(std::span<const int>, std::span<int>) const {}
};

struct vocabulary_not_a_size {
  const char* vocab_size() const { return "4"; }
  token_id mask_token() const { return 3; }
  void logits(std::span<const token_id>, std::span<float>) const {}
};

struct float_only {  // a ConditionalModel without batch or double logits
  std::size_t vocab_size() const { return 4; }
  token_id mask_token() const { return 3; }
  void logits(std::span<const token_id>, std::span<float>) const {}
};

// A model whose logits is non-const (stateful engines) still qualifies: the concept takes M&.
struct stateful_model {
  std::size_t vocab_size() const { return 4; }
  token_id mask_token() const { return 3; }
  void logits(std::span<const token_id>, std::span<float>) { ++calls; }
  int calls = 0;
};

static_assert(mdlm::has_vocabulary<complete_model> && mdlm::has_mask_token<complete_model> &&
              mdlm::produces_logits<complete_model> && mdlm::produces_batch_logits<complete_model> &&
              mdlm::produces_exact_logits<complete_model>);
static_assert(mdlm::ConditionalModel<complete_model> && mdlm::BatchedConditionalModel<complete_model> &&
              mdlm::ExactConditionalModel<complete_model>);
static_assert(mdlm::check_conditional_model<complete_model>());

static_assert(!mdlm::has_vocabulary<no_vocabulary> && mdlm::has_mask_token<no_vocabulary> &&
              mdlm::produces_logits<no_vocabulary> && !mdlm::ConditionalModel<no_vocabulary>);
static_assert(!mdlm::has_vocabulary<vocabulary_not_a_size> && !mdlm::ConditionalModel<vocabulary_not_a_size>);
static_assert(mdlm::has_vocabulary<no_mask_token> && !mdlm::has_mask_token<no_mask_token> &&
              mdlm::produces_logits<no_mask_token> && !mdlm::ConditionalModel<no_mask_token>);
static_assert(mdlm::has_vocabulary<no_logits> && mdlm::has_mask_token<no_logits> &&
              !mdlm::produces_logits<no_logits> && !mdlm::ConditionalModel<no_logits>);
static_assert(!mdlm::produces_logits<wrong_logits_signature> && !mdlm::ConditionalModel<wrong_logits_signature>);
static_assert(mdlm::ConditionalModel<float_only> && !mdlm::produces_batch_logits<float_only> &&
              !mdlm::BatchedConditionalModel<float_only> && !mdlm::produces_exact_logits<float_only> &&
              !mdlm::ExactConditionalModel<float_only>);
static_assert(mdlm::ConditionalModel<stateful_model>);
// Composite refinements require the base concept: batch logits alone are not enough.
struct batch_only {
  void batch_logits(std::span<const token_id>, std::size_t, std::span<float>) const {}
};
static_assert(mdlm::produces_batch_logits<batch_only> && !mdlm::BatchedConditionalModel<batch_only>);

}  // namespace

TEST_CASE("concepts: the static_asserts of this file compiled", "[core][concepts]") {
  // The checks are compile-time; this case runs one model through the concept-constrained call shape.
  complete_model m;
  float out[4] = {};
  const token_id tokens[1] = {3};
  m.logits(tokens, out);
  CHECK(mdlm::ConditionalModel<complete_model>);
  CHECK_FALSE(mdlm::ConditionalModel<no_logits>);
}
