/* cat.h — reading a FITS table into a feature matrix (prefix cat_).
 *
 * A catalog is read once, in chunks of CFITSIO's optimal row count, into a
 * float32 row-major feature matrix plus the columns that travel with it (an
 * ID and pass-through columns such as RA and Dec).  Peak memory is the
 * result plus a buffer of one chunk, never a copy of the whole table.
 *
 * Paths go to CFITSIO untouched, so its extended filename syntax works:
 *   cat.fits[SDSS][class=="GALAXY"]     rows filtered by an expression
 *   cat.fits[1][col ug=u-g; gr=g-r]     derived columns
 * (CFITSIO materialises filtered tables in memory; that copy is its own.)
 *
 * CSV and ECSV files are read too (tabin.h): converted to FITS first, so the
 * same syntax applies (cat.csv[class=="GALAXY"]).
 *
 * Column names are case-insensitive.  One element of a vector column is
 * named NAME[k], k counting from 1 as in CFITSIO's expression syntax.
 */
#ifndef CAT_H
#define CAT_H

#include <stddef.h>
#include <stdint.h>

#include "ody.h"
#include "tabin.h"

/* ---------------------------------------------------------------- options */

typedef enum {
    CAT_MISSING_FAIL = 0,   /* stop at the first null/NaN/Inf feature value */
    CAT_MISSING_DROP = 1,   /* drop rows with any missing feature value */
    CAT_MISSING_IMPUTE = 2  /* replace by the column's median of valid values */
} cat_missing;

/* Spectra: a vector column of flux values an object, turned into features
 * on one rest-frame grid (the recipe of Baron & Poznanski 2017): each
 * spectrum shifted to the rest frame, resampled onto the grid conserving
 * flux, its masked pixels (ivar 0, mask set, NaN) left out of the resampling
 * and the grid bins they leave empty interpolated from their neighbours,
 * divided by its median over a window, averaged over `downsample` bins.  A
 * spectrum with fewer than half its bins covered is a missing value (the
 * catalog's missing policy applies). */
typedef struct cat_spec {
    const char *flux;               /* vector column; NULL: no spectra */
    const char *wave;               /* vector column of wavelengths a row; NULL: the flux
                                       column's vector WCS (1CRVLn, 1CDLTn, 1CRPXn) */
    int loglam;                     /* wavelengths are log10 (SDSS's loglam) */
    const char *ivar, *mask;        /* NULL: none; ivar <= 0 or mask != 0 masks a pixel */
    const char *redshift;           /* NULL: already at rest */
    double grid_start, grid_stop, grid_step;  /* the rest-frame grid (Angstrom); step 0: the file's */
    double norm_lo, norm_hi;        /* median window; equal: no normalisation */
    int downsample;                 /* bins averaged into one feature, >= 1 */
} cat_spec;

/* Why a spectrum is unusable (a missing value), counted apart so that the
 * run log says which check to look at. */
enum { CAT_SPEC_NO_Z,       /* no finite redshift above -1 */
       CAT_SPEC_WAVE,       /* wavelengths not finite, or neither increasing nor decreasing throughout */
       CAT_SPEC_COVER,      /* under half the grid's bins covered by good pixels */
       CAT_SPEC_NORM,       /* no positive median flux in the normalisation window */
       CAT_SPEC_EMPTY,      /* not one good pixel: all flux NaN or flagged, or an empty row */
       CAT_SPEC_WHY };
/* Why a spectrum is unusable, as the run log, errors and dropped.csv say it
 * ("with no usable redshift"); "" for CAT_SPEC_WHY. */
const char *cat_spec_why(int why);

