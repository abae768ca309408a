/* knn.h — exact nearest neighbours in feature space and the local anomaly
 * scores built on them (prefix knn_).
 *
 * A k-d tree (Bentley 1975; Friedman, Bentley & Finkel 1977) over the
 * standardised features: split on the dimension of largest spread at its
 * median, leaves of at most KNN_LEAF rows stored contiguously, built over
 * a reference set of M rows (all of them, or a sample for a large
 * catalog).  Building is O(M log M); a query visits O(log M) leaves when the
 * data's intrinsic dimension is low and degrades towards a scan of all M
 * points as it grows.  There a blocked scan takes over: one sgemm per block
 * of queries bounds every distance, and only the points that can still be
 * among the k nearest get an exact distance.  So N queries cost
 * O(N log M) in low dimension and O(N M F) — at BLAS speed — in high
 * dimension, never more.  Results are exact whichever search runs, and ties
 * in distance are broken by row, so lists do not depend on the method or
 * the thread count.
 *
 * The scores (kNN distance, the local outlier factor of Breunig et al.
 * 2000) are computed from the lists, so one search serves both.
 */
#ifndef KNN_H
#define KNN_H

#include <stddef.h>
#include <stdint.h>

#include "ody.h"

#define KNN_LEAF 16

typedef struct knn_tree knn_tree;

/* Each column's mean and standard deviation: z = (x - mean) / sd, 0 for a
 * constant column.  Kept apart from the data so that a wide catalog is
 * standardised a row at a time where it is read, never copied whole. */
typedef struct knn_scale {
    int F;
    double *mean, *sd;
} knn_scale;

/* Fits s to X (n x F); 0, or -1 when out of memory (s then empty). */
int knn_scale_fit(knn_scale *s, const float *X, size_t n, int F);
void knn_scale_free(knn_scale *s);

static inline float knn_z(const knn_scale *s, float x, int f)
{
    return s->sd[f] > 0 ? (float)((x - s->mean[f]) / s->sd[f]) : 0.0f;
}

/* z-scores of n rows of X into Z (n x F), which may be X. */
void knn_scale_rows(const knn_scale *s, const float *X, size_t n, float *Z);

/* Fit and apply in one: z-scores of each column of X into Z (which may be
 * X); 0, or -1 when out of memory. */
int knn_standardize(const float *X, size_t n, int F, float *Z);

/* Builds the index over the rows ref[0..m) of X (n x d, row-major; ref
 * strictly increasing), or over all n rows when ref is NULL (m ignored).
 * A point's label is its row in X.  The index keeps its own copy of those
 * rows; X is not kept.  *out owned by the caller (knn_destroy). */
int knn_build(const float *X, size_t n, int d, const int32_t *ref, size_t m, knn_tree **out, ody_err *err);
void knn_destroy(knn_tree *t);
size_t knn_size(const knn_tree *t);  /* points in the index */

#define KNN_K_MAX 1000

/* How the lists are found.  Both are exact and give identical lists; AUTO
 * runs the tree on up to 256 of the queries first and scans when the tree
 * would compute distances to more than an eighth of the points. */
typedef enum { KNN_AUTO, KNN_TREE, KNN_SCAN } knn_method;

typedef struct knn_opt {
    int k;                /* neighbours per query, 1..KNN_K_MAX; default 10 */
    int n_threads;        /* 0: every core */
    knn_method method;    /* default KNN_AUTO */
    const ody_comm *comm; /* knn_all: NULL, or processes that each search their rows (ody_comm_part),
                             each getting its rows' lists alone, from idx[0] and dist[0];
                             knn_query ignores it */
} knn_opt;

void knn_opt_init(knn_opt *o);

/* For every row i of X (n x d, the matrix the index was built from): its k
 * nearest points of the index other than point i itself, nearest first
 * (ties by label), as labels into idx and Euclidean distances into dist
 * (n x k each); k must be below the index size.  *used (may be NULL) says
 * which search ran.  On error idx and dist are unspecified. */
