// The mock survey. Every galaxy is drawn from its own random stream
// (seed, index), so the survey is the same whatever the thread count, and a
// galaxy does not change when N does. The model's equations are IO_MOCK_DOC
// below (printed by `galnn help mock`); the code follows them line by line.
#include "mock.h"

#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "../common/gn_common.h"
#include "../common/gn_rng.h"
#include "file.h"
#include "image.h"
#include "npy.h"

const char *const IO_MOCK_BANDS[5] = {"u", "g", "r", "i", "z"};
const char *const IO_MOCK_TYPES[3] = {"sf", "passive", "other"};

const char IO_MOCK_DOC[] =
    "The galnn mock survey: how every galaxy is made.\n"
    "\n"
    "  redshift   p(z) ~ z^2 exp(-(z/0.1)^1.5) on [0.01, 0.3]; flat LCDM (H0 70, Om 0.3)\n"
    "  mass       log M* ~ Schechter (alpha -1.3, log M_c 10.8) on [9, 12], then the\n"
    "             magnitude limit r < 17.77 (rejection, like the SDSS main sample)\n"
    "  type       f_passive = 1/(1+exp(-(logM-10.6)/0.25)); 12 % green valley (\"other\")\n"
    "  SFR        log SFR = 0.76 (logM - 10) - 0.1 + 2 log10(1+z) + offset(type) + N(0, 0.3)\n"
    "             offsets: star-forming 0, other -0.9, passive -2.0\n"
    "  structure  Sersic n: SF ln N(ln 1.1, 0.25), other ln N(ln 2.2, 0.3), passive ln N(ln 4, 0.2);\n"
    "             log R_e[kpc] = 0.22 (logM-10.7) + 0.72 (late) or 0.75 (logM-10.7) + 0.60 (early),\n"
    "             scatter 0.15 dex; discs: q = sqrt(0.2^2 + (1-0.2^2) cos^2 i), cos i ~ U(0,1);\n"
    "             spheroids: q ~ U(0.55, 1)\n"
    "  colour     (g-r)_0 = 0.36 + 0.33 / (1 + exp((log sSFR + 10.6)/0.35)) + 0.04 (logM-10) + N(0, 0.03)\n"
    "             u-g = 1.0 + 1.9 d, r-i = 0.2 + 0.45 d, i-z = 0.12 + 0.35 d, d = (g-r)_0 - 0.4\n"
    "  M/L        log(M/L_r) = -0.306 + 1.097 (g-r)_0 + 0.05 (n - 2) + N(0, 0.04)\n"
    "             (the n term: at fixed colour, bulge-dominated systems are older/heavier — the\n"
    "             mass information beyond integrated colour that images carry)\n"
    "  dust       A_V = A_0 (1 - 1.2 log10 q) for discs, A_0 = clip(0.25 + 0.35 (logM-10), 0.05, 1.0);\n"
    "             0.05 for passive; A_b/A_V = 1.58, 1.19, 0.87, 0.68, 0.49 (u..z). Edge-on discs are\n"
    "             reddened by dust, not age: photometry alone confuses the two, the image shows q.\n"
    "  photometry M_r = 4.65 - 2.5 log10(M*/(M/L_r)) + A_r; m_b = M_b + DM(z) + K_b + R_b E(B-V),\n"
    "             K_b = z k_b (1 + 2 d), k = 3.0, 2.0, 1.0, 0.5, 0.3; R_b = 4.24, 3.30, 2.29, 1.70, 1.26;\n"
    "             E(B-V) ~ Exp(mean 0.035)\n"
    "  images     0.396\"/px; Sersic profile per band with R_e,b = R_e 10^(-g (b - 2)), g = 0.04 (SF),\n"
    "             0.02 (other, passive) (bluer outskirts); Gaussian PSF FWHM 1.53, 1.44, 1.32, 1.26,\n"
    "             1.29\"; sky noise per pixel 10^(-0.4 (mu_b - 22.5)) 0.396 nmgy, mu = 24.2, 25.1, 24.7,\n"
    "             24.1, 22.8 mag/arcsec^2; pixel values in nanomaggies\n"
    "  errors     sigma_F = sigma_pix sqrt(pi (2 R_e + 2 sigma_psf)^2 px), sigma_m = 1.0857 sigma_F/F +\n"
    "             0.01; a band with S/N < 2 gets mag = magerr = -9999 (null)\n"
    "  WISE       W1 = r - 3.3 - 1.2 d + 0.9 A_r (Vega); W1-W2 = 0.05 + 0.1 (log sSFR + 11) (+0.6 for\n"
    "             AGN, p = 0.03 for logM > 10.5); W2-W3 = 1.0 + 2.5 / (1 + exp(-(log sSFR + 10.8)/0.4));\n"
    "             W3 null (-9999) when fainter than 12.5\n"
    "  kinematics M_tot(<R_e) = 0.5 M* / (1 - f_DM), log f_DM = log 0.3 - 0.25 (logM - 10.5) (discs),\n"
    "             0.6 times that for spheroids; V_c = sqrt(G M_tot / R_e); V(R) = V_c tanh(2.5 R/R_e) /\n"
    "             tanh(2.5); rotation support 1.0 (SF), 0.6 (other), 0.3 (passive);\n"
    "             sigma(R) = s V_c exp(-R/2R_e) + 10 km/s, s = 0.35, 0.55, 0.75; maps over +-3 R_e.\n"
    "\n"
    "Catalog columns: id, zspec, ebv, mag_{ugriz}, magerr_{ugriz}, flux_{ugriz} (mJy = 3.631e-3 "
    "nanomaggies), w1, w2, w3,\n"
    "w1err, w2err, w3err (Vega), sersic_n, ba, r50 (observed morphology, r50 in arcsec), type "
    "(sf/passive/other),\n"
    "and the truth: logmstar, logsfr, z, re_kpc, n_true, q_true, av, gr0, logml_r, oh12 (gas-phase 12 + log "
    "O/H,\n"
    "null when not measurable: probability 1 / (1 + exp(-(log sSFR + 10.5) / 0.3))) (+ logmtot, fdm and the\n"
    "observed sigma_e (km/s, dispersion at R_e/2, 5 %), lambda_re (spin proxy V sin i / sqrt(V^2 sin^2 i +\n"
    "sigma(R_e)^2), +-0.03) and logl_r (log L_r/Lsun from mag_r, spec-z, E(B-V); no K-correction) with\n"
    "--kinematics).\n"
    "Files: cutouts/{id}.fits (5 x S x S cube, BANDS = u,g,r,i,z, nanomaggies per pixel); with --png,\n"
    "png/{id}_{band}.png (16-bit, code = round(1000 x + 1000)); with --npy, npy/{id}.npy (5, S, S) float32;\n"
    "with --kinematics, kin/{id}.fits (2 x K x K: line-of-sight velocity, dispersion; km/s; +-3 R_e);\n"
    "with --spectra, spectra/{id}.npy (2 x 3000: flux density, inverse variance, 0 = masked) on the "
    "observed-frame\n"
    "grid spectra/wave.npy (log-spaced 3600-9200 Å): old + young continua (the old one with a 4000 Å "
    "break) mixed\n"
    "by sSFR, dust, [O II], Hβ, [O III], Hα, [N II] (EW(Hα) = 10^(0.9 (log sSFR + 10) + 1.3) Å, "
    "[N II]/Hα rising\n"
    "with mass), S/N ~ 12, the 5577 Å sky line and 0.5 % bad pixels masked.\n";

