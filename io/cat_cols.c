/* cat_cols.c — catalog columns: resolving names, reading values, carried
 * columns, and editing a catalog in memory. */
#define _GNU_SOURCE  /* qsort_r */
#include <ctype.h>
#include <fitsio.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "catcol.h"

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

int catcol_is_integer(int t)
{
    return t == TBYTE || t == TSBYTE || t == TSHORT || t == TUSHORT || t == TINT ||
           t == TUINT || t == TLONG || t == TULONG || t == TLONGLONG || t == TULONGLONG ||
           t == TLOGICAL;
}

/* ================================================================ columns */

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

/* The column named `name` as a user means it: the name as written (its
 * number returned), else *n_loose columns differing in case alone, the first
 * *first_loose, their names in loose[0..1].  CFITSIO treats * ? # as
 * wildcards, so the match is done here.  0 with *n_loose 0: no such column. */
static int match_column(fitsfile *f, const char *name, int *n_loose, int *first_loose, char loose[2][FLEN_VALUE])
{
    int ncols = 0, status = 0, exact = 0;
    *n_loose = *first_loose = 0;
    fits_get_num_cols(f, &ncols, &status);
    for (int c = 1; c <= ncols && !exact; c++) {
        char key[FLEN_KEYWORD], col[FLEN_VALUE] = "";
        fits_make_keyn("TTYPE", c, key, &status);
        if (fits_read_key(f, TSTRING, key, col, NULL, &status)) { status = 0; continue; }
        if (!strcmp(col, name)) exact = c;  /* as written: it wins */
        else if (!strcasecmp(col, name)) {
            if (*n_loose < 2) snprintf(loose[*n_loose], FLEN_VALUE, "%s", col);
            if (!(*n_loose)++) *first_loose = c;
        }
    }
    fits_clear_errmsg();
    return exact;
}

static int resolve(fitsfile *f, const char *file, const char *spec, const char *role, int vla_ok, colref *ref,
                   ody_err *err)
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
    /* The name as written, else the one column whose name differs from it in
     * case alone.  Two such columns (u and U: SDSS's u band beside a U of
     * another system) are refused by name — taking the first read the wrong
     * band, silently. */
    int status = 0, n_loose = 0, first_loose = 0;
    char loose[2][FLEN_VALUE] = {"", ""};
    ref->colnum = match_column(f, ref->name, &n_loose, &first_loose, loose);
    if (!ref->colnum && n_loose > 1)
        return ody_fail(err, ODY_EINPUT, "%s: %s column '%s' is not there, and columns %s and %s differ from it in "
                        "case alone — name the one you mean exactly", file, role, ref->name, loose[0], loose[1]);
    if (!ref->colnum && n_loose == 1) {
        ref->colnum = first_loose;
        snprintf(ref->name, sizeof ref->name, "%s", loose[0]);
    }
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
    if (ref->typecode < 0 && !vla_ok)
        return ody_fail(err, ODY_EINPUT, "%s: %s column '%s' is a variable-length array, which oddsky reads only as "
                        "a spectrum (spectra.flux, wave, ivar, mask) — write it as a fixed-size column",
                        file, role, ref->name);
    if (ref->typecode < 0) ref->vla = 1, ref->typecode = -ref->typecode;  /* repeat: 1, the caller measures rows */
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

int catcol_resolve(fitsfile *f, const char *file, const char *spec, const char *role, colref *ref, ody_err *err)
{
    return resolve(f, file, spec, role, 0, ref, err);
}

int catcol_resolve_vla(fitsfile *f, const char *file, const char *spec, const char *role, colref *ref, ody_err *err)
{
    return resolve(f, file, spec, role, 1, ref, err);
}

long long catcol_heap_size(fitsfile *f)
{
    int status = 0;
    LONGLONG naxis1 = 0, naxis2 = 0, pcount = 0, theap = 0;
    fits_read_key(f, TLONGLONG, "NAXIS1", &naxis1, NULL, &status);
    fits_read_key(f, TLONGLONG, "NAXIS2", &naxis2, NULL, &status);
    fits_read_key(f, TLONGLONG, "PCOUNT", &pcount, NULL, &status);
    if (status) {
        fits_clear_errmsg();
        return -1;
    }
    if (fits_read_key(f, TLONGLONG, "THEAP", &theap, NULL, &status)) theap = naxis1 * naxis2;  /* the default */
    fits_clear_errmsg();
    long long gap = theap - naxis1 * naxis2;
    return pcount >= 0 && gap >= 0 && gap <= pcount ? pcount - gap : -1;
}

