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
    {"CONTEXT", "mean over features of the gap to the nearest neighbour's value, over the neighbours' own gaps",
     CFG_SCORE_CONTEXT},
    {"HEAP", "-log P of so many objects sharing its value in one feature, for the spread around it (most surprising feature)",
     CFG_SCORE_HEAP},
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

/* Row r's ID as text into buf. */
static void id_text(const xp_ids *x, size_t r, char *buf, size_t len)
{
    if (x->all) {
        cat_col_format(x->all, r, buf, len);
        return;
    }
    uint64_t below = x->bits[r >> 6] & ((UINT64_C(1) << (r & 63)) - 1);
    cat_col_format(&x->view, x->before[r >> 6] + (size_t)__builtin_popcountll(below), buf, len);
}

/* The IDs of rows list[0..k) (-1: none) joined by ';' into out. */
static void join_ids(const xp_ids *id, const int32_t *list, int k, char *out, size_t len)
{
    char buf[CAT_ID_MAX + 1];
    size_t at = 0;
    out[0] = 0;
    for (int q = 0; q < k && at < len; q++) {
        if (list[q] < 0) continue;
        id_text(id, (size_t)list[q], buf, sizeof buf);
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
        size_t r = r0 + q, li = R->lorder[r];  /* the object, in this process's arrays */
        c->rank[q] = (int32_t)((R->pos ? R->pos[r] : r) + 1);
        for (size_t j = 0; j < k->n_feat && !wide; j++) c->feat[j * nr + q] = st->X[li * k->n_feat + j];
        if (st->nb) join_ids(R->ids, st->nb + li * (size_t)st->k, st->k, c->nbs + q * R->nbw, R->nbw);
        join_ids(R->ids, st->near + li * (size_t)st->K, R->kn, c->nrs + q * R->nbw, R->nbw);
        stage_format_why(st, li, c->why + q * R->whyw, R->whyw);
        snprintf(c->drv + q * DRVW, DRVW, "%s", st->driver[li] < 0 ? "none" : cfg_score_name((cfg_score)st->driver[li]));
    }
}

/* The widest ID as printed: the neighbour-list columns hold top_k of them
 * for every object, so a generous fixed width would cost hundreds of
 * bytes an object at survey scale. */
static int id_width(const run_state *st, const cat *k, size_t *out, ody_err *err)
{
    int w = 1;
    size_t n = k->id_part ? stage_rows(st) : k->n_rows;  /* by parts: this process's, then the widest of all */
#pragma omp parallel for schedule(static) reduction(max : w) num_threads(ody_threads(st->c->threads))
    for (size_t i = 0; i < n; i++) {
        char buf[CAT_ID_MAX + 1];
        cat_col_format(&k->id, i, buf, sizeof buf);
        if ((int)strlen(buf) > w) w = (int)strlen(buf);
    }
    int rc = k->id_part ? ody_allreduce(st->comm, &w, 1, ODY_MAX_INT, err) : 0;
    *out = (size_t)w;
    return rc;
}

static int ranked_init(const run_state *st, ranked *R, ody_err *err)
{
    const cat *k = st->cat;
    R->st = st;
    R->nk = st->near_cat ? st->near_cat : k;
    size_t idw = (size_t)R->nk->id.width;
    if (R->nk->id.type != CAT_COL_STRING) {
        int rc = id_width(st, R->nk, &idw, err);
        if (rc) return rc;
    }
    R->idw = (int)idw;
    /* objects listed: similarity.top_k (the similarity stage's k when it ran) */
    int kl = st->k > 0 ? st->k : st->c->top_k < (int)st->n ? st->c->top_k : (int)st->n - 1;
    if (kl < 1) kl = 1;
    R->kn = kl < st->K ? kl : st->K;
    R->nbw = (size_t)kl * ((size_t)R->idw + 1) + 1;
    R->whyw = 1;
    size_t span_w = 0;  /* " (6515-6565.4)" when a reason spans named elements (stage_why_text) */
    for (size_t j = 0; j < k->n_feat; j++) {
        const char *at = strchr(k->feat_names[j], '@');
        if (strlen(k->feat_names[j]) + 9 > R->whyw) R->whyw = strlen(k->feat_names[j]) + 9;
        if (at && 2 * strlen(at) + 2 > span_w) span_w = 2 * strlen(at) + 2;
    }
    R->whyw = (R->whyw + span_w) * (size_t)(st->n_why ? st->n_why : 1) + 1;
    R->feat_col = calloc(k->n_feat ? k->n_feat : 1, sizeof *R->feat_col);
    int ok = R->feat_col != NULL;
    for (size_t j = 0; j < k->n_feat && ok && k->n_feat <= STAGE_WIDE; j++) {
        char fc[128];
        stage_feature_column(k->feat_names[j], fc, sizeof fc);
        ok = (R->feat_col[j] = strdup(fc)) != NULL;
    }
    return ok ? 0 : ody_fail(err, ODY_ENOMEM, "out of memory exporting %zu rows", R->m);
}

