// SPDX-License-Identifier: MIT
// The C++ tokenizer and problem layout (mdlm/reference/tasks/{tokenizer,problems}.hpp) against the
// Python twins: ids written by reference/tasks/make_expectations.py on the committed test split.
#include <catch2/catch.hpp>

#include <filesystem>
#include <fstream>
#include <nlohmann/json.hpp>
#include <stdexcept>
#include <string>
#include <vector>

#include "mdlm/reference/tasks/problems.hpp"
#include "mdlm/reference/tasks/tokenizer.hpp"

namespace {

namespace tasks = mdlm::reference::tasks;
const std::filesystem::path data_dir{MDLM_TASKS_DATA_DIR};

std::vector<nlohmann::json> expectations() {
  std::ifstream in(data_dir / "task_expectations.jsonl");
  REQUIRE(in);
  std::vector<nlohmann::json> out;
  std::string line;
  while (std::getline(in, line)) {
    if (!line.empty()) out.push_back(nlohmann::json::parse(line));
  }
  return out;
}

}  // namespace

TEST_CASE("tokenizer: loads tokenizer.json with its specials and format", "[tasks][tokenizer]") {
  const auto tok = tasks::tokenizer::load(data_dir / "tokenizer.json");
  CHECK(tok.bos() == 0);
  CHECK(tok.eos() == 1);
  CHECK(tok.mask() == 2);
  CHECK(tok.embedding_size() == 256);
  CHECK(tok.size() <= tok.embedding_size());
  CHECK(tok.spec().gen_length == 64);
  CHECK(tok.spec().answer_block == 6);
  CHECK(tok.spec().answer_delimiter == "The answer is ");
  CHECK(tok.token_string(3) == "\n");
}

TEST_CASE("tokenizer: encode / decode agree with Python on the test split", "[tasks][tokenizer]") {
  const auto tok = tasks::tokenizer::load(data_dir / "tokenizer.json");
  const auto problems = tasks::read_problems(data_dir / "arith_test.jsonl");
  const auto recs = expectations();
  REQUIRE(problems.size() == 2000);
  REQUIRE(recs.size() == problems.size());
  std::size_t with_ids = 0;
  for (std::size_t i = 0; i < recs.size(); ++i) {
    const auto& r = recs[i];
    const auto& p = problems[i];
    REQUIRE(r.at("id").get<std::int64_t>() == p.id);
    const auto text = r.at("text").get<std::string>();
    const auto ids = r.at("text_ids").get<std::vector<mdlm::token_id>>();
    INFO("problem " << p.id << " text " << text);
    CHECK(tok.encode(text) == ids);
    CHECK(tok.decode(ids) == text);
    // Round trip of the question (every problem), prompt layout against Python (first ones).
    const auto prompt = tasks::prompt_ids(tok, p.question);
    CHECK(prompt.front() == tok.bos());
    CHECK(tok.decode(prompt) == p.question + "\n");
    if (r.contains("question_ids")) {
      ++with_ids;
      CHECK(prompt == r.at("question_ids").get<std::vector<mdlm::token_id>>());
      CHECK(tasks::gold_response(tok, p, true) == r.at("gold_template").get<std::vector<mdlm::token_id>>());
      CHECK(tasks::gold_response(tok, p, false) == r.at("gold_plain").get<std::vector<mdlm::token_id>>());
    }
  }
  CHECK(with_ids >= 500);
}

TEST_CASE("tokenizer: numbers as tokens of up to three digits agree with Python", "[tasks][tokenizer]") {
  const auto num = tasks::tokenizer::load(data_dir / "tokenizer_numbers.json");
  CHECK(num.embedding_size() == 1536);
  CHECK(num.size() <= num.embedding_size());
  // Every value of the task (<= 200) is one token; longer numbers split left to right in threes.
  for (int v = 0; v <= 200; ++v) CHECK(num.encode(std::to_string(v)).size() == 1);
  const auto ids = num.encode("1234+007");
  REQUIRE(ids.size() == 4);
  CHECK(num.token_string(ids[0]) == "123");
  CHECK(num.token_string(ids[1]) == "4");
  CHECK(num.token_string(ids[3]) == "007");
  const auto problems = tasks::read_problems(data_dir / "arith_test.jsonl");
  std::size_t with_ids = 0;
  for (const auto& r : expectations()) {
    const auto text = r.at("text").get<std::string>();
    INFO("problem " << r.at("id") << " text " << text);
    const auto expected = r.at("text_ids_numbers").get<std::vector<mdlm::token_id>>();
    CHECK(num.encode(text) == expected);
    CHECK(num.decode(expected) == text);
    if (r.contains("gold_template_numbers")) {
      ++with_ids;
      const auto& p = problems.at(static_cast<std::size_t>(r.at("id").get<std::int64_t>()));
      CHECK(tasks::gold_response(num, p, true) == r.at("gold_template_numbers").get<std::vector<mdlm::token_id>>());
    }
  }
  CHECK(with_ids >= 500);
}

