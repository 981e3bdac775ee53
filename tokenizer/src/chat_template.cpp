// SPDX-License-Identifier: MIT
// A Jinja interpreter for Hugging Face chat templates (the subset listed in chat_template.hpp), with
// Jinja2's semantics as transformers configures it: trim_blocks and lstrip_blocks on, filters bind
// tighter than binary operators, Python string / number behaviour, undefined values print as "".
#include "mdlm/tokenizer/chat_template.hpp"

#include <algorithm>
#include <charconv>
#include <cmath>
#include <cstdint>
#include <functional>
#include <optional>
#include <stdexcept>
#include <utility>

#include "mdlm/detail/errors.hpp"
#include "mdlm/tokenizer/tokenizer.hpp"
#include "unicode.hpp"

namespace mdlm::text {

namespace {

using mdlm::detail::concat;

[[noreturn]] void fail(const std::string& what) { throw std::invalid_argument("chat template: " + what); }

// ------------------------------------------------------------------------------------------
// Values (Python semantics).
struct value;
using list_t = std::vector<value>;
using dict_t = std::vector<std::pair<std::string, value>>;  // insertion order, as Python dicts

struct value {
  enum class kind { undefined, none, boolean, integer, number, string, list, dict } k = kind::undefined;
  bool b = false;
  std::int64_t i = 0;
  double d = 0;
  std::string s;
  std::shared_ptr<list_t> l;
  std::shared_ptr<dict_t> m;
  bool is_namespace = false;

