/* test_knn.c — the tree and the scan against brute force (ties,
 * duplicates, reference subsets, points far from the origin), identical
 * between methods and thread counts; LOF against its definition. */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "knn.h"
#include "testutil.h"

/* Brute-force lists among the rows ref (all when NULL): (squared distance,
 * row) order, self excluded. */
static void brute(const float *X, size_t n, int d, const int32_t *ref, size_t m, int k, int32_t *idx, float *dist)
{
    double *dd = malloc(n * sizeof *dd);
    char *in = calloc(n, 1);
    for (size_t q = 0; q < (ref ? m : n); q++) in[ref ? (size_t)ref[q] : q] = 1;
    for (size_t i = 0; i < n; i++) {
        for (size_t j = 0; j < n; j++) {
            double s = 0;
            for (int f = 0; f < d; f++) {
                double e = (double)X[j * d + f] - X[i * d + f];
                s += e * e;
            }
            dd[j] = j == i || !in[j] ? INFINITY : s;
        }
        for (int c = 0; c < k; c++) {
            size_t b = 0;
            for (size_t j = 1; j < n; j++)
                if (dd[j] < dd[b]) b = j;  /* strict: the lowest row wins a tie */
            idx[i * k + c] = (int32_t)b;
            dist[i * k + c] = (float)sqrt(dd[b]);
            dd[b] = INFINITY;
        }
    }
    free(dd);
    free(in);
}

/* Points on a coarse grid, so that ties and duplicates are many; shifted
 * far from the origin when `far`, where the scan's bound is widest. */
static float *grid_points(size_t n, int d, unsigned seed, int far)
{
    float *X = malloc(n * d * sizeof *X);
    srand(seed);
    for (size_t i = 0; i < n * d; i++) X[i] = far ? 1000.0f + (float)(rand() % 7) * 0.001f : (float)(rand() % 7) * 0.5f;
    return X;
}

/* Every method and thread count gives the brute-force lists, bit for bit
 * between methods. */
static void check_all_methods(const float *X, size_t n, int d, const int32_t *ref, size_t m, int k)
{
    int32_t *ib = malloc(n * k * sizeof *ib), *i1 = malloc(n * k * sizeof *i1);
    float *db = malloc(n * k * sizeof *db), *d1 = malloc(n * k * sizeof *d1), *d0 = malloc(n * k * sizeof *d0);
    brute(X, n, d, ref, m, k, ib, db);
    knn_tree *tr = NULL;
    ody_err e;
    assert_ok(knn_build(X, n, d, ref, m, &tr, &e), e);
    assert_int_equal(knn_size(tr), ref ? m : n);
    knn_method how[] = {KNN_TREE, KNN_SCAN, KNN_AUTO};
    for (int h = 0; h < 3; h++)
        for (int th = 1; th <= 2; th++) {
            knn_opt o;
            knn_opt_init(&o);
            o.k = k;
            o.n_threads = th;
            o.method = how[h];
            knn_method used;
            assert_ok(knn_all(tr, X, n, &o, i1, d1, &used, &e), e);
            assert_true(how[h] == KNN_AUTO || used == how[h]);
            assert_memory_equal(i1, ib, n * k * sizeof *i1);
            for (size_t q = 0; q < n * k; q++) assert_true(fabsf(d1[q] - db[q]) <= 1e-5f * (1 + db[q]));
            if (h || th > 1) assert_memory_equal(d1, d0, n * k * sizeof *d1);
            else memcpy(d0, d1, n * k * sizeof *d1);
        }
    knn_destroy(tr);
    free(ib); free(i1); free(db); free(d1); free(d0);
}

static void test_searches_match_brute_force(void **state)
{
    (void)state;
    int dims[] = {1, 2, 3, 8, 30};
    for (int t = 0; t < 5; t++) {
        size_t n = 600;
        float *X = grid_points(n, dims[t], 11 + t, 0);
        check_all_methods(X, n, dims[t], NULL, 0, 7);
        free(X);
    }
    /* more points than one scan chunk, far from the origin */
    size_t n = 2600;
    float *X = grid_points(n, 5, 5, 1);
    check_all_methods(X, n, 5, NULL, 0, 4);
    free(X);
}

