/* bench_driver.c — timing driver for the bench/ Python scripts: reads a FITS table and runs
 * one forest task, printing one JSON line.  Not installed; not a user tool.
 *
 *   oddsky-bench train FILE LABEL TREES THREADS REPEATS [MAX_SAMPLES]
 *       supervised forest on every numeric column but LABEL and ROW_ID
 *   oddsky-bench weird FILE TREES THREADS MAX_SAMPLES TOPK [LABEL]
 *       unsupervised: synthetic + forest + weirdness (+ top-k), on every
 *       numeric column but LABEL and ROW_ID; writes scores to FILE.scores
 *   oddsky-bench knn FILE K THREADS [REFERENCE [auto|tree|scan]]
 *       neighbour search on every numeric column but ROW_ID, standardised,
 *       among a seeded sample of REFERENCE rows (0: all): build and
 *       all-k-nearest times, the search used
 *   oddsky-bench read FILE
 *       catalog ingest of every numeric column: time, peak RSS and the size
 *       of the feature matrix it holds
 *   oddsky-bench learn ANOMALIES.fits TRUTH BUDGET BW:STRENGTH:REWEIGHT[,...]
 *       the simulated astronomer: from a run's ranked list (features F_*,
 *       the default detectors ISOLATION, WEIRDNESS, LOCAL, CONTEXT at the
 *       default weights; KNN_DIST for the kernel) shows the top unlabelled
 *       object BUDGET times, labels it with TRUTH, re-ranks (learn.h); the
 *       anomalies found after each step, unsupervised and per setting
 *   oddsky-bench mlp FILE LABEL EPOCHS H1 H2 BATCH LR
 *       MLP (relu, relu, sigmoid + BCE, SGD + Nesterov momentum 0.9) for a
 *       fixed number of epochs; samples/s, validation accuracy, GFLOP/s and
 *       OpenBLAS sgemm GFLOP/s on the same shapes
 */
#define _GNU_SOURCE
#include <fitsio.h>
#include <math.h>
#include <omp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>

#include <gsl/gsl_cblas.h>

void openblas_set_num_threads(int num_threads);

#include "cat.h"
#include "cfg.h"
#include "knn.h"
#include "learn.h"
#include "nn.h"
#include "rf.h"

static double peak_rss_mb(void)
{
    struct rusage ru;
    getrusage(RUSAGE_SELF, &ru);
    return ru.ru_maxrss / 1024.0;
}

static int die(const ody_err *e)
{
    fprintf(stderr, "oddsky-bench: %s\n", e->msg);
    return 2;
}

/* Reads every numeric scalar column except `skip` (and ROW_ID) as features. */
static int read_table(const char *path, const char *label, cat **c, ody_err *e)
{
    cat_info *info = NULL;
    if (cat_inspect(path, &info, e)) return 1;
    const cat_hduinfo *h = &info->hdu[1];
    const char **feats = calloc((size_t)h->n_cols, sizeof *feats);
    int nf = 0;
    for (int k = 0; k < h->n_cols; k++) {
        const cat_colinfo *ci = &h->cols[k];
        if (ci->typecode == TSTRING || ci->repeat != 1) continue;
        if ((label && !strcasecmp(ci->name, label)) || !strcasecmp(ci->name, "ROW_ID")) continue;
        feats[nf++] = ci->name;
    }
    cat_opt o;
    cat_opt_init(&o);
    o.path = path;
    o.features = feats;
    o.n_features = nf;
    const char *pass[1] = {label};
    if (label) { o.passthru = pass; o.n_passthru = 1; }
    int rc = cat_read(&o, c, NULL, e);
    free(feats);
    cat_info_destroy(info);
    return rc;
}

typedef struct bench_rows {
    const float *X;
    size_t F;
} bench_rows;

static const float *bench_row(const void *ctx, size_t r)
{
    const bench_rows *b = ctx;
    return b->X + r * b->F;
}

/* CONTEXT of n rows from their lists among the m rows ref (NULL: all), as
 * the local stage computes it. */