  static value none() { return make(kind::none); }
  static value boolean(bool v) {
    value x = make(kind::boolean);
    x.b = v;
    return x;
  }
  static value integer(std::int64_t v) {
    value x = make(kind::integer);
    x.i = v;
    return x;
  }
  static value number(double v) {
    value x = make(kind::number);
    x.d = v;
    return x;
  }
  static value string(std::string v) {
    value x = make(kind::string);
    x.s = std::move(v);
    return x;
  }
  static value list(list_t v = {}) {
    value x = make(kind::list);
    x.l = std::make_shared<list_t>(std::move(v));
    return x;
  }
  static value dict(dict_t v = {}) {
    value x = make(kind::dict);
    x.m = std::make_shared<dict_t>(std::move(v));
    return x;
  }
  static value make(kind k) {
    value x;
    x.k = k;
    return x;
  }
  bool defined() const noexcept { return k != kind::undefined; }
  bool numeric() const noexcept { return k == kind::integer || k == kind::number || k == kind::boolean; }
  double as_double() const noexcept { return k == kind::number ? d : static_cast<double>(k == kind::boolean ? b : i); }
  std::int64_t as_int() const noexcept { return k == kind::boolean ? (b ? 1 : 0) : i; }
  const value* find(std::string_view key) const {
    if (k != kind::dict) return nullptr;
    for (const auto& [name, v] : *m)
      if (name == key) return &v;
    return nullptr;
  }
};

const char* type_name(const value& v) {
  switch (v.k) {
    case value::kind::undefined: return "undefined";
    case value::kind::none: return "none";
    case value::kind::boolean: return "boolean";
    case value::kind::integer: return "integer";
    case value::kind::number: return "float";
    case value::kind::string: return "string";
    case value::kind::list: return "list";
    case value::kind::dict: return "dict";
  }
  return "?";
}

bool truthy(const value& v) {
  switch (v.k) {
    case value::kind::undefined:
    case value::kind::none: return false;
    case value::kind::boolean: return v.b;
    case value::kind::integer: return v.i != 0;
    case value::kind::number: return v.d != 0;
    case value::kind::string: return !v.s.empty();
    case value::kind::list: return !v.l->empty();
    case value::kind::dict: return !v.m->empty();
  }
  return false;
}

std::string float_repr(double d) {
  if (std::isnan(d)) return "nan";
  if (std::isinf(d)) return d > 0 ? "inf" : "-inf";
  char buf[64];
  const auto r = std::to_chars(buf, buf + sizeof buf, d);
  std::string s(buf, r.ptr);
  if (s.find_first_of(".en") == std::string::npos) s += ".0";
  return s;
}

std::string repr(const value& v);

std::string str(const value& v) {
  switch (v.k) {
    case value::kind::undefined: return "";
    case value::kind::none: return "None";
    case value::kind::boolean: return v.b ? "True" : "False";
    case value::kind::integer: return std::to_string(v.i);
    case value::kind::number: return float_repr(v.d);
    case value::kind::string: return v.s;
    case value::kind::list:
    case value::kind::dict: return repr(v);
  }
  return "";
}

std::string repr(const value& v) {
  if (v.k == value::kind::string) {
    std::string out = "'";
    for (char c : v.s) {
      if (c == '\'' || c == '\\') out += '\\';
      if (c == '\n') out += "\\n";
      else out += c;
    }
    return out + "'";
  }
  if (v.k == value::kind::list) {
    std::string out = "[";
    for (std::size_t i = 0; i < v.l->size(); ++i) out += (i ? ", " : "") + repr((*v.l)[i]);
    return out + "]";
  }
  if (v.k == value::kind::dict) {
    std::string out = "{";
    for (std::size_t i = 0; i < v.m->size(); ++i)
      out += (i ? ", " : "") + repr(value::string((*v.m)[i].first)) + ": " + repr((*v.m)[i].second);
    return out + "}";
  }
  return str(v);
}

// Python's json.dumps(ensure_ascii=False) as transformers' tojson filter calls it.
void to_json(const value& v, std::string& out, int indent, int depth) {
  const auto newline = [&](int d) {
    if (indent < 0) return;
    out += '\n';
    out.append(static_cast<std::size_t>(indent * d), ' ');
  };
  switch (v.k) {
    case value::kind::undefined:
    case value::kind::none: out += "null"; return;
    case value::kind::boolean: out += v.b ? "true" : "false"; return;
    case value::kind::integer: out += std::to_string(v.i); return;
    case value::kind::number: out += float_repr(v.d); return;
    case value::kind::string: {
      out += '"';
      for (char c : v.s) {
        const auto u = static_cast<unsigned char>(c);
        if (c == '"') out += "\\\"";
        else if (c == '\\') out += "\\\\";
        else if (c == '\n') out += "\\n";
        else if (c == '\r') out += "\\r";
        else if (c == '\t') out += "\\t";
        else if (c == '\b') out += "\\b";
        else if (c == '\f') out += "\\f";
        else if (u < 0x20) {
          char buf[8];
          std::snprintf(buf, sizeof buf, "\\u%04x", u);
          out += buf;
        } else {
          out += c;
        }
      }
      out += '"';
      return;
    }
    case value::kind::list:
      out += '[';
      for (std::size_t i = 0; i < v.l->size(); ++i) {
        if (i) out += indent < 0 ? ", " : ",";
        newline(depth + 1);
        to_json((*v.l)[i], out, indent, depth + 1);
      }
      if (!v.l->empty()) newline(depth);
      out += ']';
      return;
    case value::kind::dict:
      out += '{';
      for (std::size_t i = 0; i < v.m->size(); ++i) {
        if (i) out += indent < 0 ? ", " : ",";
        newline(depth + 1);
        to_json(value::string((*v.m)[i].first), out, indent, depth + 1);
        out += ": ";
        to_json((*v.m)[i].second, out, indent, depth + 1);
      }
      if (!v.m->empty()) newline(depth);
      out += '}';
      return;
  }
}

bool equal(const value& a, const value& b) {
  if (a.numeric() && b.numeric()) return a.as_double() == b.as_double();
  if (a.k != b.k) return false;
  switch (a.k) {
    case value::kind::undefined:
    case value::kind::none: return true;
    case value::kind::string: return a.s == b.s;
    case value::kind::list:
      return a.l->size() == b.l->size() && std::equal(a.l->begin(), a.l->end(), b.l->begin(), equal);
    case value::kind::dict:
      return a.m->size() == b.m->size() && std::all_of(a.m->begin(), a.m->end(), [&](const auto& e) {
               const value* o = b.find(e.first);
               return o != nullptr && equal(e.second, *o);
             });
    default: return false;
  }
}

// Python's str.isspace characters (str.strip() without arguments).
bool py_space(char32_t c) {
  return (c >= 0x09 && c <= 0x0D) || (c >= 0x1C && c <= 0x20) || c == 0x85 || c == 0xA0 || c == 0x1680 ||
         (c >= 0x2000 && c <= 0x200A) || c == 0x2028 || c == 0x2029 || c == 0x202F || c == 0x205F || c == 0x3000;
}

std::string py_strip(std::string_view s, bool left, bool right, const std::optional<std::string>& chars) {
  // Decode to code points so that multi-byte whitespace and characters are handled as Python does.
  std::vector<std::pair<std::size_t, char32_t>> cps;
  for (std::size_t i = 0; i < s.size();) {
    char32_t cp = 0;
    const std::size_t n = std::max<std::size_t>(1, detail::utf8_decode(s, i, cp));
    cps.emplace_back(i, cp);
    i += n;
  }
  const auto strip_it = [&](char32_t c) {
    if (!chars) return py_space(c);
    for (std::size_t i = 0; i < chars->size();) {
      char32_t x = 0;
      const std::size_t n = std::max<std::size_t>(1, detail::utf8_decode(*chars, i, x));
      if (x == c) return true;
      i += n;
    }
    return false;
  };
  std::size_t b = 0, e = cps.size();
  while (left && b < e && strip_it(cps[b].second)) ++b;
  while (right && e > b && strip_it(cps[e - 1].second)) --e;
  const std::size_t from = b < cps.size() ? cps[b].first : s.size();
  const std::size_t to = e < cps.size() ? cps[e].first : s.size();
  return std::string(s.substr(from, to - from));
}

std::string ascii_case(std::string s, bool upper) {
  // Python's upper/lower for ASCII; other characters through utf8proc's simple mappings.
  std::string out;
  for (std::size_t i = 0; i < s.size();) {
    char32_t cp = 0;
    const std::size_t n = std::max<std::size_t>(1, detail::utf8_decode(s, i, cp));
    if (cp < 0x80) out += static_cast<char>(upper ? std::toupper(static_cast<int>(cp)) : std::tolower(static_cast<int>(cp)));
    else if (!upper) detail::append_utf8(out, detail::to_lower(cp));
    else out.append(s, i, n);
    i += n;
  }
  return out;
}

// ------------------------------------------------------------------------------------------
// Lexing.
struct token {
  enum class kind { name, string, integer, number, op, end } k = kind::end;
  std::string text;
  std::int64_t i = 0;
  double d = 0;
};

struct raw_piece {
  enum class kind { text, expr, stmt, comment } k = kind::text;
  std::string text;
  std::vector<token> toks;
  bool trim_before = false, trim_after = false;  // '-' inside the delimiters
  bool keep_before = false, keep_after = false;  // '+' inside the delimiters
  int line = 1;
};

bool name_start(char c) { return std::isalpha(static_cast<unsigned char>(c)) != 0 || c == '_'; }
bool name_char(char c) { return std::isalnum(static_cast<unsigned char>(c)) != 0 || c == '_'; }

// Lexes tag contents from `src[pos]` up to the closer `close` ("}}" or "%}"); leaves pos after it.
std::vector<token> lex_tag(std::string_view src, std::size_t& pos, std::string_view close, bool& trim_after, bool& keep_after, int line) {
  std::vector<token> out;
  while (true) {
    while (pos < src.size() && std::isspace(static_cast<unsigned char>(src[pos])) != 0) ++pos;
    if (pos >= src.size()) fail(concat("line ", line, ": unterminated tag (missing '", close, "')"));
    if (src.compare(pos, close.size(), close) == 0) {
      pos += close.size();
      return out;
    }
    if ((src[pos] == '-' || src[pos] == '+') && src.compare(pos + 1, close.size(), close) == 0) {
      (src[pos] == '-' ? trim_after : keep_after) = true;
      pos += 1 + close.size();
      return out;
    }
    token t;
    const char c = src[pos];
    if (name_start(c)) {
      const std::size_t b = pos;
      while (pos < src.size() && name_char(src[pos])) ++pos;
      t.k = token::kind::name;
      t.text = std::string(src.substr(b, pos - b));
    } else if (std::isdigit(static_cast<unsigned char>(c)) != 0) {
      const std::size_t b = pos;
      bool is_float = false;
      while (pos < src.size() && (std::isdigit(static_cast<unsigned char>(src[pos])) != 0 || src[pos] == '_')) ++pos;
      if (pos + 1 < src.size() && src[pos] == '.' && std::isdigit(static_cast<unsigned char>(src[pos + 1])) != 0) {
        is_float = true;
        ++pos;
        while (pos < src.size() && std::isdigit(static_cast<unsigned char>(src[pos])) != 0) ++pos;
      }
      if (pos < src.size() && (src[pos] == 'e' || src[pos] == 'E')) {
        std::size_t q = pos + 1;
        if (q < src.size() && (src[q] == '+' || src[q] == '-')) ++q;
        if (q < src.size() && std::isdigit(static_cast<unsigned char>(src[q])) != 0) {
          is_float = true;
          pos = q;
          while (pos < src.size() && std::isdigit(static_cast<unsigned char>(src[pos])) != 0) ++pos;
        }
      }
      std::string digits;
      for (char ch : src.substr(b, pos - b))
        if (ch != '_') digits += ch;
      if (is_float) {
        t.k = token::kind::number;
        t.d = std::strtod(digits.c_str(), nullptr);
      } else {
        t.k = token::kind::integer;
        const auto r = std::from_chars(digits.data(), digits.data() + digits.size(), t.i);
        if (r.ec != std::errc()) fail(concat("line ", line, ": integer literal ", digits, " is out of range"));
      }
    } else if (c == '\'' || c == '"') {
      ++pos;
      std::string s;
      while (true) {
        if (pos >= src.size()) fail(concat("line ", line, ": unterminated string literal"));
        const char ch = src[pos++];
        if (ch == c) break;
        if (ch != '\\' || pos >= src.size()) {
          s += ch;
          continue;
        }
        const char e = src[pos++];
        const auto hex = [&](std::size_t n) {
          if (pos + n > src.size()) fail(concat("line ", line, ": bad escape in a string literal"));
          std::uint32_t v = 0;
          const auto r = std::from_chars(src.data() + pos, src.data() + pos + n, v, 16);
          if (r.ptr != src.data() + pos + n) fail(concat("line ", line, ": bad escape in a string literal"));
          pos += n;
          detail::append_utf8(s, static_cast<char32_t>(v));
        };
        switch (e) {
          case 'n': s += '\n'; break;
          case 't': s += '\t'; break;
          case 'r': s += '\r'; break;
          case '\\': s += '\\'; break;
          case '\'': s += '\''; break;
          case '"': s += '"'; break;
          case '0': s += '\0'; break;
          case 'a': s += '\a'; break;
          case 'b': s += '\b'; break;
          case 'f': s += '\f'; break;
          case 'v': s += '\v'; break;
          case '\n': break;  // line continuation
          case 'x': hex(2); break;
          case 'u': hex(4); break;
          case 'U': hex(8); break;
          default:  // Python keeps unknown escapes as written
            s += '\\';
            s += e;
        }
      }
      t.k = token::kind::string;
      t.text = std::move(s);
    } else {
      static const char* const ops[] = {"**", "//", "==", "!=", "<=", ">=", "+", "-", "*", "/", "%", "~", "<", ">",
                                        "=",  "(",  ")",  "[",  "]",  "{",  "}", ",", ".", ":", "|"};
      const char* found = nullptr;
      for (const char* op : ops)
        if (src.compare(pos, std::char_traits<char>::length(op), op) == 0) {
          found = op;
          break;
        }
      if (found == nullptr) fail(concat("line ", line, ": unexpected character '", std::string(1, c), "'"));
      t.k = token::kind::op;
      t.text = found;
      pos += t.text.size();
    }
    out.push_back(std::move(t));
  }
}

std::vector<raw_piece> lex(std::string_view src) {
  std::vector<raw_piece> out;
  std::size_t pos = 0;
  int line = 1;
  const auto count_lines = [&](std::size_t from, std::size_t to) {
    line += static_cast<int>(std::count(src.begin() + static_cast<std::ptrdiff_t>(from), src.begin() + static_cast<std::ptrdiff_t>(to), '\n'));
  };
  while (pos < src.size()) {
    std::size_t open = pos;
    while (true) {
      open = src.find('{', open);
      if (open == std::string_view::npos || (open + 1 < src.size() && (src[open + 1] == '{' || src[open + 1] == '%' || src[open + 1] == '#'))) break;
      ++open;
    }
    const std::size_t text_end = open == std::string_view::npos ? src.size() : open;
    if (text_end > pos) {
      raw_piece t;
      t.text = std::string(src.substr(pos, text_end - pos));
      t.line = line;
      out.push_back(std::move(t));
      count_lines(pos, text_end);
    }
    if (open == std::string_view::npos) break;
    raw_piece p;
    p.line = line;
    const char kind = src[open + 1];
    pos = open + 2;
    if (pos < src.size() && (src[pos] == '-' || src[pos] == '+')) {
      (src[pos] == '-' ? p.trim_before : p.keep_before) = true;
      ++pos;
    }
    const std::size_t tag_start = pos;
    if (kind == '#') {
      const std::size_t close = src.find("#}", pos);
      if (close == std::string_view::npos) fail(concat("line ", line, ": unterminated comment"));
      p.k = raw_piece::kind::comment;
      p.trim_after = close > pos && src[close - 1] == '-';
      pos = close + 2;
    } else {
      p.k = kind == '{' ? raw_piece::kind::expr : raw_piece::kind::stmt;
      p.toks = lex_tag(src, pos, kind == '{' ? "}}" : "%}", p.trim_after, p.keep_after, line);
    }
    count_lines(tag_start, pos);
    out.push_back(std::move(p));
  }
  // Whitespace control: '-' strips all whitespace on that side; lstrip_blocks strips the spaces and
  // tabs between a line start and a block or comment tag; trim_blocks drops the first newline after one.
  for (std::size_t i = 0; i < out.size(); ++i) {
    if (out[i].k != raw_piece::kind::text) continue;
    std::string& s = out[i].text;
    const raw_piece* prev = i > 0 ? &out[i - 1] : nullptr;
    const raw_piece* next = i + 1 < out.size() ? &out[i + 1] : nullptr;
    // The right side first, judged on the source text (a line start stays one after trim_blocks).
    if (next != nullptr && next->trim_before) {
      std::size_t k = s.size();
      while (k > 0 && std::isspace(static_cast<unsigned char>(s[k - 1])) != 0) --k;
      s.erase(k);
    } else if (next != nullptr && next->k != raw_piece::kind::expr && !next->keep_before) {
      std::size_t k = s.size();
      while (k > 0 && (s[k - 1] == ' ' || s[k - 1] == '\t')) --k;
      if ((k > 0 && s[k - 1] == '\n') || (k == 0 && prev == nullptr)) s.erase(k);
    }
    if (prev != nullptr && prev->trim_after) {
      std::size_t k = 0;
      while (k < s.size() && std::isspace(static_cast<unsigned char>(s[k])) != 0) ++k;
      s.erase(0, k);
    } else if (prev != nullptr && prev->k != raw_piece::kind::expr && !prev->keep_after && !s.empty() && s[0] == '\n') {
      s.erase(0, 1);
    }
  }
  return out;
}

// ------------------------------------------------------------------------------------------
// Syntax tree.
struct expr;
using expr_ptr = std::shared_ptr<const expr>;
struct expr {
  enum class kind { literal, name, attr, item, slice, call, filter, test, unary, binary, cond, list, dict } k = kind::literal;
  value lit;
  std::string name;  // name / attribute / filter / test / operator
  std::vector<expr_ptr> args;
  std::vector<std::pair<std::string, expr_ptr>> kwargs;
  bool negated = false;
};

struct stmt {
  enum class kind { text, output, if_, for_, set, set_block, break_, continue_, block } k = kind::text;
  std::string text;
  expr_ptr e;                      // output / set value / for iterable
  expr_ptr filter;                 // for ... if filter
  std::vector<std::string> targets;  // set / for targets
  std::string attr;                // set ns.attr
  std::vector<std::pair<expr_ptr, std::vector<stmt>>> branches;  // if / elif
  std::vector<stmt> body, else_body;
};

class parser {
 public:
  parser(const std::vector<token>& toks, int line) : t_(toks), line_(line) {}
  [[noreturn]] void error(const std::string& what) const { fail(concat("line ", line_, ": ", what)); }
  bool at_end() const { return i_ >= t_.size(); }
  const token& peek(std::size_t ahead = 0) const {
    static const token end;
    return i_ + ahead < t_.size() ? t_[i_ + ahead] : end;
  }
  bool is(std::string_view text, token::kind k = token::kind::op, std::size_t ahead = 0) const {
    const token& t = peek(ahead);
    return t.k == k && t.text == text;
  }
  bool is_name(std::string_view text, std::size_t ahead = 0) const { return is(text, token::kind::name, ahead); }
  bool accept(std::string_view text, token::kind k = token::kind::op) {
    if (!is(text, k)) return false;
    ++i_;
    return true;
  }
  bool accept_name(std::string_view text) { return accept(text, token::kind::name); }
  void expect(std::string_view text, token::kind k = token::kind::op) {
    if (!accept(text, k)) error(concat("expected '", text, "'", at_end() ? " at the end of the tag" : " before '" + peek().text + "'"));
  }
  std::string name() {
    if (peek().k != token::kind::name) error("expected a name");
    return t_[i_++].text;
  }
  void done() const {
    if (!at_end()) error(concat("unexpected '", peek().text, "'"));
  }

