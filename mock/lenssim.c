/* lens.c — strong-lens image simulation. */
#include "lenssim.h"

#include <gsl/gsl_randist.h>
#include <gsl/gsl_rng.h>
#include <gsl/gsl_sf_gamma.h>
#include <math.h>
#include <omp.h>
#include <stdlib.h>
#include <string.h>

void lens_sim_opt_init(lens_sim_opt *o)
{
    memset(o, 0, sizeof *o);
    o->n = 1000;
    o->frac_lens = 0.5;
    o->frac_lookalike = 0.5;
    o->size = 48;
    o->pix_scale = 0.2;
    o->n_bands = 3;
    strcpy(o->band[0], "g");
    strcpy(o->band[1], "r");
    strcpy(o->band[2], "i");
    o->psf_fwhm = 0.8;
    o->moffat_beta = 3;
    o->sky = 100;
    o->read_noise = 5;
    o->zeropoint = 30;
    o->sub = 3;
    o->seed = 1;
}

int lens_sim_opt_check(const lens_sim_opt *o, ody_err *err)
{
    if (o->n < 1 || o->n > 10000000) return ody_fail(err, ODY_EINPUT, "lens simulation: n = %zu must be 1 to 10^7", o->n);
    if (o->size < 8 || o->size > 1024) return ody_fail(err, ODY_EINPUT, "lens simulation: size = %d must be 8 to 1024 pixels", o->size);
    if (o->n_bands < 1 || o->n_bands > LENS_MAX_BANDS)
        return ody_fail(err, ODY_EINPUT, "lens simulation: %d bands — use 1 to %d", o->n_bands, LENS_MAX_BANDS);
    if (!(o->pix_scale > 0) || !(o->psf_fwhm > 0) || !(o->sky >= 0) || !(o->read_noise >= 0))
        return ody_fail(err, ODY_EINPUT, "lens simulation: pixel scale and PSF FWHM must be > 0, sky and read noise >= 0");
    if (!(o->frac_lens >= 0 && o->frac_lens <= 1) || !(o->frac_lookalike >= 0 && o->frac_lookalike <= 1))
        return ody_fail(err, ODY_EINPUT, "lens simulation: fractions must be in [0, 1]");
    if (o->sub < 1 || o->sub > 16) return ody_fail(err, ODY_EINPUT, "lens simulation: sub-pixels %d must be 1 to 16", o->sub);
    if (o->moffat && !(o->moffat_beta > 1)) return ody_fail(err, ODY_EINPUT, "lens simulation: Moffat beta must be > 1");
    return 0;
}

const char *lens_kind_name(int kind)
{
    static const char *names[] = {"galaxy", "lens", "ring", "merger", "spiral"};
    return kind >= 0 && kind < 5 ? names[kind] : "?";
}

/* ================================================================ physics */

void lens_sie_deflect(double theta_e, double q, double pa, double g1, double g2, double x, double y,
                      double *ax, double *ay)
{
    double c = cos(pa), s = sin(pa);
    double xr = c * x + s * y, yr = -s * x + c * y;  /* lens frame: major axis along xr */
    double axr, ayr;
    if (q > 0.9999) {
        double r = hypot(xr, yr);
        axr = r > 0 ? theta_e * xr / r : 0;
        ayr = r > 0 ? theta_e * yr / r : 0;
    } else {
        /* Kormann, Schneider & Bartelmann (1994) / Keeton (2001) */
        double f = sqrt(1 - q * q), psi = sqrt(q * q * xr * xr + yr * yr);
        double k = theta_e * sqrt(q) / f;
        if (psi <= 0) { axr = ayr = 0; }
        else {
            axr = k * atan(f * xr / psi);
            ayr = k * atanh(f * yr / psi);
        }
    }
    *ax = c * axr - s * ayr + g1 * x + g2 * y;
    *ay = s * axr + c * ayr + g2 * x - g1 * y;
}

static double sersic_bn(double n) { return 2 * n - 1.0 / 3 + 4 / (405 * n) + 46 / (25515 * n * n); }

double lens_sersic(double r, double re, double n, double flux, double q)
{
    double b = sersic_bn(n);
    double norm = 2 * M_PI * q * re * re * n * exp(b) * pow(b, -2 * n) * gsl_sf_gamma(2 * n);
    return flux / norm * exp(-b * (pow(r / re, 1 / n) - 1));
}

