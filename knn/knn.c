/* knn.c — a k-d tree, exact k-nearest-neighbour lists (by the tree or by a
 * BLAS-filtered scan); the local outlier factor is knn_lof.c's. */
#include "knn.h"

#include <gsl/gsl_cblas.h>  /* the CBLAS ABI; symbols resolve to OpenBLAS */
#include <math.h>
#include <stdlib.h>
#include <string.h>

typedef struct kd_node {
    int32_t dim;          /* -1 for a leaf */
    float split;          /* left rows have coordinate <= split, right rows >= split */
    int32_t left, right;  /* children */
    uint32_t start, end;  /* rows [start, end) in leaf order */
} kd_node;

struct knn_tree {
    size_t n;
    int d;
    float *pts;           /* n x d, in leaf order */
    int32_t *row;         /* the row of X each stored point is (its label) */
    float *norm2;         /* squared norm of each stored point, for the scan */
    double max_norm;      /* the largest norm */
    kd_node *node;
    size_t n_node, cap_node;
};

/* ================================================================ standardising */

void knn_scale_free(knn_scale *s)
{
    free(s->mean);
    free(s->sd);
    memset(s, 0, sizeof *s);
}

/* Rows outer, features inner: each column's sums still run in row order. */
int knn_scale_fit(knn_scale *s, const float *X, size_t n, int F)
{
    s->F = F;
    s->mean = calloc((size_t)F + 1, sizeof *s->mean);
    s->sd = calloc((size_t)F + 1, sizeof *s->sd);
    if (!s->mean || !s->sd) { knn_scale_free(s); return -1; }
    for (size_t i = 0; i < n; i++)
        for (int f = 0; f < F; f++) s->mean[f] += X[i * (size_t)F + f];
    for (int f = 0; f < F; f++) s->mean[f] = n ? s->mean[f] / (double)n : 0;
    for (size_t i = 0; i < n; i++)
        for (int f = 0; f < F; f++) {
            double e = X[i * (size_t)F + f] - s->mean[f];
            s->sd[f] += e * e;
        }
    for (int f = 0; f < F; f++) s->sd[f] = n ? sqrt(s->sd[f] / (double)n) : 0;
    return 0;
}

void knn_scale_rows(const knn_scale *s, const float *X, size_t n, float *Z)
{
    for (size_t i = 0; i < n; i++)
        for (int f = 0; f < s->F; f++) Z[i * (size_t)s->F + f] = knn_z(s, X[i * (size_t)s->F + f], f);
}

int knn_standardize(const float *X, size_t n, int F, float *Z)
{
    knn_scale s;
    if (knn_scale_fit(&s, X, n, F)) return -1;
    knn_scale_rows(&s, X, n, Z);
    knn_scale_free(&s);
    return 0;
}

/* ================================================================ building */

/* Order of rows a and b on dimension dim: coordinate, then row. */
static int before(const float *X, int d, int dim, int32_t a, int32_t b)
{
    float x = X[(size_t)a * d + dim], y = X[(size_t)b * d + dim];
    return x < y || (x == y && a < b);
}

/* Puts the k-th smallest (by `before`) of perm[0..n) at k, smaller ones
 * before it and larger after (Hoare's selection, median-of-three pivot). */
static void select_kth(const float *X, int d, int dim, int32_t *perm, size_t n, size_t k)
{
    size_t lo = 0, hi = n - 1;
    while (lo < hi) {
        size_t mid = lo + (hi - lo) / 2;
        int32_t a = perm[lo], b = perm[mid], c = perm[hi], p;
        if (before(X, d, dim, a, b)) p = before(X, d, dim, b, c) ? b : before(X, d, dim, a, c) ? c : a;
        else p = before(X, d, dim, a, c) ? a : before(X, d, dim, b, c) ? c : b;
        size_t i = lo, j = hi;
        for (;;) {
            while (before(X, d, dim, perm[i], p)) i++;
            while (before(X, d, dim, p, perm[j])) j--;
            if (i >= j) break;
            int32_t t = perm[i]; perm[i] = perm[j]; perm[j] = t;
            i++;
            j--;
        }
        if (k <= j) hi = j;
        else lo = j + 1;
    }
}

