/* tabin.h — text tables (CSV, ECSV, VOTable) read as FITS (prefix tab_).
 *
 * Astronomers' tables arrive as CSV (SkyServer, CasJobs, the Gaia archive),
 * ECSV (astropy) and VOTable (every VO service, TOPCAT).  Rather than a second reader behind every consumer, a
 * text table is converted once, streaming, into a FITS binary table in a
 * temporary file, which then goes through the FITS catalog reader like any
 * other: row filters and derived columns in CFITSIO's syntax work on CSV
 * too (cat.csv[class=="GALAXY"][col ug=u-g]).  The text is read twice (once
 * to type the columns and count the rows, once to write them) and never held:
 * memory is one chunk of rows, whatever the file's size.  gzip-compressed
 * text is read through zlib.
 *
 * Columns of a CSV file are typed by scanning every value: int64 when every
 * value is an integer, float64 when every value is a number, else a string as
 * wide as the widest value.  Missing values (an empty field, NaN, null, None,
 * NA, N/A, --, case-insensitive) become nulls (NaN or TNULLn) that the
 * catalog's `missing:` rule then handles.  An ECSV file's header declares
 * names, types, units and descriptions; they are kept (TUNITn, TCOMMn) and
 * every value is checked against its declared type.  A VOTable's FIELDs do
 * the same (name, datatype, unit, DESCRIPTION, VALUES null), for TABLEDATA,
 * BINARY and BINARY2 serialisations (base64, in the file); its first TABLE
 * is read.  Array-valued numeric FIELDs are refused for now.
 *
 * Limits, each refused with the line it was met on: 999 columns (FITS's
 * own), 1 MiB per field, 68 characters per column name.
 */
#ifndef TABIN_H
#define TABIN_H

#include "ody.h"

typedef enum { TAB_AUTO = 0, TAB_FITS = 1, TAB_CSV = 2, TAB_ECSV = 3, TAB_VOTABLE = 4 } tab_format;

/* "auto" / "fits" / "csv" / "ecsv" / "votable"; -1 for anything else. */
int tab_format_parse(const char *s);
const char *tab_format_name(tab_format f);

/* Whether FILE's name ends in one of exts (".csv", ...; NULL-terminated),
 * gzipped or not, in any case. */
int tab_named(const char *file, const char *const *exts);

/* The format FILE's name says, gzipped or not: FITS for .fits, .fit, .fts
 * and .fz, ECSV for .ecsv, VOTable for .vot and .xml, else CSV. */
tab_format tab_format_by_name(const char *file);

/* The format of FILE (a file name, no CFITSIO [..] suffix) from its first
 * bytes, through gzip: FITS when it opens with SIMPLE, ECSV with "# %ECSV",
 * VOTable when it opens with <?xml or <VOTABLE and names a VOTABLE element,
 * CSV when the first block is text or the name ends in .csv, .tsv or .txt
 * (so that a control byte is reported by line); anything else is left to the FITS
 * reader (TAB_FITS), whose checks name the problem. */
int tab_detect(const char *file, tab_format *out, ody_err *err);

/* Converts the text table FILE (fmt TAB_CSV, TAB_ECSV or TAB_VOTABLE) into a FITS binary
 * table (HDU 1, EXTNAME TABLE) in a new temporary file under $TMPDIR (else
 * /tmp).  On success *tmp is that file's path (malloc'd): the caller removes
 * the file and frees the path.  On error nothing is left on disk and *tmp is
 * NULL; err names FILE, the line and the column. */
int tab_to_fits(const char *file, tab_format fmt, char **tmp, ody_err *err);

/* For a catalog PATH (a file name, perhaps followed by CFITSIO [..]
 * filters) in format fmt (TAB_AUTO: detected): when the file is a text
 * table, converts it and sets *fits_path to the FITS copy's name with "[1]"
 * and the filters appended, and *tmp to the copy's file name — the caller
 * opens *fits_path, then removes *tmp (an open file stays readable) and frees
 * both.  For a FITS file both are NULL.  Unchanged on error. */
int tab_resolve(const char *path, tab_format fmt, char **fits_path, char **tmp, ody_err *err);

/* The keyword stem of the FITS copy's notes on numeric columns holding a
 * value no double holds (1e999, 1e-400: strtod's range error), which the copy
 * stores as Inf or 0: TAB_RANGE_KEY "1", "2", ... each "LINE|VALUE|COLUMN"
 * for the first such value of a column.  A column only carried along keeps
 * its value; the catalog reader refuses a feature column so noted
 * (tab_range_check). */
#define TAB_RANGE_KEY "ORNG"

/* ODY_EINPUT naming FILE's line (FILE: a catalog path, its [..] filters
 * left out), the value and what to do for the first note (TAB_RANGE_KEY)
 * in the open HDU of f whose column is_used(ctx, column) says is read;
 * else 0.  The notes are read once, whatever the number of columns; f's
 * status and CFITSIO's error stack are left clear. */
int tab_range_check(fitsfile *f, const char *file, int (*is_used)(const void *ctx, const char *column),
                    const void *ctx, ody_err *err);

#endif