static int context(const float *X, size_t n, int F, const int32_t *idx, int k, int n_threads, const int32_t *ref,
                   size_t m, ody_err *e)
{
    bench_rows rows = {X, (size_t)F};
    knn_context_in in = {n, F, k, X, idx, bench_row, &rows, n_threads};
    double *typ = malloc(((size_t)F + 1) * sizeof *typ), *out = malloc((n + 1) * sizeof *out);
    float *G = malloc((m * (size_t)F + 1) * sizeof *G);
    int rc = !typ || !out || !G ? ody_fail(e, ODY_ENOMEM, "out of memory") : knn_context_ref(NULL, &in, 0, ref, m, G, e);
    if (!rc) rc = knn_context_typical(G, m, F, typ, e);
    if (!rc) rc = knn_context(&in, typ, G, ref, m, out, e);
    free(typ);
    free(out);
    free(G);
    return rc;
}

/* HEAP of n rows X against the m rows ref (sorted; NULL: all), as the
 * local stage computes it. */
static int heap(const float *X, size_t n, int F, int k, int n_threads, const int32_t *ref, size_t m, ody_err *e)
{
    float *V = ref ? malloc((m * (size_t)F + 1) * sizeof *V) : NULL;
    uint8_t *is_ref = malloc(n + 1);
    double *out = malloc((n + 1) * sizeof *out);
    knn_heap *h = NULL;
    int rc = (ref && !V) || !is_ref || !out ? ody_fail(e, ODY_ENOMEM, "out of memory") : 0;
    for (size_t q = 0; !rc && ref && q < m; q++) memcpy(V + q * (size_t)F, X + (size_t)ref[q] * F, (size_t)F * sizeof *V);
    for (size_t i = 0, at = 0; !rc && i < n; i++) {
        while (ref && at < m && (size_t)ref[at] < i) at++;
        is_ref[i] = !ref || (at < m && (size_t)ref[at] == i);
    }
    if (!rc) rc = knn_heap_create(ref ? V : X, m, F, k, &h, e);
    if (!rc) knn_heap_score(h, X, n, is_ref, n_threads, out, NULL);
    knn_heap_destroy(h);
    free(V);
    free(is_ref);
    free(out);
    return rc;
}

/* One neighbour search as the local stage runs it: X standardised in
 * place, k neighbours of every row among a seeded sample of `ref` rows
 * (0 or >= n: all). */
typedef struct knn_bench {
    int k, n_threads;
    size_t ref;
    knn_method method;
    int context;             /* also CONTEXT from the lists, as the local stage does */
    int heap;                /* then HEAP, timed apart: the local stage computes it only when asked for */
    double build_s, all_s;   /* out: all_s includes CONTEXT */
    double heap_s;           /* out */
    knn_method used;         /* out */
    double mean_kdist;       /* out */
} knn_bench;

static int knn_run(knn_bench *kb, float *X, size_t n, int F, ody_err *e)
{
    size_t m = kb->ref == 0 || kb->ref > n ? n : kb->ref;
    kb->ref = m;
    int32_t *ref = m < n ? malloc(m * sizeof *ref) : NULL;
    ody_rng r;
    ody_rng_stream(&r, 1, 0);
    for (size_t i = 0, got = 0; ref && i < n && got < m; i++)
        if (ody_rng_below(&r, n - i) < m - got) ref[got++] = (int32_t)i;
    knn_standardize(X, n, F, X);
    knn_opt ko;
    knn_opt_init(&ko);
    ko.k = kb->k;
    ko.n_threads = kb->n_threads;
    ko.method = kb->method;
    int32_t *idx = malloc(n * (size_t)ko.k * sizeof *idx);
    float *dist = malloc(n * (size_t)ko.k * sizeof *dist);
    knn_tree *t = NULL;
    double t0 = ody_now();
    int rc = !idx || !dist ? ody_fail(e, ODY_ENOMEM, "out of memory") : knn_build(X, n, F, ref, m, &t, e);
    kb->build_s = ody_now() - t0;
    t0 = ody_now();
    if (!rc) rc = knn_all(t, X, n, &ko, idx, dist, &kb->used, e);
    if (!rc && kb->context) rc = context(X, n, F, idx, ko.k, kb->n_threads, ref, m, e);
    kb->all_s = ody_now() - t0;
    t0 = ody_now();
    if (!rc && kb->heap) rc = heap(X, n, F, ko.k, kb->n_threads, ref, m, e);
    kb->heap_s = kb->heap ? ody_now() - t0 : 0;
    double s = 0;
    for (size_t i = 0; !rc && i < n; i++) s += dist[i * (size_t)ko.k + (size_t)ko.k - 1];
    kb->mean_kdist = s / (double)n;
    knn_destroy(t);
    free(ref);
    free(idx);
    free(dist);
    return rc;
}