/* ================================================================ feature blocks */

int catcol_left_out(fitsfile *f, const char *name, char *left, size_t len)
{
    char bare[FLEN_VALUE];  /* matched as catcol_resolve matches it: "MAG[2]" is column MAG */
    snprintf(bare, sizeof bare, "%.*s", (int)strcspn(name, "["), name);
    int n_loose = 0, first_loose = 0;
    char loose[2][FLEN_VALUE];
    if (match_column(f, bare, &n_loose, &first_loose, loose) || n_loose) return 0;
    size_t at = strlen(left);
    if (at + 1 < len) snprintf(left + at, len - at, "%s%s", at ? ", " : "", name);
    return 1;
}

void catcol_names_free(char **names, int n)
{
    for (int k = 0; names && k < n; k++) free(names[k]);
    free(names);
}

int catcol_vector_wcs(fitsfile *f, int colnum, double *crval, double *cdelt, double *crpix)
{
    char key[FLEN_KEYWORD];
    int status = 0;
    *crpix = 1;
    snprintf(key, sizeof key, "1CRVL%d", colnum);
    fits_read_key(f, TDOUBLE, key, crval, NULL, &status);
    snprintf(key, sizeof key, "1CDLT%d", colnum);
    fits_read_key(f, TDOUBLE, key, cdelt, NULL, &status);
    int ok = !status;
    status = 0;
    snprintf(key, sizeof key, "1CRPX%d", colnum);
    if (fits_read_key(f, TDOUBLE, key, crpix, NULL, &status)) *crpix = 1;
    fits_clear_errmsg();
    return ok;
}

/* "NAME[a:b]" -> name, a, b; 0 when spec is not a range. */
static int parse_range(const char *spec, char *name, size_t len, long *a, long *b)
{
    const char *br = strchr(spec, '[');
    if (!br || !strchr(br, ':')) return 0;
    char *end;
    *a = strtol(br + 1, &end, 10);
    if (end == br + 1 || *end != ':') return -1;
    const char *p = end + 1;
    *b = strtol(p, &end, 10);
    if (end == p || *end != ']' || end[1]) return -1;
    size_t n = (size_t)(br - spec);
    if (n == 0 || n >= len) return -1;
    memcpy(name, spec, n);
    name[n] = 0;
    return 1;
}

typedef struct specs { char **spec, **label; int n, cap; } specs;

static int specs_add(specs *s, const char *spec, const char *label)
{
    if (s->n == s->cap) {
        int cap = s->cap ? 2 * s->cap : 16;
        char **a = realloc(s->spec, (size_t)cap * sizeof *a), **b = a ? realloc(s->label, (size_t)cap * sizeof *b) : NULL;
        if (a) s->spec = a;
        if (b) s->label = b;
        if (!a || !b) return -1;
        s->cap = cap;
    }
    s->spec[s->n] = ody_strdup(spec);
    s->label[s->n] = ody_strdup(label);
    s->n++;
    return s->spec[s->n - 1] && s->label[s->n - 1] ? 0 : -1;
}

/* Elements a..b of the vector column `name` (resolved as ref). */
static int add_block(fitsfile *f, specs *s, const colref *ref, long a, long b)
{
    double crval = 0, cdelt = 0, crpix = 1;
    int wcs = catcol_vector_wcs(f, ref->colnum, &crval, &cdelt, &crpix);
    for (long k = a; k <= b; k++) {
        char sp[96], lab[128];
        snprintf(sp, sizeof sp, "%s[%ld]", ref->name, k);
        if (wcs) snprintf(lab, sizeof lab, "%s@%.6g", sp, crval + ((double)k - crpix) * cdelt);
        else snprintf(lab, sizeof lab, "%s", sp);
        if (specs_add(s, sp, lab)) return -1;
    }
    return 0;
}

