/* st_parts.c — the catalog read by parts: with several processes, each
 * reads an equal share of the table's rows (CFITSIO row ranges, cat_opt's
 * first/count) and no process ever reads or holds the whole table.  What
 * needs every part is settled together: the counts, the medians that
 * impute missing values, the IDs' uniqueness, and the rows each process
 * holds from then on (the kept rows [lo, hi) of ody_comm_part, moved from
 * whoever read them).  The IDs, row numbers and pass-through columns are
 * put together on every process (the neighbour lists name objects by ID);
 * the features stay in parts.
 *
 * The result is the catalog one process reads alone, to the bit: the
 * features and carried columns row for row, the dropped list, and the
 * imputed values (the same medians, found by ody_select instead of a sort). */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "stage.h"

/* ================================================================ putting parts together */

/* Rows held by parts (this process's off[me+1] - off[me] rows of w bytes at
 * mine; off[R] in all) into one whole array on every process (malloc'd;
 * NULL on error, on every process alike). */
static void *share_parts(const ody_comm *c, const void *mine, const size_t *off, size_t w, ody_err *err)
{
    int R = ody_comm_size(c), me = ody_comm_rank(c);
    char *a = malloc(off[R] * w + 1);
    size_t *bo = malloc(((size_t)R + 1) * sizeof *bo);
    int rc = ody_comm_agree(c, a && bo ? 0 : ody_fail(err, ODY_ENOMEM, "out of memory for %zu rows", off[R]), err);
    if (!rc) {
        for (int p = 0; p <= R; p++) bo[p] = off[p] * w;
        if (off[me + 1] > off[me]) memcpy(a + bo[me], mine, bo[me + 1] - bo[me]);
        rc = ody_share(c, a, bo, err);
    }
    free(bo);
    if (rc) {
        free(a);
        return NULL;
    }
    return a;
}

/* A carried column's rows, from parts into whole (its buffers replaced). */
static int share_col(const ody_comm *c, cat_col *col, const size_t *off, ody_err *err)
{
    void **data = col->type == CAT_COL_STRING ? (void **)&col->s : col->type == CAT_COL_INT ? (void **)&col->i
                                                                                           : (void **)&col->f;
    size_t w = col->type == CAT_COL_STRING ? (size_t)col->width + 1 : 8;
    void *all = share_parts(c, *data, off, w, err);
    if (!all) return err->code ? err->code : ODY_ENOMEM;
    free(*data);
    *data = all;
    return 0;
}

static int share_array(const ody_comm *c, void *pp, const size_t *off, size_t w, ody_err *err)
{
    void **p = pp, *all = share_parts(c, *p, off, w, err);
    if (!all) return err->code ? err->code : ODY_ENOMEM;
    free(*p);
    *p = all;
    return 0;
}

/* Where each process's part of n things starts: off[p], and off[R] = the
 * sum, from this process's count `mine`. */
static int part_offsets(const ody_comm *c, size_t mine, size_t *off, ody_err *err)
{
    int R = ody_comm_size(c);
    int64_t *cnt = calloc((size_t)R, sizeof *cnt);
    if (!cnt) return ody_fail(err, ODY_ENOMEM, "out of memory");
    cnt[ody_comm_rank(c)] = (int64_t)mine;
    int rc = ody_allreduce(c, cnt, (size_t)R, ODY_SUM_I64, err);
    off[0] = 0;
    for (int p = 0; p < R; p++) off[p + 1] = off[p] + (size_t)cnt[p];
    free(cnt);
    return rc;
}

/* The features of the kept rows [lo, hi) (ody_comm_part of all n) into
 * *own, from the processes that read them (process p read kept rows
 * [off[p], off[p+1])): a gather to each process in turn. */
static int move_rows(const ody_comm *c, const float *X, const size_t *off, size_t F, float **own, ody_err *err)
{
    int R = ody_comm_size(c), me = ody_comm_rank(c), rc = 0;
    size_t n = off[R], lo, hi;
    ody_comm_part(c, me, n, &lo, &hi);
    *own = malloc((hi - lo ? hi - lo : 1) * F * sizeof **own);
    size_t *sizes = malloc((size_t)R * sizeof *sizes);
    if ((rc = ody_comm_agree(c, *own && sizes ? 0 : ody_fail(err, ODY_ENOMEM, "out of memory"), err))) goto done;
    for (int q = 0; q < R && !rc; q++) {
        size_t qlo, qhi;
        ody_comm_part(c, q, n, &qlo, &qhi);
        size_t a = off[me] > qlo ? off[me] : qlo, b = off[me + 1] < qhi ? off[me + 1] : qhi;
        const float *from = a < b ? X + (a - off[me]) * F : X;
        size_t bytes = a < b ? (b - a) * F * sizeof *X : 0;
        if (c->gather(c, from, bytes, *own, sizes, q))
            rc = ody_fail(err, ODY_EIO, "MPI: moving the catalog's rows to process %d failed — see the MPI message "
                          "above", q);
    }
done:
    free(sizes);
    if (rc) {
        free(*own);
        *own = NULL;
    }
    return rc;
}

