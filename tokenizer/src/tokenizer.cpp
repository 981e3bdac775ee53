// SPDX-License-Identifier: MIT
// The tokenizer pipeline: added tokens -> normalizer -> pre-tokenizer -> BPE -> post-processor, and
// the decoder chain. Semantics follow the Rust `tokenizers` crate (huggingface/tokenizers).
#include "mdlm/tokenizer/tokenizer.hpp"

#include <algorithm>
#include <array>
#include <cctype>
#include <exception>
#include <fstream>
#include <iterator>
#include <mutex>
#include <nlohmann/json.hpp>
#include <stdexcept>
#include <thread>
#include <unordered_map>
#include <utility>

#include "mdlm/detail/errors.hpp"
#include "unicode.hpp"

namespace mdlm::text {

namespace {

using json = nlohmann::json;
using detail::append_utf8;
using detail::match_scratch;
using detail::regex;
using mdlm::detail::concat;

// Token ids above this are rejected (real vocabularies have < 300k entries); keeps a malformed
// file from allocating gigabytes for its id table.
constexpr std::int64_t max_token_id = (1 << 24) - 1;

// FNV-1a: the keys (vocabulary entries, pre-tokenized words) are a few bytes long, where it beats
// the library's murmur hash.
struct string_hash {
  using is_transparent = void;
  std::size_t operator()(std::string_view s) const noexcept {
    std::uint64_t h = 14695981039346656037ull;
    for (char c : s) h = (h ^ static_cast<unsigned char>(c)) * 1099511628211ull;
    return static_cast<std::size_t>(h ^ (h >> 29));
  }
};
template <class V>
using string_map = std::unordered_map<std::string, V, string_hash, std::equal_to<>>;

// GPT-2's byte -> character table (`bytes_to_unicode`): printable Latin-1 bytes map to themselves,
// the other 68 bytes to U+0100.. in order.
struct byte_table {
  std::array<char32_t, 256> to_char{};
  std::array<std::string, 256> to_utf8{};
  std::array<std::array<char, 2>, 256> utf8_bytes{};  // every character of the table is 1 or 2 UTF-8 bytes
  std::array<unsigned char, 256> utf8_length{};
  std::unordered_map<char32_t, unsigned char> to_byte;
  byte_table() {
    int n = 0;
    for (int b = 0; b < 256; ++b) {
      const bool printable = (b >= '!' && b <= '~') || (b >= 0xA1 && b <= 0xAC) || (b >= 0xAE && b <= 0xFF);
      to_char[static_cast<std::size_t>(b)] = printable ? static_cast<char32_t>(b) : static_cast<char32_t>(256 + n++);
    }
    for (int b = 0; b < 256; ++b) {
      append_utf8(to_utf8[static_cast<std::size_t>(b)], to_char[static_cast<std::size_t>(b)]);
      const std::string& u = to_utf8[static_cast<std::size_t>(b)];
      utf8_length[static_cast<std::size_t>(b)] = static_cast<unsigned char>(u.size());
      for (std::size_t k = 0; k < u.size(); ++k) utf8_bytes[static_cast<std::size_t>(b)][k] = u[k];
      to_byte[to_char[static_cast<std::size_t>(b)]] = static_cast<unsigned char>(b);
    }
  }
};
const byte_table& bytes() {
  static const byte_table t;
  return t;
}

// ------------------------------------------------------------------------------------------
// JSON access with messages that name the file and the key.
struct json_reader {
  std::string label;
  [[noreturn]] void fail(const std::string& path, const std::string& what) const {
    throw std::invalid_argument(concat(label, ": ", path, ": ", what));
  }
  const json& object(const json& j, const std::string& path) const {
    if (!j.is_object()) fail(path, "expected an object");
    return j;
  }
  const json* find(const json& obj, const char* key) const {
    auto it = obj.find(key);
    return it == obj.end() || it->is_null() ? nullptr : &*it;
  }
  const json& at(const json& obj, const char* key, const std::string& path) const {
    const json* v = find(obj, key);
    if (v == nullptr) fail(path, concat("missing key '", key, "'"));
    return *v;
  }
  std::string str(const json& j, const std::string& path) const {
    if (!j.is_string()) fail(path, "expected a string");
    return j.get<std::string>();
  }
  std::string str(const json& obj, const char* key, const std::string& path, std::string dflt) const {
    const json* v = find(obj, key);
    return v == nullptr ? dflt : str(*v, path + "." + key);
  }
  bool boolean(const json& obj, const char* key, const std::string& path, bool dflt) const {
    const json* v = find(obj, key);
    if (v == nullptr) return dflt;
    if (!v->is_boolean()) fail(path + "." + key, "expected true or false");
    return v->get<bool>();
  }
  std::int64_t integer(const json& j, const std::string& path, std::int64_t lo, std::int64_t hi) const {
    if (!j.is_number_integer()) fail(path, "expected an integer");
    const auto v = j.get<std::int64_t>();
    if (v < lo || v > hi) fail(path, concat(v, " is outside [", lo, ", ", hi, "]"));
    return v;
  }
  const json& array(const json& j, const std::string& path) const {
    if (!j.is_array()) fail(path, "expected an array");
    return j;
  }
  std::string type(const json& obj, const std::string& path) const { return str(at(object(obj, path), "type", path), path + ".type"); }
};

json parse_json(std::string_view text, const std::string& label) {
  try {
    return json::parse(text.begin(), text.end());
  } catch (const json::exception& e) {
    throw std::invalid_argument(concat(label, ": not valid JSON (", e.what(), ")"));
  }
}

// ------------------------------------------------------------------------------------------
// Pipeline components.

enum class split_behavior { removed, isolated, merged_with_previous, merged_with_next, contiguous };

struct pattern {
  std::shared_ptr<regex> re;
  std::string literal;  // when the JSON gave {"String": ...}
  bool is_literal = false;
};

pattern read_pattern(const json_reader& r, const json& p, const std::string& path) {
  r.object(p, path);
  pattern out;
  if (const json* s = r.find(p, "String")) {
    out.literal = r.str(*s, path + ".String");
    out.is_literal = true;
    out.re = std::make_shared<regex>(out.literal, true);
  } else if (const json* re = r.find(p, "Regex")) {
    const std::string source = r.str(*re, path + ".Regex");
    try {
      out.re = std::make_shared<regex>(source, false);
    } catch (const std::invalid_argument& e) {
      r.fail(path + ".Regex", e.what());
    }
  } else {
    r.fail(path, "expected {\"String\": ...} or {\"Regex\": ...}");
  }
  return out;
}

struct normalizer_op {
  enum class kind { unicode, replace, prepend, strip, lowercase } k = kind::unicode;
  detail::normal_form form = detail::normal_form::nfc;
  pattern pat;
  std::string content;
  bool left = false, right = false;
};

enum class prepend_scheme { always, first, never };

struct pretok_op {
  enum class kind { split, byte_level, digits, metaspace } k = kind::split;
  pattern pat;
  split_behavior behavior = split_behavior::isolated;
  bool invert = false;
  bool add_prefix_space = false;
  bool use_regex = true;
  bool individual_digits = false;
  std::string replacement;
  prepend_scheme scheme = prepend_scheme::always;
  bool split = true;
};

struct decoder_op {
  enum class kind { byte_level, byte_fallback, fuse, replace, strip, metaspace } k = kind::byte_level;
  pattern pat;
  std::string content;
  std::size_t start = 0, stop = 0;
  std::string replacement;
  prepend_scheme scheme = prepend_scheme::always;
};

struct bpe_model {
  string_map<token_id> vocab;
  std::vector<std::string> tokens;  // by id ("" where the model has none)
  struct merge {
    std::uint32_t rank;
    token_id id;
  };
  std::unordered_map<std::uint64_t, merge> merges;
  token_id unk = no_token;
  bool fuse_unk = false, byte_fallback = false, ignore_merges = false;
  std::string prefix, suffix;  // continuing_subword_prefix, end_of_word_suffix
  std::array<token_id, 256> byte_tokens{};  // ids of "<0xXX>"
  std::vector<token_id> small_chars;         // id of each one-character token below U+0800
  static std::uint64_t key(token_id a, token_id b) noexcept {
    return (static_cast<std::uint64_t>(static_cast<std::uint32_t>(a)) << 32) | static_cast<std::uint32_t>(b);
  }
  token_id find(std::string_view s) const {
    auto it = vocab.find(s);
    return it == vocab.end() ? no_token : it->second;
  }
};

// Leftmost-longest matcher of added-token contents (a byte trie).
struct trie {
  struct node {
    std::vector<std::pair<unsigned char, std::int32_t>> next;
    std::int32_t token = -1;  // index into the added-token list
  };
  std::vector<node> nodes{1};
  std::array<bool, 256> first{};
  bool empty() const noexcept { return nodes.size() == 1; }
  void insert(std::string_view s, std::int32_t token) {
    if (s.empty()) return;
    std::int32_t at = 0;
    for (char ch : s) {
      const auto b = static_cast<unsigned char>(ch);
      auto& next = nodes[static_cast<std::size_t>(at)].next;
      auto it = std::find_if(next.begin(), next.end(), [b](const auto& e) { return e.first == b; });
      if (it == next.end()) {
        nodes.emplace_back();
        nodes[static_cast<std::size_t>(at)].next.emplace_back(b, static_cast<std::int32_t>(nodes.size() - 1));
        at = static_cast<std::int32_t>(nodes.size() - 1);
      } else {
        at = it->second;
      }
    }
    first[static_cast<unsigned char>(s[0])] = true;
    if (nodes[static_cast<std::size_t>(at)].token < 0) nodes[static_cast<std::size_t>(at)].token = token;
  }
  // Longest content starting at s[i]: its length (0 = none) and token index.
  std::size_t longest(std::string_view s, std::size_t i, std::int32_t& token) const noexcept {
    std::size_t best = 0;
    std::int32_t at = 0;
    for (std::size_t j = i; j < s.size(); ++j) {
      const auto b = static_cast<unsigned char>(s[j]);
      const auto& next = nodes[static_cast<std::size_t>(at)].next;
      auto it = std::find_if(next.begin(), next.end(), [b](const auto& e) { return e.first == b; });
      if (it == next.end()) break;
      at = it->second;
      if (nodes[static_cast<std::size_t>(at)].token >= 0) {
        best = j + 1 - i;
        token = nodes[static_cast<std::size_t>(at)].token;
      }
    }
    return best;
  }
};

struct segment {
  std::size_t begin, end;
  token_id id;  // no_token: ordinary text
};

// Word -> ids cache of one encoding thread: open addressing in a power-of-two table of slots
// that point into flat arrays of key bytes and ids (no node allocation, one probe per hit in the
// common case). Emptied when half full.
class word_cache {
 public:
  word_cache() : slots_(std::size_t{1} << 16) {}
  // The ids cached for `word` (hash `h`), or nullptr.
  const token_id* find(std::string_view word, std::uint64_t h, std::size_t& count) const noexcept {
    for (std::size_t i = h & mask();; i = (i + 1) & mask()) {
      const slot& s = slots_[i];
      if (s.hash == 0) return nullptr;
      if (s.hash == h && s.key_len == word.size() && keys_.compare(s.key_off, s.key_len, word) == 0) {
        count = s.ids_len;
        return ids_.data() + s.ids_off;
      }
    }
  }
  void insert(std::string_view word, std::uint64_t h, const token_id* ids, std::size_t count) {
    if (2 * size_ >= slots_.size()) clear();
    std::size_t i = h & mask();
    while (slots_[i].hash != 0) i = (i + 1) & mask();
    slots_[i] = {h, static_cast<std::uint32_t>(keys_.size()), static_cast<std::uint32_t>(word.size()),
                 static_cast<std::uint32_t>(ids_.size()), static_cast<std::uint32_t>(count)};
    keys_.append(word);
    ids_.insert(ids_.end(), ids, ids + count);
    ++size_;
  }
  static std::uint64_t hash(std::string_view s) noexcept {
    std::uint64_t h = 14695981039346656037ull;
    for (char c : s) h = (h ^ static_cast<unsigned char>(c)) * 1099511628211ull;
    h ^= h >> 29;
    return h == 0 ? 1 : h;  // 0 marks an empty slot
  }

