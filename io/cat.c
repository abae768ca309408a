/* cat.c — reading a FITS table into a feature matrix. */
#include <fitsio.h>
#include <float.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <unistd.h>

#include "catcol.h"
#include "catimg.h"
#include "catspec.h"
#include "fitsin.h"
#include "tabin.h"

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

/* ================================================================ opening */

int cat_row_only_fail(const char *path, ody_err *err)
{
    float v = 0;
    fits_get_version(&v);  /* 4.02 for 4.2.0 */
    int major = (int)v, minor = (int)((v - (float)major) * 100 + 0.5f);
    return ody_fail(err, ODY_EINPUT, "%s: the row filter names #row and no column, which CFITSIO %d.%d evaluates from "
                    "freed memory — name a column in it too, e.g. [#row <= 1000 && ID > 0] (docs/LIMITS.md)", path,
                    major, minor);
}

/* Opens the table HDU, honouring o->hdu.  *f is NULL on error. */
static int open_table(const cat_opt *o, fitsfile **f, ody_err *err)
{
    int status = 0;
    *f = NULL;
    const char *path = o->path;
    char *built = NULL, *tmp = NULL;
    int rc = tab_resolve(path, o->format, &built, &tmp, err);
    if (rc) return rc;
    if (built && o->hdu && o->hdu[0] && strcmp(o->hdu, "1")) {
        unlink(tmp);
        free(tmp);
        free(built);
        return ody_fail(err, ODY_EINPUT, "%s: a text table has one table, but `hdu: %s` is set — remove `hdu:`",
                        o->path, o->hdu);
    }
    if (!built && ody_fits_row_only_filter(path)) return cat_row_only_fail(o->path, err);
    if (built) path = built;
    else if ((rc = fitsin_check(path, NULL, err))) return rc;
    if (!built && o->hdu && o->hdu[0]) {
        /* Insert [hdu] after the file name so any filter that follows applies
         * to that HDU: a.fits[x>1] + hdu=SDSS -> a.fits[SDSS][x>1]. */
        size_t n = strlen(path), m = strlen(o->hdu);
        size_t base = ody_fits_file_len(path);
        built = malloc(n + m + 3);
        if (!built) return ody_fail(err, ODY_ENOMEM, "out of memory opening %s", path);
        memcpy(built, path, base);
        sprintf(built + base, "[%s]%s", o->hdu, path + base);
        path = built;
    }
    ody_fits_open(f, path, ODY_FITS_TABLE, READONLY, &status);
    free(built);
    if (tmp) unlink(tmp);  /* the open handle keeps it readable */
    free(tmp);
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
    return 0;
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
        if (!isnan(x)) v[nv++] = x == 0 ? 0.0f : x;  /* -0 and 0 one value: the median's sign no accident of the sort */
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
    catcol_free(&c->id);
    for (int k = 0; k < c->n_pass; k++) catcol_free(&c->pass[k]);
    free(c->pass);
    free(c->row);
    free(c->n_missing);
    free(c->read_lo);
    free(c->read_hi);
    free(c->drop_row);
    free(c->drop_feat);
    free(c->drop_nmiss);
    free(c->drop_spec);
    catcol_free(&c->drop_id);
    free(c->path);
    free(c);
}

/* Scratch buffers for one chunk, sized by the widest column read. */
typedef struct chunkbuf {
    double *vals, *raw;
    double *lo, *hi;       /* per feature: the smallest and largest valid value read */
    char *nul, *rawnul, *keep, *drop;  /* drop: not keep */
    char **sptr;
    char *sdata;
} chunkbuf;

static void chunkbuf_free(chunkbuf *b)
{
    free(b->vals); free(b->raw); free(b->lo); free(b->hi); free(b->nul); free(b->rawnul); free(b->keep); free(b->drop);
    free(b->sptr); free(b->sdata);
}


/* One read of a catalog: the open table, its resolved columns, the result
 * being filled, and a chunk's scratch buffers. */
