/* cfg_schema.c — every config key, and typed reads and writes through the table. */
#define _GNU_SOURCE
#include "schema.h"

#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* ================================================================ the table */

/* Enum codes, one per choice, in the order of the choices string. */
static const int C_MISSING[] = {CAT_MISSING_DROP, CAT_MISSING_IMPUTE, CAT_MISSING_FAIL};
static const int C_FORMAT[] = {TAB_AUTO, TAB_FITS, TAB_CSV, TAB_ECSV, TAB_VOTABLE};
static const int C_LAYOUT[] = {CUT_DIR, CUT_CUBE, CUT_MEF};
static const int C_CUTMISS[] = {0, 1};
static const int C_SYNTH[] = {RF_SYNTH_MARGINAL, RF_SYNTH_UNIFORM};
static const int C_LEAF[] = {RF_LEAF_PURE_REAL, RF_LEAF_MAJORITY_REAL, RF_LEAF_ALL};
static const int C_ACT[] = {NN_RELU, NN_TANH, NN_SIGMOID, NN_LINEAR};
static const int C_SCORE[] = {CFG_SCORE_ANOMALY, CFG_SCORE_WEIRDNESS, CFG_SCORE_ISOLATION, CFG_SCORE_KNN,
                              CFG_SCORE_LOF, CFG_SCORE_FOREST_KNN, CFG_SCORE_FOREST_OOB, CFG_SCORE_MLP, CFG_SCORE_LENS,
                              CFG_SCORE_LOCAL, CFG_SCORE_CONTEXT, CFG_SCORE_HEAP};
static const int C_COMBINE[] = {CFG_COMBINE_MAX, CFG_COMBINE_MEAN};
/* Scores in the order of cfg_score, for export.rank_by and score.detectors. */
#define SCORES "anomaly|weirdness|isolation|knn|lof|forest_knn|forest_oob|mlp|lens|local|context|heap"

/* Enums are stored through int pointers. */
_Static_assert(sizeof(cat_missing) == sizeof(int) && sizeof(tab_format) == sizeof(int) && sizeof(cut_layout) == sizeof(int) &&
               sizeof(rf_synth) == sizeof(int) && sizeof(rf_leaf_filter) == sizeof(int) &&
               sizeof(nn_act) == sizeof(int) && sizeof(cfg_score) == sizeof(int) && sizeof(cfg_combine) == sizeof(int) && sizeof(rf_maxf) == sizeof(int),
               "config enums must be int-sized");

