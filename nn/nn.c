/* nn.c — the MLP: creation, activations, forward and backward passes, the
 * loss and its gradient, prediction. */
#include <gsl/gsl_randist.h>
#include <gsl/gsl_rng.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "nn_work.h"

/* ================================================================ names */

static const char *act_names[] = {"linear", "sigmoid", "tanh", "relu", "softmax"};
static const char *loss_names[] = {"mse", "bce", "cce"};
static const char *init_names[] = {"glorot_uniform", "glorot_normal", "he"};

static int find_name(const char *s, const char *const *names, int n)
{
    for (int k = 0; s && k < n; k++)
        if (!strcmp(s, names[k])) return k;
    return -1;
}

int nn_act_parse(const char *s) { return find_name(s, act_names, 5); }
const char *nn_act_name(nn_act a) { return (unsigned)a < 5 ? act_names[a] : "?"; }
int nn_loss_parse(const char *s) { return find_name(s, loss_names, 3); }
const char *nn_loss_name(nn_loss l) { return (unsigned)l < 3 ? loss_names[l] : "?"; }
int nn_init_parse(const char *s) { return find_name(s, init_names, 3); }
const char *nn_init_name(nn_init i) { return (unsigned)i < 3 ? init_names[i] : "?"; }

/* ================================================================ model */

int nn_arch_check(const nn_arch *a, ody_err *err)
{
    if (a->n_in < 1) return ody_fail(err, ODY_EINPUT, "mlp: the network needs at least one input");
    if (a->n_in > 1 << 26) return ody_fail(err, ODY_EINPUT, "mlp: %d inputs — at most 67108864", a->n_in);
    if (a->n_layers < 1 || a->n_layers > NN_MAX_LAYERS)
        return ody_fail(err, ODY_EINPUT, "mlp: %d layers — give 1 to %d (hidden layers + output)",
                        a->n_layers, NN_MAX_LAYERS);
    for (int l = 0; l < a->n_layers; l++) {
        if (a->size[l] < 1 || a->size[l] > 1 << 20)
            return ody_fail(err, ODY_EINPUT, "mlp: layer %d has %d units — use 1 to 1048576", l + 1, a->size[l]);
        if ((unsigned)a->act[l] > NN_SOFTMAX)
            return ody_fail(err, ODY_EINPUT, "mlp: layer %d has an unknown activation", l + 1);
        if (a->act[l] == NN_SOFTMAX && l != a->n_layers - 1)
            return ody_fail(err, ODY_EINPUT, "mlp: softmax only on the output layer (layer %d)", l + 1);
    }
    nn_act out = a->act[a->n_layers - 1];
    int k = a->size[a->n_layers - 1];
    if (a->loss == NN_BCE && out != NN_SIGMOID)
        return ody_fail(err, ODY_EINPUT, "mlp: binary cross-entropy needs a sigmoid output layer, not %s",
                        nn_act_name(out));
    if (a->loss == NN_CCE && (out != NN_SOFTMAX || k < 2))
        return ody_fail(err, ODY_EINPUT, "mlp: categorical cross-entropy needs a softmax output of at least 2 units");
    if ((unsigned)a->loss > NN_CCE) return ody_fail(err, ODY_EINPUT, "mlp: unknown loss");
    return 0;
}

void nn_destroy(nn_model *m)
{
    if (!m) return;
    free(m->w);
    free(m->mu);
    free(m->sd);
    free(m);
}

int nnw_model_alloc(const nn_arch *a, nn_model **out, ody_err *err)
{
    int rc = nn_arch_check(a, err);
    if (rc) return rc;
    nn_model *m = calloc(1, sizeof *m);
    if (!m) return ody_fail(err, ODY_ENOMEM, "out of memory");
    m->arch = *a;
    size_t at = 0;
    int prev = a->n_in;
    for (int l = 0; l < a->n_layers; l++) {
        m->off[l] = at;
        at += (size_t)a->size[l] * (size_t)prev + (size_t)a->size[l];
        prev = a->size[l];
    }
    m->off[a->n_layers] = at;
    m->n_par = at;
    m->w = calloc(at, sizeof *m->w);
    m->mu = calloc((size_t)a->n_in, sizeof *m->mu);
    m->sd = malloc((size_t)a->n_in * sizeof *m->sd);
    if (!m->w || !m->mu || !m->sd) { nn_destroy(m); return ody_fail(err, ODY_ENOMEM, "out of memory"); }
    for (int j = 0; j < a->n_in; j++) m->sd[j] = 1;
    *out = m;
    return 0;
}