/* ================================================================ missing values */

/* The whole table's median of feature j's valid values into *med (as
 * cat_read's imputation takes it: the middle value, or the mean of the two
 * middle ones in double rounded to float; -0 counts as 0). */
static int part_median(const run_state *st, const cat *k, const float *X, size_t nl, size_t j, float *med,
                       ody_err *err)
{
    size_t F = k->n_feat, nv = 0;
    double *v = malloc((nl ? nl : 1) * sizeof *v);
    int rc = ody_comm_agree(st->comm, v ? 0 : ody_fail(err, ODY_ENOMEM, "out of memory imputing"), err);
    if (rc) { free(v); return rc; }
    for (size_t r = 0; r < nl; r++) {
        float x = X[r * F + j];
        if (!isnan(x)) v[nv++] = x == 0 ? 0.0 : (double)x;
    }
    int64_t all = (int64_t)nv;
    rc = ody_allreduce(st->comm, &all, 1, ODY_SUM_I64, err);
    if (!rc && all == 0)
        rc = ody_fail(err, ODY_EINPUT, "%s: feature column '%s' has no valid value to impute from — drop it from the "
                      "features", st->c->cat_path, k->feat_names[j]);
    double a = 0, b = 0;
    if (!rc) rc = ody_select(st->comm, v, nv, (uint64_t)all / 2, &b, err);
    if (!rc && all % 2 == 0) rc = ody_select(st->comm, v, nv, (uint64_t)all / 2 - 1, &a, err);
    if (!rc) *med = all % 2 ? (float)b : (float)(0.5 * (a + b));
    free(v);
    return rc;
}

/* Counts over the parts, and the medians in place of the missing values
 * (catalog.missing: impute). */
static int settle_missing(const run_state *st, cat *k, float *X, size_t nl, ody_err *err)
{
    size_t F = k->n_feat;
    int64_t *cnt = malloc((F + 4) * sizeof *cnt);
    int rc = ody_comm_agree(st->comm, cnt ? 0 : ody_fail(err, ODY_ENOMEM, "out of memory"), err);
    if (rc) { free(cnt); return rc; }
    for (size_t j = 0; j < F; j++) cnt[j] = (int64_t)k->n_missing[j];
    cnt[F] = (int64_t)k->n_dropped;
    cnt[F + 2] = (int64_t)k->spec_masked;
    cnt[F + 3] = (int64_t)k->spec_bad;
    cnt[F + 1] = 0;
    rc = ody_allreduce(st->comm, cnt, F + 1, ODY_SUM_I64, err);
    if (!rc) rc = ody_allreduce(st->comm, cnt + F + 2, 2, ODY_SUM_I64, err);
    for (size_t j = 0; !rc && j < F; j++) {
        k->n_missing[j] = (size_t)cnt[j];
        if (!cnt[j] || st->c->cat_missing != CAT_MISSING_IMPUTE) continue;
        float med = 0;
        if ((rc = part_median(st, k, X, nl, j, &med, err))) break;
        for (size_t r = 0; r < nl; r++)
            if (isnan(X[r * F + j])) X[r * F + j] = med, cnt[F + 1]++;
    }
    if (!rc) rc = ody_allreduce(st->comm, cnt + F + 1, 1, ODY_SUM_I64, err);
    if (!rc) {
        k->n_dropped = (size_t)cnt[F];
        k->n_imputed = (size_t)cnt[F + 1];
        k->spec_masked = (size_t)cnt[F + 2];
        k->spec_bad = (size_t)cnt[F + 3];
    }
    free(cnt);
    return rc;
}

/* ================================================================ the read */

/* The lines cat_read logs for a whole table, for the parts together. */
static void log_read(const run_state *st, const cat *k)
{
    const char *path = st->c->cat_path;
    for (size_t j = 0; j < k->n_feat; j++)
        if (k->n_missing[j])
            ody_logf(st->log, ODY_LOG_INFO, "%s: feature %s: %zu missing values (%s)", path, k->feat_names[j],
                     k->n_missing[j], cat_missing_name(st->c->cat_missing));
    ody_logf(st->log, ODY_LOG_INFO, "%s: read %zu of %zu rows, %zu features (%zu dropped, %zu imputed), by %d "
             "processes a part each", path, k->n_rows, k->n_table_rows, k->n_feat, k->n_dropped, k->n_imputed,
             ody_comm_size(st->comm));
    cat_log_spectra(k, st->log);
}