#define O(f) offsetof(cfg, f)
#define NONE 0, 0
const key cfg_schema[] = {
    {"catalog.path", T_PATH, NULL, NONE, NULL, NULL, O(cat_path), 0,
     "FITS, CSV, ECSV or VOTable catalog (.gz too); CFITSIO syntax allowed (cat.fits[1][col UG=U-G; GR=G-R], [class==\"GALAXY\"])"},
    {"catalog.format", T_ENUM, "auto", NONE, "auto|fits|csv|ecsv|votable", C_FORMAT, O(cat_format), 0,
     "the catalog's format; auto: from its content (FITS, ECSV's \"# %ECSV\" line, VOTable's XML, else CSV)"},
    {"catalog.hdu", T_STR, "\"\"", NONE, NULL, NULL, O(cat_hdu), 0, "table HDU by number (0 = primary) or EXTNAME; empty: the first table"},
    {"catalog.id", T_STR, "\"\"", NONE, NULL, NULL, O(cat_id), 0, "ID column (integer, or string of at most 255 characters, no ';'); empty: the row number"},
    {"catalog.features", T_STRLIST, NULL, NONE, NULL, NULL, O(features), O(n_features),
     "numeric feature columns; NAME[k] for element k of a vector column"},
    {"catalog.passthrough", T_STRLIST, "[]", NONE, NULL, NULL, O(passthru), O(n_passthru),
     "columns copied into the exports (e.g. RA, DEC)"},
    {"catalog.nulls", T_REALLIST, "[]", NONE, NULL, NULL, O(cat_nulls), O(n_cat_nulls),
     "values that mean missing in every feature, such as -9999 or 99 (a survey's sentinel): null, then "
     "catalog.missing applies; oddsky warns of a value that looks like one"},
    {"catalog.missing", T_ENUM, "drop", NONE, "drop|impute|fail", C_MISSING, O(cat_missing), 0,
     "rows with null/NaN/Inf features: drop them, impute the column median (a feature missing in most objects is "
     "warned of: the few with a value would stand out), or fail (under every policy a finite value beyond "
     "float32's range, such as a luminosity in erg/s, or a nonzero one below its smallest normal value, 1.2e-38, "
     "is refused: take its log in the path, `FILE[col *; logL = log10(L)]`)"},
    {"spectra.flux", T_STR, "\"\"", NONE, NULL, NULL, O(spec_flux), 0,
     "a vector column of flux a row: its spectra become features on one rest-frame grid (after catalog.features, "
     "which may then be [])"},
    {"spectra.wave", T_STR, "\"\"", NONE, NULL, NULL, O(spec_wave), 0,
     "a vector column of wavelengths a row; empty: the flux column's vector WCS (1CRVLn, 1CDLTn, 1CRPXn keywords)"},
    {"spectra.loglam", T_BOOL, "false", NONE, NULL, NULL, O(spec_loglam), 0, "wavelengths are log10(Angstrom) (SDSS loglam)"},
    {"spectra.ivar", T_STR, "\"\"", NONE, NULL, NULL, O(spec_ivar), 0,
     "inverse-variance vector column: pixels with ivar <= 0 are masked; empty: none"},
    {"spectra.mask", T_STR, "\"\"", NONE, NULL, NULL, O(spec_mask), 0,
     "mask vector column: pixels with a nonzero value are masked; empty: none"},
    {"spectra.redshift", T_STR, "\"\"", NONE, NULL, NULL, O(spec_z), 0,
     "redshift column: wavelengths are divided by 1 + z (rest frame); empty: already at rest"},
    {"spectra.grid_start", T_REAL, "0", 0, 1e8, NULL, NULL, O(spec_g0), 0, "first bin centre of the rest-frame grid (Angstrom)"},
    {"spectra.grid_stop", T_REAL, "0", 0, 1e8, NULL, NULL, O(spec_g1), 0, "last bin centre of the grid (Angstrom)"},
    {"spectra.grid_step", T_REAL, "0", 0, 1e7, NULL, NULL, O(spec_dg), 0,
     "bin width (Angstrom); 0: the file's own grid (needs spectra at rest on the flux column's WCS)"},
    {"spectra.norm_from", T_REAL, "0", 0, 1e8, NULL, NULL, O(spec_n0), 0,
     "each spectrum is divided by its median from here ..."},
    {"spectra.norm_to", T_REAL, "0", 0, 1e8, NULL, NULL, O(spec_n1), 0, "... to here (Angstrom, rest); equal: not normalised"},
    {"spectra.downsample", T_INT, "1", 1, 1000, NULL, NULL, O(spec_ds), 0, "grid bins averaged into one feature"},
    {"cutouts.path", T_PATH, "\"\"", NONE, NULL, NULL, O(cut_path), 0,
     "cutouts: a template with {id} (and {band}) for layout dir, else one file; empty: none"},
    {"cutouts.layout", T_ENUM, "dir", NONE, "dir|cube|mef", C_LAYOUT, O(cut_layout), 0,
     "one file per object (dir), one cube with an IDS table (cube), one HDU per object (mef)"},
    {"cutouts.bands", T_STRLIST, "[]", NONE, NULL, NULL, O(cut_bands), O(n_cut_bands),
     "band names ({band} in the template, EXTNAMEs of a cube); empty: one band"},
    {"cutouts.size", T_INT, "48", 4, 4096, NULL, NULL, O(cut_size), 0, "pixels on a side (centre-cropped or padded)"},
    {"cutouts.missing", T_ENUM, "drop", NONE, "drop|fail", C_CUTMISS, O(cut_fail_missing), 0, "a catalog row without a cutout"},
    {"cutouts.morphology", T_BOOL, "false", NONE, NULL, NULL, O(cut_morph), 0,
     "append morphology features (10 per band) to the catalog features"},
    {"lens.enabled", T_BOOL, "false", NONE, NULL, NULL, O(lens_on), 0, "score every cutout with the lens classifier (P_LENS)"},
    {"lens.model", T_PATH, "\"\"", NONE, NULL, NULL, O(lens_model), 0,
     "a model from `oddsky lens train`; empty: train one on simulations matching the cutouts"},
    {"lens.pixel_scale", T_REAL, "0.2", 1e-4, 100, NULL, NULL, O(lens_pix), 0, "arcsec per pixel of the cutouts (simulations)"},
    {"lens.psf_fwhm", T_REAL, "0.8", 1e-4, 100, NULL, NULL, O(lens_psf), 0, "PSF FWHM in arcsec (simulations)"},
    {"lens.train_n", T_INT, "6000", 100, 10000000, NULL, NULL, O(lens_train_n), 0, "simulated training cutouts"},
    {"lens.test_n", T_INT, "2000", 100, 10000000, NULL, NULL, O(lens_test_n), 0, "simulated held-out cutouts (AUROC, precision, recall)"},
    {"lens.epochs", T_INT, "40", 1, 100000, NULL, NULL, O(lens_epochs), 0, "MLP epochs at most"},
    {"lens.downsample", T_INT, "2", 1, 64, NULL, NULL, O(lens_down), 0, "block-average cutouts by this factor for the MLP"},
    {"synthetic.mode", T_ENUM, "marginal", NONE, "marginal|uniform", C_SYNTH, O(synth_mode), 0,
     "synthetic data: resample each feature's values (marginal) or uniform over its range"},
    {"forest.n_trees", T_INT, "500", 1, 100000, NULL, NULL, O(rf_trees), 0, "trees in the real-versus-synthetic forest"},
    {"forest.max_features", T_MAXF, "sqrt", NONE, NULL, NULL, O(rf_max_features), 0,
     "candidate features per split: sqrt, log2, all, an integer, or a fraction in (0, 1]"},
    {"forest.min_samples_leaf", T_INT, "1", 1, 1e6, NULL, NULL, O(rf_min_leaf), 0, "smallest leaf, in bootstrap draws"},
    {"forest.max_depth", T_INT, "0", 0, 10000, NULL, NULL, O(rf_max_depth), 0, "depth limit; 0 grows trees fully"},
    {"forest.bootstrap", T_BOOL, "true", NONE, NULL, NULL, O(rf_bootstrap), 0, "draw each tree's rows with replacement"},
    {"forest.max_samples", T_INT64, "0", 0, 2147483647.0, NULL, NULL, O(rf_max_samples), 0,
     "rows drawn per tree (0: all real + synthetic rows); set it for large catalogs"},
    {"weirdness.leaf_filter", T_ENUM, "pure_real", NONE, "pure_real|majority_real|all", C_LEAF, O(leaf_filter), 0,
     "leaves that count for similarity: no synthetic draw (the paper), real majority, or all"},
    {"weirdness.repeats", T_INT, "1", 1, 100, NULL, NULL, O(repeats), 0, "forests with seeds seed, seed+1, ... whose weirdness is averaged"},
    {"isolation.n_trees", T_INT_AUTO, "auto", 1, 100000, NULL, NULL, O(iso_trees), 0,
     "trees of the isolation forest in the default score; auto: 2,000 up to 100,000 objects, 2 x 10^8 / N above, "
     "500 from 400,000 on (docs/SCORES.md)"},
    {"isolation.max_samples", T_INT64, "256", 2, 2147483647.0, NULL, NULL, O(iso_max_samples), 0, "subsample per isolation tree"},
    {"mlp.enabled", T_BOOL, "false", NONE, NULL, NULL, O(mlp_on), 0, "train the MLP real-versus-synthetic discriminator"},
    {"mlp.hidden", T_INTLIST, "[64, 64]", 1, 1048576, NULL, NULL, O(mlp_hidden), O(n_mlp_hidden), "hidden layer sizes"},
    {"mlp.activation", T_ENUM, "relu", NONE, "relu|tanh|sigmoid|linear", C_ACT, O(mlp_act), 0, "hidden activation"},
    {"mlp.learning_rate", T_REAL, "0.01", 1e-12, 10, NULL, NULL, O(mlp_lr), 0, "SGD learning rate"},
    {"mlp.momentum", T_REAL, "0.9", 0, 0.999, NULL, NULL, O(mlp_momentum), 0, "momentum"},
    {"mlp.nesterov", T_BOOL, "true", NONE, NULL, NULL, O(mlp_nesterov), 0, "Nesterov momentum"},
    {"mlp.lr_decay", T_REAL, "0", 0, 1e6, NULL, NULL, O(mlp_lr_decay), 0, "learning rate / (1 + decay * epoch)"},
    {"mlp.l2", T_REAL, "0.0001", 0, 1e6, NULL, NULL, O(mlp_l2), 0, "L2 weight decay"},
    {"mlp.batch", T_INT, "64", 1, 1 << 24, NULL, NULL, O(mlp_batch), 0, "mini-batch size (all the training rows when there are fewer)"},
    {"mlp.max_epochs", T_INT, "100", 1, 1000000, NULL, NULL, O(mlp_epochs), 0, "epochs at most"},
    {"mlp.patience", T_INT, "10", 1, 1000000, NULL, NULL, O(mlp_patience), 0, "stop after this many epochs without improvement"},
    {"mlp.epsilon", T_REAL, "0.0001", 0, 1e6, NULL, NULL, O(mlp_eps), 0, "validation-loss improvement that counts"},
    {"mlp.validation", T_REAL, "0.1", 0, 0.89, NULL, NULL, O(mlp_val), 0, "fraction held out for early stopping"},
    {"mlp.max_samples", T_INT64, "0", 0, 2147483647.0, NULL, NULL, O(mlp_max_samples), 0,
     "real rows the MLP trains on, as many synthetic (0: every row); set it for large catalogs: training then costs "
     "the same whatever the catalog's size, and every object is still scored"},
    {"similarity.enabled", T_BOOL, "false", NONE, NULL, NULL, O(sim_on), 0,
     "each object's most similar objects by forest proximity (NEIGHBOURS, forest_knn); off by default: it does not "
     "enter the default ranking and costs about as much as the forest (weirdness needs no similarity lists)"},
    {"similarity.top_k", T_INT, "10", 1, 1000, NULL, NULL, O(top_k), 0, "most similar objects listed per object"},
    {"similarity.dense", T_BOOL, "false", NONE, NULL, NULL, O(dense), 0, "also write the dense N x N similarity matrix"},
    {"similarity.memory_gb", T_REAL, "2", 0.001, 1e6, NULL, NULL, O(sim_mem_gb), 0,
     "memory budget for the dense matrix and the top-k leaf lists"},
    {"similarity.max_pairs", T_REAL, "2e9", 1e3, 1e15, NULL, NULL, O(sim_max_pairs), 0,
     "work budget for top-k (pair updates); fewer trees are used beyond it, and the log says how many"},
    {"similarity.leaf_sample", T_INT, "64", 0, 1000000, NULL, NULL, O(leaf_sample), 0,
     "top-k: leaves with more members contribute an unbiased sample of this many (0: always exact)"},
    {"local.k", T_INT, "10", 1, 1000, NULL, NULL, O(local_k), 0,
     "neighbours for the kNN distance: distance to the k-th nearest object, features standardised"},
    {"local.components", T_INT, "0", -1, 1000, NULL, NULL, O(local_pc), 0,
     "search neighbours on this many principal components of the standardised features (when there are more "
     "features); 0: auto, 64 when objects x reference x features exceed 10^12 (exact search would take minutes); "
     "-1: never"},
    {"local.lof_k", T_INT, "20", 2, 1000, NULL, NULL, O(lof_k), 0, "neighbours for the local outlier factor"},
    {"local.reference", T_INT, "20000", 100, 100000000, NULL, NULL, O(local_ref), 0,
     "neighbours are searched among all objects up to this many, else among a seeded sample of this size"},
    {"score.detectors", T_FLAGS, "[isolation, weirdness, local, context]", NONE, SCORES, NULL, O(detectors), 0,
     "scores combined into the default anomaly score (not anomaly or lens)"},
    {"score.combine", T_ENUM, "max", NONE, "max|mean", C_COMBINE, O(combine), 0,
     "each detector as a robust z-score clipped at 0 (times its weight), then their maximum or mean"},
    {"score.local_weight", T_REAL_AUTO, "auto", 0, 100, NULL, NULL, O(local_weight), 0,
     "weight of the local detectors (knn, lof, local) in the combination: their unbounded distance ratios have "
     "heavier tails than the forests' scores, reaching further the more objects there are; auto: 1 up to 1,000 "
     "objects, sqrt(1000 / N) above, 0.5 from 4,000 on (docs/SCORES.md)"},
    {"score.context_weight", T_REAL, "0.1", 0, 100, NULL, NULL, O(context_weight), 0,
     "weight of the context detector in the combination: its gaps, in units of a median gap, have heavier tails "
     "than the forests' scores (docs/SCORES.md)"},
    {"score.heap_weight", T_REAL, "0.2", 0, 100, NULL, NULL, O(heap_weight), 0,
     "weight of the heap detector when score.detectors lists it: objects that share a value with a small group "
     "(docs/SCORES.md)"},
    {"score.explain", T_INT, "3", 0, CFG_EXPLAIN_MAX, NULL, NULL, O(explain), 0,
     "features named per object in WHY: largest deviations from its nearest normal neighbours"},
    {"export.formats", T_FLAGS, "[fits, csv]", NONE, "fits|csv|ecsv|votable|html", NULL, O(formats), 0,
     "ranked list formats: anomalies.fits, .csv, .ecsv (astropy, with units and descriptions), .vot (VOTable); "
     "html: the report, report/index.html (as `oddsky report` writes it)"},
    {"export.top_n", T_INT, "0", 0, 2147483647.0, NULL, NULL, O(top_n), 0, "rows in the ranked list; 0: every object"},
    {"export.rank_by", T_ENUM, "anomaly", NONE, SCORES, C_SCORE, O(rank_by), 0,
     "score the list is sorted by (decreasing)"},
    {"report.top", T_INT, "100", 1, 100000, NULL, NULL, O(rep_top), 0,
     "objects shown as cards and in the table of the HTML report"},
    {"report.map", T_STRLIST, "[]", NONE, NULL, NULL, O(rep_map), O(n_rep_map),
     "two features for the report's map of the catalog; empty: its first two principal components"},
    {"labels", T_PATH, "\"\"", NONE, NULL, NULL, O(labels), 0,
     "your labels: CSV (or FITS) with columns id, label (1 interesting, 0 not) and an optional comment; "
     "`oddsky label` writes it (CSV, or FITS when the file is FITS or named .fits), `oddsky next` reads it; a "
     "file not there yet holds no labels"},
    {"learn.bandwidth", T_REAL, "0.5", 0.01, 100, NULL, NULL, O(lrn_bandwidth), 0,
     "a label moves objects within about this many median kNN distances of it"},
    {"learn.strength", T_REAL, "4.0", 0, 100, NULL, NULL, O(lrn_strength), 0,
     "how far: this times the labelled object's score, at distance 0"},
    {"learn.reweight", T_REAL, "0", 0, 0.99, NULL, NULL, O(lrn_reweight), 0,
     "the detector that drove a labelled object's score is trusted x (1 + this) or x (1 - this)"},
    {"output", T_PATH, NULL, NONE, NULL, NULL, O(output), 0,
     "run directory (created if needed); an input there under a name the run writes (a catalog.fits, your own "
     "config.yaml) is refused, not overwritten"},
    {"seed", T_INT64, "1", 0, 9.2e18, NULL, NULL, O(seed), 0, "master RNG seed"},
    {"threads", T_INT, "0", 0, 4096, NULL, NULL, O(threads), 0, "OpenMP threads; 0: all cores (results do not depend on it)"},
};
#undef O
#undef NONE

