/* cat_inspect.c — describing a FITS file (oddsky inspect) and checking an
 * HDU before it is read. */
#include <fitsio.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "catcol.h"

/* ================================================================ integrity */

/* Checks the current HDU of an opened file: every header card printable
 * ASCII (FITS requires it; NULs and 8-bit bytes mean a damaged header), and
 * the HDU's data all present (a cut-short file fails on its last byte). */
int cat_check_hdu(fitsfile *f, const char *file, int hdunum, ody_err *err)
{
    int status = 0, nkeys = 0, type = 0;
    char card[FLEN_CARD];
    fits_get_hdrspace(f, &nkeys, NULL, &status);
    for (int k = 1; k <= nkeys && !status; k++) {
        if (fits_read_record(f, k, card, &status)) break;
        for (const unsigned char *p = (const unsigned char *)card; *p; p++)
            if (*p < 32 || *p > 126)
                return ody_fail(err, ODY_EINPUT,
                                "%s: HDU %d, header card %d holds a non-ASCII byte (0x%02x) — the "
                                "header is damaged; check it with `fitsverify %s` and repair or "
                                "re-download the file", file, hdunum, k, *p, file);
    }
    fits_get_hdu_type(f, &type, &status);
    if (!status && type == IMAGE_HDU) {
        int naxis = 0, bitpix = 0;
        long naxes[9] = {0};
        fits_get_img_param(f, 9, &bitpix, &naxis, naxes, &status);
        long long npix = naxis > 0 ? 1 : 0;
        for (int a = 0; a < naxis; a++) npix *= naxes[a];
        if (!status && npix > 0) {
            LONGLONG last[9];
            double v;
            int anynul;
            for (int a = 0; a < naxis; a++) last[a] = naxes[a];
            fits_read_pixll(f, TDOUBLE, last, 1, NULL, &v, &anynul, &status);
        }
    } else if (!status) {
        long nrows = 0, rowlen = 0;
        fits_get_num_rows(f, &nrows, &status);
        fits_read_key(f, TLONG, "NAXIS1", &rowlen, NULL, &status);
        if (!status && nrows > 0 && rowlen > 0) {
            unsigned char byte;
            fits_read_tblbytes(f, nrows, rowlen, 1, &byte, &status);
        }
    }
    if (status) {
        char what[96];
        snprintf(what, sizeof what, "HDU %d is incomplete or unreadable", hdunum);
        return ody_fits_fail(err, status, file, what,
                             "the file is truncated or damaged; re-download or regenerate it");
    }
    return 0;
}

/* ================================================================ inspect */

void cat_info_destroy(cat_info *info)
{
    if (!info) return;
    for (int h = 0; h < info->n_hdu; h++) free(info->hdu[h].cols);
    free(info->hdu);
    free(info);
}

/* Counts rows of a numeric column with any null/NaN/Inf element. */
static long count_null_rows(fitsfile *f, const cat_colinfo *ci, int colnum, long nrows, int *status)
{
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
            for (long e = 0; e < ci->repeat; e++) {
                long k = r * ci->repeat + e;
                if (nul[k] || !isfinite(v[k])) { count++; break; }
            }
        }
    }
    free(v);
    free(nul);
    return *status ? -1 : count;
}

/* Name, form, unit, type and null count of every column of a table HDU. */
static int describe_columns(fitsfile *f, cat_hduinfo *hi, int *status)
{
    fits_get_num_rows(f, &hi->n_rows, status);
    fits_get_num_cols(f, &hi->n_cols, status);
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
        ci->n_null = count_null_rows(f, ci, c + 1, hi->n_rows, status);
    }
    return 0;
}

/* Describes HDU h (0-based), or the current one when single. */
static int describe_hdu(fitsfile *f, const char *path, int h, int single, cat_hduinfo *hi, ody_err *err)
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
        if ((rc = cat_check_hdu(f, path, hi->num, err))) return rc;
        if (fits_read_key(f, TSTRING, "EXTNAME", hi->extname, NULL, &status)) {
            status = 0;
            hi->extname[0] = 0;
        }
        fits_clear_errmsg();
        if (type == IMAGE_HDU) {
            hi->compressed = fits_is_compressed_image(f, &status);
            fits_get_img_param(f, 9, &hi->bitpix, &hi->naxis, hi->naxes, &status);
        } else if (describe_columns(f, hi, &status)) {
            return ody_fail(err, ODY_ENOMEM, "out of memory");
        }
    }
    if (!status) return 0;
    char what[64];
    snprintf(what, sizeof what, "cannot read HDU %d", hi->num);
    return ody_fits_fail(err, status, path, what, NULL);
}

/* Anything after the last HDU must be nothing: CFITSIO counts only the HDUs
 * it can parse, so trailing junk would otherwise go unnoticed. */
static int check_trailing(fitsfile *f, const char *path, int nhdu, ody_err *err)
{
    int type = 0, status = 0;
    fits_movabs_hdu(f, nhdu + 1, &type, &status);
    if (status == END_OF_FILE) {
        fits_clear_errmsg();
        return 0;
    }
    if (!status) status = BAD_HDU_NUM;
    char what[96];
    snprintf(what, sizeof what, "bytes after HDU %d are not a valid FITS extension", nhdu - 1);
    return ody_fits_fail(err, status, path, what,
                         "the file is damaged or has junk appended; check it with `fitsverify FILE` and re-download it");
}

int cat_inspect(const char *path, cat_info **out, ody_err *err)
{
    int status = 0, nhdu = 0, rc = 0;
    fitsfile *f = NULL;
    if (fits_open_file(&f, path, READONLY, &status))
        return ody_fits_fail(err, status, path, "cannot open as FITS", NULL);
    /* An extended-syntax path selects one HDU: describe only that one. */
    int single = strchr(path, '[') != NULL;
    if (single) nhdu = 1;
    else if (fits_get_num_hdus(f, &nhdu, &status)) rc = ody_fits_fail(err, status, path, "cannot count the HDUs", NULL);
    cat_info *info = rc ? NULL : calloc(1, sizeof *info);
    if (!rc && (!info || !(info->hdu = calloc((size_t)nhdu, sizeof *info->hdu))))
        rc = ody_fail(err, ODY_ENOMEM, "out of memory inspecting %s", path);
    for (int h = 0; h < nhdu && !rc; h++) {
        info->n_hdu = h + 1;
        rc = describe_hdu(f, path, h, single, &info->hdu[h], err);
    }
    if (!rc && !single) rc = check_trailing(f, path, nhdu, err);
    ody_fits_close(f);
    if (rc) {
        cat_info_destroy(info);
        return rc;
    }
    *out = info;
    return 0;
}