int lens_count_images(double theta_e, double q, double pa, double g1, double g2, double bx, double by)
{
    const int N = 601;
    double L = 3 * theta_e, h = 2 * L / (N - 1);
    double *d = malloc((size_t)N * N * sizeof *d);
    if (!d) return -1;
    for (int i = 0; i < N; i++)
        for (int j = 0; j < N; j++) {
            double x = -L + j * h, y = -L + i * h, ax, ay;
            lens_sie_deflect(theta_e, q, pa, g1, g2, x, y, &ax, &ay);
            double dx = x - ax - bx, dy = y - ay - by;
            d[i * N + j] = dx * dx + dy * dy;
        }
    int count = 0;
    double tol = 4 * h * h * (1 + theta_e);
    for (int i = 1; i < N - 1; i++)
        for (int j = 1; j < N - 1; j++) {
            double v = d[i * N + j];
            if (v > tol) continue;
            int minimum = 1;
            for (int di = -1; di <= 1 && minimum; di++)
                for (int dj = -1; dj <= 1; dj++)
                    if ((di || dj) && d[(i + di) * N + j + dj] < v) { minimum = 0; break; }
            /* the SIE centre is singular: it images nothing */
            if (minimum && hypot(-L + j * h, -L + i * h) > 2 * h) count++;
        }
    free(d);
    return count;
}

/* ================================================================ scene */

/* A light component: Sersic in the image plane (lensed = 0) or in the source
 * plane (lensed = 1), or a Gaussian clump; fluxes per band. */
typedef struct comp {
    int lensed, gauss, ring, spiral;
    double x, y, re, n, q, pa;        /* position, size (arcsec) */
    double r0, width;                 /* ring radius and width; spiral pitch in r0 */
    double flux[LENS_MAX_BANDS];
    double cpa, spa, bn, ie, inv_n;   /* precomputed by comp_ready() */
} comp;

/* Precomputes what shape() needs for every pixel. */
static void comp_ready(comp *c)
{
    c->cpa = cos(c->pa);
    c->spa = sin(c->pa);
    if (!c->gauss && !c->ring && c->n > 0) {
        c->bn = sersic_bn(c->n);
        c->ie = lens_sersic(c->re, c->re, c->n, 1.0, c->q);  /* SB at re for flux 1 */
        c->inv_n = 1 / c->n;
    }
}

typedef struct scene {
    int nc;
    comp c[12];
    double theta_e, q, pa, g1, g2;
    lens_truth t;
} scene;

/* Surface brightness shape (flux 1) of component c at (x, y). */
static double shape(const comp *c, double x, double y)
{
    double dx = x - c->x, dy = y - c->y;
    if (c->gauss) {
        double s2 = c->re * c->re;
        return exp(-0.5 * (dx * dx + dy * dy) / s2) / (2 * M_PI * s2);
    }
    double xr = c->cpa * dx + c->spa * dy, yr = -c->spa * dx + c->cpa * dy;
    double r = sqrt(c->q * xr * xr + yr * yr / c->q);
    if (c->ring) {  /* a Gaussian annulus, inclined by q */
        double w = c->width;
        return exp(-0.5 * (r - c->r0) * (r - c->r0) / (w * w)) / (pow(2 * M_PI, 1.5) * c->r0 * w * c->q + 1e-12);
    }
    double v = c->ie * exp(-c->bn * (pow(r / c->re, c->inv_n) - 1));
    if (c->spiral) {  /* two logarithmic arms modulating a disk */
        double phi = atan2(dy, dx), arm = cos(2 * (phi - log(r / c->re + 1e-3) / tan(c->r0)));
        v *= 0.3 + 1.4 * pow(0.5 * (1 + arm), 3);
    }
    return v;
}

/* Band colour offsets (magnitudes) for red and blue populations. */
static double colour(int band, int nb, int red)
{
    double t = nb > 1 ? (double)band / (nb - 1) : 0.5;  /* 0 bluest .. 1 reddest */
    return red ? 1.4 * (1 - t) - 0.7 : 0.5 * t - 0.25;
}

static void set_flux(comp *c, double mag, int red, int nb, double zp)
{
    for (int b = 0; b < nb; b++) c->flux[b] = pow(10, 0.4 * (zp - (mag + colour(b, nb, red))));
}

