/* catspec.c — spectra to features: rest frame, one grid, masked pixels,
 * normalisation, downsampling (cat_spec in cat.h). */
#define _GNU_SOURCE
#include "catspec.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* ================================================================ opening */

/* A variable-length column's longest row, as its repeat: rows are read into
 * that width, the shorter padded as missing pixels (NaN wavelengths), which
 * one_spectrum trims as it does a fixed-size column's padding. */
static int vla_longest(fitsfile *f, const char *file, const char *role, colref *ref, ody_err *err)
{
    enum { STEP = 4096 };
    LONGLONG nrows = 0, len[STEP], off[STEP], most = 0, at = 0, past = 0;
    long long heap = catcol_heap_size(f);
    int status = 0;
    fits_get_num_rowsll(f, &nrows, &status);
    for (LONGLONG r = 1; r <= nrows && !status && !past; r += STEP) {
        LONGLONG n = nrows - r + 1 < STEP ? nrows - r + 1 : STEP;
        fits_read_descriptsll(f, ref->colnum, r, n, len, off, &status);
        for (LONGLONG k = 0; k < n && !status && !past; k++) {
            if (len[k] > most) most = len[k], at = r + k;
            if (catcol_vla_outside(len[k], off[k], ref->width, heap)) past = r + k;
        }
    }
    if (status) return ody_fits_fail(err, status, file, "cannot read the row lengths of a variable-length column", NULL);
    if (past)
        return ody_fail(err, ODY_EINPUT, "%s: spectra.%s column '%s' at row %lld points past the end of the table's "
                        "heap — the file is damaged or truncated: check it with `fitsverify %s`", file, role, ref->name,
                        past, file);
    if (most > CATCOL_VLA_MAX)
        return ody_fail(err, ODY_EINPUT, "%s: spectra.%s column '%s' claims %lld pixels at row %lld — at most 10^7 a "
                        "spectrum: is the file intact?", file, role, ref->name, most, at);
    if (most == 0 && nrows > 0)
        return ody_fail(err, ODY_EINPUT, "%s: spectra.%s column '%s' is empty in every row — name the column that "
                        "holds the spectra", file, role, ref->name);
    ref->repeat = most > 0 ? (long)most : 1;
    return 0;
}

static int resolve_vector(fitsfile *f, const char *file, const char *name, const char *role, long L, colref *ref,
                          ody_err *err)
{
    char spec[96];
    snprintf(spec, sizeof spec, "%.80s[1]", name);
    int rc = catcol_resolve_vla(f, file, spec, role, ref, err);
    if (!rc && ref->typecode == TSTRING)
        rc = ody_fail(err, ODY_EINPUT, "%s: spectra.%s column '%s' holds strings — name a numeric vector column", file,
                      role, name);
    if (!rc && ref->vla) rc = vla_longest(f, file, role, ref, err);
    if (!rc && ref->vla && L > 0) ref->repeat = L;  /* its rows, cut or padded to the flux's width */
    if (!rc && L > 0 && ref->repeat != L)
        rc = ody_fail(err, ODY_EINPUT, "%s: spectra.%s column '%s' has %ld elements a row but the flux has %ld — "
                      "name the column that goes with spectra.flux", file, role, name, ref->repeat, L);
    return rc;
}

/* The input wavelengths from the flux column's vector WCS. */
static int wcs_grid(fitsfile *f, const char *file, specrd *sr, ody_err *err)
{
    double crval = 0, cdelt = 0, crpix = 1;
    char key[FLEN_KEYWORD];
    int status = 0;
    snprintf(key, sizeof key, "1CRVL%d", sr->flux.colnum);
    fits_read_key(f, TDOUBLE, key, &crval, NULL, &status);
    snprintf(key, sizeof key, "1CDLT%d", sr->flux.colnum);
    fits_read_key(f, TDOUBLE, key, &cdelt, NULL, &status);
    if (status || cdelt == 0) {
        fits_clear_errmsg();
        return ody_fail(err, ODY_EINPUT, "%s: spectra.flux '%s' has no wavelength grid (keywords 1CRVL%d and 1CDLT%d) "
                        "— name a column of wavelengths in spectra.wave", file, sr->flux.name, sr->flux.colnum,
                        sr->flux.colnum);
    }
    snprintf(key, sizeof key, "1CRPX%d", sr->flux.colnum);
    if (fits_read_key(f, TDOUBLE, key, &crpix, NULL, &status)) crpix = 1;
    fits_clear_errmsg();
    if (!(sr->lam = malloc((size_t)sr->L * sizeof *sr->lam))) return ody_fail(err, ODY_ENOMEM, "out of memory");
    for (long k = 0; k < sr->L; k++) {
        double v = crval + ((double)(k + 1) - crpix) * cdelt;
        sr->lam[k] = sr->o->loglam ? pow(10, v) : v;
    }
    return 0;
}

