/* st_local.c — stage "local": every object's nearest neighbours in the
 * standardised feature space among a reference set (every object, or a
 * seeded sample of local.reference for a large catalog; exact search), its
 * distance to the local.k-th of them, its local outlier factor, LOCAL,
 * which asks both to be high, CONTEXT, its values that none of those
 * neighbours has, and HEAP, a value it shares with a small group. */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "knn.h"
#include "stage.h"

static int load_local(run_state *st, ody_err *err)
{
    size_t K = (size_t)st->K;
    int rc = store_load_index(st, "local.fits", "NEAREST_ROWS", K, (int32_t)st->n, st->near, err);
    if (!rc) rc = store_load_rows(st, "local.fits", "NEAREST_DIST", TFLOAT, K, st->near_dist, err);
    if (!rc) rc = store_load_rows(st, "local.fits", "KNN_DIST", TDOUBLE, 1, st->score[CFG_SCORE_KNN], err);
    if (!rc) rc = store_load_rows(st, "local.fits", "LOF", TDOUBLE, 1, st->score[CFG_SCORE_LOF], err);
    if (!rc) rc = store_load_rows(st, "local.fits", "LOCAL", TDOUBLE, 1, st->score[CFG_SCORE_LOCAL], err);
    if (!rc) rc = store_load_rows(st, "local.fits", "CONTEXT", TDOUBLE, 1, st->score[CFG_SCORE_CONTEXT], err);
    if (!rc && st->score[CFG_SCORE_HEAP])
        rc = store_load_rows(st, "local.fits", "HEAP", TDOUBLE, 1, st->score[CFG_SCORE_HEAP], err);
    if (!rc && st->heap_feat) rc = store_load_index(st, "local.fits", "HEAP_FEATURE", 1, st->F, st->heap_feat, err);
    return rc;
}

int stage_local_score(run_state *q, const run_state *ref, ody_err *err)
{
    size_t n = stage_rows(q), nr = stage_rows(ref);
    double *zk = malloc((n ? n : 1) * sizeof *zk), *zl = malloc((n ? n : 1) * sizeof *zl);
    int rc = ody_comm_agree(ref->comm, !zk || !zl ? ody_fail(err, ODY_ENOMEM, "out of memory") : 0, err);
    if (!rc) rc = rf_robust_z_comm(ref->comm, ref->score[CFG_SCORE_KNN], nr, q->score[CFG_SCORE_KNN], n, zk, err);
    if (!rc) rc = rf_robust_z_comm(ref->comm, ref->score[CFG_SCORE_LOF], nr, q->score[CFG_SCORE_LOF], n, zl, err);
    for (size_t i = 0; !rc && i < n; i++)
        q->score[CFG_SCORE_LOCAL][i] = zk[i] > 0 && zl[i] > 0 ? sqrt(zk[i] * zl[i]) : 0;
    free(zk);
    free(zl);
    return rc;
}

/* ================================================================ context */

static const float *row_of(const void *st, size_t r) { return stage_row(st, r); }

int stage_context(run_state *q, const run_state *ref, const int32_t *rows, ody_err *err)
{
    /* ref's lists and rows give the reference rows' gaps, and those the
     * typical gaps; q's lists name ref's reference rows. */
    knn_context_in in = {stage_rows(ref), ref->F, ref->K, ref->X, ref->near, row_of, ref, ref->c->threads};
    size_t m = stage_reference_size(ref), F = (size_t)ref->F;
    double *typ = malloc((F + 1) * sizeof *typ);
    float *G = malloc((m * F + 1) * sizeof *G);
    int rc = ody_comm_agree(ref->comm, typ && G ? 0 : ody_fail(err, ODY_ENOMEM, "out of memory"), err);
    if (!rc) rc = knn_context_ref(ref->comm, &in, ref->lo, rows, m, G, err);
    if (!rc) rc = ody_comm_agree(ref->comm, knn_context_typical(G, m, ref->F, typ, err), err);
    in.n = stage_rows(q);
    in.X = q->X;
    in.idx = q->near;
    if (!rc) rc = ody_comm_agree(ref->comm, knn_context(&in, typ, G, rows, m, q->score[CFG_SCORE_CONTEXT], err), err);
    free(typ);
    free(G);
    return rc;
}

/* ================================================================ heap */