static int32_t add_node(knn_tree *t, uint32_t start, uint32_t end)
{
    if (t->n_node == t->cap_node) {
        size_t cap = t->cap_node ? 2 * t->cap_node : 256;
        kd_node *nn = realloc(t->node, cap * sizeof *nn);
        if (!nn) return -1;
        t->node = nn;
        t->cap_node = cap;
    }
    t->node[t->n_node] = (kd_node){-1, 0, -1, -1, start, end};
    return (int32_t)t->n_node++;
}

/* The dimension of largest spread over perm[start, end); -1 if none. */
static int widest(const float *X, int d, const int32_t *perm, uint32_t start, uint32_t end)
{
    int best = -1;
    float bw = 0;
    for (int j = 0; j < d; j++) {
        float lo = X[(size_t)perm[start] * d + j], hi = lo;
        for (uint32_t q = start + 1; q < end; q++) {
            float v = X[(size_t)perm[q] * d + j];
            if (v < lo) lo = v;
            if (v > hi) hi = v;
        }
        if (hi - lo > bw) { bw = hi - lo; best = j; }
    }
    return best;
}

/* Splits node id (and its subtree) until leaves hold at most KNN_LEAF rows. */
static int split(knn_tree *t, const float *X, int32_t *perm, int32_t id)
{
    uint32_t start = t->node[id].start, end = t->node[id].end;
    if (end - start <= KNN_LEAF) return 0;
    int dim = widest(X, t->d, perm, start, end);
    if (dim < 0) return 0;  /* identical rows: one leaf */
    uint32_t mid = start + (end - start) / 2;
    select_kth(X, t->d, dim, perm + start, end - start, mid - start);
    int32_t l = add_node(t, start, mid), r = add_node(t, mid, end);
    if (l < 0 || r < 0) return -1;
    t->node[id].dim = dim;
    t->node[id].split = X[(size_t)perm[mid] * t->d + dim];
    t->node[id].left = l;
    t->node[id].right = r;
    return split(t, X, perm, l) || split(t, X, perm, r) ? -1 : 0;
}

void knn_destroy(knn_tree *t)
{
    if (!t) return;
    free(t->pts);
    free(t->row);
    free(t->norm2);
    free(t->node);
    free(t);
}

/* The stored points in leaf order, their labels and norms. */
static int store_points(knn_tree *t, const float *Xr, int32_t *perm, const int32_t *ref)
{
    size_t n = t->n, d = (size_t)t->d;
    t->pts = malloc(n * d * sizeof *t->pts);
    t->norm2 = malloc(n * sizeof *t->norm2);
    if (!t->pts || !t->norm2) return -1;
    double mx = 0;
    for (size_t q = 0; q < n; q++) {
        const float *x = Xr + (size_t)perm[q] * d;
        memcpy(t->pts + q * d, x, d * sizeof *x);
        double s = 0;
        for (size_t j = 0; j < d; j++) s += (double)x[j] * x[j];
        t->norm2[q] = (float)s;
        if (s > mx) mx = s;
        if (ref) perm[q] = ref[perm[q]];
    }
    t->max_norm = sqrt(mx);
    t->row = perm;
    return 0;
}

int knn_build(const float *X, size_t n, int d, const int32_t *ref, size_t m, knn_tree **out, ody_err *err)
{
    if (!ref) m = n;
    if (m < 1 || n > INT32_MAX || d < 1) return ody_fail(err, ODY_EINPUT, "neighbours: %zu rows of %d features", m, d);
    for (size_t q = 0; ref && q < m; q++)
        if (ref[q] < 0 || (size_t)ref[q] >= n || (q && ref[q] <= ref[q - 1]))
            return ody_fail(err, ODY_EINPUT, "neighbours: reference rows must increase within 0..%zu", n - 1);
    knn_tree *t = calloc(1, sizeof *t);
    int32_t *perm = malloc(m * sizeof *perm);
    float *Xr = ref ? malloc(m * (size_t)d * sizeof *Xr) : NULL;
    if (!t || !perm || (ref && !Xr)) {
        free(perm); free(Xr); knn_destroy(t);
        return ody_fail(err, ODY_ENOMEM, "neighbours: out of memory");
    }
    for (size_t q = 0; ref && q < m; q++) memcpy(Xr + q * (size_t)d, X + (size_t)ref[q] * d, (size_t)d * sizeof *X);
    const float *P = ref ? Xr : X;
    t->n = m;
    t->d = d;
    for (size_t i = 0; i < m; i++) perm[i] = (int32_t)i;
    int32_t root = add_node(t, 0, (uint32_t)m);
    int rc = root < 0 || split(t, P, perm, root) || store_points(t, P, perm, ref);
    free(Xr);
    if (!rc) {
        *out = t;
        return 0;
    }
    if (!t->row) free(perm);
    knn_destroy(t);
    return ody_fail(err, ODY_ENOMEM, "neighbours: out of memory for the index of %zu rows", m);
}

