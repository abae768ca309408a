/* st_weird.c — stage "weirdness": the faithful Baron & Poznanski weirdness
 * (averaged over the forests) and the isolation-forest score. */
#include <stdlib.h>
#include <string.h>

#include "stage.h"

static int load_scores(run_state *st, ody_err *err)
{
    int rc = store_load_rows(st, "weirdness.fits", "WEIRDNESS", TDOUBLE, 1, st->score[CFG_SCORE_WEIRDNESS], err);
    if (!rc) rc = store_load_rows(st, "weirdness.fits", "ISOLATION", TDOUBLE, 1, st->score[CFG_SCORE_ISOLATION], err);
    if (!rc) rc = store_load_rows(st, "weirdness.fits", "N_GOOD", TUINT, 1, st->n_good, err);
    return rc;
}

/* W of this process's objects averaged over the forests; forest 0's pass
 * is kept for similarity. */
static int weirdness(run_state *st, ody_err *err)
{
    size_t n = st->n, nl = stage_rows(st);
    double *W = st->score[CFG_SCORE_WEIRDNESS], *w1 = malloc((nl ? nl : 1) * sizeof *w1);
    if (!w1) return ody_fail(err, ODY_ENOMEM, "out of memory");
    memset(W, 0, nl * sizeof *W);
    int rc = 0;
    for (int r = 0; r < st->n_forests && !rc; r++) {
        rf_sim_ctx ctx;
        rc = st->cat->X ? rf_sim_ctx_init(&ctx, st->forests[r], st->cat->X, n, st->c->leaf_filter, st->c->threads,
                                          st->comm, err)
                        : rf_sim_ctx_init_own(&ctx, st->forests[r], st->X, n, st->c->leaf_filter, st->c->threads,
                                              st->comm, err);  /* read by parts: this process's rows alone */
        if (rc) break;
        ctx.log = st->log;
        rc = rf_weirdness(&ctx, w1, err);
        for (size_t i = 0; !rc && i < nl; i++) {
            W[i] += w1[i] / st->n_forests;
            if (r == 0) st->n_good[i] = ctx.n_good[st->lo + i - ctx.good_lo];
        }
        if (r == 0 && !rc) {
            st->ctx0 = ctx;
            st->have_ctx0 = 1;
        } else {
            rf_sim_ctx_free(&ctx);
        }
    }
    free(w1);
    return rc;
}

int stage_isolation(const run_state *st, const float *X, size_t n, double *out, ody_err *err)
{
    rf_iso_opt io;
    rf_iso_opt_init(&io);
    io.n_trees = cfg_iso_trees(st->c, st->n);
    io.max_samples = (size_t)st->c->iso_max_samples;
    io.seed = (uint64_t)st->c->seed;
    io.n_threads = st->c->threads;
    rf_forest *iso = NULL;
    int rc = 0;
    if (st->cat->X) {
        rc = rf_iso_train(&io, st->cat->X, st->n, st->F, &iso, err);
    } else {  /* read by parts: the rows the trees draw (at most trees x max_samples), fetched */
        size_t *rows = NULL, m = 0;
        float *Xs = NULL;
        rc = rf_iso_rows(&io, st->n, &rows, &m, err);
        if (!rc && !(Xs = malloc((m ? m : 1) * (size_t)st->F * sizeof *Xs))) rc = ody_fail(err, ODY_ENOMEM, "out of memory");
        if (!(rc = ody_comm_agree(st->comm, rc, err))) rc = stage_fetch_rows(st, rows, m, Xs, err);
        io.rows = rows;
        io.n_rows = m;
        if (!rc) rc = rf_iso_train(&io, Xs, st->n, st->F, &iso, err);
        free(rows);
        free(Xs);
    }
    if (!rc) rc = rf_iso_score(iso, X, n, st->c->threads, out, err);
    rf_destroy(iso);
    return rc;
}

static int weird(run_state *st, int run, ody_err *err)
{
    size_t nl = stage_rows(st);
    st->n_good = calloc(nl ? nl : 1, sizeof *st->n_good);
    if (!st->n_good || !store_score(st, CFG_SCORE_WEIRDNESS) || !store_score(st, CFG_SCORE_ISOLATION))
        return ody_fail(err, ODY_ENOMEM, "out of memory");
    if (!run) return load_scores(st, err);
    int rc = weirdness(st, err);
    if (rc) return rc;
    /* isolation: each process its rows */
    double *iso = st->score[CFG_SCORE_ISOLATION];
    if (st->c->iso_trees == CFG_AUTO_INT)
        ody_logf(st->log, ODY_LOG_INFO, "isolation: %d trees (isolation.n_trees: auto, %zu objects)",
                 cfg_iso_trees(st->c, st->n), st->n);
    rc = ody_comm_agree(st->comm, stage_isolation(st, st->X, nl, iso, err), err);
    if (rc) return rc;
    fitsout_col cols[] = {{"WEIRDNESS", TDOUBLE, 1, st->score[CFG_SCORE_WEIRDNESS], NULL, NULL},
                          {"N_GOOD", TINT, 1, st->n_good, NULL, NULL},
                          {"ISOLATION", TDOUBLE, 1, st->score[CFG_SCORE_ISOLATION], NULL, NULL}};
    return store_save_objects(st, "weirdness.fits", "WEIRDNESS", cols, 3, err);
}

const stage_def stage_weird = {
    .name = "weirdness",
    .what = "the faithful B&P weirdness, the isolation score",
    .keys = (const char *const[]){"weirdness.", "isolation.", "seed", NULL},
    .reads = (const char *const[]){"forest", NULL},
    .needs_trees = 1,
    .writes = (const char *const[]){"weirdness.fits", NULL},
    .version = 2,  /* 2: leaf sums in fixed point (exact in any order, so any number of processes) */
    .fn = weird,
};