typedef struct cat_opt {
    const char *path;               /* required; CFITSIO syntax allowed */
    const char *hdu;                /* NULL: first table HDU (or the one in path);
                                       else a number (0 = primary) or an EXTNAME */
    const char *const *features;    /* n_features names, NAME or NAME[k] */
    int n_features;
    const char *id_col;             /* NULL: the 1-based row number is the ID */
    const char *const *passthru;    /* columns copied alongside, may be NULL */
    int n_passthru;
    cat_missing missing;            /* default CAT_MISSING_DROP */
    const double *nulls;            /* n_nulls values that mean missing in every feature (a survey's -9999), */
    int n_nulls;                    /* compared as read and as float32; NULL / 0: none */
    int quiet_values;               /* no warnings about the values (sentinels, float32 levels): a run's
                                       own copy, read back, was warned about when it was first read */
    int run_features;               /* the features are a finished run's (`oddsky score`): errors advise on
                                       the new catalog, not on catalog.features */
    int passthru_optional;          /* a pass-through column the table lacks is left out, and cat.pass_left
                                       names it (`oddsky score`: a night's alerts lack a run's truth columns) */
    long chunk_rows;                /* 0: CFITSIO's optimal row count */
    tab_format format;              /* TAB_AUTO (default): FITS, CSV or ECSV from the content */
    const cat_spec *spec;           /* NULL: none; else its grid bins follow the features */
    /* A part of the table, for processes that each read one: count rows
     * from row `first` (0-based) of the (filtered) table; count 0: every
     * row.  A part is read as the table would be, except what needs every
     * part: under CAT_MISSING_IMPUTE its missing values stay NaN (the
     * medians are the whole table's), no rows left is no error, IDs are not
     * checked for uniqueness, and nothing is logged.  n_table_rows is still
     * the table's; n_rows, n_dropped and the lists are the part's. */
    long long first, count;
} cat_opt;

/* Fills defaults.  The caller sets path and features. */
void cat_opt_init(cat_opt *o);

/* Parses "drop" / "impute" / "fail"; returns -1 for anything else. */
int cat_missing_parse(const char *s);
const char *cat_missing_name(cat_missing m);

/* ---------------------------------------------------------------- catalog */

typedef enum { CAT_COL_FLOAT = 0, CAT_COL_INT = 1, CAT_COL_STRING = 2 } cat_coltype;

#define CAT_INT_NULL INT64_MIN   /* a null integer pass-through value */

/* The longest ID, in characters, that a catalog may hold (cat_ids_missing
 * refuses a longer one, and one holding ';', the separator of the exports'
 * neighbour lists): every ID an export, a label or a neighbour list names
 * fits a buffer of CAT_ID_MAX + 1, so none is ever cut short. */
#define CAT_ID_MAX 255

/* A column carried alongside the features, one value per kept row. */
typedef struct cat_col {
    char *name;        /* as written in the file */
    char *unit;        /* TUNITn, "" when absent */
    cat_coltype type;
    int width;         /* CAT_COL_STRING: characters per value (without NUL) */
    double *f;         /* CAT_COL_FLOAT: NaN marks a null */
    int64_t *i;        /* CAT_COL_INT: CAT_INT_NULL marks a null */
    char *s;           /* CAT_COL_STRING: n_rows slots of width+1 bytes */
} cat_col;

