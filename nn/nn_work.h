/* nn_work.h — what the MLP's files share.  Private to nn/.
 *
 *   nn.c        the model: creation, forward and backward passes, loss
 *   nn_train.c  SGD training with momentum and early stopping
 *   nn_io.c     FITS model files
 */
#ifndef NN_WORK_H
#define NN_WORK_H

#include <gsl/gsl_cblas.h>  /* the CBLAS ABI; symbols resolve to OpenBLAS */
#include <stddef.h>

#include "nn.h"

#ifdef NN_DOUBLE
#define GEMM cblas_dgemm
#define RTYPE TDOUBLE
#define RIMG DOUBLE_IMG
#else
#define GEMM cblas_sgemm
#define RTYPE TFLOAT
#define RIMG FLOAT_IMG
#endif

/* BLAS runs on one thread inside this module (ody_blas_single): OpenBLAS's
 * multi-threaded sgemm rounds differently from its single-threaded one, and
 * weights must not depend on the thread count.  Mini-batches are small
 * enough that BLAS threads gain little. */

/* Per-batch buffers: activations A[l] (B x n_l; A[-1] is the input), the
 * output pre-activation (for stable losses), and one gradient buffer per
 * layer width. */
typedef struct work {
    size_t cap;             /* rows */
    nn_real *A[NN_MAX_LAYERS];
    nn_real *zout;
    nn_real *dA, *dB;       /* ping-pong, max width */
} work;

/* A model of architecture a with zero weights, mu 0 and sd 1. */
int nnw_model_alloc(const nn_arch *a, nn_model **out, ody_err *err);

int nnw_init(work *w, const nn_arch *a, size_t rows);   /* 0 or -1 */
void nnw_free(work *w);

/* Forward pass of B rows through every layer; returns the output buffer. */
const nn_real *nnw_forward(const nn_model *m, const nn_real *X, size_t B, work *w);

/* Loss and gradient of B rows (already standardised) into grad (may be
 * NULL), accumulated (+=) with rows weighted by sw[i] * scale. */
double nnw_batch_grad(const nn_model *m, const nn_real *X, const nn_real *T, const nn_real *sw, size_t B,
                      double scale, nn_real *grad, work *w);

/* (x - mu) / sd with the model's terms, n rows of X into out. */
void nnw_standardize(const nn_model *m, const nn_real *X, size_t n, nn_real *out);  /* out may be X */

/* The class of one output / target row (K = 1: > 0.5). */
int nnw_row_class(const nn_real *v, int K);

#endif
