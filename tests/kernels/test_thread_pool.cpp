// SPDX-License-Identifier: MIT
// The kernels' thread pool: every task runs exactly once, for any pool size, across repeated runs.
#include <catch2/catch.hpp>

#include <atomic>
#include <cstddef>
#include <vector>

#include "mdlm/kernels/thread_pool.hpp"

TEST_CASE("thread_pool runs every task exactly once, repeatedly", "[kernels][threads]") {
  for (std::size_t threads : {1, 2, 3, 5}) {
    mdlm::thread_pool pool(threads);
    CHECK(pool.size() == threads);
    for (std::size_t n : {0, 1, 2, 7, 100, 1000}) {
      std::vector<std::atomic<int>> hits(n);
      auto f = [&](std::size_t i) { hits[i].fetch_add(1, std::memory_order_relaxed); };
      for (int rep = 0; rep < 20; ++rep) pool.for_each(n, f);
      std::size_t wrong = 0;
      for (auto& h : hits) wrong += h.load() != 20;
      INFO("threads " << threads << " tasks " << n);
      CHECK(wrong == 0);
    }
  }
}
