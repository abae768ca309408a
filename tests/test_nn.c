/* test_nn.c — MLP training, save/load, determinism, bad parameters. */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "nn.h"
#include "testutil.h"

void openblas_set_num_threads(int num_threads);

static void test_xor(void **state)
{
    (void)state;
    float X[] = {0, 0, 0, 1, 1, 0, 1, 1};
    int y[] = {0, 1, 1, 0};
    /* replicate so a batch of 4 sees every pattern */
    float Xr[64 * 2];
    float T[64];
    int yr[64];
    for (int i = 0; i < 64; i++) { Xr[2 * i] = X[2 * (i % 4)]; Xr[2 * i + 1] = X[2 * (i % 4) + 1]; yr[i] = y[i % 4]; }
    assert_int_equal(nn_targets(yr, 64, 1, T), 0);
    nn_arch a = {2, 2, {8, 1}, {NN_TANH, NN_SIGMOID}, NN_BCE};
    nn_model *m = NULL;
    ody_err e;
    nn_train_opt o;
    nn_train_opt_init(&o);
    o.lr = 0.1;
    o.batch = 8;
    o.max_epochs = 300;
    o.val_frac = 0;
    o.patience = 300;
    o.standardize = 0;
    assert_ok(nn_create(&a, o.init, 3, &m, &e), e);
    nn_history h;
    assert_ok(nn_train(m, &o, Xr, T, 64, &h, NULL, &e), e);
    float P[4];
    assert_ok(nn_predict(m, X, 4, 1, P, &e), e);
    for (int i = 0; i < 4; i++) assert_int_equal(P[i] > 0.5f, y[i]);
    nn_destroy(m);
}

/* A row's output is the same bits whatever range of the table it is
 * predicted in: processes each predict their rows, and BLAS rounds a block's
 * edge rows differently (a demo run under mpirun -np 3 differed in the last
 * bit of rows next to a process boundary). */
static void test_predict_rows_any_range(void **state)
{
    (void)state;
    enum { N = 5000, D = 6 };
    nn_arch a = {D, 3, {32, 32, 1}, {NN_RELU, NN_RELU, NN_SIGMOID}, NN_BCE};
    nn_model *m = NULL;
    ody_err e;
    assert_ok(nn_create(&a, NN_HE, 5, &m, &e), e);
    float *X = malloc(N * D * sizeof *X), *all = malloc(N * sizeof *all), *part = malloc(N * sizeof *part);
    ody_rng r;
    ody_rng_stream(&r, 11, 0);
    for (size_t i = 0; i < N * D; i++) X[i] = (float)(4 * ody_rng_uniform(&r) - 2);
    assert_ok(nn_predict(m, X, N, 2, all, &e), e);
    const size_t cuts[][5] = {{0, 1250, 2500, 3750, N}, {0, 1667, 3334, N, N}, {0, 1, 1023, 1025, N}, {0, 17, 4999, N, N}};
    for (size_t c = 0; c < sizeof cuts / sizeof *cuts; c++)
        for (int p = 0; p < 4; p++) {
            size_t lo = cuts[c][p], hi = cuts[c][p + 1];
            if (hi <= lo) continue;
            assert_ok(nn_predict_rows(m, X + lo * D, hi - lo, lo, 1, part + lo, &e), e);
            if (memcmp(part + lo, all + lo, (hi - lo) * sizeof *all)) fail_msg("rows %zu..%zu differ", lo, hi);
        }
    free(X);
    free(all);
    free(part);
    nn_destroy(m);
}

/* Two interleaved half circles with noise. */
static void moons(size_t n, uint64_t seed, float *X, int *y)
{
    ody_rng r;
    ody_rng_stream(&r, seed, 0);
    for (size_t i = 0; i < n; i++) {
        double t = M_PI * ody_rng_uniform(&r);
        int c = (int)(i % 2);
        double x0 = c ? 1 - cos(t) : cos(t), x1 = c ? 0.5 - sin(t) : sin(t);
        double g1 = 0, g2 = 0;
        for (int k = 0; k < 6; k++) { g1 += ody_rng_uniform(&r) - 0.5; g2 += ody_rng_uniform(&r) - 0.5; }
        X[2 * i] = (float)(x0 + 0.1 * g1);
        X[2 * i + 1] = (float)(x1 + 0.1 * g2);
        y[i] = c;
    }
}


