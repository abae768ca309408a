/* sim.c — mock photometric catalog. */
#define _GNU_SOURCE
#include "sim.h"

#include <fitsio.h>
#include <gsl/gsl_randist.h>
#include <gsl/gsl_rng.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "fitsout.h"

void sim_cat_opt_init(sim_cat_opt *o)
{
    memset(o, 0, sizeof *o);
    o->n = 2000;
    o->seed = 1;
    o->frac_star = 0.30;
    o->frac_qso = 0.08;
    o->frac_anomaly = 0.01;
}

int sim_cat_opt_check(const sim_cat_opt *o, ody_err *err)
{
    if (!o->out || !o->out[0])
        return ody_fail(err, ODY_EINPUT, "simulate: no output file given — pass -o FILE.fits");
    if (o->n < 10 || o->n > 100000000)
        return ody_fail(err, ODY_EINPUT, "simulate: n = %zu is out of range — use 10 to 10^8", o->n);
    if (o->frac_star < 0 || o->frac_qso < 0 || o->frac_anomaly < 0 ||
        o->frac_star + o->frac_qso > 0.95 || o->frac_anomaly > 0.5)
        return ody_fail(err, ODY_EINPUT, "simulate: fractions must be >= 0 with stars + quasars "
                        "<= 0.95 and anomalies <= 0.5");
    return 0;
}

/* ================================================================ populations */

typedef struct obj {
    double ra, dec, mag[5], z;
    int cls;      /* 0 galaxy, 1 star, 2 qso */
    int anomaly;  /* 0 none, else kind */
} obj;

static const char *class_name[] = {"GALAXY", "STAR", "QSO"};
static const char *anomaly_name[] = {"none", "colour", "zmismatch", "bandspike", "stelz"};

/* Distance modulus for a flat LCDM-ish universe (H0 = 70), good enough for
 * mock magnitudes: luminosity distance by a short numerical integral. */
static double distmod(double z)
{
    const double c_h0 = 299792.458 / 70.0; /* Mpc */
    double dc = 0;
    int steps = 64;
    for (int k = 0; k < steps; k++) {
        double zz = (k + 0.5) * z / steps;
        dc += 1.0 / sqrt(0.3 * pow(1 + zz, 3) + 0.7);
    }
    dc *= c_h0 * z / steps;
    double dl = dc * (1 + z) * 1e6; /* pc */
    return 5 * log10(dl / 10);
}

/* r-band magnitude and colours to the five magnitudes (u g r i z). */
static void set_mags(obj *o, double rmag, double ug, double gr, double ri, double iz)
{
    o->mag[2] = rmag;
    o->mag[1] = rmag + gr;
    o->mag[0] = o->mag[1] + ug;
    o->mag[3] = rmag - ri;
    o->mag[4] = o->mag[3] - iz;
}

static void galaxy(gsl_rng *r, obj *o)
{
    int red = gsl_rng_uniform(r) < 0.45;
    double z = 0.02 + gsl_ran_gamma(r, 2.2, 0.055);
    if (z > 0.8) z = 0.8 - 0.1 * gsl_rng_uniform(r);
    double M = (red ? -21.3 : -20.6) + gsl_ran_gaussian(r, 0.9);
    double rmag = M + distmod(z) - 2.5 * log10(1 + z) + (red ? 0.9 : 0.3) * z;
    double gr = red ? 0.72 + 1.1 * z + gsl_ran_gaussian(r, 0.05) : 0.40 + 0.7 * z + gsl_ran_gaussian(r, 0.11);
    double ug = red ? 1.75 + 0.8 * z + gsl_ran_gaussian(r, 0.12) : 1.15 + 0.4 * z + gsl_ran_gaussian(r, 0.22);
    double ri = red ? 0.40 + 0.6 * z + gsl_ran_gaussian(r, 0.04) : 0.28 + 0.35 * z + gsl_ran_gaussian(r, 0.07);
    double iz = red ? 0.33 + 0.3 * z + gsl_ran_gaussian(r, 0.05) : 0.20 + 0.2 * z + gsl_ran_gaussian(r, 0.08);
    o->z = z;
    set_mags(o, rmag, ug, gr, ri, iz);
}

