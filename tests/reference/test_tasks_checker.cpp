// SPDX-License-Identifier: MIT
// The C++ checker (mdlm/reference/tasks/checker.hpp) against the Python checker: verdicts written by
// reference/tasks/make_expectations.py on gold and corrupted responses of the committed test split,
// plus the rules' edge cases.
#include <catch2/catch.hpp>

#include <filesystem>
#include <fstream>
#include <nlohmann/json.hpp>
#include <string>
#include <unistd.h>

#include "mdlm/reference/tasks/checker.hpp"
#include "mdlm/reference/tasks/problems.hpp"

namespace {
namespace tasks = mdlm::reference::tasks;
const std::filesystem::path data_dir{MDLM_TASKS_DATA_DIR};
}  // namespace

TEST_CASE("checker: agrees with Python on every record of the test split", "[tasks][checker]") {
  const auto problems = tasks::read_problems(data_dir / "arith_test.jsonl");
  std::ifstream in(data_dir / "task_expectations.jsonl");
  REQUIRE(in);
  std::string line;
  std::size_t n = 0, answer_correct = 0, answer_wrong = 0, steps_wrong = 0;
  while (std::getline(in, line)) {
    if (line.empty()) continue;
    const auto r = nlohmann::json::parse(line);
    const auto id = r.at("id").get<std::size_t>();
    REQUIRE(id < problems.size());
    const auto text = r.at("text").get<std::string>();
    INFO("problem " << id << " (" << r.at("kind").get<std::string>() << ") text: " << text);
    const auto& g = r.at("grade");
    const auto v = tasks::grade(text, problems[id].answer);
    if (g.at("answer").is_null()) {
      CHECK(!v.answer.has_value());
    } else {
      REQUIRE(v.answer.has_value());
      CHECK(*v.answer == g.at("answer").get<std::int64_t>());
    }
    CHECK(v.answer_correct == g.at("answer_correct").get<bool>());
    CHECK(v.n_steps == g.at("n_steps").get<std::size_t>());
    CHECK(v.n_well_formed == g.at("n_well_formed").get<std::size_t>());
    CHECK(v.n_correct_steps == g.at("n_correct_steps").get<std::size_t>());
    CHECK(v.all_steps_correct == g.at("all_steps_correct").get<bool>());
    const auto steps = tasks::grade_steps(text);
    const auto& want = r.at("steps");
    REQUIRE(steps.size() == want.size());
    for (std::size_t k = 0; k < steps.size(); ++k) {
      CHECK(steps[k].line == want[k][0].get<std::string>());
      CHECK(steps[k].grade.well_formed == want[k][1].get<bool>());
      CHECK(steps[k].grade.correct == want[k][2].get<bool>());
    }
    ++n;
    answer_correct += v.answer_correct ? 1U : 0U;
    answer_wrong += v.answer_correct ? 0U : 1U;
    steps_wrong += v.all_steps_correct ? 0U : 1U;
  }
  CHECK(n == problems.size());
  // The file exercises both verdicts of both gradings.
  CHECK(answer_correct > 100);
  CHECK(answer_wrong > 100);
  CHECK(steps_wrong > 100);
}

TEST_CASE("checker: the gold trace of every test problem is fully correct", "[tasks][checker]") {
  for (const auto& p : tasks::read_problems(data_dir / "arith_test.jsonl")) {
    const auto text = tasks::reasoning_text(p.steps) + std::string(tasks::answer_delimiter) + std::to_string(p.answer);
    const auto v = tasks::grade(text, p.answer);
    CHECK(v.answer_correct);
    CHECK(v.all_steps_correct);
    CHECK(v.n_steps == p.steps.size());
  }
}

TEST_CASE("checker: numbers, answers and steps edge cases", "[tasks][checker]") {
  CHECK(tasks::parse_number("0") == 0);
  CHECK(tasks::parse_number("-12") == -12);
  CHECK(tasks::parse_number("999999999") == 999999999);
  CHECK_FALSE(tasks::parse_number("1000000000"));
  CHECK_FALSE(tasks::parse_number("007"));
  CHECK_FALSE(tasks::parse_number("-0"));
  CHECK_FALSE(tasks::parse_number("-"));
  CHECK_FALSE(tasks::parse_number(""));
  CHECK_FALSE(tasks::parse_number("1a"));

  CHECK(tasks::extract_answer("3*4=12\n12+12=24\n24-5=19\n") == 19);
  CHECK(tasks::extract_answer("x -7") == -7);
  CHECK(tasks::extract_answer("5-7") == 7);
  CHECK(tasks::extract_answer("The answer is 42 and 43") == 42);
  CHECK(tasks::extract_answer("The answer is 1\nThe answer is   -3") == -3);
  CHECK(tasks::extract_answer("The answer is42") == 42);
  CHECK_FALSE(tasks::extract_answer("12\nThe answer is "));
  CHECK_FALSE(tasks::extract_answer("no digits"));

  CHECK(tasks::grade_step("3 * 4 = 12").correct);
  CHECK(tasks::grade_step("12/4=3").correct);
  CHECK(tasks::grade_step("5-7=-2").correct);
  const auto wrong = tasks::grade_step("12/5=2");
  CHECK(wrong.well_formed);
  CHECK_FALSE(wrong.correct);
  CHECK(tasks::grade_step("1/0=0").well_formed);
  CHECK_FALSE(tasks::grade_step("1/0=0").correct);
  CHECK_FALSE(tasks::grade_step("03+1=4").well_formed);
  CHECK_FALSE(tasks::grade_step("3+1=4=4").well_formed);
  CHECK_FALSE(tasks::grade_step("-3+1=-2").well_formed);
  CHECK_FALSE(tasks::grade_step("3+=4").well_formed);
  CHECK_FALSE(tasks::grade_step("").well_formed);

  const auto v = tasks::grade("1+1=2\n  \n2*3=7\nThe answer is 6", 6);
  CHECK(v.answer_correct);
  CHECK(v.n_steps == 2);
  CHECK(v.n_well_formed == 2);
  CHECK(v.n_correct_steps == 1);
  CHECK_FALSE(v.all_steps_correct);
  CHECK_FALSE(tasks::grade("", 0).all_steps_correct);
  CHECK(tasks::reasoning_part("a\nThe answer is 3") == "a\n");
}

TEST_CASE("problems file: answers must be integers, the path a regular file", "[tasks][audit]") {
  using Catch::Matchers::Contains;
  const auto dir = std::filesystem::temp_directory_path() / ("mdlm-problems-" + std::to_string(::getpid()));
  std::filesystem::create_directories(dir);
  for (const std::string answer : {"63.9", "1e30", "\"63\""}) {
    INFO("answer " << answer);
    const auto f = dir / "p.jsonl";
    std::ofstream(f) << R"({"id": 0, "question": "1+1=", "steps": [], "answer": )" << answer << "}\n";
    CHECK_THROWS_WITH(tasks::read_problems(f), Contains("line 1") && Contains("is not an integer"));
  }
  CHECK_THROWS_WITH(tasks::read_problems(dir), Contains("is not a regular file"));
  std::filesystem::remove_all(dir);
}
