// SPDX-License-Identifier: MIT
//! @file
//! The Python extension `mdlm._mdlm`: policies, token choice, decode (single and batched), the
//! step-level API, reasoning as infilling. See python/mdlm/__init__.py for the Python layer and
//! docs/python.md for the guide.

#include <algorithm>
#include <cmath>
#include <limits>
#include <memory>
#include <optional>
#include <stdexcept>
#include <string>
#include <utility>
#include <vector>

#include "common.hpp"

namespace mdlm::python {

// ----------------------------------------------------------------------------------------------
// logits_view

namespace {

constexpr std::int32_t dl_cpu = 1;

std::string dl_dtype_name(const dl::data_type& t) {
  const char* code = t.code == 0 ? "int" : t.code == 1 ? "uint" : t.code == 2 ? "float" : t.code == 4 ? "bfloat" : "code";
  return detail::concat(code, static_cast<int>(t.bits), t.lanes != 1 ? "xlanes" : "");
}

void require_contiguous(const std::vector<std::size_t>& shape, const std::int64_t* strides_elems, const char* what) {
  std::int64_t expect = 1;
  for (std::size_t d = shape.size(); d > 0; --d) {
    const std::size_t i = d - 1;
    if (shape[i] != 1 && strides_elems[i] != expect)
      throw std::invalid_argument(detail::concat(what, " is not C-contiguous (stride ", strides_elems[i],
                                                 " elements on axis ", i, ", expected ", expect,
                                                 "); pass a contiguous array (.contiguous() / np.ascontiguousarray)"));
    expect *= static_cast<std::int64_t>(shape[i]);
  }
}

}  // namespace

logits_view::logits_view(py::handle obj, const char* what) {
  owner_ = py::reinterpret_borrow<py::object>(obj);
  if (py::hasattr(obj, "__dlpack__")) {
    py::object cap = obj.attr("__dlpack__")();
    auto* raw = PyCapsule_GetPointer(cap.ptr(), "dltensor");
    if (raw == nullptr) throw py::error_already_set();
    auto* m = static_cast<dl::managed_tensor*>(raw);
    // Consumed: the capsule no longer deletes it; this view calls the deleter.
    if (PyCapsule_SetName(cap.ptr(), "used_dltensor") != 0) throw py::error_already_set();
    managed_ = m;
    const dl::tensor& t = m->dl_tensor;
    if (t.dev.device_type != dl_cpu)
      throw std::invalid_argument(detail::concat(what, " lives on DLPack device type ", t.dev.device_type,
                                                 ", not the CPU (1); move it with .cpu() or use a device model"));
    if (t.dtype.lanes != 1 || !((t.dtype.code == 2 && (t.dtype.bits == 32 || t.dtype.bits == 16)) ||
                                (t.dtype.code == 4 && t.dtype.bits == 16)))
      throw std::invalid_argument(detail::concat(what, " has dtype ", dl_dtype_name(t.dtype),
                                                 "; logits must be float32, bfloat16 or float16"));
    format = t.dtype.code == 4 ? logit_format::bf16 : t.dtype.bits == 16 ? logit_format::f16 : logit_format::f32;
    shape.assign(t.shape, t.shape + t.ndim);
    if (t.strides != nullptr) require_contiguous(shape, t.strides, what);
    data = static_cast<const char*>(t.data) + t.byte_offset;
    return;
  }
  if (!PyObject_CheckBuffer(obj.ptr()))
    throw std::invalid_argument(detail::concat(what, " (", std::string(py::str(py::type::handle_of(obj))),
                                               ") supports neither DLPack nor the buffer protocol; return a NumPy "
                                               "array or a CPU torch.Tensor"));
  auto buf = py::reinterpret_borrow<py::buffer>(obj);
  buffer_ = std::make_unique<py::buffer_info>(buf.request());
  const std::string& f = buffer_->format;
  if (buffer_->itemsize == 4 && (f == "f" || f == "<f" || f == "=f")) format = logit_format::f32;
  else if (buffer_->itemsize == 2 && (f == "e" || f == "<e" || f == "=e")) format = logit_format::f16;
  else
    throw std::invalid_argument(detail::concat(what, " has buffer format '", f, "' (", buffer_->itemsize,
                                               "-byte items); logits must be float32, bfloat16 or float16"));
  shape.assign(buffer_->shape.begin(), buffer_->shape.end());
  std::vector<std::int64_t> strides;
  for (auto s : buffer_->strides) strides.push_back(static_cast<std::int64_t>(s / buffer_->itemsize));
  require_contiguous(shape, strides.data(), what);
  data = buffer_->ptr;
}

logits_view::~logits_view() {
  buffer_.reset();
  if (managed_ != nullptr && managed_->deleter != nullptr) managed_->deleter(managed_);
}

std::size_t logits_view::size() const noexcept {
  std::size_t n = 1;
  for (auto s : shape) n *= s;
  return n;
}

// ----------------------------------------------------------------------------------------------
// py_model

std::unique_ptr<logits_view> py_model::call(std::span<const token_id> tokens, std::size_t batch, bool batched) {
  const std::size_t length = tokens.size() / batch;
  py::array_t<std::int64_t> arr(batched ? std::vector<py::ssize_t>{static_cast<py::ssize_t>(batch),
                                                                   static_cast<py::ssize_t>(length)}
                                        : std::vector<py::ssize_t>{static_cast<py::ssize_t>(length)});
  auto* p = arr.mutable_data();
  for (std::size_t i = 0; i < tokens.size(); ++i) p[i] = tokens[i];
  py::object result = fn_(arr);
  auto view = std::make_unique<logits_view>(result, "the model's result");
  const auto& s = view->shape;
  const bool ok = batched ? (s.size() == 3 && s[0] == batch && s[1] == length && s[2] == vocab_)
                          : ((s.size() == 2 && s[0] == length && s[1] == vocab_) ||
                             (s.size() == 3 && s[0] == 1 && s[1] == length && s[2] == vocab_));
  if (!ok) {
    std::string got;
    for (std::size_t i = 0; i < s.size(); ++i) got += detail::concat(i ? ", " : "", s[i]);
    throw std::invalid_argument(detail::concat("the model returned logits of shape [", got, "]", "; expected ",
                                               batched ? detail::concat("[", batch, ", ") : std::string("["), length,
                                               ", ", vocab_, "] (canvas length, vocab_size)"));
  }
  return view;
}

void py_model::row_choices(std::span<const token_id> tokens, const row_request& request, std::span<row_choice> out) {
  py::gil_scoped_acquire gil;
  auto view = call(tokens, 1, false);
  {
    py::gil_scoped_release nogil;
    scratch_.reserve(vocab_);
    with_logits(*view, [&](auto rows) {
      compute_row_choices(rows, vocab_, request, out, nullptr, scratch_);
      kl_.fill(rows, tokens.size(), vocab_, request, out);
    });
  }
}

void py_model::batch_row_choices(std::span<const token_id> tokens, std::size_t batch,
                                 std::span<const row_request> requests, std::span<row_choice> out) {
  py::gil_scoped_acquire gil;
  auto view = call(tokens, batch, true);
  {
    py::gil_scoped_release nogil;
    scratch_.reserve(vocab_);
    const std::size_t length = tokens.size() / batch;
    std::size_t offset = 0;
    with_logits(*view, [&](auto rows) {
      for (std::size_t b = 0; b < batch; ++b) {
        const std::size_t n = requests[b].rows.size();
        compute_row_choices(rows.subspan(b * length * vocab_, length * vocab_), vocab_, requests[b],
                            out.subspan(offset, n), nullptr, scratch_);
        kl_.fill(rows.subspan(b * length * vocab_, length * vocab_), length, vocab_, requests[b], out.subspan(offset, n));
        offset += n;
      }
    });
  }
}

void py_model::logits(std::span<const token_id> tokens, std::span<float> out) {
  py::gil_scoped_acquire gil;
  auto view = call(tokens, 1, false);
  with_logits(*view, [&](auto rows) { std::transform(rows.begin(), rows.end(), out.begin(), [](auto x) { return static_cast<float>(x); }); });
}

void py_model::batch_logits(std::span<const token_id> tokens, std::size_t batch, std::span<float> out) {
  py::gil_scoped_acquire gil;
  auto view = call(tokens, batch, true);
  with_logits(*view, [&](auto rows) { std::transform(rows.begin(), rows.end(), out.begin(), [](auto x) { return static_cast<float>(x); }); });
}

// ----------------------------------------------------------------------------------------------
// observers

//! What a Python observer callback receives after each step.
struct py_step_event {
  std::size_t step = 0, nfe = 0, block = 0, block_begin = 0, block_end = 0, batch_index = 0;
  std::vector<token_id> tokens;
  std::vector<std::size_t> unmasked;  // canvas positions unmasked this step
  std::vector<std::size_t> candidates;
  std::vector<double> entropies;      // of the candidates
};

observer_action observer_set::on_logits(step_event& e) {
  bool stop = false;
  for (auto* x : exits) stop = (x->on_logits(e) == observer_action::stop) || stop;
  return stop ? observer_action::stop : observer_action::proceed;
}

observer_action observer_set::on_step(step_event& e) {
  bool stop = false;
  for (auto* x : exits) stop = (x->on_step(e) == observer_action::stop) || stop;
  if (callbacks.empty()) return stop ? observer_action::stop : observer_action::proceed;
  py_step_event ev;
  ev.step = e.step, ev.nfe = e.nfe, ev.block = e.block, ev.block_begin = e.block_begin, ev.block_end = e.block_end;
  ev.batch_index = e.batch_index;
  ev.tokens.assign(e.tokens.begin(), e.tokens.end());
  for (std::size_t i : e.unmasked) ev.unmasked.push_back(e.candidates[i].position);
  for (const auto& c : e.candidates) {
    ev.candidates.push_back(c.position);
    ev.entropies.push_back(c.entropy);
  }
  py::gil_scoped_acquire gil;
  py::object pev = py::cast(std::move(ev));
  for (auto& cb : callbacks) {
    py::object r = cb(pev);
    if (!r.is_none() && r.cast<bool>()) stop = true;
  }
  return stop ? observer_action::stop : observer_action::proceed;
}

observer_set make_observers(py::handle observers) {
  observer_set s;
  if (observers.is_none()) return s;
  for (py::handle o : observers) {
    if (py::isinstance<mdlm::early_exit>(o)) {
      s.exits.push_back(o.cast<mdlm::early_exit*>());
      s.keep.push_back(py::reinterpret_borrow<py::object>(o));
    } else if (PyCallable_Check(o.ptr())) {
      s.callbacks.push_back(py::reinterpret_borrow<py::object>(o));
    } else {
      throw std::invalid_argument(detail::concat("observer ", std::string(py::str(py::repr(o))),
                                                 " is neither an mdlm.EarlyExit nor a callable"));
    }
  }
  return s;
}

std::vector<token_id> to_tokens(py::handle seq, const char* what) {
  std::vector<token_id> out;
  py::object s = py::reinterpret_borrow<py::object>(seq);
  if (py::hasattr(s, "tolist")) s = s.attr("tolist")();
  for (py::handle h : s) {
    const auto v = h.cast<long long>();
    if (v < std::numeric_limits<token_id>::min() || v > std::numeric_limits<token_id>::max())
      throw std::invalid_argument(detail::concat(what, " token ", v, " at index ", out.size(), " does not fit int32"));
    out.push_back(static_cast<token_id>(v));
  }
  return out;
}

namespace {

py::array_t<std::int64_t> to_array(std::span<const token_id> t) {
  py::array_t<std::int64_t> a(static_cast<py::ssize_t>(t.size()));
  auto* p = a.mutable_data();
  for (std::size_t i = 0; i < t.size(); ++i) p[i] = t[i];
  return a;
}

template <class T>
py::array_t<T> to_array_of(const std::vector<T>& v) {
  return py::array_t<T>(static_cast<py::ssize_t>(v.size()), v.data());
}

// ----------------------------------------------------------------------------------------------
// decode

decode_result decode_py(py::object fn, std::size_t vocab, token_id mask, const canvas& c, py::handle policy,
                        const token_choice& choice, std::size_t block_length, std::size_t steps, std::uint64_t seed,
                        py::handle observers, std::size_t max_nfe, const std::string& interface) {
  py_model model(std::move(fn), vocab, mask);
  observer_set obs = make_observers(observers);
  return with_policy(policy, [&](const auto& p) {
    const auto opt = make_options(p, choice, block_length, steps, max_nfe, interface);
    py::gil_scoped_release nogil;
    return mdlm::decode(model, c, opt, counter_rng{seed}, obs);
  });
}

std::vector<decode_result> decode_batch_py(py::object fn, std::size_t vocab, token_id mask,
                                           const std::vector<canvas>& cs, py::handle policy,
                                           const token_choice& choice, std::size_t block_length, std::size_t steps,
                                           std::uint64_t seed, py::handle observers, std::size_t max_nfe,
                                           const std::string& interface) {
  py_model model(std::move(fn), vocab, mask);
  observer_set obs = make_observers(observers);
  return with_policy(policy, [&](const auto& p) {
    const auto opt = make_options(p, choice, block_length, steps, max_nfe, interface);
    py::gil_scoped_release nogil;
    return mdlm::decode_batch(model, std::span<const canvas>(cs), opt, counter_rng{seed}, obs);
  });
}

// ----------------------------------------------------------------------------------------------
// step-level API

//! Builds the candidates of one step from logits ([n, V] rows for `positions`, or [L, V] canvas rows).
std::vector<position_info> candidates_from_logits(const logits_view& v, std::span<const std::size_t> positions,
                                                  const token_choice& choice, counter_rng rng, std::uint32_t sequence,
                                                  std::uint32_t step) {
  if (v.shape.size() != 2 || v.shape[1] == 0)
    throw std::invalid_argument(detail::concat("logits must have shape [rows, V]; got ", v.shape.size(), " axes"));
  const std::size_t rows = v.shape[0], vocab = v.shape[1];
  const bool compact = rows == positions.size();
  for (std::size_t i = 0; i < positions.size(); ++i)
    if (!compact && positions[i] >= rows)
      throw std::invalid_argument(detail::concat("position ", positions[i], " at index ", i, " has no row: logits have ",
                                                 rows, " rows, neither one per position (", positions.size(),
                                                 ") nor one per canvas position"));
  std::vector<position_info> out(positions.size());
  std::vector<std::size_t> bad;
  {
    py::gil_scoped_release nogil;
    detail::choice_scratch scratch;
    scratch.reserve(vocab);
    const bool filtered = (choice.top_p && *choice.top_p < 1.0) || choice.top_k.has_value();
    const row_choice_options ko{.temperature = filtered ? 0.0 : choice.temperature, .rng = rng,
                                .sequence = sequence, .step = step};
    with_logits(v, [&](auto all) {
      for (std::size_t i = 0; i < positions.size(); ++i) {
        const std::size_t p = positions[i];
        const auto row = all.subspan((compact ? i : p) * vocab, vocab);
        row_choice rc;
        if (vocab < detail::kernels_min_vocab) {
          const logit_stats s = detail::compute_logit_stats_impl<double>(row);
          if (s.valid) rc = to_row_choice(choose_token(row, s, choice, rng, sequence, step, p, scratch));
          else rc.stats = s;
        } else {
          rc = choose_row(row, ko, static_cast<std::uint32_t>(p));
          if (filtered && rc.stats.valid)
            rc = to_row_choice(choose_token(row, rc.stats, choice, rng, sequence, step, p, scratch));
        }
        if (!rc.stats.valid) bad.push_back(p);
        out[i] = to_position_info(rc, p);
      }
    });
  }
  if (!bad.empty())
    throw std::invalid_argument(detail::concat("the model returned an invalid logit row (NaN, +inf or all -inf) at step ",
                                               step, ", position ", bad.front()));
  return out;
}

//! Candidates from precomputed statistics: a dict of equal-length 1-D arrays.
std::vector<position_info> candidates_from_stats(const py::dict& stats, std::span<const std::size_t> positions) {
  auto column = [&](const char* key, bool required) -> std::optional<std::vector<double>> {
    if (!stats.contains(key)) {
      if (required) throw std::invalid_argument(detail::concat("stats has no '", key, "' entry"));
      return std::nullopt;
    }
    py::object col = stats[key];
    if (py::hasattr(col, "tolist")) col = col.attr("tolist")();
    auto v = col.cast<std::vector<double>>();
    if (v.size() != positions.size())
      throw std::invalid_argument(detail::concat("stats['", key, "'] has ", v.size(), " entries for ",
                                                 positions.size(), " positions"));
    return v;
  };
  const auto token = column("token", true), prob = column("prob", true), entropy = column("entropy", true);
  const auto top1 = column("top1_logprob", false), top2 = column("top2_logprob", false);
  const auto tp = column("tempered_prob", false), te = column("tempered_entropy", false),
             tm = column("tempered_margin", false), lz = column("log_normalizer", false);
  std::vector<position_info> out(positions.size());
  for (std::size_t i = 0; i < positions.size(); ++i) {
    position_info& c = out[i];
    c.position = positions[i];
    c.token = static_cast<token_id>((*token)[i]);
    c.prob = (*prob)[i];
    c.entropy = (*entropy)[i];
    if (std::isnan(c.prob) || std::isnan(c.entropy))
      throw std::invalid_argument(detail::concat("stats at position ", positions[i], " are NaN (an invalid row)"));
    c.stats.valid = true;
    c.stats.entropy = c.entropy;
    c.stats.top1 = c.token;
    c.stats.top1_logprob = top1 ? (*top1)[i] : std::log(c.prob);
    c.stats.top2_logprob = top2 ? (*top2)[i] : -std::numeric_limits<double>::infinity();
    c.stats.log_normalizer = lz ? (*lz)[i] : 0.0;
    c.margin = c.stats.margin();
    c.tempered_prob = tp ? (*tp)[i] : c.prob;
    c.tempered_entropy = te ? (*te)[i] : c.entropy;
    c.tempered_margin = tm ? (*tm)[i] : c.margin;
  }
  return out;
}

py::tuple select_step(py::handle policy, py::handle positions_in, py::object logits, py::object stats,
                      const token_choice& choice, std::uint64_t seed, std::uint32_t sequence, std::uint32_t step,
                      std::size_t step_in_block, std::size_t steps_per_block, std::size_t total_steps,
                      std::size_t block_masked_at_start, std::size_t masked_total, std::optional<token_id> mask) {
  std::vector<std::size_t> positions;
  for (token_id t : to_tokens(positions_in, "positions")) {
    if (t < 0) throw std::invalid_argument(detail::concat("position ", t, " is negative"));
    positions.push_back(static_cast<std::size_t>(t));
  }
  for (std::size_t i = 1; i < positions.size(); ++i)
    if (positions[i] <= positions[i - 1])
      throw std::invalid_argument(detail::concat("positions must be strictly ascending (index ", i, ": ",
                                                 positions[i], " after ", positions[i - 1], ")"));
  if (logits.is_none() == stats.is_none())
    throw std::invalid_argument("pass exactly one of logits= (a [rows, V] array) and stats= (a dict of row statistics)");
  choice.validate();
  const counter_rng rng{seed};
  std::vector<position_info> cand;
  if (!logits.is_none()) {
    logits_view v(logits, "logits");
    cand = candidates_from_logits(v, positions, choice, rng, sequence, step);
  } else {
    cand = candidates_from_stats(stats.cast<py::dict>(), positions);
  }
  std::vector<std::size_t> out_pos;
  std::vector<token_id> out_tok;
  with_policy(policy, [&](const auto& p) {
    using P = std::remove_cvref_t<decltype(p)>;
    if constexpr (stateful_policy<P>) {
      throw std::invalid_argument("KLASS is stateful (it keeps each position's previous distribution); use mdlm.decode");
    } else {
      p.validate();
      step_context ctx;
      ctx.step = step;
      ctx.step_in_block = step_in_block;
      ctx.steps_per_block = steps_per_block;
      ctx.total_steps = total_steps;
      ctx.block_masked_at_start = block_masked_at_start;
      ctx.masked_total = masked_total;
      ctx.sequence = sequence;
      ctx.rng = rng;
      if (p.scheduled() && (steps_per_block == 0 || total_steps == 0))
        throw std::invalid_argument("a scheduled policy needs steps_per_block > 0 and total_steps > 0");
      selection sel;
      sel.reserve(cand.size());
      p.select(ctx, std::span<const position_info>(cand), sel);
      for (std::size_t i : sel.unmask) {
        if (mask && cand[i].token == *mask) continue;
        out_pos.push_back(cand[i].position);
        out_tok.push_back(cand[i].token);
      }
    }
  });
  std::vector<std::int64_t> pos64(out_pos.begin(), out_pos.end());
  return py::make_tuple(to_array_of(pos64), to_array(out_tok));
}

//! A C++ model answering every call from one fixed logit array (benchmarks: the C++ side of the
//! Python-path overhead, same rows, same kernels, no Python call per step).
class constant_model {
 public:
  constant_model(const logits_view& v, std::size_t vocab, token_id mask) : v_(v), vocab_(vocab), mask_(mask) {}
  [[nodiscard]] std::size_t vocab_size() const noexcept { return vocab_; }
  [[nodiscard]] token_id mask_token() const noexcept { return mask_; }
  void row_choices(std::span<const token_id>, const row_request& request, std::span<row_choice> out) {
    scratch_.reserve(vocab_);
    with_logits(v_, [&](auto rows) {
      compute_row_choices(rows, vocab_, request, out, nullptr, scratch_);
      kl_.fill(rows, rows.size() / vocab_, vocab_, request, out);
    });
  }

