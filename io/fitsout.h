/* fitsout.h — writing FITS files so that no half-written output ever exists.
 *
 * fitsout_open() creates PATH.tmp-PID with an empty primary HDU; the caller
 * adds HDUs through w.f; fitsout_commit() writes CHECKSUM/DATASUM in every
 * HDU, closes and renames onto PATH (atomic on one file system).
 * fitsout_abort() closes and deletes the temporary file.  Exactly one of
 * commit or abort must follow a successful open; after either, w holds
 * nothing to free.
 */
#ifndef FITSOUT_H
#define FITSOUT_H

#include <fitsio.h>

#include "ody.h"

typedef struct fitsout {
    fitsfile *f;
    char *path, *tmp;
} fitsout;

/* Fails with ODY_EINPUT if PATH exists and overwrite is 0. */
int fitsout_open(fitsout *w, const char *path, int overwrite, ody_err *err);
int fitsout_commit(fitsout *w, ody_err *err);
void fitsout_abort(fitsout *w);

/* Ends a write: aborts when rc is an error (and returns rc), else commits
 * (and returns the commit's result). */
int fitsout_finish(fitsout *w, int rc, ody_err *err);

/* Writes long text as HISTORY cards, one line per card (split at 70 chars). */
int fitsout_history(fitsfile *f, const char *text, int *status);

#endif
