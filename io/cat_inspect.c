/* cat_inspect.c — describing a FITS file (oddsky inspect). */
#include <fitsio.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "catcol.h"
#include "fitsin.h"
#include "tabin.h"

/* ================================================================ integrity */


/* ================================================================ inspect */

void cat_info_destroy(cat_info *info)
{
    if (!info) return;
    for (int h = 0; h < info->n_hdu; h++) free(info->hdu[h].cols);
    free(info->hdu);
    free(info);
}

/* The same for a variable-length array of numbers, a row at a time: -1
 * (status cleared) when a row cannot be read or claims over 10^7 elements,
 * a damaged heap being something to show as unknown, not to fail on. */
static long count_null_rows_vla(fitsfile *f, cat_colinfo *ci, int colnum, long nrows)
{
    long count = 0, cap = 0;
    double *v = NULL;
    char *nul = NULL;
    int status = 0;
    long long heap = catcol_heap_size(f);
    for (long r = 1; r <= nrows && count >= 0; r++) {
        LONGLONG len = 0, off = 0;
        int anynul = 0, bad = 0;
        if (fits_read_descriptll(f, colnum, r, &len, &off, &status) || len < 0 || len > CATCOL_VLA_MAX ||
            catcol_vla_outside(len, off, ci->width, heap))
            count = -1;
        if (count >= 0 && len > cap) {
            free(v), free(nul);
            cap = (long)len;
            v = malloc((size_t)cap * sizeof *v), nul = malloc((size_t)cap);
            if (!v || !nul) count = -1;
        }
        if (count >= 0 && len > 0 && fits_read_colnull(f, TDOUBLE, colnum, r, 1, len, v, nul, &anynul, &status))
            count = -1;
        for (long k = 0; count >= 0 && k < (long)len; k++) {
            if (nul[k] || !isfinite(v[k])) bad = 1;
            else ci->lo = fmin(ci->lo, v[k]), ci->hi = fmax(ci->hi, v[k]);
        }
        if (count >= 0) count += bad;
        if (count >= 0 && (ci->len_min < 0 || len < ci->len_min)) ci->len_min = (long)len;
        if (count >= 0 && len > ci->len_max) ci->len_max = (long)len;
    }
    if (count < 0) ci->len_min = ci->len_max = -1;
    free(v), free(nul);
    fits_clear_errmsg();
    return count;
}

/* Counts rows of a numeric column with any null/NaN/Inf element, and sets
 * ci's range of finite values. */
static long count_null_rows(fitsfile *f, cat_colinfo *ci, int colnum, long nrows, int *status)
{
    ci->lo = INFINITY;
    ci->hi = -INFINITY;
    ci->len_min = ci->len_max = -1;
    int t = ci->typecode < 0 ? -ci->typecode : ci->typecode;
    if (ci->typecode < 0 && t != TSTRING && t != TBIT && t != TLOGICAL && t != TCOMPLEX && t != TDBLCOMPLEX &&
        nrows > 0)
        return count_null_rows_vla(f, ci, colnum, nrows);
    if (ci->typecode < 0 || ci->typecode == TSTRING || ci->typecode == TBIT ||
        ci->typecode == TCOMPLEX || ci->typecode == TDBLCOMPLEX || ci->repeat < 1 || nrows < 1)
        return -1;
    long chunk = 0;
    fits_get_rowsize(f, &chunk, status);
    if (*status || chunk < 1) { *status = 0; chunk = 1000; }
    if (chunk * ci->repeat > (1L << 22)) chunk = (1L << 22) / ci->repeat + 1;
    double *v = malloc((size_t)(chunk * ci->repeat) * sizeof *v);
    char *nul = malloc((size_t)(chunk * ci->repeat));
    long count = 0;
    if (!v || !nul) { free(v); free(nul); return -1; }
    for (long row0 = 1; row0 <= nrows && !*status; row0 += chunk) {
        long nr = nrows - row0 + 1 < chunk ? nrows - row0 + 1 : chunk;
        int anynul = 0;
        long nel = nr * ci->repeat;
        if (ci->typecode == TLOGICAL) {
            fits_read_colnull(f, TLOGICAL, colnum, row0, 1, nel, (char *)v, nul, &anynul, status);
            for (long k = 0; k < nel; k++) v[k] = 0;  /* only nul matters */
        } else {
            fits_read_colnull(f, TDOUBLE, colnum, row0, 1, nel, v, nul, &anynul, status);
        }
        if (*status) break;
        for (long r = 0; r < nr; r++) {
            int bad = 0;
            for (long e = 0; e < ci->repeat; e++) {
                long k = r * ci->repeat + e;
                if (nul[k] || !isfinite(v[k])) {
                    bad = 1;
                    continue;
                }
                if (ci->typecode == TLOGICAL) continue;  /* no range: true and false */
                if (v[k] < ci->lo) ci->lo = v[k];
                if (v[k] > ci->hi) ci->hi = v[k];
            }
            count += bad;
        }
    }
    free(v);
    free(nul);
    return *status ? -1 : count;
}

