/* test_cfg.c — YAML configs: errors with line numbers, overrides, round trip. */
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

/* Loads text and expects an input error containing every needle. */
static void expect_error(const char *dir, const char *text, const char *n1, const char *n2)
{
    char *p = write_cfg(dir, "c.yaml", text);
    cfg *c = NULL;
    ody_err e = {0};
    int rc = cfg_load(p, NULL, 0, &c, &e);
    if (rc != ODY_EINPUT) fail_msg("expected an input error for:\n%s\ngot %d", text, rc);
    assert_null(c);
    if (n1 && !strstr(e.msg, n1)) fail_msg("'%s' not in: %s", n1, e.msg);
    if (n2 && !strstr(e.msg, n2)) fail_msg("'%s' not in: %s", n2, e.msg);
    free(p);
}

static void test_broken_configs(void **state)
{
    (void)state;
    char *dir = tu_tmpdir();
    expect_error(dir, GOOD "forest:\n  n_tree: 10\n", "c.yaml:6:3: unknown key 'n_tree' in forest", "did you mean 'n_trees'");
    expect_error(dir, GOOD "forrest:\n  n_trees: 10\n", "c.yaml:5:1: unknown key 'forrest'", "did you mean 'forest'");
    expect_error(dir, GOOD "forest:\n  n_trees: many\n", "c.yaml:6:12: forest.n_trees: expected a whole number", NULL);
    expect_error(dir, GOOD "forest:\n  n_trees: 0\n", "forest.n_trees = 0 is out of range", "1 to 100000");
    expect_error(dir, GOOD "mlp:\n  momentum: 1.5\n", "c.yaml:6:13", "out of range");
    expect_error(dir, GOOD "synthetic:\n  mode: gaussian\n", "c.yaml:6:9", "not one of marginal|uniform");
    expect_error(dir, GOOD "forest:\n  bootstrap: maybe\n", "expected true or false", NULL);
    expect_error(dir, "catalog:\n  path: cat.fits\noutput: out\n", "missing required key 'catalog.features'", NULL);
    expect_error(dir, "catalog:\n  features: [a]\noutput: out\n", "missing required key 'catalog.path'", NULL);
    expect_error(dir, "catalog:\n  path: x\n  features: [a\noutput: o\n", "YAML syntax error", "c.yaml:");
    expect_error(dir, GOOD "forest: 3\n", "c.yaml:5:1", "must be a section");
    expect_error(dir, GOOD "mlp:\n  hidden: [64, -1]\n", "c.yaml:6:16", "whole numbers");
    expect_error(dir, "", "empty", NULL);
    expect_error(dir, GOOD "export:\n  formats: [fits, votable]\n", "'votable' is not one of fits|csv", NULL);
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
    char *sets[] = {"forest.max_features=0.5", "mlp.hidden=[8, 4]", "seed=7", "export.top_n=20"};
    assert_ok(cfg_load(p, sets, 4, &c, &e), e);
    assert_int_equal(c->rf_trees, 50);
    assert_string_equal(c->rf_max_features, "0.5");
    assert_int_equal(c->n_mlp_hidden, 2);
    assert_int_equal(c->mlp_hidden[1], 4);
    assert_int_equal(c->seed, 7);
    assert_int_equal(c->iso_trees, 200);          /* default */
    assert_string_equal(c->cat_missing, "drop");  /* default */
    assert_int_equal(c->n_features, 2);
    /* the catalog path resolves against the config's directory */
    assert_non_null(strstr(c->cat_path, dir));
    /* print-config output loads back to the same effective config */
    char *d1 = cfg_dump(c);
    char *p2 = write_cfg(dir, "d.yaml", d1);
    cfg *c2 = NULL;
    assert_ok(cfg_load(p2, NULL, 0, &c2, &e), e);
    const char *sect[] = {"forest.", "mlp.", "seed"};
    assert_true(cfg_hash(c, sect, 3) == cfg_hash(c2, sect, 3));
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
    char *bad[] = {"forest.n_treez=3"};
    assert_int_equal(cfg_load(p, bad, 1, &c2, &e), ODY_EINPUT);
    assert_non_null(strstr(e.msg, "did you mean 'forest.n_trees'"));
    char *noeq[] = {"forest.n_trees"};
    assert_int_equal(cfg_load(p, noeq, 1, &c2, &e), ODY_EINPUT);
    assert_non_null(strstr(e.msg, "KEY=VALUE"));
    char *badval[] = {"forest.n_trees=-4"};
    assert_int_equal(cfg_load(p, badval, 1, &c2, &e), ODY_EINPUT);
    assert_non_null(strstr(e.msg, "--set"));
    free(d1);
    cfg_destroy(c);
    tu_rmtree(dir);
    free(dir); free(p); free(p2);
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
    tu_rmtree(dir);
    free(dir); free(c1); free(b); free(b2);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_broken_configs),
        cmocka_unit_test(test_defaults_overrides_and_round_trip),
        cmocka_unit_test(test_readme_matches_schema),
        cmocka_unit_test(test_batch_files),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
