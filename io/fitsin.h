/* fitsin.h — opening FITS files that someone else wrote (prefix fitsin_).
 *
 * CFITSIO trusts what a header says.  Moving to an HDU, it copies some
 * keyword values into fixed-size buffers (a TTYPEn written as a 70-character
 * unquoted string overruns one), it believes NAXISn, and its Rice decoder
 * reads past the end of a corrupted tile.  So before CFITSIO parses a
 * file's extensions, fitsin_check() walks every header as bytes, through
 * CFITSIO's byte-level I/O on the file opened at its primary HDU (so gzip,
 * bzip2 and compress work as usual), and refuses:
 *   - a path that is not a regular file (a FIFO, a device, a directory) or
 *     is empty: never read /dev/zero for ever;
 *   - a header card with a byte outside printable ASCII, a header without
 *     END within FITSIN_MAX_CARDS cards, structural keywords (XTENSION,
 *     BITPIX, NAXISn, PCOUNT, GCOUNT, TFIELDS) that are missing or out of
 *     range, and the string-valued table keywords CFITSIO copies (TTYPEn,
 *     TFORMn, TUNITn, TDISPn, TDIMn, EXTNAME, ZCMPTYPE...) unless quoted;
 *   - data that the header claims but the file does not hold (a truncated
 *     file, or a header claiming 10^12 rows), found from sizes alone.
 * The caller then opens the path with CFITSIO (its extended syntax applies)
 * and, before it reads the pixels of a tile-compressed image, has
 * fitsin_check_tiles() read every Rice tile with a bounds-checked reader:
 * CFITSIO's Rice decoder checks its input only at the end of each block of
 * pixels, so a corrupted tile sends it reading past its buffer.
 * Every refusal is ODY_EINPUT with "FILE: HDU n, keyword K: what — what to
 * do".  Nothing here reads pixel values.
 */
#ifndef FITSIN_H
#define FITSIN_H

#include <fitsio.h>

#include "ody.h"

#define FITSIN_MAX_CARDS 100000   /* header cards of one HDU (8 MB) */

/* What the walk found, for callers that want it (may be NULL). */
typedef struct fitsin_info {
    int n_hdu;              /* HDUs in the file */
    long long junk_at;      /* offset of bytes after the last HDU that are not
                               a FITS extension (0 bytes: none); -1 if none */
} fitsin_info;

/* Checks the file behind path (its CFITSIO [..] suffix dropped): a
 * regular file, every header sound, every HDU's data present.  Nothing
 * stays open. */
int fitsin_check(const char *path, fitsin_info *info, ody_err *err);

/* A model file's layout version: keyword FORMAT of the current HDU of f (1
 * when absent: files from before it was written).  0, or ODY_EINPUT when
 * it is newer than `newest`, the version this build reads. */
int fitsin_format(fitsfile *f, const char *path, int newest, ody_err *err);

/* That path (its suffix dropped) names a regular, non-empty file; what
 * ("catalog", "cutout") goes into the message. */
int fitsin_regular(const char *path, const char *what, ody_err *err);

/* When the current HDU of f is a Rice tile-compressed image: every tile
 * has a plausible size and decodes within its bytes.  0 for other HDUs
 * (gzip tiles go through zlib, which checks its input). */
int fitsin_check_tiles(fitsfile *f, const char *path, ody_err *err);

#endif