int stage_read_parts(run_state *st, const cat_opt *o_in, ody_err *err)
{
    const ody_comm *c = st->comm;
    int R = ody_comm_size(c), me = ody_comm_rank(c);
    long long nt = 0;
    int rc = ody_comm_agree(c, cat_check(o_in, &nt, err), err);
    if (rc) return rc;
    if (nt < R) return ody_comm_agree(c, cat_read(o_in, &st->cat, st->log, err), err);  /* a part each is too few */
    cat_opt o = *o_in;
    size_t a, b;
    ody_part((size_t)nt, R, me, &a, &b);
    o.first = (long long)a;
    o.count = (long long)(b - a);
    cat *k = NULL;
    /* the lowest failing process read the earliest rows: its error is the one a whole read meets first */
    rc = ody_comm_agree(c, o.count ? cat_read(&o, &k, NULL, err) : 0, err);
    size_t *off = malloc(((size_t)R + 1) * sizeof *off), *doff = malloc(((size_t)R + 1) * sizeof *doff);
    if (!rc) rc = ody_comm_agree(c, off && doff ? 0 : ody_fail(err, ODY_ENOMEM, "out of memory"), err);
    if (!rc && !k) rc = ody_fail(err, ODY_EINTERNAL, "a process read no rows of %s", st->c->cat_path);
    if (!rc) rc = part_offsets(c, k->n_rows, off, err);
    if (!rc) rc = part_offsets(c, k->drop_row ? k->n_dropped : 0, doff, err);
    if (!rc && off[R] == 0)
        rc = ody_fail(err, ODY_EINPUT, "%s: no rows left after dropping %lld rows with missing feature values — set "
                      "`missing: impute` or choose other features", st->c->cat_path, nt);
    if (!rc) rc = settle_missing(st, k, k->X, k->n_rows, err);
    /* what every process holds whole: IDs, rows, pass-through columns, the dropped list */
    if (!rc) rc = share_col(c, &k->id, off, err);
    if (!rc) rc = share_array(c, &k->row, off, sizeof *k->row, err);
    for (int p = 0; !rc && p < k->n_pass; p++) rc = share_col(c, &k->pass[p], off, err);
    if (!rc && k->drop_row) {
        rc = share_array(c, &k->drop_row, doff, sizeof *k->drop_row, err);
        if (!rc) rc = share_array(c, &k->drop_feat, doff, sizeof *k->drop_feat, err);
        if (!rc) rc = share_array(c, &k->drop_nmiss, doff, sizeof *k->drop_nmiss, err);
        if (!rc) rc = share_col(c, &k->drop_id, doff, err);
    }
    if (!rc) k->n_rows = off[R];
    if (!rc && o.id_col) rc = cat_check_ids(k, err);
    float *own = NULL;
    if (!rc) rc = move_rows(c, k->X, off, k->n_feat, &own, err);
    if (!rc) {
        free(k->X);
        k->X = NULL;  /* no process holds every row */
        k->n_table_rows = (size_t)nt;
        log_read(st, k);
        st->cat = k;
        st->X_own = own;
        k = NULL;
    }
    cat_destroy(k);
    free(off);
    free(doff);
    return rc;
}

int stage_join_parts(run_state *st, ody_err *err)
{
    if (st->cat->X || !st->X_own) return 0;
    void *all = NULL;
    int rc = ody_gather_rows(st->comm, st->X_own, st->n, (size_t)st->F * sizeof(float), &all, err);
    if (rc) return rc;
    free(st->X_own);
    st->X_own = NULL;
    st->cat->X = all;
    st->X = st->cat->X + st->lo * (size_t)st->F;
    return 0;
}

/* ================================================================ rows from their owners */

/* Values a fetch exchanges at a time: 8 MB. */
#define FETCH_VALUES (1u << 21)

int stage_fetch_rows(const run_state *st, const size_t *rows, size_t m, float *out, ody_err *err)
{
    size_t F = (size_t)st->F, blk = FETCH_VALUES / F ? FETCH_VALUES / F : 1;
    if (st->cat->X) {
        for (size_t q = 0; q < m; q++) memcpy(out + q * F, st->cat->X + rows[q] * F, F * sizeof *out);
        return 0;
    }
    int rc = 0;
    for (size_t q0 = 0; q0 < m && !rc; q0 += blk) {
        size_t nb = m - q0 < blk ? m - q0 : blk;
        float *o = out + q0 * F;
        memset(o, 0, nb * F * sizeof *o);
        for (size_t q = 0; q < nb; q++) {
            size_t r = rows[q0 + q];
            if (r >= st->lo && r < st->hi) memcpy(o + q * F, st->X + (r - st->lo) * F, F * sizeof *o);
        }
        rc = ody_allreduce(st->comm, o, nb * F, ODY_SUM_U32, err);  /* one writer a value: the sum is its bits */
    }
    return rc;
}

int stage_split_parts(run_state *st, ody_err *err)
{
    size_t F = (size_t)st->F, nl = stage_rows(st);
    float *own = malloc((nl ? nl : 1) * F * sizeof *own);
    int rc = ody_comm_agree(st->comm, own ? 0 : ody_fail(err, ODY_ENOMEM, "out of memory"), err);
    if (rc) {
        free(own);
        return rc;
    }
    memcpy(own, st->cat->X + st->lo * F, nl * F * sizeof *own);
    free(st->cat->X);
    st->cat->X = NULL;
    st->X_own = own;
    st->X = own;
    return 0;
}
