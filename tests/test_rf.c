/* test_rf.c — forest training, weirdness, similarity, save/load. */
#include <fitsio.h>
#include <math.h>
#include <omp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "rf.h"
#include "testutil.h"

/* Correlated Gaussian blob with a few planted outliers that break the
 * correlation; real rows only. */
static float *make_real(size_t n, int F, uint64_t seed)
{
    float *X = malloc(n * (size_t)F * sizeof *X);
    ody_rng r;
    ody_rng_stream(&r, seed, 0);
    for (size_t i = 0; i < n; i++) {
        double z = 0;
        for (int k = 0; k < 12; k++) z += ody_rng_uniform(&r);
        z -= 6;
        for (int f = 0; f < F; f++) {
            double e = 0;
            for (int k = 0; k < 12; k++) e += ody_rng_uniform(&r);
            e -= 6;
            double v = z + 0.3 * e;
            if (i % 50 == 7 && f == 1) v = -z + 0.3 * e;  /* breaks the correlation */
            X[i * (size_t)F + f] = (float)(round(v * 1000) / 1000);  /* ties happen */
        }
    }
    return X;
}

/* Real + marginal synthetic, labels 0 / 1. */
static void make_train(const float *X, size_t n, int F, uint64_t seed, float **XS, uint8_t **y)
{
    ody_err e;
    *XS = malloc(2 * n * (size_t)F * sizeof **XS);
    *y = malloc(2 * n);
    memcpy(*XS, X, n * (size_t)F * sizeof *X);
    assert_ok(rf_synthesize(RF_SYNTH_MARGINAL, X, n, F, seed, 0, *XS + n * (size_t)F, &e), e);
    for (size_t i = 0; i < 2 * n; i++) (*y)[i] = i >= n;
}

/* Real rows plus as many marginal-resampled synthetic rows (labels 0 / 1). */
typedef struct data {
    size_t n;
    int F;
    float *X, *XS;  /* real (n x F); real then synthetic (2n x F) */
    uint8_t *y;
} data;

static data data_make(size_t n, int F, uint64_t seed)
{
    data d = {n, F, make_real(n, F, seed), NULL, NULL};
    make_train(d.X, n, F, seed + 1, &d.XS, &d.y);
    return d;
}

static void data_free(data *d)
{
    free(d->X);
    free(d->XS);
    free(d->y);
}

static void test_tiny_hand_checked(void **state)
{
    (void)state;
    /* One feature: 1 2 3 4 with labels 0 0 1 1 -> one split at 2.5. */
    float X[] = {1, 2, 3, 4};
    uint8_t y[] = {0, 0, 1, 1};
    rf_opt o;
    rf_opt_init(&o);
    o.n_trees = 1;
    o.bootstrap = 0;
    rf_forest *f = NULL;
    ody_err e;
    assert_ok(rf_train(&o, &(rf_data){X, 4, 1, y, 0, RF_SYNTH_MARGINAL, 0, 0}, NULL, 0, &f, NULL, &e), e);
    assert_int_equal(f->tree_off[1], 3);
    assert_int_equal(f->node[0].feat, 0);
    assert_true(f->node[0].thr == 2.5f);
    assert_int_equal(f->node[0].left, 1);
    assert_int_equal(f->node[1].feat, -1);
    assert_int_equal(f->cnt[0], 2);  /* root: 2 real, 2 synthetic */
    assert_int_equal(f->cnt[1], 2);
    assert_int_equal(f->cnt[2], 2);  /* left leaf: pure real */
    assert_int_equal(f->cnt[3], 0);
    assert_int_equal(f->cnt[4], 0);  /* right leaf: pure synthetic */
    assert_int_equal(f->cnt[5], 2);
    assert_true(rf_leaf_good(f, 0, 1, RF_LEAF_PURE_REAL));
    assert_false(rf_leaf_good(f, 0, 2, RF_LEAF_PURE_REAL));
    assert_true(rf_leaf_good(f, 0, 2, RF_LEAF_ALL));
    rf_destroy(f);

    /* XOR in two features needs depth 2; every leaf pure. */
    float X2[] = {0, 0, 0, 1, 1, 0, 1, 1, 0.1f, 0.1f, 0.1f, 0.9f, 0.9f, 0.1f, 0.9f, 0.9f};
    uint8_t y2[] = {0, 1, 1, 0, 0, 1, 1, 0};
    o.max_features = RF_MAXF_ALL;
    assert_ok(rf_train(&o, &(rf_data){X2, 8, 2, y2, 0, RF_SYNTH_MARGINAL, 0, 0}, NULL, 0, &f, NULL, &e), e);
    for (size_t k = 0; k < f->tree_off[1]; k++)
        if (f->node[k].feat < 0) assert_true(f->cnt[2 * k] == 0 || f->cnt[2 * k + 1] == 0);
    double p[8];
    assert_ok(rf_predict(f, X2, 8, 0, p, &e), e);
    for (int i = 0; i < 8; i++) assert_true(p[i] == (double)y2[i]);
    rf_destroy(f);

    /* max_depth 1 stops at the root's children; identical rows cannot split. */
    o.max_depth = 1;
    assert_ok(rf_train(&o, &(rf_data){X2, 8, 2, y2, 0, RF_SYNTH_MARGINAL, 0, 0}, NULL, 0, &f, NULL, &e), e);
    assert_true(f->tree_off[1] <= 3);
    rf_destroy(f);
    float X3[] = {5, 5, 5, 5};
    uint8_t y3[] = {0, 1, 0, 1};
    o.max_depth = 0;
    assert_ok(rf_train(&o, &(rf_data){X3, 4, 1, y3, 0, RF_SYNTH_MARGINAL, 0, 0}, NULL, 0, &f, NULL, &e), e);
    assert_int_equal(f->tree_off[1], 1);  /* a single impure leaf */
    rf_destroy(f);
}

