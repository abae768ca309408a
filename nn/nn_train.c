/* nn_train.c — training the MLP: mini-batch SGD with (Nesterov) momentum
 * as local SGD on two replicas averaged every ROUND_ROWS rows, L2 decay,
 * early stopping on a held-out part, deterministic for any thread count. */
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

/* The rows of n that train (the rest validate). */
static size_t train_rows(const nn_train_opt *o, size_t n)
{
    return n - (size_t)floor(o->val_frac * (double)n);
}

size_t nn_train_opt_fit_batch(nn_train_opt *o, size_t n)
{
    size_t nt = train_rows(o, n);
    if (nt < 1 || o->batch < 1 || (size_t)o->batch <= nt) return 0;
    o->batch = (int)nt;
    return nt;
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
    size_t n_train = train_rows(o, n);
    if (n < 2 || n_train < 1)
        return ody_fail(err, ODY_EINPUT, "mlp: %zu rows are too few to train on", n);
    if (o->batch < 1 || (size_t)o->batch > n_train)
        return ody_fail(err, ODY_EINPUT, "mlp.batch = %d must be 1 to %zu (the training rows)", o->batch, n_train);
    return 0;
}

/* One SGD-with-momentum step over n parameters: g = grad + l2 w, then
 * v = mu v - eta g and w += v (classical) or w += mu v - eta g (Nesterov, in
 * the form of Sutskever et al. 2013). */
static void sgd_step(nn_real *restrict w, nn_real *restrict v, const nn_real *restrict grad, size_t n, nn_real mu,
                     nn_real eta, nn_real l2, int nesterov)
{
    if (nesterov) {
        for (size_t k = 0; k < n; k++) {
            nn_real g = grad[k] + l2 * w[k];
            nn_real vk = mu * v[k] - eta * g;
            v[k] = vk;
            w[k] += mu * vk - eta * g;
        }
    } else {
        for (size_t k = 0; k < n; k++) {
            nn_real g = grad[k] + l2 * w[k];
            v[k] = mu * v[k] - eta * g;
            w[k] += v[k];
        }
    }
}

/* ================================================================ the trainer */

/* One of the two model replicas of local SGD: its own weights and momentum
 * for a round, its mini-batch and buffers, and what its batches added up. */
typedef struct replica {
    nn_real *w, *v, *g;       /* n_par each */
    nn_real *xb, *tb, *swb;   /* a mini-batch (also an evaluation chunk) */
    const nn_real *bx, *bt;   /* fetched rows: the rows at its shard's positions [b0, b1) */
    size_t b0;
    work wk;
    double loss, bad_loss;
    size_t seen, right;
    int bad;
} replica;

/* One training run: the data, its split, and every buffer, allocated once. */
typedef struct trainer {
    nn_model *m;
    const nn_train_opt *o;
    const nn_rows *rows;      /* the data, made row by row */
    size_t n, n_val, n_tr, B;
    int d, K, nthr;
    size_t *perm, *tr, *va;   /* a seeded permutation: training rows, then validation rows */
    nn_real cw[64];           /* sample weight by class */
    nn_real *v, *best;        /* momentum, and the best weights so far */
    nn_real *bx, *bt;         /* with rows->fetch: a block of cap fetched rows (inputs, targets) */
    size_t cap;
    double *closs;            /* per evaluation chunk: its loss sum */
    size_t *cright;           /* and its right answers */
    replica rep[2];
    gsl_rng *r;
} trainer;

static void trainer_free(trainer *t)
{
    free(t->perm); free(t->v); free(t->best); free(t->bx); free(t->bt);
    free(t->closs); free(t->cright);
    for (int k = 0; k < 2; k++) {
        replica *p = &t->rep[k];
        free(p->w); free(p->v); free(p->g); free(p->xb); free(p->tb); free(p->swb);
        nnw_free(&p->wk);
    }
    if (t->r) gsl_rng_free(t->r);
}

