// SPDX-License-Identifier: MIT
#include <catch2/catch.hpp>

#include "mdlm/mdlm.hpp"
#include "decode/toy_models.hpp"

TEST_CASE("decode smoke", "[decode]") {
  const float ninf = -std::numeric_limits<float>::infinity();
  std::vector<std::vector<float>> rows(6, std::vector<float>{0.0f, 1.0f, 2.0f, ninf});
  auto m = mdlm::test::independent_model(rows, 3);
  const std::vector<mdlm::token_id> prompt{0, 1};
  auto c = mdlm::make_canvas(prompt, 4, 3);
  mdlm::decode_options<mdlm::med> opt{.policy = {.lambda = 0.5, .k_max = 2}};
  auto r = mdlm::decode(m, c, opt, mdlm::counter_rng{1});
  CHECK(r.ok());
  CHECK(r.nfe == 4);
}
