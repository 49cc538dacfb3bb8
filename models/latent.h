// The latent ("S space") models of the stellar-mass interpretation study
// (spec/methods.md §1.5–1.7): an encoder maps the main input x and an
// additional vector a to a latent l (dim_main + dim_ext components; S = the
// first dim_main), a decoder reconstructs x from l, and an estimator maps S to
// a softmax over the target bins (520 on [6, 12.5]).
//
// Objectives: the paper's SCL (§1.6: two cycles through the shared encoder,
// cross-entropy, reconstruction, the softplus latent contrast on RMS
// distances, the stop-gradient prediction contrast); plain cross-entropy (the
// MI networks of §1.7: no decoder, dim_ext 0); or SCL with the latent
// contrast replaced by Khosla's SupCon or Rank-N-Contrast (spec/stats.md §E).
#ifndef MD_LATENT_H
#define MD_LATENT_H

#include "../nn/nn.h"

enum { MD_ENC_MLP = 0, MD_ENC_INCEPTION };
enum { MD_OBJ_SCL = 0, MD_OBJ_CE, MD_OBJ_SUPCON, MD_OBJ_RNC };
#define MD_LAT_MAXDEPTH 32
#define MD_LAT_MAXCONV 16

typedef struct md_latent_spec {
    int encoder, objective;
    int x_dim, a_dim;      // main input columns, additional vector length (0: none)
    int dim_main, dim_ext; // S = the first dim_main latent components
    int depth, hidden;     // MLP encoder: depth x [FC hidden + LeakyReLU 0.2]; decoder depth - 1
    int est_hidden;        // estimator: S -> FC est_hidden (LeakyReLU; ReLU for images) -> FC bins
    // Inception encoder (§1.5): x is (N, img_c, img_size, img_size), img_size = 16 * 2^m
    int img_c, img_size;
    int conv_w;            // stem and VALID 3x3 convs (96 in the paper)
    int inc_w;             // Inception k: branches k, k, int(0.65k), int(0.7k) (156)
    int fc_w;              // FC after the convolutions (1024)
    int dec_ch, dec_w;     // decoder: FC -> 8 x 8 x dec_ch (16), 3x3 convs of dec_w channels (32)
    float slope;           // LeakyReLU negative slope (0.2 in the paper)
    int bins;
    double lo, hi;
    float lambda_rec;      // weight of the reconstruction term (1 photometry, 100 images)
    float tau, base_tau;   // SupCon / RnC temperatures
    float supcon_width;    // SupCon: targets in bins of this width are one class
} md_latent_spec;

typedef struct md_incep {
    nn_conv a1, a5, b1, b3, c1, d1; // 1x1 -> 5x5; 1x1 -> 3x3; 1x1 -> avg pool; 1x1
} md_incep;

typedef struct md_latent {
    md_latent_spec sp;
    nn_dense enc[MD_LAT_MAXDEPTH + 1], dec[MD_LAT_MAXDEPTH], est[2];
    // Inception encoder: enc[0] = FC(a -> conv_w), enc[1..2] = the FCs after the convolutions
    nn_conv stem[2], valid[MD_LAT_MAXCONV];
    md_incep inc[6];
    int n_valid;
    // image decoder: dec[0] = FC(latent -> 64 dec_ch), then n_dconv 3x3 convs
    nn_conv dconv[MD_LAT_MAXCONV];
    int n_dconv;
} md_latent;

// Parameters "enc.fcK", "dec.fcK", "est.fc1/2" (+ "enc.stemK", "enc.incK.a1"
// ..., "enc.validK", "dec.convK" for images); Glorot-uniform weights, bias 0.1.
int md_latent_make(md_latent *m, nn_store *s);
int md_latent_dim(const md_latent *m); // dim_main + dim_ext
// x (N, x_dim), a (N, a_dim) or NULL -> l (N, dim_main + dim_ext).
nn_tensor *md_latent_encode(nn_ctx *c, const md_latent *m, nn_tensor *x, nn_tensor *a);
nn_tensor *md_latent_decode(nn_ctx *c, const md_latent *m, nn_tensor *l);
nn_tensor *md_latent_S(nn_ctx *c, const md_latent *m, nn_tensor *l);
nn_tensor *md_latent_logits(nn_ctx *c, const md_latent *m, nn_tensor *l); // from S
// The training loss. CE: every row is a galaxy. SCL/SupCon/RnC: rows [0, P)
// are set 1 and [P, 2P) set 2 (row i + P a different galaxy from row i), N =
// 2P; xm: the morphology-augmented views (images) or NULL. y: raw targets (N).
nn_tensor *md_latent_loss(nn_ctx *c, const md_latent *m, nn_tensor *x, nn_tensor *a, nn_tensor *xm,
                          const float *y, int N);
int md_latent_label(const md_latent *m, double y); // clip(floor((y - lo)/w), 0, bins - 1)

#endif