static int trainer_alloc(trainer *t)
{
    size_t n = t->n, B = t->B, np = t->m->n_par;
    t->perm = malloc(n * sizeof *t->perm);
    t->v = calloc(np, sizeof *t->v);
    t->best = malloc(np * sizeof *t->best);
    t->closs = malloc((n / B + 1) * sizeof *t->closs);
    t->cright = malloc((n / B + 1) * sizeof *t->cright);
    t->r = gsl_rng_alloc(gsl_rng_mt19937);
    int bad = !t->perm || !t->v || !t->best || !t->closs || !t->cright || !t->r;
    if (t->rows->fetch) {
        t->bx = malloc(t->cap * (size_t)t->d * sizeof *t->bx);
        t->bt = malloc(t->cap * (size_t)t->K * sizeof *t->bt);
        bad = bad || !t->bx || !t->bt;
    }
    for (int k = 0; k < 2; k++) {
        replica *p = &t->rep[k];
        p->w = malloc(np * sizeof *p->w);
        p->v = malloc(np * sizeof *p->v);
        p->g = malloc(np * sizeof *p->g);
        p->xb = malloc(B * (size_t)t->d * sizeof *p->xb);
        p->tb = malloc(B * (size_t)t->K * sizeof *p->tb);
        p->swb = malloc(B * sizeof *p->swb);
        bad = bad || !p->w || !p->v || !p->g || !p->xb || !p->tb || !p->swb || nnw_init(&p->wk, &t->m->arch, B);
    }
    return bad ? -1 : 0;
}

/* Row i, standardised (in place, as prediction does), into x, its
 * targets into tt. */
static void get_row(const trainer *t, size_t i, nn_real *x, nn_real *tt)
{
    t->rows->get(t->rows->ctx, i, x, tt);
    nnw_standardize(t->m, x, 1, x);
}

/* Inputs a block of fetched rows holds at most: 8 MB, so that a wide
 * table (spectra) is fetched in short blocks and a narrow one in a few. */
#define FETCH_VALUES (1u << 21)

/* Rows idx[0..cnt) (not standardised) into X and T: fetched by every
 * process together (for process root alone when root >= 0), or made here
 * by rows->get on the training threads.  0, or -1 when the processes could
 * not exchange them. */
static int make_rows(const trainer *t, const size_t *idx, size_t cnt, nn_real *X, nn_real *T, int root)
{
    if (t->rows->fetch) return t->rows->fetch(t->rows->ctx, idx, cnt, X, T, root) ? -1 : 0;
#pragma omp parallel for schedule(static) num_threads(t->nthr)
    for (size_t q = 0; q < cnt; q++) t->rows->get(t->rows->ctx, idx[q], X + q * (size_t)t->d, T + q * (size_t)t->K);
    return 0;
}

/* Row q of the list idx, standardised, into x and tt: from the fetched
 * rows bx, bt of the list's positions from e0 on, or (bx NULL) made here. */
static void row_at(const trainer *t, const nn_real *bx, const nn_real *bt, const size_t *idx, size_t e0, size_t q,
                   nn_real *x, nn_real *tt)
{
    if (!bx) {
        get_row(t, idx[q], x, tt);
        return;
    }
    memcpy(x, bx + (q - e0) * (size_t)t->d, (size_t)t->d * sizeof *x);
    memcpy(tt, bt + (q - e0) * (size_t)t->K, (size_t)t->K * sizeof *tt);
    nnw_standardize(t->m, x, 1, x);
}

/* Rows made a block at a time: cap when fetched (few exchanges), else 256. */
static size_t block_rows(const trainer *t) { return t->rows->fetch ? t->cap : 256; }

/* The standardisation, learnt on the training rows only: each feature's
 * mean, then its spread about it, summed in the training rows' order.  A
 * block of rows is made at a time (for every feature at once). */