static void star(gsl_rng *r, obj *o)
{
    /* Position t along the stellar locus, hot (0) to cool (1). */
    double t = gsl_ran_beta(r, 2.0, 2.5);
    double gr = -0.25 + 1.7 * t + gsl_ran_gaussian(r, 0.03);
    double ug = 0.7 + 2.2 * t - 0.9 * t * t + gsl_ran_gaussian(r, 0.06);
    double ri = -0.1 + 0.5 * t + 1.4 * t * t * t + gsl_ran_gaussian(r, 0.03);
    double iz = -0.05 + 0.25 * t + 0.6 * t * t * t + gsl_ran_gaussian(r, 0.03);
    double rmag = 14.5 + 6.5 * gsl_ran_beta(r, 2.5, 1.5);
    o->z = gsl_ran_gaussian(r, 0.0002);
    set_mags(o, rmag, ug, gr, ri, iz);
}

static void quasar(gsl_rng *r, obj *o)
{
    double z = 0.3 + gsl_ran_gamma(r, 3.0, 0.45);
    if (z > 4.5) z = 4.5 - gsl_rng_uniform(r);
    /* Lyman-alpha forest drags u (then g) down at high redshift. */
    double ug = 0.15 + gsl_ran_gaussian(r, 0.12) + (z > 2.3 ? 1.4 * (z - 2.3) : 0);
    double gr = 0.15 + gsl_ran_gaussian(r, 0.10) + (z > 3.3 ? 0.9 * (z - 3.3) : 0);
    double ri = 0.12 + 0.05 * sin(2.2 * z) + gsl_ran_gaussian(r, 0.08);
    double iz = 0.05 + 0.05 * cos(1.7 * z) + gsl_ran_gaussian(r, 0.08);
    double rmag = 17.8 + 2.8 * gsl_ran_beta(r, 3, 2);
    o->z = z;
    set_mags(o, rmag, ug, gr, ri, iz);
}

static void inject_anomaly(gsl_rng *r, obj *o)
{
    int kind = 1 + (int)gsl_rng_uniform_int(r, 4);
    galaxy(r, o);
    o->cls = 0;
    o->anomaly = kind;
    switch (kind) {
    case 1: /* colours off every sequence: very blue u-g with red g-r */
        o->mag[0] = o->mag[1] - 0.2 + gsl_ran_gaussian(r, 0.1);
        o->mag[1] = o->mag[2] + 1.6 + gsl_ran_gaussian(r, 0.1);
        o->mag[0] = o->mag[1] - 0.1;
        break;
    case 2: /* a low-z galaxy's colours with a high redshift */
        o->z = 1.2 + 0.4 * gsl_rng_uniform(r);
        break;
    case 3: { /* one band off by ~2 mag (an emission line or a glitch) */
        int b = (int)gsl_rng_uniform_int(r, 5);
        o->mag[b] -= 1.8 + 0.5 * gsl_rng_uniform(r);
        break;
    }
    default: /* a star's colours at a galaxy redshift */
        star(r, o);
        o->cls = 1;
        o->z = 0.3 + 0.3 * gsl_rng_uniform(r);
        break;
    }
}

/* ================================================================ writing */

/* Draws the n objects from one RNG seeded by the options; returns the
 * number of injected anomalies. */
