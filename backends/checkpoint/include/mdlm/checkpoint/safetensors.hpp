// SPDX-License-Identifier: MIT
#pragma once
//! @file
//! Reading and writing the safetensors format (Hugging Face): an 8-byte little-endian header length
//! N, N bytes of UTF-8 JSON mapping every tensor name to `{"dtype", "shape", "data_offsets": [begin,
//! end)}` (offsets relative to the first byte after the header), an optional `"__metadata__"` object of
//! strings, then the raw little-endian tensor data. Files are memory-mapped; nothing is copied until a
//! tensor is converted to fp32.
//!
//! Every malformed input is reported as `mdlm::hf::checkpoint_error` (a `std::invalid_argument`)
//! whose message names the file and, where there is one, the tensor: truncated file, header length
//! beyond the file, malformed JSON, bad field types, unsupported dtype, size / shape mismatch,
//! overlapping or out-of-bounds data offsets, duplicate names.

#include <cstddef>
#include <cstdint>
#include <filesystem>
#include <map>
#include <span>
#include <stdexcept>
#include <string>
#include <string_view>
#include <vector>

namespace mdlm::hf {

//! Error in a checkpoint file or directory. Derives from std::invalid_argument: a bad checkpoint is
//! bad input (the `mdlm` tool exits with code 2 on it).
class checkpoint_error : public std::invalid_argument {
 public:
  using std::invalid_argument::invalid_argument;
};

//! Element types the backend reads (the safetensors names are "BF16", "F16", "F32").
enum class dtype { bf16, f16, f32 };

//! The safetensors spelling of `t` ("BF16", "F16", "F32").
[[nodiscard]] std::string_view dtype_name(dtype t) noexcept;
//! Bytes per element of `t`.
[[nodiscard]] std::size_t dtype_size(dtype t) noexcept;

//! One entry of a safetensors header.
struct tensor_info {
  std::string name;                    //!< tensor name, e.g. "model.transformer.wte.weight"
  hf::dtype type = dtype::f32;        //!< element type in the file
  std::vector<std::uint64_t> shape;    //!< dimensions, outermost first (row-major); {} is a scalar
  std::uint64_t begin = 0;             //!< first byte, relative to the start of the data section
  std::uint64_t end = 0;               //!< one past the last byte

  //! Number of elements (product of `shape`; 1 for a scalar).
  [[nodiscard]] std::uint64_t numel() const noexcept;
};

//! A parsed and validated safetensors header.
struct safetensors_header {
  std::uint64_t header_size = 0;                  //!< N, the JSON length in bytes
  std::uint64_t data_size = 0;                    //!< bytes after the header (file size - 8 - N)
  std::vector<tensor_info> tensors;               //!< every tensor, sorted by name
  std::map<std::string, std::string> metadata;    //!< the "__metadata__" strings

  //! The tensor called `name`, or nullptr.
  [[nodiscard]] const tensor_info* find(std::string_view name) const noexcept;
};

//! Largest header accepted (the reference implementation's limit): 100,000,000 bytes.
inline constexpr std::uint64_t max_header_size = 100'000'000;

//! Parses and validates the header of a complete safetensors file image `file`. `label` (usually
//! the path) starts every error message. Checks: the 8-byte length fits, N <= max_header_size and
//! 8 + N <= file size, the JSON is an object of objects with a supported dtype, a shape of
//! non-negative integers, two non-negative integer data_offsets with begin <= end, end - begin =
//! numel * dtype size (no overflow), end <= data size, no two tensors' byte ranges overlap, no name
//! appears twice. Throws checkpoint_error otherwise. Never reads outside `file`.
[[nodiscard]] safetensors_header parse_safetensors(std::span<const std::byte> file, std::string_view label);

//! bf16 bits -> fp32 (exact: bf16 is the upper half of an fp32).
[[nodiscard]] float bf16_to_f32(std::uint16_t bits) noexcept;
//! fp32 -> bf16 bits, rounding to nearest with ties to even; NaN stays a (quiet) NaN.
[[nodiscard]] std::uint16_t f32_to_bf16(float x) noexcept;
//! fp32 -> IEEE binary16 bits, rounding to nearest with ties to even (overflow to inf, NaN kept).
[[nodiscard]] std::uint16_t f32_to_f16(float x) noexcept;
//! IEEE binary16 bits -> fp32 (exact, subnormals, infinities and NaN included).
[[nodiscard]] float f16_to_f32(std::uint16_t bits) noexcept;

//! Converts `src` (little-endian elements of type `t`, any alignment) to fp32 in `dst`.
//! Precondition: `src.size() == dst.size() * dtype_size(t)`.
void convert_to_f32(dtype t, std::span<const std::byte> src, std::span<float> dst) noexcept;

//! A read-only memory-mapped safetensors file with its validated header. Move-only.
class safetensors_file {
 public:
  //! Maps and validates `path`; throws checkpoint_error naming the file on any problem (missing,
  //! not a regular file, empty, truncated, malformed header).
  explicit safetensors_file(const std::filesystem::path& path);
  ~safetensors_file();
  safetensors_file(safetensors_file&& other) noexcept;
  safetensors_file& operator=(safetensors_file&& other) noexcept;
  safetensors_file(const safetensors_file&) = delete;
  safetensors_file& operator=(const safetensors_file&) = delete;

  [[nodiscard]] const std::filesystem::path& path() const noexcept { return path_; }
  [[nodiscard]] const safetensors_header& header() const noexcept { return header_; }

  //! The raw bytes of tensor `t` (an entry of `header().tensors`).
  [[nodiscard]] std::span<const std::byte> bytes(const tensor_info& t) const noexcept;

  //! Converts tensor `name` to fp32 into `out`; throws checkpoint_error when the file has no such
  //! tensor or `out.size()` differs from its element count.
  void read_f32(std::string_view name, std::span<float> out) const;

  //! Tells the kernel that the pages wholly inside tensor `t`'s bytes are no longer needed by this
  //! process (madvise MADV_DONTNEED on a read-only mapping: they leave the resident set and stay in
  //! the page cache; a later read maps them again). A loader calls it after copying a tensor, so
  //! the file's pages do not count twice in the peak resident memory. Never fails.
  void release(const tensor_info& t) const noexcept;

 private:
  std::filesystem::path path_;
  const std::byte* data_ = nullptr;  // start of the mapping
  std::size_t size_ = 0;             // mapping length (file size)
  safetensors_header header_;
};

//! One tensor to write: name, shape and fp32 values (row-major, numel(shape) of them).
struct tensor_view {
  std::string name;
  std::vector<std::uint64_t> shape;
  std::span<const float> values;
};

//! Writes `tensors` to `path` as a safetensors file with every tensor stored as `type` (bf16 with
//! round-to-nearest-even; F16 likewise; F32 exact). Tensors are laid out in name order, the header padded with spaces to a
//! multiple of 8 bytes, `"__metadata__": {"format": "pt"}`. Throws std::invalid_argument on a shape /
//! size mismatch or a duplicate name, std::runtime_error when the file cannot be written.
void write_safetensors(const std::filesystem::path& path, std::span<const tensor_view> tensors,
                       dtype type = dtype::bf16);

}  // namespace mdlm::hf
