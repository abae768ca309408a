/* stages.c — the stage table: every stage of a run, in order.  Adding a
 * stage is one file declaring its stage_def and one row here. */
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

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

/* ================================================================ inputs the run must not write over */

int stage_artifact(const cfg *c, const stage_def *d, int a, int k, char *name, size_t len)
{
    const char *w = d->writes[a], *r = strstr(w, "{r}");
    size_t n = strlen(w);
    if (n && w[n - 1] == '?') {  /* written with some settings only */
        if (k > 0) return 0;
        snprintf(name, len, "%.*s", (int)(n - 1), w);
        return d->writes_if && d->writes_if(c, name);
    }
    if (k >= (r ? c->repeats : 1)) return 0;
    if (r) snprintf(name, len, "%.*s%d%s", (int)(r - w), w, k, r + 3);
    else snprintf(name, len, "%s", w);
    return 1;
}

/* Whether the run writes a file or folder called `name` into its folder
 * under c: the artifacts of the stages c turns on (with exports, of the
 * export stage alone), the record of the run, the report. */
static int writes_name(const cfg *c, const char *name, int exports)
{
    static const char *const always[] = {"config.yaml", "manifest.txt", "oddsky.log", "summary.txt", "report", NULL};
    for (int k = 0; always[k] && !exports; k++)
        if (!strcmp(name, always[k])) return 1;
    for (int s = 0; s < run_stage_count; s++) {
        const stage_def *d = run_stage_table[s];
        if ((d->enabled && !d->enabled(c)) || (exports && strcmp(d->name, "export"))) continue;
        char w[256];
        for (int a = 0; d->writes[a]; a++)
            for (int k = 0; stage_artifact(c, d, a, k, w, sizeof w); k++)
                if (!strcmp(name, w)) return 1;
    }
    return 0;
}

/* A run folder's own config.yaml (its first line says so), which a rerun of
 * that folder rewrites with what it ran, as it should. */
static int effective_config(const char *path)
{
    char line[64] = "";
    FILE *f = fopen(path, "r");
    if (!f) return 0;
    int yes = fgets(line, sizeof line, f) && !strncmp(line, "# effective configuration", 25);
    fclose(f);
    return yes;
}

int stage_input_spared(const cfg *c, const char *dir, const char *what, const char *path, int exports, ody_err *err)
{
    char file[PATH_MAX];
    size_t len = ody_fits_file_len(path);
    if (!path[0] || len >= sizeof file) return 0;
    memcpy(file, path, len);
    file[len] = 0;
    char *real = realpath(file, NULL), *base = real ? strrchr(real, '/') : NULL;
    int clash = 0;
    if (base) {
        *base = 0;
        clash = !strcmp(real[0] ? real : "/", dir) && writes_name(c, base + 1, exports);
    }
    free(real);
    if (!clash) return 0;
    if (exports)
        return ody_fail(err, ODY_EINPUT, "%s: %s is in the output folder %s under a name the exports take, and would "
                        "be overwritten — give -o another folder or move the file", file, what, dir);
    return ody_fail(err, ODY_EINPUT, "%s: %s is in the run folder (output: %s) under a name the run writes, and "
                    "would be overwritten — set `output` to a folder of its own (e.g. output: run) or move the file",
                    file, what, dir);
}

int stage_inputs_spared(const cfg *c, const char *dir, ody_err *err)
{
    int rc = effective_config(c->file) ? 0 : stage_input_spared(c, dir, "the config", c->file, 0, err);
    if (!rc) rc = stage_input_spared(c, dir, "the catalog", c->cat_path, 0, err);
    if (!rc) rc = stage_input_spared(c, dir, "the cutouts", c->cut_path, 0, err);
    if (!rc) rc = stage_input_spared(c, dir, "the labels file", c->labels, 0, err);
    if (!rc) rc = stage_input_spared(c, dir, "the lens model", c->lens_model, 0, err);
    return rc;
}
