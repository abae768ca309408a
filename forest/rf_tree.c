/* rf_tree.c — growing one CART tree (see rf.h for the split-finding design):
 * its own RNG stream, the in-bag sample partitioned in place (ranger's
 * layout), histogram splits at large nodes and exact ones at small. */
#include <stdlib.h>
#include <string.h>

#include "rf_grow.h"

/* Nodes with at most this many distinct in-bag samples sort their values
 * instead of building histograms: below it a sort is cheaper than scanning
 * 256 bins per candidate feature. */
#define RF_SMALL_NODE 48

static int32_t tbuild_add(tbuild *tb)
{
    if (tb->n == tb->cap) {
        size_t cap = tb->cap ? 2 * tb->cap : 1024;
        rf_node *nn = realloc(tb->node, cap * sizeof *nn);
        if (!nn) return -1;
        tb->node = nn;
        uint32_t *nc = realloc(tb->cnt, 2 * cap * sizeof *nc);
        if (!nc) return -1;
        tb->cnt = nc;
        tb->cap = cap;
    }
    tb->node[tb->n].feat = -1;
    tb->node[tb->n].left = -1;
    tb->node[tb->n].thr = 0;
    return (int32_t)tb->n++;
}

typedef struct split {
    double score;
    int feat;
    int bin;               /* histogram split: bin <= this goes left; -1: exact */
    float lo, hi;          /* exact split: the largest value going left, the smallest going right */
    uint32_t l0, l1;
} split;

/* Gini proxy to maximise: sum over children of (c0^2 + c1^2) / n. */
static inline double gini_proxy(double l0, double l1, double r0, double r1)
{
    return (l0 * l0 + l1 * l1) / (l0 + l1) + (r0 * r0 + r1 * r1) / (r0 + r1);
}

/* Keeps the split (l0, l1 weighted class counts on the left of c0, c1) when
 * it beats best and both sides hold msl draws; 1 when kept. */
static inline int consider(split *best, uint32_t l0, uint32_t l1, uint32_t c0, uint32_t c1, uint32_t msl)
{
    uint32_t r0 = c0 - l0, r1 = c1 - l1;
    if (l0 + l1 < msl || r0 + r1 < msl) return 0;
    double sc = gini_proxy(l0, l1, r0, r1);
    if (!(sc > best->score)) return 0;
    best->score = sc;
    best->l0 = l0;
    best->l1 = l1;
    return 1;
}

/* Exact split on sorted values.  Returns 1 if the feature is constant here. */
static int split_exact(const trainset *ts, int f, const samp *s, uint32_t n, uint32_t c0, uint32_t c1, uint32_t msl,
                       workspace *ws, split *best)
{
    uint64_t *k = ws->keys;
    for (uint32_t m = 0; m < n; m++)
        k[m] = (uint64_t)rf_float_key(rf_ws_value(ts, ws, s[m].i, f)) << 32 | s[m].wc;
    if (n > 4096) rf_radix_u64(k, ws->tmp, n, 32, 64);
    else rf_sort_u64(k, n);
    if ((k[0] >> 32) == (k[n - 1] >> 32)) return 1;
    uint32_t l0 = 0, l1 = 0;
    for (uint32_t m = 0; m + 1 < n; m++) {
        uint32_t wc = (uint32_t)k[m];
        if (wc & 1) l1 += wc >> 1;
        else l0 += wc >> 1;
        if ((k[m] >> 32) == (k[m + 1] >> 32)) continue;
        if (consider(best, l0, l1, c0, c1, msl)) {
            best->feat = f;
            best->bin = -1;
            best->lo = rf_key_float((uint32_t)(k[m] >> 32));
            best->hi = rf_key_float((uint32_t)(k[m + 1] >> 32));
        }
    }
    return 0;
}

/* Histogram split over quantile bins.  Returns 1 if constant, 2 if all
 * samples share one bin but differ (caller falls back to exact). */
