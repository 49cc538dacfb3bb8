#include "plot.h"

#include <cairo/cairo.h>
#include <math.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "../common/gn_common.h"

#define W 820
#define H 560
#define ML 92.0 // margins
#define MR 24.0
#define MT 44.0
#define MB 64.0

static const double COLORS[6][3] = {{0.12, 0.47, 0.71}, {1.0, 0.50, 0.05},  {0.17, 0.63, 0.17},
                                    {0.84, 0.15, 0.16}, {0.58, 0.40, 0.74}, {0.55, 0.34, 0.29}};

static double nice_step(double range) {
    double raw = range / 6, p = pow(10, floor(log10(raw))), m = raw / p;
    return p * (m < 1.5 ? 1 : m < 3.5 ? 2 : m < 7.5 ? 5 : 10);
}

typedef struct frame {
    cairo_t *cr;
    double x0, x1, y0, y1;
    int log_y;
} frame;

static double px(const frame *f, double x) { return ML + (x - f->x0) / (f->x1 - f->x0) * (W - ML - MR); }
static double py(const frame *f, double y) {
    if (f->log_y) y = log10(y);
    return H - MB - (y - f->y0) / (f->y1 - f->y0) * (H - MT - MB);
}

static void text(cairo_t *cr, double x, double y, const char *s, double ax, double ay, double size,
                 int rotate) {
    cairo_set_font_size(cr, size);
    cairo_text_extents_t e;
    cairo_text_extents(cr, s, &e);
    cairo_save(cr);
    cairo_translate(cr, x, y);
    if (rotate) cairo_rotate(cr, -M_PI / 2);
    cairo_move_to(cr, -e.width * ax - e.x_bearing, -e.height * ay - e.y_bearing);
    cairo_show_text(cr, s);
    cairo_restore(cr);
}

static void axes(frame *f, const char *title, const char *xl, const char *yl) {
    cairo_t *cr = f->cr;
    cairo_set_source_rgb(cr, 1, 1, 1);
    cairo_paint(cr);
    cairo_select_font_face(cr, "sans-serif", CAIRO_FONT_SLANT_NORMAL, CAIRO_FONT_WEIGHT_NORMAL);
    cairo_set_line_width(cr, 1);
    double sx = nice_step(f->x1 - f->x0), sy = nice_step(f->y1 - f->y0);
    char b[64];
    for (double t = ceil(f->x0 / sx) * sx; t <= f->x1 + 1e-9 * sx; t += sx) {
        cairo_set_source_rgb(cr, 0.9, 0.9, 0.9);
        cairo_move_to(cr, px(f, t), MT), cairo_line_to(cr, px(f, t), H - MB), cairo_stroke(cr);
        cairo_set_source_rgb(cr, 0, 0, 0);
        snprintf(b, sizeof b, "%g", fabs(t) < 1e-12 * sx ? 0.0 : t);
        text(cr, px(f, t), H - MB + 8, b, 0.5, 0, 13, 0);
    }
    // y ticks: linear steps, or 1-2-5 per decade (only 1 when many decades) on a log axis
    double ticks[64];
    int nt = 0;
    if (f->log_y) {
        static const double mant[3] = {1, 2, 5};
        int per = f->y1 - f->y0 > 3 ? 1 : 3;
        for (int k = (int)floor(f->y0); k <= (int)ceil(f->y1) && nt < 60; k++)
            for (int m = 0; m < per; m++) {
                double t = log10(mant[m]) + k;
                if (t >= f->y0 && t <= f->y1) ticks[nt++] = t;
            }
        if (nt < 3) { // less than a decade: nice steps of the values themselves
            double a = pow(10, f->y0), b = pow(10, f->y1), st = nice_step(b - a);
            nt = 0;
            for (double v = ceil(a / st) * st; v <= b * (1 + 1e-9) && nt < 60; v += st)
                if (v > 0) ticks[nt++] = log10(v);
        }
    } else
        for (double t = ceil(f->y0 / sy) * sy; t <= f->y1 + 1e-9 * sy && nt < 60; t += sy) ticks[nt++] = t;
    for (int i = 0; i < nt; i++) {
        double t = ticks[i], yy = H - MB - (t - f->y0) / (f->y1 - f->y0) * (H - MT - MB);
        cairo_set_source_rgb(cr, 0.9, 0.9, 0.9);
        cairo_move_to(cr, ML, yy), cairo_line_to(cr, W - MR, yy), cairo_stroke(cr);
        cairo_set_source_rgb(cr, 0, 0, 0);
        if (f->log_y)
            snprintf(b, sizeof b, "%.3g", pow(10, t));
        else
            snprintf(b, sizeof b, "%.4g", fabs(t) < 1e-12 * sy ? 0.0 : t);
        text(cr, ML - 8, yy, b, 1, 0.5, 13, 0);
    }
    cairo_set_source_rgb(cr, 0, 0, 0);
    cairo_rectangle(cr, ML, MT, W - ML - MR, H - MT - MB);
    cairo_stroke(cr);
    text(cr, (ML + W - MR) / 2, 14, title, 0.5, 0, 17, 0);
    text(cr, (ML + W - MR) / 2, H - 24, xl, 0.5, 0, 15, 0);
    text(cr, 16, (MT + H - MB) / 2, yl, 0.5, 0.5, 15, 1);
}

