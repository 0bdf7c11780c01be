// RecsysCsrMatmul: addend + a CSR matrix times a dense float32 table, on the CPU.
//
// TensorFlow's CSR product spends most of a LightGCN step. Each nonzero adds one table row,
// scaled, into an output row. This kernel keeps an output row's 64 columns in vector
// registers while it walks the row's nonzeros, so every gathered table row is read once
// and nothing is written until the row is done. recsys/model/native_kernel.py builds it
// and says what it measured. Each output row is summed by one thread in the order of its
// nonzeros, so results do not depend on how rows are shared among threads.
//
// One build serves every x86-64 CPU: the row code (csr_matmul_rows.inc) is compiled three
// times, for AVX-512, for AVX2 with FMA and for plain SSE2, and the first call picks the best
// the CPU and the operating system support (RECSYS_NATIVE_KERNEL_ISA=avx2 or sse2 caps it).
// AVX-512 and AVX2 give the same bits (one fused multiply-add per nonzero and column, in the
// nonzeros' order); SSE2 multiplies and adds separately, so its last bits may differ.
//
// Every input is checked before it is read: offsets that start at 0, end at the number of
// nonzeros and never decrease, and column numbers within the table's rows; anything else fails
// the op with InvalidArgument. The check is one pass over the offsets and column numbers, done by
// each thread on its own rows just before it multiplies them. Column numbers are checked against
// the rows of the table the op is given, not against a column count passed beside the matrix:
// that is the bound that keeps every read inside the table, whoever calls the op and with
// whatever table (BlockedProduct also refuses a table whose rows differ from its matrix's
// columns).
#if !defined(__x86_64__)
#error "the recsys CSR kernel is written for x86-64"
#endif

#include <immintrin.h>

#include <algorithm>
#include <cstdint>
#include <cstdlib>
#include <mutex>
#include <string>

#include "tensorflow/core/framework/op.h"
#include "tensorflow/core/framework/op_kernel.h"
#include "tensorflow/core/framework/shape_inference.h"
#include "tensorflow/core/framework/tensor_shape.h"
#include "tensorflow/core/util/work_sharder.h"

namespace {

struct Csr {
  const int64_t* indptr;
  const int32_t* indices;
  const float* values;
  const float* table;
  const float* addend;  // null: none
  float* out;
  int64_t dim;
};

}  // namespace

#pragma GCC push_options
#pragma GCC target("avx512f,avx2,fma")
namespace avx512 {
using Vec = __m512;
constexpr int kWidth = 16;  // floats per vector
constexpr int kChunk = 4;   // vectors of accumulators per pass (64 columns)
inline Vec Zero() { return _mm512_setzero_ps(); }
inline Vec Load(const float* p) { return _mm512_loadu_ps(p); }
inline Vec Broadcast(float x) { return _mm512_set1_ps(x); }
inline Vec MulAdd(Vec a, Vec b, Vec c) { return _mm512_fmadd_ps(a, b, c); }
inline void Store(float* p, Vec v) { _mm512_storeu_ps(p, v); }
inline float ScalarMulAdd(float a, float b, float c) {
  return _mm_cvtss_f32(_mm_fmadd_ss(_mm_set_ss(a), _mm_set_ss(b), _mm_set_ss(c)));
}
#include "csr_matmul_rows.inc"
}  // namespace avx512
#pragma GCC pop_options

#pragma GCC push_options
#pragma GCC target("avx2,fma")
namespace avx2 {
using Vec = __m256;
constexpr int kWidth = 8;
constexpr int kChunk = 8;
inline Vec Zero() { return _mm256_setzero_ps(); }
inline Vec Load(const float* p) { return _mm256_loadu_ps(p); }
inline Vec Broadcast(float x) { return _mm256_set1_ps(x); }
inline Vec MulAdd(Vec a, Vec b, Vec c) { return _mm256_fmadd_ps(a, b, c); }
inline void Store(float* p, Vec v) { _mm256_storeu_ps(p, v); }
inline float ScalarMulAdd(float a, float b, float c) {
  return _mm_cvtss_f32(_mm_fmadd_ss(_mm_set_ss(a), _mm_set_ss(b), _mm_set_ss(c)));
}
#include "csr_matmul_rows.inc"
}  // namespace avx2
#pragma GCC pop_options

namespace sse2 {  // every x86-64 CPU has it
using Vec = __m128;
constexpr int kWidth = 4;
constexpr int kChunk = 8;  // 32 columns: 8 of the 16 vector registers hold the sums
inline Vec Zero() { return _mm_setzero_ps(); }
inline Vec Load(const float* p) { return _mm_loadu_ps(p); }
inline Vec Broadcast(float x) { return _mm_set1_ps(x); }
inline Vec MulAdd(Vec a, Vec b, Vec c) { return _mm_add_ps(_mm_mul_ps(a, b), c); }
inline void Store(float* p, Vec v) { _mm_storeu_ps(p, v); }
inline float ScalarMulAdd(float a, float b, float c) { return a * b + c; }
#include "csr_matmul_rows.inc"
}  // namespace sse2