static void test_fully_grown_leaves_are_pure(void **state)
{
    (void)state;
    size_t n = 3000;
    int F = 5;
    data d = data_make(n, F, 11);
    float *XS = d.XS;
    uint8_t *y = d.y;
    rf_opt o;
    rf_opt_init(&o);
    o.n_trees = 8;
    rf_forest *f = NULL;
    ody_err e;
    double *oob = malloc(2 * n * sizeof *oob);
    assert_ok(rf_train(&o, &(rf_data){XS, 2 * n, F, y, 0, RF_SYNTH_MARGINAL, 0, 0}, oob, 2 * n, &f, NULL, &e), e);
    size_t impure = 0, leaves = 0;
    for (size_t k = 0; k < f->tree_off[f->n_trees]; k++) {
        if (f->node[k].feat >= 0) continue;
        leaves++;
        impure += f->cnt[2 * k] && f->cnt[2 * k + 1];
    }
    /* Impure leaves only where a real and a synthetic row are identical. */
    assert_true(impure * 100 < leaves);
    assert_true(f->oob_accuracy > 0.5 && f->oob_accuracy <= 1.0);
    for (size_t i = 0; i < 2 * n; i++) assert_true(isnan(oob[i]) || (oob[i] >= 0 && oob[i] <= 1));
    /* the batched lockstep traversal finds the same leaf as the scalar one,
     * for every row of every tree (lanes are refilled as rows finish) */
    int32_t *lv = malloc(2 * n * sizeof *lv);
    for (int t = 0; t < f->n_trees; t++) {
        rf_leaves(f->node + f->tree_off[t], F, XS, 2 * n, lv);
        for (size_t i = 0; i < 2 * n; i++)
            if (lv[i] != rf_leaf(f, t, XS + i * F)) fail_msg("tree %d row %zu: batched leaf differs", t, i);
        rf_leaves(f->node + f->tree_off[t], F, XS, 7, lv);  /* fewer rows than lanes */
        for (size_t i = 0; i < 7; i++) assert_int_equal(lv[i], rf_leaf(f, t, XS + i * F));
    }
    free(lv);
    free(oob);
    rf_destroy(f);
    data_free(&d);
}

