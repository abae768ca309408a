/* st_score.c — stage "score": the default anomaly score, and why.
 *
 * Each detector of score.detectors becomes a robust z-score, (s - median) /
 * (1.4826 MAD), clipped at 0 so that a detector only ever raises an object;
 * the anomaly score is their maximum (an object is anomalous when any family
 * of detector finds it far in its own tail) or their mean, and DRIVER the
 * detector with the largest z.  Then, for every
 * object, the features that set it apart: its deviations, in standard
 * deviations of the catalog, from the median of its nearest neighbours that
 * are themselves unremarkable (below the 90th percentile of the score). */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "knn.h"
#include "stage.h"

static int load_score(run_state *st, ody_err *err)
{
    size_t nw = (size_t)st->n_why;
    int rc = store_load_rows(st, "score.fits", "ANOMALY_SCORE", TDOUBLE, 1, st->score[CFG_SCORE_ANOMALY], err);
    if (!rc) rc = store_load_index(st, "score.fits", "DRIVER", 1, CFG_N_SCORES, st->driver, err);
    if (!rc && nw) rc = store_load_index(st, "score.fits", "WHY_FEATURE", nw, st->F, st->why_feat, err);
    if (!rc && nw) rc = store_load_rows(st, "score.fits", "WHY_DEVIATION", TFLOAT, nw, st->why_dev, err);
    if (!rc && nw) rc = store_load_index(st, "score.fits", "WHY_SPAN", 2 * nw, st->F, st->why_span, err);
    if (!rc && st->n_det) rc = store_load_rows(st, "score.fits", "DETECTOR_Z", TDOUBLE, (size_t)st->n_det, st->det_z, err);
    return rc;
}

/* ================================================================ combining */

/* Detector s's robust z for q's objects against ref's.  An object good in
 * no tree has W = 1, the largest possible: it shares a pure-real leaf with
 * nothing, so the forest measured nothing for it (docs/SCORES.md).  In discrete
 * data a real row and its synthetic twin share every leaf, and 30% of
 * mammography's rows, ordinary ones, were at W = 1.  So for the
 * combination such an object's weirdness gives no evidence (z 0), and the
 * median and MAD are those of the objects the forest did measure. */
static int detector_z(const run_state *q, const run_state *ref, int s, double *z, ody_err *err)
{
    size_t n = stage_rows(q), nr = stage_rows(ref);
    if (s != CFG_SCORE_WEIRDNESS) return rf_robust_z_comm(ref->comm, ref->score[s], nr, q->score[s], n, z, err);
    double *w = malloc((nr ? nr : 1) * sizeof *w);
    int rc = ody_comm_agree(ref->comm, w ? 0 : ody_fail(err, ODY_ENOMEM, "out of memory"), err);
    int64_t none = 0;  /* objects good in no tree, said once, by the run itself */
    for (size_t i = 0; !rc && i < nr; i++) {
        none += ref->score[s][i] >= 1;
        w[i] = ref->score[s][i] >= 1 ? INFINITY : ref->score[s][i];
    }
    if (!rc && q == ref) rc = ody_allreduce(ref->comm, &none, 1, ODY_SUM_I64, err);
    if (!rc && q == ref && none)
        ody_logf(ref->log, ODY_LOG_INFO, "score: %lld of %zu objects are good in no tree (discrete features put a row "
                 "and its synthetic twin in one leaf): their weirdness gives no evidence", (long long)none, ref->n);
    if (!rc) rc = rf_robust_z_comm(ref->comm, w, nr, q->score[s], n, z, err);
    for (size_t i = 0; !rc && i < n; i++)
        if (q->score[s][i] >= 1) z[i] = 0;
    free(w);
    return rc;
}