static int finish(cairo_surface_t *s, cairo_t *cr, const char *path) {
    cairo_destroy(cr);
    cairo_status_t st = cairo_surface_write_to_png(s, path);
    cairo_surface_destroy(s);
    return st == CAIRO_STATUS_SUCCESS
               ? GN_OK
               : gn_err(GN_EIO, "%s: cannot write the plot: %s", path, cairo_status_to_string(st));
}

int io_plot_lines(const char *path, const char *title, const char *xl, const char *yl, const io_series *s,
                  int ns, int log_y) {
    frame f = {0};
    f.x0 = f.y0 = INFINITY, f.x1 = f.y1 = -INFINITY;
    f.log_y = log_y;
    for (int k = 0; k < ns; k++)
        for (size_t i = 0; i < s[k].n; i++) {
            double x = s[k].x[i], y = s[k].y[i];
            if (isnan(x) || isnan(y) || (log_y && !(y > 0))) continue;
            if (log_y) y = log10(y);
            f.x0 = fmin(f.x0, x), f.x1 = fmax(f.x1, x), f.y0 = fmin(f.y0, y), f.y1 = fmax(f.y1, y);
        }
    if (!isfinite(f.x0)) return gn_err(GN_EINVAL, "%s: nothing to plot", path);
    if (f.x1 == f.x0) f.x1 = f.x0 + 1;
    if (f.y1 == f.y0) f.y1 = f.y0 + 1;
    double pad = 0.05 * (f.y1 - f.y0);
    f.y0 -= pad, f.y1 += pad;
    cairo_surface_t *sf = cairo_image_surface_create(CAIRO_FORMAT_RGB24, W, H);
    f.cr = cairo_create(sf);
    axes(&f, title, xl, yl);
    cairo_set_line_width(f.cr, 2);
    for (int k = 0; k < ns; k++) {
        const double *c = COLORS[k % 6];
        cairo_set_source_rgb(f.cr, c[0], c[1], c[2]);
        int pen = 0;
        for (size_t i = 0; i < s[k].n; i++) {
            double x = s[k].x[i], y = s[k].y[i];
            if (isnan(x) || isnan(y) || (log_y && !(y > 0))) {
                pen = 0;
                continue;
            }
            if (pen)
                cairo_line_to(f.cr, px(&f, x), py(&f, y));
            else
                cairo_move_to(f.cr, px(&f, x), py(&f, y)), pen = 1;
            if (s[k].n == 1) cairo_arc(f.cr, px(&f, x), py(&f, y), 3, 0, 2 * M_PI);
        }
        cairo_stroke(f.cr);
        double ly = MT + 18 + 20 * k; // legend
        cairo_move_to(f.cr, W - MR - 170, ly), cairo_line_to(f.cr, W - MR - 140, ly), cairo_stroke(f.cr);
        cairo_set_source_rgb(f.cr, 0, 0, 0);
        text(f.cr, W - MR - 132, ly, s[k].name, 0, 0.5, 13, 0);
    }
    return finish(sf, f.cr, path);
}

