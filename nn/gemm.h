// Small single-threaded row-major matrix products for the Winograd
// convolutions (nn/ops_winograd.c): dozens of products per chunk of a few
// thousand values each, too small for a general BLAS to amortise its packing
// of both operands and its separate pass that zeroes C.
#ifndef NN_GEMM_H
#define NN_GEMM_H

// C (M x N, ldc) = op(A) (M x K) * B (K x N, ldb), overwriting C.
//   ta = 0: A is M x K (lda);  ta = 1: A is K x M (lda), op(A) = A^T.
// Register-blocked kernels chosen at run time from the CPU's features: AVX-512F (12 x 32 blocks) or AVX2 +
// FMA (6 x 16; B and C used in place, no packing), the two bit-identical; cblas_sgemm without AVX2 + FMA.
// blas (tests and benchmarks: ctx->tune.gemm_blas): NN_GEMM_BEST, NN_GEMM_BLAS (always cblas_sgemm) or
// NN_GEMM_AVX2 (the AVX2 kernel even where AVX-512 is present). Deterministic for a given CPU.
enum { NN_GEMM_BEST = 0, NN_GEMM_BLAS = 1, NN_GEMM_AVX2 = 2 };
void nn_gemm_small(int blas, int ta, int M, int N, int K, const float *A, int lda, const float *B, int ldb,
                   float *C, int ldc);

// C (M x N, ldc) += A (M x K, lda) * B (K x N, ldb): each element of C the sum of its old value and the
// product's chain (the chain as nn_gemm_small's).
void nn_gemm_small_add(int blas, int M, int N, int K, const float *A, int lda, const float *B, int ldb,
                       float *C, int ldc);

// C (M x N, ldc) = A (M x K, lda) * B where row k of B is Bk[k][0:N] (an implicit im2col: rows that are
// shifted views of one buffer), the same multiply-add chains as nn_gemm_small on those rows gathered into a
// matrix. The cblas_sgemm path gathers them into scratch (K x N, row stride lds >= N); the others do not
// read scratch.
void nn_gemm_small_ind(int blas, int M, int N, int K, const float *A, int lda, const float *const *Bk,
                       float *scratch, int lds, float *C, int ldc);
// whether nn_gemm_small_ind gathers into scratch under `blas` on this CPU
int nn_gemm_ind_gathers(int blas);

// The kernel nn_gemm_small takes on this CPU under `blas`: "AVX-512", "AVX2+FMA" or "cblas_sgemm"; and
// whether it is the AVX-512 one (the Winograd transforms then use 16-lane vectors: 32 registers)
const char *nn_gemm_kernel(int blas);
int nn_gemm_wide(int blas);

// C (M x N, ldc) += A (M x K, lda) * B^T, B being N x K (ldb; where K <= 8 M by blocks of 256): the weight
// gradient's form, both operands contiguous along K.
void nn_gemm_small_nt_acc(int blas, int M, int N, int K, const float *A, int lda, const float *B, int ldb,
                          float *C, int ldc);

// cblas_sgemm (row-major) that runs on one thread below NN_GEMM_PAR_MIN multiply-adds: OpenBLAS would wake
// its team for products that take microseconds (a 64 x 128 x 128 layer), and on cores shared with other
// jobs each such product waits for the slowest thread. The threshold is measured by make bench (shared).
// Larger products by fixed 256 x 256 tiles of C over the threads: the same bits on any thread count.
#define NN_GEMM_PAR_MIN (4.0 * 1024 * 1024)
void nn_sgemm(int ta, int tb, int M, int N, int K, float alpha, const float *A, int lda, const float *B,
              int ldb, float beta, float *C, int ldc);

#endif