int stage_combine(run_state *q, const run_state *ref, ody_err *err)
{
    const cfg *c = q->c;
    size_t n = stage_rows(q);
    double *a = q->score[CFG_SCORE_ANOMALY], *z = malloc((n ? n : 1) * sizeof *z);
    if (!z) return ody_fail(err, ODY_ENOMEM, "out of memory");
    int used = 0, rc = 0;
    double *best = calloc(n ? n : 1, sizeof *best);
    if (!best) { free(z); return ody_fail(err, ODY_ENOMEM, "out of memory"); }
    for (size_t i = 0; i < n; i++) { a[i] = 0; q->driver[i] = -1; }
    double taken = cfg_local_weight_taken(c, ref->n);
    if (q == ref && taken >= 0)
        ody_logf(q->log, ODY_LOG_INFO, "score: local weight %.3g (score.local_weight: auto, %zu objects)", taken, ref->n);
    for (int s = 0; s < CFG_N_SCORES && !rc; s++) {
        if (!(c->detectors & 1 << s)) continue;
        if (!q->score[s] || !ref->score[s]) {  /* cfg_check() refuses such configs */
            rc = ody_fail(err, ODY_EINTERNAL, "score.detectors: %s was not computed", cfg_score_name((cfg_score)s));
            break;
        }
        if ((rc = detector_z(q, ref, s, z, err))) break;
        double w = cfg_detector_weight(c, (cfg_score)s, ref->n);  /* the run's objects, new ones scored or not */
        for (size_t i = 0; i < n; i++) {
            double v = z[i] > 0 ? w * z[i] : 0;
            q->det_z[i * (size_t)q->n_det + (size_t)used] = v;
            if (c->combine == CFG_COMBINE_MAX) a[i] = v > a[i] ? v : a[i];
            else a[i] += v;
            if (v > best[i]) { best[i] = v; q->driver[i] = s; }  /* first detector wins a tie */
        }
        used++;
    }
    if (!rc && c->combine == CFG_COMBINE_MEAN)
        for (size_t i = 0; i < n; i++) a[i] /= used;
    free(z);
    free(best);
    return rc;
}

/* ================================================================ explaining */

/* Which of ref's objects count as unremarkable (score at most the 90th
 * percentile), of those a neighbour list can name: with the reference rows
 * kept alone (stage_drop_rows; the lists name them only), those, in the
 * order of keep.ref (a byte each, from their owners: a sum over the
 * processes); else every object, shared (a neighbour may be any process's).
 * *out (malloc'd) owned by the caller; read through is_normal. */
static int normal_objects(const run_state *ref, uint8_t **out, ody_err *err)
{
    const double *a = ref->score[CFG_SCORE_ANOMALY];
    size_t n = ref->n, nl = stage_rows(ref), m = !ref->cat->X && ref->keep.ref ? ref->keep.m : 0;
    double lim = 0;
    uint8_t *v = malloc((m ? m : n) + 1);
    uint32_t *u = m ? calloc(m, sizeof *u) : NULL;
    int rc = ody_comm_agree(ref->comm, v && (!m || u) ? 0 : ody_fail(err, ODY_ENOMEM, "out of memory"), err);
    if (!rc) rc = ody_select(ref->comm, a, nl, (uint64_t)(0.9 * (double)(n - 1)), &lim, err);
    for (size_t i = 0; !rc && !m && i < nl; i++) v[ref->lo + i] = a[i] <= lim;
    if (!rc && !m) rc = ody_share_rows(ref->comm, v, n, 1, err);
    for (size_t q = 0; !rc && q < m; q++) {
        size_t r = (size_t)ref->keep.ref[q];
        if (r >= ref->lo && r < ref->hi) u[q] = a[r - ref->lo] <= lim;
    }
    if (!rc && m) rc = ody_allreduce(ref->comm, u, m, ODY_SUM_U32, err);
    for (size_t q = 0; !rc && q < m; q++) v[q] = (uint8_t)u[q];
    free(u);
    if (rc) free(v);
    *out = rc ? NULL : v;
    return rc;
}

/* Whether ref's object j is unremarkable, from normal_objects' flags. */
static int is_normal(const run_state *ref, const uint8_t *normal, int32_t j)
{
    if (ref->cat->X || !ref->keep.ref) return normal[j];
    long q = stage_ref_index(ref, (size_t)j);
    return q >= 0 && normal[q];
}

#define BLOCK_GAP 5  /* elements of a block this close to a named reason's run add nothing to WHY */

/* Per feature, the first feature of its block (a vector column or spectrum:
 * names NAME[k] or NAME@x sharing NAME), or -1 for a scalar. */
static int32_t *blocks(const cat *k)
{
    int32_t *b = malloc((k->n_feat ? k->n_feat : 1) * sizeof *b);
    if (!b) return NULL;
    for (size_t j = 0; j < k->n_feat; j++) {
        const char *nj = k->feat_names[j];
        size_t lj = strcspn(nj, "[@");
        b[j] = -1;
        if (!nj[lj]) continue;
        b[j] = (int32_t)j;
        if (j && b[j - 1] >= 0) {
            const char *np = k->feat_names[j - 1];
            if (strcspn(np, "[@") == lj && !strncmp(np, nj, lj)) b[j] = b[j - 1];
        }
    }
    return b;
}

/* Whether element g deviates as f does: the same block, the same sign, by
 * at least a quarter as much. */
static int alike(const float *dev, const int32_t *blk, int f, int g)
{
    float q = 0.25f * dev[f];
    return blk[g] == blk[f] && (q > 0 ? dev[g] >= q : dev[g] <= q);
}

/* The unbroken run [*a, *b] of elements around f that deviate as f does: a
 * line or a raised continuum, what one reason names.  A scalar feature is
 * its own run. */
