/* apply.c — `oddsky score`: a finished run's models applied to objects it
 * has not seen (run_score in run.h).
 *
 * The run is read back (no stage may need to run), its catalog stays the
 * reference population, and each new object gets what the run's own
 * objects got: weirdness against the run's catalog through its forests,
 * the forests' vote, the isolation score of the run's isolation forest
 * (retrained from its seed: the same trees), its nearest objects of the
 * run's catalog and their kNN distance and LOF, their most similar objects
 * by forest proximity (when the run lists them), the MLP of mlp.fits, the
 * default score from the run's medians and spreads, and WHY.  An object
 * whose ID and features are those of one of the run's objects is that
 * object: it gets the run's values exactly. */
#include <errno.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "knn.h"
#include "nn.h"
#include "stage.h"

extern const stage_def stage_export;

typedef struct apply_ctx {
    const char *catalog, *out_dir;
    run_summary *sum;   /* of the scored catalog */
} apply_ctx;

/* ================================================================ matching */

/* For each row of q's catalog, the row of ref's catalog with the same ID
 * and bit-identical features, or -1. */
static int match_rows(const run_state *ref, const run_state *q, int64_t *match, ody_err *err)
{
    size_t F = (size_t)ref->F;
    cat_ids ix;
    if (cat_ids_build(&ix, &ref->cat->id, ref->n)) return ody_fail(err, ODY_ENOMEM, "out of memory");
    char buf[256];
    for (size_t i = 0; i < q->n; i++) {
        cat_col_format(&q->cat->id, i, buf, sizeof buf);
        long r = cat_ids_find(&ix, buf);
        match[i] = r >= 0 && !memcmp(ref->cat->X + (size_t)r * F, q->cat->X + i * F, F * sizeof *q->cat->X) ? r : -1;
    }
    cat_ids_free(&ix);
    return 0;
}

/* ================================================================ the scores */

static int forests(const run_state *ref, run_state *q, ody_err *err)
{
    size_t m = q->n;
    double *W = q->score[CFG_SCORE_WEIRDNESS], *P = q->score[CFG_SCORE_FOREST_OOB];
    double *w1 = malloc((m ? m : 1) * sizeof *w1), *p1 = malloc((m ? m : 1) * sizeof *p1);
    int rc = w1 && p1 ? 0 : ody_fail(err, ODY_ENOMEM, "out of memory");
    for (size_t i = 0; i < m && !rc; i++) W[i] = P[i] = 0;
    for (int r = 0; r < ref->n_forests && !rc; r++) {
        rf_sim_ctx ctx;
        if ((rc = rf_sim_ctx_init(&ctx, ref->forests[r], ref->cat->X, ref->n, ref->c->leaf_filter, ref->c->threads, NULL, err)))
            break;
        rc = rf_weirdness_query(&ctx, q->cat->X, m, w1, r == 0 ? q->n_good : NULL, err);
        if (!rc && r == 0 && q->k) {  /* the similarity stage's lists, over forest 0 as it does */
            rf_topk_opt to;
            stage_topk_opt(ref, &to);
            float *sim = malloc((m ? m : 1) * (size_t)q->k * sizeof *sim);
            rc = sim ? rf_topk_query(&ctx, &to, q->cat->X, m, q->nb, sim, NULL, err)
                     : ody_fail(err, ODY_ENOMEM, "out of memory");
            if (!rc) rf_knn_distance(m, q->k, sim, q->score[CFG_SCORE_FOREST_KNN]);
            free(sim);
        }
        rf_sim_ctx_free(&ctx);
        /* the vote of every tree: out of bag is for the run's own objects */
        if (!rc) rc = rf_predict(ref->forests[r], q->cat->X, m, ref->c->threads, p1, err);
        for (size_t i = 0; i < m && !rc; i++) {
            W[i] += w1[i] / ref->n_forests;
            P[i] += p1[i] / ref->n_forests;
        }
    }
    free(w1);
    free(p1);
    return rc;
}

/* Nearest objects of the run's catalog (its reference rows, in its search
 * space), kNN distance, LOF, LOCAL, CONTEXT, and HEAP when the run has it. */
