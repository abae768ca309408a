/* nn_train.c — training the MLP: mini-batch SGD with (Nesterov) momentum,
 * L2 decay, early stopping on a held-out part, deterministic for any
 * thread count. */
#include <gsl/gsl_randist.h>
#include <gsl/gsl_rng.h>
#include <math.h>
#include <omp.h>
#include <sched.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>

#include "nn_work.h"

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

/* ================================================================ the trainer */

/* One training run: the data, its split, and every buffer, allocated once. */
typedef struct trainer {
    nn_model *m;
    const nn_train_opt *o;
    const nn_real *T;
    size_t n, n_val, n_tr, B;
    int d, K, nthr;
    size_t *perm, *tr, *va;   /* a seeded permutation: training rows, then validation rows */
    nn_real *Xs;              /* standardised inputs */
    nn_real *xb, *tb, *sw, *swb;
    nn_real *xb2, *tb2;       /* a second thread's chunk when evaluating */
    double *closs;            /* per evaluation chunk: its loss sum */
    size_t *cright;           /* and its right answers */
    nn_real *g;               /* two gradients: one per half of a mini-batch */
    double bl[2];             /* each half's loss */
    size_t right[2];          /* each half's right answers */
    nn_real *v, *best;        /* momentum, and the best weights so far */
    gsl_rng *r;
    work w, w2, w3;
} trainer;

static void trainer_free(trainer *t)
{
    free(t->perm); free(t->Xs); free(t->xb); free(t->tb); free(t->sw); free(t->swb);
    free(t->g); free(t->v); free(t->best);
    free(t->xb2); free(t->tb2); free(t->closs); free(t->cright);
    if (t->r) gsl_rng_free(t->r);
    nnw_free(&t->w);
    nnw_free(&t->w2);
    nnw_free(&t->w3);
}

static int trainer_alloc(trainer *t)
{
    size_t n = t->n, B = t->B, np = t->m->n_par;
    t->perm = malloc(n * sizeof *t->perm);
    t->Xs = malloc(n * (size_t)t->d * sizeof *t->Xs);
    t->xb = malloc(B * (size_t)t->d * sizeof *t->xb);
    t->tb = malloc(B * (size_t)t->K * sizeof *t->tb);
    t->sw = malloc(n * sizeof *t->sw);
    t->swb = malloc(B * sizeof *t->swb);
    t->g = malloc(2 * np * sizeof *t->g);
    t->v = calloc(np, sizeof *t->v);
    t->best = malloc(np * sizeof *t->best);
    t->r = gsl_rng_alloc(gsl_rng_mt19937);
    t->xb2 = malloc(B * (size_t)t->d * sizeof *t->xb2);
    t->tb2 = malloc(B * (size_t)t->K * sizeof *t->tb2);
    t->closs = malloc((n / B + 1) * sizeof *t->closs);
    t->cright = malloc((n / B + 1) * sizeof *t->cright);
    int bad = !t->perm || !t->Xs || !t->xb || !t->tb || !t->sw || !t->swb || !t->g || !t->v || !t->best || !t->r ||
              !t->xb2 || !t->tb2 || !t->closs || !t->cright;
    bad = bad || nnw_init(&t->w, &t->m->arch, B) || nnw_init(&t->w2, &t->m->arch, (B + 1) / 2) ||
          nnw_init(&t->w3, &t->m->arch, B);
    return bad ? -1 : 0;
}

/* The standardisation, learnt on the training rows only. */
static void fit_standardization(trainer *t, const nn_real *X)
{
    nn_model *m = t->m;
    int d = t->d, on = t->o->standardize;
    m->standardized = on;
    for (int j = 0; j < d; j++) {
        double s = 0, ss = 0;
        if (on) {
            for (size_t q = 0; q < t->n_tr; q++) s += X[t->tr[q] * (size_t)d + j];
            s /= (double)t->n_tr;
            for (size_t q = 0; q < t->n_tr; q++) {
                double e = X[t->tr[q] * (size_t)d + j] - s;
                ss += e * e;
            }
            ss = sqrt(ss / (double)t->n_tr);
        }
        m->mu[j] = (nn_real)(on ? s : 0);
        m->sd[j] = (nn_real)(on && ss > 0 ? ss : 1);
    }
    nnw_standardize(m, X, t->n, t->Xs);
}

