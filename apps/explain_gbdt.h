// galnn explain on kind = gbdt (apps/explain_gbdt.c): gain importance and TreeSHAP of --target (default
// the first) for the catalog rows given (n > 0) or every usable galaxy of split, files and plots in dir.
#ifndef APP_EXPLAIN_GBDT_H
#define APP_EXPLAIN_GBDT_H

#include "pipeline/run.h"

int explain_gbdt(run *r, const char *dir, int split, const char *target, const uint32_t *rows, size_t n);

#endif
