/* cat.c — FITS table ingest and inspection. */
#include "cat.h"

#include <ctype.h>
#include <fitsio.h>
#include <float.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

void cat_opt_init(cat_opt *o)
{
    memset(o, 0, sizeof *o);
    o->missing = CAT_MISSING_DROP;
}

int cat_missing_parse(const char *s)
{
    if (!s) return -1;
    if (!strcmp(s, "drop")) return CAT_MISSING_DROP;
    if (!strcmp(s, "impute")) return CAT_MISSING_IMPUTE;
    if (!strcmp(s, "fail")) return CAT_MISSING_FAIL;
    return -1;
}

const char *cat_missing_name(cat_missing m)
{
    return m == CAT_MISSING_DROP ? "drop" : m == CAT_MISSING_IMPUTE ? "impute" : "fail";
}

const char *cat_type_name(int t)
{
    if (t < 0) t = -t;
    switch (t) {
    case TBIT: return "bit";
    case TBYTE: return "uint8";
    case TSBYTE: return "int8";
    case TLOGICAL: return "logical";
    case TSTRING: return "string";
    case TSHORT: return "int16";
    case TUSHORT: return "uint16";
    case TINT: return "int32";
    case TUINT: return "uint32";
    case TLONG: return "int32";
    case TULONG: return "uint32";
    case TLONGLONG: return "int64";
    case TULONGLONG: return "uint64";
    case TFLOAT: return "float32";
    case TDOUBLE: return "float64";
    case TCOMPLEX: return "complex64";
    case TDBLCOMPLEX: return "complex128";
    default: return "unknown";
    }
}

static int type_is_integer(int t)
{
    return t == TBYTE || t == TSBYTE || t == TSHORT || t == TUSHORT || t == TINT ||
           t == TUINT || t == TLONG || t == TULONG || t == TLONGLONG || t == TULONGLONG ||
           t == TLOGICAL;
}

/* ================================================================ columns */

/* A column requested by name, resolved against the open table. */
typedef struct colref {
    char name[72];   /* name in the file */
    long elem;       /* 1-based element within a vector column */
    int colnum, typecode;
    long repeat, width;
    char unit[72];
} colref;

/* Lists the table's column names closest to `want` into buf. */
static void closest_columns(fitsfile *f, const char *want, char *buf, size_t len)
{
    int ncols = 0, status = 0;
    fits_get_num_cols(f, &ncols, &status);
    int best[3] = {-1, -1, -1}, bestd[3] = {1 << 30, 1 << 30, 1 << 30};
    for (int c = 1; c <= ncols; c++) {
        char key[FLEN_KEYWORD], name[FLEN_VALUE] = "";
        fits_make_keyn("TTYPE", c, key, &status);
        if (fits_read_key(f, TSTRING, key, name, NULL, &status)) { status = 0; continue; }
        int d = ody_edit_distance(want, name);
        for (int k = 0; k < 3; k++) {
            if (d < bestd[k]) {
                for (int m = 2; m > k; m--) { best[m] = best[m - 1]; bestd[m] = bestd[m - 1]; }
                best[k] = c; bestd[k] = d;
                break;
            }
        }
    }
    fits_clear_errmsg();
    buf[0] = 0;
    for (int k = 0; k < 3 && best[k] > 0; k++) {
        char key[FLEN_KEYWORD], name[FLEN_VALUE] = "";
        status = 0;
        fits_make_keyn("TTYPE", best[k], key, &status);
        fits_read_key(f, TSTRING, key, name, NULL, &status);
        size_t n = strlen(buf);
        snprintf(buf + n, len - n, "%s%s", k ? ", " : "", name);
    }
}

/* Resolves "NAME" or "NAME[k]" in the current table.  `role` is used in
 * messages ("feature", "id", "pass-through"). */
