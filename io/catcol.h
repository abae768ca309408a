/* catcol.h — what the catalog reader's files share.  Private to io/.
 *
 * A column requested by name ("FLUX" or "FLUX[3]") is resolved once against
 * the open table into a colref; reads then go through it in chunks. */
#ifndef CATCOL_H
#define CATCOL_H

#include <fitsio.h>

#include "cat.h"

typedef struct colref {
    char name[72];   /* name in the file */
    long elem;       /* 1-based element within a vector column */
    int colnum, typecode;
    long repeat, width;  /* a variable-length array: repeat as its reader sets it */
    int vla;             /* a variable-length array (catcol_resolve_vla alone accepts one) */
    char unit[72];
} colref;

/* Whether a CFITSIO type code holds integers (or logicals). */
int catcol_is_integer(int typecode);

/* Resolves "NAME" or "NAME[k]" in the current table.  `role` is used in
 * messages ("feature", "id", "pass-through"). */
int catcol_resolve(fitsfile *f, const char *file, const char *spec, const char *role, colref *ref, ody_err *err);

/* The longest row of a variable-length array read: a descriptor claiming
 * more is taken for damage, not a spectrum. */
#define CATCOL_VLA_MAX 10000000

/* The bytes of the current table's heap, from its start (THEAP): where a
 * variable-length row's elements must lie; -1 when the header says none.
 * A descriptor pointing beyond it is damage: CFITSIO would read past the
 * file, or garbage. */
long long catcol_heap_size(fitsfile *f);

/* Whether a row of len elements of width bytes at heap offset off lies
 * outside a heap of heap bytes (catcol_heap_size): damage. */
static inline int catcol_vla_outside(long long len, long long off, long width, long long heap)
{
    return len > 0 && (off < 0 || off + len * width > heap);
}

/* The same, accepting a variable-length array (P or Q) too: ref->vla set,
 * ref->typecode its element type and ref->repeat 1, for the caller to set
 * from the rows' lengths (fits_read_descriptll).  Spectra alone read them. */
int catcol_resolve_vla(fitsfile *f, const char *file, const char *spec, const char *role, colref *ref, ody_err *err);

/* The column's vector WCS: coordinate of element k (1-based) = crval + (k -
 * crpix) cdelt; 0 when it has none (1CRVLn or 1CDLTn missing). */
int catcol_vector_wcs(fitsfile *f, int colnum, double *crval, double *cdelt, double *crpix);

/* 1 when the table has no column named name, matched as catcol_resolve
 * matches it (exactly, else in case alone; no CFITSIO wildcards), with
 * name appended to left ("A, B", as far as len allows); 0 when it has one. */
int catcol_left_out(fitsfile *f, const char *name, char *left, size_t len);

/* Feature specs as the table resolves them: a vector column named bare
 * ("FLUX") stands for all its elements and "FLUX[a:b]" for elements a..b
 * (1-based, inclusive); anything else stays one spec.  *spec gets the n
 * specs to resolve ("FLUX[1]"...), *label their names for the user: the
 * spec, with "@λ" appended when the column has a vector WCS (1CRVLn,
 * 1CDLTn, 1CRPXn keywords), e.g. "FLUX[12]@3550.4".  Both malloc'd arrays
 * of malloc'd strings (catcol_names_free); on error nothing is allocated. */
int catcol_expand(fitsfile *f, const char *file, const char *const *features, int n, char ***spec, char ***label,
                  int *n_out, ody_err *err);
void catcol_names_free(char **names, int n);

/* Reads element ref->elem of rows [row0, row0+nrows) as doubles; null[r] is
 * set for a FITS null, NaN or Inf.  buf must hold nrows*repeat doubles and
 * nbuf nrows*repeat flags. */
int catcol_read_numeric(fitsfile *f, const char *file, const colref *ref, long row0, long nrows, double *out,
                        char *null, double *buf, char *nbuf, ody_err *err);

/* The same from buf / nbuf as the previous read of the same column left
 * them: the elements of a vector column are read once per chunk. */
void catcol_extract(const colref *ref, long nrows, double *out, char *null, const double *buf, const char *nbuf);

/* A carried column (ID, pass-through) of n rows for ref: allocation, and
 * the rows of [row0, row0+nrows) with keep[r] set appended from slot at. */
int catcol_alloc(cat_col *c, const colref *ref, size_t n);
void catcol_free(cat_col *c);
int catcol_read(fitsfile *f, const char *file, const colref *ref, cat_col *c, long row0, long nrows,
                const char *keep, size_t at, double *buf, char *nbuf, char **sbuf, ody_err *err);

/* IDs must name one object each: an error naming the column, a repeated
 * (or missing) value and its two rows (row[] 1-based) when they do not.
 * c is left unchanged. */
int catcol_unique(const cat_col *c, size_t n, const int64_t *row, const char *file, ody_err *err);

/* Warns (log) of each of the first n_cols features (the table's columns:
 * spectra and images have masks of their own) whose end holds a value
 * several objects share, far beyond the rest: a missing-value sentinel such
 * as -9999 (cat_warn.c). */
void catwarn_sentinels(const cat *c, size_t n_cols, const char *file, const ody_log *log);

#endif