/* Name, form, unit, type and null count of every column of a table HDU. */
static int describe_columns(fitsfile *f, cat_hduinfo *hi, long long max_bytes, int *status)
{
    fits_get_num_rows(f, &hi->n_rows, status);
    fits_get_num_cols(f, &hi->n_cols, status);
    long long width = 0, heap = 0;  /* a row's bytes, its share of a heap (variable-length arrays) counted */
    int s2 = 0;
    fits_read_key_lnglng(f, "NAXIS1", &width, NULL, &s2);
    if (!s2 && hi->n_rows > 0 && !fits_read_key_lnglng(f, "PCOUNT", &heap, NULL, &s2)) width += heap / hi->n_rows;
    fits_clear_errmsg();
    hi->n_scanned = hi->n_rows;
    if (max_bytes > 0 && width > 0 && hi->n_rows > max_bytes / width)
        hi->n_scanned = max_bytes / width > 1 ? (long)(max_bytes / width) : 1;
    if (!*status && hi->n_cols > 0 && !(hi->cols = calloc((size_t)hi->n_cols, sizeof *hi->cols))) return ODY_ENOMEM;
    for (int c = 0; c < hi->n_cols && !*status; c++) {
        cat_colinfo *ci = &hi->cols[c];
        char key[FLEN_KEYWORD];
        fits_make_keyn("TTYPE", c + 1, key, status);
        if (fits_read_key(f, TSTRING, key, ci->name, NULL, status)) {
            *status = 0;
            snprintf(ci->name, sizeof ci->name, "(col%d)", c + 1);
        }
        fits_make_keyn("TFORM", c + 1, key, status);
        fits_read_key(f, TSTRING, key, ci->tform, NULL, status);
        fits_make_keyn("TUNIT", c + 1, key, status);
        if (fits_read_key(f, TSTRING, key, ci->unit, NULL, status)) { *status = 0; ci->unit[0] = 0; }
        fits_clear_errmsg();
        fits_get_eqcoltype(f, c + 1, &ci->typecode, &ci->repeat, &ci->width, status);
        if (*status) break;
        double crval = 0, cdelt = 0, crpix = 1;  /* a spectrum's wavelengths, for choosing spectra.grid_* */
        long nel = ci->repeat;  /* a variable-length array's: the longest its TFORM declares, PE(4300) */
        const char *paren = ci->typecode < 0 ? strchr(ci->tform, '(') : NULL;
        if (paren) nel = strtol(paren + 1, NULL, 10);
        if (nel > 1 && ci->typecode != TSTRING && catcol_vector_wcs(f, c + 1, &crval, &cdelt, &crpix) &&
            cdelt != 0 && isfinite(crval) && isfinite(cdelt) && isfinite(crpix)) {
            ci->has_wcs = 1, ci->wcs_step = cdelt;
            ci->wcs_first = crval + (1 - crpix) * cdelt;
            ci->wcs_last = crval + ((double)nel - crpix) * cdelt;
        }
        ci->n_null = count_null_rows(f, ci, c + 1, hi->n_scanned, status);
    }
    return 0;
}

