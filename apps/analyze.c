// galnn analyze: the whole interpretation study (spec/methods.md §1) in one
// command. From an analysis configuration it trains (or reuses) the latent
// models it names, evaluates and embeds them, runs the local tests in their S
// spaces, trains the MI triplets and decomposes the information pointwise,
// then writes a Markdown and an HTML report with the tables and figures.
// Every finished step leaves a marker in DIR/state/, and training resumes
// from its last checkpoint, so a killed analysis continues where it stopped.
#define _XOPEN_SOURCE 700 // nftw
#include <errno.h>
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <ftw.h>
#include <sys/stat.h>
#include <unistd.h>

#include "../common/gn_common.h"
#include "../common/gn_mpi.h"
#include "../io/config.h"
#include "../io/json.h"
#include "../io/npy.h"
#include "../io/plot.h"
#include "cmd.h"
#include "pipeline/opts.h"

static void analyze_usage(void) {
    printf(
        "usage: galnn analyze --config analysis.cfg --out DIR [--catalog CSV] [--images TEMPLATE] [--threads "
        "N]\n"
        "                     [--replace] [SECTION.KEY=VALUE ...]\n\n"
        "Runs the study an analysis configuration describes and writes DIR/report.md and DIR/report.html.\n"
        "Rerunning the command after a kill (or a failure) skips the finished steps and resumes training\n"
        "from the last checkpoint; DIR/state/ holds a marker per finished step. DIR/analysis.cfg keeps the\n"
        "configuration: a different one for the same DIR is refused (use a new --out), unless --replace,\n"
        "which deletes DIR's previous study (state/, runs/, causal/, pid/, the report) and starts over.\n\n"
        "[analysis]   catalog, images (cutout template), target (logmstar), by (population column),\n"
        "             derive (NAME=EXPR; ...), seed (1)\n"
        "[model.NAME] a latent model: config (a models/*.cfg), set (KEY=VALUE; ... overrides), label,\n"
        "             checkpoint (last, as the paper, or best). Trained in DIR/runs/NAME, evaluated on the\n"
        "             test split (metrics.json, pred_vs_true_*.png) and embedded (DIR/runs/NAME/S.csv).\n"
        "[causal]     models (NAME, ...), vars (columns or derived), k (100), perms (1), alpha (0.01),\n"
        "             given (C, ...: conditional variants), precondition (G, ...: pre-conditioned "
        "variants).\n"
        "             Results in DIR/causal/NAME[.given_C|.pre_G] (local.csv, summary.json, pe.png, "
        "r_*.png).\n"
        "[pid.NAME]   an MI triplet: x1, x2, x12 (configs of the networks for X1, X2 and their union), set,\n"
        "             label1, label2, checkpoint (best). Trained in DIR/runs/NAME.x1 etc.; the pointwise "
        "PID\n"
        "             of the test split in DIR/pid/NAME (pointwise.csv, pid.json, pid.png).\n\n"
        "models/demo_analysis.cfg is the demo's study; `galnn help train` lists the model keys.\n");
}

#define MAXN 16

typedef struct study {
    io_config cfg;
    const char *dir, *catalog, *images, *target, *by, *derive;
    long threads, seed;
    int n_models;
    const char *model[MAXN]; // section names after "model."
    int n_pid;
    const char *pid[MAXN];
} study;

static int file_exists(const char *p) {
    struct stat st;
    return !stat(p, &st);
}

// MPI: the steps that share their work among the ranks (training, embed, predict, causal) run on every
// rank; the others (eval, PID, the report, the study's files) on rank 0 alone while the rest wait:
//   if (solo_begin()) rc = step(...);  rc = solo_end(rc);   (rank 0's status on every rank)
static int solo_begin(void) {
    if (gn_mpi_rank() > 0) return 0;
    gn_mpi_solo(1);
    return 1;
}

static int solo_end(int rc) {
    gn_mpi_solo(0);
    int v = rc;
    return gn_mpi_bcast(&v, sizeof v) ? 1 : v;
}

// Whether a step is done (rank 0's answer on every rank), and marking it (rank 0).
static int done(const study *S, const char *step) {
    char p[4400];
    snprintf(p, sizeof p, "%s/state/%s.done", S->dir, step);
    int d = 0;
    if (solo_begin()) d = file_exists(p);
    return solo_end(d);
}

static int mark(const study *S, const char *step) {
    char p[4400];
    snprintf(p, sizeof p, "%s/state/%s.done", S->dir, step);
    int rc = 0;
    if (solo_begin()) rc = io_write_atomic(p, "done\n", 5);
    return solo_end(rc);
}