/* Draws one scene: the deflector (always) plus what makes it a lens or not. */
/* The lens galaxy: a red Sersic profile near the centre. */
static comp *draw_galaxy(gsl_rng *r, const lens_sim_opt *o, scene *s, double *lmag)
{
    comp *g = &s->c[s->nc++];
    g->n = 2.5 + 2 * gsl_rng_uniform(r);
    g->re = 0.5 + 1.0 * gsl_rng_uniform(r);
    g->q = 0.6 + 0.4 * gsl_rng_uniform(r);
    g->pa = M_PI * gsl_rng_uniform(r);
    g->x = gsl_ran_gaussian(r, 0.05);
    g->y = gsl_ran_gaussian(r, 0.05);
    *lmag = 18.5 + 2 * gsl_rng_uniform(r);
    set_flux(g, *lmag, 1, o->n_bands, o->zeropoint);
    s->t.lens_mag = *lmag;
    return g;
}

/* The lens (SIE aligned with the galaxy, external shear) and a blue source
 * with star-forming clumps near the caustics. */
static void draw_lensing(gsl_rng *r, const lens_sim_opt *o, scene *s, const comp *g)
{
    int nb = o->n_bands;
    s->t.kind = 1;
    s->theta_e = 0.8 + 1.2 * gsl_rng_uniform(r);
    s->q = g->q;
    s->pa = g->pa + gsl_ran_gaussian(r, 0.1);
    double gam = 0.05 * gsl_rng_uniform(r), phg = M_PI * gsl_rng_uniform(r);
    s->g1 = gam * cos(2 * phg);
    s->g2 = gam * sin(2 * phg);
    /* source near the caustics: inside ~0.6 theta_E */
    double rad = s->theta_e * 0.6 * sqrt(gsl_rng_uniform(r)), ang = 2 * M_PI * gsl_rng_uniform(r);
    comp *src = &s->c[s->nc++];
    src->lensed = 1;
    src->x = rad * cos(ang);
    src->y = rad * sin(ang);
    src->n = 0.7 + 0.8 * gsl_rng_uniform(r);
    src->re = 0.1 + 0.3 * gsl_rng_uniform(r);
    src->q = 0.5 + 0.5 * gsl_rng_uniform(r);
    src->pa = M_PI * gsl_rng_uniform(r);
    double smag = 21 + 2 * gsl_rng_uniform(r);
    set_flux(src, smag, 0, nb, o->zeropoint);
    s->t = (lens_truth){1, 1, s->theta_e, s->q, s->pa, gam, src->x, src->y, s->t.lens_mag, smag};
    int nclump = (int)gsl_rng_uniform_int(r, 4);
    for (int k = 0; k < nclump; k++) {
        comp *cl = &s->c[s->nc++];
        cl->lensed = 1;
        cl->gauss = 1;
        cl->x = src->x + gsl_ran_gaussian(r, src->re);
        cl->y = src->y + gsl_ran_gaussian(r, src->re);
        cl->re = 0.03 + 0.04 * gsl_rng_uniform(r);
        set_flux(cl, smag + 1 + 1.5 * gsl_rng_uniform(r), 0, nb, o->zeropoint);
    }
}

/* A look-alike: a ring galaxy, a projected blue companion, or a spiral. */
static void draw_lookalike(gsl_rng *r, const lens_sim_opt *o, scene *s, comp *g, double lmag)
{
    int nb = o->n_bands, kind = 2 + (int)gsl_rng_uniform_int(r, 3);
    s->t.kind = kind;
    comp *c = &s->c[s->nc++];
    double mag = 20.5 + 2 * gsl_rng_uniform(r);
    if (kind == 2) {        /* a blue star-forming ring around the galaxy */
        c->ring = 1;
        c->x = g->x;
        c->y = g->y;
        c->r0 = 0.8 + 1.2 * gsl_rng_uniform(r);
        c->width = 0.1 + 0.15 * gsl_rng_uniform(r);
        c->q = 0.5 + 0.5 * gsl_rng_uniform(r);
        c->pa = M_PI * gsl_rng_uniform(r);
    } else if (kind == 3) { /* an unlensed blue companion 1-3 arcsec away */
        double rad = 1 + 2 * gsl_rng_uniform(r), ang = 2 * M_PI * gsl_rng_uniform(r);
        c->x = rad * cos(ang);
        c->y = rad * sin(ang);
        c->n = 0.8 + 0.7 * gsl_rng_uniform(r);
        c->re = 0.2 + 0.4 * gsl_rng_uniform(r);
        c->q = 0.3 + 0.6 * gsl_rng_uniform(r);
        c->pa = M_PI * gsl_rng_uniform(r);
    } else {                /* the galaxy becomes a spiral: disk + arms */
        g->n = 1;
        g->re = 0.8 + 1.0 * gsl_rng_uniform(r);
        set_flux(g, lmag, 0, nb, o->zeropoint);
        c->spiral = 1;
        c->x = g->x;
        c->y = g->y;
        c->n = 1;
        c->re = g->re;
        c->q = g->q;
        c->pa = g->pa;
        c->r0 = 0.3 + 0.4 * gsl_rng_uniform(r);  /* pitch angle */
    }
    set_flux(c, mag, 0, nb, o->zeropoint);
}