static void test_weirdness_matches_pairwise(void **state)
{
    (void)state;
    size_t n = 160;
    int F = 4;
    data d = data_make(n, F, 21);
    float *X = d.X, *XS = d.XS;
    uint8_t *y = d.y;
    rf_opt o;
    rf_opt_init(&o);
    o.n_trees = 40;
    rf_forest *f = NULL;
    ody_err e;
    assert_ok(rf_train(&o, &(rf_data){XS, 2 * n, F, y, 0, RF_SYNTH_MARGINAL, 0, 0}, NULL, 0, &f, NULL, &e), e);
    double W1[160], W2[160];
    rf_leaf_filter filt[] = {RF_LEAF_PURE_REAL, RF_LEAF_MAJORITY_REAL, RF_LEAF_ALL};
    for (int q = 0; q < 3; q++) {
        rf_sim_ctx ctx;
        assert_ok(rf_sim_ctx_init(&ctx, f, X, n, filt[q], 0, NULL, &e), e);
        assert_ok(rf_weirdness(&ctx, W1, &e), e);
        assert_ok(rf_weirdness_pairwise(&ctx, W2, &e), e);
        for (size_t i = 0; i < n; i++) {
            if (fabs(W1[i] - W2[i]) > 1e-12) fail_msg("filter %d object %zu: %.17g vs %.17g", q, i, W1[i], W2[i]);
            assert_true(W1[i] >= 0 && W1[i] <= 1);
            if (ctx.n_good[i] == 0) assert_true(W1[i] == 1.0);
        }
        rf_sim_ctx_free(&ctx);
    }
    rf_destroy(f);
    data_free(&d);
}

static void test_deterministic_across_threads(void **state)
{
    (void)state;
    size_t n = 2000;
    int F = 6;
    data d = data_make(n, F, 31);
    float *X = d.X, *XS = d.XS;
    uint8_t *y = d.y;
    rf_opt o;
    rf_opt_init(&o);
    o.n_trees = 24;
    o.max_samples = 1500;
    rf_forest *f[2] = {NULL, NULL};
    double *W[2], *oob[2];
    int32_t *idx[2];
    float *sim[2];
    ody_err e;
    for (int r = 0; r < 2; r++) {
        o.n_threads = r + 1;
        oob[r] = malloc(n * sizeof(double));
        assert_ok(rf_train(&o, &(rf_data){XS, 2 * n, F, y, 0, RF_SYNTH_MARGINAL, 0, 0}, oob[r], n, &f[r], NULL, &e), e);
        W[r] = malloc(n * sizeof(double));
        idx[r] = malloc(n * 5 * sizeof(int32_t));
        sim[r] = malloc(n * 5 * sizeof(float));
        rf_sim_ctx ctx;
        assert_ok(rf_sim_ctx_init(&ctx, f[r], X, n, RF_LEAF_PURE_REAL, r + 1, NULL, &e), e);
        assert_ok(rf_weirdness(&ctx, W[r], &e), e);
        rf_topk_opt to;
        rf_topk_opt_init(&to);
        to.k = 5;
        assert_ok(rf_topk(&ctx, &to, idx[r], sim[r], NULL, &e), e);
        rf_sim_ctx_free(&ctx);
    }
    size_t nn = f[0]->tree_off[f[0]->n_trees];
    assert_int_equal(nn, f[1]->tree_off[f[1]->n_trees]);
    assert_memory_equal(f[0]->node, f[1]->node, nn * sizeof(rf_node));
    assert_memory_equal(f[0]->cnt, f[1]->cnt, 2 * nn * sizeof(uint32_t));
    assert_memory_equal(W[0], W[1], n * sizeof(double));
    assert_memory_equal(oob[0], oob[1], n * sizeof(double));
    assert_memory_equal(idx[0], idx[1], n * 5 * sizeof(int32_t));
    assert_memory_equal(sim[0], sim[1], n * 5 * sizeof(float));
    assert_true(f[0]->oob_accuracy == f[1]->oob_accuracy);
    /* another seed gives another forest */
    o.seed = 2;
    rf_forest *g = NULL;
    assert_ok(rf_train(&o, &(rf_data){XS, 2 * n, F, y, 0, RF_SYNTH_MARGINAL, 0, 0}, NULL, 0, &g, NULL, &e), e);
    assert_true(g->tree_off[g->n_trees] != nn || memcmp(g->node, f[0]->node, nn * sizeof(rf_node)));
    rf_destroy(g);
    for (int r = 0; r < 2; r++) {
        rf_destroy(f[r]);
        free(W[r]); free(oob[r]); free(idx[r]); free(sim[r]);
    }
    data_free(&d);
}

