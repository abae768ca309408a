/* st_mlp.c — stage "mlp": a multilayer perceptron trained by SGD to tell
 * real objects from synthetic ones, and each object's P(synthetic). */
#include <math.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "nn.h"
#include "rf.h"
#include "stage.h"

static void mlp_arch(const cfg *c, int F, nn_arch *a)
{
    memset(a, 0, sizeof *a);
    a->n_in = F;
    for (int l = 0; l < c->n_mlp_hidden; l++) {
        a->size[l] = c->mlp_hidden[l];
        a->act[l] = c->mlp_act;
    }
    a->n_layers = c->n_mlp_hidden + 1;
    a->size[a->n_layers - 1] = 1;
    a->act[a->n_layers - 1] = NN_SIGMOID;
    a->loss = NN_BCE;
}

static void mlp_opt(const cfg *c, nn_train_opt *o)
{
    nn_train_opt_init(o);
    o->lr = c->mlp_lr;
    o->momentum = c->mlp_momentum;
    o->nesterov = c->mlp_nesterov;
    o->lr_decay = c->mlp_lr_decay;
    o->l2 = c->mlp_l2;
    o->batch = c->mlp_batch;
    o->max_epochs = c->mlp_epochs;
    o->patience = c->mlp_patience;
    o->epsilon = c->mlp_eps;
    o->val_frac = c->mlp_val;
    o->seed = (uint64_t)c->seed;
    o->n_threads = c->threads;
}

/* The training rows: nr real rows (target 0) — the catalog's, or with
 * mlp.max_samples a seeded sample of them (samp) — then nr synthetic ones
 * (target 1) made where the trainer reads them: the forest's synthetic
 * rows, never stored (at 10^7 objects x 20 features they and the trainer's
 * standardised copy were 3.2 GB). */
typedef struct mlp_rows {
    const float *X;
    size_t nr;
    int F;
    const rf_synthgen *syn;
    const int32_t *samp; /* NULL: real row i is the catalog's row i */
} mlp_rows;

/* Training row i's catalog row (i < nr). */
static size_t real_row(const int32_t *samp, size_t i) { return samp ? (size_t)samp[i] : i; }

static void mlp_row(const void *ctx, size_t i, float *x, float *t)
{
    const mlp_rows *r = ctx;
    if (i < r->nr) memcpy(x, r->X + real_row(r->samp, i) * (size_t)r->F, (size_t)r->F * sizeof *x);
    else rf_synth_row(r->syn, i - r->nr, x);
    *t = (float)(i >= r->nr);
}

/* ================================================================ rows spread over processes */

/* With several processes each holds its own rows [lo, hi) of the features
 * alone, and the rows a training step reads are fetched together: every
 * value of a fetched row has exactly one process that holds it (a real
 * row's owner; the owner of the real row a synthetic value is drawn from;
 * process 0 for uniform draws), which writes its bits while the others
 * write zeros, and an integer sum over the processes assembles the rows
 * exactly — the same floats one process would make. */
typedef struct mlp_dist {
    const run_state *st;
    const rf_synthgen *syn;  /* sources among st->n rows, or ranges */
    size_t nr;               /* real training rows */
    const int32_t *samp;     /* as in mlp_rows */
} mlp_dist;

static int mlp_fetch(const void *ctx, const size_t *idx, size_t cnt, float *X, float *T, int root)
{
    const mlp_dist *m = ctx;
    const run_state *st = m->st;
    size_t n = m->nr, F = (size_t)st->F, lo = st->lo, hi = st->hi;
    int first = ody_comm_rank(st->comm) == 0;
    memset(X, 0, cnt * F * sizeof *X);
    for (size_t q = 0; q < cnt; q++) {
        size_t i = idx[q], r = i < n ? real_row(m->samp, i) : 0;
        float *x = X + q * F;
        T[q] = (float)(i >= n);
        if (i < n) {
            if (r >= lo && r < hi) memcpy(x, st->X + (r - lo) * F, F * sizeof *x);
        } else if (rf_synth_source(m->syn, i - n, 0) == SIZE_MAX) {
            if (first) rf_synth_row(m->syn, i - n, x);
        } else {
            rf_synth_row_held(m->syn, i - n, st->X, lo, hi, x);
        }
    }
    return ody_reduce(st->comm, X, cnt * F, ODY_SUM_U32, root, NULL);
}

/* The synthetic rows' generator over every process's rows: sources among
 * all n, and the features' ranges over all of them (uniform mode). */
static int dist_synth(const run_state *st, rf_synthgen **syn, ody_err *err)
{
    int R = ody_comm_size(st->comm), F = st->F;
    size_t nl = stage_rows(st);
    float *mine = malloc(2 * (size_t)F * sizeof *mine), *all = NULL;  /* this process's lo, then hi */
    int rc = ody_comm_agree(st->comm, mine ? 0 : ody_fail(err, ODY_ENOMEM, "out of memory"), err);
    if (rc) { free(mine); return rc; }
    for (int f = 0; f < F; f++) {
        mine[f] = INFINITY;
        mine[F + f] = -INFINITY;
        for (size_t i = 0; i < nl; i++) {
            float v = st->X[i * (size_t)F + (size_t)f];
            if (v < mine[f]) mine[f] = v;
            if (v > mine[F + f]) mine[F + f] = v;
        }
    }
    rc = ody_gather_rows(st->comm, mine, (size_t)R, 2 * (size_t)F * sizeof *mine, (void **)&all, err);
    for (int p = 1; !rc && p < R; p++)  /* process p's pair is row p */
        for (int f = 0; f < F; f++) {
            float plo = all[(size_t)p * 2 * F + f], phi = all[(size_t)p * 2 * F + F + f];
            if (plo < all[f]) all[f] = plo;
            if (phi > all[F + f]) all[F + f] = phi;
        }
    if (!rc) rc = rf_synth_open_ranges(st->c->synth_mode, st->n, F, all, all + F, (uint64_t)st->c->seed, syn, err);
    free(mine);
    free(all);
    return ody_comm_agree(st->comm, rc, err);
}

