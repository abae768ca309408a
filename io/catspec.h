/* catspec.h — the spectral recipe inside the catalog reader.  Private to
 * io/: cat.c calls it for each chunk of rows, after the scalar features. */
#ifndef CATSPEC_H
#define CATSPEC_H

#include "catcol.h"

typedef struct specrd {
    const cat_spec *o;
    colref flux, wave, ivar, mask, z;
    int has_wave, has_ivar, has_mask, has_z;
    long L;                 /* input pixels */
    double *lam;            /* L input wavelengths from the WCS (no wave column) */
    int G;                  /* grid bins before downsampling */
    double g0, dg;          /* grid: bin k is centred on g0 + k dg */
    int n_out;              /* features: G / downsample */
    char **names;           /* "FLUX@4861.3" a feature */
    long chunk;
    double *fbuf, *wbuf, *ibuf, *mbuf, *zbuf;
    char *fnul, *wnul, *inul, *mnul, *znul;
    double *row_lam, *row_edge, *out, *cov;  /* one spectrum's scratch */
    size_t n_masked;        /* grid bins interpolated over, all rows */
    size_t n_bad;           /* spectra left as missing values */
    size_t n_bad_why[CAT_SPEC_WHY];  /* ... by reason */
    unsigned char *why_row; /* the chunk's rows: CAT_SPEC_WHY when usable, else why not */
    int have_first;         /* first_lo, first_hi are set */
    double first_lo, first_hi;  /* the first spectrum's good pixels' rest wavelengths (cat.spec_first_lo) */
} specrd;

/* Resolves the columns, reads the grid, names the features.  sr->chunk
 * becomes chunk, or fewer rows where chunk rows of the spectra or of their
 * grid would pass 2^22 values (a variable-length column's table has narrow
 * rows, for which CFITSIO suggests thousands): the caller reads at most that
 * many rows at a time.  On error the reader holds nothing. */
int spec_open(fitsfile *f, const char *file, const cat_spec *o, long chunk, specrd *sr, ody_err *err);
void spec_close(specrd *sr);

/* Rows [row0, row0+nr): feature j of row r into vals[j * cn + r], nul[j *
 * cn + r] set where the spectrum is a missing value. */
int spec_chunk(fitsfile *f, const char *file, specrd *sr, long row0, long nr, double *vals, char *nul, size_t cn,
               ody_err *err);

#endif