int nn_create(const nn_arch *a, nn_init init, uint64_t seed, nn_model **out, ody_err *err)
{
    nn_model *m = NULL;
    int rc = nnw_model_alloc(a, &m, err);
    if (rc) return rc;
    gsl_rng *r = gsl_rng_alloc(gsl_rng_mt19937);
    if (!r) { nn_destroy(m); return ody_fail(err, ODY_ENOMEM, "out of memory"); }
    gsl_rng_set(r, (unsigned long)seed);
    int prev = a->n_in;
    for (int l = 0; l < a->n_layers; l++) {
        int fo = a->size[l];
        nn_real *W = m->w + m->off[l];
        size_t nw = (size_t)fo * (size_t)prev;
        double lim = sqrt(6.0 / (prev + fo)), sg = sqrt(2.0 / (prev + fo)), sh = sqrt(2.0 / prev);
        for (size_t k = 0; k < nw; k++) {
            double v = init == NN_GLOROT_NORMAL ? gsl_ran_gaussian(r, sg)
                     : init == NN_HE ? gsl_ran_gaussian(r, sh)
                     : (2 * gsl_rng_uniform(r) - 1) * lim;
            W[k] = (nn_real)v;
        }
        prev = fo;  /* biases stay zero */
    }
    gsl_rng_free(r);
    *out = m;
    return 0;
}

/* ================================================================ layers */

void nnw_free(work *w)
{
    for (int l = 0; l < NN_MAX_LAYERS; l++) free(w->A[l]);
    free(w->zout);
    free(w->dA);
    free(w->dB);
    memset(w, 0, sizeof *w);
}

int nnw_init(work *w, const nn_arch *a, size_t rows)
{
    memset(w, 0, sizeof *w);
    w->cap = rows;
    int maxw = a->n_in;
    for (int l = 0; l < a->n_layers; l++) {
        w->A[l] = malloc(rows * (size_t)a->size[l] * sizeof(nn_real));
        if (!w->A[l]) { nnw_free(w); return -1; }
        if (a->size[l] > maxw) maxw = a->size[l];
    }
    w->zout = malloc(rows * (size_t)a->size[a->n_layers - 1] * sizeof(nn_real));
    w->dA = malloc(rows * (size_t)maxw * sizeof(nn_real));
    w->dB = malloc(rows * (size_t)maxw * sizeof(nn_real));
    if (!w->zout || !w->dA || !w->dB) { nnw_free(w); return -1; }
    return 0;
}

/* A = act(Z) in place over B x n. */
static void act_forward(nn_act act, nn_real *A, size_t B, int n)
{
    size_t N = B * (size_t)n;
    switch (act) {
    case NN_SIGMOID:
        for (size_t k = 0; k < N; k++) A[k] = (nn_real)(1.0 / (1.0 + exp(-(double)A[k])));
        break;
    case NN_TANH:
        for (size_t k = 0; k < N; k++) A[k] = (nn_real)tanh((double)A[k]);
        break;
    case NN_RELU:
        for (size_t k = 0; k < N; k++) A[k] = A[k] > 0 ? A[k] : 0;
        break;
    case NN_SOFTMAX:
        for (size_t i = 0; i < B; i++) {
            nn_real *a = A + i * (size_t)n;
            double mx = a[0], s = 0;
            for (int k = 1; k < n; k++) if (a[k] > mx) mx = a[k];
            for (int k = 0; k < n; k++) { double e = exp((double)a[k] - mx); a[k] = (nn_real)e; s += e; }
            for (int k = 0; k < n; k++) a[k] = (nn_real)(a[k] / s);
        }
        break;
    default: break;
    }
}

/* dZ = dA * act'(.) given the layer's output A, in place on dA. */
static void act_backward(nn_act act, const nn_real *A, nn_real *dA, size_t B, int n)
{
    size_t N = B * (size_t)n;
    switch (act) {
    case NN_SIGMOID: for (size_t k = 0; k < N; k++) dA[k] *= A[k] * (1 - A[k]); break;
    case NN_TANH: for (size_t k = 0; k < N; k++) dA[k] *= 1 - A[k] * A[k]; break;
    case NN_RELU: for (size_t k = 0; k < N; k++) dA[k] = A[k] > 0 ? dA[k] : 0; break;
    case NN_SOFTMAX:  /* Jacobian-vector product: dz = a * (g - sum(g a)) */
        for (size_t i = 0; i < B; i++) {
            const nn_real *a = A + i * (size_t)n;
            nn_real *g = dA + i * (size_t)n;
            double s = 0;
            for (int k = 0; k < n; k++) s += (double)g[k] * a[k];
            for (int k = 0; k < n; k++) g[k] = (nn_real)(a[k] * (g[k] - s));
        }
        break;
    default: break;
    }
}