/* The grid: the configured one, or the input's when it is common and at rest. */
static int make_grid(const char *file, specrd *sr, ody_err *err)
{
    const cat_spec *o = sr->o;
    if (o->grid_step > 0) {
        if (!(o->grid_stop > o->grid_start))
            return ody_fail(err, ODY_EINPUT, "spectra.grid: stop %g is not above start %g", o->grid_stop, o->grid_start);
        double n = floor((o->grid_stop - o->grid_start) / o->grid_step + 1e-9) + 1;
        if (n > 1e6)
            return ody_fail(err, ODY_EINPUT, "%s: spectra.grid makes %.0f bins — at most 10^6: raise spectra.grid_step",
                            file, n);
        sr->G = (int)n, sr->g0 = o->grid_start, sr->dg = o->grid_step;
        return 0;
    }
    if (sr->has_wave || sr->has_z || !sr->lam || o->loglam)
        return ody_fail(err, ODY_EINPUT, "%s: spectra need a common rest-frame grid here (a redshift column, "
                        "wavelengths a row or log10 wavelengths) — set spectra.grid_start, grid_stop and grid_step "
                        "(Angstrom)", file);
    int desc = sr->lam[sr->L - 1] < sr->lam[0];  /* a negative step: bins from the bluest */
    sr->G = (int)sr->L, sr->g0 = sr->lam[desc ? sr->L - 1 : 0], sr->dg = fabs(sr->lam[1] - sr->lam[0]);
    return 0;
}

static int names(specrd *sr, const char *file, ody_err *err)
{
    int ds = sr->o->downsample > 1 ? sr->o->downsample : 1;
    sr->n_out = sr->G / ds;
    if (sr->n_out < 1)
        return ody_fail(err, ODY_EINPUT, "%s: spectra.downsample = %d is more than the %d bins of the spectra's own "
                        "grid — set it to at most %d", file, ds, sr->G, sr->G);
    if (!(sr->names = calloc((size_t)sr->n_out, sizeof *sr->names))) return ody_fail(err, ODY_ENOMEM, "out of memory");
    for (int k = 0; k < sr->n_out; k++) {
        double c = sr->g0 + sr->dg * ((double)k * ds + (ds - 1) / 2.0);
        if (asprintf(&sr->names[k], "%s@%.6g", sr->flux.name, c) < 0) {
            sr->names[k] = NULL;
            return ody_fail(err, ODY_ENOMEM, "out of memory");
        }
    }
    return 0;
}

static int buffers(specrd *sr, ody_err *err)
{
    size_t n = (size_t)sr->chunk * (size_t)sr->L, G = (size_t)sr->G;
    sr->fbuf = malloc(n * sizeof(double));
    sr->fnul = malloc(n);
    if (sr->has_wave) sr->wbuf = malloc(n * sizeof(double)), sr->wnul = malloc(n);
    if (sr->has_ivar) sr->ibuf = malloc(n * sizeof(double)), sr->inul = malloc(n);
    if (sr->has_mask) sr->mbuf = malloc(n * sizeof(double)), sr->mnul = malloc(n);
    sr->zbuf = malloc((size_t)sr->chunk * sizeof(double) * (size_t)(sr->has_z ? sr->z.repeat : 1));
    sr->znul = malloc((size_t)sr->chunk * (size_t)(sr->has_z ? sr->z.repeat : 1));
    sr->row_lam = malloc((size_t)sr->L * sizeof(double));
    sr->row_edge = malloc(((size_t)sr->L + 1) * sizeof(double));
    sr->out = malloc(G * sizeof(double));
    sr->cov = malloc(G * sizeof(double));
    sr->why_row = malloc((size_t)sr->chunk);
    int ok = sr->fbuf && sr->fnul && (!sr->has_wave || (sr->wbuf && sr->wnul)) &&
             (!sr->has_ivar || (sr->ibuf && sr->inul)) && (!sr->has_mask || (sr->mbuf && sr->mnul)) && sr->zbuf &&
             sr->znul && sr->row_lam && sr->row_edge && sr->out && sr->cov && sr->why_row;
    return ok ? 0 : ody_fail(err, ODY_ENOMEM, "out of memory for spectra (%ld pixels x %ld rows)", sr->L, sr->chunk);
}

