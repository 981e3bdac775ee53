// SPDX-License-Identifier: MIT
// Unit tests of mdlm::text::tokenizer on hand-made tokenizer.json files whose ids are worked out by
// hand (BPE merge order, each pre-tokenizer and split behaviour, added-token flags, post-processors,
// decoders), UTF-8 handling, streaming, batch encoding, and errors that name the bad component.
#include <catch2/catch.hpp>

#include <filesystem>
#include <fstream>
#include <nlohmann/json.hpp>
#include <string>
#include <vector>

#include "mdlm/tokenizer/tokenizer.hpp"

using Catch::Matchers::Contains;
using mdlm::token_id;
using mdlm::text::tokenizer;
using json = nlohmann::json;

namespace {

using ids = std::vector<token_id>;

// A tokenizer.json with the given model vocabulary / merges and optional components.
json make_json(json vocab, json merges, json extra = json::object()) {
  json t = {{"version", "1.0"},
            {"added_tokens", json::array()},
            {"normalizer", nullptr},
            {"pre_tokenizer", nullptr},
            {"post_processor", nullptr},
            {"decoder", nullptr},
            {"model", {{"type", "BPE"}, {"vocab", std::move(vocab)}, {"merges", std::move(merges)}}}};
  for (auto it = extra.begin(); it != extra.end(); ++it) {
    if (it.key() == "model") {
      for (auto m = it->begin(); m != it->end(); ++m) t["model"][m.key()] = *m;
    } else {
      t[it.key()] = *it;
    }
  }
  return t;
}

tokenizer load(const json& t, const std::string& config = {}) { return tokenizer::from_json(t.dump(), config); }

const json abc_vocab = {{"a", 0}, {"b", 1}, {"c", 2}, {"ab", 3}, {"bc", 4}, {"abc", 5}, {"-", 6}};

std::string read(const std::filesystem::path& p) {
  std::ifstream f(p, std::ios::binary);
  return {std::istreambuf_iterator<char>(f), std::istreambuf_iterator<char>()};
}

}  // namespace

TEST_CASE("BPE applies merges by rank, leftmost first", "[tokenizer]") {
  // "a b" before "b c": abc -> ab c -> (no "ab c" merge) = [ab, c]
  CHECK(load(make_json(abc_vocab, {"a b", "b c"})).encode("abc") == ids{3, 2});
  // "b c" first: abc -> a bc; then "a bc" is not a merge.
  CHECK(load(make_json(abc_vocab, {"b c", "a b"})).encode("abc") == ids{0, 4});
  // The merged token can merge again: a b -> ab, ab c -> abc.
  CHECK(load(make_json(abc_vocab, {"a b", "ab c"})).encode("abc") == ids{5});
  // Equal pairs merge left to right: bbb? none; ababab -> ab ab ab.
  CHECK(load(make_json(abc_vocab, {"a b"})).encode("ababa") == ids{3, 3, 0});
  // Both merge spellings are accepted.
  CHECK(load(make_json(abc_vocab, json::array({json::array({"a", "b"}), json::array({"ab", "c"})}))).encode("abc") == ids{5});
}

TEST_CASE("ignore_merges takes whole words from the vocabulary", "[tokenizer]") {
  // With merges "b c" only, "abc" would be [a, bc]; ignore_merges finds "abc" itself.
  CHECK(load(make_json(abc_vocab, {"b c"}, {{"model", {{"ignore_merges", true}}}})).encode("abc") == ids{5});
  CHECK(load(make_json(abc_vocab, {"b c"}, {{"model", {{"ignore_merges", false}}}})).encode("abc") == ids{0, 4});
}