int io_plot_density(const char *path, const char *title, const char *xl, const char *yl, const double *x,
                    const double *y, size_t n, double lo, double hi, const char *note) {
    enum { NB = 64 };
    static double h[NB][NB];
    memset(h, 0, sizeof h);
    double mx = 0;
    for (size_t i = 0; i < n; i++) {
        if (isnan(x[i]) || isnan(y[i])) continue;
        int a = (int)floor((x[i] - lo) / (hi - lo) * NB), b = (int)floor((y[i] - lo) / (hi - lo) * NB);
        if (a < 0 || b < 0 || a >= NB || b >= NB) continue;
        mx = fmax(mx, ++h[a][b]);
    }
    frame f = {0};
    f.x0 = f.y0 = lo, f.x1 = f.y1 = hi;
    cairo_surface_t *sf = cairo_image_surface_create(CAIRO_FORMAT_RGB24, W, H);
    f.cr = cairo_create(sf);
    axes(&f, title, xl, yl);
    for (int a = 0; a < NB; a++)
        for (int b = 0; b < NB; b++) {
            if (!h[a][b]) continue;
            double t = log1p(h[a][b]) / log1p(mx); // 0..1, log scale: white -> dark blue
            cairo_set_source_rgb(f.cr, 1 - 0.9 * t, 1 - 0.75 * t, 1 - 0.35 * t);
            double x0 = px(&f, lo + (hi - lo) * a / NB), x1 = px(&f, lo + (hi - lo) * (a + 1) / NB);
            double y0 = py(&f, lo + (hi - lo) * b / NB), y1 = py(&f, lo + (hi - lo) * (b + 1) / NB);
            cairo_rectangle(f.cr, x0, y1, x1 - x0 + 0.5, y0 - y1 + 0.5);
            cairo_fill(f.cr);
        }
    cairo_set_source_rgb(f.cr, 0.84, 0.15, 0.16);
    cairo_set_line_width(f.cr, 1.5);
    cairo_move_to(f.cr, px(&f, lo), py(&f, lo)), cairo_line_to(f.cr, px(&f, hi), py(&f, hi)),
        cairo_stroke(f.cr);
    cairo_set_source_rgb(f.cr, 0, 0, 0);
    if (note) text(f.cr, ML + 12, MT + 12, note, 0, 0, 13, 0);
    char key[96]; // what the shading means
    snprintf(key, sizeof key, "shade: galaxies per cell, log scale (darkest: %.0f)", mx);
    text(f.cr, ML + 12, MT + 30, key, 0, 0, 11, 0);
    return finish(sf, f.cr, path);
}

static void legend(frame *f, int k, const char *name, const double *c, int filled) {
    double ly = MT + 18 + 20 * k;
    cairo_set_source_rgb(f->cr, c[0], c[1], c[2]);
    if (filled)
        cairo_rectangle(f->cr, W - MR - 170, ly - 6, 30, 12), cairo_fill(f->cr);
    else
        cairo_set_line_width(f->cr, 2), cairo_move_to(f->cr, W - MR - 170, ly),
            cairo_line_to(f->cr, W - MR - 140, ly), cairo_stroke(f->cr);
    cairo_set_source_rgb(f->cr, 0, 0, 0);
    text(f->cr, W - MR - 132, ly, name, 0, 0.5, 13, 0);
}

