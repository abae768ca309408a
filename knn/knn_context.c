/* knn_context.c — CONTEXT: each feature's gap to the nearest value among an
 * object's neighbours, over the gaps those neighbours have there, at least
 * the feature's typical gap (knn.h). */
#include "knn.h"
#include "knn_refmap.h"

#include <math.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <gsl/gsl_statistics_double.h>


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

int knn_context_typical(const float *G, size_t m, int F, double *typ, ody_err *err)
{
    double *g = malloc((m + 1) * sizeof *g);
    if (!g) return ody_fail(err, ODY_ENOMEM, "out of memory");
    for (size_t j = 0; j < (size_t)F; j++) {
        for (size_t q = 0; q < m; q++) g[q] = G[q * (size_t)F + j];
        typ[j] = m ? gsl_stats_median(g, 1, m) : 0;  /* rearranges g */
        if (typ[j] > 0 || !m) continue;
        double s = 0;  /* over half the gaps are 0: their mean, summed in row order */
        for (size_t q = 0; q < m; q++) s += G[q * (size_t)F + j];
        typ[j] = s / (double)m;
    }
    free(g);
    return 0;
}

/* Row r's place among the m nameable rows of mp, or -1. */
static long place(const refmap *mp, size_t m, size_t r)
{
    size_t q = refmap_at(mp, (int32_t)r);
    return q < m ? (long)q : -1;
}

int knn_context_ref(const ody_comm *c, const knn_context_in *in, size_t lo, const int32_t *ref, size_t m, float *G,
                    ody_err *err)
{
    int bad = 0;
    size_t F = (size_t)in->F;
    refmap map;
    int rc = ody_comm_agree(c, refmap_init(&map, ref, m) ? ody_fail(err, ODY_ENOMEM, "out of memory") : 0, err);
    if (rc) return rc;
    memset(G, 0, m * F * sizeof *G);
#pragma omp parallel for schedule(static) num_threads(ody_threads(in->n_threads)) reduction(| : bad)
    for (size_t i = 0; i < in->n; i++) {
        long q = place(&map, m, lo + i);
        if (q < 0) continue;
        const float *p[KNN_K_MAX];
        if (neighbours(in, i, p)) { bad = 1; continue; }
        for (size_t j = 0; j < F; j++) G[(size_t)q * F + j] = (float)gap(p, in->width, (int)j, in->X[i * F + j]);
    }
    refmap_free(&map);
    rc = ody_comm_agree(c, bad ? ody_fail(err, ODY_EINTERNAL, "context: a neighbour list names a row not held "
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
    refmap map;
    if (refmap_init(&map, ref, m)) return ody_fail(err, ODY_ENOMEM, "out of memory");
#pragma omp parallel for schedule(static) num_threads(ody_threads(in->n_threads)) reduction(| : bad)
    for (size_t i = 0; i < in->n; i++) {
        const float *p[KNN_K_MAX], *g[KNN_K_MAX];
        int k = 0, miss = neighbours(in, i, p);
        for (int q = 0; q < in->width && !miss; q++) {
            int32_t r = in->idx[i * (size_t)in->width + (size_t)q];
            long at = r < 0 ? -1 : place(&map, m, (size_t)r);
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
    refmap_free(&map);
    return bad ? ody_fail(err, ODY_EINTERNAL, "context: a neighbour list names a row not held here") : 0;
}
