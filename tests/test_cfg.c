/* test_cfg.c — YAML configs: errors with line numbers, overrides, round trip. */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cfg.h"
#include "testutil.h"

static char *write_cfg(const char *dir, const char *name, const char *text)
{
    char *p = tu_path(dir, name);
    FILE *f = fopen(p, "w");
    fputs(text, f);
    fclose(f);
    return p;
}

#define GOOD "catalog:\n  path: cat.fits\n  features: [a, b]\noutput: out\n"

/* Loads path (with one --set KEY=VALUE when set is not NULL) and expects an
 * input error containing every needle that is not NULL; what names the
 * input in a failure. */
static void expect_refused(const char *path, const char *set, const char *what, const char *n1, const char *n2)
{
    char *sets[] = {(char *)set};
    cfg *c = NULL;
    ody_err e = {0};
    int rc = cfg_load(path, set ? sets : NULL, set ? 1 : 0, &c, &e);
    if (rc != ODY_EINPUT) fail_msg("expected an input error for %s, got %d", what, rc);
    assert_null(c);
    if (n1 && !strstr(e.msg, n1)) fail_msg("'%s' not in: %s", n1, e.msg);
    if (n2 && !strstr(e.msg, n2)) fail_msg("'%s' not in: %s", n2, e.msg);
}

/* Loads text and expects an input error containing every needle. */
static void expect_error(const char *dir, const char *text, const char *n1, const char *n2)
{
    char *p = write_cfg(dir, "c.yaml", text);
    expect_refused(p, NULL, text, n1, n2);
    free(p);
}

/* Loads path with one --set KEY=VALUE and expects an input error containing
 * needle (when not NULL). */
static void expect_set_refused(const char *path, const char *set, const char *needle)
{
    expect_refused(path, set, set, needle, NULL);
}

static void test_broken_configs(void **state)
{
    (void)state;
    char *dir = tu_tmpdir();
    expect_error(dir, GOOD "forest:\n  n_tree: 10\n", "c.yaml:6:3: unknown key 'n_tree' in forest", "did you mean 'n_trees'");
    expect_error(dir, GOOD "forrest:\n  n_trees: 10\n", "c.yaml:5:1: unknown key 'forrest'", "did you mean 'forest'");
    expect_error(dir, GOOD "forest:\n  n_trees: many\n", "c.yaml:6:12: forest.n_trees: expected a whole number", NULL);
    expect_error(dir, GOOD "forest:\n  n_trees: 0\n", "forest.n_trees = 0 is out of range", "1 to 100000");
    expect_error(dir, GOOD "score:\n  context_weight: -1\n", "score.context_weight = -1 is out of range", "0 to 100");
    expect_error(dir, GOOD "score:\n  local_weight: -1\n", "score.local_weight = -1 is out of range", "0 to 100");
    expect_error(dir, GOOD "score:\n  local_weight: half\n", "score.local_weight: expected auto or a number", NULL);
    expect_error(dir, GOOD "score:\n  heap_weight: 101\n", "score.heap_weight = 101 is out of range", "0 to 100");
    expect_error(dir, GOOD "score:\n  detectors: [isolation, heaps]\n", "c.yaml:6:26: score.detectors: 'heaps' is not one of", "|context|heap");
    /* every detector listed at weight 0: ANOMALY_SCORE was 0 for every object, a ranking of nothing */
    expect_error(dir, GOOD "score:\n  detectors: [local, context]\n  local_weight: 0\n  context_weight: 0\n",
                 "c.yaml: every detector in score.detectors has weight 0", "raise a weight");
    expect_error(dir, GOOD "mlp:\n  momentum: 1.5\n", "c.yaml:6:13", "out of range");
    expect_error(dir, GOOD "synthetic:\n  mode: gaussian\n", "c.yaml:6:9", "not one of marginal|uniform");
    expect_error(dir, GOOD "forest:\n  bootstrap: maybe\n", "expected true or false", NULL);
    expect_error(dir, "catalog:\n  path: cat.fits\noutput: out\n", "missing required key 'catalog.features'", NULL);
    expect_error(dir, "catalog:\n  features: [a]\noutput: out\n", "missing required key 'catalog.path'", NULL);
    expect_error(dir, "catalog:\n  path: cat.fits\n  features: [a]\noutput: \"\"\n", "required key 'output' is empty",
                 NULL);
    expect_error(dir, "catalog:\n  path: x\n  features: [a\noutput: o\n", "YAML syntax error", "c.yaml:");
    expect_error(dir, GOOD "forest: 3\n", "c.yaml:5:1", "must be a section");
    expect_error(dir, GOOD "mlp:\n  hidden: [64, -1]\n", "c.yaml:6:16", "whole numbers");
    expect_error(dir, "catalog:\n  path: cat.fits\n  features: [a]\n  nulls: [-9999, none]\noutput: out\n",
                 "c.yaml:4:18: catalog.nulls: items must be finite numbers", NULL);
    expect_error(dir, "catalog:\n  path: cat.fits\n  features: [a]\n  nulls: [inf]\noutput: out\n", "finite numbers", NULL);
    expect_error(dir, "", "empty", NULL);
    expect_error(dir, GOOD "export:\n  formats: [fits, xlsx]\n", "'xlsx' is not one of fits|csv|ecsv|votable", NULL);
    tu_rmtree(dir);
    free(dir);
}

