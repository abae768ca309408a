/* rf_parts.c — a forest whose real rows are spread over processes
 * (rf_data.parts): no process holds every row.
 *
 * Each process holds its own real rows and, for its block of the features
 * (ody_comm_part of F), every row's value and quantile bin (rf_rank.c moves
 * the columns and codes them).  A tree needs every feature of the rows it
 * draws and no others, so a tree's rows are put together for it alone:
 * every process draws every tree's sample from the tree's stream (cheap:
 * max_samples draws), writes its features' bins and values of those rows,
 * and the process that grows the tree gathers them.  The tree then grows
 * as rf_tree.c grows any tree from gathered rows, node for node the tree
 * one process with every row grows.
 *
 * Out-of-bag votes go by rows: each process walks its own rows down every
 * tree, redrawing each tree's sample to know which of its rows the tree
 * drew.  The votes are fixed-point sums, so they do not depend on which
 * process or thread adds them. */
#include <math.h>
#include <omp.h>
#include <stdlib.h>
#include <string.h>

#include "rf_grow.h"

/* What a process's trees of one round may take for their rows. */
#define ROUND_BYTES (64u << 20)

int rf_parts_fit(const rf_opt *o, size_t n)
{
    return o->bootstrap && o->max_samples > 0 && o->max_samples * 4 < 2 * n;
}

/* ================================================================ growing */

/* One tree's rows as the process that grows it receives them: values then
 * bins, F x ns each, in row order. */
typedef struct fetched {
    float *val;
    uint8_t *bin;
    uint32_t ns;
} fetched;

/* A round's shared state: every tree of the round on every process. */
typedef struct fround {
    const rf_opt *o;
    const trainset *ts;
    const ody_comm *comm;
    int R, me, B;          /* processes, this one, trees per process per round */
    size_t *tlo, *thi;     /* each process's trees */
    workspace *ws;         /* one per thread */
    int n_ws;
    char **send;           /* R x B: this process's features of each tree's rows (bins, then values) */
    size_t *send_bytes;
    uint32_t *ns;          /* R x B: each tree's distinct rows */
    fetched *got;          /* B: this process's trees of the round */
} fround;

/* Tree b of process q in round k, or -1. */
static int round_tree(const fround *r, int q, int k, int b)
{
    size_t t = r->tlo[q] + (size_t)k * (size_t)r->B + (size_t)b;
    return t < r->thi[q] ? (int)t : -1;
}

/* This process's bins and values of tree t's rows into a send buffer.  0
 * or -1. */
static int fill_tree(const fround *r, int t, workspace *ws, char **buf, size_t *bytes, uint32_t *ns_out)
{
    const trainset *ts = r->ts;
    uint32_t ns = rf_tree_draw(r->o, ts, t, ws);
    size_t fb = (size_t)(ts->f1 - ts->f0), n = ts->n;
    *ns_out = ns;
    *bytes = fb * ns * (1 + sizeof(float));
    free(*buf);
    *buf = malloc(*bytes + 1);
    if (!*buf) return -1;
    uint8_t *bo = (uint8_t *)*buf;
    float v;
    for (size_t f = 0; f < fb; f++) {
        const uint8_t *bn = ts->bin + f * n;
        char *vo = *buf + fb * ns + f * ns * sizeof v;
        for (uint32_t k = 0; k < ns; k++) {
            bo[f * ns + k] = bn[ws->s[k].i];
            v = rf_trainset_value(ts, ws->s[k].i, ts->f0 + (int)f);
            memcpy(vo + k * sizeof v, &v, sizeof v);
        }
    }
    return 0;
}

/* Every tree of round k: this process's part of its rows, then each tree's
 * rows gathered by its process. */
