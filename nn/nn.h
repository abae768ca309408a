/* nn.h — multilayer perceptron trained by mini-batch SGD and backpropagation
 * (prefix nn_).
 *
 * Layout after KANN: every weight and bias of the network lives in one
 * contiguous array (nn_model.w) and every gradient in another of the same
 * shape, so an optimizer step is one loop.  Layer l holds W_l (n_l x n_{l-1},
 * row-major) followed by b_l (n_l).  Activations are batch-major (B x n_l),
 * so a mini-batch is one gemm per layer forward and two backward.
 *
 * nn_real is float in the library; tests build a double variant of nn.c
 * (NN_DOUBLE) for the finite-difference gradient check.
 */
#ifndef NN_H
#define NN_H

#include <stddef.h>
#include <stdint.h>

#include "ody.h"

#ifdef NN_DOUBLE
typedef double nn_real;
#else
typedef float nn_real;
#endif

#define NN_MAX_LAYERS 16

typedef enum { NN_LINEAR = 0, NN_SIGMOID, NN_TANH, NN_RELU, NN_SOFTMAX } nn_act;
typedef enum { NN_MSE = 0, NN_BCE, NN_CCE } nn_loss;
typedef enum { NN_GLOROT_UNIFORM = 0, NN_GLOROT_NORMAL, NN_HE } nn_init;

int nn_act_parse(const char *s);      /* -1 if unknown */
const char *nn_act_name(nn_act a);
int nn_loss_parse(const char *s);
const char *nn_loss_name(nn_loss l);
int nn_init_parse(const char *s);
const char *nn_init_name(nn_init i);

/* ---------------------------------------------------------------- network */

typedef struct nn_arch {
    int n_in;                        /* input features */
    int n_layers;                    /* hidden + output layers, >= 1 */
    int size[NN_MAX_LAYERS];         /* units per layer; the last is the output */
    nn_act act[NN_MAX_LAYERS];
    nn_loss loss;
} nn_arch;

typedef struct nn_model {
    nn_arch arch;
    size_t n_par;                    /* weights + biases */
    nn_real *w;                      /* n_par parameters, layer after layer */
    size_t off[NN_MAX_LAYERS + 1];   /* start of layer l's W in w; b follows W */
    nn_real *mu, *sd;                /* n_in standardisation terms (x - mu) / sd */
    int standardized;
} nn_model;

/* Checks an architecture: sizes >= 1, softmax only on the output, BCE with a
 * sigmoid output, CCE with a softmax output of >= 2 units. */
int nn_arch_check(const nn_arch *a, ody_err *err);

/* Allocates a model with weights drawn by `init` from a GSL RNG seeded with
 * seed (Glorot / He; biases zero).  *out owned by the caller (nn_destroy). */
int nn_create(const nn_arch *a, nn_init init, uint64_t seed, nn_model **out, ody_err *err);
void nn_destroy(nn_model *m);

/* Forward pass for n rows of X (n x n_in; standardised by the model when it
 * learnt a standardisation); writes n x n_out outputs to Y, the same for
 * any n_threads (0: every core). */
int nn_predict(const nn_model *m, const nn_real *X, size_t n, int n_threads, nn_real *Y, ody_err *err);

/* The same where X holds rows row0 .. row0 + n - 1 of a larger table: a
 * row's output is the same bits whichever range of the table a caller
 * passes (processes each predicting their rows), because the rows go
 * through the matrix products in blocks of fixed size aligned to the
 * table's row numbers, padded at a range's ends (BLAS kernels round a
 * block's edge rows differently from its full tiles).  nn_predict is row0
 * 0. */
int nn_predict_rows(const nn_model *m, const nn_real *X, size_t n, size_t row0, int n_threads, nn_real *Y,
                    ody_err *err);

/* Mean loss over n rows (targets T, n x n_out; sample weights sw may be NULL)
 * and, if grad is not NULL, its gradient with respect to every parameter
 * (n_par values, plus l2 * w on the weights).  Inputs are used as given
 * (no standardisation).  Used by training and by the gradient check. */
double nn_loss_grad(const nn_model *m, const nn_real *X, const nn_real *T, const nn_real *sw,
                    size_t n, double l2, nn_real *grad);

/* ---------------------------------------------------------------- training */