typedef struct reader {
    const cat_opt *o;
    const char *file;
    fitsfile *f;
    long nrows, chunk;
    long first, N;           /* the rows read: [first, first + N), 0-based; all of them unless a part */
    int part;
    colref *fref, *pref, idref;
    int n_pass;              /* pass-through columns resolved (pref), in o->passthru order */
    char pass_left[256];     /* those the table lacks (passthru_optional) */
    char **fspec, **flabel;  /* the features with blocks expanded: specs, names */
    int nf;                  /* those features */
    imgblk *img;             /* image HDUs named as features: their values after the columns' */
    int n_img, ni;           /* those images, their features */
    specrd sp;               /* spectra (o->spec), their grid bins after them */
    int has_spec, nt;        /* nt: all features */
    int has_id;
    long maxrep, maxwidth;
    size_t dropped;          /* rows dropped so far */
    chunkbuf b;
    cat *c;
    ody_err *err;
} reader;

/* Whether the table column `column` (case-insensitive, as CFITSIO names
 * it) is one the features read (ctx: the reader). */
static int is_feature_column(const void *ctx, const char *column)
{
    const reader *rd = ctx;
    for (int j = 0; j < rd->nf; j++)
        if (!strcasecmp(rd->fref[j].name, column)) return 1;
    return 0;
}

/* Resolves every column before reading anything, so a typo costs nothing. */
static int reader_resolve(reader *rd)
{
    const cat_opt *o = rd->o;
    rd->maxrep = rd->maxwidth = 1;
    const char **cols = calloc((size_t)o->n_features + 1, sizeof *cols);
    rd->img = calloc((size_t)o->n_features + 1, sizeof *rd->img);
    if (!cols || !rd->img) {
        free(cols);
        return ody_fail(rd->err, ODY_ENOMEM, "out of memory reading %s", rd->file);
    }
    int n_cols = 0, rc = 0;
    for (int j = 0; j < o->n_features && !rc; j++) {  /* a bare name that is no column may be an image HDU */
        int status = 0, cn = 0, got = 0;
        if (!strpbrk(o->features[j], "[*?#") && fits_get_colnum(rd->f, CASEINSEN, (char *)o->features[j], &cn, &status))
            got = img_open(rd->file, o->features[j], rd->nrows, rd->chunk, &rd->img[rd->n_img], rd->err);
        if (got < 0) rc = rd->err->code;
        else if (got == 1) rd->ni += (int)rd->img[rd->n_img++].L;
        else cols[n_cols++] = o->features[j];
    }
    if (!rc) rc = catcol_expand(rd->f, rd->file, cols, n_cols, &rd->fspec, &rd->flabel, &rd->nf, rd->err);
    free(cols);
    if (!rc && !(rd->fref = calloc((size_t)(rd->nf ? rd->nf : 1), sizeof *rd->fref)))
        rc = ody_fail(rd->err, ODY_ENOMEM, "out of memory reading %s", rd->file);
    for (int j = 0; j < rd->nf && !rc; j++) {
        if ((rc = catcol_resolve(rd->f, rd->file, rd->fspec[j], "feature", &rd->fref[j], rd->err))) break;
        if (rd->fref[j].typecode == TSTRING)
            rc = ody_fail(rd->err, ODY_EINPUT, "%s: feature column '%s' holds strings; features must be numeric — "
                          "move it to `passthrough` or pick a numeric column", rd->file, rd->fspec[j]);
        if (rd->fref[j].repeat > rd->maxrep) rd->maxrep = rd->fref[j].repeat;
    }
    if (!rc) rc = tab_range_check(rd->f, rd->file, is_feature_column, rd, rd->err);  /* a text table's 1e999 */
    if (!rc && rd->has_id) {
        rc = catcol_resolve(rd->f, rd->file, o->id_col, "id", &rd->idref, rd->err);
        if (rd->idref.typecode == TSTRING && rd->idref.width > rd->maxwidth) rd->maxwidth = rd->idref.width;
        else if (rd->idref.typecode != TSTRING && rd->idref.repeat > rd->maxrep) rd->maxrep = rd->idref.repeat;
    }
    for (int k = 0; k < o->n_passthru && !rc; k++) {
        const colref *p = &rd->pref[rd->n_pass];
        if (o->passthru_optional && catcol_left_out(rd->f, o->passthru[k], rd->pass_left, sizeof rd->pass_left))
            continue;
        if ((rc = catcol_resolve(rd->f, rd->file, o->passthru[k], "pass-through", &rd->pref[rd->n_pass], rd->err)))
            break;
        rd->n_pass++;
        if (p->typecode == TSTRING && p->width > rd->maxwidth) rd->maxwidth = p->width;
        else if (p->typecode != TSTRING && p->repeat > rd->maxrep) rd->maxrep = p->repeat;
    }
    if (!rc && o->spec && o->spec->flux && o->spec->flux[0]) {
        rc = spec_open(rd->f, rd->file, o->spec, rd->chunk, &rd->sp, rd->err);
        rd->has_spec = !rc;
        if (!rc) rd->chunk = rd->sp.chunk;  /* no more rows a chunk than the spectra's buffers hold */
    }
    rd->nt = rd->nf + rd->ni + (rd->has_spec ? rd->sp.n_out : 0);
    if (!rc && rd->nt < 1)
        rc = ody_fail(rd->err, ODY_EINPUT, "%s: no features — list at least one in `catalog.features` or set "
                      "spectra.flux", rd->file);
    return rc;
}

