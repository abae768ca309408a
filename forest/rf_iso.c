/* rf_iso.c — isolation forest (Liu, Ting & Zhou 2008) on the same flat node
 * arrays as the classification forest, and the default anomaly score.
 *
 * A leaf's cnt[2k] holds the number of subsample rows that reached it (for
 * the c(size) path-length correction); cnt[2k+1] is 0. */
#include <math.h>
#include <omp.h>
#include <stdlib.h>
#include <string.h>

#include "rf.h"

/* Average path length of an unsuccessful BST search among m points. */
static double c_factor(double m)
{
    if (m <= 1) return 0;
    if (m == 2) return 1;
    return 2.0 * (log(m - 1.0) + 0.5772156649015329) - 2.0 * (m - 1.0) / m;
}

typedef struct iso_task {
    uint32_t start, end;
    int32_t id, depth;
} iso_task;

/* One thread's scratch space for growing isolation trees. */
typedef struct iso_ws {
    uint32_t *s;          /* the subsample, partitioned in place */
    uint32_t *set;        /* open-addressing set of drawn rows */
    size_t setsz;
    int *ford;            /* feature order */
    iso_task *stack;
} iso_ws;

static int iso_ws_init(iso_ws *w, uint32_t psi, int F, int maxd)
{
    w->setsz = 16;
    while (w->setsz < 4 * (size_t)psi) w->setsz <<= 1;
    w->s = malloc(psi * sizeof *w->s);
    w->set = malloc(w->setsz * sizeof *w->set);
    w->ford = malloc((size_t)F * sizeof *w->ford);
    w->stack = malloc(((size_t)maxd + 2) * 2 * sizeof *w->stack);
    return w->s && w->set && w->ford && w->stack ? 0 : -1;
}

static void iso_ws_free(iso_ws *w)
{
    free(w->s);
    free(w->set);
    free(w->ford);
    free(w->stack);
}

/* psi rows without replacement (all of them when psi = n): rejection
 * against an open-addressing set of 4 x psi slots. */
static void iso_sample(ody_rng *r, size_t n, uint32_t psi, iso_ws *w)
{
    uint32_t m = 0;
    if (psi == n) {
        for (uint32_t k = 0; k < psi; k++) w->s[k] = k;
        return;
    }
    memset(w->set, 0xff, w->setsz * sizeof *w->set);
    while (m < psi) {
        uint32_t c = (uint32_t)ody_rng_below(r, n);
        size_t h = ((size_t)c * 0x9E3779B1u) & (w->setsz - 1);
        while (w->set[h] != UINT32_MAX && w->set[h] != c) h = (h + 1) & (w->setsz - 1);
        if (w->set[h] == c) continue;
        w->set[h] = c;
        w->s[m++] = c;
    }
}

/* A random feature with spread in rows s[start, end), drawn without
 * replacement so that a non-constant one is found whenever one exists;
 * -1 when all are constant.  Its range goes to lo, hi. */
static int iso_feature(ody_rng *r, const float *X, int F, const iso_task *k, iso_ws *w, float *lo, float *hi)
{
    for (int q = 0; q < F; q++) w->ford[q] = q;
    for (int tries = 0; tries < F; tries++) {
        int j = tries + (int)ody_rng_below(r, (unsigned long long)(F - tries));
        int fq = w->ford[j];
        w->ford[j] = w->ford[tries];
        w->ford[tries] = fq;
        *lo = *hi = X[(size_t)w->s[k->start] * F + fq];
        for (uint32_t q = k->start + 1; q < k->end; q++) {
            float v = X[(size_t)w->s[q] * F + fq];
            if (v < *lo) *lo = v;
            if (v > *hi) *hi = v;
        }
        if (*hi > *lo) return fq;
    }
    return -1;
}

/* The place of row c in the sorted list rows (it is there). */
static uint32_t row_place(const size_t *rows, size_t m, size_t c)
{
    size_t a = 0, b = m;
    while (a < b) {
        size_t mid = a + (b - a) / 2;
        if (rows[mid] < c) a = mid + 1;
        else b = mid;
    }
    return (uint32_t)a;
}

