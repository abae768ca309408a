/* learn.c — re-ranking from labels: kernel moves and detector weights. */
#include "learn.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

void lrn_opt_init(lrn_opt *o)
{
    o->bandwidth = 0.5;  /* learn.* defaults: chosen by docs/BENCHMARKS.md, "Learning from labels" */
    o->strength = 4.0;
    o->reweight = 0.0;
    o->mean = 0;
}

/* The weighted detector score of object i, and the detector that gave it. */
static double base(const lrn *l, size_t i, int *drv)
{
    double best = 0, sum = 0;
    *drv = -1;
    for (int d = 0; d < l->D; d++) {
        double v = l->w[d] * l->zd[i * (size_t)l->D + (size_t)d];
        sum += v;
        if (v > best) { best = v; *drv = d; }
    }
    return l->o.mean && l->D ? sum / l->D : best;
}

static void rescore(lrn *l)
{
    int drv;
    for (size_t i = 0; i < l->n; i++) l->score[i] = base(l, i, &drv) + l->adj[i];
}

int lrn_init(lrn *l, const float *Z, const double *zd, size_t n, int F, int D, double knn_median,
             const lrn_opt *o, ody_err *err)
{
    memset(l, 0, sizeof *l);
    l->n = n, l->F = F, l->D = D, l->Z = Z, l->zd = zd, l->o = *o;
    double h = o->bandwidth * (knn_median > 0 ? knn_median : 1.0);
    l->h2 = 2.0 * h * h;
    l->w = malloc((size_t)(D > 0 ? D : 1) * sizeof *l->w);
    l->adj = calloc(n ? n : 1, sizeof *l->adj);
    l->score = malloc((n ? n : 1) * sizeof *l->score);
    l->label = malloc(n ? n : 1);
    if (!l->w || !l->adj || !l->score || !l->label) {
        lrn_free(l);
        return ody_fail(err, ODY_ENOMEM, "out of memory learning from labels (%zu objects)", n);
    }
    for (int d = 0; d < D; d++) l->w[d] = 1.0;
    memset(l->label, -1, n);
    rescore(l);
    return 0;
}

void lrn_add(lrn *l, size_t i, int y)
{
    int drv;
    double s = base(l, i, &drv), a = (y ? 1.0 : -1.0) * l->o.strength * s;
    const float *zi = l->Z + i * (size_t)l->F;
    l->label[i] = (int8_t)(y ? 1 : 0);
    if (a != 0) {
        for (size_t j = 0; j < l->n; j++) {
            const float *zj = l->Z + j * (size_t)l->F;
            double d2 = 0;
            for (int f = 0; f < l->F; f++) {
                double t = (double)zj[f] - (double)zi[f];
                d2 += t * t;
            }
            l->adj[j] += a * exp(-d2 / l->h2);
        }
    }
    if (l->o.reweight > 0 && drv >= 0) l->w[drv] *= y ? 1.0 + l->o.reweight : 1.0 - l->o.reweight;
    rescore(l);
}

size_t lrn_next(const lrn *l)
{
    size_t best = (size_t)-1;
    for (size_t i = 0; i < l->n; i++)
        if (l->label[i] < 0 && (best == (size_t)-1 || l->score[i] > l->score[best])) best = i;
    return best;
}

void lrn_free(lrn *l)
{
    free(l->w);
    free(l->adj);
    free(l->score);
    free(l->label);
    memset(l, 0, sizeof *l);
}
