// Small synthetic data sets generated in memory from a seeded stream: the
// engine's demo and training tests (real learning problems, no files).
#ifndef IO_SYNTH_H
#define IO_SYNTH_H

#include <stdint.h>

#include "../common/gn_rng.h"

// n single-band size x size images of two shapes at random position, size,
// brightness, over Gaussian noise: label 0 = square outline, 1 = plus sign.
// images: (n, 1, size, size); labels: (n). size >= 12.
void io_synth_shapes(gn_rng *r, int n, int size, float *images, int32_t *labels);

// The 1-D regression target of the MLP test and demo: y = sin(2x) + 0.3 x^2.
float io_synth_curve(float x);

#endif