static void test_reference_subset(void **state)
{
    (void)state;
    size_t n = 900, m = 0;
    int d = 3;
    float *X = grid_points(n, d, 21, 0);
    int32_t *ref = malloc(n * sizeof *ref);
    for (size_t i = 0; i < n; i++)
        if (i % 3 == 0 || i % 7 == 1) ref[m++] = (int32_t)i;
    check_all_methods(X, n, d, ref, m, 6);
    ody_err e;
    knn_tree *tr = NULL;
    int32_t bad[3] = {4, 2, 9};
    assert_int_equal(knn_build(X, n, d, bad, 3, &tr, &e), ODY_EINPUT);
    bad[1] = (int32_t)n;
    assert_int_equal(knn_build(X, n, d, bad, 2, &tr, &e), ODY_EINPUT);
    assert_null(tr);
    free(ref);
    free(X);
}

static void test_queries_and_errors(void **state)
{
    (void)state;
    size_t n = 300;
    int d = 4;
    float *X = grid_points(n, d, 3, 0), Q[8] = {0, 0, 0, 0, 3, 3, 3, 3};
    knn_tree *tr = NULL;
    ody_err e;
    assert_ok(knn_build(X, n, d, NULL, 0, &tr, &e), e);
    int32_t idx[10];
    float dist[10];
    knn_opt o;
    knn_opt_init(&o);
    o.k = 5;
    assert_ok(knn_query(tr, Q, 2, &o, idx, dist, NULL, &e), e);
    for (int m = 1; m < o.k; m++) assert_true(dist[m] >= dist[m - 1]);
    /* a row of the catalog asked as a query finds itself at distance 0 */
    o.k = 1;
    assert_ok(knn_query(tr, X + 7 * d, 1, &o, idx, dist, NULL, &e), e);
    assert_true(dist[0] == 0);
    o.k = (int)n;  /* every other row is n - 1 */
    assert_int_equal(knn_all(tr, X, n, &o, NULL, NULL, NULL, &e), ODY_EINPUT);
    o.k = 0;
    assert_int_equal(knn_query(tr, Q, 1, &o, idx, dist, NULL, &e), ODY_EINPUT);
    knn_destroy(tr);
    /* identical rows: one leaf, all distances 0 */
    float same[40] = {0};
    assert_ok(knn_build(same, 20, 2, NULL, 0, &tr, &e), e);
    int32_t si[60];
    float sd[60];
    o.k = 3;
    assert_ok(knn_all(tr, same, 20, &o, si, sd, NULL, &e), e);
    for (int q = 0; q < 60; q++) assert_true(sd[q] == 0);
    knn_destroy(tr);
    free(X);
}

static void test_lof_definition(void **state)
{
    (void)state;
    /* a tight cluster and one far point: the far point's LOF is large,
     * the cluster's near 1 */
    size_t n = 41;
    float X[82];
    for (size_t i = 0; i < 40; i++) { X[2 * i] = (float)(i % 8) * 0.1f; X[2 * i + 1] = (float)(i / 8) * 0.1f; }
    X[80] = 5;
    X[81] = 5;
    int k = 5;
    knn_tree *tr = NULL;
    ody_err e;
    assert_ok(knn_build(X, n, 2, NULL, 0, &tr, &e), e);
    int32_t idx[41 * 5];
    float dist[41 * 5];
    knn_opt o;
    knn_opt_init(&o);
    o.k = k;
    assert_ok(knn_all(tr, X, n, &o, idx, dist, NULL, &e), e);
    double lof[41];
    assert_ok(knn_lof(n, k, k, idx, dist, lof, &e), e);
    for (size_t i = 0; i < 40; i++) assert_true(lof[i] < 1.6);
    assert_true(lof[40] > 10);
    knn_destroy(tr);
}

/* Lists that name only a reference sample: the factors knn_lof_comm finds
 * keeping the sample's k-distances and densities alone are those of keeping
 * every row's; a list naming a row outside the sample is refused. */
