/* cfg.h — a run's configuration: YAML in, a typed and validated struct out
 * (prefix cfg_).
 *
 * One table (the schema in cfg_schema.c) lists every key: its dotted path,
 * type, default, range and meaning.  Loading, --set overrides, validation,
 * --print-config, the stage hashes and configs/README.md all come from that
 * table, so they cannot disagree.
 *
 * The struct is typed at the boundary: enumerations hold the modules' own
 * enum values (cat_missing, cut_layout, rf_synth, rf_leaf_filter, nn_act),
 * forest.max_features is parsed, relative paths are resolved against the
 * config file's directory, and every cross-key rule has run.  So whatever
 * cfg_load() accepts, a run accepts: `oddsky check` and `oddsky run` call the
 * same function.  What only the data can tell (a column that is missing, too
 * few rows left) is checked when the catalog is read.
 */
#ifndef CFG_H
#define CFG_H

#include <stddef.h>
#include <stdint.h>

#include "cat.h"
#include "cutout.h"
#include "nn.h"
#include "ody.h"
#include "rf.h"

/* A key set to `auto`, worked out from the data: CFG_AUTO for a number
 * (score.local_weight), CFG_AUTO_INT for an integer (isolation.n_trees). */
#define CFG_AUTO (-1.0)
#define CFG_AUTO_INT (-1)

/* The per-object scores a run computes: what export.rank_by sorts by, and
 * (as bits 1 << score) what score.detectors combines. */
typedef enum {
    CFG_SCORE_ANOMALY = 0,   /* the default: the combination of score.detectors */
    CFG_SCORE_WEIRDNESS,     /* the faithful Baron & Poznanski weirdness */
    CFG_SCORE_ISOLATION,     /* the isolation-forest score: tails of the distribution */
    CFG_SCORE_KNN,           /* distance to the local.k-th nearest neighbour, standardised features */
    CFG_SCORE_LOF,           /* local outlier factor with local.lof_k neighbours */
    CFG_SCORE_FOREST_KNN,    /* mean forest distance (1 - similarity) to the top-k similar objects */
    CFG_SCORE_FOREST_OOB,    /* out-of-bag P(synthetic) of the forest */
    CFG_SCORE_MLP,           /* P(synthetic) of the MLP */
    CFG_SCORE_LENS,          /* P(lens) of the lens classifier */
    CFG_SCORE_LOCAL,         /* sqrt(z(knn) z(lof)), each robust z clipped at 0: far from its neighbours AND
                                sparser than they are (after the others, so that earlier codes keep their values) */
    CFG_SCORE_CONTEXT,       /* each feature's gap to the nearest value among the neighbours, over the larger of
                                their own mean gap and the median gap, averaged over the features: a value none of
                                its neighbours has, where they agree */
    CFG_SCORE_HEAP,          /* a value shared by improbably many objects for the spread around it, in one feature:
                                a small group at a pipeline default or sentinel (knn.h, HEAP) */
    CFG_N_SCORES
} cfg_score;

/* How score.detectors are combined (each as a robust z-score clipped at 0). */
typedef enum { CFG_COMBINE_MAX = 0, CFG_COMBINE_MEAN = 1 } cfg_combine;

/* export.formats, as bits. */
enum { CFG_FMT_FITS = 1, CFG_FMT_CSV = 2, CFG_FMT_ECSV = 4, CFG_FMT_VOTABLE = 8, CFG_FMT_HTML = 16 };

#define CFG_EXPLAIN_MAX 10  /* score.explain: WHY names at most this many reasons */

