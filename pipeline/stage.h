/* stage.h — the stage table, the state a run holds, and the artifact store.
 * Private to pipeline/.
 *
 * A stage is declared once, in its own file, as a stage_def: its name, the
 * config keys its result depends on, the stages whose results it reads, the
 * artifacts it writes and its function.  stages.c lists them in order.  The
 * driver (run.c) derives everything else from the table: each stage's hash
 * (its keys' values, the hashes of the stages it reads, the input's bytes for
 * the first), whether it is up to date (hash recorded in the manifest and
 * artifacts present), the order, progress lines, the manifest and the
 * summary.
 *
 * A stage function is called with run = 1 to compute its results and write
 * its artifacts, or run = 0 to read them back from an earlier run; either
 * way it leaves its results in the run_state for later stages.
 */
#ifndef STAGE_H
#define STAGE_H

#include <stddef.h>
#include <stdint.h>

#include "cat.h"
#include "cfg.h"
#include "cutout.h"
#include "fitsout.h"
#include "lens.h"
#include "ody.h"
#include "rf.h"
#include "run.h"

/* What the stages after the similarity's need of every object's features,
 * kept when a process drops the catalog's other rows (stage_drop_rows). */
typedef struct stage_keep {
    int32_t *ref;           /* the local stage's reference rows (stage_reference), sorted */
    size_t m;
    float *Xref;            /* their features, m x F */
    void *space;            /* the local stage's search space as fitted on every object (st_local.c) */
} stage_keep;

/* Everything a run holds in memory; stages fill it or load it back. */
typedef struct run_state {
    const cfg *c;
    const ody_log *log;
    char *dir;              /* the run directory, absolute */
    char *history;          /* the effective config, for HISTORY cards */
    run_summary *sum;

    /* ingest */
    cat *cat;
    size_t n;               /* objects */
    size_t lo, hi;          /* the objects whose results this process holds: rows [lo, hi)
                               (ody_comm_part; all of them for one process).  Every per-object
                               array below except cat's holds those rows alone, object i at i - lo */
    int F;                  /* features */
    const float *X;         /* rows [lo, hi) of the features: cat->X + lo F, or X_own once the other
                               rows are dropped (cat->X then NULL) */
    float *X_own;
    stage_keep keep;
    cut_set *cut;           /* cutouts of the kept rows, when read this run */
    /* forest */
    rf_forest **forests;
    int n_forests;
    /* weirdness */
    uint32_t *n_good;
    rf_sim_ctx ctx0;        /* forest 0's leaf statistics, when the weirdness
                               stage computed them this run: similarity
                               takes them over (and frees them) */
    int have_ctx0;
    /* similarity */
    int k;                  /* neighbours per object */
    int32_t *nb;            /* n x k rows, -1 padded (their similarities are in neighbours.fits only) */
    /* local */
    int K;                  /* Euclidean neighbours kept per object */
    int32_t *near;          /* n x K rows, nearest first (ties by row) */
    float *near_dist;       /* n x K distances, standardised features: read back (`oddsky score` needs them
                               for new objects' LOF), but NULL once a run's local stage has saved them */
    int32_t *heap_feat;     /* n: the feature HEAP comes from, -1: none; NULL when HEAP is not computed */
    /* lens */
    lens_eval lev;          /* held-out evaluation when trained in this run */
    /* score */
    int n_why;              /* features named per object */
    int32_t *why_feat;      /* n x n_why features, largest deviation first; -1 pads */
    float *why_dev;         /* n x n_why deviations from the nearest normal neighbours, in SD */
    int32_t *why_span;      /* n x n_why x 2: the first and last feature of the reason's core (a spectral
                               line's elements deviating as the one named, by a quarter as much); both
                               the feature itself for a scalar; -1 pads */
    int32_t *driver;        /* n: the detector (cfg_score) that gave the largest z, -1 when none is positive */
    int want_trees;         /* a stage that runs walks the trees: read them back (else only the OOB score) */
    int n_det;              /* detectors in the default score */
    double *det_z;          /* n x n_det: their robust z clipped at 0 (what learn re-weights) */
    /* learn (labels set) */
    double *learned;        /* n: the score re-ranked from the labels; NULL without labels */
    int16_t *label;         /* n: -1 unlabelled, 0, 1 */

    double *score[CFG_N_SCORES];/* n values each; NULL where not computed */
    const cat *near_cat;    /* whose rows near and nb index, when not cat (`oddsky score`) */
    const ody_comm *comm;   /* run_opt.comm: the processes sharing the work; NULL: one */
    uint64_t stamp;         /* the hash of the stage running or read back (0: none): written into its
                               artifacts (STAGEH) and checked as they are read back */
    uint64_t stage_hash[64];/* every stage's hash under the config, for artifacts read after the stages
                               (`oddsky score` reads mlp.fits) */
} run_state;

