/* rf_score.c — prediction, weirdness (rf_topk.c: similarity).
 *
 * Determinism: every floating-point sum below runs in a fixed order (trees
 * in index order within an object), sums over objects are integers (counts,
 * or weirdness's leaf sums in fixed point), and similarities are integer
 * co-occurrence counts divided once, so results depend neither on the
 * number of threads nor on the number of processes sharing the rows. */
#include <math.h>
#include <omp.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "fitsout.h"
#include "rf_grow.h"
#include "rf_sim.h"

/* ================================================================ traversal */

/* Sixteen lanes walk the tree at once,
 * so their dependent loads overlap; the step itself is branch-free, and a
 * lane whose row reached its leaf takes the next row at once, so the only
 * mispredicted branch is one per row instead of one per level. */
void rf_leaves(const rf_node *nd, int n_feat, const float *X, size_t n, int32_t *leaf)
{
    const size_t F = (size_t)n_feat;
    enum { G = 16 };
    if (n < G) {
        for (size_t i = 0; i < n; i++) {
            const float *x = X + i * F;
            int32_t kk = 0;
            while (nd[kk].feat >= 0) kk = nd[kk].left + (x[nd[kk].feat] > nd[kk].thr);
            leaf[i] = kk;
        }
        return;
    }
    int32_t k[G];
    size_t row[G];
    for (int q = 0; q < G; q++) { k[q] = 0; row[q] = (size_t)q; }
    size_t next = G;
    int live = G;
    while (live == G) {
        for (int q = 0; q < G; q++) {
            rf_node c = nd[k[q]];
            if (c.feat < 0) {
                leaf[row[q]] = k[q];
                if (next < n) { row[q] = next++; k[q] = 0; }
                else { live--; k[q] = -1; row[q] = SIZE_MAX; }
                if (live < G) break;
                continue;
            }
            k[q] = c.left + (X[row[q] * F + (size_t)c.feat] > c.thr);
        }
    }
    /* drain the remaining lanes one by one */
    for (int q = 0; q < G; q++) {
        if (row[q] == SIZE_MAX) continue;
        int32_t kk = k[q];
        const float *x = X + row[q] * F;
        while (nd[kk].feat >= 0) kk = nd[kk].left + (x[nd[kk].feat] > nd[kk].thr);
        leaf[row[q]] = kk;
    }
}

/* ================================================================ predict */

int rf_predict(const rf_forest *f, const float *X, size_t n, int n_threads, double *p1, ody_err *err)
{
    (void)err;
#pragma omp parallel for schedule(static) num_threads(ody_threads(n_threads))
    for (size_t i = 0; i < n; i++) {
        const float *x = X + i * (size_t)f->n_feat;
        double s = 0;
        for (int t = 0; t < f->n_trees; t++) {
            int32_t k = rf_leaf(f, t, x);
            const uint32_t *c = f->cnt + 2 * (f->tree_off[t] + (size_t)k);
            s += (double)c[1] / (double)(c[0] + c[1]);
        }
        p1[i] = s / f->n_trees;
    }
    return 0;
}

/* ================================================================ n_good */

