// SPDX-License-Identifier: MIT
// `mdlm`: command-line entry point. Bad input exits with code 2 and a one-line message.
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <exception>
#include <filesystem>
#include <fstream>
#include <iterator>
#include <new>
#include <stdexcept>
#include <string>
#include <sys/resource.h>
#include <unistd.h>

#include "commands.hpp"

namespace mdlm::tool {

std::string format_bytes(std::uint64_t bytes) {
  char buf[64];
  if (bytes >= (std::uint64_t{1} << 30)) std::snprintf(buf, sizeof buf, "%.1f GiB", static_cast<double>(bytes) / (1u << 30));
  else if (bytes >= (std::uint64_t{1} << 20)) std::snprintf(buf, sizeof buf, "%.1f MiB", static_cast<double>(bytes) / (1u << 20));
  else std::snprintf(buf, sizeof buf, "%llu bytes", static_cast<unsigned long long>(bytes));
  return buf;
}

std::string memory_available() {
  std::ifstream f("/proc/meminfo");
  std::string key;
  std::uint64_t kib = 0;
  std::string unit;
  std::string out;
  while (f >> key >> kib >> unit)
    if (key == "MemAvailable:") {
      out = "MemAvailable here is " + format_bytes(kib * 1024);
      break;
    }
  // An address-space limit (ulimit -v) fails allocations long before memory runs out: say so.
  rlimit as{};
  if (::getrlimit(RLIMIT_AS, &as) == 0 && as.rlim_cur != RLIM_INFINITY)
    out += (out.empty() ? "" : ", ") + std::string("the address-space limit (ulimit -v) is ") +
           format_bytes(static_cast<std::uint64_t>(as.rlim_cur));
  return out;
}

std::string read_input_file(const std::string& option, const std::string& path) {
  std::error_code ec;
  const auto st = std::filesystem::status(path, ec);
  if (ec || !std::filesystem::exists(st)) throw std::invalid_argument(option + " " + path + ": no such file");
  if (!std::filesystem::is_regular_file(st))
    throw std::invalid_argument(option + " " + path + ": not a regular file (a directory, FIFO or device)");
  const auto size = std::filesystem::file_size(path, ec);
  if (ec || size > max_input_bytes)
    throw std::invalid_argument(option + " " + path + ": larger than " + std::to_string(max_input_bytes) + " bytes");
  std::ifstream f(path, std::ios::binary);
  if (!f) throw std::invalid_argument(option + " " + path + ": cannot read the file");
  return {std::istreambuf_iterator<char>(f), std::istreambuf_iterator<char>()};
}

staged_output::staged_output(const std::string& option, const std::string& path, const std::vector<std::string>& inputs)
    : option_(option), path_(path), partial_(path + ".partial-" + std::to_string(::getpid())) {
  std::error_code ec;
  for (const auto& in : inputs)
    if (std::filesystem::equivalent(path, in, ec))
      throw std::invalid_argument(option + " " + path + " is also an input of this command; write elsewhere");
  if (std::filesystem::is_directory(path, ec)) throw std::invalid_argument(option + " " + path + " is a directory");
  out_ = std::make_unique<std::ofstream>(partial_, std::ios::binary | std::ios::trunc);
  if (!out_->good()) throw std::invalid_argument(option + " " + path + ": cannot write beside it (" + partial_ + ")");
}

staged_output::~staged_output() {
  if (committed_) return;
  out_.reset();
  std::error_code ec;
  std::filesystem::remove(partial_, ec);
}

void staged_output::commit() {
  out_->flush();
  if (!out_->good()) throw std::runtime_error(option_ + " " + path_ + ": write failed");
  out_.reset();
  std::filesystem::rename(partial_, path_);
  committed_ = true;
}

}  // namespace mdlm::tool

namespace {

//! Integer options read in decimal, exactly: CLI11 reads "-1" into an unsigned option as 2^64 - 1
//! and "010" as octal 8. Every single-valued INT / UINT option of every sub-command gets this
//! check: digits only (a leading '-' for INT), leading zeros dropped, so "010" is ten.
void strict_integers(CLI::App& app) {
  for (CLI::Option* opt : app.get_options()) {
    const std::string type = opt->get_type_name();
    const bool is_uint = type.rfind("UINT", 0) == 0, is_int = type.rfind("INT", 0) == 0;
    if ((!is_uint && !is_int) || opt->get_items_expected_max() != 1) continue;
    opt->transform(
        [is_uint](std::string in) {
          std::size_t i = 0;
          const bool negative = !in.empty() && in[0] == '-';
          if (negative) {
            if (is_uint) throw CLI::ValidationError(in + " is negative; it must be a non-negative integer");
            i = 1;
          }
          if (i == in.size() || in.find_first_not_of("0123456789", i) != std::string::npos)
            throw CLI::ValidationError(in + " is not a decimal integer");
          const std::size_t first = std::min(in.find_first_not_of('0', i), in.size() - 1);
          return (negative ? "-" : "") + in.substr(first);
        },
        "", "decimal");
  }
  for (CLI::App* sub : app.get_subcommands({})) strict_integers(*sub);
}

}  // namespace

int main(int argc, char** argv) {
  // OpenMP threads sleep instead of spinning when idle: on a shared machine a spinning team takes
  // cores from the other processes and the forward slows down many times (71 s against 2.8 s with
  // two threads and the other core busy). libgomp reads OMP_WAIT_POLICY once, when it is loaded,
  // so the tool re-executes itself with it set; a user's own OMP_WAIT_POLICY is kept.
  if (std::getenv("OMP_WAIT_POLICY") == nullptr && ::setenv("OMP_WAIT_POLICY", "PASSIVE", 1) == 0)
    ::execv("/proc/self/exe", argv);  // returns only on failure: then run as is
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
  strict_integers(app);
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
  } catch (const std::bad_alloc&) {
    // Allocation sites with a known size say so (with_memory_context); anything else lands here.
    const std::string avail = mdlm::tool::memory_available();
    std::fprintf(stderr, "mdlm: error: out of memory (an allocation failed%s%s); reduce the sizes asked for "
                 "(--gen-length, --batch-size, -n) or use a machine with more memory\n",
                 avail.empty() ? "" : "; ", avail.c_str());
    return 1;
  } catch (const std::exception& e) {
    std::fprintf(stderr, "mdlm: error: %s\n", e.what());
    return 1;
  }
  return 0;
}