static const double A_OVER_AV[5] = {1.58, 1.19, 0.87, 0.68, 0.49};
static const double R_GAL[5] = {4.24, 3.30, 2.29, 1.70, 1.26};
static const double K_COEF[5] = {3.0, 2.0, 1.0, 0.5, 0.3};
static const double PSF_FWHM[5] = {1.53, 1.44, 1.32, 1.26, 1.29};
static const double SKY_MU[5] = {24.2, 25.1, 24.7, 24.1, 22.8};
#define PIXSCALE 0.396
#define RLIM 17.77

static double gauss(gn_rng *r) { return gn_rng_normal(r); }
static double unif(gn_rng *r) { return gn_rng_uniform(r); }

// Comoving distance in Mpc, flat LCDM (H0 = 70, Om = 0.3), Simpson's rule.
static double comoving_mpc(double z) {
    const int n = 200;
    double h = z / n, s = 0;
    for (int i = 0; i <= n; i++) {
        double zz = i * h, e = 1.0 / sqrt(0.3 * pow(1 + zz, 3) + 0.7);
        s += e * (i == 0 || i == n ? 1 : (i % 2 ? 4 : 2));
    }
    return 299792.458 / 70.0 * s * h / 3.0;
}

static double sersic_b(double n) { return 2 * n - 1.0 / 3 + 4 / (405 * n) + 46 / (25515 * n * n); }

static double clampd(double x, double lo, double hi) { return x < lo ? lo : x > hi ? hi : x; }

static gn_rng galaxy_rng(uint64_t seed, int i, uint64_t purpose) {
    gn_rng r;
    gn_rng_seed(&r, seed ^ (0x9e3779b97f4a7c15ULL * (uint64_t)(i + 1)), GN_STREAM_DATA + 16 * purpose);
    return r;
}