static int ref_rows(const run_state *st, const int32_t *ref, size_t m, float *out, ody_err *err);

int stage_wants_heap(const cfg *c)
{
    return (c->detectors >> CFG_SCORE_HEAP & 1) || c->rank_by == CFG_SCORE_HEAP;
}

/* Which of q's rows (from q->lo) are among the reference rows (sorted;
 * NULL: every row), into is_ref. */
static void mark_ref(const run_state *q, const int32_t *rows, size_t m, uint8_t *is_ref)
{
    size_t n = stage_rows(q), at = 0;
    for (size_t i = 0; i < n; i++) {
        if (!rows) { is_ref[i] = 1; continue; }
        while (at < m && (size_t)rows[at] < q->lo + i) at++;
        is_ref[i] = at < m && (size_t)rows[at] == q->lo + i;
    }
}

int stage_heap(run_state *q, const run_state *ref, const int32_t *rows, int self, ody_err *err)
{
    size_t m = stage_reference_size(ref), n = stage_rows(q);
    /* the reference rows' values: kept when the other rows were dropped,
     * the catalog itself when every row is one, else copied or fetched */
    const float *Xr = ref->keep.Xref ? ref->keep.Xref : rows ? NULL : ref->cat->X;
    float *got = Xr || !rows ? NULL : malloc((m ? m : 1) * (size_t)ref->F * sizeof *got);
    uint8_t *is_ref = self ? malloc(n + 1) : NULL;
    int rc = !Xr && !rows ? ody_fail(err, ODY_EINTERNAL, "heap: the catalog's rows are not held here")
           : (!Xr && !got) || (self && !is_ref) ? ody_fail(err, ODY_ENOMEM, "out of memory") : 0;
    rc = ody_comm_agree(ref->comm, rc, err);
    if (!rc && got) rc = ref_rows(ref, rows, m, got, err);  /* every process together */
    knn_heap *h = NULL;
    if (!rc) rc = ody_comm_agree(ref->comm, knn_heap_create(Xr ? Xr : got, m, ref->F, ref->K, &h, err), err);
    free(got);
    if (rc) {
        free(is_ref);
        return rc;
    }
    if (is_ref) mark_ref(q, rows, m, is_ref);
    knn_heap_score(h, q->X, n, is_ref, q->c->threads, q->score[CFG_SCORE_HEAP], q->heap_feat);
    knn_heap_destroy(h);
    free(is_ref);
    return 0;
}

int32_t *stage_reference(const run_state *st, size_t m) { return stage_sample(st, m, 0x10ca1); }

int32_t *stage_sample(const run_state *st, size_t m, uint64_t stream)
{
    size_t n = st->n;
    if (m >= n) return NULL;
    int32_t *ref = malloc(m * sizeof *ref);
    if (!ref) return NULL;
    ody_rng r;
    ody_rng_stream(&r, (unsigned long long)st->c->seed, stream);
    size_t got = 0;
    for (size_t i = 0; i < n && got < m; i++)
        if (ody_rng_below(&r, n - i) < m - got) ref[got++] = (int32_t)i;
    return ref;
}

size_t stage_reference_size(const run_state *st)
{
    return (size_t)st->c->local_ref < st->n ? (size_t)st->c->local_ref : st->n;
}

/* Principal components to search on (0: the features themselves). */
static int components(const run_state *st)
{
    int P = st->c->local_pc;
    if (P == 0) P = (double)st->n * (double)stage_reference_size(st) * st->F > 1e12 ? 64 : 0;
    return P > 0 && P < st->F ? P : 0;
}

/* The search space as fitted on st's catalog: its standardisation, and
 * its principal axes V (F x P) when P > 0. */
typedef struct space {
    knn_scale sc;
    float *V;
    int P, d;
} space;

static void space_free(space *sp)
{
    knn_scale_free(&sp->sc);
    free(sp->V);
}

/* The space fitted on m rows Xr, the reference rows: a sample of 20,000
 * (local.reference) standardises as well as every row would, and then no
 * process needs every row to find it. */