static int ctx_init(rf_sim_ctx *ctx, const rf_forest *f, const float *X, size_t n, rf_leaf_filter filt,
                    int n_threads, const ody_comm *comm, int own, ody_err *err)
{
    memset(ctx, 0, sizeof *ctx);
    ctx->n_threads = n_threads;
    ctx->comm = comm;
    ctx->own_rows = own;
    if (n < 1) return ody_fail(err, ODY_EINPUT, "no objects to score");
    ctx->f = f;
    ctx->X = X;
    ctx->n = n;
    ctx->filt = filt;
    /* Blocks of this process's objects against every tree: a block's rows
     * stay in cache, and each tree is read once per block. */
    enum { BLK = 2048 };
    size_t lo, hi;
    ody_comm_part(comm, ody_comm_rank(comm), n, &lo, &hi);
    ctx->good_lo = ctx->own_rows ? lo : 0;
    ctx->n_good = malloc((ctx->own_rows ? hi - lo + 1 : n) * sizeof *ctx->n_good);
    ctx->leaf_n = calloc(f->tree_off[f->n_trees] + 1, sizeof *ctx->leaf_n);
    if (!ctx->n_good || !ctx->leaf_n) {
        rf_sim_ctx_free(ctx);
        return ody_fail(err, ODY_ENOMEM, "out of memory for %zu objects", n);
    }
#pragma omp parallel num_threads(ody_threads(ctx->n_threads))
    {
        int32_t *lf = malloc(BLK * sizeof *lf);
#pragma omp for schedule(dynamic, 1)
        for (size_t b0 = lo; b0 < hi; b0 += BLK) {
            size_t nb = b0 + BLK < hi ? BLK : hi - b0;
            uint32_t *g = ctx->n_good + (b0 - ctx->good_lo);
            memset(g, 0, nb * sizeof *g);
            if (!lf) continue;
            for (int t = 0; t < f->n_trees; t++) {
                tree_leaves(f, t, ctx_row(ctx, lo, b0), nb, lf);
                uint32_t *ln = ctx->leaf_n + f->tree_off[t];
                for (size_t q = 0; q < nb; q++) {
                    if (!rf_leaf_good(f, t, lf[q], filt)) continue;
                    g[q]++;
#pragma omp atomic
                    ln[lf[q]]++;
                }
            }
        }
        if (!lf) {
#pragma omp atomic write
            ctx->n = 0;
        }
        free(lf);
    }
    int rc = ody_comm_agree(comm, ctx->n ? 0 : ody_fail(err, ODY_ENOMEM, "out of memory scoring %zu objects", n), err);
    if (!rc) rc = ody_allreduce(comm, ctx->leaf_n, f->tree_off[f->n_trees], ODY_SUM_U32, err);
    if (!rc && !ctx->own_rows) rc = ody_share_rows(comm, ctx->n_good, n, sizeof *ctx->n_good, err);
    if (rc) rf_sim_ctx_free(ctx);
    return rc;
}

int rf_sim_ctx_init(rf_sim_ctx *ctx, const rf_forest *f, const float *X, size_t n,
                    rf_leaf_filter filt, int n_threads, const ody_comm *comm, ody_err *err)
{
    return ctx_init(ctx, f, X, n, filt, n_threads, comm, 0, err);
}

int rf_sim_ctx_init_own(rf_sim_ctx *ctx, const rf_forest *f, const float *X, size_t n, rf_leaf_filter filt,
                        int n_threads, const ody_comm *comm, ody_err *err)
{
    return ctx_init(ctx, f, X, n, filt, n_threads, comm, ody_comm_size(comm) > 1, err);
}

void rf_sim_ctx_free(rf_sim_ctx *ctx)
{
    free(ctx->n_good);
    free(ctx->leaf_n);
    memset(ctx, 0, sizeof *ctx);
}

/* ================================================================ weirdness */

/* Trees per block: a block keeps its rows' leaf ids (rows x block int32)
 * and its trees' leaf sums (maxnodes x block, fixed and floating point),
 * 64 MB at most (unless a block of one tree a thread needs more).  The
 * block's size moves no result (each row adds its trees in index order)
 * and little time: at 256 MB it was half the peak memory of a 10^6-object
 * run, and every process of a distributed run keeps its own. */
static int tree_block(size_t rows, size_t maxnodes, int T, int nt)
{
    size_t b = (size_t)(64u << 20) / (rows * sizeof(int32_t) + maxnodes * (sizeof(__int128) + sizeof(double)) + 1);
    if (b < (size_t)nt) b = (size_t)nt;
    if (b > 64) b = 64;
    return (int)(b > (size_t)T ? (size_t)T : b);
}

