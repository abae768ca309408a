/* knn_context.c — CONTEXT: each feature's gap to the nearest value among an
 * object's neighbours, over the gaps those neighbours have there, at least
 * the feature's typical gap (knn.h). */
#include "knn.h"

#include <math.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#ifdef _OPENMP
#include <omp.h>
#endif

/* Row i's neighbours' features into p[0..width) (NULL for an empty slot);
 * -1 when a list names a row not held here. */
static int neighbours(const knn_context_in *in, size_t i, const float **p)
{
    for (int q = 0; q < in->width; q++) {
        int32_t r = in->idx[i * (size_t)in->width + (size_t)q];
        p[q] = r < 0 ? NULL : in->row(in->ctx, (size_t)r);
        if (r >= 0 && !p[q]) return -1;
    }
    return 0;
}

/* The gap of x, feature j, to the nearest of the neighbours' values there
 * (0 without neighbours). */
static double gap(const float *const *p, int width, int j, double x)
{
    double best = INFINITY;
    for (int q = 0; q < width; q++) {
        if (!p[q]) continue;
        double d = fabs((double)p[q][j] - x);
        if (d < best) best = d;
    }
    return best < INFINITY ? best : 0;
}

static int threads(const knn_context_in *in)
{
#ifdef _OPENMP
    return in->n_threads > 0 ? in->n_threads : omp_get_max_threads();
#else
    (void)in;
    return 1;
#endif
}

/* Gaps of features j0 .. j0 + B - 1 of every row into G (n x B). */
static int block_gaps(const knn_context_in *in, int j0, int B, float *G)
{
    int bad = 0;
    size_t F = (size_t)in->F;
#pragma omp parallel for schedule(static) num_threads(threads(in)) reduction(| : bad)
    for (size_t i = 0; i < in->n; i++) {
        const float *p[KNN_K_MAX];
        if (neighbours(in, i, p)) { bad = 1; continue; }
        for (int b = 0; b < B; b++)
            G[i * (size_t)B + (size_t)b] = (float)gap(p, in->width, j0 + b, in->X[i * F + (size_t)(j0 + b)]);
    }
    return bad ? -1 : 0;
}

#define FIX_ONE 4294967296.0  /* 2^32: gaps summed in fixed point, the same in any order */
#define FIX_MAX 1e9           /* a gap counts at most this much in the mean */

/* The typical gap of one feature from its n gaps here (N over c). */
static int typical(const ody_comm *c, const double *g, size_t n, uint64_t N, double *out, ody_err *err)
{
    double a = 0, b = 0;
    int rc = ody_select(c, g, n, N / 2, &b, err);
    if (!rc && N % 2 == 0) rc = ody_select(c, g, n, N / 2 - 1, &a, err);
    *out = N % 2 ? b : 0.5 * (a + b);
    if (rc || *out > 0) return rc;
    __int128 s = 0;  /* over half the gaps are 0: their mean */
    for (size_t i = 0; i < n; i++) s += (__int128)llround((g[i] < FIX_MAX ? g[i] : FIX_MAX) * FIX_ONE);
    if ((rc = ody_allreduce(c, &s, 1, ODY_SUM_I128, err))) return rc;
    *out = (double)s / FIX_ONE / (double)N;
    return 0;
}

int knn_context_typical(const ody_comm *c, const knn_context_in *in, double *typ, ody_err *err)
{
    int64_t N = (int64_t)in->n;
    int rc = ody_allreduce(c, &N, 1, ODY_SUM_I64, err);
    if (rc) return rc;
    if (N < 1) return ody_fail(err, ODY_EINTERNAL, "context: no objects");
    /* Features a block at a time, about 64 MB of gaps whatever the width. */
    size_t cap = ((size_t)1 << 24) / (in->n ? in->n : 1);
    int B = cap < 1 ? 1 : cap > (size_t)in->F ? in->F : (int)cap;
    float *G = malloc((in->n * (size_t)B + 1) * sizeof *G);
    double *g = malloc((in->n + 1) * sizeof *g);
    rc = ody_comm_agree(c, G && g ? 0 : ody_fail(err, ODY_ENOMEM, "out of memory"), err);
    for (int j0 = 0; !rc && j0 < in->F; j0 += B) {
        int nb = in->F - j0 < B ? in->F - j0 : B;
        rc = ody_comm_agree(c, block_gaps(in, j0, nb, G) ? ody_fail(err, ODY_EINTERNAL, "context: a neighbour list "
                                                                   "names a row this process does not hold") : 0, err);
        for (int b = 0; !rc && b < nb; b++) {
            for (size_t i = 0; i < in->n; i++) g[i] = G[i * (size_t)nb + (size_t)b];
            rc = typical(c, g, in->n, (uint64_t)N, &typ[j0 + b], err);
        }
    }
    free(G);
    free(g);
    return rc;
}

