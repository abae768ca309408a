/* rf_topk.c — similarity: each object's most similar objects by forest
 * proximity (top-k lists from per-tree leaf member lists), and the dense
 * matrix.  Sums run in a fixed order (trees in index order within an
 * object) and counts are integers divided once, so the lists depend
 * neither on threads nor on processes. */
#include <math.h>
#include <omp.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "fitsout.h"
#include "rf_sim.h"

/* ================================================================ leaf members */

/* The good members of every leaf of trees [t0, t1) that similarity reads:
 * all of a leaf's, or for a leaf of more than cap (> 0) members the
 * systematic sample of cap of them that accumulate() weighs, in its order.
 * Every object of a leaf sees the same sample, so storing it alone changes
 * no result: at 10^6 objects and leaves of a few hundred, a fifth of the
 * memory of every member.  A leaf's full size is ctx->leaf_n's. */
typedef struct members {
    int t0, t1, cap;
    size_t *start;     /* per tree: offset of its leaf table in off[] */
    uint32_t *off;     /* per tree: nodes+1 offsets into its members (relative to its base) */
    size_t *base;      /* per tree + 1: offset of its members in mem */
    uint32_t *mem;     /* per tree: good objects grouped by leaf (sampled past cap) */
    const ody_comm *comm;
    void *win;         /* mem is the processes' one shared copy (comm's shared memory) */
} members;

/* Every process together when mem is shared. */
static void members_free(members *m)
{
    free(m->start);
    free(m->off);
    free(m->base);
    if (m->win) m->comm->shared_free(m->comm, m->win);
    else free(m->mem);
    memset(m, 0, sizeof *m);
}

/* Members a leaf of sz good objects keeps. */
static uint32_t kept(uint32_t sz, int cap) { return cap > 0 && sz > (uint32_t)cap ? (uint32_t)cap : sz; }

/* Where a leaf of sz > cap members starts its systematic sample, and its
 * step, from the tree and the leaf alone. */
static double sample_start(int t, int32_t k, double step)
{
    unsigned long long h = (unsigned long long)t * 0x9E3779B97F4A7C15ULL ^ (unsigned long long)k * 0xC2B2AE3D27D4EB4FULL;
    return (double)(ody_splitmix64(&h) >> 11) * 0x1.0p-53 * step;
}

/* What building one tree's lists needs: every object's leaf (l), every
 * member in leaf order (full), each leaf's offset in it (fo). */
typedef struct fill_scratch {
    int32_t *l;
    uint32_t *full, *fo;
} fill_scratch;

static void scratch_done(fill_scratch *s)
{
    free(s->l);
    free(s->full);
    free(s->fo);
    memset(s, 0, sizeof *s);
}

/* Room for n objects and trees of up to maxnn nodes; 0, or -1 (nothing
 * kept) when out of memory. */
static int scratch_init(fill_scratch *s, size_t n, size_t maxnn)
{
    s->l = malloc((n ? n : 1) * sizeof *s->l);
    s->full = malloc((n ? n : 1) * sizeof *s->full);
    s->fo = malloc((maxnn + 1) * sizeof *s->fo);
    if (s->l && s->full && s->fo) return 0;
    scratch_done(s);
    return -1;
}

/* Tree t's kept members into m's slot b from every object's leaf in s->l
 * (changed); ng (may be NULL) counts for each object the trees where its
 * leaf is good. */
static void members_fill(members *m, const rf_sim_ctx *ctx, int t, int b, fill_scratch *s, uint32_t *ng)
{
    int32_t *l = s->l;
    uint32_t *full = s->full, *fo = s->fo;
    const rf_forest *f = ctx->f;
    size_t n = ctx->n, nn = f->tree_off[t + 1] - f->tree_off[t];
    const uint32_t *off = m->off + m->start[b];
    uint32_t *mem = m->mem + m->base[b];
    memset(fo, 0, (nn + 1) * sizeof *fo);
    for (size_t i = 0; i < n; i++) {
        if (!rf_leaf_good(f, t, l[i], ctx->filt)) { l[i] = -1; continue; }
        fo[l[i] + 1]++;
        if (ng) {
#pragma omp atomic
            ng[i]++;
        }
    }
    for (size_t k = 0; k < nn; k++) fo[k + 1] += fo[k];
    /* every member in object order, using fo[k] as a cursor */
    for (size_t i = 0; i < n; i++)
        if (l[i] >= 0) full[fo[l[i]]++] = (uint32_t)i;
    for (size_t k = nn; k > 0; k--) fo[k] = fo[k - 1];
    fo[0] = 0;
    for (size_t k = 0; k < nn; k++) {
        uint32_t sz = fo[k + 1] - fo[k], *dst = mem + off[k];
        if (kept(sz, m->cap) != off[k + 1] - off[k]) continue;  /* not ctx's catalog: cannot happen */
        if (kept(sz, m->cap) == sz) {
            memcpy(dst, full + fo[k], sz * sizeof *dst);
            continue;
        }
        double step = (double)sz / m->cap, u = sample_start(t, (int32_t)k, step);
        for (int q = 0; q < m->cap; q++) dst[q] = full[fo[k] + (uint32_t)(u + q * step)];
    }
}

