#include "fuzz_common.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    char *text = malloc(size + 1);
    if (!text) return 0;
    memcpy(text, data, size);
    io_catalog c;
    if (io_catalog_parse("fuzz.csv", text, size, NULL, &c) == 0) {
        if (c.n_cols > 1) io_catalog_derive(&c, "derived_col", "log10(abs(x - y) + 1) * (2 - z)/3"); // may fail: names
        uint8_t *split = malloc(c.n_rows + 1);
        if (split) io_catalog_splits(&c, 0.7, 0.15, split);
        free(split);
        io_catalog_free(&c);
    }
    return 0;
}