int spec_open(fitsfile *f, const char *file, const cat_spec *o, long chunk, specrd *sr, ody_err *err)
{
    memset(sr, 0, sizeof *sr);
    sr->o = o;
    sr->chunk = chunk;
    int rc = resolve_vector(f, file, o->flux, "flux", 0, &sr->flux, err);
    sr->L = sr->flux.repeat;
    if (!rc && sr->L < 2)
        rc = ody_fail(err, ODY_EINPUT, "%s: spectra.flux '%s' holds %sone value a row — a spectrum is a vector column",
                      file, o->flux, sr->flux.vla ? "at most " : "");
    if (!rc && (sr->has_wave = o->wave && o->wave[0])) rc = resolve_vector(f, file, o->wave, "wave", sr->L, &sr->wave, err);
    if (!rc && (sr->has_ivar = o->ivar && o->ivar[0])) rc = resolve_vector(f, file, o->ivar, "ivar", sr->L, &sr->ivar, err);
    if (!rc && (sr->has_mask = o->mask && o->mask[0])) rc = resolve_vector(f, file, o->mask, "mask", sr->L, &sr->mask, err);
    if (!rc && (sr->has_z = o->redshift && o->redshift[0])) {
        rc = catcol_resolve(f, file, o->redshift, "redshift", &sr->z, err);
        if (!rc && sr->z.typecode == TSTRING)
            rc = ody_fail(err, ODY_EINPUT, "%s: spectra.redshift '%s' holds strings — name a numeric column", file,
                          o->redshift);
    }
    if (!rc && !sr->has_wave) rc = wcs_grid(f, file, sr, err);
    if (!rc) rc = make_grid(file, sr, err);
    if (!rc) rc = names(sr, file, err);
    long wide = sr->L > sr->G ? sr->L : sr->G;  /* a chunk's buffers at most 2^22 pixels or bins a row set */
    if (!rc && sr->chunk > 1 && sr->chunk * wide > (1L << 22)) sr->chunk = (1L << 22) / wide > 1 ? (1L << 22) / wide : 1;
    if (!rc) rc = buffers(sr, err);
    if (rc) spec_close(sr);
    return rc;
}

void spec_close(specrd *sr)
{
    for (int k = 0; sr->names && k < sr->n_out; k++) free(sr->names[k]);
    free(sr->names);
    free(sr->lam);
    free(sr->fbuf); free(sr->wbuf); free(sr->ibuf); free(sr->mbuf); free(sr->zbuf);
    free(sr->fnul); free(sr->wnul); free(sr->inul); free(sr->mnul); free(sr->znul);
    free(sr->row_lam); free(sr->row_edge); free(sr->out); free(sr->cov); free(sr->why_row);
    memset(sr, 0, sizeof *sr);
}

/* ================================================================ one spectrum */

/* Flux-conserving resampling: each grid bin gets the mean of the input flux
 * density over the bin, input pixel i covering [edge_i, edge_i+1); masked
 * pixels contribute nothing, and a bin less than half covered by good
 * pixels is empty (cov < 0.5). */
static void resample(specrd *sr, const double *flux, const char *good, long L)
{
    int G = sr->G;
    const double *lam = sr->row_lam;
    double *e = sr->row_edge;
    for (long i = 1; i < L; i++) e[i] = 0.5 * (lam[i - 1] + lam[i]);
    e[0] = lam[0] - (e[1] - lam[0]);
    e[L] = lam[L - 1] + (lam[L - 1] - e[L - 1]);
    long i = 0;
    for (int k = 0; k < G; k++) {
        double b0 = sr->g0 + (k - 0.5) * sr->dg, b1 = b0 + sr->dg, sum = 0, w = 0;
        while (i < L && e[i + 1] <= b0) i++;
        for (long j = i; j < L && e[j] < b1; j++) {
            double ov = fmin(b1, e[j + 1]) - fmax(b0, e[j]);
            if (ov <= 0 || !good[j]) continue;
            sum += flux[j] * ov, w += ov;
        }
        sr->cov[k] = w / sr->dg;
        sr->out[k] = w > 0 ? sum / w : NAN;
    }
}

