/* report_html.c — the report folder: pictures, plots, index.html, top.csv.
 *
 * Everything is written into report.tmp-PID beside the old report, which is
 * then swapped out: a reader sees the old report or the new one, never a
 * mix, and a killed run leaves a temporary the next run removes. */
#define _GNU_SOURCE
#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "repview.h"

static const plt_rgba GREY = {0.35, 0.4, 0.5, 0.35}, RED = {0.85, 0.1, 0.1, 1}, BLUE = {0.2, 0.35, 0.75, 1};

typedef struct out {
    const rep_view *v;
    char *tmp;          /* the folder being written */
    size_t top;         /* cards */
    uint8_t *pic;       /* rows with a picture */
    int ra, dec;        /* pass-through columns, -1 when absent */
} out;

static int save(const out *o, plt *p, const char *name, ody_err *err)
{
    if (!p) return ody_fail(err, ODY_ENOMEM, "out of memory drawing %s", name);
    char path[4300];
    snprintf(path, sizeof path, "%s/%s", o->tmp, name);
    int rc = plt_save_png(p, path, err);
    plt_destroy(p);
    return rc;
}

/* ================================================================ pictures */

/* The top objects and their neighbours get a picture each: img/r<row>.png. */
static int pictures(out *o, ody_err *err)
{
    const rep_view *v = o->v;
    size_t m = 0, *rows = malloc((v->n ? v->n : 1) * sizeof *rows);
    o->pic = calloc(v->n ? v->n : 1, 1);
    if (!rows || !o->pic) { free(rows); return ody_fail(err, ODY_ENOMEM, "out of memory"); }
    for (size_t r = 0; r < o->top; r++) {
        size_t i = v->order[r];
        if (!o->pic[i]) o->pic[i] = 1, rows[m++] = i;
        for (int q = 0; q < v->k_nb && q < REP_SHOW_NB; q++) {
            int32_t j = v->nb[i * (size_t)v->k_nb + (size_t)q];
            if (j >= 0 && !o->pic[j]) o->pic[j] = 1, rows[m++] = (size_t)j;
        }
    }
    cut_set *cs = NULL;
    int rc = v->c->cut_path[0] ? rep_cutouts(v, rows, m, &cs, err) : 0;
    for (size_t r = 0; r < m && !rc; r++) {
        char name[64];
        snprintf(name, sizeof name, "img/r%zu.png", rows[r]);
        size_t px = cs ? (size_t)cs->n_bands * cs->size * cs->size : 0;
        rc = save(o, rep_picture_plot(v, rows[r], cs && cs->have[r] ? cs->pix + r * px : NULL, cs ? cs->n_bands : 0,
                                      cs ? cs->size : 0), name, err);
    }
    cut_destroy(cs);
    free(rows);
    return rc;
}

/* ================================================================ plots */

static int score_plot(const out *o, ody_err *err)
{
    const rep_view *v = o->v;
    const double *s = rep_rank_score(v);
    double lo = INFINITY, hi = -INFINITY;
    for (size_t i = 0; i < v->n; i++) lo = fmin(lo, s[i]), hi = fmax(hi, s[i]);
    plt_pad_range(&lo, &hi, 0.02);
    enum { NB = 60 };
    double count[NB] = {0}, cmax = 1;
    for (size_t i = 0; i < v->n; i++) {
        int b = (int)((s[i] - lo) / (hi - lo) * NB);
        count[b < 0 ? 0 : b >= NB ? NB - 1 : b]++;
    }
    for (int b = 0; b < NB; b++) cmax = fmax(cmax, count[b]);
    plt *p = plt_create(520, 300);
    plt_axes a = plt_axes_in(520, 300);
    a.xmin = lo, a.xmax = hi, a.ymin = 0.7, a.ymax = cmax * 1.5, a.logy = 1;
    plt_bars(p, &a, count, NB, BLUE);
    char lab[64];
    snprintf(lab, sizeof lab, "top %zu", o->top);
    plt_vline(p, &a, s[v->order[o->top - 1]], RED, 1, lab);
    const char *name = v->learned && s == v->learned ? "LEARNED_SCORE" : stage_score_column(v->c->rank_by, NULL);
    plt_frame(p, &a, name, "objects", "Score distribution");
    return save(o, p, "score.png", err);
}

/* Unit-length columns v0, v1 (F each) by Gram-Schmidt; the largest change
 * of direction from before (1 - |cos|). */