static int local(const run_state *ref, run_state *q, ody_err *err)
{
    const cfg *c = ref->c;
    size_t mr = stage_reference_size(ref);
    int d = 0;
    float *Z = NULL, *Zq = NULL;
    int rc = stage_space(ref, q->cat->X, q->n, &Z, &Zq, &d, err);
    int32_t *rows = rc ? NULL : stage_reference(ref, mr);
    if (!rc && mr < ref->n && !rows) rc = ody_fail(err, ODY_ENOMEM, "out of memory");
    knn_tree *t = NULL;
    knn_opt o;
    knn_opt_init(&o);
    o.k = q->K;
    o.n_threads = c->threads;
    if (!rc) rc = knn_build(Z, ref->n, d, rows, mr, &t, err);
    if (!rc) rc = knn_query(t, Zq, q->n, &o, q->near, q->near_dist, NULL, err);
    knn_destroy(t);
    free(Z);
    free(Zq);
    int k = c->local_k < q->K ? c->local_k : q->K, kl = c->lof_k < q->K ? c->lof_k : q->K;
    for (size_t i = 0; !rc && i < q->n; i++)
        q->score[CFG_SCORE_KNN][i] = q->near_dist[i * (size_t)q->K + (size_t)(k - 1)];
    if (!rc) rc = knn_lof_query(ref->n, ref->K, kl, ref->near, ref->near_dist, q->n, q->K, q->near, q->near_dist,
                                q->score[CFG_SCORE_LOF], err);
    if (!rc) rc = stage_local_score(q, ref, err);
    if (!rc) rc = stage_context(q, ref, rows, err);
    if (!rc && q->score[CFG_SCORE_HEAP]) rc = stage_heap(q, ref, rows, 0, err);  /* as the run computed it */
    free(rows);
    return rc;
}

static int mlp(const run_state *ref, run_state *q, ody_err *err)
{
    char *p = store_path(ref, "mlp.fits");
    nn_model *m = NULL;
    float *P = malloc((q->n ? q->n : 1) * sizeof *P);
    int rc = !p || !P ? ody_fail(err, ODY_ENOMEM, "out of memory")
                      : store_check_file(p, ref->stage_hash[run_stage_index("mlp")], err);
    if (!rc) rc = nn_load(p, &m, err);
    if (!rc && m->arch.n_in != q->F)
        rc = ody_fail(err, ODY_EINPUT, "%s: the MLP takes %d features, the run has %d — rerun the run's mlp stage", p,
                      m->arch.n_in, q->F);
    if (!rc) rc = nn_predict(m, q->cat->X, q->n, ref->c->threads, P, err);
    for (size_t i = 0; !rc && i < q->n; i++) q->score[CFG_SCORE_MLP][i] = P[i];
    nn_destroy(m);
    free(P);
    free(p);
    return rc;
}

/* ================================================================ the state */

static void query_free(run_state *q)
{
    cat_destroy(q->cat);
    for (int s = 0; s < CFG_N_SCORES; s++) free(q->score[s]);
    free(q->n_good); free(q->near); free(q->near_dist); free(q->heap_feat); free(q->why_feat); free(q->why_span);
    free(q->why_dev);
    free(q->driver); free(q->det_z); free(q->nb);
}

