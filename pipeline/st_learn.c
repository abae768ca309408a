/* st_learn.c — stage "learn": the astronomer's labels (config `labels`)
 * re-rank the default score (learn.h); the labels file's bytes enter the
 * stage's hash, so a new label reruns this stage and the export only. */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "learn.h"
#include "stage.h"

static int enabled(const cfg *c) { return c->labels[0] != 0; }
static const char *labels_file(const cfg *c) { return c->labels; }

static int cmp_double(const void *x, const void *y)
{
    double a = *(const double *)x, b = *(const double *)y;
    return (a > b) - (a < b);
}

/* The median kNN distance: the kernel's scale. */
static double knn_median(const run_state *st)
{
    size_t n = st->n;
    double *v = malloc((n ? n : 1) * sizeof *v), m = 1.0;
    if (!v || !st->score[CFG_SCORE_KNN] || !n) { free(v); return m; }
    memcpy(v, st->score[CFG_SCORE_KNN], n * sizeof *v);
    qsort(v, n, sizeof *v, cmp_double);
    m = v[n / 2];
    free(v);
    return m;
}

static int relearn(run_state *st, ody_err *err)
{
    const cfg *c = st->c;
    lrn_labels lab;
    int rc = lrn_labels_read(c->labels, &st->cat->id, st->n, &lab, err);
    if (rc) return rc;
    float *Z = stage_standardized(st);
    lrn l;
    lrn_opt o = {c->lrn_bandwidth, c->lrn_strength, c->lrn_reweight, c->combine == CFG_COMBINE_MEAN};
    if (!Z) rc = ody_fail(err, ODY_ENOMEM, "out of memory");
    if (!rc) rc = lrn_init(&l, Z, st->det_z, st->n, st->F, st->n_det, knn_median(st), &o, err);
    if (!rc) {
        for (size_t k = 0; k < lab.n; k++) lrn_add(&l, lab.row[k], lab.y[k]);
        memcpy(st->learned, l.score, st->n * sizeof *st->learned);
        for (size_t i = 0; i < st->n; i++) st->label[i] = l.label[i];
        lrn_free(&l);
        ody_logf(st->log, ODY_LOG_INFO, "learn: %zu labels from %s (%s)", lab.n, c->labels,
                 lab.n ? "the ranking re-learned" : "none yet");
    }
    free(Z);
    lrn_labels_free(&lab);
    return rc;
}

static int learn(run_state *st, int run, ody_err *err)
{
    size_t n = st->n;
    st->learned = malloc((n ? n : 1) * sizeof *st->learned);
    st->label = malloc((n ? n : 1) * sizeof *st->label);
    if (!st->learned || !st->label) return ody_fail(err, ODY_ENOMEM, "out of memory");
    if (!run) {
        int rc = store_load_col(st, "learn.fits", "LEARNED_SCORE", TDOUBLE, n, st->learned, err);
        return rc ? rc : store_load_col(st, "learn.fits", "LABEL", TSHORT, n, st->label, err);
    }
    int rc = relearn(st, err);
    if (rc) return rc;
    fitsout_col cols[] = {{"LABEL", TSHORT, 1, st->label, NULL, "1 interesting, 0 not, -1 not labelled"},
                          {"LEARNED_SCORE", TDOUBLE, 1, st->learned, NULL, "the default score re-ranked from the labels"}};
    return store_save_objects(st, "learn.fits", "LEARN", cols, 2, err);
}

const stage_def stage_learn = {
    .name = "learn",
    .what = "the ranking re-learned from your labels (`labels`): neighbours of a label move with it",
    .keys = (const char *const[]){"labels", "learn.", "score.", NULL},
    .reads = (const char *const[]){"ingest", "local", "score", NULL},
    .writes = (const char *const[]){"learn.fits", NULL},
    .enabled = enabled,
    .depends_on = labels_file,
    .fn = learn,
};