/* Fills empty bins by linear interpolation between the nearest good bins
 * (the nearest one at the ends); returns how many bins were good. */
static int fill_gaps(specrd *sr)
{
    int G = sr->G, last = -1, n_good = 0;
    double *o = sr->out;
    for (int k = 0; k < G; k++) {
        if (!(sr->cov[k] >= 0.5) || !isfinite(o[k])) { sr->n_masked++; continue; }
        n_good++;
        for (int m = last + 1; m < k; m++)
            o[m] = last < 0 ? o[k] : o[last] + (o[k] - o[last]) * (double)(m - last) / (double)(k - last);
        last = k;
    }
    for (int m = last + 1; last >= 0 && m < G; m++) o[m] = o[last];
    return n_good;
}

static int cmp_double(const void *a, const void *b)
{
    double x = *(const double *)a, y = *(const double *)b;
    return (x > y) - (x < y);
}

/* Divides by the median over the window; 0 when it is not positive. */
static int normalise(specrd *sr)
{
    const cat_spec *o = sr->o;
    if (!(o->norm_hi > o->norm_lo)) return 1;
    double *tmp = sr->cov;  /* free again after fill_gaps */
    int m = 0;
    for (int k = 0; k < sr->G; k++) {
        double c = sr->g0 + k * sr->dg;
        if (c >= o->norm_lo && c <= o->norm_hi) tmp[m++] = sr->out[k];
    }
    if (!m) return 0;
    qsort(tmp, (size_t)m, sizeof *tmp, cmp_double);
    double med = m % 2 ? tmp[m / 2] : 0.5 * (tmp[m / 2 - 1] + tmp[m / 2]);
    if (!(med > 0)) return 0;
    for (int k = 0; k < sr->G; k++) sr->out[k] /= med;
    return 1;
}

/* A spectrum stored red to blue (its wavelengths decrease throughout, as
 * some instruments write them) turned blue to red, in place. */
static void reverse_row(specrd *sr, double *flux, char *good, long L)
{
    for (long i = 0, j = L - 1; i < j; i++, j--) {
        double t = flux[i];
        flux[i] = flux[j], flux[j] = t;
        t = sr->row_lam[i], sr->row_lam[i] = sr->row_lam[j], sr->row_lam[j] = t;
        char g = good[i];
        good[i] = good[j], good[j] = g;
    }
}

/* Row r of the chunk into vals; CAT_SPEC_WHY when it is usable, else why it
 * is a missing value. */