int io_plot_hists(const char *path, const char *title, const char *xl, const io_hist *h, int nh, int bins,
                  double lo, double hi) {
    if (bins < 1 || bins > 1000 || !(hi > lo))
        return gn_err(GN_EINVAL, "%s: bad histogram range or bin count", path);
    double *c = gn_calloc((size_t)nh * (size_t)bins, sizeof(double)), w = (hi - lo) / bins, top = 0;
    if (!c) return GN_ENOMEM;
    for (int k = 0; k < nh; k++) {
        size_t m = 0;
        for (size_t i = 0; i < h[k].n; i++) {
            double v = h[k].v[i];
            if (isnan(v) || v < lo || v > hi) continue;
            int b = (int)((v - lo) / w);
            c[(size_t)k * bins + (b < bins ? b : bins - 1)]++, m++;
        }
        for (int b = 0; b < bins && m; b++) top = fmax(top, c[(size_t)k * bins + b] /= (double)m * w);
    }
    if (!(top > 0)) return free(c), gn_err(GN_EINVAL, "%s: nothing to plot", path);
    frame f = {0};
    f.x0 = lo, f.x1 = hi, f.y0 = 0, f.y1 = 1.08 * top;
    cairo_surface_t *sf = cairo_image_surface_create(CAIRO_FORMAT_RGB24, W, H);
    f.cr = cairo_create(sf);
    axes(&f, title, xl, "probability density (per unit of x)");
    static const double GREY[3] = {0.72, 0.72, 0.72};
    int col = 0, leg = 0;
    for (int pass = 0; pass < 2; pass++) // grey references first, underneath
        for (int k = 0; k < nh; k++) {
            if ((pass == 0) != (h[k].grey != 0)) continue;
            const double *rgb = h[k].grey ? GREY : COLORS[col++ % 6];
            cairo_set_source_rgb(f.cr, rgb[0], rgb[1], rgb[2]);
            cairo_move_to(f.cr, px(&f, lo), py(&f, 0));
            for (int b = 0; b < bins; b++) {
                double y = c[(size_t)k * bins + b];
                cairo_line_to(f.cr, px(&f, lo + b * w), py(&f, y)),
                    cairo_line_to(f.cr, px(&f, lo + (b + 1) * w), py(&f, y));
            }
            cairo_line_to(f.cr, px(&f, hi), py(&f, 0));
            if (h[k].grey)
                cairo_close_path(f.cr), cairo_fill(f.cr);
            else
                cairo_set_line_width(f.cr, 2), cairo_stroke(f.cr);
            legend(&f, leg++, h[k].name, rgb, h[k].grey);
        }
    free(c);
    return finish(sf, f.cr, path);
}

int io_plot_errorbars(const char *path, const char *title, const char *yl, const char *const *cats, int nc,
                      const io_errbars *g, int ng, double ref_y, const char *ref_label) {
    frame f = {0};
    f.x0 = -0.6, f.x1 = nc - 0.4, f.y0 = INFINITY, f.y1 = -INFINITY;
    for (int k = 0; k < ng; k++)
        for (int i = 0; i < nc; i++) {
            double a = isnan(g[k].lo[i]) ? g[k].mid[i] : g[k].lo[i],
                   b = isnan(g[k].hi[i]) ? g[k].mid[i] : g[k].hi[i];
            if (!isnan(a)) f.y0 = fmin(f.y0, a), f.y1 = fmax(f.y1, b);
        }
    if (!isnan(ref_y)) f.y0 = fmin(f.y0, ref_y), f.y1 = fmax(f.y1, ref_y);
    if (!isfinite(f.y0) || nc < 1) return gn_err(GN_EINVAL, "%s: nothing to plot", path);
    if (f.y1 == f.y0) f.y1 = f.y0 + 1;
    double pad = 0.08 * (f.y1 - f.y0);
    f.y0 -= pad, f.y1 += pad;
    cairo_surface_t *sf = cairo_image_surface_create(CAIRO_FORMAT_RGB24, W, H);
    f.cr = cairo_create(sf);
    // category axis: draw the frame with an empty x label, then the names
    axes(&f, title, "", yl);
    cairo_set_source_rgb(f.cr, 1, 1, 1); // hide the numeric x ticks
    cairo_rectangle(f.cr, ML - 20, H - MB + 2, W - ML - MR + 40, 24), cairo_fill(f.cr);
    cairo_set_source_rgb(f.cr, 0, 0, 0);
    for (int i = 0; i < nc; i++) text(f.cr, px(&f, i), H - MB + 8, cats[i], 0.5, 0, 13, 0);
    int leg = 0;
    if (!isnan(ref_y)) {
        static const double GREY[3] = {0.45, 0.45, 0.45};
        cairo_set_source_rgb(f.cr, GREY[0], GREY[1], GREY[2]);
        double dash[2] = {6, 4};
        cairo_set_dash(f.cr, dash, 2, 0);
        cairo_set_line_width(f.cr, 1.5);
        cairo_move_to(f.cr, ML, py(&f, ref_y)), cairo_line_to(f.cr, W - MR, py(&f, ref_y)),
            cairo_stroke(f.cr);
        cairo_set_dash(f.cr, NULL, 0, 0);
        legend(&f, leg++, ref_label ? ref_label : "reference", GREY, 0);
    }
    for (int k = 0; k < ng; k++) {
        const double *rgb = COLORS[k % 6];
        double off = ng > 1 ? (k - (ng - 1) / 2.0) * 0.5 / ng : 0;
        cairo_set_source_rgb(f.cr, rgb[0], rgb[1], rgb[2]);
        cairo_set_line_width(f.cr, 2);
        for (int i = 0; i < nc; i++) {
            if (isnan(g[k].mid[i])) continue;
            double x = px(&f, i + off);
            if (!isnan(g[k].lo[i]) && !isnan(g[k].hi[i])) {
                cairo_move_to(f.cr, x, py(&f, g[k].lo[i])), cairo_line_to(f.cr, x, py(&f, g[k].hi[i])),
                    cairo_stroke(f.cr);
                cairo_move_to(f.cr, x - 4, py(&f, g[k].lo[i])),
                    cairo_line_to(f.cr, x + 4, py(&f, g[k].lo[i]));
                cairo_move_to(f.cr, x - 4, py(&f, g[k].hi[i])),
                    cairo_line_to(f.cr, x + 4, py(&f, g[k].hi[i]));
                cairo_stroke(f.cr);
            }
            cairo_arc(f.cr, x, py(&f, g[k].mid[i]), 4.5, 0, 2 * M_PI), cairo_fill(f.cr);
        }
        legend(&f, leg++, g[k].name, rgb, 0);
    }
    return finish(sf, f.cr, path);
}

