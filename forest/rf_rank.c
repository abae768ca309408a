/* rf_rank.c — sorting, and the rank / quantile-bin coding of a training
 * matrix (see rf.h for why). */
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

void rf_rank_free(rankdata *rd)
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

/* Dense ranks of feature f and its distinct values; key (n) is left holding
 * the rows in value order.  0 or -1 (out of memory). */
static int code_ranks(rankdata *rd, const float *X, int f, uint64_t *key, uint64_t *tmp)
{
    size_t n = rd->n, F = (size_t)rd->F;
    for (size_t i = 0; i < n; i++) key[i] = (uint64_t)float_key(X[i * F + f]) << 32 | (uint64_t)i;
    rf_radix_u64(key, tmp, n, 32, 64);
    uint32_t *rk = rd->rank + (size_t)f * n;
    float *vals = malloc(n * sizeof *vals);
    if (!vals) return -1;
    uint32_t nv = 0, prev = 0;
    for (size_t k = 0; k < n; k++) {
        uint32_t kk = (uint32_t)(key[k] >> 32);
        size_t i = (size_t)(key[k] & 0xffffffffu);
        if (k == 0 || kk != prev) {
            float v = X[i * F + f];
            vals[nv++] = v == 0.0f ? 0.0f : v;
            prev = kk;
        }
        rk[i] = nv - 1;
    }
    float *shrunk = realloc(vals, (nv ? nv : 1) * sizeof *vals);
    rd->vals[f] = shrunk ? shrunk : vals;
    rd->n_vals[f] = nv;
    return 0;
}

/* Quantile bins of feature f: a bin closes once it holds its share of rows,
 * never between two equal values.  key: the rows in value order. */
static int code_bins(rankdata *rd, int f, const uint64_t *key)
{
    size_t n = rd->n;
    uint32_t nv = rd->n_vals[f], *last = rd->bin_last + (size_t)f * RF_MAX_BINS;
    const uint32_t *rk = rd->rank + (size_t)f * n;
    uint8_t *bn = rd->bin + (size_t)f * n;
    if (nv <= RF_MAX_BINS) {
        for (uint32_t r = 0; r < nv; r++) last[r] = r;
        rd->n_bins[f] = (int)nv;
        for (size_t i = 0; i < n; i++) bn[i] = (uint8_t)rk[i];
        return 0;
    }
    uint8_t *rank2bin = malloc(nv);
    if (!rank2bin) return -1;
    int b = 0;
    size_t k = 0;
    while (k < n) {
        uint32_t r = rk[key[k] & 0xffffffffu];
        size_t target = (size_t)((double)n * (b + 1) / RF_MAX_BINS);
        while (k < n && rk[key[k] & 0xffffffffu] == r) k++;  /* all rows of rank r */
        rank2bin[r] = (uint8_t)b;
        if (((k >= target || k == n) && b < RF_MAX_BINS - 1) || k == n) {
            last[b] = r;
            b++;
        }
    }
    /* ranks assigned after the last close went to bin b-1's range */
    rd->n_bins[f] = b;
    if (last[b - 1] != nv - 1) last[b - 1] = nv - 1;
    for (size_t i = 0; i < n; i++) bn[i] = rank2bin[rk[i]];
    free(rank2bin);
    return 0;
}

int rf_rank_build(rankdata *rd, const float *X, size_t n, int F, int n_threads, ody_err *err)
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
    int fail = !rd->rank || !rd->bin || !rd->bin_last || !rd->n_bins || !rd->vals || !rd->n_vals;
    if (!fail) {
#pragma omp parallel num_threads(ody_threads(n_threads))
    {
        uint64_t *key = malloc(n * sizeof *key), *tmp = malloc(n * sizeof *tmp);
        int bad = !key || !tmp;
#pragma omp for schedule(dynamic, 1)
        for (int f = 0; f < F; f++)
            if (!bad) bad = code_ranks(rd, X, f, key, tmp) || code_bins(rd, f, key);
        if (bad) {
#pragma omp atomic write
            fail = 1;
        }
        free(key);
        free(tmp);
    }
    }
    if (fail) {
        rf_rank_free(rd);
        return ody_fail(err, ODY_ENOMEM, "forest: out of memory coding %zu x %d features", n, F);
    }
    return 0;
}
