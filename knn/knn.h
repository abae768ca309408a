/* knn.h — exact nearest neighbours in feature space and the local anomaly
 * scores built on them (prefix knn_).
 *
 * A k-d tree (Bentley 1975; Friedman, Bentley & Finkel 1977) over the
 * standardised features: split on the dimension of largest spread at its
 * median, leaves of at most KNN_LEAF rows stored contiguously.  Building is
 * O(N log N); a query visits O(log N) leaves when the dimension is low (up to
 * about 20 features) and degrades towards a scan of all N rows as it grows,
 * so all-neighbour lists cost O(N log N) in low dimension and at most
 * O(N^2 F) in high dimension.  Results are exact, and ties in distance are
 * broken by row index, so lists do not depend on the thread count.
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

/* z-scores of each column of X (n x F): (x - mean) / std, 0 for a constant
 * column; into Z (n x F), which may be X. */
void knn_standardize(const float *X, size_t n, int F, float *Z);

/* Builds the tree over n rows of X (n x d, row-major); the tree keeps its
 * own copy.  *out owned by the caller (knn_destroy). */
int knn_build(const float *X, size_t n, int d, knn_tree **out, ody_err *err);
void knn_destroy(knn_tree *t);

/* For every row of the tree: its k nearest other rows, nearest first (ties
 * by row), into idx and dist (n x k each; distances Euclidean).  k < n. */
int knn_all(const knn_tree *t, int k, int n_threads, int32_t *idx, float *dist, ody_err *err);

/* The same for m query rows Q (m x d) that are not in the tree (no row is
 * excluded): scoring new objects against a catalog. */
int knn_query(const knn_tree *t, const float *Q, size_t m, int k, int n_threads, int32_t *idx, float *dist,
              ody_err *err);

/* Local outlier factor of every row from its first k neighbours (lists of
 * width `width` >= k from knn_all): lrd(p) = 1 / mean over o of
 * max(kdist(o), d(p, o)); LOF(p) = mean lrd(o) / lrd(p).  A reachability of
 * 0 (k or more duplicates) is floored at a millionth of the median k-distance
 * so that duplicates give a finite factor. */
void knn_lof(size_t n, int width, int k, const int32_t *idx, const float *dist, double *lof);

#endif