/* The image block feature j (at least rd->nf) falls in, and its element. */
static const imgblk *feat_image(const reader *rd, int j, long *k)
{
    *k = j - rd->nf;
    for (int b = 0; b < rd->n_img; b++) {
        if (*k < rd->img[b].L) return &rd->img[b];
        *k -= rd->img[b].L;
    }
    return NULL;
}

/* Feature j's name, and the column or HDU it comes from. */
static const char *feat_name(const reader *rd, size_t j)
{
    long k;
    const imgblk *b = (int)j < rd->nf ? NULL : feat_image(rd, (int)j, &k);
    return (int)j < rd->nf ? rd->flabel[j] : b ? b->names[k] : rd->sp.names[(int)j - rd->nf - rd->ni];
}

static const char *feat_source(const reader *rd, size_t j)
{
    long k;
    const imgblk *b = (int)j < rd->nf ? NULL : feat_image(rd, (int)j, &k);
    return (int)j < rd->nf ? rd->fref[j].name : b ? b->name : rd->sp.flux.name;
}

static int chunkbuf_alloc(chunkbuf *b, size_t cn, size_t F, long maxrep, long maxwidth)
{
    b->vals = malloc(cn * F * sizeof *b->vals);
    b->nul = malloc(cn * F);
    b->raw = malloc(cn * (size_t)maxrep * 2 * sizeof *b->raw);
    b->rawnul = malloc(cn * (size_t)maxrep * 2);
    b->keep = malloc(cn);
    b->drop = malloc(cn);
    b->sptr = malloc(cn * sizeof *b->sptr);
    b->sdata = malloc(cn * (size_t)(maxwidth + 1));
    b->lo = malloc((F ? F : 1) * sizeof *b->lo);
    b->hi = malloc((F ? F : 1) * sizeof *b->hi);
    if (!b->vals || !b->nul || !b->raw || !b->rawnul || !b->keep || !b->drop || !b->sptr || !b->sdata || !b->lo ||
        !b->hi)
        return -1;
    for (size_t j = 0; j < F; j++) b->lo[j] = INFINITY, b->hi[j] = -INFINITY;
    for (size_t r = 0; r < cn; r++) b->sptr[r] = b->sdata + r * (size_t)(maxwidth + 1);
    return 0;
}

/* The ID column: the named one, or the 1-based row number. */
static int id_alloc(reader *rd, cat_col *id, size_t N)
{
    if (rd->has_id) return catcol_alloc(id, &rd->idref, N);
    id->name = ody_strdup("ROW");
    id->unit = ody_strdup("");
    id->type = CAT_COL_INT;
    id->i = malloc((N ? N : 1) * sizeof *id->i);
    return id->name && id->unit && id->i ? 0 : ODY_ENOMEM;
}

/* What reading needs, against the machine's memory: a header may claim far
 * more rows than fit, and an allocation that overcommits fails later. */