/* q's arrays, shaped as ref's. */
static int query_alloc(const run_state *ref, run_state *q, ody_err *err)
{
    size_t m = q->n ? q->n : 1;
    int ok = 1;
    for (int s = 0; s < CFG_N_SCORES; s++)
        if (ref->score[s]) ok &= (q->score[s] = malloc(m * sizeof(double))) != NULL;
    if (ref->heap_feat) ok &= (q->heap_feat = malloc(m * sizeof *q->heap_feat)) != NULL;
    q->K = ref->K;
    q->n_why = ref->n_why;
    q->n_det = ref->n_det;
    q->k = ref->nb ? ref->k : 0;
    q->n_good = calloc(m, sizeof *q->n_good);
    q->near = malloc(m * (size_t)q->K * sizeof *q->near);
    q->near_dist = malloc(m * (size_t)q->K * sizeof *q->near_dist);
    q->why_feat = malloc(m * (size_t)q->n_why * sizeof *q->why_feat + 1);
    q->why_dev = malloc(m * (size_t)q->n_why * sizeof *q->why_dev + 1);
    q->why_span = malloc(2 * m * (size_t)q->n_why * sizeof *q->why_span + 1);
    q->driver = malloc(m * sizeof *q->driver);
    q->det_z = malloc(m * (size_t)(q->n_det ? q->n_det : 1) * sizeof *q->det_z);
    if (q->k) {
        q->nb = malloc(m * (size_t)q->k * sizeof *q->nb);
        ok &= q->nb != NULL;
    }
    ok &= q->n_good && q->near && q->near_dist && q->why_feat && q->why_span && q->why_dev && q->driver && q->det_z;
    return ok ? 0 : ody_fail(err, ODY_ENOMEM, "out of memory for %zu objects", q->n);
}

/* Row i of q takes row r of ref: the run's own values. */
static void copy_row(const run_state *ref, run_state *q, size_t i, size_t r)
{
    for (int s = 0; s < CFG_N_SCORES; s++)
        if (q->score[s]) q->score[s][i] = ref->score[s][r];
    q->n_good[i] = ref->n_good[r];
    q->driver[i] = ref->driver[r];
    if (q->heap_feat) q->heap_feat[i] = ref->heap_feat[r];
    size_t K = (size_t)q->K, w = (size_t)q->n_why, d = (size_t)q->n_det, k = (size_t)q->k;
    memcpy(q->near + i * K, ref->near + r * K, K * sizeof *q->near);
    memcpy(q->near_dist + i * K, ref->near_dist + r * K, K * sizeof *q->near_dist);
    memcpy(q->why_feat + i * w, ref->why_feat + r * w, w * sizeof *q->why_feat);
    memcpy(q->why_dev + i * w, ref->why_dev + r * w, w * sizeof *q->why_dev);
    memcpy(q->why_span + 2 * i * w, ref->why_span + 2 * r * w, 2 * w * sizeof *q->why_span);
    memcpy(q->det_z + i * d, ref->det_z + r * d, d * sizeof *q->det_z);
    if (k) memcpy(q->nb + i * k, ref->nb + r * k, k * sizeof *q->nb);
}

static int same_features(const run_state *ref, const cat *k, const char *path, ody_err *err)
{
    if (k->n_feat != (size_t)ref->F)
        return ody_fail(err, ODY_EINPUT, "%s: %zu features, the run has %d — score a catalog with the run's columns",
                        path, k->n_feat, ref->F);
    for (int j = 0; j < ref->F; j++)
        if (strcmp(k->feat_names[j], ref->cat->feat_names[j]))
            return ody_fail(err, ODY_EINPUT, "%s: feature %d is %s, the run's is %s — score a catalog with the run's "
                            "columns", path, j + 1, k->feat_names[j], ref->cat->feat_names[j]);
    return 0;
}

