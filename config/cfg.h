/* cfg.h — run configuration from YAML (prefix cfg_).
 *
 * One table (cfg_schema) lists every key: its dotted path, type, default,
 * range and meaning.  Loading, --set overrides, validation, --print-config
 * and configs/README.md all come from that table, so they cannot disagree.
 *
 * Relative paths in a config file (catalog.path, output) are resolved
 * against the directory of that file.
 */
#ifndef CFG_H
#define CFG_H

#include <stddef.h>
#include <stdint.h>

#include "ody.h"

typedef struct cfg {
    char *file;          /* the config file as given */
    char *dir;           /* its directory, absolute; paths in the config
                            (catalog.path, cutouts.path, lens.model, output)
                            are already resolved against it */

    /* catalog */
    char *cat_path, *cat_hdu, *cat_id, *cat_missing;
    char **features;
    int n_features;
    char **passthru;
    int n_passthru;

    /* cutouts (optional) and the lens classifier */
    char *cut_path, *cut_layout, *cut_missing;
    char **cut_bands;
    int n_cut_bands, cut_size, cut_morph;
    int lens_on, lens_train_n, lens_test_n, lens_epochs, lens_down;
    char *lens_model;
    double lens_pix, lens_psf;

    /* synthetic */
    char *synth_mode;

    /* forest */
    int rf_trees, rf_min_leaf, rf_max_depth, rf_bootstrap;
    char *rf_max_features;
    int64_t rf_max_samples;

    /* weirdness */
    char *leaf_filter;
    int repeats;

    /* isolation */
    int iso_trees;
    int64_t iso_max_samples;

    /* mlp (the real-versus-synthetic discriminator) */
    int mlp_on;
    int *mlp_hidden;
    int n_mlp_hidden;
    char *mlp_act;
    double mlp_lr, mlp_momentum, mlp_lr_decay, mlp_l2, mlp_val, mlp_eps;
    int mlp_nesterov, mlp_batch, mlp_epochs, mlp_patience;

    /* similarity */
    int top_k, dense, leaf_sample;
    double sim_mem_gb, sim_max_pairs;

    /* export */
    char **formats;
    int n_formats;
    int top_n;
    char *rank_by;

    char *output;
    int64_t seed;
    int threads;
} cfg;

/* Reads and validates a config file, applying overrides ("a.b=value", YAML
 * syntax for the value) in order.  On success *out is owned by the caller
 * (cfg_destroy); on error err holds "FILE:LINE:COL: what — how to fix". */
int cfg_load(const char *path, char *const *overrides, int n_overrides, cfg **out, ody_err *err);
void cfg_destroy(cfg *c);

/* Writes the effective configuration as YAML (every key, defaults filled). */
char *cfg_dump(const cfg *c);

/* A 64-bit hash of the effective values of the keys under `prefixes`
 * (e.g. "forest." "seed"), for deciding whether a stage must run again. */
uint64_t cfg_hash(const cfg *c, const char *const *prefixes, int n_prefixes);

/* configs/README.md's key reference, generated from the schema. */
char *cfg_reference_markdown(void);

/* ---------------------------------------------------------------- batch */

/* One run of a batch: a config file and --set overrides. */
typedef struct cfg_job {
    char *name;          /* unique within the batch */
    char *config;        /* resolved against the batch file's directory */
    char **set;          /* "key=value" overrides */
    int n_set;
} cfg_job;

typedef struct cfg_batch {
    cfg_job *jobs;
    int n_jobs;
    int jobs_at_once;    /* the file's `jobs:` (0 when absent) */
} cfg_batch;

/* Reads a batch file:
 *   runs:                       # explicit runs
 *     - config: a.yaml
 *       name: a-fast            # optional
 *       set: {forest.n_trees: 100}
 *   grid:                       # every combination of the listed values
 *     config: a.yaml
 *     name: seeds
 *     vary: {seed: [1, 2, 3], forest.n_trees: [100, 500]}
 *   jobs: 2
 * Each run's output goes to <batch dir>/batch_runs/<name>. */
int cfg_batch_load(const char *path, cfg_batch **out, ody_err *err);
void cfg_batch_destroy(cfg_batch *b);

#endif