/* The local stage's cost on a copy of X (20 neighbours among 20,000);
 * seconds, or -1 on error; *heap_s the opt-in HEAP's, apart. */
static double knn_stage(const float *X, size_t n, int F, int n_threads, double *heap_s, ody_err *e)
{
    float *Z = malloc(n * (size_t)F * sizeof *Z);
    if (!Z) return ody_fail(e, ODY_ENOMEM, "out of memory"), -1;
    memcpy(Z, X, n * (size_t)F * sizeof *Z);
    knn_bench kb = {20, n_threads, 20000, KNN_AUTO, 1, 1, 0, 0, 0, KNN_AUTO, 0};
    int rc = knn_run(&kb, Z, n, F, e);
    free(Z);
    *heap_s = kb.heap_s;
    return rc ? -1 : kb.build_s + kb.all_s;
}

static int cmp_dbl(const void *a, const void *b)
{
    double x = *(const double *)a, y = *(const double *)b;
    return (x > y) - (x < y);
}

/* The oracle loop of `learn`: prints {"base": [...], "runs": [[...], ...]}. */
static int learn_sim(const char *path, const char *truth, int budget, char *combos, ody_err *e)
{
    cat_info *info = NULL;
    if (cat_inspect(path, &info, e)) return 1;
    const cat_hduinfo *h = &info->hdu[1];
    enum { D = 4 };  /* the default detectors; KNN_DIST after them, then the features */
    const char *feats[600] = {"ISOLATION", "WEIRDNESS", "LOCAL", "CONTEXT", "KNN_DIST"};
    int nf = D + 1;
    for (int k = 0; k < h->n_cols && nf < 600; k++)
        if (!strncmp(h->cols[k].name, "F_", 2)) feats[nf++] = h->cols[k].name;
    cat_opt o;
    cat_opt_init(&o);
    o.path = path;
    o.features = feats;
    o.n_features = nf;
    o.passthru = &truth;
    o.n_passthru = 1;
    cat *c = NULL;
    int rc = cat_read(&o, &c, NULL, e);
    cat_info_destroy(info);
    if (rc) return 1;
    size_t n = c->n_rows;
    int F = nf - D - 1;
    cfg *dc = cfg_defaults();  /* the score's weights as shipped */
    double wt[D] = {1, 1, dc ? cfg_detector_weight(dc, CFG_SCORE_LOCAL, n) : 1,
                    dc ? cfg_detector_weight(dc, CFG_SCORE_CONTEXT, n) : 1};
    cfg_destroy(dc);
    double *col = malloc(n * sizeof *col), *z = malloc(n * sizeof *z), *zd = malloc(n * D * sizeof *zd);
    float *X = malloc(n * (size_t)F * sizeof *X), *Z = malloc(n * (size_t)F * sizeof *Z);
    int *y = malloc(n * sizeof *y);
    for (size_t i = 0; i < n; i++) {
        const cat_col *tc = &c->pass[0];  /* a 0/1 column, or a string that is "none" for ordinary objects */
        if (tc->type == CAT_COL_STRING) {
            const char *sv = tc->s + i * (size_t)(tc->width + 1);
            y[i] = strncmp(sv + strspn(sv, " "), "none", 4) != 0;
        } else y[i] = (int)(tc->type == CAT_COL_INT ? tc->i[i] : tc->f[i]);
        for (int f = 0; f < F; f++) X[i * (size_t)F + (size_t)f] = c->X[i * (size_t)nf + D + 1 + (size_t)f];
    }
    for (int d = 0; d < D; d++) {
        for (size_t i = 0; i < n; i++) col[i] = c->X[i * (size_t)nf + (size_t)d];
        if (rf_robust_z(col, n, col, n, z, e)) return 1;
        for (size_t i = 0; i < n; i++) zd[i * D + (size_t)d] = z[i] > 0 ? wt[d] * z[i] : 0;
    }
    for (size_t i = 0; i < n; i++) col[i] = c->X[i * (size_t)nf + D];
    qsort(col, n, sizeof *col, cmp_dbl);
    double kmed = col[n / 2];
    knn_standardize(X, n, F, Z);
    printf("{\"n\": %zu, \"anomalies\": %d, \"base\": [", n, 0);
    for (int t = 0, found = 0; t < budget && (size_t)t < n; t++) printf("%s%d", t ? ", " : "", found += y[t]);
    printf("], \"runs\": [");
    int first = 1;
    for (char *tok = strtok(combos, ","); tok; tok = strtok(NULL, ","), first = 0) {
        lrn_opt lo;
        lrn_opt_init(&lo);
        if (sscanf(tok, "%lf:%lf:%lf", &lo.bandwidth, &lo.strength, &lo.reweight) != 3) return 1;
        lrn l;
        if (lrn_init(&l, Z, zd, n, F, D, kmed, &lo, e)) return 1;
        printf("%s[", first ? "" : ", ");
        for (int t = 0, found = 0; t < budget && (size_t)t < n; t++) {
            size_t i = lrn_next(&l);
            found += y[i];
            printf("%s%d", t ? ", " : "", found);
            lrn_add(&l, i, y[i]);
        }
        printf("]");
        lrn_free(&l);
    }
    printf("]}\n");
    free(col); free(z); free(zd); free(X); free(Z); free(y);
    cat_destroy(c);
    return 0;
}