static size_t draw_objects(const sim_cat_opt *o, gsl_rng *r, obj *objs)
{
    static const double lim[5] = {22.0, 22.2, 22.2, 21.3, 20.5};
    size_t n_anom = 0;
    for (size_t k = 0; k < o->n; k++) {
        obj *p = &objs[k];
        memset(p, 0, sizeof *p);
        double u = gsl_rng_uniform(r);
        if (gsl_rng_uniform(r) < o->frac_anomaly) { inject_anomaly(r, p); n_anom++; }
        else if (u < o->frac_star) { star(r, p); p->cls = 1; }
        else if (u < o->frac_star + o->frac_qso) { quasar(r, p); p->cls = 2; }
        else { galaxy(r, p); p->cls = 0; }
        /* A patch of sky 10 x 10 deg around (180, 20). */
        p->ra = 175 + 10 * gsl_rng_uniform(r);
        p->dec = 15 + 10 * gsl_rng_uniform(r);
        for (int b = 0; b < 5; b++) {
            /* Errors grow towards each band's limit; noise added accordingly. */
            double e = 0.01 + 0.06 * pow(10, 0.4 * (p->mag[b] - lim[b]));
            p->mag[b] += gsl_ran_gaussian(r, e > 0.8 ? 0.8 : e);
            p->mag[b] = round(p->mag[b] * 1e4) / 1e4;
        }
        p->z = round(p->z * 1e5) / 1e5;
    }
    return n_anom;
}

/* The CATALOG table's columns and the simulation's keywords. */
static void create_table(fitsfile *f, const sim_cat_opt *o, int *status)
{
    char *ttype[] = {"ID", "RA", "DEC", "U", "G", "R", "I", "Z", "REDSHIFT", "CLASS", "IS_ANOMALY", "ANOMALY"};
    char *tform[] = {"K", "D", "D", "E", "E", "E", "E", "E", "E", "6A", "L", "9A"};
    char *tunit[] = {"", "deg", "deg", "mag", "mag", "mag", "mag", "mag", "", "", "", ""};
    fits_create_tbl(f, BINARY_TBL, 0, 12, ttype, tform, tunit, "CATALOG", status);
    fits_write_key(f, TSTRING, "ORIGIN", "oddsky simulate", "mock photometric survey", status);
    long long seed = (long long)o->seed;
    fits_write_key(f, TLONGLONG, "SIMSEED", &seed, "RNG seed", status);
    double fs = o->frac_star, fq = o->frac_qso, fa = o->frac_anomaly;
    fits_write_key(f, TDOUBLE, "FSTAR", &fs, "fraction of stars", status);
    fits_write_key(f, TDOUBLE, "FQSO", &fq, "fraction of quasars", status);
    fits_write_key(f, TDOUBLE, "FANOM", &fa, "fraction of injected anomalies", status);
}

/* Buffers for one chunk of rows. */
typedef struct rowbuf {
    long long *id;
    double *dv;
    float *fv;
    char *lv;
    char **sv;
} rowbuf;

/* Writes rows [row0, row0 + nr). */
static void write_rows(fitsfile *f, const obj *objs, size_t row0, size_t nr, rowbuf *b, int *status)
{
    long long fr = (long long)row0 + 1;
    for (size_t k = 0; k < nr; k++) b->id[k] = (long long)(row0 + k + 1);
    fits_write_col(f, TLONGLONG, 1, fr, 1, (long long)nr, b->id, status);
    for (size_t k = 0; k < nr; k++) b->dv[k] = objs[row0 + k].ra;
    fits_write_col(f, TDOUBLE, 2, fr, 1, (long long)nr, b->dv, status);
    for (size_t k = 0; k < nr; k++) b->dv[k] = objs[row0 + k].dec;
    fits_write_col(f, TDOUBLE, 3, fr, 1, (long long)nr, b->dv, status);
    for (int band = 0; band < 5; band++) {
        for (size_t k = 0; k < nr; k++) b->fv[k] = (float)objs[row0 + k].mag[band];
        fits_write_col(f, TFLOAT, 4 + band, fr, 1, (long long)nr, b->fv, status);
    }
    for (size_t k = 0; k < nr; k++) b->fv[k] = (float)objs[row0 + k].z;
    fits_write_col(f, TFLOAT, 9, fr, 1, (long long)nr, b->fv, status);
    for (size_t k = 0; k < nr; k++) b->sv[k] = (char *)class_name[objs[row0 + k].cls];
    fits_write_col(f, TSTRING, 10, fr, 1, (long long)nr, b->sv, status);
    for (size_t k = 0; k < nr; k++) b->lv[k] = objs[row0 + k].anomaly != 0;
    fits_write_col(f, TLOGICAL, 11, fr, 1, (long long)nr, b->lv, status);
    for (size_t k = 0; k < nr; k++) b->sv[k] = (char *)anomaly_name[objs[row0 + k].anomaly];
    fits_write_col(f, TSTRING, 12, fr, 1, (long long)nr, b->sv, status);
}

