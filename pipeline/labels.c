/* labels.c — an astronomer's labels file, read and matched to the catalog. */
#define _GNU_SOURCE
#include <errno.h>
#include <fitsio.h>
#include <limits.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "fitsin.h"
#include "learn.h"
#include "tabin.h"

static void trim(char *s)
{
    size_t a = strspn(s, " "), n = strlen(s);
    while (n > a && s[n - 1] == ' ') n--;
    memmove(s, s + a, n - a);
    s[n - a] = 0;
}

void lrn_labels_free(lrn_labels *l)
{
    for (size_t k = 0; l->comment && k < l->n; k++) free(l->comment[k]);
    free(l->comment);
    free(l->row);
    free(l->y);
    memset(l, 0, sizeof *l);
}

/* Opens the labels table: a text file through its FITS copy. */
static int open_labels(const char *path, fitsfile **f, long *hdrline, ody_err *err)
{
    char *fits_path = NULL, *tmp = NULL;
    int status = 0, rc = fitsin_regular(path, "labels file", err);
    if (!rc) rc = tab_resolve(path, TAB_AUTO, &fits_path, &tmp, err);
    if (rc) return rc;
    /* a FITS labels file is checked as a catalog is, before CFITSIO reads
     * it: a gzip header alone would have it allocate what the trailer claims */
    if (!fits_path && (rc = fitsin_check(path, NULL, err))) return rc;
    ody_fits_open(f, fits_path ? fits_path : path, ODY_FITS_TABLE, READONLY, &status);
    if (tmp) unlink(tmp);
    free(tmp);
    free(fits_path);
    *hdrline = 0;
    if (!status) {
        int s2 = 0;
        long long h = 0;
        *hdrline = ody_fits_read_int(*f, "HDRLINE", 0, LONG_MAX, &h, &s2) ? 0 : (long)h;
    }
    if (status) {
        ody_fits_close(*f);
        *f = NULL;
        return ody_fits_fail(err, status, path, "cannot read the labels file",
                             "a labels file is CSV with the header `id,label` (and optionally `comment`)");
    }
    return 0;
}

/* "FILE:LINE" of row r (1-based), or "FILE row r" for a FITS table. */
static void where(char *buf, size_t len, const char *path, long hdrline, long r)
{
    if (hdrline > 0) snprintf(buf, len, "%s:%ld", path, hdrline + r);
    else snprintf(buf, len, "%s row %ld", path, r);
}

typedef struct reading {
    const char *path;
    fitsfile *f;
    long hdrline, nrows;
    int cid, clab, ccom;
    int lab_numeric;    /* the label column holds numbers: 1.0 is a 1 */
    cat_ids x;
    int8_t *seen;       /* per catalog row: -1, or the label given */
    long *first;        /* per catalog row: the row that labelled it */
    char *idb, *lab, *com;  /* one value of each column, as wide as the column */
} reading;

static int read_row(reading *rd, long r, lrn_labels *out, ody_err *err)
{
    char *idb = rd->idb, *lab = rd->lab, at[4300], *p;
    int status = 0, anynul = 0;
    p = idb;
    fits_read_col(rd->f, TSTRING, rd->cid, r, 1, 1, NULL, &p, &anynul, &status);
    double v = NAN;
    p = lab;
    if (rd->lab_numeric) fits_read_col(rd->f, TDOUBLE, rd->clab, r, 1, 1, &v, &v, &anynul, &status);
    else fits_read_col(rd->f, TSTRING, rd->clab, r, 1, 1, NULL, &p, &anynul, &status);
    if (status) return ody_fits_fail(err, status, rd->path, "cannot read the labels", NULL);
    if (rd->lab_numeric) {  /* 1.0 is 1; anything else is said as written, near enough */
        if (v == 0 || v == 1) snprintf(lab, 2, "%d", (int)v);
        else if (isnan(v)) lab[0] = 0;
        else snprintf(lab, 32, "%.6g", v);
    }
    trim(idb);
    trim(lab);
    where(at, sizeof at, rd->path, rd->hdrline, r);
    if (!lab[0])  /* empty, or a word such as nan or null that the table reader reads as missing */
        return ody_fail(err, ODY_EINPUT, "%s: no label for ID '%.80s' (empty or missing) — write 1 (interesting) or 0 "
                        "(not), or drop the line", at, idb);
    if (strcmp(lab, "0") && strcmp(lab, "1"))
        return ody_fail(err, ODY_EINPUT, "%s: label '%.40s%s' for ID '%.80s' — a label is 1 (interesting) or 0 (not)", at,
                        lab, strlen(lab) > 40 ? "..." : "", idb);
    long row = cat_ids_find(&rd->x, idb);
    if (row < 0)
        return ody_fail(err, ODY_EINPUT, "%s: ID '%.80s' is not in the catalog — check the ID (the catalog's `catalog.id` "
                        "column, or the row number when that is empty)", at, idb);
    int y = lab[0] == '1';
    char *com = NULL;
    if (rd->ccom > 0) {
        p = rd->com;
        fits_read_col(rd->f, TSTRING, rd->ccom, r, 1, 1, NULL, &p, &anynul, &status);
        if (status) return ody_fits_fail(err, status, rd->path, "cannot read the comments", NULL);
        trim(rd->com);
        if (!(com = strdup(rd->com))) return ody_fail(err, ODY_ENOMEM, "out of memory");
    } else if (!(com = strdup(""))) return ody_fail(err, ODY_ENOMEM, "out of memory");
    if (rd->seen[row] >= 0) {
        char at2[4300];
        where(at2, sizeof at2, rd->path, rd->hdrline, rd->first[row]);
        if (rd->seen[row] != y) {
            free(com);
            return ody_fail(err, ODY_EINPUT, "%s: ID '%.80s' labelled %d here but %d at %s — keep one of them", at, idb, y,
                            rd->seen[row], at2);
        }
        for (size_t k = 0; k < out->n; k++)  /* the same label again: its last comment */
            if (out->row[k] == (size_t)row) { free(out->comment[k]); out->comment[k] = com; }
        return 0;
    }
    rd->seen[row] = (int8_t)y;
    rd->first[row] = r;
    out->row[out->n] = (size_t)row;
    out->y[out->n] = (int8_t)y;
    out->comment[out->n++] = com;
    return 0;
}