static int resolve_column(fitsfile *f, const char *file, const char *spec, const char *role,
                          colref *ref, ody_err *err)
{
    memset(ref, 0, sizeof *ref);
    size_t n = strlen(spec);
    const char *br = strchr(spec, '[');
    ref->elem = 0;
    if (br) {
        char *end = NULL;
        long k = strtol(br + 1, &end, 10);
        if (end == br + 1 || *end != ']' || end[1] != 0 || k < 1)
            return ody_fail(err, ODY_EINPUT,
                            "%s: %s column '%s': element index must be a whole number >= 1, "
                            "as in FLUX[3] — fix the column name",
                            file, role, spec);
        ref->elem = k;
        n = (size_t)(br - spec);
    }
    if (n == 0 || n >= sizeof ref->name)
        return ody_fail(err, ODY_EINPUT, "%s: %s column name '%s' is empty or too long — "
                        "run `oddsky inspect %s` to list the columns", file, role, spec, file);
    memcpy(ref->name, spec, n);
    ref->name[n] = 0;
    /* CFITSIO treats * ? # as wildcards; an exact, case-insensitive match of
     * the whole name is what a user means, so do the match ourselves. */
    int ncols = 0, status = 0;
    fits_get_num_cols(f, &ncols, &status);
    for (int c = 1; c <= ncols && !ref->colnum; c++) {
        char key[FLEN_KEYWORD], name[FLEN_VALUE] = "";
        fits_make_keyn("TTYPE", c, key, &status);
        if (fits_read_key(f, TSTRING, key, name, NULL, &status)) { status = 0; continue; }
        if (!strcasecmp(name, ref->name)) {
            ref->colnum = c;
            snprintf(ref->name, sizeof ref->name, "%s", name);
        }
    }
    fits_clear_errmsg();
    if (!ref->colnum) {
        char near[256];
        closest_columns(f, ref->name, near, sizeof near);
        return ody_fail(err, ODY_EINPUT,
                        "%s: no %s column named '%s'; closest: %s — fix the name, or run "
                        "`oddsky inspect %s` to list the columns",
                        file, role, ref->name, near[0] ? near : "(none)", file);
    }
    status = 0;
    if (fits_get_eqcoltype(f, ref->colnum, &ref->typecode, &ref->repeat, &ref->width, &status))
        return ody_fits_fail(err, status, file, "cannot read the column type", NULL);
    char key[FLEN_KEYWORD];
    fits_make_keyn("TUNIT", ref->colnum, key, &status);
    if (fits_read_key(f, TSTRING, key, ref->unit, NULL, &status)) { status = 0; ref->unit[0] = 0; }
    fits_clear_errmsg();
    if (ref->typecode < 0)
        return ody_fail(err, ODY_EINPUT, "%s: %s column '%s' is a variable-length array, "
                        "which oddsky cannot use — choose a fixed-size column", file, role, spec);
    if (ref->typecode == TSTRING) {
        if (ref->elem)
            return ody_fail(err, ODY_EINPUT, "%s: %s column '%s' is a string column and has no "
                            "elements — drop the [k]", file, role, spec);
        return 0;  /* callers that need numbers reject strings themselves */
    }
    if (ref->typecode == TCOMPLEX || ref->typecode == TDBLCOMPLEX || ref->typecode == TBIT)
        return ody_fail(err, ODY_EINPUT, "%s: %s column '%s' has type %s, which oddsky cannot "
                        "use — choose a real-valued column or derive one with [col NEW=...]",
                        file, role, spec, cat_type_name(ref->typecode));
    if (ref->repeat == 0)
        return ody_fail(err, ODY_EINPUT, "%s: %s column '%s' has zero width (TFORM 0) and holds "
                        "no values — choose another column", file, role, spec);
    if (ref->elem == 0 && ref->repeat > 1)
        return ody_fail(err, ODY_EINPUT, "%s: %s column '%s' is a vector of %ld elements — name "
                        "one of them, e.g. %s[1]", file, role, spec, ref->repeat, ref->name);
    if (ref->elem > ref->repeat)
        return ody_fail(err, ODY_EINPUT, "%s: %s column '%s': element %ld is past the end of a "
                        "vector of %ld — use an index from 1 to %ld",
                        file, role, spec, ref->elem, ref->repeat, ref->repeat);
    if (ref->elem == 0) ref->elem = 1;
    return 0;
}

/* Reads element ref->elem of rows [row0, row0+nrows) as doubles; null[r] is
 * set for a FITS null, NaN or Inf.  buf must hold nrows*repeat doubles and
 * nbuf nrows*repeat flags. */
