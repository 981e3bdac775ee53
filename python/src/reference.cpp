// SPDX-License-Identifier: MIT
//! @file
//! `mdlm._mdlm.reference`: the exact reference models (joint tables, HMMs) and the exact output
//! distribution of a sampler on them (reference/include/mdlm/reference).

#include <string>
#include <utility>
#include <variant>
#include <vector>

#include "common.hpp"
#include "mdlm/reference/reference.hpp"

namespace mdlm::python {

namespace {

//! A joint table or an HMM behind one type, so that each policy is instantiated once.
class exact_model {
 public:
  explicit exact_model(reference::joint_table t) : m_(std::move(t)) {}
  explicit exact_model(reference::hmm h) : m_(std::move(h)) {}

  [[nodiscard]] std::size_t vocab_size() const noexcept {
    return std::visit([](const auto& m) { return m.vocab_size(); }, m_);
  }
  [[nodiscard]] token_id mask_token() const noexcept {
    return std::visit([](const auto& m) { return m.mask_token(); }, m_);
  }
  [[nodiscard]] std::size_t length() const noexcept {
    return std::visit([](const auto& m) { return m.length(); }, m_);
  }
  void logits(std::span<const token_id> t, std::span<float> out) const {
    std::visit([&](const auto& m) { m.logits(t, out); }, m_);
  }
  void logits(std::span<const token_id> t, std::span<double> out) const {
    std::visit([&](const auto& m) { m.logits(t, out); }, m_);
  }
  [[nodiscard]] xt::xarray<double> conditional_joint(std::span<const token_id> t, std::span<const std::size_t> a) const {
    return std::visit([&](const auto& m) -> xt::xarray<double> { return m.conditional_joint(t, a); }, m_);
  }
  [[nodiscard]] const char* kind() const noexcept {
    return std::holds_alternative<reference::joint_table>(m_) ? "joint_table" : "hmm";
  }