static void test_defaults_overrides_and_round_trip(void **state)
{
    (void)state;
    char *dir = tu_tmpdir();
    char *p = write_cfg(dir, "c.yaml", GOOD "forest:\n  n_trees: 50\n");
    cfg *c = NULL;
    ody_err e = {0};
    char *sets[] = {"forest.max_features=0.5", "mlp.hidden=[8, 4]", "seed=7", "export.top_n=20",
                    "catalog.nulls=[-9999, 99.5, 1e-3]"};
    assert_ok(cfg_load(p, sets, 5, &c, &e), e);
    assert_int_equal(c->n_cat_nulls, 3);
    assert_true(c->cat_nulls[0] == -9999 && c->cat_nulls[1] == 99.5 && c->cat_nulls[2] == 1e-3);
    assert_int_equal(c->rf_trees, 50);
    assert_string_equal(c->rf_max_features, "0.5");
    assert_int_equal(c->n_mlp_hidden, 2);
    assert_int_equal(c->mlp_hidden[1], 4);
    assert_int_equal(c->seed, 7);
    /* isolation.n_trees: auto, from the number of objects */
    assert_int_equal(c->iso_trees, CFG_AUTO_INT);
    assert_int_equal(cfg_iso_trees(c, 100), 2000);
    assert_int_equal(cfg_iso_trees(c, 100000), 2000);
    assert_int_equal(cfg_iso_trees(c, 200000), 1000);
    assert_int_equal(cfg_iso_trees(c, 400000), 500);
    assert_int_equal(cfg_iso_trees(c, 1000000000), 500);
    assert_int_equal(c->cat_missing, CAT_MISSING_DROP);  /* default, typed */
    assert_int_equal(c->rf_maxf, RF_MAXF_FRAC);          /* parsed at load */
    assert_true(c->rf_maxf_value == 0.5);
    assert_int_equal(c->mlp_act, NN_RELU);
    assert_int_equal(c->rank_by, CFG_SCORE_ANOMALY);
    assert_int_equal(c->detectors, 1 << CFG_SCORE_ISOLATION | 1 << CFG_SCORE_WEIRDNESS | 1 << CFG_SCORE_LOCAL |
                                   1 << CFG_SCORE_CONTEXT);  /* default */
    assert_true(c->context_weight == 0.1);
    assert_true(c->heap_weight == 0.2);  /* used when score.detectors lists heap */
    /* score.local_weight: auto, from the number of objects */
    assert_true(c->local_weight == CFG_AUTO);
    assert_true(cfg_detector_weight(c, CFG_SCORE_LOF, 5000) == 0.5 && cfg_detector_weight(c, CFG_SCORE_LOCAL, 4000) == 0.5 &&
                cfg_detector_weight(c, CFG_SCORE_KNN, 1000) == 1 && cfg_detector_weight(c, CFG_SCORE_LOCAL, 120) == 1 &&
                fabs(cfg_detector_weight(c, CFG_SCORE_LOCAL, 2000) - sqrt(0.5)) < 1e-12 &&
                cfg_detector_weight(c, CFG_SCORE_CONTEXT, 200) == 0.1 && cfg_detector_weight(c, CFG_SCORE_HEAP, 200) == 0.2 &&
                cfg_detector_weight(c, CFG_SCORE_ISOLATION, 200) == 1);
    assert_true(cfg_local_weight_taken(c, 4000) == 0.5);  /* what the log and report say */
    assert_int_equal(c->formats, CFG_FMT_FITS | CFG_FMT_CSV);
    assert_int_equal(c->n_features, 2);
    /* the catalog path resolves against the config's directory */
    assert_non_null(strstr(c->cat_path, dir));
    /* print-config output loads back to the same effective config */
    char *d1 = cfg_dump(c);
    char *p2 = write_cfg(dir, "d.yaml", d1);
    cfg *c2 = NULL;
    assert_ok(cfg_load(p2, NULL, 0, &c2, &e), e);
    const char *sect[] = {"forest.", "mlp.", "seed", "catalog."};
    assert_true(cfg_hash(c, sect, 4) == cfg_hash(c2, sect, 4));
    assert_int_equal(c2->n_cat_nulls, 3);
    assert_true(c2->local_weight == CFG_AUTO);  /* auto reads back as auto */
    assert_int_equal(c2->iso_trees, CFG_AUTO_INT);
    assert_true(c2->cat_nulls[2] == 1e-3);  /* written as the shortest text that reads back the same */
    assert_true(cfg_hash(c, sect, 1) != 0);
    cfg_destroy(c2);
    /* a changed key changes the hash of its section only */
    char *sets2[] = {"similarity.top_k=3"};
    assert_ok(cfg_load(p, sets2, 1, &c2, &e), e);
    const char *fs[] = {"forest."}, *ss[] = {"similarity."};
    cfg *c3 = NULL;
    assert_ok(cfg_load(p, NULL, 0, &c3, &e), e);
    assert_true(cfg_hash(c2, fs, 1) == cfg_hash(c3, fs, 1));
    assert_true(cfg_hash(c2, ss, 1) != cfg_hash(c3, ss, 1));
    cfg_destroy(c2);
    cfg_destroy(c3);
    /* unknown --set key */
    expect_set_refused(p, "forest.n_treez=3", "did you mean 'forest.n_trees'");
    expect_set_refused(p, "forest.n_trees", "KEY=VALUE");
    char *fixed[] = {"score.local_weight=0.7"};  /* a number: that weight, whatever the catalog */
    assert_ok(cfg_load(p, fixed, 1, &c2, &e), e);
    assert_true(cfg_detector_weight(c2, CFG_SCORE_LOCAL, 100) == 0.7 && cfg_detector_weight(c2, CFG_SCORE_LOF, 1e6) == 0.7);
    assert_true(cfg_local_weight_taken(c2, 100) < 0);  /* fixed: nothing to report */
    cfg_destroy(c2);
    char *nolocal[] = {"score.detectors=[isolation, weirdness]"};
    assert_ok(cfg_load(p, nolocal, 1, &c2, &e), e);
    assert_true(cfg_local_weight_taken(c2, 100) < 0);  /* auto, but no local detector */
    cfg_destroy(c2);
    char *isofix[] = {"isolation.n_trees=300"};  /* a number: that many, whatever the catalog */
    assert_ok(cfg_load(p, isofix, 1, &c2, &e), e);
    assert_true(cfg_iso_trees(c2, 10) == 300 && cfg_iso_trees(c2, 1000000) == 300);
    cfg_destroy(c2);
    expect_set_refused(p, "isolation.n_trees=many", "expected auto or a whole number, got 'many'");
    expect_set_refused(p, "isolation.n_trees=2.5", "expected auto or a whole number, got '2.5'");
    expect_set_refused(p, "isolation.n_trees=0", "out of range");
    expect_set_refused(p, "forest.n_trees=-4", "--set");
    free(d1);
    cfg_destroy(c);
    tu_rmtree(dir);
    free(dir); free(p); free(p2);
}

