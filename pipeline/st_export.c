/* st_export.c — stage "export": every object ranked by the chosen score,
 * with its ID, pass-through columns, the features it was ranked on, every
 * score and its neighbours, as anomalies.fits / .csv / .ecsv / .vot: one
 * schema (names, types, units, descriptions) in every format. */
#define _GNU_SOURCE
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "export.h"

/* The score columns of the exports, in order; a score the run did not
 * compute (mlp or lens off) has no column. */
typedef struct score_col {
    const char *name, *desc;
    cfg_score s;
} score_col;

static const score_col score_cols[] = {
    {"ANOMALY_SCORE", "default score: the largest weighted robust z of score.detectors", CFG_SCORE_ANOMALY},
    {"WEIRDNESS", "Baron & Poznanski weirdness, as their code computes it", CFG_SCORE_WEIRDNESS},
    {"ISOLATION", "isolation-forest score", CFG_SCORE_ISOLATION},
    {"KNN_DIST", "distance to the local.k-th nearest object, standardised features", CFG_SCORE_KNN},
    {"LOF", "local outlier factor", CFG_SCORE_LOF},
    {"LOCAL", "far from its neighbours and sparser than they are: sqrt(z(KNN_DIST) z(LOF))", CFG_SCORE_LOCAL},
    {"FOREST_KNN", "mean forest dissimilarity to the most similar objects", CFG_SCORE_FOREST_KNN},
    {"P_SYNTH_FOREST", "P(synthetic) from the forest, out of bag", CFG_SCORE_FOREST_OOB},
    {"P_SYNTH_MLP", "P(synthetic) from the MLP discriminator", CFG_SCORE_MLP},
    {"LENS_PROB", "P(strong lens) of the cutout", CFG_SCORE_LENS},
};
#define N_SCORE_COLS ((int)(sizeof score_cols / sizeof *score_cols))

const char *stage_score_column(cfg_score s, const char **desc)
{
    for (int k = 0; k < N_SCORE_COLS; k++)
        if (score_cols[k].s == s) {
            if (desc) *desc = score_cols[k].desc;
            return score_cols[k].name;
        }
    return "?";
}

/* ================================================================ ranking */

static void ranked_free(ranked *r, size_t n_feat)
{
    for (size_t j = 0; r->feat_col && j < n_feat; j++) free(r->feat_col[j]);
    free(r->feat_col);
}

void xp_chunk_free(chunk *c)
{
    free(c->rank); free(c->feat); free(c->nbs); free(c->nrs); free(c->why); free(c->drv);
    memset(c, 0, sizeof *c);
}

/* Room for cap rows; 0 or -1 (out of memory, c freed). */
int xp_chunk_alloc(const ranked *R, size_t cap, chunk *c)
{
    const cat *k = R->st->cat;
    size_t nc = cap ? cap : 1;
    memset(c, 0, sizeof *c);
    c->rank = malloc(nc * sizeof *c->rank);
    c->feat = k->n_feat > STAGE_WIDE ? NULL : malloc(nc * (k->n_feat ? k->n_feat : 1) * sizeof *c->feat);
    c->nbs = calloc(nc, R->nbw);
    c->nrs = calloc(nc, R->nbw);
    c->why = calloc(nc, R->whyw);
    c->drv = calloc(nc, DRVW);
    if (c->rank && (c->feat || k->n_feat > STAGE_WIDE) && c->nbs && c->nrs && c->why && c->drv) return 0;
    xp_chunk_free(c);
    return -1;
}

/* The IDs of rows list[0..k) (-1: none) joined by ';' into out. */
static void join_ids(const cat_col *id, const int32_t *list, int k, char *out, size_t len)
{
    char buf[128];
    size_t at = 0;
    out[0] = 0;
    for (int q = 0; q < k && at < len; q++) {
        if (list[q] < 0) continue;
        cat_col_format(id, (size_t)list[q], buf, sizeof buf);
        at += (size_t)snprintf(out + at, len - at, "%s%s", at ? ";" : "", buf);
    }
}