static int expand_one(fitsfile *f, const char *file, const char *spec, specs *s, ody_err *err)
{
    char name[80];
    long a = 0, b = 0;
    int range = parse_range(spec, name, sizeof name, &a, &b);
    if (range < 0)
        return ody_fail(err, ODY_EINPUT, "%s: feature '%s': a slice is NAME[first:last], whole numbers from 1, as in "
                        "FLUX[100:2900] — fix the feature", file, spec);
    colref ref;
    if (range) {
        char one[96];
        snprintf(one, sizeof one, "%s[1]", name);
        int rc = catcol_resolve(f, file, one, "feature", &ref, err);
        if (rc) return rc;
        if (a < 1 || b < a || b > ref.repeat)
            return ody_fail(err, ODY_EINPUT, "%s: feature '%s': the column has elements 1 to %ld — give "
                            "1 <= first <= last <= %ld", file, spec, ref.repeat, ref.repeat);
        return add_block(f, s, &ref, a, b) ? ody_fail(err, ODY_ENOMEM, "out of memory") : 0;
    }
    if (!strchr(spec, '[')) {  /* a bare name: a vector column means all of it */
        char one[96];
        snprintf(one, sizeof one, "%.80s[1]", spec);
        ody_err quiet;
        if (!catcol_resolve(f, file, one, "feature", &ref, &quiet) && ref.repeat > 1 && ref.typecode != TSTRING)
            return add_block(f, s, &ref, 1, ref.repeat) ? ody_fail(err, ODY_ENOMEM, "out of memory") : 0;
    }
    return specs_add(s, spec, spec) ? ody_fail(err, ODY_ENOMEM, "out of memory") : 0;
}

int catcol_expand(fitsfile *f, const char *file, const char *const *features, int n, char ***spec, char ***label,
                  int *n_out, ody_err *err)
{
    specs s = {0};
    int rc = 0;
    for (int j = 0; j < n && !rc; j++) rc = expand_one(f, file, features[j], &s, err);
    if (rc) {
        catcol_names_free(s.spec, s.n);
        catcol_names_free(s.label, s.n);
        return rc;
    }
    *spec = s.spec, *label = s.label, *n_out = s.n;
    return 0;
}

/* Reads element ref->elem of rows [row0, row0+nrows) as doubles; null[r] is
 * set for a FITS null, NaN or Inf.  buf must hold nrows*repeat doubles and
 * nbuf nrows*repeat flags. */
int catcol_read_numeric(fitsfile *f, const char *file, const colref *ref, long row0, long nrows,
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
    catcol_extract(ref, nrows, out, null, buf, nbuf);
    return 0;
fail:;
    char what[160];
    snprintf(what, sizeof what, "cannot read column '%s' at rows %ld-%ld", ref->name, row0,
             row0 + nrows - 1);
    return ody_fits_fail(err, status, file, what, NULL);
}

void catcol_extract(const colref *ref, long nrows, double *out, char *null, const double *buf, const char *nbuf)
{
    for (long r = 0; r < nrows; r++) {
        long k = r * ref->repeat + ref->elem - 1;
        out[r] = buf[k];
        null[r] = nbuf[k] || !isfinite(buf[k]);
    }
}

/* ================================================================ carried columns */

int catcol_alloc(cat_col *c, const colref *ref, size_t n)
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
    if (catcol_is_integer(ref->typecode)) {
        c->type = CAT_COL_INT;
        c->i = malloc((n ? n : 1) * sizeof *c->i);
        return c->i ? 0 : ODY_ENOMEM;
    }
    c->type = CAT_COL_FLOAT;
    c->f = malloc((n ? n : 1) * sizeof *c->f);
    return c->f ? 0 : ODY_ENOMEM;
}

void catcol_free(cat_col *c)
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
int catcol_read(fitsfile *f, const char *file, const colref *ref, cat_col *c, long row0,
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
    int rc = catcol_read_numeric(f, file, ref, row0, nrows, vals, nul, buf, nbuf, err);
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
        else ody_fmt_ll(buf, len, (long long)c->i[r]);  /* not printf: an export formats every neighbour's ID (ody.h) */
        break;
    default: ody_fmt_g(buf, len, 17, c->f[r]); break;
    }
}

