/* rf_train.c — forest options, and training a forest: trees grown in
 * parallel (rf_tree.c) on one shared training set (rf_rank.c), out-of-bag
 * votes, trees concatenated in index order. */
#include <math.h>
#include <omp.h>
#include <stdlib.h>
#include <string.h>

#include "rf_grow.h"

/* ================================================================ options */

void rf_opt_init(rf_opt *o)
{
    memset(o, 0, sizeof *o);
    o->n_trees = 500;
    o->max_features = RF_MAXF_SQRT;
    o->min_samples_leaf = 1;
    o->bootstrap = 1;
    o->seed = 1;
}

int rf_mtry(const rf_opt *o, int F)
{
    int m;
    switch (o->max_features) {
    case RF_MAXF_LOG2: m = (int)floor(log2((double)F)); break;
    case RF_MAXF_INT: m = (int)o->max_features_value; break;
    case RF_MAXF_FRAC: m = (int)floor(o->max_features_value * F); break;
    case RF_MAXF_ALL: m = F; break;
    default: m = (int)floor(sqrt((double)F)); break;
    }
    return m < 1 ? 1 : m > F ? F : m;
}

int rf_maxf_parse(const char *s, rf_maxf *kind, double *value)
{
    if (!s) return -1;
    *value = 0;
    if (!strcmp(s, "sqrt")) { *kind = RF_MAXF_SQRT; return 0; }
    if (!strcmp(s, "log2")) { *kind = RF_MAXF_LOG2; return 0; }
    if (!strcmp(s, "all")) { *kind = RF_MAXF_ALL; return 0; }
    char *end;
    double v = strtod(s, &end);
    if (end == s || *end || !(v > 0)) return -1;
    if (strchr(s, '.')) {
        if (v > 1) return -1;
        *kind = RF_MAXF_FRAC;
    } else {
        *kind = RF_MAXF_INT;
    }
    *value = v;
    return 0;
}

int rf_opt_check(const rf_opt *o, size_t n, int F, ody_err *err)
{
    if (o->n_trees < 1 || o->n_trees > 100000)
        return ody_fail(err, ODY_EINPUT, "forest.n_trees = %d is out of range — use 1 to 100000", o->n_trees);
    if (F < 1) return ody_fail(err, ODY_EINPUT, "the forest needs at least one feature");
    if (o->max_features == RF_MAXF_INT && (o->max_features_value < 1 || o->max_features_value > F))
        return ody_fail(err, ODY_EINPUT, "forest.max_features = %g is out of range — use 1 to %d "
                        "(the number of features), or sqrt, log2, all, or a fraction",
                        o->max_features_value, F);
    if (o->max_features == RF_MAXF_FRAC && !(o->max_features_value > 0 && o->max_features_value <= 1))
        return ody_fail(err, ODY_EINPUT, "forest.max_features fraction %g must be in (0, 1]",
                        o->max_features_value);
    if (o->min_samples_leaf < 1)
        return ody_fail(err, ODY_EINPUT, "forest.min_samples_leaf = %d must be at least 1", o->min_samples_leaf);
    if (o->max_depth < 0 || o->max_depth > 10000)
        return ody_fail(err, ODY_EINPUT, "forest.max_depth = %d is out of range — use 0 (unlimited) to 10000",
                        o->max_depth);
    if (n < 2) return ody_fail(err, ODY_EINPUT, "the forest needs at least 2 training rows, got %zu", n);
    if (n > 0x7fffffffu)
        return ody_fail(err, ODY_EINPUT, "%zu training rows is more than one forest takes (2^31) — "
                        "set forest.max_samples and split the catalog", n);
    if (o->max_samples > 0x7fffffffu || (!o->bootstrap && o->max_samples > n))
        return ody_fail(err, ODY_EINPUT, "forest.max_samples = %zu is out of range — use 0 (all rows) "
                        "or at most %zu%s", o->max_samples, o->bootstrap ? (size_t)0x7fffffff : n,
                        o->bootstrap ? "" : " without bootstrap");
    if (o->bin_sample == 1)
        return ody_fail(err, ODY_EINPUT, "forest: bin_sample = 1 cannot place bin edges — use 0 (2^21) "
                        "or at least 2");
    if (o->max_samples == 1)
        return ody_fail(err, ODY_EINPUT, "forest.max_samples = 1 cannot grow a tree — use 0 or at least 2");
    size_t draws = o->max_samples ? o->max_samples : n;  /* what each tree is grown from */
    if (2 * (size_t)o->min_samples_leaf > draws)  /* no split: every tree one leaf, every object alike */
        return ody_fail(err, ODY_EINPUT, "forest.min_samples_leaf = %d leaves no split in the %zu rows each tree "
                        "draws (real and synthetic; a split needs two leaves that size) — use at most %zu",
                        o->min_samples_leaf, draws, draws / 2);
    if (o->n_threads < 0)
        return ody_fail(err, ODY_EINPUT, "threads = %d must be 0 (automatic) or positive", o->n_threads);
    return 0;
}

