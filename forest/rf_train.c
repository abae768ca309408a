/* rf_train.c — CART forest training (see rf.h for the split-finding design). */
#include <math.h>
#include <omp.h>
#include <stdlib.h>
#include <string.h>

#include "rf.h"

#define RF_MAX_BINS 256
/* Nodes with at most this many distinct in-bag samples sort exact ranks
 * instead of building histograms: below it a sort is cheaper than scanning
 * 256 bins per candidate feature. */
#define RF_SMALL_NODE 48

/* ================================================================ options */

void rf_opt_init(rf_opt *o)
{
    memset(o, 0, sizeof *o);
    o->n_trees = 500;
    o->max_features = RF_MAXF_SQRT;
    o->min_samples_leaf = 1;
    o->bootstrap = 1;
    o->seed = 1;
}

int rf_mtry(const rf_opt *o, int F)
{
    int m;
    switch (o->max_features) {
    case RF_MAXF_LOG2: m = (int)floor(log2((double)F)); break;
    case RF_MAXF_INT: m = (int)o->max_features_value; break;
    case RF_MAXF_FRAC: m = (int)floor(o->max_features_value * F); break;
    case RF_MAXF_ALL: m = F; break;
    default: m = (int)floor(sqrt((double)F)); break;
    }
    return m < 1 ? 1 : m > F ? F : m;
}

int rf_maxf_parse(const char *s, rf_maxf *kind, double *value)
{
    if (!s) return -1;
    *value = 0;
    if (!strcmp(s, "sqrt")) { *kind = RF_MAXF_SQRT; return 0; }
    if (!strcmp(s, "log2")) { *kind = RF_MAXF_LOG2; return 0; }
    if (!strcmp(s, "all")) { *kind = RF_MAXF_ALL; return 0; }
    char *end;
    double v = strtod(s, &end);
    if (end == s || *end || !(v > 0)) return -1;
    if (strchr(s, '.')) {
        if (v > 1) return -1;
        *kind = RF_MAXF_FRAC;
    } else {
        *kind = RF_MAXF_INT;
    }
    *value = v;
    return 0;
}

int rf_opt_check(const rf_opt *o, size_t n, int F, ody_err *err)
{
    if (o->n_trees < 1 || o->n_trees > 100000)
        return ody_fail(err, ODY_EINPUT, "forest.n_trees = %d is out of range — use 1 to 100000", o->n_trees);
    if (F < 1) return ody_fail(err, ODY_EINPUT, "the forest needs at least one feature");
    if (o->max_features == RF_MAXF_INT && (o->max_features_value < 1 || o->max_features_value > F))
        return ody_fail(err, ODY_EINPUT, "forest.max_features = %g is out of range — use 1 to %d "
                        "(the number of features), or sqrt, log2, all, or a fraction",
                        o->max_features_value, F);
    if (o->max_features == RF_MAXF_FRAC && !(o->max_features_value > 0 && o->max_features_value <= 1))
        return ody_fail(err, ODY_EINPUT, "forest.max_features fraction %g must be in (0, 1]",
                        o->max_features_value);
    if (o->min_samples_leaf < 1)
        return ody_fail(err, ODY_EINPUT, "forest.min_samples_leaf = %d must be at least 1", o->min_samples_leaf);
    if (o->max_depth < 0 || o->max_depth > 10000)
        return ody_fail(err, ODY_EINPUT, "forest.max_depth = %d is out of range — use 0 (unlimited) to 10000",
                        o->max_depth);
    if (n < 2) return ody_fail(err, ODY_EINPUT, "the forest needs at least 2 training rows, got %zu", n);
    if (n > 0x7fffffffu)
        return ody_fail(err, ODY_EINPUT, "%zu training rows is more than one forest takes (2^31) — "
                        "set forest.max_samples and split the catalog", n);
    if (o->max_samples > 0x7fffffffu || (!o->bootstrap && o->max_samples > n))
        return ody_fail(err, ODY_EINPUT, "forest.max_samples = %zu is out of range — use 0 (all rows) "
                        "or at most %zu%s", o->max_samples, o->bootstrap ? (size_t)0x7fffffff : n,
                        o->bootstrap ? "" : " without bootstrap");
    if (o->max_samples == 1)
        return ody_fail(err, ODY_EINPUT, "forest.max_samples = 1 cannot grow a tree — use 0 or at least 2");
    if (o->n_threads < 0)
        return ody_fail(err, ODY_EINPUT, "threads = %d must be 0 (automatic) or positive", o->n_threads);
    return 0;
}