  //! An expression without the conditional `a if c else b` (the iterable of `for x in y if c`).
  expr_ptr plain_expression() { return or_expr(); }

  expr_ptr expression() {
    expr_ptr e = or_expr();
    if (accept_name("if")) {
      auto c = std::make_shared<expr>();
      c->k = expr::kind::cond;
      c->args.push_back(or_expr());
      c->args.push_back(e);
      auto none = std::make_shared<expr>();  // a missing else yields undefined
      c->args.push_back(accept_name("else") ? expression() : none);
      return c;
    }
    return e;
  }

 private:
  static expr_ptr binary(std::string op, expr_ptr a, expr_ptr b) {
    auto e = std::make_shared<expr>();
    e->k = expr::kind::binary;
    e->name = std::move(op);
    e->args = {std::move(a), std::move(b)};
    return e;
  }
  expr_ptr or_expr() {
    expr_ptr e = and_expr();
    while (accept_name("or")) e = binary("or", e, and_expr());
    return e;
  }
  expr_ptr and_expr() {
    expr_ptr e = not_expr();
    while (accept_name("and")) e = binary("and", e, not_expr());
    return e;
  }
  expr_ptr not_expr() {
    if (accept_name("not")) {
      auto e = std::make_shared<expr>();
      e->k = expr::kind::unary;
      e->name = "not";
      e->args.push_back(not_expr());
      return e;
    }
    return compare();
  }
  expr_ptr compare() {
    expr_ptr e = math1();
    while (true) {
      std::string op;
      for (const char* o : {"==", "!=", "<", ">", "<=", ">="})
        if (accept(o)) op = o;
      if (op.empty() && accept_name("in")) op = "in";
      if (op.empty() && is_name("not") && is_name("in", 1)) {
        i_ += 2;
        op = "not in";
      }
      if (op.empty()) return e;
      e = binary(op, e, math1());
    }
  }
  expr_ptr math1() {
    expr_ptr e = concat_expr();
    while (true) {
      if (accept("+")) e = binary("+", e, concat_expr());
      else if (accept("-")) e = binary("-", e, concat_expr());
      else return e;
    }
  }
  expr_ptr concat_expr() {
    expr_ptr e = math2();
    while (accept("~")) e = binary("~", e, math2());
    return e;
  }
  expr_ptr math2() {
    expr_ptr e = pow_expr();
    while (true) {
      std::string op;
      for (const char* o : {"*", "/", "//", "%"})
        if (accept(o)) op = o;
      if (op.empty()) return e;
      e = binary(op, e, pow_expr());
    }
  }
  expr_ptr pow_expr() {
    expr_ptr e = unary();
    while (accept("**")) e = binary("**", e, unary());
    return e;
  }
  expr_ptr unary(bool with_filter = true) {
    expr_ptr e;
    if (is("-") || is("+")) {
      auto u = std::make_shared<expr>();
      u->k = expr::kind::unary;
      u->name = t_[i_++].text;
      u->args.push_back(unary(false));
      e = u;
    } else {
      e = primary();
    }
    e = postfix(e);
    return with_filter ? filters(e) : e;
  }
  void call_args(expr& e) {
    // After '(': positional and keyword arguments up to ')'.
    while (!accept(")")) {
      if (peek().k == token::kind::name && is("=", token::kind::op, 1)) {
        std::string key = name();
        expect("=");
        e.kwargs.emplace_back(std::move(key), expression());
      } else {
        e.args.push_back(expression());
      }
      if (!is(")")) expect(",");
    }
  }
  expr_ptr postfix(expr_ptr e) {
    while (true) {
      if (accept(".")) {
        auto a = std::make_shared<expr>();
        a->k = expr::kind::attr;
        a->name = peek().k == token::kind::integer ? std::to_string(t_[i_++].i) : name();
        a->args.push_back(e);
        e = a;
      } else if (accept("[")) {
        auto a = std::make_shared<expr>();
        a->args.push_back(e);
        std::vector<expr_ptr> parts(1);
        bool slice = false;
        while (!accept("]")) {
          if (accept(":")) {
            slice = true;
            parts.emplace_back();
            continue;
          }
          if (parts.back()) error("expected ']'");
          parts.back() = expression();
        }
        if (slice) {
          if (parts.size() > 3) error("a slice has at most three parts");
          a->k = expr::kind::slice;
          parts.resize(3);
          for (auto& p : parts) a->args.push_back(p);
        } else {
          if (!parts[0]) error("empty subscript");
          a->k = expr::kind::item;
          a->args.push_back(parts[0]);
        }
        e = a;
      } else if (accept("(")) {
        auto c = std::make_shared<expr>();
        c->k = expr::kind::call;
        c->args.push_back(e);
        call_args(*c);
        e = c;
      } else {
        return e;
      }
    }
  }
  expr_ptr filters(expr_ptr e) {
    while (true) {
      if (accept("|")) {
        auto f = std::make_shared<expr>();
        f->k = expr::kind::filter;
        f->name = name();
        f->args.push_back(e);
        if (accept("(")) call_args(*f);
        e = f;
      } else if (accept_name("is")) {
        auto t = std::make_shared<expr>();
        t->k = expr::kind::test;
        t->negated = accept_name("not");
        t->name = name();
        t->args.push_back(e);
        if (accept("(")) {
          call_args(*t);
        } else if (peek().k == token::kind::string || peek().k == token::kind::integer || peek().k == token::kind::number ||
                   (peek().k == token::kind::name && !is_name("and") && !is_name("or") && !is_name("else") && !is_name("if") &&
                    !is_name("is") && !is_name("in") && !is_name("not"))) {
          t->args.push_back(postfix(primary()));
        }
        e = t;
      } else {
        return e;
      }
    }
  }
  expr_ptr primary() {
    if (at_end()) error("expected an expression");
    const token& t = t_[i_++];
    auto e = std::make_shared<expr>();
    switch (t.k) {
      case token::kind::string: {
        std::string s = t.text;
        while (peek().k == token::kind::string) s += t_[i_++].text;  // adjacent literals concatenate
        e->lit = value::string(std::move(s));
        return e;
      }
      case token::kind::integer: e->lit = value::integer(t.i); return e;
      case token::kind::number: e->lit = value::number(t.d); return e;
      case token::kind::name:
        if (t.text == "true" || t.text == "True") e->lit = value::boolean(true);
        else if (t.text == "false" || t.text == "False") e->lit = value::boolean(false);
        else if (t.text == "none" || t.text == "None") e->lit = value::none();
        else {
          e->k = expr::kind::name;
          e->name = t.text;
        }
        return e;
      case token::kind::op:
        if (t.text == "(") {
          expr_ptr inner = expression();
          if (accept(",")) {  // a tuple: evaluated as a list
            e->k = expr::kind::list;
            e->args.push_back(inner);
            while (!accept(")")) {
              e->args.push_back(expression());
              if (!is(")")) expect(",");
            }
            return e;
          }
          expect(")");
          return inner;
        }
        if (t.text == "[") {
          e->k = expr::kind::list;
          while (!accept("]")) {
            e->args.push_back(expression());
            if (!is("]")) expect(",");
          }
          return e;
        }
        if (t.text == "{") {
          e->k = expr::kind::dict;
          while (!accept("}")) {
            e->args.push_back(expression());
            expect(":");
            e->args.push_back(expression());
            if (!is("}")) expect(",");
          }
          return e;
        }
        break;
      case token::kind::end: break;
    }
    error(concat("unexpected '", t.text, "'"));
  }