/* Row r's place among the nameable rows (ref, m: sorted; NULL: r itself),
 * or -1. */
static long place(const int32_t *ref, size_t m, size_t r)
{
    if (!ref) return r < m ? (long)r : -1;
    size_t a = 0, b = m;
    while (a < b) {
        size_t mid = a + (b - a) / 2;
        if ((size_t)ref[mid] < r) a = mid + 1;
        else b = mid;
    }
    return a < m && (size_t)ref[a] == r ? (long)a : -1;
}

int knn_context_ref(const ody_comm *c, const knn_context_in *in, size_t lo, const int32_t *ref, size_t m, float *G,
                    ody_err *err)
{
    int bad = 0;
    size_t F = (size_t)in->F;
    memset(G, 0, m * F * sizeof *G);
#pragma omp parallel for schedule(static) num_threads(threads(in)) reduction(| : bad)
    for (size_t i = 0; i < in->n; i++) {
        long q = place(ref, m, lo + i);
        if (q < 0) continue;
        const float *p[KNN_K_MAX];
        if (neighbours(in, i, p)) { bad = 1; continue; }
        for (size_t j = 0; j < F; j++) G[(size_t)q * F + j] = (float)gap(p, in->width, (int)j, in->X[i * F + j]);
    }
    int rc = ody_comm_agree(c, bad ? ody_fail(err, ODY_EINTERNAL, "context: a neighbour list names a row not held "
                                              "here") : 0, err);
    /* Each row's gaps come from the one process that holds it, zeros from
     * the others: a sum of the bit patterns is the one pattern, exactly. */
    _Static_assert(sizeof(float) == sizeof(uint32_t), "floats shared as 32-bit words");
    if (!rc && ody_comm_size(c) > 1) rc = ody_allreduce(c, G, m * F, ODY_SUM_U32, err);
    return rc;
}

int knn_context(const knn_context_in *in, const double *typ, const float *G, const int32_t *ref, size_t m,
                double *out, ody_err *err)
{
    int bad = 0;
    size_t F = (size_t)in->F;
#pragma omp parallel for schedule(static) num_threads(threads(in)) reduction(| : bad)
    for (size_t i = 0; i < in->n; i++) {
        const float *p[KNN_K_MAX], *g[KNN_K_MAX];
        int k = 0, miss = neighbours(in, i, p);
        for (int q = 0; q < in->width && !miss; q++) {
            int32_t r = in->idx[i * (size_t)in->width + (size_t)q];
            long at = r < 0 ? -1 : place(ref, m, (size_t)r);
            if (r >= 0 && at < 0) miss = 1;
            else if (at >= 0) g[k++] = G + (size_t)at * F;
        }
        if (miss) { bad = 1; continue; }
        double s = 0;
        for (size_t j = 0; j < F; j++) {
            double local = 0;  /* the neighbours' own gaps there, in list order */
            for (int q = 0; q < k; q++) local += g[q][j];
            local = k ? local / k : 0;
            double den = local > typ[j] ? local : typ[j];
            if (den > 0) s += gap(p, in->width, (int)j, in->X[i * F + j]) / den;
        }
        out[i] = F ? s / (double)F : 0;
    }
    return bad ? ody_fail(err, ODY_EINTERNAL, "context: a neighbour list names a row not held here") : 0;
}
