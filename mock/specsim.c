/* specsim.c — mock galaxy spectra (specsim.h). */
#define _GNU_SOURCE
#include "specsim.h"

#include <fitsio.h>
#include <gsl/gsl_randist.h>
#include <gsl/gsl_rng.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "fitsout.h"

void sps_opt_init(sps_opt *o)
{
    memset(o, 0, sizeof *o);
    o->n = 800;
    o->seed = 1;
    o->frac_odd = 0.02;
    o->lam0 = 3800;
    o->dlam = 4.5;
    o->n_pix = 1200;
}

/* ================================================================ the model */

typedef struct line { double lam, s; } line;

/* Emission (relative equivalent widths of a star-forming galaxy, A). */
static const line EMIT[] = {{3727.1, 25}, {4861.3, 12}, {4958.9, 6}, {5006.8, 18}, {6548.1, 8},
                            {6562.8, 40}, {6583.5, 14}, {6716.4, 7}, {6730.8, 5}};
/* Absorption (fractional depth in an old population). */
static const line ABSORB[] = {{3933.7, 0.35}, {3968.5, 0.30}, {4304.4, 0.15}, {4861.3, 0.07},
                              {5175.4, 0.15}, {5892.9, 0.12}, {6562.8, 0.07}};
#define N_EMIT (sizeof EMIT / sizeof *EMIT)
#define N_ABSORB (sizeof ABSORB / sizeof *ABSORB)
#define C_KMS 299792.458

static double gauss(double x, double mu, double s) { return exp(-0.5 * (x - mu) * (x - mu) / (s * s)); }

static double continuum(double lam, double t, int odd_continuum)
{
    if (odd_continuum) return pow(lam / 5500, 4.0);  /* rising to the red like no population */
    double old = pow(lam / 5500, 0.8) * (1 - 0.45 / (1 + exp((lam - 4000) / 30)));
    double young = pow(lam / 5500, -1.2);
    return (1 - t) * old + t * young;
}

void sps_model(const sps_opt *o, double t, double z, double sigma_v, int k, double z2, float *flux)
{
    for (int p = 0; p < o->n_pix; p++) {
        double lo = o->lam0 + p * o->dlam, lam = lo / (1 + z), c = continuum(lam, t, k == 3), f = c;
        for (size_t a = 0; a < N_ABSORB; a++) {
            double s = ABSORB[a].lam * sigma_v / C_KMS + 1.5;
            f -= c * (1 - t) * ABSORB[a].s * gauss(lam, ABSORB[a].lam, s);
        }
        double tz = k == 1 ? 0.9 : t;  /* wrongz: a star-forming galaxy's lines ... */
        double lz = k == 1 ? lo / (1 + z2) : lam;  /* ... at its own redshift */
        for (size_t e = 0; e < N_EMIT; e++) {
            double s = EMIT[e].lam * 70 / C_KMS + 1.5;
            f += tz * EMIT[e].s * continuum(EMIT[e].lam, t, 0) * gauss(lz, EMIT[e].lam, s) / (s * sqrt(2 * M_PI));
        }
        if (k == 2) {  /* broadline: Ha and Hb of an active nucleus, FWHM ~5000 km/s */
            double sa = 6562.8 * 2100 / C_KMS, sb = 4861.3 * 2100 / C_KMS;
            f += 150 * c * gauss(lam, 6562.8, sa) / (sa * sqrt(2 * M_PI)) +
                 50 * c * gauss(lam, 4861.3, sb) / (sb * sqrt(2 * M_PI));
        }
        flux[p] = (float)f;
    }
}

/* ================================================================ the survey */

static const char *const ODD_NAME[] = {"none", "wrongz", "broadline", "continuum", "badpix"};
static const double SKY[] = {5577.3, 5889.9, 6300.3, 6363.8, 6863.9, 7276.4, 7340.9, 7913.7, 8344.6, 8399.2,
                             8430.2, 8827.1, 8885.8, 8943.4};

typedef struct obj {
    double ra, dec, z, t, snr;
    int odd;
} obj;