static int space_fit(const run_state *st, const float *Xr, size_t m, space *sp, ody_err *err)
{
    int F = st->F;
    memset(sp, 0, sizeof *sp);
    sp->P = components(st);
    sp->d = sp->P ? sp->P : F;
    sp->V = sp->P ? malloc((size_t)F * sp->P * sizeof *sp->V) : NULL;
    int rc = (sp->P && !sp->V) || knn_scale_fit(&sp->sc, Xr, m, F) ? ody_fail(err, ODY_ENOMEM, "out of memory") : 0;
    if (!rc && sp->P) rc = knn_pca(Xr, m, F, &sp->sc, sp->P, (uint64_t)st->c->seed, sp->V, err);
    if (rc) space_free(sp);
    return rc;
}

/* The reference rows' features (the m rows ref) into out: copied when
 * this process holds the catalog, else fetched from the processes that
 * hold them (every process together). */
static int ref_rows(const run_state *st, const int32_t *ref, size_t m, float *out, ody_err *err)
{
    size_t F = (size_t)st->F;
    if (st->cat->X) {
        for (size_t q = 0; q < m; q++) memcpy(out + q * F, st->cat->X + (size_t)ref[q] * F, F * sizeof *out);
        return 0;
    }
    size_t *rows = malloc((m ? m : 1) * sizeof *rows);
    int rc = ody_comm_agree(st->comm, rows ? 0 : ody_fail(err, ODY_ENOMEM, "out of memory"), err);
    for (size_t q = 0; !rc && q < m; q++) rows[q] = (size_t)ref[q];
    if (!rc) rc = stage_fetch_rows(st, rows, m, out, err);
    free(rows);
    return rc;
}

/* The reference rows of st (every row when the sample is all of them: the
 * catalog itself) into *Xr, *m; *owned when the caller frees them. */
static int with_ref_rows(const run_state *st, const float **Xr, size_t *m, int *owned, ody_err *err)
{
    *m = stage_reference_size(st);
    *owned = 0;
    *Xr = NULL;
    int32_t *ref = stage_reference(st, *m);
    if (!ref) {
        *Xr = st->cat->X;
        return *m < st->n || !*Xr ? ody_fail(err, ODY_ENOMEM, "out of memory") : 0;
    }
    float *X = malloc(*m * (size_t)st->F * sizeof *X);
    int rc = ody_comm_agree(st->comm, X ? 0 : ody_fail(err, ODY_ENOMEM, "out of memory"), err);
    if (!rc) rc = ref_rows(st, ref, *m, X, err);
    free(ref);
    if (rc) {
        free(X);
        return rc;
    }
    *Xr = X;
    *owned = 1;
    return 0;
}

/* The space fitted on st's reference rows. */
static int space_fit_ref(const run_state *st, space *sp, ody_err *err)
{
    const float *Xr;
    size_t m;
    int owned, rc = with_ref_rows(st, &Xr, &m, &owned, err);
    if (!rc) rc = space_fit(st, Xr, m, sp, err);
    if (owned) free((void *)Xr);
    return rc;
}

int stage_scale_fit(const run_state *st, knn_scale *sc, ody_err *err)
{
    const float *Xr;
    size_t m;
    int owned, rc = with_ref_rows(st, &Xr, &m, &owned, err);
    if (!rc && knn_scale_fit(sc, Xr, m, st->F)) rc = ody_fail(err, ODY_ENOMEM, "out of memory");
    if (owned) free((void *)Xr);
    return rc;
}

/* ================================================================ dropping the other rows */

void stage_keep_free(stage_keep *k)
{
    free(k->ref);
    free(k->Xref);
    if (k->space) space_free(k->space);
    free(k->space);
    memset(k, 0, sizeof *k);
}

const knn_scale *stage_kept_scale(const run_state *st)
{
    return st->keep.space ? &((const space *)st->keep.space)->sc : NULL;
}

long stage_ref_index(const run_state *st, size_t i)
{
    size_t a = 0, b = st->keep.m;  /* the reference rows are sorted */
    while (a < b) {
        size_t mid = a + (b - a) / 2;
        if ((size_t)st->keep.ref[mid] < i) a = mid + 1;
        else b = mid;
    }
    return a < st->keep.m && (size_t)st->keep.ref[a] == i ? (long)a : -1;
}

const float *stage_row(const run_state *st, size_t i)
{
    size_t F = (size_t)st->F;
    if (st->cat->X) return st->cat->X + i * F;
    if (i >= st->lo && i < st->hi) return st->X + (i - st->lo) * F;
    long a = stage_ref_index(st, i);
    return a >= 0 ? st->keep.Xref + (size_t)a * F : NULL;
}