static int read_numeric(fitsfile *f, const char *file, const colref *ref, long row0, long nrows,
                        double *out, char *null, double *buf, char *nbuf, ody_err *err)
{
    int status = 0, anynul = 0;
    long nel = nrows * ref->repeat;
    if (ref->typecode == TLOGICAL) {
        char *lb = (char *)buf;  /* logical values fit in the double buffer */
        fits_read_colnull(f, TLOGICAL, ref->colnum, row0, 1, nel, lb, nbuf, &anynul, &status);
        if (status) goto fail;
        for (long r = 0; r < nrows; r++) {
            long k = r * ref->repeat + ref->elem - 1;
            out[r] = lb[k] ? 1.0 : 0.0;
            null[r] = nbuf[k];
        }
        return 0;
    }
    fits_read_colnull(f, TDOUBLE, ref->colnum, row0, 1, nel, buf, nbuf, &anynul, &status);
    if (status) goto fail;
    for (long r = 0; r < nrows; r++) {
        long k = r * ref->repeat + ref->elem - 1;
        out[r] = buf[k];
        null[r] = nbuf[k] || !isfinite(buf[k]);
    }
    return 0;
fail:;
    char what[160];
    snprintf(what, sizeof what, "cannot read column '%s' at rows %ld-%ld", ref->name, row0,
             row0 + nrows - 1);
    return ody_fits_fail(err, status, file, what, NULL);
}

/* ================================================================ carried columns */

static int carried_alloc(cat_col *c, const colref *ref, size_t n)
{
    c->name = ody_strdup(ref->name);
    c->unit = ody_strdup(ref->unit);
    if (!c->name || !c->unit) return ODY_ENOMEM;
    if (ref->typecode == TSTRING) {
        c->type = CAT_COL_STRING;
        c->width = (int)ref->width;
        if (c->width < 1) c->width = 1;
        c->s = calloc(n ? n : 1, (size_t)c->width + 1);
        return c->s ? 0 : ODY_ENOMEM;
    }
    if (type_is_integer(ref->typecode)) {
        c->type = CAT_COL_INT;
        c->i = malloc((n ? n : 1) * sizeof *c->i);
        return c->i ? 0 : ODY_ENOMEM;
    }
    c->type = CAT_COL_FLOAT;
    c->f = malloc((n ? n : 1) * sizeof *c->f);
    return c->f ? 0 : ODY_ENOMEM;
}

static void carried_free(cat_col *c)
{
    free(c->name);
    free(c->unit);
    free(c->f);
    free(c->i);
    free(c->s);
    memset(c, 0, sizeof *c);
}

/* Reads a carried column for rows [row0, row0+nrows) and appends the rows
 * with keep[r] set at position *at onwards. */
static int carried_read(fitsfile *f, const char *file, const colref *ref, cat_col *c, long row0,
                        long nrows, const char *keep, size_t at, double *buf, char *nbuf,
                        char **sbuf, ody_err *err)
{
    int status = 0, anynul = 0;
    if (c->type == CAT_COL_STRING) {
        fits_read_col(f, TSTRING, ref->colnum, row0, 1, nrows, "", sbuf, &anynul, &status);
        if (status) return ody_fits_fail(err, status, file, "cannot read a string column", NULL);
        for (long r = 0; r < nrows; r++) {
            if (!keep[r]) continue;
            char *dst = c->s + at++ * (size_t)(c->width + 1);
            snprintf(dst, (size_t)c->width + 1, "%s", sbuf[r]);
            size_t n = strlen(dst);
            while (n && dst[n - 1] == ' ') dst[--n] = 0;
        }
        return 0;
    }
    if (c->type == CAT_COL_INT && ref->typecode != TLOGICAL) {
        long long *ib = (long long *)buf;
        long nel = nrows * ref->repeat;
        fits_read_colnull(f, TLONGLONG, ref->colnum, row0, 1, nel, ib, nbuf, &anynul, &status);
        if (status) return ody_fits_fail(err, status, file, "cannot read an integer column", NULL);
        for (long r = 0; r < nrows; r++) {
            if (!keep[r]) continue;
            long k = r * ref->repeat + ref->elem - 1;
            c->i[at++] = nbuf[k] ? CAT_INT_NULL : (int64_t)ib[k];
        }
        return 0;
    }
    double *vals = buf + nrows * ref->repeat;  /* after the raw buffer */
    char *nul = nbuf + nrows * ref->repeat;
    int rc = read_numeric(f, file, ref, row0, nrows, vals, nul, buf, nbuf, err);
    if (rc) return rc;
    for (long r = 0; r < nrows; r++) {
        if (!keep[r]) continue;
        if (c->type == CAT_COL_INT) c->i[at++] = nul[r] ? CAT_INT_NULL : (int64_t)vals[r];
        else c->f[at++] = nul[r] && !isinf(vals[r]) ? NAN : vals[r];
    }
    return 0;
}

