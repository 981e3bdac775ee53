// SPDX-License-Identifier: MIT
// `--device` of the mdlm tool without a GPU (always runs): a bad device name, and --device cuda on a
// machine without a usable device (or a build without CUDA), are one-line errors with exit code 2
// before any weight is loaded; --device cpu is the default.
#ifdef MDLM_TOOL_PATH
#include <sys/wait.h>

#include <algorithm>
#include <catch2/catch.hpp>
#include <cstdlib>
#include <string>

#include "cpu/support.hpp"
#include "mdlm/cpu/make_checkpoint.hpp"
#if MDLM_TEST_HAVE_CUDA
#include "mdlm/cuda/device.hpp"
#endif

namespace {

struct run_result {
  int rc = -1;
  std::string out, err;
};

run_result run(const std::filesystem::path& dir, const std::string& args) {
  const auto out = dir / "out.txt", err = dir / "err.txt";
  const std::string cmd = std::string("OMP_NUM_THREADS=1 '") + MDLM_TOOL_PATH + "' " + args + " >'" + out.string() +
                          "' 2>'" + err.string() + "' </dev/null";
  const int status = std::system(cmd.c_str());
  return {WIFEXITED(status) ? WEXITSTATUS(status) : -1, mdlm::test::read_file(out), mdlm::test::read_file(err)};
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
