// SPDX-License-Identifier: MIT
// `mdlm`: command-line entry point. Bad input exits with code 2 and a one-line message.
#include <cstdio>
#include <exception>
#include <stdexcept>

#include "commands.hpp"

int main(int argc, char** argv) {
  CLI::App app{"mdlm: sampling algorithms for masked diffusion language models"};
  app.require_subcommand(1);
  mdlm::tool::register_demo(app);
#if MDLM_TOOL_HAVE_CPU
  mdlm::tool::register_make_checkpoint(app);
  mdlm::tool::register_info(app);
  mdlm::tool::register_generate(app);
  mdlm::tool::register_tokenize(app);
#endif
#if MDLM_TOOL_HAVE_TASKS
  mdlm::tool::register_eval(app);
  mdlm::tool::register_posterior(app);
  mdlm::tool::register_score(app);
  mdlm::tool::register_solve(app);
#endif
  try {
    app.parse(argc, argv);
  } catch (const CLI::CallForHelp& e) {
    return app.exit(e);
  } catch (const CLI::CallForAllHelp& e) {
    return app.exit(e);
  } catch (const CLI::CallForVersion& e) {
    return app.exit(e);
  } catch (const CLI::ParseError& e) {
    // One line, unlike CLI::App::exit, which adds "Run with --help for more information."
    std::fprintf(stderr, "mdlm: %s\n", e.what());
    return mdlm::tool::usage_error;
  } catch (const std::invalid_argument& e) {
    std::fprintf(stderr, "mdlm: %s\n", e.what());
    return mdlm::tool::usage_error;
  } catch (const std::exception& e) {
    std::fprintf(stderr, "mdlm: error: %s\n", e.what());
    return 1;
  }
  return 0;
}