namespace {

struct Isa {
  const char* name;
  void (*rows)(const Csr&, int64_t, int64_t);
  bool (*indices_below)(const int32_t*, int64_t, int64_t, uint32_t);
};

// The best instruction set this CPU and its operating system support (libgcc's cpuid check
// includes the OS's saving of the vector registers), at most RECSYS_NATIVE_KERNEL_ISA's.
Isa ChooseIsa() {
  __builtin_cpu_init();
  const char* wanted = std::getenv("RECSYS_NATIVE_KERNEL_ISA");
  const std::string cap = wanted ? wanted : "";
  const bool fma = __builtin_cpu_supports("avx2") && __builtin_cpu_supports("fma");
  if (fma && __builtin_cpu_supports("avx512f") && (cap.empty() || cap == "avx512")) {
    return {"AVX-512", avx512::Rows, avx512::IndicesBelow};
  }
  if (fma && cap != "sse2") return {"AVX2", avx2::Rows, avx2::IndicesBelow};
  return {"SSE2", sse2::Rows, sse2::IndicesBelow};
}

const Isa& ChosenIsa() {
  static const Isa isa = ChooseIsa();
  return isa;
}

// The first fault in rows [begin, end): an offset outside [0, nnz] or below the one before it,
// else a column number outside the table. Empty where there is none.
std::string Fault(const Csr& m, int64_t nnz, int64_t table_rows, int64_t begin, int64_t end) {
  for (int64_t r = begin; r < end; ++r) {
    const int64_t low = m.indptr[r], high = m.indptr[r + 1];
    if (low < 0 || high < low || high > nnz) {
      return "indptr[" + std::to_string(r) + "] = " + std::to_string(low) + " and indptr[" +
             std::to_string(r + 1) + "] = " + std::to_string(high) +
             ": offsets must not decrease and must lie within the " + std::to_string(nnz) +
             " nonzeros";
    }
  }
  // Column numbers are int32, so a table of 2^31 rows or more holds any non-negative one.
  const uint32_t limit = static_cast<uint32_t>(std::min<int64_t>(table_rows, int64_t{1} << 31));
  const int64_t first = m.indptr[begin], last = m.indptr[end];
  if (ChosenIsa().indices_below(m.indices, first, last, limit)) return {};
  for (int64_t j = first; j < last; ++j) {
    if (static_cast<uint32_t>(m.indices[j]) >= limit) {
      return "indices[" + std::to_string(j) + "] = " + std::to_string(m.indices[j]) +
             " is outside the table's " + std::to_string(table_rows) + " rows";
    }
  }
  return {};
}

}  // namespace

// addend: rows × dim, or 0 × dim for none. The output may reuse its buffer.
REGISTER_OP("RecsysCsrMatmul")
    .Input("indptr: int64")
    .Input("indices: int32")
    .Input("values: float")
    .Input("table: float")
    .Input("addend: float")
    .Output("product: float")
    .SetShapeFn([](tensorflow::shape_inference::InferenceContext* c) {
      tensorflow::shape_inference::ShapeHandle indptr, indices, values, table, addend;
      TF_RETURN_IF_ERROR(c->WithRank(c->input(0), 1, &indptr));
      TF_RETURN_IF_ERROR(c->WithRank(c->input(1), 1, &indices));
      TF_RETURN_IF_ERROR(c->WithRank(c->input(2), 1, &values));
      TF_RETURN_IF_ERROR(c->WithRank(c->input(3), 2, &table));
      TF_RETURN_IF_ERROR(c->WithRank(c->input(4), 2, &addend));
      tensorflow::shape_inference::DimensionHandle nnz, dim, rows;
      TF_RETURN_IF_ERROR(c->Merge(c->Dim(indices, 0), c->Dim(values, 0), &nnz));
      TF_RETURN_IF_ERROR(c->Merge(c->Dim(table, 1), c->Dim(addend, 1), &dim));
      TF_RETURN_IF_ERROR(c->Subtract(c->Dim(indptr, 0), 1, &rows));
      c->set_output(0, c->Matrix(rows, dim));
      return absl::OkStatus();
    });

// The instruction set the product runs on here: "AVX-512", "AVX2" or "SSE2".
REGISTER_OP("RecsysCsrMatmulIsa")
    .Output("isa: string")
    .SetShapeFn([](tensorflow::shape_inference::InferenceContext* c) {
      c->set_output(0, c->Scalar());
      return absl::OkStatus();
    });