/* Each tree of [t0, t1) in turn, its leaves computed by every process for
 * its rows (ctx->own_rows) and gathered by the process that builds it. */
static int members_gathered(members *m, const rf_sim_ctx *ctx, fill_scratch *s, uint32_t *ng, const ody_comm *comm)
{
    const rf_forest *f = ctx->f;
    size_t lo, hi, R = (size_t)comm->size, nt = (size_t)(m->t1 - m->t0);
    ody_comm_part(comm, comm->rank, ctx->n, &lo, &hi);
    int32_t *own = malloc((hi - lo + 1) * sizeof *own);
    size_t *sizes = malloc(R * sizeof *sizes);
    ody_err e;
    int fail = ody_comm_agree(comm, own && sizes ? 0 : ODY_ENOMEM, &e) != 0;
    for (size_t b = 0; b < nt && !fail; b++) {
        int t = m->t0 + (int)b, builder = ody_part_of(nt, (int)R, b);
        enum { CH = 8192 };
#pragma omp parallel for schedule(dynamic, 1) num_threads(ody_threads(ctx->n_threads))
        for (size_t c0 = lo; c0 < hi; c0 += CH)
            tree_leaves(f, t, ctx_row(ctx, lo, c0), hi - c0 < CH ? hi - c0 : CH, own + (c0 - lo));
        fail = comm->gather(comm, own, (hi - lo) * sizeof *own, comm->rank == builder ? s->l : NULL, sizes, builder) != 0;
        if (!fail && comm->rank == builder) members_fill(m, ctx, t, (int)b, s, ng);
    }
    free(own);
    free(sizes);
    return fail;
}

/* Each leaf's kept members' offsets, from the leaf sizes every process
 * holds (ctx->leaf_n): no exchange. */
static int members_layout(members *m, const rf_sim_ctx *ctx)
{
    const rf_forest *f = ctx->f;
    int nt = m->t1 - m->t0;
    m->start = malloc(((size_t)nt + 1) * sizeof *m->start);
    m->base = malloc(((size_t)nt + 1) * sizeof *m->base);
    if (!m->start || !m->base) return -1;
    size_t tot = 0;
    for (int b = 0; b < nt; b++) {
        m->start[b] = tot;
        tot += f->tree_off[m->t0 + b + 1] - f->tree_off[m->t0 + b] + 1;
    }
    m->start[nt] = tot;
    m->off = malloc(tot * sizeof *m->off);
    if (!m->off) return -1;
    m->base[0] = 0;
    for (int b = 0; b < nt; b++) {
        size_t t0 = f->tree_off[m->t0 + b], nn = f->tree_off[m->t0 + b + 1] - t0;
        uint32_t *off = m->off + m->start[b];
        off[0] = 0;
        for (size_t k = 0; k < nn; k++) off[k + 1] = off[k] + kept(ctx->leaf_n[t0 + k], m->cap);
        m->base[b + 1] = m->base[b] + off[nn];
    }
    return 0;
}

/* The lists' memory: with processes on one machine, one copy they all
 * read (each writing its trees'), so that they share the cache as threads
 * do; else each its own.  Every process together; 0 or -1 on every one. */
static int members_alloc(members *m, const ody_comm *comm)
{
    size_t bytes = (m->base[m->t1 - m->t0] + 1) * sizeof *m->mem;
    m->comm = comm;
    if (ody_comm_size(comm) > 1 && comm->shared_alloc) m->mem = comm->shared_alloc(comm, bytes, &m->win);
    if (!m->win) m->mem = malloc(bytes);
    ody_err e;
    return ody_comm_agree(comm, m->mem ? 0 : ODY_ENOMEM, &e) ? -1 : 0;
}

/* With comm, every process builds the lists of a block of the trees and
 * shares them.  A tree's lists depend on the tree and the catalog alone, so
 * who builds them changes no byte.  With ng, *ng gets (malloc'd, the
 * caller frees it) each object's count of good leaves over the trees.  0,
 * or -1 when out of memory (on every process alike with comm: the
 * processes agree), nothing then allocated. */
