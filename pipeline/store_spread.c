/* store_spread.c — files every process writes its own parts of, at their
 * offsets, so that no process writes (or even receives) every object's
 * bytes: a FITS table of one row per object (store_spread_*) and the text
 * exports (store_shared_*).  Process 0 makes the temporary file,
 * and commits or removes it; the others open it by the name it shares, so
 * the run directory must be on a file system every process sees. */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "stage.h"

/* ================================================================ a shared temporary */

int store_shared_open(const run_state *st, const char *tmp, const char *path, store_shared *sh, ody_err *err)
{
    const ody_comm *c = st->comm;
    uint64_t len = tmp ? strlen(tmp) : 0;
    memset(sh, 0, sizeof *sh);
    sh->fd = -1;
    int rc = ody_bcast(c, &len, sizeof len, 0, err);
    if (!rc) rc = ody_comm_agree(c, (sh->tmp = calloc(len + 1, 1)) ? 0 : ody_fail(err, ODY_ENOMEM, "out of memory"), err);
    if (!rc && ody_comm_rank(c) == 0) memcpy(sh->tmp, tmp, len);
    if (!rc) rc = ody_bcast(c, sh->tmp, len, 0, err);
    if (!rc && (sh->fd = open(sh->tmp, O_WRONLY | O_CLOEXEC)) < 0)
        rc = ody_fail(err, ODY_EIO, "cannot write %s: process %d cannot open %s (%s) — the run directory must be on a "
                      "file system every process sees", path, ody_comm_rank(c), sh->tmp, strerror(errno));
    rc = ody_comm_agree(c, rc, err);
    if (rc) {
        if (sh->fd >= 0) close(sh->fd);
        free(sh->tmp);
        memset(sh, 0, sizeof *sh);
        sh->fd = -1;
    }
    return rc;
}

void store_shared_write(store_shared *sh, uint64_t off, const void *bytes, size_t len)
{
    if (!sh->err && len) sh->err = fitsout_write_at(sh->fd, off, bytes, len);
}

int store_shared_close(const run_state *st, store_shared *sh, const char *path, ody_err *err)
{
    int rc = 0;
    if (sh->fd >= 0 && close(sh->fd) && !sh->err) sh->err = errno;
    if (sh->err) rc = ody_fail(err, ODY_EIO, "cannot write %s: %s", path, strerror(sh->err));
    free(sh->tmp);
    memset(sh, 0, sizeof *sh);
    sh->fd = -1;
    return ody_comm_agree(st->comm, rc, err);
}

/* ================================================================ a FITS table of every process's rows */

int store_spread_open(const run_state *st, const char *name, const char *extname, const fitsout_col *cols, int ncol,
                      size_t nrows, store_spread *sp, ody_err *err)
{
    const ody_comm *c = st->comm;
    int me = ody_comm_rank(c), rc = 0, status = 0;
    memset(sp, 0, sizeof *sp);
    sp->sh.fd = -1;
    sp->rb = fitsout_row_bytes(cols, ncol);
    sp->nrows = nrows;
    if (!(sp->path = store_path(st, name))) rc = ody_fail(err, ODY_ENOMEM, "out of memory");
    if (!rc && me == 0 && !(rc = fitsout_open(&sp->w, sp->path, 1, err))) {
        store_provenance(st, sp->w.f, &status);
        if (fitsout_spread_begin(&sp->w, extname, cols, ncol, nrows, &sp->data, &status))
            rc = ody_fits_fail(err, status, sp->path, "cannot write", NULL);
    }
    rc = ody_comm_agree(c, rc, err);
    if (!rc) rc = ody_bcast(c, &sp->data, sizeof sp->data, 0, err);
    if (!rc) rc = store_shared_open(st, sp->w.tmp, sp->path, &sp->sh, err);
    if (rc) {
        if (sp->w.tmp) fitsout_abort(&sp->w);
        free(sp->path);
        sp->path = NULL;
    }
    return rc;
}

void store_spread_put(store_spread *sp, size_t row, const void *bytes, size_t len)
{
    uint64_t off = (uint64_t)row * sp->rb;
    store_shared_write(&sp->sh, sp->data + off, bytes, len);
    sp->sum = fitsout_sum(sp->sum, bytes, len, off);
}

int store_spread_close(const run_state *st, store_spread *sp, const store_hdu *then, int n_then, int rc, ody_err *err)
{
    const ody_comm *c = st->comm;
    int me = ody_comm_rank(c), P = ody_comm_size(c), status = 0;
    uint32_t *sums = me == 0 ? calloc((size_t)P, sizeof *sums) : NULL;
    size_t sizes[64], *sz = P <= 64 ? sizes : malloc((size_t)P * sizeof *sz);
    rc = ody_comm_agree(c, rc, err);
    int shut = store_shared_close(st, &sp->sh, sp->path, err);  /* every write done, on every process */
    if (!rc) rc = shut;
    if (!rc) rc = ody_comm_agree(c, (me == 0 && !sums) || !sz ? ody_fail(err, ODY_ENOMEM, "out of memory") : 0, err);
    if (!rc) rc = ody_gather(c, &sp->sum, sizeof sp->sum, sums, sz, 0, err);
    if (me == 0 && !rc) {
        uint32_t sum = 0;
        for (int p = 0; p < P; p++) sum = fitsout_sum_join(sum, sums[p]);
        fitsout_spread_end(&sp->w, sp->nrows, sum, &status);
        for (int h = 0; h < n_then; h++)
            fitsout_table_rows(sp->w.f, then[h].extname, then[h].cols, then[h].rows, then[h].ncol, then[h].nrows,
                               &status);
        if (status) rc = ody_fits_fail(err, status, sp->path, "cannot write", NULL);
    }
    if (me == 0 && sp->w.tmp) rc = fitsout_finish(&sp->w, rc, err);
    free(sums);
    if (sz != sizes) free(sz);
    free(sp->path);
    sp->path = NULL;
    return ody_comm_agree(c, rc, err);
}
