// SPDX-License-Identifier: MIT
#pragma once
// The device row-statistics kernels (row_stats.cu): one thread block of rows::threads threads per
// requested row. Shared by the .cu file (device) and the host emulation (row_stats_host.cpp): the
// per-row algorithm is written once below as a template over an executor that runs the block's
// threads (the device: CUDA threads and __syncthreads; the host: loops over thread indices in the
// same order), so the host tests exercise the very code the kernels run.
//
// One row, in order:
//   1. (top-k / top-p only) the filter threshold tau: binary searches over the 2^32 float keys
//      (rows::order_key) on the count / tempered mass of the entries above a candidate value, one
//      pass over the row each (`threshold_search`);
//   2. one pass over the row (warp w reads tiles w, w + 8, ..., lane l entries 1024 t + 32 j + l,
//      coalesced): every lane accumulates rows::lane_stats;
//   3. the lanes merge in a fixed tree (128, 64, ..., 1), thread 0 finishes the statistics;
//   4. (KLASS, row_job::previous set) the KL to the previous distribution: a second read of the row;
//   5. (sampled rows) the two-level Gumbel-max draw of include/mdlm/detail/block_gumbel.hpp, whose
//      blocks of 1024 entries are the tiles: a read of the row forms each tile's log-mass
//      l_b = log sum exp(y_v - y*) over its kept entries in double (`tile_log_mass`: 32 lane sums,
//      added in lane order by lane 0) and its key l_b - log(-log U_b); the keys reduce to the block
//      b* (ties to the lower block); then the 1024 entries of b* alone get their per-entry keys
//      y_v - log(-log U_v), reduced to the token (ties to the lower id; `sample_token`).
//      Tokens therefore equal the CPU's (detail/block_gumbel.hpp `two_level_gumbel`, which the CPU
//      kernels reproduce) unless two double keys agree to within the few ulp by which the device's
//      exp / log differ from the host's and the 32-way block sums from the CPU's sequential sums
//      (about 1e-15 relative).
#include <cmath>
#include <cstdint>

#include "row_stats_math.hpp"

// nvcc: the functions below are __host__ __device__ templates over an executor whose for_threads is
// __device__ on the device and __host__ on the host; each instantiation is only called from its side.
#if defined(__CUDACC__)
#define MDLM_EXEC_CHECK_DISABLE _Pragma("nv_exec_check_disable")
#else
#define MDLM_EXEC_CHECK_DISABLE
#endif