  const std::vector<token>& t_;
  std::size_t i_ = 0;
  int line_;
};

class builder {
 public:
  explicit builder(std::vector<raw_piece> pieces) : p_(std::move(pieces)) {}
  std::vector<stmt> parse() {
    std::string end;
    auto body = block({}, end);
    return body;
  }

 private:
  // Parses statements until one of `ends` (a block keyword); `end` receives it.
  std::vector<stmt> block(const std::vector<std::string>& ends, std::string& end) {
    std::vector<stmt> out;
    while (i_ < p_.size()) {
      const raw_piece& rp = p_[i_++];
      if (rp.k == raw_piece::kind::comment) continue;
      if (rp.k == raw_piece::kind::text) {
        if (!rp.text.empty()) out.push_back(stmt{stmt::kind::text, rp.text, {}, {}, {}, {}, {}, {}, {}});
        continue;
      }
      parser ps(rp.toks, rp.line);
      if (rp.k == raw_piece::kind::expr) {
        stmt s;
        s.k = stmt::kind::output;
        s.e = ps.expression();
        ps.done();
        out.push_back(std::move(s));
        continue;
      }
      const std::string kw = ps.name();
      if (std::find(ends.begin(), ends.end(), kw) != ends.end()) {
        end = kw;
        current_ = &rp;
        return out;
      }
      stmt s;
      if (kw == "if") {
        s.k = stmt::kind::if_;
        expr_ptr cond = ps.expression();
        ps.done();
        while (true) {
          std::string e;
          auto body = block({"elif", "else", "endif"}, e);
          if (e.empty()) unclosed("if", rp.line);
          s.branches.emplace_back(cond, std::move(body));
          if (e == "endif") break;
          parser tail(current_->toks, current_->line);
          tail.name();
          if (e == "else") {
            tail.done();
            std::string e2;
            s.else_body = block({"endif"}, e2);
            if (e2.empty()) unclosed("if", rp.line);
            break;
          }
          cond = tail.expression();
          tail.done();
        }
      } else if (kw == "for") {
        s.k = stmt::kind::for_;
        s.targets.push_back(ps.name());
        while (ps.accept(",")) s.targets.push_back(ps.name());
        ps.expect("in", token::kind::name);
        s.e = ps.plain_expression();
        if (ps.accept_name("if")) s.filter = ps.expression();
        if (ps.accept_name("recursive")) ps.error("recursive loops are not supported");
        ps.done();
        std::string e;
        s.body = block({"else", "endfor"}, e);
        if (e.empty()) unclosed("for", rp.line);
        if (e == "else") {
          s.else_body = block({"endfor"}, e);
          if (e.empty()) unclosed("for", rp.line);
        }
      } else if (kw == "set") {
        s.targets.push_back(ps.name());
        if (ps.accept(".")) s.attr = ps.name();
        if (ps.accept("=")) {
          s.k = stmt::kind::set;
          s.e = ps.expression();
          ps.done();
        } else {
          ps.done();
          if (!s.attr.empty()) ps.error("a block set cannot assign an attribute");
          s.k = stmt::kind::set_block;
          std::string e;
          s.body = block({"endset"}, e);
          if (e.empty()) unclosed("set", rp.line);
        }
      } else if (kw == "break" || kw == "continue") {
        ps.done();
        s.k = kw == "break" ? stmt::kind::break_ : stmt::kind::continue_;
      } else if (kw == "generation") {
        // transformers' AssistantTracker block: renders its body unchanged.
        ps.done();
        s.k = stmt::kind::block;
        std::string e;
        s.body = block({"endgeneration"}, e);
        if (e.empty()) unclosed("generation", rp.line);
      } else {
        ps.error(concat("the '", kw, "' statement is not supported"));
      }
      out.push_back(std::move(s));
    }
    return out;
  }
  [[noreturn]] static void unclosed(const std::string& what, int line) { fail(concat("line ", line, ": '", what, "' is never closed")); }

