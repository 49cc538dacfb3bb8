// PNG plots through cairo: line plots (loss curves) and 2-D density plots
// (predicted vs true), with axes, tick labels, titles and a legend.
#ifndef IO_PLOT_H
#define IO_PLOT_H

#include <stddef.h>

typedef struct io_series {
    const char *name;
    const double *x, *y; // NaN points are skipped
    size_t n;
} io_series;

int io_plot_lines(const char *path, const char *title, const char *xlabel, const char *ylabel, const io_series *s,
                  int n_series, int log_y);
// A 2-D histogram of (x, y) on [lo, hi]^2 with a log colour scale, the 1:1
// line, and `note` (e.g. the metrics) in the corner.
int io_plot_density(const char *path, const char *title, const char *xlabel, const char *ylabel, const double *x,
                    const double *y, size_t n, double lo, double hi, const char *note);

#endif
