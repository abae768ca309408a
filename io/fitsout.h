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
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

#include "ody.h"

typedef struct fitsout {
    fitsfile *f;
    char *path, *tmp;
    int given;           /* the HDU whose DATASUM fitsout_spread_end wrote (1-based), or 0 */
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

/* One column of a binary table written whole: nrows x repeat values of
 * `type` (TDOUBLE, TFLOAT, TINT, TSHORT, TLONGLONG; TSTRING: rows of repeat + 1
 * bytes, NUL-terminated, repeat being the width). */
typedef struct fitsout_col {
    const char *name;
    int type;
    int repeat;
    const void *data;
    const char *unit;   /* NULL: none */
    const char *desc;   /* NULL: none; else written as TCOMMn */
} fitsout_col;

/* Appends a binary table HDU named extname with the columns, in one
 * fits_write_col call per column.  CFITSIO status convention: does nothing
 * when *status is set on entry; returns *status. */
int fitsout_table(fitsfile *f, const char *extname, const fitsout_col *cols, int ncol, size_t nrows,
                  int *status);

/* The same, where rows (may be NULL) gives for column k a row map or NULL:
 * row r of the table is row rows[k][r] of that column's data, gathered a
 * block at a time.  A ranked export of a wide table needs no reordered copy
 * of it. */
int fitsout_table_rows(fitsfile *f, const char *extname, const fitsout_col *cols, const size_t *const *rows, int ncol,
                       size_t nrows, int *status);

/* The bytes rows [r0, r0 + nr) of the columns take in a table, made on
 * any thread or process with no CFITSIO call (a survey-scale export makes
 * a block of rows at a time, just before writing it): into *out
 * (malloc'd, the caller frees it; NULL on error), *len bytes, from
 * rows[k][r] (absolute rows) for a column with a row map, else from the
 * first nr rows of its data. */
size_t fitsout_row_bytes(const fitsout_col *cols, int ncol);
int fitsout_rows_bytes(const fitsout_col *cols, const size_t *const *rows, int ncol, size_t r0, size_t nr, char **out,
                       size_t *len, int *status);

/* ---------------------------------------------------------------- a table several writers fill */

/* A table whose rows several writers (processes) write at once, each at
 * their offsets in w->tmp, none of them writing or reading every row.
 * fitsout_spread_begin appends the table's header with no rows (and its
 * checksums' cards), makes the file long enough for nrows rows (zeros: a
 * hole where the file system allows), and closes it (w->f NULL); *data is
 * the byte at which row 0 starts.  The table must be the last HDU.  The
 * writers then open w->tmp and write with fitsout_write_at; each sums its
 * bytes with fitsout_sum.  fitsout_spread_end, once every row is written,
 * reopens the file, sets NAXIS2 and DATASUM (the writers' sums joined) and
 * leaves the table current: further HDUs follow it, and fitsout_commit
 * completes that HDU's CHECKSUM from its DATASUM without reading a row
 * (every other HDU's checksums it computes from the HDU's bytes).  CFITSIO
 * status convention.  On error, fitsout_abort as for any open. */
int fitsout_spread_begin(fitsout *w, const char *extname, const fitsout_col *cols, int ncol, size_t nrows,
                         uint64_t *data, int *status);
int fitsout_spread_end(fitsout *w, size_t nrows, uint32_t datasum, int *status);

/* The FITS data checksum (the ones'-complement sum of the data unit's
 * 32-bit big-endian words) of len bytes lying at byte off of the data
 * unit, added to sum.  Sums of disjoint pieces, joined in any order by
 * fitsout_sum_join, give the whole unit's (the fill is zeros). */
uint32_t fitsout_sum(uint32_t sum, const void *bytes, size_t len, uint64_t off);
uint32_t fitsout_sum_join(uint32_t a, uint32_t b);

/* len bytes at byte off of the file open at fd (resumed after a short
 * write); 0 or an errno. */
int fitsout_write_at(int fd, uint64_t off, const void *bytes, size_t len);

/* ---------------------------------------------------------------- text files */

/* The same promise for text (CSV, manifests): fitsout_text_open() creates
 * PATH.tmp-PID for writing through t->f; fitsout_text_commit() checks every
 * write reached the disk, closes and renames onto PATH; on any failure it
 * removes the temporary and says "cannot write PATH: <reason>".  Exactly
 * one of commit or abort follows a successful open.  A NULL path writes
 * nowhere (/dev/null): for a process of a distributed run that computes
 * the same text as the one that writes it. */
typedef struct fitsout_text {
    FILE *f;
    char *path, *tmp;
} fitsout_text;

int fitsout_text_open(fitsout_text *t, const char *path, ody_err *err);
int fitsout_text_commit(fitsout_text *t, ody_err *err);
void fitsout_text_abort(fitsout_text *t);

#endif