/* Damages for a saved model, each at the file's primary HDU. */
static void nan_weight(fitsfile *f, int *status)
{
    float nan = NAN;
    fits_movnam_hdu(f, IMAGE_HDU, "LAYER2", 0, status);
    fits_write_img(f, TFLOAT, 5, 1, &nan, status);
}

static void unknown_act(fitsfile *f, int *status)
{
    fits_movnam_hdu(f, IMAGE_HDU, "LAYER2", 0, status);
    fits_update_key(f, TSTRING, "ACT", "swish", NULL, status);
}

static void junk_count(fitsfile *f, int *status)
{
    fits_modify_card(f, "NLAYERS", "NLAYERS =           000000012A09E52BBAB05C1F15B8381 89  C        0000007F7F7CB77",
                     status);
}

/* m saved anew at path, damaged by edit: nn_load refuses it with a message
 * holding want (and want2 when not NULL), and hands back no model. */
static void refused_after_edit(const nn_model *m, const nn_train_opt *o, const char *path,
                               void (*edit)(fitsfile *, int *), const char *want, const char *want2)
{
    ody_err e;
    fitsfile *f = NULL;
    int status = 0;
    nn_model *bad = NULL;
    remove(path);
    assert_ok(nn_save(m, o, path, NULL, 0, &e), e);
    fits_open_file(&f, path, READWRITE, &status);
    edit(f, &status);
    fits_close_file(f, &status);
    assert_int_equal(status, 0);
    assert_int_equal(nn_load(path, &bad, &e), ODY_EINPUT);
    if (!strstr(e.msg, want) || (want2 && !strstr(e.msg, want2))) fail_msg("%s", e.msg);
    assert_null(bad);
}

static void test_two_moons_and_round_trip(void **state)
{
    (void)state;
    size_t n = 2000, nt = 1000;
    float *X = malloc(n * 2 * sizeof *X), *Xt = malloc(nt * 2 * sizeof *Xt);
    float *T = malloc(n * 2 * sizeof *T), *Tt = malloc(nt * 2 * sizeof *Tt);
    int *y = malloc(n * sizeof *y), *yt = malloc(nt * sizeof *yt);
    moons(n, 1, X, y);
    moons(nt, 2, Xt, yt);
    nn_targets(y, n, 2, T);
    nn_targets(yt, nt, 2, Tt);
    nn_arch a = {2, 3, {32, 32, 2}, {NN_RELU, NN_RELU, NN_SOFTMAX}, NN_CCE};
    nn_model *m = NULL, *m2 = NULL;
    ody_err e;
    nn_train_opt o;
    nn_train_opt_init(&o);
    o.lr = 0.05;
    o.init = NN_HE;
    assert_ok(nn_create(&a, o.init, 7, &m, &e), e);
    nn_history h;
    assert_ok(nn_train(m, &o, X, T, n, &h, NULL, &e), e);
    float *P = malloc(nt * 2 * sizeof *P), *P2 = malloc(nt * 2 * sizeof *P2);
    assert_ok(nn_predict(m, Xt, nt, 2, P, &e), e);
    double acc = nn_accuracy(P, Tt, nt, 2);
    if (acc < 0.97) fail_msg("two moons held-out accuracy %.4f < 0.97", acc);
    assert_true(h.best_epoch >= 1 && h.best_epoch <= h.epochs);

    char *dir = tu_tmpdir(), *path = tu_path(dir, "mlp.fits");
    assert_ok(nn_save(m, &o, path, NULL, 0, &e), e);
    assert_ok(nn_load(path, &m2, &e), e);
    assert_ok(nn_predict(m2, Xt, nt, 1, P2, &e), e);
    assert_memory_equal(P, P2, nt * 2 * sizeof *P);
    assert_int_equal(m2->arch.n_layers, 3);
    assert_int_equal(m2->arch.act[2], NN_SOFTMAX);
    nn_model *bad = NULL;
    assert_int_equal(nn_load(dir, &bad, &e), ODY_EINPUT);
    /* a damaged model: refused, naming the file, never a NaN score */
    refused_after_edit(m, &o, path, nan_weight, "mlp.fits: weight", "is nan");
    refused_after_edit(m, &o, path, unknown_act, "mlp.fits: mlp: layer 2 has an unknown activation", NULL);
    /* a long value that is not a number where a count belongs (a fuzz
     * finding: CFITSIO's integer read aborted the process on it) */
    refused_after_edit(m, &o, path, junk_count, "mlp.fits: not an oddsky MLP model", NULL);
    tu_rmtree(dir);
    free(dir); free(path);
    nn_destroy(m); nn_destroy(m2);
    free(X); free(Xt); free(T); free(Tt); free(y); free(yt); free(P); free(P2);
}

