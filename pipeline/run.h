/* run.h — the pipeline: a run of the stage table into a run directory
 * (prefix run_).
 *
 * Stages, in order (pipeline/stages.c; each declared in pipeline/st_*.c):
 *   ingest      catalog -> catalog.fits (ID, pass-through, clean features;
 *               with cutouts: rows without one dropped, morphology added)
 *   forest      forest_<r>.fits for r < weirdness.repeats, oob.fits (the
 *               synthetic rows are drawn as the trees read them, never stored)
 *   weirdness   weirdness.fits (faithful W, n_good, isolation, default score)
 *   similarity  neighbours.fits (top-k neighbour rows and similarities, kNN
 *               distance) [+ similarity.fits, the dense matrix, when asked]
 *   mlp         mlp.fits (model) and mlp_scores.fits (P(synthetic)), when
 *               mlp.enabled
 *   lens        lens_scores.fits (P_LENS) [+ lens_model.fits when trained
 *               here on simulations], when lens.enabled
 *   export      anomalies.fits / anomalies.csv, ranked
 *
 * Every artifact is written to a temporary name and renamed into place, and
 * a stage is recorded in manifest.txt (with a hash of its settings, of the
 * stages it reads and of the input file's bytes) only after its artifacts
 * are in place.  A later run skips recorded stages whose hash is unchanged
 * and whose artifacts are all there, and reads their artifacts instead; a
 * run killed at any moment redoes at most the stage it was in, and results
 * are deterministic, so the outputs are the same as those of an
 * uninterrupted run.  Temporaries of killed runs are removed by the next.
 */
#ifndef RUN_H
#define RUN_H

#include <stddef.h>

#include "cat.h"
#include "cfg.h"
#include "ody.h"

typedef struct run_opt {
    const char *from_stage;  /* redo this stage and every later one; NULL: none */
    int force;               /* redo every stage */
    const char *until_stage; /* stop after this stage; NULL: run them all */
    const char *const *also_load; /* up-to-date stages whose artifacts the caller uses; NULL-terminated */
    int load_only;           /* read a finished run back: fail (ODY_EINPUT) if a stage would run, and
                                write nothing into the run folder but its log */
    int want_trees;          /* read the forests' trees back, not only their out-of-bag scores */
    const ody_comm *comm;    /* the processes of a distributed run (mpirun), or NULL: this one alone.
                                Every process reads the whole catalog, shares the work of the costly
                                stages, and holds the per-object results of its rows alone (docs/MPI.md);
                                process 0 alone writes the run folder.  A failure on any process fails the run on all of them, with
                                the message kept by the lowest-numbered one that failed (the others'
                                err->msg is empty). */
} run_opt;

void run_opt_init(run_opt *o);

/* Stage names in order; index of a name or -1. */
int run_stage_index(const char *name);
const char *run_stage_name(int k);
int run_n_stages(void);

typedef struct run_summary {
    size_t n_objects;
    char top_id[CAT_ID_MAX + 1];  /* the highest-ranked object */
    double top_score;
    int stages_run, stages_skipped, stages_off;
    double wall_s;
    char out_dir[1024];
} run_summary;

/* Runs the configured pipeline into c->output.  The run log is appended to
 * <output>/oddsky.log besides `log`.  On error nothing half-written is left
 * under an artifact's final name, and the error is in err only (the caller
 * shows it; it is also in the run log). */
int run_pipeline(const cfg *c, const run_opt *o, run_summary *sum, const ody_log *log, ody_err *err);

/* `oddsky check`: opens the configured catalog and resolves its columns
 * without reading rows (cat_check); *n_rows gets its row count, *n_feat the
 * features it makes (a vector column's elements and grid bins one by one). */
int run_check_catalog(const cfg *c, long long *n_rows, int *n_feat, ody_err *err);

/* What `oddsky check --values` found. */
typedef struct run_check_info {
    size_t n_table_rows;  /* rows in the (filtered) table */
    size_t n_rows;        /* rows a run would rank */
    size_t n_dropped;     /* rows it would drop for missing values */
    size_t n_imputed;     /* values it would impute (catalog.missing: impute) */
    int n_features;       /* features, with the morphology of cutouts */
} run_check_info;

/* `oddsky check --values`: reads the catalog (and cutouts) as a run's
 * ingest does, with the same refusals and warnings (to log), and writes
 * nothing.  info is filled once the catalog is read. */
int run_check_values(const cfg *c, const ody_log *log, run_check_info *info, ody_err *err);

/* How the rankings of two finished runs (their output folders) differ:
 * overlap of the top 10, 50, 100 and `top`, Spearman's rank correlation of
 * the objects in both (matched by ID), and the objects of either top list
 * that moved most.  *text is the report (malloc'd, the caller frees); on
 * error it is NULL and err names the folder. */
int run_compare(const char *dir_a, const char *dir_b, int top, char **text, ody_err *err);

/* `oddsky score`: applies the finished run of c (every stage up to date; its
 * config as written in its folder) to the objects of `catalog`, read as the
 * run read its own, and writes the run's export formats into out_dir (the
 * same columns; the neighbours are the run's objects, by ID).  New objects
 * are scored against the run's catalog with its models: weirdness and the
 * forests' vote (every tree's: out of bag is for the run's own objects),
 * isolation, kNN distance and LOF among the run's objects, the MLP, the
 * default score from the run's medians and spreads, WHY, and with the
 * similarity stage on, the most similar run objects by forest proximity.
 * An object whose ID and features are those of a run object gets that
 * object's values exactly.  Nothing is written into the run folder but its
 * log. */
int run_score(const cfg *c, const char *catalog, const char *out_dir, run_summary *sum, const ody_log *log,
              ody_err *err);

/* `oddsky next`: brings the run up to date through the learn stage (the
 * labels re-rank it; stages up to date are read back, not rerun) and lists
 * the k unlabelled objects to look at next, best first: an aligned table,
 * or with ids_only their IDs one per line.  Needs `labels` set.  *text is
 * the caller's; NULL on error. */
int run_next(const cfg *c, int k, int ids_only, const ody_log *log, char **text, ody_err *err);

/* `oddsky label`: records label y (0 or 1) of object ID, with an optional
 * comment, in the config's labels file (created with its header if
 * missing), replacing an earlier label of the same object.  The ID must be
 * in the run's catalog (a run must have ingested it).  The file is
 * rewritten atomically: on error it is unchanged. */
int run_label(const cfg *c, const char *id, int y, const char *comment, ody_err *err);

/* The first n rows of <dir>/anomalies.fits as an aligned text table
 * (malloc'd, caller frees).  ODY_EINPUT if the run has no FITS export. */
int run_top_table(const char *dir, int n, char **text, ody_err *err);

#endif
