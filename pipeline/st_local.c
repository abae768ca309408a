/* st_local.c — stage "local": every object's nearest neighbours in the
 * standardised feature space among a reference set (every object, or a
 * seeded sample of local.reference for a large catalog; exact search), its
 * distance to the local.k-th of them, and its local outlier factor. */
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

int32_t *stage_reference(const run_state *st, size_t m)
{
    size_t n = st->n;
    if (m >= n) return NULL;
    int32_t *ref = malloc(m * sizeof *ref);
    if (!ref) return NULL;
    ody_rng r;
    ody_rng_stream(&r, (unsigned long long)st->c->seed, 0x10ca1);
    size_t got = 0;
    for (size_t i = 0; i < n && got < m; i++)
        if (ody_rng_below(&r, n - i) < m - got) ref[got++] = (int32_t)i;
    return ref;
}

size_t stage_reference_size(const run_state *st)
{
    return (size_t)st->c->local_ref < st->n ? (size_t)st->c->local_ref : st->n;
}

/* Principal components to search on (0: the features themselves). */
static int components(const run_state *st)
{
    int P = st->c->local_pc;
    if (P == 0) P = (double)st->n * (double)stage_reference_size(st) * st->F > 1e12 ? 64 : 0;
    return P > 0 && P < st->F ? P : 0;
}

/* n rows X into Y (n x *d) in st's search space (sc, V as fitted). */
static int to_space(const run_state *st, const knn_scale *sc, const float *V, int P, const float *X, size_t n,
                    float **Y, ody_err *err)
{
    int F = st->F;
    *Y = malloc((n ? n : 1) * (size_t)(P ? P : F) * sizeof **Y);
    if (!*Y) return ody_fail(err, ODY_ENOMEM, "out of memory");
    if (!P) {
        knn_scale_rows(sc, X, n, *Y);
        return 0;
    }
    int rc = knn_project(X, n, F, sc, V, P, *Y, err);
    if (rc) { free(*Y); *Y = NULL; }
    return rc;
}

int stage_space(const run_state *st, const float *Q, size_t m, float **Z, float **Zq, int *d, ody_err *err)
{
    int P = components(st), F = st->F;
    knn_scale sc = {0};
    float *V = P ? malloc((size_t)F * P * sizeof *V) : NULL;
    *Z = NULL;
    if (Zq) *Zq = NULL;
    int rc = (P && !V) || knn_scale_fit(&sc, st->cat->X, st->n, F) ? ody_fail(err, ODY_ENOMEM, "out of memory") : 0;
    if (!rc && P) rc = knn_pca(st->cat->X, st->n, F, &sc, P, (uint64_t)st->c->seed, V, err);
    if (!rc) rc = to_space(st, &sc, V, P, st->cat->X, st->n, Z, err);
    if (!rc && Q) rc = to_space(st, &sc, V, P, Q, m, Zq, err);
    knn_scale_free(&sc);
    free(V);
    if (rc) { free(*Z); *Z = NULL; }
    *d = P ? P : F;
    return rc;
}

static int search(run_state *st, ody_err *err)
{
    const cfg *c = st->c;
    size_t m = stage_reference_size(st);
    int d = 0;
    float *Z = NULL;
    int rc = stage_space(st, NULL, 0, &Z, NULL, &d, err);
    if (rc) return rc;
    if (d < st->F)
        ody_logf(st->log, ODY_LOG_INFO, "local: neighbours searched on the first %d principal components of %d features "
                 "(local.components)", d, st->F);
    int32_t *ref = stage_reference(st, m);
    knn_tree *t = NULL;
    knn_opt o;
    knn_opt_init(&o);
    o.k = st->K;
    o.n_threads = c->threads;
    o.comm = st->comm;
    knn_method used = KNN_TREE;
    rc = m < st->n && !ref ? ody_fail(err, ODY_ENOMEM, "out of memory") : knn_build(Z, st->n, d, ref, m, &t, err);
    if (!rc) rc = knn_all(t, Z, st->n, &o, st->near, st->near_dist, &used, err);
    knn_destroy(t);
    free(ref);
    free(Z);
    if (rc) return rc;
    ody_logf(st->log, ODY_LOG_INFO, "local: %d neighbours of %zu objects among %zu (%s search)", st->K, st->n, m,
             used == KNN_SCAN ? "blocked scan: high intrinsic dimension" : "k-d tree");
    int k = c->local_k < st->K ? c->local_k : st->K, kl = c->lof_k < st->K ? c->lof_k : st->K;
    for (size_t i = 0; i < st->n; i++) st->score[CFG_SCORE_KNN][i] = st->near_dist[i * (size_t)st->K + (size_t)(k - 1)];
    rc = knn_lof(st->n, st->K, kl, st->near, st->near_dist, st->score[CFG_SCORE_LOF], err);
    if (rc) return rc;
    fitsout_col cols[] = {{"NEAREST_ROWS", TINT, st->K, st->near, NULL, "0-based rows of catalog.fits (its ROW - 1); -1: none"},
                          {"NEAREST_DIST", TFLOAT, st->K, st->near_dist, NULL, NULL},
                          {"KNN_DIST", TDOUBLE, 1, st->score[CFG_SCORE_KNN], NULL, NULL},
                          {"LOF", TDOUBLE, 1, st->score[CFG_SCORE_LOF], NULL, NULL}};
    rc = store_save_objects(st, "local.fits", "LOCAL", cols, 4, err);
    free(st->near_dist);  /* no later stage reads them: 8 bytes a neighbour an object */
    st->near_dist = NULL;
    return rc;
}

static int local(run_state *st, int run, ody_err *err)
{
    int K = st->c->local_k > st->c->lof_k ? st->c->local_k : st->c->lof_k;
    size_t m = stage_reference_size(st);
    st->K = (size_t)K < m ? K : (int)m - 1;
    st->near = malloc(st->n * (size_t)st->K * sizeof *st->near);
    st->near_dist = malloc(st->n * (size_t)st->K * sizeof *st->near_dist);
    if (!st->near || !st->near_dist || !store_score(st, CFG_SCORE_KNN) || !store_score(st, CFG_SCORE_LOF))
        return ody_fail(err, ODY_ENOMEM, "out of memory");
    return run ? search(st, err) : load_local(st, err);
}

const stage_def stage_local = {
    .name = "local",
    .what = "nearest neighbours in standardised feature space: kNN distance, local outlier factor",
    .keys = (const char *const[]){"local.", "seed", NULL},
    .reads = (const char *const[]){"ingest", NULL},
    .writes = (const char *const[]){"local.fits", NULL},
    .fn = local,
};