typedef struct cat {
    char *path;           /* the path as given */
    size_t n_rows;        /* rows kept */
    size_t n_feat;
    float *X;             /* n_rows x n_feat, row-major */
    char **feat_names;    /* as requested, e.g. "FLUX[3]" */
    char **feat_units;
    cat_col id;           /* CAT_COL_INT row numbers when no ID column */
    int n_pass;
    cat_col *pass;
    char pass_left[256];  /* passthru_optional: the pass-through columns left out, "KIND, ODDITY"; "" none */
    int64_t *row;         /* 1-based row in the (filtered) table of each kept row (a run frees
                             them once catalog.fits holds them: NULL then) */
    /* Which rows id, pass and row hold: every kept row (id_part 0, id_lo 0),
     * or, in a distributed run that read the table by parts, this process's
     * rows alone from row id_lo on (id_part 1): a value of every object on
     * every process was 8 bytes an object for the ID alone. */
    int id_part;
    size_t id_lo;
    size_t n_table_rows;  /* rows in the (filtered) table */
    size_t n_dropped;     /* rows dropped for missing values */
    /* those rows (missing: drop), in table order: why each went */
    int64_t *drop_row;    /* 1-based row in the (filtered) table */
    int32_t *drop_feat;   /* the first feature missing there */
    int32_t *drop_nmiss;  /* how many features are missing there */
    uint8_t *drop_spec;   /* why its spectrum was unusable (CAT_SPEC_*); CAT_SPEC_WHY: it was not */
    cat_col drop_id;      /* their IDs (row numbers when no ID column) */
    size_t n_imputed;     /* values replaced by a median */
    int spec_grid, spec_out;          /* spectra: grid bins, features made of them (0: no spectra) */
    size_t spec_masked, spec_bad;     /* bins interpolated; spectra unusable (cat_spec) */
    size_t spec_bad_why[CAT_SPEC_WHY];  /* the unusable ones by reason */
    double spec_lo, spec_hi;          /* the grid's first and last bin centres */
    double spec_first_lo, spec_first_hi;  /* the rest-frame wavelengths of the first spectrum with good pixels in
                                             order (NAN: none), for an error that says where the spectra lie */
    size_t *n_missing;    /* per feature: missing values seen */
    size_t n_table_feat;  /* the first features, from table columns (the rest: an image's or the spectra's) */
    double *read_lo, *read_hi;  /* read by parts, per table-column feature: the part's smallest and largest value
                                   as read, before float32 (for cat_warn_levels); NULL otherwise */
} cat;

/* Reads the catalog described by o.  On success *out owns a new catalog the
 * caller frees with cat_destroy(); on error *out is unchanged and err says
 * which file, column and row, and what to do. */
int cat_read(const cat_opt *o, cat **out, const ody_log *log, ody_err *err);

/* How many features a kind of value warning has named: the first
 * CAT_WARN_NAMED at warning level, the rest at info level (the run log
 * keeps them) and summed up by cat_warned_close, so that a vector column's
 * thousand elements do not fill the console. */
enum { CAT_WARN_NAMED = 5 };
typedef struct cat_warned {
    size_t named, more;
    char first_more[CAT_ID_MAX + 1];  /* the first feature not named */
} cat_warned;
/* The level of the next warning of a kind, naming feature `name`:
 * ODY_LOG_WARN, or ODY_LOG_INFO once CAT_WARN_NAMED are named. */
int cat_warned_level(cat_warned *w, const char *name);
/* The line that sums up the features w did not name (nothing when none):
 * "FILE: N more features WHAT, from FIRST on — the run log names each". */
void cat_warned_close(const cat_warned *w, const char *what, const char *file, const ody_log *log);
#define CAT_WARNED_SENTINEL "hold a value several objects share far beyond the rest (a sentinel?)"
#define CAT_WARNED_LEVELS "span so few of float32's levels that objects merge"
#define CAT_WARNED_CONSTANT "have one value for all objects"

/* A catalog read by parts (cat_opt first/count) is warned of a sentinel
 * (a value several objects share far beyond the rest, as cat_read warns of
 * it) together: each process sums up its n rows of features [j0, j1) into
 * cat_sentinel_len(n_parts) doubles a feature (cat_sentinel_part), the
 * summaries meet on one process, in process order, and cat_sentinel_warn
 * warns there.  The ends and their counts are exact, the spread of the
 * rest is estimated from a sample of every part. */
size_t cat_sentinel_len(int n_parts);
/* The float32-levels warning cat_read gives of table-column feature j, for
 * its range [lo, hi] as read: a catalog read by parts gives it from the
 * parts' read_lo and read_hi. */
void cat_warn_levels(const cat *c, size_t j, double lo, double hi, const char *file, const ody_log *log,
                     cat_warned *w);
