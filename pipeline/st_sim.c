/* st_sim.c — stage "similarity": each object's top-k most similar objects by
 * forest proximity, the mean distance to them, and the dense matrix when
 * asked. */
#include <stdlib.h>
#include <string.h>

#include "stage.h"

static int load_neighbours(run_state *st, ody_err *err)
{
    int rc = store_load_index(st, "neighbours.fits", "NEIGHBOUR_ROWS", (size_t)st->k, (int32_t)st->n, st->nb, err);
    if (!rc) rc = store_load_rows(st, "neighbours.fits", "KNN_DISTANCE", TDOUBLE, 1, st->score[CFG_SCORE_FOREST_KNN], err);
    return rc;
}

void stage_topk_opt(const run_state *st, rf_topk_opt *to)
{
    const cfg *c = st->c;
    rf_topk_opt_init(to);
    to->k = st->k;
    to->mem_budget = (size_t)(c->sim_mem_gb * 1e9);
    to->max_pairs = c->sim_max_pairs;
    to->leaf_sample = c->leaf_sample;
}

static int top_k(run_state *st, rf_sim_ctx *ctx, float *sim, ody_err *err)
{
    const cfg *c = st->c;
    rf_topk_opt to;
    stage_topk_opt(st, &to);
    int used = 0, rc = rf_topk(ctx, &to, st->nb, sim, &used, err);
    if (rc) return rc;
    rf_knn_distance(stage_rows(st), st->k, sim, st->score[CFG_SCORE_FOREST_KNN]);
    if (used < st->forests[0]->n_trees)
        ody_logf(st->log, ODY_LOG_WARN, "similarity: top-%d lists use the first %d of %d trees (work budget "
                 "similarity.max_pairs = %g; leaves are large: %s, or raise similarity.max_pairs)", st->k, used,
                 st->forests[0]->n_trees, c->sim_max_pairs,
                 c->rf_max_samples && (size_t)c->rf_max_samples < st->n ? "raise forest.max_samples for finer ones"
                                                              : "lower similarity.leaf_sample");
    else
        ody_logf(st->log, ODY_LOG_INFO, "similarity: top-%d lists over all %d trees", st->k, used);
    return 0;
}

static int dense(const run_state *st, const rf_sim_ctx *ctx, ody_err *err)
{
    if (!store_writes(st)) return 0;
    char *p = store_path(st, "similarity.fits");
    int rc = p ? rf_dense_write(ctx, p, (size_t)(st->c->sim_mem_gb * 1e9), 1, err)
               : ody_fail(err, ODY_ENOMEM, "out of memory");
    free(p);
    return rc;
}

static int similarity(run_state *st, int run, ody_err *err)
{
    size_t n = st->n, nl = stage_rows(st);
    st->k = st->c->top_k < (int)n ? st->c->top_k : (int)n - 1;
    st->nb = malloc((nl * (size_t)st->k + 1) * sizeof *st->nb);
    if (!st->nb || !store_score(st, CFG_SCORE_FOREST_KNN)) return ody_fail(err, ODY_ENOMEM, "out of memory");
    if (!run) return load_neighbours(st, err);
    /* the similarities are saved, not kept: later stages use the rows alone */
    float *sim = malloc((nl * (size_t)st->k + 1) * sizeof *sim);
    if (!sim) return ody_fail(err, ODY_ENOMEM, "out of memory");
    rf_sim_ctx ctx;
    int rc = 0;
    if (st->have_ctx0) {  /* the weirdness stage's pass over forest 0: this stage frees it */
        ctx = st->ctx0;
        st->have_ctx0 = 0;
    } else if ((rc = st->cat->X ? rf_sim_ctx_init(&ctx, st->forests[0], st->cat->X, n, st->c->leaf_filter,
                                                  st->c->threads, st->comm, err)
                                : rf_sim_ctx_init_own(&ctx, st->forests[0], st->X, n, st->c->leaf_filter, st->c->threads,
                                                      st->comm, err))) {
        free(sim);
        return rc;
    }
    ctx.log = st->log;
    rc = top_k(st, &ctx, sim, err);
    if (!rc && st->c->dense) rc = dense(st, &ctx, err);
    rf_sim_ctx_free(&ctx);
    fitsout_col cols[] = {{"NEIGHBOUR_ROWS", TINT, st->k, st->nb, NULL, "0-based rows of catalog.fits (its ROW - 1); -1: none"},
                          {"SIMILARITY", TFLOAT, st->k, sim, NULL, NULL},
                          {"KNN_DISTANCE", TDOUBLE, 1, st->score[CFG_SCORE_FOREST_KNN], NULL, NULL}};
    if (!rc) rc = store_save_objects(st, "neighbours.fits", "NEIGHBOURS", cols, 3, err);
    free(sim);
    return rc;
}

static int sim_enabled(const cfg *c) { return c->sim_on; }

/* similarity.fits: the dense matrix, when similarity.dense asks for it. */
static int sim_writes(const cfg *c, const char *artifact) { return c->dense && !strcmp(artifact, "similarity.fits"); }

const stage_def stage_sim = {
    .name = "similarity",
    .what = "top-k most similar objects by forest proximity, kNN distance",
    .keys = (const char *const[]){"similarity.", "weirdness.leaf_filter", NULL},
    .reads = (const char *const[]){"forest", NULL},
    .needs_trees = 1,
    .enabled = sim_enabled,
    .writes = (const char *const[]){"neighbours.fits", "similarity.fits?", NULL},
    .writes_if = sim_writes,
    .fn = similarity,
};
