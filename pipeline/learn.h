/* learn.h — re-ranking from an astronomer's labels (prefix lrn_).
 *
 * An object labelled 1 (interesting) or 0 (not interesting) changes the
 * ranking two ways, each chosen by measurement (docs/BENCHMARKS.md,
 * "Learning from labels"):
 *   - its neighbours in standardised feature space move with it: every
 *     object gets strength x S x exp(-d^2 / 2h^2), signed by the label, where
 *     S is the labelled object's score when it was labelled and h is
 *     `bandwidth` times the median kNN distance (the local stage's), so a kind
 *     of artefact sinks together and objects like a find rise;
 *   - the detector that drove its score is trusted more (x 1 + reweight) or
 *     less (x 1 - reweight): the score is the largest weighted detector z
 *     (their mean with score.combine: mean), so without labels it is the
 *     default score itself.  Off by default (learn.reweight 0): with the
 *     default score of isolation, weirdness and LOCAL, every setting that
 *     reweights lost anomalies on some table.
 * A label costs O(N F): after one, the list is current in milliseconds.
 * Results depend only on the labels and their order, never on threads.
 */
#ifndef LEARN_H
#define LEARN_H

#include <stddef.h>
#include <stdint.h>

#include "cat.h"
#include "ody.h"

typedef struct lrn_opt {
    double bandwidth;   /* kernel width, in median kNN distances */
    double strength;    /* a label moves its neighbours by this x its score */
    double reweight;    /* detector weight step per label; 0: off */
    int mean;           /* the score combines detectors by their mean (score.combine: mean), not the max */
} lrn_opt;

void lrn_opt_init(lrn_opt *o);

typedef struct lrn {
    size_t n;
    int F, D;
    const float *Z;     /* n x F standardised features: borrowed, must outlive l */
    const double *zd;   /* n x D detector z-scores clipped at 0: borrowed */
    lrn_opt o;
    double h2;          /* 2 h^2 */
    double *w;          /* D detector weights, from 1 */
    double *adj;        /* n: the labels' kernel sums */
    double *score;      /* n: the current score */
    int8_t *label;      /* n: -1 unlabelled, 0, 1 */
} lrn;

/* Starts from the unsupervised score (the largest zd of each object).
 * knn_median: the median kNN distance in the same standardised space (the
 * kernel's scale).  l owns its arrays: lrn_free(). */
int lrn_init(lrn *l, const float *Z, const double *zd, size_t n, int F, int D, double knn_median,
             const lrn_opt *o, ody_err *err);

/* Applies label y (0 or 1) of object i; a second label of the same object
 * replaces the first's effect only in its label, both kernels stay: the
 * labels file refuses conflicts before this is called. */
void lrn_add(lrn *l, size_t i, int y);

/* The unlabelled object with the highest score (lowest index on ties), or
 * (size_t)-1 when every object is labelled. */
size_t lrn_next(const lrn *l);

void lrn_free(lrn *l);

/* ---------------------------------------------------------------- labels */

/* A labels file read and matched to the catalog. */
typedef struct lrn_labels {
    size_t n;           /* labels, in file order, each object once */
    size_t *row;        /* the object's row in the catalog (0-based) */
    int8_t *y;          /* 0 not interesting, 1 interesting */
    char **comment;     /* "" when none */
} lrn_labels;

/* Reads PATH — CSV (or ECSV, VOTable, FITS) with columns id and label, and
 * optionally comment — and matches each ID to the catalog's id column.  A
 * file that does not exist yet holds no labels; a header-only file neither.
 * A label other than 0 or 1, an ID not in the catalog, or an object
 * labelled both ways is an input error naming the file and line.  The same
 * label twice keeps the last comment.  *out is the caller's (lrn_labels_free);
 * on error it holds nothing. */
int lrn_labels_read(const char *path, const cat_col *id, size_t n_obj, lrn_labels *out, ody_err *err);
void lrn_labels_free(lrn_labels *l);

#endif