 private:
  std::variant<reference::joint_table, reference::hmm> m_;
};

template <class Real>
py::array_t<Real> logits_array(const exact_model& m, py::handle tokens) {
  const auto t = to_tokens(tokens, "tokens");
  const std::size_t v = m.vocab_size();
  py::array_t<Real> out({static_cast<py::ssize_t>(t.size()), static_cast<py::ssize_t>(v)});
  m.logits(t, std::span<Real>(out.mutable_data(), t.size() * v));
  return out;
}

py::list distribution_list(const reference::output_distribution& d) {
  py::list out;
  for (const auto& e : d) out.append(py::make_tuple(py::tuple(py::cast(e.tokens)), e.probability));
  return out;
}

reference::output_distribution from_list(py::handle l) {
  reference::output_distribution d;
  for (py::handle e : l) {
    auto t = e.cast<py::tuple>();
    d.push_back({to_tokens(t[0], "distribution"), t[1].cast<double>()});
  }
  std::sort(d.begin(), d.end(), [](const auto& a, const auto& b) { return a.tokens < b.tokens; });
  return d;
}

}  // namespace

void bind_reference(py::module_& m) {
  py::class_<exact_model>(m, "ExactModel",
                          "An exact masked diffusion model (joint table or HMM): V + 1 ids, the mask is id V. Calling "
                          "it with tokens returns float32 logits [L, V + 1], so it is also a Python model.")
      .def_property_readonly("vocab_size", &exact_model::vocab_size)
      .def_property_readonly("mask_id", &exact_model::mask_token)
      .def_property_readonly("length", &exact_model::length)
      .def_property_readonly("kind", &exact_model::kind)
      .def("logits", [](const exact_model& e, py::handle t, bool exact) -> py::object {
        if (exact) return logits_array<double>(e, t);
        return logits_array<float>(e, t);
      }, py::arg("tokens"), py::arg("exact") = true, "Conditional logits [L, V + 1] (float64 when exact, else float32).")
      .def("__call__", [](const exact_model& e, py::handle t) { return logits_array<float>(e, t); }, py::arg("tokens"));

  m.def("joint_table", [](std::size_t vocab, std::size_t length, const std::vector<double>& p) {
    return exact_model(reference::joint_table(vocab, length, p));
  }, py::arg("vocab"), py::arg("length"), py::arg("probabilities"), "Explicit joint table over vocab^length sequences.");
  m.def("random_joint_table", [](std::size_t vocab, std::size_t length, double alpha, std::uint64_t seed) {
    return exact_model(reference::joint_table::random(vocab, length, alpha, seed));
  }, py::arg("vocab"), py::arg("length"), py::arg("alpha"), py::arg("seed"), "Dirichlet(alpha) joint table.");
  m.def("hmm", [](const std::vector<double>& initial, const std::vector<double>& transition,
                  const std::vector<double>& emission, std::size_t length) {
    return exact_model(reference::hmm(initial, transition, emission, length));
  }, py::arg("initial"), py::arg("transition"), py::arg("emission"), py::arg("length"), "Hidden Markov model.");
  m.def("random_hmm", [](std::size_t states, std::size_t vocab, std::size_t length, std::uint64_t seed, double alpha) {
    return exact_model(reference::hmm::random(states, vocab, length, seed, alpha));
  }, py::arg("states"), py::arg("vocab"), py::arg("length"), py::arg("seed"), py::arg("alpha") = 1.0,
        "Random HMM (Dirichlet(alpha) rows).");

  m.def("_decode", [](exact_model& model, const canvas& c, py::handle policy, const token_choice& choice,
                      std::size_t block_length, std::size_t steps, std::uint64_t seed, py::handle observers,
                      std::size_t max_nfe, const std::string& interface) {
    observer_set obs = make_observers(observers);
    return with_policy(policy, [&](const auto& p) {
      const auto opt = make_options(p, choice, block_length, steps, max_nfe, interface);
      py::gil_scoped_release nogil;
      return mdlm::decode(model, c, opt, counter_rng{seed}, obs);
    });
  });

  m.def("exact_output_distribution", [](exact_model& model, const canvas& c, py::handle policy,
                                        const token_choice& choice, std::size_t block_length, std::size_t steps,
                                        const std::string& precision, bool exact_process, std::size_t max_states) {
    reference::exact_decode_options eo;
    if (precision == "exact") eo.precision = reference::logit_precision::exact;
    else if (precision == "as_decode") eo.precision = reference::logit_precision::as_decode;
    else throw std::invalid_argument(detail::concat("precision = '", precision, "' must be 'exact' or 'as_decode'"));
    eo.exact_process = exact_process;
    eo.max_states = max_states;
    reference::exact_decode_result r = with_policy(policy, [&](const auto& p) -> reference::exact_decode_result {
      using P = std::remove_cvref_t<decltype(p)>;
      if constexpr (stateful_policy<P>) {
        throw std::invalid_argument("exact_output_distribution: stateful policies (KLASS) are not enumerable");
      } else {
        const auto opt = make_options(p, choice, block_length, steps, 0, "automatic");
        py::gil_scoped_release nogil;
        return reference::exact_output_distribution(model, c, opt, eo);
      }
    });
    py::dict d;
    d["outputs"] = distribution_list(r.outputs);
    d["incomplete_probability"] = r.incomplete_probability;
    d["expected_nfe"] = r.expected_nfe;
    d["states"] = r.states;
    d["has_exact_process"] = r.has_exact_process;
    d["exact_outputs"] = distribution_list(r.exact_outputs);
    d["exact_incomplete_probability"] = r.exact_incomplete_probability;
    d["trajectory_bound"] = r.trajectory_bound;
    d["exact_expected_steps"] = r.exact_expected_steps;
    return d;
  }, py::arg("model"), py::arg("canvas"), py::arg("policy"), py::arg("choice") = token_choice{},
        py::arg("block_length") = 0, py::arg("steps") = 0, py::arg("precision") = "exact",
        py::arg("exact_process") = true, py::arg("max_states") = std::size_t{1} << 18,
        "Exact output distribution of decode on an exact model (reference/exact_decode.hpp).");
  m.def("model_output_distribution", [](exact_model& model, const canvas& c) {
    return distribution_list(reference::model_output_distribution(model, c));
  }, py::arg("model"), py::arg("canvas"), "The model's own joint of the masked positions given the rest.");
  m.def("kl_divergence", [](py::handle p, py::handle q) { return reference::kl_divergence(from_list(p), from_list(q)); },
        py::arg("p"), py::arg("q"), "KL(p || q) of two output distributions (lists of (tokens, probability)).");
}

}  // namespace mdlm::python