static void test_lof_reference(void **state)
{
    (void)state;
    enum { N = 300, K = 4, W = 6 };
    int32_t ref[100], idx[N * W];
    float dist[N * W], X[N];
    double a[N], b[N];
    for (int i = 0; i < N; i++) X[i] = (float)((i * 7919) % 1009) / 10.0f + (i == 150 ? 500.0f : 0.0f);
    for (int q = 0; q < 100; q++) ref[q] = 3 * q;
    for (int i = 0; i < N; i++)  /* each row's W nearest sample rows but itself, by brute force */
        for (int w = 0; w < W; w++) {
            int best = -1;
            for (int q = 0; q < 100; q++) {
                int r = ref[q], used = r == i;
                for (int v = 0; v < w; v++) used |= idx[i * W + v] == r;
                if (!used && (best < 0 || fabsf(X[r] - X[i]) < fabsf(X[best] - X[i]))) best = r;
            }
            idx[i * W + w] = best;
            dist[i * W + w] = fabsf(X[best] - X[i]);
        }
    ody_err e;
    knn_lof_in all = {N, W, K, idx, dist, NULL, 0}, some = {N, W, K, idx, dist, ref, 100};
    assert_ok(knn_lof_comm(NULL, &all, a, &e), e);
    assert_ok(knn_lof_comm(NULL, &some, b, &e), e);
    for (int i = 0; i < N; i++) assert_true(a[i] == b[i]);
    idx[7 * W + 1] = 8;  /* not a sample row */
    assert_int_equal(knn_lof_comm(NULL, &some, b, &e), ODY_EINTERNAL);
}

/* ================================================================ context */

static const float *ctx_row3(const void *X, size_t r) { return (const float *)X + r * 3; }
static const float *ctx_row4(const void *X, size_t r) { return (const float *)X + r * 4; }
static const float *ctx_row_part(const void *X, size_t r) { return r < 4 ? (const float *)X + r * 3 : NULL; }

/* CONTEXT against its definition, on lists given by hand: each feature's
 * gap to the nearest neighbour's value, over the larger of the neighbours'
 * mean gap there and the feature's median gap (the mean gap when most gaps
 * are 0; nothing from a constant feature), averaged. */
static void test_context_definition(void **state)
{
    (void)state;
    const float X[] = {0, 0, 5, 7, 1, 10, 5, 7, 2, 20, 5, 7, 3, 30, 5, 7, 4, 100, 9, 7};
    float Y[5 * 3];  /* the first three features: the fourth is constant */
    for (int i = 0; i < 5; i++) memcpy(Y + i * 3, X + i * 4, 3 * sizeof *Y);
    const int32_t idx[] = {1, 2, 0, 2, 1, 3, 2, 4, 3, -1};
    knn_context_in in = {5, 3, 2, Y, idx, ctx_row3, Y, 1};
    double typ[4], out[5], out2[5];
    float G[5 * 4];
    ody_err err;
    assert_int_equal(knn_context_ref(NULL, &in, 0, NULL, 5, G, &err), 0);
    const float gaps[] = {1, 10, 0, 1, 10, 0, 1, 10, 0, 1, 10, 0, 1, 70, 4};
    assert_memory_equal(G, gaps, sizeof gaps);
    assert_int_equal(knn_context_typical(G, 5, 3, typ, &err), 0);
    assert_true(typ[0] == 1 && typ[1] == 10);
    assert_true(fabs(typ[2] - 0.8) < 1e-15);  /* gaps 0 0 0 0 4: their mean */
    assert_int_equal(knn_context(&in, typ, G, NULL, 5, out, &err), 0);
    /* row 3: its neighbours' gaps 10 and 70 in the second feature, 0 and 4 in the third */
    const double want[] = {2.0 / 3, 2.0 / 3, 2.0 / 3, (1 + 10.0 / 40 + 0) / 3, (1 + 7 + 5) / 3.0};
    for (int i = 0; i < 5; i++)
        if (fabs(out[i] - want[i]) > 1e-12) fail_msg("row %d: CONTEXT %.17g, want %.17g", i, out[i], want[i]);
    /* the same with two threads */
    in.n_threads = 2;
    assert_int_equal(knn_context(&in, typ, G, NULL, 5, out2, &err), 0);
    assert_memory_equal(out, out2, sizeof out);
    /* a constant feature adds nothing, and counts in the mean */
    knn_context_in w4 = {5, 4, 2, X, idx, ctx_row4, X, 1};
    assert_int_equal(knn_context_ref(NULL, &w4, 0, NULL, 5, G, &err), 0);
    assert_int_equal(knn_context_typical(G, 5, 4, typ, &err), 0);
    assert_true(typ[3] == 0);
    assert_int_equal(knn_context(&w4, typ, G, NULL, 5, out, &err), 0);
    for (int i = 0; i < 5; i++) assert_true(fabs(out[i] - want[i] * 3 / 4) < 1e-12);
    /* a reference sample: its rows' gaps alone, in its order, and their
     * medians (of two: the mean of the two) */
    const int32_t ref[] = {1, 4};
    assert_int_equal(knn_context_ref(NULL, &in, 0, ref, 2, G, &err), 0);
    assert_memory_equal(G, gaps + 3, 3 * sizeof *G);
    assert_memory_equal(G + 3, gaps + 12, 3 * sizeof *G);
    assert_int_equal(knn_context_typical(G, 2, 3, typ, &err), 0);
    assert_true(typ[0] == 1 && typ[1] == 40 && typ[2] == 2);
    /* a list naming a row outside the sample, or not held here: an error, not a guess */
    assert_int_equal(knn_context(&in, typ, G, ref, 2, out, &err), ODY_EINTERNAL);
    in.row = ctx_row_part;
    assert_int_equal(knn_context_ref(NULL, &in, 0, NULL, 5, G, &err), ODY_EINTERNAL);
}