TEST_CASE("unknown characters: byte fallback, unk with fuse_unk, or dropped", "[tokenizer]") {
  json vocab = abc_vocab;
  vocab["<0xC3>"] = 10;
  vocab["<0xA9>"] = 11;
  vocab["<unk>"] = 12;
  // "é" is C3 A9 in UTF-8.
  CHECK(load(make_json(vocab, json::array(), {{"model", {{"byte_fallback", true}}}})).encode("aé") == ids{0, 10, 11});
  CHECK(load(make_json(vocab, json::array(), {{"model", {{"unk_token", "<unk>"}, {"fuse_unk", true}}}})).encode("aéèb") == ids{0, 12, 1});
  CHECK(load(make_json(vocab, json::array(), {{"model", {{"unk_token", "<unk>"}, {"fuse_unk", false}}}})).encode("aéè") == ids{0, 12, 12});
  CHECK(load(make_json(vocab, json::array())).encode("aéb") == ids{0, 1});
}

TEST_CASE("Split: every behaviour on a-b--c", "[tokenizer]") {
  // Pieces are visible through ignore_merges: a piece in the vocabulary is one id.
  json vocab = abc_vocab;
  for (const char* piece : {"a-", "b-", "-c", "-b", "--"}) vocab[piece] = static_cast<int>(vocab.size());
  const auto with = [&](const char* behavior, bool invert = false) {
    json pre = {{"type", "Split"}, {"pattern", {{"String", "-"}}}, {"behavior", behavior}, {"invert", invert}};
    return load(make_json(vocab, json::array(), {{"pre_tokenizer", pre}, {"model", {{"ignore_merges", true}}}})).encode("a-b--c");
  };
  const token_id a_ = vocab["a-"], b_ = vocab["b-"], _c = vocab["-c"], _b = vocab["-b"], dd = vocab["--"];
  CHECK(with("Removed") == ids{0, 1, 2});
  CHECK(with("Isolated") == ids{0, 6, 1, 6, 6, 2});
  CHECK(with("MergedWithPrevious") == ids{a_, b_, 6, 2});
  CHECK(with("MergedWithNext") == ids{0, _b, 6, _c});
  CHECK(with("Contiguous") == ids{0, 6, 1, dd, 2});
  // invert: the pieces between dashes become the matches, so Removed keeps only the dashes.
  CHECK(with("Removed", true) == ids{6, 6, 6});
}

TEST_CASE("Split with a Unicode-property regex, Digits, Sequence", "[tokenizer]") {
  json vocab = {{"1", 0}, {"2", 1}, {"3", 2}, {"12", 3}, {"123", 4}, {"x", 5}, {"23", 6}};
  const json digits_split = {{"type", "Split"}, {"pattern", {{"Regex", "\\p{N}{1,2}"}}}, {"behavior", "Isolated"}, {"invert", false}};
  const json merges = {"1 2", "2 3", "12 3"};
  CHECK(load(make_json(vocab, merges, {{"pre_tokenizer", digits_split}})).encode("123x") == ids{3, 2, 5});
  const json individual = {{"type", "Digits"}, {"individual_digits", true}};
  CHECK(load(make_json(vocab, merges, {{"pre_tokenizer", individual}})).encode("123x") == ids{0, 1, 2, 5});
  const json runs = {{"type", "Digits"}, {"individual_digits", false}};
  CHECK(load(make_json(vocab, merges, {{"pre_tokenizer", runs}})).encode("123x") == ids{4, 5});
  const json seq = {{"type", "Sequence"}, {"pretokenizers", {runs, digits_split}}};
  CHECK(load(make_json(vocab, merges, {{"pre_tokenizer", seq}})).encode("123x") == ids{3, 2, 5});
}

TEST_CASE("ByteLevel maps bytes to GPT-2's alphabet and adds a prefix space on request", "[tokenizer]") {
  // GPT-2's table: ' ' (0x20) -> U+0120 'Ġ', '\n' -> U+010A 'Ċ', 0xC3 -> 'Ã', 0xA9 -> '©'.
  json vocab = {{"Ġ", 0}, {"h", 1}, {"i", 2}, {"Ġh", 3}, {"Ċ", 4}, {"Ã", 5}, {"©", 6}, {"hi", 7}};
  const auto bl = [](bool prefix) { return json{{"type", "ByteLevel"}, {"add_prefix_space", prefix}, {"use_regex", true}}; };
  const json decoder = {{"type", "ByteLevel"}};
  const auto t = load(make_json(vocab, {"Ġ h", "h i"}, {{"pre_tokenizer", bl(false)}, {"decoder", decoder}}));
  CHECK(t.encode("hi hi\n") == ids{7, 3, 2, 4});
  CHECK(t.encode("é") == ids{5, 6});
  CHECK(t.decode(ids{7, 3, 2, 4, 5, 6}) == "hi hi\né");
  CHECK(load(make_json(vocab, {"Ġ h", "h i"}, {{"pre_tokenizer", bl(true)}})).encode("hi") == ids{3, 2});
}

