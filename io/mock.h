// The built-in mock survey: a physically motivated catalog with 5-band
// (u, g, r, i, z) cutouts, optionally kinematic maps. The generating
// equations are documented in io/mock.c and printed by `galnn help mock`.
#ifndef IO_MOCK_H
#define IO_MOCK_H

#include <stdint.h>

typedef struct io_mock_opts {
    const char *out;   // directory (created)
    int n;             // galaxies
    uint64_t seed;
    int size;          // cutout side (pixels), default 64
    int png, npy;      // also write 16-bit PNG per band / NPY cubes
    int kinematics;    // also write 2 x kin_size^2 maps (velocity, dispersion) and logmtot
    int kin_size;      // default 48
    int spectra;       // also write spectra/{id}.npy (2 x P: flux, inverse variance) and spectra/wave.npy
    void (*progress)(void *user, int done, int total);
    void *user;
} io_mock_opts;

// One galaxy's properties (truth and observed), for the catalog.
typedef struct io_mock_galaxy {
    char id[16];
    int type;                   // 0 star-forming, 1 passive, 2 other (green valley)
    double z, zspec, ebv;
    double logm, logsfr, logmtot, fdm;
    double n, re_kpc, re_arcsec, q, pa, cosi;
    double gr0, av, logml_r;
    double oh12;                // gas-phase 12 + log(O/H); NAN when the lines are too weak to measure it
    double mag_true[5], mag[5], magerr[5], flux[5]; // flux in mJy
    double w[3], werr[3];
    double n_obs, ba_obs, r50_obs;
} io_mock_galaxy;

extern const char *const IO_MOCK_BANDS[5];
extern const char *const IO_MOCK_TYPES[3];

// Draw galaxy i of a survey with this seed (deterministic, independent of
// the others and of thread count).
void io_mock_draw(uint64_t seed, int i, io_mock_galaxy *g);
// Render its cutout (5, size, size) in nanomaggies per pixel, with PSF and sky noise.
void io_mock_render(uint64_t seed, int i, const io_mock_galaxy *g, int size, float *img);
// Its observed-frame optical spectrum on the grid wl (Å, n pixels): flux
// density (arbitrary units scaled to the r-band flux) and inverse variance
// (0 = masked). An old and a young stellar continuum (the old one with a 4000
// Å break) mixed by the specific SFR, dust, emission lines ([O II], Hβ,
// [O III], Hα, [N II]) with strengths set by the sSFR and an AGN-like
// [N II]/Hα rising with mass, noise, a sky-line mask and random bad pixels.
// Own random stream: the other mock values do not depend on it.
void io_mock_spectrum(uint64_t seed, int i, const io_mock_galaxy *g, const double *wl, int n, float *flux,
                      float *ivar);
#define IO_MOCK_SPEC_PIXELS 3000 // log-spaced 3600-9200 Å observed
// Render its kinematic maps (2, size, size): line-of-sight velocity and
// dispersion in km/s over +-3 R_e.
void io_mock_kinematics(const io_mock_galaxy *g, int size, float *maps);

// Write the whole survey: DIR/catalog.csv, DIR/cutouts/{id}.fits (5-band
// cubes), optional DIR/png/{id}_{band}.png, DIR/npy/{id}.npy, DIR/kin/{id}.fits.
int io_mock_write(const io_mock_opts *o);

// The generating equations, for `galnn help mock`.
extern const char IO_MOCK_DOC[];

#endif