/* Values each key accepts alone but a run could not use together: refused
 * at load, so `oddsky check` refuses them too. */
static void test_rules_between_keys(void **state)
{
    (void)state;
    char *dir = tu_tmpdir();
    expect_error(dir, GOOD "forest:\n  max_features: abc\n", "c.yaml:6:17", "max_features: 'abc' is not sqrt");
    expect_error(dir, GOOD "forest:\n  max_features: 1.5\n", "is not sqrt", NULL);
    expect_error(dir, GOOD "isolation:\n  n_trees: lots\n", "c.yaml:6:12", "expected auto or a whole number, got 'lots'");
    expect_error(dir, GOOD "forest:\n  max_samples: 1\n", "max_samples = 1 cannot grow a tree", NULL);
    expect_error(dir, GOOD "mlp:\n  max_samples: -5\n", "mlp.max_samples = -5 is out of range", NULL);
    expect_error(dir, GOOD "export:\n  rank_by: mlp\nmlp:\n  enabled: false\n", "rank_by = mlp but mlp.enabled is false", NULL);
    expect_error(dir, GOOD "export:\n  rank_by: lens\n", "rank_by = lens but lens.enabled is false", NULL);
    expect_error(dir, GOOD "lens:\n  enabled: true\n", "need cutouts.path", NULL);
    expect_error(dir, "catalog:\n  path: c.fits\n  features: [a, b, A]\noutput: o\n", "lists 'A' twice", NULL);
    expect_error(dir, "catalog:\n  path: c.fits\n  id: ID\n  features: [a]\n  passthrough: [ra, id]\noutput: o\n",
                 "passthrough lists the ID column 'id'", NULL);
    /* every column the exports write is taken, including the ranking's own */
    const char *taken[] = {"lof", "WHY", "Nearest", "KNN_DIST", "FOREST_KNN", "DRIVEN_BY"};
    for (int k = 0; k < 6; k++) {
        char text[256];
        snprintf(text, sizeof text, "catalog:\n  path: c.fits\n  features: [a]\n  passthrough: [%s]\noutput: o\n",
                 taken[k]);
        expect_error(dir, text, "has the name of an oddsky output column", NULL);
    }
    expect_error(dir, GOOD "cutouts:\n  path: c/{id}.fits\n  size: 50\nlens:\n  enabled: true\n  downsample: 4\n",
                 "lens.downsample = 4 does not divide cutouts.size = 50", NULL);
    expect_error(dir, GOOD "mlp:\n  hidden: [1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15, 16]\n", "at most 15", NULL);
    expect_error(dir, GOOD "export:\n  formats: []\n", "export.formats lists no table", NULL);
    /* a normalisation window backwards, or beside the grid, would leave every spectrum unnormalised or unusable */
    const char *spec = "catalog:\n  path: s.fits\n  features: []\nspectra:\n  flux: F\n  grid_start: 4000\n"
                       "  grid_stop: 6000\n  grid_step: 5\n";
    char text[400];
    snprintf(text, sizeof text, "%s  norm_from: 5600\n  norm_to: 5400\noutput: o\n", spec);
    expect_error(dir, text, "spectra.norm_to = 5400 is below norm_from = 5600", NULL);
    snprintf(text, sizeof text, "%s  downsample: 500\noutput: o\n", spec);
    expect_error(dir, text, "spectra.downsample = 500 is more than the grid's 401 bins — set it to at most 401", NULL);
    expect_error(dir, "catalog:\n  path: s.fits\n  features: []\nspectra:\n  flux: F\n  grid_start: 4000\n"
                 "  grid_stop: 6000\n  grid_step: 0.001\noutput: o\n", "makes 2000001 bins — at most 10^6: raise "
                 "spectra.grid_step", NULL);
    snprintf(text, sizeof text, "%s  norm_from: 7000\n  norm_to: 7200\noutput: o\n", spec);
    expect_error(dir, text, "the normalisation window 7000-7200 (spectra.norm_from, norm_to) lies outside the grid "
                 "4000-6000", NULL);
    tu_rmtree(dir);
    free(dir);
}