static int write_catalog(const sim_cat_opt *o, const obj *objs, ody_err *err)
{
    fitsout w;
    int rc = fitsout_open(&w, o->out, o->overwrite, err), status = 0;
    if (rc) return rc;
    create_table(w.f, o, &status);
    long chunk = 1;
    fits_get_rowsize(w.f, &chunk, &status);
    if (chunk < 1) chunk = 1000;
    size_t c = (size_t)chunk;
    rowbuf b = {malloc(c * sizeof *b.id), malloc(c * sizeof *b.dv), malloc(c * sizeof *b.fv), malloc(c),
                malloc(c * sizeof *b.sv)};
    if (!b.id || !b.dv || !b.fv || !b.lv || !b.sv) rc = ody_fail(err, ODY_ENOMEM, "simulate: out of memory");
    for (size_t row0 = 0; !rc && row0 < o->n && !status; row0 += c)
        write_rows(w.f, objs, row0, o->n - row0 < c ? o->n - row0 : c, &b, &status);
    if (!rc && status) rc = ody_fits_fail(err, status, o->out, "cannot write the catalog", NULL);
    free(b.id); free(b.dv); free(b.fv); free(b.lv); free(b.sv);
    return fitsout_finish(&w, rc, err);
}

int sim_catalog(const sim_cat_opt *o, const ody_log *log, ody_err *err)
{
    int rc = sim_cat_opt_check(o, err);
    if (rc) return rc;
    obj *objs = malloc(o->n * sizeof *objs);
    gsl_rng *r = gsl_rng_alloc(gsl_rng_mt19937);
    if (!objs || !r) rc = ody_fail(err, ODY_ENOMEM, "simulate: out of memory for %zu objects", o->n);
    if (!rc) {
        gsl_rng_set(r, (unsigned long)o->seed);
        size_t n_anom = draw_objects(o, r, objs);
        rc = write_catalog(o, objs, err);
        if (!rc) ody_logf(log, ODY_LOG_INFO, "simulate: wrote %zu objects (%zu anomalies) to %s", o->n, n_anom, o->out);
    }
    free(objs);
    if (r) gsl_rng_free(r);
    return rc;
}

/* ================================================================ lens survey */

