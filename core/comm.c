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

int ody_allreduce(const ody_comm *c, void *v, size_t n, ody_red op, ody_err *err)
{
    if (ody_comm_size(c) < 2 || !n) return 0;
    if (c->allreduce(c, v, n, op)) return ody_fail(err, ODY_EIO, "MPI: a reduction of %zu values failed — see the "
                                                   "MPI message above", n);
    return 0;
}

int ody_comm_agree(const ody_comm *c, int rc, ody_err *err)
{
    if (ody_comm_size(c) < 2) return rc;
    /* the lowest failing process, then its code: it alone keeps its message */
    int low = rc ? -c->rank : INT_MIN, code;
    if (c->allreduce(c, &low, 1, ODY_MAX_INT)) return rc ? rc : ody_fail(err, ODY_EIO, "MPI: agreeing on errors failed");
    if (low == INT_MIN) return 0;
    code = -low == c->rank ? rc : 0;
    if (c->allreduce(c, &code, 1, ODY_MAX_INT)) return rc ? rc : ody_fail(err, ODY_EIO, "MPI: agreeing on errors failed");
    if (-low != c->rank && err) {
        err->code = code;
        err->msg[0] = 0;
    }
    return code;
}