static void draw_scene(gsl_rng *r, const lens_sim_opt *o, int is_lens, int lookalike, scene *s)
{
    memset(s, 0, sizeof *s);
    double lmag = 0;
    comp *g = draw_galaxy(r, o, s, &lmag);
    s->t.is_lens = is_lens;
    if (is_lens) draw_lensing(r, o, s, g);
    else if (lookalike) draw_lookalike(r, o, s, g, lmag);
    for (int k = 0; k < s->nc; k++) comp_ready(&s->c[k]);
}

/* ================================================================ rendering */

static int psf_kernel(const lens_sim_opt *o, double **kern, int *rad)
{
    double fw = o->psf_fwhm / o->pix_scale;
    int R = (int)ceil(2.5 * fw);
    if (R < 1) R = 1;
    if (R > 255) R = 255;  /* the separable path keeps a 1-D kernel of 511 */
    int w = 2 * R + 1;
    double *k = malloc((size_t)w * w * sizeof *k), sum = 0;
    if (!k) return -1;
    double sg = fw / 2.3548, al = fw / (2 * sqrt(pow(2, 1 / o->moffat_beta) - 1));
    for (int i = 0; i < w; i++)
        for (int j = 0; j < w; j++) {
            double r2 = (double)(i - R) * (i - R) + (double)(j - R) * (j - R);
            double v = o->moffat ? pow(1 + r2 / (al * al), -o->moffat_beta) : exp(-0.5 * r2 / (sg * sg));
            k[i * w + j] = v;
            sum += v;
        }
    for (int i = 0; i < w * w; i++) k[i] /= sum;
    *kern = k;
    *rad = R;
    return 0;
}

/* One pass of a separable convolution over an S x S image along (di, dj):
 * out[i][j] = sum_k k1[k + R] in[i - k di][j - k dj], zero outside. */
static void conv1d(const double *in, double *out, int S, const double *k1, int R, int di, int dj)
{
    for (int i = 0; i < S; i++)
        for (int j = 0; j < S; j++) {
            double v = 0;
            for (int k = -R; k <= R; k++) {
                int ii = i - k * di, jj = j - k * dj;
                if (ii >= 0 && ii < S && jj >= 0 && jj < S) v += k1[k + R] * in[ii * S + jj];
            }
            out[i * S + j] = v;
        }
}

