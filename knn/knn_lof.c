/* knn_lof.c — the local outlier factor from neighbour lists (knn_all's
 * or a reference sample's), for one process or several, and for rows
 * that are not in the catalog. */
#include "knn.h"
#include "knn_refmap.h"

#include <stdint.h>
#include <stdlib.h>
#include <string.h>

/* ================================================================ LOF */

/* The k-distances and densities of the rows a list can name (by place:
 * refmap), and the floor for duplicates. */
typedef struct lofref {
    float *kd;
    double *lrd, floor_;
    refmap map;
} lofref;

static void lofref_free(lofref *r)
{
    free(r->kd);
    free(r->lrd);
    refmap_free(&r->map);
}

/* lrd of a row from its k neighbours (rows of the reference) at dist. */
static double lrd_of(const lofref *r, int k, const int32_t *nb, const float *d)
{
    double s = 0;
    for (int q = 0; q < k; q++) {
        double rd = d[q], kd = r->kd[refmap_at(&r->map, nb[q])];
        if (kd > rd) rd = kd;
        s += rd > r->floor_ ? rd : r->floor_;
    }
    return (double)k / s;
}

/* The first place of ref (m sorted rows) at row r or later. */
static size_t ref_lower(const int32_t *ref, size_t m, size_t r)
{
    size_t a = 0, b = m;
    while (a < b) {
        size_t mid = a + (b - a) / 2;
        if ((size_t)ref[mid] < r) a = mid + 1;
        else b = mid;
    }
    return a;
}

/* Each process's share of the nameable rows' values, w bytes each: byte
 * offsets into off[0..R] (every row, or ref's rows in each process's rows). */
static void ref_shares(const ody_comm *c, const knn_lof_in *in, size_t w, size_t *off)
{
    int R = ody_comm_size(c);
    for (int p = 0; p <= R; p++) {
        size_t lo = in->n, hi;
        if (p < R) ody_comm_part(c, p, in->n, &lo, &hi);
        off[p] = (in->ref ? ref_lower(in->ref, in->m, lo) : lo) * w;
    }
}

/* Whether every list of this process's rows names rows the map knows. */
static int lists_named(const lofref *r, const knn_lof_in *in, size_t nl)
{
    for (size_t i = 0; i < nl; i++)
        for (int q = 0; q < in->k; q++)
            if (refmap_at(&r->map, in->idx[i * (size_t)in->width + (size_t)q]) == SIZE_MAX) return 0;
    return 1;
}

/* The nameable rows' k-distances and densities, each process computing
 * those of its rows and sharing them, and the floor for duplicates from
 * every row's k-distances' median, selected exactly (ody_select): the same
 * for any number of processes.  Every process calls it together. */
static int lofref_make(lofref *r, const ody_comm *c, const knn_lof_in *in, ody_err *err)
{
    size_t lo, hi, n = in->n, w = (size_t)in->width, M = in->ref ? in->m : n;
    int R = ody_comm_size(c), k = in->k;
    ody_comm_part(c, ody_comm_rank(c), n, &lo, &hi);
    size_t nl = hi - lo, a = in->ref ? ref_lower(in->ref, M, lo) : lo, b = in->ref ? ref_lower(in->ref, M, hi) : hi;
    memset(r, 0, sizeof *r);
    r->kd = malloc((M ? M : 1) * sizeof *r->kd);
    r->lrd = malloc((M ? M : 1) * sizeof *r->lrd);
    double *kd = malloc((nl ? nl : 1) * sizeof *kd), mid = 0;
    size_t *off = malloc(((size_t)R + 1) * sizeof *off);
    int rc = ody_comm_agree(c, r->kd && r->lrd && kd && off && !refmap_init(&r->map, in->ref, M) ? 0
                            : ody_fail(err, ODY_ENOMEM, "local outlier factor: out of memory"), err);
    if (!rc) rc = ody_comm_agree(c, lists_named(r, in, nl) ? 0 : ody_fail(err, ODY_EINTERNAL, "local outlier factor: "
                                 "a neighbour list names a row outside the reference sample"), err);
    for (size_t i = 0; !rc && i < nl; i++) kd[i] = in->dist[i * w + (size_t)(k - 1)];
    for (size_t q = a; !rc && q < b; q++) r->kd[q] = (float)kd[(in->ref ? (size_t)in->ref[q] : q) - lo];
    if (!rc) ref_shares(c, in, sizeof *r->kd, off);
    if (!rc) rc = ody_share(c, r->kd, off, err);
    if (!rc && n) rc = ody_select(c, kd, nl, n / 2, &mid, err);
    r->floor_ = 1e-6 * (float)mid + 1e-30;
    for (size_t q = a; !rc && q < b; q++) {
        size_t i = (in->ref ? (size_t)in->ref[q] : q) - lo;
        r->lrd[q] = lrd_of(r, k, in->idx + i * w, in->dist + i * w);
    }
    if (!rc) ref_shares(c, in, sizeof *r->lrd, off);
    if (!rc) rc = ody_share(c, r->lrd, off, err);
    free(kd);
    free(off);
    if (rc) lofref_free(r);
    return rc;
}

static double lof_of(const lofref *r, int k, const int32_t *nb, double lrd)
{
    double s = 0;
    for (int q = 0; q < k; q++) s += r->lrd[refmap_at(&r->map, nb[q])];
    return s / ((double)k * lrd);
}

int knn_lof(size_t n, int width, int k, const int32_t *idx, const float *dist, double *lof, ody_err *err)
{
    knn_lof_in in = {n, width, k, idx, dist, NULL, 0};
    return knn_lof_comm(NULL, &in, lof, err);
}

int knn_lof_comm(const ody_comm *c, const knn_lof_in *in, double *lof, ody_err *err)
{
    lofref r;
    int rc = lofref_make(&r, c, in, err);
    if (rc) return rc;
    size_t lo, hi, w = (size_t)in->width;
    ody_comm_part(c, ody_comm_rank(c), in->n, &lo, &hi);
    for (size_t i = 0; i < hi - lo; i++) {  /* a row's density again when it is not nameable: the same value */
        const int32_t *nb = in->idx + i * w;
        lof[i] = lof_of(&r, in->k, nb, lrd_of(&r, in->k, nb, in->dist + i * w));
    }
    lofref_free(&r);
    return 0;
}

int knn_lof_query(size_t n, int width, int k, const int32_t *idx, const float *dist, size_t m, int qwidth,
                  const int32_t *qidx, const float *qdist, double *lof, ody_err *err)
{
    lofref r;
    knn_lof_in in = {n, width, k, idx, dist, NULL, 0};
    int rc = lofref_make(&r, NULL, &in, err);
    if (rc) return rc;
    for (size_t i = 0; i < m; i++) {
        const int32_t *nb = qidx + i * (size_t)qwidth;
        lof[i] = lof_of(&r, k, nb, lrd_of(&r, k, nb, qdist + i * (size_t)qwidth));
    }
    lofref_free(&r);
    return 0;
}
