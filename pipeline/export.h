/* export.h — the export stage's own parts, shared between st_export.c
 * (the ranking, its columns, the FITS file) and st_export_text.c (CSV,
 * ECSV, VOTable, and how processes share their formatting).  Internal to
 * the export stage: prefix xp_. */
#ifndef EXPORT_H
#define EXPORT_H

#include <stdio.h>

#include "stage.h"

#define DRVW 16  /* a detector's name, with its NUL */

/* The first m rows of the ranking, and the widths of the columns the
 * export makes (the others are read through the order from the run's own
 * arrays).  With several processes each makes the rows it holds, through
 * a view of them alone (order, lorder and pos of those rows). */
/* The IDs the neighbour lists name: the catalog's own when they hold every
 * object's, else those of the rows this process's lists name, asked of the
 * processes that hold them (xp_ids_fetch): a bit a catalog row marks the
 * rows named, a count every 64 rows finds a row's place among them. */
typedef struct xp_ids {
    const cat_col *all;  /* every object's IDs (row-indexed), or NULL */
    cat_col view;        /* else the named rows' IDs, in row order (a view of buf) */
    void *buf;
    uint64_t *bits;      /* the rows named */
    uint32_t *before;    /* per 64 rows: rows named before them */
} xp_ids;

typedef struct ranked {
    const run_state *st;
    size_t m;
    const size_t *order; /* objects in rank order (stage_rank_order): rows of the catalog (one process; a view's) */
    const stage_ranked *parts; /* several processes: this process's objects in rank order, and their places */
    const size_t *lorder;/* the same as indices into this process's per-object arrays (order - st->lo) */
    const size_t *pos;   /* NULL, or each row's place in the whole ranking (a view's) */
    const cat *nk;       /* whose IDs the neighbour lists name */
    const xp_ids *ids;   /* those IDs */
    int idw;             /* the widest ID as printed */
    size_t nbw;          /* a neighbour list's bytes */
    int kn;              /* nearest objects listed */
    size_t whyw;         /* WHY's bytes */
    char **feat_col;     /* the features' column names, F_<name> */
} ranked;

/* The columns the export makes, for rows [r0, r0 + nr) of the ranking:
 * made a chunk at a time where they are written, never for every row at
 * once (at 10^7 objects the neighbour lists alone were 1.8 GB). */
typedef struct chunk {
    size_t r0, nr;
    int32_t *rank;
    float *feat;         /* n_feat columns of nr (narrow tables) */
    char *nbs, *nrs;     /* similar and nearest objects' IDs joined by ';', nbw bytes a row */
    char *why;           /* the most deviant features, whyw bytes a row */
    char *drv;           /* the detector that drove the score, DRVW bytes a row */
} chunk;

/* Every export writes the same columns under the same names: FITS from the
 * arrays, the text formats from the same arrays formatted (digits: 17 for a
 * carried float, enough to read back the same double; 10 for a score). */
typedef struct xcol {
    fitsout_col c;
    int digits;
    const size_t *rows;  /* NULL: c.data holds a chunk's rows from its start (a column the export makes);
                            else the rows of c.data (the run's own array) in rank order */
} xcol;

/* One file of the export made a block of rows at a time (xp_rows): make
 * gives the bytes of rows [r0, r1) of R (the ranking, or a view of it) in
 * *mem (malloc'd; NULL when out of memory), and with ends each row's end
 * in them, on any thread of any process; put writes bytes of whole
 * consecutive rows, the first being place t0 of the ranking, one thread at
 * a time: with one process every row, in order; with several, each
 * process its own windows of the ranking, at byte `at` among all rows' (a
 * write error stays in the file's own state, for its close). */
typedef struct xp_pass {
    const ranked *R;
    size_t block;        /* rows a block */
    void (*make)(struct xp_pass *p, const ranked *R, size_t r0, size_t r1, char **mem, size_t *len, uint32_t *ends);
    void (*put)(struct xp_pass *p, size_t t0, const char *bytes, size_t len);
    uint64_t at;         /* several processes: the bytes of every row before t0's window; after xp_rows, of all */
} xp_pass;

/* Every row of the ranking through p; 0, or -1 when out of memory or a
 * transfer failed (on every process alike). */
int xp_rows(const ody_comm *c, xp_pass *p);

/* Room for cap rows; 0 or -1 (out of memory, c freed). */
int xp_chunk_alloc(const ranked *R, size_t cap, chunk *c);
/* Rows [r0, r0 + nr) of the ranking into c (allocated for at least nr). */
void xp_chunk_fill(const ranked *R, size_t r0, size_t nr, chunk *c);
void xp_chunk_free(chunk *c);

/* Room for every column; the columns in order into x (xp_schema_cap of
 * them), the ones the export makes from chunk c; their number. */
int xp_schema_cap(const cat *k);
int xp_schema(const ranked *R, const chunk *c, xcol *x);
/* The columns of x the text formats write into xt (every one but a
 * FEATURES vector); their number. */
int xp_text_cols(const xcol *x, int n, xcol *xt);
/* Row `row` of column x as text (a chunk's row when x is made, from r0). */
const char *xp_cell(const xcol *x, size_t row, size_t r0, char *buf, size_t len);

/* anomalies.csv (.ecsv with ecsv) and anomalies.vot: every process formats
 * the rows it holds; with several, each writes its own windows of the
 * ranking where they go in the file. */
int xp_write_text(const ranked *R, const char *name, const xcol *x, int n, int ecsv, ody_err *err);
int xp_write_vot(const ranked *R, const xcol *x, int n, ody_err *err);

#endif
