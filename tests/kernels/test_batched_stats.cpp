// SPDX-License-Identifier: MIT
// Batched statistics and fused token choice (kernels/batched_stats.hpp): every instruction-set
// variant this CPU runs against the scalar double-precision reference (compute_logit_stats and
// choose_token), invalid rows, tie rules, thread-count invariance and input validation.
#include <catch2/catch.hpp>

#include <algorithm>
#include <bit>
#include <cmath>
#include <cstdint>
#include <limits>
#include <random>
#include <span>
#include <string>
#include <vector>

#include "mdlm/kernels/batched_stats.hpp"
#include "mdlm/token_choice.hpp"

namespace {

constexpr float ninf = -std::numeric_limits<float>::infinity();
constexpr double rel_tol = 1e-5;

//! Every variant that can run here, `scalar` first.
std::vector<mdlm::simd_isa> runnable_isas() {
  std::vector<mdlm::simd_isa> out;
  for (auto isa : {mdlm::simd_isa::scalar, mdlm::simd_isa::baseline, mdlm::simd_isa::avx2, mdlm::simd_isa::avx512})
    if (mdlm::isa_supported(isa)) out.push_back(isa);
  return out;
}

//! |a - b| <= tol * scale, with equal infinities accepted.
bool close(double a, double b, double scale, double tol = rel_tol) {
  if (a == b) return true;
  return std::fabs(a - b) <= tol * scale;
}
bool close_rel(double a, double b) { return close(a, b, std::max(std::fabs(a), std::fabs(b))); }

template <class T>
T convert(float x) {
  if constexpr (std::is_same_v<T, float>) return x;
  else return T::from_float(x);
}

//! A random logit row of kind `kind` (see the generator's cases), V entries.
std::vector<float> make_row(std::mt19937_64& gen, int kind, std::size_t v) {
  std::normal_distribution<float> normal(0.0f, 3.0f);
  std::uniform_real_distribution<double> unif(0.0, 1.0);
  std::vector<float> row(v);
  for (auto& x : row) x = normal(gen);
  const auto pick = [&] { return static_cast<std::size_t>(unif(gen) * static_cast<double>(v)) % v; };
  switch (kind) {
    case 0: break;  // plain normal logits
    case 1:         // ~30 % banned tokens
      for (auto& x : row)
        if (unif(gen) < 0.3) x = ninf;
      break;
    case 2:  // +-1e4 entries: a few dominant ones, many negligible ones
      for (auto& x : row)
        if (unif(gen) < 0.1) x = unif(gen) < 0.5 ? -1e4f : 1e4f;
      break;
    case 3:  // integer logits: many ties at the maximum and second maximum
      for (auto& x : row) x = std::round(x / 3.0f);
      break;
    case 4:  // nearly one-hot: one entry 60 above the rest (entropy ~1e-22)
      row[pick()] = 60.0f;
      break;
    case 5:  // constant row: every entry ties
      std::fill(row.begin(), row.end(), 1.25f);
      break;
    case 6: {  // all banned except one or two entries
      std::fill(row.begin(), row.end(), ninf);
      row[pick()] = 0.5f;
      if (unif(gen) < 0.5) row[pick()] = -2.0f;
      break;
    }
    case 7:  // large magnitudes everywhere
      for (auto& x : row) x = x * 2000.0f;
      break;
    default: break;
  }
  return row;
}

//! Two-pass statistics of a double row: maximum first, then the sums relative to it with the
//! entries equal to the maximum counted apart, so that log s = log c + log1p(rest / c) keeps full
//! relative precision for nearly one-hot rows (where compute_logit_stats' s = 1 + rest rounds
//! `rest` away). Top-1 / top-2 and validity come from compute_logit_stats.
mdlm::logit_stats two_pass(const std::vector<double>& w) {
  mdlm::logit_stats s = mdlm::compute_logit_stats(std::span<const double>(w));
  if (!s.valid) return s;
  const double m = w[static_cast<std::size_t>(s.top1)];
  double c = 0.0, rest = 0.0, t = 0.0;
  for (double z : w) {
    if (z == m) c += 1.0;
    else if (z != -std::numeric_limits<double>::infinity()) {
      rest += std::exp(z - m);
      t += std::exp(z - m) * (z - m);
    }
  }
  const double log_s = std::log(c) + std::log1p(rest / c);
  s.log_normalizer = m + log_s;
  s.entropy = std::max(0.0, log_s - t / (c + rest));
  s.top1_logprob = -log_s;
  if (s.top2 != mdlm::no_token) {
    const double z2 = w[static_cast<std::size_t>(s.top2)];
    s.top2_logprob = z2 == -std::numeric_limits<double>::infinity() ? z2 : (z2 - m) - log_s;
  }
  return s;
}

//! The reference: two-pass statistics of z and of z / T in double, the token of choose_token.
struct reference {
  mdlm::logit_stats stats;
  mdlm::position_info info;
  double tempered_p1 = 0.0;  //!< largest probability of softmax(z / T)
};

reference scalar_reference(const std::vector<double>& row, double temperature, mdlm::counter_rng rng,
                           std::uint32_t sequence, std::uint32_t step, std::size_t position) {
  reference r;
  r.stats = two_pass(row);
  if (!r.stats.valid) return r;
  mdlm::detail::choice_scratch scratch;
  scratch.reserve(row.size());
  r.info = mdlm::choose_token(std::span<const double>(row), mdlm::compute_logit_stats(std::span<const double>(row)),
                              mdlm::token_choice{.temperature = temperature}, rng, sequence, step, position, scratch);
  const auto tok = static_cast<std::size_t>(r.info.token);
  r.info.prob = std::exp((row[tok] - r.stats.log_normalizer));
  std::vector<double> w(row);
  const double inv_t = temperature > 0.0 ? 1.0 / temperature : 1.0;
  for (auto& x : w) x = x == -std::numeric_limits<double>::infinity() ? x : x * inv_t;
  const mdlm::logit_stats ts = two_pass(w);
  r.info.tempered_prob = std::exp(w[tok] - ts.log_normalizer);
  r.info.tempered_entropy = ts.entropy;
  r.info.tempered_margin = ts.margin();
  r.tempered_p1 = std::exp(ts.top1_logprob);
  return r;
}

void check_against_reference(const mdlm::row_choice& got, const reference& ref) {
  const auto& s = got.stats;
  const auto& e = ref.stats;
  REQUIRE(s.valid == e.valid);
  if (!e.valid) {
    CHECK(got.token == mdlm::no_token);
    return;
  }
  CHECK(s.top1 == e.top1);
  CHECK(s.top2 == e.top2);
  CHECK(close_rel(s.log_normalizer, e.log_normalizer));
  CHECK(close_rel(s.entropy, e.entropy));
  CHECK(close_rel(s.top1_logprob, e.top1_logprob));
  CHECK(close_rel(s.top2_logprob, e.top2_logprob));
  CHECK(got.token == ref.info.token);
  CHECK(close_rel(got.prob, ref.info.prob));
  CHECK(close_rel(got.tempered_prob, ref.info.tempered_prob));
  CHECK(close_rel(got.tempered_entropy, ref.info.tempered_entropy));
  // A margin p1 - p2 cancels; its error is relative to p1.
  const double p1 = std::exp(e.top1_logprob);
  CHECK(close(s.margin(), e.margin(), p1));
  CHECK(close(got.tempered_margin, ref.info.tempered_margin, ref.tempered_p1));
}

template <class T>
void run_random_rows(mdlm::simd_isa isa, double temperature) {
  std::mt19937_64 gen(20261122);
  const std::vector<std::size_t> vocabs{1, 2, 3, 7, 16, 17, 33, 100, 511, 512, 513, 1030, 4099};
  const mdlm::counter_rng rng{99};
  for (std::size_t v : vocabs) {
    for (int kind = 0; kind < 8; ++kind) {
      // Three rows per (V, kind), processed as rows {2, 0} of a 3-row matrix so that row indices,
      // positions and out slots differ.
      std::vector<T> matrix;
      std::vector<std::vector<double>> exact;
      for (int r = 0; r < 3; ++r) {
        const auto row = make_row(gen, kind, v);
        std::vector<double> ex;
        for (float x : row) {
          const T c = convert<T>(x);
          matrix.push_back(c);
          ex.push_back(static_cast<double>(static_cast<float>(c)));
        }
        exact.push_back(std::move(ex));
      }
      const std::vector<std::size_t> rows{2, 0};
      std::vector<mdlm::row_choice> out(rows.size());
      const mdlm::row_choice_options opt{.temperature = temperature, .rng = rng, .sequence = 5, .step = 3, .isa = isa};
      mdlm::choose_rows(std::span<const T>(matrix), v, std::span<const std::size_t>(rows),
                        std::span<mdlm::row_choice>(out), opt);
      std::vector<mdlm::logit_stats> stats(rows.size());
      mdlm::batched_logit_stats(std::span<const T>(matrix), v, std::span<const std::size_t>(rows),
                                std::span<mdlm::logit_stats>(stats), nullptr, isa);
      for (std::size_t i = 0; i < rows.size(); ++i) {
        INFO("isa " << mdlm::to_string(isa) << " V " << v << " kind " << kind << " T " << temperature << " row "
                    << rows[i]);
        check_against_reference(out[i], scalar_reference(exact[rows[i]], temperature, rng, 5, 3, rows[i]));
        // The statistics-only entry point gives the same statistics bit for bit.
        CHECK(std::bit_cast<std::uint64_t>(stats[i].entropy) == std::bit_cast<std::uint64_t>(out[i].stats.entropy));
        CHECK(stats[i].top1 == out[i].stats.top1);
      }
    }
  }
}

bool same_bits(const mdlm::row_choice& a, const mdlm::row_choice& b) {
  const auto eq = [](double x, double y) { return std::bit_cast<std::uint64_t>(x) == std::bit_cast<std::uint64_t>(y); };
  return a.token == b.token && eq(a.prob, b.prob) && eq(a.tempered_prob, b.tempered_prob) &&
         eq(a.tempered_entropy, b.tempered_entropy) && eq(a.tempered_margin, b.tempered_margin) &&
         a.stats.valid == b.stats.valid && a.stats.top1 == b.stats.top1 && a.stats.top2 == b.stats.top2 &&
         eq(a.stats.log_normalizer, b.stats.log_normalizer) && eq(a.stats.entropy, b.stats.entropy) &&
         eq(a.stats.top1_logprob, b.stats.top1_logprob) && eq(a.stats.top2_logprob, b.stats.top2_logprob);
}

}  // namespace

