/* rf.h — random forest, unsupervised weirdness and forest similarity (prefix rf_).
 *
 * The unsupervised method of Baron & Poznanski (2017, MNRAS 465, 4530):
 * real objects (label 0) against synthetic ones (label 1) drawn from the
 * real marginals; then a forest proximity between real objects built from
 * the leaves they share, and a weirdness score per object.
 *
 * Trees are CART classifiers (Gini) stored as flat arrays indexed by node id,
 * both children adjacent (right = left + 1).  Each tree draws from its own RNG
 * stream derived from (seed, tree index), and trees are concatenated in index
 * order, so a forest is bit-identical for any number of threads.
 *
 * Split finding: each feature of the training set is binned once into at
 * most 256 quantile bins (one byte a value; synthetic rows are drawn where
 * they are read, never stored), whose edges come from every value, or past
 * rf_opt.bin_sample rows from that many rows spread evenly.  Nodes with many samples find the best split
 * among bin boundaries from class histograms (O(n) per feature); nodes with
 * few samples, or whose samples all share one bin, sort the values and
 * consider every boundary.  Fully grown trees thus end in exactly pure
 * leaves, as exact CART does; only the choice of split at large nodes is
 * restricted to quantile boundaries.  Thresholds are midpoints between the
 * values either side (a bin boundary's: the bins' extreme values), and a
 * sample goes left when x <= thr.
 */
#ifndef RF_H
#define RF_H

#include <stddef.h>
#include <stdint.h>

#include "ody.h"

/* ---------------------------------------------------------------- options */

typedef enum {
    RF_MAXF_SQRT = 0,  /* floor(sqrt(F)), at least 1 (default) */
    RF_MAXF_LOG2 = 1,  /* floor(log2(F)), at least 1 */
    RF_MAXF_INT = 2,   /* max_features_value features */
    RF_MAXF_FRAC = 3,  /* max_features_value * F, at least 1 */
    RF_MAXF_ALL = 4
} rf_maxf;

typedef struct rf_opt {
    int n_trees;             /* default 500 */
    rf_maxf max_features;    /* default RF_MAXF_SQRT */
    double max_features_value;
    int min_samples_leaf;    /* default 1; counted in bootstrap draws */
    int max_depth;           /* 0: unlimited (default) */
    int bootstrap;           /* 1 (default): draw with replacement */
    size_t max_samples;      /* draws per tree; 0: the number of training rows */
    uint64_t seed;           /* default 1 */
    int n_threads;           /* 0: every core */
    const ody_comm *comm;    /* NULL, or processes that train one forest together: each grows its block of
                                trees (ody_comm_part), and all get the whole forest and OOB votes */
    size_t bin_sample;       /* 0: 2^21.  A training set of more rows takes each feature's quantile-bin
                                edges from this many of its rows, evenly spread, instead of sorting every
                                value (memory a coding thread: 16 bytes a sampled row) */
} rf_opt;

void rf_opt_init(rf_opt *o);

/* Checks o against a training set of n rows and F features.  Returns 0, or
 * ODY_EINPUT with a message naming the option and its valid range. */
int rf_opt_check(const rf_opt *o, size_t n, int F, ody_err *err);

/* Candidate features per split for F features. */
int rf_mtry(const rf_opt *o, int F);

/* Parses "sqrt", "log2", "all", an integer ("8") or a fraction ("0.3"). */
int rf_maxf_parse(const char *s, rf_maxf *kind, double *value);

/* ---------------------------------------------------------------- forest */

typedef struct rf_node {
    float thr;      /* go left when x[feat] <= thr */
    int32_t feat;   /* -1 for a leaf */
    int32_t left;   /* index of the left child within the tree; right = left + 1 */
} rf_node;