static double orthonormalize(double *w, const double *v, size_t F)
{
    double *w0 = w, *w1 = w + F, d = 0, n0 = 0, n1 = 0, c0 = 0, c1 = 0;
    for (size_t j = 0; j < F; j++) n0 += w0[j] * w0[j];
    n0 = sqrt(n0) > 0 ? sqrt(n0) : 1;
    for (size_t j = 0; j < F; j++) w0[j] /= n0, d += w0[j] * w1[j];
    for (size_t j = 0; j < F; j++) w1[j] -= d * w0[j], n1 += w1[j] * w1[j];
    n1 = sqrt(n1) > 0 ? sqrt(n1) : 1;
    for (size_t j = 0; j < F; j++) w1[j] /= n1, c0 += w0[j] * v[j], c1 += w1[j] * v[F + j];
    return fmax(1 - fabs(c0), 1 - fabs(c1));
}

/* The first two principal components of the standardised features by
 * subspace iteration on at most 4,000 rows (an even stride): O(n F) a step,
 * where the covariance matrix would be O(n F^2) — a spectrum has thousands
 * of features.  Deterministic; *frac: their shares of the variance. */
static int pca2(const float *X, size_t n, size_t F, double *x, double *y, double frac[2], ody_err *err)
{
    double *mu = calloc(F, sizeof *mu), *sd = calloc(F, sizeof *sd), *v = calloc(2 * F, sizeof *v);
    double *w = malloc(2 * F * sizeof *w), *z = malloc(F * sizeof *z);
    if (!mu || !sd || !v || !w || !z) {
        free(mu), free(sd), free(v), free(w), free(z);
        return ody_fail(err, ODY_ENOMEM, "out of memory");
    }
    for (size_t i = 0; i < n; i++)
        for (size_t j = 0; j < F; j++) mu[j] += X[i * F + j];
    for (size_t j = 0; j < F; j++) mu[j] /= (double)n;
    for (size_t i = 0; i < n; i++)
        for (size_t j = 0; j < F; j++) sd[j] += (X[i * F + j] - mu[j]) * (X[i * F + j] - mu[j]);
    double total = 0;
    for (size_t j = 0; j < F; j++) {
        total += sd[j] > 0;
        sd[j] = sd[j] > 0 ? sqrt(sd[j] / (double)n) : INFINITY;  /* a constant feature counts 0 */
        v[j] = 1, v[F + j] = j % 2 ? 1.0 : -1.0;
    }
    orthonormalize(v, v, F);
    size_t step = n > 4000 ? (n + 3999) / 4000 : 1, m = 0;
    double lam[2] = {0, 0};
    for (int it = 0; it < 300; it++) {
        memset(w, 0, 2 * F * sizeof *w);
        lam[0] = lam[1] = 0, m = 0;
        for (size_t i = 0; i < n; i += step, m++) {
            double u0 = 0, u1 = 0;
            for (size_t j = 0; j < F; j++) {
                z[j] = (X[i * F + j] - mu[j]) / sd[j];
                u0 += z[j] * v[j], u1 += z[j] * v[F + j];
            }
            for (size_t j = 0; j < F; j++) w[j] += z[j] * u0, w[F + j] += z[j] * u1;
            lam[0] += u0 * u0, lam[1] += u1 * u1;
        }
        double change = orthonormalize(w, v, F);
        memcpy(v, w, 2 * F * sizeof *v);
        if (change < 1e-10) break;
    }
    for (size_t i = 0; i < n; i++) {
        double u0 = 0, u1 = 0;
        for (size_t j = 0; j < F; j++) {
            double zz = (X[i * F + j] - mu[j]) / sd[j];
            u0 += zz * v[j], u1 += zz * v[F + j];
        }
        x[i] = u0, y[i] = u1;
    }
    frac[0] = total > 0 ? lam[0] / (double)m / total : 0;
    frac[1] = total > 0 ? lam[1] / (double)m / total : 0;
    free(mu), free(sd), free(v), free(w), free(z);
    return 0;
}

/* The two features report.map names, the only feature against the score,
 * or the first two principal components (x and y: n each). */