static int split_hist(const trainset *ts, int f, const samp *s, uint32_t n, uint32_t c0, uint32_t c1, uint32_t msl,
                      workspace *ws, split *best)
{
    const uint8_t *bn = ws->bin + (size_t)f * ws->bin_n;
    int nb = ts->n_bins[f];
    uint32_t *h = ws->hist;
    memset(h, 0, 2 * (size_t)nb * sizeof *h);
    for (uint32_t m = 0; m < n; m++) h[2 * bn[s[m].i] + (s[m].wc & 1)] += s[m].wc >> 1;
    int first = -1, last = -1;
    for (int b = 0; b < nb; b++)
        if (h[2 * b] | h[2 * b + 1]) { if (first < 0) first = b; last = b; }
    if (first == last) {  /* one bin: constant only if the bin holds a single value (edges from a sample: unknown) */
        size_t at = (size_t)f * RF_MAX_BINS + (size_t)first;
        return !ts->sampled && ts->blo[at] == ts->bhi[at] ? 1 : 2;
    }
    uint32_t l0 = 0, l1 = 0;
    for (int b = first; b < last; b++) {
        l0 += h[2 * b];
        l1 += h[2 * b + 1];
        if (!(h[2 * b] | h[2 * b + 1])) continue;  /* same partition as before */
        if (consider(best, l0, l1, c0, c1, msl)) {
            best->feat = f;
            best->bin = b;
        }
    }
    return 0;
}

static int push_task(workspace *ws, size_t *top, tnode_task t)
{
    if (*top == ws->stack_cap) {
        size_t cap = ws->stack_cap ? 2 * ws->stack_cap : 256;
        tnode_task *st = realloc(ws->stack, cap * sizeof *st);
        if (!st) return -1;
        ws->stack = st;
        ws->stack_cap = cap;
    }
    ws->stack[(*top)++] = t;
    return 0;
}

/* Draws the in-bag sample into ws->s: sorted row indices with their
 * multiplicities (bootstrap), a subsample without replacement, or all rows. */
static uint32_t draw_sample(const rf_opt *o, ody_rng *rng, const trainset *ts, workspace *ws)
{
    size_t n = ts->n;
    uint32_t m = (uint32_t)(o->max_samples ? o->max_samples : n), ns = 0;
    uint64_t *d = ws->keys;
    if (o->bootstrap) {
        for (uint32_t k = 0; k < m; k++) d[k] = ody_rng_below(rng, n);
        rf_radix_u64(d, ws->tmp, m, 0, n > (1u << 24) ? 32 : n > (1u << 16) ? 24 : n > 256 ? 16 : 8);
        for (uint32_t k = 0; k < m;) {
            uint32_t i = (uint32_t)d[k], c = 0;
            while (k < m && d[k] == i) { k++; c++; }
            ws->s[ns++] = (samp){i, c << 1 | (uint32_t)rf_trainset_label(ts, i)};
        }
    } else if (m < n) {
        /* partial Fisher-Yates on 0..n-1 */
        uint32_t *p = ws->draws;
        for (size_t i = 0; i < n; i++) p[i] = (uint32_t)i;
        for (uint32_t k = 0; k < m; k++) {
            size_t j = k + ody_rng_below(rng, n - k);
            uint32_t tmp = p[k]; p[k] = p[j]; p[j] = tmp;
        }
        for (uint32_t k = 0; k < m; k++) d[k] = p[k];
        rf_radix_u64(d, ws->tmp, m, 0, 32);
        for (uint32_t k = 0; k < m; k++)
            ws->s[ns++] = (samp){(uint32_t)d[k], 1u << 1 | (uint32_t)rf_trainset_label(ts, d[k])};
    } else {
        for (size_t i = 0; i < n; i++) ws->s[ns++] = (samp){(uint32_t)i, 1u << 1 | (uint32_t)rf_trainset_label(ts, i)};
    }
    return ns;
}