/* n rows of d uniform inputs (seeded) and a linear rule's 0/1 targets. */
static void linear_data(float *X, float *T, size_t n, int d, uint64_t seed)
{
    ody_rng r;
    ody_rng_stream(&r, seed, 0);
    for (size_t i = 0; i < n; i++) {
        double s = 0;
        for (int j = 0; j < d; j++) { X[i * d + j] = (float)(ody_rng_uniform(&r) - 0.5); s += X[i * d + j] * (j % 3 - 1); }
        T[i] = s > 0;
    }
}

static void test_same_weights_for_1_and_2_threads(void **state)
{
    (void)state;
    size_t n = 3000;
    int d = 40;
    float *X = malloc(n * d * sizeof *X), *T = malloc(n * sizeof *T);
    linear_data(X, T, n, d, 4);
    nn_arch a = {d, 3, {128, 128, 1}, {NN_RELU, NN_TANH, NN_SIGMOID}, NN_BCE};
    nn_model *m[2];
    ody_err e;
    for (int t = 0; t < 2; t++) {
        nn_train_opt o;
        nn_train_opt_init(&o);
        o.max_epochs = 3;
        o.batch = 256;
        o.n_threads = t + 1;
        assert_ok(nn_create(&a, o.init, 11, &m[t], &e), e);
        assert_ok(nn_train(m[t], &o, X, T, n, NULL, NULL, &e), e);
    }
    assert_memory_equal(m[0]->w, m[1]->w, m[0]->n_par * sizeof(float));
    nn_destroy(m[0]);
    nn_destroy(m[1]);
    openblas_set_num_threads(2);
    free(X); free(T);
}

/* Rows fetched in blocks (rows->fetch: how processes that each hold a
 * part of the rows train together) give the same weights as rows made one
 * at a time: wide rows, so that a round comes in several parts and the
 * validation rows in several blocks, and a batch that divides neither. */
typedef struct mat { const float *X, *T; int d; } mat;

static void mat_get(const void *ctx, size_t i, float *x, float *t)
{
    const mat *a = ctx;
    memcpy(x, a->X + i * (size_t)a->d, (size_t)a->d * sizeof *x);
    *t = a->T[i];
}

static int mat_fetch(const void *ctx, const size_t *idx, size_t cnt, float *X, float *T, int root)
{
    (void)root;
    for (size_t q = 0; q < cnt; q++) mat_get(ctx, idx[q], X + q * (size_t)((const mat *)ctx)->d, T + q);
    return 0;
}