void rf_destroy(rf_forest *f)
{
    if (!f) return;
    free(f->tree_off);
    free(f->node);
    free(f->cnt);
    free(f);
}

/* ================================================================ sorting */

/* LSD radix sort of 64-bit keys on their upper `bits` bits (multiple of 8). */
static void radix_u64(uint64_t *a, uint64_t *tmp, size_t n, int lo_bit, int hi_bit)
{
    size_t cnt[256];
    for (int shift = lo_bit; shift < hi_bit; shift += 8) {
        memset(cnt, 0, sizeof cnt);
        for (size_t i = 0; i < n; i++) cnt[(a[i] >> shift) & 255]++;
        size_t sum = 0;
        for (int b = 0; b < 256; b++) { size_t c = cnt[b]; cnt[b] = sum; sum += c; }
        for (size_t i = 0; i < n; i++) tmp[cnt[(a[i] >> shift) & 255]++] = a[i];
        memcpy(a, tmp, n * sizeof *a);
    }
}

static void insertion_u64(uint64_t *a, size_t n)
{
    for (size_t i = 1; i < n; i++) {
        uint64_t v = a[i];
        size_t j = i;
        while (j > 0 && a[j - 1] > v) { a[j] = a[j - 1]; j--; }
        a[j] = v;
    }
}

/* Quicksort (median of three) with insertion sort for short runs. */
static void sort_u64(uint64_t *a, size_t n)
{
    while (n > 24) {
        uint64_t x = a[0], y = a[n / 2], z = a[n - 1];
        uint64_t p = x < y ? (y < z ? y : (x < z ? z : x)) : (x < z ? x : (y < z ? z : y));
        size_t i = 0, j = n - 1;
        for (;;) {
            while (a[i] < p) i++;
            while (a[j] > p) j--;
            if (i >= j) break;
            uint64_t t = a[i]; a[i] = a[j]; a[j] = t;
            i++; j--;
        }
        /* recurse on the smaller half to bound the stack */
        size_t nl = j + 1;
        if (nl < n - nl) { sort_u64(a, nl); a += nl; n -= nl; }
        else { sort_u64(a + nl, n - nl); n = nl; }
    }
    insertion_u64(a, n);
}

/* Maps a float to a key whose unsigned order is the float order; -0 and +0
 * share a key since they compare equal. */
static inline uint32_t float_key(float v)
{
    if (v == 0.0f) v = 0.0f;
    uint32_t u;
    memcpy(&u, &v, sizeof u);
    return (u & 0x80000000u) ? ~u : (u | 0x80000000u);
}

/* ================================================================ rank coding */

/* Column-major rank codes of the training data, shared read-only by all
 * tree builders. */
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

static void rankdata_free(rankdata *rd)
{
    if (rd->vals)
        for (int f = 0; f < rd->F; f++) free(rd->vals[f]);
    free(rd->vals);
    free(rd->rank);
    free(rd->bin);
    free(rd->bin_last);
    free(rd->n_bins);
    free(rd->n_vals);
    memset(rd, 0, sizeof *rd);
}