static int reader_fits(const reader *rd)
{
    double N = (double)rd->N, per_row = 4.0 * rd->nt + 16 + (rd->has_id ? rd->idref.width + 9 : 8);
    for (int k = 0; k < rd->n_pass; k++) per_row += (double)rd->pref[k].width + 9;
    double need = N * per_row, have = ody_phys_memory();
    if (have > 0 && need > 0.8 * have)
        return ody_fail(rd->err, ODY_EINPUT, "%s: %.0f rows x %d features need %.1f GB to read; this machine has %.1f "
                        "GB — select rows with FILE[expression], keep fewer columns, or use a larger machine",
                        rd->file, N, rd->nt, need / 1e9, have / 1e9);
    return 0;
}

/* The result at the upper bound of rows (shrunk at the end if rows drop). */
static int reader_alloc(reader *rd)
{
    const cat_opt *o = rd->o;
    size_t N = (size_t)rd->N, F = (size_t)rd->nt;
    cat *c = rd->c;
    c->n_feat = F;
    c->n_table_rows = (size_t)rd->nrows;
    c->path = ody_strdup(rd->file);
    c->X = malloc(N * F * sizeof *c->X);
    c->row = malloc(N * sizeof *c->row);
    c->feat_names = calloc(F, sizeof *c->feat_names);
    c->feat_units = calloc(F, sizeof *c->feat_units);
    c->n_missing = calloc(F, sizeof *c->n_missing);
    if (rd->n_pass > 0) c->pass = calloc((size_t)rd->n_pass, sizeof *c->pass);
    memcpy(c->pass_left, rd->pass_left, sizeof c->pass_left);
    int ok = c->path && c->X && c->row && c->feat_names && c->feat_units && c->n_missing &&
             (rd->n_pass == 0 || c->pass) &&
             !chunkbuf_alloc(&rd->b, (size_t)rd->chunk, F, rd->maxrep, rd->maxwidth);
    for (size_t j = 0; ok && j < F; j++) {
        c->feat_names[j] = ody_strdup(feat_name(rd, j));
        long k;
        const imgblk *ib = (int)j < rd->nf ? NULL : feat_image(rd, (int)j, &k);
        c->feat_units[j] = ody_strdup((int)j < rd->nf ? rd->fref[j].unit : ib ? ib->unit : "");
        ok = c->feat_names[j] && c->feat_units[j];
    }
    ok = ok && !id_alloc(rd, &c->id, N);
    if (ok && o->missing == CAT_MISSING_DROP) {  /* why rows went, for the run's dropped list */
        c->drop_row = malloc((N ? N : 1) * sizeof *c->drop_row);
        c->drop_feat = malloc((N ? N : 1) * sizeof *c->drop_feat);
        c->drop_nmiss = malloc((N ? N : 1) * sizeof *c->drop_nmiss);
        c->drop_spec = malloc(N ? N : 1);
        ok = c->drop_row && c->drop_feat && c->drop_nmiss && c->drop_spec && !id_alloc(rd, &c->drop_id, N);
    }
    for (int k = 0; ok && k < rd->n_pass; k++) {
        c->n_pass = k + 1;
        ok = !catcol_alloc(&c->pass[k], &rd->pref[k], N);
    }
    return ok ? 0 : ody_fail(rd->err, ODY_ENOMEM, "%s: out of memory for %zu rows x %zu features", rd->file, N, F);
}

/* The error for feature j's value v in row `row`, which float32 cannot hold:
 * beyond its range, or so small (below its smallest normal value) that it
 * would turn to 0 or keep a few bits, and the column would read as constant. */
static int beyond_float(reader *rd, size_t j, long row, double v)
{
    const char *col = feat_source(rd, j);
    const char *what = fabs(v) > FLT_MAX ? "is beyond float32's range (+-3.4e38)"
                                         : "is below float32's smallest normal value (1.2e-38)";
    if ((int)j >= rd->nf)  /* an image or spectrum block: no column to take the log of */
        return ody_fail(rd->err, ODY_EINPUT, "%s: feature '%s', row %ld: %g %s, in which oddsky computes — rescale %s",
                        rd->file, feat_name(rd, j), row, v, what, col);
    return ody_fail(rd->err, ODY_EINPUT, "%s: feature '%s', row %ld: %g %s, in which oddsky computes — use its "
                    "logarithm, e.g. FILE[col *; log_%s = log10(%s)] and the feature log_%s", rd->file,
                    feat_name(rd, j), row, v, what, col, col, col);
}

