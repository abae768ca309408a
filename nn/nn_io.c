/* nn_io.c — MLP model files: FITS, one image HDU per layer. */
#include <fitsio.h>
#include <limits.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "fitsin.h"
#include "fitsout.h"
#include "nn_work.h"

#define NN_FORMAT 1  /* the layout written below; raise it when it changes */

int nn_save(const nn_model *m, const nn_train_opt *o, const char *path, const char *history,
            int overwrite, ody_err *err)
{
    fitsout w;
    int rc = fitsout_open(&w, path, overwrite, err);
    if (rc) return rc;
    int status = 0;
    if (history) fitsout_history(w.f, history, &status);
    const nn_arch *a = &m->arch;
    fits_write_key(w.f, TSTRING, "CREATOR", (void *)"oddsky", "software", &status);
    fits_write_key(w.f, TSTRING, "ODYVERS", (void *)ody_version(), "oddsky version", &status);
    fits_write_key(w.f, TSTRING, "MODEL", (void *)"MLP", "multilayer perceptron", &status);
    int fmt = NN_FORMAT;
    fits_write_key(w.f, TINT, "FORMAT", &fmt, "model file layout version", &status);
    fits_write_key(w.f, TINT, "NIN", (void *)&a->n_in, "input features", &status);
    fits_write_key(w.f, TINT, "NLAYERS", (void *)&a->n_layers, "hidden + output layers", &status);
    fits_write_key(w.f, TSTRING, "LOSS", (void *)nn_loss_name(a->loss), "loss function", &status);
    fits_write_key(w.f, TLOGICAL, "STDIZE", (void *)&m->standardized, "inputs standardised", &status);
    if (o) {
        long long seed = (long long)o->seed;
        fits_write_key(w.f, TDOUBLE, "LR", (void *)&o->lr, "learning rate", &status);
        fits_write_key(w.f, TDOUBLE, "MOMENTUM", (void *)&o->momentum, "momentum", &status);
        fits_write_key(w.f, TLOGICAL, "NESTEROV", (void *)&o->nesterov, "Nesterov momentum", &status);
        fits_write_key(w.f, TDOUBLE, "LRDECAY", (void *)&o->lr_decay, "learning-rate decay", &status);
        fits_write_key(w.f, TDOUBLE, "L2", (void *)&o->l2, "L2 weight decay", &status);
        fits_write_key(w.f, TINT, "BATCH", (void *)&o->batch, "mini-batch size", &status);
        fits_write_key(w.f, TINT, "MAXEPOCH", (void *)&o->max_epochs, "maximum epochs", &status);
        fits_write_key(w.f, TINT, "PATIENCE", (void *)&o->patience, "early-stopping patience", &status);
        fits_write_key(w.f, TDOUBLE, "EPSILON", (void *)&o->epsilon, "improvement that counts", &status);
        fits_write_key(w.f, TDOUBLE, "VALFRAC", (void *)&o->val_frac, "validation fraction", &status);
        fits_write_key(w.f, TLOGICAL, "CLASSWT", (void *)&o->class_weight, "balanced class weights", &status);
        fits_write_key(w.f, TSTRING, "INIT", (void *)nn_init_name(o->init), "weight initialisation", &status);
        fits_write_key(w.f, TLONGLONG, "SEED", &seed, "RNG seed", &status);
    }
    int prev = a->n_in;
    for (int l = 0; l < a->n_layers && !status; l++) {
        int n = a->size[l];
        long ax[2] = {prev + 1, n};  /* FITS axes: columns first */
        nn_real *img = malloc((size_t)n * (size_t)(prev + 1) * sizeof *img);
        if (!img) { rc = ody_fail(err, ODY_ENOMEM, "out of memory"); break; }
        const nn_real *W = m->w + m->off[l], *b = W + (size_t)n * prev;
        for (int k = 0; k < n; k++) {
            memcpy(img + (size_t)k * (prev + 1), W + (size_t)k * prev, (size_t)prev * sizeof *img);
            img[(size_t)k * (prev + 1) + prev] = b[k];
        }
        char name[16];
        snprintf(name, sizeof name, "LAYER%d", l + 1);
        fits_create_img(w.f, RIMG, 2, ax, &status);
        fits_write_key(w.f, TSTRING, "EXTNAME", name, "W (n_out x n_in) then b as the last column", &status);
        fits_write_key(w.f, TINT, "NIN", &prev, "inputs to this layer", &status);
        fits_write_key(w.f, TINT, "NOUT", &n, "units", &status);
        fits_write_key(w.f, TSTRING, "ACT", (void *)nn_act_name(a->act[l]), "activation", &status);
        fits_write_img(w.f, RTYPE, 1, (LONGLONG)n * (prev + 1), img, &status);
        free(img);
        prev = n;
    }
    if (!status && !rc) {
        long ax[2] = {a->n_in, 2};
        fits_create_img(w.f, RIMG, 2, ax, &status);
        fits_write_key(w.f, TSTRING, "EXTNAME", (void *)"NORM", "row 1 mean, row 2 std of each input", &status);
        fits_write_img(w.f, RTYPE, 1, a->n_in, m->mu, &status);
        fits_write_img(w.f, RTYPE, 1 + (LONGLONG)a->n_in, a->n_in, m->sd, &status);
    }
    if (status && !rc) rc = ody_fits_fail(err, status, path, "cannot write the model", NULL);
    return fitsout_finish(&w, rc, err);
}

