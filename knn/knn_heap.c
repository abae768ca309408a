/* knn_heap.c — HEAP: how improbably many of the reference rows share an
 * object's value in one feature, against the density just around it
 * (knn.h). */
#include "knn.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

#include <gsl/gsl_statistics_double.h>


struct knn_heap {
    size_t m;
    int F, k, n_scales;
    float *S;       /* F x m: each feature's reference values, ascending */
    double *typ;    /* F: the median distance to the k-th nearest other value; 0: the feature is skipped */
    size_t scale[KNN_HEAP_SCALES];
};

void knn_heap_destroy(knn_heap *h)
{
    if (!h) return;
    free(h->S);
    free(h->typ);
    free(h);
}

static int cmp_float(const void *a, const void *b)
{
    float x = *(const float *)a, y = *(const float *)b;
    return (x > y) - (x < y);
}

/* The first place p of the ascending s[0..m) with s[p] >= v (m if none). */
static size_t place_of(const float *s, size_t m, double v)
{
    size_t lo = 0, hi = m;
    while (lo < hi) {
        size_t mid = lo + (hi - lo) / 2;
        if ((double)s[mid] < v) lo = mid + 1;
        else hi = mid;
    }
    return lo;
}

/* The distance from v, at place p of the ascending s[0..m) (place_of's),
 * to its kk-th nearest value (1 <= kk <= m): the kk nearest are kk
 * consecutive values, the window found by bisection on its first place,
 * which lies within kk of p (before p - kk the window ends below v, at p
 * it starts above it). */
static double kth(const float *s, size_t m, double v, size_t p, size_t kk)
{
    size_t lo = p > kk ? p - kk : 0, hi = p < m - kk ? p : m - kk;
    while (lo < hi) {
        size_t mid = lo + (hi - lo) / 2;
        if (v - (double)s[mid] > (double)s[mid + kk] - v) lo = mid + 1;
        else hi = mid;
    }
    double a = v - (double)s[lo], b = (double)s[lo + kk - 1] - v;
    return a > b ? a : b;
}

/* -log P(X >= k) for X ~ Poisson(lam > 0), without underflow: for lam < k
 * the upper tail, which may be tiny, as the pmf at k (in logs) times the
 * sum of the next terms over it; for lam >= k one minus the lower tail
 * (the tail is then at least about one half).  No GSL special function:
 * GSL's error handler aborts. */
static double poisson_surprise(int k, double lam)
{
    if (lam >= k) {
        double term = exp(-lam), lower = term;  /* P(X = 0), then each P(X = i) from the last */
        for (int i = 1; i < k; i++) {
            term *= lam / i;
            lower += term;
        }
        return lower < 1 ? -log(1 - lower) : 0;
    }
    double term = 1, sum = 1;
    for (int i = 1; i < 1000 && term > 1e-17 * sum; i++) {
        term *= lam / (double)(k + i);
        sum += term;
    }
    return lam - k * log(lam) + lgamma(k + 1.0) - log(sum);
}

int knn_heap_create(const float *V, size_t m, int F, int k, knn_heap **out, ody_err *err)
{
    *out = NULL;
    if (k < 1 || F < 0) return ody_fail(err, ODY_EINTERNAL, "heap: k %d, %d features", k, F);
    knn_heap *h = calloc(1, sizeof *h);
    double *a = malloc((m + 1) * sizeof *a);
    if (h) {
        h->S = malloc(((size_t)F * m + 1) * sizeof *h->S);
        h->typ = calloc((size_t)F + 1, sizeof *h->typ);
    }
    if (!h || !a || !h->S || !h->typ) {
        knn_heap_destroy(h);
        free(a);
        return ody_fail(err, ODY_ENOMEM, "out of memory");
    }
    h->m = m;
    h->F = F;
    h->k = k;
    /* the scales: 4k, then doubling while a group stays within 2% of the rows */
    for (size_t k2 = 4 * (size_t)k; h->n_scales < KNN_HEAP_SCALES && k2 + 1 <= m; k2 *= 2) {
        if (h->n_scales && (double)k2 > 0.02 * (double)m) break;
        h->scale[h->n_scales++] = k2;
    }
    for (size_t j = 0; j < (size_t)F; j++) {
        float *s = h->S + j * m;
        for (size_t q = 0; q < m; q++) s[q] = V[q * (size_t)F + j];
        qsort(s, m, sizeof *s, cmp_float);
        if ((size_t)k + 1 > m || !h->n_scales) continue;  /* too few rows: every feature skipped */
        for (size_t q = 0, p = 0; q < m; q++) {
            if (q && s[q] > s[q - 1]) p = q;  /* s[q]'s first place: sorted, no bisection needed */
            a[q] = kth(s, m, s[q], p, (size_t)k + 1);  /* itself, then k others */
        }
        h->typ[j] = gsl_stats_median(a, 1, m);  /* rearranges a */
    }
    free(a);
    *out = h;
    return 0;
}

void knn_heap_score(const knn_heap *h, const float *X, size_t n, const uint8_t *is_ref, int n_threads, double *out,
                    int32_t *feat)
{
    size_t F = (size_t)h->F, m = h->m;
    /* out holds each object's least expected count until the end: the
     * surprise falls as it grows, so one call at the least is the largest.
     * A feature at a time, for all objects: its sorted values stay in cache. */
    for (size_t i = 0; i < n; i++) {
        out[i] = INFINITY;
        if (feat) feat[i] = -1;
    }
    for (size_t j = 0; j < F; j++) {
        if (!(h->typ[j] > 0)) continue;  /* most values tie: every value is a heap */
        const float *s = h->S + j * m;
#pragma omp parallel for schedule(static) num_threads(ody_threads(n_threads))
        for (size_t i = 0; i < n; i++) {
            size_t self = is_ref && is_ref[i];  /* its own value is among the reference values */
            double v = X[i * F + j];
            size_t p = place_of(s, m, v);
            double a = kth(s, m, v, p, (size_t)h->k + self), least = out[i];
            if (a < h->typ[j]) a = h->typ[j];
            for (int q = 0; q < h->n_scales; q++) {
                size_t k2 = h->scale[q];
                if (k2 + self > m) break;
                double b = kth(s, m, v, p, k2 + self);
                if (!(b > a)) continue;  /* a heap as large as the scale: not a small group */
                double lam = (double)k2 * a / b;
                if (lam < least) {
                    least = lam;
                    if (feat) feat[i] = (int32_t)j;
                }
            }
            out[i] = least;
        }
    }
#pragma omp parallel for schedule(static) num_threads(ody_threads(n_threads))
    for (size_t i = 0; i < n; i++) out[i] = out[i] < INFINITY ? poisson_surprise(h->k, out[i]) : 0;
}