/* Whether v is one of the values o says mean missing: equal as read, or as
 * float32 (a float column's -9999.99 is not the double -9999.99). */
static int is_null_value(const cat_opt *o, double v)
{
    for (int k = 0; k < o->n_nulls; k++) {
        double n = o->nulls[k];
        if (v == n || (fabs(v) <= FLT_MAX && fabs(n) <= FLT_MAX && (float)v == (float)n)) return 1;
    }
    return 0;
}

/* Flags the missing feature values of a chunk (b.nul) and which rows stay
 * (b.keep), counting missing values per feature. */
static int chunk_missing(reader *rd, long row0, long nr)
{
    const cat_opt *o = rd->o;
    size_t F = (size_t)rd->nt, cn = (size_t)rd->chunk;
    chunkbuf *b = &rd->b;
    for (long r = 0; r < nr; r++) {
        int ok = 1;
        for (size_t j = 0; j < F; j++) {
            double v = b->vals[j * cn + (size_t)r];
            int miss = b->nul[j * cn + (size_t)r] || is_null_value(o, v);
            /* A finite value float32 cannot hold (a luminosity in erg/s, a cross-section in cm^2) is no
             * missing value: dropping or imputing it would rank a catalog without its brightest objects
             * and say they were missing, and a tiny one read as 0 would make its column constant. */
            if (!miss && isfinite(v) && (fabs(v) > FLT_MAX || (v != 0 && fabs(v) < FLT_MIN)))
                return beyond_float(rd, j, row0 + r, v);
            if (!miss && !isfinite(v)) miss = 1;
            if (!miss) {
                if (v < b->lo[j]) b->lo[j] = v;
                if (v > b->hi[j]) b->hi[j] = v;
                continue;
            }
            rd->c->n_missing[j]++;
            if (o->missing == CAT_MISSING_FAIL && rd->has_spec && (int)j >= rd->nf + rd->ni)
                return ody_fail(rd->err, ODY_EINPUT, "%s: row %ld: the spectrum is unusable, %s — set `missing: "
                                "drop` to leave such rows out (listed in dropped.csv), or look at the row",
                                rd->file, row0 + r, cat_spec_why(rd->sp.why_row[r]));
            if (o->missing == CAT_MISSING_FAIL)
                return ody_fail(rd->err, ODY_EINPUT, "%s: feature '%s', row %ld: value is null, NaN, Inf or one of "
                                "catalog.nulls — set `missing: drop` or `impute`, or filter the rows, e.g. "
                                "FILE[isnull(%s) == F]", rd->file, feat_name(rd, j), row0 + r, feat_source(rd, j));
            b->nul[j * cn + (size_t)r] = 1;
            ok = 0;
        }
        b->keep[r] = (char)(ok || o->missing == CAT_MISSING_IMPUTE);
    }
    return 0;
}

