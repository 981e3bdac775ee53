// SPDX-License-Identifier: MIT
#include "lt_gemm.hpp"

#include <algorithm>

#include "check.hpp"

namespace mdlm::cuda::detail {

namespace {

// Largest power of two (at most 256) dividing the address of every batch element of an operand:
// cuBLASLt's heuristic assumes 256-byte aligned operands unless told otherwise.
std::uint32_t alignment_of(const void* p, std::int64_t stride_elements, std::size_t element_size) {
  auto a = static_cast<std::uint64_t>(reinterpret_cast<std::uintptr_t>(p));
  if (stride_elements != 0) a |= static_cast<std::uint64_t>(stride_elements) * element_size;
  std::uint32_t r = 256;
  while (r > 1 && (a % r) != 0) r /= 2;
  return r;
}

cublasLtMatrixLayout_t make_layout(cudaDataType_t type, std::int64_t rows, std::int64_t cols, std::int64_t ld,
                                   std::int64_t batch, std::int64_t stride, const std::string& what) {
  cublasLtMatrixLayout_t l = nullptr;
  check_cublas(cublasLtMatrixLayoutCreate(&l, type, static_cast<std::uint64_t>(rows), static_cast<std::uint64_t>(cols), ld),
               what + ": cublasLtMatrixLayoutCreate");
  const auto count = static_cast<std::int32_t>(batch);
  check_cublas(cublasLtMatrixLayoutSetAttribute(l, CUBLASLT_MATRIX_LAYOUT_BATCH_COUNT, &count, sizeof count),
               what + ": batch count");
  check_cublas(cublasLtMatrixLayoutSetAttribute(l, CUBLASLT_MATRIX_LAYOUT_STRIDED_BATCH_OFFSET, &stride, sizeof stride),
               what + ": batch stride");
  return l;
}

std::size_t size_of(element e) { return e == element::bf16 ? 2 : 4; }
cudaDataType_t type_of(element e) { return e == element::bf16 ? CUDA_R_16BF : CUDA_R_32F; }

}  // namespace

std::string describe(const gemm_desc& g, const char* context, int layer) {
  std::string where(context);
  if (layer >= 0) where += ", layer " + std::to_string(layer);
  return where + ": " + g.step + " (m " + std::to_string(g.m) + " x n " + std::to_string(g.n) + " x k " +
         std::to_string(g.k) + ", batch " + std::to_string(g.batch) + " of unit " + std::to_string(g.unit_batch) + ")";
}

lt_gemm::lt_gemm() { check_cublas(cublasLtCreate(&handle_), "cublasLtCreate"); }

lt_gemm::~lt_gemm() {
  clear();
  if (handle_ != nullptr) (void)cublasLtDestroy(handle_);
}

void lt_gemm::destroy(plan& p) noexcept {
  for (auto* l : {p.a, p.b, p.c, p.a1, p.b1, p.c1})
    if (l != nullptr) (void)cublasLtMatrixLayoutDestroy(l);
  if (p.op != nullptr) (void)cublasLtMatmulDescDestroy(p.op);
  p = plan{};
}

void lt_gemm::clear() noexcept {
  for (auto& p : plans_) destroy(p);
  plans_.clear();
}

std::size_t lt_gemm::batched_plans() const noexcept {
  return static_cast<std::size_t>(std::count_if(plans_.begin(), plans_.end(), [](const plan& p) { return p.whole_batch; }));
}

lt_gemm::plan& lt_gemm::find_or_make(const gemm_desc& g, std::uint32_t aa, std::uint32_t ab, std::uint32_t ac,
                                     std::size_t workspace_bytes, const std::string& what) {
  plan p;
  p.g = g;
  p.align_a = aa;
  p.align_b = ab;
  p.align_c = ac;
  try {
    check_cublas(cublasLtMatmulDescCreate(&p.op, CUBLAS_COMPUTE_32F, CUDA_R_32F), what + ": cublasLtMatmulDescCreate");
    const cublasOperation_t ta = g.trans_a ? CUBLAS_OP_T : CUBLAS_OP_N, tb = g.trans_b ? CUBLAS_OP_T : CUBLAS_OP_N;
    check_cublas(cublasLtMatmulDescSetAttribute(p.op, CUBLASLT_MATMUL_DESC_TRANSA, &ta, sizeof ta), what + ": transa");
    check_cublas(cublasLtMatmulDescSetAttribute(p.op, CUBLASLT_MATMUL_DESC_TRANSB, &tb, sizeof tb), what + ": transb");
    // Stored shapes (before op): A is k x m when transposed, else m x k; B is n x k or k x n.
    const std::int64_t a_rows = g.trans_a ? g.k : g.m, a_cols = g.trans_a ? g.m : g.k;
    const std::int64_t b_rows = g.trans_b ? g.n : g.k, b_cols = g.trans_b ? g.k : g.n;
    p.a = make_layout(CUDA_R_16BF, a_rows, a_cols, g.lda, g.batch, g.stride_a, what + ": A");
    p.b = make_layout(CUDA_R_16BF, b_rows, b_cols, g.ldb, g.batch, g.stride_b, what + ": B");
    p.c = make_layout(type_of(g.c_type), g.m, g.n, g.ldc, g.batch, g.stride_c, what + ": C");
    p.a1 = make_layout(CUDA_R_16BF, a_rows, a_cols, g.lda, g.unit_batch, g.stride_a, what + ": A (unit)");
    p.b1 = make_layout(CUDA_R_16BF, b_rows, b_cols, g.ldb, g.unit_batch, g.stride_b, what + ": B (unit)");
    p.c1 = make_layout(type_of(g.c_type), g.m, g.n, g.ldc, g.unit_batch, g.stride_c, what + ": C (unit)");

    cublasLtMatmulPreference_t pref = nullptr;
    check_cublas(cublasLtMatmulPreferenceCreate(&pref), what + ": cublasLtMatmulPreferenceCreate");
    const std::uint64_t ws = workspace_bytes;
    cublasStatus_t s = cublasLtMatmulPreferenceSetAttribute(pref, CUBLASLT_MATMUL_PREF_MAX_WORKSPACE_BYTES, &ws, sizeof ws);
    if (s == CUBLAS_STATUS_SUCCESS)
      s = cublasLtMatmulPreferenceSetAttribute(pref, CUBLASLT_MATMUL_PREF_MIN_ALIGNMENT_A_BYTES, &aa, sizeof aa);
    if (s == CUBLAS_STATUS_SUCCESS)
      s = cublasLtMatmulPreferenceSetAttribute(pref, CUBLASLT_MATMUL_PREF_MIN_ALIGNMENT_B_BYTES, &ab, sizeof ab);
    if (s == CUBLAS_STATUS_SUCCESS)
      s = cublasLtMatmulPreferenceSetAttribute(pref, CUBLASLT_MATMUL_PREF_MIN_ALIGNMENT_C_BYTES, &ac, sizeof ac);
    if (s == CUBLAS_STATUS_SUCCESS)
      s = cublasLtMatmulPreferenceSetAttribute(pref, CUBLASLT_MATMUL_PREF_MIN_ALIGNMENT_D_BYTES, &ac, sizeof ac);
    cublasLtMatmulHeuristicResult_t result{};
    int found = 0;
    if (s == CUBLAS_STATUS_SUCCESS)
      s = cublasLtMatmulAlgoGetHeuristic(handle_, p.op, p.a1, p.b1, p.c1, p.c1, pref, 1, &result, &found);
    (void)cublasLtMatmulPreferenceDestroy(pref);
    check_cublas(s, what + ": cublasLtMatmulAlgoGetHeuristic");
    if (found < 1) throw cuda_error(what + ": cuBLASLt has no algorithm for this GEMM");
    p.algo = result.algo;
    if (g.batch == g.unit_batch) {
      p.whole_batch = true;
    } else {
      cublasLtMatmulHeuristicResult_t check{};
      p.whole_batch = cublasLtMatmulAlgoCheck(handle_, p.op, p.a, p.b, p.c, p.c, &p.algo, &check) ==
                          CUBLAS_STATUS_SUCCESS &&
                      check.workspaceSize <= workspace_bytes;
    }
  } catch (...) {
    destroy(p);
    throw;
  }
  plans_.push_back(p);  // allocates only when a new shape appears (the first step of a plan)
  return plans_.back();
}

void lt_gemm::run(const gemm_desc& g, const void* a, const void* b, void* c, void* workspace,
                  std::size_t workspace_bytes, cudaStream_t stream, const char* context, int layer) {
  const std::uint32_t aa = alignment_of(a, g.stride_a, 2), ab = alignment_of(b, g.stride_b, 2),
                      ac = alignment_of(c, g.stride_c, size_of(g.c_type));
  const plan* found = nullptr;
  for (const auto& q : plans_)
    if (q.g.same_shape(g) && q.align_a == aa && q.align_b == ab && q.align_c == ac) found = &q;
  const plan& p = found != nullptr ? *found : find_or_make(g, aa, ab, ac, workspace_bytes, describe(g, context, layer));
  const float alpha = g.alpha, beta = g.beta;
  if (p.whole_batch) {
    check_cublas(cublasLtMatmul(handle_, p.op, &alpha, a, p.a, b, p.b, &beta, c, p.c, c, p.c, &p.algo, workspace,
                                workspace_bytes, stream),
                 [&] { return describe(g, context, layer) + ": cublasLtMatmul"; });
    return;
  }
  const auto* ap = static_cast<const unsigned char*>(a);
  const auto* bp = static_cast<const unsigned char*>(b);
  auto* cp = static_cast<unsigned char*>(c);
  for (std::int64_t e = 0; e < g.batch; e += g.unit_batch) {
    check_cublas(cublasLtMatmul(handle_, p.op, &alpha, ap + e * g.stride_a * 2, p.a1, bp + e * g.stride_b * 2, p.b1,
                                &beta, cp + e * g.stride_c * static_cast<std::int64_t>(size_of(g.c_type)), p.c1,
                                cp + e * g.stride_c * static_cast<std::int64_t>(size_of(g.c_type)), p.c1, &p.algo,
                                workspace, workspace_bytes, stream),
                 [&] { return describe(g, context, layer) + ", batch element " + std::to_string(e) + ": cublasLtMatmul"; });
  }
}

}  // namespace mdlm::cuda::detail
