/* rf_score.c — prediction, weirdness, similarity.
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

static void tree_leaves(const rf_forest *f, int t, const float *X, size_t n, int32_t *leaf)
{
    rf_leaves(f->node + f->tree_off[t], f->n_feat, X, n, leaf);
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

int rf_sim_ctx_init(rf_sim_ctx *ctx, const rf_forest *f, const float *X, size_t n,
                    rf_leaf_filter filt, int n_threads, const ody_comm *comm, ody_err *err)
{
    memset(ctx, 0, sizeof *ctx);
    ctx->n_threads = n_threads;
    ctx->comm = comm;
    if (n < 1) return ody_fail(err, ODY_EINPUT, "no objects to score");
    ctx->f = f;
    ctx->X = X;
    ctx->n = n;
    ctx->filt = filt;
    ctx->n_good = malloc(n * sizeof *ctx->n_good);
    ctx->leaf_n = calloc(f->tree_off[f->n_trees] + 1, sizeof *ctx->leaf_n);
    if (!ctx->n_good || !ctx->leaf_n) {
        rf_sim_ctx_free(ctx);
        return ody_fail(err, ODY_ENOMEM, "out of memory for %zu objects", n);
    }
    /* Blocks of this process's objects against every tree: a block's rows
     * stay in cache, and each tree is read once per block. */
    enum { BLK = 2048 };
    size_t lo, hi;
    ody_comm_part(comm, ody_comm_rank(comm), n, &lo, &hi);