/* ---------------------------------------------------------------- the table */

typedef struct stage_def {
    const char *name;
    const char *what;                   /* one line, for --help and DESIGN.md */
    const char *const *keys;            /* config key prefixes ("forest.", "seed") */
    const char *const *reads;           /* stages whose results it reads */
    const char *const *writes;          /* artifacts: "forest_{r}.fits" is one per
                                           weirdness.repeats; a trailing '?' marks
                                           one written only with some settings */
    int hashes_input;                   /* the input catalog's bytes enter its hash */
    const char *(*depends_on)(const cfg *c);  /* NULL, or a file whose bytes enter its hash */
    int load_needs_reads;               /* reading its artifacts back uses the stages it reads */
    int needs_trees;                    /* running, it walks the forest's trees (not only its OOB score) */
    int version;                        /* of its artifacts' layout, in its hash: raise it when they change,
                                           so a run directory from before reruns it rather than failing */
    int (*enabled)(const cfg *c);       /* NULL: always on */
    int (*writes_if)(const cfg *c, const char *artifact);  /* NULL, or whether c writes an artifact marked '?'
                                           (named without it): one it writes must be there for the stage to
                                           be up to date, so that a deleted result is made again */
    int digests;                        /* its artifacts are read by people, not read back by a stage: the
                                           manifest keeps a digest of each besides its size, so that a rerun
                                           writes again one that changed since (a damaged anomalies.fits is
                                           not left standing as up to date) */
    int (*fn)(run_state *st, int run, ody_err *err);
} stage_def;

/* run_pipeline, and then `then` on the state before it is freed (NULL: none).
 * `then` may take over arrays of the state, setting their pointers to NULL:
 * the rest is freed as usual. */
int run_with(const cfg *c, const run_opt *o, run_summary *sum, const ody_log *log_in, ody_err *err,
             int (*then)(run_state *st, void *ctx, ody_err *err), void *ctx);

/* Seconds stage `name` should take on st's data (n, F known: after ingest)
 * by a rough cost model, for a first run with no times of its own. */
double stage_guess(const run_state *st, const char *name);

/* "GR +4.1; IZ -2.3": the features that set object i apart (score stage). */
void stage_format_why(const run_state *st, size_t i, char *out, size_t len);

/* The same from one object's n_why feature indices (-1: none), their spans
 * (2 a reason; NULL: none) and deviations, for holders of those arrays
 * outside a run_state.  A reason spanning elements named at wavelengths
 * ("FLUX@6515" to "FLUX@6565.4") reads "FLUX@6562.7 +11.7 (6515-6565.4)". */
void stage_why_text(char *const *names, int n_why, const int32_t *feat, const int32_t *span, const float *dev,
                    char *out, size_t len);

/* ---------------------------------------------------------------- shared with `oddsky score` */

/* The default score of q's objects (q->score[] of score.detectors into
 * q->score[ANOMALY], q->driver, q->det_z), each detector as a robust z
 * against ref's objects' values; ref may be q. */
int stage_combine(run_state *q, const run_state *ref, ody_err *err);

/* LOCAL of q's objects from their KNN and LOF (q->score[LOCAL]): the
 * geometric mean of the two robust z-scores, each against ref's objects'
 * values and clipped at 0; ref may be q.  An object scores only when it is
 * both far from its neighbours and sparser than they are: the kNN distance
 * alone flags every member of a sparse population, LOF alone every object at
 * the edge of a clump of duplicates. */
