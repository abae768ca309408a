/* st_export.c — stage "export": every object ranked by the chosen score,
 * with its ID, pass-through columns, every score and its neighbours, as
 * anomalies.fits and anomalies.csv. */
#define _GNU_SOURCE
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "stage.h"

/* The score columns of the exports, in order; a score the run did not
 * compute (mlp or lens off) has no column. */
typedef struct score_col {
    const char *fits, *csv;
    cfg_score s;
} score_col;

static const score_col score_cols[] = {
    {"ANOMALY_SCORE", "anomaly_score", CFG_SCORE_ANOMALY}, {"WEIRDNESS", "weirdness", CFG_SCORE_WEIRDNESS},
    {"ISOLATION", "isolation", CFG_SCORE_ISOLATION},       {"KNN_DIST", "knn_dist", CFG_SCORE_KNN},
    {"LOF", "lof", CFG_SCORE_LOF},                         {"FOREST_KNN", "forest_knn", CFG_SCORE_FOREST_KNN},
    {"P_SYNTH_FOREST", "p_synth_forest", CFG_SCORE_FOREST_OOB}, {"P_SYNTH_MLP", "p_synth_mlp", CFG_SCORE_MLP},
    {"LENS_PROB", "lens_prob", CFG_SCORE_LENS},
};
#define N_SCORE_COLS ((int)(sizeof score_cols / sizeof *score_cols))

/* ================================================================ ranking */

/* Sort key: score descending, then row ascending (a total, stable order). */
typedef struct rk { double s; size_t i; } rk;

static int cmp_rk(const void *a, const void *b)
{
    const rk *x = a, *y = b;
    if (x->s != y->s) return x->s < y->s ? 1 : -1;
    return (x->i > y->i) - (x->i < y->i);
}

#define DRVW 16  /* a detector's name, with its NUL */

/* The first m rows of the ranking, every column gathered in rank order. */
typedef struct ranked {
    size_t m;
    const rk *order;
    int32_t *rank, *n_good;
    double *sc[CFG_N_SCORES];
    void *id;            /* strings of idw + 1 bytes, int64 or double */
    int idw;
    char *nbs;           /* similar objects' IDs joined by ';', nbw bytes a row */
    char *nrs;           /* nearest objects' IDs joined by ';', nbw bytes a row */
    size_t nbw;
    int kn;              /* nearest objects listed */
    char *why;           /* the most deviant features, whyw bytes a row */
    size_t whyw;
    char *drv;           /* the detector that drove the score, DRVW bytes a row */
    void **pass;         /* per pass-through column, as in cat_col */
} ranked;

static void ranked_free(ranked *r, int n_pass)
{
    free(r->rank); free(r->n_good); free(r->id); free(r->nbs); free(r->nrs); free(r->why); free(r->drv);
    for (int s = 0; s < CFG_N_SCORES; s++) free(r->sc[s]);
    for (int p = 0; r->pass && p < n_pass; p++) free(r->pass[p]);
    free(r->pass);
}

static size_t elem_size(const cat_col *c) { return c->type == CAT_COL_STRING ? (size_t)c->width + 1 : 8; }

