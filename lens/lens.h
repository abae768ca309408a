/* lens.h — the strong-lens classifier (prefix lens_): an MLP on cutouts,
 * trained on simulations (mock/lenssim.h) that match the survey's cutouts.
 */
#ifndef LENS_H
#define LENS_H

#include <stddef.h>
#include <stdint.h>

#include "lenssim.h"
#include "nn.h"
#include "ody.h"

/* How cutouts become MLP inputs: normalise (cut_norm), block-average by
 * `down`, flatten, and append the morphology features of every band. */
typedef struct lens_prep {
    int size, down, n_bands, norm, morph;
    int n_threads;            /* for making inputs; not saved with a model; 0: every core */
    double p_lo, p_hi;
} lens_prep;

void lens_prep_init(lens_prep *p);

/* Inputs for n cutouts (n x bands x size x size, not normalised); *X is
 * malloc'd (n x *d). */
int lens_inputs(const lens_prep *p, const float *pix, size_t n, float **X, int *d, ody_err *err);

/* Area under the ROC curve of scores s for labels y (ties count half). */
double lens_auroc(const double *s, const int *y, size_t n);

/* Hidden layers of the lens MLP, for `oddsky lens train` and the pipeline. */
#define LENS_HIDDEN_DEFAULT {128, 64}

typedef struct lens_eval {
    size_t n_test;
    double auroc, precision, recall, threshold;
    double train_s;
} lens_eval;

/* Simulates a training set (sim, seed sim->seed) and a held-out set (seed
 * sim->seed + 7919, n_test cutouts), trains an MLP (hidden layers, relu,
 * sigmoid) and evaluates it at threshold 0.5.  *m owned by the caller.
 * o->batch is lowered to the training cutouts when there are fewer
 * (nn_train_opt_fit_batch), so that o, saved with the model, says how it
 * was trained. */
int lens_train(const lens_sim_opt *sim, const lens_prep *prep, nn_train_opt *o, const int *hidden,
               int n_hidden, size_t n_test, nn_model **m, lens_eval *ev, const ody_log *log, ody_err *err);

/* "AUROC 0.9876, precision 0.950, recall 0.900 at P > 0.5" into buf (len
 * LENS_EVAL_STR is enough); a figure the held-out set cannot give (a small
 * one may hold no lens) reads "n/a (no lens held out)", never "nan".
 * Returns buf. */
#define LENS_EVAL_STR 192
const char *lens_eval_str(const lens_eval *ev, char *buf, size_t len);

/* P(lens) for n cutouts. */
int lens_score(const nn_model *m, const lens_prep *prep, const float *pix, size_t n, double *p, ody_err *err);

/* A lens model file is an MLP file whose HISTORY records the preprocessing
 * (LENS_SIZE=..., one per line) and the simulation it was trained on. */
int lens_model_save(const char *path, const nn_model *m, const nn_train_opt *o, const lens_prep *prep,
                    const lens_sim_opt *sim, const lens_eval *ev, ody_err *err);
int lens_model_load(const char *path, nn_model **m, lens_prep *prep, ody_err *err);

#endif