namespace mdlm::cuda::rows {

//! Element formats of the logit rows.
enum class dtype : int { f32 = 0, bf16 = 1, f16 = 2 };

//! One requested row.
struct row_job {
  std::int64_t src = 0;          //!< row index in the logit matrix
  std::uint32_t position = 0;    //!< canvas position (keys the random numbers)
  std::uint32_t sequence = 0;    //!< canvas key
  std::uint32_t step = 0;        //!< step key
  //! p_{t-1} of the row (V floats, device memory on the device) for KLASS's KL, overwritten with
  //! p_t; nullptr: no KL (mdlm/kl_history.hpp defines both).
  float* previous = nullptr;
};

//! The parameters shared by the rows of one launch.
struct launch_params {
  const void* logits = nullptr;  //!< row-major, `ld` elements per row
  dtype type = dtype::f32;
  std::int64_t vocab = 0;
  std::int64_t ld = 0;
  double inv_t = 1.0;            //!< 1/T (1 for T = 0)
  int sampled = 0;               //!< T > 0
  int top_k = 0;                 //!< 0: no top-k
  double top_p = 1.0;            //!< 1: no top-p
  std::uint32_t key0 = 0, key1 = 0;  //!< Philox key of rng_stream::token
};

MDLM_HD bool filtered(const launch_params& p) { return p.top_k > 0 || p.top_p < 1.0; }

//! Entry v of row `src` as float (bf16 / fp16 widened exactly).
MDLM_HD float load(const launch_params& p, std::int64_t src, std::int64_t v) {
  const std::int64_t i = src * p.ld + v;
  switch (p.type) {
    case dtype::bf16: return math::bf16_to_f32(static_cast<const std::uint16_t*>(p.logits)[i]);
    case dtype::f16: {
      // binary16 -> binary32 (exact), as mdlm::fp16::to_float.
      const std::uint32_t h = static_cast<const std::uint16_t*>(p.logits)[i];
      const std::uint32_t sign = (h & 0x8000u) << 16, em = h & 0x7fffu, e = em & 0x7c00u, o = em << 13;
      float r;
      if (e == 0x7c00u) r = math::as_float(o + (224u << 23));
      else if (e == 0) r = math::as_float(o + (113u << 23)) - 6.103515625e-05f;
      else r = math::as_float(o + (112u << 23));
      return math::as_float(math::as_bits(r) | sign);
    }
    default: return static_cast<const float*>(p.logits)[i];
  }
}

//! Per-block scratch of one row (the device keeps it in shared memory: about 20 KB).
struct block_scratch {
  lane_stats lanes[threads];
  float lane_max[threads];
  float part[threads];
  double dsum[threads];
  std::uint32_t count[threads];
  double key[threads];
  int index[threads];
  row_out out;
};

// Every function below is run by all threads of a block with the same arguments: `ex.for_threads(f)`
// runs f(tid) for every thread and then synchronises the block (the device: __syncthreads; the host:
// a loop over tid). Values computed outside for_threads are block-uniform (every thread computes the
// same from shared data), so control flow never diverges across a barrier.

//! Reduces dsum[0..threads) and count[0..threads) in a fixed tree; the results land in slot 0.
MDLM_EXEC_CHECK_DISABLE
template <class Exec>
MDLM_HD void reduce_sums(Exec& ex, block_scratch& b) {
  for (int s = threads / 2; s > 0; s /= 2) {
    ex.for_threads([&](int tid) {
      if (tid < s) {
        b.dsum[tid] += b.dsum[tid + s];
        b.count[tid] += b.count[tid + s];
      }
    });
  }
}

//! Argmax of key[0..threads) with ties to the lower index[] (-1 = none); the winner lands in slot 0.
MDLM_EXEC_CHECK_DISABLE
template <class Exec>
MDLM_HD void reduce_argmax(Exec& ex, block_scratch& b) {
  for (int s = threads / 2; s > 0; s /= 2) {
    ex.for_threads([&](int tid) {
      if (tid < s) {
        const double ko = b.key[tid + s];
        const int io = b.index[tid + s];
        if (io >= 0 && (b.index[tid] < 0 || ko > b.key[tid] || (ko == b.key[tid] && io < b.index[tid]))) {
          b.key[tid] = ko;
          b.index[tid] = io;
        }
      }
    });
  }
}

//! Merges lanes[0..threads) in a fixed tree into lanes[0].
MDLM_EXEC_CHECK_DISABLE
template <class Exec>
MDLM_HD void reduce_lanes(Exec& ex, block_scratch& b, float inv_tf) {
  for (int s = threads / 2; s > 0; s /= 2)
    ex.for_threads([&](int tid) {
      if (tid < s) b.lanes[tid] = lane_merge(b.lanes[tid], b.lanes[tid + s], inv_tf);
    });
}

//! Count and tempered mass (relative to the maximum m) of the entries >= x, one pass; in slot 0.
MDLM_EXEC_CHECK_DISABLE
template <class Exec>
MDLM_HD void above(Exec& ex, block_scratch& b, const launch_params& p, std::int64_t src, float x, float m) {
  ex.for_threads([&](int tid) {
    double s = 0.0;
    std::uint32_t n = 0;
    for (std::int64_t v = tid; v < p.vocab; v += threads) {
      const float z = load(p, src, v);
      if (z >= x && z != math::neg_inf()) {
        ++n;
        s += exp((static_cast<double>(z) - m) * p.inv_t);
      }
    }
    b.dsum[tid] = s;
    b.count[tid] = n;
  });
  reduce_sums(ex, b);
}

//! The filter threshold tau of a valid row with maximum m and tempered total mass `total`: entries
//! z >= tau are kept. Top-k: the largest tau with count(z >= tau) >= k (ties at the k-th kept);
//! top-p (Dream's rule: a token is kept iff the mass strictly above it is <= p): the smallest value
//! tau whose mass strictly above is <= p. Both: the larger tau. Each probe is one pass over the row.
//! Exact ties at the top-p boundary are all kept (the CPU keeps them by id while the rule holds).
MDLM_EXEC_CHECK_DISABLE
template <class Exec>
MDLM_HD float threshold_search(Exec& ex, block_scratch& b, const launch_params& p, std::int64_t src, float m,
                               double total) {
  std::uint32_t tau_key = order_key(math::neg_inf());
  if (p.top_k > 0) {
    // Invariant: count(z >= key lo) >= k, count(z >= key hi) < k.
    std::uint32_t lo = order_key(math::neg_inf()), hi = order_key(m) + 1u;
    above(ex, b, p, src, m, m);
    if (b.count[0] >= static_cast<std::uint32_t>(p.top_k)) {
      lo = order_key(m);
    } else {
      while (hi - lo > 1u) {
        const std::uint32_t mid = lo + (hi - lo) / 2u;
        above(ex, b, p, src, from_order_key(mid), m);
        if (b.count[0] >= static_cast<std::uint32_t>(p.top_k)) lo = mid;
        else hi = mid;
      }
    }
    tau_key = lo;
  }
  if (p.top_p < 1.0) {
    // The smallest key x >= tau_key with mass(z > x) = mass(z >= x + 1) <= p * total; key(m) has it.
    const double limit = p.top_p * total;
    std::uint32_t lo = tau_key, hi = order_key(m);
    if (lo >= hi) return from_order_key(hi);
    above(ex, b, p, src, from_order_key(lo + 1u), m);
    if (b.dsum[0] <= limit) return from_order_key(lo);
    while (hi - lo > 1u) {  // property(lo) false, property(hi) true
      const std::uint32_t mid = lo + (hi - lo) / 2u;
      above(ex, b, p, src, from_order_key(mid + 1u), m);
      if (b.dsum[0] <= limit) hi = mid;
      else lo = mid;
    }
    tau_key = hi;
  }
  return from_order_key(tau_key);
}

//! Step 5's first level for one round of `warps` tiles (warp w: tile round * warps + w): the tile's
//! log-mass l_b over its kept entries (y_v = tempered(z_v) > -inf, relative to y_max) as 32 lane sums
//! in double added in lane order, and its key l_b - log(-log U_b); lane 0 of each warp keeps the
//! best key of its tiles in key[] / index[] (strictly greater: ties stay at the lower block).
MDLM_EXEC_CHECK_DISABLE
template <class Exec>
MDLM_HD void tile_log_mass(Exec& ex, block_scratch& b, const launch_params& p, const row_job& job, float tau,
                           double y_max, std::int64_t round, std::int64_t tiles) {
  ex.for_threads([&](int tid) {
    const std::int64_t t = round * warps + tid / 32;
    double s = 0.0;
    if (t < tiles) {
      for (int j = 0; j < per_lane; ++j) {
        const std::int64_t v = t * tile + static_cast<std::int64_t>(j) * 32 + tid % 32;
        if (v >= p.vocab) break;
        const float z = load(p, job.src, v);
        const double y = tempered(z, p.inv_t);
        if (z >= tau && y != -INFINITY) s += exp(y - y_max);
      }
    }
    b.dsum[tid] = s;
  });
  ex.for_threads([&](int tid) {
    const std::int64_t t = round * warps + tid / 32;
    if (tid % 32 != 0 || t >= tiles) return;
    double s = 0.0;
    for (int l = 0; l < 32; ++l) s += b.dsum[tid + l];
    if (!(s > 0.0)) return;  // no finite kept entry: the block never wins
    const double u = token_uniform(p.key0, p.key1, job.sequence, job.step, job.position, block_uniform_index(t));
    const double k = log(s) - log(-log(u));
    if (b.index[tid] < 0 || k > b.key[tid]) b.key[tid] = k, b.index[tid] = static_cast<int>(t);
  });
}

//! Step 5: the sampled token of a valid row whose tempered maximum is y_max = tempered(m), or -1
//! when no kept entry is finite after tempering. y_max = +inf (z / T overflowed, the limit T -> 0):
//! the lowest kept id whose tempered value is +inf, as the CPU's definition.
MDLM_EXEC_CHECK_DISABLE
template <class Exec>
MDLM_HD int sample_token(Exec& ex, block_scratch& b, const launch_params& p, const row_job& job, float tau,
                         double y_max) {
  if (!(y_max > -INFINITY)) return -1;
  const std::int64_t tiles = (p.vocab + tile - 1) / tile;
  // +inf row: equal keys, so the reduction picks the lowest id; otherwise the best block key.
  ex.for_threads([&](int tid) {
    b.key[tid] = y_max == INFINITY ? 0.0 : -INFINITY;
    b.index[tid] = -1;
  });
  if (y_max == INFINITY) {
    ex.for_threads([&](int tid) {
      for (std::int64_t v = tid; v < p.vocab; v += threads) {
        const float z = load(p, job.src, v);
        if (z >= tau && tempered(z, p.inv_t) == INFINITY) {
          b.index[tid] = static_cast<int>(v);
          break;
        }
      }
    });
    reduce_argmax(ex, b);
    return b.index[0];
  }
  for (std::int64_t round = 0; round * warps < tiles; ++round) tile_log_mass(ex, b, p, job, tau, y_max, round, tiles);
  reduce_argmax(ex, b);
  const int block = b.index[0];
  ex.for_threads([](int) {});  // every thread has read index[0] before it is overwritten
  if (block < 0) return -1;
  // The winning tile: thread tid meets entries start + tid + threads * j in increasing id order.
  const std::int64_t start = static_cast<std::int64_t>(block) * tile;
  const std::int64_t end = start + tile < p.vocab ? start + tile : p.vocab;
  ex.for_threads([&](int tid) {
    b.key[tid] = -INFINITY;
    b.index[tid] = -1;
    for (std::int64_t v = start + tid; v < end; v += threads) {
      const float z = load(p, job.src, v);
      if (!(z >= tau) || tempered(z, p.inv_t) == -INFINITY) continue;
      const double k = entry_key(z, p.inv_t, token_uniform(p.key0, p.key1, job.sequence, job.step, job.position,
                                                           static_cast<std::uint32_t>(v)));
      if (b.index[tid] < 0 || k > b.key[tid]) b.key[tid] = k, b.index[tid] = static_cast<int>(v);
    }
  });
  reduce_argmax(ex, b);
  return b.index[0];
}

//! The whole algorithm of one row (see the file comment); the result is left in b.out.
MDLM_EXEC_CHECK_DISABLE
template <class Exec>
MDLM_HD void process_row(Exec& ex, block_scratch& b, const launch_params& p, const row_job& job) {
  const std::int64_t src = job.src;
  const std::int64_t tiles = (p.vocab + tile - 1) / tile;
  const float inv_tf = static_cast<float>(p.inv_t);
  const bool tempered_fields = p.sampled != 0 || filtered(p);
  float tau = math::neg_inf();
  if (filtered(p)) {
    // The maximum and the tempered total first: the thresholds need them.
    ex.for_threads([&](int tid) {
      lane_stats s = lane_empty();
      for (std::int64_t v = tid; v < p.vocab; v += threads) lane_add(s, load(p, src, v), static_cast<int>(v), inv_tf, true);
      b.lanes[tid] = s;
    });
    reduce_lanes(ex, b, inv_tf);
    const lane_stats all = b.lanes[0];
    ex.for_threads([](int) {});  // every thread has read lanes[0] before it is overwritten
    if (!all.bad && all.m != math::neg_inf()) {
      above(ex, b, p, src, math::neg_inf(), all.m);
      const double total = b.dsum[0];
      tau = threshold_search(ex, b, p, src, all.m, total);
    }
  }
  // One pass in rounds of `warps` tiles: warp w of round r reads tile r * warps + w.
  ex.for_threads([&](int tid) { b.lanes[tid] = lane_empty(); });
  for (std::int64_t round = 0; round * warps < tiles; ++round) {
    ex.for_threads([&](int tid) {
      const std::int64_t t = round * warps + tid / 32;
      const int lane = tid % 32;
      if (t >= tiles) return;
      for (int j = 0; j < per_lane; ++j) {
        const std::int64_t v = t * tile + static_cast<std::int64_t>(j) * 32 + lane;
        if (v >= p.vocab) break;
        const float z = load(p, src, v);
        lane_add(b.lanes[tid], z, static_cast<int>(v), inv_tf, z >= tau);
      }
    });
  }
  reduce_lanes(ex, b, inv_tf);
  const float row_max = b.lanes[0].m;
  ex.for_threads([&](int tid) {
    if (tid == 0) b.out = finish_row(b.lanes[0], p.inv_t, tempered_fields, tau);
  });
  if (job.previous != nullptr) {
    // KL_t = sum_v p log((p + 1e-12) / (q + 1e-12)) against the kept q = p_{t-1}, then q := p_t, as
    // kl_to_previous (kl_history.hpp) with the row's log-normaliser from this pass; a second read
    // of the row (p needs log Z, known only now), in a fixed reduction order.
    const bool ok = b.out.valid != 0;
    const double lz = b.out.log_normalizer;
    ex.for_threads([&](int tid) {
      double acc = 0.0;
      for (std::int64_t v = tid; v < p.vocab; v += threads) {
        const double pv = ok ? exp(static_cast<double>(load(p, src, v)) - lz) : 0.0;
        acc += pv * log((pv + 1e-12) / (static_cast<double>(job.previous[v]) + 1e-12));
        job.previous[v] = static_cast<float>(pv);
      }
      b.dsum[tid] = acc;
      b.count[tid] = 0;
    });
    reduce_sums(ex, b);
    const double kl = b.dsum[0];
    ex.for_threads([&](int tid) {
      if (tid == 0) b.out.kl = kl;
    });
  }
  if (!b.out.valid || !p.sampled) return;
  const int token = sample_token(ex, b, p, job, tau, tempered(row_max, p.inv_t));
  ex.for_threads([&](int tid) {
    if (tid != 0) return;
    if (token >= 0) set_token(b.out, token, load(p, src, token), p.inv_t);
    else b.out.token = -1;
  });
}

}  // namespace mdlm::cuda::rows