/* Sample weights: 1, or n / (K n_k) by class from the training rows. */
static int class_weights(trainer *t, ody_err *err)
{
    for (size_t i = 0; i < t->n; i++) t->sw[i] = 1;
    if (!t->o->class_weight) return 0;
    int K = t->K, nc = K == 1 ? 2 : K;
    size_t cnt[64] = {0};
    if (nc > 64) return ody_fail(err, ODY_EINPUT, "mlp.class_weight supports up to 64 classes");
    for (size_t q = 0; q < t->n_tr; q++) cnt[nnw_row_class(t->T + t->tr[q] * (size_t)K, K)]++;
    for (size_t i = 0; i < t->n; i++) {
        size_t c = cnt[nnw_row_class(t->T + i * (size_t)K, K)];
        t->sw[i] = (nn_real)(c ? (double)t->n_tr / ((double)nc * (double)c) : 1.0);
    }
    return 0;
}

static int trainer_init(trainer *t, nn_model *m, const nn_train_opt *o, const nn_real *X, const nn_real *T,
                        size_t n, ody_err *err)
{
    memset(t, 0, sizeof *t);
    t->m = m;
    t->o = o;
    t->T = T;
    t->n = n;
    t->n_val = (size_t)floor(o->val_frac * (double)n);
    t->n_tr = n - t->n_val;
    t->B = (size_t)o->batch;
    t->d = m->arch.n_in;
    t->K = m->arch.size[m->arch.n_layers - 1];
    t->nthr = ody_threads(o->n_threads) >= 2 ? 2 : 1;
    if (trainer_alloc(t)) return ody_fail(err, ODY_ENOMEM, "mlp: out of memory for %zu rows", n);
    gsl_rng_set(t->r, (unsigned long)(o->seed ^ 0xA5A5A5A5ULL));
    for (size_t i = 0; i < n; i++) t->perm[i] = i;
    gsl_ran_shuffle(t->r, t->perm, n, sizeof *t->perm);
    t->tr = t->perm;
    t->va = t->perm + t->n_tr;
    fit_standardization(t, X);
    return class_weights(t, err);
}

/* Mean loss (and accuracy) over rows idx[0..cnt) of the standardised
 * inputs, a mini-batch-sized chunk at a time: the threads share the chunks
 * and the chunks' sums are added in order, so the result is the same for
 * any thread count. */
static double eval_rows(trainer *t, const size_t *idx, size_t cnt, double *acc)
{
    const nn_model *m = t->m;
    int d = t->d, K = t->K;
    size_t C = t->B;
    long nc = (long)((cnt + C - 1) / C);
#pragma omp parallel num_threads(t->nthr)
    {
        int tid = omp_get_thread_num();
        work *w = tid ? &t->w3 : &t->w;
        nn_real *xb = tid ? t->xb2 : t->xb, *tb = tid ? t->tb2 : t->tb;
#pragma omp for schedule(static)
        for (long c = 0; c < nc; c++) {
            size_t i0 = (size_t)c * C, B = cnt - i0 < C ? cnt - i0 : C, right = 0;
            for (size_t q = 0; q < B; q++) {
                memcpy(xb + q * (size_t)d, t->Xs + idx[i0 + q] * (size_t)d, (size_t)d * sizeof *xb);
                memcpy(tb + q * (size_t)K, t->T + idx[i0 + q] * (size_t)K, (size_t)K * sizeof *tb);
            }
            t->closs[c] = nnw_batch_grad(m, xb, tb, NULL, B, 0, NULL, w);
            const nn_real *O = w->A[m->arch.n_layers - 1];
            for (size_t q = 0; q < B; q++)
                right += nnw_row_class(O + q * (size_t)K, K) == nnw_row_class(tb + q * (size_t)K, K);
            t->cright[c] = right;
        }
    }
    double loss = 0;
    size_t right = 0;
    for (long c = 0; c < nc; c++) loss += t->closs[c], right += t->cright[c];
    if (acc) *acc = cnt ? (double)right / (double)cnt : NAN;
    return cnt ? loss / (double)cnt : NAN;
}