/* Reads rows [row0, row0+nr) and appends the kept ones from *kept on. */
static int reader_chunk(reader *rd, long row0, long nr, size_t *kept)
{
    size_t F = (size_t)rd->nt, cn = (size_t)rd->chunk, at = *kept;
    chunkbuf *b = &rd->b;
    cat *c = rd->c;
    int rc = 0, drops = 0;
    size_t at_img = (size_t)rd->nf, at_spec = (size_t)(rd->nf + rd->ni);
    for (int k = 0; k < rd->n_img && !rc; k++) {
        rc = img_chunk(&rd->img[k], rd->file, row0, nr, b->vals + at_img * cn, b->nul + at_img * cn, cn, rd->err);
        at_img += (size_t)rd->img[k].L;
    }
    if (rd->has_spec && !rc)
        rc = spec_chunk(rd->f, rd->file, &rd->sp, row0, nr, b->vals + at_spec * cn, b->nul + at_spec * cn, cn, rd->err);
    for (size_t j = 0; j < (size_t)rd->nf && !rc; j++) {
        const colref *fr = &rd->fref[j];
        if (j && fr->colnum == rd->fref[j - 1].colnum && fr->typecode != TLOGICAL)  /* the same vector: read once */
            catcol_extract(fr, nr, b->vals + j * cn, b->nul + j * cn, b->raw, b->rawnul);
        else
            rc = catcol_read_numeric(rd->f, rd->file, fr, row0, nr, b->vals + j * cn, b->nul + j * cn, b->raw,
                                     b->rawnul, rd->err);
    }
    if (rc || (rc = chunk_missing(rd, row0, nr))) return rc;
    for (long r = 0; r < nr && c->drop_row; r++) {
        b->drop[r] = (char)!b->keep[r];
        if (b->keep[r]) continue;
        size_t d = rd->dropped + (size_t)drops++;
        c->drop_row[d] = row0 + r;
        c->drop_nmiss[d] = 0;
        c->drop_spec[d] = rd->has_spec ? rd->sp.why_row[r] : CAT_SPEC_WHY;
        for (size_t j = F; j-- > 0;)
            if (b->nul[j * cn + (size_t)r]) { c->drop_feat[d] = (int32_t)j; c->drop_nmiss[d]++; }
        if (!rd->has_id) c->drop_id.i[d] = row0 + r;
    }
    for (long r = 0; r < nr; r++) {
        if (!b->keep[r]) continue;
        float *x = c->X + at * F;
        for (size_t j = 0; j < F; j++) x[j] = b->nul[j * cn + (size_t)r] ? NAN : (float)b->vals[j * cn + (size_t)r];
        c->row[at] = row0 + r;
        if (!rd->has_id) c->id.i[at] = row0 + r;
        at++;
    }
    if (rd->has_id)
        rc = catcol_read(rd->f, rd->file, &rd->idref, &c->id, row0, nr, b->keep, *kept, b->raw, b->rawnul, b->sptr, rd->err);
    for (int k = 0; k < rd->n_pass && !rc; k++)
        rc = catcol_read(rd->f, rd->file, &rd->pref[k], &c->pass[k], row0, nr, b->keep, *kept, b->raw, b->rawnul,
                         b->sptr, rd->err);
    if (!rc && rd->has_id && drops)
        rc = catcol_read(rd->f, rd->file, &rd->idref, &c->drop_id, row0, nr, b->drop, rd->dropped, b->raw, b->rawnul,
                         b->sptr, rd->err);
    rd->dropped += (size_t)drops;
    *kept = at;
    return rc;
}

/* A warning when a feature's range [lo, hi] spans fewer than a thousand of
 * float32's steps at its magnitude: a large offset and a small spread (a
 * Julian date over a night: float32 steps by a quarter of a day there), so
 * objects that differ become the same value.  Whole numbers, however few,
 * are far apart in steps and never warned of.  col: the column it comes
 * from; table: whether it is a table column's (else an image's or the
 * spectra's, which no column expression mends). */
static void warn_levels(const char *file, const char *name, const char *col, int table, double lo, double hi,
                        const ody_log *log, cat_warned *w)
{
    double mag = fmax(fabs(lo), fabs(hi)), step = mag * FLT_EPSILON;  /* float32's spacing at the top, to 2x */
    if (!(hi > lo) || (hi - lo) >= 1000 * step) return;
    double levels = (hi - lo) / step + 1;
    int level = cat_warned_level(w, name);
    if (table)
        ody_logf(log, level, "%s: feature %s spans %.10g to %.10g, which float32 (in which oddsky computes) "
                 "holds on about %.0f level%s of %.2g — subtract an offset in the path, e.g. FILE[col *; d_%s = %s - "
                 "%.10g], and use d_%s", file, name, lo, hi, levels, levels < 1.5 ? "" : "s", step, col, col, floor(lo),
                 col);
    else
        ody_logf(log, level, "%s: feature %s spans %.10g to %.10g, which float32 (in which oddsky computes) "
                 "holds on about %.0f level%s of %.2g — subtract an offset from %s", file, name, lo, hi, levels,
                 levels < 1.5 ? "" : "s", step, col);
}

static void warn_float_levels(const reader *rd, size_t j, const ody_log *log, cat_warned *w)
{
    warn_levels(rd->file, feat_name(rd, j), feat_source(rd, j), (int)j < rd->nf, rd->b.lo[j], rd->b.hi[j], log, w);
}

