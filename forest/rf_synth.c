/* rf_synth.c — the names of the synthetic modes and leaf filters, and the
 * synthetic rows made whole (rf.h). */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "rf_grow.h"

/* ================================================================ names */

int rf_synth_parse(const char *s)
{
    if (!s) return -1;
    if (!strcmp(s, "marginal")) return RF_SYNTH_MARGINAL;
    if (!strcmp(s, "uniform")) return RF_SYNTH_UNIFORM;
    return -1;
}

const char *rf_synth_name(rf_synth m) { return m == RF_SYNTH_UNIFORM ? "uniform" : "marginal"; }

int rf_leaf_filter_parse(const char *s)
{
    if (!s) return -1;
    if (!strcmp(s, "pure_real")) return RF_LEAF_PURE_REAL;
    if (!strcmp(s, "majority_real")) return RF_LEAF_MAJORITY_REAL;
    if (!strcmp(s, "all")) return RF_LEAF_ALL;
    return -1;
}

const char *rf_leaf_filter_name(rf_leaf_filter m)
{
    return m == RF_LEAF_MAJORITY_REAL ? "majority_real" : m == RF_LEAF_ALL ? "all" : "pure_real";
}

/* ================================================================ synthetic */

int rf_synthesize(rf_synth mode, const float *X, size_t n, int F, uint64_t seed, int n_threads, float *S,
                  ody_err *err)
{
    if (n < 1 || F < 1) return ody_fail(err, ODY_EINPUT, "synthetic data needs at least one row and feature");
    synthgen g;
    if (rf_synthgen_init(&g, mode, X, n, F, seed)) return ody_fail(err, ODY_ENOMEM, "out of memory");
#pragma omp parallel for schedule(static) num_threads(ody_threads(n_threads))
    for (size_t j = 0; j < n; j++)
        for (int f = 0; f < F; f++) S[j * (size_t)F + (size_t)f] = rf_synth_value(&g, j, f);
    rf_synthgen_free(&g);
    return 0;
}

int rf_synth_open(rf_synth mode, const float *X, size_t n, int F, uint64_t seed, rf_synthgen **out, ody_err *err)
{
    if (n < 1 || F < 1) return ody_fail(err, ODY_EINPUT, "synthetic data needs at least one row and feature");
    synthgen *g = malloc(sizeof *g);
    if (!g || rf_synthgen_init(g, mode, X, n, F, seed)) {
        free(g);
        return ody_fail(err, ODY_ENOMEM, "out of memory");
    }
    *out = g;
    return 0;
}

void rf_synth_row(const rf_synthgen *g, size_t j, float *row)
{
    for (int f = 0; f < g->F; f++) row[f] = rf_synth_value(g, j, f);
}

void rf_synth_close(rf_synthgen *g)
{
    if (!g) return;
    rf_synthgen_free(g);
    free(g);
}

int rf_synth_open_ranges(rf_synth mode, size_t n, int F, const float *lo, const float *hi, uint64_t seed,
                         rf_synthgen **out, ody_err *err)
{
    if (n < 1 || F < 1) return ody_fail(err, ODY_EINPUT, "synthetic data needs at least one row and feature");
    synthgen *g = malloc(sizeof *g);
    /* marginal mode reads no row to start: its draws are keys alone */
    if (!g || rf_synthgen_init(g, RF_SYNTH_MARGINAL, NULL, n, F, seed)) {
        free(g);
        return ody_fail(err, ODY_ENOMEM, "out of memory");
    }
    g->mode = mode;
    if (mode == RF_SYNTH_UNIFORM) {
        g->lo = malloc((size_t)F * sizeof *g->lo);
        g->hi = malloc((size_t)F * sizeof *g->hi);
        if (!g->lo || !g->hi) {
            rf_synth_close(g);
            return ody_fail(err, ODY_ENOMEM, "out of memory");
        }
        memcpy(g->lo, lo, (size_t)F * sizeof *g->lo);
        memcpy(g->hi, hi, (size_t)F * sizeof *g->hi);
    }
    *out = g;
    return 0;
}

size_t rf_synth_source(const rf_synthgen *g, size_t j, int f)
{
    return g->mode == RF_SYNTH_UNIFORM ? SIZE_MAX : rf_synth_src(g, j, f);
}

void rf_synth_row_held(const rf_synthgen *g, size_t j, const float *X, size_t lo, size_t hi, float *row)
{
    size_t F = (size_t)g->F;
    if (hi <= lo) {  /* no rows here: nothing to read, not even row lo */
        memset(row, 0, F * sizeof *row);
        return;
    }
    for (size_t f = 0; f < F; f++) {
        size_t src = rf_synth_src(g, j, (int)f), own = src - lo < hi - lo;  /* unsigned: src >= lo too */
        uint32_t mask = (uint32_t)0 - (uint32_t)own, bits;
        float v = X[((src - lo) & ((size_t)0 - own)) * F + f];  /* row lo when not held */
        memcpy(&bits, &v, sizeof bits);
        bits &= mask;
        memcpy(&row[f], &bits, sizeof bits);
    }
}