#pragma omp parallel num_threads(ody_threads(ctx->n_threads))
    {
        int32_t *lf = malloc(BLK * sizeof *lf);
#pragma omp for schedule(dynamic, 1)
        for (size_t b0 = lo; b0 < hi; b0 += BLK) {
            size_t nb = b0 + BLK < hi ? BLK : hi - b0;
            uint32_t *g = ctx->n_good + b0;
            memset(g, 0, nb * sizeof *g);
            if (!lf) continue;
            for (int t = 0; t < f->n_trees; t++) {
                tree_leaves(f, t, X + b0 * (size_t)f->n_feat, nb, lf);
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
    if (!rc) rc = ody_share_rows(comm, ctx->n_good, n, sizeof *ctx->n_good, err);
    if (rc) rf_sim_ctx_free(ctx);
    return rc;
}

void rf_sim_ctx_free(rf_sim_ctx *ctx)
{
    free(ctx->n_good);
    free(ctx->leaf_n);
    memset(ctx, 0, sizeof *ctx);
}

/* ================================================================ weirdness */

/* Trees per block: a block keeps its rows' leaf ids (rows x block int32)
 * and its trees' leaf sums (maxnodes x block, fixed and floating point). */
static int tree_block(size_t rows, size_t maxnodes, int T, int nt)
{
    size_t b = (size_t)(256u << 20) / (rows * sizeof(int32_t) + maxnodes * (sizeof(__int128) + sizeof(double)) + 1);
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
    size_t n = ctx->n, F = (size_t)f->n_feat, lo = 0, hi = n;
    int self = Q == ctx->X && m == n;
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
    for (size_t i = 0; !rc && i < nl; i++) inv[i] = ctx->n_good[lo + i] ? INV_ONE / ctx->n_good[lo + i] : 0;
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
            tree_leaves(f, t, ctx->X + lo * F, nl, lf);
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
    if (Q == ctx->X && m == ctx->n) return ody_fail(err, ODY_EINTERNAL, "rf_weirdness_query: the query is the catalog");
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

/* ================================================================ leaf members */

/* Good members of every leaf of trees [t0, t1): CSR per tree. */
typedef struct members {
    int t0, t1;
    size_t n;
    size_t *start;     /* per tree: offset of its leaf table in off[] */
    uint32_t *off;     /* per tree: nodes+1 offsets into mem (relative to tree base) */
    uint32_t *mem;     /* per tree: n slots, good objects grouped by leaf */
} members;

static void members_free(members *m)
{
    free(m->start);
    free(m->off);
    free(m->mem);
    memset(m, 0, sizeof *m);
}

/* The good members of tree t's leaves into m's slot b: l is scratch for
 * n leaf numbers. */
static void members_tree(members *m, const rf_sim_ctx *ctx, int t, int b, int32_t *l)
{
    const rf_forest *f = ctx->f;
    size_t n = ctx->n, nn = f->tree_off[t + 1] - f->tree_off[t];
    uint32_t *off = m->off + m->start[b], *mem = m->mem + (size_t)b * n;
    tree_leaves(f, t, ctx->X, n, l);
    for (size_t i = 0; i < n; i++)
        if (rf_leaf_good(f, t, l[i], ctx->filt)) off[l[i] + 1]++;
        else l[i] = -1;
    for (size_t k = 0; k < nn; k++) off[k + 1] += off[k];
    /* fill in object order, using off[k] as a cursor, then restore */
    for (size_t i = 0; i < n; i++)
        if (l[i] >= 0) mem[off[l[i]]++] = (uint32_t)i;
    for (size_t k = nn; k > 0; k--) off[k] = off[k - 1];
    off[0] = 0;
}

/* With comm, every process builds the lists of a block of the trees and
 * shares them.  A tree's lists depend on the tree and the catalog alone, so
 * who builds them changes no byte; sharing the lists costs what sharing
 * every row's leaves would, and no process builds another's.  0, or -1 when
 * out of memory (on every process alike with comm: the processes agree). */
static int members_build(members *m, const rf_sim_ctx *ctx, int t0, int t1, const ody_comm *comm)
{
    const rf_forest *f = ctx->f;
    size_t n = ctx->n;
    int nt = t1 - t0, R = ody_comm_size(comm);
    memset(m, 0, sizeof *m);
    m->t0 = t0;
    m->t1 = t1;
    m->n = n;
    m->start = malloc(((size_t)nt + 1) * sizeof *m->start);
    size_t tot = 0;
    for (int b = 0; m->start && b < nt; b++) {
        m->start[b] = tot;
        tot += f->tree_off[t0 + b + 1] - f->tree_off[t0 + b] + 1;
    }
    if (m->start) m->start[nt] = tot;
    m->off = m->start ? calloc(tot, sizeof *m->off) : NULL;
    m->mem = malloc(((size_t)nt * n + 1) * sizeof *m->mem);
    size_t *sh = malloc(((size_t)R + 1) * sizeof *sh), b0, b1;
    int fail = !m->off || !m->mem || !sh;
    ody_comm_part(comm, ody_comm_rank(comm), (size_t)nt, &b0, &b1);
    if (!fail) {
#pragma omp parallel num_threads(ody_threads(ctx->n_threads))
    {
        int32_t *l = malloc((n ? n : 1) * sizeof *l);
        if (!l) {
#pragma omp atomic write
            fail = 1;
        }
#pragma omp for schedule(dynamic, 1)
        for (size_t b = b0; b < b1; b++)
            if (l) members_tree(m, ctx, t0 + (int)b, (int)b, l);
        free(l);
    }
    }
    ody_err e;
    fail = ody_comm_agree(comm, fail ? ODY_ENOMEM : 0, &e) != 0;
    if (!fail) fail = ody_share_rows(comm, m->mem, (size_t)nt, n * sizeof *m->mem, &e) != 0;
    if (!fail && R > 1) {
        for (int p = 0; p < R; p++) {  /* process p's trees' leaf tables */
            ody_comm_part(comm, p, (size_t)nt, &b0, &b1);
            sh[p] = m->start[b0] * sizeof *m->off;
        }
        sh[R] = m->start[nt] * sizeof *m->off;
        fail = ody_share(comm, m->off, sh, &e) != 0;
    }
    free(sh);
    if (fail) { members_free(m); return -1; }
    return 0;
}

/* Trees whose member lists fit in mem bytes for n objects (at least 1). */
static int sim_trees(size_t n, int T, size_t mem)
{
    size_t per = n * sizeof(uint32_t) * 2 + 1;
    size_t t = mem / per;
    if (t < 1) t = 1;
    return t >= (size_t)T ? T : (int)t;
}

/* Per-thread accumulator of (weighted) co-occurrence counts over touched
 * objects. */
typedef struct accum {
    double *cnt;
    uint32_t *touched;
    size_t nt;
} accum;

/* A zeroed accumulator for n objects; 0 on success. */
static int accum_init(accum *a, size_t n)
{
    a->cnt = calloc(n, sizeof *a->cnt);
    a->touched = malloc(n * sizeof *a->touched);
    a->nt = 0;
    return a->cnt && a->touched ? 0 : -1;
}

static void accum_free(accum *a)
{
    free(a->cnt);
    free(a->touched);
}

/* Adds, for object i, the trees among m's where each j shares its good leaf.
 * Leaves with more than cap members (cap > 0) contribute a systematic sample
 * of cap members at a per-leaf offset, each weighted size / cap; every
 * object of the leaf sees the same sample.  Objects and trees are visited in
 * a fixed order, so the sums do not depend on threads. */
static void accumulate(const rf_sim_ctx *ctx, const members *m, const float *x, int cap, accum *a)
{
    const rf_forest *f = ctx->f;
    for (int t = m->t0; t < m->t1; t++) {
        int32_t k = rf_leaf(f, t, x);
        if (!rf_leaf_good(f, t, k, ctx->filt)) continue;
        int b = t - m->t0;
        const uint32_t *off = m->off + m->start[b];
        const uint32_t *mem = m->mem + (size_t)b * m->n;
        uint32_t lo = off[k], sz = off[k + 1] - lo;
        if (cap <= 0 || sz <= (uint32_t)cap) {
            for (uint32_t q = lo; q < lo + sz; q++) {
                uint32_t j = mem[q];
                if (a->cnt[j] == 0) a->touched[a->nt++] = j;
                a->cnt[j] += 1;
            }
            continue;
        }
        double step = (double)sz / cap, w = step;
        unsigned long long h = (unsigned long long)t * 0x9E3779B97F4A7C15ULL ^ (unsigned long long)k * 0xC2B2AE3D27D4EB4FULL;
        double u = (double)(ody_splitmix64(&h) >> 11) * 0x1.0p-53 * step;
        for (int q = 0; q < cap; q++) {
            uint32_t j = mem[lo + (uint32_t)(u + q * step)];
            if (a->cnt[j] == 0) a->touched[a->nt++] = j;
            a->cnt[j] += w;
        }
    }
}

/* ================================================================ top-k */

/* (sim desc, index asc) ordering: 1 if (s1, j1) ranks before (s2, j2). */
static inline int before(float s1, int32_t j1, float s2, int32_t j2)
{
    return s1 > s2 || (s1 == s2 && j1 < j2);
}

void rf_topk_opt_init(rf_topk_opt *o)
{
    o->k = 10;
    o->mem_budget = (size_t)1 << 30;
    o->max_pairs = 2e9;
    o->leaf_sample = 64;
}

/* The leading trees whose leaf lists fit the memory budget and whose pair
 * updates fit the work budget (at least one). */
static int trees_in_budget(const rf_sim_ctx *ctx, const rf_topk_opt *o)
{
    const rf_forest *f = ctx->f;
    int Ts = sim_trees(ctx->n, f->n_trees, o->mem_budget);
    double pairs = 0;
    for (int t = 0; t < Ts; t++) {
        double pt = 0;
        for (size_t q = f->tree_off[t]; q < f->tree_off[t + 1]; q++) {
            double sz = ctx->leaf_n[q], c = o->leaf_sample > 0 && sz > o->leaf_sample ? o->leaf_sample : sz;
            pt += sz * c;
        }
        if (t > 0 && pairs + pt > o->max_pairs) return t;
        pairs += pt;
    }
    return Ts;
}

/* n_good over the first m.t1 trees only, so sim stays count / n_good in
 * [0, 1]; NULL when out of memory. */
static uint32_t *good_counts(const rf_sim_ctx *ctx, const members *m)
{
    const rf_forest *f = ctx->f;
    size_t n = ctx->n;
    uint32_t *ng = calloc(n, sizeof *ng);
    if (!ng) return NULL;
    for (int b = 0; b < m->t1; b++) {
        const uint32_t *off = m->off + m->start[b];
        size_t nn = f->tree_off[b + 1] - f->tree_off[b];
        for (uint32_t q = 0; q < off[nn]; q++) ng[m->mem[(size_t)b * n + q]]++;
    }
    return ng;
}

/* The k objects most similar to row x (catalog object `self`, or -1 for a
 * row from elsewhere, which then excludes no one), sorted, into bi / bs. */
static void topk_row(const rf_sim_ctx *ctx, const members *m, const uint32_t *ng, int leaf_sample, const float *x,
                     long self, int k, accum *a, int32_t *bi, float *bs)
{
    for (int q = 0; q < k; q++) { bi[q] = -1; bs[q] = 0; }
    a->nt = 0;
    accumulate(ctx, m, x, leaf_sample, a);
    int filled = 0;
    for (size_t q = 0; q < a->nt; q++) {
        uint32_t j = a->touched[q];
        double sv = a->cnt[j] / ng[j];
        float s = (float)(sv < 1 ? sv : 1);
        a->cnt[j] = 0;
        if ((long)j == self) continue;
        if (filled == k && !before(s, (int32_t)j, bs[k - 1], bi[k - 1])) continue;
        /* insertion into the sorted list (k is small) */
        int p = filled < k ? filled++ : k - 1;
        while (p > 0 && before(s, (int32_t)j, bs[p - 1], bi[p - 1])) {
            bs[p] = bs[p - 1];
            bi[p] = bi[p - 1];
            p--;
        }
        bs[p] = s;
        bi[p] = (int32_t)j;
    }
}

/* Lists for m rows: Q's, or with Q NULL the catalog's own (self excluded). */
static int topk_rows(const rf_sim_ctx *ctx, const rf_topk_opt *o, const float *Q, size_t rows, int32_t *idx,
                     float *sim, int *trees_used, ody_err *err)
{
    size_t n = ctx->n, F = (size_t)ctx->f->n_feat;
    int k = o->k;
    if (k < 1) return ody_fail(err, ODY_EINPUT, "similarity.top_k = %d must be at least 1", k);
    if ((size_t)k >= n)
        return ody_fail(err, ODY_EINPUT, "similarity.top_k = %d must be below the number of objects (%zu)", k, n);
    int Ts = trees_in_budget(ctx, o);
    members m;
    int fail = members_build(&m, ctx, 0, Ts, Q ? NULL : ctx->comm) != 0;
    if (trees_used) *trees_used = Ts;
    uint32_t *ng_own = !fail && Ts < ctx->f->n_trees ? good_counts(ctx, &m) : NULL;
    const uint32_t *ng = Ts < ctx->f->n_trees ? ng_own : ctx->n_good;
    fail = fail || !ng;
    size_t done = 0, lo = 0, hi = rows;
    const ody_comm *comm = Q ? NULL : ctx->comm;  /* the catalog's own lists: each process its rows */
    ody_comm_part(comm, ody_comm_rank(comm), rows, &lo, &hi);
    ody_progress prog;
    ody_progress_start(&prog, ctx->log, "similarity", "objects", hi - lo);
    if (!fail) {
#pragma omp parallel num_threads(ody_threads(ctx->n_threads))
    {
        accum a;
        int ok = accum_init(&a, n) == 0;
        if (!ok) {
#pragma omp atomic write
            fail = 1;
        }
#pragma omp for schedule(dynamic, 64)
        for (size_t i = lo; i < hi; i++) {
            if (ok)
                topk_row(ctx, &m, ng, o->leaf_sample, (Q ? Q : ctx->X) + i * F, Q ? -1 : (long)i, k, &a,
                         idx + (i - lo) * (size_t)k, sim + (i - lo) * (size_t)k);
            if (((i - lo) & 1023) == 1023) {
                size_t d;
#pragma omp atomic capture
                d = done += 1024;
                if (omp_get_thread_num() == 0) ody_progress_update(&prog, d);
            }
        }
        accum_free(&a);
    }
    }
    ody_progress_end(&prog);
    free(ng_own);
    members_free(&m);
    return ody_comm_agree(comm, fail ? ody_fail(err, ODY_ENOMEM, "top-k similarity: out of memory for %zu objects", n)
                                     : 0, err);
}

int rf_topk(const rf_sim_ctx *ctx, const rf_topk_opt *o, int32_t *idx, float *sim, int *trees_used, ody_err *err)
{
    return topk_rows(ctx, o, NULL, ctx->n, idx, sim, trees_used, err);
}

int rf_topk_query(const rf_sim_ctx *ctx, const rf_topk_opt *o, const float *Q, size_t m, int32_t *idx, float *sim,
                  int *trees_used, ody_err *err)
{
    return topk_rows(ctx, o, Q, m, idx, sim, trees_used, err);
}

void rf_knn_distance(size_t n, int k, const float *sim, double *out)
{
    for (size_t i = 0; i < n; i++) {
        double s = 0;
        for (int q = 0; q < k; q++) s += 1.0 - (double)sim[i * (size_t)k + q];
        out[i] = s / k;
    }
}

/* ================================================================ dense */

int rf_dense_limit(size_t mem_budget, size_t n_trees)
{
    (void)n_trees;
    /* The matrix itself (n^2 float32) must fit in the budget: whoever asks
     * for it will load it. */
    double n = floor(sqrt((double)mem_budget / sizeof(float)));
    return n > 2147483647.0 ? 2147483647 : (int)n;
}

int rf_dense_write(const rf_sim_ctx *ctx, const char *path, size_t mem_budget, int overwrite,
                   ody_err *err)
{
    const rf_forest *f = ctx->f;
    size_t n = ctx->n;
    size_t lim = (size_t)rf_dense_limit(mem_budget, (size_t)f->n_trees);
    if (n > lim)
        return ody_fail(err, ODY_EINPUT, "%s: a dense %zu x %zu similarity matrix needs %.1f GB, over "
                        "the %.1f GB budget (limit %zu objects) — use similarity.top_k instead, or "
                        "raise similarity.memory_gb", path, n, n, (double)n * n * 4 / 1e9,
                        (double)mem_budget / 1e9, lim);
    if (sim_trees(n, f->n_trees, mem_budget) < f->n_trees)
        return ody_fail(err, ODY_EINPUT, "%s: the forest's leaf lists for %zu objects x %d trees do not "
                        "fit in memory — use similarity.top_k instead", path, n, f->n_trees);
    members m;
    if (members_build(&m, ctx, 0, f->n_trees, NULL))
        return ody_fail(err, ODY_ENOMEM, "dense similarity: out of memory for %zu objects", n);
    fitsout w;
    int rc = fitsout_open(&w, path, overwrite, err);
    if (rc) { members_free(&m); return rc; }
    int status = 0;
    long naxes[2] = {(long)n, (long)n};
    fits_create_img(w.f, FLOAT_IMG, 2, naxes, &status);
    fits_write_key(w.f, TSTRING, "EXTNAME", "SIMILARITY", "sim[i][j] = count[i][j] / n_good[j]", &status);
    fits_write_key(w.f, TSTRING, "LEAFFILT", (void *)rf_leaf_filter_name(ctx->filt), "good-leaf filter", &status);
    int ntr = f->n_trees;
    fits_write_key(w.f, TINT, "NTREES", &ntr, "trees used", &status);
    const size_t rows = 64;
    float *blk = malloc(rows * n * sizeof *blk);
    if (!blk) { rc = ody_fail(err, ODY_ENOMEM, "dense similarity: out of memory"); goto fail; }
    for (size_t r0 = 0; r0 < n && !status && !rc; r0 += rows) {
        size_t r1 = r0 + rows < n ? r0 + rows : n;
        int bad = 0;
#pragma omp parallel num_threads(ody_threads(ctx->n_threads))
        {
            accum a;
            int ok = accum_init(&a, n) == 0;
            if (!ok) {
#pragma omp atomic write
                bad = 1;
            }
#pragma omp for schedule(dynamic, 1)
            for (size_t i = r0; i < r1; i++) {
                if (!ok) continue;
                float *row = blk + (i - r0) * n;
                memset(row, 0, n * sizeof *row);
                a.nt = 0;
                accumulate(ctx, &m, ctx->X + i * (size_t)ctx->f->n_feat, 0, &a);
                for (size_t q = 0; q < a.nt; q++) {
                    uint32_t j = a.touched[q];
                    row[j] = (float)(a.cnt[j] / ctx->n_good[j]);
                    a.cnt[j] = 0;
                }
            }
            accum_free(&a);
        }
        if (bad) { rc = ody_fail(err, ODY_ENOMEM, "dense similarity: out of memory"); break; }
        fits_write_img(w.f, TFLOAT, (LONGLONG)(r0 * n + 1), (LONGLONG)((r1 - r0) * n), blk, &status);
    }
    if (status && !rc) rc = ody_fits_fail(err, status, path, "cannot write the similarity matrix", NULL);
fail:
    free(blk);
    members_free(&m);
    return fitsout_finish(&w, rc, err);
}