void cat_warn_levels(const cat *c, size_t j, double lo, double hi, const char *file, const ody_log *log,
                     cat_warned *w)
{
    const char *name = c->feat_names[j];
    char col[CAT_ID_MAX + 1];
    snprintf(col, sizeof col, "%.*s", (int)strcspn(name, "["), name);  /* FLUX[3]: the column FLUX */
    warn_levels(file, name, col, 1, lo, hi, log, w);
}

/* Counts, imputation, the memory dropped rows reserved, and the log. */
static int reader_finish(reader *rd, size_t kept, const ody_log *log)
{
    const cat_opt *o = rd->o;
    cat *c = rd->c;
    size_t N = (size_t)rd->N, F = c->n_feat;
    c->n_rows = kept;
    c->n_dropped = N - kept;
    if (kept < N) {
        float *X = realloc(c->X, (kept ? kept : 1) * F * sizeof *X);
        if (X) c->X = X;
    }
    if (rd->has_spec) {
        c->spec_grid = rd->sp.G;
        c->spec_out = rd->sp.n_out;
        c->spec_masked = rd->sp.n_masked;
        c->spec_bad = rd->sp.n_bad;
        memcpy(c->spec_bad_why, rd->sp.n_bad_why, sizeof c->spec_bad_why);
        c->spec_lo = rd->sp.g0, c->spec_hi = rd->sp.g0 + (rd->sp.G - 1) * rd->sp.dg;
        c->spec_first_lo = rd->sp.have_first ? rd->sp.first_lo : NAN;
        c->spec_first_hi = rd->sp.have_first ? rd->sp.first_hi : NAN;
    }
    c->n_table_feat = (size_t)rd->nf;
    if (rd->part) {  /* the rest needs every part; the range as read, for the float32-levels warning, too */
        size_t nt = (size_t)rd->nf;
        c->read_lo = malloc((nt ? nt : 1) * sizeof *c->read_lo);
        c->read_hi = malloc((nt ? nt : 1) * sizeof *c->read_hi);
        for (size_t j = 0; c->read_lo && c->read_hi && j < nt; j++)
            c->read_lo[j] = rd->b.lo[j], c->read_hi[j] = rd->b.hi[j];
        return 0;
    }
    if (cat_none_left(c, kept, (long long)N)) return cat_none_left_fail(c, o, (long long)N, rd->err);
    if (o->missing == CAT_MISSING_IMPUTE)
        for (size_t j = 0; j < F; j++) {
            int rc = c->n_missing[j] ? impute_column(c, j, rd->file, rd->err) : 0;
            if (rc) return rc;
        }
    cat_log_missing(c, rd->file, o->missing, log);
    if (c->pass_left[0])
        ody_logf(log, ODY_LOG_INFO, "%s: not in this catalog, so not carried: %s (catalog.passthrough)", rd->file,
                 c->pass_left);
    ody_logf(log, ODY_LOG_INFO, "%s: read %zu of %zu rows, %zu features (%zu dropped, %zu imputed)", rd->file, kept, N,
             F, c->n_dropped, c->n_imputed);
    cat_warned lw = {0};
    for (size_t j = 0; j < F && !o->quiet_values; j++)
        warn_float_levels(rd, j, log, &lw);
    cat_warned_close(&lw, CAT_WARNED_LEVELS, rd->file, log);
    if (!o->quiet_values) catwarn_sentinels(c, (size_t)rd->nf, rd->file, log);
    if (rd->has_spec)
        cat_log_spectra(c, log);
    return 0;
}

/* The row count and the chunk size (CFITSIO's optimal row count). */
static int reader_size(reader *rd)
{
    int status = 0;
    fits_get_num_rows(rd->f, &rd->nrows, &status);
    if (status) return ody_fits_fail(rd->err, status, rd->file, "cannot read the row count", NULL);
    if (rd->nrows == 0) {
        int filtered = rd->file[ody_fits_file_len(rd->file)] != 0;
        return ody_fail(rd->err, ODY_EINPUT, "%s: the table has no rows%s — check the file%s", rd->file,
                        filtered ? " (after filtering)" : "", filtered ? " and the filter expression" : "");
    }
    rd->chunk = rd->o->chunk_rows;
    if (rd->chunk <= 0) {
        fits_get_rowsize(rd->f, &rd->chunk, &status);
        if (status || rd->chunk < 1) rd->chunk = 1000;
    }
    if (rd->chunk > rd->nrows) rd->chunk = rd->nrows;
    return 0;
}

