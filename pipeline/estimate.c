/* estimate.c — what a stage that never ran here will cost, from the size of
 * the data and the settings: rough cost models, each calibrated on a 2-core
 * machine on a few runs (the demo, 10^5 mock objects, 2 x 10^4 spectra of
 * 4,000 bins) and good to a factor of about 2.  Only the first run of a
 * config uses them; later runs use the times the manifest keeps. */
#include <math.h>
#include <string.h>

#include "stage.h"

double stage_guess(const run_state *st, const char *name)
{
    const cfg *c = st->c;
    double n = (double)st->n, F = st->F > 0 ? st->F : 1, T = c->rf_trees;
    double rows = c->rf_max_samples > 0 && (double)c->rf_max_samples < n ? (double)c->rf_max_samples : n;
    double m = 2 * rows, lm = log2(m > 2 ? m : 2), cores = ody_threads(c->threads);
    double par = 2.0 / (cores > 0 ? cores : 1);  /* the models are for 2 cores */
    if (!strcmp(name, "forest")) return par * 4e-9 * T * c->repeats * m * lm * (sqrt(F) + 1);
    if (!strcmp(name, "weirdness"))
        return par * (1e-8 * T * c->repeats * n * lm + 2e-9 * cfg_iso_trees(c, st->n) * n * 8);
    if (!strcmp(name, "similarity")) {
        double pairs = T * n * (c->leaf_sample > 0 ? c->leaf_sample : 64);
        return par * 1.5e-8 * (pairs < c->sim_max_pairs ? pairs : c->sim_max_pairs);
    }
    if (!strcmp(name, "local")) {
        double ref = n < c->local_ref ? n : c->local_ref;
        double heap = stage_wants_heap(c) ? 1.2e-7 * n * F : 0;  /* 2.4 s at 10^6 x 20 */
        return par * ((F <= 16 ? 8e-8 * n * log2(n > 2 ? n : 2) * F : 3.5e-11 * n * ref * F) + heap);
    }
    if (!strcmp(name, "mlp")) {
        double w = F, h = F;
        for (int k = 0; k < c->n_mlp_hidden; k++) w += h * c->mlp_hidden[k], h = c->mlp_hidden[k];
        return par * 1e-9 * c->mlp_epochs * m * (w + h) * 3 * 0.3;  /* early stopping: about a third */
    }
    if (!strcmp(name, "score")) return par * 3e-7 * n * F;
    if (!strcmp(name, "learn")) return 1e-6 * n;
    if (!strcmp(name, "export")) return 3e-5 * n + 1e-8 * n * F;
    if (!strcmp(name, "lens")) {
        double bands = c->n_cut_bands > 0 ? c->n_cut_bands : 1, px = (double)c->cut_size * c->cut_size * bands;
        double d = c->lens_down > 0 ? c->lens_down : 1, score = 2e-7 * n * px / (d * d);
        if (c->lens_model[0]) return score;  /* a trained model only scores */
        return score + 1e-7 * c->lens_epochs * c->lens_train_n * px / (d * d) + 3e-7 * (c->lens_train_n + c->lens_test_n) * px;
    }
    return 0;  /* ingest has run by then */
}