int stage_keeps_all(const run_state *st)
{
    return ody_comm_size(st->comm) < 2 || stage_reference_size(st) >= st->n || st->c->dense;
}

int stage_drop_rows(run_state *st, ody_err *err)
{
    size_t m = stage_reference_size(st), F = (size_t)st->F, nl = stage_rows(st);
    if (stage_keeps_all(st) || st->keep.space) return 0;
    stage_keep *k = &st->keep;
    int parts = !st->cat->X;  /* read by parts: the reference rows fetched */
    k->space = calloc(1, sizeof(space));  /* zeroed: freeing it before it is fitted frees nothing */
    k->ref = stage_reference(st, m);
    k->Xref = malloc((m ? m : 1) * F * sizeof *k->Xref);
    if (!parts) st->X_own = malloc((nl ? nl : 1) * F * sizeof *st->X_own);
    int rc = k->space && k->ref && k->Xref && st->X_own ? 0 : ody_fail(err, ODY_ENOMEM, "out of memory");
    if (!(rc = ody_comm_agree(st->comm, rc, err))) rc = ref_rows(st, k->ref, m, k->Xref, err);
    if (!rc && (rc = space_fit(st, k->Xref, m, k->space, err))) {
        free(k->space);
        k->space = NULL;
    }
    if ((rc = ody_comm_agree(st->comm, rc, err))) {
        stage_keep_free(k);
        if (!parts) {
            free(st->X_own);
            st->X_own = NULL;
        }
        return rc;
    }
    k->m = m;
    if (!parts) memcpy(st->X_own, st->cat->X + st->lo * F, nl * F * sizeof *st->X_own);
    free(st->cat->X);
    st->cat->X = NULL;
    st->X = st->X_own;
    if (st->have_ctx0) {  /* the weirdness stage's pass, for the similarity stage: now over these rows */
        st->ctx0.X = st->X;
        st->ctx0.own_rows = 1;
    }
    ody_logf(st->log, ODY_LOG_DEBUG, "run: this process keeps rows %zu to %zu of the features from here on", st->lo,
             st->hi);
    return 0;
}

/* n rows X into *Y (n x sp->d, malloc'd) in the search space. */
static int to_space(const run_state *st, const space *sp, const float *X, size_t n, float **Y, ody_err *err)
{
    *Y = malloc((n ? n : 1) * (size_t)sp->d * sizeof **Y);
    if (!*Y) return ody_fail(err, ODY_ENOMEM, "out of memory");
    if (!sp->P) {
        knn_scale_rows(&sp->sc, X, n, *Y);
        return 0;
    }
    int rc = knn_project(X, n, st->F, &sp->sc, sp->V, sp->P, *Y, err);
    if (rc) { free(*Y); *Y = NULL; }
    return rc;
}

int stage_space(const run_state *st, const float *Q, size_t m, float **Z, float **Zq, int *d, ody_err *err)
{
    space sp;
    *Z = NULL;
    if (Zq) *Zq = NULL;
    int rc = space_fit_ref(st, &sp, err);
    if (rc) return rc;
    rc = to_space(st, &sp, st->cat->X, st->n, Z, err);
    if (!rc && Q) rc = to_space(st, &sp, Q, m, Zq, err);
    space_free(&sp);
    if (rc) { free(*Z); *Z = NULL; }
    *d = sp.d;
    return rc;
}

/* Every object among every object: the catalog in the search space, its
 * index, and each process's rows searched in leaf order (their lists
 * alone kept). */
static int search_all(run_state *st, const knn_opt *o, knn_method *used, int *d, ody_err *err)
{
    float *Z = NULL;
    knn_tree *t = NULL;
    int rc = stage_space(st, NULL, 0, &Z, NULL, d, err);
    if (!rc) rc = knn_build(Z, st->n, *d, NULL, st->n, &t, err);
    if (!rc) rc = knn_all(t, Z, st->n, o, st->near, st->near_dist, used, err);
    knn_destroy(t);
    free(Z);
    return rc;
}

