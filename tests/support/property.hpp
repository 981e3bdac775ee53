// SPDX-License-Identifier: MIT
#pragma once
// Property-based testing with rapidcheck inside Catch2, with fixed seeds and a fixed number of cases.
//
// `mdlm::test::check_property(description, property)` runs `property` (a rapidcheck property: draw
// values with `*rc::gen::...`, assert with RC_ASSERT) and reports the result as one Catch2 check.
// Parameters: taken from RC_PARAMS when it is set (ctest sets "seed=20261122 max_success=1000" for
// every test, see tests/CMakeLists.txt); when it is not set (running a test binary by hand) the same
// fixed seed and 1000 cases are used. On failure the message names the seed, the number of cases and
// the shrunk counterexample, and says how to reproduce it.

#include <catch2/catch.hpp>
#include <rapidcheck.h>

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <cstdlib>
#include <sstream>
#include <string>
#include <utility>

namespace mdlm::test {

inline constexpr std::uint64_t default_property_seed = 20261122;  // also in tests/CMakeLists.txt
inline constexpr int default_property_cases = 1000;

//! The rapidcheck parameters every property of the test suite runs with.
//! Without RC_PARAMS in the environment, sets it to the suite's defaults before rapidcheck reads its
//! global configuration (on first use), so that rapidcheck's own messages show the seed in use.
[[nodiscard]] inline rc::detail::TestParams property_params() {
  static const bool defaults_set = [] {
    if (std::getenv("RC_PARAMS") != nullptr) return false;
    const std::string value = "seed=" + std::to_string(default_property_seed) +
                              " max_success=" + std::to_string(default_property_cases);
#ifdef _WIN32
    _putenv_s("RC_PARAMS", value.c_str());
#else
    setenv("RC_PARAMS", value.c_str(), 0);
#endif
    return true;
  }();
  (void)defaults_set;
  return rc::detail::configuration().testParams;
}

//! Runs one property with `property_params()` and turns the result into a Catch2 check.
template <class Testable>
void check_property(const std::string& description, Testable&& testable) {
  const rc::detail::TestParams params = property_params();
  rc::detail::TestMetadata metadata;
  metadata.id = description;
  metadata.description = description;
  const rc::detail::TestResult result = rc::detail::checkTestable(std::forward<Testable>(testable), metadata, params);
  std::ostringstream message;
  message << "property: " << description << "\nrapidcheck seed = " << params.seed
          << ", max_success = " << params.maxSuccess << " (reproduce: RC_PARAMS=\"seed=" << params.seed
          << " max_success=" << params.maxSuccess << "\" <test binary>)\n";
  rc::detail::printResultMessage(result, message);
  INFO(message.str());
  const bool passed = result.template is<rc::detail::SuccessResult>() &&
                      result.template get<rc::detail::SuccessResult>().numSuccess >= params.maxSuccess;
  CHECK(passed);
}

//! |a - b| <= rel * max(|a|, |b|): relative closeness; exact equality (including equal infinities)
//! always passes.
[[nodiscard]] inline bool close_rel(double a, double b, double rel) {
  if (a == b) return true;
  const double scale = std::max(std::abs(a), std::abs(b));
  return std::abs(a - b) <= rel * scale;
}

//! |a - b| <= tol * max(1, |a|, |b|): relative for large values, absolute near 0.
[[nodiscard]] inline bool close_to(double a, double b, double tol) {
  if (a == b) return true;
  const double scale = std::max({1.0, std::abs(a), std::abs(b)});
  return std::abs(a - b) <= tol * scale;
}

}  // namespace mdlm::test
