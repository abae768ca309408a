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
#define RF_BIN_SAMPLE (1u << 21)          /* rf_opt.bin_sample's default */
#define RF_OOB_CHUNK 4096                  /* rows walked down a tree at a time for their votes */
#define RF_OOB_SCALE 1099511627776.0       /* 2^40: fixed-point votes make the sums order-free */

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
/* The same for a block of the features: X is n x F of features f0 .. f0 + F - 1
 * of a wider table, and feature f of the block draws as feature f0 + f of
 * the table does (a process that holds some whole columns). */
int rf_synthgen_block(synthgen *g, rf_synth mode, const float *X, size_t n, int f0, int F, uint64_t seed);
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
    const float *X;        /* n_x rows of features [f0, f1), xs apart */
    size_t n_x;
    synthgen syn;          /* draws features [f0, f1) */
    uint8_t *y;            /* n labels; NULL: real rows 0, synthetic 1 */
    uint8_t *bin;          /* (f1 - f0) x n quantile bin of each row */
    int *n_bins;           /* per feature, all F */
    float *blo, *bhi;      /* F x RF_MAX_BINS: smallest and largest value in each bin */
    int f0, f1;            /* the features whose values and bins this process holds: all of them, or
                              with parts its block (ody_comm_part of F), their whole columns */
    size_t xs;             /* X's row stride */
    float *xown;           /* with parts: X, owned (the columns sent by every process) */
    int parts;             /* the trees read their rows' bins and values from ws->pbin/pval (rf_parts.c) */
    size_t sampled;        /* 0, or the rows (fewer than n) the bin edges come from: blo/bhi are then a
                              sample's, and a bin may hold other values */
} trainset;

/* With comm, each process codes a block of the features and they share
 * the codes: every process ends with the whole training set. */
int rf_trainset_build(trainset *ts, const rf_data *d, const rf_opt *o, ody_err *err);
void rf_trainset_free(trainset *ts);

/* Row i's value of feature f, one of [f0, f1). */
static inline float rf_trainset_value(const trainset *ts, size_t i, int f)
{
    if (i < ts->n_x) return ts->X[i * ts->xs + (size_t)(f - ts->f0)];
    return rf_synth_value(&ts->syn, i - ts->n_x, f - ts->f0);
}

static inline int rf_trainset_label(const trainset *ts, size_t i) { return ts->y ? ts->y[i] : i >= ts->n_x; }

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

/* Midpoint between the values either side of a split, kept strictly below
 * the right one: a histogram split's threshold between bin b's largest
 * value and bin b + 1's smallest, and the edge of bin b when the bins come
 * from a sample (a value goes to the first bin whose threshold it does not
 * pass). */
static inline float rf_midpoint(float lo, float hi)
{
    float mid = lo + (hi - lo) * 0.5f;
    return !(mid < hi) || !(mid >= lo) ? lo : mid;
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
    const uint8_t *pbin;   /* with parts: the bins and values of the tree's distinct in-bag rows, */
    const float *pval;     /* F x ns each, in row order (fetched from the processes that code them) */
} workspace;

/* The training row of sample index i. */
static inline size_t rf_ws_row(const workspace *ws, uint32_t i) { return ws->local ? ws->gidx[i] : i; }

/* Sample index i's value of feature f. */
static inline float rf_ws_value(const trainset *ts, const workspace *ws, uint32_t i, int f)
{
    if (ws->pval) return ws->pval[(size_t)f * ws->bin_n + i];
    return rf_trainset_value(ts, rf_ws_row(ws, i), f);
}

/* For n training rows, m draws per tree and F features; 0 or -1.  With
 * parts the workspace holds m rows, not n (no out-of-bag flags: see
 * rf_parts.c). */
int rf_workspace_init(workspace *ws, size_t n, size_t m, int F, int bootstrap, int parts);

/* Tree t's in-bag sample (RNG stream (o->seed, t), its first draws) into
 * ws->s, sorted by row with multiplicities; its length.  rf_grow_tree draws
 * the same first. */
uint32_t rf_tree_draw(const rf_opt *o, const trainset *ts, int t, workspace *ws);
void rf_workspace_free(workspace *ws);

/* Grows tree t (RNG stream (o->seed, t)) on the training set.  On return
 * ws->s[0..*n_inbag) holds its in-bag rows (local indices when ws->local,
 * mapped back through ws->gidx).  0 or ODY_ENOMEM. */
int rf_grow_tree(const rf_opt *o, const trainset *ts, int mtry, int t, workspace *ws, tbuild *tb, uint32_t *n_inbag);

/* Adds one tree's out-of-bag votes (nodes nd, class counts cnt: 2 a node)
 * for the n rows X (F wide) whose inbag flag is 0, in fixed point
 * (RF_OOB_SCALE) so that the sums do not depend on the order trees and
 * threads add them; leaf is RF_OOB_CHUNK ints of scratch. */
void rf_oob_add(const rf_node *nd, const uint32_t *cnt, int F, const float *X, size_t n, const uint8_t *inbag,
                int32_t *leaf, int64_t *sum, uint32_t *votes);

/* ---------------------------------------------------------------- by parts */

/* Grows this process's trees [t0, t1) (ody_comm_part of o->n_trees) into
 * trees[t0 .. t1), a batch at a time: every process draws every tree's
 * sample, puts its features' bins and values of those rows together, and
 * the tree's process receives them (one gather a tree).  Every process
 * calls it together.  0, ODY_ENOMEM or ODY_EIO, agreed on by all. */
int rf_parts_grow(const rf_opt *o, const trainset *ts, int mtry, tbuild *trees, const ody_log *log, ody_err *err);

/* Out-of-bag votes of this process's real rows X (nl rows from lo,
 * row-major, ts->F wide) over every tree of f, each tree's in-bag rows
 * redrawn from its stream: oob_p1[i] as rf_train gives it, and the
 * accuracy over the rows every process voted.  0, ODY_ENOMEM or ODY_EIO. */
int rf_parts_oob(const rf_opt *o, const trainset *ts, const rf_forest *f, const float *X, size_t lo, size_t nl,
                 double *oob_p1, double *accuracy, ody_err *err);

#endif