/* Grows tree t into nd / ct (room for `per` nodes); returns its node count. */
static size_t iso_grow(const rf_iso_opt *o, const float *X, size_t n, int F, uint32_t psi, int maxd, int t,
                       iso_ws *w, rf_node *nd, uint32_t *ct)
{
    ody_rng r;
    ody_rng_stream(&r, o->seed ^ 0x150150150ULL, (unsigned long long)t);
    iso_sample(&r, n, psi, w);
    if (o->rows)  /* X holds the drawn rows alone: their places there, in the same order */
        for (uint32_t k = 0; k < psi; k++) w->s[k] = row_place(o->rows, o->n_rows, w->s[k]);
    size_t nn = 1, top = 0;
    w->stack[top++] = (iso_task){0, psi, 0, 0};
    while (top) {
        iso_task k = w->stack[--top];
        uint32_t sz = k.end - k.start;
        nd[k.id] = (rf_node){0, -1, -1};
        ct[2 * k.id] = sz;
        ct[2 * k.id + 1] = 0;
        if (sz <= 1 || k.depth >= maxd) continue;
        float lo = 0, hi = 0;
        int f0 = iso_feature(&r, X, F, &k, w, &lo, &hi);
        if (f0 < 0) continue;
        float thr = (float)((double)lo + ((double)hi - (double)lo) * ody_rng_uniform(&r));
        if (thr >= hi) thr = lo;
        uint32_t a = k.start, b = k.end, *s = w->s;
        while (a < b) {
            if (X[(size_t)s[a] * F + f0] <= thr) a++;
            else { uint32_t tmp = s[a]; s[a] = s[--b]; s[b] = tmp; }
        }
        nd[k.id] = (rf_node){thr, f0, (int32_t)nn};
        w->stack[top++] = (iso_task){a, k.end, (int32_t)nn + 1, k.depth + 1};
        w->stack[top++] = (iso_task){k.start, a, (int32_t)nn, k.depth + 1};
        nn += 2;
    }
    return nn;
}

/* The grown trees (T x per slots, used[t] each) packed into f. */
static int iso_pack(rf_forest *f, const rf_node *node, const uint32_t *cnt, const size_t *used, size_t per)
{
    int T = f->n_trees;
    size_t total = 0, at = 0;
    for (int t = 0; t < T; t++) total += used[t];
    f->node = malloc((total ? total : 1) * sizeof *f->node);
    f->cnt = malloc(2 * (total ? total : 1) * sizeof *f->cnt);
    if (!f->node || !f->cnt) return -1;
    for (int t = 0; t < T; t++) {
        f->tree_off[t] = at;
        memcpy(f->node + at, node + (size_t)t * per, used[t] * sizeof *node);
        memcpy(f->cnt + 2 * at, cnt + 2 * (size_t)t * per, 2 * used[t] * sizeof *cnt);
        at += used[t];
    }
    f->tree_off[T] = at;
    return 0;
}

static rf_forest *iso_forest_new(const rf_iso_opt *o, size_t n, int F, uint32_t psi)
{
    rf_forest *f = calloc(1, sizeof *f);
    if (!f) return NULL;
    f->n_trees = o->n_trees;
    f->n_feat = F;
    rf_opt_init(&f->opt);
    f->opt.n_trees = o->n_trees;
    f->opt.seed = o->seed;
    f->opt.max_samples = psi;
    f->opt.bootstrap = 0;
    f->n_train = n;
    f->oob_accuracy = NAN;
    f->tree_off = malloc(((size_t)o->n_trees + 1) * sizeof *f->tree_off);
    if (!f->tree_off) { rf_destroy(f); return NULL; }
    return f;
}

int rf_iso_train(const rf_iso_opt *o, const float *X, size_t n, int F, rf_forest **out,
                 ody_err *err)
{
    if (o->n_trees < 1 || o->n_trees > 100000)
        return ody_fail(err, ODY_EINPUT, "isolation.n_trees = %d is out of range — use 1 to 100000", o->n_trees);
    if (o->max_samples < 2)
        return ody_fail(err, ODY_EINPUT, "isolation.max_samples = %zu must be at least 2", o->max_samples);
    if (n < 2) return ody_fail(err, ODY_EINPUT, "the isolation forest needs at least 2 rows");
    int T = o->n_trees, fail = 0;
    uint32_t psi = (uint32_t)(o->max_samples < n ? o->max_samples : n);
    int maxd = (int)ceil(log2((double)psi));
    /* A tree of depth maxd has at most 2^(maxd+1) - 1 nodes: allocate flat. */
    size_t per = ((size_t)2 << maxd) - 1;
    if (per > 2 * (size_t)psi) per = 2 * (size_t)psi;
    rf_forest *f = iso_forest_new(o, n, F, psi);
    rf_node *node = malloc((size_t)T * per * sizeof *node);
    uint32_t *cnt = malloc(2 * (size_t)T * per * sizeof *cnt);
    size_t *used = calloc((size_t)T, sizeof *used);
    fail = !f || !node || !cnt || !used;
    if (!fail) {
#pragma omp parallel num_threads(ody_threads(o->n_threads))
    {
        iso_ws w;
        int ok = iso_ws_init(&w, psi, F, maxd) == 0;
        if (!ok) {
#pragma omp atomic write
            fail = 1;
        }
#pragma omp for schedule(dynamic, 4)
        for (int t = 0; t < T; t++)
            if (ok) used[t] = iso_grow(o, X, n, F, psi, maxd, t, &w, node + (size_t)t * per, cnt + 2 * (size_t)t * per);
        iso_ws_free(&w);
    }
    }
    if (!fail) fail = iso_pack(f, node, cnt, used, per);
    free(node); free(cnt); free(used);
    if (fail) {
        rf_destroy(f);
        return ody_fail(err, ODY_ENOMEM, "isolation forest: out of memory");
    }
    *out = f;
    return 0;
}

