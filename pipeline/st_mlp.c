/* st_mlp.c — stage "mlp": a multilayer perceptron trained by SGD to tell
 * real objects from synthetic ones, and each object's P(synthetic). */
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

/* The training rows: the catalog's n real rows (target 0), then n
 * synthetic ones (target 1) made where the trainer reads them — the
 * forest's synthetic rows, never stored: at 10^7 objects x 20 features
 * they and the trainer's standardised copy were 3.2 GB. */
typedef struct mlp_rows {
    const float *X;
    size_t n;
    int F;
    const rf_synthgen *syn;
} mlp_rows;

static void mlp_row(const void *ctx, size_t i, float *x, float *t)
{
    const mlp_rows *r = ctx;
    if (i < r->n) memcpy(x, r->X + i * (size_t)r->F, (size_t)r->F * sizeof *x);
    else rf_synth_row(r->syn, i - r->n, x);
    *t = (float)(i >= r->n);
}

/* Trains on real (0) + synthetic (1) rows and scores the real ones. */
static int train_and_score(run_state *st, const nn_arch *a, const nn_train_opt *o, nn_model **m, ody_err *err)
{
    size_t n = st->n, F = (size_t)st->F, nl = stage_rows(st);
    rf_synthgen *syn = NULL;
    int mine = 0;  /* training reads every row: gathered for it when this process keeps its own alone */
    float *X = stage_all_rows(st, &mine, err), *P = malloc((nl ? nl : 1) * sizeof *P);
    int rc = ody_comm_agree(st->comm, X && P ? 0 : ody_fail(err, ODY_ENOMEM, "out of memory"), err);
    if (!rc) rc = rf_synth_open(st->c->synth_mode, X, n, (int)F, (uint64_t)st->c->seed, &syn, err);
    if (!rc) rc = nn_create(a, o->init, o->seed, m, err);
    mlp_rows r = {X, n, (int)F, syn};
    nn_rows rows = {2 * n, &r, mlp_row};
    nn_history h;
    if (!rc) rc = nn_train_rows(*m, o, &rows, &h, st->log, err);
    rf_synth_close(syn);
    if (mine) free(X);
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
    nn_model *m = NULL;
    int rc = train_and_score(st, &a, &o, &m, err);
    if (!rc && store_writes(st)) {
        char *p = store_path(st, "mlp.fits");
        rc = p ? nn_save(m, &o, p, st->history, 1, err) : ody_fail(err, ODY_ENOMEM, "out of memory");
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