  std::vector<raw_piece> p_;
  std::size_t i_ = 0;
  const raw_piece* current_ = nullptr;
};

// ------------------------------------------------------------------------------------------
// Evaluation.
struct loop_control {
  enum class kind { none, break_, continue_ } k = kind::none;
};

class interpreter {
 public:
  std::vector<std::vector<std::pair<std::string, value>>> scopes;

  value lookup(const std::string& n) const {
    for (auto s = scopes.rbegin(); s != scopes.rend(); ++s)
      for (const auto& [name, v] : *s)
        if (name == n) return v;
    return {};
  }
  void assign(const std::string& n, value v) {
    auto& top = scopes.back();
    for (auto& [name, old] : top)
      if (name == n) {
        old = std::move(v);
        return;
      }
    top.emplace_back(n, std::move(v));
  }

  loop_control run(const std::vector<stmt>& body, std::string& out) {
    for (const auto& s : body) {
      const loop_control c = run(s, out);
      if (c.k != loop_control::kind::none) return c;
    }
    return {};
  }

  loop_control run(const stmt& s, std::string& out) {
    switch (s.k) {
      case stmt::kind::text: out += s.text; break;
      case stmt::kind::output: out += str(eval(*s.e)); break;
      case stmt::kind::if_:
        for (const auto& [cond, body] : s.branches)
          if (truthy(eval(*cond))) return run(body, out);
        return run(s.else_body, out);
      case stmt::kind::for_: return run_for(s, out);
      case stmt::kind::set:
        if (!s.attr.empty()) {
          value ns = lookup(s.targets[0]);
          if (ns.k != value::kind::dict || !ns.is_namespace) fail(concat("cannot set attribute '", s.attr, "' of '", s.targets[0], "' (not a namespace)"));
          const value v = eval(*s.e);
          for (auto& [name, old] : *ns.m)
            if (name == s.attr) {
              old = v;
              return {};
            }
          ns.m->emplace_back(s.attr, v);
        } else {
          assign_targets(s.targets, eval(*s.e));
        }
        break;
      case stmt::kind::set_block: {
        std::string captured;
        run(s.body, captured);
        assign(s.targets[0], value::string(std::move(captured)));
        break;
      }
      case stmt::kind::break_: return {loop_control::kind::break_};
      case stmt::kind::continue_: return {loop_control::kind::continue_};
      case stmt::kind::block: return run(s.body, out);
    }
    return {};
  }

  void assign_targets(const std::vector<std::string>& targets, const value& v) {
    if (targets.size() == 1) {
      assign(targets[0], v);
      return;
    }
    if (v.k != value::kind::list || v.l->size() != targets.size())
      fail(concat("cannot unpack a ", type_name(v), " into ", targets.size(), " names"));
    for (std::size_t i = 0; i < targets.size(); ++i) assign(targets[i], (*v.l)[i]);
  }

  list_t iterate(const value& v) const {
    switch (v.k) {
      case value::kind::undefined: return {};
      case value::kind::list: return *v.l;
      case value::kind::dict: {
        list_t keys;
        for (const auto& e : *v.m) keys.push_back(value::string(e.first));
        return keys;
      }
      case value::kind::string: {
        list_t chars;
        for (std::size_t i = 0; i < v.s.size();) {
          char32_t cp = 0;
          const std::size_t n = std::max<std::size_t>(1, detail::utf8_decode(v.s, i, cp));
          chars.push_back(value::string(v.s.substr(i, n)));
          i += n;
        }
        return chars;
      }
      default: fail(concat("a ", type_name(v), " is not iterable"));
    }
  }

  loop_control run_for(const stmt& s, std::string& out) {
    list_t items = iterate(eval(*s.e));
    if (s.filter) {
      list_t kept;
      for (const auto& it : items) {
        scopes.emplace_back();
        assign_targets(s.targets, it);
        const bool keep = truthy(eval(*s.filter));
        scopes.pop_back();
        if (keep) kept.push_back(it);
      }
      items = std::move(kept);
    }
    if (items.empty()) return run(s.else_body, out);
    const auto n = static_cast<std::int64_t>(items.size());
    for (std::int64_t i = 0; i < n; ++i) {
      scopes.emplace_back();
      dict_t loop{{"index", value::integer(i + 1)},     {"index0", value::integer(i)},
                  {"revindex", value::integer(n - i)},  {"revindex0", value::integer(n - i - 1)},
                  {"first", value::boolean(i == 0)},    {"last", value::boolean(i == n - 1)},
                  {"length", value::integer(n)}};
      if (i > 0) loop.emplace_back("previtem", items[static_cast<std::size_t>(i - 1)]);
      if (i + 1 < n) loop.emplace_back("nextitem", items[static_cast<std::size_t>(i + 1)]);
      assign("loop", value::dict(std::move(loop)));
      assign_targets(s.targets, items[static_cast<std::size_t>(i)]);
      const loop_control c = run(s.body, out);
      scopes.pop_back();
      if (c.k == loop_control::kind::break_) break;
    }
    return {};
  }

  value attribute(const value& obj, const std::string& name) const {
    if (obj.k == value::kind::undefined) fail(concat("'", name, "' of an undefined value"));
    if (const value* v = obj.find(name)) return *v;
    if (obj.k == value::kind::list) {
      std::int64_t index = 0;
      const auto r = std::from_chars(name.data(), name.data() + name.size(), index);
      if (r.ec == std::errc() && r.ptr == name.data() + name.size()) return item(obj, value::integer(index));
    }
    return {};
  }

  value item(const value& obj, const value& key) const {
    if (obj.k == value::kind::undefined) fail("subscript of an undefined value");
    if (obj.k == value::kind::dict) {
      if (key.k != value::kind::string) return {};
      const value* v = obj.find(key.s);
      return v ? *v : value{};
    }
    if ((obj.k == value::kind::list || obj.k == value::kind::string) && (key.k == value::kind::integer || key.k == value::kind::boolean)) {
      const list_t seq = obj.k == value::kind::list ? *obj.l : iterate(obj);
      auto i = key.as_int();
      if (i < 0) i += static_cast<std::int64_t>(seq.size());
      if (i < 0 || i >= static_cast<std::int64_t>(seq.size())) return {};
      return seq[static_cast<std::size_t>(i)];
    }
    return {};
  }

  value slice(const value& obj, const value& a, const value& b, const value& c) const {
    if (obj.k != value::kind::list && obj.k != value::kind::string) fail(concat("cannot slice a ", type_name(obj)));
    const list_t seq = obj.k == value::kind::list ? *obj.l : iterate(obj);
    const auto n = static_cast<std::int64_t>(seq.size());
    const std::int64_t step = c.defined() && c.k != value::kind::none ? c.as_int() : 1;
    if (step == 0) fail("slice step cannot be zero");
    const auto clamp = [&](const value& v, std::int64_t dflt) {
      if (!v.defined() || v.k == value::kind::none) return dflt;
      std::int64_t x = v.as_int();
      if (x < 0) x += n;
      return step > 0 ? std::clamp<std::int64_t>(x, 0, n) : std::clamp<std::int64_t>(x, -1, n - 1);
    };
    const std::int64_t from = clamp(a, step > 0 ? 0 : n - 1), to = clamp(b, step > 0 ? n : -1);
    list_t out;
    for (std::int64_t i = from; step > 0 ? i < to : i > to; i += step) out.push_back(seq[static_cast<std::size_t>(i)]);
    if (obj.k == value::kind::string) {
      std::string s;
      for (const auto& x : out) s += x.s;
      return value::string(std::move(s));
    }
    return value::list(std::move(out));
  }