static int rankdata_build(rankdata *rd, const float *X, size_t n, int F, int nthr, ody_err *err)
{
    memset(rd, 0, sizeof *rd);
    rd->n = n;
    rd->F = F;
    rd->rank = malloc((size_t)F * n * sizeof *rd->rank);
    rd->bin = malloc((size_t)F * n);
    rd->bin_last = calloc((size_t)F * RF_MAX_BINS, sizeof *rd->bin_last);
    rd->n_bins = calloc((size_t)F, sizeof *rd->n_bins);
    rd->vals = calloc((size_t)F, sizeof *rd->vals);
    rd->n_vals = calloc((size_t)F, sizeof *rd->n_vals);
    if (!rd->rank || !rd->bin || !rd->bin_last || !rd->n_bins || !rd->vals || !rd->n_vals) {
        rankdata_free(rd);
        return ody_fail(err, ODY_ENOMEM, "forest: out of memory coding %zu x %d features", n, F);
    }
    int fail = 0;
#pragma omp parallel num_threads(nthr)
    {
        uint64_t *key = malloc(n * sizeof *key), *tmp = malloc(n * sizeof *tmp);
        if (!key || !tmp) {
#pragma omp atomic write
            fail = 1;
        }
#pragma omp for schedule(dynamic, 1)
        for (int f = 0; f < F; f++) {
            if (!key || !tmp) continue;
            for (size_t i = 0; i < n; i++)
                key[i] = (uint64_t)float_key(X[i * (size_t)F + f]) << 32 | (uint64_t)i;
            radix_u64(key, tmp, n, 32, 64);
            uint32_t *rk = rd->rank + (size_t)f * n;
            float *vals = malloc(n * sizeof *vals);
            if (!vals) {
#pragma omp atomic write
                fail = 1;
                continue;
            }
            uint32_t nv = 0;
            uint32_t prev = 0;
            for (size_t k = 0; k < n; k++) {
                uint32_t kk = (uint32_t)(key[k] >> 32);
                size_t i = (size_t)(key[k] & 0xffffffffu);
                if (k == 0 || kk != prev) {
                    float v = X[i * (size_t)F + f];
                    vals[nv++] = v == 0.0f ? 0.0f : v;
                    prev = kk;
                }
                rk[i] = nv - 1;
            }
            float *shrunk = realloc(vals, (nv ? nv : 1) * sizeof *vals);
            rd->vals[f] = shrunk ? shrunk : vals;
            rd->n_vals[f] = nv;
            /* Quantile bins: close a bin once it holds its share of rows,
             * never between two equal values. */
            uint32_t *last = rd->bin_last + (size_t)f * RF_MAX_BINS;
            uint8_t *bn = rd->bin + (size_t)f * n;
            if (nv <= RF_MAX_BINS) {
                for (uint32_t r = 0; r < nv; r++) last[r] = r;
                rd->n_bins[f] = (int)nv;
                for (size_t i = 0; i < n; i++) bn[i] = (uint8_t)rk[i];
            } else {
                int b = 0;
                size_t k = 0;
                uint8_t *rank2bin = malloc(nv);
                if (!rank2bin) {
#pragma omp atomic write
                    fail = 1;
                    continue;
                }
                while (k < n) {
                    uint32_t r = rk[key[k] & 0xffffffffu];
                    size_t target = (size_t)((double)n * (b + 1) / RF_MAX_BINS);
                    /* take all rows of rank r */
                    while (k < n && rk[key[k] & 0xffffffffu] == r) k++;
                    rank2bin[r] = (uint8_t)b;
                    if ((k >= target || k == n) && b < RF_MAX_BINS - 1) {
                        last[b] = r;
                        b++;
                    } else if (k == n) {
                        last[b] = r;
                        b++;
                    }
                }
                /* ranks assigned after the last close went to bin b-1's range */
                rd->n_bins[f] = b;
                if (last[b - 1] != nv - 1) last[b - 1] = nv - 1;
                for (size_t i = 0; i < n; i++) bn[i] = rank2bin[rk[i]];
                free(rank2bin);
            }
        }
        free(key);
        free(tmp);
    }
    if (fail) {
        rankdata_free(rd);
        return ody_fail(err, ODY_ENOMEM, "forest: out of memory coding %zu x %d features", n, F);
    }
    return 0;
}

/* ================================================================ one tree */

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

/* A growable tree under construction. */
typedef struct tbuild {
    rf_node *node;
    uint32_t *cnt;
    size_t n, cap;
} tbuild;

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

typedef struct split {
    double score;
    int feat;
    uint32_t rank;         /* go left when rank <= this */
    uint32_t l0, l1;
} split;

/* Gini proxy to maximise: sum over children of (c0^2 + c1^2) / n. */
static inline double gini_proxy(double l0, double l1, double r0, double r1)
{
    return (l0 * l0 + l1 * l1) / (l0 + l1) + (r0 * r0 + r1 * r1) / (r0 + r1);
}