// What the survey measures of galaxy g: fluxes, magnitudes and errors (nulls below S/N 2), WISE magnitudes,
// spec-z and the structural fits, drawing from r (after the galaxy's own draws).
static void measure(io_mock_galaxy *g, gn_rng *rr) {
    gn_rng r = *rr;
    for (int b = 0; b < 5; b++) {
        double F = pow(10, -0.4 * (g->mag_true[b] - 22.5));
        double sig_pix = pow(10, -0.4 * (SKY_MU[b] - 22.5)) * PIXSCALE;
        double rpx = 2 * g->re_arcsec / PIXSCALE + 2 * PSF_FWHM[b] / 2.355 / PIXSCALE;
        double sF = sig_pix * sqrt(M_PI * rpx * rpx);
        double Fo = F + sF * gauss(&r);
        g->flux[b] =
            Fo * 3.631e-3; // mJy: nanomaggies would reach the |v| >= 9000 null sentinels for bright galaxies
        if (Fo / sF < 2) {
            g->mag[b] = g->magerr[b] = -9999;
        } else {
            g->magerr[b] = 1.0857 * sF / Fo + 0.01;
            g->mag[b] = 22.5 - 2.5 * log10(Fo) + 0.01 * gauss(&r);
        }
    }
    double lssfr = g->logsfr - g->logm, d = g->gr0 - 0.4, ar = A_OVER_AV[2] * g->av;
    g->w[0] = g->mag_true[2] - 3.3 - 1.2 * d + 0.9 * ar;
    double w12 = 0.05 + 0.1 * (lssfr + 11) + (g->logm > 10.5 && unif(&r) < 0.03 ? 0.6 : 0);
    g->w[1] = g->w[0] - w12;
    g->w[2] = g->w[1] - (1.0 + 2.5 / (1 + exp(-(lssfr + 10.8) / 0.4)));
    static const double wfloor[3] = {0.02, 0.03, 0.05}, wscale[3] = {0.03, 0.05, 0.2},
                        wref[3] = {15, 14.5, 11};
    for (int k = 0; k < 3; k++) {
        g->werr[k] = wfloor[k] + wscale[k] * pow(10, 0.4 * (g->w[k] - wref[k]));
        g->w[k] += g->werr[k] * gauss(&r);
    }
    if (g->w[2] > 12.5) g->w[2] = g->werr[2] = -9999;
    g->zspec = g->z + 3e-5 * gauss(&r);
    g->n_obs = g->n * exp(0.1 * gauss(&r));
    g->ba_obs = clampd(g->q + 0.03 * gauss(&r), 0.05, 1.0);
    g->r50_obs = g->re_arcsec * exp(0.05 * gauss(&r));
    *rr = r;
}

