// SPDX-License-Identifier: MIT
#include "mdlm/cuda/device.hpp"

#include <cuda_runtime_api.h>

#include <cstdio>
#include <vector>

#include "self_test.hpp"

namespace mdlm::cuda {

namespace {
std::string error_text(cudaError_t e) { return std::string(cudaGetErrorName(e)) + ": " + cudaGetErrorString(e); }
}  // namespace

device_info query_device(int index) noexcept {
  device_info d;
  d.index = index;
  d.min_arch = MDLM_CUDA_MIN_ARCH;
  try {
    int count = 0;
    if (const cudaError_t e = cudaGetDeviceCount(&count); e != cudaSuccess) {
      d.reason = error_text(e);
      (void)cudaGetLastError();  // reset the runtime's last-error state for later calls
      return d;
    }
    d.count = count;
    if (index < 0 || index >= count) {
      d.reason = "device " + std::to_string(index) + " does not exist (" + std::to_string(count) + " visible)";
      return d;
    }
    cudaDeviceProp p{};
    if (const cudaError_t e = cudaGetDeviceProperties(&p, index); e != cudaSuccess) {
      d.reason = "cudaGetDeviceProperties: " + error_text(e);
      return d;
    }
    d.name = p.name;
    d.major = p.major;
    d.minor = p.minor;
    d.multiprocessors = p.multiProcessorCount;
    if (d.major * 10 + d.minor < d.min_arch) {
      d.reason = d.name + " has compute capability " + std::to_string(d.major) + "." + std::to_string(d.minor) +
                 ", below this build's lowest architecture " + std::to_string(d.min_arch) +
                 " (rebuild with -DCMAKE_CUDA_ARCHITECTURES=" + std::to_string(d.major * 10 + d.minor) + ")";
      return d;
    }
    if (const cudaError_t e = cudaSetDevice(index); e != cudaSuccess) {
      d.reason = "cudaSetDevice: " + error_text(e);
      return d;
    }
    if (const cudaError_t e = cudaMemGetInfo(&d.free_bytes, &d.total_bytes); e != cudaSuccess) {
      d.reason = "cudaMemGetInfo: " + error_text(e);
      return d;
    }
    d.present = true;
  } catch (...) {  // std::string allocation failure: report absent rather than throw
    d.present = false;
  }
  return d;
}

std::string self_test(int index) noexcept {
  try {
    if (const cudaError_t e = cudaSetDevice(index); e != cudaSuccess) return "cudaSetDevice: " + error_text(e);
    constexpr int n = 128;
    void* raw = nullptr;
    if (const cudaError_t e = cudaMalloc(&raw, n * sizeof(int)); e != cudaSuccess) return "cudaMalloc: " + error_text(e);
    auto* buf = static_cast<int*>(raw);
    std::string reason;
    if (const char* launch = detail::launch_self_test(buf, n); launch != nullptr) {
      reason = std::string("self-test kernel launch: ") + launch;
    } else {
      std::vector<int> host(n, -1);
      if (const cudaError_t e = cudaMemcpy(host.data(), buf, n * sizeof(int), cudaMemcpyDeviceToHost); e != cudaSuccess) {
        reason = "self-test kernel (reported at the copy back): " + error_text(e);
      } else {
        for (int i = 0; i < n && reason.empty(); ++i)
          if (host[static_cast<std::size_t>(i)] != 3 * i + 1)
            reason = "self-test kernel wrote " + std::to_string(host[static_cast<std::size_t>(i)]) + " at " +
                     std::to_string(i) + ", expected " + std::to_string(3 * i + 1);
      }
    }
    (void)cudaFree(buf);
    return reason;
  } catch (...) {
    return "self-test: out of host memory";
  }
}

std::string format_gib(std::size_t bytes) {
  char buf[32];
  std::snprintf(buf, sizeof buf, "%.1f GiB", static_cast<double>(bytes) / (1024.0 * 1024.0 * 1024.0));
  return buf;
}

std::string describe(const device_info& d) {
  if (!d.present) return "no CUDA device: " + d.reason;
  return d.name + ", compute capability " + std::to_string(d.major) + "." + std::to_string(d.minor) + ", " +
         std::to_string(d.multiprocessors) + " SMs, " + format_gib(d.free_bytes) + " free of " +
         format_gib(d.total_bytes);
}

}  // namespace mdlm::cuda