int stage_local_score(run_state *q, const run_state *ref, ody_err *err);

/* CONTEXT of q's objects (q->score[CONTEXT]) from their lists q->near, rows
 * of ref's catalog, and q->X; the reference rows' gaps, and from them the
 * typical gaps, from ref's own lists (shared between ref->comm's
 * processes); ref may be q.  rows: ref's reference rows, stage_reference's
 * (NULL when they are every row), which the caller keeps. */
int stage_context(run_state *q, const run_state *ref, const int32_t *rows, ody_err *err);

/* Whether a run computes HEAP: when score.detectors lists heap or
 * export.rank_by is heap (it is not among the defaults, and a pass over
 * every feature of every object). */
int stage_wants_heap(const cfg *c);

/* HEAP of q's objects (q->score[HEAP]) from q->X against ref's reference
 * rows' values (every process gets them all: fetched when not held).
 * rows: ref's reference rows as for stage_context; self nonzero when q's
 * objects are ref's own (an object that is a reference row leaves its own
 * value out), 0 for another catalog's. */
int stage_heap(run_state *q, const run_state *ref, const int32_t *rows, int self, ody_err *err);

/* WHY of q's objects (q->why_feat, q->why_dev) from their neighbours q->near,
 * rows of ref's catalog, in ref's standardisation; ref may be q. */
int stage_explain(run_state *q, const run_state *ref, ody_err *err);

/* Where the local stage searches neighbours: st's catalog in its own
 * standardisation, or on its principal components (local.components), into
 * *Z (st->n x *d, malloc'd); with Q, its m rows the same way into *Zq.  On
 * error nothing is allocated. */
int stage_space(const run_state *st, const float *Q, size_t m, float **Z, float **Zq, int *d, ody_err *err);

/* The similarity stage's top-k options from st's config and st->k. */
void stage_topk_opt(const run_state *st, rf_topk_opt *to);

/* The local stage's reference rows: NULL when all st->n (m >= n), else a
 * seeded sorted sample of m, malloc'd (NULL when out of memory too). */
int32_t *stage_reference(const run_state *st, size_t m);
size_t stage_reference_size(const run_state *st);

/* m of the st->n objects drawn from the seed and stream (the same on every
 * process, whatever their number), sorted; NULL when m >= n, or when out
 * of memory (malloc'd). */
int32_t *stage_sample(const run_state *st, size_t m, uint64_t stream);

/* The isolation score of n rows X from st's isolation forest (trained on
 * st's catalog from its seed: the same trees every time). */
int stage_isolation(const run_state *st, const float *X, size_t n, double *out, ody_err *err);

/* The catalog `path` read as c reads its own (columns, spectra, missing
 * values); cutouts are not read.  *out owned by the caller. */
int stage_read_catalog(const cfg *c, const char *path, cat **out, const ody_log *log, ody_err *err);

/* st->dir/dropped.csv: every row of st->cat that `missing: drop` took out,
 * and why — so that the objects a ranking does not cover are on record, not
 * only counted (a run's, and `oddsky score`'s folder). */
int stage_save_dropped(run_state *st, ody_err *err);

extern const stage_def *const run_stage_table[];
extern const int run_stage_count;

/* Copy k of stage d's artifact a (d->writes[a]) as c writes it, into name:
 * 1, or 0 when c writes no such copy — past weirdness.repeats for a
 * "{r}" artifact, past the one copy of any other, or an optional ('?') one
 * c does not write.  Counting k from 0 until 0 lists them all. */
int stage_artifact(const cfg *c, const stage_def *d, int a, int k, char *name, size_t len);

/* 0, or the error naming the input (the config, the catalog, the cutouts,
 * the labels file, the lens model) that sits in the run folder dir (a
 * realpath) under a name the run writes there: `output: .` beside a
 * catalog.fits once replaced the astronomer's catalog with the run's copy.
 * A run folder's own config.yaml may be rerun. */
int stage_inputs_spared(const cfg *c, const char *dir, ody_err *err);
/* The same for one input: the file part of path, read as `what` ("the
 * catalog"); with exports, only the export files count (`oddsky score`'s
 * output folder holds no more). */