static int map_coords(const rep_view *v, double *x, double *y, char *xl, char *yl, size_t len, ody_err *err)
{
    size_t n = v->n, F = v->k->n_feat;
    const float *X = v->k->X;
    int fx = -1, fy = -1;
    for (size_t j = 0; j < F && v->c->n_rep_map == 2; j++) {
        if (!strcasecmp(v->k->feat_names[j], v->c->rep_map[0])) fx = (int)j;
        if (!strcasecmp(v->k->feat_names[j], v->c->rep_map[1])) fy = (int)j;
    }
    if (F == 1 && fx < 0) fx = 0;
    if (fx >= 0) {
        const double *s = rep_rank_score(v);
        for (size_t i = 0; i < n; i++) x[i] = X[i * F + (size_t)fx], y[i] = fy >= 0 ? X[i * F + (size_t)fy] : s[i];
        snprintf(xl, len, "%s", v->k->feat_names[fx]);
        snprintf(yl, len, "%s", fy >= 0 ? v->k->feat_names[fy] : "score");
        return 0;
    }
    double frac[2] = {0, 0};
    int rc = pca2(X, n, F, x, y, frac, err);
    snprintf(xl, len, "principal component 1 (%.0f%% of the variance)", 100 * frac[0]);
    snprintf(yl, len, "component 2 (%.0f%%)", 100 * frac[1]);
    return rc;
}

/* Every object (an even subsample beyond 50,000) in grey, the top in red. */
static int scatter(const out *o, const double *x, const double *y, const char *xl, const char *yl, const char *title,
                   int flipx, const char *name, ody_err *err)
{
    const rep_view *v = o->v;
    size_t n = v->n, step = n > 50000 ? (n + 49999) / 50000 : 1, m = 0;
    double *tx = malloc((o->top + 1) * sizeof *tx), *ty = malloc((o->top + 1) * sizeof *ty);
    double *gx = malloc((n / step + 1) * sizeof *gx), *gy = malloc((n / step + 1) * sizeof *gy);
    plt *p = plt_create(520, 420);
    int rc = tx && ty && gx && gy && p ? 0 : ody_fail(err, ODY_ENOMEM, "out of memory");
    if (!rc) {
        plt_axes a = plt_axes_in(520, 420);
        a.xmin = a.ymin = INFINITY, a.xmax = a.ymax = -INFINITY, a.flipx = flipx;
        for (size_t i = 0; i < n; i++) {
            if (!isfinite(x[i]) || !isfinite(y[i])) continue;
            a.xmin = fmin(a.xmin, x[i]), a.xmax = fmax(a.xmax, x[i]);
            a.ymin = fmin(a.ymin, y[i]), a.ymax = fmax(a.ymax, y[i]);
        }
        plt_pad_range(&a.xmin, &a.xmax, 0.03);
        plt_pad_range(&a.ymin, &a.ymax, 0.03);
        for (size_t i = 0; i < n; i += step) gx[m] = x[i], gy[m++] = y[i];
        plt_points(p, &a, gx, gy, m, 1.5, GREY, 0);
        for (size_t r = 0; r < o->top; r++) tx[r] = x[v->order[r]], ty[r] = y[v->order[r]];
        plt_points(p, &a, tx, ty, o->top, 4, RED, 1);
        char t[160];
        snprintf(t, sizeof t, "%s: top %zu in red", title, o->top);
        plt_frame(p, &a, xl, yl, t);
        rc = save(o, p, name, err);
        p = NULL;
    }
    plt_destroy(p);
    free(tx), free(ty), free(gx), free(gy);
    return rc;
}

static int map_plot(const out *o, ody_err *err)
{
    size_t n = o->v->n;
    double *x = malloc((n ? n : 1) * sizeof *x), *y = malloc((n ? n : 1) * sizeof *y);
    char xl[160], yl[160];
    int rc = x && y ? map_coords(o->v, x, y, xl, yl, sizeof xl, err) : ody_fail(err, ODY_ENOMEM, "out of memory");
    if (!rc) rc = scatter(o, x, y, xl, yl, "The catalog", 0, "map.png", err);
    free(x), free(y);
    return rc;
}

static int sky_plot(const out *o, ody_err *err)
{
    const cat *k = o->v->k;
    return scatter(o, k->pass[o->ra].f, k->pass[o->dec].f, "RA (deg)", "Dec (deg)", "Sky positions", 1, "sky.png", err);
}

/* How far down the ranking before labels the interesting objects were: the
 * number labelled 1 (and 0) at ANOMALY_SCORE rank <= x. */
