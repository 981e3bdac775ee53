// SPDX-License-Identifier: MIT
#pragma once
//! @file
//! Library version (kept in sync with the CMake project version).

#define MDLM_VERSION_MAJOR 0
#define MDLM_VERSION_MINOR 1
#define MDLM_VERSION_PATCH 0

namespace mdlm {
//! Version of the headers, as "major.minor.patch".
inline constexpr const char* version_string = "0.1.0";
}  // namespace mdlm