/* Describes HDU h (0-based), or the current one when single. */
static int describe_hdu(fitsfile *f, const char *path, int h, int single, long long max_bytes, cat_hduinfo *hi,
                        ody_err *err)
{
    int type = 0, status = 0, rc = 0;
    if (single) {
        fits_get_hdu_num(f, &hi->num);
        hi->num -= 1;
        fits_get_hdu_type(f, &type, &status);
    } else {
        hi->num = h;
        fits_movabs_hdu(f, h + 1, &type, &status);
    }
    if (!status) {
        hi->hdutype = type;
        if (type == IMAGE_HDU && (rc = fitsin_check_tiles(f, path, err))) return rc;
        if (fits_read_key(f, TSTRING, "EXTNAME", hi->extname, NULL, &status)) {
            status = 0;
            hi->extname[0] = 0;
        }
        fits_clear_errmsg();
        if (type == IMAGE_HDU) {
            hi->compressed = fits_is_compressed_image(f, &status);
            fits_get_img_param(f, 9, &hi->bitpix, &hi->naxis, hi->naxes, &status);
        } else if (describe_columns(f, hi, max_bytes, &status)) {
            return ody_fail(err, ODY_ENOMEM, "out of memory");
        }
    }
    if (!status) return 0;
    char what[64];
    snprintf(what, sizeof what, "cannot read HDU %d", hi->num);
    return ody_fits_fail(err, status, path, what, NULL);
}

int cat_inspect_upto(const char *path, long long max_bytes, cat_info **out, ody_err *err)
{
    int status = 0, nhdu = 0, rc = 0;
    fitsin_info fi;
    char *built = NULL, *tmp = NULL;  /* a text table: its FITS copy */
    if ((rc = tab_resolve(path, TAB_AUTO, &built, &tmp, err))) return rc;
    if (!built && ody_fits_row_only_filter(path)) return cat_row_only_fail(path, err);
    if (!built && (rc = fitsin_check(path, &fi, err))) return rc;
    /* CFITSIO counts only the HDUs it can parse: trailing junk would
     * otherwise go unnoticed */
    if (!built && fi.junk_at >= 0 && !path[ody_fits_file_len(path)])
        return ody_fail(err, ODY_EINPUT, "%s: bytes after HDU %d (from offset %lld) are not a valid FITS extension — "
                        "the file is damaged or has junk appended; check it with `fitsverify %s` and re-download it",
                        path, fi.n_hdu - 1, fi.junk_at, path);
    fitsfile *f = NULL;
    int text = built != NULL;
    ody_fits_open(&f, built ? built : path, ODY_FITS_FILE, READONLY, &status);
    if (tmp) unlink(tmp);
    free(tmp);
    free(built);
    if (status) return ody_fits_fail(err, status, path, "cannot open as FITS", NULL);
    /* An extended-syntax path selects one HDU: describe only that one. */
    int single = path[ody_fits_file_len(path)] || text;
    if (single) nhdu = 1;
    else if (fits_get_num_hdus(f, &nhdu, &status)) rc = ody_fits_fail(err, status, path, "cannot count the HDUs", NULL);
    cat_info *info = rc ? NULL : calloc(1, sizeof *info);
    if (!rc && (!info || !(info->hdu = calloc((size_t)nhdu, sizeof *info->hdu))))
        rc = ody_fail(err, ODY_ENOMEM, "out of memory inspecting %s", path);
    for (int h = 0; h < nhdu && !rc; h++) {
        info->n_hdu = h + 1;
        rc = describe_hdu(f, path, h, single, max_bytes, &info->hdu[h], err);
    }
    int ks = 0;  /* a text table: the format its FITS copy was made from */
    if (!rc && text && fits_read_key(f, TSTRING, "ORIGFMT", info->hdu[0].format, NULL, &ks)) info->hdu[0].format[0] = 0;
    ody_fits_close(f);
    if (rc) {
        cat_info_destroy(info);
        return rc;
    }
    *out = info;
    return 0;
}

int cat_inspect(const char *path, cat_info **out, ody_err *err)
{
    return cat_inspect_upto(path, 0, out, err);
}
