/* catimg.h — feature blocks from image HDUs: an image of N rows x L values
 * (NAXIS2 = the table's rows, NAXIS1 = L) in the catalog's file, named in
 * `catalog.features` by its EXTNAME, is L features, row i of the image
 * beside row i of the table.  Private to io/ (the catalog reader).
 */
#ifndef CATIMG_H
#define CATIMG_H

#include <fitsio.h>
#include <stddef.h>

#include "ody.h"

typedef struct imgblk {
    char name[72];          /* the HDU's EXTNAME */
    fitsfile *f;            /* open on that HDU */
    long L;                 /* values a row */
    char **names;           /* L feature names: NAME[k], or NAME[k]@x from CRVAL1 / CDELT1 / CRPIX1 */
    char unit[72];          /* BUNIT */
    double *buf;            /* a chunk of rows */
    char *nul;
} imgblk;

/* Whether the bare feature name `name` is an image HDU of the file behind
 * path (its [..] suffix dropped): 0 when it is not (nothing held), 1 when
 * it is and it fits (opened into b), or -1 (err set) when it is an image
 * that does not fit: not 2-D, or not nrows rows (a row filter on the
 * table), or when out of memory. */
int img_open(const char *path, const char *name, long nrows, long chunk, imgblk *b, ody_err *err);
void img_close(imgblk *b);

/* Rows [row0, row0+nr) (1-based): value k of row r into vals[k * cn + r],
 * nul set for a null (BLANK), NaN or Inf. */
int img_chunk(imgblk *b, const char *path, long row0, long nr, double *vals, char *nul, size_t cn, ody_err *err);

#endif