static void test_fetched_rows_same_weights(void **state)
{
    (void)state;
    size_t n = 12000;
    int d = 700;  /* a block of 2^21 inputs: 2,940 rows, so a round's 6,000 rows a replica come in parts */
    float *X = malloc(n * d * sizeof *X), *T = malloc(n * sizeof *T);
    linear_data(X, T, n, d, 5);
    nn_arch a = {d, 2, {8, 1}, {NN_RELU, NN_SIGMOID}, NN_BCE};
    nn_model *m[2];
    ody_err e;
    mat ctx = {X, T, d};
    for (int k = 0; k < 2; k++) {
        nn_train_opt o;
        nn_train_opt_init(&o);
        o.max_epochs = 2;
        o.batch = 70;
        o.val_frac = 0.4;
        o.class_weight = 1;
        o.n_threads = 2;
        nn_rows rows = k ? (nn_rows){n, &ctx, NULL, mat_fetch} : (nn_rows){n, &ctx, mat_get, NULL};
        nn_history h;
        assert_ok(nn_create(&a, o.init, 12, &m[k], &e), e);
        assert_ok(nn_train_rows(m[k], &o, &rows, &h, NULL, &e), e);
        assert_true(h.val_acc > 0.6);
    }
    assert_memory_equal(m[0]->w, m[1]->w, m[0]->n_par * sizeof(float));
    assert_memory_equal(m[0]->mu, m[1]->mu, (size_t)d * sizeof(float));
    nn_destroy(m[0]);
    nn_destroy(m[1]);
    free(X); free(T);
}

static void test_bad_parameters(void **state)
{
    (void)state;
    ody_err e;
    nn_model *m = NULL;
    nn_arch zero = {3, 0, {0}, {0}, NN_MSE};
    assert_int_equal(nn_create(&zero, NN_HE, 1, &m, &e), ODY_EINPUT);
    nn_arch bce = {3, 1, {2}, {NN_SOFTMAX}, NN_BCE};
    assert_int_equal(nn_create(&bce, NN_HE, 1, &m, &e), ODY_EINPUT);
    assert_non_null(strstr(e.msg, "sigmoid"));
    nn_arch mid = {3, 2, {4, 2}, {NN_SOFTMAX, NN_SOFTMAX}, NN_CCE};
    assert_int_equal(nn_create(&mid, NN_HE, 1, &m, &e), ODY_EINPUT);
    assert_null(m);

    float X[20 * 2], T[20];
    for (int i = 0; i < 20; i++) { X[2 * i] = (float)i; X[2 * i + 1] = (float)(i % 3); T[i] = i % 2; }
    nn_arch a = {2, 1, {1}, {NN_SIGMOID}, NN_BCE};
    assert_ok(nn_create(&a, NN_HE, 1, &m, &e), e);
    nn_train_opt o;
    nn_train_opt_init(&o);
    o.lr = -1;
    assert_int_equal(nn_train(m, &o, X, T, 20, NULL, NULL, &e), ODY_EINPUT);
    assert_non_null(strstr(e.msg, "learning_rate"));
    nn_train_opt_init(&o);
    o.batch = 100;
    assert_int_equal(nn_train(m, &o, X, T, 20, NULL, NULL, &e), ODY_EINPUT);
    assert_non_null(strstr(e.msg, "batch"));
    nn_train_opt_init(&o);
    o.batch = 4;
    X[7] = NAN;
    assert_int_equal(nn_train(m, &o, X, T, 20, NULL, NULL, &e), ODY_EINPUT);
    assert_non_null(strstr(e.msg, "NaN"));
    X[7] = 1;
    nn_destroy(m);

    /* a diverging run stops with advice instead of NaN weights */
    nn_arch lin = {2, 2, {16, 1}, {NN_LINEAR, NN_LINEAR}, NN_MSE};
    assert_ok(nn_create(&lin, NN_HE, 1, &m, &e), e);
    nn_train_opt_init(&o);
    o.lr = 10;
    o.standardize = 0;
    o.batch = 4;
    for (int i = 0; i < 20; i++) T[i] = 1000.0f * i;
    int rc = nn_train(m, &o, X, T, 20, NULL, NULL, &e);
    assert_int_equal(rc, ODY_EINPUT);
    assert_non_null(strstr(e.msg, "diverged"));
    for (size_t k = 0; k < m->n_par; k++) assert_true(isfinite(m->w[k]));
    nn_destroy(m);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_xor),
        cmocka_unit_test(test_predict_rows_any_range),
        cmocka_unit_test(test_two_moons_and_round_trip),
        cmocka_unit_test(test_same_weights_for_1_and_2_threads),
        cmocka_unit_test(test_fetched_rows_same_weights),
        cmocka_unit_test(test_bad_parameters),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