void io_mock_draw(uint64_t seed, int i, io_mock_galaxy *g) {
    memset(g, 0, sizeof *g);
    gn_rng r = galaxy_rng(seed, i, 0);
    snprintf(g->id, sizeof g->id, "G%06d", i + 1);
    for (int tries = 0;; tries++) {
        // redshift: rejection from U(0.01, 0.3) against z^2 exp(-(z/0.1)^1.5) (max at z = 0.1 (4/3)^(2/3))
        double zmax = 0.1 * pow(4.0 / 3.0, 2.0 / 3.0), zpk = zmax * zmax * exp(-pow(zmax / 0.1, 1.5));
        do g->z = 0.01 + 0.29 * unif(&r);
        while (unif(&r) * zpk > g->z * g->z * exp(-pow(g->z / 0.1, 1.5)));
        // mass: Schechter in dex, phi ~ 10^((alpha+1)(x - xc)) exp(-10^(x - xc)), by rejection on [9, 12]
        double a1 = -0.3, xc = 10.8, pmax = 0;
        for (double x = 9; x <= 12; x += 0.01) {
            double p = pow(10, a1 * (x - xc)) * exp(-pow(10, x - xc));
            if (p > pmax) pmax = p;
        }
        do g->logm = 9 + 3 * unif(&r);
        while (unif(&r) * pmax > pow(10, a1 * (g->logm - xc)) * exp(-pow(10, g->logm - xc)));
        // type
        double fp = 1 / (1 + exp(-(g->logm - 10.6) / 0.25)), u = unif(&r);
        g->type = u < 0.12 ? 2 : u < 0.12 + 0.88 * fp ? 1 : 0;
        static const double sfr_off[3] = {0, -2.0, -0.9};
        g->logsfr = 0.76 * (g->logm - 10) - 0.1 + 2 * log10(1 + g->z) + sfr_off[g->type] + 0.3 * gauss(&r);
        double lssfr = g->logsfr - g->logm;
        // structure
        static const double nmu[3] = {1.1, 4.0, 2.2}, nsd[3] = {0.25, 0.2, 0.3};
        g->n = clampd(exp(log(nmu[g->type]) + nsd[g->type] * gauss(&r)), 0.5, 6.0);
        int early = g->type == 1 || (g->type == 2 && g->n > 2.5);
        double lre = early ? 0.75 * (g->logm - 10.7) + 0.60 : 0.22 * (g->logm - 10.7) + 0.72;
        g->re_kpc = pow(10, lre + 0.15 * gauss(&r));
        int disc = g->type == 0 || (g->type == 2 && !early);
        if (disc) {
            g->cosi = unif(&r);
            g->q = sqrt(0.04 + 0.96 * g->cosi * g->cosi);
        } else {
            g->q = 0.55 + 0.45 * unif(&r);
            g->cosi = sqrt(fmax((g->q * g->q - 0.04) / 0.96, 0));
        }
        g->pa = M_PI * unif(&r);
        // stellar populations and dust
        g->gr0 = 0.36 + 0.33 / (1 + exp((lssfr + 10.6) / 0.35)) + 0.04 * (g->logm - 10) + 0.03 * gauss(&r);
        g->logml_r = -0.306 + 1.097 * g->gr0 + 0.05 * (g->n - 2) + 0.04 * gauss(&r);
        g->av = disc ? clampd(0.25 + 0.35 * (g->logm - 10), 0.05, 1.0) * (1 - 1.2 * log10(g->q)) : 0.05;
        g->ebv = -0.035 * log(1 - unif(&r));
        double d = g->gr0 - 0.4;
        double col[5]; // absolute magnitudes relative to r, dust-free
        col[2] = 0;
        col[1] = g->gr0;
        col[0] = col[1] + 1.0 + 1.9 * d;
        col[3] = -(0.2 + 0.45 * d);
        col[4] = col[3] - (0.12 + 0.35 * d);
        double dc = comoving_mpc(g->z), dl = dc * (1 + g->z), da = dc / (1 + g->z);
        double dm = 5 * log10(dl * 1e5); // D_L in units of 10 pc
        double mabs_r = 4.65 - 2.5 * (g->logm - g->logml_r);
        for (int b = 0; b < 5; b++)
            g->mag_true[b] = mabs_r + col[b] + A_OVER_AV[b] * g->av + dm + g->z * K_COEF[b] * (1 + 2 * d) +
                             R_GAL[b] * g->ebv;
        g->re_arcsec = g->re_kpc / (da * 1e3) * 206264.806;
        if (g->mag_true[2] < RLIM || tries > 1000) break; // magnitude limit
    }
    { // gas-phase metallicity (its own stream: the other draws are unchanged): a mass-metallicity relation
        // lowered at high specific SFR, measurable with a probability rising with the sSFR (emission lines)
        gn_rng rm = galaxy_rng(seed, i, 2);
        double lssfr = g->logsfr - g->logm, x = g->logm - 10;
        g->oh12 = 8.9 + 0.3 * x - 0.08 * x * x - 0.1 * (lssfr + 10) + 0.07 * gauss(&rm);
        if (unif(&rm) >= 1 / (1 + exp(-(lssfr + 10.5) / 0.3))) g->oh12 = NAN;
    }
    measure(g, &r);
    // dynamics
    double fdm = 0.3 * pow(10, -0.25 * (g->logm - 10.5));
    if (g->type == 1) fdm *= 0.6;
    g->fdm = clampd(fdm, 0.02, 0.9);
    g->logmtot = g->logm + log10(0.5 / (1 - g->fdm));
}

// Separable Gaussian blur with zero boundaries.
static void blur(float *im, int S, double sigma, float *tmp) {
    int R = (int)ceil(4 * sigma);
    if (R > 31) R = 31;
    double k[64], ks = 0;
    for (int i = -R; i <= R; i++) ks += k[i + R] = exp(-0.5 * i * i / (sigma * sigma));
    for (int i = 0; i <= 2 * R; i++) k[i] /= ks;
    for (int y = 0; y < S; y++)
        for (int x = 0; x < S; x++) {
            double s = 0;
            for (int i = -R; i <= R; i++)
                if (x + i >= 0 && x + i < S) s += k[i + R] * im[y * S + x + i];
            tmp[y * S + x] = (float)s;
        }
    for (int y = 0; y < S; y++)
        for (int x = 0; x < S; x++) {
            double s = 0;
            for (int i = -R; i <= R; i++)
                if (y + i >= 0 && y + i < S) s += k[i + R] * tmp[(y + i) * S + x];
            im[y * S + x] = (float)s;
        }
}