void rf_destroy(rf_forest *f)
{
    if (!f) return;
    free(f->tree_off);
    free(f->node);
    free(f->cnt);
    free(f);
}

/* ================================================================ forest */

/* A forest being grown: the shared inputs and what the trees add up. */
typedef struct grow {
    const rf_opt *o;
    const trainset *ts;
    const float *X;       /* the first n_oob rows get out-of-bag votes */
    size_t n, n_oob;
    int F, mtry;
    tbuild *trees;
    int64_t *oob_sum;     /* NULL when out-of-bag votes are not wanted */
    uint32_t *oob_cnt;
} grow;

void rf_oob_add(const rf_node *nd, const uint32_t *cnt, int F, const float *X, size_t n, const uint8_t *inbag,
                int32_t *leaf, int64_t *sum, uint32_t *votes)
{
    for (size_t c0 = 0; c0 < n; c0 += RF_OOB_CHUNK) {
        size_t nc = c0 + RF_OOB_CHUNK < n ? RF_OOB_CHUNK : n - c0;
        rf_leaves(nd, F, X + c0 * (size_t)F, nc, leaf);
        for (size_t q = 0; q < nc; q++) {
            size_t i = c0 + q;
            if (inbag[i]) continue;
            const uint32_t *cq = cnt + 2 * (size_t)leaf[q];
            int64_t v = (int64_t)llround((double)cq[1] / (double)(cq[0] + cq[1]) * RF_OOB_SCALE);
#pragma omp atomic
            sum[i] += v;
#pragma omp atomic
            votes[i]++;
        }
    }
}

/* Adds tree t's votes for the rows it did not draw (ws.s still holds its
 * in-bag rows). */
static void oob_votes(const grow *g, int t, workspace *ws, uint32_t ns, int32_t *leaf)
{
    const tbuild *tb = &g->trees[t];
    for (uint32_t k = 0; k < ns; k++) ws->inbag[ws->local ? ws->gidx[k] : ws->s[k].i] = 1;
    rf_oob_add(tb->node, tb->cnt, g->F, g->X, g->n_oob, ws->inbag, leaf, g->oob_sum, g->oob_cnt);
    for (uint32_t k = 0; k < ns; k++) ws->inbag[ws->local ? ws->gidx[k] : ws->s[k].i] = 0;
}

/* Grows this process's block of trees [t0, t1), threads taking trees in
 * turn; 0 or -1 (out of memory). */
static int grow_trees(grow *g, int t0, int t1, const ody_log *log)
{
    const rf_opt *o = g->o;
    int T = t1 - t0, fail = 0, done_trees = 0;
    size_t m = o->max_samples ? o->max_samples : g->n;
    ody_progress prog;
    ody_progress_start(&prog, log, "forest", "trees", (size_t)T);
#pragma omp parallel num_threads(ody_threads(o->n_threads))
    {
        workspace ws;
        int32_t *leaf = malloc(RF_OOB_CHUNK * sizeof *leaf);
        int ok = rf_workspace_init(&ws, g->n, m, g->F, o->bootstrap, 0) == 0 && leaf;
        if (!ok) {
#pragma omp atomic write
            fail = 1;
        }
#pragma omp for schedule(dynamic, 1)
        for (int t = t0; t < t1; t++) {
            int bad;
#pragma omp atomic read
            bad = fail;
            if (!ok || bad) continue;
            uint32_t ns = 0;
            if (rf_grow_tree(o, g->ts, g->mtry, t, &ws, &g->trees[t], &ns)) {
#pragma omp atomic write
                fail = 1;
                continue;
            }
            if (g->oob_sum && g->n_oob) oob_votes(g, t, &ws, ns, leaf);
#pragma omp atomic
            done_trees++;
            if (omp_get_thread_num() == 0) {
                int d;
#pragma omp atomic read
                d = done_trees;
                ody_progress_update(&prog, (size_t)d);
            }
        }
        rf_workspace_free(&ws);
        free(leaf);
    }
    ody_progress_end(&prog);
    return fail ? -1 : 0;
}

