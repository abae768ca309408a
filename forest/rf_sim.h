/* rf_sim.h — what rf_score.c (weirdness) and rf_topk.c (similarity)
 * share.  Private to forest/. */
#ifndef RF_SIM_H
#define RF_SIM_H

#include "rf.h"

/* Leaves of n rows X in tree t. */
static inline void tree_leaves(const rf_forest *f, int t, const float *X, size_t n, int32_t *leaf)
{
    rf_leaves(f->node + f->tree_off[t], f->n_feat, X, n, leaf);
}

/* Row i's features: X holds every row, or this process's from lo. */
static inline const float *ctx_row(const rf_sim_ctx *ctx, size_t lo, size_t i)
{
    return ctx->X + (ctx->own_rows ? i - lo : i) * (size_t)ctx->f->n_feat;
}

#endif