static int fit_standardization(trainer *t, ody_err *err)
{
    nn_model *m = t->m;
    int d = t->d, K = t->K, on = t->o->standardize, lost = 0;
    /* fetched rows go to process 0, which sends the terms: half the traffic of every process summing */
    const ody_comm *c = t->rows->fetch ? t->o->comm : NULL;
    int sums = ody_comm_rank(c) == 0;
    m->standardized = on;
    size_t RB = block_rows(t);
    nn_real *xb = t->bx ? t->bx : malloc(RB * d * sizeof *xb), *tb = t->bt ? t->bt : malloc(RB * K * sizeof *tb);
    double *s = calloc((size_t)d, sizeof *s), *ss = calloc((size_t)d, sizeof *ss);
    int rc = !xb || !tb || !s || !ss ? ody_fail(err, ODY_ENOMEM, "mlp: out of memory") : 0;
    for (int pass = 0; !rc && on && pass < 2 && !lost; pass++)
        for (size_t q0 = 0; q0 < t->n_tr && !lost; q0 += RB) {
            size_t nb = t->n_tr - q0 < RB ? t->n_tr - q0 : RB;
            if ((lost = make_rows(t, t->tr + q0, nb, xb, tb, 0))) break;
            for (size_t q = 0; sums && q < nb; q++)
                for (int j = 0; j < d; j++) {
                    double x = xb[q * (size_t)d + j];
                    if (pass) ss[j] += (x - s[j]) * (x - s[j]);
                    else s[j] += x;
                }
            if (!pass && q0 + nb == t->n_tr)
                for (int j = 0; j < d; j++) s[j] /= (double)t->n_tr;
        }
    for (int j = 0; !rc && j < d; j++) {
        double sd = on ? sqrt(ss[j] / (double)t->n_tr) : 0;
        m->mu[j] = (nn_real)(on ? s[j] : 0);
        m->sd[j] = (nn_real)(on && sd > 0 ? sd : 1);
    }
    if (!rc && !lost && ody_comm_size(c) > 1 && on &&
        (c->bcast(c, m->mu, (size_t)d * sizeof *m->mu, 0) || c->bcast(c, m->sd, (size_t)d * sizeof *m->sd, 0)))
        lost = 1;
    if (xb != t->bx) free(xb);
    if (tb != t->bt) free(tb);
    free(s); free(ss);
    if (!rc && lost) rc = ody_fail(err, ODY_EIO, "mlp: MPI: exchanging the training rows failed — see the MPI message above");
    return rc;
}

/* Sample weights by class: 1, or n / (K n_k) from the training rows. */
static int class_weights(trainer *t, ody_err *err)
{
    for (int c = 0; c < 64; c++) t->cw[c] = 1;
    if (!t->o->class_weight) return 0;
    int K = t->K, nc = K == 1 ? 2 : K;
    size_t cnt[64] = {0};
    if (nc > 64) return ody_fail(err, ODY_EINPUT, "mlp.class_weight supports up to 64 classes");
    size_t RB = block_rows(t);
    nn_real *x = t->bx ? t->bx : malloc(RB * t->d * sizeof *x), *tt = t->bt ? t->bt : malloc(RB * K * sizeof *tt);
    int rc = !x || !tt ? ody_fail(err, ODY_ENOMEM, "mlp: out of memory") : 0;
    for (size_t q0 = 0; !rc && q0 < t->n_tr; q0 += RB) {
        size_t nb = t->n_tr - q0 < RB ? t->n_tr - q0 : RB;
        if (make_rows(t, t->tr + q0, nb, x, tt, -1))
            rc = ody_fail(err, ODY_EIO, "mlp: MPI: exchanging the training rows failed — see the MPI message above");
        for (size_t q = 0; !rc && q < nb; q++) cnt[nnw_row_class(tt + q * (size_t)K, K)]++;
    }
    if (x != t->bx) free(x);
    if (tt != t->bt) free(tt);
    if (rc) return rc;
    for (int c = 0; c < nc; c++) t->cw[c] = (nn_real)(cnt[c] ? (double)t->n_tr / ((double)nc * (double)cnt[c]) : 1.0);
    return 0;
}

