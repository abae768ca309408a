/* fitsout.c — atomic FITS output with checksums. */
#define _POSIX_C_SOURCE 200809L
#include "fitsout.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

int fitsout_open(fitsout *w, const char *path, int overwrite, ody_err *err)
{
    memset(w, 0, sizeof *w);
    struct stat st;
    if (!overwrite && stat(path, &st) == 0)
        return ody_fail(err, ODY_EINPUT, "%s: file exists — remove it or pass --overwrite", path);
    size_t n = strlen(path) + 32;
    w->path = ody_strdup(path);
    w->tmp = malloc(n);
    if (!w->path || !w->tmp) {
        free(w->path); free(w->tmp);
        memset(w, 0, sizeof *w);
        return ody_fail(err, ODY_ENOMEM, "out of memory");
    }
    snprintf(w->tmp, n, "%s.tmp-%ld", path, (long)getpid());
    unlink(w->tmp);
    int status = 0;
    /* The leading '!' is not needed (the name is fresh); a path with CFITSIO
     * syntax characters is refused by CFITSIO itself. */
    fits_create_file(&w->f, w->tmp, &status);
    if (!status) fits_create_img(w->f, BYTE_IMG, 0, NULL, &status);
    if (status) {
        int rc = ody_fits_fail(err, status, path, "cannot create the output file", NULL);
        fitsout_abort(w);
        return rc;
    }
    return 0;
}

int fitsout_commit(fitsout *w, ody_err *err)
{
    int status = 0, nhdu = 0, type;
    fits_get_num_hdus(w->f, &nhdu, &status);
    for (int h = 1; h <= nhdu && !status; h++) {
        fits_movabs_hdu(w->f, h, &type, &status);
        fits_write_chksum(w->f, &status);
    }
    fits_close_file(w->f, &status);
    w->f = NULL;
    int rc = 0;
    if (status) rc = ody_fits_fail(err, status, w->path, "cannot finish writing", NULL);
    else if (rename(w->tmp, w->path) != 0)
        rc = ody_fail(err, ODY_EIO, "%s: cannot rename the finished file into place — check "
                      "permissions on its directory", w->path);
    if (rc) unlink(w->tmp);
    free(w->path);
    free(w->tmp);
    memset(w, 0, sizeof *w);
    return rc;
}

void fitsout_abort(fitsout *w)
{
    ody_fits_close(w->f);
    if (w->tmp) unlink(w->tmp);
    free(w->path);
    free(w->tmp);
    memset(w, 0, sizeof *w);
}

int fitsout_finish(fitsout *w, int rc, ody_err *err)
{
    if (rc) {
        fitsout_abort(w);
        return rc;
    }
    return fitsout_commit(w, err);
}

int fitsout_history(fitsfile *f, const char *text, int *status)
{
    const char *p = text;
    while (*p && !*status) {
        size_t n = strcspn(p, "\n");
        while (n > 0) {
            char line[72];
            size_t k = n > 70 ? 70 : n;
            memcpy(line, p, k);
            line[k] = 0;
            fits_write_history(f, line, status);
            p += k;
            n -= k;
        }
        if (*p == '\n') p++;
    }
    return *status;
}
