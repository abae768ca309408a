/* knn.c — a k-d tree, exact k-nearest-neighbour lists, and the local
 * outlier factor. */
#include "knn.h"

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
    int32_t *row;         /* the original row of each stored point */
    kd_node *node;
    size_t n_node, cap_node;
};

/* ================================================================ standardising */

void knn_standardize(const float *X, size_t n, int F, float *Z)
{
    for (int f = 0; f < F; f++) {
        double s = 0, ss = 0;
        for (size_t i = 0; i < n; i++) s += X[i * (size_t)F + f];
        double mu = n ? s / (double)n : 0;
        for (size_t i = 0; i < n; i++) {
            double e = X[i * (size_t)F + f] - mu;
            ss += e * e;
        }
        double sd = n ? sqrt(ss / (double)n) : 0;
        for (size_t i = 0; i < n; i++)
            Z[i * (size_t)F + f] = sd > 0 ? (float)((X[i * (size_t)F + f] - mu) / sd) : 0.0f;
    }
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
    free(t->node);
    free(t);
}

int knn_build(const float *X, size_t n, int d, knn_tree **out, ody_err *err)
{
    if (n < 1 || n > INT32_MAX || d < 1) return ody_fail(err, ODY_EINPUT, "neighbours: %zu rows of %d features", n, d);
    knn_tree *t = calloc(1, sizeof *t);
    int32_t *perm = malloc(n * sizeof *perm);
    if (!t || !perm) { free(perm); knn_destroy(t); return ody_fail(err, ODY_ENOMEM, "neighbours: out of memory"); }
    t->n = n;
    t->d = d;
    for (size_t i = 0; i < n; i++) perm[i] = (int32_t)i;
    int32_t root = add_node(t, 0, (uint32_t)n);
    int rc = root < 0 || split(t, X, perm, root);
    t->pts = rc ? NULL : malloc(n * (size_t)d * sizeof *t->pts);
    if (!rc && t->pts) {
        for (size_t q = 0; q < n; q++) memcpy(t->pts + q * (size_t)d, X + (size_t)perm[q] * d, (size_t)d * sizeof *X);
        t->row = perm;
        *out = t;
        return 0;
    }
    free(perm);
    knn_destroy(t);
    return ody_fail(err, ODY_ENOMEM, "neighbours: out of memory for the tree of %zu rows", n);
}

/* ================================================================ searching */

/* The k best so far: a max-heap by (distance, row), the worst on top. */
typedef struct heap {
    double *d;
    int32_t *r;
    int n, k;
} heap;

static int worse(double da, int32_t ra, double db, int32_t rb) { return da > db || (da == db && ra > rb); }

static void heap_offer(heap *h, double d, int32_t r)
{
    if (h->n == h->k) {
        if (!worse(h->d[0], h->r[0], d, r)) return;
        int i = 0;  /* replace the top and sift down */
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
            const float *x = t->pts + (size_t)p * t->d;
            double s = 0;
            for (int j = 0; j < t->d; j++) {
                double e = (double)x[j] - q[j];
                s += e * e;
            }
            heap_offer(h, s, t->row[p]);
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

/* Pops the heap into idx / dist, nearest first. */
static void drain(heap *h, int32_t *idx, float *dist)
{
    for (int m = h->n - 1; m >= 0; m--) {
        idx[m] = h->r[0];
        dist[m] = (float)sqrt(h->d[0]);
        double d = h->d[h->n - 1];
        int32_t r = h->r[h->n - 1];
        h->n--;
        int i = 0;
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
}

/* m queries: the rows Q, or when Q is NULL every row of the tree (each
 * excluding itself), taken in the tree's leaf order for locality. */
static int queries(const knn_tree *t, const float *Q, size_t m, int k, int n_threads, int32_t *idx, float *dist,
                   ody_err *err)
{
    if (k < 1 || (!Q && (size_t)k >= t->n) || (Q && (size_t)k > t->n))
        return ody_fail(err, ODY_EINPUT, "neighbours: k = %d must be 1 to %zu", k, Q ? t->n : t->n - 1);
    int fail = 0;
#pragma omp parallel num_threads(ody_threads(n_threads))
    {
        heap h = {malloc((size_t)k * sizeof(double)), malloc((size_t)k * sizeof(int32_t)), 0, k};
        double *off = calloc((size_t)t->d, sizeof *off);
        int ok = h.d && h.r && off;
        if (!ok) {
#pragma omp atomic write
            fail = 1;
        }
#pragma omp for schedule(dynamic, 256)
        for (size_t i = 0; i < m; i++) {
            if (!ok) continue;
            const float *q = Q ? Q + i * (size_t)t->d : t->pts + i * (size_t)t->d;
            int32_t self = Q ? -1 : t->row[i];
            size_t out = Q ? i : (size_t)t->row[i];
            h.n = 0;
            search(t, 0, q, self, &h, 0, off);
            drain(&h, idx + out * (size_t)k, dist + out * (size_t)k);
        }
        free(h.d);
        free(h.r);
        free(off);
    }
    return fail ? ody_fail(err, ODY_ENOMEM, "neighbours: out of memory") : 0;
}

int knn_all(const knn_tree *t, int k, int n_threads, int32_t *idx, float *dist, ody_err *err)
{
    return queries(t, NULL, t->n, k, n_threads, idx, dist, err);
}

int knn_query(const knn_tree *t, const float *Q, size_t m, int k, int n_threads, int32_t *idx, float *dist,
              ody_err *err)
{
    return queries(t, Q, m, k, n_threads, idx, dist, err);
}

/* ================================================================ LOF */

static int cmp_float(const void *a, const void *b)
{
    float x = *(const float *)a, y = *(const float *)b;
    return (x > y) - (x < y);
}

void knn_lof(size_t n, int width, int k, const int32_t *idx, const float *dist, double *lof)
{
    /* k-distance of every row, and the floor for duplicates */
    float *kd = malloc((n ? n : 1) * sizeof *kd), *tmp = malloc((n ? n : 1) * sizeof *tmp);
    double *lrd = malloc((n ? n : 1) * sizeof *lrd);
    if (!kd || !tmp || !lrd) {
        for (size_t i = 0; i < n; i++) lof[i] = NAN;
        free(kd); free(tmp); free(lrd);
        return;
    }
    for (size_t i = 0; i < n; i++) kd[i] = tmp[i] = dist[i * (size_t)width + (size_t)(k - 1)];
    qsort(tmp, n, sizeof *tmp, cmp_float);
    double floor_ = 1e-6 * (n ? tmp[n / 2] : 0) + 1e-30;
    for (size_t i = 0; i < n; i++) {
        double s = 0;
        for (int q = 0; q < k; q++) {
            int32_t o = idx[i * (size_t)width + (size_t)q];
            double rd = dist[i * (size_t)width + (size_t)q];
            if (kd[o] > rd) rd = kd[o];
            s += rd > floor_ ? rd : floor_;
        }
        lrd[i] = (double)k / s;
    }
    for (size_t i = 0; i < n; i++) {
        double s = 0;
        for (int q = 0; q < k; q++) s += lrd[idx[i * (size_t)width + (size_t)q]];
        lof[i] = s / ((double)k * lrd[i]);
    }
    free(kd);
    free(tmp);
    free(lrd);
}
