/* rf_rank.c — sorting, the synthetic rows drawn one value at a time, and
 * the quantile-bin coding of the training set (see rf.h for why). */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "rf_grow.h"

/* ================================================================ sorting */

void rf_radix_u64(uint64_t *a, uint64_t *tmp, size_t n, int lo_bit, int hi_bit)
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

void rf_sort_u64(uint64_t *a, size_t n)
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
        if (nl < n - nl) { rf_sort_u64(a, nl); a += nl; n -= nl; }
        else { rf_sort_u64(a + nl, n - nl); n = nl; }
    }
    insertion_u64(a, n);
}

/* ================================================================ synthetic rows */

int rf_synthgen_block(synthgen *g, rf_synth mode, const float *X, size_t n, int f0, int F, uint64_t seed)
{
    memset(g, 0, sizeof *g);
    g->mode = mode;
    g->X = X;
    g->n = n;
    g->F = F;
    g->key = malloc((F ? (size_t)F : 1) * sizeof *g->key);
    if (!g->key) return -1;
    for (int f = 0; f < F; f++)
        g->key[f] = ody_draw_key(seed ^ 0x5EEDC0DE5EEDC0DEULL, (unsigned long long)(f0 + f));
    if (mode != RF_SYNTH_UNIFORM || !F) return 0;
    g->lo = malloc((size_t)F * sizeof *g->lo);
    g->hi = malloc((size_t)F * sizeof *g->hi);
    if (!g->lo || !g->hi) { rf_synthgen_free(g); return -1; }
    for (int f = 0; f < F; f++) g->lo[f] = g->hi[f] = X[f];
    for (size_t i = 1; i < n; i++)
        for (int f = 0; f < F; f++) {
            float v = X[i * (size_t)F + (size_t)f];
            if (v < g->lo[f]) g->lo[f] = v;
            if (v > g->hi[f]) g->hi[f] = v;
        }
    return 0;
}

int rf_synthgen_init(synthgen *g, rf_synth mode, const float *X, size_t n, int F, uint64_t seed)
{
    return rf_synthgen_block(g, mode, X, n, 0, F, seed);
}

void rf_synthgen_free(synthgen *g)
{
    free(g->key);
    free(g->lo);
    free(g->hi);
    memset(g, 0, sizeof *g);
}

/* ================================================================ training set */

void rf_trainset_free(trainset *ts)
{
    rf_synthgen_free(&ts->syn);
    free(ts->y);
    free(ts->bin);
    free(ts->n_bins);
    free(ts->blo);
    free(ts->bhi);
    free(ts->xown);
    memset(ts, 0, sizeof *ts);
}

/* Feature fb of X's block: its real column, copied into col, or read in
 * place when col is NULL (X is that one column); its stride in *stride.
 * The copy lets the synthetic rows, which take its values, read it from
 * cache rather than from across every row of X. */
static const float *real_column(const trainset *ts, int fb, float *col, size_t *stride)
{
    *stride = col ? 1 : ts->xs;
    if (!col) return ts->X + fb;
    for (size_t i = 0; i < ts->n_x; i++) col[i] = ts->X[i * ts->xs + (size_t)fb];
    return col;
}

/* Training row i's value of feature fb of the block, its real column at c. */
static inline float row_value(const trainset *ts, const float *c, size_t stride, size_t i, int fb)
{
    if (i < ts->n_x) return c[i * stride];
    if (ts->syn.mode == RF_SYNTH_UNIFORM) return rf_synth_value(&ts->syn, i - ts->n_x, fb);
    return c[rf_synth_src(&ts->syn, i - ts->n_x, fb) * stride];
}

/* Sort keys of feature f's values (value key << 32 | row), sorted. */
static void sorted_keys(const trainset *ts, int f, float *col, uint64_t *key, uint64_t *tmp)
{
    size_t n = ts->n, stride;
    int fb = f - ts->f0;  /* the column in X and syn */
    const float *c = real_column(ts, fb, col, &stride);
    for (size_t i = 0; i < n; i++) key[i] = (uint64_t)rf_float_key(row_value(ts, c, stride, i, fb)) << 32 | (uint64_t)i;
    rf_radix_u64(key, tmp, n, 32, 64);
}

/* Quantile bins of feature f from m sorted keys (value << 32 | index):
 * every distinct value its own bin when there are at most RF_MAX_BINS of
 * them, else a bin closes once it holds its share of the keys, never
 * between two equal values.  When bn is not NULL the keys are every row's
 * and each row gets its bin there. */
