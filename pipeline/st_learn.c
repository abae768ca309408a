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

/* The median kNN distance over every object: the kernel's scale. */
static int knn_median(const run_state *st, double *m, ody_err *err)
{
    *m = 1.0;
    if (!st->score[CFG_SCORE_KNN]) return 0;
    return ody_select(st->comm, st->score[CFG_SCORE_KNN], stage_rows(st), st->n / 2, m, err);
}

/* Every object's detector z: a label moves its neighbours, which may be any
 * process's, so each process learns over all of them (labels are an
 * interactive catalog's; at survey scale this stage gathers n x detectors
 * doubles).  *out is st->det_z itself for one process, else malloc'd. */
static int all_det_z(const run_state *st, double **out, ody_err *err)
{
    size_t D = (size_t)(st->n_det ? st->n_det : 1);
    void *a = st->det_z;
    int rc = ody_comm_size(st->comm) < 2 ? 0 : ody_gather_rows(st->comm, st->det_z, st->n, D * sizeof *st->det_z, &a, err);
    *out = a;
    return rc;
}

static int relearn(run_state *st, ody_err *err)
{
    const cfg *c = st->c;
    lrn_labels lab;
    cat_col ids;
    void *idbuf = NULL;  /* every object's ID, for a moment: labels name objects by ID */
    int rc = stage_all_ids(st, &ids, &idbuf, err), read = -1;
    if (!rc) rc = ody_comm_agree(st->comm, read = lrn_labels_read(c->labels, &ids, st->n, &lab, err), err);
    free(idbuf);
    if (rc && read == 0) lrn_labels_free(&lab);  /* read here, failed on another process */
    if (rc) return rc;
    float *Z = stage_standardized(st);
    double *zd = NULL, km = 1;
    lrn l;
    lrn_opt o = {c->lrn_bandwidth, c->lrn_strength, c->lrn_reweight, c->combine == CFG_COMBINE_MEAN};
    rc = ody_comm_agree(st->comm, Z ? 0 : ody_fail(err, ODY_ENOMEM, "out of memory"), err);
    if (!rc) rc = knn_median(st, &km, err);
    if (!rc) rc = all_det_z(st, &zd, err);
    if (!rc) rc = lrn_init(&l, Z, zd, st->n, st->F, st->n_det, km, &o, err);
    if (!rc) {
        for (size_t k = 0; k < lab.n; k++) lrn_add(&l, lab.row[k], lab.y[k]);
        memcpy(st->learned, l.score + st->lo, stage_rows(st) * sizeof *st->learned);
        for (size_t i = 0; i < stage_rows(st); i++) st->label[i] = l.label[st->lo + i];
        lrn_free(&l);
        ody_logf(st->log, ODY_LOG_INFO, "learn: %zu labels from %s (%s)", lab.n, c->labels,
                 lab.n ? "the ranking re-learned" : "none yet");
    }
    if (zd != st->det_z) free(zd);
    free(Z);
    lrn_labels_free(&lab);
    return rc;
}

static int learn(run_state *st, int run, ody_err *err)
{
    size_t n = stage_rows(st);
    st->learned = malloc((n ? n : 1) * sizeof *st->learned);
    st->label = malloc((n ? n : 1) * sizeof *st->label);
    if (!st->learned || !st->label) return ody_fail(err, ODY_ENOMEM, "out of memory");
    if (!run) {
        int rc = store_load_rows(st, "learn.fits", "LEARNED_SCORE", TDOUBLE, 1, st->learned, err);
        return rc ? rc : store_load_rows(st, "learn.fits", "LABEL", TSHORT, 1, st->label, err);
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
