// SPDX-License-Identifier: MIT
// The LLaDA / Dream CPU forwards: golden logits from the independent PyTorch implementation
// (tests/golden), bitwise determinism across thread counts and batch sizes, bidirectionality,
// Dream's logit shift, and argument validation.
#include "mdlm/cpu/model.hpp"

#include <bit>
#include <catch2/catch.hpp>
#include <cmath>
#include <cstdlib>
#include <fstream>
#include <nlohmann/json.hpp>
#include <vector>

#include "mdlm/cpu/make_checkpoint.hpp"
#include "support.hpp"

using Catch::Matchers::Contains;
using namespace mdlm::cpu;
using json = nlohmann::json;

namespace {

// The committed goldens, or the directory named by MDLM_GOLDEN_DIR (ctest golden_live writes fresh
// ones there with PyTorch and runs the [golden] tests against them).
std::filesystem::path golden_dir() {
  const char* env = std::getenv("MDLM_GOLDEN_DIR");
  return env != nullptr && *env != '\0' ? std::filesystem::path(env) : std::filesystem::path(MDLM_GOLDEN_DATA_DIR);
}

bool bitwise_equal(const std::vector<float>& a, const std::vector<float>& b) {
  if (a.size() != b.size()) return false;
  for (std::size_t i = 0; i < a.size(); ++i)
    if (std::bit_cast<std::uint32_t>(a[i]) != std::bit_cast<std::uint32_t>(b[i])) return false;
  return true;
}

std::vector<float> run(model& m, const std::vector<mdlm::token_id>& tokens) {
  std::vector<float> out(tokens.size() * m.vocab_size());
  m.logits(tokens, out);
  return out;
}

}  // namespace

TEST_CASE("tiny checkpoints match the PyTorch goldens to 1e-4", "[golden]") {
  const auto dir = golden_dir();
  INFO("golden directory " << dir);
  std::ifstream f(dir / "goldens.json");
  REQUIRE(f.good());
  const json goldens = json::parse(f);
  const double tolerance = goldens.at("tolerance").get<double>();
  CHECK(tolerance <= 1e-4);
  const auto& cases = goldens.at("cases");
  REQUIRE(cases.size() >= 5);
  const auto scratch = mdlm::test::scratch_dir("golden");
  for (const auto& c : cases) {
    const std::string name = c.at("name");
    INFO("case " << name);
    tiny_checkpoint_spec spec;
    spec.arch = c.at("arch") == "llada" ? architecture::llada : architecture::dream;
    spec.layers = c.at("layers");
    spec.d_model = c.at("d_model");
    spec.heads = c.at("heads");
    spec.kv_heads = c.at("kv_heads");
    spec.mlp = c.at("mlp");
    spec.vocab = c.at("vocab");
    spec.seed = c.at("seed");
    write_tiny_checkpoint(spec, scratch / name);
    // Same generator output as when the goldens were made: otherwise the goldens are stale, which is
    // a different failure from a forward mismatch.
    REQUIRE(mdlm::test::fnv1a64_hex(scratch / name / "model.safetensors") == c.at("safetensors_fnv1a64").get<std::string>());

    auto m = model::load(scratch / name);
    REQUIRE(m.vocab_size() == spec.vocab);
    std::ifstream lf(dir / c.at("logits_file").get<std::string>(), std::ios::binary);
    REQUIRE(lf.good());
    double worst = 0.0;
    std::size_t compared = 0;
    for (const auto& seq : c.at("sequences")) {
      const auto tokens = seq.get<std::vector<mdlm::token_id>>();
      std::vector<float> want(tokens.size() * spec.vocab);
      lf.read(reinterpret_cast<char*>(want.data()), static_cast<std::streamsize>(want.size() * sizeof(float)));
      REQUIRE(lf.gcount() == static_cast<std::streamsize>(want.size() * sizeof(float)));
      const auto got = run(m, tokens);
      for (std::size_t i = 0; i < got.size(); ++i) {
        REQUIRE(std::isfinite(got[i]));
        worst = std::max(worst, std::abs(static_cast<double>(got[i]) - want[i]));
      }
      compared += got.size();
    }
    CHECK(lf.peek() == std::char_traits<char>::eof());  // every golden value was compared
    INFO("max abs difference " << worst << " over " << compared << " logits");
    CHECK(worst <= tolerance);
  }
  std::filesystem::remove_all(scratch);
}