static void test_standardize(void **state)
{
    (void)state;
    float X[6] = {1, 5, 2, 5, 3, 5}, Z[6];
    knn_standardize(X, 3, 2, Z);
    assert_true(fabsf(Z[0] + 1.2247449f) < 1e-5f && fabsf(Z[4] - 1.2247449f) < 1e-5f);
    assert_true(Z[1] == 0 && Z[3] == 0 && Z[5] == 0);  /* a constant column */
}

/* Projection standardising blocks of rows as it goes equals projection of
 * a standardised copy, bit for bit; and data that lie in a P-dimensional
 * subspace keep their distances. */
void openblas_set_num_threads(int num_threads);

static void test_project(void **state)
{
    (void)state;
    size_t n = 5000;
    int F = 40, P = 3;
    float *X = malloc(n * F * sizeof *X), *Z = malloc(n * F * sizeof *Z);
    float *Y1 = malloc(n * P * sizeof *Y1), *Y2 = malloc(n * P * sizeof *Y2);
    ody_rng r;
    ody_rng_stream(&r, 3, 0);
    float basis[3][40];
    for (int p = 0; p < P; p++)
        for (int f = 0; f < F; f++) basis[p][f] = (float)(ody_rng_uniform(&r) - 0.5);
    for (size_t i = 0; i < n; i++) {
        double c[3] = {ody_rng_uniform(&r) * 4, ody_rng_uniform(&r) * 2, ody_rng_uniform(&r)};
        for (int f = 0; f < F; f++)
            X[i * F + f] = (float)(c[0] * basis[0][f] + c[1] * basis[1][f] + c[2] * basis[2][f]);
    }
    ody_err e;
    assert_int_equal(knn_standardize(X, n, F, Z), 0);
    knn_scale sc;
    assert_int_equal(knn_scale_fit(&sc, X, n, F), 0);
    float V1[40 * 3], V2[40 * 3];
    assert_ok(knn_pca(X, n, F, &sc, P, 7, V1, &e), e);
    assert_ok(knn_pca(Z, n, F, NULL, P, 7, V2, &e), e);
    assert_memory_equal(V1, V2, sizeof V1);

    assert_ok(knn_project(X, n, F, &sc, V1, P, Y1, &e), e);
    assert_ok(knn_project(Z, n, F, NULL, V2, P, Y2, &e), e);
    assert_memory_equal(Y1, Y2, n * P * sizeof *Y1);
    /* a row's projection whatever range it comes in (each process projects
     * its own rows, in blocks from its first) */
    const size_t cut[][2] = {{1667, 3334}, {1, 2050}, {17, 18}, {4095, 5000}};
    for (size_t c = 0; c < sizeof cut / sizeof *cut; c++) {
        size_t a = cut[c][0], b = cut[c][1];
        assert_ok(knn_project(X + a * F, b - a, F, &sc, V1, P, Y2 + a * P, &e), e);
        assert_memory_equal(Y1 + a * P, Y2 + a * P, (b - a) * P * sizeof *Y1);
    }
    for (size_t i = 0; i + 1 < n; i += 97) {
        double dz = 0, dy = 0;
        for (int f = 0; f < F; f++) dz += pow((double)Z[i * F + f] - Z[(i + 1) * F + f], 2);
        for (int p = 0; p < P; p++) dy += pow((double)Y1[i * P + p] - Y1[(i + 1) * P + p], 2);
        assert_true(fabs(sqrt(dz) - sqrt(dy)) < 1e-3 * (1 + sqrt(dz)));
    }
    assert_int_equal(knn_pca(X, n, F, &sc, F, 7, V1, &e), ODY_EINTERNAL);
    knn_scale_free(&sc);
    free(X); free(Z); free(Y1); free(Y2);
}

