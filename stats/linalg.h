// Small dense linear algebra (plain arrays in, plain arrays out).
#ifndef ST_LINALG_H
#define ST_LINALG_H

#include <stddef.h>
#include <stdint.h>

// Eigenvectors of the symmetric d x d matrix A (row-major, destroyed) by
// cyclic Jacobi rotations: values in ev (descending), vectors as the columns
// of V (d x d, row-major).
void st_eig_sym(double *A, int d, double *ev, double *V);

// Iterative PCA gap filling of n spectra of p pixels (row-major X, n x p;
// mask[i*p + j] != 0 marks a missing pixel, whose value is ignored): each
// spectrum is L2-normalised on its present pixels, missing pixels start at
// the sample mean, then `iters` rounds of: the top `n_ev` principal
// components of the filled set, each spectrum's coefficients from its present
// pixels (weighted least squares, with the probabilistic-PCA prior a_c ~
// N(0, lambda_c) and the residual variance per pixel as the noise, so
// components beyond the data's rank cannot chase the current fill's errors),
// missing pixels <- mean + coefficients x components.
// Present pixels are never changed; the normalisation is undone at the end.
int st_pca_fill(float *X, const uint8_t *mask, size_t n, int p, int n_ev, int iters);

#endif