/* Every object among the m rows ref (sorted): the index holds the sample
 * alone, and the catalog goes into the search space a block of rows at a
 * time — a whole copy was 4 bytes a value (0.8 GB at 10^7 x 20).  The
 * index labels its points by their place in ref, which orders them as
 * their rows do, so ties break as they would by row. */
static int search_sample(run_state *st, const int32_t *ref, size_t m, const knn_opt *o, knn_method *used, int *d,
                         ody_err *err)
{
    enum { QBLK = 65536 };
    size_t F = (size_t)st->F, K = (size_t)st->K, lo = st->lo, hi = st->hi;  /* this process's rows */
    space fitted, *sp = st->keep.space;  /* kept when the other rows were dropped */
    int rc = sp ? 0 : space_fit_ref(st, &fitted, err);
    if (rc) return rc;
    if (!sp) sp = &fitted;
    *d = sp->d;
    float *Xr = st->keep.Xref ? NULL : malloc(m * F * sizeof *Xr), *Zr = NULL;
    int32_t *excl = malloc(QBLK * sizeof *excl);
    knn_tree *t = NULL;
    rc = (Xr || st->keep.Xref) && excl ? 0 : ody_fail(err, ODY_ENOMEM, "out of memory");
    for (size_t q = 0; !rc && Xr && q < m; q++) memcpy(Xr + q * F, stage_row(st, (size_t)ref[q]), F * sizeof *Xr);
    if (!rc) rc = to_space(st, sp, Xr ? Xr : st->keep.Xref, m, &Zr, err);
    if (!rc) rc = knn_build(Zr, m, sp->d, NULL, m, &t, err);
    free(Xr);
    free(Zr);
    size_t at = 0;  /* the first place in ref at or after the row */
    while (at < m && (size_t)ref[at] < lo) at++;
    for (size_t b0 = lo; !rc && b0 < hi; b0 += QBLK) {
        size_t nb = hi - b0 < QBLK ? hi - b0 : QBLK;
        float *Zb = NULL;
        for (size_t i = 0; i < nb; i++) {
            while (at < m && (size_t)ref[at] < b0 + i) at++;
            excl[i] = at < m && (size_t)ref[at] == b0 + i ? (int32_t)at : -1;
        }
        rc = to_space(st, sp, st->X + (b0 - lo) * F, nb, &Zb, err);
        if (!rc) rc = knn_query_excl(t, Zb, nb, excl, o, st->near + (b0 - lo) * K, st->near_dist + (b0 - lo) * K, used, err);
        for (size_t q = 0; !rc && q < nb * K; q++) {
            int32_t *p = st->near + (b0 - lo) * K + q;
            if (*p >= 0) *p = ref[*p];
        }
        free(Zb);
    }
    knn_destroy(t);
    free(excl);
    if (sp == &fitted) space_free(&fitted);
    return ody_comm_agree(st->comm, rc, err);
}