static void run_of(const float *dev, const int32_t *blk, int F, int f, int *a, int *b)
{
    *a = *b = f;
    if (blk[f] < 0 || dev[f] == 0) return;
    while (*a > 0 && alike(dev, blk, f, *a - 1)) (*a)--;
    while (*b + 1 < F && alike(dev, blk, f, *b + 1)) (*b)++;
}

/* Reason w, at feature f: what WHY names (span[0..1]), f's run short of the
 * w earlier reasons' stretches, which f is outside; and the stretch [lo[w],
 * hi[w]] no later reason may name, the run and BLOCK_GAP elements of the
 * block beyond either end (a line's shoulders), so that the next reason is
 * another part of the spectrum. */
static void reason_at(const float *dev, const int32_t *blk, int F, int f, int w, int *lo, int *hi, int32_t *span)
{
    int a, b;
    run_of(dev, blk, F, f, &a, &b);
    lo[w] = a, hi[w] = b;
    for (int k = 0; blk[f] >= 0 && k < BLOCK_GAP && lo[w] > 0 && blk[lo[w] - 1] == blk[f]; k++) lo[w]--;
    for (int k = 0; blk[f] >= 0 && k < BLOCK_GAP && hi[w] + 1 < F && blk[hi[w] + 1] == blk[f]; k++) hi[w]++;
    for (int u = 0; u < w; u++) {
        if (lo[u] > f && b >= lo[u]) b = lo[u] - 1;
        if (hi[u] < f && a <= hi[u]) a = hi[u] + 1;
    }
    span[0] = a, span[1] = b;
}

/* Object i of q's explanation from its normal neighbours among ref's
 * objects (all of them when none is normal): the n_why largest
 * |deviations|, one a stretch of a block (a spectral line is one reason, not
 * five pixels). */
static void explain(run_state *q, const run_state *ref, const knn_scale *sc, const uint8_t *normal, size_t i,
                    float *col, int32_t *nb, const float **rows, float *dev, const int32_t *blk)
{
    int F = q->F, K = q->c->local_k < q->K ? q->c->local_k : q->K, m = 0;
    const int32_t *near = q->near + i * (size_t)q->K;
    for (int k = 0; k < q->K && m < K; k++)
        if (near[k] >= 0 && is_normal(ref, normal, near[k])) nb[m++] = near[k];
    for (int k = 0; m == 0 && k < K; k++) nb[k] = near[k];
    if (m == 0) m = K;
    const float *x = q->X + i * (size_t)F;
    for (int k = 0; k < m; k++) {  /* the neighbours' rows (reference rows: held by every process) */
        const float *r = nb[k] >= 0 ? stage_row(ref, (size_t)nb[k]) : NULL;
        rows[k] = r ? r : x;
    }
    for (int f = 0; f < F; f++) {
        for (int k = 0; k < m; k++) {  /* insertion sort: m is a handful, F can be thousands */
            float v = knn_z(sc, rows[k][f], f);
            int r = k;
            for (; r > 0 && col[r - 1] > v; r--) col[r] = col[r - 1];
            col[r] = v;
        }
        float med = m % 2 ? col[m / 2] : 0.5f * (col[m / 2 - 1] + col[m / 2]);
        dev[f] = knn_z(sc, x[f], f) - med;
    }
    int32_t *wf = q->why_feat + i * (size_t)q->n_why, *ws = q->why_span + 2 * i * (size_t)q->n_why;
    float *wd = q->why_dev + i * (size_t)q->n_why;
    int w0 = 0;
    if (q->driver[i] == CFG_SCORE_HEAP && q->heap_feat && q->heap_feat[i] >= 0 && q->n_why > 0) {
        wf[0] = q->heap_feat[i];  /* the value it shares with its small group comes first */
        wd[0] = dev[wf[0]];
        w0 = 1;
    }
    int lo[CFG_EXPLAIN_MAX], hi[CFG_EXPLAIN_MAX];  /* the stretch each reason covers */
    if (w0) reason_at(dev, blk, F, wf[0], 0, lo, hi, ws);
    for (int w = w0; w < q->n_why; w++) {
        int best = -1;
        for (int f = 0; f < F; f++) {
            int taken = 0;
            for (int u = 0; u < w; u++) taken |= f >= lo[u] && f <= hi[u];
            if (!taken && (best < 0 || fabsf(dev[f]) > fabsf(dev[best]))) best = f;
        }
        wf[w] = best;
        wd[w] = best >= 0 ? dev[best] : 0;
        if (best >= 0) reason_at(dev, blk, F, best, w, lo, hi, ws + 2 * w);
        else lo[w] = 0, hi[w] = -1, ws[2 * w] = ws[2 * w + 1] = -1;
    }
}