int knn_all(const knn_tree *t, const float *X, size_t n, const knn_opt *o, int32_t *idx, float *dist,
            knn_method *used, ody_err *err);

/* The same for m query rows Q (m x d) that are not in the catalog: no point
 * is excluded; k at most the index size. */
int knn_query(const knn_tree *t, const float *Q, size_t m, const knn_opt *o, int32_t *idx, float *dist,
              knn_method *used, ody_err *err);

/* The same for m query rows Q of which row i may be the stored point
 * labelled excl[i] (-1: none), which is then not its neighbour: a catalog's
 * rows a block at a time against an index of a sample of it, without the
 * catalog in the search space whole.  k at most the index size - 1. */
int knn_query_excl(const knn_tree *t, const float *Q, size_t m, const int32_t *excl, const knn_opt *o, int32_t *idx,
                   float *dist, knn_method *used, ody_err *err);

/* An approximation of the first P principal axes (P < F) of the rows of X
 * (n x F) standardised by sc (NULL: as they are): subspace iteration from a
 * seeded start, on at most 4,000 rows taken at an even stride, with BLAS.
 * V (F x P) gets orthonormal columns.  Neighbours found in that subspace
 * stand in for those of the full space when an exact search over thousands
 * of features would cost too much.  Deterministic for a given seed. */
int knn_pca(const float *X, size_t n, int F, const knn_scale *sc, int P, uint64_t seed, float *V, ody_err *err);

/* The rows of X (n x F), standardised by sc (NULL: as they are) a block at
 * a time, projected on V (F x P): out is n x P.  0 or ODY_ENOMEM. */
int knn_project(const float *X, size_t n, int F, const knn_scale *sc, const float *V, int P, float *out, ody_err *err);

/* Local outlier factor of every row from its first k neighbours (lists of
 * width `width` >= k from knn_all): lrd(p) = 1 / mean over o of
 * max(kdist(o), d(p, o)); LOF(p) = mean lrd(o) / lrd(p).  A reachability of
 * 0 (k or more duplicates) is floored at a millionth of the median k-distance
 * so that duplicates give a finite factor. */
int knn_lof(size_t n, int width, int k, const int32_t *idx, const float *dist, double *lof, ody_err *err);

/* What knn_lof_comm reads: n rows' lists of width `width` >= k (idx,
 * dist), and the rows a list can name: ref[0..m) (sorted; a reference
 * sample the lists were searched among), or every row (ref NULL). */
typedef struct knn_lof_in {
    size_t n;
    int width, k;
    const int32_t *idx;
    const float *dist;
    const int32_t *ref;
    size_t m;
} knn_lof_in;

/* knn_lof where c's processes each hold their rows' lists (ody_comm_part
 * of n, from idx[0] and dist[0]) and get their rows' factors into lof[0..]:
 * the k-distances and densities of the rows a list can name (what a
 * neighbour anywhere needs) are shared, 12 bytes a row — of the reference
 * sample alone when there is one, so that no process holds a value of
 * every row — and the median picked exactly (ody_select), so the factors
 * are knn_lof's for any number of processes.  ODY_EINTERNAL when a list
 * names a row outside ref. */
int knn_lof_comm(const ody_comm *c, const knn_lof_in *in, double *lof, ody_err *err);

/* The local outlier factor of m rows that are not in the catalog, from
 * their first k neighbours among it (qidx, qdist: m lists of width qwidth,
 * rows of the catalog) and the catalog's own lists (idx, dist: n lists of
 * width `width`, as for knn_lof). */
int knn_lof_query(size_t n, int width, int k, const int32_t *idx, const float *dist, size_t m, int qwidth,
                  const int32_t *qidx, const float *qdist, double *lof, ody_err *err);

/* ================================================================ context
 *
 * CONTEXT: how far an object's value in each feature lies from the nearest
 * value any of its neighbours has there (its gap), against the gaps its
 * neighbours have there themselves — at least the median gap of the rows
 * a list can name (the reference set) — averaged over the features.  An
 * object whose neighbours (in every feature at once) all differ from it in
 * one feature, where they agree among themselves — a star's colours at a
 * galaxy's redshift — has a large ratio there although neither its
 * distance nor its density sets it apart; an object in a sparse region, whose neighbours' gaps are as
 * large as its own, does not.  Gaps are in the features' own units, so
 * their scale does not matter; a feature whose gaps are all 0 adds
 * nothing. */