TEMPLATE_TEST_CASE("every kernel variant equals the double-precision reference within 1e-5", "[kernels]", float,
                   mdlm::bf16, mdlm::fp16) {
  for (auto isa : runnable_isas()) {
    for (double t : {0.0, 1.0, 0.5, 1.7}) run_random_rows<TestType>(isa, t);
  }
}

TEST_CASE("the best variant is one that runs here", "[kernels]") {
  CHECK(mdlm::detected_isa() != mdlm::simd_isa::best);
  CHECK(mdlm::isa_supported(mdlm::detected_isa()));
  CHECK(mdlm::resolve_isa(mdlm::simd_isa::best) == mdlm::detected_isa());
  CHECK(mdlm::to_string(mdlm::simd_isa::avx512) == "avx512");
}

TEMPLATE_TEST_CASE("rows with NaN, +inf or only -inf are flagged invalid by every variant", "[kernels]", float,
                   mdlm::bf16, mdlm::fp16) {
  const float nan = std::numeric_limits<float>::quiet_NaN();
  const float pinf = std::numeric_limits<float>::infinity();
  for (std::size_t v : {std::size_t{1}, std::size_t{5}, std::size_t{40}, std::size_t{600}, std::size_t{1500}}) {
    std::vector<std::vector<float>> bad;
    for (std::size_t at : {std::size_t{0}, v / 2, v - 1}) {
      std::vector<float> row(v, 0.5f);
      row[at] = nan;
      bad.push_back(row);
      row[at] = pinf;
      bad.push_back(row);
      std::vector<float> banned(v, ninf);
      banned[at] = nan;  // NaN among -inf entries only
      bad.push_back(banned);
    }
    bad.emplace_back(v, ninf);
    std::vector<TestType> matrix;
    for (const auto& row : bad)
      for (float x : row) matrix.push_back(convert<TestType>(x));
    std::vector<std::size_t> rows(bad.size());
    for (std::size_t i = 0; i < rows.size(); ++i) rows[i] = i;
    for (auto isa : runnable_isas()) {
      for (double t : {0.0, 0.8}) {
        std::vector<mdlm::row_choice> out(rows.size());
        mdlm::choose_rows(std::span<const TestType>(matrix), v, std::span<const std::size_t>(rows),
                          std::span<mdlm::row_choice>(out), {.temperature = t, .isa = isa});
        for (std::size_t i = 0; i < rows.size(); ++i) {
          INFO("isa " << mdlm::to_string(isa) << " V " << v << " row " << i << " T " << t);
          CHECK_FALSE(out[i].stats.valid);
          CHECK(out[i].token == mdlm::no_token);
        }
      }
    }
  }
}

