// SPDX-License-Identifier: MIT
// mdlm_cuda_probe: prints the CUDA device this process would use. Exit 0 when one is usable; 77
// (ctest's skip code, tests/cuda/run_if_device.sh) with "SKIPPED: no CUDA device: <reason>" when
// not. No GPU is needed to build or run it.
#include <cstdio>
#include <string>

#include "mdlm/cuda/device.hpp"

int main() {
  const mdlm::cuda::device_info d = mdlm::cuda::query_device(0);
  if (!d.present) {
    std::printf("SKIPPED: no CUDA device: %s\n", d.reason.c_str());
    return 77;
  }
  std::printf("CUDA device 0 of %d: %s\n", d.count, mdlm::cuda::describe(d).c_str());
  if (const std::string failed = mdlm::cuda::self_test(0); !failed.empty()) {
    std::printf("FAILED: the device is present but this build's kernels do not run on it: %s\n", failed.c_str());
    return 1;
  }
  return 0;
}