static void test_save_load_round_trip(void **state)
{
    (void)state;
    size_t n = 500;
    int F = 3;
    data d = data_make(n, F, 41);
    float *X = d.X, *XS = d.XS;
    uint8_t *y = d.y;
    rf_opt o;
    rf_opt_init(&o);
    o.n_trees = 12;
    o.max_features = RF_MAXF_FRAC;
    o.max_features_value = 0.5;
    rf_forest *f = NULL, *g = NULL;
    ody_err e;
    assert_ok(rf_train(&o, &(rf_data){XS, 2 * n, F, y, 0, RF_SYNTH_MARGINAL, 0, 0}, NULL, 0, &f, NULL, &e), e);
    char *dir = tu_tmpdir(), *path = tu_path(dir, "forest.fits");
    char *names[] = {"u-g", "g-r", "redshift"};
    assert_ok(rf_save(f, path, names, "test history", 0, &e), e);
    assert_int_equal(rf_save(f, path, names, "test history", 0, &e), ODY_EINPUT);  /* no silent overwrite */
    assert_ok(rf_load(path, &g, &e), e);
    size_t nn = f->tree_off[f->n_trees];
    assert_int_equal(g->n_trees, 12);
    assert_int_equal(g->opt.max_features, RF_MAXF_FRAC);
    assert_memory_equal(f->tree_off, g->tree_off, 13 * sizeof(size_t));
    assert_memory_equal(f->node, g->node, nn * sizeof(rf_node));
    assert_memory_equal(f->cnt, g->cnt, 2 * nn * sizeof(uint32_t));
    double W1[500], W2[500];
    rf_sim_ctx c1, c2;
    assert_ok(rf_sim_ctx_init(&c1, f, X, n, RF_LEAF_PURE_REAL, 0, NULL, &e), e);
    assert_ok(rf_sim_ctx_init(&c2, g, X, n, RF_LEAF_PURE_REAL, 0, NULL, &e), e);
    assert_ok(rf_weirdness(&c1, W1, &e), e);
    assert_ok(rf_weirdness(&c2, W2, &e), e);
    assert_memory_equal(W1, W2, sizeof W1);
    rf_sim_ctx_free(&c1);
    rf_sim_ctx_free(&c2);
    /* a file that is not a forest */
    char *bad = tu_path(dir, "bad.fits");
    FILE *fp = fopen(bad, "w");
    fputs("nope", fp);
    fclose(fp);
    rf_forest *h = NULL;
    assert_int_equal(rf_load(bad, &h, &e), ODY_EINPUT);
    assert_null(h);
    /* a file whose last tree lost its rows: its walk would start past the
     * node array */
    fitsfile *ff;
    int status = 0, v = 99;
    fits_open_file(&ff, path, READWRITE, &status);
    fits_movnam_hdu(ff, BINARY_TBL, "FOREST", 0, &status);
    fits_delete_rows(ff, (LONGLONG)f->tree_off[11] + 1, (LONGLONG)(f->tree_off[12] - f->tree_off[11]), &status);
    fits_close_file(ff, &status);
    assert_int_equal(status, 0);
    assert_int_equal(rf_load(path, &h, &e), ODY_EINPUT);
    assert_non_null(strstr(e.msg, "tree 11 of 12 has no nodes"));
    assert_null(h);
    /* a forest from a newer oddsky (a layout this one does not read) */
    fits_open_file(&ff, path, READWRITE, &status);
    fits_movnam_hdu(ff, BINARY_TBL, "FOREST", 0, &status);
    fits_update_key(ff, TINT, "FORMAT", &v, NULL, &status);
    fits_close_file(ff, &status);
    assert_int_equal(status, 0);
    assert_int_equal(rf_load(path, &h, &e), ODY_EINPUT);
    assert_non_null(strstr(e.msg, "format 99"));
    assert_null(h);
    rf_destroy(f);
    rf_destroy(g);
    tu_rmtree(dir);
    free(dir); free(path); free(bad);
    data_free(&d);
}