 private:
  const logits_view& v_;
  std::size_t vocab_;
  token_id mask_;
  detail::choice_scratch scratch_;
  kl_histories kl_;
};

decode_result decode_constant(py::handle logits, token_id mask, const canvas& c, py::handle policy,
                              std::size_t block_length) {
  logits_view v(logits, "logits");
  if (v.shape.size() != 2 || v.shape[0] != c.size())
    throw std::invalid_argument("logits must have shape [canvas length, V]");
  constant_model model(v, v.shape[1], mask);
  return with_policy(policy, [&](const auto& p) {
    const auto opt = make_options(p, token_choice{}, block_length, 0, 0, "automatic");
    py::gil_scoped_release nogil;
    return mdlm::decode(model, c, opt, counter_rng{0});
  });
}

py::dict early_exit_result_dict(const early_exit_result& r) {
  py::dict d;
  const char* reason = r.reason == exit_reason::none              ? "none"
                       : r.reason == exit_reason::bound           ? "bound"
                       : r.reason == exit_reason::answer_complete ? "answer_complete"
                                                                  : "invalid_logits";
  d["exited"] = r.exited;
  d["reason"] = reason;
  d["exit_step"] = r.exit_step;
  d["nfe"] = r.nfe;
  d["h_ub"] = r.h_ub;
  d["answer_filled"] = r.answer_filled;
  d["reasoning_left_masked"] = r.reasoning_left_masked;
  d["message"] = r.message;
  return d;
}

}  // namespace

}  // namespace mdlm::python

