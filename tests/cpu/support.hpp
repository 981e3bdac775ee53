// SPDX-License-Identifier: MIT
#pragma once
// Helpers of the CPU backend tests: per-process scratch directories and hand-made files.
#include <sys/wait.h>

#include <cstdlib>
#include <unistd.h>

#include <cstdint>
#include <filesystem>
#include <fstream>
#include <string>
#include <string_view>

namespace mdlm::test {

//! A fresh, empty directory unique to this process and `name` (removed first if it exists).
inline std::filesystem::path scratch_dir(std::string_view name) {
  const auto dir = std::filesystem::temp_directory_path() /
                   ("mdlm-test-cpu-" + std::to_string(::getpid()) + "-" + std::string(name));
  std::filesystem::remove_all(dir);
  std::filesystem::create_directories(dir);
  return dir;
}

inline void write_file(const std::filesystem::path& p, std::string_view bytes) {
  std::ofstream f(p, std::ios::binary | std::ios::trunc);
  f.write(bytes.data(), static_cast<std::streamsize>(bytes.size()));
}

inline std::string read_file(const std::filesystem::path& p) {
  std::ifstream f(p, std::ios::binary);
  return {std::istreambuf_iterator<char>(f), std::istreambuf_iterator<char>()};
}

//! A safetensors image: 8-byte little-endian length of `header`, `header`, then `data`.
inline std::string safetensors_image(std::string_view header, std::string_view data, std::uint64_t declared_length) {
  std::string out(8, '\0');
  for (int i = 0; i < 8; ++i) out[static_cast<std::size_t>(i)] = static_cast<char>((declared_length >> (8 * i)) & 0xFFu);
  out.append(header);
  out.append(data);
  return out;
}
inline std::string safetensors_image(std::string_view header, std::string_view data) {
  return safetensors_image(header, data, header.size());
}

//! FNV-1a 64 of a file's bytes, as tests/golden/make_goldens.py computes it.
inline std::string fnv1a64_hex(const std::filesystem::path& p) {
  std::uint64_t h = 0xCBF29CE484222325ull;
  for (unsigned char c : read_file(p)) h = (h ^ c) * 0x100000001B3ull;
  char buf[17];
  static constexpr char digits[] = "0123456789abcdef";
  for (int i = 15; i >= 0; --i) {
    buf[i] = digits[h & 0xFu];
    h >>= 4;
  }
  buf[16] = '\0';
  return buf;
}

struct tool_result {
  int rc = -1;
  std::string out, err;
};

//! Runs `tool args` (one OpenMP thread) with stdout / stderr captured in files of `dir`; `shell_prefix`
//! runs first in the same shell (e.g. "ulimit -v 600000;").
inline tool_result run_tool(const std::string& tool, const std::filesystem::path& dir, const std::string& args,
                            const std::string& shell_prefix = {}) {
  const auto out = dir / "stdout.txt", err = dir / "stderr.txt";
  const std::string cmd = shell_prefix + " OMP_NUM_THREADS=1 '" + tool + "' " + args + " >'" + out.string() + "' 2>'" +
                          err.string() + "' </dev/null";
  const int status = std::system(cmd.c_str());
  return {WIFEXITED(status) ? WEXITSTATUS(status) : -1, read_file(out), read_file(err)};
}

}  // namespace mdlm::test
