/* rf_grow.h — what the forest trainer's files share.  Private to forest/.
 *
 *   rf_rank.c   sorting, and the rank / quantile-bin coding of the training
 *               matrix, built once and shared read-only by every tree
 *   rf_tree.c   growing one tree from its RNG stream into a tbuild
 *   rf_train.c  options, and the forest: trees in parallel, out-of-bag
 *               votes, concatenation in tree order
 */
#ifndef RF_GROW_H
#define RF_GROW_H

#include <stddef.h>
#include <stdint.h>

#include "rf.h"

#define RF_MAX_BINS 256

/* ---------------------------------------------------------------- sorting */

/* LSD radix sort of 64-bit keys on bits [lo_bit, hi_bit) (multiples of 8). */
void rf_radix_u64(uint64_t *a, uint64_t *tmp, size_t n, int lo_bit, int hi_bit);

/* Quicksort (median of three) with insertion sort for short runs. */
void rf_sort_u64(uint64_t *a, size_t n);

/* ---------------------------------------------------------------- rank coding */

/* Column-major rank codes of the training data. */
typedef struct rankdata {
    size_t n;
    int F;
    uint32_t *rank;        /* F x n dense ranks */
    uint8_t *bin;          /* F x n quantile bin of each row */
    uint32_t *bin_last;    /* F x RF_MAX_BINS: last rank in each bin */
    int *n_bins;           /* per feature */
    float **vals;          /* per feature: distinct values in increasing order */
    uint32_t *n_vals;      /* per feature */
} rankdata;

int rf_rank_build(rankdata *rd, const float *X, size_t n, int F, int n_threads, ody_err *err);
void rf_rank_free(rankdata *rd);

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
    uint32_t *lrank;       /* F x m: ranks of the in-bag rows, when gathered */
    uint8_t *lbin;         /* F x m */
    uint32_t *gidx;        /* local row -> training row, when gathered */
    int local;             /* s[].i are local indices into lrank / lbin */
} workspace;

/* For n training rows, m draws per tree and F features; 0 or -1. */
int rf_workspace_init(workspace *ws, size_t n, size_t m, int F, int bootstrap);
void rf_workspace_free(workspace *ws);

/* Grows tree t (RNG stream (o->seed, t)) on the coded data with labels y.
 * On return ws->s[0..*n_inbag) holds its in-bag rows (local indices when
 * ws->local, mapped back through ws->gidx).  0 or ODY_ENOMEM. */
int rf_grow_tree(const rf_opt *o, const rankdata *rd, const uint8_t *y, int mtry, int t, workspace *ws,
                 tbuild *tb, uint32_t *n_inbag);

#endif