/* Noise, sky residuals, flagged bad pixels, and the badpix artefact. */
static void observe(const sps_opt *o, gsl_rng *r, const obj *b, float *flux, uint8_t *mask)
{
    double med = 0;
    for (int p = 0; p < o->n_pix; p++) med += flux[p];
    med /= o->n_pix;
    double sig = med / b->snr;
    for (int p = 0; p < o->n_pix; p++) {
        double lo = o->lam0 + p * o->dlam, s = sig;
        for (size_t q = 0; q < sizeof SKY / sizeof *SKY; q++)
            if (fabs(lo - SKY[q]) < 1.5 * o->dlam) s *= 4;  /* sky-subtraction residuals */
        flux[p] += (float)gsl_ran_gaussian(r, s);
        mask[p] = 0;
    }
    int nbad = (int)gsl_rng_uniform_int(r, 4);
    for (int q = 0; q < nbad; q++) {  /* cosmic rays, dead pixels: flagged */
        int p = (int)gsl_rng_uniform_int(r, (unsigned long)o->n_pix);
        flux[p] = q % 2 ? 0.0f : (float)(10 * med);
        mask[p] = 1;
    }
    if (b->odd == 4) {  /* an artefact the pipeline did not flag */
        double rest = 4200 + 2800 * gsl_rng_uniform(r);  /* where every spectrum is observed, at rest */
        int p0 = (int)((rest * (1 + b->z) - o->lam0) / o->dlam), len = 12;
        if (p0 < 0) p0 = 0;
        if (p0 > o->n_pix - len) p0 = o->n_pix - len;
        for (int p = p0; p < p0 + len; p++) flux[p] += (float)(2.5 * med);
    }
}

static void draw(const sps_opt *o, gsl_rng *r, obj *b, size_t n_odd)
{
    for (size_t i = 0; i < o->n; i++) {
        b[i].ra = 150 + gsl_rng_uniform(r) * 10;
        b[i].dec = gsl_rng_uniform(r) * 10 - 5;
        b[i].z = 0.02 + 0.23 * gsl_rng_uniform(r);
        int sf = gsl_rng_uniform(r) < 0.5;
        b[i].t = sf ? 0.5 + 0.5 * gsl_rng_uniform(r) : 0.25 * gsl_rng_uniform(r);
        b[i].snr = 15 + 25 * gsl_rng_uniform(r);
        b[i].odd = 0;
    }
    /* oddities on an even stride of rows, the kinds in turn; wrongz on a
     * passive galaxy, broadline on a star-forming one */
    for (size_t q = 0; q < n_odd; q++) {
        size_t i = (q * o->n) / n_odd + o->n / (2 * n_odd);
        b[i].odd = 1 + (int)(q % 4);
        if (b[i].odd == 1) b[i].t = 0.1;
        if (b[i].odd == 2) b[i].t = 0.7;
    }
}