/* Hostile YAML: every one an input error naming the place, never a crash. */
static void test_hostile_yaml(void **state)
{
    (void)state;
    char *dir = tu_tmpdir();
    expect_error(dir, GOOD "x: &r [1, *r]\n", "c.yaml:5:11", "alias refers to itself");
    expect_error(dir, GOOD "forest:\n  n_trees: 5\n  n_trees: 6\n", "c.yaml:7:3", "appears twice");
    expect_error(dir, GOOD "---\nseed: 3\n", "second YAML document", "c.yaml:5");
    expect_error(dir, GOOD "seed: \xff\xfe\n", "c.yaml:5:7", "UTF-8");
    /* nesting 100,000 deep */
    size_t depth = 100000;
    char *deep = malloc(2 * depth + 16);
    memset(deep, '[', depth);
    memset(deep + depth, ']', depth);
    strcpy(deep + 2 * depth, "\n");
    expect_error(dir, deep, "nested more than 64 levels", NULL);
    free(deep);
    /* an alias expansion bomb: nine levels of ten copies */
    char bomb[4096];
    size_t at = (size_t)snprintf(bomb, sizeof bomb, "a0: &a0 [x, x, x, x, x, x, x, x, x, x]\n");
    for (int l = 1; l < 9; l++)
        at += (size_t)snprintf(bomb + at, sizeof bomb - at, "a%d: &a%d [*a%d, *a%d, *a%d, *a%d, *a%d, *a%d, *a%d, *a%d, *a%d, *a%d]\n",
                               l, l, l - 1, l - 1, l - 1, l - 1, l - 1, l - 1, l - 1, l - 1, l - 1, l - 1);
    expect_error(dir, bomb, "more than 100000 values", NULL);
    /* not a regular file, or far too big */
    cfg *c = NULL;
    ody_err e = {0};
    assert_int_equal(cfg_load("/dev/zero", NULL, 0, &c, &e), ODY_EINPUT);
    assert_non_null(strstr(e.msg, "not a regular file"));
    assert_int_equal(cfg_load(dir, NULL, 0, &c, &e), ODY_EINPUT);
    assert_non_null(strstr(e.msg, "is a directory"));
    char *big = tu_path(dir, "big.yaml");
    FILE *f = fopen(big, "w");
    for (int k = 0; k < 80000; k++) fputs("# a comment line\n", f);
    fclose(f);
    assert_int_equal(cfg_load(big, NULL, 0, &c, &e), ODY_EINPUT);
    assert_non_null(strstr(e.msg, "1 MiB"));
    assert_null(c);
    free(big);
    tu_rmtree(dir);
    free(dir);
}

