// SPDX-License-Identifier: MIT
// An outside program using the installed mdlm headers.
#include <mdlm/mdlm.hpp>

#include <cmath>
#include <cstdio>
#include <vector>

int main() {
  const std::vector<float> row{0.0f, 0.0f};
  const mdlm::logit_stats s = mdlm::compute_logit_stats(row);
  if (!s.valid || std::abs(s.entropy - std::log(2.0)) > 1e-12 || s.top1 != 0 || s.top2 != 1) {
    std::puts("consumer: unexpected statistics");
    return 1;
  }
  std::printf("consumer: mdlm %s, H = %.6f nats\n", mdlm::version_string, s.entropy);
  return 0;
}