 private:
  struct slot {
    std::uint64_t hash = 0;
    std::uint32_t key_off = 0, key_len = 0, ids_off = 0, ids_len = 0;
  };
  std::size_t mask() const noexcept { return slots_.size() - 1; }
  void clear() {
    std::fill(slots_.begin(), slots_.end(), slot{});
    keys_.clear();
    ids_.clear();
    size_ = 0;
  }
  std::vector<slot> slots_;
  std::string keys_;
  std::vector<token_id> ids_;
  std::size_t size_ = 0;
};

struct piece_list {
  std::string buf;
  std::vector<std::pair<std::uint32_t, std::uint32_t>> spans;  // offset, length into buf
};

}  // namespace

// Scratch of one encoding thread: regex match data, piece buffers, BPE work arrays and the word cache.
struct encoder_state {
  match_scratch scratch;
  piece_list cur, next;
  std::vector<std::pair<std::uint32_t, std::uint32_t>> spans;
  struct match {
    std::size_t b, e;
    bool is_match;
  };
  std::vector<match> matches;
  std::vector<segment> outer, inner;
  std::string tmp;
  struct symbol {
    token_id id;
    std::int32_t prev, next;
    bool alive;
  };
  std::vector<symbol> symbols;
  struct queued {
    std::uint32_t rank;
    std::int32_t pos;
    token_id id;
  };
  std::vector<queued> heap;
  word_cache cache;
};

struct tokenizer::impl {
  std::vector<normalizer_op> normalizers;
  std::vector<pretok_op> pretoks;
  bpe_model model;
  std::vector<token_id> post_prefix, post_suffix;
  std::vector<decoder_op> decoders;
  std::vector<added_token> added;
  std::vector<std::int32_t> added_index;  // by id: index into `added` or -1
  string_map<token_id> added_by_content;
  std::vector<char> special;  // by id: removed by skip_special_tokens
  trie raw_all, raw_plain, norm_all, norm_plain;  // *_plain: without the special tokens
  tokenizer_config cfg;
  std::size_t size = 0;
  std::shared_ptr<regex> gpt2;  // ByteLevel's own split regex (use_regex)
  mutable std::mutex state_mutex;
  mutable std::unique_ptr<encoder_state> state;