const int cfg_n_keys = (int)(sizeof cfg_schema / sizeof *cfg_schema);


const key *schema_find(const char *path)
{
    for (int k = 0; k < cfg_n_keys; k++)
        if (!strcmp(cfg_schema[k].path, path)) return &cfg_schema[k];
    return NULL;
}

int schema_is_section(const char *name)
{
    size_t n = strlen(name);
    for (int k = 0; k < cfg_n_keys; k++)
        if (!strncmp(cfg_schema[k].path, name, n) && cfg_schema[k].path[n] == '.') return 1;
    return 0;
}

/* Distance from want to name, kept in *best / buf when it is the closest. */
static void consider(const char *want, const char *name, size_t nlen, int *best, char *buf, size_t len)
{
    char cand[64];
    snprintf(cand, sizeof cand, "%.*s", (int)nlen, name);
    int d = ody_edit_distance(want, cand);
    if (d < *best) {
        *best = d;
        snprintf(buf, len, "%s", cand);
    }
}

const char *schema_nearest(const char *prefix, const char *want, char *buf, size_t len)
{
    int best = 1 << 20;
    buf[0] = 0;
    size_t pl = strlen(prefix);
    for (int k = 0; k < cfg_n_keys; k++) {
        const char *p = cfg_schema[k].path, *dot = strchr(p, '.');
        if (!pl && dot) consider(want, p, (size_t)(dot - p), &best, buf, len);  /* section names */
        if (strncmp(p, prefix, pl) || (pl && p[pl] != '.')) continue;
        const char *leaf = pl ? p + pl + 1 : p;
        if (!strchr(leaf, '.')) consider(want, leaf, strlen(leaf), &best, buf, len);
    }
    return best <= 3 || (best <= (int)strlen(want) / 2) ? buf : NULL;
}

