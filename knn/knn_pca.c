/* knn_pca.c — the principal axes a high-dimensional search runs on, and
 * the projection of rows onto them (knn.h). */
#include "knn.h"

#include <gsl/gsl_cblas.h>  /* the CBLAS ABI; symbols resolve to OpenBLAS */
#include <math.h>
#include <stdlib.h>
#include <string.h>

/* ================================================================ projection */

/* Orthonormal columns of V (F x P, row-major) by modified Gram-Schmidt; a
 * column that vanishes is replaced by a unit vector. */
static void orthonormalize(float *V, int F, int P)
{
    for (int j = 0; j < P; j++) {
        for (int q = 0; q < j; q++) {
            double d = 0;
            for (int f = 0; f < F; f++) d += (double)V[(size_t)f * P + j] * V[(size_t)f * P + q];
            for (int f = 0; f < F; f++) V[(size_t)f * P + j] -= (float)(d * V[(size_t)f * P + q]);
        }
        double nn = 0;
        for (int f = 0; f < F; f++) nn += (double)V[(size_t)f * P + j] * V[(size_t)f * P + j];
        nn = sqrt(nn);
        if (!(nn > 1e-12)) {
            for (int f = 0; f < F; f++) V[(size_t)f * P + j] = f == j % F ? 1.0f : 0.0f;
            continue;
        }
        for (int f = 0; f < F; f++) V[(size_t)f * P + j] = (float)(V[(size_t)f * P + j] / nn);
    }
}

int knn_pca(const float *X, size_t n, int F, const knn_scale *sc, int P, uint64_t seed, float *Vout, ody_err *err)
{
    if (P < 1 || P >= F) return ody_fail(err, ODY_EINTERNAL, "knn_pca: %d components of %d features", P, F);
    size_t step = n > 4000 ? (n + 3999) / 4000 : 1, s = (n + step - 1) / step;
    float *A = malloc(s * (size_t)F * sizeof *A), *V = malloc((size_t)F * P * sizeof *V);
    float *U = malloc(s * (size_t)P * sizeof *U), *W = malloc((size_t)F * P * sizeof *W);
    if (!A || !V || !U || !W) {
        free(A), free(V), free(U), free(W);
        return ody_fail(err, ODY_ENOMEM, "out of memory projecting %d features", F);
    }
    for (size_t r = 0; r < s; r++) {
        const float *x = X + r * step * (size_t)F;
        if (sc) knn_scale_rows(sc, x, 1, A + r * (size_t)F);
        else memcpy(A + r * (size_t)F, x, (size_t)F * sizeof *A);
    }
    ody_rng g;
    ody_rng_stream(&g, seed, 0x9ca);
    for (size_t k = 0; k < (size_t)F * P; k++) V[k] = (float)(ody_rng_uniform(&g) - 0.5);
    orthonormalize(V, F, P);
    int blas = ody_blas_single();  /* BLAS splits a product among its threads by its shape: the same bits for any */
    for (int it = 0; it < 12; it++) {  /* U = A V, W = A' U: the top subspace, sharpened each step */
        cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasNoTrans, (int)s, P, F, 1.0f, A, F, V, P, 0.0f, U, P);
        cblas_sgemm(CblasRowMajor, CblasTrans, CblasNoTrans, F, P, (int)s, 1.0f, A, F, U, P, 0.0f, W, P);
        orthonormalize(W, F, P);
        float *t = V;
        V = W, W = t;
    }
    ody_blas_restore(blas);
    memcpy(Vout, V, (size_t)F * P * sizeof *V);
    free(A), free(V), free(U), free(W);
    return 0;
}

/* A block's rows go through the product padded to a multiple of PAD rows,
 * on one BLAS thread: BLAS rounds the rows of a partial tile differently
 * from a full one's, and splits the product among its threads by its
 * shape, and a row's projection must not depend on which block, of which
 * process's rows, it came in (under mpirun -np 3 every spectrum's
 * neighbour distances moved in the last bit). */
enum { PAD = 64 };

int knn_project(const float *X, size_t n, int F, const knn_scale *sc, const float *V, int P, float *out, ody_err *err)
{
    enum { BLOCK = 2048 };
    float *B = malloc((size_t)BLOCK * F * sizeof *B), *O = malloc((size_t)BLOCK * P * sizeof *O);
    if (!B || !O) {
        free(B);
        free(O);
        return ody_fail(err, ODY_ENOMEM, "out of memory projecting %d features", F);
    }
    int blas = ody_blas_single();
    for (size_t r0 = 0; r0 < n; r0 += BLOCK) {
        size_t nr = n - r0 < BLOCK ? n - r0 : BLOCK, np = (nr + PAD - 1) / PAD * PAD;
        const float *Z = X + r0 * (size_t)F;
        if (sc) knn_scale_rows(sc, Z, nr, B);
        else memcpy(B, Z, nr * (size_t)F * sizeof *B);
        memset(B + nr * (size_t)F, 0, (np - nr) * (size_t)F * sizeof *B);
        cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasNoTrans, (int)np, P, F, 1.0f, B, F, V, P, 0.0f, O, P);
        memcpy(out + r0 * (size_t)P, O, nr * (size_t)P * sizeof *O);
    }
    ody_blas_restore(blas);
    free(B);
    free(O);
    return 0;
}
