// SPDX-License-Identifier: MIT
// Host side of the device row statistics: validation, buffers, launches, the host emulation and the
// device-logits adapter (include/mdlm/cuda/row_stats.hpp).
#include "mdlm/cuda/row_stats.hpp"

#include <cuda_runtime_api.h>

#include <algorithm>
#include <cmath>
#include <limits>
#include <map>
#include <string>
#include <vector>

#include "check.hpp"
#include "mdlm/detail/errors.hpp"
#include "row_stats_launch.hpp"

namespace mdlm::cuda {

namespace {

rows::dtype to_dtype(logit_type t) {
  switch (t) {
    case logit_type::bf16: return rows::dtype::bf16;
    case logit_type::f16: return rows::dtype::f16;
    case logit_type::f32: break;
  }
  return rows::dtype::f32;
}

std::size_t stride_of(const device_matrix& m) { return m.ld == 0 ? m.vocab : m.ld; }

void validate(const device_matrix& m, std::span<const device_row> rows, const token_choice& choice,
              std::span<const token_id> banned, std::size_t out_size) {
  choice.validate();
  mdlm::detail::require(m.data != nullptr || rows.empty(), "device_matrix::data is null");
  mdlm::detail::require(m.vocab >= 1 && m.vocab <= max_row_vocab(), "vocab = ", m.vocab, " must lie in [1, ",
                        max_row_vocab(), "]");
  mdlm::detail::require(stride_of(m) >= m.vocab, "ld = ", m.ld, " is below vocab = ", m.vocab);
  mdlm::detail::require(out_size == rows.size(), "out.size() = ", out_size, " differs from rows.size() = ", rows.size());
  for (std::size_t i = 0; i < rows.size(); ++i)
    mdlm::detail::require(rows[i].src < m.rows, "rows[", i, "].src = ", rows[i].src, " is outside the ", m.rows,
                          " rows of the matrix");
  for (token_id b : banned)
    mdlm::detail::require(b >= 0 && static_cast<std::size_t>(b) < m.vocab, "banned token id ", b, " outside [0, ",
                          m.vocab, ")");
  if (choice.top_k)
    mdlm::detail::require(*choice.top_k <= static_cast<std::size_t>(std::numeric_limits<int>::max()), "top_k = ",
                          *choice.top_k, " is too large");
}

rows::launch_params params_of(const device_matrix& m, const token_choice& choice, counter_rng rng) {
  rows::launch_params p;
  p.logits = m.data;
  p.type = to_dtype(m.type);
  p.vocab = static_cast<std::int64_t>(m.vocab);
  p.ld = static_cast<std::int64_t>(stride_of(m));
  p.sampled = choice.temperature > 0.0 ? 1 : 0;
  p.inv_t = choice.temperature > 0.0 ? 1.0 / choice.temperature : 1.0;
  p.top_k = choice.top_k ? static_cast<int>(std::min<std::size_t>(*choice.top_k, m.vocab)) : 0;
  p.top_p = choice.top_p ? *choice.top_p : 1.0;
  rows::token_key(rng.seed, p.key0, p.key1);
  return p;
}

row_choice to_choice(const rows::row_out& o) {
  row_choice c;
  c.kl = o.kl;
  if (o.valid == 0) return c;  // stats.valid false, token no_token, NaN doubles
  c.stats.log_normalizer = o.log_normalizer;
  c.stats.entropy = o.entropy;
  c.stats.top1 = o.top1;
  c.stats.top1_logprob = o.top1_logprob;
  c.stats.top2 = o.top2;
  c.stats.top2_logprob = o.top2_logprob;
  c.stats.valid = true;
  c.token = o.token;
  c.prob = o.prob;
  c.tempered_prob = o.tempered_prob;
  c.tempered_entropy = o.tempered_entropy;
  c.tempered_margin = o.tempered_margin;
  return c;
}

rows::row_job to_job(const device_row& r) {
  return {static_cast<std::int64_t>(r.src), r.position, r.sequence, r.step, r.previous};
}

//! A buffer that grows (never shrinks): device memory, or pinned host memory when `pinned`.
template <bool pinned>
struct growing_buffer {
  void* p = nullptr;
  std::size_t bytes = 0;
  void reserve(std::size_t n, const char* what) {
    if (n <= bytes) return;
    release();
    const char* call = pinned ? "cudaMallocHost of " : "cudaMalloc of ";
    detail::check_cuda(pinned ? cudaMallocHost(&p, n) : cudaMalloc(&p, n),
                       [&] { return std::string(call) + std::to_string(n) + " bytes for " + what; });
    bytes = n;
  }
  void release() noexcept {
    if (p != nullptr) {
      if constexpr (pinned) cudaFreeHost(p);
      else cudaFree(p);
    }
    p = nullptr;
    bytes = 0;
  }
  ~growing_buffer() { release(); }
};
using device_buffer = growing_buffer<false>;
using pinned_buffer = growing_buffer<true>;

//! The host executor of rows::process_row: one thread after another, then the next step.
struct host_exec {
  template <class F>
  void for_threads(F&& f) {
    for (int t = 0; t < rows::threads; ++t) f(t);
  }
};

}  // namespace

std::size_t max_row_vocab() noexcept { return static_cast<std::size_t>(rows::max_vocab); }

struct row_engine::impl {
  cudaStream_t stream = nullptr;
  device_buffer jobs, outs, banned;
  pinned_buffer host_jobs, host_outs, host_banned;
};

row_engine::row_engine(void* stream) : impl_(std::make_unique<impl>()) { impl_->stream = static_cast<cudaStream_t>(stream); }
row_engine::~row_engine() = default;
row_engine::row_engine(row_engine&&) noexcept = default;
row_engine& row_engine::operator=(row_engine&&) noexcept = default;
void* row_engine::stream() const noexcept { return impl_->stream; }

void row_engine::choose(const device_matrix& m, std::span<const device_row> rows, const token_choice& choice,
                        counter_rng rng, std::span<const token_id> banned, std::span<row_choice> out) {
  validate(m, rows, choice, banned, out.size());
  if (rows.empty()) return;
  auto& s = *impl_;
  const std::size_t n = rows.size();
  s.jobs.reserve(n * sizeof(rows::row_job), "the row jobs");
  s.outs.reserve(n * sizeof(rows::row_out), "the row statistics");
  s.host_jobs.reserve(n * sizeof(rows::row_job), "the row jobs");
  s.host_outs.reserve(n * sizeof(rows::row_out), "the row statistics");
  auto* hj = static_cast<rows::row_job*>(s.host_jobs.p);
  for (std::size_t i = 0; i < n; ++i) hj[i] = to_job(rows[i]);
  detail::check_cuda(cudaMemcpyAsync(s.jobs.p, hj, n * sizeof(rows::row_job), cudaMemcpyHostToDevice, s.stream),
                     "row statistics: copy of the row jobs");
  const auto* dj = static_cast<const rows::row_job*>(s.jobs.p);
  if (!banned.empty()) {
    s.banned.reserve(banned.size() * sizeof(std::int32_t), "the banned ids");
    s.host_banned.reserve(banned.size() * sizeof(std::int32_t), "the banned ids");
    auto* hb = static_cast<std::int32_t*>(s.host_banned.p);
    for (std::size_t i = 0; i < banned.size(); ++i) hb[i] = banned[i];
    detail::check_cuda(cudaMemcpyAsync(s.banned.p, hb, banned.size() * sizeof(std::int32_t), cudaMemcpyHostToDevice,
                                       s.stream),
                       "row statistics: copy of the banned ids");
    detail::check_cuda(detail::launch_ban(m.data, to_dtype(m.type), static_cast<std::int64_t>(stride_of(m)), dj,
                                          static_cast<std::int64_t>(n), static_cast<const std::int32_t*>(s.banned.p),
                                          static_cast<std::int64_t>(banned.size()), s.stream),
                       "row statistics: launch of the ban kernel");
  }
  detail::check_cuda(detail::launch_row_stats(params_of(m, choice, rng), dj, static_cast<std::int64_t>(n),
                                              static_cast<rows::row_out*>(s.outs.p), s.stream),
                     [&] { return "row statistics: launch over " + std::to_string(n) + " rows of " + std::to_string(m.vocab); });
  detail::check_cuda(cudaMemcpyAsync(s.host_outs.p, s.outs.p, n * sizeof(rows::row_out), cudaMemcpyDeviceToHost,
                                     s.stream),
                     "row statistics: copy of the results");
  detail::check_cuda(cudaStreamSynchronize(s.stream),
                     [&] { return "row statistics over " + std::to_string(n) + " rows (kernel or copy)"; });
  const auto* ho = static_cast<const rows::row_out*>(s.host_outs.p);
  for (std::size_t i = 0; i < n; ++i) out[i] = to_choice(ho[i]);
}

void emulate_rows(const device_matrix& m, std::span<const device_row> rows, const token_choice& choice, counter_rng rng,
                  std::span<row_choice> out) {
  validate(m, rows, choice, {}, out.size());
  const rows::launch_params p = params_of(m, choice, rng);
  auto b = std::make_unique<rows::block_scratch>();
  host_exec ex;
  for (std::size_t i = 0; i < rows.size(); ++i) {
    rows::process_row(ex, *b, p, to_job(rows[i]));
    out[i] = to_choice(b->out);
  }
}

struct kl_store::impl {
  struct canvas {
    device_buffer buffer;
    std::size_t length = 0, vocab = 0;
  };
  std::map<std::uint32_t, canvas> canvases;
};

kl_store::kl_store() : impl_(std::make_unique<impl>()) {}
kl_store::~kl_store() = default;
kl_store::kl_store(kl_store&&) noexcept = default;
kl_store& kl_store::operator=(kl_store&&) noexcept = default;

void kl_store::attach(std::span<const row_request> requests, std::size_t length, std::size_t vocab,
                      std::span<device_row> rows, void* stream) {
  std::size_t offset = 0;
  for (const row_request& r : requests) {
    const std::size_t n = r.rows.size();
    if (r.kl) {
      auto& c = impl_->canvases[r.sequence];
      const std::size_t bytes = length * vocab * sizeof(float);
      if (r.step == 0 || c.length != length || c.vocab != vocab) {
        c.buffer.reserve(bytes, "KLASS's previous distributions");
        detail::check_cuda(cudaMemsetAsync(c.buffer.p, 0, bytes, static_cast<cudaStream_t>(stream)),
                           "reset of KLASS's previous distributions");
        c.length = length;
        c.vocab = vocab;
      }
      auto* base = static_cast<float*>(c.buffer.p);
      for (std::size_t j = 0; j < n; ++j) rows[offset + j].previous = base + r.rows[j] * vocab;
    }
    offset += n;
  }
}

namespace detail {
bool gather_rows(std::span<const row_request> requests, std::size_t length, std::vector<device_row>& rows) {
  rows.clear();
  bool shared = true;
  for (std::size_t b = 0; b < requests.size(); ++b) {
    const row_request& r = requests[b];
    shared = shared && r.choice == requests[0].choice && r.rng.seed == requests[0].rng.seed &&
             std::equal(r.banned.begin(), r.banned.end(), requests[0].banned.begin(), requests[0].banned.end());
    for (std::size_t p : r.rows) {
      mdlm::detail::require(p < length, "request ", b, ": row ", p, " is outside the sequence length ", length);
      rows.push_back({b * length + p, static_cast<std::uint32_t>(p), r.sequence, r.step});
    }
  }
  return shared;
}
}  // namespace detail

struct device_logits_model::buffers {
  device_buffer logits;
  row_engine engine;
  kl_store kl;
  std::vector<device_row> rows;
  explicit buffers(void* stream) : engine(stream) {}
};

device_logits_model::device_logits_model(std::size_t vocab, token_id mask, forward_fn forward, logit_type type, void* stream)
    : vocab_(vocab), mask_(mask), forward_(std::move(forward)), type_(type), buf_(std::make_unique<buffers>(stream)) {
  mdlm::detail::require(vocab >= 1 && vocab <= max_row_vocab(), "vocab = ", vocab, " must lie in [1, ", max_row_vocab(), "]");
  mdlm::detail::require(mask >= 0 && static_cast<std::size_t>(mask) < vocab, "mask token ", mask, " outside [0, ", vocab, ")");
  mdlm::detail::require(static_cast<bool>(forward_), "the forward callback is empty");
}
device_logits_model::~device_logits_model() = default;
device_logits_model::device_logits_model(device_logits_model&&) noexcept = default;
device_logits_model& device_logits_model::operator=(device_logits_model&&) noexcept = default;

void device_logits_model::row_choices(std::span<const token_id> tokens, const row_request& request, std::span<row_choice> out) {
  batch_row_choices(tokens, 1, std::span<const row_request>(&request, 1), out);
}

void device_logits_model::batch_row_choices(std::span<const token_id> tokens, std::size_t batch,
                                            std::span<const row_request> requests, std::span<row_choice> out) {
  mdlm::detail::require(batch >= 1 && !tokens.empty() && tokens.size() % batch == 0, "tokens.size() = ", tokens.size(),
                        " must be a positive multiple of batch = ", batch);
  mdlm::detail::require(requests.size() == batch, "requests.size() = ", requests.size(), " differs from batch = ", batch);
  const std::size_t length = tokens.size() / batch;
  auto& b = *buf_;
  const std::size_t elem = type_ == logit_type::f32 ? 4 : 2;
  b.logits.reserve(tokens.size() * vocab_ * elem, "the device logits");
  forward_(tokens, batch, b.logits.p, b.engine.stream());
  const device_matrix m{b.logits.p, type_, tokens.size(), vocab_, vocab_};
  const bool shared = detail::gather_rows(requests, length, b.rows);
  b.kl.attach(requests, length, vocab_, b.rows, b.engine.stream());
  if (shared) {
    b.engine.choose(m, b.rows, requests[0].choice, requests[0].rng, requests[0].banned, out);
    return;
  }
  // Requests with different choices: one launch per request.
  std::size_t offset = 0;
  for (std::size_t r = 0; r < batch; ++r) {
    const std::size_t n = requests[r].rows.size();
    b.engine.choose(m, std::span<const device_row>(b.rows.data() + offset, n), requests[r].choice, requests[r].rng,
                    requests[r].banned, out.subspan(offset, n));
    offset += n;
  }
}

}  // namespace mdlm::cuda