int lrn_labels_read(const char *path, const cat_col *id, size_t n_obj, lrn_labels *out, ody_err *err)
{
    memset(out, 0, sizeof *out);
    if (access(path, F_OK) != 0 && errno == ENOENT) return 0;  /* no label yet */
    struct stat sb;
    if (!stat(path, &sb) && S_ISREG(sb.st_mode) && sb.st_size == 0) return 0;  /* touched, not written: none either */
    reading rd = {.path = path};
    int rc = open_labels(path, &rd.f, &rd.hdrline, err), status = 0;
    if (rc) return rc;
    fits_get_num_rows(rd.f, &rd.nrows, &status);
    if (fits_get_colnum(rd.f, CASEINSEN, "id", &rd.cid, &status) ||
        fits_get_colnum(rd.f, CASEINSEN, "label", &rd.clab, &status)) {
        ody_fits_close(rd.f);
        return ody_fail(err, ODY_EINPUT, "%s: no `id` or no `label` column — a labels file has the header "
                        "`id,label` (and optionally `comment`)", path);
    }
    if (fits_get_colnum(rd.f, CASEINSEN, "comment", &rd.ccom, &status)) rd.ccom = 0;
    fits_clear_errmsg();
    status = 0;
    size_t wid = ody_fits_strbuf(rd.f, rd.cid, &status), wlab = ody_fits_strbuf(rd.f, rd.clab, &status),
           wcom = rd.ccom > 0 ? ody_fits_strbuf(rd.f, rd.ccom, &status) : 1;
    int labtype = 0;
    fits_get_eqcoltype(rd.f, rd.clab, &labtype, NULL, NULL, &status);
    rd.lab_numeric = labtype != TSTRING;
    if (status) {
        ody_fits_close(rd.f);
        return ody_fits_fail(err, status, path, "cannot read the labels file's columns", NULL);
    }
    rd.idb = malloc(wid), rd.lab = malloc(wlab), rd.com = malloc(wcom);
    size_t m = (size_t)(rd.nrows > 0 ? rd.nrows : 1);
    out->row = malloc(m * sizeof *out->row);
    out->y = malloc(m);
    out->comment = calloc(m, sizeof *out->comment);
    rd.seen = malloc(n_obj ? n_obj : 1);
    rd.first = malloc((n_obj ? n_obj : 1) * sizeof *rd.first);
    if (!out->row || !out->y || !out->comment || !rd.seen || !rd.first || !rd.idb || !rd.lab || !rd.com ||
        cat_ids_build(&rd.x, id, n_obj))
        rc = ody_fail(err, ODY_ENOMEM, "out of memory reading %s", path);
    if (!rc) memset(rd.seen, -1, n_obj);
    for (long r = 1; !rc && r <= rd.nrows; r++) rc = read_row(&rd, r, out, err);
    ody_fits_close(rd.f);
    free(rd.seen);
    free(rd.first);
    free(rd.idb);
    free(rd.lab);
    free(rd.com);
    cat_ids_free(&rd.x);
    if (rc) lrn_labels_free(out);
    return rc;
}