void cat_sentinel_part(const float *X, size_t n, size_t n_feat, size_t j0, size_t j1, int n_parts, double *out);
void cat_sentinel_warn(const cat *c, size_t j0, size_t j1, const double *parts, int n_parts, const char *file,
                       const ody_log *log, cat_warned *named);

/* Whether a read of n_read rows (whole, or the parts summed) keeping `kept`
 * leaves nothing to rank: no row kept, or no spectrum usable (which
 * `missing: impute` would fill from nothing). */
int cat_none_left(const cat *c, size_t kept, long long n_read);

/* The reason most of c's unusable spectra share (CAT_SPEC_NO_Z .. CAT_SPEC_EMPTY). */
int cat_spec_main_why(const cat *c);

/* The error when cat_none_left: ODY_EINPUT, naming o->path and, for
 * spectra, the reason most of them share and what to set (cat_spec_main_why);
 * else the feature that missed most (c->n_missing): one missing everywhere
 * is to be dropped, since imputing it has nothing to impute from (or, for a
 * run's features, to be given values in the new catalog). */
int cat_none_left_fail(const cat *c, const cat_opt *o, long long n_read, ody_err *err);

/* The error for a path whose row filter names only #row
 * (ody_fits_row_only_filter): ODY_EINPUT, saying to name a column too. */
int cat_row_only_fail(const char *path, ody_err *err);
void cat_destroy(cat *c);

/* What `oddsky check` asks of a catalog without reading it: opens the table
 * and resolves every column o names, as cat_read would (a wrong path, a
 * missing or string feature, a vector index out of range, a missing ID or
 * pass-through column, a table too large for the memory).  Reads no rows,
 * so the uniqueness of IDs and missing values are not checked — except that
 * a text table is converted, which checks each of its values' syntax.  On
 * success *n_rows is the (filtered) table's row count and *n_feat (when
 * not NULL) the features it makes: a vector column's elements, an image's
 * pixels and the spectra's grid bins counted one by one. */
int cat_check(const cat_opt *o, long long *n_rows, int *n_feat, ody_err *err);

/* The spectra line of cat_read's log (nothing without spectra): for a
 * table read by parts, once their counts are summed. */
void cat_log_spectra(const cat *c, const ody_log *log);

/* The missing values of each feature, logged (file: the catalog as named);
 * under CAT_MISSING_IMPUTE a warning for a feature missing in more than
 * half of the objects: the median stands in for most of them, and the few
 * with a value stand out for having one (a Fermi spectral model's
 * parameters, given only for the sources fitted with it). */
void cat_log_missing(const cat *c, const char *file, cat_missing how, const ody_log *log);

/* Keeps the rows with keep[r] set (in order), dropping the others from
 * every array; counted in n_dropped.  Fails only on allocation. */
int cat_keep_rows(cat *c, const uint8_t *keep, ody_err *err);

/* Appends n_new feature columns (values row-major n_rows x n_new) named
 * names[]; the catalog owns copies. */
int cat_add_features(cat *c, const float *vals, int n_new, char *const *names, ody_err *err);

/* Writes the ID of row r into buf as text (integer, float or string). */
void cat_col_format(const cat_col *c, size_t r, char *buf, size_t len);

/* ---------------------------------------------------------------- IDs spread over processes */

/* Bytes one value of c takes (8, or width + 1 for a string), and value r's
 * bytes. */
size_t cat_col_elem(const cat_col *c);
const void *cat_col_at(const cat_col *c, size_t r);

/* Values packed at data (cat_col_elem bytes each) seen as a column of c's
 * name, unit, type and width: the view owns nothing. */
cat_col cat_col_view(const cat_col *c, void *data);

/* <0, 0 or >0 as value x of a orders before, equal to or after value y of b
 * (columns of one type and width): the order IDs are checked in. */
int cat_col_cmp(const cat_col *a, size_t x, const cat_col *b, size_t y);

/* A hash of value r that equal values share (0 and -0 too). */
uint64_t cat_col_hash(const cat_col *c, size_t r);