void io_mock_render(uint64_t seed, int i, const io_mock_galaxy *g, int S, float *img) {
    gn_rng r = galaxy_rng(seed, i, 1);
    double cx = (S - 1) / 2.0 + (unif(&r) - 0.5), cy = (S - 1) / 2.0 + (unif(&r) - 0.5);
    double cs = cos(g->pa), sn = sin(g->pa), n = g->n, bn = sersic_b(n);
    double grad = g->type == 0 ? 0.04 : 0.02;
    float *tmp = malloc(sizeof(float) * (size_t)S * S);
    for (int b = 0; b < 5; b++) {
        float *im = img + (size_t)b * S * S;
        double re = fmax(g->re_arcsec / PIXSCALE * pow(10, -grad * (b - 2)), 0.3); // pixels
        double F = pow(10, -0.4 * (g->mag_true[b] - 22.5));
        // I_e from the analytic total: F = 2 pi q re^2 n e^bn bn^(-2n) Gamma(2n) I_e
        double Ie = F / (2 * M_PI * g->q * re * re * n * exp(bn) * pow(bn, -2 * n) * tgamma(2 * n));
        for (int y = 0; y < S; y++)
            for (int x = 0; x < S; x++) {
                double dx0 = x - cx, dy0 = y - cy;
                double d2 = dx0 * dx0 + dy0 * dy0; // oversample where the profile is steep
                int os = d2 < 9 ? 8 : d2 < 64 ? 3 : 1;
                double s = 0;
                for (int a = 0; a < os; a++)
                    for (int c = 0; c < os; c++) {
                        double dx = dx0 + (a + 0.5) / os - 0.5, dy = dy0 + (c + 0.5) / os - 0.5;
                        double u = dx * cs + dy * sn, v = -dx * sn + dy * cs;
                        double rr = sqrt(u * u + (v / g->q) * (v / g->q)) / re;
                        s += exp(-bn * (pow(rr, 1 / n) - 1));
                    }
                im[y * S + x] = (float)(Ie * s / (os * os));
            }
        blur(im, S, PSF_FWHM[b] / 2.355 / PIXSCALE, tmp);
        double sig = pow(10, -0.4 * (SKY_MU[b] - 22.5)) * PIXSCALE;
        for (int p = 0; p < S * S; p++) im[p] += (float)(sig * gauss(&r));
    }
    free(tmp);
}

void io_mock_spectrum(uint64_t seed, int i, const io_mock_galaxy *g, const double *wl, int n, float *flux,
                      float *ivar) {
    gn_rng r = galaxy_rng(seed, i, 3);
    double lssfr = g->logsfr - g->logm,
           wy = 1 / (1 + exp(-(lssfr + 10.3) / 0.35)); // young fraction at 5500 Å
    // emission-line equivalent widths (rest, Å) rising with sSFR; [N II]/Hα with mass (metallicity, AGN-like)
    double ew_ha = pow(10, 0.9 * (lssfr + 10) + 1.3), nii = pow(10, -0.5 + 0.35 * (g->logm - 10));
    static const double lam[5] = {3727, 4861, 5007, 6563, 6584};
    double rel[5] = {0.6, 1 / 2.86, 0.5 / 2.86 * (1 + 2 * (nii > 1)), 1, nii};
    double fr = pow(10, -0.4 * (g->mag_true[2] - 22.5)); // continuum level at 5500 Å rest ~ the r-band flux
    for (int k = 0; k < n; k++) {
        double lr = wl[k] / (1 + g->z), x = lr / 5500;
        double brk = 1 / (1 + exp(-(lr - 4000) / 25)), old = pow(x, 0.6) * (0.35 + 0.65 * brk),
               young = pow(x, -1.2);
        double cont = (1 - wy) * old + wy * young;
        double dust = pow(10, -0.4 * g->av * pow(x, -0.7));
        double line = 0;
        for (int q = 0; q < 5; q++)
            line += rel[q] * ew_ha * exp(-0.5 * (lr - lam[q]) * (lr - lam[q]) / 4.0) / sqrt(2 * M_PI * 4.0);
        double f = fr * dust * cont *
                   (1 + line / fmax(cont, 1e-3) *
                            ((1 - wy) * pow(6563 / 5500.0, 0.6) + wy * pow(6563 / 5500.0, -1.2)));
        double sig = 0.08 * fr * (1 + 0.3 * fabs(x - 1)); // S/N ~ 12 at 5500 Å
        flux[k] = (float)(f + sig * gauss(&r));
        ivar[k] = (float)(1 / (sig * sig));
        if (fabs(wl[k] - 5577) < 6 || unif(&r) < 0.005) flux[k] = 0, ivar[k] = 0; // sky line, bad pixels
    }
}