/* The lens subcommand and the config share one set of defaults. */
static void test_defaults_without_a_file(void **state)
{
    (void)state;
    cfg *d = cfg_defaults();
    assert_non_null(d);
    assert_int_equal(d->rf_trees, 500);
    assert_int_equal(d->lens_train_n, 6000);
    assert_int_equal(d->cut_size, 48);
    assert_int_equal(d->n_features, 0);
    assert_string_equal(cfg_score_name(d->rank_by), "anomaly");
    /* reals print as the shortest decimal that reads back exactly */
    char *text = cfg_dump(d);
    assert_non_null(strstr(text, "momentum: 0.9\n"));
    assert_null(strstr(text, "00000000"));
    free(text);
    cfg_destroy(d);
}

static void test_readme_matches_schema(void **state)
{
    (void)state;
    const char *src = getenv("ODDSKY_SOURCE_DIR");
    if (!src) skip();
    char *p = tu_path(src, "configs/README.md");
    FILE *f = fopen(p, "r");
    assert_non_null(f);
    static char buf[1 << 17];
    size_t n = fread(buf, 1, sizeof buf - 1, f);
    buf[n] = 0;
    fclose(f);
    char *ref = cfg_reference_markdown();
    if (!strstr(buf, ref))
        fail_msg("configs/README.md is out of date: regenerate its table with `oddsky check --reference`");
    free(ref);
    free(p);
}