static void test_topk_and_dense(void **state)
{
    (void)state;
    size_t n = 200;
    int F = 4, k = 6;
    data d = data_make(n, F, 51);
    float *X = d.X, *XS = d.XS;
    uint8_t *y = d.y;
    rf_opt o;
    rf_opt_init(&o);
    o.n_trees = 30;
    rf_forest *f = NULL;
    ody_err e;
    assert_ok(rf_train(&o, &(rf_data){XS, 2 * n, F, y, 0, RF_SYNTH_MARGINAL, 0, 0}, NULL, 0, &f, NULL, &e), e);
    rf_sim_ctx ctx;
    assert_ok(rf_sim_ctx_init(&ctx, f, X, n, RF_LEAF_PURE_REAL, 0, NULL, &e), e);
    int32_t *idx = malloc(n * (size_t)k * sizeof *idx);
    float *sim = malloc(n * (size_t)k * sizeof *sim);
    rf_topk_opt to;
    rf_topk_opt_init(&to);
    to.k = k;
    to.leaf_sample = 0;  /* exact, to compare with the dense matrix */
    int used = 0;
    assert_ok(rf_topk(&ctx, &to, idx, sim, &used, &e), e);
    assert_int_equal(used, 30);

    char *dir = tu_tmpdir(), *path = tu_path(dir, "sim.fits");
    assert_ok(rf_dense_write(&ctx, path, (size_t)1 << 30, 0, &e), e);
    float *D = malloc(n * n * sizeof *D);
    fitsfile *ff;
    int status = 0, anynul;
    fits_open_image(&ff, path, READONLY, &status);
    fits_read_img(ff, TFLOAT, 1, (LONGLONG)(n * n), NULL, D, &anynul, &status);
    fits_close_file(ff, &status);
    assert_int_equal(status, 0);
    for (size_t i = 0; i < n; i++) {
        /* count symmetry: sim[i][j] n_good[j] == sim[j][i] n_good[i] */
        for (size_t j = 0; j < n; j++) {
            double cij = (double)D[i * n + j] * ctx.n_good[j], cji = (double)D[j * n + i] * ctx.n_good[i];
            assert_true(fabs(cij - cji) < 1e-3);
            assert_true(D[i * n + j] >= 0 && D[i * n + j] <= 1);
        }
        /* top-k equals the k largest off-diagonal entries of the dense row */
        for (int q = 0; q < k; q++) {
            if (idx[i * k + q] < 0) { assert_true(sim[i * k + q] == 0); continue; }
            assert_true(idx[i * k + q] != (int32_t)i);
            assert_true(sim[i * k + q] == D[i * n + (size_t)idx[i * k + q]]);
            if (q) assert_true(sim[i * k + q] <= sim[i * k + q - 1]);
        }
        int above = 0;
        for (size_t j = 0; j < n; j++)
            if (j != i && D[i * n + j] > sim[i * k + k - 1]) above++;
        assert_true(above <= k);
    }
    /* the dense path refuses over budget, pointing to top-k */
    char *path2 = tu_path(dir, "big.fits");
    assert_int_equal(rf_dense_write(&ctx, path2, 1000, 0, &e), ODY_EINPUT);
    assert_non_null(strstr(e.msg, "top_k"));
    assert_false(tu_file_exists(path2));
    double knn[200];
    rf_knn_distance(n, k, sim, knn);
    for (size_t i = 0; i < n; i++) assert_true(knn[i] >= 0 && knn[i] <= 1);
    rf_sim_ctx_free(&ctx);
    rf_destroy(f);
    tu_rmtree(dir);
    free(dir); free(path); free(path2); free(D); free(idx); free(sim);
    data_free(&d);
}

