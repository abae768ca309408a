/* st_forest.c — stage "forest": random forests that tell real objects from
 * synthetic ones (weirdness.repeats of them, seeds seed, seed+1, ...), and
 * each object's out-of-bag P(synthetic). */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "stage.h"

static void forest_opt(const cfg *c, rf_opt *o)
{
    rf_opt_init(o);
    o->n_trees = c->rf_trees;
    o->max_features = c->rf_maxf;
    o->max_features_value = c->rf_maxf_value;
    o->min_samples_leaf = c->rf_min_leaf;
    o->max_depth = c->rf_max_depth;
    o->bootstrap = c->rf_bootstrap;
    o->max_samples = (size_t)c->rf_max_samples;
    o->n_threads = c->threads;
}

static int save_forest(const run_state *st, int r, ody_err *err)
{
    if (!store_writes(st)) return 0;
    char name[64];
    snprintf(name, sizeof name, "forest_%d.fits", r);
    char *p = store_path(st, name);
    int rc = p ? rf_save(st->forests[r], p, st->cat->feat_names, st->history, 1, err)
               : ody_fail(err, ODY_ENOMEM, "out of memory");
    if (!rc) rc = store_stamp_file(st, p, err);
    free(p);
    return rc;
}

/* The OOB score always; the trees (large at survey scale) only when a
 * stage that runs walks them. */
static int load_forests(run_state *st, ody_err *err)
{
    int rc = 0;
    for (int r = 0; r < st->n_forests && !rc && st->want_trees; r++) {
        char name[64];
        snprintf(name, sizeof name, "forest_%d.fits", r);
        char *p = store_path(st, name);
        rc = p ? store_check_file(p, st->stamp, err) : ody_fail(err, ODY_ENOMEM, "out of memory");
        if (!rc) rc = rf_load(p, &st->forests[r], err);
        /* a file put there from another run would walk this run's rows on
         * features they do not have */
        if (!rc && st->forests[r]->n_feat != st->F)
            rc = ody_fail(err, ODY_EINPUT, "%s: the forest takes %d features, the run has %d — rerun the run's forest "
                          "stage (delete the file)", p, st->forests[r]->n_feat, st->F);
        free(p);
    }
    return rc ? rc : store_load_rows(st, "oob.fits", "P_SYNTH_OOB", TDOUBLE, 1, st->score[CFG_SCORE_FOREST_OOB], err);
}

/* The real rows against synthetic ones drawn as the trees read them (never
 * stored: at 10^5 spectra x 4,000 bins a stored copy was 1.6 GB and a
 * training matrix 3.2 GB more), one forest per repeat. */
static int train_forests(run_state *st, ody_err *err)
{
    const cfg *c = st->c;
    size_t n = st->n, F = (size_t)st->F;
    int R = st->n_forests, rc = 0;
    double *oobp = st->score[CFG_SCORE_FOREST_OOB];
    rf_opt o;
    forest_opt(c, &o);
    o.comm = st->comm;  /* the processes share the trees out */
    /* read by parts, the trees fetch the rows they draw (rf_data.parts) when they draw few; else the
     * training set codes every row, so the rows are put together for this stage (this process's
     * among them) and parted again after */
    int parts = !st->cat->X, by_parts = parts && rf_parts_fit(&o, n), join = parts && !by_parts;
    size_t nl = stage_rows(st);  /* the OOB votes reach every process; each keeps its rows' */
    double *oob = malloc((by_parts ? nl + 1 : n) * sizeof *oob);
    rc = ody_comm_agree(st->comm, oob ? 0 : ody_fail(err, ODY_ENOMEM, "out of memory"), err);
    if (!rc && join) rc = stage_join_parts(st, err);
    if (rc) {
        free(oob);
        return rc;
    }
    rf_data d = {by_parts ? st->X : st->cat->X, n, (int)F, NULL, 1, c->synth_mode, (uint64_t)c->seed, by_parts};
    size_t at = by_parts ? 0 : st->lo;  /* this process's first row in oob */
    if (join)
        ody_logf(st->log, ODY_LOG_INFO, "forest: every row is put together on every process for this stage: its "
                 "trees draw %s — with bootstrap and forest.max_samples at most %zu each tree's rows are fetched "
                 "instead", !o.bootstrap ? "without bootstrap" : o.max_samples ? "over a quarter of the rows"
                 : "every row (forest.max_samples 0)", (2 * n - 1) / 4);
    if (by_parts)
        ody_logf(st->log, ODY_LOG_INFO, "forest: each tree's rows (%zu draws) fetched from the processes that code "
                 "their features: no process holds every row", o.max_samples);
    for (size_t i = 0; i < nl; i++) oobp[i] = 0;
    for (int r = 0; r < R && !rc; r++) {
        o.seed = (uint64_t)c->seed + (uint64_t)r;
        rc = rf_train(&o, &d, oob, by_parts ? nl : n, &st->forests[r], st->log, err);
        if (rc) break;
        ody_logf(st->log, ODY_LOG_INFO, "forest %d: out-of-bag accuracy real vs synthetic %.4f", r,
                 st->forests[r]->oob_accuracy);
        if (r == 0 && st->forests[r]->oob_accuracy < 0.55)
            ody_logf(st->log, ODY_LOG_WARN, "forest: out-of-bag accuracy %.3f — the forest barely tells the catalog "
                     "from its shuffled copy (the features are nearly independent), so WEIRDNESS says little here; "
                     "isolation and kNN distance still rank", st->forests[r]->oob_accuracy);
        for (size_t i = 0; i < nl; i++) oobp[i] += (isnan(oob[at + i]) ? 0.5 : oob[at + i]) / R;
        rc = ody_comm_agree(st->comm, save_forest(st, r, err), err);  /* process 0 writes: all stop if it fails */
    }
    free(oob);
    rc = ody_comm_agree(st->comm, rc, err);
    if (join) rc = rc ? rc : stage_split_parts(st, err);
    if (rc) return rc;
    fitsout_col col = {"P_SYNTH_OOB", TDOUBLE, 1, oobp, NULL, NULL};
    return store_save_slices(st, "oob.fits", "OOB", &col, 1, err);
}

static int forest(run_state *st, int run, ody_err *err)
{
    int R = st->c->repeats;
    st->forests = calloc((size_t)R, sizeof *st->forests);
    if (!st->forests || !store_score(st, CFG_SCORE_FOREST_OOB)) return ody_fail(err, ODY_ENOMEM, "out of memory");
    st->n_forests = R;
    return run ? train_forests(st, err) : load_forests(st, err);
}

const stage_def stage_forest = {
    .name = "forest",
    .what = "random forests: real versus synthetic; out-of-bag P(synthetic)",
    .keys = (const char *const[]){"forest.", "synthetic.", "seed", "weirdness.repeats", NULL},
    .reads = (const char *const[]){"ingest", NULL},
    .writes = (const char *const[]){"forest_{r}.fits", "oob.fits", NULL},
    .version = 2,  /* 2: synthetic rows drawn by counter (no synthetic.fits); exact splits' thresholds between the node's values */
    .fn = forest,
};