typedef struct rf_forest {
    int n_trees, n_feat;
    size_t *tree_off;   /* n_trees + 1 offsets into node[] */
    rf_node *node;      /* every tree's nodes, tree after tree */
    uint32_t *cnt;      /* 2 per node: in-bag draws of class 0 and class 1 */
    rf_opt opt;         /* the options it was trained with */
    size_t n_train;     /* training rows */
    double oob_accuracy;/* NaN when not computed */
} rf_forest;

typedef enum {
    RF_SYNTH_MARGINAL = 0,  /* each feature resampled with replacement (default) */
    RF_SYNTH_UNIFORM = 1    /* each feature uniform over its range */
} rf_synth;

int rf_synth_parse(const char *s);
const char *rf_synth_name(rf_synth m);

/* What a forest is trained on: the n rows of X (row-major, n x F, finite
 * values) labelled y, or, with synth set, those rows labelled 0 followed by
 * n synthetic rows labelled 1 (rf_synthesize's rows for mode and
 * synth_seed).  Synthetic rows are drawn where the trees read them and never
 * stored: the training set costs about one byte per value beside X. */
typedef struct rf_data {
    const float *X;
    size_t n;
    int F;
    const uint8_t *y;    /* n labels in {0, 1}; ignored (may be NULL) with synth */
    int synth;
    rf_synth mode;
    uint64_t synth_seed;
    int parts;           /* X holds this process's real rows alone, rows ody_comm_part(o->comm) of n
                            (synth only, and rf_parts_fit): see rf_train */
} rf_data;

/* Whether a forest of o on n real rows plus as many synthetic ones can
 * train with its rows spread over processes (rf_data.parts): bootstrapped
 * trees of max_samples draws, at most a quarter of the training rows, so
 * that fetching each tree's rows moves less than putting every row
 * together. */
int rf_parts_fit(const rf_opt *o, size_t n);

/* Trains a forest on d.  If oob_p1 is not NULL it receives, for the first
 * n_oob rows of X (n_oob <= d->n), the mean over the trees where the row was
 * out of bag of the leaf's class-1 fraction (NaN where never out of bag), and
 * forest->oob_accuracy is set over those rows.  On success *out is a new
 * forest owned by the caller (rf_destroy).  With d->parts (several
 * processes, o->comm), d->X holds this process's nl real rows alone and
 * oob_p1 their votes (n_oob = nl); d->n counts every process's rows.  The
 * trees and votes are those of one process holding every row. */
int rf_train(const rf_opt *o, const rf_data *d, double *oob_p1, size_t n_oob, rf_forest **out, const ody_log *log,
             ody_err *err);
void rf_destroy(rf_forest *f);

/* Leaf (node index within tree t) reached by row x. */
static inline int32_t rf_leaf(const rf_forest *f, int t, const float *x)
{
    const rf_node *nd = f->node + f->tree_off[t];
    int32_t k = 0;
    while (nd[k].feat >= 0) k = nd[k].left + (x[nd[k].feat] > nd[k].thr);
    return k;
}

/* Leaves of n rows of X (row-major, n_feat columns) in the tree whose nodes
 * start at nd: the batched form of rf_leaf, several times faster. */
void rf_leaves(const rf_node *nd, int n_feat, const float *X, size_t n, int32_t *leaf);

/* Class-1 fraction of each row's leaf averaged over trees (predict_proba). */
int rf_predict(const rf_forest *f, const float *X, size_t n, int n_threads, double *p1, ody_err *err);

/* Saves as a FITS binary table, one row per node (TREE, NODE, FEATURE,
 * THRESH, LEFT, N_REAL, N_SYNTH) with the options as keywords, and loads it
 * back.  feat_names (may be NULL) are written as FEATnnn keywords and
 * history (may be NULL) as HISTORY cards, one per line. */
int rf_save(const rf_forest *f, const char *path, char *const *feat_names, const char *history,
            int overwrite, ody_err *err);
int rf_load(const char *path, rf_forest **out, ody_err *err);

/* ---------------------------------------------------------------- unsupervised */