static void test_synthetic_and_options(void **state)
{
    (void)state;
    size_t n = 300;
    int F = 3;
    float *X = make_real(n, F, 61);
    float *S1 = malloc(n * F * sizeof *S1), *S2 = malloc(n * F * sizeof *S2);
    ody_err e;
    assert_ok(rf_synthesize(RF_SYNTH_MARGINAL, X, n, F, 7, 1, S1, &e), e);
    assert_ok(rf_synthesize(RF_SYNTH_MARGINAL, X, n, F, 7, 2, S2, &e), e);
    assert_memory_equal(S1, S2, n * F * sizeof *S1);
    for (size_t i = 0; i < n; i++)
        for (int f = 0; f < F; f++) {
            int found = 0;
            for (size_t j = 0; j < n && !found; j++) found = S1[i * F + f] == X[j * F + f];
            assert_true(found);  /* every synthetic value is a real value of its column */
        }
    assert_ok(rf_synthesize(RF_SYNTH_UNIFORM, X, n, F, 7, 0, S1, &e), e);
    for (int f = 0; f < F; f++) {
        float lo = X[f], hi = X[f];
        for (size_t i = 0; i < n; i++) {
            lo = fminf(lo, X[i * F + f]);
            hi = fmaxf(hi, X[i * F + f]);
        }
        for (size_t i = 0; i < n; i++) assert_true(S1[i * F + f] >= lo && S1[i * F + f] <= hi);
    }
    rf_opt o;
    rf_opt_init(&o);
    assert_int_equal(rf_mtry(&o, 20), 4);
    o.n_trees = 0;
    assert_int_equal(rf_opt_check(&o, 100, 5, &e), ODY_EINPUT);
    assert_non_null(strstr(e.msg, "n_trees"));
    rf_opt_init(&o);
    o.max_features = RF_MAXF_INT;
    o.max_features_value = 9;
    assert_int_equal(rf_opt_check(&o, 100, 5, &e), ODY_EINPUT);
    rf_opt_init(&o);
    o.bootstrap = 0;
    o.max_samples = 500;
    assert_int_equal(rf_opt_check(&o, 100, 5, &e), ODY_EINPUT);
    /* leaves too large to split the rows a tree draws: every tree one leaf */
    rf_opt_init(&o);
    o.min_samples_leaf = 51;
    assert_int_equal(rf_opt_check(&o, 100, 5, &e), ODY_EINPUT);
    assert_non_null(strstr(e.msg, "forest.min_samples_leaf = 51 leaves no split in the 100 rows"));
    assert_non_null(strstr(e.msg, "use at most 50"));
    o.min_samples_leaf = 50;
    assert_int_equal(rf_opt_check(&o, 100, 5, &e), 0);
    o.max_samples = 60;  /* what each tree draws counts, not the catalog */
    assert_int_equal(rf_opt_check(&o, 100, 5, &e), ODY_EINPUT);
    rf_maxf kind;
    double v;
    assert_int_equal(rf_maxf_parse("0.3", &kind, &v), 0);
    assert_int_equal(kind, RF_MAXF_FRAC);
    assert_int_equal(rf_maxf_parse("8", &kind, &v), 0);
    assert_int_equal(kind, RF_MAXF_INT);
    assert_int_equal(rf_maxf_parse("1.5", &kind, &v), -1);
    assert_int_equal(rf_maxf_parse("cube", &kind, &v), -1);
    free(X); free(S1); free(S2);
}

/* Synthetic rows drawn as the trees read them give the same forest as the
 * same rows stored (rf_synthesize), for both modes and with subsampled
 * trees (their bins gathered), and the same out-of-bag votes. */
static void forests_equal(const rf_forest *a, const rf_forest *b)
{
    assert_int_equal(a->tree_off[a->n_trees], b->tree_off[b->n_trees]);
    assert_memory_equal(a->tree_off, b->tree_off, ((size_t)a->n_trees + 1) * sizeof *a->tree_off);
    assert_memory_equal(a->node, b->node, a->tree_off[a->n_trees] * sizeof *a->node);
    assert_memory_equal(a->cnt, b->cnt, 2 * a->tree_off[a->n_trees] * sizeof *a->cnt);
}

static void test_drawn_synthetic_rows_equal_stored(void **state)
{
    (void)state;
    size_t n = 600;
    int F = 5;
    float *X = make_real(n, F, 71), *XS = malloc(2 * n * F * sizeof *XS);
    uint8_t *y = malloc(2 * n);
    double *oob1 = malloc(n * sizeof *oob1), *oob2 = malloc(n * sizeof *oob2);
    ody_err e;
    for (int mode = 0; mode < 2; mode++)
        for (size_t ms = 0; ms <= 200; ms += 200) {
            memcpy(XS, X, n * F * sizeof *X);
            assert_ok(rf_synthesize((rf_synth)mode, X, n, F, 9, 0, XS + n * F, &e), e);
            for (size_t i = 0; i < 2 * n; i++) y[i] = i >= n;
            rf_opt o;
            rf_opt_init(&o);
            o.n_trees = 20;
            o.max_samples = ms;
            o.n_threads = 2;
            rf_forest *a = NULL, *b = NULL;
            assert_ok(rf_train(&o, &(rf_data){XS, 2 * n, F, y, 0, RF_SYNTH_MARGINAL, 0, 0}, oob1, n, &a, NULL, &e), e);
            assert_ok(rf_train(&o, &(rf_data){X, n, F, NULL, 1, (rf_synth)mode, 9, 0}, oob2, n, &b, NULL, &e), e);
            forests_equal(a, b);
            assert_memory_equal(oob1, oob2, n * sizeof *oob1);
            assert_int_equal(b->n_train, 2 * n);
            rf_destroy(a);
            rf_destroy(b);
        }
    free(X); free(XS); free(y); free(oob1); free(oob2);
}

