// SPDX-License-Identifier: MIT
#include "mdlm/cpu/model.hpp"

#include <omp.h>

#include <Eigen/Core>
#include <algorithm>
#include <array>
#include <bit>
#include <cstring>
#include <cmath>
#include <limits>
#include <thread>

#include "mdlm/cpu/gemm.hpp"
#include "mdlm/detail/errors.hpp"

namespace mdlm::cpu {

namespace {

using row_matrix = Eigen::Matrix<float, Eigen::Dynamic, Eigen::Dynamic, Eigen::RowMajor>;

// Output features per parallel chunk of a linear layer with `out` features: a function of the shape
// only (never of the thread count), so that every chunk's product, and hence every output bit, is
// the same for any number of threads. About 256 wide -- OpenBLAS packs the activations once per
// product, so wider chunks amortise that better -- in a multiple of 4 chunks (768 features: 4 x 192,
// 2048: 8 x 256), so that 2 or 4 threads get equal shares; widths are multiples of 16 floats.
std::size_t chunk_width(std::size_t out) {
  const std::size_t chunks = ((out + 255) / 256 + 3) / 4 * 4;
  return ((out + chunks - 1) / chunks + 15) / 16 * 16;
}
// Vocabulary entries per parallel chunk of the head (products of head_tile_rows x d x 64): the
// fastest of 32-256 for 16-row tiles with OpenBLAS at d = 768, the chunk's weights staying in cache
// across the tiles.
constexpr std::size_t head_chunk_features = 64;

using index = Eigen::Index;

// Y[:, 0:out] (row stride ldy) = X (rows x in, row stride ldx) * W^T (+ bias), or += when
// `accumulate`. W is [out, in] row-major (PyTorch nn.Linear layout).
// A 16-bit W is converted chunk by chunk into the calling thread's part of `scratch` (`stride`
// floats per thread), so the product sees exactly the fp32 values an fp32 W would hold.
void linear(const float* x, std::size_t rows, std::size_t in, std::size_t ldx, const detail::weight_matrix& w,
            const float* bias, std::size_t out, float* y, std::size_t ldy, bool accumulate, int threads,
            float* scratch, std::size_t stride) {
  const std::size_t width = chunk_width(out);
  const auto chunks = static_cast<std::ptrdiff_t>((out + width - 1) / width);
// dynamic: a thread slowed by other work on its core takes fewer chunks; which thread computes a
// chunk does not change its bits.
#pragma omp parallel for num_threads(threads) schedule(dynamic)
  for (std::ptrdiff_t c = 0; c < chunks; ++c) {
    const std::size_t o0 = static_cast<std::size_t>(c) * width;
    const std::size_t n = std::min(width, out - o0);
    const float* wc = w.rows_f32(o0, n, scratch + static_cast<std::size_t>(omp_get_thread_num()) * stride);
    gemm(rows, n, in, x, ldx, wc, in, b_layout::n_by_k, y + o0, ldy, accumulate);
    if (bias != nullptr) {
      for (std::size_t r = 0; r < rows; ++r)
        for (std::size_t j = 0; j < n; ++j) y[r * ldy + o0 + j] += bias[o0 + j];
    }
  }
}

// out[r] = x[r] / sqrt(mean(x[r]^2) + eps) * w: normalise first, then multiply by the weight
// (models.md section 2.8). The mean of squares is accumulated in double; it is then rounded to fp32
// like PyTorch's fp32 mean.
void rms_norm(const float* x, std::size_t rows, std::size_t d, const detail::aligned_floats& w, float eps, float* out,
              int threads) {
  const auto n = static_cast<std::ptrdiff_t>(rows);
#pragma omp parallel for num_threads(threads) schedule(static)
  for (std::ptrdiff_t r = 0; r < n; ++r) {
    const float* xr = x + static_cast<std::size_t>(r) * d;
    float* yr = out + static_cast<std::size_t>(r) * d;
    double ss = 0.0;
    for (std::size_t i = 0; i < d; ++i) ss += static_cast<double>(xr[i]) * xr[i];
    const auto var = static_cast<float>(ss / static_cast<double>(d));
    const float inv = 1.0f / std::sqrt(var + eps);
    for (std::size_t i = 0; i < d; ++i) yr[i] = xr[i] * inv * w[i];
  }
}

}  // namespace

namespace detail {

const float* weight_matrix::rows_f32(std::size_t r0, std::size_t n, float* scratch) const noexcept {
  if (type == hf::dtype::f32) return f32.data() + r0 * cols;
  const std::uint16_t* src = bits.data() + r0 * cols;
  const std::size_t count = n * cols;
  if (type == hf::dtype::bf16) {
    // bf16 is the upper half of an fp32: a shift, which the compiler vectorises with any -march.
    for (std::size_t i = 0; i < count; ++i) scratch[i] = std::bit_cast<float>(static_cast<std::uint32_t>(src[i]) << 16);
  } else {
    for (std::size_t i = 0; i < count; ++i) scratch[i] = hf::f16_to_f32(src[i]);
  }
  return scratch;
}

}  // namespace detail

std::size_t model::weight_bytes() const noexcept {
  std::size_t b = embed_.bytes() + head_.bytes() + final_norm_.size() * sizeof(float);
  for (const auto& l : layers_) {
    for (const matrix* m : {&l.wq, &l.wk, &l.wv, &l.wo, &l.w_gate, &l.w_up, &l.w_down}) b += m->bytes();
    for (const buffer* v : {&l.attn_norm, &l.bq, &l.bk, &l.bv, &l.ff_norm}) b += v->size() * sizeof(float);
  }
  return b;
}

model model::load(const std::filesystem::path& dir, const model_options& options) {
  return model(checkpoint::open(dir, checkpoint_options{.allow_unexpected_tensors = options.allow_unexpected_tensors}),
               options);
}

model::model(const checkpoint& ckpt, const model_options& options) : config_(ckpt.config()) {
  set_threads(options.threads);
  auto read = [&](const tensor_spec& spec, buffer& dst) {
    std::uint64_t n = 1;
    for (auto d : spec.shape) n *= d;
    dst.resize(static_cast<std::size_t>(n));
    ckpt.read_f32(spec.name, dst);
  };
  auto read_matrix = [&](const tensor_spec& spec, matrix& dst) {
    dst.rows = static_cast<std::size_t>(spec.shape.at(0));
    dst.cols = static_cast<std::size_t>(spec.shape.at(1));
    const tensor_info& t = ckpt.info(spec.name);
    if (options.weights == weight_storage::file_dtype && (t.type == dtype::bf16 || t.type == dtype::f16)) {
      dst.type = t.type;
      dst.bits.resize(dst.rows * dst.cols);
      const std::span<const std::byte> raw = ckpt.bytes(spec.name);
      std::memcpy(dst.bits.data(), raw.data(), raw.size());  // little-endian 16-bit elements, as on x86 / ARM
      // Widest chunk a product of this matrix converts: linear's chunk_width, or the head's.
      weight_scratch_stride_ = std::max(weight_scratch_stride_, std::max(chunk_width(dst.rows), head_chunk_features) * dst.cols);
    } else {
      dst.type = dtype::f32;
      dst.f32.resize(dst.rows * dst.cols);
      ckpt.read_f32(spec.name, dst.f32);
    }
    ckpt.release(spec.name);
  };
  static_assert(std::endian::native == std::endian::little, "16-bit weights are copied as little-endian bits");
  const auto specs = expected_tensors(config_);
  // expected_tensors order: embedding, per layer (LLaDA 9 / Dream 12 tensors), final norm, head.
  std::size_t s = 0;
  read_matrix(specs[s++], embed_);
  layers_.resize(config_.n_layers);
  for (auto& l : layers_) {
    read(specs[s++], l.attn_norm);
    if (config_.arch == architecture::llada) {
      for (auto* dst : {&l.wq, &l.wk, &l.wv, &l.wo}) read_matrix(specs[s++], *dst);
    } else {
      read_matrix(specs[s++], l.wq);
      read(specs[s++], l.bq);
      read_matrix(specs[s++], l.wk);
      read(specs[s++], l.bk);
      read_matrix(specs[s++], l.wv);
      read(specs[s++], l.bv);
      read_matrix(specs[s++], l.wo);
    }
    read(specs[s++], l.ff_norm);
    for (auto* dst : {&l.w_gate, &l.w_up, &l.w_down}) read_matrix(specs[s++], *dst);
  }
  read(specs[s++], final_norm_);
  if (!config_.tied_embeddings) read_matrix(specs[s++], head_);

  // RoPE inverse frequencies in fp32, as PyTorch: 1 / theta^(arange(0, d, 2) / d).
  const std::size_t half = config_.head_dim / 2;
  inv_freq_.resize(half);
  const auto theta = static_cast<float>(config_.rope_theta);
  for (std::size_t i = 0; i < half; ++i)
    inv_freq_[i] = 1.0f / std::pow(theta, static_cast<float>(2 * i) / static_cast<float>(config_.head_dim));
}

void model::set_threads(int threads) {
  mdlm::detail::require(threads >= 0 && threads <= max_threads, "threads = ", threads, " must lie in [0, ",
                        max_threads, "] (0 = OpenMP default)");
  // 0: OMP_NUM_THREADS or the cores, but never more than the machine has hardware threads (an
  // OMP_NUM_THREADS of 100000 overflowed the OpenMP runtime's stacks) nor max_threads.
  const int hw = std::max(1, static_cast<int>(std::thread::hardware_concurrency()));
  threads_ = threads == 0 ? std::clamp(omp_get_max_threads(), 1, std::min(hw, max_threads)) : threads;
  scores_.clear();
  capacity_ = 0;
}

void model::reserve(std::size_t length) {
  if (length <= capacity_) return;
  const auto& c = config_;
  const std::size_t kv = c.n_kv_heads * c.head_dim;
  x_.resize(length * c.d_model);
  a_.resize(length * c.d_model);
  q_.resize(length * c.d_model);
  k_.resize(length * kv);
  v_.resize(length * kv);
  o_.resize(length * c.d_model);
  gate_.resize(length * c.mlp_hidden);
  up_.resize(length * c.mlp_hidden);
  scores_stride_ = (length * length + 15) / 16 * 16;
  scores_.resize(static_cast<std::size_t>(threads_) * scores_stride_);
  weight_scratch_.resize(static_cast<std::size_t>(threads_) * weight_scratch_stride_);
  rope_cos_.resize(length * c.head_dim);
  rope_sin_.resize(length * c.head_dim);
  const std::size_t half = c.head_dim / 2;
  for (std::size_t p = 0; p < length; ++p) {
    for (std::size_t i = 0; i < half; ++i) {
      const float angle = static_cast<float>(p) * inv_freq_[i];  // fp32 outer product, as PyTorch
      const float cs = std::cos(angle), sn = std::sin(angle);
      rope_cos_[p * c.head_dim + i] = rope_cos_[p * c.head_dim + half + i] = cs;
      rope_sin_[p * c.head_dim + i] = rope_sin_[p * c.head_dim + half + i] = sn;
    }
  }
  capacity_ = length;
}

void model::logits(std::span<const token_id> tokens, std::span<float> out) {
  mdlm::detail::require(!tokens.empty(), "tokens.size() = 0: a sequence needs at least one token");
  mdlm::detail::require(out.size() == tokens.size() * config_.vocab_size, "out.size() = ", out.size(),
                        " must equal tokens.size() * vocab_size = ", tokens.size(), " * ", config_.vocab_size);
  forward(tokens, out);
}

void model::batch_logits(std::span<const token_id> tokens, std::size_t batch, std::span<float> out) {
  mdlm::detail::require(batch > 0, "batch = 0 must be positive");
  mdlm::detail::require(!tokens.empty() && tokens.size() % batch == 0, "tokens.size() = ", tokens.size(),
                        " must be a positive multiple of batch = ", batch);
  mdlm::detail::require(out.size() == tokens.size() * config_.vocab_size, "out.size() = ", out.size(),
                        " must equal tokens.size() * vocab_size = ", tokens.size(), " * ", config_.vocab_size);
  const std::size_t length = tokens.size() / batch;
  for (std::size_t b = 0; b < batch; ++b)
    forward(tokens.subspan(b * length, length), out.subspan(b * length * config_.vocab_size, length * config_.vocab_size));
}

void model::forward(std::span<const token_id> tokens, std::span<float> out) {
  const float* hidden = body(tokens);
  const std::size_t length = tokens.size();
  if (all_rows_.size() < length) {
    all_rows_.resize(length);
    for (std::size_t i = 0; i < length; ++i) all_rows_[i] = i;
  }
  head_rows(hidden, std::span<const std::size_t>(all_rows_.data(), length), out);
}

void model::head_rows(const float* hidden, std::span<const std::size_t> rows, std::span<float> out) {
  const auto& c = config_;
  const std::size_t d = c.d_model, vocab = c.vocab_size, tile = head_tile_rows;
  const matrix& w = head_.rows == 0 ? embed_ : head_;
  // Row p goes to slot p % tile of the first tile whose slot is still free, the slot a full call
  // gives it (the rows are ascending, so a full call fills tiles 0, 1, ... in order); free slots are
  // zero rows.
  std::array<std::size_t, head_tile_rows> used{};
  slot_of_.resize(rows.size());
  std::size_t tiles = 0;
  for (std::size_t j = 0; j < rows.size(); ++j) {
    const std::size_t t = used[rows[j] % tile]++;
    slot_of_[j] = t * tile + rows[j] % tile;
    tiles = std::max(tiles, t + 1);
  }
  tile_in_.resize(tiles * tile * d);
  tile_out_.resize(tiles * tile * vocab);
  std::fill_n(tile_in_.data(), tiles * tile * d, 0.0f);
  for (std::size_t j = 0; j < rows.size(); ++j) std::copy_n(hidden + rows[j] * d, d, tile_in_.data() + slot_of_[j] * d);
  // Chunks of output features outside, tiles inside: a chunk's weights (head_chunk_features x d)
  // stay in cache across the tiles, and every product has the fixed shape tile x d x
  // head_chunk_features, so a row's logits do not depend on the other rows (nor on the thread count).
  const auto chunks = static_cast<std::ptrdiff_t>((vocab + head_chunk_features - 1) / head_chunk_features);
  const blas_thread_scope single_threaded_blas;
#pragma omp parallel for num_threads(threads_) schedule(dynamic)
  for (std::ptrdiff_t ch = 0; ch < chunks; ++ch) {
    const std::size_t o0 = static_cast<std::size_t>(ch) * head_chunk_features;
    const std::size_t n = std::min(head_chunk_features, vocab - o0);
    const float* wc =
        w.rows_f32(o0, n, weight_scratch_.data() + static_cast<std::size_t>(omp_get_thread_num()) * weight_scratch_stride_);
    for (std::size_t t = 0; t < tiles; ++t)
      gemm(tile, n, d, tile_in_.data() + t * tile * d, d, wc, d, b_layout::n_by_k,
           tile_out_.data() + t * tile * vocab + o0, vocab, false);
  }
  for (std::size_t j = 0; j < rows.size(); ++j)
    std::copy_n(tile_out_.data() + slot_of_[j] * vocab, vocab, out.data() + rows[j] * vocab);
}

void model::check_request(std::span<const token_id> tokens, const row_request& request, std::size_t out_size) const {
  mdlm::detail::require(!tokens.empty(), "tokens.size() = 0: a sequence needs at least one token");
  mdlm::detail::require(out_size == request.rows.size(), "out.size() = ", out_size, " differs from rows.size() = ",
                        request.rows.size());
  for (std::size_t i = 0; i < request.rows.size(); ++i)
    mdlm::detail::require(request.rows[i] < tokens.size() && (i == 0 || request.rows[i] > request.rows[i - 1]),
                          "rows[", i, "] = ", request.rows[i], " is not strictly ascending below the length ",
                          tokens.size());
  for (token_id b : request.banned)
    mdlm::detail::require(b >= 0 && static_cast<std::size_t>(b) < config_.vocab_size, "banned token id ", b,
                          " outside [0, ", config_.vocab_size, ")");
}

void model::row_choices(std::span<const token_id> tokens, const row_request& request, std::span<row_choice> out) {
  check_request(tokens, request, out.size());
  const std::size_t vocab = config_.vocab_size;
  const float* hidden = body(tokens);
  row_logits_.resize(tokens.size() * vocab);
  head_rows(hidden, request.rows, row_logits_);
  for (std::size_t p : request.rows)
    for (token_id b : request.banned)
      row_logits_[p * vocab + static_cast<std::size_t>(b)] = -std::numeric_limits<float>::infinity();
  row_request plain = request;
  plain.banned = {};
  scratch_.reserve(vocab);
  compute_row_choices(std::span<const float>(row_logits_.data(), tokens.size() * vocab), vocab, plain, out, nullptr,
                      scratch_);
  kl_.fill(std::span<const float>(row_logits_), tokens.size(), vocab, request, out);
}

void model::batch_row_choices(std::span<const token_id> tokens, std::size_t batch, std::span<const row_request> requests,
                              std::span<row_choice> out) {
  mdlm::detail::require(batch > 0, "batch = 0 must be positive");
  mdlm::detail::require(!tokens.empty() && tokens.size() % batch == 0, "tokens.size() = ", tokens.size(),
                        " must be a positive multiple of batch = ", batch);
  mdlm::detail::require(requests.size() == batch, "requests.size() = ", requests.size(), " differs from batch = ", batch);
  std::size_t total = 0;
  for (const auto& r : requests) total += r.rows.size();
  mdlm::detail::require(out.size() == total, "out.size() = ", out.size(), " differs from the ", total, " requested rows");
  const std::size_t length = tokens.size() / batch;
  std::size_t offset = 0;
  for (std::size_t b = 0; b < batch; ++b) {
    row_choices(tokens.subspan(b * length, length), requests[b], out.subspan(offset, requests[b].rows.size()));
    offset += requests[b].rows.size();
  }
}

const float* model::body(std::span<const token_id> tokens) {
  const auto& c = config_;
  const std::size_t length = tokens.size(), d = c.d_model, hd = c.head_dim, half = hd / 2;
  const std::size_t kv = c.n_kv_heads * hd, group = c.n_heads / c.n_kv_heads, vocab = c.vocab_size;
  for (std::size_t i = 0; i < length; ++i)
    mdlm::detail::require(tokens[i] >= 0 && static_cast<std::size_t>(tokens[i]) < vocab, "token id ", tokens[i],
                          " at position ", i, " is outside the vocabulary [0, ", vocab, ")");
  reserve(length);
  // Our own chunks are the only parallelism: the library's internal GEMM threading would change its
  // blocking (and so the rounding) with the thread count.
  Eigen::setNbThreads(1);
  const blas_thread_scope single_threaded_blas;
  const int t = threads_;
  const auto eps = static_cast<float>(c.rms_norm_eps);
  float* const ws = weight_scratch_.data();
  const std::size_t wss = weight_scratch_stride_;

  // Embedding rows: converted straight into x (a 16-bit row) or copied (fp32).
  for (std::size_t i = 0; i < length; ++i) {
    float* xi = x_.data() + i * d;
    const float* row = embed_.rows_f32(static_cast<std::size_t>(tokens[i]), 1, xi);
    if (row != xi) std::copy_n(row, d, xi);
  }

  const float scale = 1.0f / std::sqrt(static_cast<float>(hd));
  for (const auto& l : layers_) {
    rms_norm(x_.data(), length, d, l.attn_norm, eps, a_.data(), t);
    linear(a_.data(), length, d, d, l.wq, l.bq.empty() ? nullptr : l.bq.data(), d, q_.data(), d, false, t, ws, wss);
    linear(a_.data(), length, d, d, l.wk, l.bk.empty() ? nullptr : l.bk.data(), kv, k_.data(), kv, false, t, ws, wss);
    linear(a_.data(), length, d, d, l.wv, l.bv.empty() ? nullptr : l.bv.data(), kv, v_.data(), kv, false, t, ws, wss);

    // Half-split RoPE on q and k: out[i] = x[i] cos - x[i+h] sin, out[i+h] = x[i+h] cos + x[i] sin.
    const auto rows = static_cast<std::ptrdiff_t>(length);
#pragma omp parallel for num_threads(t) schedule(static)
    for (std::ptrdiff_t pr = 0; pr < rows; ++pr) {
      const auto p = static_cast<std::size_t>(pr);
      const float* cs = rope_cos_.data() + p * hd;
      const float* sn = rope_sin_.data() + p * hd;
      auto rotate = [&](float* head) {
        for (std::size_t i = 0; i < half; ++i) {
          const float x1 = head[i], x2 = head[i + half];
          head[i] = x1 * cs[i] - x2 * sn[i];
          head[i + half] = x2 * cs[i + half] + x1 * sn[i + half];
        }
      };
      for (std::size_t h = 0; h < c.n_heads; ++h) rotate(q_.data() + p * d + h * hd);
      for (std::size_t h = 0; h < c.n_kv_heads; ++h) rotate(k_.data() + p * kv + h * hd);
    }

    // Bidirectional attention, one head per iteration; each thread has its own score buffer.
    const auto heads = static_cast<std::ptrdiff_t>(c.n_heads);
#pragma omp parallel for num_threads(t) schedule(dynamic)
    for (std::ptrdiff_t hh = 0; hh < heads; ++hh) {
      const auto h = static_cast<std::size_t>(hh);
      const std::size_t g = h / group;  // repeat_interleave: query head h reads KV head h / group
      const auto li = static_cast<index>(length);
      float* sbuf = scores_.data() + static_cast<std::size_t>(omp_get_thread_num()) * scores_stride_;
      Eigen::Map<row_matrix> s(sbuf, li, li);
      gemm(length, length, hd, q_.data() + h * hd, d, k_.data() + g * hd, kv, b_layout::n_by_k, sbuf, length, false);
      s *= scale;
      for (index r = 0; r < li; ++r) {
        auto row = s.row(r).array();
        row = (row - row.maxCoeff()).exp();  // max-subtracted: every exponent <= 0
        row /= row.sum();
      }
      gemm(length, hd, length, sbuf, length, v_.data() + g * hd, kv, b_layout::k_by_n, o_.data() + h * hd, d, false);
    }
    linear(o_.data(), length, d, d, l.wo, nullptr, d, x_.data(), d, true, t, ws, wss);  // residual 1

    rms_norm(x_.data(), length, d, l.ff_norm, eps, a_.data(), t);
    linear(a_.data(), length, d, d, l.w_gate, nullptr, c.mlp_hidden, gate_.data(), c.mlp_hidden, false, t, ws, wss);
    linear(a_.data(), length, d, d, l.w_up, nullptr, c.mlp_hidden, up_.data(), c.mlp_hidden, false, t, ws, wss);
    // silu(g) * u, row by row with Eigen's vectorised exp (the scalar std::exp loop took ~5 % of
    // the forward once the products ran in OpenBLAS).
    const auto hidden = static_cast<index>(c.mlp_hidden);
#pragma omp parallel for num_threads(t) schedule(static)
    for (std::ptrdiff_t pr = 0; pr < rows; ++pr) {
      const auto off = static_cast<std::size_t>(pr) * c.mlp_hidden;
      Eigen::Map<Eigen::ArrayXf> g(gate_.data() + off, hidden);
      const Eigen::Map<const Eigen::ArrayXf> u(up_.data() + off, hidden);
      g = g / (1.0f + (-g).exp()) * u;
    }
    linear(gate_.data(), length, c.mlp_hidden, c.mlp_hidden, l.w_down, nullptr, d, x_.data(), d, true, t, ws, wss);  // residual 2
  }

  rms_norm(x_.data(), length, d, final_norm_, eps, a_.data(), t);
  if (!c.shift_logits) return a_.data();
  // Dream: output row i is the raw row of hidden state i-1; row 0 keeps its own (models.md 3.9).
  std::copy_n(a_.data(), d, o_.data());
  std::copy_n(a_.data(), (length - 1) * d, o_.data() + d);
  return o_.data();
}

}  // namespace mdlm::cpu