/* The optimizer step, for thread `part` of `parts`: a vectorised loop over
 * its share of each layer's W (with L2 decay) and b in the contiguous
 * parameter array, from the two halves' gradients.  Elementwise, so how the
 * parameters are shared out does not change a bit of the result. */
static void update(trainer *t, double lr, int part, int parts)
{
    const nn_model *m = t->m;
    const nn_arch *a = &m->arch;
    const nn_real mu = (nn_real)t->o->momentum, eta = (nn_real)lr, l2 = (nn_real)t->o->l2;
    const nn_real *ga = t->g, *gb = t->g + m->n_par;
    int prev = t->d;
    for (int l = 0; l < a->n_layers; l++) {
        size_t w0 = m->off[l], nw = (size_t)a->size[l] * prev, w1 = m->off[l + 1];
        size_t seg[2][2] = {{w0, w0 + nw}, {w0 + nw, w1}};  /* W, then b (no decay) */
        for (int k = 0; k < 2; k++) {
            size_t len = seg[k][1] - seg[k][0], lo = seg[k][0] + len * (size_t)part / (size_t)parts,
                   hi = seg[k][0] + len * (size_t)(part + 1) / (size_t)parts;
            sgd_step(m->w + lo, t->v + lo, ga + lo, gb + lo, hi - lo, mu, eta, k ? 0 : l2, t->o->nesterov);
        }
        prev = a->size[l];
    }
}

/* Half sh of the mini-batch of nb rows at training position i0: gathers
 * its rows, puts its gradient in its own buffer, its loss in t->bl[sh] and
 * its right answers in t->right[sh].  The batch is always two fixed halves
 * whose gradients update() adds in a fixed order, so the weights do not
 * depend on the thread count. */
static void half_grad(trainer *t, size_t i0, size_t nb, int sh)
{
    int d = t->d, K = t->K;
    const nn_model *m = t->m;
    size_t h0 = (nb + 1) / 2, r0 = sh ? h0 : 0, rn = sh ? nb - h0 : h0;
    for (size_t q = r0; q < r0 + rn; q++) {
        size_t i = t->tr[i0 + q];
        memcpy(t->xb + q * (size_t)d, t->Xs + i * (size_t)d, (size_t)d * sizeof *t->xb);
        memcpy(t->tb + q * (size_t)K, t->T + i * (size_t)K, (size_t)K * sizeof *t->tb);
        t->swb[q] = t->sw[i];
    }
    nn_real *g = t->g + (sh ? m->n_par : 0);
    work *w = sh ? &t->w2 : &t->w;
    memset(g, 0, m->n_par * sizeof *g);
    t->bl[sh] = 0;
    t->right[sh] = 0;
    if (!rn) return;
    t->bl[sh] = nnw_batch_grad(m, t->xb + r0 * (size_t)d, t->tb + r0 * (size_t)K, t->swb + r0, rn, 1.0 / (double)nb,
                               g, w);
    /* training accuracy from the outputs the gradient already computed */
    const nn_real *O = w->A[m->arch.n_layers - 1];
    for (size_t q = 0; q < rn; q++)
        t->right[sh] += nnw_row_class(O + q * (size_t)K, K) == nnw_row_class(t->tb + (r0 + q) * (size_t)K, K);
}

/* Waits until all n threads arrive.  It spins a little and then yields
 * instead of sleeping: a thread never needs waking (waking onto a core that
 * another process holds took milliseconds, once per mini-batch), and a
 * thread that waits on a shared core hands it over. */