/* Exact split on sorted ranks.  Returns 1 if the feature is constant here. */
static int split_exact(const rankdata *rd, int f, const samp *s, uint32_t n, uint32_t c0,
                       uint32_t c1, uint32_t msl, workspace *ws, split *best)
{
    const uint32_t *rk = rd->rank + (size_t)f * rd->n;
    uint64_t *k = ws->keys;
    for (uint32_t m = 0; m < n; m++) k[m] = (uint64_t)rk[s[m].i] << 32 | s[m].wc;
    if (n > 4096) radix_u64(k, ws->tmp, n, 32, 64);
    else sort_u64(k, n);
    if ((k[0] >> 32) == (k[n - 1] >> 32)) return 1;
    uint32_t l0 = 0, l1 = 0;
    for (uint32_t m = 0; m + 1 < n; m++) {
        uint32_t wc = (uint32_t)k[m];
        if (wc & 1) l1 += wc >> 1;
        else l0 += wc >> 1;
        if ((k[m] >> 32) == (k[m + 1] >> 32)) continue;
        uint32_t r0 = c0 - l0, r1 = c1 - l1;
        if (l0 + l1 < msl || r0 + r1 < msl) continue;
        double sc = gini_proxy(l0, l1, r0, r1);
        if (sc > best->score) {
            best->score = sc;
            best->feat = f;
            best->rank = (uint32_t)(k[m] >> 32);
            best->l0 = l0;
            best->l1 = l1;
        }
    }
    return 0;
}

/* Histogram split over quantile bins.  Returns 1 if constant, 2 if all
 * samples share one bin but differ (caller falls back to exact). */