static void code_bins(trainset *ts, int f, const uint64_t *key, size_t m, uint8_t *bn)
{
    float *lo = ts->blo + (size_t)f * RF_MAX_BINS, *hi = ts->bhi + (size_t)f * RF_MAX_BINS;
    size_t nv = 0;
    for (size_t k = 0; k < m; k++) nv += k == 0 || (key[k] >> 32) != (key[k - 1] >> 32);
    int b = 0, open = 0;
    size_t k = 0;
    while (k < m) {
        uint32_t v = (uint32_t)(key[k] >> 32);
        for (; k < m && (uint32_t)(key[k] >> 32) == v; k++)  /* all keys of value v */
            if (bn) bn[key[k] & 0xffffffffu] = (uint8_t)b;
        if (!open) lo[b] = rf_key_float(v);
        open = 1;
        hi[b] = rf_key_float(v);
        if (k < m && (nv <= RF_MAX_BINS || (k >= (size_t)((double)m * (b + 1) / RF_MAX_BINS) && b < RF_MAX_BINS - 1))) {
            b++;
            open = 0;
        }
    }
    ts->n_bins[f] = b + 1;
}

/* A training set of more rows than o->bin_sample (ts->sampled of them):
 * feature f's bin edges from the rows k n / sampled (a sample spread evenly over the real
 * rows in catalog order and the synthetic ones), then every row's bin from
 * its value (the first bin whose threshold rf_midpoint(bhi[b], blo[b + 1])
 * it does not pass, which is how the trees' histogram splits send it).
 * Sorting 2^21 values instead of every row keeps the sort to 32 MB a
 * thread however large the catalog.  col: as real_column takes it. */
static void code_sampled(trainset *ts, int f, uint64_t *key, uint64_t *tmp, float *col)
{
    size_t n = ts->n, nx = ts->n_x, m = ts->sampled, stride;
    int fb = f - ts->f0, uniform = ts->syn.mode == RF_SYNTH_UNIFORM;
    const float *c = real_column(ts, fb, col, &stride);
    for (size_t k = 0; k < m; k++) {
        size_t i = (size_t)((unsigned __int128)k * n / m);
        key[k] = (uint64_t)rf_float_key(row_value(ts, c, stride, i, fb)) << 32 | (uint64_t)k;
    }
    rf_radix_u64(key, tmp, m, 32, 64);
    code_bins(ts, f, key, m, NULL);
    int nb = ts->n_bins[f];
    float thr[RF_MAX_BINS];  /* padded past the last bin: no value passes +inf */
    const float *lo = ts->blo + (size_t)f * RF_MAX_BINS, *hi = ts->bhi + (size_t)f * RF_MAX_BINS;
    for (int b = 0; b < RF_MAX_BINS; b++) thr[b] = b + 1 < nb ? rf_midpoint(hi[b], lo[b + 1]) : INFINITY;
    uint8_t *bn = ts->bin + (size_t)fb * n;
    for (size_t i = 0; i < n; i++) {
        if (i >= nx && !uniform) {  /* it takes a real row's value: that row's bin */
            bn[i] = bn[rf_synth_src(&ts->syn, i - nx, fb)];
            continue;
        }
        float v = row_value(ts, c, stride, i, fb);
        int a = 0;  /* how many thresholds v passes: its bin (a branch-free binary search) */
        for (int step = RF_MAX_BINS / 2; step; step >>= 1) a += thr[a + step - 1] < v ? step : 0;
        bn[i] = (uint8_t)a;
    }
}

/* Bytes each process sends a gather at a time when the columns move. */
#define COL_CHUNK (16u << 20)

/* With parts: this process's features [f0, f1), their whole real columns
 * (n_x x (f1 - f0), row-major) into ts->xown, from the rows each process
 * holds.  For each process in turn, every process sends that process's
 * features of its rows, a chunk of rows at a time, and the receiver puts
 * each piece at its rows: N x F / R values in, as many out. */
static int gather_columns(trainset *ts, const rf_data *d, const ody_comm *comm, ody_err *err)
{
    int R = ody_comm_size(comm), me = ody_comm_rank(comm), F = d->F;
    size_t N = d->n, lo, hi, fb = (size_t)(ts->f1 - ts->f0);
    ody_comm_part(comm, me, N, &lo, &hi);
    size_t nl = hi - lo, maxl = (N + (size_t)R - 1) / (size_t)R;
    size_t budget = COL_CHUNK < (1u << 30) / (size_t)R ? COL_CHUNK : (1u << 30) / (size_t)R;
    size_t C = budget / ((size_t)F * sizeof(float));
    if (C < 1) C = 1;
    ts->xown = malloc(N * fb * sizeof *ts->xown + 1);
    float *send = malloc(C * (size_t)F * sizeof *send), *recv = malloc((size_t)R * C * fb * sizeof *recv + 1);
    size_t *sizes = malloc((size_t)R * sizeof *sizes);
    int rc = ody_comm_agree(comm, ts->xown && send && recv && sizes ? 0 : ody_fail(err, ODY_ENOMEM,
                            "forest: out of memory for %zu x %zu values of the features' columns", N, fb), err);
    for (int q = 0; q < R && !rc; q++) {
        size_t g0, g1;
        ody_comm_part(comm, q, (size_t)F, &g0, &g1);
        size_t w = g1 - g0;
        for (size_t r0 = 0; r0 < maxl && w && !rc; r0 += C) {
            size_t k = r0 < nl ? (nl - r0 < C ? nl - r0 : C) : 0;
            for (size_t i = 0; i < k; i++)
                memcpy(send + i * w, d->X + (r0 + i) * (size_t)F + g0, w * sizeof *send);
            rc = ody_gather(comm, send, k * w * sizeof *send, recv, sizes, q, err);
            size_t at = 0;
            for (int p = 0; !rc && q == me && p < R; p++) {
                size_t plo, phi;
                ody_comm_part(comm, p, N, &plo, &phi);
                memcpy(ts->xown + (plo + r0) * fb, recv + at, sizes[p]);
                at += sizes[p] / sizeof *recv;
            }
        }
    }
    free(send);
    free(recv);
    free(sizes);
    return rc;
}