static int discovery_plot(const out *o, ody_err *err)
{
    const rep_view *v = o->v;
    size_t n = v->n, *byanom = malloc((n ? n : 1) * sizeof *byanom);
    double *x = malloc((n + 1) * sizeof *x), *y1 = malloc((n + 1) * sizeof *y1), *y0 = malloc((n + 1) * sizeof *y0);
    int rc = byanom && x && y1 && y0 ? 0 : ody_fail(err, ODY_ENOMEM, "out of memory");
    if (!rc) rc = stage_rank_order(v->score[CFG_SCORE_ANOMALY], NULL, n, byanom, err);  /* the list before labels */
    if (!rc) {
        double c1 = 0, c0 = 0, last = 1;
        x[0] = 0, y1[0] = y0[0] = 0;
        for (size_t r = 0; r < n; r++) {
            int l = v->label[byanom[r]];
            c1 += l == 1, c0 += l == 0;
            if (l >= 0) last = (double)r + 1;
            x[r + 1] = (double)r + 1, y1[r + 1] = c1, y0[r + 1] = c0;
        }
        plt *p = plt_create(520, 300);
        plt_axes a = plt_axes_in(520, 300);
        a.xmin = 0, a.xmax = fmin((double)n, last * 1.1 + 1), a.ymin = 0, a.ymax = fmax(1, fmax(c1, c0)) * 1.1;
        plt_line(p, &a, x, y0, n + 1, 1.5, (plt_rgba){0.5, 0.5, 0.5, 1});
        plt_line(p, &a, x, y1, n + 1, 2, RED);
        plt_frame(p, &a, "rank by ANOMALY_SCORE (before labels)", "labelled objects",
                  "Discovery: interesting (red), not interesting (grey)");
        rc = save(o, p, "discovery.png", err);
    }
    free(byanom), free(x), free(y1), free(y0);
    return rc;
}

/* A pass-through column of float type whose name is one of names. */
static int find_pass(const cat *k, const char *const *names)
{
    for (int p = 0; p < k->n_pass; p++)
        for (int q = 0; names[q]; q++)
            if (!strcasecmp(k->pass[p].name, names[q]) && k->pass[p].type == CAT_COL_FLOAT) return p;
    return -1;
}

static int plots(out *o, ody_err *err)
{
    static const char *const ra[] = {"ra", "raj2000", "ra_icrs", "ra_j2000", "radeg", "alpha_j2000", NULL};
    static const char *const dec[] = {"dec", "dej2000", "decj2000", "de_icrs", "dec_j2000", "decdeg", "delta_j2000",
                                      NULL};
    o->ra = find_pass(o->v->k, ra);
    o->dec = find_pass(o->v->k, dec);
    if (o->ra < 0 || o->dec < 0) o->ra = o->dec = -1;
    int rc = score_plot(o, err);
    if (!rc) rc = map_plot(o, err);
    if (!rc && o->ra >= 0) rc = sky_plot(o, err);
    if (!rc && o->v->label) rc = discovery_plot(o, err);
    return rc;
}

/* ================================================================ the folder */

/* rm -r of report.old-PID after the swap; a failure there only leaves a
 * stale folder the next run sweeps. */
static int swap_in(const rep_view *v, const char *tmp, ody_err *err)
{
    char dst[4200], old[4200];
    snprintf(dst, sizeof dst, "%s/report", v->dir);
    snprintf(old, sizeof old, "%s/report.old.tmp-%ld", v->dir, (long)getpid());
    int had = rename(dst, old) == 0;
    if (!had && errno != ENOENT)
        return ody_fail(err, ODY_EIO, "%s: cannot replace the old report (%s)", dst, strerror(errno));
    if (rename(tmp, dst)) {
        int e = errno;
        if (had) rename(old, dst);
        return ody_fail(err, ODY_EIO, "%s: cannot write the report (%s)", dst, strerror(e));
    }
    if (had) store_remove_tree(old);
    return 0;
}

int rep_write(const rep_view *v, ody_err *err)
{
    out o = {.v = v, .top = v->c->rep_top < 1 ? 1 : (size_t)v->c->rep_top};
    if (o.top > v->n) o.top = v->n;
    if (!v->n) return ody_fail(err, ODY_EINPUT, "%s: the run has no objects to report", v->dir);
    if (asprintf(&o.tmp, "%s/report.tmp-%ld", v->dir, (long)getpid()) < 0) return ody_fail(err, ODY_ENOMEM, "oom");
    char img[4300];
    snprintf(img, sizeof img, "%s/img", o.tmp);
    store_remove_tree(o.tmp);
    int rc = mkdir(o.tmp, 0755) || mkdir(img, 0755)
                 ? ody_fail(err, ODY_EIO, "%s: cannot create the report folder (%s) — check the run folder is "
                            "writable", o.tmp, strerror(errno)) : 0;
    if (!rc) rc = pictures(&o, err);
    if (!rc) rc = plots(&o, err);
    if (!rc) rc = rep_html(v, o.tmp, o.top, o.ra >= 0, err);
    if (!rc) rc = swap_in(v, o.tmp, err);
    if (rc) store_remove_tree(o.tmp);
    free(o.tmp);
    free(o.pic);
    return rc;
}