TEST_CASE("tokenizer: greedy longest match and specials", "[tasks][tokenizer]") {
  const tasks::tokenizer tok({"<b>", "<e>", "<m>", "a", "b", "ab", "abc", " ", " ab"}, 0, 1, 2, 12);
  CHECK(tok.encode("abcab ab") == std::vector<mdlm::token_id>{6, 5, 8});
  CHECK(tok.encode("aab") == std::vector<mdlm::token_id>{3, 5});
  CHECK(tok.encode("").empty());
  const std::vector<mdlm::token_id> ids{0, 6, 1, 2, 4};
  CHECK(tok.decode(ids) == "abcb");
  CHECK(tok.decode(ids, false) == "<b>abc<e><m>b");
  const std::vector<mdlm::token_id> padding_row{3, 10};
  CHECK(tok.decode(padding_row, true, "?") == "a?");
}

TEST_CASE("tokenizer: bad input is rejected with the bad value named", "[tasks][tokenizer]") {
  const auto tok = tasks::tokenizer::load(data_dir / "tokenizer.json");
  CHECK_THROWS_WITH(tok.encode("12\t3"), Catch::Contains("byte value 9") && Catch::Contains("position 2"));
  CHECK_THROWS_AS(tok.encode("caf\xC3\xA9"), std::invalid_argument);
  const std::vector<mdlm::token_id> out_of_range{5, 256};
  CHECK_THROWS_WITH(tok.decode(out_of_range), Catch::Contains("256"));
  const std::vector<mdlm::token_id> negative{-1};
  CHECK_THROWS_WITH(tok.decode(negative), Catch::Contains("-1"));
  CHECK_THROWS_WITH(tasks::tokenizer({"<b>", "<e>", "<m>", "a", "a"}, 0, 1, 2, 8), Catch::Contains("twice"));
  CHECK_THROWS_WITH(tasks::tokenizer({"<b>", "<e>", "<m>", "a"}, 0, 1, 7, 8), Catch::Contains("mask = 7"));
  CHECK_THROWS_WITH(tasks::tokenizer({"<b>", "<e>", "<m>", "a"}, 0, 1, 2, 3), Catch::Contains("embedding_size = 3"));
  CHECK_THROWS_WITH(tasks::tokenizer::load(data_dir / "no_such_file.json"), Catch::Contains("no_such_file.json"));
  CHECK_THROWS_WITH(tasks::read_problems(data_dir / "tokenizer.json"), Catch::Contains("line 1"));
}

TEST_CASE("problems: canvases with and without the template", "[tasks][tokenizer]") {
  const auto tok = tasks::tokenizer::load(data_dir / "tokenizer.json");
  const auto plain = tasks::make_canvas(tok, false);
  CHECK(plain.tokens == std::vector<mdlm::token_id>(64, tok.mask()));
  CHECK(plain.answer_start == 64);
  const auto tmpl = tasks::make_canvas(tok, true);
  REQUIRE(tmpl.tokens.size() == 64);
  const std::size_t r = tasks::reasoning_block_length(tok);
  CHECK(tmpl.answer_start + 6 == 64);
  CHECK(tok.decode(std::span(tmpl.tokens).subspan(r, tmpl.answer_start - r)) == "The answer is ");
  const auto cond = tasks::answer_conditioned_canvas(tok, 63);
  CHECK(tok.decode(std::span(cond.tokens).subspan(cond.answer_start)) == "63");
  CHECK(cond.tokens[cond.answer_start + 2] == tok.eos());
  CHECK(cond.tokens[0] == tok.mask());
  CHECK_THROWS_WITH(tasks::answer_conditioned_canvas(tok, 1234567), Catch::Contains("answer = 1234567"));
}