// Bars: categories along x, one bar per group side by side, from 0.
int io_plot_bars(const char *path, const char *title, const char *yl, const char *const *cats, int nc,
                 const io_bars *g, int ng) {
    frame f = {0};
    f.x0 = -0.6, f.x1 = nc - 0.4, f.y0 = 0, f.y1 = 0;
    for (int k = 0; k < ng; k++)
        for (int i = 0; i < nc; i++)
            if (!isnan(g[k].v[i])) f.y0 = fmin(f.y0, g[k].v[i]), f.y1 = fmax(f.y1, g[k].v[i]);
    if (nc < 1 || ng < 1) return gn_err(GN_EINVAL, "%s: nothing to plot", path);
    if (f.y1 == f.y0) f.y1 = f.y0 + 1;
    double pad = 0.08 * (f.y1 - f.y0);
    f.y1 += pad, f.y0 -= f.y0 < 0 ? pad : 0;
    cairo_surface_t *sf = cairo_image_surface_create(CAIRO_FORMAT_RGB24, W, H);
    f.cr = cairo_create(sf);
    axes(&f, title, "", yl);
    cairo_set_source_rgb(f.cr, 1, 1, 1); // category names instead of numeric x ticks
    cairo_rectangle(f.cr, ML - 20, H - MB + 2, W - ML - MR + 40, 24), cairo_fill(f.cr);
    cairo_set_source_rgb(f.cr, 0, 0, 0);
    for (int i = 0; i < nc; i++) text(f.cr, px(&f, i), H - MB + 8, cats[i], 0.5, 0, 13, 0);
    double bw = 0.8 / ng;
    for (int k = 0; k < ng; k++) {
        const double *rgb = COLORS[k % 6];
        cairo_set_source_rgb(f.cr, rgb[0], rgb[1], rgb[2]);
        for (int i = 0; i < nc; i++) {
            if (isnan(g[k].v[i])) continue;
            double a = px(&f, i - 0.4 + k * bw), b = px(&f, i - 0.4 + (k + 1) * bw), y0 = py(&f, 0),
                   y1 = py(&f, g[k].v[i]);
            cairo_rectangle(f.cr, a + 1, fmin(y0, y1), b - a - 2, fabs(y1 - y0)), cairo_fill(f.cr);
        }
        legend(&f, k, g[k].name, rgb, 1);
    }
    cairo_set_source_rgb(f.cr, 0, 0, 0);
    cairo_move_to(f.cr, ML, py(&f, 0)), cairo_line_to(f.cr, W - MR, py(&f, 0)), cairo_stroke(f.cr);
    return finish(sf, f.cr, path);
}