TEST_CASE("normalizers: NFC composes before the model; Replace, Prepend, Strip, Lowercase", "[tokenizer]") {
  json vocab = {{"é", 0}, {"e", 1}, {"\xCC\x81", 2}, {"_", 3}, {"x", 4}, {"i", 5}, {"\xCC\x87", 6}};
  CHECK(load(make_json(vocab, json::array(), {{"normalizer", {{"type", "NFC"}}}})).encode("e\xCC\x81") == ids{0});
  CHECK(load(make_json(vocab, json::array())).encode("e\xCC\x81") == ids{1, 2});
  CHECK(load(make_json(vocab, json::array(), {{"normalizer", {{"type", "NFD"}}}})).encode("é") == ids{1, 2});
  const json seq = {{"type", "Sequence"},
                    {"normalizers",
                     {{{"type", "Strip"}, {"strip_left", true}, {"strip_right", true}},
                      {{"type", "Prepend"}, {"prepend", "_"}},
                      {{"type", "Replace"}, {"pattern", {{"String", " "}}}, {"content", "_"}}}}};
  CHECK(load(make_json(vocab, json::array(), {{"normalizer", seq}})).encode("  x x \t") == ids{3, 4, 3, 4});
  // Lowercase follows Rust's char::to_lowercase: U+0130 (İ) becomes "i" + U+0307.
  CHECK(load(make_json(vocab, json::array(), {{"normalizer", {{"type", "Lowercase"}}}})).encode("XÉ\xC4\xB0") == ids{4, 0, 5, 6});
}

TEST_CASE("added tokens: leftmost longest, lstrip / rstrip / single_word / normalized, parse_special", "[tokenizer]") {
  json vocab = abc_vocab;
  vocab[" "] = 7;
  json t = make_json(vocab, json::array(), {{"normalizer", {{"type", "NFC"}}}});
  t["added_tokens"] = {
      {{"id", 20}, {"content", "<s>"}, {"special", true}, {"normalized", false}},
      {{"id", 21}, {"content", "<s>x"}, {"special", false}, {"normalized", false}},
      {{"id", 22}, {"content", "[L]"}, {"special", true}, {"normalized", false}, {"lstrip", true}},
      {{"id", 23}, {"content", "[R]"}, {"special", true}, {"normalized", false}, {"rstrip", true}},
      {{"id", 24}, {"content", "ab"}, {"special", false}, {"normalized", false}, {"single_word", true}},
      {{"id", 25}, {"content", "e\xCC\x81"}, {"special", false}, {"normalized", true}},
  };
  const auto tok = load(t);
  CHECK(tok.encode("a<s>b") == ids{0, 20, 1});
  CHECK(tok.encode("<s>xa") == ids{21, 0});  // the longest match wins
  CHECK(tok.encode("a  [L]  b") == ids{0, 22, 7, 7, 1});
  CHECK(tok.encode("a  [R]  b") == ids{0, 7, 7, 23, 1});
  CHECK(tok.encode("c ab c") == ids{2, 7, 24, 7, 2});
  CHECK(tok.encode("cab") == ids{2, 0, 1});  // inside a word: not the single-word token
  CHECK(tok.encode("\xC3\xA9") == ids{25});  // a normalized token is matched after NFC of the text,
  CHECK(tok.encode("e\xCC\x81") == ids{25});  // whichever form the text uses
  // parse_special = false: special tokens are text, non-special added tokens are still matched.
  CHECK(tok.encode("<s>", {.add_special_tokens = true, .parse_special = false}).size() == 0);  // '<', 's', '>' are not in the vocabulary
  CHECK(tok.encode("c ab c", {.add_special_tokens = true, .parse_special = false}) == ids{2, 7, 24, 7, 2});
  CHECK(tok.vocab_size() == 26);
  CHECK(tok.token_to_id("<s>") == 20);
  CHECK(tok.id_to_token(23) == "[R]");
  // Without a decoder, tokens are joined with spaces (tokenizers' rule).
  CHECK(tok.decode(ids{0, 20, 1}) == "a <s> b");
  CHECK(tok.decode(ids{0, 20, 1}, {.skip_special_tokens = true}) == "a b");
}