static int trainer_init(trainer *t, nn_model *m, const nn_train_opt *o, const nn_rows *rows, ody_err *err)
{
    size_t n = rows->n;
    memset(t, 0, sizeof *t);
    t->m = m;
    t->o = o;
    t->rows = rows;
    t->n = n;
    t->n_val = (size_t)floor(o->val_frac * (double)n);
    t->n_tr = n - t->n_val;
    t->B = (size_t)o->batch;
    t->d = m->arch.n_in;
    t->K = m->arch.size[m->arch.n_layers - 1];
    t->nthr = ody_threads(o->n_threads) >= 2 ? 2 : 1;
    /* a fetched block: a multiple of two mini-batches (a round's part of
     * each replica, or evaluation chunks), within FETCH_VALUES inputs */
    size_t two = 2 * t->B, cap = FETCH_VALUES / (size_t)t->d / two * two, most = (n + two - 1) / two * two;
    t->cap = cap < two ? two : cap > most ? most : cap;
    int rc = trainer_alloc(t) ? ody_fail(err, ODY_ENOMEM, "mlp: out of memory for %zu rows", n) : 0;
    if (rows->fetch) rc = ody_comm_agree(o->comm, rc, err);  /* none fetching with a process that gave up */
    if (rc) return rc;
    gsl_rng_set(t->r, (unsigned long)(o->seed ^ 0xA5A5A5A5ULL));
    for (size_t i = 0; i < n; i++) t->perm[i] = i;
    gsl_ran_shuffle(t->r, t->perm, n, sizeof *t->perm);
    t->tr = t->perm;
    t->va = t->perm + t->n_tr;
    rc = fit_standardization(t, err);
    return rc ? rc : class_weights(t, err);
}

/* Mean loss (and accuracy) over rows idx[0..cnt) of the standardised
 * inputs, a mini-batch-sized chunk at a time: the threads share the chunks
 * and the chunks' sums are added in order, so the result is the same for
 * any thread count. */
static int eval_rows(trainer *t, const size_t *idx, size_t cnt, double *loss_out, double *acc, ody_err *err)
{
    const nn_model *m = t->m;
    int d = t->d, K = t->K;
    size_t C = t->B, E = t->rows->fetch ? t->cap : cnt;  /* rows a block: fetched ones, or all made where read */
    long nc_all = (long)((cnt + C - 1) / C);
    for (size_t e0 = 0; e0 < cnt; e0 += E) {
        size_t ne = cnt - e0 < E ? cnt - e0 : E;
        if (t->rows->fetch && make_rows(t, idx + e0, ne, t->bx, t->bt, -1))
            return ody_fail(err, ODY_EIO, "mlp: MPI: exchanging the validation rows failed — see the MPI message above");
        long c0 = (long)(e0 / C), nc = (long)((ne + C - 1) / C);
#pragma omp parallel num_threads(t->nthr)
        {
            replica *p = &t->rep[omp_get_thread_num()];
            work *w = &p->wk;
            nn_real *xb = p->xb, *tb = p->tb;
#pragma omp for schedule(static)
            for (long c = c0; c < c0 + nc; c++) {
                size_t i0 = (size_t)c * C, B = cnt - i0 < C ? cnt - i0 : C, right = 0;
                for (size_t q = 0; q < B; q++)
                    row_at(t, t->rows->fetch ? t->bx : NULL, t->bt, idx, e0, i0 + q, xb + q * (size_t)d,
                           tb + q * (size_t)K);
                t->closs[c] = nnw_batch_grad(m, xb, tb, NULL, B, 0, NULL, w);
                const nn_real *O = w->A[m->arch.n_layers - 1];
                for (size_t q = 0; q < B; q++)
                    right += nnw_row_class(O + q * (size_t)K, K) == nnw_row_class(tb + q * (size_t)K, K);
                t->cright[c] = right;
            }
        }
    }
    double loss = 0;
    size_t right = 0;
    for (long c = 0; c < nc_all; c++) loss += t->closs[c], right += t->cright[c];
    if (acc) *acc = cnt ? (double)right / (double)cnt : NAN;
    *loss_out = cnt ? loss / (double)cnt : NAN;
    return 0;
}

/* The optimizer step on weights w and momentum v from gradient g: a
 * vectorised loop over each layer's W (with L2 decay) and b in the
 * contiguous parameter array. */