static int fetch_round(fround *r, int k, ody_err *err)
{
    int RB = r->R * r->B, fail = 0;
#pragma omp parallel for schedule(dynamic, 1) num_threads(r->n_ws)
    for (int j = 0; j < RB; j++) {
        int t = round_tree(r, j / r->B, k, j % r->B);
        if (t >= 0 && fill_tree(r, t, &r->ws[omp_get_thread_num()], &r->send[j], &r->send_bytes[j], &r->ns[j])) {
#pragma omp atomic write
            fail = 1;
        }
    }
    /* this process's trees of the round: their rows' room, and one receiving buffer of the largest */
    size_t F = (size_t)r->ts->F, most = 0;
    for (int b = 0; b < r->B && !fail; b++) {
        int j = r->me * r->B + b;
        fetched *g = &r->got[b];
        free(g->val);
        g->val = NULL;
        if (round_tree(r, r->me, k, b) < 0) continue;
        g->ns = r->ns[j];
        g->val = malloc(F * g->ns * (sizeof *g->val + 1) + 1);
        g->bin = g->val ? (uint8_t *)(g->val + F * g->ns) : NULL;
        if (!g->val) fail = 1;
        if (g->ns > most) most = g->ns;
    }
    size_t *sizes = malloc((size_t)r->R * sizeof *sizes);
    char *all = malloc(F * most * (sizeof(float) + 1) + 1);
    int rc = ody_comm_agree(r->comm, fail || !sizes || !all ? ody_fail(err, ODY_ENOMEM, "forest: out of memory "
                            "fetching the trees' rows") : 0, err);
    for (int j = 0; j < RB && !rc; j++) {
        int q = j / r->B, b = j % r->B;
        if (round_tree(r, q, k, b) < 0) continue;
        rc = ody_gather(r->comm, r->send[j], r->send_bytes[j], all, sizes, q, err);
        const fetched *g = &r->got[b];
        size_t at = 0;
        for (int p = 0; !rc && q == r->me && p < r->R; p++) {
            size_t g0, g1;
            ody_comm_part(r->comm, p, F, &g0, &g1);
            size_t w = (g1 - g0) * g->ns;
            memcpy(g->bin + g0 * g->ns, all + at, w);
            memcpy(g->val + g0 * g->ns, all + at + w, w * sizeof *g->val);
            at += sizes[p];
        }
    }
    free(all);
    free(sizes);
    return rc;
}

/* This process's trees of round k, threads taking them in turn. */
static int grow_round(fround *r, int k, int mtry, tbuild *trees, size_t *done, ody_progress *prog)
{
    int fail = 0;
#pragma omp parallel for schedule(dynamic, 1) num_threads(r->n_ws)
    for (int b = 0; b < r->B; b++) {
        int t = round_tree(r, r->me, k, b);
        if (t < 0) continue;
        workspace *ws = &r->ws[omp_get_thread_num()];
        uint32_t ns;
        ws->pbin = r->got[b].bin;
        ws->pval = r->got[b].val;
        if (rf_grow_tree(r->o, r->ts, mtry, t, ws, &trees[t], &ns)) {
#pragma omp atomic write
            fail = 1;
        }
        ws->pbin = NULL;
        ws->pval = NULL;
#pragma omp atomic
        (*done)++;
    }
    ody_progress_update(prog, *done);
    return fail ? -1 : 0;
}

static void round_free(fround *r)
{
    for (int j = 0; r->send && j < r->R * r->B; j++) free(r->send[j]);
    for (int b = 0; r->got && b < r->B; b++) free(r->got[b].val);
    for (int w = 0; r->ws && w < r->n_ws; w++) rf_workspace_free(&r->ws[w]);
    free(r->send);
    free(r->send_bytes);
    free(r->ns);
    free(r->got);
    free(r->ws);
    free(r->tlo);
    free(r->thi);
}

static int round_init(fround *r, const rf_opt *o, const trainset *ts, ody_err *err)
{
    memset(r, 0, sizeof *r);
    r->o = o;
    r->ts = ts;
    r->comm = o->comm;
    r->R = ody_comm_size(o->comm);
    r->me = ody_comm_rank(o->comm);
    r->n_ws = ody_threads(o->n_threads);
    /* trees a process grows between fetches, the most any process asks for: fewer rounds wait
     * less on the slowest process's tree, at a tree's rows each (F x max_samples x 5 bytes) */
    size_t per = (size_t)ts->F * o->max_samples * (1 + sizeof(float)), fit = ROUND_BYTES / (per ? per : 1);
    int B = fit > (size_t)(4 * r->n_ws) ? 4 * r->n_ws : fit > (size_t)r->n_ws ? (int)fit : r->n_ws;
    int rc = ody_allreduce(o->comm, &B, 1, ODY_MAX_INT, err);
    if (rc) return rc;
    r->B = B;
    size_t RB = (size_t)r->R * (size_t)B;
    r->tlo = malloc((size_t)r->R * sizeof *r->tlo);
    r->thi = malloc((size_t)r->R * sizeof *r->thi);
    r->ws = calloc((size_t)r->n_ws, sizeof *r->ws);
    r->send = calloc(RB, sizeof *r->send);
    r->send_bytes = calloc(RB, sizeof *r->send_bytes);
    r->ns = calloc(RB, sizeof *r->ns);
    r->got = calloc((size_t)B, sizeof *r->got);
    int fail = !r->tlo || !r->thi || !r->ws || !r->send || !r->send_bytes || !r->ns || !r->got;
    for (int w = 0; !fail && w < r->n_ws; w++)
        fail = rf_workspace_init(&r->ws[w], ts->n, o->max_samples, ts->F, 1, 1) != 0;
    for (int p = 0; !fail && p < r->R; p++) ody_comm_part(o->comm, p, (size_t)o->n_trees, &r->tlo[p], &r->thi[p]);
    return ody_comm_agree(o->comm, fail ? ody_fail(err, ODY_ENOMEM, "forest: out of memory") : 0, err);
}

