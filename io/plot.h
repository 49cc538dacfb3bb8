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

int io_plot_lines(const char *path, const char *title, const char *xlabel, const char *ylabel,
                  const io_series *s, int n_series, int log_y);
// A 2-D histogram of (x, y) on [lo, hi]^2 with a log colour scale, the 1:1
// line, and `note` (e.g. the metrics) in the corner.
int io_plot_density(const char *path, const char *title, const char *xlabel, const char *ylabel,
                    const double *x, const double *y, size_t n, double lo, double hi, const char *note);

// Step histograms (density-normalised) of several samples on [lo, hi] with
// `bins` bins; grey samples (references) are drawn filled in grey under the rest.
typedef struct io_hist {
    const char *name;
    const double *v; // NaN values are skipped
    size_t n;
    int grey;
} io_hist;
int io_plot_hists(const char *path, const char *title, const char *xlabel, const io_hist *h, int n_hist,
                  int bins, double lo, double hi);

// Points with error bars over named categories (one group per colour, offset
// side by side), and an optional horizontal reference line (ref_y NaN: none).
typedef struct io_errbars {
    const char *name;
    const double *mid, *lo, *hi; // per category; NaN: not drawn
} io_errbars;
int io_plot_errorbars(const char *path, const char *title, const char *ylabel, const char *const *cats,
                      int n_cats, const io_errbars *g, int n_groups, double ref_y, const char *ref_label);

// Bars over named categories, one bar per group side by side (NaN: none).
typedef struct io_bars {
    const char *name;
    const double *v; // per category
} io_bars;
int io_plot_bars(const char *path, const char *title, const char *ylabel, const char *const *cats, int n_cats,
                 const io_bars *g, int n_groups);

// A table of values as coloured cells (white -> dark blue from the lowest to
// the highest), each annotated with printf format fmt ("%.1f"); v is (nr, nc)
// row-major, NaN cells grey.
int io_plot_heatmap(const char *path, const char *title, const char *xlabel, const char *ylabel,
                    const char *const *rows, int nr, const char *const *cols, int nc, const double *v,
                    const char *fmt);

// n maps of h x w side by side (6 per row), each scaled on its own: diverging
// (blue < 0 < red, symmetric about 0: attributions) or sequential (images).
// unit: what the colour bars measure (printed under each), may be NULL.
int io_plot_maps(const char *path, const char *title, const float *maps, int n, int h, int w,
                 const char *const *labels, int diverging, const char *unit);

// A scatter plot of (x, y), each point coloured by c in [0, 1] (blue - red; NaN grey; c NULL: all blue).
int io_plot_points(const char *path, const char *title, const char *xlabel, const char *ylabel,
                   const double *x, const double *y, const double *c, size_t n);
// A beeswarm: one row per name (names[0] on top), the n values v (n x nf) of each as jittered points
// coloured by c (n x nf, in [0, 1], NaN grey), a line at x = 0 (SHAP summary plots).
int io_plot_beeswarm(const char *path, const char *title, const char *xlabel, const char *const *names,
                     int nf, const double *v, const double *c, size_t n);

#endif
