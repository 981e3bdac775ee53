#!/usr/bin/env bash
# SPDX-License-Identifier: MIT
# run_if_device.sh PROBE COMMAND...: runs COMMAND only when PROBE (mdlm_cuda_probe) finds a usable
# CUDA device. Without one the probe prints "SKIPPED: no CUDA device: <reason>" and exits 77, which
# ctest reports as skipped (SKIP_RETURN_CODE 77), never as passed. Any other probe failure fails.
set -u
probe=$1
shift
"$probe"
rc=$?
if [ "$rc" -ne 0 ]; then exit "$rc"; fi
exec "$@"