/* ================================================================ typed access */

static void *field(const cfg *c, size_t off) { return (char *)c + off; }

/* Position of s in "a|b|c", or -1. */
static int choice_index(const char *s, const char *choices)
{
    size_t n = strlen(s);
    int i = 0;
    for (const char *p = choices; *p; i++) {
        size_t m = strcspn(p, "|");
        if (m == n && !strncmp(p, s, n)) return i;
        p += m;
        if (*p == '|') p++;
    }
    return -1;
}

static int n_choices(const char *choices)
{
    int n = 1;
    for (const char *p = choices; *p; p++) n += *p == '|';
    return n;
}

/* The i-th choice into buf. */
static void choice_name(const char *choices, int i, char *buf, size_t len)
{
    const char *p = choices;
    for (; i > 0 && *p; i--) {
        p += strcspn(p, "|");
        if (*p == '|') p++;
    }
    snprintf(buf, len, "%.*s", (int)strcspn(p, "|"), p);
}

static int parse_bool(const char *s, int *v)
{
    static const char *t[] = {"true", "True", "TRUE", "yes", "Yes", "on", "On"};
    static const char *f[] = {"false", "False", "FALSE", "no", "No", "off", "Off"};
    for (int k = 0; k < 7; k++) {
        if (!strcmp(s, t[k])) { *v = 1; return 0; }
        if (!strcmp(s, f[k])) { *v = 0; return 0; }
    }
    return -1;
}