  void encode_into(std::string_view text, const encode_options& o, encoder_state& st, std::vector<token_id>& out) const;
  void split_added(const trie& t, std::string_view text, std::vector<segment>& out) const;
  std::string normalize(std::string_view s, encoder_state& st) const;
  void pre_tokenize(std::string_view s, bool first_section, encoder_state& st) const;
  void split_span(const pattern& p, split_behavior b, bool invert, std::string_view s, std::uint32_t base,
                  encoder_state& st) const;
  void bpe_word(std::string_view word, std::vector<token_id>& out, encoder_state& st) const;
  void merge_symbols(encoder_state& st) const;
};

namespace {

// ------------------------------------------------------------------------------------------
// Loading.

void read_normalizer(const json_reader& r, const json& j, const std::string& path, std::vector<normalizer_op>& out) {
  const std::string type = r.type(j, path);
  normalizer_op op;
  if (type == "Sequence") {
    const json& list = r.array(r.at(j, "normalizers", path), path + ".normalizers");
    for (std::size_t i = 0; i < list.size(); ++i)
      read_normalizer(r, list[i], concat(path, ".normalizers[", i, "]"), out);
    return;
  } else if (type == "NFC" || type == "NFD" || type == "NFKC" || type == "NFKD") {
    op.k = normalizer_op::kind::unicode;
    op.form = type == "NFC"    ? detail::normal_form::nfc
              : type == "NFD"  ? detail::normal_form::nfd
              : type == "NFKC" ? detail::normal_form::nfkc
                               : detail::normal_form::nfkd;
  } else if (type == "Replace") {
    op.k = normalizer_op::kind::replace;
    op.pat = read_pattern(r, r.at(j, "pattern", path), path + ".pattern");
    op.content = r.str(j, "content", path, "");
  } else if (type == "Prepend") {
    op.k = normalizer_op::kind::prepend;
    op.content = r.str(r.at(j, "prepend", path), path + ".prepend");
  } else if (type == "Strip") {
    op.k = normalizer_op::kind::strip;
    op.left = r.boolean(j, "strip_left", path, true);
    op.right = r.boolean(j, "strip_right", path, true);
  } else if (type == "Lowercase") {
    op.k = normalizer_op::kind::lowercase;
  } else {
    r.fail(path, concat("normalizer type '", type,
                        "' is not supported (supported: NFC, NFD, NFKC, NFKD, Replace, Prepend, Strip, Lowercase, Sequence)"));
  }
  out.push_back(std::move(op));
}

prepend_scheme read_scheme(const json_reader& r, const json& j, const std::string& path) {
  if (const json* s = r.find(j, "prepend_scheme")) {
    const std::string v = r.str(*s, path + ".prepend_scheme");
    if (v == "always") return prepend_scheme::always;
    if (v == "first") return prepend_scheme::first;
    if (v == "never") return prepend_scheme::never;
    r.fail(path + ".prepend_scheme", concat("'", v, "' is not always, first or never"));
  }
  return r.boolean(j, "add_prefix_space", path, true) ? prepend_scheme::always : prepend_scheme::never;
}

std::string read_replacement(const json_reader& r, const json& j, const std::string& path) {
  std::string rep = r.str(j, "replacement", path, "\xE2\x96\x81");  // U+2581
  char32_t cp = 0;
  if (rep.empty() || detail::utf8_decode(rep, 0, cp) != rep.size()) r.fail(path + ".replacement", "must be one character");
  return rep;
}

void read_pre_tokenizer(const json_reader& r, const json& j, const std::string& path, std::vector<pretok_op>& out) {
  const std::string type = r.type(j, path);
  pretok_op op;
  if (type == "Sequence") {
    const json& list = r.array(r.at(j, "pretokenizers", path), path + ".pretokenizers");
    for (std::size_t i = 0; i < list.size(); ++i)
      read_pre_tokenizer(r, list[i], concat(path, ".pretokenizers[", i, "]"), out);
    return;
  } else if (type == "Split") {
    op.k = pretok_op::kind::split;
    op.pat = read_pattern(r, r.at(j, "pattern", path), path + ".pattern");
    const std::string b = r.str(r.at(j, "behavior", path), path + ".behavior");
    static const std::pair<const char*, split_behavior> names[] = {
        {"Removed", split_behavior::removed},
        {"Isolated", split_behavior::isolated},
        {"MergedWithPrevious", split_behavior::merged_with_previous},
        {"MergedWithNext", split_behavior::merged_with_next},
        {"Contiguous", split_behavior::contiguous}};
    auto it = std::find_if(std::begin(names), std::end(names), [&](const auto& n) { return b == n.first; });
    if (it == std::end(names)) r.fail(path + ".behavior", concat("'", b, "' is not a split behavior"));
    op.behavior = it->second;
    op.invert = r.boolean(j, "invert", path, false);
  } else if (type == "ByteLevel") {
    op.k = pretok_op::kind::byte_level;
    op.add_prefix_space = r.boolean(j, "add_prefix_space", path, true);
    op.use_regex = r.boolean(j, "use_regex", path, true);
  } else if (type == "Digits") {
    op.k = pretok_op::kind::digits;
    op.individual_digits = r.boolean(j, "individual_digits", path, false);
  } else if (type == "Metaspace") {
    op.k = pretok_op::kind::metaspace;
    op.replacement = read_replacement(r, j, path);
    op.scheme = read_scheme(r, j, path);
    op.split = r.boolean(j, "split", path, true);
  } else {
    r.fail(path, concat("pre_tokenizer type '", type,
                        "' is not supported (supported: Split, ByteLevel, Digits, Metaspace, Sequence)"));
  }
  out.push_back(std::move(op));
}

void read_decoder(const json_reader& r, const json& j, const std::string& path, std::vector<decoder_op>& out) {
  const std::string type = r.type(j, path);
  decoder_op op;
  if (type == "Sequence") {
    const json& list = r.array(r.at(j, "decoders", path), path + ".decoders");
    for (std::size_t i = 0; i < list.size(); ++i) read_decoder(r, list[i], concat(path, ".decoders[", i, "]"), out);
    return;
  } else if (type == "ByteLevel") {
    op.k = decoder_op::kind::byte_level;
  } else if (type == "ByteFallback") {
    op.k = decoder_op::kind::byte_fallback;
  } else if (type == "Fuse") {
    op.k = decoder_op::kind::fuse;
  } else if (type == "Replace") {
    op.k = decoder_op::kind::replace;
    op.pat = read_pattern(r, r.at(j, "pattern", path), path + ".pattern");
    op.content = r.str(j, "content", path, "");
  } else if (type == "Strip") {
    op.k = decoder_op::kind::strip;
    op.content = r.str(r.at(j, "content", path), path + ".content");
    char32_t cp = 0;
    if (op.content.empty() || detail::utf8_decode(op.content, 0, cp) != op.content.size())
      r.fail(path + ".content", "must be one character");
    op.start = static_cast<std::size_t>(r.integer(r.at(j, "start", path), path + ".start", 0, 1 << 20));
    op.stop = static_cast<std::size_t>(r.integer(r.at(j, "stop", path), path + ".stop", 0, 1 << 20));
  } else if (type == "Metaspace") {
    op.k = decoder_op::kind::metaspace;
    op.replacement = read_replacement(r, j, path);
    op.scheme = read_scheme(r, j, path);
  } else {
    r.fail(path, concat("decoder type '", type,
                        "' is not supported (supported: ByteLevel, ByteFallback, Fuse, Replace, Strip, Metaspace, Sequence)"));
  }
  out.push_back(std::move(op));
}

// A post-processor as the special-token ids it puts before and after the sequence.
void read_post_processor(const json_reader& r, const json& j, const std::string& path, std::vector<token_id>& prefix,
                         std::vector<token_id>& suffix) {
  const std::string type = r.type(j, path);
  if (type == "ByteLevel") return;  // offsets only
  if (type == "Sequence") {
    const json& list = r.array(r.at(j, "processors", path), path + ".processors");
    for (std::size_t i = 0; i < list.size(); ++i) {
      std::vector<token_id> p, s;
      read_post_processor(r, list[i], concat(path, ".processors[", i, "]"), p, s);
      prefix.insert(prefix.begin(), p.begin(), p.end());
      suffix.insert(suffix.end(), s.begin(), s.end());
    }
    return;
  }
  if (type == "BertProcessing" || type == "RobertaProcessing") {
    const auto pair_id = [&](const char* key) {
      const json& p = r.array(r.at(j, key, path), path + "." + key);
      if (p.size() != 2) r.fail(path + "." + key, "expected [token, id]");
      return static_cast<token_id>(r.integer(p[1], concat(path, ".", key, "[1]"), 0, max_token_id));
    };
    prefix.push_back(pair_id("cls"));
    suffix.push_back(pair_id("sep"));
    return;
  }
  if (type == "TemplateProcessing") {
    const json& single = r.array(r.at(j, "single", path), path + ".single");
    const json& specials = r.object(r.at(j, "special_tokens", path), path + ".special_tokens");
    bool seen_a = false;
    for (std::size_t i = 0; i < single.size(); ++i) {
      const std::string ip = concat(path, ".single[", i, "]");
      r.object(single[i], ip);
      if (const json* s = r.find(single[i], "SpecialToken")) {
        const std::string name = r.str(r.at(r.object(*s, ip), "id", ip), ip + ".SpecialToken.id");
        const json* st = r.find(specials, name.c_str());
        if (st == nullptr) r.fail(path + ".special_tokens", concat("no entry for '", name, "'"));
        const json& ids = r.array(r.at(r.object(*st, path), "ids", path), concat(path, ".special_tokens.", name, ".ids"));
        for (const json& id : ids)
          (seen_a ? suffix : prefix).push_back(static_cast<token_id>(r.integer(id, path + ".special_tokens", 0, max_token_id)));
      } else if (const json* seq = r.find(single[i], "Sequence")) {
        const std::string id = r.str(r.at(r.object(*seq, ip), "id", ip), ip + ".Sequence.id");
        if (id != "A" || seen_a) r.fail(ip, "the single template must contain sequence A exactly once");
        seen_a = true;
      } else {
        r.fail(ip, "expected SpecialToken or Sequence");
      }
    }
    if (!seen_a) r.fail(path + ".single", "the single template has no sequence A");
    return;
  }
  r.fail(path, concat("post_processor type '", type,
                      "' is not supported (supported: ByteLevel, TemplateProcessing, BertProcessing, RobertaProcessing, Sequence)"));
}

void read_bpe(const json_reader& r, const json& m, bpe_model& model) {
  const std::string path = "model";
  r.object(m, path);
  if (const json* t = r.find(m, "type"); t != nullptr && r.str(*t, "model.type") != "BPE")
    r.fail("model.type", concat("model type '", t->get<std::string>(), "' is not supported (supported: BPE)"));
  if (const json* d = r.find(m, "dropout")) {
    if (!d->is_number() || d->get<double>() != 0.0) r.fail("model.dropout", "BPE dropout (random merges) is not supported; it must be null or 0");
  }
  const json& vocab = r.object(r.at(m, "vocab", path), "model.vocab");
  model.vocab.reserve(vocab.size());
  std::int64_t max_id = -1;
  for (auto it = vocab.begin(); it != vocab.end(); ++it) {
    const auto id = r.integer(it.value(), "model.vocab['" + it.key() + "']", 0, max_token_id);
    if (detail::first_invalid_utf8(it.key()) != std::string_view::npos) r.fail("model.vocab", "a token is not valid UTF-8");
    model.vocab[it.key()] = static_cast<token_id>(id);
    max_id = std::max(max_id, id);
  }
  model.tokens.assign(static_cast<std::size_t>(max_id + 1), std::string());
  for (const auto& [tok, id] : model.vocab) model.tokens[static_cast<std::size_t>(id)] = tok;
  if (const json* u = r.find(m, "unk_token")) {
    const std::string unk = r.str(*u, "model.unk_token");
    model.unk = model.find(unk);
    if (model.unk == no_token) r.fail("model.unk_token", concat("'", unk, "' is not in the vocabulary"));
  }
  model.fuse_unk = r.boolean(m, "fuse_unk", path, false);
  model.byte_fallback = r.boolean(m, "byte_fallback", path, false);
  model.ignore_merges = r.boolean(m, "ignore_merges", path, false);
  model.prefix = r.str(m, "continuing_subword_prefix", path, "");
  model.suffix = r.str(m, "end_of_word_suffix", path, "");
  for (int b = 0; b < 256; ++b) {
    static const char hex[] = "0123456789ABCDEF";
    const std::string name{'<', '0', 'x', hex[b >> 4], hex[b & 15], '>'};
    model.byte_tokens[static_cast<std::size_t>(b)] = model.find(name);
  }
  model.small_chars.assign(0x800, no_token);
  for (const auto& [tok, id] : model.vocab) {
    char32_t cp = 0;
    if (!tok.empty() && detail::utf8_decode(tok, 0, cp) == tok.size() && cp < 0x800) model.small_chars[cp] = id;
  }
  const json& merges = r.array(r.at(m, "merges", path), "model.merges");
  model.merges.reserve(merges.size());
  const std::size_t prefix_len = model.prefix.size();
  for (std::size_t rank = 0; rank < merges.size(); ++rank) {
    const json& e = merges[rank];
    std::string a, b;
    if (e.is_string()) {
      const std::string s = e.get<std::string>();
      const auto sp = s.find(' ');
      if (sp == std::string::npos || s.find(' ', sp + 1) != std::string::npos)
        r.fail(concat("model.merges[", rank, "]"), concat("'", s, "' is not two tokens separated by one space"));
      a = s.substr(0, sp);
      b = s.substr(sp + 1);
    } else if (e.is_array() && e.size() == 2 && e[0].is_string() && e[1].is_string()) {
      a = e[0].get<std::string>();
      b = e[1].get<std::string>();
    } else {
      r.fail(concat("model.merges[", rank, "]"), "expected \"a b\" or [\"a\", \"b\"]");
    }
    const token_id ia = model.find(a), ib = model.find(b);
    if (ia == no_token || ib == no_token)
      r.fail(concat("model.merges[", rank, "]"), concat("'", ia == no_token ? a : b, "' is not in the vocabulary"));
    // The merged token drops b's continuing-subword prefix (tokenizers' BPE builder).
    const std::string merged = a + (b.size() >= prefix_len && b.compare(0, prefix_len, model.prefix) == 0 ? b.substr(prefix_len) : b);
    const token_id im = model.find(merged);
    if (im == no_token) r.fail(concat("model.merges[", rank, "]"), concat("the merged token '", merged, "' is not in the vocabulary"));
    model.merges[bpe_model::key(ia, ib)] = {static_cast<std::uint32_t>(rank), im};
  }
}

added_token read_added(const json_reader& r, const json& a, const std::string& path, std::optional<token_id> id) {
  r.object(a, path);
  added_token t;
  t.content = r.str(r.at(a, "content", path), path + ".content");
  if (t.content.empty()) r.fail(path + ".content", "an added token cannot be empty");
  if (detail::first_invalid_utf8(t.content) != std::string_view::npos) r.fail(path + ".content", "not valid UTF-8");
  t.id = id ? *id : static_cast<token_id>(r.integer(r.at(a, "id", path), path + ".id", 0, max_token_id));
  t.special = r.boolean(a, "special", path, false);
  t.lstrip = r.boolean(a, "lstrip", path, false);
  t.rstrip = r.boolean(a, "rstrip", path, false);
  t.single_word = r.boolean(a, "single_word", path, false);
  t.normalized = r.boolean(a, "normalized", path, !t.special);
  return t;
}

std::string token_content(const json_reader& r, const json& v, const std::string& path) {
  if (v.is_string()) return v.get<std::string>();
  if (v.is_object()) return r.str(r.at(v, "content", path), path + ".content");
  r.fail(path, "expected a string or {\"content\": ...}");
}

void read_config(const json& c, const std::string& label, tokenizer_config& cfg, bool fill_only) {
  const json_reader r{label};
  r.object(c, "(top level)");
  const auto named = [&](const char* key, std::string& field) {
    if (fill_only && !field.empty()) return;
    if (const json* v = r.find(c, key)) field = token_content(r, *v, key);
  };
  named("bos_token", cfg.bos_token);
  named("eos_token", cfg.eos_token);
  named("pad_token", cfg.pad_token);
  named("unk_token", cfg.unk_token);
  named("mask_token", cfg.mask_token);
  if (const json* a = r.find(c, "additional_special_tokens"); a != nullptr && (!fill_only || cfg.additional_special_tokens.empty())) {
    r.array(*a, "additional_special_tokens");
    cfg.additional_special_tokens.clear();
    for (std::size_t i = 0; i < a->size(); ++i)
      cfg.additional_special_tokens.push_back(token_content(r, (*a)[i], concat("additional_special_tokens[", i, "]")));
  }
  if (fill_only) return;
  cfg.clean_up_tokenization_spaces = r.boolean(c, "clean_up_tokenization_spaces", "(top level)", true);
  if (const json* t = r.find(c, "chat_template")) {
    if (t->is_string()) {
      cfg.chat_template = t->get<std::string>();
    } else if (t->is_array()) {
      // [{"name": "default", "template": ...}, {"name": "tool_use", ...}]
      for (std::size_t i = 0; i < t->size(); ++i) {
        const std::string p = concat("chat_template[", i, "]");
        const json& e = r.object((*t)[i], p);
        if (r.str(r.at(e, "name", p), p + ".name") == "default") cfg.chat_template = r.str(r.at(e, "template", p), p + ".template");
      }
    } else {
      r.fail("chat_template", "expected a string or a list of {name, template}");
    }
  }
}

// Added tokens of tokenizer_config.json's added_tokens_decoder ({"id": {content, flags}}).
std::vector<added_token> config_added_tokens(const json& c, const std::string& label) {
  const json_reader r{label};
  std::vector<added_token> out;
  if (const json* d = r.find(c, "added_tokens_decoder")) {
    r.object(*d, "added_tokens_decoder");
    for (auto it = d->begin(); it != d->end(); ++it) {
      const std::string p = "added_tokens_decoder['" + it.key() + "']";
      std::size_t used = 0;
      long long id = -1;
      try {
        id = std::stoll(it.key(), &used);
      } catch (const std::exception&) {
        used = 0;
      }
      if (used != it.key().size() || id < 0 || id > max_token_id) r.fail(p, "the key is not a token id");
      out.push_back(read_added(r, it.value(), p, static_cast<token_id>(id)));
    }
  }
  std::sort(out.begin(), out.end(), [](const added_token& a, const added_token& b) { return a.id < b.id; });
  return out;
}

std::unique_ptr<tokenizer::impl> build(const json& t, const json* config, const std::string& label, const std::string& config_label) {
  const json_reader r{label};
  r.object(t, "(top level)");
  auto owner = std::make_unique<tokenizer::impl>();
  tokenizer::impl& im = *owner;
  if (config != nullptr) read_config(*config, config_label, im.cfg, false);
  if (const json* n = r.find(t, "normalizer")) read_normalizer(r, *n, "normalizer", im.normalizers);
  if (const json* p = r.find(t, "pre_tokenizer")) read_pre_tokenizer(r, *p, "pre_tokenizer", im.pretoks);
  read_bpe(r, r.at(t, "model", "(top level)"), im.model);
  if (const json* p = r.find(t, "post_processor")) read_post_processor(r, *p, "post_processor", im.post_prefix, im.post_suffix);
  if (const json* d = r.find(t, "decoder")) read_decoder(r, *d, "decoder", im.decoders);
  for (const auto& op : im.pretoks)
    if (op.k == pretok_op::kind::byte_level && op.use_regex && !im.gpt2)
      im.gpt2 = std::make_shared<regex>(R"re('s|'t|'re|'ve|'m|'ll|'d| ?\p{L}+| ?\p{N}+| ?[^\s\p{L}\p{N}]+|\s+(?!\S)|\s+)re", false);

  if (const json* a = r.find(t, "added_tokens")) {
    r.array(*a, "added_tokens");
    for (std::size_t i = 0; i < a->size(); ++i) im.added.push_back(read_added(r, (*a)[i], concat("added_tokens[", i, "]"), std::nullopt));
  }
  // transformers also registers the tokens of tokenizer_config.json that tokenizer.json lacks.
  if (config != nullptr) {
    for (auto& extra : config_added_tokens(*config, config_label)) {
      const bool known = std::any_of(im.added.begin(), im.added.end(), [&](const added_token& x) { return x.id == extra.id; });
      if (!known) im.added.push_back(std::move(extra));
    }
  }
  std::size_t size = im.model.tokens.size();
  for (const auto& a : im.added) size = std::max(size, static_cast<std::size_t>(a.id) + 1);
  im.size = size;
  im.added_index.assign(size, -1);
  im.special.assign(size, 0);
  for (std::size_t i = 0; i < im.added.size(); ++i) {
    const added_token& a = im.added[i];
    im.added_index[static_cast<std::size_t>(a.id)] = static_cast<std::int32_t>(i);
    im.added_by_content[a.content] = a.id;
    if (a.special) im.special[static_cast<std::size_t>(a.id)] = 1;
  }
  for (const auto& s : im.cfg.additional_special_tokens) {
    auto it = im.added_by_content.find(s);
    const token_id id = it != im.added_by_content.end() ? it->second : im.model.find(s);
    if (id != no_token) im.special[static_cast<std::size_t>(id)] = 1;
  }
  for (std::size_t i = 0; i < im.added.size(); ++i) {
    const added_token& a = im.added[i];
    const auto index = static_cast<std::int32_t>(i);
    if (a.normalized && !im.normalizers.empty()) {
      encoder_state st;
      const std::string n = im.normalize(a.content, st);
      im.norm_all.insert(n, index);
      if (!a.special) im.norm_plain.insert(n, index);
    } else {
      im.raw_all.insert(a.content, index);
      if (!a.special) im.raw_plain.insert(a.content, index);
    }
  }
  return owner;
}

std::string read_file(const std::filesystem::path& p) {
  std::ifstream f(p, std::ios::binary);
  if (!f) throw std::invalid_argument(concat(p.string(), ": cannot read the file"));
  return {std::istreambuf_iterator<char>(f), std::istreambuf_iterator<char>()};
}

bool starts_with_at(std::string_view s, std::size_t i, std::string_view p) noexcept {
  return s.size() - i >= p.size() && s.compare(i, p.size(), p) == 0;
}

void replace_literal(std::string& s, std::string_view from, std::string_view to) {
  if (from.empty()) return;
  std::string out;
  std::size_t i = 0;
  while (true) {
    const std::size_t j = s.find(from, i);
    if (j == std::string::npos) break;
    out.append(s, i, j - i);
    out.append(to);
    i = j + from.size();
  }
  if (i == 0) return;
  out.append(s, i, std::string::npos);
  s = std::move(out);
}

std::string replace_pattern(std::string_view s, const pattern& p, std::string_view content, match_scratch& scratch) {
  if (p.is_literal) {
    std::string out(s);
    replace_literal(out, p.literal, content);
    return out;
  }
  std::string out;
  std::size_t pos = 0, last = 0, b = 0, e = 0;
  while (pos <= s.size() && p.re->find(s, pos, b, e, scratch)) {
    out.append(s.substr(last, b - last));
    out.append(content);
    last = e;
    if (e == b) {
      char32_t cp = 0;
      const std::size_t n = b < s.size() ? std::max<std::size_t>(1, detail::utf8_decode(s, b, cp)) : 1;
      if (b < s.size()) out.append(s.substr(b, n));
      pos = b + n;
      last = pos;
    } else {
      pos = e;
    }
  }
  if (last < s.size()) out.append(s.substr(last));
  return out;
}

}  // namespace

// ------------------------------------------------------------------------------------------
// Encoding.

std::string tokenizer::impl::normalize(std::string_view s, encoder_state& st) const {
  std::string cur(s);
  for (const auto& op : normalizers) {
    switch (op.k) {
      case normalizer_op::kind::unicode: cur = detail::normalize(cur, op.form); break;
      case normalizer_op::kind::replace: cur = replace_pattern(cur, op.pat, op.content, st.scratch); break;
      case normalizer_op::kind::prepend:
        if (!cur.empty()) cur.insert(0, op.content);
        break;
      case normalizer_op::kind::strip: {
        std::size_t b = 0, e = cur.size();
        char32_t cp = 0;
        while (op.left && b < e) {
          const std::size_t n = detail::utf8_decode(cur, b, cp);
          if (n == 0 || !detail::is_whitespace(cp)) break;
          b += n;
        }
        while (op.right && e > b) {
          std::size_t k = e - 1;
          while (k > b && (static_cast<unsigned char>(cur[k]) & 0xC0) == 0x80) --k;
          if (detail::utf8_decode(cur, k, cp) == 0 || !detail::is_whitespace(cp)) break;
          e = k;
        }
        cur = cur.substr(b, e - b);
        break;
      }
      case normalizer_op::kind::lowercase: {
        // Rust's char::to_lowercase: the simple mapping, except U+0130 -> "i\u0307".
        std::string out;
        for (std::size_t i = 0; i < cur.size();) {
          char32_t cp = 0;
          const std::size_t n = detail::utf8_decode(cur, i, cp);
          if (cp == 0x130) {
            out += "i\xCC\x87";
          } else {
            append_utf8(out, detail::to_lower(cp));
          }
          i += n;
        }
        cur = std::move(out);
        break;
      }
    }
  }
  return cur;
}

void tokenizer::impl::split_added(const trie& t, std::string_view text, std::vector<segment>& out) const {
  out.clear();
  std::size_t i = 0, text_start = 0;
  const auto char_before = [&](std::size_t at) {
    std::size_t k = at - 1;
    while (k > 0 && (static_cast<unsigned char>(text[k]) & 0xC0) == 0x80) --k;
    char32_t cp = 0;
    detail::utf8_decode(text, k, cp);
    return std::pair<std::size_t, char32_t>{k, cp};
  };
  const auto word_char = [](char32_t c) { return c == '_' || detail::is_alphanumeric(c); };
  while (i < text.size()) {
    if (!t.first[static_cast<unsigned char>(text[i])]) {
      ++i;
      continue;
    }
    std::int32_t index = -1;
    const std::size_t len = t.longest(text, i, index);
    if (len == 0) {
      ++i;
      continue;
    }
    const added_token& tok = added[static_cast<std::size_t>(index)];
    std::size_t b = i, e = i + len;
    i = e;
    if (tok.single_word) {
      char32_t after = 0;
      const bool word_before = b > 0 && word_char(char_before(b).second);
      const bool word_after = e < text.size() && detail::utf8_decode(text, e, after) > 0 && word_char(after);
      if (word_before || word_after) continue;
    }
    if (tok.lstrip) {
      while (b > text_start) {
        const auto [k, cp] = char_before(b);
        if (!detail::is_whitespace(cp)) break;
        b = k;
      }
    }
    if (tok.rstrip) {
      char32_t cp = 0;
      std::size_t n = 0;
      while (e < text.size() && (n = detail::utf8_decode(text, e, cp)) > 0 && detail::is_whitespace(cp)) e += n;
      i = e;
    }
    if (b > text_start) out.push_back({text_start, b, no_token});
    out.push_back({b, e, tok.id});
    text_start = e;
  }
  if (text_start < text.size()) out.push_back({text_start, text.size(), no_token});
}

void tokenizer::impl::split_span(const pattern& p, split_behavior behavior, bool invert, std::string_view s,
                                 std::uint32_t base, encoder_state& st) const {
  auto& m = st.matches;
  m.clear();
  std::size_t pos = 0, prev = 0, b = 0, e = 0;
  while (pos < s.size() && p.re->find(s, pos, b, e, st.scratch)) {
    if (e == b) {  // empty matches split nothing
      char32_t cp = 0;
      pos = b + std::max<std::size_t>(1, detail::utf8_decode(s, b, cp));
      continue;
    }
    if (b > prev) m.push_back({prev, b, false});
    m.push_back({b, e, true});
    prev = pos = e;
  }
  if (prev < s.size()) m.push_back({prev, s.size(), false});
  if (invert)
    for (auto& x : m) x.is_match = !x.is_match;
  // Merge per behavior (tokenizers' NormalizedString::split), then keep the non-empty pieces.
  auto& spans = st.spans;
  const auto emit = [&](std::size_t from, std::size_t to) {
    spans.emplace_back(static_cast<std::uint32_t>(base + from), static_cast<std::uint32_t>(to - from));
  };
  const std::size_t first = spans.size();
  switch (behavior) {
    case split_behavior::removed:
      for (const auto& x : m)
        if (!x.is_match) emit(x.b, x.e);
      break;
    case split_behavior::isolated:
      for (const auto& x : m) emit(x.b, x.e);
      break;
    case split_behavior::merged_with_previous: {
      bool previous_match = false;
      for (const auto& x : m) {
        if (x.is_match && !previous_match && spans.size() > first) spans.back().second += static_cast<std::uint32_t>(x.e - x.b);
        else emit(x.b, x.e);
        previous_match = x.is_match;
      }
      break;
    }
    case split_behavior::merged_with_next: {
      bool previous_match = false;
      std::vector<std::pair<std::size_t, std::size_t>> rev;
      for (std::size_t k = m.size(); k-- > 0;) {
        const auto& x = m[k];
        if (x.is_match && !previous_match && !rev.empty()) rev.back().first = x.b;
        else rev.emplace_back(x.b, x.e);
        previous_match = x.is_match;
      }
      for (std::size_t k = rev.size(); k-- > 0;) emit(rev[k].first, rev[k].second);
      break;
    }
    case split_behavior::contiguous: {
      bool previous_match = false;
      for (const auto& x : m) {
        if (x.is_match == previous_match && spans.size() > first) spans.back().second += static_cast<std::uint32_t>(x.e - x.b);
        else emit(x.b, x.e);
        previous_match = x.is_match;
      }
      break;
    }
  }
}

void tokenizer::impl::pre_tokenize(std::string_view s, bool first_section, encoder_state& st) const {
  st.cur.buf.assign(s);
  st.cur.spans.assign(1, {0u, static_cast<std::uint32_t>(s.size())});
  const auto view = [](const piece_list& l, const std::pair<std::uint32_t, std::uint32_t>& sp) {
    return std::string_view(l.buf).substr(sp.first, sp.second);
  };
  for (const auto& op : pretoks) {
    switch (op.k) {
      case pretok_op::kind::split:
        st.spans.clear();
        for (const auto& sp : st.cur.spans) split_span(op.pat, op.behavior, op.invert, view(st.cur, sp), sp.first, st);
        st.cur.spans.swap(st.spans);
        break;
      case pretok_op::kind::digits: {
        // Each numeric character is a match; Contiguous merges runs of digits, Isolated keeps them single.
        st.spans.clear();
        for (const auto& sp : st.cur.spans) {
          const std::string_view v = view(st.cur, sp);
          st.matches.clear();
          std::size_t i = 0;
          while (i < v.size()) {
            char32_t cp = 0;
            const std::size_t n = std::max<std::size_t>(1, detail::utf8_decode(v, i, cp));
            const bool digit = detail::is_numeric(cp);
            if (!digit && !st.matches.empty() && !st.matches.back().is_match) st.matches.back().e = i + n;
            else st.matches.push_back({i, i + n, digit});
            i += n;
          }
          const std::size_t first = st.spans.size();
          bool previous_match = false;
          for (const auto& x : st.matches) {
            const bool merge = !op.individual_digits && x.is_match == previous_match && st.spans.size() > first;
            if (merge) st.spans.back().second += static_cast<std::uint32_t>(x.e - x.b);
            else st.spans.emplace_back(static_cast<std::uint32_t>(sp.first + x.b), static_cast<std::uint32_t>(x.e - x.b));
            previous_match = x.is_match;
          }
        }
        st.cur.spans.swap(st.spans);
        break;
      }
      case pretok_op::kind::byte_level: {
        const auto& table = bytes();
        st.next.buf.clear();
        st.next.spans.clear();
        const auto map_bytes = [&](std::string_view piece) {
          const std::size_t start = st.next.buf.size();
          st.next.buf.resize(start + 2 * piece.size());
          char* out = st.next.buf.data() + start;
          for (char ch : piece) {
            const auto b = static_cast<unsigned char>(ch);
            out[0] = table.utf8_bytes[b][0];
            out[1] = table.utf8_bytes[b][1];
            out += table.utf8_length[b];
          }
          const auto length = static_cast<std::size_t>(out - (st.next.buf.data() + start));
          st.next.buf.resize(start + length);
          st.next.spans.emplace_back(static_cast<std::uint32_t>(start), static_cast<std::uint32_t>(length));
        };
        for (const auto& sp : st.cur.spans) {
          std::string_view v = view(st.cur, sp);
          if (op.add_prefix_space && (v.empty() || v[0] != ' ')) {
            st.tmp.assign(" ");
            st.tmp.append(v);
            v = st.tmp;
          }
          if (!op.use_regex) {
            map_bytes(v);
            continue;
          }
          std::size_t pos = 0, b = 0, e = 0, prev = 0;
          while (pos < v.size() && gpt2->find(v, pos, b, e, st.scratch)) {
            if (e == b) {
              char32_t cp = 0;
              pos = b + std::max<std::size_t>(1, detail::utf8_decode(v, b, cp));
              continue;
            }
            if (b > prev) map_bytes(v.substr(prev, b - prev));
            map_bytes(v.substr(b, e - b));
            prev = pos = e;
          }
          if (prev < v.size()) map_bytes(v.substr(prev));
        }
        std::swap(st.cur, st.next);
        break;
      }
      case pretok_op::kind::metaspace: {
        st.next.buf.clear();
        st.next.spans.clear();
        for (const auto& sp : st.cur.spans) {
          std::string piece(view(st.cur, sp));
          replace_literal(piece, " ", op.replacement);
          const bool prepend = op.scheme == prepend_scheme::always || (op.scheme == prepend_scheme::first && first_section && sp.first == 0);
          if (prepend && !starts_with_at(piece, 0, op.replacement)) piece.insert(0, op.replacement);
          const auto base = static_cast<std::uint32_t>(st.next.buf.size());
          st.next.buf += piece;
          if (!op.split) {
            st.next.spans.emplace_back(base, static_cast<std::uint32_t>(piece.size()));
            continue;
          }
          // Split before every replacement character (MergedWithNext).
          std::size_t start = 0;
          for (std::size_t k = 1; k < piece.size(); ++k) {
            if (starts_with_at(piece, k, op.replacement)) {
              st.next.spans.emplace_back(static_cast<std::uint32_t>(base + start), static_cast<std::uint32_t>(k - start));
              start = k;
            }
          }
          if (start < piece.size())
            st.next.spans.emplace_back(static_cast<std::uint32_t>(base + start), static_cast<std::uint32_t>(piece.size() - start));
        }
        std::swap(st.cur, st.next);
        break;
      }
    }
  }
}

void tokenizer::impl::merge_symbols(encoder_state& st) const {
  auto& sym = st.symbols;
  auto& heap = st.heap;
  heap.clear();
  const auto later = [](const encoder_state::queued& a, const encoder_state::queued& b) {
    return a.rank != b.rank ? a.rank > b.rank : a.pos > b.pos;  // min-heap on (rank, position)
  };
  const auto push = [&](std::int32_t pos, token_id left, token_id right) {
    auto it = model.merges.find(bpe_model::key(left, right));
    if (it == model.merges.end()) return;
    heap.push_back({it->second.rank, pos, it->second.id});
    std::push_heap(heap.begin(), heap.end(), later);
  };
  for (std::size_t i = 0; i + 1 < sym.size(); ++i) push(static_cast<std::int32_t>(i), sym[i].id, sym[i + 1].id);
  while (!heap.empty()) {
    std::pop_heap(heap.begin(), heap.end(), later);
    const auto top = heap.back();
    heap.pop_back();
    auto& s = sym[static_cast<std::size_t>(top.pos)];
    if (!s.alive || s.next < 0) continue;
    auto& right = sym[static_cast<std::size_t>(s.next)];
    // Stale entry: the pair at this position changed since it was queued.
    auto it = model.merges.find(bpe_model::key(s.id, right.id));
    if (it == model.merges.end() || it->second.id != top.id) continue;
    s.id = top.id;
    right.alive = false;
    s.next = right.next;
    if (s.next >= 0) sym[static_cast<std::size_t>(s.next)].prev = top.pos;
    if (s.prev >= 0) push(s.prev, sym[static_cast<std::size_t>(s.prev)].id, s.id);
    if (s.next >= 0) push(top.pos, s.id, sym[static_cast<std::size_t>(s.next)].id);
  }
}

void tokenizer::impl::bpe_word(std::string_view word, std::vector<token_id>& out, encoder_state& st) const {
  if (word.empty()) return;
  if (model.ignore_merges) {
    if (const token_id id = model.find(word); id != no_token) {
      out.push_back(id);
      return;
    }
  }
  constexpr std::size_t max_cached_length = 256;
  const bool cacheable = word.size() < max_cached_length;
  const std::uint64_t h = cacheable ? word_cache::hash(word) : 0;
  if (cacheable) {
    std::size_t n = 0;
    if (const token_id* hit = st.cache.find(word, h, n)) {
      out.insert(out.end(), hit, hit + n);
      return;
    }
  }
  auto& sym = st.symbols;
  sym.clear();
  const bool affixes = !model.prefix.empty() || !model.suffix.empty();
  const auto add = [&](token_id id) {
    const auto n = static_cast<std::int32_t>(sym.size());
    sym.push_back({id, n - 1, -1, true});
    if (n > 0) sym[static_cast<std::size_t>(n - 1)].next = n;
  };
  for (std::size_t i = 0; i < word.size();) {
    char32_t cp = 0;
    const std::size_t n = std::max<std::size_t>(1, detail::utf8_decode(word, i, cp));
    const std::string_view ch = word.substr(i, n);
    token_id id = no_token;
    if (!affixes) {
      id = cp < 0x800 ? model.small_chars[cp] : model.find(ch);
    } else {
      st.tmp.clear();
      if (i > 0) st.tmp += model.prefix;
      st.tmp += ch;
      if (i + n == word.size()) st.tmp += model.suffix;
      id = model.find(st.tmp);
    }
    i += n;
    if (id != no_token) {
      add(id);
      continue;
    }
    if (model.byte_fallback &&
        std::all_of(ch.begin(), ch.end(), [&](char b) { return model.byte_tokens[static_cast<unsigned char>(b)] != no_token; })) {
      for (char b : ch) add(model.byte_tokens[static_cast<unsigned char>(b)]);
      continue;
    }
    if (model.unk != no_token) {
      if (model.fuse_unk && !sym.empty() && sym.back().id == model.unk) continue;
      add(model.unk);
    }
    // Neither in the vocabulary nor byte fallback nor unk: tokenizers drops the character.
  }
  if (sym.size() > 1) merge_symbols(st);
  const std::size_t start = out.size();
  for (const auto& s : sym)
    if (s.alive) out.push_back(s.id);
  if (cacheable) st.cache.insert(word, h, out.data() + start, out.size() - start);
}

void tokenizer::impl::encode_into(std::string_view text, const encode_options& o, encoder_state& st,
                                  std::vector<token_id>& out) const {
  if (const std::size_t bad = detail::first_invalid_utf8(text); bad != std::string_view::npos)
    throw std::invalid_argument(concat("the text is not valid UTF-8 (byte ", bad, " of ", text.size(), ")"));
  if (o.add_special_tokens) out.insert(out.end(), post_prefix.begin(), post_prefix.end());
  const trie& raw = o.parse_special ? raw_all : raw_plain;
  const trie& norm = o.parse_special ? norm_all : norm_plain;
  if (raw.empty()) st.outer.assign(1, {0, text.size(), no_token});
  else split_added(raw, text, st.outer);
  for (const auto& seg : st.outer) {
    if (seg.id != no_token) {
      out.push_back(seg.id);
      continue;
    }
    const std::string_view part = text.substr(seg.begin, seg.end - seg.begin);
    const bool first = seg.begin == 0;
    const std::string normalized = normalizers.empty() ? std::string(part) : normalize(part, st);
    if (norm.empty()) st.inner.assign(1, {0, normalized.size(), no_token});
    else split_added(norm, normalized, st.inner);
    for (const auto& sub : st.inner) {
      if (sub.id != no_token) {
        out.push_back(sub.id);
        continue;
      }
      pre_tokenize(std::string_view(normalized).substr(sub.begin, sub.end - sub.begin), first && sub.begin == 0, st);
      const piece_list& pieces = st.cur;
      for (const auto& sp : pieces.spans) bpe_word(std::string_view(pieces.buf).substr(sp.first, sp.second), out, st);
    }
  }
  if (o.add_special_tokens) out.insert(out.end(), post_suffix.begin(), post_suffix.end());
}

// ------------------------------------------------------------------------------------------
// Public API.

tokenizer::tokenizer(std::unique_ptr<impl> p) : impl_(std::move(p)) {}
tokenizer::tokenizer(tokenizer&&) noexcept = default;
tokenizer& tokenizer::operator=(tokenizer&&) noexcept = default;
tokenizer::~tokenizer() = default;

tokenizer tokenizer::from_json(std::string_view tokenizer_json, std::string_view tokenizer_config_json, std::string_view label) {
  const std::string l(label);
  const json t = parse_json(tokenizer_json, l);
  const std::string config_label = "tokenizer_config.json";
  std::optional<json> c;
  if (!tokenizer_config_json.empty()) c = parse_json(tokenizer_config_json, config_label);
  return tokenizer((build(t, c ? &*c : nullptr, l, config_label)));
}

tokenizer tokenizer::from_vocab_merges(std::string_view vocab_json, std::string_view merges_txt,
                                       std::string_view tokenizer_config_json, std::string_view added_tokens_json,
                                       std::string_view label) {
  const std::string l(label);
  json vocab = parse_json(vocab_json, l);
  if (!vocab.is_object()) throw std::invalid_argument(l + ": expected an object of token -> id");
  json merges = json::array();
  std::size_t line_no = 0, i = 0;
  while (i < merges_txt.size()) {
    std::size_t j = merges_txt.find('\n', i);
    if (j == std::string_view::npos) j = merges_txt.size();
    std::string_view line = merges_txt.substr(i, j - i);
    if (!line.empty() && line.back() == '\r') line.remove_suffix(1);
    ++line_no;
    i = j + 1;
    // The first line of merges.txt is the "#version: 0.2" header; empty lines are skipped.
    if (line.empty() || (line_no == 1 && line.rfind("#version", 0) == 0)) continue;
    merges.push_back(std::string(line));
  }
  const std::string config_label = "tokenizer_config.json";
  std::optional<json> c;
  if (!tokenizer_config_json.empty()) c = parse_json(tokenizer_config_json, config_label);
  // Qwen2's fast tokenizer (transformers' Qwen2Converter): NFC, its split regex, byte-level BPE
  // without unk, ByteLevel decoder. Its added tokens come from the config (or added_tokens.json).
  json t = {
      {"normalizer", {{"type", "NFC"}}},
      {"pre_tokenizer",
       {{"type", "Sequence"},
        {"pretokenizers",
         json::array({{{"type", "Split"},
                       {"pattern",
                        {{"Regex",
                          R"re((?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\r\n\p{L}\p{N}]?\p{L}+|\p{N}| ?[^\s\p{L}\p{N}]+[\r\n]*|\s*[\r\n]+|\s+(?!\S)|\s+)re"}}},
                       {"behavior", "Isolated"},
                       {"invert", false}},
                      {{"type", "ByteLevel"}, {"add_prefix_space", false}, {"trim_offsets", false}, {"use_regex", false}}})}}},
      {"model", {{"type", "BPE"}, {"vocab", std::move(vocab)}, {"merges", std::move(merges)}}},
      {"post_processor", {{"type", "ByteLevel"}}},
      {"decoder", {{"type", "ByteLevel"}}},
      {"added_tokens", json::array()}};
  bool config_has_tokens = c && c->is_object() && c->contains("added_tokens_decoder");
  if (!config_has_tokens && !added_tokens_json.empty()) {
    const json a = parse_json(added_tokens_json, "added_tokens.json");
    if (!a.is_object()) throw std::invalid_argument("added_tokens.json: expected an object of token -> id");
    tokenizer_config named;
    if (c) read_config(*c, config_label, named, false);
    for (auto it = a.begin(); it != a.end(); ++it) {
      const bool special = it.key() == named.bos_token || it.key() == named.eos_token || it.key() == named.pad_token ||
                           it.key() == named.unk_token || it.key() == named.mask_token ||
                           std::find(named.additional_special_tokens.begin(), named.additional_special_tokens.end(),
                                     it.key()) != named.additional_special_tokens.end();
      t["added_tokens"].push_back({{"id", it.value()}, {"content", it.key()}, {"special", special}, {"normalized", false}});
    }
  }
  return tokenizer((build(t, c ? &*c : nullptr, l, config_label)));
}

tokenizer tokenizer::load(const std::filesystem::path& dir) {
  namespace fs = std::filesystem;
  if (!fs::is_directory(dir)) throw std::invalid_argument(concat(dir.string(), " is not a directory"));
  const auto read_if = [&](const char* name) { return fs::exists(dir / name) ? read_file(dir / name) : std::string(); };
  const std::string config = read_if("tokenizer_config.json");
  std::optional<tokenizer> t;
  if (fs::exists(dir / "tokenizer.json")) {
    t.emplace(from_json(read_file(dir / "tokenizer.json"), config, (dir / "tokenizer.json").string()));
  } else if (fs::exists(dir / "vocab.json") && fs::exists(dir / "merges.txt")) {
    t.emplace(from_vocab_merges(read_file(dir / "vocab.json"), read_file(dir / "merges.txt"), config,
                                read_if("added_tokens.json"), (dir / "vocab.json").string()));
  } else {
    throw std::invalid_argument(concat(dir.string(), " has no tokenizer: tokenizer.json (or vocab.json + merges.txt) is missing"));
  }
  if (const std::string map = read_if("special_tokens_map.json"); !map.empty())
    read_config(parse_json(map, "special_tokens_map.json"), "special_tokens_map.json", t->impl_->cfg, true);
  if (fs::exists(dir / "chat_template.jinja") && t->impl_->cfg.chat_template.empty())
    t->impl_->cfg.chat_template = read_file(dir / "chat_template.jinja");
  return std::move(*t);
}

std::vector<token_id> tokenizer::encode(std::string_view text, const encode_options& options) const {
  std::vector<token_id> out;
  const std::lock_guard lock(impl_->state_mutex);
  if (!impl_->state) impl_->state = std::make_unique<encoder_state>();
  impl_->encode_into(text, options, *impl_->state, out);
  return out;
}

std::vector<std::vector<token_id>> tokenizer::encode_batch(std::span<const std::string> texts, const encode_options& options,
                                                           std::size_t threads) const {
  std::vector<std::vector<token_id>> out(texts.size());
  if (threads == 0) threads = std::max(1u, std::thread::hardware_concurrency());
  threads = std::min(threads, std::max<std::size_t>(1, texts.size()));
  std::vector<std::exception_ptr> errors(threads);
  const auto work = [&](std::size_t w) {
    try {
      encoder_state st;
      for (std::size_t i = w; i < texts.size(); i += threads) impl_->encode_into(texts[i], options, st, out[i]);
    } catch (...) {
      errors[w] = std::current_exception();
    }
  };
  std::vector<std::thread> pool;
  for (std::size_t w = 1; w < threads; ++w) pool.emplace_back(work, w);
  work(0);
  for (auto& th : pool) th.join();
  for (auto& e : errors)
    if (e) std::rethrow_exception(e);
  return out;
}

std::string tokenizer::decode_bytes(std::span<const token_id> ids, bool skip_special) const {
  const impl& im = *impl_;
  std::vector<std::string> toks;
  std::vector<char> is_added;
  toks.reserve(ids.size());
  for (std::size_t i = 0; i < ids.size(); ++i) {
    const token_id id = ids[i];
    if (id < 0 || static_cast<std::size_t>(id) >= im.size)
      throw std::invalid_argument(concat("token id ", id, " (index ", i, ") is outside the vocabulary [0, ", im.size, ")"));
    if (skip_special && im.special[static_cast<std::size_t>(id)]) continue;
    const std::int32_t a = im.added_index[static_cast<std::size_t>(id)];
    if (a >= 0) {
      toks.push_back(im.added[static_cast<std::size_t>(a)].content);
      is_added.push_back(1);
    } else {
      toks.push_back(static_cast<std::size_t>(id) < im.model.tokens.size() ? im.model.tokens[static_cast<std::size_t>(id)] : std::string());
      is_added.push_back(0);
    }
  }
  if (im.decoders.empty()) {
    std::string out;
    for (std::size_t i = 0; i < toks.size(); ++i) out += (i ? " " : "") + toks[i];
    return out;
  }
  match_scratch scratch;
  const auto& table = bytes();
  for (const auto& op : im.decoders) {
    switch (op.k) {
      case decoder_op::kind::byte_level:
        // Added tokens pass through as written (the slow tokenizers' and tokenizers.js' grouping).
        for (std::size_t i = 0; i < toks.size(); ++i) {
          if (is_added[i]) continue;
          std::string raw;
          const std::string& t = toks[i];
          for (std::size_t k = 0; k < t.size();) {
            char32_t cp = 0;
            const std::size_t n = std::max<std::size_t>(1, detail::utf8_decode(t, k, cp));
            auto it = table.to_byte.find(cp);
            if (it != table.to_byte.end()) raw.push_back(static_cast<char>(it->second));
            else raw.append(t, k, n);
            k += n;
          }
          toks[i] = std::move(raw);
        }
        break;
      case decoder_op::kind::byte_fallback:
        for (auto& t : toks) {
          if (t.size() == 6 && t.compare(0, 3, "<0x") == 0 && t[5] == '>' && std::isxdigit(static_cast<unsigned char>(t[3])) &&
              std::isxdigit(static_cast<unsigned char>(t[4])))
            t = std::string(1, static_cast<char>(std::stoi(t.substr(3, 2), nullptr, 16)));
        }
        break;
      case decoder_op::kind::fuse: {
        std::string all;
        for (const auto& t : toks) all += t;
        toks.assign(1, std::move(all));
        is_added.assign(1, 0);
        break;
      }
      case decoder_op::kind::replace:
        for (auto& t : toks) {
          if (op.pat.is_literal) replace_literal(t, op.pat.literal, op.content);
          else t = replace_pattern(repair_utf8(t), op.pat, op.content, scratch);
        }
        break;
      case decoder_op::kind::strip:
        for (auto& t : toks) {
          std::size_t b = 0, e = t.size();
          for (std::size_t k = 0; k < op.start && starts_with_at(t, b, op.content); ++k) b += op.content.size();
          for (std::size_t k = 0; k < op.stop && e >= b + op.content.size() &&
                                  t.compare(e - op.content.size(), op.content.size(), op.content) == 0;
               ++k)
            e -= op.content.size();
          t = t.substr(b, e - b);
        }
        break;
      case decoder_op::kind::metaspace:
        for (std::size_t i = 0; i < toks.size(); ++i)
          replace_literal(toks[i], op.replacement, i == 0 && op.scheme != prepend_scheme::never ? "" : " ");
        break;
    }
  }
  std::string out;
  for (const auto& t : toks) out += t;
  return out;
}

std::string tokenizer::decode(std::span<const token_id> ids, const decode_options& options) const {
  std::string text = repair_utf8(decode_bytes(ids, options.skip_special_tokens));
  if (options.clean_up_tokenization_spaces.value_or(impl_->cfg.clean_up_tokenization_spaces)) text = clean_up_tokenization(text);
  return text;
}

std::size_t tokenizer::vocab_size() const noexcept { return impl_->size; }

std::optional<token_id> tokenizer::token_to_id(std::string_view token) const {
  if (auto it = impl_->added_by_content.find(token); it != impl_->added_by_content.end()) return it->second;
  if (const token_id id = impl_->model.find(token); id != no_token) return id;
  return std::nullopt;
}

std::string tokenizer::id_to_token(token_id id) const {
  if (id < 0 || static_cast<std::size_t>(id) >= impl_->size) return {};
  const std::int32_t a = impl_->added_index[static_cast<std::size_t>(id)];
  if (a >= 0) return impl_->added[static_cast<std::size_t>(a)].content;
  return static_cast<std::size_t>(id) < impl_->model.tokens.size() ? impl_->model.tokens[static_cast<std::size_t>(id)] : std::string();
}

std::span<const added_token> tokenizer::added_tokens() const noexcept { return impl_->added; }
const tokenizer_config& tokenizer::config() const noexcept { return impl_->cfg; }

std::string clean_up_tokenization(std::string_view text) {
  std::string s(text);
  static const std::pair<const char*, const char*> rules[] = {{" .", "."},     {" ?", "?"},     {" !", "!"},
                                                              {" ,", ","},     {" ' ", "'"},    {" n't", "n't"},
                                                              {" 'm", "'m"},   {" 's", "'s"},   {" 've", "'ve"},
                                                              {" 're", "'re"}};
  for (const auto& [from, to] : rules) replace_literal(s, from, to);
  return s;
}

std::string repair_utf8(std::string_view bytes) {
  std::string out;
  out.reserve(bytes.size());
  std::size_t i = 0;
  while (i < bytes.size()) {
    const auto b = static_cast<unsigned char>(bytes[i]);
    if (b < 0x80) {
      out.push_back(static_cast<char>(b));
      ++i;
      continue;
    }
    std::size_t needed = 0;
    const std::size_t k = detail::utf8_valid_prefix(bytes, i, needed);
    if (k > 0 && k == needed) {
      out.append(bytes.substr(i, k));
      i += k;
    } else {
      out += "\xEF\xBF\xBD";  // U+FFFD for the maximal invalid subpart
      i += std::max<std::size_t>(1, k);
    }
  }
  return out;
}

stream_decoder::stream_decoder(const tokenizer& t, decode_options options) : tok_(&t), options_(options) {}

std::string stream_decoder::push(std::span<const token_id> ids) {
  ids_.insert(ids_.end(), ids.begin(), ids.end());
  const std::string raw = tok_->decode_bytes(ids_, options_.skip_special_tokens);
  // Hold back an incomplete UTF-8 sequence at the end, and, when clean-up is on, a space among the
  // last 4 bytes (it may start a " n't" that the next tokens complete).
  std::size_t cut = raw.size() - detail::utf8_incomplete_tail(raw);
  const bool clean = options_.clean_up_tokenization_spaces.value_or(tok_->config().clean_up_tokenization_spaces);
  if (clean) {
    const std::size_t from = cut >= 4 ? cut - 4 : 0;
    const std::size_t space = std::string_view(raw).substr(from, cut - from).rfind(' ');
    if (space != std::string_view::npos) cut = from + space;
  }
  if (cut <= emitted_) return {};
  std::string text = repair_utf8(std::string_view(raw).substr(emitted_, cut - emitted_));
  emitted_ = cut;
  return clean ? clean_up_tokenization(text) : text;
}

std::string stream_decoder::finish() {
  const std::string raw = tok_->decode_bytes(ids_, options_.skip_special_tokens);
  std::string text = emitted_ < raw.size() ? repair_utf8(std::string_view(raw).substr(emitted_)) : std::string();
  emitted_ = raw.size();
  const bool clean = options_.clean_up_tokenization_spaces.value_or(tok_->config().clean_up_tokenization_spaces);
  return clean ? clean_up_tokenization(text) : text;
}

}  // namespace mdlm::text
