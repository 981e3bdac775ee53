// SPDX-License-Identifier: MIT
// Allocation-free decode steps: a counting global operator new records every heap allocation of the
// process; each decode step after the first (warm-up) must perform none, for every policy family,
// every token-choice path (greedy, Gumbel-max, top-k / top-p) and with a thread pool.
#include <catch2/catch.hpp>

#include <atomic>
#include <cstddef>
#include <cstdlib>
#include <new>
#include <vector>

#include "kernel_models.hpp"
#include "mdlm/decode.hpp"
#include "mdlm/policies/eb_sampler.hpp"
#include "mdlm/policies/fast_dllm.hpp"
#include "mdlm/policies/fixed_count.hpp"
#include "mdlm/policies/klass.hpp"
#include "mdlm/policies/med.hpp"

namespace {
std::atomic<std::size_t> g_allocations{0};

void* counted_alloc(std::size_t n, std::size_t align = 0) {
  g_allocations.fetch_add(1, std::memory_order_relaxed);
  if (n == 0) n = 1;
  void* p = align > alignof(std::max_align_t) ? std::aligned_alloc(align, (n + align - 1) / align * align)
                                              : std::malloc(n);
  if (p == nullptr) throw std::bad_alloc();
  return p;
}
}  // namespace

void* operator new(std::size_t n) { return counted_alloc(n); }
void* operator new[](std::size_t n) { return counted_alloc(n); }
void* operator new(std::size_t n, std::align_val_t a) { return counted_alloc(n, static_cast<std::size_t>(a)); }
void* operator new[](std::size_t n, std::align_val_t a) { return counted_alloc(n, static_cast<std::size_t>(a)); }
void* operator new(std::size_t n, const std::nothrow_t&) noexcept {
  try {
    return counted_alloc(n);
  } catch (...) {
    return nullptr;
  }
}
void* operator new[](std::size_t n, const std::nothrow_t&) noexcept {
  try {
    return counted_alloc(n);
  } catch (...) {
    return nullptr;
  }
}
void operator delete(void* p) noexcept { std::free(p); }
void operator delete[](void* p) noexcept { std::free(p); }
void operator delete(void* p, std::size_t) noexcept { std::free(p); }
void operator delete[](void* p, std::size_t) noexcept { std::free(p); }
void operator delete(void* p, std::align_val_t) noexcept { std::free(p); }
void operator delete[](void* p, std::align_val_t) noexcept { std::free(p); }
void operator delete(void* p, std::size_t, std::align_val_t) noexcept { std::free(p); }
void operator delete[](void* p, std::size_t, std::align_val_t) noexcept { std::free(p); }

namespace {

//! Runs a decode step by step (as mdlm::decode does) and returns the allocations of each step.
template <class Policy>
std::vector<std::size_t> allocations_per_step(const mdlm::decode_options<Policy>& opt, std::size_t vocab) {
  mdlm::test::table_model model(36, vocab, 11);
  const auto c = mdlm::make_canvas(std::vector<mdlm::token_id>{5, 6, 7, 8}, 32, model.mask, 2);
  mdlm::detail::decode_session<Policy> session(c, opt, mdlm::counter_rng{9}, vocab, model.mask, 0);
  std::vector<float> logits(session.length() * vocab);
  std::vector<std::size_t> per_step;
  per_step.reserve(1000);
  while (!session.done() && per_step.size() < per_step.capacity()) {
    const std::size_t before = g_allocations.load();
    // As mdlm::decode's logits interface: prepare the rows, the model call, their statistics, the step.
    session.prepare();
    model.logits(session.tokens(), std::span<float>(logits));
    const auto out = session.choice_buffer();
    mdlm::detail::choices_from_logits(session, std::span<const float>(logits), vocab, out, opt.pool);
    session.step(std::span<const mdlm::row_choice>(out), std::span<const float>(logits));
    per_step.push_back(g_allocations.load() - before);
  }
  return per_step;
}

template <class Policy>
void check_allocation_free(mdlm::decode_options<Policy> opt, const char* name) {
  mdlm::thread_pool pool(2);
  for (std::size_t vocab : {std::size_t{64}, std::size_t{2000}}) {
    for (const auto& ch : {mdlm::token_choice{}, mdlm::token_choice{.temperature = 0.8},
                           mdlm::token_choice{.temperature = 1.0, .top_k = 7},
                           mdlm::token_choice{.temperature = 1.0, .top_p = 0.9}}) {
      for (mdlm::thread_pool* p : {static_cast<mdlm::thread_pool*>(nullptr), &pool}) {
        opt.choice = ch;
        opt.pool = p;
        const auto counts = allocations_per_step(opt, vocab);
        INFO(name << " V " << vocab << " T " << ch.temperature << " top_k " << ch.top_k.value_or(0) << " pool "
                  << (p != nullptr));
        REQUIRE(counts.size() >= 2);
        std::size_t after_warmup = 0;
        for (std::size_t s = 1; s < counts.size(); ++s) after_warmup += counts[s];
        CHECK(after_warmup == 0);
      }
    }
  }
}

}  // namespace

TEST_CASE("the counting allocator sees allocations", "[kernels][alloc]") {
  const std::size_t before = g_allocations.load();
  auto* v = new std::vector<int>(100);
  delete v;
  CHECK(g_allocations.load() - before == 2);
}

TEST_CASE("decode steps allocate nothing after the first", "[kernels][alloc][decode]") {
  check_allocation_free(mdlm::decode_options<mdlm::fixed_count>{.block_length = 8, .steps = 16}, "llada");
  check_allocation_free(mdlm::decode_options<mdlm::fixed_count>{
                            .policy = {.score = mdlm::score_kind::tempered_confidence,
                                       .schedule = mdlm::count_schedule::dream_timesteps, .alg_temp = 0.5},
                            .steps = 16},
                        "dream maskgit_plus alg_temp");
  check_allocation_free(mdlm::decode_options<mdlm::dream_origin>{.steps = 16}, "dream origin");
  check_allocation_free(mdlm::decode_options<mdlm::med>{}, "med");
  check_allocation_free(mdlm::decode_options<mdlm::eb_sampler>{}, "eb");
  check_allocation_free(mdlm::decode_options<mdlm::fast_dllm_threshold>{}, "fast-dllm threshold");
  check_allocation_free(mdlm::decode_options<mdlm::fast_dllm_factor>{}, "fast-dllm factor");
  check_allocation_free(mdlm::decode_options<mdlm::klass>{.block_length = 8}, "klass");
}
