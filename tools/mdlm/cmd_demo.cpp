// SPDX-License-Identifier: MIT
#include <cstdio>

#include "commands.hpp"

namespace mdlm::tool {
void register_demo(CLI::App& app) {
  auto* cmd = app.add_subcommand("demo", "Demonstrate the paper's bounds on an exact reference model");
  cmd->callback([] { std::puts("mdlm demo"); });
}
}  // namespace mdlm::tool