/* The trees concatenated in index order into f.  Trees another process
 * grew are left for share_trees (their sizes known). */
static int concat_trees(const grow *g, rf_forest *f, size_t *total)
{
    int T = g->o->n_trees;
    *total = 0;
    for (int t = 0; t < T; t++) *total += g->trees[t].n;
    f->n_trees = T;
    f->n_feat = g->F;
    f->opt = *g->o;
    f->n_train = g->n;
    f->oob_accuracy = NAN;
    f->tree_off = malloc(((size_t)T + 1) * sizeof *f->tree_off);
    f->node = malloc(*total * sizeof *f->node);
    f->cnt = malloc(2 * *total * sizeof *f->cnt);
    if (!f->tree_off || !f->node || !f->cnt) return -1;
    size_t at = 0;
    for (int t = 0; t < T; t++) {
        f->tree_off[t] = at;
        if (g->trees[t].node) memcpy(f->node + at, g->trees[t].node, g->trees[t].n * sizeof *f->node);
        if (g->trees[t].cnt) memcpy(f->cnt + 2 * at, g->trees[t].cnt, 2 * g->trees[t].n * sizeof *f->cnt);
        at += g->trees[t].n;
    }
    f->tree_off[T] = at;
    return 0;
}

/* With several processes: every tree's size, then every process's trees
 * and the out-of-bag sums (integers: exact in any order) to all. */
static int share_sizes(grow *g, ody_err *err)
{
    const ody_comm *c = g->o->comm;
    int T = g->o->n_trees;
    if (ody_comm_size(c) < 2) return 0;
    int64_t *sz = malloc((size_t)T * sizeof *sz);
    if (!sz) return ody_fail(err, ODY_ENOMEM, "forest: out of memory");
    for (int t = 0; t < T; t++) sz[t] = (int64_t)g->trees[t].n;
    int rc = ody_allreduce(c, sz, (size_t)T, ODY_SUM_I64, err);
    for (int t = 0; !rc && t < T; t++) g->trees[t].n = (size_t)sz[t];
    free(sz);
    if (!rc && g->oob_sum) rc = ody_allreduce(c, g->oob_sum, g->n_oob, ODY_SUM_I64, err);
    if (!rc && g->oob_sum) rc = ody_allreduce(c, g->oob_cnt, g->n_oob, ODY_SUM_U32, err);
    return rc;
}

static int share_trees(const grow *g, rf_forest *f, ody_err *err)
{
    const ody_comm *c = g->o->comm;
    int R = ody_comm_size(c), rc = 0;
    if (R < 2) return 0;
    size_t *off = malloc(((size_t)R + 1) * sizeof *off);
    if (!off) return ody_fail(err, ODY_ENOMEM, "forest: out of memory");
    for (int pass = 0; pass < 2 && !rc; pass++) {  /* the nodes, then their counts */
        size_t w = pass ? 2 * sizeof *f->cnt : sizeof *f->node;
        for (int p = 0; p <= R; p++) {
            size_t t0 = (size_t)f->n_trees, t1;
            if (p < R) ody_comm_part(c, p, (size_t)f->n_trees, &t0, &t1);
            off[p] = f->tree_off[t0] * w;
        }
        rc = ody_share(c, pass ? (void *)f->cnt : (void *)f->node, off, err);
    }
    free(off);
    return rc;
}

/* Each row's mean out-of-bag vote, and the accuracy over the voted rows. */
static void oob_result(const grow *g, rf_forest *f, double *oob_p1)
{
    size_t right = 0, voted = 0;
    for (size_t i = 0; i < g->n_oob; i++) {
        if (!g->oob_cnt[i]) { oob_p1[i] = NAN; continue; }
        oob_p1[i] = (double)g->oob_sum[i] / RF_OOB_SCALE / g->oob_cnt[i];
        voted++;
        right += (oob_p1[i] > 0.5) == (g->ts->y[i] == 1);
    }
    f->oob_accuracy = voted ? (double)right / (double)voted : NAN;
}