/* Fills S (n x F) with synthetic rows drawn from X (n x F): row j, feature
 * f is X[r][f] with r drawn for (seed, f, j) (marginal), or uniform over the
 * feature's range (uniform).  Each value is drawn on its own from a
 * counter-based stream, so any row can be made alone (rf_train does so) and
 * the result is the same for any thread count (n_threads: 0 = every core). */
int rf_synthesize(rf_synth mode, const float *X, size_t n, int F, uint64_t seed, int n_threads, float *S,
                  ody_err *err);

/* The same rows one at a time, for a consumer that makes them where it
 * uses them: a generator over X (read, not copied: X must outlive it) whose
 * rf_synth_row writes row j's F values, from any thread.  *out owned by the
 * caller (rf_synth_close). */
typedef struct rf_synthgen rf_synthgen;
int rf_synth_open(rf_synth mode, const float *X, size_t n, int F, uint64_t seed, rf_synthgen **out, ody_err *err);
void rf_synth_row(const rf_synthgen *g, size_t j, float *row);
void rf_synth_close(rf_synthgen *g);

/* A generator of the same rows for n real rows that no one process holds
 * (spread over processes): rf_synth_source names the real row whose value
 * a synthetic one takes, for the caller to read where it is; rf_synth_row
 * works only in uniform mode, between the features' ranges lo and hi
 * (F each, copied; ignored and may be NULL in marginal mode). */
int rf_synth_open_ranges(rf_synth mode, size_t n, int F, const float *lo, const float *hi, uint64_t seed,
                         rf_synthgen **out, ody_err *err);

/* The real row (of n) whose value of feature f synthetic row j takes, in
 * marginal mode; SIZE_MAX in uniform mode, whose values come from the
 * ranges alone. */
size_t rf_synth_source(const rf_synthgen *g, size_t j, int f);

/* Marginal mode: synthetic row j's values whose source rows are among the
 * real rows [lo, hi) that X holds (row lo first, F wide), and +0.0f for
 * the others — what one process of several writes of the row before an
 * integer sum over the processes puts it together.  Without a branch on
 * who holds a value, so that the reads of the values held here (a cache
 * miss each) overlap. */
void rf_synth_row_held(const rf_synthgen *g, size_t j, const float *X, size_t lo, size_t hi, float *row);

typedef enum {
    RF_LEAF_PURE_REAL = 0,     /* leaf holds no synthetic training draw (default) */
    RF_LEAF_MAJORITY_REAL = 1, /* real draws outnumber synthetic ones */
    RF_LEAF_ALL = 2            /* every leaf */
} rf_leaf_filter;

int rf_leaf_filter_parse(const char *s);
const char *rf_leaf_filter_name(rf_leaf_filter m);

/* Whether leaf k of tree t counts as "good" under the filter. */
static inline int rf_leaf_good(const rf_forest *f, int t, int32_t k, rf_leaf_filter filt)
{
    const uint32_t *c = f->cnt + 2 * (f->tree_off[t] + (size_t)k);
    return filt == RF_LEAF_ALL ? 1 : filt == RF_LEAF_PURE_REAL ? c[1] == 0 : c[0] > c[1];
}

/* Per-object forest statistics shared by the scores below. */
typedef struct rf_sim_ctx {
    const rf_forest *f;
    const float *X;       /* n x F real objects */
    size_t n;
    rf_leaf_filter filt;
    uint32_t *n_good;     /* per object: trees where its leaf is good; with own_rows, this process's
                             rows alone (n_good[i - good_lo]) */
    size_t good_lo;       /* the first object n_good holds: 0, or with own_rows this process's first row */
    uint32_t *leaf_n;     /* per node of the forest: good objects in that leaf */
    int n_threads;        /* for this and every function taking the ctx; 0: every core */
    const ody_log *log;   /* progress of weirdness and top-k similarity; NULL: silent */
    const ody_comm *comm; /* NULL, or processes that each hold all of X and share the work on it: each
                             computes its rows (ody_comm_part).  leaf_n reaches all (n_good too
                             unless own_rows); the
                             catalog's own W and top-k lists are each process's rows alone, from
                             W[0] (idx[0], sim[0]) for its first */
    int own_rows;         /* with comm: X holds this process's rows [lo, hi) alone, from X[0]
                             (rf_sim_ctx_init_own); the dense matrix is then refused */
} rf_sim_ctx;