size_t knn_size(const knn_tree *t) { return t->n; }

/* ================================================================ searching */

/* The k best so far: a max-heap by (distance, row), the worst on top. */
typedef struct heap {
    double *d;
    int32_t *r;
    int n, k;
    size_t evals;         /* exact distances computed (the auto choice counts them) */
} heap;

static int worse(double da, int32_t ra, double db, int32_t rb) { return da > db || (da == db && ra > rb); }

static void sift_down(heap *h, int i, double d, int32_t r)
{
    for (;;) {
        int c = 2 * i + 1;
        if (c >= h->n) break;
        if (c + 1 < h->n && worse(h->d[c + 1], h->r[c + 1], h->d[c], h->r[c])) c++;
        if (!worse(h->d[c], h->r[c], d, r)) break;
        h->d[i] = h->d[c];
        h->r[i] = h->r[c];
        i = c;
    }
    h->d[i] = d;
    h->r[i] = r;
}

static void heap_offer(heap *h, double d, int32_t r)
{
    if (h->n == h->k) {
        if (worse(h->d[0], h->r[0], d, r)) sift_down(h, 0, d, r);
        return;
    }
    int i = h->n++;
    while (i > 0 && worse(d, r, h->d[(i - 1) / 2], h->r[(i - 1) / 2])) {
        h->d[i] = h->d[(i - 1) / 2];
        h->r[i] = h->r[(i - 1) / 2];
        i = (i - 1) / 2;
    }
    h->d[i] = d;
    h->r[i] = r;
}

/* Pops the heap into idx / dist, nearest first. */
static void drain(heap *h, int32_t *idx, float *dist)
{
    for (int m = h->n - 1; m >= 0; m--) {
        idx[m] = h->r[0];
        dist[m] = (float)sqrt(h->d[0]);
        h->n--;
        if (h->n > 0) sift_down(h, 0, h->d[h->n], h->r[h->n]);
    }
}

/* The one exact squared distance both searches use, so that the tree and
 * the scan give bit-identical lists. */
static double dist2(const float *x, const float *q, int d)
{
    double s = 0;
    for (int j = 0; j < d; j++) {
        double e = (double)x[j] - q[j];
        s += e * e;
    }
    return s;
}

/* Descends from node id.  rd is the squared distance from q to the node's
 * cell, from the per-dimension offsets off[] (Arya & Mount's incremental
 * distance): a far child is visited only when its cell can still hold a
 * row as near as the k-th best, ties included. */
static void search(const knn_tree *t, int32_t id, const float *q, int32_t self, heap *h, double rd, double *off)
{
    const kd_node *nd = &t->node[id];
    if (nd->dim < 0) {
        for (uint32_t p = nd->start; p < nd->end; p++) {
            if (t->row[p] == self) continue;
            h->evals++;
            heap_offer(h, dist2(t->pts + (size_t)p * t->d, q, t->d), t->row[p]);
        }
        return;
    }
    double diff = (double)q[nd->dim] - nd->split;
    int32_t near = diff <= 0 ? nd->left : nd->right, far = diff <= 0 ? nd->right : nd->left;
    search(t, near, q, self, h, rd, off);
    double old = off[nd->dim], frd = rd - old * old + diff * diff;
    if (h->n < h->k || frd <= h->d[0]) {
        off[nd->dim] = diff;
        search(t, far, q, self, h, frd, off);
        off[nd->dim] = old;
    }
}

/* A query batch: rows Q (m x d), query i labelled i; with `self`, the
 * stored point labelled i is not a neighbour of query i, or with excl the
 * one labelled excl[i] (-1: none). */
