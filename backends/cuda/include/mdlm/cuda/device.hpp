// SPDX-License-Identifier: MIT
#pragma once
//! @file
//! Which CUDA device this process can use: presence, name, compute capability and free memory.
//! Host-only API (no CUDA header needed to include it); never throws, so a caller without a GPU
//! gets a reason string instead of an exception.

#include <cstddef>
#include <stdexcept>
#include <string>

namespace mdlm::cuda {

//! An error reported by the CUDA runtime, cuBLAS or a kernel. The message names the call, the
//! step of the forward (layer, GEMM, kernel) and, where known, the batch element and position.
class cuda_error : public std::runtime_error {
 public:
  using std::runtime_error::runtime_error;
};

//! A device (or its absence) as this process sees it.
struct device_info {
  bool present = false;           //!< a device exists, the driver works, and it can run this build's kernels
  int index = 0;                  //!< CUDA device ordinal queried
  int count = 0;                  //!< devices visible to the process (0 when none or no driver)
  std::string name;               //!< e.g. "NVIDIA H200" (empty when absent)
  int major = 0;                  //!< compute capability major (9 on Hopper)
  int minor = 0;                  //!< compute capability minor
  int multiprocessors = 0;        //!< streaming multiprocessors
  std::size_t free_bytes = 0;     //!< free device memory at the time of the query
  std::size_t total_bytes = 0;    //!< total device memory
  int min_arch = 0;               //!< lowest architecture this build has kernels for (e.g. 90)
  std::string reason;             //!< why `present` is false: the CUDA error or the architecture mismatch
};

//! Queries device `index` (cudaGetDeviceCount, cudaGetDeviceProperties, cudaMemGetInfo). Never
//! throws: without a driver, device or a capable architecture, `present` is false and `reason`
//! says why (e.g. "cudaErrorInsufficientDriver: CUDA driver version is insufficient ...").
//! Querying free memory creates the device's primary context (a few hundred MB of device memory).
[[nodiscard]] device_info query_device(int index = 0) noexcept;

//! Runs a tiny kernel on device `index` and checks its output: proves that this build's device code
//! runs there (driver, architecture). Returns an empty string on success, else the reason. Never throws.
[[nodiscard]] std::string self_test(int index = 0) noexcept;

//! One line describing `d`: "NVIDIA H200, compute capability 9.0, 132 SMs, 139.8 GiB free of
//! 139.8 GiB" or "no CUDA device: <reason>".
[[nodiscard]] std::string describe(const device_info& d);

//! `bytes` in GiB with one decimal ("15.0 GiB").
[[nodiscard]] std::string format_gib(std::size_t bytes);

}  // namespace mdlm::cuda