/* ================================================================ finding by ID */

static int cmp_ids(const void *a, const void *b, void *ctx)
{
    const cat_ids *x = ctx;
    return strcmp(cat_ids_text(x, *(const size_t *)a), cat_ids_text(x, *(const size_t *)b));
}

void cat_ids_free(cat_ids *x)
{
    free(x->text);
    free(x->order);
    memset(x, 0, sizeof *x);
}

int cat_ids_build(cat_ids *x, const cat_col *id, size_t n)
{
    char buf[CAT_ID_MAX + 1];
    memset(x, 0, sizeof *x);
    x->n = n;
    x->w = 2;
    for (size_t i = 0; i < n; i++) {
        cat_col_format(id, i, buf, sizeof buf);
        if (strlen(buf) + 1 > x->w) x->w = strlen(buf) + 1;
    }
    x->text = calloc(n ? n : 1, x->w);
    x->order = malloc((n ? n : 1) * sizeof *x->order);
    if (!x->text || !x->order) {
        cat_ids_free(x);
        return -1;
    }
    for (size_t i = 0; i < n; i++) {
        cat_col_format(id, i, x->text + i * x->w, x->w);
        x->order[i] = i;
    }
    qsort_r(x->order, n, sizeof *x->order, cmp_ids, x);
    return 0;
}

long cat_ids_find(const cat_ids *x, const char *s)
{
    size_t lo = 0, hi = x->n;
    while (lo < hi) {
        size_t mid = lo + (hi - lo) / 2;
        int c = strcmp(cat_ids_text(x, x->order[mid]), s);
        if (!c) return (long)x->order[mid];
        if (c < 0) lo = mid + 1;
        else hi = mid;
    }
    return -1;
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
        char *nk = ody_strdup(names[k]), *uk = ody_strdup("");
        if (!nk || !uk) {  /* the catalog keeps its F features, all of them whole */
            free(nk);
            free(uk);
            for (int q = 0; q < k; q++) { free(c->feat_names[F + (size_t)q]); free(c->feat_units[F + (size_t)q]); }
            free(X);
            return ody_fail(err, ODY_ENOMEM, "out of memory adding features");
        }
        c->feat_names[F + (size_t)k] = nk;
        c->feat_units[F + (size_t)k] = uk;
        c->n_missing[F + (size_t)k] = 0;
    }
    free(c->X);
    c->X = X;
    c->n_feat = G;
    return 0;
}

/* ================================================================ unique IDs */

int cat_col_cmp(const cat_col *a, size_t x, const cat_col *b, size_t y)
{
    if (a->type == CAT_COL_INT) return (a->i[x] > b->i[y]) - (a->i[x] < b->i[y]);
    if (a->type == CAT_COL_FLOAT) return (a->f[x] > b->f[y]) - (a->f[x] < b->f[y]);
    return strcmp(a->s + x * ((size_t)a->width + 1), b->s + y * ((size_t)b->width + 1));
}

static int cmp_id(const void *a, const void *b, void *arg)
{
    size_t x = *(const size_t *)a, y = *(const size_t *)b;
    int r = cat_col_cmp(arg, x, arg, y);
    return r ? r : (x > y) - (x < y);
}

static int id_missing(const cat_col *c, size_t r)
{
    if (c->type == CAT_COL_INT) return c->i[r] == CAT_INT_NULL;
    if (c->type == CAT_COL_FLOAT) return isnan(c->f[r]);
    const char *s = c->s + r * ((size_t)c->width + 1);
    return s[strspn(s, " ")] == 0;
}

size_t cat_col_elem(const cat_col *c) { return c->type == CAT_COL_STRING ? (size_t)c->width + 1 : 8; }

const void *cat_col_at(const cat_col *c, size_t r)
{
    return c->type == CAT_COL_STRING ? (const void *)(c->s + r * ((size_t)c->width + 1))
           : c->type == CAT_COL_INT ? (const void *)(c->i + r) : (const void *)(c->f + r);
}