typedef struct nn_train_opt {
    double lr;            /* learning rate, default 0.01 */
    double momentum;      /* default 0.9 */
    int nesterov;         /* default 1 */
    double lr_decay;      /* lr / (1 + decay * epoch), default 0 */
    double l2;            /* weight decay on W (not b), default 1e-4 */
    int batch;            /* default 64 */
    int max_epochs;       /* default 200 */
    int patience;         /* epochs without improvement before stopping, default 10 */
    double epsilon;       /* improvement that counts, default 1e-4 */
    double val_frac;      /* validation fraction, default 0.1; 0 disables early stopping */
    int class_weight;     /* 1: weight classes by n / (K n_k), default 0 */
    int standardize;      /* learn (x - mean) / std on the training rows, default 1 */
    nn_init init;         /* default NN_GLOROT_UNIFORM */
    uint64_t seed;        /* default 1 */
    int n_threads;        /* 0: every core.  Training uses at most 2 (one a
                             replica of local SGD); BLAS runs on one thread
                             so weights never depend on the count */
    const ody_comm *comm; /* NULL, or processes training one model together:
                             the replicas shared out (ody_comm_part), their
                             copies exchanged each round; the weights are
                             those of one process */
} nn_train_opt;

void nn_train_opt_init(nn_train_opt *o);
int nn_train_opt_check(const nn_train_opt *o, size_t n, ody_err *err);

/* Lowers o->batch to the training rows of n (those val_frac leaves) when
 * there are fewer: a small catalog or simulation then trains each step on
 * all its rows instead of failing on a default the user never set.
 * Returns that row count when it lowered the batch (for the caller to say
 * so), else 0, o unchanged. */
size_t nn_train_opt_fit_batch(nn_train_opt *o, size_t n);

typedef struct nn_history {
    int epochs;           /* epochs run */
    int best_epoch;       /* 1-based epoch whose weights were kept */
    double train_loss, val_loss;   /* train: running mean over the kept epoch */
    double train_acc, val_acc;
    double samples_per_s;
} nn_history;

/* Trains m in place on n rows (X n x n_in, targets T n x n_out).  Rows are
 * shuffled per epoch from the seed; the last val_frac of a seeded
 * permutation is held out.  On success m holds the best weights (by
 * validation loss when there is a validation set) and hist (may be NULL) the
 * summary.  Fails with ODY_EINPUT on NaN inputs or a diverging loss; m is
 * then left with its last finite weights. */
int nn_train(nn_model *m, const nn_train_opt *o, const nn_real *X, const nn_real *T, size_t n,
             nn_history *hist, const ody_log *log, ody_err *err);

/* A training set whose rows are made where they are used, never stored
 * whole (real + synthetic rows at survey scale would be gigabytes): get
 * writes row i's n_in inputs to x and n_out targets to t, the same every
 * time, from any thread. */
typedef struct nn_rows {
    size_t n;
    const void *ctx;
    void (*get)(const void *ctx, size_t i, nn_real *x, nn_real *t);
    /* NULL, or, for rows spread over the processes of o->comm (no process
     * able to make every row alone): rows idx[0..cnt) into X (cnt x n_in)
     * and T (cnt x n_out) on every process, made together — every process
     * calls it at the same points with the same idx; root >= 0: only
     * process root needs them (X elsewhere is then unspecified).  The
     * trainer then never calls get.  0, or nonzero when the processes
     * could not exchange the rows. */
    int (*fetch)(const void *ctx, const size_t *idx, size_t cnt, nn_real *X, nn_real *T, int root);
} nn_rows;

/* nn_train on rows made by rows->get, with the same result as on the
 * matrix of them.  The caller promises finite values (nn_train checks its
 * matrix); a loss that is not finite fails as a diverging one. */
int nn_train_rows(nn_model *m, const nn_train_opt *o, const nn_rows *rows, nn_history *hist, const ody_log *log,
                  ody_err *err);

/* One-hot or 0/1 targets for integer labels: n_out == 1 gives T[i] = y[i]
 * (binary), else T[i][y[i]] = 1.  Returns -1 if a label is out of range. */
int nn_targets(const int *y, size_t n, int n_out, nn_real *T);

/* Accuracy of predictions P (n x n_out) against targets T. */
double nn_accuracy(const nn_real *P, const nn_real *T, size_t n, int n_out);

/* ---------------------------------------------------------------- files */

/* FITS: primary header with the architecture and training options as
 * keywords; one image HDU per layer (LAYERn, n_out x (n_in + 1): W then b as
 * the last column); NORM (2 x n_in: mean, std) when standardised.
 * history (may be NULL) goes into the primary header as HISTORY cards. */
int nn_save(const nn_model *m, const nn_train_opt *o, const char *path, const char *history,
            int overwrite, ody_err *err);
int nn_load(const char *path, nn_model **out, ody_err *err);

#endif