/* ================================================================ the IDs the lists name */

static void ids_free(xp_ids *x)
{
    free(x->buf);
    free(x->bits);
    free(x->before);
    memset(x, 0, sizeof *x);
}

static void mark(uint64_t *bits, const int32_t *list, int k)
{
    for (int q = 0; q < k; q++)
        if (list[q] >= 0) bits[(size_t)list[q] >> 6] |= UINT64_C(1) << (list[q] & 63);
}

/* Each process's replies to the rows asked of it (rows ask[], cnt[p] bytes
 * from p) into *give: their IDs in the order asked. */
static int answer(const ranked *R, const int64_t *ask, const size_t *cnt, size_t w, char **give, size_t *gcnt,
                  ody_err *err)
{
    const run_state *st = R->st;
    const cat_col *id = &R->nk->id;
    size_t m = 0;
    for (int p = 0; p < ody_comm_size(st->comm); p++) {
        gcnt[p] = cnt[p] / sizeof *ask * w;
        m += cnt[p] / sizeof *ask;
    }
    *give = malloc(m * w + 1);
    int rc = *give ? 0 : ody_fail(err, ODY_ENOMEM, "out of memory");
    for (size_t q = 0; !rc && q < m; q++) {
        if (ask[q] < (int64_t)st->lo || ask[q] >= (int64_t)st->hi)
            rc = ody_fail(err, ODY_EINTERNAL, "export: process %d asked for the ID of row %lld, not held here",
                          ody_comm_rank(st->comm), (long long)ask[q]);
        else memcpy(*give + q * w, cat_col_at(id, (size_t)ask[q] - R->nk->id_lo), w);
    }
    return ody_comm_agree(st->comm, rc, err);
}

/* R's neighbour IDs into x: the catalog's own when they are every
 * object's; else those of the rows named by the lists of this process's
 * objects among the m exported, asked of the processes that hold them —
 * the rows in row order, so that the IDs come back in it.  Memory: n / 8 +
 * n / 16 bytes for the marks, and the rows named, never every object's ID.
 * Every process together; 0, or an error on every process. */
static int ids_fetch(const ranked *R, xp_ids *x, ody_err *err)
{
    const run_state *st = R->st;
    const ody_comm *c = st->comm;
    memset(x, 0, sizeof *x);
    if (!R->nk->id_part) {
        x->all = &R->nk->id;
        return 0;
    }
    int P = ody_comm_size(c);
    size_t n = st->n, words = (n + 63) / 64, w = cat_col_elem(&R->nk->id), named = 0;
    x->bits = calloc(words + 1, sizeof *x->bits);
    x->before = malloc((words + 1) * sizeof *x->before);
    size_t *cnt = calloc((size_t)P, sizeof *cnt), *rcnt = malloc((size_t)P * sizeof *rcnt);
    int64_t *ask = NULL, *asked = NULL;
    char *give = NULL;
    int rc = ody_comm_agree(c, x->bits && x->before && cnt && rcnt ? 0 : ody_fail(err, ODY_ENOMEM, "out of memory"), err);
    for (size_t r = 0; !rc && r < R->parts->n && R->parts->pos[r] < R->m; r++) {  /* its objects exported */
        size_t li = R->parts->row[r] - st->lo;
        if (st->nb) mark(x->bits, st->nb + li * (size_t)st->k, st->k);
        mark(x->bits, st->near + li * (size_t)st->K, R->kn);
    }
    for (size_t q = 0; !rc && q < words; q++) {
        x->before[q] = (uint32_t)named;
        named += (size_t)__builtin_popcountll(x->bits[q]);
    }
    if (!rc) ask = malloc((named + 1) * sizeof *ask);
    if (!rc) rc = ody_comm_agree(c, ask && named <= UINT32_MAX ? 0 : ody_fail(err, ODY_ENOMEM, "out of memory"), err);
    for (size_t q = 0, k = 0; !rc && q < words; q++)
        for (uint64_t b = x->bits[q]; b; b &= b - 1) {  /* rows ascending: each owner's together, in process order */
            size_t row = q * 64 + (size_t)__builtin_ctzll(b);
            ask[k++] = (int64_t)row;
            cnt[ody_part_of(n, P, row)] += sizeof *ask;
        }
    if (!rc) rc = ody_exchange(c, ask, cnt, (void **)&asked, rcnt, err);
    if (!rc) rc = answer(R, asked, rcnt, w, &give, cnt, err);
    if (!rc) rc = ody_exchange(c, give, cnt, &x->buf, rcnt, err);
    if (!rc) x->view = cat_col_view(&R->nk->id, x->buf);
    free(cnt);
    free(rcnt);
    free(ask);
    free(asked);
    free(give);
    if (rc) ids_free(x);
    return rc;
}