/* Rows [r0, r0 + nr) of the ranking into c (allocated for at least nr). */
void xp_chunk_fill(const ranked *R, size_t r0, size_t nr, chunk *c)
{
    const run_state *st = R->st;
    const cat *k = st->cat;
    int wide = k->n_feat > STAGE_WIDE;
    c->r0 = r0;
    c->nr = nr;
    for (size_t q = 0; q < nr; q++) {
        size_t r = r0 + q, i = R->order[r];
        c->rank[q] = (int32_t)(r + 1);
        for (size_t j = 0; j < k->n_feat && !wide; j++) c->feat[j * nr + q] = k->X[i * k->n_feat + j];
        if (st->nb) join_ids(&R->nk->id, st->nb + i * (size_t)st->k, st->k, c->nbs + q * R->nbw, R->nbw);
        join_ids(&R->nk->id, st->near + i * (size_t)st->K, R->kn, c->nrs + q * R->nbw, R->nbw);
        stage_format_why(st, i, c->why + q * R->whyw, R->whyw);
        snprintf(c->drv + q * DRVW, DRVW, "%s", st->driver[i] < 0 ? "none" : cfg_score_name((cfg_score)st->driver[i]));
    }
}

/* The widest ID as printed: the neighbour-list columns hold top_k of them
 * for every object, so a generous fixed width would cost hundreds of
 * bytes an object at survey scale. */
static size_t id_width(const cat *k, int threads)
{
    size_t w = 1;
#pragma omp parallel for schedule(static) reduction(max : w) num_threads(ody_threads(threads))
    for (size_t i = 0; i < k->n_rows; i++) {
        char buf[64];
        cat_col_format(&k->id, i, buf, sizeof buf);
        if (strlen(buf) > w) w = strlen(buf);
    }
    return w;
}

static int ranked_init(const run_state *st, ranked *R, ody_err *err)
{
    const cat *k = st->cat;
    R->st = st;
    R->nk = st->near_cat ? st->near_cat : k;
    R->idw = R->nk->id.type == CAT_COL_STRING ? (size_t)R->nk->id.width : id_width(R->nk, st->c->threads);
    /* objects listed: similarity.top_k (the similarity stage's k when it ran) */
    int kl = st->k > 0 ? st->k : st->c->top_k < (int)st->n ? st->c->top_k : (int)st->n - 1;
    if (kl < 1) kl = 1;
    R->kn = kl < st->K ? kl : st->K;
    R->nbw = (size_t)kl * ((size_t)R->idw + 1) + 1;
    R->whyw = 1;
    for (size_t j = 0; j < k->n_feat; j++)
        if (strlen(k->feat_names[j]) + 9 > R->whyw) R->whyw = strlen(k->feat_names[j]) + 9;
    R->whyw = R->whyw * (size_t)(st->n_why ? st->n_why : 1) + 1;
    R->feat_col = calloc(k->n_feat ? k->n_feat : 1, sizeof *R->feat_col);
    int ok = R->feat_col != NULL;
    for (size_t j = 0; j < k->n_feat && ok && k->n_feat <= STAGE_WIDE; j++) {
        char fc[128];
        stage_feature_column(k->feat_names[j], fc, sizeof fc);
        ok = (R->feat_col[j] = strdup(fc)) != NULL;
    }
    return ok ? 0 : ody_fail(err, ODY_ENOMEM, "out of memory exporting %zu rows", R->m);
}

/* ================================================================ the columns */

/* A catalog column, read through the ranking's order. */
static xcol carried(const cat_col *c, const size_t *order, const char *desc)
{
    xcol o = {{c->name, TDOUBLE, 1, c->f, c->unit, desc}, 17, order};
    if (c->type == CAT_COL_STRING) { o.c.type = TSTRING; o.c.repeat = c->width; o.c.data = c->s; }
    else if (c->type == CAT_COL_INT) { o.c.type = TLONGLONG; o.c.data = c->i; }
    return o;
}

/* Room for every column. */
int xp_schema_cap(const cat *k) { return 9 + k->n_pass + (int)k->n_feat + N_SCORE_COLS; }

/* The columns in order into x (schema_cap of them), the ones the export
 * makes reading chunk c (a zeroed chunk: names and types only); their
 * count. */