/* ================================================================ the stage */

/* The real training rows: the catalog's, or mlp.max_samples of them. */
static size_t real_rows(const run_state *st)
{
    size_t ms = (size_t)st->c->mlp_max_samples;
    return ms && ms < st->n ? ms : st->n;
}

/* Trains on real (0) + synthetic (1) rows and scores the real ones. */
static int train_and_score(run_state *st, const nn_arch *a, const nn_train_opt *o, nn_model **m, ody_err *err)
{
    size_t n = st->n, F = (size_t)st->F, nl = stage_rows(st);
    int spread = ody_comm_size(st->comm) > 1;  /* each process its own rows: fetched together */
    rf_synthgen *syn = NULL;
    float *P = malloc((nl ? nl : 1) * sizeof *P);
    int rc = ody_comm_agree(st->comm, P ? 0 : ody_fail(err, ODY_ENOMEM, "out of memory"), err);
    if (!rc) rc = spread ? dist_synth(st, &syn, err)
                         : rf_synth_open(st->c->synth_mode, st->X, n, (int)F, (uint64_t)st->c->seed, &syn, err);
    if (!rc) rc = nn_create(a, o->init, o->seed, m, err);
    /* mlp.max_samples: a sample of the real rows (drawn from the seed alone), as many synthetic */
    size_t nr = real_rows(st);
    int32_t *samp = !rc && nr < n ? stage_sample(st, nr, 0x31f) : NULL;
    if (!rc && nr < n && !samp) rc = ody_fail(err, ODY_ENOMEM, "out of memory");
    rc = ody_comm_agree(st->comm, rc, err);
    mlp_rows r = {st->X, nr, (int)F, syn, samp};
    mlp_dist dr = {st, syn, nr, samp};
    nn_rows rows = spread ? (nn_rows){2 * nr, &dr, NULL, mlp_fetch} : (nn_rows){2 * nr, &r, mlp_row, NULL};
    nn_history h;
    if (!rc) rc = nn_train_rows(*m, o, &rows, &h, st->log, err);
    rf_synth_close(syn);
    free(samp);
    if (!rc) {
        ody_logf(st->log, ODY_LOG_INFO, "mlp: real vs synthetic validation accuracy %.4f after %d epochs (kept %d), "
                 "%.0f samples/s", h.val_acc, h.epochs, h.best_epoch, h.samples_per_s);
        /* each process its rows */
        rc = ody_comm_agree(st->comm, nn_predict_rows(*m, st->X, nl, st->lo, st->c->threads, P, err), err);
    }
    for (size_t i = 0; !rc && i < nl; i++) st->score[CFG_SCORE_MLP][i] = P[i];
    free(P);
    return rc;
}

static int mlp(run_state *st, int run, ody_err *err)
{
    if (!store_score(st, CFG_SCORE_MLP)) return ody_fail(err, ODY_ENOMEM, "out of memory");
    if (!run) return store_load_rows(st, "mlp_scores.fits", "P_SYNTH_MLP", TDOUBLE, 1, st->score[CFG_SCORE_MLP], err);
    nn_arch a;
    nn_train_opt o;
    mlp_arch(st->c, st->F, &a);
    mlp_opt(st->c, &o);
    o.comm = st->comm;
    /* A small catalog has fewer training rows than the default batch: each
     * step then takes them all, rather than refusing a key never set. */
    int batch = o.batch;
    size_t ntr = nn_train_opt_fit_batch(&o, 2 * real_rows(st));
    if (ntr)
        ody_logf(st->log, ODY_LOG_INFO, "mlp: %zu training rows, fewer than mlp.batch = %d: each step takes them all",
                 ntr, batch);
    nn_model *m = NULL;
    int rc = train_and_score(st, &a, &o, &m, err);
    if (!rc && store_writes(st)) {
        char *p = store_path(st, "mlp.fits");
        rc = p ? nn_save(m, &o, p, st->history, 1, err) : ody_fail(err, ODY_ENOMEM, "out of memory");
        if (!rc) rc = store_stamp_file(st, p, err);
        free(p);
    }
    nn_destroy(m);
    if (rc) return rc;
    fitsout_col col = {"P_SYNTH_MLP", TDOUBLE, 1, st->score[CFG_SCORE_MLP], NULL, NULL};
    return store_save_slices(st, "mlp_scores.fits", "MLP", &col, 1, err);
}

static int mlp_enabled(const cfg *c) { return c->mlp_on; }

const stage_def stage_mlp = {
    .name = "mlp",
    .what = "MLP discriminator: real versus synthetic by SGD + backpropagation",
    .keys = (const char *const[]){"mlp.", "synthetic.", "seed", NULL},
    .reads = (const char *const[]){"ingest", NULL},
    .writes = (const char *const[]){"mlp.fits", "mlp_scores.fits", NULL},
    .enabled = mlp_enabled,
    .version = 3,  /* 2: synthetic rows drawn by counter; 3: predictions in padded blocks aligned to rows */
    .fn = mlp,
};
