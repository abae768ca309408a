/* tabconv.h — private to io/: the text-table converter's state, shared by
 * tabin.c (CSV, ECSV, the FITS copy) and tabin_vot.c (VOTable).
 *
 * A reader hands the converter one field at a time (tabc_field) and ends
 * each row (tabc_record); pass 1 types the columns and counts the rows,
 * pass 2 writes them.  A reader that declares its columns (VOTable) adds
 * them with tabc_add_column before the first row, with decl set.
 */
#ifndef TABCONV_H
#define TABCONV_H

#include <fitsio.h>
#include <stddef.h>
#include <zlib.h>

#include "tabin.h"

#define TAB_MAX_COLS 999           /* FITS's TFIELDS limit */
#define TAB_MAX_FIELD (1 << 20)    /* bytes in one field */
#define TAB_MAX_NAME 68            /* characters in a column name (a TTYPEn value) */
#define TAB_MAX_HEADER (1 << 20)   /* bytes of '#' lines before the table */
#define TAB_BLOCK (1 << 20)        /* text read at a time */
#define TAB_CHUNK 8192             /* rows written at a time */

typedef enum { K_NONE = 0, K_INT, K_FLOAT64, K_FLOAT32, K_BOOL, K_STRING } kind;

typedef struct col {
    char name[TAB_MAX_NAME + 1];
    char *unit, *desc;   /* ECSV, VOTable: owned, may be NULL */
    char *null_tok;      /* VOTable: the declared null value, owned, may be NULL */
    char decl_name[16];  /* ECSV: the declared datatype */
    kind decl;           /* ECSV: declared; K_NONE for CSV */
    kind k;              /* what is written */
    int int_ok, num_ok;  /* every value seen so far parses as one */
    size_t width;        /* widest value, bytes */
    size_t n_val;        /* values that are not missing */
    long range_line;     /* the line of the first value no double holds (strtod's ERANGE), 0 if none */
    char range_val[41];  /* that value, cut to 40 bytes */
    /* one chunk of output */
    double *d;
    long long *i;
    char *s;
    char **sp;
} col;

typedef struct conv {
    const char *file;
    tab_format fmt;
    ody_err *err;
    int rc;              /* the first error; parsing stops there */
    int pass;            /* 1: type and count; 2: write */
    int ncol;
    col *c;
    int field;           /* of the current record */
    int header;          /* the current record is the column names */
    long hdr_line;       /* text line of the column names */
    size_t row;          /* data rows completed */
    fitsfile *out;
    char *tmp;
    long n_chunk;        /* rows buffered */
    long chunk;          /* rows a chunk holds */
    long xml_line;       /* VOTable: the line being read (messages) */
    char delim;
    col *decl;           /* ECSV: the declared columns */
    int ndecl;
} conv;

/* Opens FILE (plain or gzip) for reading; err names it when it cannot. */
int tabc_open_text(const char *file, gzFile *gz, ody_err *err);

/* Appends a column named s[0..n) (col<k> when empty); sets cv->rc on error.
 * Returns the new column, or NULL. */
col *tabc_add_column(conv *cv, const char *s, size_t n);

/* One field of the current row (s may be NULL for an empty one), and the
 * end of a row; errors go to cv->rc, after which both do nothing. */
void tabc_field(conv *cv, const char *s, size_t n);
void tabc_record(conv *cv);

/* Checks the column names once they are all known (duplicates). */
int tabc_header_done(conv *cv);

/* The line a message should name. */
long tabc_line(const conv *cv);

/* One pass over a VOTable (tabin_vot.c): pass 1 declares the columns from
 * its FIELDs and scans the rows; pass 2 hands the rows over again. */
int tab_vot_pass(conv *cv);

#endif
