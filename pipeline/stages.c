/* stages.c — the stage table: every stage of a run, in order.  Adding a
 * stage is one file declaring its stage_def and one row here. */
#include "stage.h"

extern const stage_def stage_ingest, stage_forest, stage_weird, stage_sim, stage_local, stage_mlp,
    stage_lens, stage_score, stage_learn, stage_export;

const stage_def *const run_stage_table[] = {
    &stage_ingest,   /* catalog -> catalog.fits */
    &stage_forest,   /* forest_<r>.fits, oob.fits */
    &stage_weird,    /* weirdness.fits */
    &stage_sim,      /* neighbours.fits [similarity.fits]; after weirdness, whose pass it reuses */
    &stage_local,    /* local.fits: nearest neighbours, kNN distance, LOF */
    &stage_mlp,      /* mlp.fits, mlp_scores.fits */
    &stage_lens,     /* lens_scores.fits [lens_model.fits] */
    &stage_score,    /* score.fits: the default anomaly score, WHY */
    &stage_learn,    /* learn.fits: the ranking re-learned from the labels (labels set) */
    &stage_export,   /* anomalies.fits, anomalies.csv */
};

const int run_stage_count = (int)(sizeof run_stage_table / sizeof *run_stage_table);