/* ================================================================ the columns */

/* A catalog column, read through the ranking's order of this process's
 * objects (from its first one, wherever the column holds it). */
static xcol carried(const ranked *R, const cat_col *c, const char *desc)
{
    xcol o = {store_col_from(store_carried_col(c), stage_id_at(R->st)), 17, R->lorder};
    o.c.desc = desc;
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
    x[q++] = carried(R, &k->id, st->c->cat_id[0] ? "the catalog's ID" : "row in the input table, from 1");
    for (int p = 0; p < k->n_pass; p++) x[q++] = carried(R, &k->pass[p], "copied from the catalog");
    if (k->n_feat > STAGE_WIDE)
        x[q++] = (xcol){{"FEATURES", TFLOAT, (int)k->n_feat, st->X, NULL,
                         "the features as the run used them, in the order of the FEATURES table (FITS only)"}, 9, R->lorder};
    else
        for (size_t j = 0; j < k->n_feat; j++)
            x[q++] = (xcol){{R->feat_col[j], TFLOAT, 1, c->feat ? c->feat + j * c->nr : NULL, k->feat_units[j],
                             "a feature, as the run used it"}, 9, NULL};
    for (int s = 0; s < N_SCORE_COLS; s++)
        if (st->score[score_cols[s].s])
            x[q++] = (xcol){{score_cols[s].name, TDOUBLE, 1, st->score[score_cols[s].s], NULL, score_cols[s].desc}, 10,
                            R->lorder};
    if (st->learned) {
        x[q++] = (xcol){{"LABEL", TSHORT, 1, st->label, NULL, "your label: 1 interesting, 0 not, -1 none"}, 0, R->lorder};
        x[q++] = (xcol){{"LEARNED_SCORE", TDOUBLE, 1, st->learned, NULL, "the default score re-ranked from your labels"},
                        10, R->lorder};
    }
    /* uint32 read as int32: at most weirdness's tree count */
    x[q++] = (xcol){{"N_GOOD", TINT, 1, st->n_good, NULL, "trees whose leaf for the object is pure real"}, 0, R->lorder};
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

/* Cell `row` of the ranking (of a chunk starting at row r0) of column x as
 * text; "" for a null.  Numbers through ody_fmt_*, not printf: the same
 * text, without glibc's slow path (ody.h). */
const char *xp_cell(const xcol *x, size_t row, size_t r0, char *buf, size_t len)
{
    const fitsout_col *c = &x->c;
    size_t r = x->rows ? x->rows[row] : row - r0;
    buf[0] = 0;
    switch (c->type) {
    case TINT: ody_fmt_ll(buf, len, ((const int32_t *)c->data)[r]); break;
    case TSHORT: ody_fmt_ll(buf, len, ((const int16_t *)c->data)[r]); break;
    case TLONGLONG:
        if (((const int64_t *)c->data)[r] != CAT_INT_NULL) ody_fmt_ll(buf, len, (long long)((const int64_t *)c->data)[r]);
        break;
    case TFLOAT:
        if (!isnan(((const float *)c->data)[r])) ody_fmt_g(buf, len, x->digits, ((const float *)c->data)[r]);
        break;
    case TDOUBLE:
        if (!isnan(((const double *)c->data)[r])) ody_fmt_g(buf, len, x->digits, ((const double *)c->data)[r]);
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

/* Bytes a FITS block holds at most: a wide catalog's rows are kilobytes. */
enum { FITS_BLOCK_BYTES = 2 << 20, FITS_BLOCK_ROWS = 4096 };

/* A FITS pass: the rows' bytes put at their places in the file, by every
 * process (store_spread). */
typedef struct fits_pass {
    xp_pass p;
    store_spread sp;
} fits_pass;

/* Rows [r0, r1) of R as the table's bytes, the columns the export makes
 * made for them alone. */
static void fits_make(xp_pass *p, const ranked *R, size_t r0, size_t r1, char **mem, size_t *len, uint32_t *ends)
{
    (void)p;
    int cap = xp_schema_cap(R->st->cat), status = 0;
    xcol *x = malloc((size_t)cap * sizeof *x);
    fitsout_col *cols = malloc((size_t)cap * sizeof *cols);
    const size_t **rows = malloc((size_t)cap * sizeof *rows);
    chunk c;
    *mem = NULL;
    *len = 0;
    if (x && cols && rows && !xp_chunk_alloc(R, r1 - r0, &c)) {
        xp_chunk_fill(R, r0, r1 - r0, &c);
        int n = xp_schema(R, &c, x);
        fits_cols(x, n, cols, rows);
        fitsout_rows_bytes(cols, rows, n, r0, r1 - r0, mem, len, &status);
        size_t rb = fitsout_row_bytes(cols, n);
        for (size_t q = 0; ends && q < r1 - r0; q++) ends[q] = (uint32_t)((q + 1) * rb);
        xp_chunk_free(&c);
    }
    free(x); free(cols); free(rows);
}

static void fits_put(xp_pass *p, size_t t0, const char *bytes, size_t len)
{
    store_spread_put(&((fits_pass *)p)->sp, t0, bytes, len);
}

/* anomalies.fits: every process makes the bytes of the rows it holds
 * (xp_rows) and puts those of its stretch of the ranking at their place
 * in the file; process 0 writes the header, and for a wide catalog the
 * FEATURES table of names after the rows. */
static int write_fits(const ranked *R, ody_err *err)
{
    const run_state *st = R->st;
    int cap = xp_schema_cap(st->cat), n = 0, wide = st->cat->n_feat > STAGE_WIDE;
    xcol *x = malloc((size_t)cap * sizeof *x);
    fitsout_col *cols = calloc((size_t)cap, sizeof *cols);
    const size_t **rows = calloc((size_t)cap, sizeof *rows);
    fits_pass fp = {.p = {.R = R, .make = fits_make, .put = fits_put}};
    chunk none = {0};
    store_featnames fn = {0};
    int rc = ody_comm_agree(st->comm, !x || !cols || !rows ? ody_fail(err, ODY_ENOMEM, "out of memory") : 0, err);
    if (!rc) {
        n = xp_schema(R, &none, x);
        fits_cols(x, n, cols, rows);
        size_t rb = fitsout_row_bytes(cols, n), per = rb ? FITS_BLOCK_BYTES / rb : FITS_BLOCK_ROWS;
        fp.p.block = per < 16 ? 16 : per > FITS_BLOCK_ROWS ? FITS_BLOCK_ROWS : per;
    }
    if (!rc && wide) rc = ody_comm_agree(st->comm, store_featnames_make(st->cat, &fn, err), err);
    if (!rc) rc = store_spread_open(st, "anomalies.fits", "ANOMALIES", cols, n, R->m, &fp.sp, err);
    if (!rc) {
        int fail = xp_rows(st->comm, &fp.p) ? ody_fail(err, ODY_ENOMEM, "out of memory writing anomalies.fits") : 0;
        rc = store_spread_close(st, &fp.sp, &fn.hdu, wide, fail, err);
    }
    store_featnames_free(&fn);
    free(x); free(cols); free(rows);
    return rc;
}

/* ================================================================ the stage */

/* The top object's score and ID into the run's summary, from the process
 * whose first ranked object holds place 0. */
static int top_of_parts(const run_state *st, const double *score, const stage_ranked *sr, ody_err *err)
{
    const ody_comm *c = st->comm;
    const cat *k = st->cat;
    int owner = sr->n && sr->pos[0] == 0 ? ody_comm_rank(c) : -1;
    int rc = ody_allreduce(c, &owner, 1, ODY_MAX_INT, err);
    if (!rc && owner == ody_comm_rank(c)) {
        st->sum->top_score = score[sr->row[0] - st->lo];
        cat_col_format(&k->id, sr->row[0] - k->id_lo, st->sum->top_id, sizeof st->sum->top_id);
    }
    if (!rc) rc = ody_bcast(c, &st->sum->top_score, sizeof st->sum->top_score, owner, err);
    if (!rc) rc = ody_bcast(c, st->sum->top_id, sizeof st->sum->top_id, owner, err);
    return rc;
}

/* The ranking: with one process, every object's row in rank order into
 * *order (malloc'd); with several, each process's objects and their places
 * into *sr (stage_rank_parts), no process holding every object's score. */
static int rank(const run_state *st, const double *score, size_t **order, stage_ranked *sr, ody_err *err)
{
    size_t n = st->n;
    *order = NULL;
    memset(sr, 0, sizeof *sr);
    if (ody_comm_size(st->comm) > 1) {
        int rc = stage_rank_parts(st, score, st->label, sr, err);
        return rc ? rc : top_of_parts(st, score, sr, err);
    }
    if (!(*order = malloc((n ? n : 1) * sizeof **order))) return ody_fail(err, ODY_ENOMEM, "out of memory");
    int rc = stage_rank_order(score, st->label, n, *order, err);
    if (!rc) {
        st->sum->top_score = score[(*order)[0]];
        cat_col_format(&st->cat->id, (*order)[0], st->sum->top_id, sizeof st->sum->top_id);
    }
    return rc;
}

static int export(run_state *st, int run, ody_err *err)
{
    const cfg *c = st->c;
    size_t n = st->n;
    /* with labels, the default ranking is the learned one */
    const double *score = stage_rank_score(c, st->score, st->learned);
    if (!score)  /* cfg_check() refuses such configs; a guard against a new score */
        return ody_fail(err, ODY_EINTERNAL, "export.rank_by = %s: that score was not computed", cfg_score_name(c->rank_by));
    size_t *order = NULL;
    stage_ranked sr;
    int rc = ody_comm_agree(st->comm, rank(st, score, &order, &sr, err), err);
    if (rc) {
        free(order);
        stage_ranked_free(&sr);
        return rc;
    }
    if (run) {  /* every process makes the rows it holds; process 0 writes */
        /* one process indexes its arrays by row; several make rows only through views (xp_rows) */
        ranked R = {.m = c->top_n > 0 && (size_t)c->top_n < n ? (size_t)c->top_n : n, .order = order,
                    .lorder = order, .parts = order ? NULL : &sr};
        xp_ids ids = {0};
        rc = ody_comm_agree(st->comm, ranked_init(st, &R, err), err);
        if (!rc) rc = ids_fetch(&R, &ids, err);
        R.ids = &ids;
        /* the text formats' columns, for their headers (every column but a FEATURES vector) */
        int cap = xp_schema_cap(st->cat), nt = 0;
        xcol *x = malloc((size_t)cap * sizeof *x), *xt = malloc((size_t)cap * sizeof *xt);
        chunk none = {0};
        if (!rc && (!x || !xt)) rc = ody_fail(err, ODY_ENOMEM, "out of memory");
        if (!rc) nt = xp_text_cols(x, xp_schema(&R, &none, x), xt);
        /* each file in turn, its blocks tasks of this region */
#pragma omp parallel num_threads(ody_threads(c->threads)) if (!rc)
#pragma omp single
        {
            if (!rc && (c->formats & CFG_FMT_FITS)) rc = write_fits(&R, err);
            if (!rc && (c->formats & CFG_FMT_CSV)) rc = xp_write_text(&R, "anomalies.csv", xt, nt, 0, err);
            if (!rc && (c->formats & CFG_FMT_ECSV)) rc = xp_write_text(&R, "anomalies.ecsv", xt, nt, 1, err);
            if (!rc && (c->formats & CFG_FMT_VOTABLE)) rc = xp_write_vot(&R, xt, nt, err);
        }
        free(xt);
        free(x);
        ranked_free(&R, st->cat->n_feat);
        ids_free(&ids);
    }
    free(order);
    stage_ranked_free(&sr);
    return rc;
}

/* The ranked lists export.formats asks for. */
static int writes_format(const cfg *c, const char *artifact)
{
    static const struct { const char *name; int fmt; } f[] = {{"anomalies.fits", CFG_FMT_FITS},
        {"anomalies.csv", CFG_FMT_CSV}, {"anomalies.ecsv", CFG_FMT_ECSV}, {"anomalies.vot", CFG_FMT_VOTABLE}};
    for (size_t k = 0; k < sizeof f / sizeof *f; k++)
        if (!strcmp(artifact, f[k].name)) return (c->formats & f[k].fmt) != 0;
    return 0;
}

const stage_def stage_export = {
    .name = "export",
    .what = "the ranked list: anomalies.fits, .csv, .ecsv, .vot (export.formats)",
    .keys = (const char *const[]){"export.", NULL},
    .reads = (const char *const[]){"forest", "weirdness", "similarity", "local", "mlp", "lens", "score", "learn", NULL},
    .load_needs_reads = 1,  /* even up to date, it ranks (for the summary) */
    .writes = (const char *const[]){"anomalies.fits?", "anomalies.csv?", "anomalies.ecsv?", "anomalies.vot?", NULL},
    .writes_if = writes_format,
    .digests = 1,  /* what the astronomer opens; no stage reads it back */
    .fn = export,
};