// Whether a model configuration reads the [data] cutouts (a branch with
// input = image, the default, and no images template of its own).
static int uses_images(const char *config) {
    io_config c;
    if (io_config_read(config, &c)) return 1; // train will report the problem
    const char *secs[32];
    int n = io_config_sections(&c, "branch.", secs, 32), any = 0;
    for (int b = 0; b < n; b++)
        any |= !strcmp(io_config_str(&c, secs[b], "input", "image"), "image") &&
               !io_config_str(&c, secs[b], "images", NULL);
    io_config_free(&c);
    return any;
}

// Train config into DIR/runs/name (resuming a started run), then mark it.
static int train_step(const study *S, const char *name, const char *config, const char *sets) {
    char step[1024], rd[4400], last[4500];
    snprintf(step, sizeof step, "train.%s", name);
    if (done(S, step)) {
        printf("-- %s: trained (reusing %s/runs/%s)\n", name, S->dir, name);
        return 0;
    }
    snprintf(rd, sizeof rd, "%s/runs/%s", S->dir, name);
    snprintf(last, sizeof last, "%s/last.npz", rd);
    train_cli o = {0};
    train_defaults(&o);
    o.threads = S->threads;
    int bad = 0, resume = 0;
    if (solo_begin()) resume = file_exists(last);
    if (solo_end(resume)) {
        printf("-- %s: resuming %s\n", name, last);
        o.resume = last;
    } else {
        printf("-- %s: training %s\n", name, config);
        o.config = config, o.out = rd;
        bad |= cmd_strs_addf(&o.sets, "data.catalog=%s", S->catalog);
        if (S->images && uses_images(config)) bad |= cmd_strs_addf(&o.sets, "data.images=%s", S->images);
        bad |= cmd_strs_addf(&o.sets, "train.seed=%ld", S->seed);
        if (S->derive) bad |= cmd_strs_addf(&o.sets, "data.derive=%s", S->derive);
        bad |= cmd_strs_split(&o.sets, sets, ';');
    }
    if (bad || train_run(&o)) return cmd_error("analyze: training %s failed (rerun to resume)", name);
    fflush(stdout);
    return mark(S, step);
}

static const char *ckpt_of(const study *S, const char *sec, const char *name, const char *def, char *buf,
                           size_t len) {
    const char *which = io_config_str((io_config *)&S->cfg, sec, "checkpoint", def);
    snprintf(buf, len, "%s/runs/%s/%s.npz", S->dir, name, which);
    return buf;
}

static int model_steps(study *S, const char *name) {
    char sec[300], step[1024], ck[4500], p[4500];
    snprintf(sec, sizeof sec, "model.%s", name);
    const char *config = io_config_str(&S->cfg, sec, "config", NULL);
    if (!config) return cmd_error("analyze: [%s] needs config = models/FILE.cfg", sec);
    if (train_step(S, name, config, io_config_str(&S->cfg, sec, "set", NULL))) return 1;
    ckpt_of(S, sec, name, "last", ck, sizeof ck);
    snprintf(step, sizeof step, "eval.%s", name);
    if (!done(S, step)) {
        eval_cli o = {0};
        eval_defaults(&o);
        o.ckpt = ck, o.threads = S->threads, o.by = S->by;
        int rc = 0;
        if (solo_begin()) rc = eval_run(&o);
        rc = solo_end(rc);
        fflush(stdout);
        if (rc || mark(S, step)) return 1;
    }
    snprintf(step, sizeof step, "embed.%s", name);
    if (!done(S, step)) {
        snprintf(p, sizeof p, "%s/runs/%s/S.csv", S->dir, name);
        embed_cli o = {0};
        embed_defaults(&o);
        o.ckpt = ck, o.out = p, o.threads = S->threads;
        int rc = embed_run(&o);
        fflush(stdout);
        if (rc || mark(S, step)) return 1;
    }
    return 0;
}

// The causal variants: plain, then one per `given` and per `precondition` column.
typedef struct variant {
    char suffix[80], given[64], pre[64];
} variant;

static int variants(study *S, variant *v) {
    int n = 1;
    memset(v, 0, sizeof(variant) * MAXN);
    const char *keys[2] = {"given", "precondition"};
    for (int k = 0; k < 2; k++) {
        const char *s = io_config_str(&S->cfg, "causal", keys[k], NULL);
        if (!s) continue;
        char buf[1024], *it[MAXN];
        snprintf(buf, sizeof buf, "%s", s);
        int m = io_split_list(buf, it, MAXN);
        for (int i = 0; i < m && n < MAXN; i++, n++) {
            snprintf(v[n].suffix, sizeof v[n].suffix, ".%s_%s", k ? "pre" : "given", it[i]);
            snprintf(k ? v[n].pre : v[n].given, 64, "%s", it[i]);
        }
    }
    return n;
}

