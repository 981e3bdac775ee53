// SPDX-License-Identifier: MIT
// `--device` of the mdlm tool without a GPU (always runs): a bad device name, and --device cuda on a
// machine without a usable device (or a build without CUDA), are one-line errors with exit code 2
// before any weight is loaded; --device cpu is the default.
#ifdef MDLM_TOOL_PATH
#include <algorithm>
#include <catch2/catch.hpp>
#include <string>

#include "cuda/support.hpp"
#include "mdlm/cpu/make_checkpoint.hpp"
#if MDLM_TEST_HAVE_CUDA
#include "mdlm/cuda/device.hpp"
#endif

namespace {

mdlm::test::tool_result run(const std::filesystem::path& dir, const std::string& args) {
  return mdlm::test::run_tool(MDLM_TOOL_PATH, dir, args);
}

std::size_t lines(const std::string& s) { return static_cast<std::size_t>(std::count(s.begin(), s.end(), '\n')); }

}  // namespace

TEST_CASE("mdlm --device: bad names and a missing CUDA device exit 2 with one line", "[cuda_math][cli]") {
  const auto dir = mdlm::test::scratch_dir("device-cli");
  mdlm::cpu::write_tiny_checkpoint({}, dir / "ckpt");
  const std::string gen = "generate --model '" + (dir / "ckpt").string() + "' --prompt-ids 1,2,3 --gen-length 4 --json";

  const auto bad = run(dir, gen + " --device tpu");
  CHECK(bad.rc == 2);
  CHECK_THAT(bad.err, Catch::Matchers::Contains("--device tpu: expected cpu or cuda"));
  CHECK(lines(bad.err) == 1);

  const auto cpu = run(dir, gen + " --device cpu");
  REQUIRE(cpu.rc == 0);
  CHECK_THAT(cpu.out, Catch::Matchers::Contains("\"device\":\"cpu\""));
  CHECK(run(dir, gen).out == cpu.out);  // cpu is the default

#if MDLM_TEST_HAVE_CUDA
  const bool gpu = mdlm::cuda::query_device(0).present;
#else
  const bool gpu = false;
#endif
  if (!gpu) {
    const auto cuda = run(dir, gen + " --device cuda");
    INFO(cuda.err);
    CHECK(cuda.rc == 2);
#if MDLM_TEST_HAVE_CUDA
    CHECK_THAT(cuda.err, Catch::Matchers::Contains("--device cuda: no CUDA device: "));
#else
    CHECK_THAT(cuda.err, Catch::Matchers::Contains("built without the CUDA backend"));
#endif
    CHECK(lines(cuda.err) == 1);
  }
  std::filesystem::remove_all(dir);
}
#endif