int stage_input_spared(const cfg *c, const char *dir, const char *what, const char *path, int exports, ody_err *err);

/* ---------------------------------------------------------------- the store */

/* dir/name, malloc'd; NULL when out of memory. */
char *store_path(const run_state *st, const char *name);

/* Whether this process writes the run folder: process 0 of a distributed
 * run (the others hold the same results) or the one process.  The store's
 * writers below do nothing elsewhere; a stage that writes otherwise asks. */
static inline int store_writes(const run_state *st) { return ody_comm_rank(st->comm) == 0; }

/* Opens the run's text artifact `name` for writing (fitsout_text: a
 * temporary committed atomically by fitsout_text_commit). */
int store_text_open(const run_state *st, const char *name, fitsout_text *t, ody_err *err);

/* Creates dir and its parents. */
int store_mkdir(const char *dir, ody_err *err);

/* A digest of a regular file's bytes, eight at a time (the input catalog
 * and the exports, hundreds of MB at 10^6 objects, are read at every run);
 * never 0.  0, and *size -1 (size may be NULL), when it cannot be read. */
uint64_t store_digest(const char *path, long long *size);

/* store_digest of the file behind a CFITSIO path (its [..] suffix dropped). */
uint64_t store_checksum(const char *path);

/* Provenance in a primary header: version, input, config, seed, the stage
 * hash (STAGEH, st->stamp), the lens evaluation when there is one, and the
 * effective config as HISTORY. */
void store_provenance(const run_state *st, fitsfile *f, int *status);

/* The stage stamp of a file written otherwise (a forest, an MLP): STAGEH
 * into its primary header.  And the check as an artifact is read back: the
 * manifest vouches for the config and the catalog, not for the files, and
 * a file of the same shape copied in from another run would be read as
 * this run's.  A primary header without STAGEH (a run folder of an older
 * oddsky) passes; f is left at the HDU it was at. */
int store_stamp_file(const run_state *st, const char *path, ody_err *err);
int store_check_stamp(fitsfile *f, const char *path, uint64_t want, ody_err *err);  /* want 0: no check */
int store_check_file(const char *path, uint64_t want, ody_err *err);

/* One table HDU of an artifact. */
typedef struct store_hdu {
    const char *extname;
    const fitsout_col *cols;
    int ncol;
    size_t nrows;
    const size_t *const *rows;  /* NULL, or per column a row map (fitsout_table_rows) */
} store_hdu;

/* Writes tables (after the provenance header) to dir/name atomically. */
int store_save_tables(const run_state *st, const char *name, const store_hdu *hdu, int n_hdu, ody_err *err);

/* Above this many features, artifacts and the FITS export hold them as one
 * vector column FEATURES (a row per object) beside a FEATURES table of their
 * names and units, and the text exports leave them out: FITS allows 999
 * columns, and a spectrum has thousands of bins. */
#define STAGE_WIDE 100

/* The FEATURES table of k's feature names and units (hdu), over buffers the
 * struct owns (store_featnames_free). */
typedef struct store_featnames {
    char *name, *unit;
    fitsout_col cols[2];
    store_hdu hdu;
} store_featnames;
int store_featnames_make(const cat *k, store_featnames *fn, ody_err *err);
void store_featnames_free(store_featnames *fn);

/* Names and units of k's features from the FEATURES table of dir/file. */
int store_load_featnames(const run_state *st, const char *file, cat *k, ody_err *err);

/* A table of one row per object (weirdness, neighbours, local, score):
 * the object's ID column first — so a reader can tell objects apart
 * without joining to catalog.fits — then cols, which hold this process's
 * rows (store_save_slices). */
int store_save_objects(const run_state *st, const char *name, const char *extname, const fitsout_col *cols,
                       int ncol, ody_err *err);

/* The catalog column c (ID or pass-through) as a column of a table. */
fitsout_col store_carried_col(const cat_col *c);

/* The objects this process holds results for (st->hi - st->lo). */
static inline size_t stage_rows(const run_state *st) { return st->hi - st->lo; }

/* The ranking's group of object i: 0 labelled interesting, 1 unlabelled,
 * 2 labelled not (label may be NULL: none). */