static void update(const trainer *t, nn_real *w, nn_real *v, const nn_real *g, double lr)
{
    const nn_model *m = t->m;
    const nn_arch *a = &m->arch;
    const nn_real mu = (nn_real)t->o->momentum, eta = (nn_real)lr, l2 = (nn_real)t->o->l2;
    int prev = t->d;
    for (int l = 0; l < a->n_layers; l++) {
        size_t w0 = m->off[l], nw = (size_t)a->size[l] * prev, w1 = m->off[l + 1];
        sgd_step(w + w0, v + w0, g + w0, nw, mu, eta, l2, t->o->nesterov);
        sgd_step(w + w0 + nw, v + w0 + nw, g + w0 + nw, w1 - w0 - nw, mu, eta, 0, t->o->nesterov);
        prev = a->size[l];
    }
}

/* Replica k starts a round from the shared weights and momentum. */
static void replica_start(trainer *t, int k)
{
    replica *p = &t->rep[k];
    memcpy(p->w, t->m->w, t->m->n_par * sizeof *p->w);
    memcpy(p->v, t->v, t->m->n_par * sizeof *p->v);
}

/* Rows [q0, q1) of a shard through replica k: one SGD step a mini-batch on
 * its own copy of the model.  A round may come in parts whose bounds are
 * mini-batches apart: the steps are the same. */
static void replica_steps(trainer *t, int k, const size_t *shard, size_t q0, size_t q1, double lr)
{
    replica *p = &t->rep[k];
    size_t np = t->m->n_par, B = t->B;
    int d = t->d, K = t->K;
    nn_model mr = *t->m;  /* the model, reading this replica's weights */
    mr.w = p->w;
    for (size_t i0 = q0; i0 < q1 && !p->bad; i0 += B) {
        size_t nb = q1 - i0 < B ? q1 - i0 : B;
        for (size_t q = 0; q < nb; q++) {
            row_at(t, p->bx, p->bt, shard, p->b0, i0 + q, p->xb + q * (size_t)d, p->tb + q * (size_t)K);
            p->swb[q] = t->cw[nnw_row_class(p->tb + q * (size_t)K, K)];
        }
        memset(p->g, 0, np * sizeof *p->g);
        double bl = nnw_batch_grad(&mr, p->xb, p->tb, p->swb, nb, 1.0 / (double)nb, p->g, &p->wk);
        if (!isfinite(bl)) {
            p->bad = 1;
            p->bad_loss = bl;
            break;
        }
        const nn_real *O = p->wk.A[mr.arch.n_layers - 1];
        for (size_t q = 0; q < nb; q++)
            p->right += nnw_row_class(O + q * (size_t)K, K) == nnw_row_class(p->tb + q * (size_t)K, K);
        p->loss += bl;
        p->seen += nb;
        update(t, p->w, p->v, p->g, lr);
    }
}

/* Waits until all n threads arrive.  It spins a little and then yields
 * instead of sleeping: a thread never needs waking (waking onto a core that
 * another process holds can take milliseconds), and a thread that waits on
 * a shared core hands it over. */
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

/* The process that runs replica k (ody_comm_part of the two). */
static int replica_owner(const ody_comm *c, int k) { return ody_part_of(2, ody_comm_size(c), (size_t)k); }

/* Replica k's round (weights, momentum, what its batches added up) from the
 * process that ran it to the others; on the first thread only (MPI is
 * called from the main thread).  0 or -1. */
static int share_replica(const trainer *t, int k)
{
    const ody_comm *c = t->o->comm;
    replica *p = (replica *)&t->rep[k];
    int owner = replica_owner(c, k);
    size_t np = t->m->n_par;
    return c->bcast(c, p->w, np * sizeof *p->w, owner) || c->bcast(c, p->v, np * sizeof *p->v, owner) ||
           c->bcast(c, &p->loss, sizeof p->loss, owner) || c->bcast(c, &p->bad_loss, sizeof p->bad_loss, owner) ||
           c->bcast(c, &p->seen, sizeof p->seen, owner) || c->bcast(c, &p->right, sizeof p->right, owner) ||
           c->bcast(c, &p->bad, sizeof p->bad, owner) ? -1 : 0;
}