// A sequential (white -> dark blue) or diverging (blue - white - red) colour for t in [0, 1].
static void cmap(cairo_t *cr, double t, int diverging) {
    t = t < 0 ? 0 : t > 1 ? 1 : t;
    if (!diverging) {
        cairo_set_source_rgb(cr, 1 - 0.9 * t, 1 - 0.75 * t, 1 - 0.35 * t);
        return;
    }
    double u = 2 * t - 1; // -1 blue, 0 white, +1 red
    if (u < 0)
        cairo_set_source_rgb(cr, 1 + 0.85 * u, 1 + 0.6 * u, 1 + 0.2 * u);
    else
        cairo_set_source_rgb(cr, 1 - 0.2 * u, 1 - 0.85 * u, 1 - 0.85 * u);
}

int io_plot_heatmap(const char *path, const char *title, const char *xl, const char *yl,
                    const char *const *rows, int nr, const char *const *cols, int nc, const double *v,
                    const char *fmt) {
    if (nr < 1 || nc < 1) return gn_err(GN_EINVAL, "%s: nothing to plot", path);
    double lo = INFINITY, hi = -INFINITY;
    for (int i = 0; i < nr * nc; i++)
        if (!isnan(v[i])) lo = fmin(lo, v[i]), hi = fmax(hi, v[i]);
    int w = W, h = (int)fmax(H, MT + MB + 34.0 * nr);
    double ml = 190, cw = (w - ml - MR) / nc, ch = (h - MT - MB) / nr;
    cairo_surface_t *sf = cairo_image_surface_create(CAIRO_FORMAT_RGB24, w, h);
    cairo_t *cr = cairo_create(sf);
    cairo_set_source_rgb(cr, 1, 1, 1);
    cairo_paint(cr);
    cairo_select_font_face(cr, "sans-serif", CAIRO_FONT_SLANT_NORMAL, CAIRO_FONT_WEIGHT_NORMAL);
    for (int i = 0; i < nr; i++)
        for (int j = 0; j < nc; j++) {
            double x = ml + j * cw, y = MT + i * ch, val = v[i * nc + j];
            if (isnan(val))
                cairo_set_source_rgb(cr, 0.85, 0.85, 0.85);
            else
                cmap(cr, hi > lo ? (val - lo) / (hi - lo) : 0, 0);
            cairo_rectangle(cr, x, y, cw, ch), cairo_fill(cr);
            char b[64];
            if (isnan(val))
                snprintf(b, sizeof b, "-");
            else
                snprintf(b, sizeof b, fmt ? fmt : "%.3g", val);
            double t = hi > lo && !isnan(val) ? (val - lo) / (hi - lo) : 0;
            cairo_set_source_rgb(cr, t > 0.6 ? 1 : 0, t > 0.6 ? 1 : 0, t > 0.6 ? 1 : 0);
            text(cr, x + cw / 2, y + ch / 2, b, 0.5, 0.5, ch > 30 && cw > 60 ? 12 : 9, 0);
        }
    cairo_set_source_rgb(cr, 0, 0, 0);
    cairo_set_line_width(cr, 1);
    cairo_rectangle(cr, ml, MT, nc * cw, nr * ch), cairo_stroke(cr);
    for (int j = 0; j < nc; j++) text(cr, ml + (j + 0.5) * cw, MT + nr * ch + 8, cols[j], 0.5, 0, 13, 0);
    for (int i = 0; i < nr; i++) text(cr, ml - 8, MT + (i + 0.5) * ch, rows[i], 1, 0.5, 13, 0);
    text(cr, (ml + w - MR) / 2, 14, title, 0.5, 0, 17, 0);
    text(cr, (ml + w - MR) / 2, h - 24, xl, 0.5, 0, 15, 0);
    text(cr, 16, (MT + h - MB) / 2, yl, 0.5, 0.5, 15, 1);
    return finish(sf, cr, path);
}

