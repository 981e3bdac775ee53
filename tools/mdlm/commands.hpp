// SPDX-License-Identifier: MIT
#pragma once
// Sub-command registration for the `mdlm` tool. Each cmd_<name>.cpp defines one register function.
#include <CLI/CLI.hpp>

namespace mdlm::tool {
//! Usage errors exit with this code and a one-line message on stderr.
inline constexpr int usage_error = 2;

void register_demo(CLI::App& app);
#if MDLM_TOOL_HAVE_CPU
void register_make_checkpoint(CLI::App& app);  // cmd_make_checkpoint.cpp (needs mdlm::cpu)
void register_info(CLI::App& app);             // cmd_info.cpp (needs mdlm::cpu)
void register_generate(CLI::App& app);         // cmd_generate.cpp (needs mdlm::cpu)
#endif
}  // namespace mdlm::tool