typedef struct batch {
    const knn_tree *t;
    const float *Q;
    size_t m;
    int k, self;
    int32_t *idx;
    float *dist;
    size_t lo, hi;        /* the rows this process searches */
    const int32_t *excl;
    size_t out0;          /* the row whose lists go to idx[0], dist[0] */
} batch;

/* The label query i may not take. */
static int32_t self_of(const batch *b, size_t i)
{
    return b->excl ? b->excl[i] : b->self ? (int32_t)i : -1;
}

static void tree_one(const batch *b, size_t i, heap *h, double *off)
{
    h->n = 0;
    memset(off, 0, (size_t)b->t->d * sizeof *off);
    search(b->t, 0, b->Q + i * (size_t)b->t->d, self_of(b, i), h, 0, off);
}

/* ================================================================ the scan
 *
 * When the tree would visit most of the points (high intrinsic dimension),
 * a block of KNN_QB queries meets a chunk of KNN_PB points through one
 * sgemm: |q|^2 + |p|^2 - 2 q.p approximates each squared distance, and only
 * points whose approximation, less a bound on its rounding error, does not
 * exceed the k-th best so far get the exact dist2().  The bound (for float
 * dot products of length d in any summation order, with the norms and the
 * two additions) is 2 (d + 4) 2^-24 (|q| + max|p|)^2, so the filter never
 * drops a point the exact search would keep: the lists are the tree's. */

#define KNN_QB 64
#define KNN_PB 2048
#define KNN_CAND 256

/* Seeds query q's heap with the points of the smallest subtree on its
 * path that holds more than k of them: a tight k-th distance before the
 * scan starts, so the bound filters from the first chunk.  Returns the
 * subtree's range of positions, which the scan then skips. */
static void seed(const knn_tree *t, const float *q, int32_t self, heap *h, uint32_t *s0, uint32_t *e0)
{
    int32_t id = 0;
    while (t->node[id].dim >= 0) {
        const kd_node *nd = &t->node[id];
        int32_t c = (double)q[nd->dim] - nd->split <= 0 ? nd->left : nd->right;
        if (t->node[c].end - t->node[c].start <= (uint32_t)h->k + 1) break;
        id = c;
    }
    *s0 = t->node[id].start;
    *e0 = t->node[id].end;
    for (uint32_t p = *s0; p < *e0; p++)
        if (t->row[p] != self) {
            h->evals++;
            heap_offer(h, dist2(t->pts + (size_t)p * t->d, q, t->d), t->row[p]);
        }
}

typedef float v4f __attribute__((vector_size(16)));
typedef int v4i __attribute__((vector_size(16)));

/* Whether any of the 16 values x[j] + y[j] is <= thr (four SSE compares). */
static int any16(const float *x, const float *y, float thr)
{
    v4f t = {thr, thr, thr, thr};
    v4i m = {0, 0, 0, 0};
    for (int j = 0; j < 16; j += 4) {
        v4f a, b;
        memcpy(&a, x + j, sizeof a);
        memcpy(&b, y + j, sizeof b);
        m |= a + b <= t;
    }
    return (m[0] | m[1] | m[2] | m[3]) != 0;
}

/* Offers query a the points of one chunk that pass the bound; thr is its
 * running bound, tightened as the heap improves. */
static void scan_chunk(const knn_tree *t, const float *q, const float *g, const float *pn, size_t p0, size_t np,
                       int32_t self, uint32_t s0, uint32_t e0, heap *ha, double margin, float qn)
{
    uint16_t cand[KNN_CAND];
    float thr = ha->n == ha->k ? (float)(ha->d[0] + margin - qn) : INFINITY;
    for (size_t p1 = 0; p1 < np; p1 += KNN_CAND) {
        size_t e = np - p1 < KNN_CAND ? np - p1 : KNN_CAND, nc = 0;
        for (size_t p = p1; p < p1 + e; p += 16) {
            size_t pe = p + 16 < p1 + e ? p + 16 : p1 + e;
            if (pe - p == 16 && !any16(pn + p, g + p, thr)) continue;  /* most blocks of 16 */
            for (size_t c = p; c < pe; c++) {  /* branch-free compaction */
                cand[nc] = (uint16_t)c;
                nc += pn[c] + g[c] <= thr;
            }
        }
        for (size_t c = 0; c < nc; c++) {
            size_t p = cand[c], at = p0 + p;
            if (pn[p] + g[p] > thr || t->row[at] == self || (at >= s0 && at < e0)) continue;
            ha->evals++;
            heap_offer(ha, dist2(t->pts + at * (size_t)t->d, q, t->d), t->row[at]);
            if (ha->n == ha->k) thr = (float)(ha->d[0] + margin - qn);
        }
    }
}

