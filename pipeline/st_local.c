/* st_local.c — stage "local": every object's nearest neighbours in the
 * standardised feature space (an exact k-d tree search), its distance to
 * the local.k-th of them, and its local outlier factor. */
#include <stdlib.h>

#include "knn.h"
#include "stage.h"

static int load_local(run_state *st, ody_err *err)
{
    size_t n = st->n, nk = n * (size_t)st->K;
    int rc = store_load_col(st, "local.fits", "NEAREST_ROWS", TINT, nk, st->near, err);
    if (!rc) rc = store_load_col(st, "local.fits", "NEAREST_DIST", TFLOAT, nk, st->near_dist, err);
    if (!rc) rc = store_load_col(st, "local.fits", "KNN_DIST", TDOUBLE, n, st->score[CFG_SCORE_KNN], err);
    if (!rc) rc = store_load_col(st, "local.fits", "LOF", TDOUBLE, n, st->score[CFG_SCORE_LOF], err);
    return rc;
}

static int search(run_state *st, ody_err *err)
{
    const cfg *c = st->c;
    float *Z = stage_standardized(st);
    knn_tree *t = NULL;
    int rc = Z ? knn_build(Z, st->n, st->F, &t, err) : ody_fail(err, ODY_ENOMEM, "out of memory");
    free(Z);
    if (!rc) rc = knn_all(t, st->K, c->threads, st->near, st->near_dist, err);
    knn_destroy(t);
    if (rc) return rc;
    int k = c->local_k < st->K ? c->local_k : st->K, kl = c->lof_k < st->K ? c->lof_k : st->K;
    for (size_t i = 0; i < st->n; i++) st->score[CFG_SCORE_KNN][i] = st->near_dist[i * (size_t)st->K + (size_t)(k - 1)];
    knn_lof(st->n, st->K, kl, st->near, st->near_dist, st->score[CFG_SCORE_LOF]);
    fitsout_col cols[] = {{"NEAREST_ROWS", TINT, st->K, st->near, NULL},
                          {"NEAREST_DIST", TFLOAT, st->K, st->near_dist, NULL},
                          {"KNN_DIST", TDOUBLE, 1, st->score[CFG_SCORE_KNN], NULL},
                          {"LOF", TDOUBLE, 1, st->score[CFG_SCORE_LOF], NULL}};
    return store_save_table(st, "local.fits", "LOCAL", cols, 4, st->n, err);
}

static int local(run_state *st, int run, ody_err *err)
{
    int K = st->c->local_k > st->c->lof_k ? st->c->local_k : st->c->lof_k;
    st->K = (size_t)K < st->n ? K : (int)st->n - 1;
    st->near = malloc(st->n * (size_t)st->K * sizeof *st->near);
    st->near_dist = malloc(st->n * (size_t)st->K * sizeof *st->near_dist);
    if (!st->near || !st->near_dist || !store_score(st, CFG_SCORE_KNN) || !store_score(st, CFG_SCORE_LOF))
        return ody_fail(err, ODY_ENOMEM, "out of memory");
    return run ? search(st, err) : load_local(st, err);
}

const stage_def stage_local = {
    .name = "local",
    .what = "nearest neighbours in standardised feature space: kNN distance, local outlier factor",
    .keys = (const char *const[]){"local.", NULL},
    .reads = (const char *const[]){"ingest", NULL},
    .writes = (const char *const[]){"local.fits", NULL},
    .fn = local,
};
