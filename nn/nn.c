/* nn.c — MLP forward, backward, SGD training, FITS model files. */
#include "nn.h"

#include <gsl/gsl_cblas.h>  /* the CBLAS ABI; symbols resolve to OpenBLAS */
#include <fitsio.h>
#include <gsl/gsl_randist.h>
#include <gsl/gsl_rng.h>
#include <math.h>
#include <omp.h>
#include <stdlib.h>
#include <string.h>

#include "fitsout.h"

#ifdef NN_DOUBLE
#define GEMM cblas_dgemm
#define RTYPE TDOUBLE
#define RIMG DOUBLE_IMG
#else
#define GEMM cblas_sgemm
#define RTYPE TFLOAT
#define RIMG FLOAT_IMG
#endif

void openblas_set_num_threads(int num_threads);
int openblas_get_num_threads(void);

/* BLAS runs on one thread inside this module: OpenBLAS's multi-threaded
 * sgemm rounds differently from its single-threaded one, and weights must
 * not depend on the thread count.  Mini-batches are small enough that BLAS
 * threads gain little.  The caller's setting is restored on return. */
static int blas_single(void)
{
    int prev = openblas_get_num_threads();
    if (prev != 1) openblas_set_num_threads(1);
    return prev;
}

static void blas_restore(int prev)
{
    if (prev != 1) openblas_set_num_threads(prev);
}

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

static int model_alloc(const nn_arch *a, nn_model **out, ody_err *err)
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
    int rc = model_alloc(a, &m, err);
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

/* Per-batch buffers: activations A[l] (B x n_l; A[-1] is the input), the
 * output pre-activation (for stable losses), and one gradient buffer per
 * layer width. */
typedef struct work {
    size_t cap;             /* rows */
    nn_real *A[NN_MAX_LAYERS];
    nn_real *zout;
    nn_real *dA, *dB;       /* ping-pong, max width */
} work;

static void work_free(work *w)
{
    for (int l = 0; l < NN_MAX_LAYERS; l++) free(w->A[l]);
    free(w->zout);
    free(w->dA);
    free(w->dB);
    memset(w, 0, sizeof *w);
}