TEST_CASE("post-processors add their special tokens only with add_special_tokens", "[tokenizer]") {
  json templ = {{"type", "TemplateProcessing"},
                {"single", {{{"SpecialToken", {{"id", "<bos>"}, {"type_id", 0}}}}, {{"Sequence", {{"id", "A"}, {"type_id", 0}}}},
                            {{"SpecialToken", {{"id", "<eos>"}, {"type_id", 0}}}}}},
                {"pair", json::array()},
                {"special_tokens", {{"<bos>", {{"id", "<bos>"}, {"ids", {30}}, {"tokens", {"<bos>"}}}},
                                    {"<eos>", {{"id", "<eos>"}, {"ids", {31}}, {"tokens", {"<eos>"}}}}}}};
  const auto t = load(make_json(abc_vocab, {"a b"}, {{"post_processor", templ}}));
  CHECK(t.encode("ab") == ids{30, 3, 31});
  CHECK(t.encode("ab", {.add_special_tokens = false, .parse_special = true}) == ids{3});
  const json bert = {{"type", "BertProcessing"}, {"cls", {"[CLS]", 40}}, {"sep", {"[SEP]", 41}}};
  const json seq = {{"type", "Sequence"}, {"processors", {{{"type", "ByteLevel"}}, bert}}};
  CHECK(load(make_json(abc_vocab, {"a b"}, {{"post_processor", seq}})).encode("c") == ids{40, 2, 41});
}

TEST_CASE("SentencePiece-style decoders: Replace, ByteFallback, Fuse, Strip, Metaspace", "[tokenizer]") {
  json vocab = {{"\xE2\x96\x81hi", 0}, {"\xE2\x96\x81there", 1}, {"<0xC3>", 2}, {"<0xA9>", 3}, {"!", 4}};
  const json decoder = {{"type", "Sequence"},
                        {"decoders",
                         {{{"type", "Replace"}, {"pattern", {{"String", "\xE2\x96\x81"}}}, {"content", " "}},
                          {{"type", "ByteFallback"}},
                          {{"type", "Fuse"}},
                          {{"type", "Strip"}, {"content", " "}, {"start", 1}, {"stop", 0}}}}};
  const auto t = load(make_json(vocab, json::array(), {{"decoder", decoder}}));
  CHECK(t.decode(ids{0, 1, 2, 3, 4}) == "hi there\xC3\xA9!");
  CHECK(t.decode(ids{0, 2}) == "hi\xEF\xBF\xBD");  // a lone C3 byte
  const json meta = {{"type", "Metaspace"}, {"replacement", "\xE2\x96\x81"}, {"prepend_scheme", "always"}, {"split", true}};
  const auto m = load(make_json(vocab, json::array(), {{"pre_tokenizer", meta}, {"decoder", meta}, {"model", {{"ignore_merges", true}}}}));
  CHECK(m.encode("hi there") == ids{0, 1});
  CHECK(m.decode(ids{0, 1}) == "hi there");
}