static int one_spectrum(specrd *sr, long r, double *vals, size_t cn)
{
    long L = sr->L;
    double *flux = sr->fbuf + r * L;
    char *good = sr->fnul + r * L;  /* turned into "good" flags in place */
    double z = 0;
    if (sr->has_z) {
        long k = r * sr->z.repeat + sr->z.elem - 1;
        z = sr->zbuf[k];
        if (sr->znul[k] || !isfinite(z) || z <= -1) return CAT_SPEC_NO_Z;
    }
    long n_flux = 0;  /* pixels with a flux, whatever their wavelength */
    for (long i = 0; i < L; i++) {
        double lam = sr->has_wave ? sr->wbuf[r * L + i] : sr->lam[i];
        if (sr->has_wave && sr->o->loglam) lam = pow(10, lam);
        sr->row_lam[i] = lam / (1 + z);
        int ok = !good[i] && isfinite(flux[i]);
        if (sr->has_ivar) ok = ok && !sr->inul[r * L + i] && sr->ibuf[r * L + i] > 0;
        if (sr->has_mask) ok = ok && !sr->mnul[r * L + i] && sr->mbuf[r * L + i] == 0;
        n_flux += ok;
        good[i] = (char)(ok && (!sr->has_wave || (!sr->wnul[r * L + i] && isfinite(lam))));
    }
    if (!n_flux) return CAT_SPEC_EMPTY;
    /* A shorter spectrum in a wider column: the unused pixels at either end have no wavelength (NaN, 0). */
    long i0 = 0, i1 = L - 1;
    while (i0 < L && !(sr->row_lam[i0] > 0 && isfinite(sr->row_lam[i0]))) i0++;
    while (i1 > i0 && !(sr->row_lam[i1] > 0 && isfinite(sr->row_lam[i1]))) i1--;
    if (i1 <= i0) return CAT_SPEC_WAVE;
    if (i0 > 0) memmove(sr->row_lam, sr->row_lam + i0, (size_t)(i1 - i0 + 1) * sizeof *sr->row_lam);
    flux += i0, good += i0, L = i1 - i0 + 1;
    if (sr->row_lam[L - 1] < sr->row_lam[0]) reverse_row(sr, flux, good, L);
    for (long i = 1; i < L; i++)
        if (!(sr->row_lam[i] > sr->row_lam[i - 1])) return CAT_SPEC_WAVE;  /* resampling needs them in order */
    if (!sr->have_first) {  /* where the spectra lie, for an error when none is usable */
        long g0 = 0, g1 = L - 1;
        while (g0 < L && !good[g0]) g0++;
        while (g1 > g0 && !good[g1]) g1--;
        if (g0 < L) sr->have_first = 1, sr->first_lo = sr->row_lam[g0], sr->first_hi = sr->row_lam[g1];
    }
    resample(sr, flux, good, L);
    if (fill_gaps(sr) * 2 < sr->G) return CAT_SPEC_COVER;
    if (!normalise(sr)) return CAT_SPEC_NORM;
    int ds = sr->o->downsample > 1 ? sr->o->downsample : 1;
    for (int k = 0; k < sr->n_out; k++) {
        double s = 0;
        for (int q = 0; q < ds; q++) s += sr->out[k * ds + q];
        vals[(size_t)k * cn + (size_t)r] = s / ds;
    }
    return CAT_SPEC_WHY;
}

/* ================================================================ a chunk */

/* Rows [row0, row0+nr) of ref, ref->repeat values a row.  A variable-length
 * array's rows are read one by one, the shorter padded with NaN flagged
 * null (a pixel that is not there), the longer cut. */
static int read_block(fitsfile *f, const colref *ref, long row0, long nr, double *buf, char *nul, int *status)
{
    int anynul = 0;
    if (!ref->vla) return fits_read_colnull(f, TDOUBLE, ref->colnum, row0, 1, nr * ref->repeat, buf, nul, &anynul, status);
    long L = ref->repeat;
    for (long r = 0; r < nr && !*status; r++) {
        LONGLONG len = 0, off = 0;
        fits_read_descriptll(f, ref->colnum, row0 + r, &len, &off, status);
        long n = len < L ? (long)len : L;
        if (n > 0 && !*status)
            fits_read_colnull(f, TDOUBLE, ref->colnum, row0 + r, 1, n, buf + r * L, nul + r * L, &anynul, status);
        for (long k = n < 0 ? 0 : n; k < L; k++) buf[r * L + k] = NAN, nul[r * L + k] = 1;
    }
    return *status;
}

int spec_chunk(fitsfile *f, const char *file, specrd *sr, long row0, long nr, double *vals, char *nul, size_t cn,
               ody_err *err)
{
    int status = 0;
    read_block(f, &sr->flux, row0, nr, sr->fbuf, sr->fnul, &status);
    if (sr->has_wave) read_block(f, &sr->wave, row0, nr, sr->wbuf, sr->wnul, &status);
    if (sr->has_ivar) read_block(f, &sr->ivar, row0, nr, sr->ibuf, sr->inul, &status);
    if (sr->has_mask) read_block(f, &sr->mask, row0, nr, sr->mbuf, sr->mnul, &status);
    if (sr->has_z) read_block(f, &sr->z, row0, nr, sr->zbuf, sr->znul, &status);
    if (status) {
        char what[160];
        snprintf(what, sizeof what, "cannot read the spectra at rows %ld-%ld", row0, row0 + nr - 1);
        return ody_fits_fail(err, status, file, what, NULL);
    }
    for (long r = 0; r < nr; r++) {
        int why = one_spectrum(sr, r, vals, cn), ok = why == CAT_SPEC_WHY;
        sr->why_row[r] = (unsigned char)why;
        sr->n_bad += !ok;
        if (!ok) sr->n_bad_why[why]++;
        for (int k = 0; k < sr->n_out; k++) nul[(size_t)k * cn + (size_t)r] = (char)!ok;
    }
    return 0;
}
