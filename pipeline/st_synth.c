/* st_synth.c — stage "synthesize": synthetic objects drawn from the real
 * marginals (every correlation destroyed), the forest's second class. */
#include <stdlib.h>

#include "stage.h"

static int synthesize(run_state *st, int run, ody_err *err)
{
    size_t n = st->n, F = (size_t)st->F;
    st->S = malloc(n * F * sizeof *st->S);
    if (!st->S) return ody_fail(err, ODY_ENOMEM, "out of memory for %zu synthetic rows", n);
    if (!run) return store_load_col(st, "synthetic.fits", "X", TFLOAT, n * F, st->S, err);
    int rc = rf_synthesize(st->c->synth_mode, st->cat->X, n, (int)F, (uint64_t)st->c->seed, st->c->threads, st->S, err);
    if (rc) return rc;
    fitsout_col col = {"X", TFLOAT, (int)F, st->S, NULL, NULL};
    return store_save_table(st, "synthetic.fits", "SYNTHETIC", &col, 1, n, err);
}

const stage_def stage_synth = {
    .name = "synthesize",
    .what = "synthetic objects: each feature resampled independently from the real ones",
    .keys = (const char *const[]){"synthetic.", "seed", NULL},
    .reads = (const char *const[]){"ingest", NULL},
    .writes = (const char *const[]){"synthetic.fits", NULL},
    .fn = synthesize,
};