void cat_col_format(const cat_col *c, size_t r, char *buf, size_t len)
{
    switch (c->type) {
    case CAT_COL_STRING: snprintf(buf, len, "%s", c->s + r * (size_t)(c->width + 1)); break;
    case CAT_COL_INT:
        if (c->i[r] == CAT_INT_NULL) snprintf(buf, len, "null");
        else snprintf(buf, len, "%lld", (long long)c->i[r]);
        break;
    default: snprintf(buf, len, "%.17g", c->f[r]); break;
    }
}

/* ================================================================ integrity */

/* Checks the current HDU of an opened file: every header card printable
 * ASCII (FITS requires it; NULs and 8-bit bytes mean a damaged header), and
 * the HDU's data all present (a cut-short file fails on its last byte). */
static int check_hdu(fitsfile *f, const char *file, int hdunum, ody_err *err)
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

/* ================================================================ opening */

/* Opens the table HDU, honouring o->hdu.  *f is NULL on error. */
static int open_table(const cat_opt *o, fitsfile **f, ody_err *err)
{
    int status = 0;
    *f = NULL;
    const char *path = o->path;
    char *built = NULL;
    if (o->hdu && o->hdu[0]) {
        /* Insert [hdu] after the file name so any filter that follows applies
         * to that HDU: a.fits[x>1] + hdu=SDSS -> a.fits[SDSS][x>1]. */
        size_t n = strlen(path), m = strlen(o->hdu);
        const char *br = strchr(path, '[');
        size_t base = br ? (size_t)(br - path) : n;
        built = malloc(n + m + 3);
        if (!built) return ody_fail(err, ODY_ENOMEM, "out of memory opening %s", path);
        memcpy(built, path, base);
        sprintf(built + base, "[%s]%s", o->hdu, path + base);
        path = built;
    }
    fits_open_table(f, path, READONLY, &status);
    free(built);
    if (status && *f) {  /* CFITSIO hands back an open file with NOT_TABLE */
        ody_fits_close(*f);
        *f = NULL;
    }
    if (status == NOT_TABLE) {
        return ody_fits_fail(err, status, o->path,
                             o->hdu ? "that HDU is an image, not a table"
                                    : "no table HDU found (the file holds only images)",
                             "name a table HDU with `hdu:` or a [n] suffix; run `oddsky inspect FILE` "
                             "to list the HDUs");
    }
    if (status) {
        const char *what = "cannot open the table";
        if (status == BAD_HDU_NUM || status == URL_PARSE_ERROR) what = "no such HDU";
        return ody_fits_fail(err, status, o->path, what, NULL);
    }
    int hdunum = 1;
    fits_get_hdu_num(*f, &hdunum);
    int rc = check_hdu(*f, o->path, hdunum - 1, err);
    if (rc) {
        ody_fits_close(*f);
        *f = NULL;
    }
    return rc;
}

/* ================================================================ reading */

static int cmp_float(const void *a, const void *b)
{
    float x = *(const float *)a, y = *(const float *)b;
    return (x > y) - (x < y);
}

/* Replaces NaN entries of feature column j by the median of its valid values. */
static int impute_column(cat *c, size_t j, const char *file, ody_err *err)
{
    size_t nv = 0;
    float *v = malloc((c->n_rows ? c->n_rows : 1) * sizeof *v);
    if (!v) return ody_fail(err, ODY_ENOMEM, "out of memory imputing column %s", c->feat_names[j]);
    for (size_t r = 0; r < c->n_rows; r++) {
        float x = c->X[r * c->n_feat + j];
        if (!isnan(x)) v[nv++] = x;
    }
    if (nv == 0) {
        free(v);
        return ody_fail(err, ODY_EINPUT, "%s: feature column '%s' has no valid value to impute "
                        "from — drop it from the features", file, c->feat_names[j]);
    }
    qsort(v, nv, sizeof *v, cmp_float);
    float med = nv % 2 ? v[nv / 2] : (float)(0.5 * ((double)v[nv / 2 - 1] + (double)v[nv / 2]));
    free(v);
    for (size_t r = 0; r < c->n_rows; r++) {
        float *x = &c->X[r * c->n_feat + j];
        if (isnan(*x)) { *x = med; c->n_imputed++; }
    }
    return 0;
}

