// galnn explain on kind = gbdt (apps/explain_gbdt.c): gain importance and TreeSHAP of --target (default
// the first) for the galaxies of split (the first nshow if > 0), files and plots in dir.
#ifndef APP_EXPLAIN_GBDT_H
#define APP_EXPLAIN_GBDT_H

#include "pipeline/run.h"

int explain_gbdt(run *r, const char *dir, int split, const char *target, long nshow);

#endif