static int search(run_state *st, ody_err *err)
{
    const cfg *c = st->c;
    size_t m = stage_reference_size(st);
    int32_t *ref = stage_reference(st, m);
    knn_opt o;
    knn_opt_init(&o);
    o.k = st->K;
    o.n_threads = c->threads;
    o.comm = st->comm;
    knn_method used = KNN_TREE;
    int d = st->F;
    int rc = m < st->n && !ref ? ody_fail(err, ODY_ENOMEM, "out of memory")
           : ref ? search_sample(st, ref, m, &o, &used, &d, err) : search_all(st, &o, &used, &d, err);
    if (rc) {
        free(ref);
        return rc;
    }
    if (d < st->F)
        ody_logf(st->log, ODY_LOG_INFO, "local: neighbours searched on the first %d principal components of %d features "
                 "(local.components)", d, st->F);
    ody_logf(st->log, ODY_LOG_INFO, "local: %d neighbours of %zu objects among %zu (%s search)", st->K, st->n, m,
             used == KNN_SCAN ? "blocked scan: high intrinsic dimension" : "k-d tree");
    int k = c->local_k < st->K ? c->local_k : st->K, kl = c->lof_k < st->K ? c->lof_k : st->K;
    for (size_t i = 0; i < stage_rows(st); i++) st->score[CFG_SCORE_KNN][i] = st->near_dist[i * (size_t)st->K + (size_t)(k - 1)];
    knn_lof_in li = {st->n, st->K, kl, st->near, st->near_dist, ref, ref ? m : 0};  /* lists name reference rows */
    rc = knn_lof_comm(st->comm, &li, st->score[CFG_SCORE_LOF], err);
    if (!rc) rc = stage_local_score(st, st, err);
    if (!rc) rc = stage_context(st, st, ref, err);
    if (!rc && st->score[CFG_SCORE_HEAP]) rc = stage_heap(st, st, ref, 1, err);
    free(ref);
    if (rc) return rc;
    fitsout_col cols[] = {{"NEAREST_ROWS", TINT, st->K, st->near, NULL, "0-based rows of catalog.fits (its ROW - 1); -1: none"},
                          {"NEAREST_DIST", TFLOAT, st->K, st->near_dist, NULL, NULL},
                          {"KNN_DIST", TDOUBLE, 1, st->score[CFG_SCORE_KNN], NULL, NULL},
                          {"LOF", TDOUBLE, 1, st->score[CFG_SCORE_LOF], NULL, NULL},
                          {"LOCAL", TDOUBLE, 1, st->score[CFG_SCORE_LOCAL], NULL,
                           "sqrt(z(KNN_DIST) z(LOF)), robust z-scores clipped at 0"},
                          {"CONTEXT", TDOUBLE, 1, st->score[CFG_SCORE_CONTEXT], NULL,
                           "mean over features of the gap to the nearest neighbour's value, over the neighbours' "
                           "own gaps"},
                          {"HEAP", TDOUBLE, 1, st->score[CFG_SCORE_HEAP], NULL,
                           "-log P(so many reference values within its k-th nearest), largest over features and scales"},
                          {"HEAP_FEATURE", TINT, 1, st->heap_feat, NULL, "0-based feature HEAP comes from; -1: none"}};
    rc = store_save_objects(st, "local.fits", "LOCAL", cols, st->score[CFG_SCORE_HEAP] ? 8 : 6, err);
    free(st->near_dist);  /* no later stage reads them: 8 bytes a neighbour an object */
    st->near_dist = NULL;
    return rc;
}

static int local(run_state *st, int run, ody_err *err)
{
    int K = st->c->local_k > st->c->lof_k ? st->c->local_k : st->c->lof_k;
    size_t m = stage_reference_size(st);
    st->K = (size_t)K < m ? K : (int)m - 1;
    if (st->K < K)  /* a small catalog: the lists hold every other object of the reference set */
        ody_logf(st->log, ODY_LOG_WARN, "local: max(local.k, local.lof_k) = %d is more than the %d other objects "
                 "to search among: the neighbour lists hold all %d, and KNN_DIST is the distance to the farthest",
                 K, st->K, st->K);
    size_t nl = stage_rows(st);
    st->near = malloc((nl * (size_t)st->K + 1) * sizeof *st->near);
    st->near_dist = malloc((nl * (size_t)st->K + 1) * sizeof *st->near_dist);
    int heap = stage_wants_heap(st->c);  /* HEAP and its feature exist only when asked for */
    if (heap) st->heap_feat = malloc((nl ? nl : 1) * sizeof *st->heap_feat);
    if (!st->near || !st->near_dist || !store_score(st, CFG_SCORE_KNN) || !store_score(st, CFG_SCORE_LOF) ||
        !store_score(st, CFG_SCORE_LOCAL) || !store_score(st, CFG_SCORE_CONTEXT) ||
        (heap && (!store_score(st, CFG_SCORE_HEAP) || !st->heap_feat)))
        return ody_fail(err, ODY_ENOMEM, "out of memory");
    return run ? search(st, err) : load_local(st, err);
}

const stage_def stage_local = {
    .name = "local",
    .what = "nearest neighbours in standardised feature space: kNN distance, local outlier factor, LOCAL, CONTEXT; "
            "HEAP when asked for",
    .keys = (const char *const[]){"local.", "seed", "score.detectors", "export.rank_by", NULL},  /* the last two: HEAP */
    .reads = (const char *const[]){"ingest", NULL},
    .writes = (const char *const[]){"local.fits", NULL},
    .version = 5,  /* 1: LOCAL; 2: principal axes and projections the same bits for any threads and processes;
                      3: the space fitted on the reference rows; 4: CONTEXT; 5: HEAP */
    .fn = local,
};
