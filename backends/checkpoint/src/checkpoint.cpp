// SPDX-License-Identifier: MIT
#include "mdlm/checkpoint/checkpoint.hpp"

#include <fstream>
#include <nlohmann/json.hpp>
#include <set>
#include <sstream>

#include "mdlm/detail/errors.hpp"
#include "parse_support.hpp"

namespace mdlm::hf {

namespace {

using json = nlohmann::json;

template <class... Parts>
[[noreturn]] void fail(const std::filesystem::path& where, Parts&&... parts) {
  throw checkpoint_error(detail::printable(mdlm::detail::concat(where.string(), ": ", std::forward<Parts>(parts)...)));
}

std::string shape_string(const std::vector<std::uint64_t>& shape) {
  std::string s = "[";
  for (std::size_t i = 0; i < shape.size(); ++i) s += (i ? ", " : "") + std::to_string(shape[i]);
  return s + "]";
}

std::string read_index_text(const std::filesystem::path& index_path) {
  std::error_code ec;
  if (!std::filesystem::is_regular_file(index_path, ec)) fail(index_path, "not a regular file");
  constexpr std::uintmax_t max_index_bytes = std::uintmax_t{64} << 20;  // published indexes: < 100 KB
  if (std::filesystem::file_size(index_path, ec) > max_index_bytes)
    fail(index_path, "larger than ", max_index_bytes, " bytes");
  std::ifstream f(index_path, std::ios::binary);
  if (!f) fail(index_path, "cannot open");
  std::ostringstream os;
  os << f.rdbuf();
  return os.str();
}

// The rule shared by `checkpoint::open` and `check_index_metadata`: a stated total_size must equal
// the bytes of the tensors the index lists (absent: nothing to check).
void check_total_size(const std::filesystem::path& index_path, const weight_index& index, std::uint64_t bytes,
                      std::string_view how) {
  if (index.total_size && *index.total_size != bytes)
    fail(index_path, "metadata.total_size = ", *index.total_size, " bytes, but ", how, " ", bytes, " bytes");
}

}  // namespace

weight_index parse_weight_index(std::string_view json_text, std::string_view label) {
  auto bad = [&](auto&&... parts) {
    throw checkpoint_error(
        detail::printable(mdlm::detail::concat(label, ": ", std::forward<decltype(parts)>(parts)...)));
  };
  const json j = detail::parse_json_strict(json_text, label);
  if (!j.is_object() || !j.contains("weight_map") || !j.at("weight_map").is_object()) bad("missing weight_map object");
  weight_index index;
  for (auto it = j.at("weight_map").begin(); it != j.at("weight_map").end(); ++it) {
    if (!it.value().is_string()) bad("weight_map entry ", it.key(), " is not a file name");
    const std::string file = it.value().get<std::string>();
    if (file.empty() || file.find('/') != std::string::npos || file == "." || file == "..")
      bad("weight_map entry ", it.key(), " names an invalid shard file \"", file, "\"");
    index.weight_map.emplace(it.key(), file);
  }
  if (j.contains("metadata")) {
    const json& m = j.at("metadata");
    if (!m.is_object() && !m.is_null()) bad("metadata = ", m.dump(), " is not an object");
    if (m.is_object() && m.contains("total_size") && !m.at("total_size").is_null()) {
      if (!m.at("total_size").is_number_unsigned())
        bad("metadata.total_size = ", m.at("total_size").dump(), " is not a non-negative integer byte count");
      index.total_size = m.at("total_size").get<std::uint64_t>();
    }
  }
  return index;
}

checkpoint checkpoint::open(const std::filesystem::path& dir, const checkpoint_options& options) {
  checkpoint c;
  c.dir_ = dir;
  c.config_ = read_model_config(dir);
  std::error_code ec;
  const auto index_path = dir / "model.safetensors.index.json";
  const auto single_path = dir / "model.safetensors";
  const bool sharded = std::filesystem::exists(index_path, ec);
  if (sharded) {
    const weight_index index = parse_weight_index(read_index_text(index_path), index_path.string());
    const auto& weight_map = index.weight_map;
    std::map<std::string, std::size_t> file_ids;
    for (const auto& [name, file] : weight_map) {
      if (file_ids.emplace(file, c.files_.size()).second) {
        if (!std::filesystem::exists(dir / file, ec))
          fail(dir / file, "missing shard file (the index maps tensor ", name, " to it)");
        c.files_.emplace_back(dir / file);
      }
    }
    for (const auto& [name, file] : weight_map) {
      const std::size_t id = file_ids.at(file);
      const tensor_info* t = c.files_[id].header().find(name);
      if (t == nullptr) fail(dir / file, "no tensor ", name, " although ", index_path.filename().string(), " maps it here");
      c.tensors_.emplace(name, entry{id, t});
    }
    for (std::size_t id = 0; id < c.files_.size(); ++id)
      for (const auto& t : c.files_[id].header().tensors)
        if (!weight_map.contains(t.name) && !options.allow_unexpected_tensors)
          fail(c.files_[id].path(), "tensor ", t.name, " is not listed in ", index_path.filename().string());
    std::uint64_t bytes = 0;
    for (const auto& [name, e] : c.tensors_) bytes += e.info->end - e.info->begin;
    check_total_size(index_path, index, bytes, "the tensors it lists hold");
  } else {
    if (!std::filesystem::exists(single_path, ec))
      fail(dir, "missing weights: neither model.safetensors nor model.safetensors.index.json exists");
    c.files_.emplace_back(single_path);
    for (const auto& t : c.files_[0].header().tensors) c.tensors_.emplace(t.name, entry{0, &t});
  }

  const auto expected = expected_tensors(c.config_);
  std::set<std::string, std::less<>> expected_names;
  for (const auto& spec : expected) {
    expected_names.insert(spec.name);
    const auto it = c.tensors_.find(spec.name);
    if (it == c.tensors_.end())
      fail(sharded ? index_path : single_path, "missing tensor ", spec.name, " (", architecture_name(c.config_.arch),
           " config.json implies shape ", shape_string(spec.shape), ")");
    if (it->second.info->shape != spec.shape)
      fail(c.files_[it->second.file].path(), "tensor ", spec.name, " has shape ", shape_string(it->second.info->shape),
           " but config.json implies ", shape_string(spec.shape));
  }
  if (!options.allow_unexpected_tensors) {
    for (const auto& [name, e] : c.tensors_)
      if (!expected_names.contains(name))
        fail(c.files_[e.file].path(), "unexpected tensor ", name, " (not implied by the ",
             architecture_name(c.config_.arch), " config.json; allow_unexpected_tensors accepts it)");
  }
  return c;
}

std::vector<std::string> checkpoint::tensor_names() const {
  std::vector<std::string> names;
  names.reserve(tensors_.size());
  for (const auto& kv : tensors_) names.push_back(kv.first);
  return names;
}

const checkpoint::entry& checkpoint::find(std::string_view name) const {
  const auto it = tensors_.find(name);
  if (it == tensors_.end()) fail(dir_, "no tensor ", name);
  return it->second;
}

const tensor_info& checkpoint::info(std::string_view name) const { return *find(name).info; }

const std::filesystem::path& checkpoint::file_of(std::string_view name) const { return files_[find(name).file].path(); }

void checkpoint::read_f32(std::string_view name, std::span<float> out) const {
  const entry& e = find(name);
  files_[e.file].read_f32(name, out);
}

std::span<const std::byte> checkpoint::bytes(std::string_view name) const {
  const entry& e = find(name);
  return files_[e.file].bytes(*e.info);
}

void checkpoint::release(std::string_view name) const noexcept {
  const auto it = tensors_.find(name);
  if (it != tensors_.end()) files_[it->second.file].release(*it->second.info);
}

index_report check_index_metadata(const std::filesystem::path& dir, std::size_t bytes_per_element) {
  const model_config cfg = read_model_config(dir);
  const auto index_path = dir / "model.safetensors.index.json";
  std::error_code ec;
  if (!std::filesystem::exists(index_path, ec)) fail(index_path, "missing file");
  index_report r;
  const weight_index index = parse_weight_index(read_index_text(index_path), index_path.string());
  const auto& weight_map = index.weight_map;
  r.total_size = index.total_size;
  std::set<std::string> shards;
  for (const auto& kv : weight_map) shards.insert(kv.second);
  r.shards = shards.size();
  r.tensors = weight_map.size();
  const auto expected = expected_tensors(cfg);
  std::set<std::string, std::less<>> expected_names;
  for (const auto& spec : expected) {
    expected_names.insert(spec.name);
    if (!weight_map.contains(spec.name))
      fail(index_path, "missing tensor ", spec.name, " (config.json implies shape ", shape_string(spec.shape), ")");
    std::uint64_t n = 1;
    for (auto d : spec.shape) n *= d;
    r.parameters += n;
  }
  for (const auto& kv : weight_map)
    if (!expected_names.contains(kv.first)) fail(index_path, "unexpected tensor ", kv.first, " (not implied by config.json)");
  check_total_size(index_path, index, r.parameters * bytes_per_element,
                   mdlm::detail::concat("the shapes implied by config.json hold ", r.parameters, " elements at ",
                                        bytes_per_element, " bytes each ="));
  return r;
}

}  // namespace mdlm::hf