/* Computes n_good for every object and leaf_n for every leaf; both are
 * allocated here and freed by rf_sim_ctx_free.  With comm, every process
 * calls it (and each function below taking the ctx) together. */
int rf_sim_ctx_init(rf_sim_ctx *ctx, const rf_forest *f, const float *X, size_t n,
                    rf_leaf_filter filt, int n_threads, const ody_comm *comm, ody_err *err);
void rf_sim_ctx_free(rf_sim_ctx *ctx);

/* The same where X holds this process's rows alone (ody_comm_part of n over
 * comm), as a distributed run keeps its catalog: every function taking the
 * ctx then reads only them, n_good is of those rows alone (no process holds
 * a count of every object), and what needs other rows' leaves or counts
 * (the top-k member lists) gathers their leaf numbers and counts them. */
int rf_sim_ctx_init_own(rf_sim_ctx *ctx, const rf_forest *f, const float *X, size_t n, rf_leaf_filter filt,
                        int n_threads, const ody_comm *comm, ody_err *err);

/* The faithful weirdness, in O(N*T) time and O(N + leaves) memory:
 *   sim[i][j] = count[i][j] / n_good[j],  W[i] = (1/N) sum_j (1 - sim[i][j]),
 * computed as W[i] = 1 - (1/N) sum_t good_t(i) * leafsum_t(leaf_t(i)) where
 * leafsum is the sum of 1/n_good[j] over the good objects in the leaf.  An
 * object good in no tree, or a column j with n_good[j] = 0, gives similarity
 * 0 (the authors' code divides by zero there), so such an object has W = 1. */
int rf_weirdness(const rf_sim_ctx *ctx, double *W, ody_err *err);

/* The same for m rows Q (m x F) that were not in the forest's catalog: each
 * compared with the ctx->n catalog objects, W = 1 - (1/N) sum_j sim(q, j).
 * A row equal to catalog object i gets W[i] exactly.  n_good (may be NULL)
 * gets each row's count of trees where its leaf is good. */
int rf_weirdness_query(const rf_sim_ctx *ctx, const float *Q, size_t m, double *W, uint32_t *n_good, ody_err *err);

/* The explicit pairwise formula, O(N^2 T): for tests on small N only. */
int rf_weirdness_pairwise(const rf_sim_ctx *ctx, double *W, ody_err *err);

/* Top-k similarity options.  The top-k lists are exact over the trees used:
 * all of them when the work fits, else the leading trees whose leaf member
 * lists fit in mem_budget bytes and whose pair updates (sum over good leaves
 * of members^2) fit in max_pairs.  Large leaves (a forest trained on small
 * subsamples of a large catalog) make pairs quadratic in the leaf size; the
 * budget keeps the cost bounded and the count of trees used is returned. */
typedef struct rf_topk_opt {
    int k;               /* neighbours per object, default 10 */
    size_t mem_budget;   /* default 1 GiB */
    double max_pairs;    /* default 2e9 (about a minute on 2 cores at 10^6 objects) */
    int leaf_sample;     /* default 64; 0: never sample.  A good leaf with
                            more members contributes, for every object in
                            it, a fixed systematic sample of this many
                            members weighted members / sample: an unbiased
                            estimate of the co-occurrence counts at a cost
                            bounded per object and tree */
} rf_topk_opt;

void rf_topk_opt_init(rf_topk_opt *o);