  std::vector<value> eval_args(const expr& e, std::size_t skip) {
    std::vector<value> out;
    for (std::size_t i = skip; i < e.args.size(); ++i) out.push_back(eval(*e.args[i]));
    return out;
  }
  std::optional<value> kwarg(const expr& e, std::string_view name) {
    for (const auto& [k, v] : e.kwargs)
      if (k == name) return eval(*v);
    return std::nullopt;
  }
  static const value& arg(const std::vector<value>& a, std::size_t i, const value& dflt) { return i < a.size() ? a[i] : dflt; }

  value arithmetic(const std::string& op, const value& a, const value& b) const {
    if (op == "+") {
      if (a.k == value::kind::string && b.k == value::kind::string) return value::string(a.s + b.s);
      if (a.k == value::kind::list && b.k == value::kind::list) {
        list_t r = *a.l;
        r.insert(r.end(), b.l->begin(), b.l->end());
        return value::list(std::move(r));
      }
    }
    if (op == "*" && ((a.k == value::kind::string && b.k == value::kind::integer) || (a.k == value::kind::integer && b.k == value::kind::string))) {
      const value& s = a.k == value::kind::string ? a : b;
      std::string r;
      for (std::int64_t i = 0; i < (a.k == value::kind::integer ? a.i : b.i); ++i) r += s.s;
      return value::string(std::move(r));
    }
    if (!a.numeric() || !b.numeric()) fail(concat("unsupported operand types for ", op, ": ", type_name(a), " and ", type_name(b)));
    const bool ints = a.k != value::kind::number && b.k != value::kind::number;
    if (op == "/") {
      if (b.as_double() == 0) fail("division by zero");
      return value::number(a.as_double() / b.as_double());
    }
    if (ints) {
      const std::int64_t x = a.as_int(), y = b.as_int();
      if (op == "+") return value::integer(x + y);
      if (op == "-") return value::integer(x - y);
      if (op == "*") return value::integer(x * y);
      if (y == 0 && (op == "//" || op == "%")) fail("division by zero");
      const std::int64_t q = x / y - ((x % y != 0 && ((x < 0) != (y < 0))) ? 1 : 0);  // Python floors
      if (op == "//") return value::integer(q);
      if (op == "%") return value::integer(x - q * y);
      if (op == "**") return y >= 0 ? value::integer(static_cast<std::int64_t>(std::pow(x, y))) : value::number(std::pow(x, y));
    }
    const double x = a.as_double(), y = b.as_double();
    if (op == "+") return value::number(x + y);
    if (op == "-") return value::number(x - y);
    if (op == "*") return value::number(x * y);
    if (op == "//") return value::number(std::floor(x / y));
    if (op == "%") return value::number(x - std::floor(x / y) * y);
    return value::number(std::pow(x, y));
  }

  bool less(const value& a, const value& b) const {
    if (a.numeric() && b.numeric()) return a.as_double() < b.as_double();
    if (a.k == value::kind::string && b.k == value::kind::string) return a.s < b.s;
    fail(concat("cannot compare ", type_name(a), " and ", type_name(b)));
  }

  bool contains(const value& container, const value& x) const {
    switch (container.k) {
      case value::kind::string:
        if (x.k != value::kind::string) fail("'in <string>' needs a string on the left");
        return container.s.find(x.s) != std::string::npos;
      case value::kind::list: return std::any_of(container.l->begin(), container.l->end(), [&](const value& e) { return equal(e, x); });
      case value::kind::dict: return x.k == value::kind::string && container.find(x.s) != nullptr;
      case value::kind::undefined: return false;
      default: fail(concat("'in' needs a string, list or dict, not a ", type_name(container)));
    }
  }

  value eval(const expr& e) {
    switch (e.k) {
      case expr::kind::literal: return e.lit;
      case expr::kind::name: return lookup(e.name);
      case expr::kind::attr: return attribute(eval(*e.args[0]), e.name);
      case expr::kind::item: return item(eval(*e.args[0]), eval(*e.args[1]));
      case expr::kind::slice:
        return slice(eval(*e.args[0]), e.args[1] ? eval(*e.args[1]) : value{}, e.args[2] ? eval(*e.args[2]) : value{},
                     e.args[3] ? eval(*e.args[3]) : value{});
      case expr::kind::list: {
        list_t l;
        for (const auto& a : e.args) l.push_back(eval(*a));
        return value::list(std::move(l));
      }
      case expr::kind::dict: {
        dict_t m;
        for (std::size_t i = 0; i + 1 < e.args.size(); i += 2) {
          const value k = eval(*e.args[i]);
          if (k.k != value::kind::string) fail("dict keys must be strings");
          m.emplace_back(k.s, eval(*e.args[i + 1]));
        }
        return value::dict(std::move(m));
      }
      case expr::kind::cond: return truthy(eval(*e.args[0])) ? eval(*e.args[1]) : eval(*e.args[2]);
      case expr::kind::unary: {
        const value v = eval(*e.args[0]);
        if (e.name == "not") return value::boolean(!truthy(v));
        if (!v.numeric()) fail(concat("bad operand type for unary ", e.name, ": ", type_name(v)));
        if (e.name == "+") return v.k == value::kind::boolean ? value::integer(v.as_int()) : v;
        return v.k == value::kind::number ? value::number(-v.d) : value::integer(-v.as_int());
      }
      case expr::kind::binary: {
        if (e.name == "and") {
          value a = eval(*e.args[0]);
          return truthy(a) ? eval(*e.args[1]) : a;
        }
        if (e.name == "or") {
          value a = eval(*e.args[0]);
          return truthy(a) ? a : eval(*e.args[1]);
        }
        const value a = eval(*e.args[0]), b = eval(*e.args[1]);
        if (e.name == "~") return value::string(str(a) + str(b));
        if (e.name == "==") return value::boolean(equal(a, b));
        if (e.name == "!=") return value::boolean(!equal(a, b));
        if (e.name == "<") return value::boolean(less(a, b));
        if (e.name == ">") return value::boolean(less(b, a));
        if (e.name == "<=") return value::boolean(!less(b, a));
        if (e.name == ">=") return value::boolean(!less(a, b));
        if (e.name == "in") return value::boolean(contains(b, a));
        if (e.name == "not in") return value::boolean(!contains(b, a));
        return arithmetic(e.name, a, b);
      }
      case expr::kind::call: return call(e);
      case expr::kind::filter: return filter(e);
      case expr::kind::test: {
        const bool r = test(e);
        return value::boolean(e.negated ? !r : r);
      }
    }
    return {};
  }

  value call(const expr& e) {
    const expr& callee = *e.args[0];
    std::vector<value> a = eval_args(e, 1);
    if (callee.k == expr::kind::attr) return method(eval(*callee.args[0]), callee.name, a, e);
    if (callee.k != expr::kind::name) fail("only functions and methods can be called");
    const std::string& f = callee.name;
    if (f == "raise_exception") fail(a.empty() ? "raise_exception()" : str(a[0]));
    if (f == "range") {
      std::int64_t from = 0, to = 0, step = 1;
      if (a.size() == 1) to = a[0].as_int();
      else if (a.size() >= 2) {
        from = a[0].as_int();
        to = a[1].as_int();
        if (a.size() > 2) step = a[2].as_int();
      }
      if (step == 0) fail("range() step cannot be zero");
      list_t out;
      for (std::int64_t i = from; step > 0 ? i < to : i > to; i += step) out.push_back(value::integer(i));
      return value::list(std::move(out));
    }
    if (f == "namespace" || f == "dict") {
      value ns = value::dict();
      ns.is_namespace = f == "namespace";
      for (const auto& [k, v] : e.kwargs) ns.m->emplace_back(k, eval(*v));
      return ns;
    }
    fail(concat("the function '", f, "' is not supported"));
  }

