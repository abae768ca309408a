/* cat_warn.c — warnings about a catalog's values as read: what an
 * astronomer should fix before reading the ranking. */
#include <math.h>
#include <stdlib.h>

#include "catcol.h"

/* At most this many values of the rest of a feature estimate its spread. */
enum { SPREAD_SAMPLE = 20000 };

static int cmp_float(const void *a, const void *b)
{
    float x = *(const float *)a, y = *(const float *)b;
    return (x > y) - (x < y);
}

/* The 1st and 99th percentiles of feature j's values strictly between lo
 * and hi (every row, or every stride-th when there are many), and the
 * nearest of them to lo and to hi; 0 when there are fewer than ten. */
typedef struct rest {
    float p1, p99, near_lo, near_hi;
} rest;

static int rest_of(const cat *c, size_t j, float lo, float hi, float *buf, rest *out)
{
    size_t n = c->n_rows, F = c->n_feat, m = 0, inside = 0;
    size_t stride = n > SPREAD_SAMPLE ? n / SPREAD_SAMPLE + 1 : 1;
    out->near_lo = hi;
    out->near_hi = lo;
    for (size_t r = 0; r < n; r++) {
        float v = c->X[r * F + j];
        if (!(v > lo && v < hi)) continue;  /* the extremes, and NaN */
        if (v < out->near_lo) out->near_lo = v;
        if (v > out->near_hi) out->near_hi = v;
        if (inside++ % stride == 0 && m < SPREAD_SAMPLE) buf[m++] = v;
    }
    if (m < 10) return 0;
    qsort(buf, m, sizeof *buf, cmp_float);
    out->p1 = buf[(size_t)(0.01 * (double)(m - 1))];
    out->p99 = buf[(size_t)(0.99 * (double)(m - 1))];
    return 1;
}

/* A value shared by several objects at one end of a feature, far beyond
 * the rest (more than ten times the spread of their middle 98%): -9999 or
 * 99 where a survey meant "not measured".  Left as it is, those objects
 * lead the ranking; catalog.nulls makes it missing. */
void catwarn_sentinels(const cat *c, const char *file, const ody_log *log)
{
    size_t n = c->n_rows, F = c->n_feat;
    float *buf = n ? malloc((n < SPREAD_SAMPLE ? n : SPREAD_SAMPLE) * sizeof *buf) : NULL;
    for (size_t j = 0; buf && j < F; j++) {
        float lo = INFINITY, hi = -INFINITY;
        size_t nlo = 0, nhi = 0;
        for (size_t r = 0; r < n; r++) {
            float v = c->X[r * F + j];
            if (v < lo) lo = v, nlo = 0;
            if (v > hi) hi = v, nhi = 0;
            nlo += v == lo;
            nhi += v == hi;
        }
        rest q;
        if ((nlo < 3 && nhi < 3) || !rest_of(c, j, lo, hi, buf, &q) || !(q.p99 > q.p1)) continue;
        double spread = (double)q.p99 - (double)q.p1;
        for (int side = 0; side < 2; side++) {
            size_t cnt = side ? nhi : nlo;
            double at = side ? hi : lo, gap = side ? at - q.near_hi : q.near_lo - at;
            if (cnt < 3 || gap <= 10 * spread) continue;
            ody_logf(log, ODY_LOG_WARN, "%s: feature %s: %zu objects at %.10g, far %s the rest (%.4g to %.4g) — a "
                     "missing-value sentinel? add it to catalog.nulls (nulls: [%.10g]) to make it missing; left as it "
                     "is, those objects lead the ranking", file, c->feat_names[j], cnt, at, side ? "above" : "below",
                     (double)q.p1, (double)q.p99, at);
        }
    }
    free(buf);
}
