/* st_parts.c — the catalog read by parts: with several processes, each
 * reads an equal share of the table's rows (CFITSIO row ranges, cat_opt's
 * first/count) and no process ever reads or holds the whole table.  What
 * needs every part is settled together: the counts, the medians that
 * impute missing values, the IDs' uniqueness, and the rows each process
 * holds from then on (the kept rows [lo, hi) of ody_comm_part, moved from
 * whoever read them).  The IDs, row numbers and pass-through columns stay
 * in parts like the features (cat's id_part): the export asks the owners
 * for the IDs its neighbour lists name.  Only the list of dropped rows is
 * whole on every process.
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

/* Rows of w bytes, kept rows [lo, hi) (ody_comm_part of all n) into *own
 * (malloc'd), from the processes that read them (process p read kept rows
 * [off[p], off[p+1]) into mine): a gather to each process in turn. */
static int move_parts(const ody_comm *c, const void *mine, const size_t *off, size_t w, void **own, ody_err *err)
{
    int R = ody_comm_size(c), me = ody_comm_rank(c), rc = 0;
    size_t n = off[R], lo, hi;
    ody_comm_part(c, me, n, &lo, &hi);
    char *to = malloc((hi - lo ? hi - lo : 1) * w);
    size_t *sizes = malloc((size_t)R * sizeof *sizes);
    if ((rc = ody_comm_agree(c, to && sizes ? 0 : ody_fail(err, ODY_ENOMEM, "out of memory"), err))) goto done;
    for (int q = 0; q < R && !rc; q++) {
        size_t qlo, qhi;
        ody_comm_part(c, q, n, &qlo, &qhi);
        size_t a = off[me] > qlo ? off[me] : qlo, b = off[me + 1] < qhi ? off[me + 1] : qhi;
        const char *from = a < b ? (const char *)mine + (a - off[me]) * w : mine;
        if (c->gather(c, from, a < b ? (b - a) * w : 0, to, sizes, q))
            rc = ody_fail(err, ODY_EIO, "MPI: moving the catalog's rows to process %d failed — see the MPI message "
                          "above", q);
    }
done:
    free(sizes);
    if (rc) {
        free(to);
        to = NULL;
    }
    *own = to;
    return rc;
}