  value method(const value& obj, const std::string& m, const std::vector<value>& a, const expr& e) {
    static const value none = value::none();
    if (obj.k == value::kind::string) {
      const auto chars = [&](std::size_t i) -> std::optional<std::string> {
        const value& v = arg(a, i, none);
        if (v.k == value::kind::string) return v.s;
        return std::nullopt;
      };
      if (m == "strip") return value::string(py_strip(obj.s, true, true, chars(0)));
      if (m == "lstrip") return value::string(py_strip(obj.s, true, false, chars(0)));
      if (m == "rstrip") return value::string(py_strip(obj.s, false, true, chars(0)));
      if (m == "upper") return value::string(ascii_case(obj.s, true));
      if (m == "lower") return value::string(ascii_case(obj.s, false));
      if (m == "title" || m == "capitalize") return filter_string(m, obj);
      if (m == "startswith" || m == "endswith") {
        const value& p = arg(a, 0, none);
        const auto check = [&](const std::string& x) {
          return m == "startswith" ? obj.s.rfind(x, 0) == 0
                                   : obj.s.size() >= x.size() && obj.s.compare(obj.s.size() - x.size(), x.size(), x) == 0;
        };
        if (p.k == value::kind::string) return value::boolean(check(p.s));
        if (p.k == value::kind::list) return value::boolean(std::any_of(p.l->begin(), p.l->end(), [&](const value& x) { return x.k == value::kind::string && check(x.s); }));
        fail(concat(m, "() needs a string"));
      }
      if (m == "replace") {
        std::string s = obj.s;
        const value& from = arg(a, 0, none);
        const value& to = arg(a, 1, none);
        if (from.k != value::kind::string || to.k != value::kind::string) fail("replace() needs two strings");
        if (from.s.empty()) fail("replace() with an empty pattern is not supported");
        std::string out;
        std::size_t i = 0, j = 0;
        while ((j = s.find(from.s, i)) != std::string::npos) {
          out.append(s, i, j - i);
          out += to.s;
          i = j + from.s.size();
        }
        out.append(s, i, std::string::npos);
        return value::string(std::move(out));
      }
      if (m == "split") {
        list_t parts;
        const value& sep = arg(a, 0, none);
        if (sep.k == value::kind::string) {
          if (sep.s.empty()) fail("split() with an empty separator");
          std::size_t i = 0, j = 0;
          while ((j = obj.s.find(sep.s, i)) != std::string::npos) {
            parts.push_back(value::string(obj.s.substr(i, j - i)));
            i = j + sep.s.size();
          }
          parts.push_back(value::string(obj.s.substr(i)));
        } else {
          std::string cur;
          for (std::size_t i = 0; i <= obj.s.size(); ++i) {
            if (i == obj.s.size() || std::isspace(static_cast<unsigned char>(obj.s[i])) != 0) {
              if (!cur.empty()) parts.push_back(value::string(cur));
              cur.clear();
            } else {
              cur += obj.s[i];
            }
          }
        }
        return value::list(std::move(parts));
      }
    }
    if (obj.k == value::kind::dict) {
      if (m == "items" || m == "keys" || m == "values") {
        list_t out;
        for (const auto& [k, v] : *obj.m)
          out.push_back(m == "keys" ? value::string(k) : m == "values" ? v : value::list({value::string(k), v}));
        return value::list(std::move(out));
      }
      if (m == "get") {
        const value& k = arg(a, 0, none);
        const value* v = k.k == value::kind::string ? obj.find(k.s) : nullptr;
        return v ? *v : (a.size() > 1 ? a[1] : value::none());
      }
    }
    (void)e;
    fail(concat("the method '", m, "' of a ", type_name(obj), " is not supported"));
  }

  static value filter_string(const std::string& f, const value& v) {
    std::string s = str(v);
    bool start = true;
    for (auto& c : s) {
      const bool alpha = std::isalpha(static_cast<unsigned char>(c)) != 0;
      if (f == "capitalize") c = static_cast<char>(start ? std::toupper(static_cast<unsigned char>(c)) : std::tolower(static_cast<unsigned char>(c)));
      else if (alpha) c = static_cast<char>(start ? std::toupper(static_cast<unsigned char>(c)) : std::tolower(static_cast<unsigned char>(c)));
      start = f == "capitalize" ? false : !alpha;
    }
    return value::string(std::move(s));
  }

  value filter(const expr& e) {
    const value v = eval(*e.args[0]);
    const std::vector<value> a = eval_args(e, 1);
    static const value none = value::none();
    const std::string& f = e.name;
    if (f == "trim") {
      const value& chars = arg(a, 0, none);
      return value::string(py_strip(str(v), true, true, chars.k == value::kind::string ? std::optional<std::string>(chars.s) : std::nullopt));
    }
    if (f == "tojson") {
      std::string out;
      const auto indent = kwarg(e, "indent");
      to_json(v, out, indent && indent->numeric() ? static_cast<int>(indent->as_int()) : (a.empty() ? -1 : static_cast<int>(a[0].as_int())), 0);
      return value::string(std::move(out));
    }
    if (f == "length" || f == "count") {
      if (v.k == value::kind::string) {
        std::int64_t n = 0;
        for (char c : v.s) n += (static_cast<unsigned char>(c) & 0xC0) != 0x80 ? 1 : 0;
        return value::integer(n);
      }
      if (v.k == value::kind::list) return value::integer(static_cast<std::int64_t>(v.l->size()));
      if (v.k == value::kind::dict) return value::integer(static_cast<std::int64_t>(v.m->size()));
      if (v.k == value::kind::undefined) return value::integer(0);
      fail(concat("a ", type_name(v), " has no length"));
    }
    if (f == "upper" || f == "lower") return value::string(ascii_case(str(v), f == "upper"));
    if (f == "title" || f == "capitalize") return filter_string(f, v);
    if (f == "string" || f == "safe") return value::string(str(v));
    if (f == "default" || f == "d") {
      const bool boolean = truthy(arg(a, 1, value::boolean(false))) || truthy(kwarg(e, "boolean").value_or(value::boolean(false)));
      if (!v.defined() || (boolean && !truthy(v))) return a.empty() ? value::string("") : a[0];
      return v;
    }
    if (f == "join") {
      const value sep = a.empty() ? value::string("") : a[0];
      std::string out;
      const auto attr = kwarg(e, "attribute");
      bool first = true;
      for (const auto& x : iterate(v)) {
        out += (first ? "" : str(sep)) + str(attr ? attribute(x, str(*attr)) : x);
        first = false;
      }
      return value::string(std::move(out));
    }
    if (f == "first" || f == "last") {
      const list_t items = iterate(v);
      if (items.empty()) return {};
      return f == "first" ? items.front() : items.back();
    }
    if (f == "list") return value::list(iterate(v));
    if (f == "reverse") {
      if (v.k == value::kind::string) return slice(v, {}, {}, value::integer(-1));
      list_t items = iterate(v);
      std::reverse(items.begin(), items.end());
      return value::list(std::move(items));
    }
    if (f == "items") {
      if (v.k == value::kind::dict) return method(v, "items", {}, e);
      if (v.defined()) fail("items needs a dict");
      return value::list();
    }
    if (f == "replace") return method(value::string(str(v)), "replace", a, e);
    if (f == "int") {
      if (v.numeric()) return value::integer(v.k == value::kind::number ? static_cast<std::int64_t>(v.d) : v.as_int());
      std::int64_t x = 0;
      const std::string s = py_strip(str(v), true, true, std::nullopt);
      const auto r = std::from_chars(s.data(), s.data() + s.size(), x);
      return value::integer(r.ec == std::errc() && r.ptr == s.data() + s.size() ? x : (a.empty() ? 0 : a[0].as_int()));
    }
    if (f == "float") return value::number(v.numeric() ? v.as_double() : std::strtod(str(v).c_str(), nullptr));
    if (f == "abs") {
      if (!v.numeric()) fail("abs needs a number");
      return v.k == value::kind::number ? value::number(std::fabs(v.d)) : value::integer(v.as_int() < 0 ? -v.as_int() : v.as_int());
    }
    if (f == "indent") {
      const std::int64_t width = a.empty() ? 4 : a[0].as_int();
      const bool first = truthy(kwarg(e, "first").value_or(arg(a, 1, value::boolean(false))));
      const std::string pad(static_cast<std::size_t>(std::max<std::int64_t>(0, width)), ' ');
      const std::string s = str(v);
      std::string out = first ? pad : "";
      for (std::size_t i = 0; i < s.size(); ++i) {
        out += s[i];
        if (s[i] == '\n' && i + 1 < s.size() && s[i + 1] != '\n') out += pad;
      }
      return value::string(std::move(out));
    }
    if (f == "map") {
      const auto attr = kwarg(e, "attribute");
      list_t out;
      for (const auto& x : iterate(v)) {
        if (attr) out.push_back(attribute(x, str(*attr)));
        else if (!a.empty() && a[0].k == value::kind::string) {
          auto fe = std::make_shared<expr>();
          fe->k = expr::kind::filter;
          fe->name = a[0].s;
          auto lit = std::make_shared<expr>();
          lit->lit = x;
          fe->args.push_back(lit);
          out.push_back(filter(*fe));
        } else fail("map needs attribute= or a filter name");
      }
      return value::list(std::move(out));
    }
    if (f == "selectattr" || f == "rejectattr") {
      if (a.empty() || a[0].k != value::kind::string) fail(concat(f, " needs an attribute name"));
      list_t out;
      for (const auto& x : iterate(v)) {
        const value at = attribute(x, a[0].s);
        bool ok = truthy(at);
        if (a.size() > 1) {
          auto te = std::make_shared<expr>();
          te->k = expr::kind::test;
          te->name = str(a[1]);
          auto lit = std::make_shared<expr>();
          lit->lit = at;
          te->args.push_back(lit);
          for (std::size_t i = 2; i < a.size(); ++i) {
            auto al = std::make_shared<expr>();
            al->lit = a[i];
            te->args.push_back(al);
          }
          ok = test(*te);
        }
        if (ok == (f == "selectattr")) out.push_back(x);
      }
      return value::list(std::move(out));
    }
    if (f == "unique") {
      list_t out;
      for (const auto& x : iterate(v))
        if (std::none_of(out.begin(), out.end(), [&](const value& y) { return equal(x, y); })) out.push_back(x);
      return value::list(std::move(out));
    }
    fail(concat("the filter '", f, "' is not supported"));
  }

