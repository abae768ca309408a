/* cat_warn.c — warnings about a catalog's values as read: what an
 * astronomer should fix before reading the ranking. */
#include <math.h>
#include <stdlib.h>

#include "catcol.h"

/* Values of a feature's rest that estimate its spread (at most), and the
 * features looked at in one pass over the rows: the passes read the rows in
 * order, so a catalog of many features costs a few reads of it, not one per
 * feature. */
enum { SPREAD_SAMPLE = 4000, BLOCK = 64 };

static int cmp_float(const void *a, const void *b)
{
    float x = *(const float *)a, y = *(const float *)b;
    return (x > y) - (x < y);
}

/* One feature's ends and what lies between them. */
typedef struct ends {
    float lo, hi;               /* the smallest and largest value */
    size_t nlo, nhi;            /* objects at each */
    float near_lo, near_hi;     /* the rest's (values strictly between) smallest and largest */
    size_t inside, m;           /* the rest's count, and how many of them sampled */
} ends;

/* The warning for one end of feature j, when several objects share it far
 * beyond the rest: more than ten times the spread of the rest's middle 98%. */
static void warn_end(const cat *c, size_t j, const ends *e, float *sample, const char *file, const ody_log *log)
{
    if (e->m < 10) return;
    qsort(sample, e->m, sizeof *sample, cmp_float);
    double p1 = sample[(size_t)(0.01 * (double)(e->m - 1))], p99 = sample[(size_t)(0.99 * (double)(e->m - 1))];
    double spread = p99 - p1;
    for (int side = 0; side < 2 && spread > 0; side++) {
        size_t cnt = side ? e->nhi : e->nlo;
        double at = side ? e->hi : e->lo, gap = side ? at - e->near_hi : e->near_lo - at;
        if (cnt < 3 || gap <= 10 * spread) continue;
        ody_logf(log, ODY_LOG_WARN, "%s: feature %s: %zu objects at %.10g, far %s the rest (%.4g to %.4g) — a "
                 "missing-value sentinel? add it to catalog.nulls (nulls: [%.10g]) to make it missing; left as it "
                 "is, those objects lead the ranking", file, c->feat_names[j], cnt, at, side ? "above" : "below", p1,
                 p99, at);
    }
}

/* Features [j0, j1): their ends in one pass, then, for those with an end
 * several objects share, the rest in a second. */
static void warn_block(const cat *c, size_t j0, size_t j1, ends *e, float *sample, const char *file,
                       const ody_log *log)
{
    size_t n = c->n_rows, F = c->n_feat, nb = j1 - j0, stride = n > SPREAD_SAMPLE ? n / SPREAD_SAMPLE + 1 : 1;
    for (size_t q = 0; q < nb; q++) e[q] = (ends){INFINITY, -INFINITY, 0, 0, INFINITY, -INFINITY, 0, 0};
    for (size_t r = 0; r < n; r++) {
        const float *x = c->X + r * F + j0;
        for (size_t q = 0; q < nb; q++) {
            float v = x[q];  /* NaN: in no comparison */
            if (v < e[q].lo) e[q].lo = v, e[q].nlo = 0;
            if (v > e[q].hi) e[q].hi = v, e[q].nhi = 0;
            e[q].nlo += v == e[q].lo;
            e[q].nhi += v == e[q].hi;
        }
    }
    int any = 0;
    for (size_t q = 0; q < nb; q++) any |= e[q].nlo >= 3 || e[q].nhi >= 3;
    if (!any) return;
    for (size_t r = 0; r < n; r++) {
        const float *x = c->X + r * F + j0;
        for (size_t q = 0; q < nb; q++) {
            ends *t = &e[q];
            float v = x[q];
            if ((t->nlo < 3 && t->nhi < 3) || !(v > t->lo && v < t->hi)) continue;
            if (v < t->near_lo) t->near_lo = v;
            if (v > t->near_hi) t->near_hi = v;
            if (t->inside++ % stride == 0 && t->m < SPREAD_SAMPLE) sample[q * SPREAD_SAMPLE + t->m++] = v;
        }
    }
    for (size_t q = 0; q < nb; q++)
        if (e[q].nlo >= 3 || e[q].nhi >= 3) warn_end(c, j0 + q, &e[q], sample + q * SPREAD_SAMPLE, file, log);
}

void catwarn_sentinels(const cat *c, size_t n_cols, const char *file, const ody_log *log)
{
    size_t nf = n_cols < c->n_feat ? n_cols : c->n_feat;
    ends *e = malloc(BLOCK * sizeof *e);
    float *sample = malloc((size_t)BLOCK * SPREAD_SAMPLE * sizeof *sample);
    for (size_t j0 = 0; e && sample && j0 < nf; j0 += BLOCK)
        warn_block(c, j0, j0 + BLOCK < nf ? j0 + BLOCK : nf, e, sample, file, log);
    free(e);
    free(sample);
}