static int write_fits(const sps_opt *o, const obj *b, const float *flux, const uint8_t *mask, ody_err *err)
{
    size_t n = o->n, L = (size_t)o->n_pix;
    fitsout w;
    int rc = fitsout_open(&w, o->out, 1, err);
    if (rc) return rc;
    int status = 0;
    char ff[32], mf[32];
    snprintf(ff, sizeof ff, "%dI", o->n_pix);
    snprintf(mf, sizeof mf, "%dB", o->n_pix);
    char *tt[] = {"ID", "RA", "DEC", "Z", "KIND", "ODDITY", "IS_ODD", "SNR", "FLUX", "MASK"};
    char *tf[] = {"K", "D", "D", "E", "11A", "9A", "L", "E", ff, mf};
    char *tu[] = {"", "deg", "deg", "", "", "", "", "", "1e-17 erg/s/cm2/Angstrom", ""};
    fits_create_tbl(w.f, BINARY_TBL, 0, 10, tt, tf, tu, "SPECTRA", &status);
    double scale = 0.01;  /* int16 steps of 0.01 (the noise is ~1): up to 327 */
    fits_write_key(w.f, TDOUBLE, "TSCAL9", &scale, "flux = stored value x TSCAL9", &status);
    double zero = 0;
    fits_write_key(w.f, TDOUBLE, "TZERO9", &zero, NULL, &status);
    fits_set_tscale(w.f, 9, scale, 0, &status);
    double crpix = 1;
    fits_write_key(w.f, TDOUBLE, "1CRVL9", (void *)&o->lam0, "observed wavelength of pixel 1 (Angstrom)", &status);
    fits_write_key(w.f, TDOUBLE, "1CDLT9", (void *)&o->dlam, "Angstrom a pixel", &status);
    fits_write_key(w.f, TDOUBLE, "1CRPX9", &crpix, NULL, &status);
    fits_write_key(w.f, TSTRING, "1CTYP9", "WAVE", NULL, &status);
    fits_write_key(w.f, TSTRING, "1CUNI9", "Angstrom", NULL, &status);
    long long seed = (long long)o->seed;
    fits_write_key(w.f, TSTRING, "ORIGIN", "oddsky simulate --spectra", "mock galaxy spectra", &status);
    fits_write_key(w.f, TLONGLONG, "SEED", &seed, "RNG seed", &status);
    for (size_t i = 0; i < n && !status; i++) {
        long long id = (long long)i + 1;
        float z = (float)b[i].z, snr = (float)b[i].snr;
        char kind[12], *kp = kind, odd[10], *op = odd, is = b[i].odd != 0;
        snprintf(kind, sizeof kind, "%s", b[i].t >= 0.5 ? "starforming" : "passive");
        snprintf(odd, sizeof odd, "%s", ODD_NAME[b[i].odd]);
        LONGLONG row = (LONGLONG)i + 1;
        fits_write_col(w.f, TLONGLONG, 1, row, 1, 1, &id, &status);
        fits_write_col(w.f, TDOUBLE, 2, row, 1, 1, (void *)&b[i].ra, &status);
        fits_write_col(w.f, TDOUBLE, 3, row, 1, 1, (void *)&b[i].dec, &status);
        fits_write_col(w.f, TFLOAT, 4, row, 1, 1, &z, &status);
        fits_write_col(w.f, TSTRING, 5, row, 1, 1, &kp, &status);
        fits_write_col(w.f, TSTRING, 6, row, 1, 1, &op, &status);
        fits_write_col(w.f, TLOGICAL, 7, row, 1, 1, &is, &status);
        fits_write_col(w.f, TFLOAT, 8, row, 1, 1, &snr, &status);
        fits_write_col(w.f, TFLOAT, 9, row, 1, (LONGLONG)L, (void *)(flux + i * L), &status);
        fits_write_col(w.f, TBYTE, 10, row, 1, (LONGLONG)L, (void *)(mask + i * L), &status);
    }
    return fitsout_finish(&w, status ? ody_fits_fail(err, status, o->out, "cannot write the spectra", NULL) : 0, err);
}

int sps_write(const sps_opt *o, const ody_log *log, ody_err *err)
{
    if (!o->out) return ody_fail(err, ODY_EINPUT, "simulate --spectra: give the output file with -o");
    if (o->n < 10 || o->n_pix < 100 || !(o->frac_odd >= 0 && o->frac_odd < 0.5))
        return ody_fail(err, ODY_EINPUT, "simulate --spectra: need at least 10 spectra of 100 pixels and an oddity "
                        "fraction in [0, 0.5)");
    size_t n = o->n, L = (size_t)o->n_pix, n_odd = (size_t)lround(o->frac_odd * (double)n);
    obj *b = malloc(n * sizeof *b);
    float *flux = malloc(n * L * sizeof *flux);
    uint8_t *mask = malloc(n * L);
    gsl_rng *r = gsl_rng_alloc(gsl_rng_mt19937);
    int rc = b && flux && mask && r ? 0 : ody_fail(err, ODY_ENOMEM, "simulate: out of memory for %zu spectra", n);
    if (!rc) {
        gsl_rng_set(r, (unsigned long)o->seed);
        draw(o, r, b, n_odd);
        for (size_t i = 0; i < n; i++) {
            double sv = b[i].t < 0.5 ? 150 + 100 * gsl_rng_uniform(r) : 60 + 40 * gsl_rng_uniform(r);
            double z2 = b[i].z + 0.08 + 0.12 * gsl_rng_uniform(r);
            sps_model(o, b[i].t, b[i].z, sv, b[i].odd < 4 ? b[i].odd : 0, z2, flux + i * L);
            for (size_t p = 0; p < L; p++) flux[i * L + p] *= 20;  /* ~20 x 1e-17 cgs */
            observe(o, r, &b[i], flux + i * L, mask + i * L);
            for (size_t p = 0; p < L; p++) flux[i * L + p] = fmaxf(-327.0f, fminf(327.0f, flux[i * L + p]));
        }
        rc = write_fits(o, b, flux, mask, err);
        if (!rc) ody_logf(log, ODY_LOG_INFO, "simulate: wrote %zu spectra (%zu oddities) to %s", n, n_odd, o->out);
    }
    free(b), free(flux), free(mask);
    if (r) gsl_rng_free(r);
    return rc;
}