/* Wide data's principal axes are the same bits whatever BLAS's threads: it
 * splits a product among them by its shape (spectra's neighbour distances
 * moved with OMP_NUM_THREADS). */
static void test_pca_any_threads(void **state)
{
    (void)state;
    size_t n = 4000;
    int F = 400, P = 16;
    float *X = malloc(n * F * sizeof *X), *V1 = malloc((size_t)F * P * sizeof *V1), *V2 = malloc((size_t)F * P * sizeof *V2);
    ody_rng r;
    ody_rng_stream(&r, 9, 0);
    for (size_t i = 0; i < n * F; i++) X[i] = (float)(ody_rng_uniform(&r) + (i % F < 5 ? 3 * ody_rng_uniform(&r) : 0));
    ody_err e;
    openblas_set_num_threads(2);
    assert_ok(knn_pca(X, n, F, NULL, P, 3, V1, &e), e);
    openblas_set_num_threads(1);
    assert_ok(knn_pca(X, n, F, NULL, P, 3, V2, &e), e);
    assert_memory_equal(V1, V2, (size_t)F * P * sizeof *V1);
    free(X); free(V1); free(V2);
}

/* ================================================================ heap */

static int cmp_dbl(const void *a, const void *b)
{
    double x = *(const double *)a, y = *(const double *)b;
    return (x > y) - (x < y);
}

/* The distance from v to the kk-th nearest of the m values col[q * F],
 * by sorting every distance. */
static double kth_brute(const float *col, int F, size_t m, double v, size_t kk)
{
    double *d = malloc(m * sizeof *d);
    for (size_t q = 0; q < m; q++) d[q] = fabs((double)col[q * (size_t)F] - v);
    qsort(d, m, sizeof *d, cmp_dbl);
    double r = d[kk - 1];
    free(d);
    return r;
}

/* -log P(X >= k), X ~ Poisson(lam), summing the pmf from k in logs. */
static double surprise_brute(int k, double lam)
{
    double top = -INFINITY, t[400];
    for (int i = 0; i < 400; i++) {
        t[i] = -lam + (k + i) * log(lam) - lgamma(k + i + 1.0);
        if (t[i] > top) top = t[i];
    }
    double s = 0;
    for (int i = 0; i < 400; i++) s += exp(t[i] - top);
    return -(top + log(s));
}

/* HEAP of n rows X (n x F) against themselves as the reference rows, by
 * its definition in knn.h. */
static void heap_brute(const float *X, size_t n, int F, int k, double *out)
{
    double *a = malloc(n * sizeof *a), *typ = malloc((size_t)F * sizeof *typ);
    size_t scale[8];
    int ns = 0;
    for (size_t k2 = 4 * (size_t)k; ns < 8 && k2 + 1 <= n; k2 *= 2) {
        if (ns && (double)k2 > 0.02 * (double)n) break;
        scale[ns++] = k2;
    }
    for (int j = 0; j < F; j++) {
        for (size_t q = 0; q < n; q++) a[q] = kth_brute(X + j, F, n, X[q * (size_t)F + (size_t)j], (size_t)k + 1);
        qsort(a, n, sizeof *a, cmp_dbl);
        typ[j] = n % 2 ? a[n / 2] : (a[n / 2 - 1] + a[n / 2]) / 2;
    }
    for (size_t i = 0; i < n; i++) {
        out[i] = 0;
        for (int j = 0; j < F && ns; j++) {
            if (!(typ[j] > 0)) continue;
            double v = X[i * (size_t)F + (size_t)j], ai = kth_brute(X + j, F, n, v, (size_t)k + 1);
            if (ai < typ[j]) ai = typ[j];
            for (int q = 0; q < ns; q++) {
                double b = kth_brute(X + j, F, n, v, scale[q] + 1);
                if (b > ai && surprise_brute(k, (double)scale[q] * ai / b) > out[i])
                    out[i] = surprise_brute(k, (double)scale[q] * ai / b);
            }
        }
    }
    free(a);
    free(typ);
}