static void test_batch_files(void **state)
{
    (void)state;
    char *dir = tu_tmpdir();
    char *c1 = write_cfg(dir, "a.yaml", GOOD);
    char *b = write_cfg(dir, "b.yaml",
                        "jobs: 2\nruns:\n  - config: a.yaml\n    name: first\n    set: {forest.n_trees: 10}\n"
                        "  - config: a.yaml\ngrid:\n  config: a.yaml\n  name: g\n  vary:\n    seed: [1, 2]\n"
                        "    forest.n_trees: [5, 6, 7]\n");
    cfg_batch *bt = NULL;
    ody_err e = {0};
    assert_ok(cfg_batch_load(b, &bt, &e), e);
    assert_int_equal(bt->n_jobs, 2 + 6);
    assert_int_equal(bt->jobs_at_once, 2);
    assert_string_equal(bt->jobs[0].name, "first");
    assert_string_equal(bt->jobs[0].set[0], "forest.n_trees=10");
    assert_non_null(strstr(bt->jobs[0].set[1], "batch_runs/first"));
    assert_string_equal(bt->jobs[1].name, "2-a");
    assert_string_equal(bt->jobs[2].name, "g-seed1-n_trees5");
    cfg_batch_destroy(bt);
    char *b2 = write_cfg(dir, "b2.yaml", "runs:\n  - config: a.yaml\n    sett: {}\n");
    assert_int_equal(cfg_batch_load(b2, &bt, &e), ODY_EINPUT);
    assert_non_null(strstr(e.msg, "b2.yaml:3:5: unknown key 'sett'"));
    /* a run's name is one folder in batch_runs: no way out of it; a grid's
     * values with a '/' stay one folder */
    char *b3 = write_cfg(dir, "b3.yaml", "runs:\n  - config: a.yaml\n    name: ../../elsewhere\n");
    assert_int_equal(cfg_batch_load(b3, &bt, &e), ODY_EINPUT);
    if (!strstr(e.msg, "b3.yaml: run name '../../elsewhere' is not a folder name")) fail_msg("%s", e.msg);
    char *b4 = write_cfg(dir, "b4.yaml", "grid:\n  config: a.yaml\n  name: g\n  vary:\n    catalog.path: [x/c.fits]\n");
    assert_ok(cfg_batch_load(b4, &bt, &e), e);
    assert_string_equal(bt->jobs[0].name, "g-pathx_c.fits");
    assert_string_equal(bt->jobs[0].set[0], "catalog.path=x/c.fits");  /* the value itself unchanged */
    cfg_batch_destroy(bt);
    tu_rmtree(dir);
    free(dir); free(c1); free(b); free(b2); free(b3); free(b4);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_broken_configs),
        cmocka_unit_test(test_defaults_overrides_and_round_trip),
        cmocka_unit_test(test_rules_between_keys),
        cmocka_unit_test(test_hostile_yaml),
        cmocka_unit_test(test_defaults_without_a_file),
        cmocka_unit_test(test_readme_matches_schema),
        cmocka_unit_test(test_batch_files),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