int rf_parts_grow(const rf_opt *o, const trainset *ts, int mtry, tbuild *trees, const ody_log *log, ody_err *err)
{
    fround r;
    int rc = round_init(&r, o, ts, err);
    size_t most = 0, done = 0;
    for (int p = 0; !rc && p < r.R; p++)
        if (r.thi[p] - r.tlo[p] > most) most = r.thi[p] - r.tlo[p];
    int rounds = (int)((most + (size_t)r.B - 1) / (size_t)r.B);
    ody_progress prog;
    ody_progress_start(&prog, log, "forest", "trees", rc ? 0 : r.thi[r.me] - r.tlo[r.me]);
    for (int k = 0; k < rounds && !rc; k++) {
        rc = fetch_round(&r, k, err);
        if (!rc) rc = ody_comm_agree(o->comm, grow_round(&r, k, mtry, trees, &done, &prog) ?
                                     ody_fail(err, ODY_ENOMEM, "forest: out of memory growing trees") : 0, err);
    }
    ody_progress_end(&prog);
    round_free(&r);
    return rc;
}

/* ================================================================ out-of-bag votes */

int rf_parts_oob(const rf_opt *o, const trainset *ts, const rf_forest *f, const float *X, size_t lo, size_t nl,
                 double *oob_p1, double *accuracy, ody_err *err)
{
    int64_t *sum = calloc(nl ? nl : 1, sizeof *sum);
    uint32_t *cnt = calloc(nl ? nl : 1, sizeof *cnt);
    int fail = !sum || !cnt, F = ts->F;
#pragma omp parallel num_threads(ody_threads(o->n_threads))
    {
        workspace ws;
        uint8_t *inbag = calloc(nl ? nl : 1, 1);
        int32_t *leaf = malloc(RF_OOB_CHUNK * sizeof *leaf);
        int ok = !fail && rf_workspace_init(&ws, ts->n, o->max_samples, F, 1, 1) == 0 && inbag && leaf;
        if (!ok) {
#pragma omp atomic write
            fail = 1;
        }
#pragma omp for schedule(dynamic, 1)
        for (int t = 0; t < f->n_trees; t++) {
            if (!ok) continue;
            uint32_t ns = rf_tree_draw(o, ts, t, &ws);
            for (uint32_t k = 0; k < ns; k++)
                if (ws.s[k].i >= lo && ws.s[k].i - lo < nl) inbag[ws.s[k].i - lo] = 1;
            rf_oob_add(f->node + f->tree_off[t], f->cnt + 2 * f->tree_off[t], F, X, nl, inbag, leaf, sum, cnt);
            for (uint32_t k = 0; k < ns; k++)
                if (ws.s[k].i >= lo && ws.s[k].i - lo < nl) inbag[ws.s[k].i - lo] = 0;
        }
        if (ok) rf_workspace_free(&ws);
        free(inbag);
        free(leaf);
    }
    int rc = ody_comm_agree(o->comm, fail ? ody_fail(err, ODY_ENOMEM, "forest: out of memory for the out-of-bag "
                                                     "votes") : 0, err);
    int64_t tally[2] = {0, 0};  /* right, voted: real rows, so right when P(synthetic) <= 1/2 */
    for (size_t i = 0; !rc && i < nl; i++) {
        if (!cnt[i]) { oob_p1[i] = NAN; continue; }
        oob_p1[i] = (double)sum[i] / RF_OOB_SCALE / cnt[i];
        tally[1]++;
        tally[0] += !(oob_p1[i] > 0.5);
    }
    if (!rc) rc = ody_allreduce(o->comm, tally, 2, ODY_SUM_I64, err);
    if (!rc) *accuracy = tally[1] ? (double)tally[0] / (double)tally[1] : NAN;
    free(sum);
    free(cnt);
    return rc;
}
