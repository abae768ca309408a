/* comm.c — the collective operations of ody.h over an ody_comm, with the
 * one-process case (a NULL comm) handled here so callers never test for it. */
#include <limits.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "ody.h"

void ody_part(size_t n, int parts, int p, size_t *lo, size_t *hi)
{
    size_t R = (size_t)parts, q = n / R, r = n % R, k = (size_t)p;
    *lo = k * q + (k < r ? k : r);
    *hi = *lo + q + (k < r);
}

int ody_part_of(size_t n, int parts, size_t i)
{
    size_t R = (size_t)parts, q = n / R, r = n % R, big = r * (q + 1);
    return (int)(i < big ? i / (q + 1) : r + (i - big) / (q ? q : 1));
}

void ody_comm_part(const ody_comm *c, int p, size_t n, size_t *lo, size_t *hi)
{
    ody_part(n, ody_comm_size(c), p, lo, hi);
}

int ody_share(const ody_comm *c, void *buf, const size_t *off, ody_err *err)
{
    if (ody_comm_size(c) < 2) return 0;
    for (int p = 0; p < c->size; p++)
        if (off[p + 1] > off[p] && c->bcast(c, (char *)buf + off[p], off[p + 1] - off[p], p))
            return ody_fail(err, ODY_EIO, "MPI: sharing %zu bytes of process %d failed — see the MPI message above",
                            off[p + 1] - off[p], p);
    return 0;
}

int ody_share_rows(const ody_comm *c, void *a, size_t n, size_t row_bytes, ody_err *err)
{
    int R = ody_comm_size(c);
    if (R < 2) return 0;
    size_t *off = malloc(((size_t)R + 1) * sizeof *off), hi;
    if (!off) return ody_fail(err, ODY_ENOMEM, "out of memory");
    for (int p = 0; p < R; p++) {
        ody_comm_part(c, p, n, &off[p], &hi);
        off[p] *= row_bytes;
    }
    off[R] = n * row_bytes;
    int rc = ody_share(c, a, off, err);
    free(off);
    return rc;
}

int ody_gather(const ody_comm *c, const void *mine, size_t bytes, void *all, size_t *sizes, int root, ody_err *err)
{
    if (ody_comm_size(c) < 2) {
        if (bytes) memcpy(all, mine, bytes);
        sizes[0] = bytes;
        return 0;
    }
    if (c->gather(c, mine, bytes, all, sizes, root))
        return ody_fail(err, ODY_EIO, "MPI: gathering %zu bytes to process %d failed — see the MPI message above", bytes,
                        root);
    return 0;
}

int ody_gather_rows(const ody_comm *c, const void *mine, size_t n, size_t row_bytes, void **all, ody_err *err)
{
    size_t lo, hi;
    ody_comm_part(c, ody_comm_rank(c), n, &lo, &hi);
    char *a = malloc(n * row_bytes + 1);
    int rc = ody_comm_agree(c, a ? 0 : ody_fail(err, ODY_ENOMEM, "out of memory gathering %zu rows", n), err);
    if (!rc) {
        memcpy(a + lo * row_bytes, mine, (hi - lo) * row_bytes);
        rc = ody_share_rows(c, a, n, row_bytes, err);
    }
    if (rc) {
        free(a);
        a = NULL;
    }
    *all = a;
    return rc;
}

int ody_exchange(const ody_comm *c, const void *send, const size_t *scount, void **recv, size_t *rcount,
                 ody_err *err)
{
    int R = ody_comm_size(c), rc = 0;
    size_t *one = R < 2 ? NULL : malloc((size_t)R * sizeof *one), total = 0;
    *recv = NULL;
    if (R < 2) {
        rcount[0] = scount[0];
    } else if (!(rc = ody_comm_agree(c, one ? 0 : ody_fail(err, ODY_ENOMEM, "out of memory"), err))) {
        for (int p = 0; p < R; p++) one[p] = sizeof *rcount;
        if (c->alltoallv(c, scount, one, rcount, one))  /* the sizes first: each process's to each */
            rc = ody_fail(err, ODY_EIO, "MPI: exchanging sizes failed — see the MPI message above");
    }
    free(one);
    size_t out = 0;
    for (int p = 0; !rc && p < R; p++) {
        total += rcount[p];
        out += scount[p];
    }
    if (!rc && R > 1)  /* MPI counts bytes in ints */
        rc = ody_comm_agree(c, total > INT_MAX || out > INT_MAX ? ody_fail(err, ODY_ENOMEM, "MPI: an exchange of "
                            "%zu bytes is more than one message holds — use more processes", total > out ? total : out)
                            : 0, err);
    char *in = rc ? NULL : malloc(total + 1);
    if (!rc) rc = ody_comm_agree(c, in ? 0 : ody_fail(err, ODY_ENOMEM, "out of memory receiving %zu bytes", total), err);
    if (!rc && R < 2 && total) memcpy(in, send, total);
    if (!rc && R > 1 && c->alltoallv(c, send, scount, in, rcount))
        rc = ody_fail(err, ODY_EIO, "MPI: exchanging %zu bytes failed — see the MPI message above", total);
    if (rc) {
        free(in);
        return rc;
    }
    *recv = in;
    return 0;
}