void io_mock_kinematics(const io_mock_galaxy *g, int S, float *maps) {
    static const double support[3] = {1.0, 0.3, 0.6}, sfac[3] = {0.35, 0.75, 0.55};
    double G = 4.30091e-6; // kpc (km/s)^2 / Msun
    double vc = sqrt(G * pow(10, g->logmtot) / g->re_kpc);
    double sini = sqrt(fmax(1 - g->cosi * g->cosi, 0)), cosi = fmax(g->cosi, 0.05);
    double cs = cos(g->pa), sn = sin(g->pa);
    for (int y = 0; y < S; y++)
        for (int x = 0; x < S; x++) {
            // sky offsets in units of R_e, the map spanning +-3 R_e
            double dx = ((x + 0.5) / S * 2 - 1) * 3, dy = ((y + 0.5) / S * 2 - 1) * 3;
            double u = dx * cs + dy * sn, v = -dx * sn + dy * cs;
            double R = sqrt(u * u + (v / cosi) * (v / cosi)); // radius in the disc plane
            double V = vc * tanh(2.5 * R) / tanh(2.5) * support[g->type];
            double cosphi = R > 0 ? u / R : 0;
            maps[y * S + x] = (float)(V * sini * cosphi);
            maps[S * S + y * S + x] = (float)(sfac[g->type] * vc * exp(-sqrt(u * u + v * v) / 2) + 10);
        }
}

static int mkdir_p(const char *dir) {
    if (mkdir(dir, 0755) && errno != EEXIST)
        return gn_err(GN_EIO, "%s: cannot create directory: %s", dir, strerror(errno));
    return GN_OK;
}

static void put_num(FILE *f, double v, const char *fmt) {
    if (v == -9999) fputs(",-9999", f);
    else {
        fputc(',', f);
        fprintf(f, fmt, v);
    }
}

// The output folders, and the shared observed-frame grid of the spectra (*swl, written to spectra/wave.npy).
static int mock_dirs(const io_mock_opts *o, double **swl) {
    char p[4096];
    int made = 0, rc = io_mkdirs(o->out, &made); // and its parents, as train's --out
    snprintf(p, sizeof p, "%s/cutouts", o->out);
    if (!rc) rc = mkdir_p(p);
    if (!rc && o->png) snprintf(p, sizeof p, "%s/png", o->out), rc = mkdir_p(p);
    if (!rc && o->npy) snprintf(p, sizeof p, "%s/npy", o->out), rc = mkdir_p(p);
    if (!rc && o->kinematics) snprintf(p, sizeof p, "%s/kin", o->out), rc = mkdir_p(p);
    *swl = NULL;
    if (!rc && o->spectra) {
        snprintf(p, sizeof p, "%s/spectra", o->out), rc = mkdir_p(p);
        *swl = gn_malloc(sizeof(double) * IO_MOCK_SPEC_PIXELS);
        if (!*swl) rc = GN_ENOMEM;
        for (int k = 0; !rc && k < IO_MOCK_SPEC_PIXELS; k++)
            (*swl)[k] =
                pow(10, log10(3600.0) + (log10(9200.0) - log10(3600.0)) * k / (IO_MOCK_SPEC_PIXELS - 1));
        int64_t sh[1] = {IO_MOCK_SPEC_PIXELS};
        io_array a = io_array_view(IO_F64, 1, sh, *swl);
        snprintf(p, sizeof p, "%s/spectra/wave.npy", o->out);
        if (!rc) rc = io_npy_write(p, &a);
    }
    return rc;
}