/* The rows of replica k's shard positions [a0[k], a1[k]) for both replicas
 * into the fetched block (replica k's at k S rows), by every process
 * together (called by each process's first thread). */
static int fetch_part(trainer *t, const size_t *const shard[2], const size_t a0[2], const size_t a1[2], size_t S)
{
    for (int k = 0; k < 2; k++) {
        replica *p = &t->rep[k];
        nn_real *bx = t->bx + (size_t)k * S * (size_t)t->d, *bt = t->bt + (size_t)k * S * (size_t)t->K;
        if (make_rows(t, shard[k] + a0[k], a1[k] - a0[k], bx, bt, replica_owner(t->o->comm, k))) return 1;
        p->bx = bx;
        p->bt = bt;
        p->b0 = a0[k];
    }
    return 0;
}

/* Rows a replica takes between two averagings: tens of milliseconds of
 * work, so a thread that another process delays for a time slice costs a
 * round a little, not every mini-batch. */
#define ROUND_ROWS 32768

/* One epoch of local SGD: the shuffled training rows are two shards, one a
 * replica; in rounds of ROUND_ROWS rows each replica takes its SGD steps on
 * its own copy of the model, and the copies (weights and momentum) are then
 * averaged in a fixed order.  Two replicas always, on one thread or two,
 * in one process or two, so the weights depend on neither count; the
 * threads (and processes) meet once a round, never a mini-batch, and share
 * no weights in between.  *loss and *acc are running means over the epoch. */