int main(int argc, char **argv)
{
    ody_err e = {0};
    if (argc >= 7 && !strcmp(argv[1], "train")) {
        cat *c = NULL;
        if (read_table(argv[2], argv[3], &c, &e)) return die(&e);
        uint8_t *y = malloc(c->n_rows);
        for (size_t i = 0; i < c->n_rows; i++)
            y[i] = (uint8_t)(c->pass[0].type == CAT_COL_INT ? c->pass[0].i[i] : (int64_t)c->pass[0].f[i]);
        rf_opt o;
        rf_opt_init(&o);
        o.n_trees = atoi(argv[4]);
        o.n_threads = atoi(argv[5]);
        int reps = atoi(argv[6]);
        if (argc > 7) o.max_samples = (size_t)atoll(argv[7]);
        double *oob = malloc(c->n_rows * sizeof *oob);
        printf("{\"fit_s\": [");
        double acc = NAN;
        size_t nodes = 0;
        for (int r = 0; r < reps; r++) {
            rf_forest *f = NULL;
            double t0 = ody_now();
            if (rf_train(&o, &(rf_data){c->X, c->n_rows, (int)c->n_feat, y, 0, RF_SYNTH_MARGINAL, 0, 0}, oob, c->n_rows, &f, NULL, &e)) return die(&e);
            printf("%s%.4f", r ? ", " : "", ody_now() - t0);
            acc = f->oob_accuracy;
            nodes = f->tree_off[f->n_trees];
            rf_destroy(f);
        }
        printf("], \"oob_accuracy\": %.5f, \"nodes\": %zu, \"n\": %zu, \"F\": %zu}\n", acc, nodes,
               c->n_rows, c->n_feat);
        free(oob);
        free(y);
        cat_destroy(c);
        return 0;
    }
    if (argc >= 7 && !strcmp(argv[1], "weird")) {
        const char *label = argc > 7 ? argv[7] : NULL;
        cat *c = NULL;
        double t0 = ody_now();
        if (read_table(argv[2], label, &c, &e)) return die(&e);
        double t_read = ody_now() - t0;
        rf_opt o;
        rf_opt_init(&o);
        o.n_trees = atoi(argv[3]);
        o.n_threads = atoi(argv[4]);
        o.max_samples = (size_t)atoll(argv[5]);
        int topk = atoi(argv[6]);
        size_t n = c->n_rows, F = c->n_feat;
        float *XS = malloc(2 * n * F * sizeof *XS);
        uint8_t *y = malloc(2 * n);
        memcpy(XS, c->X, n * F * sizeof *XS);
        t0 = ody_now();
        if (rf_synthesize(RF_SYNTH_MARGINAL, c->X, n, (int)F, o.seed, o.n_threads, XS + n * F, &e)) return die(&e);
        for (size_t i = 0; i < 2 * n; i++) y[i] = i >= n;
        double t_syn = ody_now() - t0;
        rf_forest *f = NULL;
        double *oob = malloc(n * sizeof *oob);
        t0 = ody_now();
        if (rf_train(&o, &(rf_data){XS, 2 * n, (int)F, y, 0, RF_SYNTH_MARGINAL, 0, 0}, oob, n, &f, NULL, &e)) return die(&e);
        double t_fit = ody_now() - t0;
        rf_sim_ctx ctx;
        double *W = malloc(n * sizeof *W);
        t0 = ody_now();
        if (rf_sim_ctx_init(&ctx, f, c->X, n, RF_LEAF_PURE_REAL, o.n_threads, NULL, &e)) return die(&e);
        if (rf_weirdness(&ctx, W, &e)) return die(&e);
        double t_w = ody_now() - t0, t_k = 0;
        int used = 0;
        if (topk > 0) {
            int32_t *idx = malloc(n * (size_t)topk * sizeof *idx);
            float *sim = malloc(n * (size_t)topk * sizeof *sim);
            t0 = ody_now();
            rf_topk_opt to;
            rf_topk_opt_init(&to);
            to.k = topk;
            if (rf_topk(&ctx, &to, idx, sim, &used, &e)) return die(&e);
            t_k = ody_now() - t0;
            free(idx);
            free(sim);
        }
        rf_iso_opt io;
        rf_iso_opt_init(&io);
        io.n_threads = o.n_threads;
        rf_forest *iso = NULL;
        double *I = malloc(n * sizeof *I);
        t0 = ody_now();
        if (rf_iso_train(&io, c->X, n, (int)F, &iso, &e) || rf_iso_score(iso, c->X, n, o.n_threads, I, &e))
            return die(&e);
        double t_iso = ody_now() - t0;
        rf_destroy(iso);
        /* the local stage as oddsky run does it: 20 neighbours among a
         * reference sample of 20,000, standardised features; the opt-in
         * HEAP timed apart */
        t0 = ody_now();
        double t_heap = 0, t_knn = knn_stage(c->X, n, (int)F, o.n_threads, &t_heap, &e);
        if (t_knn < 0) return die(&e);
        t_knn = ody_now() - t0 - t_heap;
        char *out = NULL;
        if (asprintf(&out, "%s.scores", argv[2]) > 0) {
            FILE *fo = fopen(out, "w");
            for (size_t i = 0; fo && i < n; i++) fprintf(fo, "%.17g %.17g %.17g\n", W[i], oob[i], I[i]);
            if (fo) fclose(fo);
            free(out);
        }
        printf("{\"read_s\": %.3f, \"synth_s\": %.3f, \"fit_s\": %.3f, \"weird_s\": %.3f, \"topk_s\": %.3f, \"iso_s\": %.3f, "
               "\"knn_s\": %.3f, \"heap_s\": %.3f, \"topk_trees\": %d, \"nodes\": %zu, \"peak_rss_mb\": %.1f, \"n\": %zu, "
               "\"F\": %zu}\n",
               t_read, t_syn, t_fit, t_w, t_k, t_iso, t_knn, t_heap, used, f->tree_off[f->n_trees], peak_rss_mb(), n, F);
        rf_sim_ctx_free(&ctx);
        rf_destroy(f);
        free(W); free(XS); free(y); free(oob); free(I);
        cat_destroy(c);
        return 0;
    }
    if (argc >= 5 && !strcmp(argv[1], "knn")) {
        cat *c = NULL;
        if (read_table(argv[2], NULL, &c, &e)) return die(&e);
        knn_bench kb = {atoi(argv[3]), atoi(argv[4]), argc > 5 ? (size_t)atoll(argv[5]) : 0, KNN_AUTO, 0, 0, 0, 0, 0,
                        KNN_AUTO, 0};
        if (argc > 6) kb.method = !strcmp(argv[6], "tree") ? KNN_TREE : !strcmp(argv[6], "scan") ? KNN_SCAN : KNN_AUTO;
        if (knn_run(&kb, c->X, c->n_rows, (int)c->n_feat, &e)) return die(&e);
        printf("{\"build_s\": %.3f, \"all_s\": %.3f, \"method\": \"%s\", \"mean_kdist\": %.9g, \"peak_rss_mb\": %.1f, "
               "\"n\": %zu, \"reference\": %zu, \"F\": %zu}\n", kb.build_s, kb.all_s,
               kb.used == KNN_SCAN ? "scan" : "tree", kb.mean_kdist, peak_rss_mb(), c->n_rows, kb.ref, c->n_feat);
        cat_destroy(c);
        return 0;
    }
    if (argc >= 6 && !strcmp(argv[1], "learn")) return learn_sim(argv[2], argv[3], atoi(argv[4]), argv[5], &e) ? die(&e) : 0;
    if (argc >= 3 && !strcmp(argv[1], "read")) {
        cat *c = NULL;
        double t0 = ody_now();
        if (read_table(argv[2], NULL, &c, &e)) return die(&e);
        printf("{\"read_s\": %.3f, \"rows\": %zu, \"features\": %zu, \"matrix_mb\": %.1f, \"peak_rss_mb\": %.1f}\n",
               ody_now() - t0, c->n_rows, c->n_feat, c->n_rows * c->n_feat * 4 / 1048576.0, peak_rss_mb());
        cat_destroy(c);
        return 0;
    }
    if (argc >= 9 && !strcmp(argv[1], "mlp")) {
        cat *c = NULL;
        if (read_table(argv[2], argv[3], &c, &e)) return die(&e);
        size_t n = c->n_rows;
        int d = (int)c->n_feat, epochs = atoi(argv[4]), h1 = atoi(argv[5]), h2 = atoi(argv[6]);
        float *T = malloc(n * sizeof *T);
        for (size_t i = 0; i < n; i++)
            T[i] = (float)(c->pass[0].type == CAT_COL_INT ? c->pass[0].i[i] : c->pass[0].f[i]);
        nn_arch a = {d, 3, {h1, h2, 1}, {NN_RELU, NN_RELU, NN_SIGMOID}, NN_BCE};
        nn_train_opt o;
        nn_train_opt_init(&o);
        o.max_epochs = epochs;
        o.patience = epochs + 1;
        o.epsilon = 0;
        o.batch = atoi(argv[7]);
        o.lr = atof(argv[8]);
        o.val_frac = 0.1;
        nn_model *m = NULL;
        if (nn_create(&a, o.init, 1, &m, &e)) return die(&e);
        nn_history h;
        double t0 = ody_now();
        if (nn_train(m, &o, c->X, T, n, &h, NULL, &e)) return die(&e);
        double wall = ody_now() - t0;
        size_t n_tr = n - (size_t)floor(o.val_frac * (double)n);
        double sps = (double)n_tr * epochs / wall;
        /* flops per sample: forward 2*sum(in*out), backward twice that
         * (dW and dA_prev; no dA for the input layer) */
        double fwd = 2.0 * ((double)d * h1 + (double)h1 * h2 + h2);
        double fps = fwd + 2 * fwd - 2.0 * d * h1;
        /* raw sgemm on the same shapes, single-threaded as in training */
        int B = o.batch, reps = 2000;
        openblas_set_num_threads(1);  /* as in training */
        float *A = calloc((size_t)B * (d > h1 ? d : h1), sizeof *A), *W = calloc((size_t)h1 * (d > h2 ? d : h2), sizeof *W);
        float *C = calloc((size_t)B * (h1 > h2 ? h1 : h2) + (size_t)h1 * d, sizeof *C);
        double g0 = ody_now();
        for (int r = 0; r < reps; r++) {
            cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasTrans, B, h1, d, 1, A, d, W, d, 1, C, h1);
            cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasTrans, B, h2, h1, 1, A, h1, W, h1, 1, C, h2);
            cblas_sgemm(CblasRowMajor, CblasTrans, CblasNoTrans, h2, h1, B, 1, C, h2, A, h1, 1, W, h1);
            cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasNoTrans, B, h1, h2, 1, C, h2, W, h1, 0, A, h1);
            cblas_sgemm(CblasRowMajor, CblasTrans, CblasNoTrans, h1, d, B, 1, C, h1, A, d, 1, C + (size_t)B * h1, d);
        }
        double gt = ody_now() - g0;
        double gflop = reps * 2.0 * B * ((double)h1 * d + (double)h2 * h1 + (double)h2 * h1 + (double)h1 * h2 + (double)h1 * d);
        printf("{\"samples_per_s\": %.1f, \"wall_s\": %.3f, \"epochs\": %d, \"val_acc\": %.5f, "
               "\"train_acc\": %.5f, \"gflops\": %.3f, \"sgemm_1thread_gflops\": %.3f}\n",
               sps, wall, h.epochs, h.val_acc, h.train_acc, sps * fps / 1e9, gflop / gt / 1e9);
        free(A); free(W); free(C); free(T);
        nn_destroy(m);
        cat_destroy(c);
        return 0;
    }
    fprintf(stderr, "usage: see the comment at the top of bench/bench_driver.c\n");
    return 2;
}