const nn_real *nnw_forward(const nn_model *m, const nn_real *X, size_t B, work *w)
{
    const nn_arch *a = &m->arch;
    const nn_real *in = X;
    int prev = a->n_in;
    for (int l = 0; l < a->n_layers; l++) {
        int n = a->size[l];
        const nn_real *W = m->w + m->off[l], *b = W + (size_t)n * prev;
        nn_real *Z = w->A[l];
        for (size_t i = 0; i < B; i++) memcpy(Z + i * (size_t)n, b, (size_t)n * sizeof *Z);
        GEMM(CblasRowMajor, CblasNoTrans, CblasTrans, (int)B, n, prev, 1, in, prev, W, prev, 1, Z, n);
        if (l == a->n_layers - 1) memcpy(w->zout, Z, B * (size_t)n * sizeof *Z);
        act_forward(a->act[l], Z, B, n);
        in = Z;
        prev = n;
    }
    return w->A[a->n_layers - 1];
}

/* Loss of one row from its output pre-activation z and activation o. */
static double row_loss(nn_loss loss, nn_act out, const nn_real *z, const nn_real *o, const nn_real *t, int K)
{
    double l = 0;
    if (loss == NN_CCE) {
        double mx = z[0], s = 0;
        for (int k = 1; k < K; k++) if (z[k] > mx) mx = z[k];
        for (int k = 0; k < K; k++) s += exp((double)z[k] - mx);
        double lse = mx + log(s);
        for (int k = 0; k < K; k++) l += (double)t[k] * (lse - z[k]);
    } else if (loss == NN_BCE) {
        for (int k = 0; k < K; k++) {
            double zk = z[k];
            l += (zk > 0 ? zk : 0) - zk * t[k] + log1p(exp(-fabs(zk)));
        }
    } else {
        (void)out;
        for (int k = 0; k < K; k++) l += ((double)o[k] - t[k]) * ((double)o[k] - t[k]);
        l /= K;
    }
    return l;
}

double nnw_batch_grad(const nn_model *m, const nn_real *X, const nn_real *T, const nn_real *sw,
                         size_t B, double scale, nn_real *grad, work *w)
{
    const nn_arch *a = &m->arch;
    int L = a->n_layers, K = a->size[L - 1];
    const nn_real *O = nnw_forward(m, X, B, w);
    double loss = 0;
    nn_real *dA = w->dA;
    for (size_t i = 0; i < B; i++) {
        const nn_real *o = O + i * (size_t)K, *t = T + i * (size_t)K;
        double wi = sw ? sw[i] : 1.0;
        loss += wi * row_loss(a->loss, a->act[L - 1], w->zout + i * (size_t)K, o, t, K);
        if (!grad) continue;
        nn_real *d = dA + i * (size_t)K;
        double c = wi * scale;
        /* Output error: fused for (sigmoid, BCE) and (softmax, CCE); for MSE
         * dL/do, turned into dL/dz by the activation's backward below. */
        if (a->loss == NN_MSE)
            for (int k = 0; k < K; k++) d[k] = (nn_real)(c * 2.0 * ((double)o[k] - t[k]) / K);
        else
            for (int k = 0; k < K; k++) d[k] = (nn_real)(c * ((double)o[k] - t[k]));
    }
    if (!grad) return loss;
    if (a->loss == NN_MSE) act_backward(a->act[L - 1], O, dA, B, K);
    /* Backward through the layers: dW += dZ^T A_prev, db += sum dZ,
     * dA_prev = dZ W, then through the previous activation. */
    for (int l = L - 1; l >= 0; l--) {
        int n = a->size[l], prev = l ? a->size[l - 1] : a->n_in;
        const nn_real *Ap = l ? w->A[l - 1] : X;
        const nn_real *W = m->w + m->off[l];
        nn_real *gW = grad + m->off[l], *gb = gW + (size_t)n * prev;
        GEMM(CblasRowMajor, CblasTrans, CblasNoTrans, n, prev, (int)B, 1, dA, n, Ap, prev, 1, gW, prev);
        for (size_t i = 0; i < B; i++) {
            const nn_real *d = dA + i * (size_t)n;
            for (int k = 0; k < n; k++) gb[k] += d[k];
        }
        if (l == 0) break;
        nn_real *dP = dA == w->dA ? w->dB : w->dA;
        GEMM(CblasRowMajor, CblasNoTrans, CblasNoTrans, (int)B, prev, n, 1, dA, n, W, prev, 0, dP, prev);
        act_backward(a->act[l - 1], w->A[l - 1], dP, B, prev);
        dA = dP;
    }
    return loss;
}

static void add_l2(const nn_model *m, double l2, nn_real *grad, double *loss)
{
    if (l2 <= 0) return;
    int prev = m->arch.n_in;
    double s = 0;
    for (int l = 0; l < m->arch.n_layers; l++) {
        size_t nw = (size_t)m->arch.size[l] * prev;
        const nn_real *W = m->w + m->off[l];
        for (size_t k = 0; k < nw; k++) {
            s += (double)W[k] * W[k];
            if (grad) grad[m->off[l] + k] += (nn_real)(l2 * W[k]);
        }
        prev = m->arch.size[l];
    }
    if (loss) *loss += 0.5 * l2 * s;
}

