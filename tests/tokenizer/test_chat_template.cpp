// SPDX-License-Identifier: MIT
// Chat templates: LLaDA-8B-Instruct's and Dream-v0-Instruct-7B's templates (the committed copies of
// their tokenizer_config.json) give the strings of shared/spec/models.md sections 2.5 and 3.5, Jinja
// semantics the published templates rely on, and errors for unsupported constructs.
#include <catch2/catch.hpp>

#include <filesystem>
#include <fstream>
#include <nlohmann/json.hpp>
#include <string>
#include <vector>

#include "mdlm/tokenizer/chat_template.hpp"

using Catch::Matchers::Contains;
using mdlm::text::chat_message;
using mdlm::text::chat_render_options;
using mdlm::text::chat_template;

namespace {

std::string config_template(const char* model) {
  std::ifstream f(std::filesystem::path(MDLM_TOKENIZER_DATA_DIR) / model / "tokenizer_config.json");
  REQUIRE(f.good());
  return nlohmann::json::parse(f).at("chat_template").get<std::string>();
}

std::string render(const std::string& source, const std::vector<chat_message>& messages, bool add_generation_prompt = true,
                   std::map<std::string, std::string> vars = {}) {
  return chat_template(source).render(messages, chat_render_options{add_generation_prompt, std::move(vars)});
}

}  // namespace

TEST_CASE("LLaDA-8B-Instruct's template: BOS once, trimmed content, assistant header always", "[chat_template]") {
  const std::string t = config_template("llada-8b-instruct");
  const std::map<std::string, std::string> vars{{"bos_token", "<|startoftext|>"}};
  // models.md section 2.5, one user turn "Hi".
  CHECK(render(t, {{"user", "Hi"}}, true, vars) ==
        "<|startoftext|><|start_header_id|>user<|end_header_id|>\n\nHi<|eot_id|><|start_header_id|>assistant<|end_header_id|>\n\n");
  // The assistant header is appended whatever add_generation_prompt is; only the content is trimmed.
  CHECK(render(t, {{"system", " S "}, {"user", "\tQ\n"}}, false, vars) ==
        "<|startoftext|><|start_header_id|>system<|end_header_id|>\n\nS<|eot_id|><|start_header_id|>user<|end_header_id|>\n\nQ"
        "<|eot_id|><|start_header_id|>assistant<|end_header_id|>\n\n");
}

TEST_CASE("Dream-v0-Instruct-7B's template: default system prompt, turns, generation prompt", "[chat_template]") {
  const std::string t = config_template("dream-v0-instruct-7b");
  CHECK(render(t, {{"user", "Hi"}}) ==
        "<|im_start|>system\nYou are a helpful assistant.<|im_end|>\n<|im_start|>user\nHi<|im_end|>\n<|im_start|>assistant\n");
  CHECK(render(t, {{"system", "Be brief."}, {"user", "Hi"}, {"assistant", "Hello."}}, false) ==
        "<|im_start|>system\nBe brief.<|im_end|>\n<|im_start|>user\nHi<|im_end|>\n<|im_start|>assistant\nHello.<|im_end|>\n");
  // A system turn that is not first is rendered as a turn of its own.
  CHECK(render(t, {{"user", "a"}, {"system", "b"}}, false) ==
        "<|im_start|>system\nYou are a helpful assistant.<|im_end|>\n<|im_start|>user\na<|im_end|>\n<|im_start|>system\nb<|im_end|>\n");
}

TEST_CASE("Jinja semantics: whitespace control, trim_blocks / lstrip_blocks, loops, filters, operators", "[chat_template]") {
  CHECK(render("{% for m in messages %}  {{- m.role -}}  ,{% endfor %}", {{"a", ""}, {"b", ""}}) == "a,b,");
  // trim_blocks drops the newline after a block tag; lstrip_blocks the indentation before it.
  CHECK(render("{% if true %}\n    x\n    {% endif %}\ny", {}) == "    x\ny");
  CHECK(render("{%- for m in messages %}{{ loop.index0 }}{{ loop.first }}{{ loop.last }}{{ loop.length }};{% endfor %}",
               {{"a", ""}, {"b", ""}}) == "0TrueFalse2;1FalseTrue2;");
  CHECK(render("{{ 'a' + 'b' | upper }}{{ [1, 2, 3][1:] | length }}{{ 'xyz'[::-1] }}{{ 7 // 2 }}{{ -7 // 2 }}{{ 7 % 3 }}{{ 2 ** 3 }}", {}) ==
        "aB2zyx3-418");
  CHECK(render("{{ 1 / 2 }} {{ 'a' ~ 1 }} {{ none }} {{ x }} {{ [1, 'a'] }} {{ {'k': 'v'} | tojson }}", {}) ==
        "0.5 a1 None  [1, 'a'] {\"k\": \"v\"}");
  CHECK(render("{% set ns = namespace(n=0) %}{% for m in messages %}{% set ns.n = ns.n + 1 %}{% endfor %}{{ ns.n }}",
               {{"a", ""}, {"b", ""}, {"c", ""}}) == "3");
  CHECK(render("{% for m in messages if m.role != 'b' %}{{ m.role }}{% else %}none{% endfor %}", {{"a", ""}, {"b", ""}}) == "a");
  CHECK(render("{% for x in [] %}{{ x }}{% else %}empty{% endfor %}", {}) == "empty");
  CHECK(render("{% for x in range(5) %}{% if x == 3 %}{% break %}{% endif %}{% if x == 1 %}{% continue %}{% endif %}{{ x }}{% endfor %}", {}) == "02");
  CHECK(render("{{ messages[0].content.strip() }}|{{ '  a b  '.split() | join('-') }}|{{ 'x' if false else 'y' }}|{{ 'ab' in 'cabd' }}",
               {{"u", "  hi  "}}) == "hi|a-b|y|True");
  CHECK(render("{% set s %}in{{ 1 }}{% endset %}{{ s }}{# comment #}{{ m is defined }}{{ messages is not none }}", {}) == "in1FalseTrue");
  CHECK(render("{{ messages | map(attribute='role') | join(',') }} {{ (messages | selectattr('role', 'equalto', 'b') | list | length) }}",
               {{"a", ""}, {"b", ""}}) == "a,b 1");
}

TEST_CASE("template errors: unsupported constructs at compile time, raise_exception and type errors at render", "[chat_template]") {
  CHECK_THROWS_WITH(chat_template("{{ x | wordcount }}"), Contains("filter 'wordcount' is not supported"));
  CHECK_THROWS_WITH(chat_template("{% macro f() %}{% endmacro %}"), Contains("'macro' statement is not supported"));
  CHECK_THROWS_WITH(chat_template("{{ strftime_now('%Y') }}"), Contains("function 'strftime_now' is not supported"));
  CHECK_THROWS_WITH(chat_template("{% if x %}"), Contains("'if' is never closed"));
  CHECK_THROWS_WITH(chat_template("{{ 'a' "), Contains("unterminated tag"));
  CHECK_THROWS_WITH(chat_template("line\n{{ ) }}"), Contains("line 2"));
  CHECK_THROWS_WITH(render("{{ raise_exception('Only user and assistant roles are supported!') }}", {}),
                    Contains("Only user and assistant roles are supported!"));
  CHECK_THROWS_WITH(render("{{ 'a' + 1 }}", {}), Contains("unsupported operand types for +: string and integer"));
  CHECK_THROWS_WITH(render("{{ x.y }}", {}), Contains("'y' of an undefined value"));
}