static int members_build(members *m, const rf_sim_ctx *ctx, int t0, int t1, int cap, uint32_t **ngp,
                         const ody_comm *comm)
{
    uint32_t *ng = ngp ? calloc(ctx->n ? ctx->n : 1, sizeof *ng) : NULL;
    const rf_forest *f = ctx->f;
    size_t n = ctx->n, maxnn = 0;
    int nt = t1 - t0, R = ody_comm_size(comm);
    memset(m, 0, sizeof *m);
    m->t0 = t0;
    m->t1 = t1;
    m->cap = cap;
    for (int t = t0; t < t1; t++)
        if (f->tree_off[t + 1] - f->tree_off[t] > maxnn) maxnn = f->tree_off[t + 1] - f->tree_off[t];
    size_t *sh = malloc(((size_t)R + 1) * sizeof *sh), b0, b1;
    ody_err e;
    int fail = ody_comm_agree(comm, members_layout(m, ctx) || !sh || (ngp && !ng) ? ODY_ENOMEM : 0, &e) != 0 ||
               members_alloc(m, comm) != 0;
    ody_comm_part(comm, ody_comm_rank(comm), (size_t)nt, &b0, &b1);
    if (!fail && !ctx->own_rows) {
#pragma omp parallel num_threads(ody_threads(ctx->n_threads))
    {
        fill_scratch s;
        int ok = scratch_init(&s, n, maxnn) == 0;
        if (!ok) {
#pragma omp atomic write
            fail = 1;
        }
#pragma omp for schedule(dynamic, 1)
        for (size_t b = b0; b < b1; b++)
            if (ok) {
                tree_leaves(f, t0 + (int)b, ctx->X, n, s.l);
                members_fill(m, ctx, t0 + (int)b, (int)b, &s, ng);
            }
        scratch_done(&s);
    }
    }
    fail = ody_comm_agree(comm, fail ? ODY_ENOMEM : 0, &e) != 0;
    if (!fail && ctx->own_rows && R > 1) {  /* one scratch set: the trees go one at a time */
        fill_scratch s;
        fail = ody_comm_agree(comm, scratch_init(&s, n, maxnn) ? ODY_ENOMEM : 0, &e) != 0 ||
               members_gathered(m, ctx, &s, ng, comm);
        scratch_done(&s);
    }
    if (!fail && R > 1 && m->win) fail = comm->shared_sync(comm, m->win) != 0;
    if (!fail && R > 1 && !m->win) {
        for (int p = 0; p < R; p++) {  /* process p's trees' members */
            ody_comm_part(comm, p, (size_t)nt, &b0, &b1);
            sh[p] = m->base[b0] * sizeof *m->mem;
        }
        sh[R] = m->base[nt] * sizeof *m->mem;
        fail = ody_share(comm, m->mem, sh, &e) != 0;
    }
    if (!fail && R > 1 && ng) fail = ody_allreduce(comm, ng, n, ODY_SUM_U32, &e) != 0;
    free(sh);
    if (fail) { members_free(m); free(ng); return -1; }
    if (ngp) *ngp = ng;
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
        const uint32_t *mem = m->mem + m->base[b];
        uint32_t lo = off[k], sz = ctx->leaf_n[f->tree_off[t] + (size_t)k];
        if (kept(sz, cap) == sz) {
            for (uint32_t q = lo; q < lo + sz; q++) {
                uint32_t j = mem[q];
                if (a->cnt[j] == 0) a->touched[a->nt++] = j;
                a->cnt[j] += 1;
            }
            continue;
        }
        double w = (double)sz / cap;  /* the sample members_tree kept, in its order */
        for (int q = 0; q < cap; q++) {
            uint32_t j = mem[lo + (uint32_t)q];
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
    /* n_good over the trees used alone, so sim stays count / n_good in [0, 1]; and every
     * object's when the ctx holds this process's alone */
    uint32_t *ng_own = NULL;
    double t0 = omp_get_wtime();
    int count = Ts < ctx->f->n_trees || ctx->own_rows;
    int fail = members_build(&m, ctx, 0, Ts, o->leaf_sample, count ? &ng_own : NULL, Q ? NULL : ctx->comm) != 0;
    if (!fail)
        ody_logf(ctx->log, ODY_LOG_DEBUG, "similarity: leaf lists of %d trees, %.1f MB%s, in %.2f s", Ts,
                 (double)m.base[Ts] * sizeof *m.mem / 1e6, m.win ? " shared by the processes" : "", omp_get_wtime() - t0);
    if (trees_used) *trees_used = Ts;
    const uint32_t *ng = count ? ng_own : ctx->n_good;
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
                topk_row(ctx, &m, ng, o->leaf_sample, Q ? Q + i * F : ctx_row(ctx, lo, i), Q ? -1 : (long)i, k, &a,
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
    if (ctx->own_rows)
        return ody_fail(err, ODY_EINTERNAL, "dense similarity: the catalog is spread over processes");
    members m;
    if (members_build(&m, ctx, 0, f->n_trees, 0, NULL, NULL))
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
