/* report.c — the view of a finished run that the report and the review page
 * read: opened from the run's state, re-ranked when a label comes in. */
#define _GNU_SOURCE
#include "report.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "plot.h"
#include "repview.h"
#include "stage.h"

/* ================================================================ opening */

const char *const report_uses[] = {"ingest", "weirdness", "similarity", "local", "mlp", "lens", "score", "learn", NULL};

#define TAKE(dst, src) ((dst) = (src), (src) = NULL)

void rep_close(rep_view *v)
{
    if (!v) return;
    cat_destroy(v->k);
    for (int s = 0; s < CFG_N_SCORES; s++) free(v->score[s]);
    free(v->learned);
    free(v->label);
    free(v->driver);
    free(v->why_feat);
    free(v->why_span);
    free(v->why_dev);
    free(v->nb);
    free(v->q);
    free(v->at);
    free(v->order);
    free(v->rank);
    cat_ids_free(&v->ids);
    free(v->dir);
    free(v->history);
    free(v);
}

/* The exports' ranking (stage_rank_order), and each row's place in it. */
static int rank_view(rep_view *v, ody_err *err)
{
    int rc = stage_rank_order(rep_rank_score(v), v->label, v->n, v->order, err);
    for (size_t r = 0; !rc && r < v->n; r++) v->rank[v->order[r]] = r;
    return rc;
}

const double *rep_rank_score(const rep_view *v)
{
    return stage_rank_score(v->c, v->score, v->learned);
}

static int cmp_float(const void *a, const void *b)
{
    float x = *(const float *)a, y = *(const float *)b;
    return (x > y) - (x < y);
}

/* Per feature the 1, 25, 50, 75 and 99 % points, from at most 20,000 rows
 * taken at an even stride (the pictures need the shape, not exact tails). */
static int quantiles(rep_view *v, ody_err *err)
{
    size_t n = v->n, F = v->k->n_feat, step = n > 20000 ? (n + 19999) / 20000 : 1, m = (n + step - 1) / step;
    float *col = malloc((m ? m : 1) * sizeof *col);
    v->q = malloc((F ? F : 1) * 5 * sizeof *v->q);
    if (!col || !v->q) { free(col); return ody_fail(err, ODY_ENOMEM, "out of memory"); }
    static const double at[5] = {0.01, 0.25, 0.5, 0.75, 0.99};
    for (size_t f = 0; f < F; f++) {
        size_t c = 0;
        for (size_t i = 0; i < n; i += step) col[c++] = v->k->X[i * F + f];
        qsort(col, c, sizeof *col, cmp_float);
        for (int k = 0; k < 5; k++) v->q[5 * f + k] = c ? col[(size_t)lrint(at[k] * (double)(c - 1))] : 0;
    }
    free(col);
    return 0;
}

/* Features named NAME@value (spectra: wavelengths), increasing, are drawn
 * against that value; v->at stays NULL otherwise. */
static int abscissa(rep_view *v, ody_err *err)
{
    size_t F = v->k->n_feat;
    if (F <= 24) return 0;
    double *at = malloc(F * sizeof *at);
    if (!at) return ody_fail(err, ODY_ENOMEM, "out of memory");
    for (size_t j = 0; j < F; j++) {
        const char *p = strrchr(v->k->feat_names[j], '@');
        char *end = NULL;
        at[j] = p ? strtod(p + 1, &end) : NAN;
        if (!p || end == p + 1 || *end || (j && !(at[j] > at[j - 1]))) {
            free(at);
            return 0;
        }
    }
    v->at = at;
    return 0;
}

static int take_state(run_state *st, void *ctx, ody_err *err)
{
    rep_view *v = ctx;
    TAKE(v->k, st->cat);
    v->n = st->n;
    for (int s = 0; s < CFG_N_SCORES; s++) TAKE(v->score[s], st->score[s]);
    TAKE(v->learned, st->learned);
    TAKE(v->label, st->label);
    TAKE(v->driver, st->driver);
    TAKE(v->why_feat, st->why_feat);
    TAKE(v->why_span, st->why_span);
    TAKE(v->why_dev, st->why_dev);
    v->n_why = st->n_why;
    if (st->nb) {  /* the forest's most similar objects, else the nearest in feature space */
        TAKE(v->nb, st->nb);
        v->k_nb = st->k;
    } else if (st->near) {
        TAKE(v->nb, st->near);
        v->k_nb = st->K;
    }
    TAKE(v->history, st->history);
    v->dir = strdup(st->dir);
    v->order = malloc((v->n ? v->n : 1) * sizeof *v->order);
    v->rank = malloc((v->n ? v->n : 1) * sizeof *v->rank);
    if (!v->dir || !v->order || !v->rank) return ody_fail(err, ODY_ENOMEM, "out of memory");
    if (!rep_rank_score(v))
        return ody_fail(err, ODY_EINTERNAL, "report: the run has no %s score", cfg_score_name(v->c->rank_by));
    int rc = rank_view(v, err);
    if (!rc) rc = quantiles(v, err);
    if (!rc) rc = abscissa(v, err);
    if (!rc && cat_ids_build(&v->ids, &v->k->id, v->n)) rc = ody_fail(err, ODY_ENOMEM, "out of memory");
    return rc;
}

