#include "../../io/fitstable.h"
#include "fuzz_common.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    char *text = NULL;
    size_t len = 0;
    if (io_fits_table_csv("fuzz.fits", data, size, &text, &len) == 0) {
        io_catalog c;
        if (io_catalog_parse("fuzz.fits", text, len, NULL, &c) == 0) io_catalog_free(&c); // it owns text
    }
    return 0;
}