static int epoch_run(trainer *t, int epoch, double *loss, double *acc, double *sps, ody_err *err)
{
    const nn_train_opt *o = t->o;
    double t0 = ody_now(), lr = o->lr / (1.0 + o->lr_decay * (epoch - 1));
    size_t np = t->m->n_par, h = (t->n_tr + 1) / 2, len[2] = {h, t->n_tr - h};
    const size_t *shard[2] = {t->tr, t->tr + h};
    size_t rounds = (h + ROUND_ROWS - 1) / ROUND_ROWS;
    gsl_ran_shuffle(t->r, t->tr, t->n_tr, sizeof *t->tr);
    for (int k = 0; k < 2; k++) {
        replica *p = &t->rep[k];
        p->loss = p->bad_loss = 0;
        p->seen = p->right = 0;
        p->bad = 0;
    }
    spinbar bar = {0, 0, (unsigned)t->nthr};
    const ody_comm *c = o->comm;
    size_t k0, k1;  /* this process's replicas */
    ody_comm_part(c, ody_comm_rank(c), 2, &k0, &k1);
    int lost = 0;   /* an exchange between processes failed */
#pragma omp parallel num_threads(t->nthr)
    {
        int tid = omp_get_thread_num(), nt = omp_get_num_threads();
        bar.n = (unsigned)nt;  /* every thread writes the same value before the first wait */
#pragma omp barrier
        for (size_t j = 0; j < rounds; j++) {
            size_t q0[2], q1[2], S = t->rows->fetch ? t->cap / 2 : ROUND_ROWS;  /* a replica's rows a part */
            for (int k = 0; k < 2; k++) {
                q0[k] = j * ROUND_ROWS < len[k] ? j * ROUND_ROWS : len[k];
                q1[k] = q0[k] + ROUND_ROWS < len[k] ? q0[k] + ROUND_ROWS : len[k];
            }
            for (int k = (int)k0 + tid; k < (int)k1; k += nt) replica_start(t, k);
            for (size_t s = 0; s < q1[0] - q0[0] && !lost; s += S) {  /* shard 0 is the longer */
                size_t a0[2], a1[2];
                for (int k = 0; k < 2; k++) {
                    a0[k] = q0[k] + s < q1[k] ? q0[k] + s : q1[k];
                    a1[k] = a0[k] + S < q1[k] ? a0[k] + S : q1[k];
                }
                if (t->rows->fetch) {  /* the part's rows of both replicas, on every process */
                    if (tid == 0) lost = fetch_part(t, shard, a0, a1, S);
                    spinbar_wait(&bar);
                }
                for (int k = (int)k0 + tid; k < (int)k1 && !lost; k += nt) replica_steps(t, k, shard[k], a0[k], a1[k], lr);
                if (t->rows->fetch) spinbar_wait(&bar);  /* before the next part overwrites the block */
            }
            spinbar_wait(&bar);
            if (ody_comm_size(c) > 1) {
                if (tid == 0 && !lost) lost = share_replica(t, 0) || share_replica(t, 1);
                spinbar_wait(&bar);  /* its release orders the write before every thread's read */
            }
            if (lost) break;
            if (t->rep[0].bad || t->rep[1].bad) break;  /* every thread sees the same flags */
            size_t lo = np * (size_t)tid / (size_t)nt, hi = np * (size_t)(tid + 1) / (size_t)nt;
            for (size_t q = lo; q < hi; q++) {
                t->m->w[q] = (t->rep[0].w[q] + t->rep[1].w[q]) * (nn_real)0.5;
                t->v[q] = (t->rep[0].v[q] + t->rep[1].v[q]) * (nn_real)0.5;
            }
            spinbar_wait(&bar);
        }
    }
    if (lost) return ody_fail(err, ODY_EIO, "mlp: MPI: exchanging the replicas failed — see the MPI message above");
    for (int k = 0; k < 2; k++)
        if (t->rep[k].bad) {
            memcpy(t->m->w, t->best, np * sizeof *t->best);
            return ody_fail(err, ODY_EINPUT, "mlp: training diverged at epoch %d (loss is %g) — lower "
                            "mlp.learning_rate (now %g), e.g. to %g", epoch, t->rep[k].bad_loss, o->lr, o->lr / 10);
        }
    size_t seen = t->rep[0].seen + t->rep[1].seen;
    double dt = ody_now() - t0;
    *sps = dt > 0 ? (double)seen / dt : 0;
    *loss = (t->rep[0].loss + t->rep[1].loss) / (double)seen;
    *acc = (double)(t->rep[0].right + t->rep[1].right) / (double)seen;
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
        if (t->n_val && (rc = eval_rows(t, t->va, t->n_val, &va_loss, &va_acc, err))) break;
        if (t->n_val) monitor = va_loss;
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

/* The rows of a matrix X with targets T. */
typedef struct matrix_rows {
    const nn_real *X, *T;
    int d, K;
} matrix_rows;

static void matrix_get(const void *ctx, size_t i, nn_real *x, nn_real *t)
{
    const matrix_rows *a = ctx;
    memcpy(x, a->X + i * (size_t)a->d, (size_t)a->d * sizeof *x);
    memcpy(t, a->T + i * (size_t)a->K, (size_t)a->K * sizeof *t);
}

int nn_train(nn_model *m, const nn_train_opt *o, const nn_real *X, const nn_real *T, size_t n,
             nn_history *hist, const ody_log *log, ody_err *err)
{
    int d = m->arch.n_in, K = m->arch.size[m->arch.n_layers - 1];
    int rc = check_finite(X, T, n, d, K, err);
    if (rc) return rc;
    matrix_rows a = {X, T, d, K};
    nn_rows rows = {n, &a, matrix_get, NULL};
    return nn_train_rows(m, o, &rows, hist, log, err);
}

int nn_train_rows(nn_model *m, const nn_train_opt *o, const nn_rows *rows, nn_history *hist, const ody_log *log,
                  ody_err *err)
{
    int rc = nn_train_opt_check(o, rows->n, err);
    if (rc) return rc;
    int blas_prev = ody_blas_single();
    trainer t;
    rc = trainer_init(&t, m, o, rows, err);
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
            if (t.n_val) rc = eval_rows(&t, t.va, t.n_val, &hist->val_loss, &hist->val_acc, err);
        }
        ody_logf(log, ODY_LOG_INFO, "mlp: stopped after %d epochs, kept epoch %d", last, bst.epoch);
    }
    trainer_free(&t);
    ody_blas_restore(blas_prev);
    return rc;
}
