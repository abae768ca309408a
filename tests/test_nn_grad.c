/* test_nn_grad.c — finite-difference gradient check of backpropagation, on
 * the double build of nn.c (NN_DOUBLE), for every activation and loss. */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "nn.h"
#include "testutil.h"

static void check(const nn_arch *a, double l2, int weighted)
{
    nn_model *m = NULL;
    ody_err e;
    assert_ok(nn_create(a, NN_GLOROT_NORMAL, 5, &m, &e), e);
    /* non-zero biases, so their gradients are exercised too */
    for (size_t k = 0; k < m->n_par; k++) m->w[k] += 0.05 * sin((double)k);
    const size_t n = 7;
    int d = a->n_in, K = a->size[a->n_layers - 1];
    double X[7 * 8], T[7 * 8], sw[7];
    ody_rng r;
    ody_rng_stream(&r, 99, 0);
    for (size_t i = 0; i < n * (size_t)d; i++) X[i] = 2 * ody_rng_uniform(&r) - 1;
    for (size_t i = 0; i < n; i++) {
        sw[i] = weighted ? 0.5 + ody_rng_uniform(&r) : 1.0;
        int c = (int)ody_rng_below(&r, (unsigned long long)(K > 1 ? K : 2));
        for (int k = 0; k < K; k++) {
            if (a->loss == NN_MSE) T[i * K + k] = ody_rng_uniform(&r);
            else if (K == 1) T[i * K + k] = c;
            else T[i * K + k] = k == c;
        }
    }
    double *g = malloc(m->n_par * sizeof *g);
    nn_loss_grad(m, X, T, weighted ? sw : NULL, n, l2, g);
    double worst = 0;
    for (size_t k = 0; k < m->n_par; k++) {
        double w0 = m->w[k], h = 1e-5;
        m->w[k] = w0 + h;
        double lp = nn_loss_grad(m, X, T, weighted ? sw : NULL, n, l2, NULL);
        m->w[k] = w0 - h;
        double lm = nn_loss_grad(m, X, T, weighted ? sw : NULL, n, l2, NULL);
        m->w[k] = w0;
        double num = (lp - lm) / (2 * h);
        double rel = fabs(num - g[k]) / fmax(1e-4, fabs(num) + fabs(g[k]));
        if (rel > worst) worst = rel;
    }
    if (worst > 1e-7)
        fail_msg("loss %s, output %s, hidden %s: relative error %.3g", nn_loss_name(a->loss),
                 nn_act_name(a->act[a->n_layers - 1]), nn_act_name(a->act[0]), worst);
    free(g);
    nn_destroy(m);
}

static void test_every_activation_and_loss(void **state)
{
    (void)state;
    nn_act hidden[] = {NN_SIGMOID, NN_TANH, NN_RELU, NN_LINEAR};
    for (int h = 0; h < 4; h++) {
        nn_arch a = {5, 3, {6, 4, 1}, {hidden[h], hidden[(h + 1) % 4], NN_SIGMOID}, NN_BCE};
        check(&a, 0, 0);
        check(&a, 1e-3, 1);
        nn_arch c = {5, 2, {6, 3}, {hidden[h], NN_SOFTMAX}, NN_CCE};
        check(&c, 0, 1);
        nn_arch s = {4, 2, {5, 2}, {hidden[h], NN_LINEAR}, NN_MSE};
        check(&s, 1e-2, 0);
        nn_arch t = {4, 2, {5, 3}, {hidden[h], NN_TANH}, NN_MSE};
        check(&t, 0, 1);
    }
    nn_arch sm = {4, 2, {5, 3}, {NN_TANH, NN_SOFTMAX}, NN_MSE};  /* softmax Jacobian path */
    check(&sm, 0, 0);
    nn_arch sg = {4, 1, {2}, {NN_SIGMOID}, NN_MSE};
    check(&sg, 0, 0);
    nn_arch rl = {4, 2, {5, 2}, {NN_RELU, NN_RELU}, NN_MSE};
    check(&rl, 0, 0);
}

int main(void)
{
    const struct CMUnitTest tests[] = {cmocka_unit_test(test_every_activation_and_loss)};
    return cmocka_run_group_tests(tests, NULL, NULL);
}