TEST_CASE("ties break to the lower token id in every variant", "[kernels]") {
  for (auto isa : runnable_isas()) {
    INFO("isa " << mdlm::to_string(isa));
    // Maximum at 700 and 1900 (different blocks), second maximum tied at 5 and 1200.
    std::vector<float> row(2500, -1.0f);
    row[1900] = 4.0f;
    row[700] = 4.0f;
    row[1200] = 3.0f;
    row[5] = 3.0f;
    const auto c = mdlm::choose_row(std::span<const float>(row), {.isa = isa});
    CHECK(c.stats.top1 == 700);
    CHECK(c.stats.top2 == 1900);
    CHECK(c.token == 700);
    // -inf entries can be top2 when only one entry is finite; and the first of them wins.
    std::vector<float> one(40, ninf);
    one[17] = 2.0f;
    const auto d = mdlm::choose_row(std::span<const float>(one), {.isa = isa});
    CHECK(d.stats.top1 == 17);
    CHECK(d.stats.top2 == 0);
    CHECK(d.stats.top2_logprob == -std::numeric_limits<double>::infinity());
    CHECK(d.stats.log_normalizer == 2.0);
    CHECK(d.stats.entropy == 0.0);
    const auto single = mdlm::choose_row(std::span<const float>(one.data(), 1).subspan(0, 1), {.isa = isa});
    CHECK_FALSE(single.stats.valid);
  }
}