static void scan_block(const batch *b, size_t i0, size_t nb, heap *h, float *G, float *qn)
{
    const knn_tree *t = b->t;
    size_t d = (size_t)t->d;
    const float *Qb = b->Q + i0 * d;
    double margin[KNN_QB];
    uint32_t s0[KNN_QB], e0[KNN_QB];
    for (size_t a = 0; a < nb; a++) {
        double s = 0;
        for (size_t j = 0; j < d; j++) s += (double)Qb[a * d + j] * Qb[a * d + j];
        qn[a] = (float)s;  /* only in the bound; its rounding is in the margin */
        double r = sqrt(s) + t->max_norm;
        margin[a] = 2.0 * ((double)d + 4) * 0x1p-24 * r * r;
        h[a].n = 0;
        seed(t, Qb + a * d, self_of(b, i0 + a), &h[a], &s0[a], &e0[a]);
    }
    for (size_t p0 = 0; p0 < t->n; p0 += KNN_PB) {
        size_t np = t->n - p0 < KNN_PB ? t->n - p0 : KNN_PB;
        cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasTrans, (int)nb, (int)np, (int)d, -2.0f, Qb, (int)d,
                    t->pts + p0 * d, (int)d, 0.0f, G, (int)np);
        /* skip p when |p|^2 - 2 q.p > kth + margin - |q|^2: one float
         * compare per point (the margin covers this rounding too) */
        for (size_t a = 0; a < nb; a++)
            scan_chunk(t, Qb + a * d, G + a * np, t->norm2 + p0, p0, np, self_of(b, i0 + a), s0[a],
                       e0[a], &h[a], margin[a], qn[a]);
    }
}

/* ================================================================ dispatch */

/* Each thread's heaps (KNN_QB of them) and buffers. */
typedef struct scratch {
    heap h[KNN_QB];
    double *hd;
    int32_t *hr;
    double *off;
    float *G, *qn;
} scratch;

static void scratch_free(scratch *s)
{
    free(s->hd); free(s->hr); free(s->off); free(s->G); free(s->qn);
}

static int scratch_init(scratch *s, const knn_tree *t, int k, int scan)
{
    memset(s, 0, sizeof *s);
    s->hd = malloc(KNN_QB * (size_t)k * sizeof *s->hd);
    s->hr = malloc(KNN_QB * (size_t)k * sizeof *s->hr);
    s->off = calloc((size_t)t->d, sizeof *s->off);
    s->G = scan ? malloc((size_t)KNN_QB * KNN_PB * sizeof *s->G) : NULL;
    s->qn = malloc(KNN_QB * sizeof *s->qn);
    for (int a = 0; a < KNN_QB; a++)
        s->h[a] = (heap){s->hd ? s->hd + (size_t)a * k : NULL, s->hr ? s->hr + (size_t)a * k : NULL, 0, k, 0};
    return s->hd && s->hr && s->off && s->qn && (!scan || s->G) ? 0 : -1;
}

/* Mean exact distances per query the tree needs, over up to 256 queries
 * spread through the batch: the data's intrinsic dimension, measured. */
static double tree_cost(const batch *b, scratch *s)
{
    size_t np = b->m < 256 ? b->m : 256;
    s->h[0].evals = 0;
    for (size_t j = 0; j < np; j++) tree_one(b, j * b->m / np, &s->h[0], s->off);
    return (double)s->h[0].evals / (double)np;
}