/* Top-k most similar objects of each object (self excluded), from per-tree
 * leaf member lists: idx[i*k + m], sim[i*k + m] sorted by decreasing
 * similarity (ties by increasing index); -1 / 0 pad when fewer exist.
 * sim = count / n_good over the trees used (estimated, and capped at 1,
 * where leaves were sampled).  *trees_used (may be NULL) receives how many
 * leading trees were used. */
int rf_topk(const rf_sim_ctx *ctx, const rf_topk_opt *o, int32_t *idx, float *sim,
            int *trees_used, ody_err *err);

/* The same lists for m rows Q (m x F) that are not in the catalog: each
 * row's k most similar catalog objects (no one excluded), over the trees
 * rf_topk uses for the same ctx and o. */
int rf_topk_query(const rf_sim_ctx *ctx, const rf_topk_opt *o, const float *Q, size_t m, int32_t *idx, float *sim,
                  int *trees_used, ody_err *err);

/* Mean distance (1 - sim) to the k most similar objects, from rf_topk output. */
void rf_knn_distance(size_t n, int k, const float *sim, double *out);

/* The dense similarity sim[i][j] for i, j < n as float32, written in row
 * blocks to a FITS image at path.  Refuses (ODY_EINPUT, pointing to top-k)
 * when the computation would need more than mem_budget bytes. */
int rf_dense_limit(size_t mem_budget, size_t n_trees);
int rf_dense_write(const rf_sim_ctx *ctx, const char *path, size_t mem_budget, int overwrite,
                   ody_err *err);

/* ---------------------------------------------------------------- isolation + default score */

/* An isolation forest (random feature, random threshold in the node's range,
 * subsamples of max_samples rows, depth limit ceil(log2 max_samples)) stored
 * in an rf_forest; a leaf's cnt[2k] is its subsample size. */
typedef struct rf_iso_opt {
    int n_trees;         /* default 500 */
    size_t max_samples;  /* default 256 */
    uint64_t seed;
    int n_threads;       /* 0: every core */
    /* NULL: X holds all n rows.  Else X holds only these rows of the n,
     * in this order (rf_iso_rows: every row the trees draw), for a caller
     * whose rows are spread over processes: the trees are the same. */
    const size_t *rows;
    size_t n_rows;
} rf_iso_opt;

void rf_iso_opt_init(rf_iso_opt *o);
int rf_iso_train(const rf_iso_opt *o, const float *X, size_t n, int F, rf_forest **out, ody_err *err);

/* The rows of n that the trees of o draw, sorted and each once, into *rows
 * (malloc'd; the caller frees it), *m of them (at most n_trees x
 * max_samples). */
int rf_iso_rows(const rf_iso_opt *o, size_t n, size_t **rows, size_t *m, ody_err *err);
/* The standard score 2^(-E[h(x)] / c(max_samples)) in (0, 1]; higher = more isolated. */
int rf_iso_score(const rf_forest *f, const float *X, size_t n, int n_threads, double *score, ody_err *err);

/* (v - median) / (1.4826 MAD) for n values v, median and MAD taken over
 * n_ref values ref (which may be v), with a mean-deviation fallback when the
 * MAD is 0.  A ref value of +inf is left out (a detector that measured
 * nothing there); when every one is, each z is 0. */
int rf_robust_z(const double *ref, size_t n_ref, const double *v, size_t n, double *z, ody_err *err);

/* The same where the reference values are spread over c's processes, each
 * holding its rows (ody_comm_part) of them at ref, nr here: the median and
 * MAD selected exactly across the processes (ody_select), so z is the same
 * as one process holding them all would find (rf_robust_z is c NULL).
 * Only the rare fallback (MAD 0) gathers every value, to sum them in the
 * same order. */
int rf_robust_z_comm(const ody_comm *c, const double *ref, size_t nr, const double *v, size_t n, double *z,
                     ody_err *err);

#endif