#define IO_KEY_TYPE causal_cli
static const io_key causal_keys[] = { // [causal] keys with the ranges of galnn causal's flags
    IO_KL(k, 5, 100000, 100), IO_KL(perms, 1, 100000, 1), IO_KD(alpha, IO_KEY_POS, 0.999999, 0.01), IO_KEND};
#undef IO_KEY_TYPE

// The local tests in the S space of one model, one variant.
static int causal_variant(study *S, const char *model, const char *vars, const variant *v) {
    char lat[4400], out[4400];
    snprintf(lat, sizeof lat, "%s/runs/%s/S.csv", S->dir, model);
    snprintf(out, sizeof out, "%s/causal/%s%s", S->dir, model, v->suffix);
    causal_cli o = {0};
    causal_defaults(&o);
    o.latent = lat, o.catalog = S->catalog, o.target = S->target, o.vars = vars, o.out = out;
    o.threads = S->threads, o.seed = S->seed, o.by = S->by;
    o.given = v->given[0] ? v->given : NULL, o.pre = v->pre[0] ? v->pre : NULL;
    if (io_config_keys(&S->cfg, "causal", causal_keys, &o)) return cmd_error("analyze: %s", gn_errmsg());
    if (cmd_strs_split(&o.derive, S->derive, ';')) return 1;
    int rc = causal_run(&o);
    fflush(stdout);
    return rc;
}

static int causal_steps(study *S) {
    const char *models = io_config_str(&S->cfg, "causal", "models", NULL),
               *vars = io_config_str(&S->cfg, "causal", "vars", NULL);
    if (!models && !vars) return 0;
    if (!models || !vars) return cmd_error("analyze: [causal] needs models = NAME, ... and vars = COL, ...");
    char buf[1024], *it[MAXN];
    snprintf(buf, sizeof buf, "%s", models);
    int nm = io_split_list(buf, it, MAXN);
    variant v[MAXN];
    int nv = variants(S, v);
    for (int m = 0; m < nm; m++) {
        int known = 0;
        for (int k = 0; k < S->n_models; k++) known |= !strcmp(S->model[k], it[m]);
        if (!known)
            return cmd_error("analyze: [causal] models names '%s', which has no [model.%s]", it[m], it[m]);
        for (int k = 0; k < nv; k++) {
            char step[1024];
            snprintf(step, sizeof step, "causal.%s%s", it[m], v[k].suffix);
            if (done(S, step)) continue;
            printf("-- local tests in the S space of %s%s\n", it[m], v[k].suffix);
            if (causal_variant(S, it[m], vars, &v[k]) || mark(S, step)) return 1;
        }
    }
    return 0;
}

static int pid_steps(study *S, const char *name) {
    char sec[300], step[1024], rn[3][300], pf[3][4500], ck[4500];
    snprintf(sec, sizeof sec, "pid.%s", name);
    static const char *keys[3] = {"x1", "x2", "x12"};
    for (int k = 0; k < 3; k++) {
        const char *config = io_config_str(&S->cfg, sec, keys[k], NULL);
        if (!config)
            return cmd_error("analyze: [%s] needs x1, x2 and x12 (the three networks' configs)", sec);
        snprintf(rn[k], sizeof rn[k], "%s.%s", name, keys[k]);
        if (train_step(S, rn[k], config, io_config_str(&S->cfg, sec, "set", NULL))) return 1;
        snprintf(pf[k], sizeof pf[k], "%s/runs/%s/test_logp.csv", S->dir, rn[k]);
        snprintf(step, sizeof step, "predict.%s", rn[k]);
        if (done(S, step)) continue;
        predict_cli o = {0};
        predict_defaults(&o);
        o.ckpt = ckpt_of(S, sec, rn[k], "best", ck, sizeof ck), o.out = pf[k], o.which = "test";
        o.threads = S->threads;
        int rc = predict_run(&o);
        fflush(stdout);
        if (rc || mark(S, step)) return 1;
    }
    snprintf(step, sizeof step, "pid.%s", name);
    if (done(S, step)) return 0;
    printf("-- pointwise PID of %s\n", name);
    char out[4400];
    snprintf(out, sizeof out, "%s/pid/%s", S->dir, name);
    pid_cli o = {0};
    pid_defaults(&o);
    o.pointwise = 1, o.p[0] = pf[0], o.p[1] = pf[1], o.p[2] = pf[2], o.catalog = S->catalog;
    o.target = S->target, o.out = out, o.seed = S->seed, o.by = S->by;
    int rc = 0;
    if (solo_begin()) rc = pid_run(&o);
    rc = solo_end(rc);
    fflush(stdout);
    if (rc || mark(S, step)) return 1;
    return 0;
}

// ---- the report: the same content as Markdown and as HTML ----

