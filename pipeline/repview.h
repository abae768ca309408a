/* repview.h — the inside of a rep_view, shared by report.c (the view) and
 * report_html.c (the folder).  Private to pipeline/. */
#ifndef REPVIEW_H
#define REPVIEW_H

#include "cutout.h"
#include "plot.h"
#include "report.h"
#include "stage.h"

struct rep_view {
    const cfg *c;             /* borrowed */
    const ody_log *log;       /* borrowed */
    char *dir;                /* the run directory, absolute */
    char *history;            /* the effective config */
    cat *k;                   /* IDs, pass-through columns, features */
    size_t n;
    double *score[CFG_N_SCORES];
    double *learned;          /* with labels */
    int16_t *label;           /* with labels: -1, 0, 1 */
    int32_t *driver;
    int n_why;
    int32_t *why_feat;
    int32_t *why_span;
    float *why_dev;
    int k_nb;
    int32_t *nb;              /* n x k_nb most similar (forest) or nearest rows, -1 padded */
    float *q;                 /* n_feat x 5 quantiles: 1, 25, 50, 75, 99 % */
    double *at;               /* n_feat wavelengths (features NAME@value), or NULL */
    size_t *order;            /* rows, best first */
    size_t *rank;             /* rank[row], 0-based */
    cat_ids ids;              /* the IDs as text, for rep_find */
    int no_cutouts;           /* the cutouts file is not there (a run folder moved without it): pictures
                                 show each object's features instead */
};

/* The stages a view reads (run_opt.also_load). */
extern const char *const report_uses[];

/* The score the ranking uses. */
const double *rep_rank_score(const rep_view *v);

/* Pass-through column p of row as text, floats to 10 digits. */
void rep_format_pass(const rep_view *v, int p, size_t row, char *buf, size_t len);

/* The cutouts of rows[0..m), read in one pass (missing ones flagged);
 * *out NULL when the view has none (no cutouts, or v->no_cutouts). */
int rep_cutouts(const rep_view *v, const size_t *rows, size_t m, cut_set **out, ody_err *err);

/* The picture of row: cutout (bands x size x size) when given, else its
 * feature profile.  NULL when out of memory. */
plt *rep_picture_plot(const rep_view *v, size_t row, const float *cutout, int bands, int size);

/* Writes dir/index.html and dir/top.csv for the top objects; the pictures
 * (img/r<row>.png) and plots (score.png, map.png, sky.png when sky,
 * discovery.png with labels) are already there. */
int rep_html(const rep_view *v, const char *dir, size_t top, int sky, ody_err *err);

/* run_with's last step when export.formats lists html: the report. */
int report_after_run(run_state *st, void *ctx, ody_err *err);

#endif