// One galaxy's files: the FITS cube, and as asked NPY, 16-bit PNG per band, the spectrum, kinematic maps.
// img (5 S S) and kin (2 K K) are scratch.
static int mock_files(const io_mock_opts *o, int i, const io_mock_galaxy *g, int S, int K, const double *swl,
                      float *img, float *kin) {
    char path[4096];
    io_mock_render(o->seed, i, g, S, img);
    io_image im = {5, S, S, img};
    static const io_fits_card cards[] = {{"BANDS", "u,g,r,i,z", "planes of the cube"},
                                         {"BUNIT", "nanomaggy", "per pixel"},
                                         {"PIXSCALE", "0.396", "arcsec per pixel"},
                                         {"ORIGIN", "galnn mock", NULL},
                                         {NULL, NULL, NULL}};
    snprintf(path, sizeof path, "%s/cutouts/%s.fits", o->out, g->id);
    int st = io_fits_write(path, &im, cards);
    if (!st && o->npy) {
        int64_t sh[3] = {5, S, S};
        io_array a = io_array_view(IO_F32, 3, sh, img);
        snprintf(path, sizeof path, "%s/npy/%s.npy", o->out, g->id);
        st = io_npy_write(path, &a);
    }
    // 16-bit PNG per band: code = round(1000 x + 1000), i.e. x = (code - 1000) / 1000 nanomaggies
    for (int b = 0; !st && o->png && b < 5; b++) {
        float *pl = img + (size_t)b * S * S;
        for (int q = 0; q < S * S; q++) pl[q] = pl[q] * 1000.0f + 1000.0f;
        io_image one = {1, S, S, pl};
        snprintf(path, sizeof path, "%s/png/%s_%s.png", o->out, g->id, IO_MOCK_BANDS[b]);
        st = io_png_write(path, &one, 16);
    }
    if (!st && o->spectra) {
        float *sp = malloc(sizeof(float) * 2 * IO_MOCK_SPEC_PIXELS);
        if (!sp) return GN_ENOMEM;
        io_mock_spectrum(o->seed, i, g, swl, IO_MOCK_SPEC_PIXELS, sp, sp + IO_MOCK_SPEC_PIXELS);
        int64_t sh[2] = {2, IO_MOCK_SPEC_PIXELS};
        io_array a = io_array_view(IO_F32, 2, sh, sp);
        snprintf(path, sizeof path, "%s/spectra/%s.npy", o->out, g->id);
        st = io_npy_write(path, &a);
        free(sp);
    }
    if (!st && o->kinematics) {
        io_mock_kinematics(g, K, kin);
        io_image km = {2, K, K, kin};
        static const io_fits_card kc[] = {{"PLANES", "vlos,sigma", "line-of-sight velocity, dispersion"},
                                          {"BUNIT", "km/s", NULL},
                                          {"EXTENT", "+-3 R_e", NULL},
                                          {NULL, NULL, NULL}};
        snprintf(path, sizeof path, "%s/kin/%s.fits", o->out, g->id);
        st = io_fits_write(path, &km, kc);
    }
    return st;
}

// catalog.csv: one row per galaxy, written atomically.
// With --kinematics, what an IFU survey measures of galaxy i: sigma_e, the dispersion at R_e / 2 of the
// model (km/s, 5 % error); lambda_re, a spin proxy V(R_e) sin i / sqrt(V^2 sin^2 i + sigma(R_e)^2) (+-0.03);
// logl_r, the r-band luminosity log10 L/Lsun from the observed mag_r, spec-z and E(B-V) (M_r = mag_r - DM -
// 2.29 E(B-V), no K-correction; null with mag_r).
static void kin_observed(uint64_t seed, int i, const io_mock_galaxy *g, double out[3]) {
    static const double support[3] = {1.0, 0.3, 0.6}, sfac[3] = {0.35, 0.75, 0.55};
    gn_rng r = galaxy_rng(seed, i, 4);
    double vc = sqrt(4.30091e-6 * pow(10, g->logmtot) / g->re_kpc);
    double sini = sqrt(fmax(1 - g->cosi * g->cosi, 0));
    double sig_half = sfac[g->type] * vc * exp(-0.25) + 10, sig_re = sfac[g->type] * vc * exp(-0.5) + 10;
    double v = vc * support[g->type] * sini;
    out[0] = sig_half * (1 + 0.05 * gn_rng_normal(&r));
    out[1] = clampd(v / sqrt(v * v + sig_re * sig_re) + 0.03 * gn_rng_normal(&r), 0, 1);
    double dl = comoving_mpc(g->zspec) * (1 + g->zspec), dm = 5 * log10(dl * 1e5);
    out[2] = g->mag[2] == -9999 ? -9999 : (4.65 - (g->mag[2] - dm - 2.29 * g->ebv)) / 2.5;
}