static int apply(run_state *ref, void *vctx, ody_err *err)
{
    const apply_ctx *a = vctx;
    cfg qc = *ref->c;  /* the run's settings; the scored catalog's output folder */
    qc.output = (char *)a->out_dir;
    run_state q;
    memset(&q, 0, sizeof q);
    q.c = &qc;
    q.log = ref->log;
    q.dir = (char *)a->out_dir;
    q.history = ref->history;
    q.sum = a->sum;
    q.near_cat = ref->cat;
    int64_t *match = NULL;
    int rc = stage_read_catalog(ref->c, a->catalog, &q.cat, ref->log, err);
    if (!rc) rc = same_features(ref, q.cat, a->catalog, err);
    if (!rc) {
        q.n = q.cat->n_rows;
        q.hi = q.n;  /* one process: every row its own */
        q.X = q.cat->X;
        q.F = ref->F;
        match = malloc((q.n ? q.n : 1) * sizeof *match);
        rc = match ? query_alloc(ref, &q, err) : ody_fail(err, ODY_ENOMEM, "out of memory");
    }
    if (!rc) rc = match_rows(ref, &q, match, err);
    if (!rc) rc = forests(ref, &q, err);
    if (!rc) rc = stage_isolation(ref, q.cat->X, q.n, q.score[CFG_SCORE_ISOLATION], err);
    if (!rc) rc = local(ref, &q, err);
    if (!rc && q.score[CFG_SCORE_MLP]) rc = mlp(ref, &q, err);
    if (!rc) rc = stage_combine(&q, ref, err);
    if (!rc) rc = stage_explain(&q, ref, err);
    size_t same = 0;
    for (size_t i = 0; !rc && i < q.n; i++)
        if (match[i] >= 0) copy_row(ref, &q, i, (size_t)match[i]), same++;
    if (!rc) {
        ody_logf(ref->log, ODY_LOG_INFO, "score: %zu objects of %s, %zu of them the run's own (their values copied)",
                 q.n, a->catalog, same);
        if (mkdir(a->out_dir, 0777) && errno != EEXIST)
            rc = ody_fail(err, ODY_EIO, "cannot create %s: %s", a->out_dir, strerror(errno));
    }
    /* a night's alerts are few, and each one left out matters: said whatever their share (a run warns
     * above 2%), and listed */
    if (!rc) rc = stage_save_dropped(&q, err);
    if (!rc && q.cat->n_dropped)
        ody_logf(ref->log, ODY_LOG_WARN, "%s: %zu of %zu objects not scored, for missing feature values (listed in "
                 "%s/dropped.csv) — set `catalog.missing: impute` in the run's config to score them too", a->catalog,
                 q.cat->n_dropped, q.cat->n_table_rows, a->out_dir);
    if (!rc) rc = stage_export.fn(&q, 1, err);
    a->sum->n_objects = q.n;
    free(match);
    query_free(&q);
    return rc;
}

/* ================================================================ entry */

int run_score(const cfg *c, const char *catalog, const char *out_dir, run_summary *sum, const ody_log *log,
              ody_err *err)
{
    if (c->lens_on || c->cut_path[0])
        return ody_fail(err, ODY_EINPUT, "%s: the run reads cutouts, and oddsky score does not read them for new "
                        "objects yet — score with a run on catalog features only", c->file);
    static const char *const all[] = {"ingest", "forest", "weirdness", "similarity", "local", "mlp", "score", NULL};
    run_opt o;
    run_opt_init(&o);
    o.until_stage = "score";
    o.also_load = all;
    o.load_only = 1;
    o.want_trees = 1;
    run_summary rsum;
    memset(sum, 0, sizeof *sum);
    snprintf(sum->out_dir, sizeof sum->out_dir, "%s", out_dir);
    /* A run that read "file.fits[EXT][col ...; UG = U - G]" reads the new file
     * through the same brackets, unless it has its own. */
    char path[4096];
    const char *br = c->cat_path + ody_fits_file_len(c->cat_path);  /* the syntax after the run's file */
    if (*br && !catalog[ody_fits_file_len(catalog)]) snprintf(path, sizeof path, "%s%s", catalog, br);
    else snprintf(path, sizeof path, "%s", catalog);
    /* The exports go into out_dir: never over the run's own list (the run
     * folder would show the new catalog's ranking as its own) nor over the
     * catalog being scored. */
    char *od = realpath(out_dir, NULL), *rd = realpath(c->output, NULL);
    int rc = od && rd && !strcmp(od, rd)
                 ? ody_fail(err, ODY_EINPUT, "%s: -o is the run folder itself, whose own anomalies.* the scored list "
                            "would replace — give -o another folder (by default RUN_DIR/scored_<catalog name>)", od)
             : od ? stage_input_spared(c, od, "the catalog to score", catalog, 1, err) : 0;
    free(od);
    free(rd);
    if (rc) return rc;
    apply_ctx a = {path, out_dir, sum};
    double t0 = ody_now();
    rc = run_with(c, &o, &rsum, log, err, apply, &a);
    sum->wall_s = ody_now() - t0;
    return rc;
}