/* Bin edges from a sample: a bin may then hold values its sample did not
 * see, and the trees must still send every training row, by its
 * threshold, to the leaf the training partition put it in.  Trees on every
 * row once (no bootstrap): each leaf's class counts are those of the
 * training rows its thresholds send there.  And the forest is the same on
 * 1 and 3 threads. */
static void test_sampled_bin_edges(void **state)
{
    (void)state;
    size_t n = 1500;
    int F = 4;
    float *X = make_real(n, F, 74), *XS = malloc(2 * n * F * sizeof *XS);
    for (size_t i = 0; i < n * F; i += 7) X[i] = (float)(i % 5);  /* runs of equal values */
    memcpy(XS, X, n * F * sizeof *X);
    ody_err e;
    assert_ok(rf_synthesize(RF_SYNTH_MARGINAL, X, n, F, 9, 0, XS + n * F, &e), e);
    rf_opt o;
    rf_opt_init(&o);
    o.n_trees = 6;
    o.bootstrap = 0;
    o.bin_sample = 300;
    o.n_threads = 1;
    rf_forest *a = NULL, *b = NULL;
    assert_ok(rf_train(&o, &(rf_data){X, n, F, NULL, 1, RF_SYNTH_MARGINAL, 9, 0}, NULL, 0, &a, NULL, &e), e);
    o.n_threads = 3;
    assert_ok(rf_train(&o, &(rf_data){X, n, F, NULL, 1, RF_SYNTH_MARGINAL, 9, 0}, NULL, 0, &b, NULL, &e), e);
    forests_equal(a, b);
    size_t nodes = a->tree_off[a->n_trees];
    uint32_t *cnt = calloc(2 * nodes, sizeof *cnt);
    for (int t = 0; t < a->n_trees; t++)
        for (size_t i = 0; i < 2 * n; i++) cnt[2 * (a->tree_off[t] + (size_t)rf_leaf(a, t, XS + i * F)) + (i >= n)]++;
    for (size_t k = 0; k < nodes; k++)
        if (a->node[k].feat < 0) {
            assert_int_equal(cnt[2 * k], a->cnt[2 * k]);
            assert_int_equal(cnt[2 * k + 1], a->cnt[2 * k + 1]);
        }
    free(cnt);
    rf_destroy(a);
    rf_destroy(b);
    free(X);
    free(XS);
}

/* A forest trained by parts (each tree's rows fetched from the processes
 * that code their features, out-of-bag votes by rows) is the forest trained
 * on every row, node for node, vote for vote: here one process, so every
 * move is a copy, but the fetches, the per-tree gathered rows and the
 * redrawn samples are those of a distributed run (test_par runs them
 * across processes). */
static void test_forest_by_parts(void **state)
{
    (void)state;
    size_t n = 3000;
    int F = 5;
    float *X = make_real(n, F, 73);
    double *oob1 = malloc(n * sizeof *oob1), *oob2 = malloc(n * sizeof *oob2);
    ody_err e;
    for (int mode = 0; mode < 4; mode++) {
        rf_opt o;
        rf_opt_init(&o);
        o.n_trees = 24;
        o.max_samples = 700;
        o.n_threads = 1 + mode % 2;
        o.seed = 11;
        o.bin_sample = mode < 2 ? 0 : 1000;  /* then the bin edges come from a sample */
        assert_true(rf_parts_fit(&o, n));
        rf_forest *a = NULL, *b = NULL;
        assert_ok(rf_train(&o, &(rf_data){X, n, F, NULL, 1, (rf_synth)(mode % 2), 9, 0}, oob1, n, &a, NULL, &e), e);
        assert_ok(rf_train(&o, &(rf_data){X, n, F, NULL, 1, (rf_synth)(mode % 2), 9, 1}, oob2, n, &b, NULL, &e), e);
        forests_equal(a, b);
        assert_memory_equal(oob1, oob2, n * sizeof *oob1);
        assert_true(a->oob_accuracy == b->oob_accuracy);
        rf_destroy(a);
        rf_destroy(b);
        /* trees that draw more than a quarter of the rows are not trained by parts */
        o.max_samples = 2 * n;
        assert_false(rf_parts_fit(&o, n));
        assert_int_equal(rf_train(&o, &(rf_data){X, n, F, NULL, 1, (rf_synth)(mode % 2), 9, 1}, oob2, n, &b, NULL,
                                  &e), ODY_EINTERNAL);
    }
    free(X); free(oob1); free(oob2);
}