/* What the context functions read: n objects' features X (n x F), and
 * their neighbour lists idx (n x width, rows of the catalog, -1: none),
 * whose features row(ctx, r) returns (NULL: not held here, an error). */
typedef struct knn_context_in {
    size_t n;
    int F, width;
    const float *X;
    const int32_t *idx;
    const float *(*row)(const void *ctx, size_t r);
    const void *ctx;
    int n_threads;  /* 0: every core */
} knn_context_in;

/* The gaps of the rows a list can name into G (m x F, the caller's): the
 * rows ref[0..m) (sorted; a reference sample), or every row (ref NULL, m
 * the catalog's rows).  in holds this process's rows, from row lo; each
 * process fills the rows it holds and the processes of c share them, so
 * that every process gets all of G.  0, ODY_EIO or ODY_EINTERNAL. */
int knn_context_ref(const ody_comm *c, const knn_context_in *in, size_t lo, const int32_t *ref, size_t m, float *G,
                    ody_err *err);

/* Each feature's typical gap into typ[0..F): the median of the m rows'
 * gaps G (knn_context_ref's: the same on every process), or, when over
 * half of them are 0, their mean.  0 or ODY_ENOMEM. */
int knn_context_typical(const float *G, size_t m, int F, double *typ, ody_err *err);

/* CONTEXT of in's n objects into out[0..n), from the nameable rows' gaps
 * G, ref, m (knn_context_ref's) and their typical gaps typ
 * (knn_context_typical's), of the catalog the lists name.  0 or ODY_EINTERNAL
 * (a list names a row outside ref); out unspecified on error. */
int knn_context(const knn_context_in *in, const double *typ, const float *G, const int32_t *ref, size_t m,
                double *out, ody_err *err);

/* ================================================================ heap
 *
 * HEAP: a small group of objects that share a value in one feature where
 * the rest of the catalog is spread out around it — a pipeline default
 * (stars at redshift 0 among galaxies), a sentinel, a saturation limit.
 * For each feature, a the distance from the object's value to the k-th
 * nearest of the reference values (at least the median of that distance
 * over the reference rows) and, at a wider scale k2, b the distance to the
 * k2-th nearest: with the density around it even, k2 a / b values would be
 * expected within a, and k are there.  HEAP is the largest -log P(X >= k),
 * X Poisson with that mean, over the features and the scales (k2 = 4k,
 * then doubling while k2 stays within 2% of the reference rows).  A
 * feature where over half the values tie (a median distance of 0: discrete
 * data, where every value is a heap) is skipped; a heap larger than k2 is
 * not a small group and scores nothing at that scale.  Scale-free in each
 * feature; 0 for an object in smooth data. */

#define KNN_HEAP_SCALES 8

typedef struct knn_heap knn_heap;

/* The m reference rows' values V (m x F, row-major; the caller's, copied)
 * sorted feature by feature, with each feature's median distance to the
 * k-th nearest other value, into *out (destroy with knn_heap_destroy).
 * 0, ODY_ENOMEM or ODY_EINTERNAL (k < 1); *out NULL on error. */
int knn_heap_create(const float *V, size_t m, int F, int k, knn_heap **out, ody_err *err);
void knn_heap_destroy(knn_heap *h);

/* HEAP of n objects X (n x F) into out[0..n), and, unless feat is NULL,
 * into feat[0..n) the feature it comes from (the first of equals; -1 when
 * HEAP is 0 for want of a scale); is_ref[i] nonzero when object i is one of
 * the reference rows (its own value then left out), or NULL when none is.
 * The same bits for any n_threads (0: every core). */
void knn_heap_score(const knn_heap *h, const float *X, size_t n, const uint8_t *is_ref, int n_threads, double *out,
                    int32_t *feat);

#endif
