/* fuzz_model.c — the model readers on any bytes: a forest (the classification
 * forest and the isolation forest share a file format), an MLP and a lens
 * model, as `oddsky score`, `oddsky lens score` and a collaborator's shared
 * model meet them.  Whatever loads is also used, on a few rows made up here:
 * a damaged file that loads must still send every tree walk, every layer and
 * every cutout to memory it owns. */
#include "fuzz_util.h"  /* first: it defines _GNU_SOURCE */

#include <string.h>

#include "lens.h"
#include "nn.h"
#include "rf.h"

enum { ROWS = 5, MAX_IN = 1 << 14 };

/* ROWS rows of F values that reach both sides of most thresholds. */
static float *rows_of(int F)
{
    float *X = malloc((size_t)ROWS * F * sizeof *X);
    if (!X) return NULL;
    for (size_t k = 0; k < (size_t)ROWS * F; k++) X[k] = (float)((int)(k % 7) - 3) * 0.75f;
    return X;
}

static void use_forest(const rf_forest *f)
{
    if (f->n_feat > MAX_IN) return;
    float *X = rows_of(f->n_feat);
    double p[ROWS];
    ody_err e;
    if (X) {
        rf_predict(f, X, ROWS, 1, p, &e);
        rf_iso_score(f, X, ROWS, 1, p, &e);
        rf_sim_ctx ctx;
        if (rf_sim_ctx_init(&ctx, f, X, ROWS, RF_LEAF_PURE_REAL, 1, NULL, &e) == 0) {
            rf_weirdness(&ctx, p, &e);
            rf_sim_ctx_free(&ctx);
        }
    }
    free(X);
}

static void use_mlp(const nn_model *m)
{
    int n_in = m->arch.n_in, n_out = m->arch.size[m->arch.n_layers - 1];
    if (n_in > MAX_IN || n_out > MAX_IN) return;
    nn_real *X = malloc((size_t)ROWS * n_in * sizeof *X), *Y = malloc((size_t)ROWS * n_out * sizeof *Y);
    if (X && Y) {
        for (size_t k = 0; k < (size_t)ROWS * n_in; k++) X[k] = (nn_real)((int)(k % 5) - 2);
        ody_err e;
        nn_predict(m, X, ROWS, 1, Y, &e);
    }
    free(X);
    free(Y);
}

static void use_lens(const nn_model *m, const lens_prep *prep)
{
    if (prep->size < 1 || prep->n_bands < 1 || (size_t)prep->n_bands * prep->size * prep->size > MAX_IN) return;
    size_t np = (size_t)prep->n_bands * prep->size * prep->size;
    float *pix = malloc(2 * np * sizeof *pix);
    if (pix) {
        for (size_t k = 0; k < 2 * np; k++) pix[k] = (float)(k % 11) * 0.1f;
        double p[2];
        ody_err e;
        lens_prep pr = *prep;
        pr.n_threads = 1;
        lens_score(m, &pr, pix, 2, p, &e);
    }
    free(pix);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    char path[64];
    int fd = fuzz_file(data, size, path, sizeof path);
    if (fd < 0) return 0;
    ody_err e;
    rf_forest *f = NULL;
    if (rf_load(path, &f, &e) == 0) {
        use_forest(f);
        rf_destroy(f);
    }
    nn_model *m = NULL;
    if (nn_load(path, &m, &e) == 0) {
        use_mlp(m);
        nn_destroy(m);
    }
    m = NULL;
    lens_prep prep;
    lens_prep_init(&prep);
    if (lens_model_load(path, &m, &prep, &e) == 0) {
        use_lens(m, &prep);
        nn_destroy(m);
    }
    close(fd);
    return 0;
}
