// SPDX-License-Identifier: MIT
#pragma once
// Launcher of the self-test kernel (self_test.cu); used by mdlm::cuda::self_test (device.cpp).
namespace mdlm::cuda::detail {
//! Launches the self-test kernel on the current device writing out[i] = 3 i + 1 for i < n <= 128;
//! returns nullptr, or the CUDA error name of a failed launch.
const char* launch_self_test(int* device_out, int n);
}  // namespace mdlm::cuda::detail