int xp_schema(const ranked *R, const chunk *c, xcol *x)
{
    const run_state *st = R->st;
    const cat *k = st->cat;
    int q = 0;
    x[q++] = (xcol){{"RANK", TINT, 1, c->rank, NULL, "position in the ranking by export.rank_by; 1 = most anomalous"}, 0, NULL};
    x[q++] = carried(&k->id, R->order, st->c->cat_id[0] ? "the catalog's ID" : "row in the input table, from 1");
    for (int p = 0; p < k->n_pass; p++) x[q++] = carried(&k->pass[p], R->order, "copied from the catalog");
    if (k->n_feat > STAGE_WIDE)
        x[q++] = (xcol){{"FEATURES", TFLOAT, (int)k->n_feat, k->X, NULL,
                         "the features as the run used them, in the order of the FEATURES table (FITS only)"}, 9, R->order};
    else
        for (size_t j = 0; j < k->n_feat; j++)
            x[q++] = (xcol){{R->feat_col[j], TFLOAT, 1, c->feat ? c->feat + j * c->nr : NULL, k->feat_units[j],
                             "a feature, as the run used it"}, 9, NULL};
    for (int s = 0; s < N_SCORE_COLS; s++)
        if (st->score[score_cols[s].s])
            x[q++] = (xcol){{score_cols[s].name, TDOUBLE, 1, st->score[score_cols[s].s], NULL, score_cols[s].desc}, 10,
                            R->order};
    if (st->learned) {
        x[q++] = (xcol){{"LABEL", TSHORT, 1, st->label, NULL, "your label: 1 interesting, 0 not, -1 none"}, 0, R->order};
        x[q++] = (xcol){{"LEARNED_SCORE", TDOUBLE, 1, st->learned, NULL, "the default score re-ranked from your labels"},
                        10, R->order};
    }
    /* uint32 read as int32: at most weirdness's tree count */
    x[q++] = (xcol){{"N_GOOD", TINT, 1, st->n_good, NULL, "trees whose leaf for the object is pure real"}, 0, R->order};
    x[q++] = (xcol){{"DRIVEN_BY", TSTRING, DRVW - 1, c->drv, NULL, "the detector with the largest weighted z"}, 0, NULL};
    x[q++] = (xcol){{"WHY", TSTRING, (int)R->whyw - 1, c->why, NULL,
                     "features most unlike the nearest ordinary objects, in standard deviations"}, 0, NULL};
    x[q++] = (xcol){{"NEAREST", TSTRING, (int)R->nbw - 1, c->nrs, NULL,
                     "IDs of the nearest objects (standardised features), ';'-joined"}, 0, NULL};
    if (st->nb)  /* similarity.enabled */
        x[q++] = (xcol){{"NEIGHBOURS", TSTRING, (int)R->nbw - 1, c->nbs, NULL,
                         "IDs of the most similar objects by forest proximity, ';'-joined"}, 0, NULL};
    return q;
}

/* The columns of the text formats: every one but a FEATURES vector; their
 * count into xt (room for n). */
int xp_text_cols(const xcol *x, int n, xcol *xt)
{
    int nt = 0;
    for (int q = 0; q < n; q++)
        if (x[q].c.type == TSTRING || x[q].c.repeat == 1) xt[nt++] = x[q];
    return nt;
}

/* Cell r of column x as text; "" for a null. */
/* "%.17g" and the like as literals: glibc formats "%.*g" on its slow
 * positional path, a third of the export's time. */
static const char *digits_fmt(int digits)
{
    switch (digits) {
    case 9: return "%.9g";
    case 10: return "%.10g";
    case 17: return "%.17g";
    default: return "%g";
    }
}