void schema_free_value(cfg *c, const key *k)
{
    switch (k->type) {
    case T_STR: case T_PATH: case T_MAXF: {
        char **s = field(c, k->off);
        free(*s);
        *s = NULL;
        break;
    }
    case T_STRLIST: {
        char ***v = field(c, k->off);
        int *n = field(c, k->noff);
        for (int j = 0; *v && j < *n; j++) free((*v)[j]);
        free(*v);
        *v = NULL;
        *n = 0;
        break;
    }
    case T_INTLIST: case T_REALLIST: {
        void **v = field(c, k->off);
        free(*v);
        *v = NULL;
        *(int *)field(c, k->noff) = 0;
        break;
    }
    default: break;
    }
}

/* The items of a list value: a sequence's children, or a scalar as a
 * one-item list (an empty scalar as none). */
static int list_items(const yt_node *n, const yt_node **items, int *cnt)
{
    if (n->kind == YT_MAP) return -1;
    *items = n->kind == YT_SEQ ? n->child : n;
    *cnt = 0;
    if (n->kind == YT_SCALAR) *cnt = n->val[0] ? 1 : 0;
    else for (const yt_node *q = n->child; q; q = q->next) (*cnt)++;
    return 0;
}

static int set_strlist(cfg *c, const key *k, const yt_node *items, int cnt, ody_err *err)
{
    char **v = calloc((size_t)(cnt ? cnt : 1), sizeof *v), at[600];
    if (!v) return ody_fail(err, ODY_ENOMEM, "out of memory");
    int i = 0, rc = 0;
    for (const yt_node *q = items; q && i < cnt && !rc; q = q->next, i++) {
        yt_where(at, sizeof at, q);
        if (q->kind != YT_SCALAR || !q->val[0])
            rc = ody_fail(err, ODY_EINPUT, "%s: %s: every item must be a non-empty name", at, k->path);
        else if (k->choices && choice_index(q->val, k->choices) < 0)
            rc = ody_fail(err, ODY_EINPUT, "%s: %s: '%s' is not one of %s", at, k->path, q->val, k->choices);
        else if (!(v[i] = strdup(q->val)))
            rc = ody_fail(err, ODY_ENOMEM, "out of memory");
    }
    if (rc) {
        for (int j = 0; j < cnt; j++) free(v[j]);
        free(v);
        return rc;
    }
    schema_free_value(c, k);
    *(char ***)field(c, k->off) = v;
    *(int *)field(c, k->noff) = cnt;
    return 0;
}