static void grow_free(grow *g)
{
    for (int t = 0; g->trees && t < g->o->n_trees; t++) {
        free(g->trees[t].node);
        free(g->trees[t].cnt);
    }
    free(g->trees);
    free(g->oob_sum);
    free(g->oob_cnt);
}

int rf_train(const rf_opt *o, const rf_data *d, double *oob_p1, size_t n_oob, rf_forest **out, const ody_log *log,
             ody_err *err)
{
    size_t n = d->synth ? 2 * d->n : d->n;
    int F = d->F, rc = rf_opt_check(o, n, F, err);
    if (rc) return rc;
    for (size_t i = 0; !d->synth && i < n; i++)
        if (d->y[i] > 1) return ody_fail(err, ODY_EINPUT, "forest: label %d at row %zu — labels must be 0 or 1", d->y[i], i);
    if (d->parts && (!d->synth || !rf_parts_fit(o, d->n)))
        return ody_fail(err, ODY_EINTERNAL, "forest: rows by parts need synthetic rows and rf_parts_fit");
    size_t lo, hi;  /* by parts, this process's real rows */
    ody_comm_part(o->comm, ody_comm_rank(o->comm), d->n, &lo, &hi);
    double t0 = ody_now();
    trainset ts;
    if ((rc = rf_trainset_build(&ts, d, o, err))) return rc;
    ody_logf(log, ODY_LOG_DEBUG, "forest: coded %zu x %d features in %.2f s", n, F, ody_now() - t0);
    grow g = {o, &ts, d->X, n, n_oob > d->n ? d->n : n_oob, F, rf_mtry(o, F), NULL, NULL, NULL};
    g.trees = calloc((size_t)o->n_trees, sizeof *g.trees);
    if (oob_p1 && !d->parts) {
        g.oob_sum = calloc(g.n_oob ? g.n_oob : 1, sizeof *g.oob_sum);
        g.oob_cnt = calloc(g.n_oob ? g.n_oob : 1, sizeof *g.oob_cnt);
    }
    rf_forest *f = calloc(1, sizeof *f);
    size_t total = 0, tlo, thi;  /* this process's trees */
    ody_comm_part(o->comm, ody_comm_rank(o->comm), (size_t)o->n_trees, &tlo, &thi);
    if (!g.trees || !f || (oob_p1 && !d->parts && (!g.oob_sum || !g.oob_cnt)))
        rc = ody_fail(err, ODY_ENOMEM, "forest: out of memory");
    else if (!d->parts && grow_trees(&g, (int)tlo, (int)thi, log))
        rc = ody_fail(err, ODY_ENOMEM, "forest: out of memory growing %d trees on %zu rows — set forest.max_samples "
                      "to train each tree on a subsample", o->n_trees, n);
    if (d->parts && !(rc = ody_comm_agree(o->comm, rc, err))) rc = rf_parts_grow(o, &ts, g.mtry, g.trees, log, err);
    if (!(rc = ody_comm_agree(o->comm, rc, err)) && !(rc = share_sizes(&g, err)) && concat_trees(&g, f, &total))
        rc = ody_fail(err, ODY_ENOMEM, "forest: out of memory storing the trees");
    if (!(rc = ody_comm_agree(o->comm, rc, err))) rc = share_trees(&g, f, err);
    if (!rc && oob_p1 && d->parts) {
        double t1 = ody_now();
        rc = rf_parts_oob(o, &ts, f, d->X, lo, hi - lo, oob_p1, &f->oob_accuracy, err);
        ody_logf(log, ODY_LOG_DEBUG, "forest: out-of-bag votes of this process's rows in %.2f s", ody_now() - t1);
    }
    if (!rc) {
        if (oob_p1 && !d->parts) oob_result(&g, f, oob_p1);
        ody_logf(log, ODY_LOG_INFO, "forest: %d trees, %zu nodes, %.2f s", o->n_trees, total, ody_now() - t0);
        *out = f;
        f = NULL;
    }
    grow_free(&g);
    rf_trainset_free(&ts);
    rf_destroy(f);
    return rc;
}