/* A small sample of a large table: copy its bins into compact arrays so
 * that the histograms touch cache-resident memory instead of missing the
 * cache on each row of F columns of n.  Exact splits, at small nodes, read
 * the values themselves.  By parts the rows' bins and values are fetched
 * already (ws->pbin, ws->pval), in the same order. */
static void gather_local(const trainset *ts, uint32_t ns, workspace *ws)
{
    size_t n = ts->n;
    ws->local = ws->pbin || (ws->lbin && (size_t)ns * 4 < n);
    ws->bin = ts->bin;
    ws->bin_n = n;
    if (!ws->local) return;
    for (int f = 0; f < ts->F && !ws->pbin; f++) {
        const uint8_t *bn = ts->bin + (size_t)f * n;
        uint8_t *lb = ws->lbin + (size_t)f * ns;
        for (uint32_t k = 0; k < ns; k++) lb[k] = bn[ws->s[k].i];
    }
    for (uint32_t k = 0; k < ns; k++) {
        ws->gidx[k] = ws->s[k].i;
        ws->s[k].i = k;
    }
    ws->bin = ws->pbin ? ws->pbin : ws->lbin;
    ws->bin_n = ns;
}

/* The best split of a node over mtry candidate features that vary in it
 * (drawn from rng without replacement, as scikit-learn does); best->feat
 * stays -1 when none is valid. */
static void best_split(const trainset *ts, const tnode_task *nt, int mtry, uint32_t msl, ody_rng *rng,
                       workspace *ws, split *best)
{
    int F = ts->F, *order = ws->feat_order, found = 0;
    samp *s = ws->s + nt->start;
    uint32_t nn = nt->end - nt->start;
    *best = (split){-1.0, -1, -1, 0, 0, 0, 0};
    for (int f = 0; f < F; f++) order[f] = f;
    for (int k = 0; k < F && found < mtry; k++) {
        int j = k + (int)ody_rng_below(rng, (unsigned long long)(F - k));
        int f = order[j];
        order[j] = order[k];
        order[k] = f;
        int c;
        if (nn <= RF_SMALL_NODE) {
            c = split_exact(ts, f, s, nn, nt->c0, nt->c1, msl, ws, best);
        } else {
            c = split_hist(ts, f, s, nn, nt->c0, nt->c1, msl, ws, best);
            if (c == 2) c = split_exact(ts, f, s, nn, nt->c0, nt->c1, msl, ws, best);
        }
        if (!c) found++;
    }
}

/* Splits node nt: partitions its samples in place, adds both children and
 * queues them.  A histogram split's threshold lies between its bin's
 * largest value and the next bin's smallest; an exact split's between the
 * node's two values either side. */
static int split_node(const trainset *ts, const tnode_task *nt, const split *best, workspace *ws, tbuild *tb,
                      size_t *top)
{
    samp *s = ws->s + nt->start;
    int f = best->feat;
    uint32_t a = 0, b = nt->end - nt->start;
    float thr;
    if (best->bin >= 0) {
        size_t at = (size_t)f * RF_MAX_BINS + (size_t)best->bin;
        thr = rf_midpoint(ts->bhi[at], ts->blo[at + 1]);
        const uint8_t *bn = ws->bin + (size_t)f * ws->bin_n;
        uint8_t lim = (uint8_t)best->bin;
        while (a < b) {
            if (bn[s[a].i] <= lim) a++;
            else { samp tmp = s[a]; s[a] = s[--b]; s[b] = tmp; }
        }
    } else {
        thr = rf_midpoint(best->lo, best->hi);
        while (a < b) {
            if (rf_ws_value(ts, ws, s[a].i, f) <= best->lo) a++;
            else { samp tmp = s[a]; s[a] = s[--b]; s[b] = tmp; }
        }
    }
    int32_t left = tbuild_add(tb), right = tbuild_add(tb);
    if (left < 0 || right < 0) return ODY_ENOMEM;
    rf_node *nd = &tb->node[nt->id];
    nd->feat = f;
    nd->left = left;
    nd->thr = thr;
    tnode_task L = {nt->start, nt->start + a, left, nt->depth + 1, best->l0, best->l1};
    tnode_task R = {nt->start + a, nt->end, right, nt->depth + 1, nt->c0 - best->l0, nt->c1 - best->l1};
    /* right first so the left subtree is built next (depth-first) */
    if (push_task(ws, top, R) || push_task(ws, top, L)) return ODY_ENOMEM;
    return 0;
}