static int set_intlist(cfg *c, const key *k, const yt_node *items, int cnt, ody_err *err)
{
    int *v = calloc((size_t)(cnt ? cnt : 1), sizeof *v), i = 0;
    if (!v) return ody_fail(err, ODY_ENOMEM, "out of memory");
    for (const yt_node *q = items; q && i < cnt; q = q->next) {
        char at[600], *end = NULL;
        yt_where(at, sizeof at, q);
        errno = 0;
        long x = q->kind == YT_SCALAR ? strtol(q->val, &end, 10) : 0;
        if (q->kind != YT_SCALAR || end == q->val || *end || errno || x < k->lo || x > k->hi) {
            free(v);
            return ody_fail(err, ODY_EINPUT, "%s: %s: items must be whole numbers from %.0f to %.0f", at,
                            k->path, k->lo, k->hi);
        }
        v[i++] = (int)x;
    }
    schema_free_value(c, k);
    *(int **)field(c, k->off) = v;
    *(int *)field(c, k->noff) = cnt;
    return 0;
}

static int set_reallist(cfg *c, const key *k, const yt_node *items, int cnt, ody_err *err)
{
    double *v = calloc((size_t)(cnt ? cnt : 1), sizeof *v);
    int i = 0;
    if (!v) return ody_fail(err, ODY_ENOMEM, "out of memory");
    for (const yt_node *q = items; q && i < cnt; q = q->next) {
        char at[600], *end = NULL;
        yt_where(at, sizeof at, q);
        errno = 0;
        double x = q->kind == YT_SCALAR ? strtod(q->val, &end) : 0;
        if (q->kind != YT_SCALAR || end == q->val || *end || errno || !isfinite(x)) {
            free(v);
            return ody_fail(err, ODY_EINPUT, "%s: %s: items must be finite numbers, e.g. [-9999, 99]", at, k->path);
        }
        v[i++] = x;
    }
    schema_free_value(c, k);
    *(double **)field(c, k->off) = v;
    *(int *)field(c, k->noff) = cnt;
    return 0;
}

static int set_flags(cfg *c, const key *k, const yt_node *items, int cnt, ody_err *err)
{
    int bits = 0, i = 0;
    for (const yt_node *q = items; q && i < cnt; q = q->next, i++) {
        char at[600];
        yt_where(at, sizeof at, q);
        int pos = q->kind == YT_SCALAR ? choice_index(q->val, k->choices) : -1;
        if (pos < 0)
            return ody_fail(err, ODY_EINPUT, "%s: %s: '%s' is not one of %s", at, k->path,
                            q->kind == YT_SCALAR ? q->val : "(a list)", k->choices);
        bits |= 1 << pos;
    }
    *(int *)field(c, k->off) = bits;
    return 0;
}

static int set_list(cfg *c, const key *k, const yt_node *n, ody_err *err)
{
    const yt_node *items = NULL;
    int cnt = 0;
    char at[600];
    yt_where(at, sizeof at, n);
    if (list_items(n, &items, &cnt))
        return ody_fail(err, ODY_EINPUT, "%s: %s must be a list, e.g. [a, b] — not a mapping", at, k->path);
    if (k->type == T_STRLIST) return set_strlist(c, k, items, cnt, err);
    if (k->type == T_INTLIST) return set_intlist(c, k, items, cnt, err);
    if (k->type == T_REALLIST) return set_reallist(c, k, items, cnt, err);
    return set_flags(c, k, items, cnt, err);
}