static int run_batch(batch *b, const knn_opt *o, knn_method *used, ody_err *err)
{
    const knn_tree *t = b->t;
    if (b->k < 1 || (size_t)b->k > t->n - (b->self && t->n > 0 ? 1 : 0) || b->k > KNN_K_MAX)
        return ody_fail(err, ODY_EINPUT, "neighbours: k = %d must be 1 to %zu", b->k,
                        t->n - (b->self ? 1 : 0) < KNN_K_MAX ? t->n - (b->self ? 1 : 0) : (size_t)KNN_K_MAX);
    knn_method how = o->method;
    if (how == KNN_AUTO) {
        scratch s;
        int rc = scratch_init(&s, t, b->k, 0);
        /* a point the tree visits costs about ten times a scanned one (measured:
         * 17 ns against 1.5-2 ns of thread time) */
        how = !rc && tree_cost(b, &s) * 8 <= (double)t->n ? KNN_TREE : KNN_SCAN;
        scratch_free(&s);
        if (rc) return ody_fail(err, ODY_ENOMEM, "neighbours: out of memory");
    }
    if (used) *used = how;
    int scan = how == KNN_SCAN, fail = 0, blas = scan ? ody_blas_single() : 1;
    size_t lo = b->lo, nq = b->hi - b->lo, nblk = (nq + KNN_QB - 1) / KNN_QB;
    /* every row in the tree: walk them (this process's) in leaf order,
     * neighbours in cache */
    const int32_t *order = !scan && b->self && !b->excl && t->n == b->m ? t->row : NULL;
    int32_t *own = order && nq < b->m ? malloc((nq ? nq : 1) * sizeof *own) : NULL;
    if (own) {
        size_t w = 0;
        for (size_t p = 0; p < t->n; p++)
            if ((size_t)t->row[p] >= lo && (size_t)t->row[p] < b->hi) own[w++] = t->row[p];
    }
    if (nq < b->m) order = own;  /* NULL when out of memory: row order */
#pragma omp parallel num_threads(ody_threads(o->n_threads))
    {
        scratch s;
        int ok = !scratch_init(&s, t, b->k, scan);
        if (!ok) {
#pragma omp atomic write
            fail = 1;
        }
#pragma omp for schedule(dynamic, 4)
        for (size_t blk = 0; blk < nblk; blk++) {
            if (!ok) continue;
            size_t r0 = blk * KNN_QB, nb = nq - r0 < KNN_QB ? nq - r0 : KNN_QB;
            if (scan) scan_block(b, lo + r0, nb, s.h, s.G, s.qn);
            for (size_t a = 0; a < nb; a++) {
                size_t i = order ? (size_t)order[r0 + a] : lo + r0 + a;
                if (!scan) tree_one(b, i, &s.h[a], s.off);
                drain(&s.h[a], b->idx + (i - b->out0) * (size_t)b->k, b->dist + (i - b->out0) * (size_t)b->k);
            }
        }
        scratch_free(&s);
    }
    if (scan) ody_blas_restore(blas);
    free(own);
    return fail ? ody_fail(err, ODY_ENOMEM, "neighbours: out of memory") : 0;
}

void knn_opt_init(knn_opt *o)
{
    o->k = 10;
    o->n_threads = 0;
    o->method = KNN_AUTO;
    o->comm = NULL;
}

int knn_all(const knn_tree *t, const float *X, size_t n, const knn_opt *o, int32_t *idx, float *dist,
            knn_method *used, ody_err *err)
{
    batch b = {t, X, n, o->k, 1, idx, dist, 0, n, NULL, 0};
    ody_comm_part(o->comm, ody_comm_rank(o->comm), n, &b.lo, &b.hi);
    b.out0 = b.lo;
    return ody_comm_agree(o->comm, run_batch(&b, o, used, err), err);
}

int knn_query(const knn_tree *t, const float *Q, size_t m, const knn_opt *o, int32_t *idx, float *dist,
              knn_method *used, ody_err *err)
{
    batch b = {t, Q, m, o->k, 0, idx, dist, 0, m, NULL, 0};
    return run_batch(&b, o, used, err);
}

int knn_query_excl(const knn_tree *t, const float *Q, size_t m, const int32_t *excl, const knn_opt *o, int32_t *idx,
                   float *dist, knn_method *used, ody_err *err)
{
    batch b = {t, Q, m, o->k, 1, idx, dist, 0, m, excl, 0};
    return run_batch(&b, o, used, err);
}