TEST_CASE("UTF-8: invalid input is an error with its offset; invalid output bytes become U+FFFD", "[tokenizer]") {
  const auto t = load(make_json(abc_vocab, json::array()));
  CHECK_THROWS_WITH(t.encode("ab\xFF"), Contains("not valid UTF-8") && Contains("byte 2"));
  CHECK_THROWS_WITH(t.encode("a\xC0\x80"), Contains("byte 1"));             // overlong
  CHECK_THROWS_WITH(t.encode("\xED\xA0\x80"), Contains("byte 0"));          // a surrogate
  CHECK_THROWS_WITH(t.encode("x\xE2\x82"), Contains("byte 1"));             // truncated
  CHECK_THROWS_WITH(t.decode(ids{0, 99}), Contains("99") && Contains("index 1"));
  using mdlm::text::repair_utf8;
  CHECK(repair_utf8("a\xE2\x82") == "a\xEF\xBF\xBD");                       // one maximal subpart
  CHECK(repair_utf8("\xE0\x80") == "\xEF\xBF\xBD\xEF\xBF\xBD");             // E0 80 are two subparts
  CHECK(repair_utf8("\xF0\x9F\x98\x80\xFF!") == "\xF0\x9F\x98\x80\xEF\xBF\xBD!");
}

TEST_CASE("stream_decoder holds back incomplete UTF-8 and concatenates to decode", "[tokenizer]") {
  // Byte-level tokens of the three bytes of "€" (E2 82 AC -> 'â', 'Ĥ', '¬') and "x".
  json vocab = {{"\xC3\xA2", 0}, {"\xC4\xA4", 1}, {"\xC2\xAC", 2}, {"x", 3}};
  const auto t = load(make_json(vocab, json::array(), {{"decoder", {{"type", "ByteLevel"}}}}));
  REQUIRE(t.decode(ids{3, 0, 1, 2, 3}) == "x\xE2\x82\xACx");
  mdlm::text::stream_decoder s(t);
  CHECK(s.push(ids{3}) == "x");
  CHECK(s.push(ids{0}).empty());  // E2: incomplete
  CHECK(s.push(ids{1}).empty());  // E2 82: incomplete
  CHECK(s.push(ids{2}) == "\xE2\x82\xAC");
  CHECK(s.push(ids{0}).empty());
  CHECK(s.finish() == "\xEF\xBF\xBD");  // the stream ended inside a character
  mdlm::text::stream_decoder all(t);
  std::string joined;
  const ids seq{3, 0, 1, 2, 0, 0, 1, 3, 2};
  for (token_id id : seq) joined += all.push(ids{id});
  joined += all.finish();
  CHECK(joined == t.decode(seq));
}

TEST_CASE("encode_batch equals encode for any thread count", "[tokenizer]") {
  const auto t = tokenizer::load(std::filesystem::path(MDLM_TOKENIZER_DATA_DIR) / "tiny-bpe");
  std::vector<std::string> texts;
  for (int i = 0; i < 50; ++i) texts.push_back("The answer is " + std::to_string(i * 37) + "; hello world " + std::string(i % 7, ' ') + "!");
  std::vector<ids> expected;
  for (const auto& s : texts) expected.push_back(t.encode(s));
  for (std::size_t threads : {1, 2, 3, 8}) CHECK(t.encode_batch(texts, {}, threads) == expected);
  CHECK(t.decode(expected[3]) == texts[3]);
}

TEST_CASE("the tiny tokenizer: known ids, round trip, special tokens", "[tokenizer]") {
  const auto t = tokenizer::load(std::filesystem::path(MDLM_TOKENIZER_DATA_DIR) / "tiny-bpe");
  CHECK(t.vocab_size() == 302);
  CHECK(t.token_to_id("<|mdm_mask|>") == 298);
  CHECK(t.config().bos_token == "<|startoftext|>");
  // The first merges: "Ġ t" -> 256, "h e" -> 257, "Ġt he" -> 258.
  CHECK(t.encode(" the the") == ids{258, 258});
  for (const std::string s : {"Hello world!", "  x\n\ny  ", "中文 😀 e\xCC\x81", "<|eot_id|>a<|endoftext|>"})
    CHECK(t.decode(t.encode(s)) == (s == "中文 😀 e\xCC\x81" ? std::string("中文 😀 \xC3\xA9") : s));  // NFC composes é
}