/* HEAP against its definition, brute force: a smooth feature (a normal)
 * with a heap of 30 objects at 2 sigma, where it is sparse, and a discrete feature (most values tie: every
 * value is a heap) that adds nothing; the heap's members alone score,
 * whatever the threads. */
static void test_heap_definition(void **state)
{
    (void)state;
    size_t n = 1200;
    int F = 2, k = 20;
    float *X = malloc(n * (size_t)F * sizeof *X);
    double *want = malloc(n * sizeof *want), *out = malloc(n * sizeof *out), *out2 = malloc(n * sizeof *out2);
    ody_rng r;
    ody_rng_stream(&r, 5, 0);
    for (size_t i = 0; i < n; i++) {
        double u1 = ody_rng_uniform(&r), u2 = ody_rng_uniform(&r), g = sqrt(-2 * log(1 - u1)) * cos(2 * M_PI * u2);
        X[i * 2] = i % 40 == 7 ? (float)(2 + 1e-4 * u1) : (float)g;  /* a heap in the normal's tail */
        X[i * 2 + 1] = (float)(i % 5);
    }
    heap_brute(X, n, F, k, want);
    uint8_t *all = malloc(n);
    memset(all, 1, n);
    knn_heap *h = NULL;
    ody_err e;
    assert_ok(knn_heap_create(X, n, F, k, &h, &e), e);
    knn_heap_score(h, X, n, all, 1, out, NULL);
    knn_heap_score(h, X, n, all, 2, out2, NULL);
    assert_memory_equal(out, out2, n * sizeof *out);
    double low = INFINITY;
    int near = 0;  /* others that score: within the heap's reach, they are in it */
    for (size_t i = 0; i < n; i++) {
        if (fabs(out[i] - want[i]) > 1e-9 * (1 + want[i]))
            fail_msg("row %zu: HEAP %.17g, want %.17g", i, out[i], want[i]);
        if (i % 40 == 7 && out[i] < low) low = out[i];
        if (i % 40 != 7 && out[i] > 3) {
            near++;
            if (fabs(X[i * 2] - 2) > 0.2) fail_msg("row %zu at %g, away from the heap: HEAP %g", i, X[i * 2], out[i]);
        }
    }
    if (!(low > 10 && near < 10)) fail_msg("the heap's lowest %g; %d others near it score", low, near);
    /* another catalog's objects (none a reference row) keep every
     * reference value: at the heap they are in it, at the mode not */
    float q[4] = {2.00005f, 2, 0, 2};
    knn_heap_score(h, q, 2, NULL, 1, out, NULL);
    assert_true(out[0] > 10 && out[1] < 3);
    knn_heap_destroy(h);
    /* the discrete feature alone: nothing */
    float *D = malloc(n * sizeof *D);
    for (size_t i = 0; i < n; i++) D[i] = X[i * 2 + 1];
    assert_ok(knn_heap_create(D, n, 1, k, &h, &e), e);
    knn_heap_score(h, D, n, all, 1, out, NULL);
    for (size_t i = 0; i < n; i++) assert_true(out[i] == 0);
    knn_heap_destroy(h);
    /* too few rows for a scale of 4k: nothing */
    assert_ok(knn_heap_create(X, 4 * (size_t)k, F, k, &h, &e), e);
    knn_heap_score(h, X, 4 * (size_t)k, all, 1, out, NULL);
    for (int i = 0; i < 4 * k; i++) assert_true(out[i] == 0);
    knn_heap_destroy(h);
    assert_int_equal(knn_heap_create(X, n, F, 0, &h, &e), ODY_EINTERNAL);
    assert_null(h);
    free(X); free(want); free(out); free(out2); free(all); free(D);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_searches_match_brute_force),
        cmocka_unit_test(test_reference_subset),
        cmocka_unit_test(test_queries_and_errors),
        cmocka_unit_test(test_lof_definition),
        cmocka_unit_test(test_lof_reference),
        cmocka_unit_test(test_context_definition),
        cmocka_unit_test(test_heap_definition),
        cmocka_unit_test(test_standardize),
        cmocka_unit_test(test_project),
        cmocka_unit_test(test_pca_any_threads),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
