/* knn_context.c — CONTEXT: each feature's gap to the nearest value among an
 * object's neighbours, over that feature's typical gap (knn.h). */
#include "knn.h"

#include <math.h>
#include <stdint.h>
#include <stdlib.h>

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

int knn_context(const knn_context_in *in, const double *typ, double *out, ody_err *err)
{
    int bad = 0;
    size_t F = (size_t)in->F;
#pragma omp parallel for schedule(static) num_threads(threads(in)) reduction(| : bad)
    for (size_t i = 0; i < in->n; i++) {
        const float *p[KNN_K_MAX];
        if (neighbours(in, i, p)) { bad = 1; continue; }
        double s = 0;
        for (size_t j = 0; j < F; j++)
            if (typ[j] > 0) s += gap(p, in->width, (int)j, in->X[i * F + j]) / typ[j];
        out[i] = F ? s / (double)F : 0;
    }
    return bad ? ody_fail(err, ODY_EINTERNAL, "context: a neighbour list names a row not held here") : 0;
}