int sim_lens_survey(const sim_lens_opt *o, const ody_log *log, ody_err *err)
{
    const lens_sim_opt *so = &o->sim;
    size_t n = so->n, per = (size_t)so->n_bands * so->size * so->size;
    float *pix = malloc(n * per * sizeof *pix);
    lens_truth *t = malloc(n * sizeof *t);
    char **ids = calloc(n, sizeof *ids);
    int rc = !pix || !t || !ids ? ody_fail(err, ODY_ENOMEM, "simulate: out of memory for %zu cutouts", n) : 0;
    if (!rc) rc = lens_simulate(so, pix, t, err);
    for (size_t k = 0; !rc && k < n; k++)
        if (asprintf(&ids[k], "%zu", k + 1) < 0) rc = ody_fail(err, ODY_ENOMEM, "out of memory");
    /* the cutouts, leaving out every drop_every-th one */
    if (!rc) {
        size_t m = 0;
        char **kid = calloc(n, sizeof *kid);
        float *kpix = malloc(n * per * sizeof *kpix);
        if (!kid || !kpix) rc = ody_fail(err, ODY_ENOMEM, "out of memory");
        for (size_t k = 0; !rc && k < n; k++) {
            if (o->drop_every > 0 && (k + 1) % (size_t)o->drop_every == 0) continue;
            kid[m] = ids[k];
            memcpy(kpix + m * per, pix + k * per, per * sizeof *kpix);
            m++;
        }
        cut_opt co = o->cut;
        co.n_bands = so->n_bands;
        co.size = so->size;
        for (int b = 0; b < so->n_bands; b++) snprintf(co.band[b], sizeof co.band[b], "%s", so->band[b]);
        if (!rc) rc = cut_write(&co, kid, m, kpix, o->compress, err);
        free(kid);
        free(kpix);
    }
    fitsout w;
    if (!rc) rc = fitsout_open(&w, o->out, 1, err);
    if (!rc) {
        int status = 0;
        char *tt[] = {"ID", "RA", "DEC", "IS_LENS", "KIND", "THETA_E", "LENS_MAG", "SRC_MAG"};
        char *tf[] = {"K", "D", "D", "L", "8A", "E", "E", "E"};
        char *tu[] = {"", "deg", "deg", "", "", "arcsec", "mag", "mag"};
        fits_create_tbl(w.f, BINARY_TBL, 0, 8, tt, tf, tu, "CATALOG", &status);
        long long seed = (long long)so->seed;
        fits_write_key(w.f, TSTRING, "ORIGIN", (void *)"oddsky simulate --lens-survey", "mock lens survey", &status);
        fits_write_key(w.f, TLONGLONG, "SIMSEED", &seed, "RNG seed", &status);
        fits_write_key(w.f, TDOUBLE, "PIXSCALE", (void *)&so->pix_scale, "arcsec per pixel of the cutouts", &status);
        fits_write_key(w.f, TDOUBLE, "PSFFWHM", (void *)&so->psf_fwhm, "PSF FWHM [arcsec]", &status);
        for (size_t k = 0; k < n && !status; k++) {
            long long id = (long long)k + 1;
            double ra = 150 + 0.001 * (double)k, dec = 2 + 0.0007 * (double)(k % 997);
            char l = (char)t[k].is_lens;
            char kind[16], *kp = kind;
            snprintf(kind, sizeof kind, "%s", lens_kind_name(t[k].kind));
            float te = (float)t[k].theta_e, lm = (float)t[k].lens_mag, sm = (float)t[k].src_mag;
            LONGLONG r = (LONGLONG)k + 1;
            fits_write_col(w.f, TLONGLONG, 1, r, 1, 1, &id, &status);
            fits_write_col(w.f, TDOUBLE, 2, r, 1, 1, &ra, &status);
            fits_write_col(w.f, TDOUBLE, 3, r, 1, 1, &dec, &status);
            fits_write_col(w.f, TLOGICAL, 4, r, 1, 1, &l, &status);
            fits_write_col(w.f, TSTRING, 5, r, 1, 1, &kp, &status);
            fits_write_col(w.f, TFLOAT, 6, r, 1, 1, &te, &status);
            fits_write_col(w.f, TFLOAT, 7, r, 1, 1, &lm, &status);
            fits_write_col(w.f, TFLOAT, 8, r, 1, 1, &sm, &status);
        }
        rc = fitsout_finish(&w, status ? ody_fits_fail(err, status, o->out, "cannot write the catalog", NULL) : 0, err);
    }
    if (!rc) ody_logf(log, ODY_LOG_INFO, "simulate: wrote %zu lens-survey objects to %s, cutouts in %s", n, o->out, o->cut.path);
    for (size_t k = 0; ids && k < n; k++) free(ids[k]);
    free(ids);
    free(pix);
    free(t);
    return rc;
}