/* The two checks cat_read makes of a whole table's IDs, apart, for IDs
 * spread over processes (a table read by parts is not checked by
 * cat_read).
 * cat_ids_missing: ODY_EINPUT for the first of n values with no ID (row[]
 * holds their table rows), else 0.  cat_ids_first_dup: the smallest value
 * held twice, at *a and *b, the first two positions that hold it: 1; 0 when
 * every value differs; -1 when out of memory.  cat_ids_dup_fail: the error
 * for value a of c held in table rows ra and rb (ODY_EINPUT). */
int cat_ids_missing(const cat_col *c, size_t n, const int64_t *row, const char *file, ody_err *err);  /* and unusable */
int cat_ids_first_dup(const cat_col *c, size_t n, size_t *a, size_t *b);
int cat_ids_dup_fail(const cat_col *c, size_t a, long long ra, long long rb, const char *file, ody_err *err);

/* A catalog's IDs as text (cat_col_format), with the rows sorted by it: an
 * object found by the ID an astronomer types or a file names.  IDs are
 * unique (cat_read checks). */
typedef struct cat_ids {
    char *text;           /* n IDs of w bytes each, NUL-terminated */
    size_t w, n;
    size_t *order;        /* rows sorted by their ID text */
} cat_ids;

/* 0, or -1 when out of memory (x then holds nothing). */
int cat_ids_build(cat_ids *x, const cat_col *id, size_t n);
void cat_ids_free(cat_ids *x);

/* The row of ID s, or -1. */
long cat_ids_find(const cat_ids *x, const char *s);

/* Row r's ID as text. */
static inline const char *cat_ids_text(const cat_ids *x, size_t r) { return x->text + r * x->w; }

/* ---------------------------------------------------------------- inspect */

typedef struct cat_colinfo {
    char name[72], tform[72], unit[72];
    int typecode;       /* CFITSIO equivalent type code; negative: variable length */
    long repeat, width;
    long n_null;        /* rows with a null/NaN/Inf element; -1 if not counted */
    double lo, hi;      /* the smallest and largest finite value (a survey's -9999 shows here);
                           lo > hi when there is none or the column was not counted */
    int has_wcs;        /* a vector column with a vector WCS (1CRVLn, 1CDLTn): its elements' */
    double wcs_first, wcs_last, wcs_step;  /* coordinates, e.g. a spectrum's wavelengths */
    long len_min, len_max;  /* a variable-length array's shortest and longest row; -1 when not read */
} cat_colinfo;

typedef struct cat_hduinfo {
    int num;            /* 0 = primary, as in the [n] syntax */
    char format[16];    /* "" for FITS; "CSV", "ECSV" or "VOTable" for a text table read as one */
    char extname[72];
    int hdutype;        /* IMAGE_HDU, ASCII_TBL, BINARY_TBL */
    int bitpix, naxis;
    long naxes[9];
    int compressed;     /* tile-compressed image */
    long n_rows;
    long n_scanned;     /* rows the null counts and ranges cover: n_rows, or the first of them (a bound) */
    int n_cols;
    cat_colinfo *cols;
} cat_hduinfo;

typedef struct cat_info {
    int n_hdu;
    cat_hduinfo *hdu;
} cat_info;

/* Describes every HDU of a file, counting nulls in numeric columns.  *out is
 * owned by the caller (cat_info_destroy); unchanged on error. */
int cat_inspect(const char *path, cat_info **out, ody_err *err);

/* The same, with the null counts and ranges of each table taken over its
 * first rows up to max_bytes of table (0: every row) — a look at a survey
 * of 10^9 rows took minutes column by column.  hdu[].n_scanned says how far. */
#define CAT_INSPECT_BYTES (1LL << 28)
int cat_inspect_upto(const char *path, long long max_bytes, cat_info **out, ody_err *err);
void cat_info_destroy(cat_info *info);

/* Short type name for a CFITSIO type code ("int16", "float64", "string"...). */
const char *cat_type_name(int typecode);

#endif