int rf_trainset_build(trainset *ts, const rf_data *d, const rf_opt *o, ody_err *err)
{
    const ody_comm *comm = o->comm;
    int n_threads = o->n_threads;
    size_t sample = o->bin_sample ? o->bin_sample : RF_BIN_SAMPLE;
    memset(ts, 0, sizeof *ts);
    size_t n = d->synth ? 2 * d->n : d->n;
    int F = d->F;
    size_t f0, f1;  /* this process's features: it codes them */
    ody_comm_part(comm, ody_comm_rank(comm), (size_t)F, &f0, &f1);
    ts->n = n;
    ts->F = F;
    ts->X = d->X;
    ts->xs = (size_t)F;
    ts->n_x = d->n;
    ts->parts = d->parts;
    ts->sampled = n > sample ? sample : 0;
    ts->f0 = d->parts ? (int)f0 : 0;
    ts->f1 = d->parts ? (int)f1 : F;
    ts->y = d->parts ? NULL : malloc(n ? n : 1);
    ts->bin = malloc((size_t)(ts->f1 - ts->f0) * n + 1);
    ts->n_bins = calloc((size_t)F, sizeof *ts->n_bins);
    ts->blo = calloc((size_t)F * RF_MAX_BINS, sizeof *ts->blo);
    ts->bhi = calloc((size_t)F * RF_MAX_BINS, sizeof *ts->bhi);
    int fail = (!d->parts && !ts->y) || !ts->bin || !ts->n_bins || !ts->blo || !ts->bhi;
    if (d->parts) {  /* every process takes part in the columns' moves */
        int rc = ody_comm_agree(comm, fail ? ody_fail(err, ODY_ENOMEM, "forest: out of memory") : 0, err);
        if (!rc) rc = gather_columns(ts, d, comm, err);
        if (rc) {
            rf_trainset_free(ts);
            return rc;
        }
        ts->X = ts->xown;
        ts->xs = f1 - f0;
        fail = rf_synthgen_block(&ts->syn, d->mode, ts->xown, d->n, (int)f0, (int)(f1 - f0), d->synth_seed) != 0;
    } else if (!fail && d->synth) {
        fail = rf_synthgen_init(&ts->syn, d->mode, d->X, d->n, F, d->synth_seed) != 0;
    }
    if (!fail) {
        for (size_t i = 0; ts->y && i < n; i++) ts->y[i] = d->synth ? i >= d->n : d->y[i];
#pragma omp parallel num_threads(ody_threads(n_threads))
    {
        size_t m = ts->sampled ? ts->sampled : n;  /* the keys a feature sorts */
        uint64_t *key = malloc(m * sizeof *key), *tmp = malloc(m * sizeof *tmp);
        /* a real column, for cache-friendly reads of the synthetic rows' values: not needed when X is one */
        int need_col = !ts->sampled || ts->xs > 1;
        float *col = need_col ? malloc((d->n ? d->n : 1) * sizeof *col) : NULL;
        int bad = !key || !tmp || (need_col && !col);
#pragma omp for schedule(dynamic, 1)
        for (int f = (int)f0; f < (int)f1; f++)
            if (!bad && ts->sampled) {
                code_sampled(ts, f, key, tmp, col);
            } else if (!bad) {
                sorted_keys(ts, f, col, key, tmp);
                code_bins(ts, f, key, n, ts->bin + (size_t)(f - ts->f0) * n);
            }
        if (bad) {
#pragma omp atomic write
            fail = 1;
        }
        free(key);
        free(tmp);
        free(col);
    }
    }
    int rc = ody_comm_agree(comm, fail ? ody_fail(err, ODY_ENOMEM, "forest: out of memory coding %zu x %d features", n,
                                                  F) : 0, err);
    if (!rc && !d->parts) rc = ody_share_rows(comm, ts->bin, (size_t)F, n, err);  /* by parts each keeps its own */
    if (!rc) rc = ody_share_rows(comm, ts->n_bins, (size_t)F, sizeof *ts->n_bins, err);
    if (!rc) rc = ody_share_rows(comm, ts->blo, (size_t)F, RF_MAX_BINS * sizeof *ts->blo, err);
    if (!rc) rc = ody_share_rows(comm, ts->bhi, (size_t)F, RF_MAX_BINS * sizeof *ts->bhi, err);
    if (rc) rf_trainset_free(ts);
    return rc;
}