/* Copies value i of a carried column into slot r of dst. */
static void copy_value(const cat_col *c, size_t i, void *dst, size_t r)
{
    size_t es = elem_size(c);
    if (c->type == CAT_COL_STRING) memcpy((char *)dst + r * es, c->s + i * es, es);
    else if (c->type == CAT_COL_INT) ((int64_t *)dst)[r] = c->i[i];
    else ((double *)dst)[r] = c->f[i];
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

/* "GR +4.1; IZ -2.3": the features that set object i apart, in standard
 * deviations of the catalog from its nearest normal neighbours. */
static void format_why(const run_state *st, size_t i, char *out, size_t len)
{
    size_t at = 0;
    out[0] = 0;
    for (int w = 0; w < st->n_why && at < len; w++) {
        int32_t f = st->why_feat[i * (size_t)st->n_why + (size_t)w];
        if (f < 0) continue;
        at += (size_t)snprintf(out + at, len - at, "%s%s %+.1f", at ? "; " : "", st->cat->feat_names[f],
                               st->why_dev[i * (size_t)st->n_why + (size_t)w]);
    }
}

/* The widest ID as printed: the neighbour-list columns hold top_k of them
 * for every object, so a generous fixed width would cost hundreds of
 * bytes an object at survey scale. */
static size_t id_width(const cat *k)
{
    size_t w = 1;
    char buf[64];
    for (size_t i = 0; i < k->n_rows; i++) {
        cat_col_format(&k->id, i, buf, sizeof buf);
        if (strlen(buf) > w) w = strlen(buf);
    }
    return w;
}

static int gather(const run_state *st, ranked *R, ody_err *err)
{
    const cat *k = st->cat;
    size_t m = R->m;
    R->idw = k->id.type == CAT_COL_STRING ? (size_t)k->id.width : id_width(k);
    R->kn = st->k < st->K ? st->k : st->K;
    R->nbw = (size_t)st->k * ((size_t)R->idw + 1) + 1;
    R->whyw = 1;
    for (size_t j = 0; j < k->n_feat; j++)
        if (strlen(k->feat_names[j]) + 9 > R->whyw) R->whyw = strlen(k->feat_names[j]) + 9;
    R->whyw = R->whyw * (size_t)(st->n_why ? st->n_why : 1) + 1;
    R->rank = malloc(m * sizeof *R->rank);
    R->n_good = malloc(m * sizeof *R->n_good);
    R->id = malloc(m * elem_size(&k->id));
    R->nbs = calloc(m, R->nbw);
    R->nrs = calloc(m, R->nbw);
    R->why = calloc(m, R->whyw);
    R->drv = calloc(m, DRVW);
    R->pass = calloc((size_t)(k->n_pass ? k->n_pass : 1), sizeof *R->pass);
    int ok = R->rank && R->n_good && R->id && R->nbs && R->nrs && R->why && R->drv && R->pass;
    for (int s = 0; s < CFG_N_SCORES && ok; s++) ok = !st->score[s] || (R->sc[s] = malloc(m * sizeof(double)));
    for (int p = 0; p < k->n_pass && ok; p++) ok = (R->pass[p] = malloc(m * elem_size(&k->pass[p]))) != NULL;
    if (!ok) return ody_fail(err, ODY_ENOMEM, "out of memory exporting %zu rows", m);
    for (size_t r = 0; r < m; r++) {
        size_t i = R->order[r].i;
        R->rank[r] = (int32_t)(r + 1);
        R->n_good[r] = (int32_t)st->n_good[i];
        for (int s = 0; s < CFG_N_SCORES; s++)
            if (R->sc[s]) R->sc[s][r] = st->score[s][i];
        copy_value(&k->id, i, R->id, r);
        for (int p = 0; p < k->n_pass; p++) copy_value(&k->pass[p], i, R->pass[p], r);
        join_ids(&k->id, st->nb + i * (size_t)st->k, st->k, R->nbs + r * R->nbw, R->nbw);
        join_ids(&k->id, st->near + i * (size_t)st->K, R->kn, R->nrs + r * R->nbw, R->nbw);
        format_why(st, i, R->why + r * R->whyw, R->whyw);
        snprintf(R->drv + r * DRVW, DRVW, "%s", st->driver[i] < 0 ? "none" : cfg_score_name((cfg_score)st->driver[i]));
    }
    return 0;
}

/* ================================================================ FITS */

static fitsout_col carried(const cat_col *c, const void *data)
{
    fitsout_col o = {c->name, TDOUBLE, 1, data, c->unit};
    if (c->type == CAT_COL_STRING) { o.type = TSTRING; o.repeat = c->width; }
    else if (c->type == CAT_COL_INT) o.type = TLONGLONG;
    return o;
}

static int write_fits(const run_state *st, const ranked *R, ody_err *err)
{
    const cat *k = st->cat;
    int ncol = 7 + k->n_pass + N_SCORE_COLS, q = 0;
    fitsout_col *cols = calloc((size_t)ncol, sizeof *cols);
    if (!cols) return ody_fail(err, ODY_ENOMEM, "out of memory");
    cols[q++] = (fitsout_col){"RANK", TINT, 1, R->rank, NULL};
    cols[q++] = carried(&k->id, R->id);
    for (int p = 0; p < k->n_pass; p++) cols[q++] = carried(&k->pass[p], R->pass[p]);
    for (int s = 0; s < N_SCORE_COLS; s++)
        if (R->sc[score_cols[s].s]) cols[q++] = (fitsout_col){score_cols[s].fits, TDOUBLE, 1, R->sc[score_cols[s].s], NULL};
    cols[q++] = (fitsout_col){"N_GOOD", TINT, 1, R->n_good, NULL};
    cols[q++] = (fitsout_col){"DRIVEN_BY", TSTRING, DRVW - 1, R->drv, NULL};
    cols[q++] = (fitsout_col){"WHY", TSTRING, (int)R->whyw - 1, R->why, NULL};
    cols[q++] = (fitsout_col){"NEAREST", TSTRING, (int)R->nbw - 1, R->nrs, NULL};
    cols[q++] = (fitsout_col){"NEIGHBOURS", TSTRING, (int)R->nbw - 1, R->nbs, NULL};
    int rc = store_save_table(st, "anomalies.fits", "ANOMALIES", cols, q, R->m, err);
    free(cols);
    return rc;
}

/* ================================================================ CSV */

static void csv_header(FILE *f, const run_state *st, const ranked *R)
{
    const cat *k = st->cat;
    fputs("rank,", f);
    stage_csv_field(f, k->id.name);
    for (int p = 0; p < k->n_pass; p++) { fputc(',', f); stage_csv_field(f, k->pass[p].name); }
    for (int s = 0; s < N_SCORE_COLS; s++)
        if (R->sc[score_cols[s].s]) fprintf(f, ",%s", score_cols[s].csv);
    fputs(",n_good,driven_by,why,nearest,neighbours\n", f);
}

static void csv_row(FILE *f, const run_state *st, const ranked *R, size_t r)
{
    const cat *k = st->cat;
    size_t i = R->order[r].i;
    char buf[512];
    fprintf(f, "%zu,", r + 1);
    cat_col_format(&k->id, i, buf, sizeof buf);
    stage_csv_field(f, buf);
    for (int p = 0; p < k->n_pass; p++) {
        cat_col_format(&k->pass[p], i, buf, sizeof buf);
        fputc(',', f);
        stage_csv_field(f, buf);
    }
    for (int s = 0; s < N_SCORE_COLS; s++)
        if (R->sc[score_cols[s].s]) fprintf(f, ",%.10g", R->sc[score_cols[s].s][r]);
    fprintf(f, ",%d,%s,", R->n_good[r], R->drv + r * DRVW);
    stage_csv_field(f, R->why + r * R->whyw);
    fputc(',', f);
    stage_csv_field(f, R->nrs + r * R->nbw);
    fputc(',', f);
    stage_csv_field(f, R->nbs + r * R->nbw);
    fputc('\n', f);
}

static int write_csv(const run_state *st, const ranked *R, ody_err *err)
{
    fitsout_text t;
    int rc = store_text_open(st, "anomalies.csv", &t, err);
    if (rc) return rc;
    csv_header(t.f, st, R);
    for (size_t r = 0; r < R->m; r++) csv_row(t.f, st, R, r);
    return fitsout_text_commit(&t, err);
}

/* ================================================================ the stage */

static int export(run_state *st, int run, ody_err *err)
{
    const cfg *c = st->c;
    size_t n = st->n;
    const double *score = st->score[c->rank_by];
    if (!score)  /* cfg_check() refuses such configs; a guard against a new score */
        return ody_fail(err, ODY_EINTERNAL, "export.rank_by = %s: that score was not computed", cfg_score_name(c->rank_by));
    rk *order = malloc(n * sizeof *order);
    if (!order) return ody_fail(err, ODY_ENOMEM, "out of memory");
    for (size_t i = 0; i < n; i++) order[i] = (rk){score[i], i};
    qsort(order, n, sizeof *order, cmp_rk);
    cat_col_format(&st->cat->id, order[0].i, st->sum->top_id, sizeof st->sum->top_id);
    st->sum->top_score = order[0].s;
    int rc = 0;
    if (run) {
        ranked R = {.m = c->top_n > 0 && (size_t)c->top_n < n ? (size_t)c->top_n : n, .order = order};
        rc = gather(st, &R, err);
        if (!rc && (c->formats & CFG_FMT_FITS)) rc = write_fits(st, &R, err);
        if (!rc && (c->formats & CFG_FMT_CSV)) rc = write_csv(st, &R, err);
        ranked_free(&R, st->cat->n_pass);
    }
    free(order);
    return rc;
}

const stage_def stage_export = {
    .name = "export",
    .what = "the ranked list: anomalies.fits and anomalies.csv",
    .keys = (const char *const[]){"export.", NULL},
    .reads = (const char *const[]){"weirdness", "similarity", "local", "mlp", "lens", "score", NULL},
    .writes = (const char *const[]){"anomalies.fits?", "anomalies.csv?", NULL},
    .fn = export,
};