int rf_grow_tree(const rf_opt *o, const trainset *ts, int mtry, int t, workspace *ws, tbuild *tb, uint32_t *n_inbag)
{
    ody_rng rng;
    ody_rng_stream(&rng, o->seed, (unsigned long long)t);
    tb->n = 0;
    uint32_t ns = draw_sample(o, &rng, ts, ws), c0 = 0, c1 = 0;
    *n_inbag = ns;
    gather_local(ts, ns, ws);
    for (uint32_t k = 0; k < ns; k++) {
        if (ws->s[k].wc & 1) c1 += ws->s[k].wc >> 1;
        else c0 += ws->s[k].wc >> 1;
    }
    size_t top = 0;
    int32_t root = tbuild_add(tb);
    if (root < 0 || push_task(ws, &top, (tnode_task){0, ns, root, 0, c0, c1})) return ODY_ENOMEM;
    uint32_t msl = (uint32_t)o->min_samples_leaf;
    while (top > 0) {
        tnode_task nt = ws->stack[--top];
        tb->cnt[2 * nt.id] = nt.c0;
        tb->cnt[2 * nt.id + 1] = nt.c1;
        if (nt.c0 == 0 || nt.c1 == 0 || (o->max_depth && nt.depth >= o->max_depth) || nt.c0 + nt.c1 < 2 * msl ||
            nt.end - nt.start < 2)
            continue;  /* leaf */
        split best;
        best_split(ts, &nt, mtry, msl, &rng, ws, &best);
        if (best.feat < 0) continue;  /* no valid split: leaf */
        int rc = split_node(ts, &nt, &best, ws, tb, &top);
        if (rc) return rc;
    }
    return 0;
}

uint32_t rf_tree_draw(const rf_opt *o, const trainset *ts, int t, workspace *ws)
{
    ody_rng rng;
    ody_rng_stream(&rng, o->seed, (unsigned long long)t);
    return draw_sample(o, &rng, ts, ws);
}

/* ================================================================ workspace */

void rf_workspace_free(workspace *ws)
{
    free(ws->s);
    free(ws->keys);
    free(ws->tmp);
    free(ws->draws);
    free(ws->stack);
    free(ws->feat_order);
    free(ws->inbag);
    free(ws->lbin);
    free(ws->gidx);
    memset(ws, 0, sizeof *ws);
}

int rf_workspace_init(workspace *ws, size_t n, size_t m, int F, int bootstrap, int parts)
{
    memset(ws, 0, sizeof *ws);
    size_t cap = parts || m > n ? m : n;
    ws->s = malloc(cap * sizeof *ws->s);
    ws->keys = malloc(cap * sizeof *ws->keys);
    ws->tmp = malloc(cap * sizeof *ws->tmp);
    ws->draws = bootstrap ? malloc(1) : malloc(n * sizeof *ws->draws);
    ws->feat_order = malloc((size_t)F * sizeof *ws->feat_order);
    ws->inbag = parts ? malloc(1) : calloc(n, 1);
    if (m * 4 < n) {  /* subsampled trees gather their rows (gather_local; by parts, their indices) */
        ws->lbin = parts ? malloc(1) : malloc(m * (size_t)F);
        ws->gidx = malloc(m * sizeof *ws->gidx);
        if (!ws->lbin || !ws->gidx) { rf_workspace_free(ws); return -1; }
    }
    if (!ws->s || !ws->keys || !ws->tmp || !ws->draws || !ws->feat_order || !ws->inbag) {
        rf_workspace_free(ws);
        return -1;
    }
    return 0;
}