static void render(const lens_sim_opt *o, const scene *s, const double *kern, int R, uint64_t idx, float *out,
                   double *buf)
{
    int S = o->size, nb = o->n_bands, sub = o->sub;
    double ps = o->pix_scale, area = (ps / sub) * (ps / sub);
    double *img = buf, *tmp = buf + (size_t)nb * S * S;
    memset(img, 0, (size_t)nb * S * S * sizeof *img);
    for (int i = 0; i < S; i++)
        for (int j = 0; j < S; j++)
            for (int si = 0; si < sub; si++)
                for (int sj = 0; sj < sub; sj++) {
                    double x = (j + (sj + 0.5) / sub - 0.5 * S) * ps, y = (i + (si + 0.5) / sub - 0.5 * S) * ps;
                    double bx = x, by = y;
                    int traced = 0;
                    for (int c = 0; c < s->nc; c++) {
                        const comp *cp = &s->c[c];
                        double px = x, py = y;
                        if (cp->lensed) {
                            if (!traced) {
                                double ax, ay;
                                lens_sie_deflect(s->theta_e, s->q, s->pa, s->g1, s->g2, x, y, &ax, &ay);
                                bx = x - ax;
                                by = y - ay;
                                traced = 1;
                            }
                            px = bx;
                            py = by;
                        }
                        double v = shape(cp, px, py) * area;
                        for (int b = 0; b < nb; b++) img[((size_t)b * S + i) * S + j] += v * cp->flux[b];
                    }
                }
    /* PSF, then noise: sky + Poisson + read noise, sky subtracted */
    gsl_rng *r = gsl_rng_alloc(gsl_rng_mt19937);
    gsl_rng_set(r, (unsigned long)(o->seed * 1000003ULL + idx * 7919ULL + 17));
    int w = 2 * R + 1;
    for (int b = 0; b < nb; b++) {
        const double *im = img + (size_t)b * S * S;
        if (!o->moffat) {
            /* a Gaussian is separable: rows then columns with the 1-D kernel
             * (the central row of the 2-D one, renormalised) */
            double k1[512], ks = 0;
            for (int q = 0; q < w && q < 512; q++) ks += k1[q] = kern[R * w + q];
            for (int q = 0; q < w && q < 512; q++) k1[q] /= ks;
            double *mid = tmp + (size_t)S * S;
            conv1d(im, mid, S, k1, R, 0, 1);   /* along rows */
            conv1d(mid, tmp, S, k1, R, 1, 0);  /* along columns */
        } else {
            for (int i = 0; i < S; i++)
                for (int j = 0; j < S; j++) {
                    double v = 0;
                    for (int ki = -R; ki <= R; ki++) {
                        int ii = i - ki;
                        if (ii < 0 || ii >= S) continue;
                        for (int kj = -R; kj <= R; kj++) {
                            int jj = j - kj;
                            if (jj < 0 || jj >= S) continue;
                            v += kern[(ki + R) * w + kj + R] * im[ii * S + jj];
                        }
                    }
                    tmp[i * S + j] = v;
                }
        }
        float *o_b = out + (size_t)b * S * S;
        for (int k = 0; k < S * S; k++) {
            double mean = tmp[k] + o->sky;
            double c = r ? (double)gsl_ran_poisson(r, mean > 0 ? mean : 0) + gsl_ran_gaussian(r, o->read_noise) : mean;
            o_b[k] = (float)(c - o->sky);
        }
    }
    if (r) gsl_rng_free(r);
}

int lens_simulate(const lens_sim_opt *o, float *pix, lens_truth *truth, ody_err *err)
{
    int rc = lens_sim_opt_check(o, err);
    if (rc) return rc;
    scene *sc = malloc(o->n * sizeof *sc);
    gsl_rng *r = gsl_rng_alloc(gsl_rng_mt19937);
    double *kern = NULL;
    int R = 0;
    if (!sc || !r || psf_kernel(o, &kern, &R)) {
        free(sc);
        if (r) gsl_rng_free(r);
        return ody_fail(err, ODY_ENOMEM, "lens simulation: out of memory");
    }
    gsl_rng_set(r, (unsigned long)o->seed);
    /* Parameters drawn in order from one stream; rendering in parallel, each
     * cutout with its own noise stream: the same pixels for any thread count. */
    for (size_t k = 0; k < o->n; k++) {
        int is_lens = gsl_rng_uniform(r) < o->frac_lens;
        int look = !is_lens && gsl_rng_uniform(r) < o->frac_lookalike;
        draw_scene(r, o, is_lens, look, &sc[k]);
        truth[k] = sc[k].t;
    }
    gsl_rng_free(r);
    size_t per = (size_t)o->n_bands * o->size * o->size;
    int fail = 0;
#pragma omp parallel num_threads(ody_threads(o->n_threads))
    {
        double *buf = malloc((2 * per + (size_t)o->size * o->size) * sizeof *buf);
        if (!buf) {
#pragma omp atomic write
            fail = 1;
        }
#pragma omp for schedule(dynamic, 8)
        for (size_t k = 0; k < o->n; k++)
            if (buf) render(o, &sc[k], kern, R, k, pix + k * per, buf);
        free(buf);
    }
    free(kern);
    free(sc);
    if (fail) return ody_fail(err, ODY_ENOMEM, "lens simulation: out of memory");
    return 0;
}