class RecsysCsrMatmulOp : public tensorflow::OpKernel {
 public:
  explicit RecsysCsrMatmulOp(tensorflow::OpKernelConstruction* context) : OpKernel(context) {}

  void Compute(tensorflow::OpKernelContext* context) override {
    const tensorflow::Tensor& indptr = context->input(0);
    const tensorflow::Tensor& indices = context->input(1);
    const tensorflow::Tensor& values = context->input(2);
    const tensorflow::Tensor& table = context->input(3);
    const tensorflow::Tensor& addend = context->input(4);
    OP_REQUIRES(context, indptr.dims() == 1 && indptr.dim_size(0) >= 1,
                absl::InvalidArgumentError("indptr must be a vector of rows + 1 offsets, not " +
                                           indptr.shape().DebugString()));
    OP_REQUIRES(context, indices.dims() == 1 && values.dims() == 1,
                absl::InvalidArgumentError("indices and values must be vectors"));
    OP_REQUIRES(context, table.dims() == 2 && addend.dims() == 2,
                absl::InvalidArgumentError("table and addend must be matrices"));
    OP_REQUIRES(context, indices.NumElements() == values.NumElements(),
                absl::InvalidArgumentError("indices and values differ in length"));
    const int64_t rows = indptr.dim_size(0) - 1;
    const int64_t nnz = indices.NumElements();
    const int64_t* offsets = indptr.flat<int64_t>().data();
    OP_REQUIRES(context, offsets[0] == 0 && offsets[rows] == nnz,
                absl::InvalidArgumentError(
                    "indptr does not span the nonzeros: indptr[0] = " + std::to_string(offsets[0]) +
                    " and indptr[" + std::to_string(rows) + "] = " + std::to_string(offsets[rows]) +
                    ", not 0 and " + std::to_string(nnz)));
    tensorflow::TensorShape shape;
    OP_REQUIRES_OK(context,
                   tensorflow::TensorShape::BuildTensorShape({rows, table.dim_size(1)}, &shape));
    const bool adding = addend.NumElements() > 0;
    OP_REQUIRES(context, !adding || addend.shape() == shape,
                absl::InvalidArgumentError("addend must have the product's shape, or no rows"));
    tensorflow::Tensor* out = nullptr;
    OP_REQUIRES_OK(context, adding ? context->forward_input_or_allocate_output({4}, 0, shape, &out)
                                   : context->allocate_output(0, shape, &out));
    // The output may be the addend's buffer: each row's addend is read, then its result
    // written, by one thread.
    const Csr m{offsets,
                indices.flat<int32_t>().data(),
                values.flat<float>().data(),
                table.flat<float>().data(),
                adding ? addend.flat<float>().data() : nullptr,
                out->flat<float>().data(),
                table.dim_size(1)};
    const int64_t table_rows = table.dim_size(0);
    const Isa& isa = ChosenIsa();
    // Each thread checks its rows, then multiplies them; a fault stops that thread's rows, and
    // the fault of the earliest rows is the one reported (the same at any number of threads
    // that splits the rows alike).
    std::mutex mutex;
    int64_t fault_begin = rows;
    std::string fault;
    const auto* workers = context->device()->tensorflow_cpu_worker_threads();
    const int64_t cost_per_row = std::max<int64_t>(1, nnz / std::max<int64_t>(rows, 1)) * m.dim;
    tensorflow::Shard(workers->num_threads, workers->workers, rows, cost_per_row,
                      [&](int64_t begin, int64_t end) {
                        std::string found = Fault(m, nnz, table_rows, begin, end);
                        if (found.empty()) return isa.rows(m, begin, end);
                        const std::lock_guard<std::mutex> lock(mutex);
                        if (begin < fault_begin) {
                          fault_begin = begin;
                          fault = std::move(found);
                        }
                      });
    OP_REQUIRES(context, fault.empty(), absl::InvalidArgumentError(fault));
  }
};

class RecsysCsrMatmulIsaOp : public tensorflow::OpKernel {
 public:
  explicit RecsysCsrMatmulIsaOp(tensorflow::OpKernelConstruction* context) : OpKernel(context) {}

  void Compute(tensorflow::OpKernelContext* context) override {
    tensorflow::Tensor* out = nullptr;
    OP_REQUIRES_OK(context, context->allocate_output(0, tensorflow::TensorShape({}), &out));
    out->scalar<tensorflow::tstring>()() = ChosenIsa().name;
  }
};

REGISTER_KERNEL_BUILDER(Name("RecsysCsrMatmul").Device(tensorflow::DEVICE_CPU),
                        RecsysCsrMatmulOp);
REGISTER_KERNEL_BUILDER(Name("RecsysCsrMatmulIsa").Device(tensorflow::DEVICE_CPU),
                        RecsysCsrMatmulIsaOp);
