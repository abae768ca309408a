/* catimg.c — feature blocks from image HDUs (see catimg.h). */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "catcol.h"
#include "catimg.h"

void img_close(imgblk *b)
{
    ody_fits_close(b->f);
    catcol_names_free(b->names, (int)b->L);
    free(b->buf);
    free(b->nul);
    memset(b, 0, sizeof *b);
}

int img_open(const char *path, const char *name, long nrows, long chunk, imgblk *b, ody_err *err)
{
    memset(b, 0, sizeof *b);
    if (strchr(name, '[') || strlen(name) >= sizeof b->name) return 0;
    size_t base = ody_fits_file_len(path);
    char fn[4200];
    snprintf(fn, sizeof fn, "%.*s[%s]", (int)base, path, name);
    int status = 0, hdutype = 0, naxis = 0;
    long ax[2] = {0, 0};
    fitsfile *f = NULL;
    ody_fits_open(&f, fn, ODY_FITS_FILE, READONLY, &status);
    if (!status) fits_get_hdu_type(f, &hdutype, &status);
    if (status || hdutype != IMAGE_HDU) {  /* no such HDU, or a table: not an image block */
        ody_fits_close(f);
        return 0;
    }
    fits_get_img_dim(f, &naxis, &status);
    if (!status && naxis == 2) fits_get_img_size(f, 2, ax, &status);
    if (status || naxis != 2 || ax[1] != nrows) {
        ody_fits_close(f);
        return -!!ody_fail(err, ODY_EINPUT, "%.*s: feature %s is an image HDU of %d axes (%ld x %ld); a feature block "
                        "image needs 2 axes and a row for each of the table's %ld rows — check the HDU, or drop "
                        "the table's row filter (select rows in the config's features instead)", (int)base, path,
                        name, naxis, ax[0], ax[1], nrows);
    }
    snprintf(b->name, sizeof b->name, "%s", name);
    b->f = f;
    b->L = ax[0];
    double crval = 0, cdelt = 0, crpix = 1;
    int s2 = 0, wcs = 0;
    fits_read_key(f, TDOUBLE, "CRVAL1", &crval, NULL, &s2);
    fits_read_key(f, TDOUBLE, "CDELT1", &cdelt, NULL, &s2);
    wcs = !s2;
    s2 = 0;
    fits_read_key(f, TDOUBLE, "CRPIX1", &crpix, NULL, &s2);
    if (s2) crpix = 1;
    s2 = 0;
    if (fits_read_key(f, TSTRING, "BUNIT", b->unit, NULL, &s2)) b->unit[0] = 0;
    b->names = calloc((size_t)b->L, sizeof *b->names);
    b->buf = malloc((size_t)chunk * (size_t)b->L * sizeof *b->buf);
    b->nul = malloc((size_t)chunk * (size_t)b->L);
    int ok = b->names && b->buf && b->nul;
    for (long k = 0; ok && k < b->L; k++) {
        char nm[160];
        if (wcs) snprintf(nm, sizeof nm, "%s[%ld]@%.6g", name, k + 1, crval + ((double)(k + 1) - crpix) * cdelt);
        else snprintf(nm, sizeof nm, "%s[%ld]", name, k + 1);
        ok = (b->names[k] = ody_strdup(nm)) != NULL;
    }
    if (!ok) {
        img_close(b);
        return -!!ody_fail(err, ODY_ENOMEM, "out of memory reading image %s", name);
    }
    return 1;
}

int img_chunk(imgblk *b, const char *path, long row0, long nr, double *vals, char *nul, size_t cn, ody_err *err)
{
    int status = 0, anynul = 0;
    LONGLONG first = (LONGLONG)(row0 - 1) * b->L + 1, n = (LONGLONG)nr * b->L;
    fits_read_imgnull(b->f, TDOUBLE, first, n, b->buf, b->nul, &anynul, &status);
    if (status) {
        char what[160];
        snprintf(what, sizeof what, "cannot read image %s at rows %ld-%ld", b->name, row0, row0 + nr - 1);
        return ody_fits_fail(err, status, path, what, "check the file with fitsverify");
    }
    for (long r = 0; r < nr; r++)
        for (long k = 0; k < b->L; k++) {
            size_t at = (size_t)r * (size_t)b->L + (size_t)k;
            vals[(size_t)k * cn + (size_t)r] = b->buf[at];
            nul[(size_t)k * cn + (size_t)r] = b->nul[at] || !isfinite(b->buf[at]);
        }
    return 0;
}