static int cmp_size(const void *a, const void *b)
{
    size_t x = *(const size_t *)a, y = *(const size_t *)b;
    return (x > y) - (x < y);
}

int rf_iso_rows(const rf_iso_opt *o, size_t n, size_t **rows, size_t *m, ody_err *err)
{
    *rows = NULL;
    *m = 0;
    if (o->n_trees < 1 || o->max_samples < 2 || n < 2) return 0;  /* rf_iso_train says what is wrong */
    uint32_t psi = (uint32_t)(o->max_samples < n ? o->max_samples : n);
    size_t T = (size_t)o->n_trees, all = T * psi;
    size_t *v = malloc(all * sizeof *v);
    iso_ws w;
    int ok = v && iso_ws_init(&w, psi, 1, 1) == 0;
    for (size_t t = 0; ok && t < T; t++) {  /* each tree's draws, as iso_grow makes them */
        ody_rng r;
        ody_rng_stream(&r, o->seed ^ 0x150150150ULL, (unsigned long long)t);
        iso_sample(&r, n, psi, &w);
        for (uint32_t k = 0; k < psi; k++) v[t * psi + k] = w.s[k];
    }
    if (v) iso_ws_free(&w);
    if (!ok) {
        free(v);
        return ody_fail(err, ODY_ENOMEM, "isolation forest: out of memory");
    }
    qsort(v, all, sizeof *v, cmp_size);
    size_t u = 0;
    for (size_t k = 0; k < all; k++)
        if (!u || v[k] != v[u - 1]) v[u++] = v[k];
    *rows = v;
    *m = u;
    return 0;
}

void rf_iso_opt_init(rf_iso_opt *o)
{
    memset(o, 0, sizeof *o);
    o->n_trees = 500;
    o->max_samples = 256;
    o->seed = 1;
}

int rf_iso_score(const rf_forest *f, const float *X, size_t n, int n_threads, double *score, ody_err *err)
{
    double cn = c_factor((double)f->opt.max_samples);
    size_t nn = f->tree_off[f->n_trees];
    /* Path length of every leaf (depth + c(leaf size)), computed once. */
    double *plen = malloc((nn ? nn : 1) * sizeof *plen);
    if (!plen) return ody_fail(err, ODY_ENOMEM, "out of memory scoring the isolation forest");
    for (int t = 0; t < f->n_trees; t++) {
        const rf_node *nd = f->node + f->tree_off[t];
        double *pl = plen + f->tree_off[t];
        pl[0] = 0;  /* depth, for inner nodes; children follow their parent */
        size_t m = f->tree_off[t + 1] - f->tree_off[t];
        for (size_t k = 0; k < m; k++)
            if (nd[k].feat >= 0) pl[nd[k].left] = pl[nd[k].left + 1] = pl[k] + 1;
        for (size_t k = 0; k < m; k++)
            if (nd[k].feat < 0) pl[k] += c_factor((double)f->cnt[2 * (f->tree_off[t] + k)]);
    }
    enum { BLK = 2048 };
    int fail = 0;
#pragma omp parallel num_threads(ody_threads(n_threads))
    {
        int32_t *lf = malloc(BLK * sizeof *lf);
        double *h = malloc(BLK * sizeof *h);
        if (!lf || !h) {
#pragma omp atomic write
            fail = 1;
        }
#pragma omp for schedule(dynamic, 1)
        for (size_t b0 = 0; b0 < n; b0 += BLK) {
            if (!lf || !h) continue;
            size_t nb = b0 + BLK < n ? BLK : n - b0;
            memset(h, 0, nb * sizeof *h);
            for (int t = 0; t < f->n_trees; t++) {
                rf_leaves(f->node + f->tree_off[t], f->n_feat, X + b0 * (size_t)f->n_feat, nb, lf);
                const double *pl = plen + f->tree_off[t];
                for (size_t q = 0; q < nb; q++) h[q] += pl[lf[q]];
            }
            for (size_t q = 0; q < nb; q++)
                score[b0 + q] = pow(2.0, -(h[q] / f->n_trees) / (cn > 0 ? cn : 1));
        }
        free(lf);
        free(h);
    }
    free(plen);
    if (fail) return ody_fail(err, ODY_ENOMEM, "out of memory scoring the isolation forest");
    return 0;
}