static int set_number(cfg *c, const key *k, const char *s, const char *at, ody_err *err)
{
    char *end;
    errno = 0;
    double x = strtod(s, &end);
    int whole = k->type != T_REAL && k->type != T_REAL_AUTO;
    int autok = k->type == T_REAL_AUTO || k->type == T_INT_AUTO;
    if (autok && !strcmp(s, "auto")) {
        if (k->type == T_INT_AUTO) *(int *)field(c, k->off) = CFG_AUTO_INT;
        else *(double *)field(c, k->off) = CFG_AUTO;
        return 0;
    }
    if (end == s || *end || errno || !isfinite(x) || (whole && x != floor(x)))
        return ody_fail(err, ODY_EINPUT, "%s: %s: expected %s, got '%s'", at, k->path,
                        autok ? (whole ? "auto or a whole number" : "auto or a number")
                              : whole ? "a whole number" : "a number", s);
    if (x < k->lo || x > k->hi) {
        if (whole)
            return ody_fail(err, ODY_EINPUT, "%s: %s = %s is out of range — use %.0f to %.0f", at, k->path, s, k->lo, k->hi);
        return ody_fail(err, ODY_EINPUT, "%s: %s = %s is out of range — use %g to %g", at, k->path, s, k->lo, k->hi);
    }
    if (k->type == T_INT || k->type == T_INT_AUTO) *(int *)field(c, k->off) = (int)x;
    else if (k->type == T_INT64) *(int64_t *)field(c, k->off) = (int64_t)strtoll(s, NULL, 10);
    else *(double *)field(c, k->off) = x;
    return 0;
}

/* Text values: strings, paths (resolved against the config's directory; a
 * CFITSIO suffix such as [1][col ...] stays as it is) and max_features. */
static int set_text(cfg *c, const key *k, const char *s, const char *at, ody_err *err)
{
    if (k->type == T_MAXF && rf_maxf_parse(s, &c->rf_maxf, &c->rf_maxf_value))
        return ody_fail(err, ODY_EINPUT, "%s: %s: '%s' is not sqrt, log2, all, a whole number of features or a "
                        "fraction in (0, 1]", at, k->path, s);
    char *v = NULL;
    if (k->type == T_PATH && s[0] && s[0] != '/') {
        if (asprintf(&v, "%s/%s", c->dir, s) < 0) v = NULL;
    } else {
        v = strdup(s);
    }
    if (!v) return ody_fail(err, ODY_ENOMEM, "out of memory");
    schema_free_value(c, k);
    *(char **)field(c, k->off) = v;
    return 0;
}

int schema_set(cfg *c, const key *k, const yt_node *n, ody_err *err)
{
    if (k->type == T_STRLIST || k->type == T_INTLIST || k->type == T_REALLIST || k->type == T_FLAGS)
        return set_list(c, k, n, err);
    char at[600];
    yt_where(at, sizeof at, n);
    if (n->kind != YT_SCALAR)
        return ody_fail(err, ODY_EINPUT, "%s: %s must be a single value, not a %s", at, k->path,
                        n->kind == YT_SEQ ? "list" : "mapping");
    const char *s = n->val;
    switch (k->type) {
    case T_INT: case T_INT64: case T_REAL: case T_REAL_AUTO: case T_INT_AUTO:
        return set_number(c, k, s, at, err);
    case T_BOOL:
        if (parse_bool(s, (int *)field(c, k->off)))
            return ody_fail(err, ODY_EINPUT, "%s: %s: expected true or false, got '%s'", at, k->path, s);
        return 0;
    case T_ENUM: {
        int pos = choice_index(s, k->choices);
        if (pos < 0) return ody_fail(err, ODY_EINPUT, "%s: %s: '%s' is not one of %s", at, k->path, s, k->choices);
        *(int *)field(c, k->off) = k->codes[pos];
        return 0;
    }
    default:
        return set_text(c, k, s, at, err);
    }
}

int schema_set_default(cfg *c, const key *k, ody_err *err)
{
    if (!k->def) {  /* required: empty until the file gives it */
        yt_node empty = {.kind = YT_SCALAR, .val = (char *)"", .src = "default"};
        if (k->type == T_STRLIST) return set_list(c, k, &empty, err);
        return set_text(c, k, "", "default", err);
    }
    yt_node *d = NULL;
    int rc = yt_parse(k->def, strlen(k->def), "default", &d, err);
    if (!rc && !d) {
        yt_node empty = {.kind = YT_SCALAR, .val = (char *)"", .src = "default"};
        return schema_set(c, k, &empty, err);
    }
    if (!rc) rc = schema_set(c, k, d, err);
    yt_free(d);
    return rc;
}

/* ================================================================ text */

/* A string quoted so that YAML reads it back as it is. */
static void quoted(const char *s, char *buf, size_t len)
{
    size_t at = (size_t)snprintf(buf, len, "\"");
    for (; s && *s && at + 3 < len; s++) {
        if (*s == '"' || *s == '\\') buf[at++] = '\\';
        buf[at++] = *s;
    }
    snprintf(buf + at, len - at, "\"");
}