int rep_open(const cfg *c, const ody_log *log, rep_view **out, ody_err *err)
{
    rep_view *v = calloc(1, sizeof *v);
    if (!v) return ody_fail(err, ODY_ENOMEM, "out of memory");
    v->c = c;
    v->log = log;
    run_opt o;
    run_opt_init(&o);
    o.also_load = report_uses;
    run_summary sum;
    int rc = run_with(c, &o, &sum, log, err, take_state, v);
    if (rc) {
        rep_close(v);
        return rc;
    }
    /* a run folder moved without its cutouts (one file of them; a folder of
     * files flags each missing one) still has its report and review page */
    if (c->cut_path[0] && c->cut_layout != CUT_DIR && !strchr(c->cut_path, '{') && !ody_fits_file_there(c->cut_path)) {
        v->no_cutouts = 1;
        ody_logf(log, ODY_LOG_WARN, "%s is not there: pictures show each object's features instead", c->cut_path);
    }
    *out = v;
    return 0;
}

/* run_pipeline's last step when export.formats lists html. */
int report_after_run(run_state *st, void *ctx, ody_err *err)
{
    (void)ctx;
    rep_view *v = calloc(1, sizeof *v);
    if (!v) return ody_fail(err, ODY_ENOMEM, "out of memory");
    v->c = st->c;
    v->log = st->log;
    int rc = take_state(st, v, err);
    if (!rc) rc = rep_write(v, err);
    v->log = NULL;
    rep_close(v);
    return rc;
}

int run_report(const cfg *c, const ody_log *log, char *path, size_t len, ody_err *err)
{
    rep_view *v = NULL;
    int rc = rep_open(c, log, &v, err);
    if (!rc) rc = rep_write(v, err);
    if (!rc) snprintf(path, len, "%s/report/index.html", v->dir);
    rep_close(v);
    return rc;
}

/* ================================================================ review */

size_t rep_size(const rep_view *v) { return v->n; }

size_t rep_labelled(const rep_view *v)
{
    size_t m = 0;
    for (size_t i = 0; v->label && i < v->n; i++) m += v->label[i] >= 0;
    return m;
}

const char *rep_labels_path(const rep_view *v) { return v->c->labels; }

const char *rep_dir(const rep_view *v) { return v->dir; }

long rep_find(const rep_view *v, const char *id) { return cat_ids_find(&v->ids, id); }

size_t rep_next(const rep_view *v, size_t k, size_t *rows)
{
    size_t m = 0;
    for (size_t r = 0; r < v->n && m < k; r++)
        if (!v->label || v->label[v->order[r]] < 0) rows[m++] = v->order[r];
    return m;
}

void rep_format_pass(const rep_view *v, int p, size_t row, char *buf, size_t len)
{
    const cat_col *c = &v->k->pass[p];
    if (c->type == CAT_COL_FLOAT && isfinite(c->f[row])) snprintf(buf, len, "%.10g", c->f[row]);
    else cat_col_format(c, row, buf, len);  /* the exports keep every digit; a page needs ten */
}

void rep_describe(const rep_view *v, size_t row, rep_obj *o)
{
    memset(o, 0, sizeof *o);
    snprintf(o->id, sizeof o->id, "%s", cat_ids_text(&v->ids, row));
    o->rank = v->rank[row] + 1;
    o->score = rep_rank_score(v)[row];
    o->anomaly = v->score[CFG_SCORE_ANOMALY] ? v->score[CFG_SCORE_ANOMALY][row] : NAN;
    o->label = v->label ? v->label[row] : -1;
    snprintf(o->driver, sizeof o->driver, "%s",
             !v->driver || v->driver[row] < 0 ? "none" : cfg_score_name((cfg_score)v->driver[row]));
    if (v->why_feat) {
        size_t at = row * (size_t)v->n_why;
        stage_why_text(v->k->feat_names, v->n_why, v->why_feat + at, v->why_span ? v->why_span + 2 * at : NULL,
                       v->why_dev + at, o->why, sizeof o->why);
    }
    for (int p = 0; p < v->k->n_pass && o->n_pass < REP_SHOW_PASS; p++, o->n_pass++) {
        snprintf(o->pass_name[o->n_pass], sizeof o->pass_name[0], "%s", v->k->pass[p].name);
        rep_format_pass(v, p, row, o->pass_val[o->n_pass], sizeof o->pass_val[0]);
    }
    for (int q = 0; q < v->k_nb && o->n_nb < REP_SHOW_NB; q++) {
        int32_t j = v->nb[row * (size_t)v->k_nb + (size_t)q];
        if (j < 0) continue;
        snprintf(o->nb[o->n_nb], sizeof o->nb[0], "%s", cat_ids_text(&v->ids, (size_t)j));
        o->nb_row[o->n_nb++] = (size_t)j;
    }
}