int stage_explain(run_state *q, const run_state *ref, ody_err *err)
{
    if (!q->n_why) return 0;
    knn_scale sc = {0};
    uint8_t *normal = NULL;
    int rc = normal_objects(ref, &normal, err);
    if (rc) return rc;
    int32_t *blk = blocks(ref->cat);
    const knn_scale *kept = stage_kept_scale(ref);  /* the local stage's, fitted on the reference rows */
    rc = kept ? 0 : stage_scale_fit(ref, &sc, err);
    if (rc) {
        free(blk);
        free(normal);
        return rc;
    }
    int fail = !blk;
    size_t nl = stage_rows(q);  /* each process its rows */
    if (!fail) {
#pragma omp parallel num_threads(ody_threads(q->c->threads))
    {
        float *col = malloc((size_t)q->K * sizeof *col), *dev = malloc((size_t)q->F * sizeof *dev);
        int32_t *nb = malloc((size_t)q->K * sizeof *nb);
        const float **rows = malloc((size_t)q->K * sizeof *rows);
        int ok = col && dev && nb && rows;
        if (!ok) {
#pragma omp atomic write
            fail = 1;
        }
#pragma omp for schedule(static)
        for (size_t i = 0; i < nl; i++)
            if (ok) explain(q, ref, kept ? kept : &sc, normal, i, col, nb, rows, dev, blk);
        free(col);
        free(dev);
        free(nb);
        free(rows);
    }
    }
    knn_scale_free(&sc);
    free(blk);
    free(normal);
    return ody_comm_agree(q->comm, fail ? ody_fail(err, ODY_ENOMEM, "out of memory") : 0, err);
}

/* ================================================================ the stage */

static int score(run_state *st, int run, ody_err *err)
{
    size_t n = stage_rows(st);
    st->n_why = st->c->explain < st->F ? st->c->explain : st->F;
    st->why_feat = malloc((n * (size_t)st->n_why + 1) * sizeof *st->why_feat);
    st->why_dev = malloc((n * (size_t)st->n_why + 1) * sizeof *st->why_dev);
    st->why_span = malloc((2 * n * (size_t)st->n_why + 1) * sizeof *st->why_span);
    st->driver = malloc((n ? n : 1) * sizeof *st->driver);
    st->n_det = 0;
    for (int s = 0; s < CFG_N_SCORES; s++) st->n_det += st->c->detectors >> s & 1;
    st->det_z = malloc((n ? n : 1) * (size_t)(st->n_det ? st->n_det : 1) * sizeof *st->det_z);
    if (!st->why_feat || !st->why_dev || !st->why_span || !st->driver || !st->det_z || !store_score(st, CFG_SCORE_ANOMALY))
        return ody_fail(err, ODY_ENOMEM, "out of memory");
    if (!run) return load_score(st, err);
    int rc = stage_combine(st, st, err);
    if (!rc) rc = stage_explain(st, st, err);
    if (rc) return rc;
    fitsout_col cols[] = {{"ANOMALY_SCORE", TDOUBLE, 1, st->score[CFG_SCORE_ANOMALY], NULL, NULL},
                          {"DRIVER", TINT, 1, st->driver, NULL, NULL},
                          {"WHY_FEATURE", TINT, st->n_why, st->why_feat, NULL, NULL},
                          {"WHY_DEVIATION", TFLOAT, st->n_why, st->why_dev, NULL, NULL},
                          {"WHY_SPAN", TINT, 2 * st->n_why, st->why_span, NULL,
                           "first and last feature (0-based) of each WHY_FEATURE's run: a spectrum's elements deviating as it does"},
                          {"DETECTOR_Z", TDOUBLE, st->n_det, st->det_z, NULL,
                           "robust z (clipped at 0, times its weight) of each of score.detectors, in their order"}};
    if (!st->n_why) cols[2] = cols[5];
    return store_save_objects(st, "score.fits", "SCORE", cols, st->n_why ? 6 : 3, err);
}

const stage_def stage_score = {
    .name = "score",
    .what = "the default anomaly score (score.detectors combined) and each object's most deviant features",
    .keys = (const char *const[]){"score.", "local.k", NULL},
    .reads = (const char *const[]){"forest", "weirdness", "similarity", "local", "mlp", NULL},
    .writes = (const char *const[]){"score.fits", NULL},
    .version = 7,  /* 3: one WHY entry a stretch of a block; 4: score.local_weight; 5: WHY in the local
                      stage's standardisation, fitted on the reference rows; 6: an object good in no tree
                      gives no weirdness evidence; 7: WHY_SPAN, and a stretch five elements
                      beyond either end of its run */
    .fn = score,
};