static inline int32_t stage_rank_group(const int16_t *label, size_t i)
{
    return label && label[i] >= 0 ? (label[i] ? 0 : 2) : 1;
}

/* This process's objects in rank order, and their places in the whole
 * ranking (several processes: stage_rank_parts). */
typedef struct stage_ranked {
    size_t n;     /* this process's objects */
    size_t *row;  /* their catalog rows, in rank order */
    size_t *pos;  /* their places in the whole ranking, from 0: ascending */
} stage_ranked;

/* With several processes, stage_rank_order's ranking by score and label
 * (this process's rows' values; label may be NULL) held by parts: each
 * process's objects in rank order and their places, by a sample sort in
 * which no process holds more than about its share.  Every process
 * together; 0, or an error on every process (out then holds nothing).
 * *out owns its arrays: stage_ranked_free. */
int stage_rank_parts(const run_state *st, const double *score, const int16_t *label, stage_ranked *out,
                     ody_err *err);
void stage_ranked_free(stage_ranked *r);

/* Where this process's first object is in the catalog's ID, row and
 * pass-through columns: st->lo when they hold every object, 0 when they
 * hold this process's alone (cat's id_part). */
static inline size_t stage_id_at(const run_state *st) { return st->lo - st->cat->id_lo; }

/* A table of one row per object, n in all, whose columns' data hold this
 * process's rows [lo, hi) alone: process 0 writes it (after the provenance
 * header) atomically, the other processes sending it their rows a piece at
 * a time (a few MB: never the whole table in one process). */
int store_save_slices(const run_state *st, const char *name, const char *extname, const fitsout_col *cols, int ncol,
                      ody_err *err);

/* store_save_slices, and then the whole tables `then` (held by process 0)
 * after that table in the same file. */
int store_save_slices_then(const run_state *st, const char *name, const char *extname, const fitsout_col *cols,
                           int ncol, const store_hdu *then, int n_then, ody_err *err);

/* A file every process writes parts of at their offsets (store_spread.c):
 * process 0 made it, as the temporary tmp of the output path; the others
 * open it by the name process 0 shares (tmp matters there alone).  The run
 * directory must be on a file system every process sees.  Every process
 * together opens and closes; writes are this process's own, and a failed
 * one is kept (its errno) for the close, which agrees on it: 0, or "cannot
 * write PATH: reason" on every process. */
typedef struct store_shared {
    char *tmp;           /* the temporary's path, every process's copy */
    int fd;              /* this process's descriptor, or -1 */
    int err;             /* this process's first failed write's errno, or 0 */
} store_shared;
int store_shared_open(const run_state *st, const char *tmp, const char *path, store_shared *sh, ody_err *err);
void store_shared_write(store_shared *sh, uint64_t off, const void *bytes, size_t len);
int store_shared_close(const run_state *st, store_shared *sh, const char *path, ody_err *err);

/* dir/name, a FITS file whose first table (after the provenance header)
 * has nrows rows that every process writes its own of, at their offsets
 * (fitsout_spread_*): no process writes or reads every row.  open and
 * close are every process's together; put writes bytes of whole rows from
 * row `row` (this process's, any order, one thread at a time).  close
 * (after an error rc, or one that open or a put met, it removes the file)
 * joins the processes' checksums, appends the whole tables `then` (process
 * 0's) and commits; 0 or the same error on every process. */
typedef struct store_spread {
    fitsout w;           /* process 0's file */
    store_shared sh;
    char *path;
    uint64_t data;       /* the table's row 0, bytes from the file's start */
    size_t rb, nrows;    /* bytes a row, rows */
    uint32_t sum;        /* DATASUM of this process's bytes */
} store_spread;
int store_spread_open(const run_state *st, const char *name, const char *extname, const fitsout_col *cols, int ncol,
                      size_t nrows, store_spread *sp, ody_err *err);
void store_spread_put(store_spread *sp, size_t row, const void *bytes, size_t len);
int store_spread_close(const run_state *st, store_spread *sp, const store_hdu *then, int n_then, int rc, ody_err *err);