static int take_learned(run_state *st, void *ctx, ody_err *err)
{
    rep_view *v = ctx;
    if (!st->learned || !st->label) return ody_fail(err, ODY_EINTERNAL, "re-ranking: the learn stage left no scores");
    free(v->learned);
    free(v->label);
    TAKE(v->learned, st->learned);
    TAKE(v->label, st->label);
    return rank_view(v, err);
}

int rep_label(rep_view *v, const char *id, int y, ody_err *err)
{
    if (y != 0 && y != 1) return ody_fail(err, ODY_EINPUT, "label %d: a label is 1 (interesting) or 0 (not)", y);
    if (rep_find(v, id) < 0) return ody_fail(err, ODY_EINPUT, "ID '%s' is not in the run's catalog", id);
    int rc = run_label(v->c, id, y, NULL, err);
    if (rc) return rc;
    run_opt o;
    run_opt_init(&o);
    o.until_stage = "learn";
    static const char *const uses[] = {"learn", NULL};
    o.also_load = uses;
    run_summary sum;
    rc = run_with(v->c, &o, &sum, v->log, err, take_learned, v);
    if (rc)  /* the label is in the file whatever the re-ranking did: say so, so that it is not clicked as lost */
        ody_prefix(err, "label recorded in %s, but the ranking is not updated: ", v->c->labels);
    return rc;
}

/* ================================================================ pictures */

/* The cutouts of rows[0..m) (their IDs as a column), read in one pass. */
int rep_cutouts(const rep_view *v, const size_t *rows, size_t m, cut_set **out, ody_err *err)
{
    const cat_col *id = &v->k->id;
    cat_col sub = *id;
    size_t es = id->type == CAT_COL_STRING ? (size_t)id->width + 1 : 8;
    void *buf = malloc((m ? m : 1) * es);
    if (!buf) return ody_fail(err, ODY_ENOMEM, "out of memory");
    for (size_t r = 0; r < m; r++) {
        const char *src = id->type == CAT_COL_STRING ? id->s : id->type == CAT_COL_INT ? (const char *)id->i
                                                                                         : (const char *)id->f;
        memcpy((char *)buf + r * es, src + rows[r] * es, es);
    }
    sub.s = id->type == CAT_COL_STRING ? buf : NULL;
    sub.i = id->type == CAT_COL_INT ? buf : NULL;
    sub.f = id->type == CAT_COL_FLOAT ? buf : NULL;
    cut_opt co;
    stage_cutout_opt(v->c, &co);
    co.fail_missing = 0;
    *out = NULL;
    int rc = v->no_cutouts ? 0 : cut_read(&co, &sub, m, out, NULL, err);
    free(buf);
    return rc;
}

plt *rep_picture_plot(const rep_view *v, size_t row, const float *cutout, int bands, int size)
{
    if (cutout) {
        uint8_t *rgb = malloc((size_t)size * size * 3);
        plt *p = rgb ? plt_create(160, 160) : NULL;
        if (p) {
            plt_stretch(cutout, bands, size, rgb);
            plt_image(p, rgb, size, 0, 0, 160);
        }
        free(rgb);
        return p;
    }
    size_t F = v->k->n_feat;
    plt_profile pr = {(int)F, (const char *const *)v->k->feat_names, v->q, v->k->X + row * F, v->at,
                      v->at ? "wavelength" : NULL, v->why_span ? v->why_span + 2 * row * (size_t)v->n_why : NULL,
                      v->n_why};
    return plt_profile_draw(&pr, 280, 220);
}

int rep_picture(const rep_view *v, size_t row, unsigned char **png, size_t *len, ody_err *err)
{
    *png = NULL;
    cut_set *cs = NULL;
    if (v->c->cut_path[0]) {
        int rc = rep_cutouts(v, &row, 1, &cs, err);
        if (rc) return rc;
    }
    plt *p = rep_picture_plot(v, row, cs && cs->have[0] ? cs->pix : NULL, cs ? cs->n_bands : 0, cs ? cs->size : 0);
    int rc = p ? plt_png(p, png, len, err) : ody_fail(err, ODY_ENOMEM, "out of memory drawing a picture");
    plt_destroy(p);
    cut_destroy(cs);
    return rc;
}