void cat_destroy(cat *c)
{
    if (!c) return;
    for (size_t j = 0; j < c->n_feat; j++) {
        if (c->feat_names) free(c->feat_names[j]);
        if (c->feat_units) free(c->feat_units[j]);
    }
    free(c->feat_names);
    free(c->feat_units);
    free(c->X);
    carried_free(&c->id);
    for (int k = 0; k < c->n_pass; k++) carried_free(&c->pass[k]);
    free(c->pass);
    free(c->row);
    free(c->n_missing);
    free(c->path);
    free(c);
}

/* Scratch buffers for one chunk, sized by the widest column read. */
typedef struct chunkbuf {
    double *vals, *raw;
    char *nul, *rawnul, *keep;
    char **sptr;
    char *sdata;
} chunkbuf;

static void chunkbuf_free(chunkbuf *b)
{
    free(b->vals); free(b->raw); free(b->nul); free(b->rawnul); free(b->keep);
    free(b->sptr); free(b->sdata);
}

int cat_read(const cat_opt *o, cat **out, const ody_log *log, ody_err *err)
{
    if (!o || !o->path || !o->path[0])
        return ody_fail(err, ODY_EINPUT, "no catalog path given — set `catalog.path`");
    const char *file = o->path;
    if (o->n_features < 1)
        return ody_fail(err, ODY_EINPUT, "%s: no feature columns given — list at least one in "
                        "`catalog.features`", file);
    fitsfile *f = NULL;
    int rc = open_table(o, &f, err);
    if (rc) return rc;

    int status = 0;
    long nrows = 0;
    cat *c = calloc(1, sizeof *c);
    colref *fref = calloc((size_t)o->n_features, sizeof *fref);
    colref *pref = calloc((size_t)(o->n_passthru > 0 ? o->n_passthru : 1), sizeof *pref);
    colref idref;
    chunkbuf b = {0};
    if (!c || !fref || !pref) { rc = ody_fail(err, ODY_ENOMEM, "out of memory reading %s", file); goto done; }

    fits_get_num_rows(f, &nrows, &status);
    if (status) { rc = ody_fits_fail(err, status, file, "cannot read the row count", NULL); goto done; }
    if (nrows == 0) {
        rc = ody_fail(err, ODY_EINPUT, "%s: the table has no rows%s — check the file%s", file,
                      strchr(file, '[') ? " (after filtering)" : "",
                      strchr(file, '[') ? " and the filter expression" : "");
        goto done;
    }

    /* Resolve every column before reading anything, so a typo costs nothing. */
    long maxrep = 1, maxwidth = 1;
    for (int j = 0; j < o->n_features; j++) {
        if ((rc = resolve_column(f, file, o->features[j], "feature", &fref[j], err))) goto done;
        if (fref[j].typecode == TSTRING) {
            rc = ody_fail(err, ODY_EINPUT, "%s: feature column '%s' holds strings; features must "
                          "be numeric — move it to `passthrough` or pick a numeric column",
                          file, o->features[j]);
            goto done;
        }
        if (fref[j].repeat > maxrep) maxrep = fref[j].repeat;
    }
    if (o->id_col && o->id_col[0]) {
        if ((rc = resolve_column(f, file, o->id_col, "id", &idref, err))) goto done;
        if (idref.repeat > maxrep && idref.typecode != TSTRING) maxrep = idref.repeat;
        if (idref.typecode == TSTRING && idref.width > maxwidth) maxwidth = idref.width;
    }
    for (int k = 0; k < o->n_passthru; k++) {
        if ((rc = resolve_column(f, file, o->passthru[k], "pass-through", &pref[k], err))) goto done;
        if (pref[k].typecode == TSTRING) {
            if (pref[k].width > maxwidth) maxwidth = pref[k].width;
        } else if (pref[k].repeat > maxrep) maxrep = pref[k].repeat;
    }

    long chunk = o->chunk_rows;
    if (chunk <= 0) {
        fits_get_rowsize(f, &chunk, &status);
        if (status || chunk < 1) { status = 0; chunk = 1000; }
    }
    if (chunk > nrows) chunk = nrows;

    /* Allocate the result at the upper bound; shrunk at the end if rows drop. */
    size_t N = (size_t)nrows, F = (size_t)o->n_features;
    c->n_feat = F;
    c->n_table_rows = N;
    c->path = ody_strdup(file);
    c->X = malloc(N * F * sizeof *c->X);
    c->row = malloc(N * sizeof *c->row);
    c->feat_names = calloc(F, sizeof *c->feat_names);
    c->feat_units = calloc(F, sizeof *c->feat_units);
    c->n_missing = calloc(F, sizeof *c->n_missing);
    if (o->n_passthru > 0) c->pass = calloc((size_t)o->n_passthru, sizeof *c->pass);
    size_t cn = (size_t)chunk;
    b.vals = malloc(cn * F * sizeof *b.vals);
    b.nul = malloc(cn * F);
    b.raw = malloc(cn * (size_t)maxrep * 2 * sizeof *b.raw);
    b.rawnul = malloc(cn * (size_t)maxrep * 2);
    b.keep = malloc(cn);
    b.sptr = malloc(cn * sizeof *b.sptr);
    b.sdata = malloc(cn * (size_t)(maxwidth + 1));
    if (!c->path || !c->X || !c->row || !c->feat_names || !c->feat_units || !c->n_missing ||
        (o->n_passthru > 0 && !c->pass) || !b.vals || !b.nul || !b.raw || !b.rawnul || !b.keep ||
        !b.sptr || !b.sdata) {
        rc = ody_fail(err, ODY_ENOMEM, "%s: out of memory for %zu rows x %zu features", file, N, F);
        goto done;
    }
    for (size_t r = 0; r < cn; r++) b.sptr[r] = b.sdata + r * (size_t)(maxwidth + 1);
    for (size_t j = 0; j < F; j++) {
        c->feat_names[j] = ody_strdup(o->features[j]);
        c->feat_units[j] = ody_strdup(fref[j].unit);
        if (!c->feat_names[j] || !c->feat_units[j]) { rc = ody_fail(err, ODY_ENOMEM, "out of memory"); goto done; }
    }
    if (o->id_col && o->id_col[0]) {
        if (carried_alloc(&c->id, &idref, N)) { rc = ody_fail(err, ODY_ENOMEM, "out of memory"); goto done; }
    } else {
        c->id.name = ody_strdup("ROW");
        c->id.unit = ody_strdup("");
        c->id.type = CAT_COL_INT;
        c->id.i = malloc(N * sizeof *c->id.i);
        if (!c->id.name || !c->id.unit || !c->id.i) { rc = ody_fail(err, ODY_ENOMEM, "out of memory"); goto done; }
    }
    for (int k = 0; k < o->n_passthru; k++) {
        c->n_pass = k + 1;
        if (carried_alloc(&c->pass[k], &pref[k], N)) { rc = ody_fail(err, ODY_ENOMEM, "out of memory"); goto done; }
    }

    /* Stream the table chunk by chunk. */
    size_t kept = 0;
    for (long row0 = 1; row0 <= nrows; row0 += chunk) {
        long nr = nrows - row0 + 1 < chunk ? nrows - row0 + 1 : chunk;
        for (size_t j = 0; j < F; j++) {
            double *col = b.vals + j * cn;
            char *nul = b.nul + j * cn;
            if ((rc = read_numeric(f, file, &fref[j], row0, nr, col, nul, b.raw, b.rawnul, err))) goto done;
        }
        for (long r = 0; r < nr; r++) {
            int ok = 1;
            for (size_t j = 0; j < F; j++) {
                double v = b.vals[j * cn + (size_t)r];
                int miss = b.nul[j * cn + (size_t)r];
                /* A finite double too large for float32 would become Inf. */
                if (!miss && fabs(v) > FLT_MAX) miss = 1;
                if (!miss) continue;
                c->n_missing[j]++;
                if (o->missing == CAT_MISSING_FAIL) {
                    rc = ody_fail(err, ODY_EINPUT, "%s: feature '%s', row %ld: value is null, NaN, "
                                  "Inf or out of float32 range — set `missing: drop` or `impute`, or "
                                  "filter the rows, e.g. FILE[isnull(%s) == F]",
                                  file, o->features[j], row0 + r, fref[j].name);
                    goto done;
                }
                b.nul[j * cn + (size_t)r] = 1;
                ok = 0;
            }
            b.keep[r] = (char)(ok || o->missing == CAT_MISSING_IMPUTE);
        }
        size_t at = kept;
        for (long r = 0; r < nr; r++) {
            if (!b.keep[r]) continue;
            float *x = c->X + at * F;
            for (size_t j = 0; j < F; j++)
                x[j] = b.nul[j * cn + (size_t)r] ? NAN : (float)b.vals[j * cn + (size_t)r];
            c->row[at] = row0 + r;
            if (!(o->id_col && o->id_col[0])) c->id.i[at] = row0 + r;
            at++;
        }
        if (o->id_col && o->id_col[0] &&
            (rc = carried_read(f, file, &idref, &c->id, row0, nr, b.keep, kept, b.raw, b.rawnul, b.sptr, err)))
            goto done;
        for (int k = 0; k < o->n_passthru; k++)
            if ((rc = carried_read(f, file, &pref[k], &c->pass[k], row0, nr, b.keep, kept, b.raw,
                                   b.rawnul, b.sptr, err)))
                goto done;
        kept = at;
    }
    c->n_rows = kept;
    c->n_dropped = N - kept;
    if (kept == 0) {
        rc = ody_fail(err, ODY_EINPUT, "%s: no rows left after dropping %zu rows with missing "
                      "feature values — set `missing: impute` or choose other features", file, N);
        goto done;
    }
    if (o->missing == CAT_MISSING_IMPUTE)
        for (size_t j = 0; j < F; j++)
            if (c->n_missing[j] && (rc = impute_column(c, j, file, err))) goto done;
    if (kept < N) {  /* give back what dropped rows reserved */
        float *X = realloc(c->X, kept * F * sizeof *X);
        if (X) c->X = X;
    }
    for (size_t j = 0; j < F; j++)
        if (c->n_missing[j])
            ody_logf(log, ODY_LOG_INFO, "%s: feature %s: %zu missing values (%s)", file,
                     c->feat_names[j], c->n_missing[j], cat_missing_name(o->missing));
    ody_logf(log, ODY_LOG_INFO, "%s: read %zu of %zu rows, %zu features (%zu dropped, %zu imputed)",
             file, kept, N, F, c->n_dropped, c->n_imputed);
    *out = c;
    c = NULL;
    rc = 0;
done:
    ody_fits_close(f);
    cat_destroy(c);
    free(fref);
    free(pref);
    chunkbuf_free(&b);
    return rc;
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

int cat_inspect(const char *path, cat_info **out, ody_err *err)
{
    int status = 0, nhdu = 0;
    fitsfile *f = NULL;
    if (fits_open_file(&f, path, READONLY, &status))
        return ody_fits_fail(err, status, path, "cannot open as FITS", NULL);
    int rc = 0;
    cat_info *info = calloc(1, sizeof *info);
    /* An extended-syntax path selects one HDU: describe only that one. */
    int single = strchr(path, '[') != NULL;
    if (single) nhdu = 1;
    else if (fits_get_num_hdus(f, &nhdu, &status)) {
        rc = ody_fits_fail(err, status, path, "cannot count the HDUs", NULL);
        goto done;
    }
    if (!info || !(info->hdu = calloc((size_t)nhdu, sizeof *info->hdu))) {
        rc = ody_fail(err, ODY_ENOMEM, "out of memory inspecting %s", path);
        goto done;
    }
    for (int h = 0; h < nhdu; h++) {
        cat_hduinfo *hi = &info->hdu[h];
        int type = 0;
        if (single) {
            fits_get_hdu_num(f, &hi->num);
            hi->num -= 1;
            fits_get_hdu_type(f, &type, &status);
        } else {
            hi->num = h;
            fits_movabs_hdu(f, h + 1, &type, &status);
        }
        if (status) {
            char what[64];
            snprintf(what, sizeof what, "cannot read HDU %d", hi->num);
            rc = ody_fits_fail(err, status, path, what, NULL);
            goto done;
        }
        info->n_hdu = h + 1;
        hi->hdutype = type;
        if ((rc = check_hdu(f, path, hi->num, err))) goto done;
        if (fits_read_key(f, TSTRING, "EXTNAME", hi->extname, NULL, &status)) {
            status = 0;
            hi->extname[0] = 0;
        }
        fits_clear_errmsg();
        if (type == IMAGE_HDU) {
            hi->compressed = fits_is_compressed_image(f, &status);
            fits_get_img_param(f, 9, &hi->bitpix, &hi->naxis, hi->naxes, &status);
        } else {
            fits_get_num_rows(f, &hi->n_rows, &status);
            fits_get_num_cols(f, &hi->n_cols, &status);
            if (!status && hi->n_cols > 0) {
                hi->cols = calloc((size_t)hi->n_cols, sizeof *hi->cols);
                if (!hi->cols) { rc = ody_fail(err, ODY_ENOMEM, "out of memory"); goto done; }
            }
            for (int c = 0; c < hi->n_cols && !status; c++) {
                cat_colinfo *ci = &hi->cols[c];
                char key[FLEN_KEYWORD];
                fits_make_keyn("TTYPE", c + 1, key, &status);
                if (fits_read_key(f, TSTRING, key, ci->name, NULL, &status)) {
                    status = 0;
                    snprintf(ci->name, sizeof ci->name, "(col%d)", c + 1);
                }
                fits_make_keyn("TFORM", c + 1, key, &status);
                fits_read_key(f, TSTRING, key, ci->tform, NULL, &status);
                fits_make_keyn("TUNIT", c + 1, key, &status);
                if (fits_read_key(f, TSTRING, key, ci->unit, NULL, &status)) { status = 0; ci->unit[0] = 0; }
                fits_clear_errmsg();
                fits_get_eqcoltype(f, c + 1, &ci->typecode, &ci->repeat, &ci->width, &status);
                if (status) break;
                ci->n_null = count_null_rows(f, ci, c + 1, hi->n_rows, &status);
            }
        }
        if (status) {
            char what[64];
            snprintf(what, sizeof what, "cannot read HDU %d", hi->num);
            rc = ody_fits_fail(err, status, path, what, NULL);
            goto done;
        }
    }
    if (!single) {
        /* Anything after the last HDU must be nothing: CFITSIO counts only the
         * HDUs it can parse, so trailing junk would otherwise go unnoticed. */
        int type = 0;
        fits_movabs_hdu(f, nhdu + 1, &type, &status);
        if (status != END_OF_FILE) {
            if (!status) status = BAD_HDU_NUM;
            char what[96];
            snprintf(what, sizeof what, "bytes after HDU %d are not a valid FITS extension", nhdu - 1);
            rc = ody_fits_fail(err, status, path, what,
                               "the file is damaged or has junk appended; check it with "
                               "`fitsverify FILE` and re-download it");
            goto done;
        }
        status = 0;
        fits_clear_errmsg();
    }
    *out = info;
    info = NULL;
done:
    ody_fits_close(f);
    cat_info_destroy(info);
    return rc;
}

/* ================================================================ editing */

static void keep_col(cat_col *col, const uint8_t *keep, size_t n)
{
    size_t at = 0, w = (size_t)col->width + 1;
    for (size_t r = 0; r < n; r++) {
        if (!keep[r]) continue;
        if (col->type == CAT_COL_STRING) memmove(col->s + at * w, col->s + r * w, w);
        else if (col->type == CAT_COL_INT) col->i[at] = col->i[r];
        else col->f[at] = col->f[r];
        at++;
    }
}

int cat_keep_rows(cat *c, const uint8_t *keep, ody_err *err)
{
    (void)err;
    size_t at = 0, F = c->n_feat;
    keep_col(&c->id, keep, c->n_rows);
    for (int k = 0; k < c->n_pass; k++) keep_col(&c->pass[k], keep, c->n_rows);
    for (size_t r = 0; r < c->n_rows; r++) {
        if (!keep[r]) continue;
        memmove(c->X + at * F, c->X + r * F, F * sizeof *c->X);
        c->row[at] = c->row[r];
        at++;
    }
    c->n_dropped += c->n_rows - at;
    c->n_rows = at;
    return 0;
}

int cat_add_features(cat *c, const float *vals, int n_new, char *const *names, ody_err *err)
{
    size_t F = c->n_feat, G = F + (size_t)n_new, n = c->n_rows;
    float *X = malloc((n ? n : 1) * G * sizeof *X);
    char **fn = realloc(c->feat_names, G * sizeof *fn);
    if (fn) c->feat_names = fn;
    char **fu = realloc(c->feat_units, G * sizeof *fu);
    if (fu) c->feat_units = fu;
    size_t *nm = realloc(c->n_missing, G * sizeof *nm);
    if (nm) c->n_missing = nm;
    if (!X || !fn || !fu || !nm) { free(X); return ody_fail(err, ODY_ENOMEM, "out of memory adding features"); }
    for (size_t r = 0; r < n; r++) {
        memcpy(X + r * G, c->X + r * F, F * sizeof *X);
        memcpy(X + r * G + F, vals + r * (size_t)n_new, (size_t)n_new * sizeof *X);
    }
    for (int k = 0; k < n_new; k++) {
        c->feat_names[F + (size_t)k] = ody_strdup(names[k]);
        c->feat_units[F + (size_t)k] = ody_strdup("");
        c->n_missing[F + (size_t)k] = 0;
    }
    free(c->X);
    c->X = X;
    c->n_feat = G;
    return 0;
}