/* Column c with its data moved on by `rows` rows: a whole column's part
 * from row `rows` on. */
fitsout_col store_col_from(fitsout_col c, size_t rows);

/* This process's rows [lo, hi) of column col (per_row values a row) of a
 * table of one row per object, dir/file, as `type` into out. */
int store_load_rows(const run_state *st, const char *file, const char *col, int type, size_t per_row, void *out,
                    ody_err *err);

/* The same for a column of 0-based indices (catalog rows, features,
 * detectors) read as int32: each must be -1 (none) or below hi, so that a
 * damaged file cannot send a lookup past what it indexes. */
int store_load_index(const run_state *st, const char *file, const char *col, size_t per_row, int32_t hi, int32_t *out,
                     ody_err *err);

/* Allocates a score for the objects this process holds (stage_rows); NULL
 * when out of memory. */
double *store_score(run_state *st, cfg_score s);

/* The manifest: one line per completed stage (name, hash, seconds, then
 * its artifacts as NAME=BYTES:DIGEST), after a header naming the input
 * catalog and its checksum.  read fills done[] and secs[] (0 for stages it
 * does not list: a stage read back keeps the time it took when it last
 * ran), files[] (each stage's artifacts as recorded, malloc'd, NULL where
 * none are: a manifest of an older oddsky; the caller frees them) and
 * *input_sum (0 when not recorded).  write takes files[] as they are, and
 * the input's digest as the run took it (the recorded one where the run
 * folder's copy stands in for a catalog that is not there). */
void store_manifest_read(const run_state *st, uint64_t *done, double *secs, char **files, uint64_t *input_sum);
int store_manifest_write(const run_state *st, const uint64_t *done, const double *secs, char *const *files,
                         uint64_t input_sum, ody_err *err);

/* Stage d's artifacts as they are in the run folder now, for the manifest:
 * "NAME=BYTES:DIGEST ..." (DIGEST 0 unless d->digests).  NULL when out of
 * memory or an artifact cannot be read (the manifest then vouches for its
 * presence alone).  Owned by the caller. */
char *store_files_record(const run_state *st, const stage_def *d);

/* 1 when every artifact of d is in the run folder as `record` says it was
 * written (its size, and its digest where one was kept; NULL record: its
 * presence); else 0, and the first artifact that is not into why.  Truncated
 * or replaced since, it is made again, where it was read back as the run's
 * (or failed the rerun with "damaged; rerun with --force"). */
int store_files_intact(const run_state *st, const stage_def *d, const char *record, char *why, size_t len);

/* Removes dir's temporaries (NAME.tmp-PID) left by processes that are gone. */
void store_sweep_stale(const run_state *st);

/* The run folder's lock (flock on DIR/.oddsky.lock), held from a run's
 * start to its end: shared for one that only reads the folder back
 * (read_only), else exclusive.  Two runs writing one folder at once would
 * leave it a mix of both, each file whole but not of one run; so a lock
 * held the other way is an error naming the holder (exit 2), not a wait
 * behind a run of hours.  *fd is -1, and 0 is returned, where the folder
 * cannot take a lock file (read-only: nobody writes there either).
 * store_unlock(-1) does nothing. */
int store_lock(const run_state *st, int read_only, int *fd, ody_err *err);
void store_unlock(int fd);

/* ---------------------------------------------------------------- shared helpers */

/* Column name of feature `name` in catalog.fits: F_ + the name made safe. */
void stage_feature_column(const char *name, char *buf, size_t len);

/* The score the ranked list is sorted by: the learned one when there are
 * labels and export.rank_by is the default, else export.rank_by's (NULL
 * when that score was not computed). */
const double *stage_rank_score(const cfg *c, double *const *score, const double *learned);

/* The ranked list's order into order[0..n): with labels, the interesting
 * first, then the unlabelled, then the not interesting (label NULL: one
 * group); by score descending; ties by row, so the order is total.
 * Never fails (0); err kept for callers that allocate. */
int stage_rank_order(const double *score, const int16_t *label, size_t n, size_t *order, ody_err *err);

/* The exports' column name of score s ("ANOMALY_SCORE"), and its
 * description in *desc when desc is not NULL. */