/* 1/g in fixed point at 2^-64: leaf sums of these are exact integers, so
 * they do not depend on the order of the objects — nor on which process
 * added which — and their one rounding, to double, is no worse than a
 * double sum's. */
#define INV_ONE ((unsigned __int128)1 << 64)

/* W of m rows Q against the catalog.  Q may be the catalog itself (self),
 * whose rows are then shared among ctx->comm's processes: each sums the
 * leaves of its own rows, the leaf sums are added up over the processes,
 * and each scores its rows, into W from W[0]. */
static int weirdness_of(const rf_sim_ctx *ctx, const float *Q, size_t m, double *W, uint32_t *n_good, ody_err *err)
{
    const rf_forest *f = ctx->f;
    size_t n = ctx->n, lo = 0, hi = n;
    int self = Q == ctx->X && (m == n || ctx->own_rows);
    const ody_comm *comm = self ? ctx->comm : NULL;
    ody_comm_part(comm, ody_comm_rank(comm), n, &lo, &hi);
    size_t nl = hi - lo, mq = self ? nl : m;  /* catalog rows summed here; rows scored here */
    int T = f->n_trees, nthr = ody_threads(ctx->n_threads);
    size_t maxnodes = 0;
    for (int t = 0; t < T; t++) {
        size_t nn = f->tree_off[t + 1] - f->tree_off[t];
        if (nn > maxnodes) maxnodes = nn;
    }
    int B = tree_block(nl + (self ? 0 : m), maxnodes, T, nthr);
    int32_t *leaf = malloc((size_t)B * (nl ? nl : 1) * sizeof *leaf);
    int32_t *qleaf = self ? leaf : malloc((size_t)B * (m ? m : 1) * sizeof *qleaf);
    __int128 *lsum = malloc((size_t)B * maxnodes * sizeof *lsum);
    double *leafsum = malloc((size_t)B * maxnodes * sizeof *leafsum);
    double *acc = calloc(mq ? mq : 1, sizeof *acc);
    if (n_good) memset(n_good, 0, m * sizeof *n_good);
    unsigned __int128 *inv = malloc((nl ? nl : 1) * sizeof *inv);
    int rc = 0;
    if (!leaf || !qleaf || !lsum || !leafsum || !acc || !inv)
        rc = ody_fail(err, ODY_ENOMEM, "weirdness: out of memory for %zu objects", n + (self ? 0 : m));
    const uint32_t *g = ctx->n_good + (lo - ctx->good_lo);
    for (size_t i = 0; !rc && i < nl; i++) inv[i] = g[i] ? INV_ONE / g[i] : 0;
    rc = ody_comm_agree(comm, rc, err);
    ody_progress prog;
    ody_progress_start(&prog, ctx->log, "weirdness", "trees", (size_t)T);
    for (int t0 = 0; t0 < T && !rc; t0 += B) {
        ody_progress_update(&prog, (size_t)t0);
        int nb = t0 + B <= T ? B : T - t0;
        /* Per tree (one thread each): this process's objects' leaves and
         * their leaf sums of 1/n_good over good objects; then the query
         * rows' leaves. */
#pragma omp parallel for schedule(dynamic, 1) num_threads(nthr)
        for (int b = 0; b < nb; b++) {
            int t = t0 + b;
            int32_t *lf = leaf + (size_t)b * nl, *lq = qleaf + (size_t)b * m;
            __int128 *ls = lsum + (size_t)b * maxnodes;
            size_t nn = f->tree_off[t + 1] - f->tree_off[t];
            memset(ls, 0, nn * sizeof *ls);
            tree_leaves(f, t, nl ? ctx_row(ctx, lo, lo) : ctx->X, nl, lf);
            for (size_t i = 0; i < nl; i++) {
                int32_t k = lf[i];
                if (rf_leaf_good(f, t, k, ctx->filt)) ls[k] += (__int128)inv[i];
                else lf[i] = -1;
            }
            if (self) continue;
            tree_leaves(f, t, Q, m, lq);
            for (size_t i = 0; i < m; i++)
                if (!rf_leaf_good(f, t, lq[i], ctx->filt)) lq[i] = -1;
        }
        for (int b = 0; b < nb && ody_comm_size(comm) > 1 && !rc; b++)
            rc = ody_allreduce(comm, lsum + (size_t)b * maxnodes, f->tree_off[t0 + b + 1] - f->tree_off[t0 + b],
                               ODY_SUM_I128, err);
        for (int b = 0; b < nb; b++) {
            size_t nn = f->tree_off[t0 + b + 1] - f->tree_off[t0 + b];
            for (size_t k = 0; k < nn; k++)
                leafsum[(size_t)b * maxnodes + k] = (double)lsum[(size_t)b * maxnodes + k] * 0x1p-64;
        }
        /* Per scored row: trees added in index order. */
#pragma omp parallel for schedule(static) num_threads(nthr)
        for (size_t i = 0; i < mq; i++) {
            double s = acc[i];
            for (int b = 0; b < nb; b++) {
                int32_t k = qleaf[(size_t)b * mq + i];
                if (k >= 0) s += leafsum[(size_t)b * maxnodes + (size_t)k];
                if (k >= 0 && n_good) n_good[i]++;
            }
            acc[i] = s;
        }
    }
    ody_progress_end(&prog);
    for (size_t i = 0; !rc && i < mq; i++) W[i] = 1.0 - acc[i] / (double)n;
    free(leaf); if (!self) free(qleaf); free(lsum); free(leafsum); free(acc); free(inv);
    return rc;
}