TEST_CASE("unsupported components and malformed files are errors naming them", "[tokenizer]") {
  json t = make_json(abc_vocab, json::array());
  t["normalizer"] = {{"type", "BertNormalizer"}};
  CHECK_THROWS_WITH(load(t), Contains("normalizer") && Contains("'BertNormalizer' is not supported"));
  t = make_json(abc_vocab, json::array());
  t["pre_tokenizer"] = {{"type", "Whitespace"}};
  CHECK_THROWS_WITH(load(t), Contains("pre_tokenizer") && Contains("'Whitespace' is not supported"));
  t = make_json(abc_vocab, json::array());
  t["decoder"] = {{"type", "WordPiece"}};
  CHECK_THROWS_WITH(load(t), Contains("decoder") && Contains("'WordPiece' is not supported"));
  t = make_json(abc_vocab, json::array());
  t["model"]["type"] = "Unigram";
  CHECK_THROWS_WITH(load(t), Contains("model type 'Unigram' is not supported"));
  t = make_json(abc_vocab, json::array());
  t["model"]["dropout"] = 0.1;
  CHECK_THROWS_WITH(load(t), Contains("dropout"));
  CHECK_THROWS_WITH(load(make_json(abc_vocab, {"a c"})), Contains("merges[0]") && Contains("'ac' is not in the vocabulary"));
  CHECK_THROWS_WITH(load(make_json(abc_vocab, {"a b c"})), Contains("merges[0]"));
  CHECK_THROWS_WITH(load(make_json(abc_vocab, {"a x"})), Contains("'x' is not in the vocabulary"));
  t = make_json(abc_vocab, json::array());
  t["pre_tokenizer"] = {{"type", "Split"}, {"pattern", {{"Regex", "(unclosed"}}}, {"behavior", "Isolated"}};
  CHECK_THROWS_WITH(load(t), Contains("pre_tokenizer.pattern.Regex") && Contains("does not compile"));
  CHECK_THROWS_WITH(tokenizer::from_json("{\"model\": "), Contains("not valid JSON"));
  CHECK_THROWS_WITH(tokenizer::from_json("{}"), Contains("missing key 'model'"));
  CHECK_THROWS_WITH(tokenizer::from_json(R"({"model": {"vocab": {"a": -1}, "merges": []}})"), Contains("model.vocab['a']"));
  const auto dir = std::filesystem::temp_directory_path() / "mdlm-test-tokenizer-empty";
  std::filesystem::create_directories(dir);
  CHECK_THROWS_WITH(tokenizer::load(dir), Contains("tokenizer.json (or vocab.json + merges.txt) is missing"));
  std::filesystem::remove_all(dir);
}

TEST_CASE("Dream's published tokenizer files (shared folder)", "[.real]") {
  const std::filesystem::path dir = std::filesystem::path(MDLM_SHARED_MODELS_DIR) / "dream-v0-instruct-7b";
  const std::filesystem::path llada = std::filesystem::path(MDLM_SHARED_MODELS_DIR) / "llada-8b-instruct";
  if (!std::filesystem::exists(dir / "vocab.json")) {
    WARN("SKIPPED: shared models not found at " << MDLM_SHARED_MODELS_DIR);
    return;
  }
  const auto t = tokenizer::load(dir);
  CHECK(t.vocab_size() == 151667);
  CHECK(t.token_to_id("<|mask|>") == 151666);
  CHECK(t.token_to_id("<|im_start|>") == 151644);
  CHECK(t.config().mask_token == "<|mask|>");
  CHECK(t.config().eos_token == "<|endoftext|>");
  CHECK_FALSE(t.config().clean_up_tokenization_spaces);
  // Qwen2's well-known ids: "Hello" 9707, " world" 1879.
  CHECK(t.encode("Hello world") == ids{9707, 1879});
  CHECK(t.encode("<|im_start|>user\n") == ids{151644, 872, 198});
  // The committed copies of the configs (tests/tokenizer/data) are the shared files.
  for (const char* f : {"tokenizer_config.json", "special_tokens_map.json", "added_tokens.json"})
    CHECK(read(std::filesystem::path(MDLM_TOKENIZER_DATA_DIR) / "dream-v0-instruct-7b" / f) == read(dir / f));
  for (const char* f : {"tokenizer_config.json", "special_tokens_map.json"})
    CHECK(read(std::filesystem::path(MDLM_TOKENIZER_DATA_DIR) / "llada-8b-instruct" / f) == read(llada / f));
}
