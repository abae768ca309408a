/* rf_grow.h — what the forest trainer's files share.  Private to forest/.
 *
 *   rf_rank.c   sorting, the synthetic rows, and the training set: each
 *               value's quantile bin, built once and shared by every tree
 *   rf_tree.c   growing one tree from its RNG stream into a tbuild
 *   rf_train.c  options, and the forest: trees in parallel, out-of-bag
 *               votes, concatenation in tree order
 */
#ifndef RF_GROW_H
#define RF_GROW_H

#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include "rf.h"

#define RF_MAX_BINS 256

/* ---------------------------------------------------------------- sorting */

/* LSD radix sort of 64-bit keys on bits [lo_bit, hi_bit) (multiples of 8). */
void rf_radix_u64(uint64_t *a, uint64_t *tmp, size_t n, int lo_bit, int hi_bit);

/* Quicksort (median of three) with insertion sort for short runs. */
void rf_sort_u64(uint64_t *a, size_t n);

/* ---------------------------------------------------------------- synthetic rows */

/* Draws synthetic rows one value at a time (see rf_synthesize). */
typedef struct rf_synthgen {
    rf_synth mode;
    const float *X;        /* the n real rows, n x F */
    size_t n;
    int F;
    uint64_t *key;         /* F stream keys */
    float *lo, *hi;        /* F ranges (uniform) */
} synthgen;

int rf_synthgen_init(synthgen *g, rf_synth mode, const float *X, size_t n, int F, uint64_t seed);
void rf_synthgen_free(synthgen *g);

/* The real row whose value of feature f synthetic row j takes (marginal). */
static inline size_t rf_synth_src(const synthgen *g, size_t j, int f)
{
    return (size_t)(((unsigned __int128)ody_draw(g->key[f], j) * g->n) >> 64);
}

static inline float rf_synth_value(const synthgen *g, size_t j, int f)
{
    if (g->mode != RF_SYNTH_UNIFORM) return g->X[rf_synth_src(g, j, f) * (size_t)g->F + (size_t)f];
    double u = (double)(ody_draw(g->key[f], j) >> 11) * 0x1.0p-53;
    float v = (float)((double)g->lo[f] + ((double)g->hi[f] - (double)g->lo[f]) * u);
    return v > g->hi[f] ? g->hi[f] : v;
}

/* ---------------------------------------------------------------- training set */

/* The training rows as the trees read them: values from X (and the
 * synthetic generator), and each value's quantile bin, column-major, built
 * once and shared read-only by every tree. */
typedef struct trainset {
    size_t n;              /* rows: n_x of X, then n - n_x synthetic */
    int F;
    const float *X;
    size_t n_x;
    synthgen syn;
    uint8_t *y;            /* n labels */
    uint8_t *bin;          /* F x n quantile bin of each row */
    int *n_bins;           /* per feature */
    float *blo, *bhi;      /* F x RF_MAX_BINS: smallest and largest value in each bin */
} trainset;

/* With comm, each process codes a block of the features and they share
 * the codes: every process ends with the whole training set. */
int rf_trainset_build(trainset *ts, const rf_data *d, int n_threads, const ody_comm *comm, ody_err *err);
void rf_trainset_free(trainset *ts);

static inline float rf_trainset_value(const trainset *ts, size_t i, int f)
{
    if (i < ts->n_x) return ts->X[i * (size_t)ts->F + (size_t)f];
    return rf_synth_value(&ts->syn, i - ts->n_x, f);
}

/* Maps a float to a key whose unsigned order is the float order (-0 and +0
 * share a key since they compare equal), and back. */
static inline uint32_t rf_float_key(float v)
{
    if (v == 0.0f) v = 0.0f;
    uint32_t u;
    memcpy(&u, &v, sizeof u);
    return (u & 0x80000000u) ? ~u : (u | 0x80000000u);
}

static inline float rf_key_float(uint32_t k)
{
    uint32_t u = (k & 0x80000000u) ? (k & 0x7fffffffu) : ~k;
    float v;
    memcpy(&v, &u, sizeof v);
    return v;
}

/* ---------------------------------------------------------------- one tree */

/* A growable tree under construction; owns node and cnt. */
typedef struct tbuild {
    rf_node *node;
    uint32_t *cnt;
    size_t n, cap;
} tbuild;

/* An in-bag sample: row index and (draws << 1 | class). */
typedef struct samp {
    uint32_t i;
    uint32_t wc;
} samp;

typedef struct tnode_task {
    uint32_t start, end;   /* range in the sample array */
    int32_t id;            /* node id in the tree */
    int32_t depth;
    uint32_t c0, c1;       /* weighted class counts */
} tnode_task;

/* Per-thread scratch space. */
typedef struct workspace {
    samp *s;               /* in-bag samples, partitioned in place */
    uint64_t *keys, *tmp;  /* sort buffers */
    uint32_t *draws;
    tnode_task *stack;
    size_t stack_cap;
    int *feat_order;
    uint32_t hist[2 * RF_MAX_BINS];
    uint8_t *inbag;        /* n flags, for out-of-bag rows */
    uint8_t *lbin;         /* F x m: bins of the in-bag rows, when gathered */
    uint32_t *gidx;        /* local row -> training row, when gathered */
    int local;             /* s[].i are local indices into lbin */
    const uint8_t *bin;    /* the bins this tree reads: lbin or the training set's */
    size_t bin_n;          /* their column length */
} workspace;

/* The training row of sample index i. */
static inline size_t rf_ws_row(const workspace *ws, uint32_t i) { return ws->local ? ws->gidx[i] : i; }

/* For n training rows, m draws per tree and F features; 0 or -1. */
int rf_workspace_init(workspace *ws, size_t n, size_t m, int F, int bootstrap);
void rf_workspace_free(workspace *ws);

/* Grows tree t (RNG stream (o->seed, t)) on the training set.  On return
 * ws->s[0..*n_inbag) holds its in-bag rows (local indices when ws->local,
 * mapped back through ws->gidx).  0 or ODY_ENOMEM. */
int rf_grow_tree(const rf_opt *o, const trainset *ts, int mtry, int t, workspace *ws, tbuild *tb, uint32_t *n_inbag);

#endif
