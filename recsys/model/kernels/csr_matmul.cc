// RecsysCsrMatmul: addend + a CSR matrix times a dense float32 table, on the CPU.
//
// TensorFlow's CSR product spends most of a LightGCN step. Each nonzero adds one table row,
// scaled, into an output row. This kernel keeps an output row's 64 columns in vector
// registers while it walks the row's nonzeros, so every gathered table row is read once
// and nothing is written until the row is done. recsys/model/native_kernel.py builds it
// and says what it measured. Each output row is summed by one thread in the order of its
// nonzeros, so results do not depend on how rows are shared among threads.
#include <immintrin.h>

#include <algorithm>
#include <cstdint>

#include "tensorflow/core/framework/op.h"
#include "tensorflow/core/framework/op_kernel.h"
#include "tensorflow/core/framework/shape_inference.h"
#include "tensorflow/core/util/work_sharder.h"

namespace {

#if defined(__AVX512F__)
using Vec = __m512;
constexpr int kWidth = 16;  // floats per vector
constexpr int kChunk = 4;   // vectors of accumulators per pass (64 columns)
inline Vec Zero() { return _mm512_setzero_ps(); }
inline Vec Load(const float* p) { return _mm512_loadu_ps(p); }
inline Vec Broadcast(float x) { return _mm512_set1_ps(x); }
inline Vec MulAdd(Vec a, Vec b, Vec c) { return _mm512_fmadd_ps(a, b, c); }
inline void Store(float* p, Vec v) { _mm512_storeu_ps(p, v); }
#elif defined(__AVX2__) && defined(__FMA__)
using Vec = __m256;
constexpr int kWidth = 8;
constexpr int kChunk = 8;
inline Vec Zero() { return _mm256_setzero_ps(); }
inline Vec Load(const float* p) { return _mm256_loadu_ps(p); }
inline Vec Broadcast(float x) { return _mm256_set1_ps(x); }
inline Vec MulAdd(Vec a, Vec b, Vec c) { return _mm256_fmadd_ps(a, b, c); }
inline void Store(float* p, Vec v) { _mm256_storeu_ps(p, v); }
#else
#error "the recsys CSR kernel needs AVX-512F, or AVX2 with FMA"
#endif

struct Csr {
  const int64_t* indptr;
  const int32_t* indices;
  const float* values;
  const float* table;
  const float* addend;  // null: none
  float* out;
  int64_t dim;
};

// Columns [first, first + kVectors * kWidth) of output rows [begin, end).
template <int kVectors>
void Columns(const Csr& m, int64_t begin, int64_t end, int64_t first) {
  for (int64_t r = begin; r < end; ++r) {
    Vec acc[kVectors];
    const float* start = m.addend + r * m.dim + first;
    for (int k = 0; k < kVectors; ++k) acc[k] = m.addend ? Load(start + k * kWidth) : Zero();
    for (int64_t j = m.indptr[r]; j < m.indptr[r + 1]; ++j) {
      const Vec v = Broadcast(m.values[j]);
      const float* row = m.table + int64_t{m.indices[j]} * m.dim + first;
      for (int k = 0; k < kVectors; ++k) acc[k] = MulAdd(v, Load(row + k * kWidth), acc[k]);
    }
    float* out = m.out + r * m.dim + first;
    for (int k = 0; k < kVectors; ++k) Store(out + k * kWidth, acc[k]);
  }
}

// The columns after the last whole vector, one at a time.
void Tail(const Csr& m, int64_t begin, int64_t end, int64_t first) {
  for (int64_t r = begin; r < end; ++r) {
    for (int64_t c = first; c < m.dim; ++c) {
      float acc = m.addend ? m.addend[r * m.dim + c] : 0.0f;
      for (int64_t j = m.indptr[r]; j < m.indptr[r + 1]; ++j) {
        acc += m.values[j] * m.table[int64_t{m.indices[j]} * m.dim + c];
      }
      m.out[r * m.dim + c] = acc;
    }
  }
}

template <int kVectors>
void Remainder(const Csr& m, int64_t begin, int64_t end, int64_t first, int vectors) {
  if constexpr (kVectors > 0) {
    if (vectors == kVectors) return Columns<kVectors>(m, begin, end, first);
    Remainder<kVectors - 1>(m, begin, end, first, vectors);
  }
}

void Rows(const Csr& m, int64_t begin, int64_t end) {
  // Denormals flushed to zero (FTZ and DAZ), as TensorFlow's executor runs its ops. The pool's
  // threads and the thread that calls the op need not share a mode, and a row's result must
  // not depend on which thread computed it (measured: runs of one process differed without).
  const unsigned int mode = _mm_getcsr();
  _mm_setcsr(mode | 0x8040);
  int64_t first = 0;
  for (; first + kChunk * kWidth <= m.dim; first += kChunk * kWidth) {
    Columns<kChunk>(m, begin, end, first);
  }
  const int vectors = static_cast<int>((m.dim - first) / kWidth);
  Remainder<kChunk - 1>(m, begin, end, first, vectors);
  first += int64_t{vectors} * kWidth;
  if (first < m.dim) Tail(m, begin, end, first);
  _mm_setcsr(mode);
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
      tensorflow::shape_inference::DimensionHandle rows;
      TF_RETURN_IF_ERROR(c->Subtract(c->Dim(c->input(0), 0), 1, &rows));
      c->set_output(0, c->Matrix(rows, c->Dim(c->input(3), 1)));
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
                absl::InvalidArgumentError("indptr must be a vector of rows + 1 offsets"));
    OP_REQUIRES(context, table.dims() == 2, absl::InvalidArgumentError("table must be a matrix"));
    OP_REQUIRES(context, indices.NumElements() == values.NumElements(),
                absl::InvalidArgumentError("indices and values differ in length"));
    const int64_t rows = indptr.dim_size(0) - 1;
    const int64_t nnz = indices.NumElements();
    const int64_t* offsets = indptr.flat<int64_t>().data();
    OP_REQUIRES(context, offsets[0] == 0 && offsets[rows] == nnz,
                absl::InvalidArgumentError("indptr does not span the nonzeros"));
    const tensorflow::TensorShape shape({rows, table.dim_size(1)});
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
    const auto* workers = context->device()->tensorflow_cpu_worker_threads();
    const int64_t cost_per_row = std::max<int64_t>(1, nnz / std::max<int64_t>(rows, 1)) * m.dim;
    tensorflow::Shard(workers->num_threads, workers->workers, rows, cost_per_row,
                      [&m](int64_t begin, int64_t end) { Rows(m, begin, end); });
  }
};

REGISTER_KERNEL_BUILDER(Name("RecsysCsrMatmul").Device(tensorflow::DEVICE_CPU),
                        RecsysCsrMatmulOp);