/* Cell `row` of the ranking (of a chunk starting at row r0) of column x. */
const char *xp_cell(const xcol *x, size_t row, size_t r0, char *buf, size_t len)
{
    const fitsout_col *c = &x->c;
    size_t r = x->rows ? x->rows[row] : row - r0;
    buf[0] = 0;
    switch (c->type) {
    case TINT: snprintf(buf, len, "%d", ((const int32_t *)c->data)[r]); break;
    case TSHORT: snprintf(buf, len, "%d", ((const int16_t *)c->data)[r]); break;
    case TLONGLONG:
        if (((const int64_t *)c->data)[r] != CAT_INT_NULL) snprintf(buf, len, "%lld", (long long)((const int64_t *)c->data)[r]);
        break;
    case TFLOAT:
        if (!isnan(((const float *)c->data)[r])) snprintf(buf, len, digits_fmt(x->digits), ((const float *)c->data)[r]);
        break;
    case TDOUBLE:
        if (!isnan(((const double *)c->data)[r])) snprintf(buf, len, digits_fmt(x->digits), ((const double *)c->data)[r]);
        break;
    default: return (const char *)c->data + r * ((size_t)c->repeat + 1);
    }
    return buf;
}

/* ================================================================ FITS */

/* The FITS columns and row maps of x. */
static void fits_cols(const xcol *x, int n, fitsout_col *cols, const size_t **rows)
{
    for (int q = 0; q < n; q++) {
        cols[q] = x[q].c;
        rows[q] = x[q].rows;
    }
}

static int fits_begin(const ranked *R, fits_out *o, ody_err *err)
{
    const run_state *st = R->st;
    int cap = xp_schema_cap(st->cat);
    memset(o, 0, sizeof *o);
    o->R = R;
    o->cr = 1;
    o->x = malloc((size_t)cap * sizeof *o->x);
    o->cols = calloc((size_t)cap, sizeof *o->cols);
    o->rows = calloc((size_t)cap, sizeof *o->rows);
    o->path = store_path(st, "anomalies.fits");
    int rc = !o->x || !o->cols || !o->rows || !o->path ? ody_fail(err, ODY_ENOMEM, "out of memory")
           : fitsout_open(&o->w, o->path, 1, err);
    if (rc) return rc;
    o->open = 1;
    store_provenance(st, o->w.f, &o->status);
    o->ncol = xp_schema(R, &o->c, o->x);
    fits_cols(o->x, o->ncol, o->cols, o->rows);
    fitsout_table_begin(o->w.f, "ANOMALIES", o->cols, o->ncol, &o->cr, &o->status);
    if (!o->status && xp_chunk_alloc(R, o->cr, &o->c)) o->status = MEMORY_ALLOCATION;
    return 0;
}

/* The rows up to `upto` (of the ranking's m). */
void xp_fits_step(fits_out *o, size_t upto)
{
    const ranked *R = o->R;
    if (upto > R->m) upto = R->m;
    for (; o->open && o->next < upto && !o->status; o->next += o->cr) {
        size_t nr = R->m - o->next < o->cr ? R->m - o->next : o->cr;
        xp_chunk_fill(R, o->next, nr, &o->c);
        o->ncol = xp_schema(R, &o->c, o->x);
        fits_cols(o->x, o->ncol, o->cols, o->rows);
        fitsout_table_chunk(o->w.f, o->cols, o->rows, o->ncol, o->next, nr, &o->status);
    }
}

/* The rest, the names table, and the file committed; o freed.  rc: an
 * earlier failure, which discards the file. */
static int fits_end(fits_out *o, int rc, ody_err *err)
{
    const run_state *st = o->R->st;
    store_featnames fn = {0};
    if (o->open && !rc) {
        xp_fits_step(o, o->R->m);
        if (st->cat->n_feat > STAGE_WIDE && !o->status) {
            rc = store_featnames_make(st->cat, &fn, err);
            if (!rc) fitsout_table_rows(o->w.f, fn.hdu.extname, fn.hdu.cols, NULL, fn.hdu.ncol, fn.hdu.nrows, &o->status);
        }
        if (!rc && o->status) rc = ody_fits_fail(err, o->status, o->path, "cannot write", NULL);
    }
    if (o->open) rc = fitsout_finish(&o->w, rc, err);
    store_featnames_free(&fn);
    xp_chunk_free(&o->c);
    free(o->path); free(o->x); free(o->cols); free(o->rows);
    memset(o, 0, sizeof *o);
    return rc;
}

static int write_fits(const ranked *R, ody_err *err)
{
    fits_out o;
    int rc = fits_begin(R, &o, err);
    return fits_end(&o, rc, err);
}

/* ================================================================ the stage */