/* ================================================================ combination */

static int cmp_double(const void *a, const void *b)
{
    double x = *(const double *)a, y = *(const double *)b;
    return (x > y) - (x < y);
}

/* The scale of a robust z when over half the values tie (MAD 0): the mean
 * absolute deviation, summed in increasing order (dev sorted in place), of
 * the m finite ones (the left-out values' deviations are +inf: last). */
static double mean_dev_scale(double *dev, size_t n, size_t m)
{
    qsort(dev, n, sizeof *dev, cmp_double);
    double s = 0;
    for (size_t i = 0; i < m; i++) s += dev[i];
    s = 1.2533 * s / (double)m;
    return s > 0 ? s : 1;
}

/* The median of N values spread over c's processes, nr of them at v here. */
static int median_comm(const ody_comm *c, const double *v, size_t nr, uint64_t N, double *med, ody_err *err)
{
    double a = 0, b = 0;
    int rc = ody_select(c, v, nr, N / 2, &b, err);
    if (!rc && N % 2 == 0) rc = ody_select(c, v, nr, N / 2 - 1, &a, err);
    *med = N % 2 ? b : 0.5 * (a + b);
    return rc;
}

int rf_robust_z(const double *ref, size_t nr, const double *v, size_t n, double *z, ody_err *err)
{
    return rf_robust_z_comm(NULL, ref, nr, v, n, z, err);
}

int rf_robust_z_comm(const ody_comm *c, const double *ref, size_t nr, const double *v, size_t n, double *z,
                     ody_err *err)
{
    int64_t N[2] = {(int64_t)nr, 0};  /* all values, and those measured (not +inf) */
    for (size_t i = 0; i < nr; i++) N[1] += ref[i] != INFINITY;
    int rc = ody_allreduce(c, N, 2, ODY_SUM_I64, err);
    if (rc) return rc;
    if (N[0] < 1) return ody_fail(err, ODY_EINTERNAL, "robust z of no values");
    if (N[1] < 1) {  /* nothing measured: no value stands out */
        for (size_t i = 0; i < n; i++) z[i] = 0;
        return 0;
    }
    /* +inf sorts last, so the k-th smallest of all is the k-th of the measured */
    double *dev = malloc((nr ? nr : 1) * sizeof *dev), med = 0, mad = 0;
    rc = ody_comm_agree(c, dev ? 0 : ody_fail(err, ODY_ENOMEM, "out of memory"), err);
    if (!rc) rc = median_comm(c, ref, nr, (uint64_t)N[1], &med, err);
    for (size_t i = 0; !rc && i < nr; i++) dev[i] = fabs(ref[i] - med);
    if (!rc) rc = median_comm(c, dev, nr, (uint64_t)N[1], &mad, err);
    double scale = 1.4826 * mad;
    if (!rc && !(scale > 0)) {  /* the rare fallback: every deviation here, summed in order */
        size_t lo, hi;
        void *all = NULL;
        ody_comm_part(c, ody_comm_rank(c), (size_t)N[0], &lo, &hi);
        rc = ody_comm_agree(c, hi - lo != nr ? ody_fail(err, ODY_EINTERNAL, "robust z: rows not the process's part") : 0,
                            err);
        if (!rc) rc = ody_gather_rows(c, dev, (size_t)N[0], sizeof *dev, &all, err);
        if (!rc) scale = mean_dev_scale(all, (size_t)N[0], (size_t)N[1]);
        free(all);
    }
    for (size_t i = 0; !rc && i < n; i++) z[i] = (v[i] - med) / scale;
    free(dev);
    return rc;
}
