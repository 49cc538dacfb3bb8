// libFuzzer targets, one per parser: each feeds the fuzzer's bytes to one
// reader and only requires that it returns (an image or an error) without
// crashing, leaking or touching memory it does not own (ASan+UBSan).
#ifndef FUZZ_COMMON_H
#define FUZZ_COMMON_H
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "../../io/catalog.h"
#include "../../io/image.h"
#include "../../io/npy.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static inline void fuzz_image(const uint8_t *d, size_t n, int fmt) {
    io_image im;
    if (io_image_decode_as(d, n, "fuzz", fmt, &im) == 0) {
        volatile float s = 0;
        for (size_t i = 0; i < (size_t)im.c * im.h * im.w; i++) s += im.data[i]; // touch every pixel
        io_image_free(&im);
    }
}
#endif
