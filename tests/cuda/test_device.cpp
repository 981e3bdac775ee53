// SPDX-License-Identifier: MIT
// Device query on a machine with a GPU (label cuda; skipped without one by run_if_device.sh).
#include <catch2/catch.hpp>

#include "mdlm/cuda/device.hpp"

TEST_CASE("query_device reports the device this build can run on", "[cuda][device]") {
  const auto d = mdlm::cuda::query_device(0);
  INFO(mdlm::cuda::describe(d));
  REQUIRE(d.present);
  CHECK(d.count >= 1);
  CHECK(!d.name.empty());
  CHECK(d.major * 10 + d.minor >= d.min_arch);
  CHECK(d.multiprocessors > 0);
  CHECK(d.total_bytes > 0);
  CHECK(d.free_bytes <= d.total_bytes);
  CHECK(d.reason.empty());
}

TEST_CASE("query_device names a missing device ordinal", "[cuda][device]") {
  const auto d = mdlm::cuda::query_device(1000);
  CHECK_FALSE(d.present);
  CHECK(d.reason.find("does not exist") != std::string::npos);
}