const char *stage_score_column(cfg_score s, const char **desc);

/* Removes a run's folder of plain files and folders (a report), as rm -r. */
int store_remove_tree(const char *path);

/* Writes s as one CSV field, quoted when it holds a comma, quote or newline. */
void stage_csv_field(FILE *f, const char *s);

/* Cutout reader options from the config. */
void stage_cutout_opt(const cfg *c, cut_opt *co);

/* The catalog's features standardised (z-scores), n x F, malloc'd; NULL
 * when out of memory.  The space the local scores and explanations use.
 * Every process calls it together once the other rows are dropped. */
float *stage_standardized(const run_state *st);

/* With several processes and a catalog larger than the local stage's
 * reference sample, each process keeps its own rows of the features alone
 * from here on (called after the weirdness stage, whose forests' and
 * isolation's training read every row): it keeps first what the later
 * stages need of every row (the reference rows, the search space) and
 * points the kept forest-0 pass at its rows.  Does nothing otherwise. */
int stage_drop_rows(run_state *st, ody_err *err);

/* Whether every process keeps every row's features throughout the run:
 * one process, dense similarity, or a local reference sample of every
 * object (what stage_drop_rows leaves whole). */
int stage_keeps_all(const run_state *st);
void stage_keep_free(stage_keep *k);

/* With several processes: reads the catalog of o by parts, each process
 * an equal share of the table's rows, into st->cat (cat->X NULL; IDs, rows
 * and pass-through columns of the kept rows [lo, hi) of ody_comm_part
 * alone: cat->id_part) and st->X_own (those rows' features), the same
 * catalog one process reads alone.  Every process calls it together. */
int stage_read_parts(run_state *st, const cat_opt *o, ody_err *err);

/* After stage_read_parts, every row's features into cat->X on every
 * process (for a run that needs them all throughout: dense similarity, a
 * reference sample of every object; or for one stage), this process's rows
 * (st->X) pointing into it; the IDs and pass-through columns stay in parts
 * (nothing needs them whole).  Does nothing when cat->X is held. */
int stage_join_parts(run_state *st, ody_err *err);

/* Every object's ID on every process, for a step that looks objects up by
 * ID (labels): *ids is st->cat->id itself when it holds every object's,
 * else a view of *buf (malloc'd, the caller frees it; NULL otherwise)
 * gathered from the processes.  Every process together; 0, or an error on
 * every process. */
int stage_all_ids(const run_state *st, cat_col *ids, void **buf, ody_err *err);

/* Back to this process's rows alone after stage_join_parts (for a stage
 * that reads every row while it runs: the forests' training set).  Every
 * process calls it together. */
int stage_split_parts(run_state *st, ody_err *err);

/* Row i's place among the kept reference rows (st->keep.ref), or -1. */
long stage_ref_index(const run_state *st, size_t i);

/* Object i's features (a row of the catalog): from the whole catalog, this
 * process's rows, or the kept reference rows; NULL when none holds it. */
const float *stage_row(const run_state *st, size_t i);

/* Every object's features, n x F: cat->X itself while this process holds
 * it, else gathered from the processes (malloc'd, *mine set: the caller
 * frees it).  Every process calls it together.  NULL when out of memory. */
float *stage_all_rows(const run_state *st, int *mine, ody_err *err);

/* The local stage's standardisation of the features as fitted on every
 * object, when it was kept (stage_drop_rows); else NULL. */
const struct knn_scale *stage_kept_scale(const run_state *st);

/* The local stage's standardisation of the features, fitted on st's
 * reference rows (stage_reference; every row when the sample is all of
 * them) into *sc (knn_scale_free): what stage_kept_scale holds when kept.
 * With the catalog read by parts, every process calls it together. */
int stage_scale_fit(const run_state *st, struct knn_scale *sc, ody_err *err);

/* Rows rows[0..m) of the catalog's features into out (m x F), on every
 * process, from the processes that hold them: each value written by its one
 * owner, the blocks summed as integers (exact).  Every process calls it
 * together with the same rows. */
int stage_fetch_rows(const run_state *st, const size_t *rows, size_t m, float *out, ody_err *err);

#endif