typedef struct report {
    FILE *md, *html;
} report;

static void html_esc(FILE *f, const char *s) {
    for (; *s; s++) {
        if (*s == '<')
            fputs("&lt;", f);
        else if (*s == '>')
            fputs("&gt;", f);
        else if (*s == '&')
            fputs("&amp;", f);
        else
            fputc(*s, f);
    }
}

static void rp_head(report *R, int level, const char *text) {
    fprintf(R->md, "\n%.*s %s\n\n", level, "######", text);
    fprintf(R->html, "<h%d>", level);
    html_esc(R->html, text);
    fprintf(R->html, "</h%d>\n", level);
}

static void rp_par(report *R, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static void rp_par(report *R, const char *fmt, ...) {
    char buf[8192];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(buf, sizeof buf, fmt, ap);
    va_end(ap);
    fprintf(R->md, "%s\n\n", buf);
    fputs("<p>", R->html);
    html_esc(R->html, buf);
    fputs("</p>\n", R->html);
}

// A table row: cells separated by '|'; header = 1 for the first row.
static void rp_row(report *R, int header, const char *fmt, ...) __attribute__((format(printf, 3, 4)));
static void rp_row(report *R, int header, const char *fmt, ...) {
    char buf[4096];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(buf, sizeof buf, fmt, ap);
    va_end(ap);
    int cols = 1;
    for (char *p = buf; *p; p++) cols += *p == '|';
    fprintf(R->md, "| %s |\n", buf);
    if (header) {
        fputs("|", R->md);
        for (int c = 0; c < cols; c++) fputs("---|", R->md);
        fputs("\n", R->md);
        fputs("<table>\n", R->html);
    }
    fputs("<tr>", R->html);
    char *save = NULL;
    for (char *t = strtok_r(buf, "|", &save); t; t = strtok_r(NULL, "|", &save)) {
        fputs(header ? "<th>" : "<td>", R->html);
        html_esc(R->html, t);
        fputs(header ? "</th>" : "</td>", R->html);
    }
    fputs("</tr>\n", R->html);
}

static void rp_end_table(report *R) {
    fputs("\n", R->md);
    fputs("</table>\n", R->html);
}

// Figures given relative to the report's directory; missing ones are left out.
static void rp_figs(report *R, const char *dir, const char *const *rel, const char *const *caption, int n) {
    int any = 0;
    for (int i = 0; i < n; i++) {
        char p[4600];
        snprintf(p, sizeof p, "%s/%s", dir, rel[i]);
        if (!file_exists(p)) continue;
        fprintf(R->md, "![%s](%s) ", caption[i], rel[i]);
        if (!any) fputs("<p>", R->html);
        fprintf(R->html, "<figure style=\"display:inline-block\"><img src=\"%s\" width=\"420\"><figcaption>",
                rel[i]);
        html_esc(R->html, caption[i]);
        fputs("</figcaption></figure>", R->html);
        any = 1;
    }
    if (any) fputs("\n\n", R->md), fputs("</p>\n", R->html);
}

static const char *label_of(study *S, const char *sec, const char *def) {
    return io_config_str(&S->cfg, sec, "label", def);
}

static void fmt_p(char *buf, size_t len, double p) {
    if (isnan(p))
        snprintf(buf, len, "-");
    else if (p < 1e-300)
        snprintf(buf, len, "< 1e-300");
    else
        snprintf(buf, len, "%.2g", p);
}

static void report_accuracy(study *S, report *R) {
    rp_head(R, 2, "1. Accuracy of the models (test split)");
    rp_par(R, "Point estimate: the mean of p(y) over the bins. Bias and sigma_MAD = 1.4826 MAD of "
              "(pred - true) in dex; eta: fraction with |pred - true| > 3 sigma_MAD; CRPS of p(y).");
    rp_row(R, 1, "model|population|N|bias|sigma_MAD|eta|CRPS|R^2");
    for (int m = 0; m < S->n_models; m++) {
        char p[4500], sec[300];
        snprintf(p, sizeof p, "%s/runs/%s/metrics.json", S->dir, S->model[m]);
        snprintf(sec, sizeof sec, "model.%s", S->model[m]);
        io_json j;
        if (io_json_read(p, &j)) {
            rp_row(R, 0, "%s|(no metrics: %s)||||||", S->model[m], gn_errmsg());
            continue;
        }
        const io_json *t = io_json_path(&j, "targets", S->target, NULL);
        for (int k = 0; t && k < t->n; k++) {
            const io_json *g = &t->kids[k];
            rp_row(R, 0, "%s|%s|%.0f|%.4f|%.4f|%.4f|%.4f|%.4f", label_of(S, sec, S->model[m]), g->key,
                   io_json_num(io_json_get(g, "n"), -1), io_json_num(io_json_get(g, "bias"), -1),
                   io_json_num(io_json_get(g, "sigma_mad"), -1), io_json_num(io_json_get(g, "eta"), -1),
                   io_json_num(io_json_get(g, "crps"), -1), io_json_num(io_json_get(g, "r2"), -1));
        }
        io_json_free(&j);
    }
    rp_end_table(R);
    for (int m = 0; m < S->n_models; m++) {
        char a[300], b[300];
        snprintf(a, sizeof a, "runs/%s/pred_vs_true_%s.png", S->model[m], S->target);
        snprintf(b, sizeof b, "runs/%s/loss.png", S->model[m]);
        const char *rel[2] = {a, b}, *cap[2] = {S->model[m], "training and validation loss"};
        rp_figs(R, S->dir, rel, cap, 2);
    }
}

// One line per variable for the terminal: each model's verdict on the whole test split.
static void print_causal_digest(study *S, char **models, int nm, char **vars, int nv) {
    printf("\n== local tests, all test galaxies: median PE (reference) and KS p-value; * = external\n");
    printf("%-12s", "variable");
    for (int m = 0; m < nm; m++) printf("  %-30s", models[m]);
    printf("\n");
    io_json js[MAXN];
    for (int m = 0; m < nm; m++) {
        char p[4500];
        snprintf(p, sizeof p, "%s/causal/%s/summary.json", S->dir, models[m]);
        if (io_json_read(p, &js[m])) memset(&js[m], 0, sizeof js[m]);
    }
    for (int v = 0; v < nv; v++) {
        printf("%-12s", vars[v]);
        for (int m = 0; m < nm; m++) {
            const io_json *g = io_json_path(&js[m], "variables", vars[v], "all", NULL);
            char pb[32], cell[64];
            fmt_p(pb, sizeof pb, io_json_num(io_json_get(g, "p_ks_pe"), -1));
            const io_json *ext = io_json_get(g, "external");
            snprintf(cell, sizeof cell, "%.3f (%.3f) p %s%s",
                     io_json_num(io_json_get(g, "pe_p16_p50_p84"), 1),
                     io_json_num(io_json_get(g, "pe_perm_p16_p50_p84"), 1), pb, ext && ext->num ? " *" : "");
            printf("  %-30s", cell);
        }
        printf("\n");
    }
    for (int m = 0; m < nm; m++) io_json_free(&js[m]);
}

static void report_causal(study *S, report *R) {
    const char *models = io_config_str(&S->cfg, "causal", "models", NULL),
               *vars = io_config_str(&S->cfg, "causal", "vars", NULL);
    if (!models || !vars) return;
    rp_head(R, 2, "2. Local tests in S space");
    rp_par(
        R,
        "For each test galaxy, its K nearest training galaxies in the model's S space; over them the local "
        "Pearson r between %s and each variable, and the predictive efficiency PE (local R^2 of a quadratic "
        "fit), "
        "each against a reference with %s permuted among the neighbours. A variable is external (information "
        "the S space does not hold) when a KS test of PE against the reference gives p < alpha and the "
        "median "
        "PE is above the reference's.",
        S->target, S->target);
    char mb[1024], vb[1024], *mi[MAXN], *vi[32];
    snprintf(mb, sizeof mb, "%s", models);
    snprintf(vb, sizeof vb, "%s", vars);
    int nm = io_split_list(mb, mi, MAXN), nvar = io_split_list(vb, vi, 32);
    variant v[MAXN];
    int nv = variants(S, v);
    for (int m = 0; m < nm; m++)
        for (int k = 0; k < nv; k++) {
            char p[4500], title[512], sec[300];
            snprintf(sec, sizeof sec, "model.%s", mi[m]);
            snprintf(title, sizeof title, "%s%s%s%s%s", label_of(S, sec, mi[m]),
                     v[k].given[0] ? ", given " : "", v[k].given, v[k].pre[0] ? ", pre-conditioned on " : "",
                     v[k].pre);
            rp_head(R, 3, title);
            snprintf(p, sizeof p, "%s/causal/%s%s/summary.json", S->dir, mi[m], v[k].suffix);
            io_json j;
            if (io_json_read(p, &j)) {
                rp_par(R, "(not available: %s)", gn_errmsg());
                continue;
            }
            rp_row(R, 1, "variable|population|N|r 16/50/84|PE 16/50/84|reference PE|KS p(PE)|external");
            for (int q = 0; q < nvar; q++) {
                const io_json *var = io_json_path(&j, "variables", vi[q], NULL);
                for (int g = 0; var && g < var->n; g++) {
                    const io_json *x = &var->kids[g], *r = io_json_get(x, "r_p16_p50_p84"),
                                  *pe = io_json_get(x, "pe_p16_p50_p84");
                    const io_json *ext = io_json_get(x, "external");
                    char pb[32];
                    fmt_p(pb, sizeof pb, io_json_num(io_json_get(x, "p_ks_pe"), -1));
                    rp_row(R, 0, "%s|%s|%.0f|%.3f / %.3f / %.3f|%.3f / %.3f / %.3f|%.3f|%s|%s", vi[q], x->key,
                           io_json_num(io_json_get(x, "n"), -1), io_json_num(r, 0), io_json_num(r, 1),
                           io_json_num(r, 2), io_json_num(pe, 0), io_json_num(pe, 1), io_json_num(pe, 2),
                           io_json_num(io_json_get(x, "pe_perm_p16_p50_p84"), 1), pb,
                           ext && ext->num ? "yes" : "no");
                }
            }
            rp_end_table(R);
            io_json_free(&j);
            char rels[33][300], caps[33][300];
            const char *rp[33], *cp[33];
            int nf = 0;
            snprintf(rels[nf], 300, "causal/%s%s/pe.png", mi[m], v[k].suffix),
                snprintf(caps[nf], 300, "PE per variable (Fig. 4/5 style)"), nf++;
            for (int q = 0; q < nvar && nf < 33; q++, nf++)
                snprintf(rels[nf], 300, "causal/%s%s/r_%s.png", mi[m], v[k].suffix, vi[q]),
                    snprintf(caps[nf], 300, "local r: %s (Fig. 3 style)", vi[q]);
            for (int q = 0; q < nf; q++) rp[q] = rels[q], cp[q] = caps[q];
            rp_figs(R, S->dir, rp, cp, nf);
        }
    print_causal_digest(S, mi, nm, vi, nvar);
}

static void report_pid(study *S, report *R) {
    if (!S->n_pid) return;
    rp_head(R, 2, "3. Partial information decomposition");
    rp_par(
        R,
        "Pointwise MMI decomposition of the information the inputs X1 and X2 carry about %s, from the cross-"
        "entropies of three networks (X1, X2, X1 and X2) on the test split: Red (shared), Unq1, Unq2 "
        "(unique) and "
        "Syn (synergistic), in nats; mean over galaxies with the 16th-84th percentiles of 1000 bootstrap "
        "means.",
        S->target);
    static const char *atoms[4] = {"red", "unq1", "unq2", "syn"}, *names[4] = {"Red", "Unq1", "Unq2", "Syn"};
    for (int q = 0; q < S->n_pid; q++) {
        char sec[300], title[600], p[4500];
        snprintf(sec, sizeof sec, "pid.%s", S->pid[q]);
        const char *l1 = io_config_str(&S->cfg, sec, "label1", "X1"),
                   *l2 = io_config_str(&S->cfg, sec, "label2", "X2");
        snprintf(title, sizeof title, "%s: X1 = %s, X2 = %s", S->pid[q], l1, l2);
        rp_head(R, 3, title);
        snprintf(p, sizeof p, "%s/pid/%s/pid.json", S->dir, S->pid[q]);
        io_json j;
        if (io_json_read(p, &j)) {
            rp_par(R, "(not available: %s)", gn_errmsg());
            continue;
        }
        const io_json *pops = io_json_get(&j, "populations");
        rp_row(R, 1, "population|N|Red|Unq1 (%s)|Unq2 (%s)|Syn", l1, l2);
        io_errbars g[MAXN];
        double vals[MAXN][12];
        int ng = 0;
        printf("\n== PID %s (nats, mean [16%%, 84%%]): X1 = %s, X2 = %s\n", S->pid[q], l1, l2);
        for (int k = 0; pops && k < pops->n; k++) {
            const io_json *x = &pops->kids[k];
            char cell[4][64];
            for (int a = 0; a < 4; a++) {
                const io_json *v = io_json_get(x, atoms[a]);
                snprintf(cell[a], 64, "%.3f [%.3f, %.3f]", io_json_num(v, 0), io_json_num(v, 1),
                         io_json_num(v, 2));
                if (ng < MAXN)
                    vals[ng][a] = io_json_num(v, 0), vals[ng][4 + a] = io_json_num(v, 1),
                    vals[ng][8 + a] = io_json_num(v, 2);
            }
            rp_row(R, 0, "%s|%.0f|%s|%s|%s|%s", x->key, io_json_num(io_json_get(x, "n"), -1), cell[0],
                   cell[1], cell[2], cell[3]);
            printf("  %-10s n %-5.0f Red %s  Unq1 %s  Unq2 %s  Syn %s\n", x->key,
                   io_json_num(io_json_get(x, "n"), -1), cell[0], cell[1], cell[2], cell[3]);
            if (ng < MAXN) g[ng] = (io_errbars){x->key, vals[ng], vals[ng] + 4, vals[ng] + 8}, ng++;
        }
        rp_end_table(R);
        char fig[4500], t2[700], rel[400];
        snprintf(fig, sizeof fig, "%s/pid/%s/pid.png", S->dir, S->pid[q]);
        snprintf(t2, sizeof t2, "PID of %s: X1 = %s, X2 = %s (mean, 16-84%% bootstrap)", S->target, l1, l2);
        if (ng && io_plot_errorbars(fig, t2, "information (nats)", names, 4, g, ng, 0, "0"))
            fprintf(stderr, "analyze: warning: %s\n", gn_errmsg());
        snprintf(rel, sizeof rel, "pid/%s/pid.png", S->pid[q]);
        const char *rp[1] = {rel}, *cp[1] = {"information atoms per population (Fig. 6 style)"};
        rp_figs(R, S->dir, rp, cp, 1);
        io_json_free(&j);
    }
}

static int write_report(study *S) {
    char pm[4400], ph[4400], tm[4500], th[4500];
    snprintf(pm, sizeof pm, "%s/report.md", S->dir);
    snprintf(ph, sizeof ph, "%s/report.html", S->dir);
    snprintf(tm, sizeof tm, "%s.tmp", pm);
    snprintf(th, sizeof th, "%s.tmp", ph);
    report R = {fopen(tm, "w"), fopen(th, "w")};
    if (!R.md || !R.html) {
        if (R.md) fclose(R.md);
        if (R.html) fclose(R.html);
        return cmd_error("analyze: cannot write %s: %s", pm, strerror(errno));
    }
    fputs("<!DOCTYPE html>\n<html><head><meta charset=\"utf-8\"><title>galnn "
          "analysis</title><style>body{font-family:sans-serif;"
          "max-width:1400px;margin:2em}table{border-collapse:collapse;margin:1em 0}td,th{border:1px solid "
          "#bbb;padding:3px 8px;"
          "text-align:right}th{background:#eee}</style></head><body>\n",
          R.html);
    rp_head(&R, 1, "galnn analysis: why the models estimate stellar mass");
    rp_par(&R,
           "Catalog %s; target %s; populations by %s. Configuration: analysis.cfg in this directory; every "
           "number "
           "below is read from the run directories next to it (runs/, causal/, pid/).",
           S->catalog, S->target, S->by ? S->by : "(none)");
    report_accuracy(S, &R);
    report_causal(S, &R);
    report_pid(S, &R);
    fputs("</body></html>\n", R.html);
    int bad = fclose(R.md) | fclose(R.html);
    if (bad || rename(tm, pm) || rename(th, ph)) return cmd_error("analyze: cannot write %s", pm);
    printf("\nreport: %s (and %s)\n", pm, ph);
    return 0;
}

static int rm_entry(const char *path, const struct stat *st, int flag, struct FTW *ftw) {
    (void)st, (void)flag, (void)ftw;
    return remove(path) && errno != ENOENT ? -1 : 0;
}

// Delete what an analysis wrote in dir (only its own subdirectories and files).
static int wipe(const char *dir) {
    const char *own[] = {"state", "runs", "causal", "pid", "report.md", "report.html", "analysis.cfg"};
    for (int k = 0; k < 7; k++) {
        char p[4400];
        snprintf(p, sizeof p, "%s/%s", dir, own[k]);
        if (file_exists(p) && nftw(p, rm_entry, 16, FTW_DEPTH | FTW_PHYS))
            return cmd_error("analyze: cannot delete %s: %s", p, strerror(errno));
    }
    return 0;
}

typedef struct analyze_cli {
    const char *config, *dir, *catalog, *images;
    long threads;
    int replace;
    cmd_strs sets;
} analyze_cli;

#define CLI analyze_cli
static const cmd_flag analyze_flags[] = {
    F_STR("--config", config, "FILE", "the analysis configuration (models/demo_analysis.cfg)"),
    F_OUT(dir, "DIR", "the study's directory"),
    F_STR("--catalog", catalog, "CSV", "[analysis] catalog"),
    F_STR("--images", images, "TEMPLATE", "[analysis] images"),
    F_ON("--replace", replace, "start over if DIR holds a different analysis"),
    F_THREADS(threads),
    F_END};

// The study's configuration (file + overrides) and what it names.
static int study_open(study *S, const analyze_cli *o) {
    char preset[4400];
    if (io_config_read(cmd_find_preset(o->config, preset, sizeof preset), &S->cfg))
        return cmd_error("%s", gn_errmsg());
    if (o->catalog && io_config_put(&S->cfg, "analysis", "catalog", o->catalog)) return 1;
    if (o->images && io_config_put(&S->cfg, "analysis", "images", o->images)) return 1;
    for (int k = 0; k < o->sets.n; k++)
        if (io_config_set(&S->cfg, o->sets.v[k])) return cmd_error("analyze: %s", gn_errmsg());
    S->dir = o->dir;
    S->threads = o->threads;
    S->catalog = io_config_str(&S->cfg, "analysis", "catalog", NULL);
    S->images = io_config_str(&S->cfg, "analysis", "images", NULL);
    S->target = io_config_str(&S->cfg, "analysis", "target", "logmstar");
    S->by = io_config_str(&S->cfg, "analysis", "by", NULL);
    S->derive = io_config_str(&S->cfg, "analysis", "derive", NULL);
    if (io_config_int(&S->cfg, "analysis", "seed", 1, &S->seed)) return cmd_error("%s", gn_errmsg());
    if (!S->catalog) return cmd_error("analyze: no catalog: give --catalog or [analysis] catalog");
    S->n_models = io_config_sections(&S->cfg, "model.", S->model, MAXN);
    S->n_pid = io_config_sections(&S->cfg, "pid.", S->pid, MAXN);
    for (int k = 0; k < S->n_models; k++) S->model[k] += strlen("model.");
    for (int k = 0; k < S->n_pid; k++) S->pid[k] += strlen("pid.");
    if (!S->n_models && !S->n_pid)
        return cmd_error("%s: no [model.NAME] or [pid.NAME] sections: nothing to analyse", o->config);
    return 0;
}

// The run directory and its configuration: a different study is refused, or replaced.
static int study_dir(const analyze_cli *o, const char *text) {
    const char *dir = o->dir;
    char p[4400];
    snprintf(p, sizeof p, "%s/analysis.cfg", dir);
    FILE *f = fopen(p, "rb");
    if (f) {
        size_t L = strlen(text);
        char *old = gn_malloc(L + 2);
        size_t got = old ? fread(old, 1, L + 1, f) : 0;
        fclose(f);
        int same = old && got == L && !memcmp(old, text, L);
        free(old);
        if (!same && !o->replace)
            return cmd_error(
                "analyze: %s holds a different analysis (%s); use a new --out, or --replace to start over",
                dir, p);
        if (!same) {
            printf("galnn analyze: %s held a different analysis: starting over (--replace)\n", dir);
            if (wipe(dir)) return 1;
        } else
            printf("galnn analyze: continuing %s\n", dir);
    }
    const char *subs[4] = {"state", "runs", "causal", "pid"};
    if (mkdir(dir, 0777) && errno != EEXIST)
        return cmd_error("analyze: cannot create %s: %s", dir, strerror(errno));
    for (int k = 0; k < 4; k++) {
        snprintf(p, sizeof p, "%s/%s", dir, subs[k]);
        if (mkdir(p, 0777) && errno != EEXIST)
            return cmd_error("analyze: cannot create %s: %s", p, strerror(errno));
    }
    snprintf(p, sizeof p, "%s/analysis.cfg", dir);
    if (!file_exists(p)) {
        if (io_write_atomic(p, text, strlen(text))) return cmd_error("%s", gn_errmsg());
        printf("galnn analyze: %s -> %s\n", o->config, dir);
    }
    return 0;
}

static int analyze_run(const void *p) {
    const analyze_cli o = *(const analyze_cli *)p;
    if (!o.config || !o.dir) return cmd_error("analyze: give --config analysis.cfg and --out DIR");
    study S;
    memset(&S, 0, sizeof S);
    char *text = NULL;
    int rc = study_open(&S, &o);
    if (!rc && !(text = io_config_text(&S.cfg))) rc = cmd_error("out of memory");
    if (!rc && solo_begin()) rc = study_dir(&o, text);
    rc = solo_end(rc);
    if (!rc) {
        gn_set_threads((int)o.threads);
        double t0 = gn_now();
        for (int k = 0; k < S.n_models && !rc; k++) rc = model_steps(&S, S.model[k]);
        if (!rc) rc = causal_steps(&S);
        for (int k = 0; k < S.n_pid && !rc; k++) rc = pid_steps(&S, S.pid[k]);
        if (!rc && solo_begin()) rc = write_report(&S);
        rc = solo_end(rc);
        if (!rc) printf("analysis done in %.0f s\n", gn_now() - t0);
    }
    free(text);
    io_config_free(&S.cfg);
    return rc ? 1 : 0;
}

CMD_DEF(cmd_analyze, "analyze",
        "the whole study from one config: latent models, local tests, MI triplets, PID, a report",
        analyze_usage, analyze_flags, sizeof(analyze_cli), NULL, analyze_run, offsetof(analyze_cli, sets),
        NULL);