int nn_load(const char *path, nn_model **out, ody_err *err)
{
    fitsfile *f = NULL;
    int status = 0, rc = fitsin_check(path, NULL, err);
    if (rc) return rc;
    if (ody_fits_open(&f, path, ODY_FITS_FILE, READONLY, &status)) {
        rc = ody_fits_fail(err, status, path, "cannot open the model", NULL);
        ody_fits_close(f);
        return rc;
    }
    if ((rc = fitsin_format(f, path, NN_FORMAT, err))) {
        ody_fits_close(f);
        return rc;
    }
    nn_arch a;
    memset(&a, 0, sizeof a);
    char loss[FLEN_VALUE] = "", model[FLEN_VALUE] = "";
    int stdz = 0;
    nn_model *m = NULL;
    fits_read_key(f, TSTRING, "MODEL", model, NULL, &status);
    ody_fits_read_int32(f, "NIN", INT_MIN, INT_MAX, &a.n_in, &status);
    ody_fits_read_int32(f, "NLAYERS", INT_MIN, INT_MAX, &a.n_layers, &status);
    fits_read_key(f, TSTRING, "LOSS", loss, NULL, &status);
    fits_read_key(f, TLOGICAL, "STDIZE", &stdz, NULL, &status);
    if (status || strcmp(model, "MLP") || a.n_layers < 1 || a.n_layers > NN_MAX_LAYERS) {
        rc = status ? ody_fits_fail(err, status, path, "not an oddsky MLP model", NULL)
                    : ody_fail(err, ODY_EINPUT, "%s: not an oddsky MLP model — give a file written by oddsky", path);
        goto done;
    }
    a.loss = (nn_loss)nn_loss_parse(loss);
    for (int l = 0; l < a.n_layers && !status; l++) {
        char name[16], act[FLEN_VALUE] = "";
        int nin = 0;
        snprintf(name, sizeof name, "LAYER%d", l + 1);
        fits_movnam_hdu(f, IMAGE_HDU, name, 0, &status);
        ody_fits_read_int32(f, "NIN", INT_MIN, INT_MAX, &nin, &status);
        ody_fits_read_int32(f, "NOUT", INT_MIN, INT_MAX, &a.size[l], &status);
        fits_read_key(f, TSTRING, "ACT", act, NULL, &status);
        a.act[l] = (nn_act)nn_act_parse(act);
        if (!status && nin != (l ? a.size[l - 1] : a.n_in)) {
            rc = ody_fail(err, ODY_EINPUT, "%s: %s has %d inputs, expected %d — the file is damaged", path, name,
                          nin, l ? a.size[l - 1] : a.n_in);
            goto done;
        }
    }
    if (status) { rc = ody_fits_fail(err, status, path, "cannot read the layers", NULL); goto done; }
    if (nn_arch_check(&a, err)) {  /* a layer oddsky never writes: say which file */
        rc = ody_prefix(err, "%s: ", path);
        size_t at = strlen(err->msg);
        snprintf(err->msg + at, sizeof err->msg - at, " — the file is damaged, or not an oddsky model");
        goto done;
    }
    if ((rc = nnw_model_alloc(&a, &m, err))) goto done;
    m->standardized = stdz;
    int prev = a.n_in;
    for (int l = 0; l < a.n_layers && !status; l++) {
        int n = a.size[l], anynul = 0;
        char name[16];
        snprintf(name, sizeof name, "LAYER%d", l + 1);
        nn_real *img = malloc((size_t)n * (size_t)(prev + 1) * sizeof *img);
        if (!img) { rc = ody_fail(err, ODY_ENOMEM, "out of memory"); goto done; }
        fits_movnam_hdu(f, IMAGE_HDU, name, 0, &status);
        fits_read_img(f, RTYPE, 1, (LONGLONG)n * (prev + 1), NULL, img, &anynul, &status);
        nn_real *W = m->w + m->off[l], *b = W + (size_t)n * prev;
        for (int k = 0; k < n; k++) {
            memcpy(W + (size_t)k * prev, img + (size_t)k * (prev + 1), (size_t)prev * sizeof *img);
            b[k] = img[(size_t)k * (prev + 1) + prev];
        }
        free(img);
        prev = n;
    }
    if (!status) {
        int anynul = 0;
        fits_movnam_hdu(f, IMAGE_HDU, "NORM", 0, &status);
        fits_read_img(f, RTYPE, 1, a.n_in, NULL, m->mu, &anynul, &status);
        fits_read_img(f, RTYPE, 1 + (LONGLONG)a.n_in, a.n_in, NULL, m->sd, &anynul, &status);
    }
    if (status) { rc = ody_fits_fail(err, status, path, "cannot read the weights", NULL); goto done; }
    /* training never leaves a NaN or an infinity behind, nor a spread of 0
     * or less: one here would score every object as NaN, or quietly as 0
     * through a ReLU */
    const struct { const char *what; const nn_real *v; size_t n; int positive; } part[] = {
        {"weight", m->w, m->n_par, 0}, {"mean", m->mu, (size_t)a.n_in, 0}, {"spread", m->sd, (size_t)a.n_in, 1}};
    for (int q = 0; q < 3; q++)
        for (size_t k = 0; k < part[q].n; k++)
            if (!isfinite(part[q].v[k]) || (part[q].positive && !(part[q].v[k] > 0))) {
                rc = ody_fail(err, ODY_EINPUT, "%s: %s %zu is %g — the file is damaged; train the model again", path,
                              part[q].what, k, (double)part[q].v[k]);
                goto done;
            }
    *out = m;
    m = NULL;
done:
    ody_fits_close(f);
    nn_destroy(m);
    return rc;
}
