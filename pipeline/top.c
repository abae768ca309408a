/* top.c — the head of a run's ranked list as a text table, for the console. */
#define _GNU_SOURCE
#include <fitsio.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "run.h"

int run_top_table(const char *dir, int n, char **text, ody_err *err)
{
    char *path = NULL;
    if (asprintf(&path, "%s/anomalies.fits", dir) < 0) return ody_fail(err, ODY_ENOMEM, "out of memory");
    fitsfile *f = NULL;
    int status = 0, ncol = 0, rc = 0;
    long nrows = 0;
    fits_open_table(&f, path, READONLY, &status);
    fits_get_num_rows(f, &nrows, &status);
    fits_get_num_cols(f, &ncol, &status);
    if (status) {
        rc = ody_fits_fail(err, status, path, "cannot read the ranked list", "add fits to export.formats");
        goto done;
    }
    if (n > nrows) n = (int)nrows;
    /* every column but the long NEIGHBOURS one and the secondary scores */
    int show[64], ns = 0;
    char names[64][FLEN_VALUE];
    for (int k = 1; k <= ncol && ns < 64; k++) {
        char key[FLEN_KEYWORD], name[FLEN_VALUE] = "";
        fits_make_keyn("TTYPE", k, key, &status);
        fits_read_key(f, TSTRING, key, name, NULL, &status);
        if (!strcmp(name, "NEIGHBOURS") || !strcmp(name, "N_GOOD") || !strcmp(name, "KNN_DISTANCE") ||
            !strcmp(name, "ISOLATION"))
            continue;
        show[ns] = k;
        snprintf(names[ns++], FLEN_VALUE, "%s", name);
    }
    size_t cap = 256 + (size_t)(n + 1) * (size_t)ns * 24, at = 0;
    char *out = malloc(cap);
    if (!out) { rc = ody_fail(err, ODY_ENOMEM, "out of memory"); goto done; }
    for (int c = 0; c < ns; c++) at += (size_t)snprintf(out + at, cap - at, c ? " %14.14s" : "%5.5s", names[c]);
    at += (size_t)snprintf(out + at, cap - at, "\n");
    for (long r = 1; r <= n && !status; r++) {
        for (int c = 0; c < ns; c++) {
            char buf[96] = "", *bp = buf;
            int anynul = 0, type = 0;
            long rep = 0, width = 0;
            fits_get_coltype(f, show[c], &type, &rep, &width, &status);
            if (type == TDOUBLE || type == TFLOAT) {
                double v = 0;
                fits_read_col(f, TDOUBLE, show[c], r, 1, 1, NULL, &v, &anynul, &status);
                snprintf(buf, sizeof buf, "%.5g", v);
            } else {
                fits_read_col(f, TSTRING, show[c], r, 1, 1, NULL, &bp, &anynul, &status);
            }
            char *b = buf;
            while (*b == ' ') b++;
            at += (size_t)snprintf(out + at, cap - at, c ? " %14.14s" : "%5.5s", b);
        }
        at += (size_t)snprintf(out + at, cap - at, "\n");
    }
    if (status) { free(out); rc = ody_fits_fail(err, status, path, "cannot read the ranked list", NULL); goto done; }
    *text = out;
done:
    ody_fits_close(f);
    free(path);
    return rc;
}
