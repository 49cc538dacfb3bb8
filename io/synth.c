#include "synth.h"

#include <math.h>
#include <string.h>

void io_synth_shapes(gn_rng *r, int n, int size, float *images, int32_t *labels) {
    for (int i = 0; i < n; i++) {
        float *im = images + (size_t)i * size * size;
        int label = (int)gn_rng_below(r, 2);
        int half = 2 + (int)gn_rng_below(r, (uint32_t)(size / 4 - 1)); // half-width 2 .. size/4
        int cy = half + (int)gn_rng_below(r, (uint32_t)(size - 2 * half));
        int cx = half + (int)gn_rng_below(r, (uint32_t)(size - 2 * half));
        float amp = 0.6f + 0.8f * (float)gn_rng_uniform(r);
        for (int p = 0; p < size * size; p++) im[p] = 0.25f * (float)gn_rng_normal(r);
        for (int y = cy - half; y <= cy + half && y < size; y++)
            for (int x = cx - half; x <= cx + half && x < size; x++) {
                int on = label == 0 ? (y == cy - half || y == cy + half || x == cx - half || x == cx + half)
                                    : (y == cy || x == cx);
                if (on) im[y * size + x] += amp;
            }
        labels[i] = label;
    }
}

float io_synth_curve(float x) { return sinf(2.0f * x) + 0.3f * x * x; }