/* An isolation forest trained on the rows its trees draw alone (as
 * processes that each hold a part of the catalog train it) is the one
 * trained on every row, node for node. */
static void test_isolation_on_drawn_rows(void **state)
{
    (void)state;
    size_t n = 5000;
    int F = 4;
    float *X = make_real(n, F, 72);
    ody_err e;
    rf_iso_opt o;
    rf_iso_opt_init(&o);
    o.n_trees = 30;
    o.max_samples = 128;
    o.seed = 5;
    size_t *rows = NULL, m = 0;
    assert_ok(rf_iso_rows(&o, n, &rows, &m, &e), e);
    assert_true(m > 128 && m <= 30 * 128 && m < n);
    for (size_t q = 1; q < m; q++) assert_true(rows[q] > rows[q - 1]);
    float *Xs = malloc(m * F * sizeof *Xs);
    for (size_t q = 0; q < m; q++) memcpy(Xs + q * F, X + rows[q] * F, F * sizeof *Xs);
    rf_forest *a = NULL, *b = NULL;
    assert_ok(rf_iso_train(&o, X, n, F, &a, &e), e);
    o.rows = rows;
    o.n_rows = m;
    assert_ok(rf_iso_train(&o, Xs, n, F, &b, &e), e);
    forests_equal(a, b);
    rf_destroy(a);
    rf_destroy(b);
    free(rows);
    free(Xs);
    free(X);
}

/* The robust z leaves +inf reference values out (a detector that measured
 * nothing there): the same z as with them dropped, in both the MAD and
 * the mean-deviation fallback; all left out gives 0. */
static void test_robust_z_leaves_out_infinity(void **state)
{
    (void)state;
    double ref[9] = {1, 2, INFINITY, 4, 8, INFINITY, 3, INFINITY, 5}, kept[6] = {1, 2, 4, 8, 3, 5};
    double v[3] = {0, 4, 20}, z1[3], z2[3];
    ody_err e;
    assert_ok(rf_robust_z(ref, 9, v, 3, z1, &e), e);
    assert_ok(rf_robust_z(kept, 6, v, 3, z2, &e), e);
    assert_memory_equal(z1, z2, sizeof z1);
    /* over half tie (MAD 0): the mean absolute deviation of the measured ones */
    double tie[7] = {2, 2, INFINITY, 2, 2, 9, INFINITY}, tkept[5] = {2, 2, 2, 2, 9};
    assert_ok(rf_robust_z(tie, 7, v, 3, z1, &e), e);
    assert_ok(rf_robust_z(tkept, 5, v, 3, z2, &e), e);
    assert_memory_equal(z1, z2, sizeof z1);
    assert_true(z1[2] == (20 - 2) / (1.2533 * 7 / 5));
    double none[2] = {INFINITY, INFINITY};
    assert_ok(rf_robust_z(none, 2, v, 3, z1, &e), e);
    assert_true(z1[0] == 0 && z1[1] == 0 && z1[2] == 0);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_tiny_hand_checked),
        cmocka_unit_test(test_fully_grown_leaves_are_pure),
        cmocka_unit_test(test_weirdness_matches_pairwise),
        cmocka_unit_test(test_deterministic_across_threads),
        cmocka_unit_test(test_save_load_round_trip),
        cmocka_unit_test(test_topk_and_dense),
        cmocka_unit_test(test_synthetic_and_options),
        cmocka_unit_test(test_drawn_synthetic_rows_equal_stored),
        cmocka_unit_test(test_sampled_bin_edges),
        cmocka_unit_test(test_forest_by_parts),
        cmocka_unit_test(test_isolation_on_drawn_rows),
        cmocka_unit_test(test_robust_z_leaves_out_infinity),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
