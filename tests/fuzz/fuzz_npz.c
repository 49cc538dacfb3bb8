#include "fuzz_common.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    io_npz z;
    if (io_npz_parse(data, size, "fuzz.npz", &z) == 0) io_npz_free(&z);
    return 0;
}