TEST_CASE("logits are bitwise identical for any thread count and batch size", "[model]") {
  const auto scratch = mdlm::test::scratch_dir("determinism");
  for (auto arch : {architecture::llada, architecture::dream}) {
    tiny_checkpoint_spec spec;
    spec.arch = arch;
    spec.kv_heads = 2;
    spec.d_model = 192;  // > one 128-feature chunk per projection, several chunks in the MLP and head
    spec.mlp = 300;
    spec.seed = 77;
    write_tiny_checkpoint(spec, scratch / "m");
    auto m = model::load(scratch / "m", {.threads = 1});
    const auto mask = m.mask_token();
    const std::vector<mdlm::token_id> a = {1, 2, 3, mask, mask, 9, mask, 40, 41, mask, mask, 7, 8, 100, mask, 5, 6};
    std::vector<mdlm::token_id> b = a;
    b[3] = 250;
    b[16] = mask;
    const auto a1 = run(m, a);
    const auto b1 = run(m, b);
    for (int t : {2, 3, 5}) {
      m.set_threads(t);
      CHECK(m.threads() == t);
      CHECK(bitwise_equal(run(m, a), a1));
    }
    m.set_threads(3);
    std::vector<mdlm::token_id> both = a;
    both.insert(both.end(), b.begin(), b.end());
    both.insert(both.end(), a.begin(), a.end());
    std::vector<float> out(both.size() * m.vocab_size());
    m.batch_logits(both, 3, out);
    const std::size_t row = a.size() * m.vocab_size();
    CHECK(bitwise_equal({out.begin(), out.begin() + static_cast<std::ptrdiff_t>(row)}, a1));
    CHECK(bitwise_equal({out.begin() + static_cast<std::ptrdiff_t>(row), out.begin() + static_cast<std::ptrdiff_t>(2 * row)}, b1));
    CHECK(bitwise_equal({out.begin() + static_cast<std::ptrdiff_t>(2 * row), out.end()}, a1));
    // A different sequence gives different logits (the comparison above can fail).
    CHECK_FALSE(bitwise_equal(a1, b1));
  }
  std::filesystem::remove_all(scratch);
}

TEST_CASE("16-bit weights stay 16-bit in memory and give the fp32 path's logits bit for bit", "[model]") {
  const auto scratch = mdlm::test::scratch_dir("weight_storage");
  for (auto arch : {architecture::llada, architecture::dream}) {
    for (auto type : {dtype::bf16, dtype::f16, dtype::f32}) {
      INFO("arch " << static_cast<int>(arch) << " dtype " << dtype_name(type));
      tiny_checkpoint_spec spec;
      spec.arch = arch;
      spec.kv_heads = 2;
      spec.d_model = 192;
      spec.mlp = 300;
      spec.seed = 78;
      spec.type = type;
      write_tiny_checkpoint(spec, scratch / "m");
      auto kept = model::load(scratch / "m", {.threads = 2});
      auto wide = model::load(scratch / "m", {.threads = 1, .weights = weight_storage::fp32});
      // Matrices at 2 bytes per parameter (4 for an fp32 checkpoint); norms and biases fp32.
      const std::size_t params = kept.config().parameter_count();
      if (type == dtype::f32) {
        CHECK(kept.weight_bytes() == wide.weight_bytes());
      } else {
        CHECK(kept.weight_bytes() < params * 2 + params / 10);
        CHECK(wide.weight_bytes() == params * 4);
      }
      const auto mask = kept.mask_token();
      const std::vector<mdlm::token_id> a = {1, 2, 3, mask, mask, 9, mask, 40, 41, mask, mask, 7, 8, 100, mask, 5, 6};
      const auto ref = run(wide, a);
      CHECK(bitwise_equal(run(kept, a), ref));
      kept.set_threads(3);
      CHECK(bitwise_equal(run(kept, a), ref));
      // The row interface (head over requested rows only) agrees as well.
      std::vector<std::size_t> rows = {3, 4, 6, 9, 10, 14};
      mdlm::row_request req;
      req.rows = rows;
      std::vector<mdlm::row_choice> x(rows.size()), y(rows.size());
      kept.row_choices(a, req, x);
      wide.row_choices(a, req, y);
      for (std::size_t i = 0; i < rows.size(); ++i) {
        CHECK(x[i].token == y[i].token);
        CHECK(x[i].stats.entropy == y[i].stats.entropy);
        CHECK(x[i].stats.log_normalizer == y[i].stats.log_normalizer);
      }
    }
  }
  std::filesystem::remove_all(scratch);
}