typedef struct spinbar {
    atomic_uint count, gen;
    unsigned n;
} spinbar;

static void spinbar_wait(spinbar *b)
{
    if (b->n < 2) return;
    unsigned g = atomic_load_explicit(&b->gen, memory_order_acquire);
    if (atomic_fetch_add_explicit(&b->count, 1, memory_order_acq_rel) + 1 == b->n) {
        atomic_store_explicit(&b->count, 0, memory_order_relaxed);
        atomic_fetch_add_explicit(&b->gen, 1, memory_order_release);
        return;
    }
    for (int spin = 0; atomic_load_explicit(&b->gen, memory_order_acquire) == g; spin++)
        if (spin >= 200) sched_yield();
}

/* One epoch over the shuffled training rows; *loss and *acc are running
 * means over the epoch, as the weights moved.  One parallel region for the
 * whole epoch: per mini-batch each thread computes its half's gradient,
 * then its share of the step, with two light barriers between. */
static int epoch_run(trainer *t, int epoch, double *loss, double *acc, double *sps, ody_err *err)
{
    const nn_train_opt *o = t->o;
    double t0 = ody_now(), lr = o->lr / (1.0 + o->lr_decay * (epoch - 1)), sum = 0, bad_loss = 0;
    int diverged = 0;
    size_t seen = 0, right = 0, B = t->B, nbatch = (t->n_tr + B - 1) / B;
    gsl_ran_shuffle(t->r, t->tr, t->n_tr, sizeof *t->tr);
    spinbar bar = {0, 0, (unsigned)t->nthr};
#pragma omp parallel num_threads(t->nthr)
    {
        int tid = omp_get_thread_num(), nt = omp_get_num_threads();
        bar.n = (unsigned)nt;  /* every thread writes the same value before the first wait */
#pragma omp barrier
        for (size_t b = 0; b < nbatch; b++) {
            size_t i0 = b * B, nb = t->n_tr - i0 < B ? t->n_tr - i0 : B;
            for (int sh = tid; sh < 2; sh += nt) half_grad(t, i0, nb, sh);
            spinbar_wait(&bar);
            double bl = t->bl[0] + t->bl[1];
            if (!isfinite(bl)) {  /* every thread sees the same loss and stops at the same batch */
                if (tid == 0) diverged = 1, bad_loss = bl;
                break;
            }
            if (tid == 0) {
                sum += bl;
                seen += nb;
                right += t->right[0] + t->right[1];
            }
            update(t, lr, tid, nt);
            spinbar_wait(&bar);
        }
    }
    if (diverged) {
        memcpy(t->m->w, t->best, t->m->n_par * sizeof *t->best);
        return ody_fail(err, ODY_EINPUT, "mlp: training diverged at epoch %d (loss is %g) — lower "
                        "mlp.learning_rate (now %g), e.g. to %g", epoch, bad_loss, o->lr, o->lr / 10);
    }
    double dt = ody_now() - t0;
    *sps = dt > 0 ? (double)seen / dt : 0;
    *loss = sum / (double)seen;
    *acc = (double)right / (double)seen;
    if (!isfinite(*loss))
        return ody_fail(err, ODY_EINPUT, "mlp: training diverged at epoch %d — lower mlp.learning_rate (now %g)",
                        epoch, o->lr);
    return 0;
}

static int check_finite(const nn_real *X, const nn_real *T, size_t n, int d, int K, ody_err *err)
{
    for (size_t k = 0; k < n * (size_t)d; k++)
        if (!isfinite(X[k]))
            return ody_fail(err, ODY_EINPUT, "mlp: input row %zu, feature %zu is NaN or Inf — clean or drop such rows "
                            "(catalog.missing)", k / (size_t)d + 1, k % (size_t)d + 1);
    for (size_t k = 0; k < n * (size_t)K; k++)
        if (!isfinite(T[k])) return ody_fail(err, ODY_EINPUT, "mlp: target row %zu is NaN or Inf", k / (size_t)K + 1);
    return 0;
}

