// SPDX-License-Identifier: MIT
#include "mdlm/checkpoint/safetensors.hpp"

#include <fcntl.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <bit>
#include <cerrno>
#include <cmath>
#include <cstring>
#include <fstream>
#include <nlohmann/json.hpp>
#include <set>
#include <utility>

#include "mdlm/detail/errors.hpp"
#include "parse_support.hpp"

namespace mdlm::hf {

namespace {

using json = nlohmann::json;

using detail::printable;

template <class... Parts>
[[noreturn]] void fail(std::string_view label, Parts&&... parts) {
  throw checkpoint_error(printable(mdlm::detail::concat(label, ": ", std::forward<Parts>(parts)...)));
}

std::uint64_t read_le64(const std::byte* p) noexcept {
  std::uint64_t v = 0;
  for (int i = 7; i >= 0; --i) v = (v << 8) | static_cast<std::uint64_t>(p[i]);
  return v;
}

std::uint16_t read_le16(const std::byte* p) noexcept {
  return static_cast<std::uint16_t>(static_cast<unsigned>(p[0]) | (static_cast<unsigned>(p[1]) << 8));
}

// Shapes in messages: [3, 4].
std::string shape_string(const std::vector<std::uint64_t>& shape) {
  std::string s = "[";
  for (std::size_t i = 0; i < shape.size(); ++i) s += (i ? ", " : "") + std::to_string(shape[i]);
  return s + "]";
}

std::uint64_t json_u64(const json& v, std::string_view label, const std::string& tensor, const char* field) {
  if (!v.is_number_unsigned()) fail(label, "tensor ", tensor, ": ", field, " entry ", v.dump(), " is not a non-negative integer");
  return v.get<std::uint64_t>();
}

}  // namespace

std::string_view dtype_name(dtype t) noexcept {
  switch (t) {
    case dtype::bf16: return "BF16";
    case dtype::f16: return "F16";
    case dtype::f32: return "F32";
  }
  return "?";
}

std::size_t dtype_size(dtype t) noexcept { return t == dtype::f32 ? 4 : 2; }

std::uint64_t tensor_info::numel() const noexcept {
  std::uint64_t n = 1;
  for (auto d : shape) n *= d;
  return n;
}

const tensor_info* safetensors_header::find(std::string_view name) const noexcept {
  auto it = std::lower_bound(tensors.begin(), tensors.end(), name,
                             [](const tensor_info& t, std::string_view n) { return t.name < n; });
  return it != tensors.end() && it->name == name ? &*it : nullptr;
}

safetensors_header parse_safetensors(std::span<const std::byte> file, std::string_view label) {
  if (file.size() < 8) fail(label, "truncated file: ", file.size(), " bytes, shorter than the 8-byte header length");
  safetensors_header h;
  h.header_size = read_le64(file.data());
  if (h.header_size > max_header_size)
    fail(label, "header length ", h.header_size, " exceeds the limit of ", max_header_size, " bytes");
  if (h.header_size > file.size() - 8)
    fail(label, "header length ", h.header_size, " goes beyond the file (", file.size(),
         " bytes): the file is truncated or not a safetensors file");
  h.data_size = file.size() - 8 - h.header_size;
  const char* text = reinterpret_cast<const char*>(file.data() + 8);

  // The parser callback rejects duplicate top-level names (nlohmann would silently keep the last)
  // and nesting deeper than a valid header needs, before any value is built.
  std::set<std::string> seen;
  std::string duplicate;
  bool too_deep = false;
  const json::parser_callback_t cb = [&](int depth, json::parse_event_t event, json& parsed) {
    if (depth > 3) too_deep = true;
    if (event == json::parse_event_t::key && depth == 1 && parsed.is_string()) {
      if (!seen.insert(parsed.get<std::string>()).second && duplicate.empty()) duplicate = parsed.get<std::string>();
    }
    return !too_deep;
  };
  json doc;
  try {
    doc = json::parse(text, text + h.header_size, cb);
  } catch (const json::exception& e) {
    fail(label, "malformed JSON header: ", e.what());
  }
  if (too_deep) fail(label, "malformed header: nesting deeper than a safetensors header allows");
  if (!duplicate.empty()) fail(label, "tensor ", duplicate, " appears twice in the header");
  if (!doc.is_object()) fail(label, "malformed header: the JSON is not an object");

  for (auto it = doc.begin(); it != doc.end(); ++it) {
    const std::string& name = it.key();
    const json& v = it.value();
    if (name == "__metadata__") {
      if (!v.is_object()) fail(label, "__metadata__ is not an object");
      for (auto m = v.begin(); m != v.end(); ++m) {
        if (!m.value().is_string()) fail(label, "__metadata__ entry ", m.key(), " is not a string");
        h.metadata.emplace(m.key(), m.value().get<std::string>());
      }
      continue;
    }
    if (!v.is_object()) fail(label, "tensor ", name, ": entry is not an object");
    tensor_info t;
    t.name = name;
    const auto dt = v.find("dtype");
    const auto sh = v.find("shape");
    const auto off = v.find("data_offsets");
    if (dt == v.end() || !dt->is_string()) fail(label, "tensor ", name, ": missing or non-string dtype");
    const auto dts = dt->get<std::string>();
    if (dts == "BF16") {
      t.type = dtype::bf16;
    } else if (dts == "F16") {
      t.type = dtype::f16;
    } else if (dts == "F32") {
      t.type = dtype::f32;
    } else {
      fail(label, "tensor ", name, ": unsupported dtype ", dts, " (supported: BF16, F16, F32)");
    }
    if (sh == v.end() || !sh->is_array()) fail(label, "tensor ", name, ": missing or non-array shape");
    std::uint64_t numel = 1;
    bool overflow = false;
    for (const auto& d : *sh) {
      t.shape.push_back(json_u64(d, label, name, "shape"));
      overflow = overflow || __builtin_mul_overflow(numel, t.shape.back(), &numel);
    }
    std::uint64_t bytes = 0;
    overflow = overflow || __builtin_mul_overflow(numel, std::uint64_t{dtype_size(t.type)}, &bytes);
    if (overflow) fail(label, "tensor ", name, ": shape ", shape_string(t.shape), " is too large");
    if (off == v.end() || !off->is_array() || off->size() != 2)
      fail(label, "tensor ", name, ": data_offsets must be an array of two integers");
    t.begin = json_u64((*off)[0], label, name, "data_offsets");
    t.end = json_u64((*off)[1], label, name, "data_offsets");
    if (t.begin > t.end) fail(label, "tensor ", name, ": data_offsets [", t.begin, ", ", t.end, ") are reversed");
    if (t.end > h.data_size)
      fail(label, "tensor ", name, ": data_offsets [", t.begin, ", ", t.end, ") lie beyond the end of the data (",
           h.data_size, " bytes): the file is truncated or the offsets are out of bounds");
    if (t.end - t.begin != bytes)
      fail(label, "tensor ", name, ": data_offsets [", t.begin, ", ", t.end, ") hold ", t.end - t.begin,
           " bytes but shape ", shape_string(t.shape), " of ", dts, " needs ", bytes);
    h.tensors.push_back(std::move(t));
  }

  // Overlap check on byte ranges (empty tensors occupy nothing).
  std::vector<const tensor_info*> by_offset;
  for (const auto& t : h.tensors)
    if (t.end > t.begin) by_offset.push_back(&t);
  std::sort(by_offset.begin(), by_offset.end(),
            [](const tensor_info* a, const tensor_info* b) { return a->begin < b->begin; });
  for (std::size_t i = 1; i < by_offset.size(); ++i) {
    if (by_offset[i]->begin < by_offset[i - 1]->end)
      fail(label, "tensors ", by_offset[i - 1]->name, " [", by_offset[i - 1]->begin, ", ", by_offset[i - 1]->end,
           ") and ", by_offset[i]->name, " [", by_offset[i]->begin, ", ", by_offset[i]->end, ") overlap");
  }
  std::sort(h.tensors.begin(), h.tensors.end(), [](const tensor_info& a, const tensor_info& b) { return a.name < b.name; });
  return h;
}

float bf16_to_f32(std::uint16_t bits) noexcept { return std::bit_cast<float>(std::uint32_t{bits} << 16); }

std::uint16_t f32_to_bf16(float x) noexcept {
  const auto u = std::bit_cast<std::uint32_t>(x);
  if ((u & 0x7FFFFFFFu) > 0x7F800000u) return static_cast<std::uint16_t>((u >> 16) | 0x40u);  // quiet NaN
  // Round to nearest, ties to even: add 0x7FFF plus the lowest kept bit, then truncate.
  const std::uint32_t rounding = 0x7FFFu + ((u >> 16) & 1u);
  return static_cast<std::uint16_t>((u + rounding) >> 16);
}

std::uint16_t f32_to_f16(float x) noexcept {
  const auto u = std::bit_cast<std::uint32_t>(x);
  const auto sign = static_cast<std::uint16_t>((u >> 16) & 0x8000u);
  const std::uint32_t a = u & 0x7FFFFFFFu;
  if (a > 0x7F800000u) return static_cast<std::uint16_t>(sign | 0x7E00u);   // NaN
  if (a >= 0x477FF000u) return static_cast<std::uint16_t>(sign | 0x7C00u);  // >= 65520 rounds to inf
  if (a < 0x38800000u) {
    // Below 2^-14: a binary16 subnormal, in units of 2^-24. Scaling by 2^24 is exact and nearbyint
    // rounds to nearest even in the default mode; 1024 units is the smallest normal, encoded alike.
    const float units = std::nearbyint(std::bit_cast<float>(a) * 16777216.0f);
    return static_cast<std::uint16_t>(sign | static_cast<std::uint16_t>(units));
  }
  // Normal: re-bias the exponent (127 -> 15), round the 13 dropped mantissa bits to nearest even.
  const std::uint32_t r = a - (112u << 23);
  return static_cast<std::uint16_t>(sign | ((r + 0xFFFu + ((r >> 13) & 1u)) >> 13));
}

float f16_to_f32(std::uint16_t bits) noexcept {
  const std::uint32_t sign = static_cast<std::uint32_t>(bits & 0x8000u) << 16;
  std::uint32_t exp = (bits >> 10) & 0x1Fu;
  std::uint32_t man = bits & 0x3FFu;
  if (exp == 0x1F) return std::bit_cast<float>(sign | 0x7F800000u | (man << 13));  // inf / NaN
  if (exp == 0) {
    if (man == 0) return std::bit_cast<float>(sign);
    // Subnormal: normalise the mantissa into an fp32 normal.
    exp = 127 - 15 + 1;
    while ((man & 0x400u) == 0) {
      man <<= 1;
      --exp;
    }
    man &= 0x3FFu;
    return std::bit_cast<float>(sign | (exp << 23) | (man << 13));
  }
  return std::bit_cast<float>(sign | ((exp + 127 - 15) << 23) | (man << 13));
}

void convert_to_f32(dtype t, std::span<const std::byte> src, std::span<float> dst) noexcept {
  const std::byte* p = src.data();
  switch (t) {
    case dtype::bf16:
      for (std::size_t i = 0; i < dst.size(); ++i) dst[i] = bf16_to_f32(read_le16(p + 2 * i));
      break;
    case dtype::f16:
      for (std::size_t i = 0; i < dst.size(); ++i) dst[i] = f16_to_f32(read_le16(p + 2 * i));
      break;
    case dtype::f32:
      if constexpr (std::endian::native == std::endian::little) {
        if (!dst.empty()) std::memcpy(dst.data(), p, dst.size() * sizeof(float));
      } else {
        for (std::size_t i = 0; i < dst.size(); ++i) {
          std::uint32_t u = 0;
          for (int b = 3; b >= 0; --b) u = (u << 8) | static_cast<std::uint32_t>(p[4 * i + static_cast<std::size_t>(b)]);
          dst[i] = std::bit_cast<float>(u);
        }
      }
      break;
  }
}

// ---------------------------------------------------------------------------------------------------

safetensors_file::safetensors_file(const std::filesystem::path& path) : path_(path) {
  const std::string label = path.string();
  // stat before open: opening a FIFO for reading blocks until a writer appears.
  struct stat pre {};
  if (::stat(path.c_str(), &pre) == 0 && !S_ISREG(pre.st_mode)) fail(label, "not a regular file");
  const int fd = ::open(path.c_str(), O_RDONLY | O_CLOEXEC | O_NONBLOCK);
  if (fd < 0) fail(label, "cannot open: ", std::strerror(errno));
  struct stat st {};
  if (::fstat(fd, &st) != 0 || !S_ISREG(st.st_mode)) {
    ::close(fd);
    fail(label, "not a regular file");
  }
  size_ = static_cast<std::size_t>(st.st_size);
  if (size_ < 8) {
    ::close(fd);
    fail(label, "truncated file: ", size_, " bytes, shorter than the 8-byte header length");
  }
  void* m = ::mmap(nullptr, size_, PROT_READ, MAP_PRIVATE, fd, 0);
  ::close(fd);
  if (m == MAP_FAILED) fail(label, "cannot map: ", std::strerror(errno));
  data_ = static_cast<const std::byte*>(m);
  try {
    header_ = parse_safetensors({data_, size_}, label);
  } catch (...) {
    ::munmap(const_cast<std::byte*>(data_), size_);
    data_ = nullptr;
    throw;
  }
}

safetensors_file::~safetensors_file() {
  if (data_ != nullptr) ::munmap(const_cast<std::byte*>(data_), size_);
}

safetensors_file::safetensors_file(safetensors_file&& other) noexcept
    : path_(std::move(other.path_)),
      data_(std::exchange(other.data_, nullptr)),
      size_(std::exchange(other.size_, 0)),
      header_(std::move(other.header_)) {}

safetensors_file& safetensors_file::operator=(safetensors_file&& other) noexcept {
  if (this != &other) {
    if (data_ != nullptr) ::munmap(const_cast<std::byte*>(data_), size_);
    path_ = std::move(other.path_);
    data_ = std::exchange(other.data_, nullptr);
    size_ = std::exchange(other.size_, 0);
    header_ = std::move(other.header_);
  }
  return *this;
}

std::span<const std::byte> safetensors_file::bytes(const tensor_info& t) const noexcept {
  return {data_ + 8 + header_.header_size + t.begin, static_cast<std::size_t>(t.end - t.begin)};
}

void safetensors_file::release(const tensor_info& t) const noexcept {
  const auto page = static_cast<std::uintptr_t>(::sysconf(_SC_PAGESIZE));
  const auto first = reinterpret_cast<std::uintptr_t>(data_ + 8 + header_.header_size + t.begin);
  const auto last = reinterpret_cast<std::uintptr_t>(data_ + 8 + header_.header_size + t.end);
  const std::uintptr_t begin = (first + page - 1) / page * page, end = last / page * page;
  if (end > begin) (void)::madvise(reinterpret_cast<void*>(begin), end - begin, MADV_DONTNEED);
}

void safetensors_file::read_f32(std::string_view name, std::span<float> out) const {
  const tensor_info* t = header_.find(name);
  if (t == nullptr) fail(path_.string(), "no tensor ", name);
  if (out.size() != t->numel())
    fail(path_.string(), "tensor ", name, " has ", t->numel(), " elements, the destination holds ", out.size());
  convert_to_f32(t->type, bytes(*t), out);
}

// ---------------------------------------------------------------------------------------------------

void write_safetensors(const std::filesystem::path& path, std::span<const tensor_view> tensors, dtype type) {
  std::vector<const tensor_view*> order;
  for (const auto& t : tensors) order.push_back(&t);
  std::sort(order.begin(), order.end(), [](const tensor_view* a, const tensor_view* b) { return a->name < b->name; });
  json header = json::object();
  header["__metadata__"] = {{"format", "pt"}};
  std::uint64_t offset = 0;
  for (std::size_t i = 0; i < order.size(); ++i) {
    const auto& t = *order[i];
    mdlm::detail::require(i == 0 || order[i - 1]->name != t.name, "write_safetensors: tensor ", t.name, " given twice");
    std::uint64_t n = 1;
    for (auto d : t.shape) n *= d;
    mdlm::detail::require(n == t.values.size(), "write_safetensors: tensor ", t.name, " has shape ",
                          shape_string(t.shape), " but ", t.values.size(), " values");
    const std::uint64_t bytes = n * dtype_size(type);
    header[t.name] = {{"dtype", std::string(dtype_name(type))}, {"shape", t.shape}, {"data_offsets", {offset, offset + bytes}}};
    offset += bytes;
  }
  std::string text = header.dump();
  text.append((8 - text.size() % 8) % 8, ' ');  // data starts 8-byte aligned, as the reference writer pads

  std::ofstream f(path, std::ios::binary | std::ios::trunc);
  if (!f) throw std::runtime_error(mdlm::detail::concat(path.string(), ": cannot open for writing"));
  std::byte len[8];
  for (int i = 0; i < 8; ++i) len[i] = static_cast<std::byte>((text.size() >> (8 * i)) & 0xFFu);
  f.write(reinterpret_cast<const char*>(len), 8);
  f.write(text.data(), static_cast<std::streamsize>(text.size()));
  std::vector<unsigned char> buf;
  for (const auto* t : order) {
    buf.clear();
    for (float x : t->values) {
      std::uint32_t u = 0;
      int nbytes = 4;
      if (type == dtype::bf16) {
        u = f32_to_bf16(x);
        nbytes = 2;
      } else if (type == dtype::f16) {
        u = f32_to_f16(x);
        nbytes = 2;
      } else {
        u = std::bit_cast<std::uint32_t>(x);
      }
      for (int b = 0; b < nbytes; ++b) buf.push_back(static_cast<unsigned char>((u >> (8 * b)) & 0xFFu));
    }
    f.write(reinterpret_cast<const char*>(buf.data()), static_cast<std::streamsize>(buf.size()));
  }
  if (!f) throw std::runtime_error(mdlm::detail::concat(path.string(), ": write failed"));
}

}  // namespace mdlm::hf
