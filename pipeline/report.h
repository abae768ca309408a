/* report.h — what a person looks at: the HTML report of a run, and the
 * view behind the review page (prefix rep_).
 *
 * A rep_view holds in memory what both need of a finished run: IDs,
 * pass-through columns, features and their spread, every score, the
 * explanations, neighbours, labels and the current ranking.  It is opened
 * from a config (the run is brought up to date first; stages up to date are
 * read back, not rerun) and owned by the caller (rep_close).
 *
 * The report is a folder, <output>/report/: index.html with its images
 * (img/), plots and top.csv (the rows shown).  It needs no network and no
 * server: open index.html from disk, or zip the folder and mail it.  It is
 * written to a temporary folder and swapped into place, so a report is never
 * half-written.
 */
#ifndef REPORT_H
#define REPORT_H

#include <stddef.h>

#include "cfg.h"
#include "ody.h"

typedef struct rep_view rep_view;

/* Brings the run of c up to date and reads what the report and the review
 * need.  c must outlive the view.  *out is the caller's (rep_close);
 * unchanged on error. */
int rep_open(const cfg *c, const ody_log *log, rep_view **out, ody_err *err);
void rep_close(rep_view *v);

/* Writes <output>/report/ from the view (c->rep_top cards). */
int rep_write(const rep_view *v, ody_err *err);

/* `oddsky report`: rep_open + rep_write + rep_close; *path gets the
 * index.html written (absolute). */
int run_report(const cfg *c, const ody_log *log, char *path, size_t len, ody_err *err);

/* ---------------------------------------------------------------- review */

#define REP_SHOW_PASS 12  /* pass-through columns described per object */
#define REP_SHOW_NB 8     /* neighbours described per object */

/* One object as the review page shows it.  Strings are NUL-terminated. */
typedef struct rep_obj {
    char id[128];
    size_t rank;          /* 1-based, in the current ranking */
    double score;         /* the ranking's score: the learned one when there are labels */
    double anomaly;       /* ANOMALY_SCORE, before labels */
    int label;            /* -1 unlabelled, 0 not interesting, 1 interesting */
    char driver[16];      /* the detector that drove ANOMALY_SCORE, or "none" */
    char why[512];        /* "GR +4.1; IZ -2.3" */
    int n_pass;
    char pass_name[REP_SHOW_PASS][72], pass_val[REP_SHOW_PASS][72];
    int n_nb;
    char nb[REP_SHOW_NB][128];  /* most similar objects' IDs */
    size_t nb_row[REP_SHOW_NB]; /* ... and their rows in the view */
} rep_obj;

/* Objects in the view (rows 0..n-1), and how many of them are labelled. */
size_t rep_size(const rep_view *v);
size_t rep_labelled(const rep_view *v);

/* The row of object ID (its text as in the exports); -1 when unknown. */
long rep_find(const rep_view *v, const char *id);

/* The unlabelled objects to look at next, best first: up to k rows into
 * rows[] (the caller's, k slots); returns how many. */
size_t rep_next(const rep_view *v, size_t k, size_t *rows);

/* Fills *o for row (< rep_size). */
void rep_describe(const rep_view *v, size_t row, rep_obj *o);

/* Records label y (0 or 1) of object id in the labels file (atomically) and
 * re-ranks (the learn stage).  An unknown ID or a label other than 0 or 1 is
 * ODY_EINPUT and changes nothing.  Should the re-rank itself fail, the label
 * stays recorded and the view keeps its old ranking: err says which. */
int rep_label(rep_view *v, const char *id, int y, ody_err *err);

/* The run directory (absolute). */
const char *rep_dir(const rep_view *v);

/* The labels file the view writes. */
const char *rep_labels_path(const rep_view *v);

/* What the run warned of, one line each, stage by stage: the warnings each
 * stage logged the last time it ran (the run log), so those of a stage read
 * back stay and a stage rerun without them clears them.  Malloc'd, the
 * caller's; NULL when there are none (or when out of memory: a warning left
 * out, never a failed report). */
char *rep_warnings(const rep_view *v);
/* The same from the run log at log_path, whatever its bytes (no file:
 * NULL). */
char *rep_log_warnings(const char *log_path);

/* The picture of row as PNG bytes (*png malloc'd, the caller frees): its
 * cutout when the run has cutouts, else its features against the catalog. */
int rep_picture(const rep_view *v, size_t row, unsigned char **png, size_t *len, ody_err *err);

#endif