/* A carried column's rows, as move_parts moves them (its buffer replaced). */
static int move_col(const ody_comm *c, cat_col *col, const size_t *off, ody_err *err)
{
    void **data = col->type == CAT_COL_STRING ? (void **)&col->s : col->type == CAT_COL_INT ? (void **)&col->i
                                                                                           : (void **)&col->f;
    void *own = NULL;
    int rc = move_parts(c, *data, off, cat_col_elem(col), &own, err);
    if (!rc) {
        free(*data);
        *data = own;
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

/* The parts' counts summed in place: every process then holds the whole
 * table's, for the log and for the error when nothing is left. */
static int sum_counts(const run_state *st, cat *k, ody_err *err)
{
    size_t F = k->n_feat, n = F + 3 + CAT_SPEC_WHY;
    int64_t *cnt = malloc(n * sizeof *cnt);
    int rc = ody_comm_agree(st->comm, cnt ? 0 : ody_fail(err, ODY_ENOMEM, "out of memory"), err);
    if (rc) { free(cnt); return rc; }
    for (size_t j = 0; j < F; j++) cnt[j] = (int64_t)k->n_missing[j];
    cnt[F] = (int64_t)k->n_dropped;
    cnt[F + 1] = (int64_t)k->spec_masked;
    cnt[F + 2] = (int64_t)k->spec_bad;
    for (int w = 0; w < CAT_SPEC_WHY; w++) cnt[F + 3 + w] = (int64_t)k->spec_bad_why[w];
    rc = ody_allreduce(st->comm, cnt, n, ODY_SUM_I64, err);
    if (!rc) {
        for (size_t j = 0; j < F; j++) k->n_missing[j] = (size_t)cnt[j];
        k->n_dropped = (size_t)cnt[F];
        k->spec_masked = (size_t)cnt[F + 1];
        k->spec_bad = (size_t)cnt[F + 2];
        for (int w = 0; w < CAT_SPEC_WHY; w++) k->spec_bad_why[w] = (size_t)cnt[F + 3 + w];
    }
    free(cnt);
    return rc;
}

/* The medians of every part's values in place of the missing ones
 * (catalog.missing: impute), after sum_counts. */
static int impute_parts(const run_state *st, cat *k, float *X, size_t nl, ody_err *err)
{
    size_t F = k->n_feat;
    int64_t imputed = 0;
    int rc = 0;
    for (size_t j = 0; !rc && j < F; j++) {
        if (!k->n_missing[j]) continue;  /* the whole table's count: every process takes the same steps */
        float med = 0;
        if ((rc = part_median(st, k, X, nl, j, &med, err))) break;
        for (size_t r = 0; r < nl; r++)
            if (isnan(X[r * F + j])) X[r * F + j] = med, imputed++;
    }
    if (!rc) rc = ody_allreduce(st->comm, &imputed, 1, ODY_SUM_I64, err);
    if (!rc) k->n_imputed = (size_t)imputed;
    return rc;
}

/* ================================================================ the read */

/* The lines cat_read logs for a whole table, for the parts together. */
static void log_read(const run_state *st, const cat *k)
{
    const char *path = st->c->cat_path;
    cat_log_missing(k, path, st->c->cat_missing, st->log);
    ody_logf(st->log, ODY_LOG_INFO, "%s: read %zu of %zu rows, %zu features (%zu dropped, %zu imputed), by %d "
             "processes a part each", path, k->n_rows, k->n_table_rows, k->n_feat, k->n_dropped, k->n_imputed,
             ody_comm_size(st->comm));
    cat_log_spectra(k, st->log);
}

/* ================================================================ unique IDs */

/* Bytes a process's candidate duplicate takes: found, its two table rows, the value. */
static size_t cand_bytes(const cat_col *id) { return 24 + cat_col_elem(id); }

/* The smallest of the processes' candidates (R of cand_bytes at all) as
 * cat_read reports it for a whole table; 0 when no process found one. */
static int dup_of_all(const cat *k, const char *all, int R, ody_err *err)
{
    size_t w = cat_col_elem(&k->id), cb = cand_bytes(&k->id);
    char *v = malloc((size_t)R * w);
    if (!v) return ody_fail(err, ODY_ENOMEM, "out of memory checking the IDs");
    cat_col cv = cat_col_view(&k->id, v);
    int best = -1;
    for (int p = 0; p < R; p++) {
        int64_t found;
        memcpy(&found, all + (size_t)p * cb, sizeof found);
        memcpy(v + (size_t)p * w, all + (size_t)p * cb + 24, w);
        if (found && (best < 0 || cat_col_cmp(&cv, (size_t)p, &cv, (size_t)best) < 0)) best = p;
    }
    int rc = 0;
    if (best >= 0) {
        int64_t ra, rb;
        memcpy(&ra, all + (size_t)best * cb + 8, sizeof ra);
        memcpy(&rb, all + (size_t)best * cb + 16, sizeof rb);
        rc = cat_ids_dup_fail(&cv, (size_t)best, (long long)ra, (long long)rb, k->path, err);
    }
    free(v);
    return rc;
}

/* The IDs' uniqueness over every process's own (kept rows [id_lo, ...)),
 * as cat_read finds it for the whole table: the first row with no ID,
 * else the smallest ID held twice, with its first two rows.  Each ID goes
 * with its table row to the process its hash names, so that equal IDs
 * meet, and in process order, so that they arrive in row order; each
 * process finds its smallest duplicate, and the smallest of those is the
 * one.  No process holds more than about its share. */
static int check_ids(const ody_comm *c, const cat *k, ody_err *err)
{
    int R = ody_comm_size(c);
    size_t lo, hi, w = cat_col_elem(&k->id), rec = w + 8, cb = cand_bytes(&k->id);
    ody_comm_part(c, ody_comm_rank(c), k->n_rows, &lo, &hi);
    int rc = ody_comm_agree(c, cat_ids_missing(&k->id, hi - lo, k->row, k->path, err), err);
    if (rc) return rc;
    size_t *cnt = calloc((size_t)R + 1, sizeof *cnt), *rcnt = malloc((size_t)R * sizeof *rcnt);
    char *send = malloc((hi - lo) * rec + 1), *recv = NULL, *cand = calloc(1, cb), *all = NULL;
    int32_t *to = malloc((hi - lo + 1) * sizeof *to);  /* each ID's checker, hashed once */
    rc = ody_comm_agree(c, cnt && rcnt && send && cand && to ? 0 : ody_fail(err, ODY_ENOMEM, "out of memory"), err);
    for (size_t r = 0; !rc && r < hi - lo; r++) {
        to[r] = (int32_t)(cat_col_hash(&k->id, r) % (size_t)R);
        cnt[to[r] + 1]++;
    }
    for (int p = 0; !rc && p < R; p++) cnt[p + 1] += cnt[p];  /* where each process's records start */
    for (size_t r = 0; !rc && r < hi - lo; r++) {
        char *at = send + rec * cnt[to[r]]++;
        memcpy(at, cat_col_at(&k->id, r), w);
        memcpy(at + w, &k->row[r], 8);
    }
    for (int p = R - 1; !rc && p >= 0; p--)  /* cursor p now ends p's records: sizes, shifted by one */
        cnt[p + 1] = (cnt[p] - (p ? cnt[p - 1] : 0)) * rec;
    if (!rc) rc = ody_exchange(c, send, cnt + 1, (void **)&recv, rcnt, err);
    size_t m = 0;
    for (int p = 0; !rc && p < R; p++) m += rcnt[p] / rec;
    char *vals = rc ? NULL : malloc(m * w + 1);
    int64_t *trow = rc ? NULL : malloc((m + 1) * sizeof *trow);
    if (!rc) rc = ody_comm_agree(c, vals && trow ? 0 : ody_fail(err, ODY_ENOMEM, "out of memory"), err);
    for (size_t q = 0; !rc && q < m; q++) {
        memcpy(vals + q * w, recv + q * rec, w);
        memcpy(&trow[q], recv + q * rec + w, 8);
    }
    size_t a = 0, b = 0;
    cat_col view = cat_col_view(&k->id, vals);
    int dup = rc ? 0 : cat_ids_first_dup(&view, m, &a, &b);
    if (!rc) rc = ody_comm_agree(c, dup < 0 ? ody_fail(err, ODY_ENOMEM, "out of memory checking the IDs") : 0, err);
    if (!rc && dup > 0) {
        int64_t one = 1;
        memcpy(cand, &one, 8);
        memcpy(cand + 8, &trow[a], 8);
        memcpy(cand + 16, &trow[b], 8);
        memcpy(cand + 24, vals + a * w, w);
    }
    if (!rc) rc = ody_gather_rows(c, cand, (size_t)R, cb, (void **)&all, err);
    if (!rc) rc = ody_comm_agree(c, dup_of_all(k, all, R, err), err);
    free(cnt);
    free(rcnt);
    free(to);
    free(send);
    free(recv);
    free(cand);
    free(all);
    free(vals);
    free(trow);
    return rc;
}

int stage_read_parts(run_state *st, const cat_opt *o_in, ody_err *err)
{
    const ody_comm *c = st->comm;
    int R = ody_comm_size(c), me = ody_comm_rank(c);
    long long nt = 0;
    int rc = ody_comm_agree(c, cat_check(o_in, &nt, NULL, err), err);
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
    if (!rc) rc = sum_counts(st, k, err);
    if (!rc && cat_none_left(k, off[R], nt)) rc = cat_none_left_fail(k, o_in, nt, err);
    if (!rc && st->c->cat_missing == CAT_MISSING_IMPUTE) rc = impute_parts(st, k, k->X, k->n_rows, err);
    /* the dropped list whole on every process (process 0 writes it); the IDs, rows and pass-through columns,
     * like the features, moved to the rows each process holds from now on */
    if (!rc && k->drop_row) {
        rc = share_array(c, &k->drop_row, doff, sizeof *k->drop_row, err);
        if (!rc) rc = share_array(c, &k->drop_feat, doff, sizeof *k->drop_feat, err);
        if (!rc) rc = share_array(c, &k->drop_nmiss, doff, sizeof *k->drop_nmiss, err);
        if (!rc) rc = share_array(c, &k->drop_spec, doff, sizeof *k->drop_spec, err);
        if (!rc) rc = share_col(c, &k->drop_id, doff, err);
    }
    if (!rc) k->n_rows = off[R];
    void *rows = NULL;
    if (!rc) rc = move_col(c, &k->id, off, err);
    if (!rc && !(rc = move_parts(c, k->row, off, sizeof *k->row, &rows, err))) {
        free(k->row);
        k->row = rows;
    }
    for (int p = 0; !rc && p < k->n_pass; p++) rc = move_col(c, &k->pass[p], off, err);
    if (!rc) {
        k->id_part = 1;
        ody_comm_part(c, me, k->n_rows, &k->id_lo, &b);
    }
    if (!rc && o.id_col) rc = check_ids(c, k, err);
    float *own = NULL;
    if (!rc) rc = move_parts(c, k->X, off, k->n_feat * sizeof *k->X, (void **)&own, err);
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

int stage_all_ids(const run_state *st, cat_col *ids, void **buf, ody_err *err)
{
    const cat_col *id = &st->cat->id;
    *buf = NULL;
    *ids = *id;
    if (!st->cat->id_part) return 0;
    int rc = ody_gather_rows(st->comm, cat_col_at(id, 0), st->n, cat_col_elem(id), buf, err);
    if (!rc) *ids = cat_col_view(id, *buf);
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