cat_col cat_col_view(const cat_col *c, void *data)
{
    cat_col v = {c->name, c->unit, c->type, c->width, NULL, NULL, NULL};
    if (c->type == CAT_COL_STRING) v.s = data;
    else if (c->type == CAT_COL_INT) v.i = data;
    else v.f = data;
    return v;
}

uint64_t cat_col_hash(const cat_col *c, size_t r)
{
    /* the bits that decide equality (a string's up to its NUL: FNV-1a), mixed by splitmix64 */
    unsigned long long u = 0xcbf29ce484222325ULL;
    if (c->type == CAT_COL_STRING) {
        for (const unsigned char *s = (const unsigned char *)c->s + r * ((size_t)c->width + 1); *s; s++)
            u = (u ^ *s) * 0x100000001b3ULL;
    } else if (c->type == CAT_COL_FLOAT) {
        double d = c->f[r] == 0 ? 0.0 : c->f[r];
        memcpy(&u, &d, sizeof u);
    } else {
        u = (unsigned long long)c->i[r];
    }
    return ody_splitmix64(&u);
}

int cat_ids_missing(const cat_col *c, size_t n, const int64_t *row, const char *file, ody_err *err)
{
    for (size_t r = 0; r < n; r++) {
        if (id_missing(c, r))
            return ody_fail(err, ODY_EINPUT, "%s: ID column %s has no value in row %lld — every object needs an ID; "
                            "fill it, filter such rows in catalog.path, or leave catalog.id empty to use row numbers",
                            file, c->name, (long long)row[r]);
        const char *s = c->type == CAT_COL_STRING ? c->s + r * (size_t)(c->width + 1) : "";
        if (strlen(s) > CAT_ID_MAX)
            return ody_fail(err, ODY_EINPUT, "%s: ID column %s holds %zu characters in row %lld — IDs are at most %d "
                            "characters; choose a shorter ID column, or leave catalog.id empty to use row numbers",
                            file, c->name, strlen(s), (long long)row[r], CAT_ID_MAX);
        if (strchr(s, ';'))
            return ody_fail(err, ODY_EINPUT, "%s: ID column %s holds '%.80s' in row %lld — an ID may not contain ';', "
                            "which separates the IDs in NEAREST and NEIGHBOURS; choose another ID column, or leave "
                            "catalog.id empty to use row numbers", file, c->name, s, (long long)row[r]);
    }
    return 0;
}

int cat_ids_first_dup(const cat_col *c, size_t n, size_t *a, size_t *b)
{
    size_t *ix = malloc((n ? n : 1) * sizeof *ix);
    if (!ix) return -1;
    for (size_t r = 0; r < n; r++) ix[r] = r;
    qsort_r(ix, n, sizeof *ix, cmp_id, (void *)c);
    int found = 0;
    for (size_t q = 1; q < n && !found; q++)
        if (!cat_col_cmp(c, ix[q - 1], c, ix[q])) {
            *a = ix[q - 1];
            *b = ix[q];
            found = 1;
        }
    free(ix);
    return found;
}

int cat_ids_dup_fail(const cat_col *c, size_t a, long long ra, long long rb, const char *file, ody_err *err)
{
    char v[CAT_ID_MAX + 1];
    cat_col_format(c, a, v, sizeof v);
    return ody_fail(err, ODY_EINPUT, "%s: ID column %s holds %s in rows %lld and %lld — IDs must be unique%s; choose "
                    "another catalog.id, or leave it empty to use row numbers", file, c->name, v, ra, rb,
                    c->type == CAT_COL_FLOAT ? " (a floating-point ID may have lost digits: read it as an integer or "
                    "string column)" : "");
}

int catcol_unique(const cat_col *c, size_t n, const int64_t *row, const char *file, ody_err *err)
{
    int rc = cat_ids_missing(c, n, row, file, err);
    size_t a = 0, b = 0;
    int dup = rc ? 0 : cat_ids_first_dup(c, n, &a, &b);
    if (dup < 0) return ody_fail(err, ODY_ENOMEM, "%s: out of memory checking the IDs", file);
    return dup ? cat_ids_dup_fail(c, a, (long long)row[a], (long long)row[b], file, err) : rc;
}