TEST_CASE("results are bit-identical for every thread count and equal single-row calls", "[kernels][threads]") {
  std::mt19937_64 gen(7);
  const std::size_t v = 3001, n_rows = 37;
  std::vector<float> matrix;
  for (std::size_t r = 0; r < n_rows; ++r) {
    const auto row = make_row(gen, static_cast<int>(r % 8), v);
    matrix.insert(matrix.end(), row.begin(), row.end());
  }
  std::vector<std::size_t> rows;
  for (std::size_t r = n_rows; r-- > 0;)
    if (r % 3 != 1) rows.push_back(r);
  for (double t : {0.0, 0.9}) {
    const mdlm::row_choice_options opt{.temperature = t, .rng = mdlm::counter_rng{4}, .sequence = 2, .step = 11};
    std::vector<mdlm::row_choice> base(rows.size());
    mdlm::choose_rows(std::span<const float>(matrix), v, std::span<const std::size_t>(rows),
                      std::span<mdlm::row_choice>(base), opt);
    for (std::size_t threads : {1, 2, 3, 4}) {
      mdlm::thread_pool pool(threads);
      for (int repeat = 0; repeat < 3; ++repeat) {
        std::vector<mdlm::row_choice> out(rows.size());
        mdlm::choose_rows(std::span<const float>(matrix), v, std::span<const std::size_t>(rows),
                          std::span<mdlm::row_choice>(out), opt, &pool);
        for (std::size_t i = 0; i < rows.size(); ++i) {
          INFO("threads " << threads << " row " << rows[i] << " T " << t);
          CHECK(same_bits(out[i], base[i]));
        }
      }
    }
    for (std::size_t i = 0; i < rows.size(); ++i) {
      const auto one = mdlm::choose_row(std::span<const float>(matrix).subspan(rows[i] * v, v), opt,
                                        static_cast<std::uint32_t>(rows[i]));
      CHECK(same_bits(one, base[i]));
    }
  }
}