PYBIND11_MODULE(_mdlm, m) {
  using namespace mdlm;
  using namespace mdlm::python;
  m.doc() = "mdlm: sampling algorithms for masked diffusion language models (C++ core)";
  m.attr("__version__") = detail::concat(MDLM_VERSION_MAJOR, ".", MDLM_VERSION_MINOR, ".", MDLM_VERSION_PATCH);

  py::class_<token_choice>(m, "TokenChoice", "How a token is chosen at a masked position (token_choice.hpp).")
      .def(py::init([](double temperature, std::optional<double> top_p, std::optional<std::size_t> top_k) {
             token_choice c{temperature, top_p, top_k};
             c.validate();
             return c;
           }),
           py::arg("temperature") = 0.0, py::arg("top_p") = py::none(), py::arg("top_k") = py::none())
      .def_readwrite("temperature", &token_choice::temperature)
      .def_readwrite("top_p", &token_choice::top_p)
      .def_readwrite("top_k", &token_choice::top_k)
      .def("__repr__", [](const token_choice& c) {
        return detail::concat("TokenChoice(temperature=", c.temperature, ", top_p=",
                              c.top_p ? std::to_string(*c.top_p) : std::string("None"), ", top_k=",
                              c.top_k ? std::to_string(*c.top_k) : std::string("None"), ")");
      });

  py::class_<med>(m, "MED", "Multi-token entropy decoding (policies/med.hpp): H < lam, at most k_max per step.")
      .def(py::init([](double lam, std::size_t k_max) {
             med p{lam, k_max};
             p.validate();
             return p;
           }),
           py::arg("lam") = med{}.lambda, py::arg("k_max") = med{}.k_max)
      .def_readwrite("lam", &med::lambda)
      .def_readwrite("k_max", &med::k_max)
      .def("__repr__", [](const med& p) { return detail::concat("MED(lam=", p.lambda, ", k_max=", p.k_max, ")"); });

  py::class_<eb_sampler>(m, "EBSampler", "EB-Sampler (policies/eb_sampler.hpp): order = 'entropy' | 'confidence' | 'margin'.")
      .def(py::init([](double gamma, const std::string& order) {
             eb_sampler p;
             p.gamma = gamma;
             if (order == "entropy") p.order = eb_order::entropy;
             else if (order == "confidence") p.order = eb_order::confidence;
             else if (order == "margin") p.order = eb_order::margin;
             else throw std::invalid_argument(detail::concat("order = '", order, "' must be 'entropy', 'confidence' or 'margin'"));
             p.validate();
             return p;
           }),
           py::arg("gamma") = eb_sampler{}.gamma, py::arg("order") = "entropy")
      .def_readwrite("gamma", &eb_sampler::gamma)
      .def("__repr__", [](const eb_sampler& p) { return detail::concat("EBSampler(gamma=", p.gamma, ")"); });

  py::class_<fast_dllm_threshold>(m, "FastDLLMThreshold", "Fast-dLLM threshold rule (policies/fast_dllm.hpp).")
      .def(py::init([](double tau) {
             fast_dllm_threshold p{tau};
             p.validate();
             return p;
           }),
           py::arg("tau") = fast_dllm_threshold{}.tau)
      .def_readwrite("tau", &fast_dllm_threshold::tau)
      .def("__repr__", [](const fast_dllm_threshold& p) { return detail::concat("FastDLLMThreshold(tau=", p.tau, ")"); });

  py::class_<fast_dllm_factor>(m, "FastDLLMFactor", "Fast-dLLM factor rule (policies/fast_dllm.hpp).")
      .def(py::init([](double factor, bool reference_last_rank) {
             fast_dllm_factor p{factor, reference_last_rank};
             p.validate();
             return p;
           }),
           py::arg("factor") = 1.0, py::arg("reference_last_rank") = true)
      .def_readwrite("factor", &fast_dllm_factor::factor)
      .def("__repr__", [](const fast_dllm_factor& p) { return detail::concat("FastDLLMFactor(factor=", p.factor, ")"); });

  py::class_<fixed_count>(m, "FixedCount",
                          "k positions per step ranked by a score (policies/fixed_count.hpp); score = 'confidence' | "
                          "'tempered_confidence' | 'margin' | 'neg_entropy' | 'random' | 'left_to_right', schedule = "
                          "'per_step' | 'llada_blocks' | 'dream_timesteps'.")
      .def(py::init([](const std::string& score, const std::string& schedule, std::size_t per_step, double eps,
                       double alg_temp) {
             fixed_count p;
             const std::pair<const char*, score_kind> scores[] = {
                 {"confidence", score_kind::confidence}, {"tempered_confidence", score_kind::tempered_confidence},
                 {"margin", score_kind::margin},         {"neg_entropy", score_kind::neg_entropy},
                 {"random", score_kind::random},         {"left_to_right", score_kind::left_to_right}};
             bool found = false;
             for (const auto& [n, k] : scores)
               if (score == n) p.score = k, found = true;
             if (!found) throw std::invalid_argument(detail::concat("score = '", score, "' is not a fixed_count score"));
             if (schedule == "per_step") p.schedule = count_schedule::per_step;
             else if (schedule == "llada_blocks") p.schedule = count_schedule::llada_blocks;
             else if (schedule == "dream_timesteps") p.schedule = count_schedule::dream_timesteps;
             else throw std::invalid_argument(detail::concat("schedule = '", schedule,
                                                             "' must be 'per_step', 'llada_blocks' or 'dream_timesteps'"));
             p.per_step = per_step;
             p.eps = eps;
             p.alg_temp = alg_temp;
             p.validate();
             return p;
           }),
           py::arg("score") = "confidence", py::arg("schedule") = "llada_blocks", py::arg("per_step") = 1,
           py::arg("eps") = 1e-3, py::arg("alg_temp") = 0.0)
      .def_readwrite("per_step", &fixed_count::per_step)
      .def_readwrite("eps", &fixed_count::eps)
      .def_readwrite("alg_temp", &fixed_count::alg_temp)
      .def_property_readonly("scheduled", &fixed_count::scheduled);

  py::class_<dream_origin>(m, "DreamOrigin", "Dream alg='origin' (policies/fixed_count.hpp).")
      .def(py::init([](double eps) {
             dream_origin p{eps};
             p.validate();
             return p;
           }),
           py::arg("eps") = 1e-3)
      .def_readwrite("eps", &dream_origin::eps);

  py::class_<klass>(m, "KLASS", "KL-adaptive stability sampling (policies/klass.hpp); stateful (KL to the previous step at every masked position).")
      .def(py::init([](double kl_threshold, double confidence_threshold, std::size_t history, bool strict_confidence,
                       std::size_t fallback_steps_per_block) {
             klass p{kl_threshold, confidence_threshold, history, strict_confidence, fallback_steps_per_block};
             p.validate();
             return p;
           }),
           py::arg("kl_threshold") = klass{}.kl_threshold, py::arg("confidence_threshold") = klass{}.confidence_threshold,
           py::arg("history") = klass{}.history, py::arg("strict_confidence") = true,
           py::arg("fallback_steps_per_block") = 0)
      .def_readwrite("kl_threshold", &klass::kl_threshold)
      .def_readwrite("confidence_threshold", &klass::confidence_threshold)
      .def_readwrite("history", &klass::history);

  py::class_<decode_result>(m, "DecodeResult", "The outcome of decoding one canvas (decode.hpp).")
      .def_property_readonly("tokens", [](const decode_result& r) { return to_array(r.tokens); })
      .def_readonly("nfe", &decode_result::nfe)
      .def_property_readonly("unmask_step", [](const decode_result& r) { return to_array_of(r.unmask_step); })
      .def_property_readonly("status", [](const decode_result& r) { return std::string(to_string(r.status)); })
      .def_readonly("masked_left", &decode_result::masked_left)
      .def_readonly("message", &decode_result::message)
      .def_readonly("error_step", &decode_result::error_step)
      .def_readonly("error_position", &decode_result::error_position)
      .def_property_readonly("interface", [](const decode_result& r) {
        return std::string(r.interface == model_interface::row_choices ? "row_choices" : "logits");
      })
      .def_readonly("interface_note", &decode_result::interface_note)
      .def_property_readonly("ok", &decode_result::ok)
      .def("__repr__", [](const decode_result& r) {
        return detail::concat("DecodeResult(status='", to_string(r.status), "', nfe=", r.nfe, ", tokens=<", r.tokens.size(),
                              ">)");
      });

  py::class_<py_step_event>(m, "StepEvent", "What an observer callback sees after a step.")
      .def_readonly("step", &py_step_event::step)
      .def_readonly("nfe", &py_step_event::nfe)
      .def_readonly("block", &py_step_event::block)
      .def_readonly("block_begin", &py_step_event::block_begin)
      .def_readonly("block_end", &py_step_event::block_end)
      .def_readonly("batch_index", &py_step_event::batch_index)
      .def_property_readonly("tokens", [](const py_step_event& e) { return to_array(e.tokens); })
      .def_readonly("unmasked", &py_step_event::unmasked)
      .def_readonly("candidates", &py_step_event::candidates)
      .def_readonly("entropies", &py_step_event::entropies);

  py::class_<canvas>(m, "Canvas", "A canvas: tokens, generation region [region_begin, region_end), sequence key.")
      .def(py::init([](py::handle tokens, std::size_t region_begin, std::size_t region_end, std::uint32_t sequence) {
             canvas c;
             c.tokens = to_tokens(tokens, "canvas");
             c.region_begin = region_begin;
             c.region_end = region_end;
             c.sequence = sequence;
             return c;
           }),
           py::arg("tokens"), py::arg("region_begin"), py::arg("region_end"), py::arg("sequence") = 0)
      .def_property_readonly("tokens", [](const canvas& c) { return to_array(c.tokens); })
      .def_readonly("region_begin", &canvas::region_begin)
      .def_readonly("region_end", &canvas::region_end)
      .def_readwrite("sequence", &canvas::sequence);
  m.def("make_canvas", [](py::handle prompt, std::size_t gen_length, token_id mask, std::uint32_t sequence) {
    const auto p = to_tokens(prompt, "prompt");
    return make_canvas(p, gen_length, mask, sequence);
  }, py::arg("prompt"), py::arg("gen_length"), py::arg("mask_id"), py::arg("sequence") = 0);

  m.def("_decode", &decode_py, py::arg("model"), py::arg("vocab_size"), py::arg("mask_id"), py::arg("canvas"),
        py::arg("policy"), py::arg("choice"), py::arg("block_length"), py::arg("steps"), py::arg("seed"),
        py::arg("observers"), py::arg("max_nfe"), py::arg("interface"));
  m.def("_decode_batch", &decode_batch_py, py::arg("model"), py::arg("vocab_size"), py::arg("mask_id"),
        py::arg("canvases"), py::arg("policy"), py::arg("choice"), py::arg("block_length"), py::arg("steps"),
        py::arg("seed"), py::arg("observers"), py::arg("max_nfe"), py::arg("interface"));
  m.def("_decode_constant", &decode_constant, py::arg("logits"), py::arg("mask_id"), py::arg("canvas"),
        py::arg("policy"), py::arg("block_length"), "Benchmark helper: decode in C++ from one fixed logit array.");
  m.def("select", &select_step, py::arg("policy"), py::arg("positions"), py::kw_only(), py::arg("logits") = py::none(),
        py::arg("stats") = py::none(), py::arg("choice") = token_choice{}, py::arg("seed") = 0, py::arg("sequence") = 0,
        py::arg("step") = 0, py::arg("step_in_block") = 0, py::arg("steps_per_block") = 0, py::arg("total_steps") = 0,
        py::arg("block_masked_at_start") = 0, py::arg("masked_total") = 0, py::arg("mask_id") = py::none(),
        "One step of a policy for engines that own their loop; returns (positions, tokens) to unmask.");

  // Reasoning as infilling.
  py::class_<reasoning_template>(m, "Template", "A reasoning template (infilling/template.hpp).")
      .def_property_readonly("canvas", [](const reasoning_template& t) { return t.canvas; })
      .def_property_readonly("tokens", [](const reasoning_template& t) { return to_array(t.canvas.tokens); })
      .def_property_readonly("prompt", [](const reasoning_template& t) { return py::make_tuple(t.spans.prompt.begin, t.spans.prompt.end); })
      .def_property_readonly("reasoning", [](const reasoning_template& t) { return py::make_tuple(t.spans.reasoning.begin, t.spans.reasoning.end); })
      .def_property_readonly("delimiter", [](const reasoning_template& t) { return py::make_tuple(t.spans.delimiter.begin, t.spans.delimiter.end); })
      .def_property_readonly("answer", [](const reasoning_template& t) { return py::make_tuple(t.spans.answer.begin, t.spans.answer.end); })
      .def_property_readonly("suffix", [](const reasoning_template& t) { return py::make_tuple(t.spans.suffix.begin, t.spans.suffix.end); });
  m.def("make_template", [](py::handle prompt, std::size_t answer_length, std::size_t reasoning_length, py::handle delimiter,
                            py::handle suffix, token_id mask, std::uint32_t sequence) {
    template_layout l;
    l.prompt = to_tokens(prompt, "prompt");
    l.reasoning_length = reasoning_length;
    l.delimiter = to_tokens(delimiter, "delimiter");
    l.answer_length = answer_length;
    l.suffix = to_tokens(suffix, "suffix");
    return make_template(l, mask, sequence);
  }, py::arg("prompt"), py::kw_only(), py::arg("answer_length"), py::arg("reasoning_length") = 0,
        py::arg("delimiter") = py::list(), py::arg("suffix") = py::list(), py::arg("mask_id"), py::arg("sequence") = 0);
  m.def("plain_template", [](py::handle prompt, std::size_t gen_length, token_id mask, std::uint32_t sequence) {
    return plain_template(to_tokens(prompt, "prompt"), gen_length, mask, sequence);
  }, py::arg("prompt"), py::arg("gen_length"), py::arg("mask_id"), py::arg("sequence") = 0);
  m.def("posterior_template", [](const reasoning_template& t, py::handle answer, token_id mask) {
    return posterior_template(t, to_tokens(answer, "answer"), mask);
  }, py::arg("template"), py::arg("answer"), py::arg("mask_id"));
  py::class_<early_exit>(m, "EarlyExit", "Early exit on H_UB < gamma (infilling/early_exit.hpp); pass in observers=[...].")
      .def(py::init<const reasoning_template&, double>(), py::arg("template"), py::arg("gamma") = 0.1)
      .def(py::init([](const std::vector<reasoning_template>& batch, double gamma) {
             return early_exit(std::span<const reasoning_template>(batch), gamma);
           }), py::arg("templates"), py::arg("gamma"))
      .def_property_readonly("gamma", &early_exit::gamma)
      .def("result", [](const early_exit& e, std::size_t b) { return early_exit_result_dict(e.result(b)); },
           py::arg("batch_index") = 0)
      .def("reset", &early_exit::reset);
  m.def("auc", [](const std::vector<double>& pos, const std::vector<double>& neg) { return auc(pos, neg); },
        py::arg("positives"), py::arg("negatives"), "AUC of two score sets (infilling/auc.hpp).");
  m.def("_evaluate_answer", [](py::object fn, std::size_t vocab, token_id mask, py::handle tokens, const reasoning_template& t,
                               py::handle answer) {
    py_model model(std::move(fn), vocab, mask);
    const auto tok = to_tokens(tokens, "canvas");
    const auto ans = to_tokens(answer, "answer");
    answer_evaluation e;
    {
      py::gil_scoped_release nogil;
      e = evaluate_answer(model, tok, t.spans, ans);
    }
    return py::make_tuple(e.phi, e.h_ub);
  });
  m.def("_score_trace", [](py::object fn, std::size_t vocab, token_id mask, const reasoning_template& t, py::handle trace,
                           py::handle answer) {
    py_model model(std::move(fn), vocab, mask);
    const auto tr = to_tokens(trace, "trace");
    const auto ans = to_tokens(answer, "answer");
    trace_scores s;
    {
      py::gil_scoped_release nogil;
      s = score_trace(model, t, tr, ans);
    }
    py::dict d;
    d["phi"] = s.phi;
    d["h_ub"] = s.h_ub;
    d["mean_phi"] = s.mean_phi;
    d["mean_h_ub"] = s.mean_h_ub;
    return d;
  });

  py::module_ ref = m.def_submodule("reference", "Exact reference models (reference/include/mdlm/reference).");
  bind_reference(ref);
}
