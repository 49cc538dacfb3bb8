// Small single-threaded row-major matrix products for the Winograd
// convolutions (nn/ops_conv.c): dozens of products per chunk of a few
// thousand values each, too small for a general BLAS to amortise its packing
// of both operands and its separate pass that zeroes C.
#ifndef NN_GEMM_H
#define NN_GEMM_H

// C (M x N, ldc) = op(A) (M x K) * B (K x N, ldb), overwriting C.
//   ta = 0: A is M x K (lda);  ta = 1: A is K x M (lda), op(A) = A^T.
// AVX2+FMA register-blocked kernel where the CPU has it (B and C are used in
// place, no packing); cblas_sgemm otherwise. Deterministic for a given CPU.
void nn_gemm_small(int ta, int M, int N, int K, const float *A, int lda, const float *B, int ldb, float *C, int ldc);

// C (M x N, ldc) += A (M x K, lda) * B^T, B being N x K (ldb): the weight
// gradient's form, both operands contiguous along K.
void nn_gemm_small_nt_acc(int M, int N, int K, const float *A, int lda, const float *B, int ldb, float *C, int ldc);

// 1: every product through cblas_sgemm (for tests and benchmarks); default 0
extern int nn_gemm_blas;

// (nn/ops_conv.c) the Winograd transforms' layout: -1 (default) by the size
// rule, 0 rows of tiles, 1 image vectors; and in image vectors, whether the
// threads share one chunk of the whole batch: -1 by the rule, 0 no, 1 yes
// (while its buffers take under 32 MiB). For tests and benchmarks.
extern int nn_wino_iv, nn_wino_batch;
// (nn/ops_conv.c) the other convolutions: -1 (default) as ctx->keep_im2col
// says (1: one im2col and one cblas_sgemm over the whole batch, 0: by groups
// of images), 0 by groups, 1 over the batch; for tests and benchmarks
extern int nn_conv_batched;

#endif