TEST_CASE("the sampled token is the same on every variant and follows softmax(z / T)", "[kernels]") {
  // Four tokens with probabilities (0.1, 0.2, 0.3, 0.4) at T = 1 after tempering z = 2 log p.
  const std::vector<float> row{2.0f * std::log(0.1f), 2.0f * std::log(0.2f), 2.0f * std::log(0.3f),
                               2.0f * std::log(0.4f)};
  const std::size_t draws = 20000;
  std::vector<double> counts(4, 0.0);
  for (std::uint32_t step = 0; step < draws; ++step) {
    mdlm::token_id first = mdlm::no_token;
    for (auto isa : runnable_isas()) {
      const auto c = mdlm::choose_row(std::span<const float>(row),
                                      {.temperature = 2.0, .rng = mdlm::counter_rng{1}, .step = step, .isa = isa});
      if (first == mdlm::no_token) first = c.token;
      REQUIRE(c.token == first);
    }
    counts[static_cast<std::size_t>(first)] += 1.0;
  }
  // Chi-square goodness of fit, 3 degrees of freedom: P(X > 16.27) = 0.001.
  double chi2 = 0.0;
  const double p[4] = {0.1, 0.2, 0.3, 0.4};
  for (int k = 0; k < 4; ++k) {
    const double e = p[k] * static_cast<double>(draws);
    chi2 += (counts[static_cast<std::size_t>(k)] - e) * (counts[static_cast<std::size_t>(k)] - e) / e;
  }
  CHECK(chi2 < 16.27);
}

TEST_CASE("choose_rows validates its arguments and names the bad value", "[kernels][errors]") {
  using Catch::Matchers::Contains;
  const std::vector<float> m(12, 0.0f);
  std::vector<mdlm::row_choice> out(1);
  const std::vector<std::size_t> rows{5};
  const auto call = [&](std::size_t vocab, std::vector<std::size_t> r, std::size_t n_out, mdlm::row_choice_options o) {
    std::vector<mdlm::row_choice> res(n_out);
    mdlm::choose_rows(std::span<const float>(m), vocab, std::span<const std::size_t>(r),
                      std::span<mdlm::row_choice>(res), o);
  };
  CHECK_THROWS_WITH(call(0, {0}, 1, {}), Contains("vocab = 0"));
  CHECK_THROWS_WITH(call(5, {0}, 1, {}), Contains("logits.size() = 12"));
  CHECK_THROWS_WITH(call(4, {3}, 1, {}), Contains("rows[0] = 3"));
  CHECK_THROWS_WITH(call(4, {0, 1}, 1, {}), Contains("out.size() = 1"));
  CHECK_THROWS_WITH(call(4, {0}, 1, {.temperature = -2.0}), Contains("temperature = -2"));
  CHECK_THROWS_AS(call(4, {0}, 1, {.temperature = std::numeric_limits<double>::infinity()}), std::invalid_argument);
  CHECK_THROWS_WITH(mdlm::thread_pool(0), Contains("threads = 0"));
  CHECK_THROWS_WITH(mdlm::choose_row(std::span<const float>()), Contains("row is empty"));
}