TEST_CASE("attention is bidirectional; Dream shifts its logits by one", "[model]") {
  const auto scratch = mdlm::test::scratch_dir("bidirectional");
  for (auto arch : {architecture::llada, architecture::dream}) {
    tiny_checkpoint_spec spec;
    spec.arch = arch;
    spec.seed = 3;
    write_tiny_checkpoint(spec, scratch / "m");
    auto m = model::load(scratch / "m");
    const std::size_t v = m.vocab_size();
    const std::vector<mdlm::token_id> a = {10, 11, 12, 13, 14, 15};
    std::vector<mdlm::token_id> b = a;
    b.back() = 200;  // change only the last token
    const auto la = run(m, a);
    const auto lb = run(m, b);
    auto row_differs = [&](std::size_t i) {
      for (std::size_t k = 0; k < v; ++k)
        if (la[i * v + k] != lb[i * v + k]) return true;
      return false;
    };
    CHECK(row_differs(0));  // position 0 sees the last token: no causal mask
    CHECK(row_differs(5));
    if (arch == architecture::dream) {
      // Output row i is the raw row of hidden state i-1 and row 0 keeps its own raw row, so output
      // rows 0 and 1 are both raw row 0 (models.md section 3.9).
      for (std::size_t k = 0; k < v; ++k) REQUIRE(la[k] == la[v + k]);
    } else {
      bool same = true;
      for (std::size_t k = 0; k < v; ++k) same = same && la[k] == la[v + k];
      CHECK_FALSE(same);
    }
  }
  std::filesystem::remove_all(scratch);
}

TEST_CASE("model arguments are validated by name", "[model]") {
  const auto scratch = mdlm::test::scratch_dir("args");
  write_tiny_checkpoint({}, scratch / "m");
  auto m = model::load(scratch / "m");
  std::vector<float> out(3 * m.vocab_size());
  const std::vector<mdlm::token_id> ok = {1, 2, 3};
  CHECK_THROWS_WITH(m.logits(std::vector<mdlm::token_id>{1, 320, 3}, out), Contains("token id 320 at position 1"));
  CHECK_THROWS_WITH(m.logits(std::vector<mdlm::token_id>{1, -4, 3}, out), Contains("token id -4"));
  CHECK_THROWS_WITH(m.logits(std::vector<mdlm::token_id>{1, 2}, out), Contains("out.size() = 960"));
  CHECK_THROWS_WITH(m.logits(std::vector<mdlm::token_id>{}, std::span<float>{}), Contains("tokens.size() = 0"));
  CHECK_THROWS_WITH(m.batch_logits(ok, 2, out), Contains("multiple of batch = 2"));
  CHECK_THROWS_WITH(m.batch_logits(ok, 0, out), Contains("batch = 0"));
  CHECK_THROWS_WITH(m.set_threads(-1), Contains("threads = -1"));
  CHECK_NOTHROW(m.logits(ok, out));
  std::filesystem::remove_all(scratch);
}