static int split_hist(const rankdata *rd, int f, const samp *s, uint32_t n, uint32_t c0,
                      uint32_t c1, uint32_t msl, workspace *ws, split *best)
{
    const uint8_t *bn = rd->bin + (size_t)f * rd->n;
    int nb = rd->n_bins[f];
    uint32_t *h = ws->hist;
    memset(h, 0, 2 * (size_t)nb * sizeof *h);
    for (uint32_t m = 0; m < n; m++) h[2 * bn[s[m].i] + (s[m].wc & 1)] += s[m].wc >> 1;
    int first = -1, last = -1;
    for (int b = 0; b < nb; b++)
        if (h[2 * b] | h[2 * b + 1]) { if (first < 0) first = b; last = b; }
    if (first == last) {
        /* one bin: constant only if the bin holds a single rank */
        const uint32_t *bl = rd->bin_last + (size_t)f * RF_MAX_BINS;
        uint32_t lo = first ? bl[first - 1] + 1 : 0;
        return bl[first] == lo ? 1 : 2;
    }
    const uint32_t *bl = rd->bin_last + (size_t)f * RF_MAX_BINS;
    uint32_t l0 = 0, l1 = 0;
    for (int b = first; b < last; b++) {
        l0 += h[2 * b];
        l1 += h[2 * b + 1];
        if (!(h[2 * b] | h[2 * b + 1])) continue;  /* same partition as before */
        uint32_t r0 = c0 - l0, r1 = c1 - l1;
        if (l0 + l1 < msl || r0 + r1 < msl) continue;
        double sc = gini_proxy(l0, l1, r0, r1);
        if (sc > best->score) {
            best->score = sc;
            best->feat = f;
            best->rank = bl[b];
            best->l0 = l0;
            best->l1 = l1;
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

/* Builds tree t.  Returns 0 or ODY_ENOMEM. */
static int build_tree(const rf_opt *o, const rankdata *rd, const uint8_t *y, int mtry, int t,
                      workspace *ws, tbuild *tb, uint32_t *n_inbag)
{
    ody_rng rng;
    ody_rng_stream(&rng, o->seed, (unsigned long long)t);
    size_t n = rd->n;
    int F = rd->F;
    tb->n = 0;

    /* Draw the in-bag sample: sorted row indices with multiplicities. */
    uint32_t m = (uint32_t)(o->max_samples ? o->max_samples : n);
    uint32_t ns = 0;
    if (o->bootstrap) {
        uint64_t *d = ws->keys;
        for (uint32_t k = 0; k < m; k++) d[k] = ody_rng_below(&rng, n);
        radix_u64(d, ws->tmp, m, 0, n > (1u << 24) ? 32 : n > (1u << 16) ? 24 : n > 256 ? 16 : 8);
        for (uint32_t k = 0; k < m;) {
            uint32_t i = (uint32_t)d[k], c = 0;
            while (k < m && d[k] == i) { k++; c++; }
            ws->s[ns].i = i;
            ws->s[ns].wc = c << 1 | y[i];
            ns++;
        }
    } else if (m < n) {
        /* subsample without replacement: partial Fisher-Yates on 0..n-1 */
        uint32_t *p = ws->draws;
        for (size_t i = 0; i < n; i++) p[i] = (uint32_t)i;
        for (uint32_t k = 0; k < m; k++) {
            size_t j = k + ody_rng_below(&rng, n - k);
            uint32_t tmp = p[k]; p[k] = p[j]; p[j] = tmp;
        }
        uint64_t *d = ws->keys;
        for (uint32_t k = 0; k < m; k++) d[k] = p[k];
        radix_u64(d, ws->tmp, m, 0, 32);
        for (uint32_t k = 0; k < m; k++) {
            ws->s[ns].i = (uint32_t)d[k];
            ws->s[ns].wc = 1u << 1 | y[d[k]];
            ns++;
        }
    } else {
        for (size_t i = 0; i < n; i++) {
            ws->s[ns].i = (uint32_t)i;
            ws->s[ns].wc = 1u << 1 | y[i];
            ns++;
        }
    }
    *n_inbag = ns;
    /* A small sample of a large table: copy its ranks and bins into compact
     * arrays so that every node touches cache-resident memory instead of
     * missing the cache on each row of F columns of n. */
    rankdata local;
    ws->local = ws->lrank && (size_t)ns * 4 < n;
    if (ws->local) {
        for (int f = 0; f < F; f++) {
            const uint32_t *rk = rd->rank + (size_t)f * n;
            const uint8_t *bn = rd->bin + (size_t)f * n;
            uint32_t *lr = ws->lrank + (size_t)f * ns;
            uint8_t *lb = ws->lbin + (size_t)f * ns;
            for (uint32_t k = 0; k < ns; k++) {
                lr[k] = rk[ws->s[k].i];
                lb[k] = bn[ws->s[k].i];
            }
        }
        for (uint32_t k = 0; k < ns; k++) {
            ws->gidx[k] = ws->s[k].i;
            ws->s[k].i = k;
        }
        local = *rd;
        local.n = ns;
        local.rank = ws->lrank;
        local.bin = ws->lbin;
        rd = &local;
    }
    uint32_t c0 = 0, c1 = 0;
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
        uint32_t nn = nt.end - nt.start;
        if (nt.c0 == 0 || nt.c1 == 0 || (o->max_depth && nt.depth >= o->max_depth) ||
            nt.c0 + nt.c1 < 2 * msl || nn < 2)
            continue;  /* leaf */
        samp *s = ws->s + nt.start;
        split best = {-1.0, -1, 0, 0, 0};
        int *order = ws->feat_order;
        for (int f = 0; f < F; f++) order[f] = f;
        int found = 0;
        for (int k = 0; k < F && found < mtry; k++) {
            int j = k + (int)ody_rng_below(&rng, (unsigned long long)(F - k));
            int f = order[j];
            order[j] = order[k];
            order[k] = f;
            int c;
            if (nn <= RF_SMALL_NODE) {
                c = split_exact(rd, f, s, nn, nt.c0, nt.c1, msl, ws, &best);
            } else {
                c = split_hist(rd, f, s, nn, nt.c0, nt.c1, msl, ws, &best);
                if (c == 2) c = split_exact(rd, f, s, nn, nt.c0, nt.c1, msl, ws, &best);
            }
            if (!c) found++;
        }
        if (best.feat < 0) continue;  /* no valid split: leaf */
        /* Partition in place: rank <= best.rank goes left. */
        const uint32_t *rk = rd->rank + (size_t)best.feat * rd->n;
        uint32_t a = 0, b = nn;
        while (a < b) {
            if (rk[s[a].i] <= best.rank) a++;
            else { samp tmp = s[a]; s[a] = s[--b]; s[b] = tmp; }
        }
        int32_t left = tbuild_add(tb), right = tbuild_add(tb);
        if (left < 0 || right < 0) return ODY_ENOMEM;
        rf_node *nd = &tb->node[nt.id];
        nd->feat = best.feat;
        nd->left = left;
        /* midpoint between this rank's value and the next one's */
        const float *v = rd->vals[best.feat];
        float lo = v[best.rank], hi = v[best.rank + 1];
        float mid = lo + (hi - lo) * 0.5f;
        if (!(mid < hi) || !(mid >= lo)) mid = lo;
        nd->thr = mid;
        tnode_task L = {nt.start, nt.start + a, left, nt.depth + 1, best.l0, best.l1};
        tnode_task R = {nt.start + a, nt.end, right, nt.depth + 1, nt.c0 - best.l0, nt.c1 - best.l1};
        /* right first so the left subtree is built next (depth-first) */
        if (push_task(ws, &top, R) || push_task(ws, &top, L)) return ODY_ENOMEM;
    }
    return 0;
}

/* ================================================================ forest */

static void workspace_free(workspace *ws)
{
    free(ws->s);
    free(ws->keys);
    free(ws->tmp);
    free(ws->draws);
    free(ws->stack);
    free(ws->feat_order);
    free(ws->inbag);
    free(ws->lrank);
    free(ws->lbin);
    free(ws->gidx);
    memset(ws, 0, sizeof *ws);
}

static int workspace_init(workspace *ws, size_t n, size_t m, int F, int bootstrap)
{
    memset(ws, 0, sizeof *ws);
    size_t cap = m > n ? m : n;
    ws->s = malloc(cap * sizeof *ws->s);
    ws->keys = malloc(cap * sizeof *ws->keys);
    ws->tmp = malloc(cap * sizeof *ws->tmp);
    ws->draws = bootstrap ? malloc(1) : malloc(n * sizeof *ws->draws);
    ws->feat_order = malloc((size_t)F * sizeof *ws->feat_order);
    ws->inbag = calloc(n, 1);
    if (m * 4 < n) {  /* subsampled trees gather their rows (see build_tree) */
        ws->lrank = malloc(m * (size_t)F * sizeof *ws->lrank);
        ws->lbin = malloc(m * (size_t)F);
        ws->gidx = malloc(m * sizeof *ws->gidx);
        if (!ws->lrank || !ws->lbin || !ws->gidx) { workspace_free(ws); return -1; }
    }
    if (!ws->s || !ws->keys || !ws->tmp || !ws->draws || !ws->feat_order || !ws->inbag) {
        workspace_free(ws);
        return -1;
    }
    return 0;
}

#define OOB_CHUNK 4096
#define OOB_SCALE 1099511627776.0 /* 2^40: fixed point makes the sums order-free */

int rf_train(const rf_opt *o, const float *X, const uint8_t *y, size_t n, int F,
             double *oob_p1, size_t n_oob, rf_forest **out, const ody_log *log, ody_err *err)
{
    int rc = rf_opt_check(o, n, F, err);
    if (rc) return rc;
    for (size_t i = 0; i < n; i++)
        if (y[i] > 1) return ody_fail(err, ODY_EINPUT, "forest: label %d at row %zu — labels must be 0 or 1", y[i], i);
    if (n_oob > n) n_oob = n;
    double t0 = ody_now();
    rankdata rd;
    if ((rc = rankdata_build(&rd, X, n, F, ody_threads(o->n_threads), err))) return rc;
    ody_logf(log, ODY_LOG_DEBUG, "forest: coded %zu x %d features in %.2f s", n, F, ody_now() - t0);

    int T = o->n_trees, mtry = rf_mtry(o, F);
    size_t m = o->max_samples ? o->max_samples : n;
    tbuild *trees = calloc((size_t)T, sizeof *trees);
    int64_t *oob_sum = oob_p1 ? calloc(n_oob ? n_oob : 1, sizeof *oob_sum) : NULL;
    uint32_t *oob_cnt = oob_p1 ? calloc(n_oob ? n_oob : 1, sizeof *oob_cnt) : NULL;
    rf_forest *f = calloc(1, sizeof *f);
    if (!trees || !f || (oob_p1 && (!oob_sum || !oob_cnt))) {
        rc = ody_fail(err, ODY_ENOMEM, "forest: out of memory");
        goto done;
    }
    int nthr = ody_threads(o->n_threads);
    int fail = 0, done_trees = 0;
    ody_progress prog;
    ody_progress_start(&prog, log, "forest", (size_t)T);
#pragma omp parallel num_threads(nthr)
    {
        workspace ws;
        int32_t *oob_leaf = malloc(OOB_CHUNK * sizeof *oob_leaf);
        int ok = workspace_init(&ws, n, m, F, o->bootstrap) == 0 && oob_leaf;
        if (!ok) {
#pragma omp atomic write
            fail = 1;
        }
#pragma omp for schedule(dynamic, 1)
        for (int t = 0; t < T; t++) {
            int bad;
#pragma omp atomic read
            bad = fail;
            if (!ok || bad) continue;
            uint32_t ns = 0;
            if (build_tree(o, &rd, y, mtry, t, &ws, &trees[t], &ns)) {
#pragma omp atomic write
                fail = 1;
                continue;
            }
            if (oob_p1 && n_oob) {
                /* ws.s[0..ns) still holds this tree's in-bag rows. */
                const tbuild *tb = &trees[t];
                for (uint32_t k = 0; k < ns; k++) ws.inbag[ws.local ? ws.gidx[k] : ws.s[k].i] = 1;
                for (size_t c0 = 0; c0 < n_oob; c0 += OOB_CHUNK) {
                    size_t nc = c0 + OOB_CHUNK < n_oob ? OOB_CHUNK : n_oob - c0;
                    rf_leaves(tb->node, F, X + c0 * (size_t)F, nc, oob_leaf);
                    for (size_t q = 0; q < nc; q++) {
                        size_t i = c0 + q;
                        if (ws.inbag[i]) continue;
                        const uint32_t *cq = tb->cnt + 2 * (size_t)oob_leaf[q];
                        double p = (double)cq[1] / (double)(cq[0] + cq[1]);
                        int64_t v = (int64_t)llround(p * OOB_SCALE);
#pragma omp atomic
                        oob_sum[i] += v;
#pragma omp atomic
                        oob_cnt[i]++;
                    }
                }
                for (uint32_t k = 0; k < ns; k++) ws.inbag[ws.local ? ws.gidx[k] : ws.s[k].i] = 0;
            }
#pragma omp atomic
            done_trees++;
            if (omp_get_thread_num() == 0) {
                int d;
#pragma omp atomic read
                d = done_trees;
                ody_progress_update(&prog, (size_t)d);
            }
        }
        workspace_free(&ws);
        free(oob_leaf);
    }
    ody_progress_end(&prog);
    if (fail) {
        rc = ody_fail(err, ODY_ENOMEM, "forest: out of memory growing %d trees on %zu rows — "
                      "set forest.max_samples to train each tree on a subsample", T, n);
        goto done;
    }
    /* Concatenate trees in index order. */
    size_t total = 0;
    for (int t = 0; t < T; t++) total += trees[t].n;
    f->n_trees = T;
    f->n_feat = F;
    f->opt = *o;
    f->n_train = n;
    f->oob_accuracy = NAN;
    f->tree_off = malloc(((size_t)T + 1) * sizeof *f->tree_off);
    f->node = malloc(total * sizeof *f->node);
    f->cnt = malloc(2 * total * sizeof *f->cnt);
    if (!f->tree_off || !f->node || !f->cnt) {
        rc = ody_fail(err, ODY_ENOMEM, "forest: out of memory storing %zu nodes", total);
        goto done;
    }
    size_t at = 0;
    for (int t = 0; t < T; t++) {
        f->tree_off[t] = at;
        memcpy(f->node + at, trees[t].node, trees[t].n * sizeof *f->node);
        memcpy(f->cnt + 2 * at, trees[t].cnt, 2 * trees[t].n * sizeof *f->cnt);
        at += trees[t].n;
    }
    f->tree_off[T] = at;
    if (oob_p1) {
        size_t right = 0, voted = 0;
        for (size_t i = 0; i < n_oob; i++) {
            if (!oob_cnt[i]) { oob_p1[i] = NAN; continue; }
            oob_p1[i] = (double)oob_sum[i] / OOB_SCALE / oob_cnt[i];
            voted++;
            right += (oob_p1[i] > 0.5) == (y[i] == 1);
        }
        f->oob_accuracy = voted ? (double)right / (double)voted : NAN;
    }
    ody_logf(log, ODY_LOG_INFO, "forest: %d trees, %zu nodes, %.2f s", T, total, ody_now() - t0);
    *out = f;
    f = NULL;
done:
    if (trees)
        for (int t = 0; t < T; t++) { free(trees[t].node); free(trees[t].cnt); }
    free(trees);
    free(oob_sum);
    free(oob_cnt);
    rankdata_free(&rd);
    rf_destroy(f);
    return rc;
}