static int work_init(work *w, const nn_arch *a, size_t rows)
{
    memset(w, 0, sizeof *w);
    w->cap = rows;
    int maxw = a->n_in;
    for (int l = 0; l < a->n_layers; l++) {
        w->A[l] = malloc(rows * (size_t)a->size[l] * sizeof(nn_real));
        if (!w->A[l]) { work_free(w); return -1; }
        if (a->size[l] > maxw) maxw = a->size[l];
    }
    w->zout = malloc(rows * (size_t)a->size[a->n_layers - 1] * sizeof(nn_real));
    w->dA = malloc(rows * (size_t)maxw * sizeof(nn_real));
    w->dB = malloc(rows * (size_t)maxw * sizeof(nn_real));
    if (!w->zout || !w->dA || !w->dB) { work_free(w); return -1; }
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

/* Forward pass of B rows through every layer; returns the output buffer. */
static const nn_real *forward(const nn_model *m, const nn_real *X, size_t B, work *w)
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

/* Loss and gradient of B rows (already standardised) into grad, which is
 * accumulated (+=) with rows weighted by sw[i] * scale. */
static double batch_grad(const nn_model *m, const nn_real *X, const nn_real *T, const nn_real *sw,
                         size_t B, double scale, nn_real *grad, work *w)
{
    const nn_arch *a = &m->arch;
    int L = a->n_layers, K = a->size[L - 1];
    const nn_real *O = forward(m, X, B, w);
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
    if (work_init(&w, &m->arch, n < chunk ? n : chunk)) return NAN;
    if (grad) memset(grad, 0, m->n_par * sizeof *grad);
    double loss = 0;
    int d = m->arch.n_in, K = m->arch.size[m->arch.n_layers - 1];
    for (size_t i0 = 0; i0 < n; i0 += chunk) {
        size_t B = n - i0 < chunk ? n - i0 : chunk;
        loss += batch_grad(m, X + i0 * (size_t)d, T + i0 * (size_t)K, sw ? sw + i0 : NULL, B,
                           1.0 / (double)n, grad, &w);
    }
    loss /= (double)n;
    add_l2(m, l2, grad, &loss);
    work_free(&w);
    return loss;
}

/* ================================================================ predict */

static void standardize_rows(const nn_model *m, const nn_real *X, size_t n, nn_real *out)
{
    int d = m->arch.n_in;
    for (size_t i = 0; i < n; i++)
        for (int j = 0; j < d; j++)
            out[i * (size_t)d + j] = (X[i * (size_t)d + j] - m->mu[j]) / m->sd[j];
}

int nn_predict(const nn_model *m, const nn_real *X, size_t n, nn_real *Y, ody_err *err)
{
    const size_t chunk = 1024;
    int d = m->arch.n_in, K = m->arch.size[m->arch.n_layers - 1];
    work w;
    nn_real *xs = malloc(chunk * (size_t)d * sizeof *xs);
    if (!xs || work_init(&w, &m->arch, chunk)) {
        free(xs);
        return ody_fail(err, ODY_ENOMEM, "mlp: out of memory predicting");
    }
    int blas_prev = blas_single();
    for (size_t i0 = 0; i0 < n; i0 += chunk) {
        size_t B = n - i0 < chunk ? n - i0 : chunk;
        standardize_rows(m, X + i0 * (size_t)d, B, xs);
        const nn_real *O = forward(m, xs, B, &w);
        memcpy(Y + i0 * (size_t)K, O, B * (size_t)K * sizeof *Y);
    }
    blas_restore(blas_prev);
    free(xs);
    work_free(&w);
    return 0;
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

static int row_class(const nn_real *v, int K)
{
    if (K == 1) return v[0] > 0.5;
    int best = 0;
    for (int k = 1; k < K; k++) if (v[k] > v[best]) best = k;
    return best;
}

double nn_accuracy(const nn_real *P, const nn_real *T, size_t n, int K)
{
    size_t right = 0;
    for (size_t i = 0; i < n; i++) right += row_class(P + i * (size_t)K, K) == row_class(T + i * (size_t)K, K);
    return n ? (double)right / (double)n : NAN;
}

/* ================================================================ training */

void nn_train_opt_init(nn_train_opt *o)
{
    memset(o, 0, sizeof *o);
    o->lr = 0.01;
    o->momentum = 0.9;
    o->nesterov = 1;
    o->l2 = 1e-4;
    o->batch = 64;
    o->max_epochs = 200;
    o->patience = 10;
    o->epsilon = 1e-4;
    o->val_frac = 0.1;
    o->standardize = 1;
    o->init = NN_GLOROT_UNIFORM;
    o->seed = 1;
}

int nn_train_opt_check(const nn_train_opt *o, size_t n, ody_err *err)
{
    if (!(o->lr > 0) || o->lr > 10)
        return ody_fail(err, ODY_EINPUT, "mlp.learning_rate = %g must be in (0, 10]", o->lr);
    if (!(o->momentum >= 0 && o->momentum < 1))
        return ody_fail(err, ODY_EINPUT, "mlp.momentum = %g must be in [0, 1)", o->momentum);
    if (!(o->lr_decay >= 0)) return ody_fail(err, ODY_EINPUT, "mlp.lr_decay = %g must be >= 0", o->lr_decay);
    if (!(o->l2 >= 0)) return ody_fail(err, ODY_EINPUT, "mlp.l2 = %g must be >= 0", o->l2);
    if (!(o->val_frac >= 0 && o->val_frac < 0.9))
        return ody_fail(err, ODY_EINPUT, "mlp.validation = %g must be in [0, 0.9)", o->val_frac);
    if (o->max_epochs < 1 || o->max_epochs > 1000000)
        return ody_fail(err, ODY_EINPUT, "mlp.max_epochs = %d must be 1 to 1000000", o->max_epochs);
    if (o->patience < 1) return ody_fail(err, ODY_EINPUT, "mlp.patience = %d must be at least 1", o->patience);
    if (!(o->epsilon >= 0)) return ody_fail(err, ODY_EINPUT, "mlp.epsilon = %g must be >= 0", o->epsilon);
    if ((unsigned)o->init > NN_HE) return ody_fail(err, ODY_EINPUT, "mlp.init is unknown");
    size_t n_train = n - (size_t)floor(o->val_frac * (double)n);
    if (n < 2 || n_train < 1)
        return ody_fail(err, ODY_EINPUT, "mlp: %zu rows are too few to train on", n);
    if (o->batch < 1 || (size_t)o->batch > n_train)
        return ody_fail(err, ODY_EINPUT, "mlp.batch = %d must be 1 to %zu (the training rows)", o->batch, n_train);
    return 0;
}

/* One SGD-with-momentum step over n parameters: g = ga + gb + l2 w, then
 * v = mu v - eta g and w += v (classical) or w += mu v - eta g (Nesterov, in
 * the form of Sutskever et al. 2013). */
static void sgd_step(nn_real *restrict w, nn_real *restrict v, const nn_real *restrict ga,
                     const nn_real *restrict gb, size_t n, nn_real mu, nn_real eta, nn_real l2,
                     int nesterov)
{
    if (nesterov) {
        for (size_t k = 0; k < n; k++) {
            nn_real g = ga[k] + gb[k] + l2 * w[k];
            nn_real vk = mu * v[k] - eta * g;
            v[k] = vk;
            w[k] += mu * vk - eta * g;
        }
    } else {
        for (size_t k = 0; k < n; k++) {
            nn_real g = ga[k] + gb[k] + l2 * w[k];
            v[k] = mu * v[k] - eta * g;
            w[k] += v[k];
        }
    }
}

/* Mean loss over rows idx[0..cnt) (standardised copies in Xs). */
static double eval_rows(const nn_model *m, const nn_real *Xs, const nn_real *T, const size_t *idx, size_t cnt,
                        nn_real *xb, nn_real *tb, work *w, double *acc)
{
    int d = m->arch.n_in, K = m->arch.size[m->arch.n_layers - 1];
    double loss = 0;
    size_t right = 0;
    for (size_t i0 = 0; i0 < cnt; i0 += w->cap) {
        size_t B = cnt - i0 < w->cap ? cnt - i0 : w->cap;
        for (size_t q = 0; q < B; q++) {
            memcpy(xb + q * (size_t)d, Xs + idx[i0 + q] * (size_t)d, (size_t)d * sizeof *xb);
            memcpy(tb + q * (size_t)K, T + idx[i0 + q] * (size_t)K, (size_t)K * sizeof *tb);
        }
        loss += batch_grad(m, xb, tb, NULL, B, 0, NULL, w);
        const nn_real *O = w->A[m->arch.n_layers - 1];
        for (size_t q = 0; q < B; q++)
            right += row_class(O + q * (size_t)K, K) == row_class(tb + q * (size_t)K, K);
    }
    if (acc) *acc = cnt ? (double)right / (double)cnt : NAN;
    return cnt ? loss / (double)cnt : NAN;
}

int nn_train(nn_model *m, const nn_train_opt *o, const nn_real *X, const nn_real *T, size_t n,
             nn_history *hist, const ody_log *log, ody_err *err)
{
    int rc = nn_train_opt_check(o, n, err);
    if (rc) return rc;
    const nn_arch *a = &m->arch;
    int d = a->n_in, K = a->size[a->n_layers - 1];
    for (size_t k = 0; k < n * (size_t)d; k++)
        if (!isfinite(X[k]))
            return ody_fail(err, ODY_EINPUT, "mlp: input row %zu, feature %zu is NaN or Inf — clean or drop "
                            "such rows (catalog.missing)", k / (size_t)d + 1, k % (size_t)d + 1);
    for (size_t k = 0; k < n * (size_t)K; k++)
        if (!isfinite(T[k]))
            return ody_fail(err, ODY_EINPUT, "mlp: target row %zu is NaN or Inf", k / (size_t)K + 1);
    int blas_prev = blas_single();
    int nthr = ody_threads(o->n_threads) >= 2 ? 2 : 1;
    ody_progress prog = {0};

    size_t n_val = (size_t)floor(o->val_frac * (double)n), n_tr = n - n_val;
    size_t B = (size_t)o->batch;
    size_t *perm = malloc(n * sizeof *perm);
    nn_real *Xs = malloc(n * (size_t)d * sizeof *Xs);
    nn_real *xb = malloc(B * (size_t)d * sizeof *xb), *tb = malloc(B * (size_t)K * sizeof *tb);
    nn_real *sw = malloc(n * sizeof *sw), *swb = malloc(B * sizeof *swb);
    nn_real *g = malloc(2 * m->n_par * sizeof *g), *v = calloc(m->n_par, sizeof *v);
    nn_real *best = malloc(m->n_par * sizeof *best);
    gsl_rng *r = gsl_rng_alloc(gsl_rng_mt19937);
    work w = {0}, w2 = {0};
    if (!perm || !Xs || !xb || !tb || !sw || !swb || !g || !v || !best || !r ||
        work_init(&w, a, B) || work_init(&w2, a, (B + 1) / 2)) {
        rc = ody_fail(err, ODY_ENOMEM, "mlp: out of memory for %zu rows", n);
        goto done;
    }
    gsl_rng_set(r, (unsigned long)(o->seed ^ 0xA5A5A5A5ULL));
    for (size_t i = 0; i < n; i++) perm[i] = i;
    gsl_ran_shuffle(r, perm, n, sizeof *perm);
    size_t *tr = perm, *va = perm + n_tr;

    /* Standardisation learnt on the training rows only. */
    m->standardized = o->standardize;
    for (int j = 0; j < d; j++) {
        double s = 0, ss = 0;
        if (o->standardize) {
            for (size_t q = 0; q < n_tr; q++) s += X[tr[q] * (size_t)d + j];
            s /= (double)n_tr;
            for (size_t q = 0; q < n_tr; q++) {
                double e = X[tr[q] * (size_t)d + j] - s;
                ss += e * e;
            }
            ss = sqrt(ss / (double)n_tr);
        }
        m->mu[j] = (nn_real)(o->standardize ? s : 0);
        m->sd[j] = (nn_real)(o->standardize && ss > 0 ? ss : 1);
    }
    standardize_rows(m, X, n, Xs);

    /* Class weights n / (K n_k) from the training rows. */
    for (size_t i = 0; i < n; i++) sw[i] = 1;
    if (o->class_weight) {
        int nc = K == 1 ? 2 : K;
        size_t cnt[NN_MAX_LAYERS > 64 ? NN_MAX_LAYERS : 64] = {0};
        if (nc > 64) { rc = ody_fail(err, ODY_EINPUT, "mlp.class_weight supports up to 64 classes"); goto done; }
        for (size_t q = 0; q < n_tr; q++) cnt[row_class(T + tr[q] * (size_t)K, K)]++;
        for (size_t i = 0; i < n; i++) {
            size_t c = cnt[row_class(T + i * (size_t)K, K)];
            sw[i] = (nn_real)(c ? (double)n_tr / ((double)nc * (double)c) : 1.0);
        }
    }

    double best_loss = INFINITY, best_tr_loss = NAN, best_tr_acc = NAN;
    int best_epoch = 0, wait = 0, epoch = 0;
    double tr_loss = NAN, tr_acc = NAN, va_loss = NAN, va_acc = NAN, sps = 0;
    memcpy(best, m->w, m->n_par * sizeof *best);
    ody_progress_start(&prog, log, "mlp", (size_t)o->max_epochs);
    for (epoch = 1; epoch <= o->max_epochs; epoch++) {
        ody_progress_update(&prog, (size_t)epoch - 1);
        double t0 = ody_now();
        double lr = o->lr / (1.0 + o->lr_decay * (epoch - 1));
        gsl_ran_shuffle(r, tr, n_tr, sizeof *tr);
        double sum = 0;
        size_t seen = 0, right = 0;
        /* Drop the last partial batch, as is usual, when it would be tiny. */
        for (size_t i0 = 0; i0 < n_tr; i0 += B) {
            size_t nb = n_tr - i0 < B ? n_tr - i0 : B;
            for (size_t q = 0; q < nb; q++) {
                size_t i = tr[i0 + q];
                memcpy(xb + q * (size_t)d, Xs + i * (size_t)d, (size_t)d * sizeof *xb);
                memcpy(tb + q * (size_t)K, T + i * (size_t)K, (size_t)K * sizeof *tb);
                swb[q] = sw[i];
            }
            /* Two fixed halves of the batch, in parallel when there are two
             * threads; their gradients are summed in a fixed order below, so
             * the weights do not depend on the thread count. */
            size_t h0 = (nb + 1) / 2;
            double bls[2] = {0, 0};
            nn_real *gs[2] = {g, g + m->n_par};
            work *ws[2] = {&w, &w2};
#pragma omp parallel for num_threads(nthr) schedule(static, 1)
            for (int sh = 0; sh < 2; sh++) {
                size_t r0 = sh ? h0 : 0, rn = sh ? nb - h0 : h0;
                memset(gs[sh], 0, m->n_par * sizeof *g);
                if (rn)
                    bls[sh] = batch_grad(m, xb + r0 * (size_t)d, tb + r0 * (size_t)K, swb + r0, rn,
                                         1.0 / (double)nb, gs[sh], ws[sh]);
            }
            double bl = bls[0] + bls[1];
            /* training accuracy from the outputs this batch already computed */
            for (int sh = 0; sh < 2; sh++) {
                size_t r0 = sh ? h0 : 0, rn = sh ? nb - h0 : h0;
                const nn_real *O = ws[sh]->A[a->n_layers - 1];
                for (size_t q = 0; q < rn; q++)
                    right += row_class(O + q * (size_t)K, K) == row_class(tb + (r0 + q) * (size_t)K, K);
            }
            if (!isfinite(bl)) {
                memcpy(m->w, best, m->n_par * sizeof *best);
                rc = ody_fail(err, ODY_EINPUT, "mlp: training diverged at epoch %d (loss is %g) — lower "
                              "mlp.learning_rate (now %g), e.g. to %g", epoch, bl, o->lr, o->lr / 10);
                goto done;
            }
            sum += bl;
            seen += nb;
            /* The optimizer step: a vectorised loop over each layer's W (with
             * L2 decay) and b in the contiguous parameter array. */
            const nn_real mu = (nn_real)o->momentum, eta = (nn_real)lr, l2 = (nn_real)o->l2;
            int prev = d;
            for (int l = 0; l < a->n_layers; l++) {
                size_t w0 = m->off[l], nw = (size_t)a->size[l] * prev, w1 = m->off[l + 1];
                sgd_step(m->w + w0, v + w0, g + w0, g + m->n_par + w0, nw, mu, eta, l2, o->nesterov);
                sgd_step(m->w + w0 + nw, v + w0 + nw, g + w0 + nw, g + m->n_par + w0 + nw, w1 - w0 - nw,
                         mu, eta, 0, o->nesterov);
                prev = a->size[l];
            }
        }
        double dt = ody_now() - t0;
        sps = dt > 0 ? (double)seen / dt : 0;
        tr_loss = sum / (double)seen;
        if (!isfinite(tr_loss)) {
            rc = ody_fail(err, ODY_EINPUT, "mlp: training diverged at epoch %d — lower mlp.learning_rate "
                          "(now %g)", epoch, o->lr);
            goto done;
        }
        double monitor = tr_loss;
        if (n_val) {
            va_loss = eval_rows(m, Xs, T, va, n_val, xb, tb, &w, &va_acc);
            monitor = va_loss;
        }
        tr_acc = (double)right / (double)seen;  /* over the epoch, as the weights moved */
        ody_logf(log, ODY_LOG_DEBUG, "mlp: epoch %d  loss %.5f  acc %.4f  val_loss %.5f  val_acc %.4f  %.0f samples/s",
                 epoch, tr_loss, tr_acc, va_loss, va_acc, sps);
        if (monitor < best_loss - o->epsilon) {
            best_loss = monitor;
            best_epoch = epoch;
            best_tr_loss = tr_loss;
            best_tr_acc = tr_acc;
            wait = 0;
            memcpy(best, m->w, m->n_par * sizeof *best);
        } else if (++wait >= o->patience) {
            break;
        }
    }
    if (epoch > o->max_epochs) epoch = o->max_epochs;
    if (best_epoch > 0) memcpy(m->w, best, m->n_par * sizeof *best);
    if (hist) {
        hist->epochs = epoch;
        hist->best_epoch = best_epoch;
        hist->samples_per_s = sps;
        /* the kept epoch's running training loss and accuracy: a pass over
         * every training row just for the summary would cost a third of an
         * epoch */
        hist->train_loss = best_tr_loss;
        hist->train_acc = best_tr_acc;
        hist->val_loss = n_val ? eval_rows(m, Xs, T, va, n_val, xb, tb, &w, &hist->val_acc) : NAN;
        if (!n_val) hist->val_acc = NAN;
    }
    ody_logf(log, ODY_LOG_INFO, "mlp: stopped after %d epochs, kept epoch %d", epoch, best_epoch);
done:
    ody_progress_end(&prog);
    free(perm); free(Xs); free(xb); free(tb); free(sw); free(swb);
    free(g); free(v); free(best);
    if (r) gsl_rng_free(r);
    work_free(&w);
    work_free(&w2);
    blas_restore(blas_prev);
    return rc;
}

/* ================================================================ files */

int nn_save(const nn_model *m, const nn_train_opt *o, const char *path, const char *history,
            int overwrite, ody_err *err)
{
    fitsout w;
    int rc = fitsout_open(&w, path, overwrite, err);
    if (rc) return rc;
    int status = 0;
    if (history) fitsout_history(w.f, history, &status);
    const nn_arch *a = &m->arch;
    fits_write_key(w.f, TSTRING, "CREATOR", (void *)"oddsky", "software", &status);
    fits_write_key(w.f, TSTRING, "ODYVERS", (void *)ody_version(), "oddsky version", &status);
    fits_write_key(w.f, TSTRING, "MODEL", (void *)"MLP", "multilayer perceptron", &status);
    fits_write_key(w.f, TINT, "NIN", (void *)&a->n_in, "input features", &status);
    fits_write_key(w.f, TINT, "NLAYERS", (void *)&a->n_layers, "hidden + output layers", &status);
    fits_write_key(w.f, TSTRING, "LOSS", (void *)nn_loss_name(a->loss), "loss function", &status);
    fits_write_key(w.f, TLOGICAL, "STDIZE", (void *)&m->standardized, "inputs standardised", &status);
    if (o) {
        long long seed = (long long)o->seed;
        fits_write_key(w.f, TDOUBLE, "LR", (void *)&o->lr, "learning rate", &status);
        fits_write_key(w.f, TDOUBLE, "MOMENTUM", (void *)&o->momentum, "momentum", &status);
        fits_write_key(w.f, TLOGICAL, "NESTEROV", (void *)&o->nesterov, "Nesterov momentum", &status);
        fits_write_key(w.f, TDOUBLE, "LRDECAY", (void *)&o->lr_decay, "learning-rate decay", &status);
        fits_write_key(w.f, TDOUBLE, "L2", (void *)&o->l2, "L2 weight decay", &status);
        fits_write_key(w.f, TINT, "BATCH", (void *)&o->batch, "mini-batch size", &status);
        fits_write_key(w.f, TINT, "MAXEPOCH", (void *)&o->max_epochs, "maximum epochs", &status);
        fits_write_key(w.f, TINT, "PATIENCE", (void *)&o->patience, "early-stopping patience", &status);
        fits_write_key(w.f, TDOUBLE, "EPSILON", (void *)&o->epsilon, "improvement that counts", &status);
        fits_write_key(w.f, TDOUBLE, "VALFRAC", (void *)&o->val_frac, "validation fraction", &status);
        fits_write_key(w.f, TLOGICAL, "CLASSWT", (void *)&o->class_weight, "balanced class weights", &status);
        fits_write_key(w.f, TSTRING, "INIT", (void *)nn_init_name(o->init), "weight initialisation", &status);
        fits_write_key(w.f, TLONGLONG, "SEED", &seed, "RNG seed", &status);
    }
    int prev = a->n_in;
    for (int l = 0; l < a->n_layers && !status; l++) {
        int n = a->size[l];
        long ax[2] = {prev + 1, n};  /* FITS axes: columns first */
        nn_real *img = malloc((size_t)n * (size_t)(prev + 1) * sizeof *img);
        if (!img) { rc = ody_fail(err, ODY_ENOMEM, "out of memory"); break; }
        const nn_real *W = m->w + m->off[l], *b = W + (size_t)n * prev;
        for (int k = 0; k < n; k++) {
            memcpy(img + (size_t)k * (prev + 1), W + (size_t)k * prev, (size_t)prev * sizeof *img);
            img[(size_t)k * (prev + 1) + prev] = b[k];
        }
        char name[16];
        snprintf(name, sizeof name, "LAYER%d", l + 1);
        fits_create_img(w.f, RIMG, 2, ax, &status);
        fits_write_key(w.f, TSTRING, "EXTNAME", name, "W (n_out x n_in) then b as the last column", &status);
        fits_write_key(w.f, TINT, "NIN", &prev, "inputs to this layer", &status);
        fits_write_key(w.f, TINT, "NOUT", &n, "units", &status);
        fits_write_key(w.f, TSTRING, "ACT", (void *)nn_act_name(a->act[l]), "activation", &status);
        fits_write_img(w.f, RTYPE, 1, (LONGLONG)n * (prev + 1), img, &status);
        free(img);
        prev = n;
    }
    if (!status && !rc) {
        long ax[2] = {a->n_in, 2};
        fits_create_img(w.f, RIMG, 2, ax, &status);
        fits_write_key(w.f, TSTRING, "EXTNAME", (void *)"NORM", "row 1 mean, row 2 std of each input", &status);
        fits_write_img(w.f, RTYPE, 1, a->n_in, m->mu, &status);
        fits_write_img(w.f, RTYPE, 1 + (LONGLONG)a->n_in, a->n_in, m->sd, &status);
    }
    if (status && !rc) rc = ody_fits_fail(err, status, path, "cannot write the model", NULL);
    return fitsout_finish(&w, rc, err);
}

int nn_load(const char *path, nn_model **out, ody_err *err)
{
    fitsfile *f = NULL;
    int status = 0, rc = 0;
    if (fits_open_file(&f, path, READONLY, &status))
        return ody_fits_fail(err, status, path, "cannot open the model", NULL);
    nn_arch a;
    memset(&a, 0, sizeof a);
    char loss[FLEN_VALUE] = "", model[FLEN_VALUE] = "";
    int stdz = 0;
    nn_model *m = NULL;
    fits_read_key(f, TSTRING, "MODEL", model, NULL, &status);
    fits_read_key(f, TINT, "NIN", &a.n_in, NULL, &status);
    fits_read_key(f, TINT, "NLAYERS", &a.n_layers, NULL, &status);
    fits_read_key(f, TSTRING, "LOSS", loss, NULL, &status);
    fits_read_key(f, TLOGICAL, "STDIZE", &stdz, NULL, &status);
    if (status || strcmp(model, "MLP") || a.n_layers < 1 || a.n_layers > NN_MAX_LAYERS) {
        rc = status ? ody_fits_fail(err, status, path, "not an oddsky MLP model", NULL)
                    : ody_fail(err, ODY_EINPUT, "%s: not an oddsky MLP model — give a file written by oddsky", path);
        goto done;
    }
    a.loss = (nn_loss)nn_loss_parse(loss);
    for (int l = 0; l < a.n_layers && !status; l++) {
        char name[16], act[FLEN_VALUE] = "";
        int nin = 0;
        snprintf(name, sizeof name, "LAYER%d", l + 1);
        fits_movnam_hdu(f, IMAGE_HDU, name, 0, &status);
        fits_read_key(f, TINT, "NIN", &nin, NULL, &status);
        fits_read_key(f, TINT, "NOUT", &a.size[l], NULL, &status);
        fits_read_key(f, TSTRING, "ACT", act, NULL, &status);
        a.act[l] = (nn_act)nn_act_parse(act);
        if (!status && nin != (l ? a.size[l - 1] : a.n_in)) {
            rc = ody_fail(err, ODY_EINPUT, "%s: %s has %d inputs, expected %d — the file is damaged", path, name,
                          nin, l ? a.size[l - 1] : a.n_in);
            goto done;
        }
    }
    if (status) { rc = ody_fits_fail(err, status, path, "cannot read the layers", NULL); goto done; }
    if ((rc = model_alloc(&a, &m, err))) goto done;
    m->standardized = stdz;
    int prev = a.n_in;
    for (int l = 0; l < a.n_layers && !status; l++) {
        int n = a.size[l], anynul = 0;
        char name[16];
        snprintf(name, sizeof name, "LAYER%d", l + 1);
        nn_real *img = malloc((size_t)n * (size_t)(prev + 1) * sizeof *img);
        if (!img) { rc = ody_fail(err, ODY_ENOMEM, "out of memory"); goto done; }
        fits_movnam_hdu(f, IMAGE_HDU, name, 0, &status);
        fits_read_img(f, RTYPE, 1, (LONGLONG)n * (prev + 1), NULL, img, &anynul, &status);
        nn_real *W = m->w + m->off[l], *b = W + (size_t)n * prev;
        for (int k = 0; k < n; k++) {
            memcpy(W + (size_t)k * prev, img + (size_t)k * (prev + 1), (size_t)prev * sizeof *img);
            b[k] = img[(size_t)k * (prev + 1) + prev];
        }
        free(img);
        prev = n;
    }
    if (!status) {
        int anynul = 0;
        fits_movnam_hdu(f, IMAGE_HDU, "NORM", 0, &status);
        fits_read_img(f, RTYPE, 1, a.n_in, NULL, m->mu, &anynul, &status);
        fits_read_img(f, RTYPE, 1 + (LONGLONG)a.n_in, a.n_in, NULL, m->sd, &anynul, &status);
    }
    if (status) { rc = ody_fits_fail(err, status, path, "cannot read the weights", NULL); goto done; }
    *out = m;
    m = NULL;
done:
    ody_fits_close(f);
    nn_destroy(m);
    return rc;
}
