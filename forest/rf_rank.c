/* rf_rank.c — sorting, the synthetic rows drawn one value at a time, and
 * the quantile-bin coding of the training set (see rf.h for why). */
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

int rf_synthgen_init(synthgen *g, rf_synth mode, const float *X, size_t n, int F, uint64_t seed)
{
    memset(g, 0, sizeof *g);
    g->mode = mode;
    g->X = X;
    g->n = n;
    g->F = F;
    g->key = malloc((size_t)F * sizeof *g->key);
    if (!g->key) return -1;
    for (int f = 0; f < F; f++) g->key[f] = ody_draw_key(seed ^ 0x5EEDC0DE5EEDC0DEULL, (unsigned long long)f);
    if (mode != RF_SYNTH_UNIFORM) return 0;
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
    memset(ts, 0, sizeof *ts);
}

/* Sort keys of feature f's values (value key << 32 | row), sorted.  The
 * real column is gathered first so that the synthetic rows, which take
 * its values, read it from cache. */
static void sorted_keys(const trainset *ts, int f, float *col, uint64_t *key, uint64_t *tmp)
{
    size_t n = ts->n, nx = ts->n_x, F = (size_t)ts->F;
    for (size_t i = 0; i < nx; i++) col[i] = ts->X[i * F + (size_t)f];
    for (size_t i = 0; i < nx; i++) key[i] = (uint64_t)rf_float_key(col[i]) << 32 | (uint64_t)i;
    for (size_t i = nx; i < n; i++) {
        float v = ts->syn.mode == RF_SYNTH_UNIFORM ? rf_synth_value(&ts->syn, i - nx, f)
                                                   : col[rf_synth_src(&ts->syn, i - nx, f)];
        key[i] = (uint64_t)rf_float_key(v) << 32 | (uint64_t)i;
    }
    rf_radix_u64(key, tmp, n, 32, 64);
}

/* Quantile bins of feature f from its sorted keys: every distinct value its
 * own bin when there are at most RF_MAX_BINS of them, else a bin closes once
 * it holds its share of rows, never between two equal values. */
static void code_bins(trainset *ts, int f, const uint64_t *key)
{
    size_t n = ts->n;
    uint8_t *bn = ts->bin + (size_t)f * n;
    float *lo = ts->blo + (size_t)f * RF_MAX_BINS, *hi = ts->bhi + (size_t)f * RF_MAX_BINS;
    size_t nv = 0;
    for (size_t k = 0; k < n; k++) nv += k == 0 || (key[k] >> 32) != (key[k - 1] >> 32);
    int b = 0, open = 0;
    size_t k = 0;
    while (k < n) {
        uint32_t v = (uint32_t)(key[k] >> 32);
        while (k < n && (uint32_t)(key[k] >> 32) == v) bn[key[k++] & 0xffffffffu] = (uint8_t)b;  /* all rows of value v */
        if (!open) lo[b] = rf_key_float(v);
        open = 1;
        hi[b] = rf_key_float(v);
        if (k < n && (nv <= RF_MAX_BINS || (k >= (size_t)((double)n * (b + 1) / RF_MAX_BINS) && b < RF_MAX_BINS - 1))) {
            b++;
            open = 0;
        }
    }
    ts->n_bins[f] = b + 1;
}

int rf_trainset_build(trainset *ts, const rf_data *d, int n_threads, const ody_comm *comm, ody_err *err)
{
    memset(ts, 0, sizeof *ts);
    size_t n = d->synth ? 2 * d->n : d->n;
    int F = d->F;
    ts->n = n;
    ts->F = F;
    ts->X = d->X;
    ts->n_x = d->n;
    ts->y = malloc(n ? n : 1);
    ts->bin = malloc((size_t)F * n);
    ts->n_bins = calloc((size_t)F, sizeof *ts->n_bins);
    ts->blo = calloc((size_t)F * RF_MAX_BINS, sizeof *ts->blo);
    ts->bhi = calloc((size_t)F * RF_MAX_BINS, sizeof *ts->bhi);
    int fail = !ts->y || !ts->bin || !ts->n_bins || !ts->blo || !ts->bhi ||
               (d->synth && rf_synthgen_init(&ts->syn, d->mode, d->X, d->n, F, d->synth_seed));
    size_t f0, f1;  /* this process's features */
    ody_comm_part(comm, ody_comm_rank(comm), (size_t)F, &f0, &f1);
    if (!fail) {
        for (size_t i = 0; i < n; i++) ts->y[i] = d->synth ? i >= d->n : d->y[i];
#pragma omp parallel num_threads(ody_threads(n_threads))
    {
        uint64_t *key = malloc(n * sizeof *key), *tmp = malloc(n * sizeof *tmp);
        float *col = malloc((d->n ? d->n : 1) * sizeof *col);
        int bad = !key || !tmp || !col;
#pragma omp for schedule(dynamic, 1)
        for (int f = (int)f0; f < (int)f1; f++)
            if (!bad) {
                sorted_keys(ts, f, col, key, tmp);
                code_bins(ts, f, key);
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
    if (!rc) rc = ody_share_rows(comm, ts->bin, (size_t)F, n, err);
    if (!rc) rc = ody_share_rows(comm, ts->n_bins, (size_t)F, sizeof *ts->n_bins, err);
    if (!rc) rc = ody_share_rows(comm, ts->blo, (size_t)F, RF_MAX_BINS * sizeof *ts->blo, err);
    if (!rc) rc = ody_share_rows(comm, ts->bhi, (size_t)F, RF_MAX_BINS * sizeof *ts->bhi, err);
    if (rc) rf_trainset_free(ts);
    return rc;
}