/* The shortest decimal that reads back as v: 0.2, not 0.20000000000000001. */
static void real_text(double v, char *buf, size_t len)
{
    for (int p = 6; p <= 17; p++) {
        snprintf(buf, len, "%.*g", p, v);
        if (strtod(buf, NULL) == v) return;
    }
}

static void list_text(const cfg *c, const key *k, char *buf, size_t len)
{
    size_t at = (size_t)snprintf(buf, len, "[");
    int n = k->type == T_FLAGS ? n_choices(k->choices) : *(const int *)field(c, k->noff), first = 1;
    for (int j = 0; j < n && at < len; j++) {
        char item[512];
        if (k->type == T_STRLIST) {
            snprintf(item, sizeof item, "\"%s\"", (*(char ***)field(c, k->off))[j]);
        } else if (k->type == T_INTLIST) {
            snprintf(item, sizeof item, "%d", (*(int **)field(c, k->off))[j]);
        } else if (k->type == T_REALLIST) {
            real_text((*(double **)field(c, k->off))[j], item, sizeof item);
        } else {
            if (!(*(const int *)field(c, k->off) & (1 << j))) continue;
            char name[64];
            choice_name(k->choices, j, name, sizeof name);
            snprintf(item, sizeof item, "\"%s\"", name);
        }
        at += (size_t)snprintf(buf + at, len - at, "%s%s", first ? "" : ", ", item);
        first = 0;
    }
    if (at < len) snprintf(buf + at, len - at, "]");
}

void schema_text(const cfg *c, const key *k, char *buf, size_t len)
{
    switch (k->type) {
    case T_INT: snprintf(buf, len, "%d", *(const int *)field(c, k->off)); break;
    case T_INT64: snprintf(buf, len, "%lld", (long long)*(const int64_t *)field(c, k->off)); break;
    case T_REAL: real_text(*(const double *)field(c, k->off), buf, len); break;
    case T_REAL_AUTO:
        if (*(const double *)field(c, k->off) == CFG_AUTO) snprintf(buf, len, "auto");
        else real_text(*(const double *)field(c, k->off), buf, len);
        break;
    case T_INT_AUTO:
        if (*(const int *)field(c, k->off) == CFG_AUTO_INT) snprintf(buf, len, "auto");
        else snprintf(buf, len, "%d", *(const int *)field(c, k->off));
        break;
    case T_BOOL: snprintf(buf, len, "%s", *(const int *)field(c, k->off) ? "true" : "false"); break;
    case T_STRLIST: case T_INTLIST: case T_REALLIST: case T_FLAGS: list_text(c, k, buf, len); break;
    case T_ENUM: {
        int v = *(const int *)field(c, k->off), pos = 0, n = n_choices(k->choices);
        while (pos < n - 1 && k->codes[pos] != v) pos++;
        char name[64];
        choice_name(k->choices, pos, name, sizeof name);
        quoted(name, buf, len);
        break;
    }
    default: quoted(*(char **)field(c, k->off), buf, len); break;
    }
}

const char *cfg_score_name(cfg_score s)
{
    static const char *names[] = {"anomaly", "weirdness", "isolation", "knn", "lof", "forest_knn", "forest_oob",
                                  "mlp", "lens", "local", "context", "heap"};
    _Static_assert(sizeof names / sizeof *names == CFG_N_SCORES, "one name per score");
    return (unsigned)s < CFG_N_SCORES ? names[s] : "?";
}

double cfg_local_weight_auto(size_t n_objects)
{
    double w = n_objects ? sqrt(1000.0 / (double)n_objects) : 1;
    return w > 1 ? 1 : w < 0.5 ? 0.5 : w;
}

int cfg_iso_trees_auto(size_t n_objects)
{
    if (n_objects <= 100000) return 2000;
    double t = 2e8 / (double)n_objects;
    return t < 500 ? 500 : (int)t;
}

int cfg_iso_trees(const cfg *c, size_t n_objects)
{
    return c->iso_trees == CFG_AUTO_INT ? cfg_iso_trees_auto(n_objects) : c->iso_trees;
}

double cfg_local_weight_taken(const cfg *c, size_t n_objects)
{
    int local = 1 << CFG_SCORE_KNN | 1 << CFG_SCORE_LOF | 1 << CFG_SCORE_LOCAL;
    return c->local_weight == CFG_AUTO && (c->detectors & local) ? cfg_local_weight_auto(n_objects) : -1;
}

double cfg_detector_weight(const cfg *c, cfg_score s, size_t n_objects)
{
    switch (s) {
    case CFG_SCORE_KNN:
    case CFG_SCORE_LOF:
    case CFG_SCORE_LOCAL: return c->local_weight == CFG_AUTO ? cfg_local_weight_auto(n_objects) : c->local_weight;
    case CFG_SCORE_CONTEXT: return c->context_weight;
    case CFG_SCORE_HEAP: return c->heap_weight;
    default: return 1;
    }
}