/* The best epoch so far, by validation loss (training loss without a
 * validation set). */
typedef struct best_epoch {
    double loss, tr_loss, tr_acc;
    int epoch;
} best_epoch;

/* Epochs until max_epochs or `patience` epochs without improvement. */
static int epochs(trainer *t, best_epoch *bst, int *last, double *sps, const ody_log *log, ody_err *err)
{
    const nn_train_opt *o = t->o;
    ody_progress prog;
    ody_progress_start(&prog, log, "mlp", "epochs", (size_t)o->max_epochs);
    int rc = 0, wait = 0, epoch;
    for (epoch = 1; epoch <= o->max_epochs && !rc; epoch++) {
        ody_progress_update(&prog, (size_t)epoch - 1);
        double tr_loss = NAN, tr_acc = NAN, va_loss = NAN, va_acc = NAN;
        if ((rc = epoch_run(t, epoch, &tr_loss, &tr_acc, sps, err))) break;
        double monitor = tr_loss;
        if (t->n_val) monitor = va_loss = eval_rows(t, t->va, t->n_val, &va_acc);
        ody_logf(log, ODY_LOG_DEBUG, "mlp: epoch %d  loss %.5f  acc %.4f  val_loss %.5f  val_acc %.4f  %.0f samples/s",
                 epoch, tr_loss, tr_acc, va_loss, va_acc, *sps);
        if (monitor < bst->loss - o->epsilon) {
            *bst = (best_epoch){monitor, tr_loss, tr_acc, epoch};
            wait = 0;
            memcpy(t->best, t->m->w, t->m->n_par * sizeof *t->best);
        } else if (++wait >= o->patience) {
            break;
        }
    }
    ody_progress_end(&prog);
    if (!rc && epoch <= o->max_epochs)  /* the bar stopped short: say why */
        ody_logf(log, ODY_LOG_INFO, "mlp: stopped early at epoch %d of %d (no better %s loss for %d epochs); "
                 "keeping epoch %d", epoch, o->max_epochs, t->n_val ? "validation" : "training", o->patience, bst->epoch);
    *last = epoch > o->max_epochs ? o->max_epochs : epoch;
    return rc;
}

int nn_train(nn_model *m, const nn_train_opt *o, const nn_real *X, const nn_real *T, size_t n,
             nn_history *hist, const ody_log *log, ody_err *err)
{
    int rc = nn_train_opt_check(o, n, err);
    if (!rc) rc = check_finite(X, T, n, m->arch.n_in, m->arch.size[m->arch.n_layers - 1], err);
    if (rc) return rc;
    int blas_prev = ody_blas_single();
    trainer t;
    rc = trainer_init(&t, m, o, X, T, n, err);
    best_epoch bst = {INFINITY, NAN, NAN, 0};
    int last = 0;
    double sps = 0;
    if (!rc) {
        memcpy(t.best, m->w, m->n_par * sizeof *t.best);
        rc = epochs(&t, &bst, &last, &sps, log, err);
    }
    if (!rc) {
        if (bst.epoch > 0) memcpy(m->w, t.best, m->n_par * sizeof *t.best);
        if (hist) {
            /* the kept epoch's running training loss and accuracy: a pass over
             * every training row just for the summary would cost a third of an
             * epoch */
            *hist = (nn_history){last, bst.epoch, bst.tr_loss, NAN, bst.tr_acc, NAN, sps};
            if (t.n_val) hist->val_loss = eval_rows(&t, t.va, t.n_val, &hist->val_acc);
        }
        ody_logf(log, ODY_LOG_INFO, "mlp: stopped after %d epochs, kept epoch %d", last, bst.epoch);
    }
    trainer_free(&t);
    ody_blas_restore(blas_prev);
    return rc;
}