double nn_loss_grad(const nn_model *m, const nn_real *X, const nn_real *T, const nn_real *sw,
                    size_t n, double l2, nn_real *grad)
{
    const size_t chunk = 256;
    work w;
    if (nnw_init(&w, &m->arch, n < chunk ? n : chunk)) return NAN;
    if (grad) memset(grad, 0, m->n_par * sizeof *grad);
    double loss = 0;
    int d = m->arch.n_in, K = m->arch.size[m->arch.n_layers - 1];
    for (size_t i0 = 0; i0 < n; i0 += chunk) {
        size_t B = n - i0 < chunk ? n - i0 : chunk;
        loss += nnw_batch_grad(m, X + i0 * (size_t)d, T + i0 * (size_t)K, sw ? sw + i0 : NULL, B,
                           1.0 / (double)n, grad, &w);
    }
    loss /= (double)n;
    add_l2(m, l2, grad, &loss);
    nnw_free(&w);
    return loss;
}

/* ================================================================ predict */

void nnw_standardize(const nn_model *m, const nn_real *X, size_t n, nn_real *out)
{
    int d = m->arch.n_in;
    for (size_t i = 0; i < n; i++)
        for (int j = 0; j < d; j++)
            out[i * (size_t)d + j] = (X[i * (size_t)d + j] - m->mu[j]) / m->sd[j];
}

/* Chunks of rows are independent: each thread forwards its own, so Y is
 * the same for any thread count. */
int nn_predict(const nn_model *m, const nn_real *X, size_t n, int n_threads, nn_real *Y, ody_err *err)
{
    return nn_predict_rows(m, X, n, 0, n_threads, Y, err);
}

int nn_predict_rows(const nn_model *m, const nn_real *X, size_t n, size_t row0, int n_threads, nn_real *Y,
                    ody_err *err)
{
    const size_t chunk = 1024;
    int d = m->arch.n_in, K = m->arch.size[m->arch.n_layers - 1], fail = 0;
    int blas_prev = ody_blas_single();
    size_t c0 = row0 / chunk;
    long nc = n ? (long)((row0 + n - 1) / chunk - c0 + 1) : 0;
#pragma omp parallel num_threads(ody_threads(n_threads))
    {
        work w;
        nn_real *xs = malloc(chunk * (size_t)d * sizeof *xs);
        int ok = xs && !nnw_init(&w, &m->arch, chunk);
        if (!ok) {
#pragma omp atomic write
            fail = 1;
        }
#pragma omp for schedule(dynamic, 4)
        for (long c = 0; c < nc; c++) {
            if (!ok) continue;
            /* the table's rows [g0, g1) of chunk c0 + c, at their places in it */
            size_t t0 = (c0 + (size_t)c) * chunk, g0 = t0 > row0 ? t0 : row0;
            size_t g1 = t0 + chunk < row0 + n ? t0 + chunk : row0 + n, a = g0 - t0, B = g1 - g0;
            memset(xs, 0, chunk * (size_t)d * sizeof *xs);
            nnw_standardize(m, X + (g0 - row0) * (size_t)d, B, xs + a * (size_t)d);
            const nn_real *O = nnw_forward(m, xs, chunk, &w);
            memcpy(Y + (g0 - row0) * (size_t)K, O + a * (size_t)K, B * (size_t)K * sizeof *Y);
        }
        if (ok) nnw_free(&w);
        free(xs);
    }
    ody_blas_restore(blas_prev);
    return fail ? ody_fail(err, ODY_ENOMEM, "mlp: out of memory predicting") : 0;
}

int nn_targets(const int *y, size_t n, int n_out, nn_real *T)
{
    for (size_t i = 0; i < n; i++) {
        if (n_out == 1) {
            if (y[i] != 0 && y[i] != 1) return -1;
            T[i] = (nn_real)y[i];
        } else {
            if (y[i] < 0 || y[i] >= n_out) return -1;
            for (int k = 0; k < n_out; k++) T[i * (size_t)n_out + k] = (nn_real)(k == y[i]);
        }
    }
    return 0;
}

int nnw_row_class(const nn_real *v, int K)
{
    if (K == 1) return v[0] > 0.5;
    int best = 0;
    for (int k = 1; k < K; k++) if (v[k] > v[best]) best = k;
    return best;
}

double nn_accuracy(const nn_real *P, const nn_real *T, size_t n, int K)
{
    size_t right = 0;
    for (size_t i = 0; i < n; i++) right += nnw_row_class(P + i * (size_t)K, K) == nnw_row_class(T + i * (size_t)K, K);
    return n ? (double)right / (double)n : NAN;
}