static void reader_close(reader *rd)
{
    ody_fits_close(rd->f);
    cat_destroy(rd->c);
    free(rd->fref);
    free(rd->pref);
    catcol_names_free(rd->fspec, rd->nf);
    catcol_names_free(rd->flabel, rd->nf);
    if (rd->has_spec) spec_close(&rd->sp);
    for (int k = 0; rd->img && k < rd->n_img; k++) img_close(&rd->img[k]);
    free(rd->img);
    chunkbuf_free(&rd->b);
    memset(rd, 0, sizeof *rd);
}

/* Opens the table and resolves every column: what cat_read and cat_check
 * share.  On error the reader holds nothing. */
static int reader_open(reader *rd, const cat_opt *o, ody_err *err)
{
    memset(rd, 0, sizeof *rd);
    if (!o || !o->path || !o->path[0]) return ody_fail(err, ODY_EINPUT, "no catalog path given — set `catalog.path`");
    if (o->n_features < 1 && !(o->spec && o->spec->flux && o->spec->flux[0]))
        return ody_fail(err, ODY_EINPUT, "%s: no feature columns given — list at least one in `catalog.features`", o->path);
    rd->o = o;
    rd->file = o->path;
    rd->err = err;
    rd->has_id = o->id_col && o->id_col[0];
    int rc = open_table(o, &rd->f, err);
    if (rc) return rc;
    rd->pref = calloc((size_t)(o->n_passthru > 0 ? o->n_passthru : 1), sizeof *rd->pref);
    if (!rd->pref) rc = ody_fail(err, ODY_ENOMEM, "out of memory reading %s", rd->file);
    if (!rc) rc = reader_size(rd);
    rd->first = 0;
    rd->N = rd->nrows;
    rd->part = o->count > 0;
    if (!rc && rd->part) {
        if (o->first < 0 || o->first + o->count > rd->nrows)
            rc = ody_fail(err, ODY_EINTERNAL, "%s: rows %lld to %lld asked of a table of %ld", rd->file, o->first + 1,
                          o->first + o->count, rd->nrows);
        rd->first = (long)o->first;
        rd->N = (long)o->count;
    }
    if (!rc) rc = reader_resolve(rd);
    if (!rc) rc = reader_fits(rd);
    if (rc) reader_close(rd);
    return rc;
}

int cat_check(const cat_opt *o, long long *n_rows, int *n_feat, ody_err *err)
{
    reader rd;
    int rc = reader_open(&rd, o, err);
    if (rc) return rc;
    *n_rows = rd.nrows;
    if (n_feat) *n_feat = rd.nt;
    reader_close(&rd);
    return 0;
}

int cat_read(const cat_opt *o, cat **out, const ody_log *log, ody_err *err)
{
    reader rd;
    int rc = reader_open(&rd, o, err);
    if (rc) return rc;
    if (!(rd.c = calloc(1, sizeof *rd.c))) rc = ody_fail(err, ODY_ENOMEM, "out of memory reading %s", rd.file);
    if (!rc) rc = reader_alloc(&rd);
    size_t kept = 0;
    long end = rd.first + rd.N;  /* 1-based rows (rd.first, end] */
    for (long row0 = rd.first + 1; !rc && row0 <= end; row0 += rd.chunk)
        rc = reader_chunk(&rd, row0, end - row0 + 1 < rd.chunk ? end - row0 + 1 : rd.chunk, &kept);
    if (!rc) rc = reader_finish(&rd, kept, log);
    if (!rc && rd.has_id && !rd.part) rc = catcol_unique(&rd.c->id, rd.c->n_rows, rd.c->row, rd.file, err);
    if (!rc) {
        *out = rd.c;
        rd.c = NULL;
    }
    reader_close(&rd);
    return rc;
}
