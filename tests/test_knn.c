/* test_knn.c — the k-d tree against brute force (ties and duplicates
 * included), thread independence, LOF against its definition. */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "knn.h"
#include "testutil.h"

/* Brute-force lists: (squared distance, row) order, self excluded. */
static void brute(const float *X, size_t n, int d, int k, int32_t *idx, float *dist)
{
    double *dd = malloc(n * sizeof *dd);
    for (size_t i = 0; i < n; i++) {
        for (size_t j = 0; j < n; j++) {
            double s = 0;
            for (int f = 0; f < d; f++) {
                double e = (double)X[j * d + f] - X[i * d + f];
                s += e * e;
            }
            dd[j] = j == i ? INFINITY : s;
        }
        for (int m = 0; m < k; m++) {
            size_t b = 0;
            for (size_t j = 1; j < n; j++)
                if (dd[j] < dd[b]) b = j;  /* strict: the lowest row wins a tie */
            idx[i * k + m] = (int32_t)b;
            dist[i * k + m] = (float)sqrt(dd[b]);
            dd[b] = INFINITY;
        }
    }
    free(dd);
}

/* Points on a coarse grid, so that ties and duplicates are many. */
static float *grid_points(size_t n, int d, unsigned seed)
{
    float *X = malloc(n * d * sizeof *X);
    srand(seed);
    for (size_t i = 0; i < n * d; i++) X[i] = (float)(rand() % 7) * 0.5f;
    return X;
}

static void test_tree_matches_brute_force(void **state)
{
    (void)state;
    int dims[] = {1, 2, 3, 8, 30};
    for (int t = 0; t < 5; t++) {
        int d = dims[t], k = 7;
        size_t n = 600;
        float *X = grid_points(n, d, 11 + t);
        int32_t *i1 = malloc(n * k * sizeof *i1), *i2 = malloc(n * k * sizeof *i2);
        float *d1 = malloc(n * k * sizeof *d1), *d2 = malloc(n * k * sizeof *d2);
        knn_tree *tr = NULL;
        ody_err e;
        assert_ok(knn_build(X, n, d, &tr, &e), e);
        assert_ok(knn_all(tr, k, 2, i1, d1, &e), e);
        brute(X, n, d, k, i2, d2);
        assert_memory_equal(i1, i2, n * k * sizeof *i1);
        for (size_t q = 0; q < n * k; q++) assert_true(fabsf(d1[q] - d2[q]) <= 1e-5f * (1 + d2[q]));
        /* one thread gives the same lists */
        assert_ok(knn_all(tr, k, 1, i2, d2, &e), e);
        assert_memory_equal(i1, i2, n * k * sizeof *i1);
        assert_memory_equal(d1, d2, n * k * sizeof *d1);
        knn_destroy(tr);
        free(X); free(i1); free(i2); free(d1); free(d2);
    }
}

static void test_queries_and_errors(void **state)
{
    (void)state;
    size_t n = 300;
    int d = 4, k = 5;
    float *X = grid_points(n, d, 3), Q[8] = {0, 0, 0, 0, 3, 3, 3, 3};
    knn_tree *tr = NULL;
    ody_err e;
    assert_ok(knn_build(X, n, d, &tr, &e), e);
    int32_t idx[10];
    float dist[10];
    assert_ok(knn_query(tr, Q, 2, k, 0, idx, dist, &e), e);
    for (int m = 1; m < k; m++) assert_true(dist[m] >= dist[m - 1]);
    /* a row of the catalog asked as a query finds itself at distance 0 */
    assert_ok(knn_query(tr, X + 7 * d, 1, 1, 0, idx, dist, &e), e);
    assert_true(dist[0] == 0);
    assert_int_equal(knn_all(tr, (int)n, 0, NULL, NULL, &e), ODY_EINPUT);
    knn_destroy(tr);
    /* identical rows: one leaf, all distances 0 */
    float same[40] = {0};
    assert_ok(knn_build(same, 20, 2, &tr, &e), e);
    int32_t si[60];
    float sd[60];
    assert_ok(knn_all(tr, 3, 0, si, sd, &e), e);
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
    assert_ok(knn_build(X, n, 2, &tr, &e), e);
    int32_t idx[41 * 5];
    float dist[41 * 5];
    assert_ok(knn_all(tr, k, 0, idx, dist, &e), e);
    double lof[41];
    knn_lof(n, k, k, idx, dist, lof);
    for (size_t i = 0; i < 40; i++) assert_true(lof[i] < 1.6);
    assert_true(lof[40] > 10);
    knn_destroy(tr);
}

static void test_standardize(void **state)
{
    (void)state;
    float X[6] = {1, 5, 2, 5, 3, 5}, Z[6];
    knn_standardize(X, 3, 2, Z);
    assert_true(fabsf(Z[0] + 1.2247449f) < 1e-5f && fabsf(Z[4] - 1.2247449f) < 1e-5f);
    assert_true(Z[1] == 0 && Z[3] == 0 && Z[5] == 0);  /* a constant column */
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_tree_matches_brute_force),
        cmocka_unit_test(test_queries_and_errors),
        cmocka_unit_test(test_lof_definition),
        cmocka_unit_test(test_standardize),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