// A colour bar under a map: the colour scale from lo to hi, labelled at both ends and at 0 when it is inside.
static void colour_bar(cairo_t *cr, double x0, double y0, double w, double lo, double hi, int diverging) {
    if (!(hi > lo)) return;
    for (int i = 0; i < 64; i++) {
        cmap(cr, (i + 0.5) / 64, diverging);
        cairo_rectangle(cr, x0 + i * w / 64, y0, w / 64 + 0.5, 7), cairo_fill(cr);
    }
    char b[32];
    cairo_set_source_rgb(cr, 0, 0, 0);
    snprintf(b, sizeof b, "%.2g", lo);
    text(cr, x0, y0 + 9, b, 0, 0, 10, 0);
    snprintf(b, sizeof b, "%.2g", hi);
    text(cr, x0 + w, y0 + 9, b, 1, 0, 10, 0);
    if (lo < 0 && hi > 0) text(cr, x0 + w * (-lo) / (hi - lo), y0 + 9, "0", 0.5, 0, 10, 0);
}

int io_plot_maps(const char *path, const char *title, const float *maps, int n, int h, int w,
                 const char *const *labels, int diverging, const char *unit) {
    if (n < 1 || h < 1 || w < 1) return gn_err(GN_EINVAL, "%s: nothing to plot", path);
    int cell = 180, gap = 16, top = 44, lab = 62;
    int cols = n < 6 ? n : 6, rws = (n + cols - 1) / cols;
    int Wd = cols * (cell + gap) + gap, Hd = top + rws * (cell + lab + gap);
    cairo_surface_t *sf = cairo_image_surface_create(CAIRO_FORMAT_RGB24, Wd, Hd);
    cairo_t *cr = cairo_create(sf);
    cairo_set_source_rgb(cr, 1, 1, 1);
    cairo_paint(cr);
    cairo_select_font_face(cr, "sans-serif", CAIRO_FONT_SLANT_NORMAL, CAIRO_FONT_WEIGHT_NORMAL);
    for (int k = 0; k < n; k++) {
        const float *m = maps + (size_t)k * h * w;
        double a = 0, lo = INFINITY, hi = -INFINITY;
        for (int i = 0; i < h * w; i++)
            if (isfinite(m[i])) a = fmax(a, fabs(m[i])), lo = fmin(lo, m[i]), hi = fmax(hi, m[i]);
        int x0 = gap + (k % cols) * (cell + gap), y0 = top + (k / cols) * (cell + lab + gap);
        double pw = (double)cell / w, ph = (double)cell / h;
        for (int y = 0; y < h; y++)
            for (int x = 0; x < w; x++) {
                double v = m[y * w + x];
                double t =
                    diverging ? (a > 0 ? 0.5 + 0.5 * v / a : 0.5) : (hi > lo ? (v - lo) / (hi - lo) : 0);
                cmap(cr, isfinite(v) ? t : 0.5, diverging);
                cairo_rectangle(cr, x0 + x * pw, y0 + y * ph, pw + 0.5, ph + 0.5), cairo_fill(cr);
            }
        cairo_set_source_rgb(cr, 0, 0, 0);
        cairo_set_line_width(cr, 1);
        cairo_rectangle(cr, x0, y0, cell, cell), cairo_stroke(cr);
        if (labels && labels[k]) text(cr, x0 + cell / 2.0, y0 + cell + 4, labels[k], 0.5, 0, 12, 0);
        colour_bar(cr, x0, y0 + cell + 20, cell, diverging ? -a : lo, diverging ? a : hi, diverging);
        if (unit) text(cr, x0 + cell / 2.0, y0 + cell + 43, unit, 0.5, 0, 10, 0);
    }
    text(cr, Wd / 2.0, 12, title, 0.5, 0, 16, 0);
    return finish(sf, cr, path);
}

// A small deterministic jitter in [-1, 1] for point i (a hash, no random stream).
static double jitter(size_t i) {
    uint64_t z = (uint64_t)i * 0x9E3779B97F4A7C15ull;
    z = (z ^ (z >> 31)) * 0xBF58476D1CE4E5B9ull;
    return (double)(z >> 11) / 4503599627370496.0 - 1;
}