typedef struct cfg {
    char *file;          /* the config file as given */
    char *dir;           /* its directory, absolute; paths in the config
                            (catalog.path, cutouts.path, lens.model, output)
                            are already resolved against it */

    /* catalog */
    char *cat_path, *cat_hdu, *cat_id;   /* cat_hdu, cat_id: "" when not set */
    cat_missing cat_missing;
    double *cat_nulls;                   /* values that mean missing in every feature */
    int n_cat_nulls;
    tab_format cat_format;
    char **features;
    int n_features;
    char **passthru;
    int n_passthru;

    /* spectra (optional): cat_spec */
    char *spec_flux, *spec_wave, *spec_ivar, *spec_mask, *spec_z;   /* "" when not set */
    int spec_loglam, spec_ds;
    double spec_g0, spec_g1, spec_dg, spec_n0, spec_n1;

    /* cutouts (optional) and the lens classifier */
    char *cut_path;                      /* "" when there are none */
    cut_layout cut_layout;
    int cut_fail_missing;                /* cutouts.missing: fail */
    char **cut_bands;
    int n_cut_bands, cut_size, cut_morph;
    int lens_on, lens_train_n, lens_test_n, lens_epochs, lens_down;
    char *lens_model;                    /* "" : train one in the run */
    double lens_pix, lens_psf;

    rf_synth synth_mode;

    /* forest */
    int rf_trees, rf_min_leaf, rf_max_depth, rf_bootstrap;
    char *rf_max_features;               /* as written, for --print-config */
    rf_maxf rf_maxf;                     /* ... and parsed */
    double rf_maxf_value;
    int64_t rf_max_samples;

    /* weirdness */
    rf_leaf_filter leaf_filter;
    int repeats;

    /* isolation */
    int iso_trees;                       /* CFG_AUTO_INT: by cfg_iso_trees_auto() */
    int64_t iso_max_samples;

    /* mlp (the real-versus-synthetic discriminator) */
    int mlp_on;
    int *mlp_hidden;
    int n_mlp_hidden;
    nn_act mlp_act;
    double mlp_lr, mlp_momentum, mlp_lr_decay, mlp_l2, mlp_val, mlp_eps;
    int mlp_nesterov, mlp_batch, mlp_epochs, mlp_patience;
    int64_t mlp_max_samples;

    /* similarity */
    int sim_on, top_k, dense, leaf_sample;
    double sim_mem_gb, sim_max_pairs;

    /* local: nearest neighbours in standardised feature space */
    int local_k, lof_k;
    int local_pc;                        /* principal components to search on; 0 auto, -1 never */
    int local_ref;                       /* reference sample size (all rows up to it) */

    /* score: the default anomaly score */
    int detectors;                       /* bits 1 << cfg_score */
    cfg_combine combine;
    double local_weight;                 /* the local detectors' (knn, lof, local) z-scores are multiplied by it;
                                            CFG_AUTO: by cfg_local_weight_auto() */
    double context_weight;               /* the context detector's z-score is multiplied by it */
    double heap_weight;                  /* the heap detector's z-score is multiplied by it */
    int explain;                         /* features named per object, at most CFG_EXPLAIN_MAX */

    /* export */
    int formats;                         /* CFG_FMT_* bits */
    int top_n;
    cfg_score rank_by;

    /* report (HTML) */
    int rep_top;                         /* objects shown */
    char **rep_map;                      /* two features for the map, or none: principal components */
    int n_rep_map;

    /* labels */
    char *labels;                        /* "" when not set */
    double lrn_bandwidth, lrn_strength, lrn_reweight;

    char *output;
    int64_t seed;
    int threads;                         /* 0: every core */
} cfg;

/* Reads and validates a config file, applying overrides ("a.b=value", YAML
 * syntax for the value) in order.  On success *out is owned by the caller
 * (cfg_destroy); on error *out is unchanged and err holds
 * "FILE:LINE:COL: what — how to fix". */
int cfg_load(const char *path, char *const *overrides, int n_overrides, cfg **out, ody_err *err);
void cfg_destroy(cfg *c);

/* The rules between keys (rank_by needs its score, lens needs cutouts...).
 * cfg_load() runs it; exposed for callers that edit a loaded config. */
int cfg_check(const cfg *c, ody_err *err);

/* Every key at its default; required keys (catalog.path, catalog.features,
 * output) are left empty.  For subcommands whose options are config keys
 * (`oddsky lens train`), so that both share one set of defaults.  Owned by
 * the caller (cfg_destroy); NULL when out of memory. */
cfg *cfg_defaults(void);

/* Writes the effective configuration as YAML (every key, defaults filled);
 * malloc'd, NULL when out of memory. */
char *cfg_dump(const cfg *c);

/* A 64-bit hash of the effective values of the keys under `prefixes`
 * (e.g. "forest." "seed"), for deciding whether a stage must run again. */
uint64_t cfg_hash(const cfg *c, const char *const *prefixes, int n_prefixes);

/* configs/README.md's key reference, generated from the schema; malloc'd. */
char *cfg_reference_markdown(void);

/* 1 when text opens with a key's dotted path and a space ("forest.n_trees
 * = 0 ..."): a library's refusal of a setting, which the pipeline then says
 * with the config file it came from. */
int cfg_names_key(const char *text);

/* Name of a score ("anomaly", "knn", "mlp"...), as in the config. */
const char *cfg_score_name(cfg_score s);

/* Detector s's weight in the default score of a run on n_objects objects:
 * score.local_weight for knn, lof and local (auto: cfg_local_weight_auto),
 * score.context_weight for context, score.heap_weight for heap, 1 for the
 * others. */
double cfg_detector_weight(const cfg *c, cfg_score s, size_t n_objects);

/* score.local_weight: auto for a run on n objects: 1 up to 1,000, then
 * sqrt(1000 / n), 0.5 from 4,000 on.  The ordinary objects' tail of distance
 * ratios reaches further the more of them there are, while the forests'
 * scores stay bounded: in a small catalog the local family can speak at full
 * weight, in a large one its ordinary tail would top the list. */
double cfg_local_weight_auto(size_t n_objects);

/* The weight score.local_weight gives for a run on n_objects objects, or -1
 * when it is not auto or no local detector (knn, lof, local) is in
 * score.detectors: what the run log and the report say it took. */
double cfg_local_weight_taken(const cfg *c, size_t n_objects);

/* isolation.n_trees: auto for a run on n objects: 2,000 up to 100,000, then
 * 2 x 10^8 / n, 500 from 400,000 on.  An isolation score is a mean over
 * trees, and with 500 its noise moves a ranking with the seed (a tenth of the
 * demo's top 50); 2,000 quarter that noise's variance at a cost a catalog of up
 * to 10^5 objects does not feel (a second or two there), and a large one keeps
 * the 500 its time and memory were planned on. */
int cfg_iso_trees_auto(size_t n_objects);

/* The isolation trees of a run on n_objects objects: isolation.n_trees,
 * auto resolved. */
int cfg_iso_trees(const cfg *c, size_t n_objects);

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
