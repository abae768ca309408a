/* st_lens.c — stage "lens": P(lens) of every cutout, from a given model or
 * from one trained in the run on simulations that match the cutouts. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "stage.h"

/* The LENS* keywords of an earlier run's lens_scores.fits, when present. */
static void load_eval(run_state *st)
{
    char *p = store_path(st, "lens_scores.fits");
    fitsfile *f = NULL;
    int status = 0;
    if (p) ody_fits_open(&f, p, ODY_FITS_FILE, READONLY, &status);
    fits_read_key(f, TDOUBLE, "LENSAUC", &st->lev.auroc, NULL, &status);
    fits_read_key(f, TDOUBLE, "LENSPREC", &st->lev.precision, NULL, &status);
    fits_read_key(f, TDOUBLE, "LENSREC", &st->lev.recall, NULL, &status);
    st->lev.n_test = !p || status ? 0 : 1;
    ody_fits_close(f);
    free(p);
}

static int load_model(run_state *st, nn_model **m, lens_prep *prep, ody_err *err)
{
    const cfg *c = st->c;
    int rc = lens_model_load(c->lens_model, m, prep, err);
    if (rc) return rc;
    if (prep->size != st->cut->size || prep->n_bands != st->cut->n_bands) {
        nn_destroy(*m);
        *m = NULL;
        return ody_fail(err, ODY_EINPUT, "%s: the lens model was trained on %d-pixel cutouts in %d bands; these are "
                        "%d pixels in %d — set cutouts.size / bands to match, or leave lens.model empty to train one",
                        c->lens_model, prep->size, prep->n_bands, st->cut->size, st->cut->n_bands);
    }
    return 0;
}

static int train_model(run_state *st, nn_model **m, lens_prep *prep, ody_err *err)
{
    const cfg *c = st->c;
    lens_sim_opt so;
    lens_sim_opt_init(&so);
    so.n = (size_t)c->lens_train_n;
    so.size = st->cut->size;
    so.pix_scale = c->lens_pix;
    so.psf_fwhm = c->lens_psf;
    so.n_bands = st->cut->n_bands;
    for (int b = 0; b < so.n_bands; b++)
        snprintf(so.band[b], sizeof so.band[b], "%s", c->n_cut_bands ? c->cut_bands[b] : "band");
    so.seed = (uint64_t)c->seed;
    so.n_threads = c->threads;
    lens_prep_init(prep);
    prep->size = so.size;
    prep->n_bands = so.n_bands;
    prep->down = c->lens_down;
    nn_train_opt to;
    nn_train_opt_init(&to);
    to.max_epochs = c->lens_epochs;
    to.seed = (uint64_t)c->seed;
    to.n_threads = c->threads;
    int hidden[] = LENS_HIDDEN_DEFAULT;
    int rc = lens_train(&so, prep, &to, hidden, (int)(sizeof hidden / sizeof *hidden), (size_t)c->lens_test_n, m,
                        &st->lev, st->log, err);
    if (rc || !store_writes(st)) return rc;
    char *p = store_path(st, "lens_model.fits");
    rc = p ? lens_model_save(p, *m, &to, prep, &so, &st->lev, err) : ody_fail(err, ODY_ENOMEM, "out of memory");
    free(p);
    return rc;
}

static int lens(run_state *st, int run, ody_err *err)
{
    size_t n = st->n;
    if (!store_score(st, CFG_SCORE_LENS)) return ody_fail(err, ODY_ENOMEM, "out of memory");
    if (!run) {
        load_eval(st);
        return store_load_rows(st, "lens_scores.fits", "P_LENS", TDOUBLE, 1, st->score[CFG_SCORE_LENS], err);
    }
    int rc = 0;
    if (!st->cut) {  /* ingest was up to date: read the kept rows' cutouts again */
        cut_opt co;
        stage_cutout_opt(st->c, &co);
        co.fail_missing = 1;
        if ((rc = cut_read(&co, &st->cat->id, n, &st->cut, st->log, err))) return rc;
    }
    nn_model *m = NULL;
    lens_prep prep;
    rc = st->c->lens_model[0] ? load_model(st, &m, &prep, err) : train_model(st, &m, &prep, err);
    prep.n_threads = st->c->threads;
    /* every process scores every cutout (a few thousand at most) and keeps its rows' */
    double *all = rc ? NULL : malloc((n ? n : 1) * sizeof *all);
    if (!rc && !all) rc = ody_fail(err, ODY_ENOMEM, "out of memory");
    if (!rc) rc = lens_score(m, &prep, st->cut->pix, n, all, err);
    if (!rc) memcpy(st->score[CFG_SCORE_LENS], all + st->lo, stage_rows(st) * sizeof *all);
    free(all);
    nn_destroy(m);
    if (rc) return rc;
    fitsout_col col = {"P_LENS", TDOUBLE, 1, st->score[CFG_SCORE_LENS], NULL, NULL};
    return store_save_slices(st, "lens_scores.fits", "LENS", &col, 1, err);
}

static int lens_enabled(const cfg *c) { return c->lens_on; }

/* lens_model.fits: the model trained in the run, when lens.model names none. */
static int lens_writes(const cfg *c, const char *artifact)
{
    return !c->lens_model[0] && !strcmp(artifact, "lens_model.fits");
}

const stage_def stage_lens = {
    .name = "lens",
    .what = "strong-lens classifier: P(lens) of every cutout",
    .keys = (const char *const[]){"lens.", "seed", NULL},
    .reads = (const char *const[]){"ingest", NULL},
    .writes = (const char *const[]){"lens_scores.fits", "lens_model.fits?", NULL},
    .writes_if = lens_writes,
    .enabled = lens_enabled,
    .fn = lens,
};