int rf_weirdness(const rf_sim_ctx *ctx, double *W, ody_err *err)
{
    return weirdness_of(ctx, ctx->X, ctx->n, W, NULL, err);
}

int rf_weirdness_query(const rf_sim_ctx *ctx, const float *Q, size_t m, double *W, uint32_t *n_good, ody_err *err)
{
    if ((Q == ctx->X && m == ctx->n) || ctx->own_rows)
        return ody_fail(err, ODY_EINTERNAL, "rf_weirdness_query: the query is the catalog, or the catalog is spread");
    return weirdness_of(ctx, Q, m, W, n_good, err);
}

int rf_weirdness_pairwise(const rf_sim_ctx *ctx, double *W, ody_err *err)
{
    const rf_forest *f = ctx->f;
    size_t n = ctx->n;
    int T = f->n_trees;
    int32_t *leaf = malloc((size_t)T * n * sizeof *leaf);
    uint32_t *count = calloc(n * n, sizeof *count);
    if (!leaf || !count) {
        free(leaf); free(count);
        return ody_fail(err, ODY_ENOMEM, "pairwise weirdness: out of memory (n = %zu)", n);
    }
    for (int t = 0; t < T; t++)
        for (size_t i = 0; i < n; i++) {
            int32_t k = rf_leaf(f, t, ctx->X + i * (size_t)f->n_feat);
            leaf[(size_t)t * n + i] = rf_leaf_good(f, t, k, ctx->filt) ? k : -1;
        }
    for (int t = 0; t < T; t++)
        for (size_t i = 0; i < n; i++) {
            int32_t a = leaf[(size_t)t * n + i];
            if (a < 0) continue;
            for (size_t j = 0; j < n; j++)
                if (leaf[(size_t)t * n + j] == a) count[i * n + j]++;
        }
    for (size_t i = 0; i < n; i++) {
        double s = 0;
        for (size_t j = 0; j < n; j++) {
            double sim = ctx->n_good[j] ? (double)count[i * n + j] / ctx->n_good[j] : 0.0;
            s += 1.0 - sim;
        }
        W[i] = s / (double)n;
    }
    free(leaf);
    free(count);
    return 0;
}