static int mock_catalog(const io_mock_opts *o, const io_mock_galaxy *gal, int N) {
    char p[4096], tmp[4200];
    snprintf(p, sizeof p, "%s/catalog.csv", o->out);
    snprintf(tmp, sizeof tmp, "%s.tmp", p);
    FILE *f = fopen(tmp, "w");
    if (!f) return gn_err(GN_EIO, "%s: cannot create: %s", tmp, strerror(errno));
    fprintf(f,
            "# galnn mock survey: seed %llu, %d galaxies; -9999 = null. `galnn help mock` documents "
            "the model.\n",
            (unsigned long long)o->seed, N);
    fprintf(f, "id,zspec,ebv");
    for (int b = 0; b < 5; b++) fprintf(f, ",mag_%s", IO_MOCK_BANDS[b]);
    for (int b = 0; b < 5; b++) fprintf(f, ",magerr_%s", IO_MOCK_BANDS[b]);
    for (int b = 0; b < 5; b++) fprintf(f, ",flux_%s", IO_MOCK_BANDS[b]);
    fprintf(f,
            ",w1,w2,w3,w1err,w2err,w3err,sersic_n,ba,r50,type,logmstar,logsfr,z,re_kpc,n_true,q_true,av,"
            "gr0,logml_r,oh12%s\n",
            o->kinematics ? ",logmtot,fdm,sigma_e,lambda_re,logl_r" : "");
    for (int i = 0; i < N; i++) {
        const io_mock_galaxy *g = &gal[i];
        fprintf(f, "%s,%.6f,%.4f", g->id, g->zspec, g->ebv);
        for (int b = 0; b < 5; b++) put_num(f, g->mag[b], "%.4f");
        for (int b = 0; b < 5; b++) put_num(f, g->magerr[b], "%.4f");
        for (int b = 0; b < 5; b++) put_num(f, g->flux[b], "%.5g");
        for (int k = 0; k < 3; k++) put_num(f, g->w[k], "%.4f");
        for (int k = 0; k < 3; k++) put_num(f, g->werr[k], "%.4f");
        fprintf(f, ",%.3f,%.3f,%.3f,%s,%.4f,%.4f,%.5f,%.4f,%.3f,%.3f,%.4f,%.4f,%.4f", g->n_obs, g->ba_obs,
                g->r50_obs, IO_MOCK_TYPES[g->type], g->logm, g->logsfr, g->z, g->re_kpc, g->n, g->q, g->av,
                g->gr0, g->logml_r);
        put_num(f, isnan(g->oh12) ? -9999 : g->oh12, "%.4f");
        if (o->kinematics) {
            double k[3];
            kin_observed(o->seed, i, g, k);
            fprintf(f, ",%.4f,%.4f,%.2f,%.4f", g->logmtot, g->fdm, k[0], k[1]);
            put_num(f, k[2], "%.4f");
        }
        fputc('\n', f);
    }
    if (fclose(f) || rename(tmp, p)) return gn_err(GN_EIO, "%s: write failed: %s", p, strerror(errno));
    return GN_OK;
}

int io_mock_write(const io_mock_opts *o) {
    int S = o->size ? o->size : 64, K = o->kin_size ? o->kin_size : 48, N = o->n;
    if (N < 1) return gn_err(GN_EINVAL, "mock: the number of galaxies must be positive");
    if (S < 16 || S > 1024) return gn_err(GN_EINVAL, "mock: cutout size %d outside 16..1024", S);
    double *swl = NULL;
    int rc = mock_dirs(o, &swl);
    if (rc) return free(swl), rc;
    io_mock_galaxy *gal = gn_malloc(sizeof(io_mock_galaxy) * (size_t)N);
    int *status = gn_calloc((size_t)N, sizeof(int));
    char(*errs)[512] = gn_calloc(64, 512);
    if (!gal || !status || !errs) return free(gal), free(status), free(errs), free(swl), GN_ENOMEM;
    int done = 0;
#pragma omp parallel for schedule(dynamic, 8)
    for (int i = 0; i < N; i++) {
        io_mock_draw(o->seed, i, &gal[i]);
        float *img = malloc(sizeof(float) * 5 * (size_t)S * S);
        float *kin = malloc(sizeof(float) * 2 * (size_t)K * K);
        int st = img && kin ? mock_files(o, i, &gal[i], S, K, swl, img, kin) : GN_ENOMEM;
        status[i] = st;
        if (st) {
#pragma omp critical
            snprintf(errs[0], 512, "%s", gn_errmsg());
        }
        free(img);
        free(kin);
        if (o->progress) {
            int d;
#pragma omp atomic capture
            d = ++done;
            if (d % 256 == 0 || d == N) {
#pragma omp critical
                o->progress(o->user, d, N);
            }
        }
    }
    free(swl);
    for (int i = 0; i < N && !rc; i++)
        if (status[i]) rc = gn_err(GN_EIO, "mock: galaxy %s: %s", gal[i].id, errs[0]);
    if (!rc) rc = mock_catalog(o, gal, N);
    free(gal);
    free(status);
    free(errs);
    return rc;
}