static void dot(frame *f, double x, double y, double c) {
    if (isnan(c))
        cairo_set_source_rgb(f->cr, 0.6, 0.6, 0.6);
    else
        cmap(f->cr, 0.1 + 0.8 * c, 1);
    cairo_arc(f->cr, px(f, x), py(f, y), 2.2, 0, 2 * M_PI), cairo_fill(f->cr);
}

int io_plot_points(const char *path, const char *title, const char *xl, const char *yl, const double *x,
                   const double *y, const double *c, size_t n) {
    frame f = {0};
    f.x0 = f.y0 = INFINITY, f.x1 = f.y1 = -INFINITY;
    for (size_t i = 0; i < n; i++)
        if (!isnan(x[i]) && !isnan(y[i]))
            f.x0 = fmin(f.x0, x[i]), f.x1 = fmax(f.x1, x[i]), f.y0 = fmin(f.y0, y[i]),
            f.y1 = fmax(f.y1, y[i]);
    if (!isfinite(f.x0)) return gn_err(GN_EINVAL, "%s: nothing to plot", path);
    double px_ = 0.04 * (f.x1 - f.x0 > 0 ? f.x1 - f.x0 : 1), py_ = 0.06 * (f.y1 - f.y0 > 0 ? f.y1 - f.y0 : 1);
    f.x0 -= px_, f.x1 += px_, f.y0 -= py_, f.y1 += py_;
    cairo_surface_t *sf = cairo_image_surface_create(CAIRO_FORMAT_RGB24, W, H);
    f.cr = cairo_create(sf);
    axes(&f, title, xl, yl);
    for (size_t i = 0; i < n; i++)
        if (!isnan(x[i]) && !isnan(y[i])) dot(&f, x[i], y[i], c ? c[i] : 0);
    return finish(sf, f.cr, path);
}

int io_plot_beeswarm(const char *path, const char *title, const char *xl, const char *const *names, int nf,
                     const double *v, const double *c, size_t n) {
    frame f = {0};
    f.x0 = INFINITY, f.x1 = -INFINITY, f.y0 = -0.6, f.y1 = nf - 0.4;
    for (size_t i = 0; i < n * (size_t)nf; i++)
        if (!isnan(v[i])) f.x0 = fmin(f.x0, v[i]), f.x1 = fmax(f.x1, v[i]);
    if (!isfinite(f.x0) || nf < 1) return gn_err(GN_EINVAL, "%s: nothing to plot", path);
    double pad = 0.04 * (f.x1 - f.x0 > 0 ? f.x1 - f.x0 : 1);
    f.x0 -= pad, f.x1 += pad;
    cairo_surface_t *sf = cairo_image_surface_create(CAIRO_FORMAT_RGB24, W, H);
    f.cr = cairo_create(sf);
    axes(&f, title, xl, "");
    cairo_set_source_rgb(f.cr, 1, 1, 1); // feature names instead of numeric y ticks
    cairo_rectangle(f.cr, 0, MT - 8, ML - 1, H - MT - MB + 16), cairo_fill(f.cr);
    cairo_set_source_rgb(f.cr, 0, 0, 0);
    for (int k = 0; k < nf; k++) text(f.cr, ML - 6, py(&f, nf - 1 - k), names[k], 1, 0.5, 12, 0);
    for (int k = 0; k < nf; k++) // names[0] on top
        for (size_t i = 0; i < n; i++)
            if (!isnan(v[i * nf + k]))
                dot(&f, v[i * nf + k], nf - 1 - k + 0.3 * jitter(i * nf + k), c[i * nf + k]);
    cairo_set_source_rgb(f.cr, 0.3, 0.3, 0.3);
    cairo_move_to(f.cr, px(&f, 0), MT), cairo_line_to(f.cr, px(&f, 0), H - MB), cairo_stroke(f.cr);
    text(f.cr, W - MR - 4, MT + 6, "red: high feature value, blue: low, grey: missing", 1, 0, 11, 0);
    return finish(sf, f.cr, path);
}