static int export(run_state *st, int run, ody_err *err)
{
    const cfg *c = st->c;
    size_t n = st->n;
    /* with labels, the default ranking is the learned one */
    const double *score = stage_rank_score(c, st->score, st->learned);
    if (!score)  /* cfg_check() refuses such configs; a guard against a new score */
        return ody_fail(err, ODY_EINTERNAL, "export.rank_by = %s: that score was not computed", cfg_score_name(c->rank_by));
    size_t *order = malloc((n ? n : 1) * sizeof *order);
    if (!order) return ody_fail(err, ODY_ENOMEM, "out of memory");
    int rc = stage_rank_order(score, st->label, n, order, err);
    if (rc) {
        free(order);
        return rc;
    }
    cat_col_format(&st->cat->id, order[0], st->sum->top_id, sizeof st->sum->top_id);
    st->sum->top_score = score[order[0]];
    if (run) {  /* every process formats its share of the text; process 0 writes */
        ranked R = {.m = c->top_n > 0 && (size_t)c->top_n < n ? (size_t)c->top_n : n, .order = order};
        rc = ranked_init(st, &R, err);
        /* the text formats' columns, for their headers (every column but a FEATURES vector) */
        int cap = xp_schema_cap(st->cat), nt = 0;
        xcol *x = malloc((size_t)cap * sizeof *x), *xt = malloc((size_t)cap * sizeof *xt);
        chunk none = {0};
        if (!rc && (!x || !xt)) rc = ody_fail(err, ODY_ENOMEM, "out of memory");
        if (!rc) nt = xp_text_cols(x, xp_schema(&R, &none, x), xt);
        /* One process: the FITS file as one task, the text files' blocks as
         * the others.  Several: process 0 writes the FITS rows of each
         * window of text while the others format it (text_rows). */
        int fits = (c->formats & CFG_FMT_FITS) != 0, text = (c->formats & (CFG_FMT_CSV | CFG_FMT_ECSV | CFG_FMT_VOTABLE)) != 0;
        int stepped = fits && text && ody_comm_size(st->comm) > 1, rc_fits = 0, began = 0;
        fits_out fo, *fp = NULL;
        if (!rc && stepped && store_writes(st)) {
            began = 1;
            if (!(rc = fits_begin(&R, &fo, err))) fp = &fo;
        }
        rc = ody_comm_agree(st->comm, rc, err);  /* before the processes exchange text */
        ody_err e_fits = {0};
#pragma omp parallel num_threads(ody_threads(c->threads)) if (!rc)
#pragma omp single
        {
            if (!rc && fits && !stepped && store_writes(st)) {
#pragma omp task shared(rc_fits, e_fits)
                rc_fits = write_fits(&R, &e_fits);
            }
            if (!rc && (c->formats & CFG_FMT_CSV)) rc = xp_write_text(&R, fp, "anomalies.csv", xt, nt, 0, err);
            if (!rc && (c->formats & CFG_FMT_ECSV)) rc = xp_write_text(&R, fp, "anomalies.ecsv", xt, nt, 1, err);
            if (!rc && (c->formats & CFG_FMT_VOTABLE)) rc = xp_write_vot(&R, fp, xt, nt, err);
#pragma omp taskwait
        }
        if (began) rc = fits_end(&fo, rc, err);  /* frees what a failed begin left too */
        if (!rc && rc_fits) {
            *err = e_fits;
            rc = rc_fits;
        }
        free(xt);
        free(x);
        ranked_free(&R, st->cat->n_feat);
    }
    free(order);
    return rc;
}

const stage_def stage_export = {
    .name = "export",
    .what = "the ranked list: anomalies.fits, .csv, .ecsv, .vot (export.formats)",
    .keys = (const char *const[]){"export.", NULL},
    .reads = (const char *const[]){"forest", "weirdness", "similarity", "local", "mlp", "lens", "score", "learn", NULL},
    .load_needs_reads = 1,  /* even up to date, it ranks (for the summary) */
    .writes = (const char *const[]){"anomalies.fits?", "anomalies.csv?", "anomalies.ecsv?", "anomalies.vot?", NULL},
    .fn = export,
};