  bool test(const expr& e) {
    const std::string& t = e.name;
    if (t == "defined") return eval(*e.args[0]).defined();
    if (t == "undefined") return !eval(*e.args[0]).defined();
    const value v = eval(*e.args[0]);
    const std::vector<value> a = eval_args(e, 1);
    static const value none = value::none();
    if (t == "none") return v.k == value::kind::none;
    if (t == "string") return v.k == value::kind::string;
    if (t == "number") return v.k == value::kind::integer || v.k == value::kind::number;
    if (t == "integer") return v.k == value::kind::integer;
    if (t == "float") return v.k == value::kind::number;
    if (t == "boolean") return v.k == value::kind::boolean;
    if (t == "true") return v.k == value::kind::boolean && v.b;
    if (t == "false") return v.k == value::kind::boolean && !v.b;
    if (t == "mapping") return v.k == value::kind::dict;
    if (t == "sequence" || t == "iterable") return v.k == value::kind::list || v.k == value::kind::string || v.k == value::kind::dict;
    if (t == "even" || t == "odd") return v.numeric() && (v.as_int() % 2 == 0) == (t == "even");
    if (t == "divisibleby") return v.numeric() && arg(a, 0, none).numeric() && arg(a, 0, none).as_int() != 0 && v.as_int() % arg(a, 0, none).as_int() == 0;
    if (t == "equalto" || t == "eq" || t == "==" || t == "sameas") return equal(v, arg(a, 0, none));
    if (t == "ne") return !equal(v, arg(a, 0, none));
    if (t == "in") return contains(arg(a, 0, none), v);
    if (t == "lower") return v.k == value::kind::string && ascii_case(v.s, false) == v.s;
    if (t == "upper") return v.k == value::kind::string && ascii_case(v.s, true) == v.s;
    fail(concat("the test '", t, "' is not supported"));
  }
};

// Checks at compile time that every filter, test, function and statement used is supported, so
// that an unsupported template fails before any model work (the names below are those eval knows).
void check_supported(const std::vector<stmt>& body);

void check_expr(const expr& e) {
  static const char* const filters[] = {"trim", "tojson", "length", "count", "upper", "lower", "title", "capitalize", "string",
                                        "safe", "default", "d", "join", "first", "last", "list", "reverse", "items", "replace",
                                        "int", "float", "abs", "indent", "map", "selectattr", "rejectattr", "unique"};
  static const char* const tests[] = {"defined", "undefined", "none", "string", "number", "integer", "float", "boolean",
                                      "true", "false", "mapping", "sequence", "iterable", "even", "odd", "divisibleby",
                                      "equalto", "eq", "sameas", "ne", "in", "lower", "upper"};
  static const char* const functions[] = {"raise_exception", "range", "namespace", "dict"};
  const auto known = [](const auto& list, const std::string& n) {
    return std::any_of(std::begin(list), std::end(list), [&](const char* x) { return n == x; });
  };
  if (e.k == expr::kind::filter && !known(filters, e.name)) fail(concat("the filter '", e.name, "' is not supported"));
  if (e.k == expr::kind::test && !known(tests, e.name)) fail(concat("the test '", e.name, "' is not supported"));
  if (e.k == expr::kind::call && e.args[0]->k == expr::kind::name && !known(functions, e.args[0]->name))
    fail(concat("the function '", e.args[0]->name, "' is not supported"));
  for (const auto& a : e.args)
    if (a) check_expr(*a);
  for (const auto& [k, a] : e.kwargs)
    if (a) check_expr(*a);
}

void check_supported(const std::vector<stmt>& body) {
  for (const auto& s : body) {
    if (s.e) check_expr(*s.e);
    if (s.filter) check_expr(*s.filter);
    for (const auto& [c, b] : s.branches) {
      check_expr(*c);
      check_supported(b);
    }
    check_supported(s.body);
    check_supported(s.else_body);
  }
}

}  // namespace

struct chat_template::program {
  std::vector<stmt> body;
};

chat_template::chat_template(std::string_view source) : program_(std::make_unique<program>()) {
  program_->body = builder(lex(source)).parse();
  check_supported(program_->body);
}
chat_template::chat_template(chat_template&&) noexcept = default;
chat_template& chat_template::operator=(chat_template&&) noexcept = default;
chat_template::~chat_template() = default;

std::string chat_template::render(std::span<const chat_message> messages, const chat_render_options& options) const {
  interpreter in;
  in.scopes.emplace_back();
  list_t msgs;
  for (const auto& m : messages) msgs.push_back(value::dict({{"role", value::string(m.role)}, {"content", value::string(m.content)}}));
  in.assign("messages", value::list(std::move(msgs)));
  in.assign("add_generation_prompt", value::boolean(options.add_generation_prompt));
  for (const auto& [k, v] : options.variables) in.assign(k, value::string(v));
  std::string out;
  in.run(program_->body, out);
  return out;
}

std::string apply_chat_template(const tokenizer& t, std::span<const chat_message> messages, bool add_generation_prompt) {
  const tokenizer_config& c = t.config();
  if (c.chat_template.empty()) fail("the tokenizer has no chat_template (tokenizer_config.json)");
  chat_render_options o;
  o.add_generation_prompt = add_generation_prompt;
  const std::pair<const char*, const std::string*> named[] = {{"bos_token", &c.bos_token}, {"eos_token", &c.eos_token},
                                                              {"pad_token", &c.pad_token}, {"unk_token", &c.unk_token},
                                                              {"mask_token", &c.mask_token}};
  for (const auto& [k, v] : named)
    if (!v->empty()) o.variables[k] = *v;
  return chat_template(c.chat_template).render(messages, o);
}

}  // namespace mdlm::text