/* Order-preserving keys of doubles: unsigned order of the keys is the
 * values' order (negatives' bits reversed, positives above them). */
static uint64_t dkey(double x)
{
    uint64_t u;
    memcpy(&u, &x, sizeof u);
    return u >> 63 ? ~u : u | 0x8000000000000000ULL;
}

static double dval(uint64_t k)
{
    uint64_t u = k >> 63 ? k & ~0x8000000000000000ULL : ~k;
    double x;
    memcpy(&x, &u, sizeof x);
    return x;
}

int ody_select(const ody_comm *c, const double *v, size_t n, uint64_t k, double *out, ody_err *err)
{
    uint64_t prefix = 0;
    int64_t cnt[256];
    for (int shift = 56; shift >= 0; shift -= 8) {
        uint64_t above = shift == 56 ? 0 : ~0ULL << (shift + 8);  /* the bits chosen so far */
        memset(cnt, 0, sizeof cnt);
        for (size_t i = 0; i < n; i++) {
            uint64_t key = dkey(v[i]);
            if ((key & above) == prefix) cnt[key >> shift & 255]++;
        }
        int rc = ody_allreduce(c, cnt, 256, ODY_SUM_I64, err);
        if (rc) return rc;
        int b = 0;
        for (; b < 256 && (uint64_t)cnt[b] <= k; b++) k -= (uint64_t)cnt[b];
        if (b == 256) return ody_fail(err, ODY_EINTERNAL, "selecting beyond the values");
        prefix |= (uint64_t)b << shift;
    }
    *out = dval(prefix);
    return 0;
}

int ody_allreduce(const ody_comm *c, void *v, size_t n, ody_red op, ody_err *err)
{
    if (ody_comm_size(c) < 2 || !n) return 0;
    if (c->allreduce(c, v, n, op)) return ody_fail(err, ODY_EIO, "MPI: a reduction of %zu values failed — see the "
                                                   "MPI message above", n);
    return 0;
}

int ody_reduce(const ody_comm *c, void *v, size_t n, ody_red op, int root, ody_err *err)
{
    if (root < 0 || !c || !c->reduce) return ody_allreduce(c, v, n, op, err);
    if (ody_comm_size(c) < 2 || !n) return 0;
    if (c->reduce(c, v, n, op, root)) return ody_fail(err, ODY_EIO, "MPI: a reduction of %zu values to process %d "
                                                      "failed — see the MPI message above", n, root);
    return 0;
}

int ody_bcast(const ody_comm *c, void *buf, size_t bytes, int root, ody_err *err)
{
    if (ody_comm_size(c) < 2 || !c->bcast(c, buf, bytes, root)) return 0;
    return ody_fail(err, ODY_EIO, "MPI: sharing %zu bytes failed — see the MPI message above", bytes);
}

int ody_comm_agree(const ody_comm *c, int rc, ody_err *err)
{
    if (ody_comm_size(c) < 2) return rc;
    /* the lowest failing process that has a message (after an earlier
     * agreement the others failing have none), then its code: it alone
     * keeps its message */
    int key = rc ? (err && err->msg[0] ? c->rank : c->size + c->rank) : INT_MAX;
    int low = rc ? -key : INT_MIN, code;
    if (c->allreduce(c, &low, 1, ODY_MAX_INT)) return rc ? rc : ody_fail(err, ODY_EIO, "MPI: agreeing on errors failed");
    if (low == INT_MIN) return 0;
    int who = -low % c->size;
    code = who == c->rank ? rc : 0;
    if (c->allreduce(c, &code, 1, ODY_MAX_INT)) return rc ? rc : ody_fail(err, ODY_EIO, "MPI: agreeing on errors failed");
    if (who != c->rank && err) {
        err->code = code;
        err->msg[0] = 0;
    }
    return code;
}
