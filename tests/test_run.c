/* test_run.c — the pipeline end to end through the CLI: the demo config,
 * stage skipping, --set, thread-independence, resume after a kill, batch
 * with a failing run, bad configs, and fitsverify / astropy checks. */
#define _GNU_SOURCE
#include <fitsio.h>
#include <math.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <fcntl.h>
#include <time.h>
#include <unistd.h>

#include "cat.h"
#include "learn.h"
#include "testutil.h"

static char out[1 << 16], err[1 << 16];

/* A small, fast copy of the demo config writing into dir. */
static char *small_config(const char *dir, const char *extra)
{
    const char *src = getenv("ODDSKY_SOURCE_DIR");
    char *p = tu_path(dir, "run.yaml");
    FILE *f = fopen(p, "w");
    fprintf(f,
            "catalog:\n"
            "  path: \"%s/catalogs/mock_survey.fits[CATALOG][col *; UG = U - G; GR = G - R; RI = R - I; IZ = I - Z; "
            "OID = ID + 1000000]\"\n"
            "  id: ID\n"
            "  features: [UG, GR, RI, IZ, R, REDSHIFT]\n"
            "  passthrough: [RA, DEC, CLASS, ANOMALY]\n"
            "forest:\n  n_trees: 40\n"
            "mlp:\n  enabled: true\n  hidden: [16]\n  max_epochs: 8\n"
            "similarity:\n  enabled: true\n  top_k: 4\n"
            "output: out\n"
            "seed: 5\n%s",
            src, extra ? extra : "");
    fclose(f);
    return p;
}

/* A bundled catalog file (catalogs/file) copied to dir/as, for a test that
 * moves, renames or deletes it. */
static void bundled_copy(const char *file, const char *dir, const char *as)
{
    char cmd[8800];
    snprintf(cmd, sizeof cmd, "cp '%s/catalogs/%s' '%s/%s'", getenv("ODDSKY_SOURCE_DIR"), file, dir, as);
    assert_int_equal(system(cmd), 0);
}

/* dir/name holding the printf-formatted text; the path is the caller's. */
static char *conf_at(const char *dir, const char *name, const char *fmt, ...) __attribute__((format(printf, 3, 4)));
static char *conf_at(const char *dir, const char *name, const char *fmt, ...)
{
    char *p = tu_path(dir, name);
    FILE *f = fopen(p, "w");
    assert_non_null(f);
    va_list ap;
    va_start(ap, fmt);
    vfprintf(f, fmt, ap);
    va_end(ap);
    fclose(f);
    return p;
}

static int have(const char *cmd)
{
    char *c;
    if (asprintf(&c, "command -v %s >/dev/null 2>&1", cmd) < 0) return 0;
    int ok = system(c) == 0;
    free(c);
    return ok;
}

/* Every export format holds the same table: read back through oddsky's
 * own readers (ECSV, VOTable, CSV), the scores, IDs, units and the features
 * the run used agree with anomalies.fits; astropy opens them with units. */
static void export_formats_agree(const char *dir, const char *conf)
{
    char args[2048], path[4096];
    snprintf(args, sizeof args, "-q run '%s' --set 'export.formats=[fits, csv, ecsv, votable]'", conf);
    int rc = tu_run(args, out, sizeof out, err, sizeof err);
    if (rc) fail_msg("exit %d: %s", rc, err);
    const char *feat[] = {"ANOMALY_SCORE", "F_UG"}, *pass[] = {"RA", "WHY", "NEAREST"};
    cat *ref = NULL;
    const char *names[] = {"fits", "ecsv", "vot", "csv"};
    for (int f = 0; f < 4; f++) {
        snprintf(path, sizeof path, "%s/out/anomalies.%s", dir, names[f]);
        cat_opt o;
        cat_opt_init(&o);
        o.path = path;
        o.features = feat;
        o.n_features = 2;
        o.id_col = "ID";
        o.passthru = pass;
        o.n_passthru = 3;
        cat *c = NULL;
        ody_err e = {0};
        if (cat_read(&o, &c, NULL, &e)) fail_msg("%s: %s", names[f], e.msg);
        assert_int_equal(c->n_rows, 5000);
        if (!ref) {
            ref = c;
            continue;
        }
        for (size_t r = 0; r < c->n_rows; r++) {
            assert_int_equal(c->id.i[r], ref->id.i[r]);
            for (int j = 0; j < 2; j++)
                if (fabsf(c->X[2 * r + j] - ref->X[2 * r + j]) > 1e-6f * fabsf(ref->X[2 * r + j]))
                    fail_msg("%s row %zu: %s %.9g vs %.9g", names[f], r, feat[j], c->X[2 * r + j], ref->X[2 * r + j]);
            assert_true(c->pass[0].f[r] == ref->pass[0].f[r]);  /* 17 digits: the same double */
            assert_string_equal(c->pass[2].s + r * (size_t)(c->pass[2].width + 1),
                                ref->pass[2].s + r * (size_t)(ref->pass[2].width + 1));
        }
        if (f < 3) assert_string_equal(c->pass[0].unit, ref->pass[0].unit);  /* CSV carries no units */
        cat_destroy(c);
    }
    assert_true(ref->pass[0].unit[0] != 0);
    cat_destroy(ref);
    if (system("/usr/bin/python3 -c 'import astropy' >/dev/null 2>&1") == 0) {
        char cmd[9000];
        snprintf(cmd, sizeof cmd,
                 "/usr/bin/python3 -W ignore -c \"from astropy.table import Table; d = '%s/out/anomalies.'; "
                 "a = Table.read(d + 'ecsv'); b = Table.read(d + 'vot', format='votable'); "
                 "assert len(a) == len(b) == 5000 and str(a['RA'].unit) == str(b['RA'].unit) == 'deg'; "
                 "assert a['ANOMALY_SCORE'].description and a.meta['creator'] == 'oddsky'\"", dir);
        if (system(cmd) != 0) fail_msg("astropy cannot read anomalies.ecsv / .vot with their units");
    }
}

static void test_demo_end_to_end_and_skipping(void **state)
{
    (void)state;
    char *dir = tu_tmpdir(), *conf = small_config(dir, NULL), args[2048];
    snprintf(args, sizeof args, "run '%s'", conf);
    int rc = tu_run(args, out, sizeof out, err, sizeof err);
    if (rc) fail_msg("exit %d: %s", rc, err);
    assert_non_null(strstr(out, "Top 10 of 5000 objects"));
    assert_non_null(strstr(err, "8 stages run, 0 up to date, 2 off"));
    const char *files[] = {"catalog.fits", "forest_0.fits", "oob.fits", "weirdness.fits",
                           "neighbours.fits", "mlp.fits", "mlp_scores.fits", "local.fits", "score.fits",
                           "anomalies.fits", "anomalies.csv", "manifest.txt", "oddsky.log", "summary.txt"};
    char path[4096];
    for (size_t k = 0; k < sizeof files / sizeof *files; k++) {
        snprintf(path, sizeof path, "%s/out/%s", dir, files[k]);
        if (!tu_file_exists(path)) fail_msg("missing %s", files[k]);
    }
    /* no temporary left behind */
    snprintf(path, sizeof path, "ls '%s/out' | grep -q tmp-", dir);
    assert_int_not_equal(system(path), 0);
    /* everything up to date on a second run */
    rc = tu_run(args, out, sizeof out, err, sizeof err);
    assert_int_equal(rc, 0);
    assert_non_null(strstr(err, "0 stages run, 8 up to date, 2 off"));
    /* a ranked list deleted to have it made again is made again (the export
     * stage was "up to date" without it) */
    snprintf(path, sizeof path, "%s/out/anomalies.csv", dir);
    assert_int_equal(remove(path), 0);
    rc = tu_run(args, out, sizeof out, err, sizeof err);
    assert_int_equal(rc, 0);
    assert_non_null(strstr(err, "1 stage run, 7 up to date, 2 off"));
    assert_true(tu_file_exists(path));
    /* ... and so is one damaged since, made again as it was: an export with a byte changed (its size the
     * same: the digest the manifest keeps of it tells) was left standing as up to date, and a stage's
     * artifact cut short (its size tells) failed the rerun as "damaged" */
    char sh[9000];
    snprintf(sh, sizeof sh, "cd '%s/out' && cp anomalies.csv ../csv.keep && printf '#' | dd of=anomalies.csv bs=1 seek=300 "
             "conv=notrunc 2>/dev/null && ! cmp -s anomalies.csv ../csv.keep && truncate -s 2880 weirdness.fits", dir);
    assert_int_equal(system(sh), 0);
    rc = tu_run(args, out, sizeof out, err, sizeof err);
    if (rc || !strstr(err, "2 stages run, 6 up to date, 2 off")) fail_msg("exit %d: %s", rc, err);
    snprintf(sh, sizeof sh, "cmp -s '%s/out/anomalies.csv' '%s/csv.keep'", dir, dir);
    assert_int_equal(system(sh), 0);
    snprintf(sh, sizeof sh, "grep -q 'weirdness.fits is missing or not as this run wrote it' '%s/out/oddsky.log' && "
             "grep -Eq '^export [0-9a-f]{16} [0-9.]+ anomalies.fits=[0-9]+:[0-9a-f]+ anomalies.csv=' '%s/out/manifest.txt'",
             dir, dir);
    assert_int_equal(system(sh), 0);
    /* a manifest damaged in its records (a line past the reader's buffer, sizes and digests that are not
     * numbers, a name without '=', binary bytes): nothing read past its end, at worst a stage made again */
    const char *bad_records[] = {
        "python3 -c \"import sys; sys.stdout.write('export 0 1 ' + ' '.join('a%d=1:2' % k for k in range(3000)))\"",
        "printf 'export 0 1 anomalies.csv= anomalies.fits=-1:zz anomalies.csv=99999999999999999999999:1 x\\n'",
        "printf 'score 0 1 score.fits=\\377\\376:\\001 score.fits\\nexport 0 1 anomalies.csv=1:'"};
    for (size_t k = 0; k < sizeof bad_records / sizeof *bad_records; k++) {
        snprintf(sh, sizeof sh, "cd '%s/out' && grep -v '^score \\|^export ' manifest.txt > m.txt && grep '^score \\|^export ' "
                 "manifest.txt | sed 's/ [^ ]*=.*$//' >> m.txt && %s >> m.txt && mv m.txt manifest.txt", dir, bad_records[k]);
        assert_int_equal(system(sh), 0);
        rc = tu_run(args, out, sizeof out, err, sizeof err);
        if (rc) fail_msg("manifest %zu: exit %d: %s", k, rc, err);
        snprintf(sh, sizeof sh, "cmp -s '%s/out/anomalies.csv' '%s/csv.keep'", dir, dir);
        assert_int_equal(system(sh), 0);
    }
    /* --set of a similarity key redoes similarity and export only */
    snprintf(args, sizeof args, "run '%s' --set similarity.top_k=3", conf);
    rc = tu_run(args, out, sizeof out, err, sizeof err);
    assert_int_equal(rc, 0);
    assert_non_null(strstr(err, "3 stages run, 5 up to date, 2 off"));
    /* --from forest redoes four stages; --force all of them */
    snprintf(args, sizeof args, "run '%s' --set similarity.top_k=3 --from weirdness", conf);
    rc = tu_run(args, out, sizeof out, err, sizeof err);
    assert_non_null(strstr(err, "6 stages run, 2 up to date, 2 off"));
    snprintf(args, sizeof args, "run '%s' --set similarity.top_k=3 --from nowhere", conf);
    assert_int_equal(tu_run(args, out, sizeof out, err, sizeof err), 2);
    /* a run refused at its catalog leaves the folder's config.yaml, which
     * its results answer to: the report still opens from the folder */
    snprintf(path, sizeof path, "cp '%s/out/config.yaml' '%s/before.yaml'", dir, dir);
    assert_int_equal(system(path), 0);
    snprintf(args, sizeof args, "-q run '%s' --set 'catalog.features=[UG, NOPE]'", conf);
    assert_int_equal(tu_run(args, out, sizeof out, err, sizeof err), 2);
    snprintf(path, sizeof path, "cmp -s '%s/out/config.yaml' '%s/before.yaml'", dir, dir);
    if (system(path) != 0) fail_msg("a refused run rewrote the run folder's config.yaml");
    snprintf(args, sizeof args, "-q report '%s/out' --top 3", dir);
    rc = tu_run(args, out, sizeof out, err, sizeof err);
    if (rc) fail_msg("report after a refused run: exit %d: %s", rc, err);
    /* every FITS output passes fitsverify and loads in astropy */
    if (have("fitsverify")) {
        for (size_t k = 0; k < 10; k++) {
            char cmd[4300];
            snprintf(cmd, sizeof cmd, "fitsverify -q '%s/out/%s' | grep -q 'verification OK'", dir, files[k]);
            if (system(cmd) != 0) fail_msg("fitsverify fails on %s", files[k]);
        }
    }
    if (system("/usr/bin/python3 -c 'import astropy' >/dev/null 2>&1") == 0) {
        char cmd[4300];
        snprintf(cmd, sizeof cmd,
                 "/usr/bin/python3 -c \"from astropy.table import Table; t = Table.read('%s/out/anomalies.fits'); "
                 "assert len(t) == 5000 and t['RANK'][0] == 1 and 'ANOMALY_SCORE' in t.colnames; "
                 "assert (t['ANOMALY_SCORE'][:-1] >= t['ANOMALY_SCORE'][1:]).all(); "
                 "from astropy.io import fits; h = fits.open('%s/out/mlp.fits'); assert h['LAYER1'].data.shape == (16, 7)\"",
                 dir, dir);
        if (system(cmd) != 0) fail_msg("astropy cannot read the outputs as expected");
    }
    export_formats_agree(dir, conf);
    /* compare: a run against itself, and against a folder with no run */
    snprintf(args, sizeof args, "compare '%s/out' '%s/out' --top 20", dir, dir);
    assert_int_equal(tu_run(args, out, sizeof out, err, sizeof err), 0);
    assert_non_null(strstr(out, "5000 in both (matched by ID)"));
    assert_non_null(strstr(out, "top 20: 20 shared (100%)"));
    assert_non_null(strstr(out, "correlation over the 5000 shared objects: 1.0000"));
    assert_non_null(strstr(out, "Settings: the same"));
    /* ... and against the same list made, its config.yaml says, with another seed and trees */
    char cmd[9000];
    snprintf(cmd, sizeof cmd, "mkdir '%s/out2' && cp '%s/out/anomalies.fits' '%s/out2/' && sed 's/^seed: .*/seed: 99/; "
             "s/^  n_trees: .*/  n_trees: 7/' '%s/out/config.yaml' > '%s/out2/config.yaml'", dir, dir, dir, dir, dir);
    assert_int_equal(system(cmd), 0);
    snprintf(args, sizeof args, "compare '%s/out' '%s/out2'", dir, dir);
    assert_int_equal(tu_run(args, out, sizeof out, err, sizeof err), 0);
    assert_non_null(strstr(out, "Settings that differ (A -> B):\n"));
    assert_non_null(strstr(out, "  seed: 5 -> 99\n"));
    assert_non_null(strstr(out, "  forest.n_trees: 40 -> 7\n"));
    assert_null(strstr(out, "output:"));
    snprintf(args, sizeof args, "compare '%s/out' '%s/none'", dir, dir);
    assert_int_equal(tu_run(args, out, sizeof out, err, sizeof err), 2);
    assert_non_null(strstr(err, "none/anomalies.fits: cannot open"));
    tu_rmtree(dir);
    free(dir);
    free(conf);
}

/* A folder named as astronomers name them, "(" and "[" included, which
 * CFITSIO reads as its own syntax: the catalog in it read with a filter
 * and as CSV, the run folder in it written, then report, next and score. */
static void test_folder_names_cfitsio_would_misread(void **state)
{
    (void)state;
    char *top = tu_tmpdir(), *dir = tu_path(top, "Run (2024) [v2]"), args[4400], path[4300];
    assert_int_equal(mkdir(dir, 0700), 0);
    bundled_copy("mock_survey.fits", dir, "survey (dr1).fits");
    char *conf = conf_at(dir, "c.yaml", "catalog:\n  path: \"survey (dr1).fits[CATALOG][col *; UG = U - G; GR = G - R]"
                         "[REDSHIFT < 3]\"\n  id: ID\n  features: [UG, GR, R, REDSHIFT]\nforest:\n  n_trees: 20\n"
                         "export:\n  formats: [fits, csv, html]\nlabels: labels (mine).csv\noutput: out [a]\nseed: 5\n");
    snprintf(args, sizeof args, "-q run '%s' --top 0", conf);
    int rc = tu_run(args, out, sizeof out, err, sizeof err);
    if (rc) fail_msg("run: exit %d: %s", rc, err);
    snprintf(path, sizeof path, "%s/out [a]/anomalies.fits", dir);
    assert_true(tu_file_exists(path));
    snprintf(args, sizeof args, "-q report '%s/out [a]'", dir);
    if ((rc = tu_run(args, out, sizeof out, err, sizeof err))) fail_msg("report: exit %d: %s", rc, err);
    snprintf(args, sizeof args, "label '%s' 17 1", conf);
    if ((rc = tu_run(args, out, sizeof out, err, sizeof err))) fail_msg("label: exit %d: %s", rc, err);
    snprintf(args, sizeof args, "next '%s' -n 3 --ids", conf);
    if ((rc = tu_run(args, out, sizeof out, err, sizeof err))) fail_msg("next: exit %d: %s", rc, err);
    snprintf(args, sizeof args, "-q score '%s/out [a]' '%s/survey (dr1).fits[CATALOG][col *; UG = U - G; GR = G - R]' "
             "-o '%s/new (1)'", dir, dir, dir);
    if ((rc = tu_run(args, out, sizeof out, err, sizeof err))) fail_msg("score: exit %d: %s", rc, err);
    snprintf(args, sizeof args, "inspect '%s/new (1)/anomalies.fits'", dir);
    if ((rc = tu_run(args, out, sizeof out, err, sizeof err))) fail_msg("inspect: exit %d: %s", rc, err);
    if (!strstr(out, "ANOMALIES  5000 rows")) fail_msg("inspect: %s", out);
    tu_rmtree(top);
    free(top);
    free(dir);
    free(conf);
}

static void test_threads_do_not_change_results(void **state)
{
    (void)state;
    char *dir = tu_tmpdir(), *conf = small_config(dir, "threads: 1\nexport:\n  formats: [fits, csv, votable]\n"),
         args[2048];
    snprintf(args, sizeof args, "-q run '%s' --top 0", conf);
    assert_int_equal(tu_run(args, out, sizeof out, err, sizeof err), 0);
    snprintf(args, sizeof args, "-q run '%s' --top 0 --set threads=2 --set output=out2", conf);
    assert_int_equal(tu_run(args, out, sizeof out, err, sizeof err), 0);
    char a[4096], b[4096];
    const char *cmp[] = {"anomalies.fits", "weirdness.fits", "neighbours.fits", "mlp_scores.fits", "oob.fits",
                         "local.fits", "score.fits"};
    for (int k = 0; k < 7; k++) {
        snprintf(a, sizeof a, "%s/out/%s", dir, cmp[k]);
        snprintf(b, sizeof b, "%s/out2/%s", dir, cmp[k]);
        tu_same_table(a, b);
    }
    /* the text exports, written a block of rows at a time in parallel, byte for byte */
    for (int k = 0; k < 2; k++) {
        char cmd[4300];
        snprintf(cmd, sizeof cmd, "cmp -s '%s/out/anomalies.%s' '%s/out2/anomalies.%s'", dir, k ? "vot" : "csv", dir,
                 k ? "vot" : "csv");
        if (system(cmd) != 0) fail_msg("anomalies.%s differs between 1 and 2 threads", k ? "vot" : "csv");
    }
    tu_rmtree(dir);
    free(dir);
    free(conf);
}

/* Starts a run of conf into output `out` and kills it (-9) after ms. */
static void run_and_kill(const char *conf, const char *outdir, long ms)
{
    const char *bin = getenv("ODDSKY_BIN");
    pid_t pid = fork();
    if (pid == 0) {
        char ov[4300];
        snprintf(ov, sizeof ov, "output=%s", outdir);
        int fd = open("/dev/null", O_WRONLY);
        dup2(fd, 1);
        dup2(fd, 2);
        execl(bin, bin, "-q", "run", conf, "--top", "0", "--set", "forest.n_trees=200", "--set", ov, (char *)NULL);
        _exit(127);
    }
    struct timespec ts = {ms / 1000, (ms % 1000) * 1000000L};
    nanosleep(&ts, NULL);
    kill(pid, SIGKILL);
    waitpid(pid, NULL, 0);
}

static double now_s(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + 1e-9 * (double)ts.tv_nsec;
}

static int same_file(const char *a, const char *b)
{
    FILE *fa = fopen(a, "rb"), *fb = fopen(b, "rb");
    int same = fa && fb;
    while (same) {
        int x = fgetc(fa), y = fgetc(fb);
        if (x != y) same = 0;
        if (x == EOF) break;
    }
    if (fa) fclose(fa);
    if (fb) fclose(fb);
    return same;
}

/* Two oddsky at once in one run folder: a writer is refused while another
 * holds it (each file would be whole, the folder a mix of both runs); a
 * run that only reads the folder back (score) shares it with readers. */
static void test_run_folder_lock(void **state)
{
    (void)state;
    char *dir = tu_tmpdir(), *conf = small_config(dir, NULL), args[4400], lock[4200];
    snprintf(args, sizeof args, "-q run '%s' --top 0", conf);
    assert_int_equal(tu_run(args, out, sizeof out, err, sizeof err), 0);
    snprintf(lock, sizeof lock, "%s/out/.oddsky.lock", dir);
    int fd = open(lock, O_RDWR);
    assert_true(fd >= 0);
    char pid[32] = "";
    assert_true(read(fd, pid, sizeof pid - 1) > 0);  /* the last writer's PID, for the message */
    assert_int_equal(flock(fd, LOCK_EX), 0);  /* as a run under way holds it */
    assert_int_equal(tu_run(args, out, sizeof out, err, sizeof err), 2);
    if (!strstr(err, "out: another oddsky is using this run folder (process ") || strchr(err, '\n') != err + strlen(err) - 1)
        fail_msg("%s", err);
    snprintf(args, sizeof args, "-q score '%s/out' '%s/catalogs/mock_survey.fits' -o '%s/scored'", dir,
             getenv("ODDSKY_SOURCE_DIR"), dir);
    assert_int_equal(tu_run(args, out, sizeof out, err, sizeof err), 2);
    assert_non_null(strstr(err, "another oddsky is writing to this run folder"));
    /* held to read (as score holds it): score runs beside it, a run does not */
    assert_int_equal(flock(fd, LOCK_SH), 0);
    if (tu_run(args, out, sizeof out, err, sizeof err)) fail_msg("score beside a reader: %s", err);
    snprintf(args, sizeof args, "-q run '%s' --top 0", conf);
    assert_int_equal(tu_run(args, out, sizeof out, err, sizeof err), 2);
    /* released (a run killed with -9 releases it too: the kernel closes its file) */
    close(fd);
    if (tu_run(args, out, sizeof out, err, sizeof err)) fail_msg("after the lock: %s", err);
    tu_rmtree(dir);
    free(dir);
    free(conf);
}

/* Fault injection: killed with -9 at ten seeded random moments, each time
 * resumed; the outputs are byte for byte those of an uninterrupted run and
 * no temporary is left. */
static void test_resume_after_kill(void **state)
{
    (void)state;
    char *dir = tu_tmpdir(), *conf = small_config(dir, NULL), args[4400];
    snprintf(args, sizeof args, "-q run '%s' --top 0 --set forest.n_trees=200 --set output=ref", conf);
    double t0 = now_s();
    assert_int_equal(tu_run(args, out, sizeof out, err, sizeof err), 0);
    long span = (long)((now_s() - t0) * 1000);
    const char *tables[] = {"catalog.fits", "forest_0.fits", "oob.fits", "weirdness.fits",
                            "neighbours.fits", "mlp_scores.fits", "anomalies.fits"};
    unsigned long long seed = 12345;
    for (int trial = 0; trial < 10; trial++) {
        char killed[4200];
        snprintf(killed, sizeof killed, "%s/killed%d", dir, trial);
        seed = seed * 6364136223846793005ULL + 1442695040888963407ULL;
        run_and_kill(conf, killed, 20 + (long)((seed >> 33) % (unsigned long long)(span > 40 ? span : 40)));
        snprintf(args, sizeof args, "-q run '%s' --top 0 --set forest.n_trees=200 --set output='%s'", conf, killed);
        int rc = tu_run(args, out, sizeof out, err, sizeof err);
        if (rc) fail_msg("trial %d: resume failed: %s", trial, err);
        char a[4400], b[4400];
        for (size_t k = 0; k < sizeof tables / sizeof *tables; k++) {
            snprintf(a, sizeof a, "%s/ref/%s", dir, tables[k]);
            snprintf(b, sizeof b, "%s/%s", killed, tables[k]);
            tu_same_table(a, b);
        }
        snprintf(a, sizeof a, "%s/ref/anomalies.csv", dir);
        snprintf(b, sizeof b, "%s/anomalies.csv", killed);
        if (!same_file(a, b)) fail_msg("trial %d: anomalies.csv differs", trial);
        snprintf(a, sizeof a, "ls -a '%s' | grep -q 'tmp-'", killed);
        if (system(a) == 0) fail_msg("trial %d: a temporary is left in %s", trial, killed);
    }
    tu_rmtree(dir);
    free(dir);
    free(conf);
}

/* A run folder copied or renamed (run_v1/) is that run: report, score and
 * serve read and write it, not the folder its config.yaml was written in
 * (report once wrote into the original).  Moved away from its catalog (to
 * a laptop), it answers to its own copy of the catalog, and says so. */
static void test_moved_run_folder(void **state)
{
    (void)state;
    char *dir = tu_tmpdir(), cmd[8800], args[8800];
    bundled_copy("mock_survey.fits", dir, "cat.fits");
    char *conf = conf_at(dir, "c.yaml", "catalog:\n  path: cat.fits\n  id: ID\n  features: [U, G, R, REDSHIFT]\n"
                         "forest:\n  n_trees: 10\nisolation:\n  n_trees: 20\noutput: out\nseed: 3\n");
    snprintf(args, sizeof args, "-q run '%s' --top 0", conf);
    int rc = tu_run(args, out, sizeof out, err, sizeof err);
    if (rc) fail_msg("run: exit %d: %s", rc, err);
    snprintf(cmd, sizeof cmd, "cp -r '%s/out' '%s/run_v1'", dir, dir);
    assert_int_equal(system(cmd), 0);
    snprintf(args, sizeof args, "-q report '%s/run_v1'", dir);
    if ((rc = tu_run(args, out, sizeof out, err, sizeof err))) fail_msg("report: exit %d: %s", rc, err);
    char path[4400];
    snprintf(path, sizeof path, "%s/run_v1/report/index.html", dir);
    assert_true(tu_file_exists(path));
    snprintf(path, sizeof path, "%s/out/report", dir);
    assert_false(tu_file_exists(path));  /* the original folder untouched */
    /* the catalog gone: score and report answer to the folder's copy */
    snprintf(cmd, sizeof cmd, "mv '%s/cat.fits' '%s/cat.away'", dir, dir);
    assert_int_equal(system(cmd), 0);
    snprintf(args, sizeof args, "score '%s/run_v1' '%s/cat.away' -o '%s/scored' --top 0", dir, dir, dir);
    if ((rc = tu_run(args, out, sizeof out, err, sizeof err))) fail_msg("score: exit %d: %s", rc, err);
    if (!strstr(err, "cat.fits is not there: the run folder's copy of it (catalog.fits) stands in")) fail_msg("%s", err);
    snprintf(args, sizeof args, "-q report '%s/run_v1'", dir);
    if ((rc = tu_run(args, out, sizeof out, err, sizeof err))) fail_msg("report without the catalog: exit %d: %s", rc, err);
    /* a stage run again there keeps the manifest's word for the catalog: it wrote the checksum of a file
     * not there (0), and the next report found nothing to stand in for */
    snprintf(args, sizeof args, "-q report '%s/run_v1' --set score.context_weight=0.2", dir);
    if ((rc = tu_run(args, out, sizeof out, err, sizeof err))) fail_msg("report, a setting changed: exit %d: %s", rc, err);
    snprintf(args, sizeof args, "-q report '%s/run_v1'", dir);
    if ((rc = tu_run(args, out, sizeof out, err, sizeof err))) fail_msg("report after it: exit %d: %s", rc, err);
    /* a change the folder's copy cannot answer (how the catalog is read): the catalog is named */
    snprintf(args, sizeof args, "-q report '%s/run_v1' --set catalog.missing=impute", dir);
    assert_int_equal(tu_run(args, out, sizeof out, err, sizeof err), 2);
    if (!strstr(err, "cat.fits: cannot open the file")) fail_msg("%s", err);
    if (strstr(err, "stands in") || !strstr(err, "catalog.fits) cannot stand in: this config reads the catalog"))
        fail_msg("the folder's copy said to stand in where it cannot: %s", err);
    tu_rmtree(dir);
    free(dir);
    free(conf);
}

/* A labels file kept inside the run folder moves with it: the copy's report
 * learns from the copy's labels (written as ./out/../out/labels.csv, a path
 * that names the folder only once taken apart), even with the original gone;
 * a labels file outside the folder stays where it is. */
static void test_moved_run_folder_labels(void **state)
{
    (void)state;
    char *dir = tu_tmpdir(), cmd[8800], args[8800], *conf = small_config(dir, "labels: ./out/../out/labels.csv\n");
    snprintf(cmd, sizeof cmd, "mkdir -p '%s/out' && printf 'id,label\\n1,1\\n2,1\\n3,0\\n' > '%s/out/labels.csv'",
             dir, dir);
    assert_int_equal(system(cmd), 0);
    snprintf(args, sizeof args, "-q run '%s' --top 0", conf);
    int rc = tu_run(args, out, sizeof out, err, sizeof err);
    if (rc) fail_msg("run: exit %d: %s", rc, err);
    snprintf(cmd, sizeof cmd, "mv '%s/out' '%s/run_v1' && printf 'id,label\\n4,1\\n' > '%s/run_v1/labels.csv'", dir,
             dir, dir);
    assert_int_equal(system(cmd), 0);
    snprintf(args, sizeof args, "-q report '%s/run_v1'", dir);
    if ((rc = tu_run(args, out, sizeof out, err, sizeof err))) fail_msg("report: exit %d: %s", rc, err);
    char want[4400];
    snprintf(cmd, sizeof cmd, "grep -qF 'learn: 1 labels from %s/run_v1/labels.csv' '%s/run_v1/oddsky.log'", dir, dir);
    if (system(cmd)) fail_msg("the copy's report did not learn from its own labels: %s", cmd);
    snprintf(want, sizeof want, "%s/out", dir);
    assert_false(tu_file_exists(want));  /* nothing written where the folder was */
    /* labels beside the config, outside the folder: read where they are */
    snprintf(cmd, sizeof cmd, "printf 'id,label\\n5,1\\n6,1\\n' > '%s/mine.csv'", dir);
    assert_int_equal(system(cmd), 0);
    snprintf(args, sizeof args, "-q report '%s/run_v1' --set labels=%s/mine.csv", dir, dir);
    if ((rc = tu_run(args, out, sizeof out, err, sizeof err))) fail_msg("report: exit %d: %s", rc, err);
    snprintf(cmd, sizeof cmd, "grep -qF 'learn: 2 labels from %s/mine.csv' '%s/run_v1/oddsky.log'", dir, dir);
    if (system(cmd)) fail_msg("labels outside the folder not read where they are: %s", cmd);
    tu_rmtree(dir);
    free(dir);
    free(conf);
}

/* An input in the run folder under a name the run writes (`output: .`
 * beside a catalog.fits, or the astronomer's own config.yaml there) is
 * refused before anything is written: the catalog once became the run's
 * copy of it.  The run folder's own config.yaml may be rerun.  `oddsky
 * score` writes neither into the run folder nor over its catalog. */
static void test_inputs_in_the_run_folder(void **state)
{
    (void)state;
    char *dir = tu_tmpdir(), args[8800], path[4400];
    bundled_copy("mock_survey.fits", dir, "catalog.fits");
    const char *body = "catalog:\n  path: %s\n  id: ID\n  features: [U, G, R, REDSHIFT]\n"
                       "forest:\n  n_trees: 10\nisolation:\n  n_trees: 20\noutput: .\nseed: 3\n";
    char *conf = conf_at(dir, "mine.yaml", body, "catalog.fits");
    snprintf(args, sizeof args, "-q run '%s' --top 0", conf);
    assert_int_equal(tu_run(args, out, sizeof out, err, sizeof err), 2);
    if (!strstr(err, "catalog.fits: the catalog is in the run folder")) fail_msg("%s", err);
    snprintf(args, sizeof args, "cmp -s '%s/catalogs/mock_survey.fits' '%s/catalog.fits'", getenv("ODDSKY_SOURCE_DIR"),
             dir);
    assert_int_equal(system(args), 0);  /* the catalog untouched */
    snprintf(path, sizeof path, "%s/oddsky.log", dir);
    assert_false(tu_file_exists(path));  /* nothing written */
    /* the catalog renamed: the run goes on; then the astronomer's config.yaml there is refused */
    snprintf(args, sizeof args, "mv '%s/catalog.fits' '%s/cat.fits'", dir, dir);
    assert_int_equal(system(args), 0);
    free(conf);
    conf = conf_at(dir, "config.yaml", body, "cat.fits");
    snprintf(args, sizeof args, "-q run '%s' --top 0", conf);
    assert_int_equal(tu_run(args, out, sizeof out, err, sizeof err), 2);
    if (!strstr(err, "config.yaml: the config is in the run folder")) fail_msg("%s", err);
    free(conf);
    conf = conf_at(dir, "mine.yaml", body, "cat.fits");
    snprintf(args, sizeof args, "-q run '%s' --top 0", conf);
    int rc = tu_run(args, out, sizeof out, err, sizeof err);
    if (rc) fail_msg("run: exit %d: %s", rc, err);
    snprintf(args, sizeof args, "-q run '%s/config.yaml' --top 0", dir);  /* the run's own record */
    if ((rc = tu_run(args, out, sizeof out, err, sizeof err))) fail_msg("rerun of config.yaml: exit %d: %s", rc, err);
    /* oddsky score: its exports neither over the run's own list nor over the catalog it scores */
    snprintf(args, sizeof args, "score '%s' '%s/cat.fits' -o '%s' --top 0", dir, dir, dir);
    assert_int_equal(tu_run(args, out, sizeof out, err, sizeof err), 2);
    if (!strstr(err, "-o is the run folder itself")) fail_msg("%s", err);
    snprintf(args, sizeof args, "mkdir '%s/sc' && cp '%s/cat.fits' '%s/sc/anomalies.fits'", dir, dir, dir);
    assert_int_equal(system(args), 0);
    snprintf(args, sizeof args, "score '%s' '%s/sc/anomalies.fits' -o '%s/sc' --top 0", dir, dir, dir);
    assert_int_equal(tu_run(args, out, sizeof out, err, sizeof err), 2);
    if (!strstr(err, "anomalies.fits: the catalog to score is in the output folder")) fail_msg("%s", err);
    snprintf(args, sizeof args, "cmp -s '%s/cat.fits' '%s/sc/anomalies.fits'", dir, dir);
    assert_int_equal(system(args), 0);
    tu_rmtree(dir);
    free(dir);
    free(conf);
}

/* A catalog of fewer objects than the neighbour lists ask for: the lists
 * hold them all, with a warning; a leaf size that leaves no split is refused. */
static void test_small_catalog_settings(void **state)
{
    (void)state;
    char *dir = tu_tmpdir(), args[8800];
    char *conf = conf_at(dir, "s.yaml", "catalog:\n  path: \"%s/catalogs/mock_survey.fits[CATALOG][ID <= 30]\"\n"
                         "  id: ID\n  features: [U, G, R, REDSHIFT]\nforest:\n  n_trees: 10\noutput: out\n",
                         getenv("ODDSKY_SOURCE_DIR"));
    snprintf(args, sizeof args, "-q run '%s' --top 0 --set local.lof_k=40", conf);
    int rc = tu_run(args, out, sizeof out, err, sizeof err);
    if (rc) fail_msg("run: exit %d: %s", rc, err);
    if (!strstr(err, "local: max(local.k, local.lof_k) = 40 is more than the 29 other objects")) fail_msg("%s", err);
    snprintf(args, sizeof args, "-q run '%s' --top 0 --set forest.min_samples_leaf=31", conf);
    assert_int_equal(tu_run(args, out, sizeof out, err, sizeof err), 2);
    if (!strstr(err, "s.yaml: forest.min_samples_leaf = 31 leaves no split in the 60 rows")) fail_msg("%s", err);
    tu_rmtree(dir);
    free(dir);
    free(conf);
}

/* Outputs that cannot be written: a one-line error, exit 2, no ranked list
 * and no temporary; the inputs are untouched. */
static void test_output_cannot_be_written(void **state)
{
    (void)state;
    char *dir = tu_tmpdir(), *conf = small_config(dir, NULL), cmd[8400];
    const char *bin = getenv("ODDSKY_BIN");
    /* a file-size limit makes writes fail the way a full disk does */
    snprintf(cmd, sizeof cmd, "cd '%s' && (ulimit -f 400; trap '' XFSZ; '%s' -q run '%s' --top 0) > o.txt 2> e.txt",
             dir, bin, conf);
    int st = system(cmd);
    assert_int_equal(WIFEXITED(st) ? WEXITSTATUS(st) : -1, 2);
    char *e = tu_path(dir, "e.txt");
    FILE *f = fopen(e, "r");
    char line[2048] = "";
    assert_non_null(fgets(line, sizeof line, f));
    assert_non_null(strstr(line, "cannot write"));
    assert_null(fgets(line, sizeof line, f));  /* one line */
    fclose(f);
    snprintf(cmd, sizeof cmd, "ls -a '%s/out' | grep -q 'tmp-\\|anomalies'", dir);
    assert_int_not_equal(system(cmd), 0);
    /* a temporary of a process that is gone is removed by the next run */
    snprintf(cmd, sizeof cmd, "%s/out/weirdness.fits.tmp-%d", dir, 0x7ffffffe);
    f = fopen(cmd, "w");
    fclose(f);
    snprintf(cmd, sizeof cmd, "-q run '%s' --top 0", conf);
    assert_int_equal(tu_run(cmd, out, sizeof out, err, sizeof err), 0);
    snprintf(cmd, sizeof cmd, "ls -a '%s/out' | grep -q 'tmp-'", dir);
    assert_int_not_equal(system(cmd), 0);
    free(e);
    tu_rmtree(dir);
    free(dir);
    free(conf);
}

/* ================================================================ the ranking */

typedef struct ranked {
    long n;
    double *score, *det[6];       /* ANOMALY_SCORE; ISOLATION, WEIRDNESS, KNN_DIST, LOF, LOCAL, CONTEXT */
    long long *id;
    char **why, **nearest, **anomaly, **driven;
} ranked;

static char **read_strings(fitsfile *f, const char *col, long n, int *status)
{
    int c = 0, tc;
    long rep, w;
    fits_get_colnum(f, CASEINSEN, (char *)col, &c, status);
    fits_get_coltype(f, c, &tc, &rep, &w, status);
    char **v = calloc((size_t)n, sizeof *v);
    for (long i = 0; i < n; i++) v[i] = calloc((size_t)w + 1, 1);
    fits_read_col(f, TSTRING, c, 1, 1, n, NULL, v, NULL, status);
    return v;
}

static ranked read_ranked(const char *path)
{
    ranked r = {0};
    fitsfile *f;
    int status = 0, c;
    fits_open_table(&f, path, READONLY, &status);
    fits_get_num_rows(f, &r.n, &status);
    const char *dets[] = {"ISOLATION", "WEIRDNESS", "KNN_DIST", "LOF", "LOCAL", "CONTEXT"};
    r.score = malloc((size_t)r.n * sizeof *r.score);
    fits_get_colnum(f, CASEINSEN, "ANOMALY_SCORE", &c, &status);
    fits_read_col(f, TDOUBLE, c, 1, 1, r.n, NULL, r.score, NULL, &status);
    for (int k = 0; k < 6; k++) {
        r.det[k] = malloc((size_t)r.n * sizeof *r.det[k]);
        fits_get_colnum(f, CASEINSEN, (char *)dets[k], &c, &status);
        fits_read_col(f, TDOUBLE, c, 1, 1, r.n, NULL, r.det[k], NULL, &status);
    }
    r.id = malloc((size_t)r.n * sizeof *r.id);
    fits_get_colnum(f, CASEINSEN, "OID", &c, &status);
    fits_read_col(f, TLONGLONG, c, 1, 1, r.n, NULL, r.id, NULL, &status);
    r.why = read_strings(f, "WHY", r.n, &status);
    r.nearest = read_strings(f, "NEAREST", r.n, &status);
    r.anomaly = read_strings(f, "ANOMALY", r.n, &status);
    r.driven = read_strings(f, "DRIVEN_BY", r.n, &status);
    fits_close_file(f, &status);
    assert_int_equal(status, 0);
    return r;
}

static void free_ranked(ranked *r)
{
    for (long i = 0; i < r->n; i++) { free(r->why[i]); free(r->nearest[i]); free(r->anomaly[i]); free(r->driven[i]); }
    free(r->why); free(r->nearest); free(r->anomaly); free(r->driven);
    for (int k = 0; k < 6; k++) free(r->det[k]);
    free(r->score);
    free(r->id);
}

static int cmp_d(const void *a, const void *b)
{
    double x = *(const double *)a, y = *(const double *)b;
    return (x > y) - (x < y);
}

static double median_of(double *v, long n)
{
    qsort(v, (size_t)n, sizeof *v, cmp_d);
    return n % 2 ? v[n / 2] : 0.5 * (v[n / 2 - 1] + v[n / 2]);
}

/* The documented rule, recomputed: (v - median) / (1.4826 MAD) with the
 * median and MAD of ref, clipped at 0; 1.2533 x the mean absolute deviation
 * when the MAD is 0. */
static void robust_z_against(const double *ref, long nr, const double *v, long n, double *z)
{
    double *t = malloc((size_t)nr * sizeof *t);
    memcpy(t, ref, (size_t)nr * sizeof *t);
    double med = median_of(t, nr);
    for (long i = 0; i < nr; i++) t[i] = fabs(ref[i] - med);
    double scale = 1.4826 * median_of(t, nr);
    if (!(scale > 0)) {
        double sum = 0;
        for (long i = 0; i < nr; i++) sum += t[i];  /* in sorted order, as rf_robust_z sums */
        scale = 1.2533 * sum / (double)nr;
        if (!(scale > 0)) scale = 1;  /* every value the same: z is 0 or the raw difference */
    }
    for (long i = 0; i < n; i++) z[i] = v[i] > med ? (v[i] - med) / scale : 0;
    free(t);
}

static void robust_z_clipped(const double *s, long n, double *z)
{
    robust_z_against(s, n, s, n, z);
}

/* The same for the weirdness: an object good in no tree (W = 1) is left
 * out of the median and MAD, and its z is 0. */
static void robust_z_weirdness(const double *w, long n, double *z)
{
    double *ref = malloc((size_t)n * sizeof *ref);
    long m = 0;
    for (long i = 0; i < n; i++)
        if (w[i] < 1) ref[m++] = w[i];
    if (m) robust_z_against(ref, m, w, n, z);
    for (long i = 0; i < n; i++)
        if (!m || w[i] >= 1) z[i] = 0;
    free(ref);
}

/* The default: isolation, weirdness, local x score.local_weight (auto: 1
 * up to 1,000 objects, sqrt(1000 / N) above, 0.5 from 4,000 on), context x
 * 0.1 (score.context_weight); maximum.  Each detector's weighted, clipped z
 * into zk[k] (malloc'd), their maximum into best (zeroed). */
static void default_rule(const ranked *r, double *zk[4], double *best)
{
    double wl = sqrt(1000.0 / (double)r->n);
    const double wt[4] = {1, 1, wl > 1 ? 1 : wl < 0.5 ? 0.5 : wl, 0.1};
    const int col[4] = {0, 1, 4, 5};
    for (int k = 0; k < 4; k++) {
        zk[k] = malloc((size_t)r->n * sizeof *zk[k]);
        if (k == 1) robust_z_weirdness(r->det[col[k]], r->n, zk[k]);
        else robust_z_clipped(r->det[col[k]], r->n, zk[k]);
        for (long i = 0; i < r->n; i++) {
            zk[k][i] *= wt[k];
            best[i] = zk[k][i] > best[i] ? zk[k][i] : best[i];
        }
    }
}

/* Discrete features: a real row and its synthetic twin share every leaf, so
 * many objects are good in no tree (W = 1).  Their weirdness gives the
 * default score no evidence (z 0) and the others' set its scale. */
static void test_weirdness_without_evidence(void **state)
{
    (void)state;
    enum { N = 600 };
    char *dir = tu_tmpdir(), *catp = tu_path(dir, "disc.fits");
    fitsfile *f = NULL;
    int status = 0;
    char *tt[] = {"ID", "OID", "A", "B", "C", "ANOMALY"}, *tf[] = {"K", "K", "E", "E", "E", "4A"};
    fits_create_file(&f, catp, &status);
    fits_create_tbl(f, BINARY_TBL, N, 6, tt, tf, NULL, "CATALOG", &status);
    for (long i = 0; i < N; i++) {
        long long id[2] = {i + 1, i + 1000001};
        float v[3] = {(float)(i * 7 % 3), (float)(i * 11 % 4), (float)(i % 97 == 5 ? 9 : i * 13 % 5)};
        char *none = "none";
        for (int c = 0; c < 2; c++) fits_write_col(f, TLONGLONG, c + 1, i + 1, 1, 1, &id[c], &status);
        for (int c = 0; c < 3; c++) fits_write_col(f, TFLOAT, c + 3, i + 1, 1, 1, &v[c], &status);
        fits_write_col(f, TSTRING, 6, i + 1, 1, 1, &none, &status);
    }
    fits_close_file(f, &status);
    assert_int_equal(status, 0);
    char *conf = conf_at(dir, "d.yaml", "catalog:\n  path: disc.fits\n  id: ID\n  features: [A, B, C]\n"
                         "  passthrough: [OID, ANOMALY]\nforest:\n  n_trees: 30\noutput: out\nseed: 2\n"), args[4400];
    snprintf(args, sizeof args, "-q run '%s' --top 0", conf);
    int rc = tu_run(args, out, sizeof out, err, sizeof err);
    if (rc) fail_msg("exit %d: %s", rc, err);
    snprintf(args, sizeof args, "%s/out/anomalies.fits", dir);
    ranked r = read_ranked(args);
    long at_one = 0;
    for (long i = 0; i < r.n; i++) at_one += r.det[1][i] >= 1;
    if (at_one < 10) fail_msg("only %ld objects good in no tree", at_one);
    double *zk[4], *best = calloc((size_t)r.n, sizeof *best);
    default_rule(&r, zk, best);
    for (long i = 0; i < r.n; i++) {
        if (fabs(best[i] - r.score[i]) > 1e-9 * (1 + fabs(best[i])))
            fail_msg("row %ld: ANOMALY_SCORE %.17g, the rule gives %.17g (W %.17g)", i, r.score[i], best[i], r.det[1][i]);
        if (r.det[1][i] >= 1 && !strcmp(r.driven[i], "weirdness")) fail_msg("row %ld: driven by a weirdness of 1", i);
    }
    for (int k = 0; k < 4; k++) free(zk[k]);
    free(best);
    free_ranked(&r);
    tu_rmtree(dir);
    free(dir), free(catp), free(conf);
}

/* The default score is the documented combination; WHY names features;
 * NEAREST lists catalog IDs; the planted anomalies reach the top. */
static void test_ranking_columns(void **state)
{
    (void)state;
    char *dir = tu_tmpdir(), *conf = small_config(dir, NULL), args[4400], path[4300];
    snprintf(args, sizeof args, "run '%s' --top 3 --set catalog.id=OID", conf);
    int rc = tu_run(args, out, sizeof out, err, sizeof err);
    if (rc) fail_msg("exit %d: %s", rc, err);
    /* the console prints the IDs in full, even from a floating-point column */
    if (!strstr(out, " 100")) fail_msg("IDs not printed in full:\n%s", out);
    assert_null(strstr(out, "e+06"));
    snprintf(path, sizeof path, "%s/out/anomalies.fits", dir);
    ranked r = read_ranked(path);
    assert_int_equal(r.n, 5000);
    double *z = malloc((size_t)r.n * sizeof *z), *best = calloc((size_t)r.n, sizeof *best);
    /* LOCAL: sqrt of the kNN distance's and LOF's clipped robust z */
    double *zn = malloc((size_t)r.n * sizeof *zn), *zl = malloc((size_t)r.n * sizeof *zl);
    robust_z_clipped(r.det[2], r.n, zn);
    robust_z_clipped(r.det[3], r.n, zl);
    for (long i = 0; i < r.n; i++)
        if (fabs(sqrt(zn[i] * zl[i]) - r.det[4][i]) > 1e-12 * (1 + r.det[4][i]))
            fail_msg("row %ld: LOCAL %.17g, sqrt(z(knn) z(lof)) %.17g", i, r.det[4][i], sqrt(zn[i] * zl[i]));
    free(zn);
    free(zl);
    double *zk[4];
    default_rule(&r, zk, best);
    /* DRIVEN_BY names a detector whose weighted z is the maximum ("none" when all are 0) */
    const char *dname[] = {"isolation", "weirdness", "local", "context"};
    for (long i = 0; i < r.n; i++) {
        int k = 0;
        while (k < 4 && strcmp(r.driven[i], dname[k])) k++;
        if (k == 4 ? !(best[i] == 0 && !strcmp(r.driven[i], "none")) : fabs(zk[k][i] - best[i]) > 1e-9 * (1 + best[i]))
            fail_msg("row %ld: DRIVEN_BY %s, z = %g / %g / %g / %g", i, r.driven[i], zk[0][i], zk[1][i], zk[2][i],
                     zk[3][i]);
    }
    for (int k = 0; k < 4; k++) free(zk[k]);
    int planted = 0;
    for (long i = 0; i < r.n; i++) {
        if (fabs(best[i] - r.score[i]) > 1e-9 * (1 + fabs(best[i])))
            fail_msg("row %ld: ANOMALY_SCORE %.17g, the rule gives %.17g", i, r.score[i], best[i]);
        if (i < 50) planted += strcmp(r.anomaly[i], "none") != 0;
        /* WHY: three features of the config, each with a signed deviation */
        int nf = 0;
        for (char *tok = strtok(r.why[i], ";"); tok; tok = strtok(NULL, ";"), nf++) {
            char name[32];
            double dev;
            if (sscanf(tok, " %31s %lf", name, &dev) != 2) fail_msg("row %ld: WHY '%s'", i, tok);
            char word[40];
            snprintf(word, sizeof word, " %s ", name);
            if (!strstr(" UG GR RI IZ R REDSHIFT ", word)) fail_msg("row %ld: WHY names '%s'", i, name);
        }
        assert_int_equal(nf, 3);
        /* NEAREST: IDs of other objects (all above 10^6 here), never row numbers */
        int nn = 0;
        for (char *tok = strtok(r.nearest[i], ";"); tok; tok = strtok(NULL, ";"), nn++) {
            long long v = atoll(tok);
            if (v <= 1000000 || v > 1005000 || v == r.id[i]) fail_msg("row %ld: NEAREST holds %s", i, tok);
        }
        assert_true(nn >= 1);
    }
    if (planted < 20) fail_msg("only %d of the 40 planted anomalies in the top 50", planted);
    free_ranked(&r);
    /* one detector, selected: the ranking is that detector's */
    snprintf(args, sizeof args, "-q run '%s' --top 0 --set catalog.id=OID --set 'score.detectors=[lof]' "
             "--set score.combine=mean", conf);
    assert_int_equal(tu_run(args, out, sizeof out, err, sizeof err), 0);
    r = read_ranked(path);
    for (long i = 1; i < r.n; i++)
        if (r.det[3][i] > r.det[3][i - 1] && r.score[i - 1] > 0) fail_msg("rank %ld: LOF out of order", i + 1);
    free_ranked(&r);
    /* neighbours among a reference sample: the same with 1 and 2 threads */
    for (int th = 1; th <= 2; th++) {
        snprintf(args, sizeof args, "-q run '%s' --top 0 --set local.reference=500 --set threads=%d --set output=ref%d",
                 conf, th, th);
        assert_int_equal(tu_run(args, out, sizeof out, err, sizeof err), 0);
    }
    char a[4300], b[4300];
    snprintf(a, sizeof a, "%s/ref1/local.fits", dir);
    snprintf(b, sizeof b, "%s/ref2/local.fits", dir);
    tu_same_table(a, b);
    free(z);
    free(best);
    tu_rmtree(dir);
    free(dir);
    free(conf);
}

/* Every value of column col of the FITS table at path is finite. */
static void all_finite(const char *path, const char *col)
{
    fitsfile *f;
    int status = 0, c;
    long n = 0;
    fits_open_table(&f, path, READONLY, &status);
    fits_get_num_rows(f, &n, &status);
    fits_get_colnum(f, CASEINSEN, (char *)col, &c, &status);
    double *v = malloc((size_t)(n ? n : 1) * sizeof *v);
    fits_read_col(f, TDOUBLE, c, 1, 1, n, NULL, v, NULL, &status);
    fits_close_file(f, &status);
    assert_int_equal(status, 0);
    assert_true(n > 0);
    for (long i = 0; i < n; i++)
        if (!isfinite(v[i])) fail_msg("%s: %s row %ld is %g", path, col, i + 1, v[i]);
    free(v);
}

/* A constant feature and a forest that cannot tell real from synthetic are
 * said, even with -q given after the command; a constant feature and
 * extreme values leave every score finite. */
static void test_degenerate_inputs_warned(void **state)
{
    (void)state;
    const char *src = getenv("ODDSKY_SOURCE_DIR");
    char *dir = tu_tmpdir(), *conf = tu_path(dir, "deg.yaml"), args[4400];
    FILE *f = fopen(conf, "w");
    /* C1 from a column, not a constant: CFITSIO's parser leaks a constant
     * expression's node (272 bytes), which LeakSanitizer would report */
    fprintf(f, "catalog:\n  path: \"%s/catalogs/mock_survey.fits[CATALOG][col *; C1 = 0.0 * R + 1.0; C2 = 0.0 * R + 2.0; "
               "C3 = 0.0 * R + 3.0; C4 = 0.0 * R + 4.0; C5 = 0.0 * R + 5.0; C6 = 0.0 * R + 6.0; C7 = 0.0 * R + 7.0]\"\n"
               "  id: ID\n  features: [RA, DEC, C1, C2, C3, C4, C5, C6, C7]\nforest:\n  n_trees: 40\noutput: out\nseed: 5\n",
            src);
    fclose(f);
    /* a feature null in every tenth row: a warning, and dropped.csv lists them */
    char *conf2 = tu_path(dir, "nulls.yaml"), path[4300];
    f = fopen(conf2, "w");
    fprintf(f, "catalog:\n  path: \"%s/catalogs/mock_survey.fits[CATALOG][col *; NF = (ID %% 10 == 0) ? #NULL : R]\"\n"
               "  id: ID\n  features: [U, G, NF]\nforest:\n  n_trees: 20\noutput: out2\nseed: 5\n", src);
    fclose(f);
    snprintf(args, sizeof args, "run '%s' -q --top 0", conf2);
    assert_int_equal(tu_run(args, out, sizeof out, err, sizeof err), 0);
    if (!strstr(err, "500 of 5000 rows (10%) dropped") || !strstr(err, "dropped.csv")) fail_msg("no drop warning: %s", err);
    snprintf(path, sizeof path, "%s/out2/dropped.csv", dir);
    f = fopen(path, "r");
    assert_non_null(f);
    char line[256];
    assert_non_null(fgets(line, sizeof line, f));
    assert_string_equal(line, "row,ID,missing\n");
    assert_non_null(fgets(line, sizeof line, f));
    assert_string_equal(line, "10,10,NF\n");
    int lines = 2;
    while (fgets(line, sizeof line, f)) lines++;
    assert_int_equal(lines, 501);
    fclose(f);
    free(conf2);
    f = fopen(conf, "a");
    fclose(f);
    snprintf(args, sizeof args, "run '%s' -q --top 0", conf);
    int rc = tu_run(args, out, sizeof out, err, sizeof err);
    if (rc) fail_msg("exit %d: %s", rc, err);
    if (!strstr(err, "warning") || !strstr(err, "feature C1 is 1 for all 5000 objects"))
        fail_msg("no constant-feature warning: %s", err);
    /* five named on the console, the rest summed up */
    if (!strstr(err, "feature C5 is 5 for all") || strstr(err, "feature C6 is") ||
        !strstr(err, "2 more features have one value for all objects, from C6 on — the run log names each"))
        fail_msg("constant features not capped at five: %s", err);
    if (!strstr(err, "barely tells the catalog from its shuffled copy")) fail_msg("no weak-forest warning: %s", err);
    snprintf(path, sizeof path, "%s/out/anomalies.fits", dir);
    all_finite(path, "CONTEXT");  /* the constant feature's gaps are all 0: it adds nothing */
    /* one object in a thousand 10^37 in one feature: every score stays finite */
    char *conf3 = conf_at(dir, "big.yaml",
                          "catalog:\n  path: \"%s/catalogs/mock_survey.fits[CATALOG][col *; BIG = (ID %% 1000 == 0) ? "
                          "1e37 : R]\"\n  id: ID\n  features: [U, G, BIG]\nforest:\n  n_trees: 20\n"
                          "score:\n  detectors: [isolation, weirdness, local, context, heap]\noutput: out3\nseed: 5\n",
                          src);
    snprintf(args, sizeof args, "run '%s' -q --top 0", conf3);
    if ((rc = tu_run(args, out, sizeof out, err, sizeof err))) fail_msg("exit %d: %s", rc, err);
    snprintf(path, sizeof path, "%s/out3/anomalies.fits", dir);
    all_finite(path, "CONTEXT");
    all_finite(path, "HEAP");
    all_finite(path, "ANOMALY_SCORE");
    free(conf3);
    /* 20 objects with every stage on: fewer training rows than the MLP's
     * default batch (64) is a note, not an error about a key never set; the
     * ID listed as a feature is a warning */
    char *conf4 = conf_at(dir, "small.yaml",
                          "catalog:\n  path: \"%s/catalogs/mock_survey.fits[CATALOG][ID <= 20]\"\n  id: ID\n"
                          "  features: [U, G, R, id]\nforest:\n  n_trees: 20\nmlp:\n  enabled: true\n  max_epochs: 3\n"
                          "similarity:\n  enabled: true\n"
                          "score:\n  detectors: [isolation, weirdness, local, context, heap, mlp]\noutput: out4\nseed: 5\n",
                          src);
    snprintf(args, sizeof args, "run '%s' --top 0", conf4);
    if ((rc = tu_run(args, out, sizeof out, err, sizeof err))) fail_msg("exit %d: %s", rc, err);
    if (!strstr(err, "mlp: 36 training rows, fewer than mlp.batch = 64")) fail_msg("no batch note: %s", err);
    if (!strstr(err, "small.yaml: ID is catalog.id and a feature too")) fail_msg("no ID-feature warning: %s", err);
    snprintf(path, sizeof path, "%s/out4/anomalies.fits", dir);
    all_finite(path, "ANOMALY_SCORE");
    free(conf4);
    tu_rmtree(dir);
    free(dir);
    free(conf);
}

/* Without an ID column the row number is the ID: one ROW column, and the
 * outputs load in astropy. */
static void test_row_number_ids(void **state)
{
    (void)state;
    char *dir = tu_tmpdir(), *conf = small_config(dir, NULL), args[4400];
    snprintf(args, sizeof args, "-q run '%s' --top 0 --set 'catalog.id=\"\"'", conf);
    assert_int_equal(tu_run(args, out, sizeof out, err, sizeof err), 0);
    if (system("/usr/bin/python3 -c 'import astropy' >/dev/null 2>&1") == 0) {
        char cmd[8400];
        snprintf(cmd, sizeof cmd,
                 "/usr/bin/python3 -c \"from astropy.table import Table; import sys; "
                 "[sys.exit(1) for f in ('catalog', 'anomalies') "
                 "if len(set(Table.read('%s/out/' + f + '.fits').colnames)) != len(Table.read('%s/out/' + f + '.fits').colnames)]\"",
                 dir, dir);
        if (system(cmd) != 0) fail_msg("astropy cannot read the outputs of a run without an ID column");
    }
    tu_rmtree(dir);
    free(dir);
    free(conf);
}

static void test_bad_input_gives_exit_2(void **state)
{
    (void)state;
    char *dir = tu_tmpdir(), *conf = small_config(dir, NULL), args[2048];
    snprintf(args, sizeof args, "run '%s' --set 'catalog.features=[UG, NOPE]'", conf);
    assert_int_equal(tu_run(args, out, sizeof out, err, sizeof err), 2);
    assert_non_null(strstr(err, "no feature column named 'NOPE'"));
    snprintf(args, sizeof args, "check '%s' --set forest.n_tree=3", conf);
    assert_int_equal(tu_run(args, out, sizeof out, err, sizeof err), 2);
    assert_non_null(strstr(err, "did you mean"));
    /* what run would refuse, check refuses, before anything runs; the
     * error is printed once, even with -q */
    const char *refused[] = {"forest.max_features=abc", "export.rank_by=mlp --set mlp.enabled=false",
                             "export.rank_by=lens", "'catalog.features=[UG, GR, UG]'",
                             "similarity.enabled=false --set 'score.detectors=[forest_knn]'",
                             "similarity.enabled=false --set similarity.dense=true"};
    for (size_t k = 0; k < sizeof refused / sizeof *refused; k++) {
        snprintf(args, sizeof args, "-q check '%s' --set %s", conf, refused[k]);
        assert_int_equal(tu_run(args, out, sizeof out, err, sizeof err), 2);
        char *first = strstr(err, "oddsky: error:");
        assert_non_null(first);
        assert_null(strstr(first + 1, "oddsky: error:"));
    }
    /* check opens the catalog: a wrong column or path is found without a run */
    snprintf(args, sizeof args, "check '%s' --set 'catalog.features=[UG, NOPE]'", conf);
    assert_int_equal(tu_run(args, out, sizeof out, err, sizeof err), 2);
    assert_non_null(strstr(err, "no feature column named 'NOPE'"));
    snprintf(args, sizeof args, "check '%s' --set catalog.path=%s/none.csv", conf, dir);
    assert_int_equal(tu_run(args, out, sizeof out, err, sizeof err), 2);
    snprintf(args, sizeof args, "check '%s' --set catalog.id=NOPE", conf);
    assert_int_equal(tu_run(args, out, sizeof out, err, sizeof err), 2);
    snprintf(args, sizeof args, "check '%s'", conf);
    assert_int_equal(tu_run(args, out, sizeof out, err, sizeof err), 0);
    assert_non_null(strstr(out, "rows, 6 features found"));
    /* check --values reads every value as the run's ingest would: its
     * refusals and warnings, and nothing written */
    snprintf(args, sizeof args, "check '%s' --values --set output=%s/chk", conf, dir);
    assert_int_equal(tu_run(args, out, sizeof out, err, sizeof err), 0);
    if (!strstr(out, "rows to rank, 6 features; 0 rows dropped")) fail_msg("%s", out);
    snprintf(args, sizeof args, "check '%s' --values --set 'catalog.path=%s/catalogs/mock_survey.fits[CATALOG][col *; "
             "UG = U - G; GR = G - R; RI = R - I; IZ = I - Z; K = 3]' --set 'catalog.features=[UG, GR, K]'", conf,
             getenv("ODDSKY_SOURCE_DIR"));
    assert_int_equal(tu_run(args, out, sizeof out, err, sizeof err), 0);
    if (!strstr(err, "feature K is 3 for all")) fail_msg("%s", err);
    snprintf(args, sizeof args, "run '%s' --values", conf);
    assert_int_equal(tu_run(args, out, sizeof out, err, sizeof err), 2);
    snprintf(args, sizeof args, "-q run '%s' --set 'catalog.features=[UG, NOPE]'", conf);
    assert_int_equal(tu_run(args, out, sizeof out, err, sizeof err), 2);
    assert_null(strstr(strstr(err, "NOPE") + 1, "oddsky: error:"));  /* printed once */
    snprintf(args, sizeof args, "run '%s' --print-config --set seed=9", conf);
    assert_int_equal(tu_run(args, out, sizeof out, err, sizeof err), 0);
    assert_non_null(strstr(out, "seed: 9"));
    assert_non_null(strstr(out, "n_trees: 40"));
    snprintf(args, sizeof args, "run '%s/nothere.yaml'", dir);
    assert_int_equal(tu_run(args, out, sizeof out, err, sizeof err), 2);
    /* a failed ingest leaves no ranked list */
    char path[4096];
    snprintf(path, sizeof path, "%s/out/anomalies.fits", dir);
    assert_false(tu_file_exists(path));
    /* too few objects: refused before catalog.fits is written, and by check --values */
    for (int k = 0; k < 2; k++) {
        snprintf(args, sizeof args, "%s '%s'%s --set 'catalog.path=%s/catalogs/mock_survey.fits[CATALOG][col *; "
                 "UG = U - G; GR = G - R; RI = R - I; IZ = I - Z][ID <= 5]'", k ? "check" : "-q run", conf,
                 k ? " --values" : "", getenv("ODDSKY_SOURCE_DIR"));
        assert_int_equal(tu_run(args, out, sizeof out, err, sizeof err), 2);
        if (!strstr(err, "only 5 objects left to score")) fail_msg("%s", err);
    }
    snprintf(path, sizeof path, "%s/out/catalog.fits", dir);
    assert_false(tu_file_exists(path));
    snprintf(path, sizeof path, "%s/chk", dir);  /* check --values wrote nothing */
    assert_false(tu_file_exists(path));
    tu_rmtree(dir);
    free(dir);
    free(conf);
}

static void test_batch_with_a_failing_run(void **state)
{
    (void)state;
    char *dir = tu_tmpdir(), *conf = small_config(dir, NULL);
    char *b = tu_path(dir, "batch.yaml");
    FILE *f = fopen(b, "w");
    fprintf(f, "jobs: 2\nruns:\n  - config: run.yaml\n    name: good\n"
               "  - config: run.yaml\n    name: bad\n    set: {catalog.path: missing.fits}\n"
               "  - config: run.yaml\n    name: good2\n    set: {seed: 6}\n");
    fclose(f);
    char args[2048];
    snprintf(args, sizeof args, "batch '%s'", b);
    int rc = tu_run(args, out, sizeof out, err, sizeof err);
    assert_int_equal(rc, 1);
    assert_non_null(strstr(out, "good "));
    assert_non_null(strstr(out, "FAILED"));
    assert_non_null(strstr(out, "1 of 3 runs failed"));
    assert_non_null(strstr(out, "missing.fits"));  /* the reason, beside FAILED */
    char p[4096];
    snprintf(p, sizeof p, "%s/batch_summary.csv", dir);
    assert_true(tu_file_exists(p));
    snprintf(p, sizeof p, "%s/batch_runs/good2/anomalies.fits", dir);
    assert_true(tu_file_exists(p));
    /* --set reaches every run and wins over the run's own setting */
    snprintf(args, sizeof args, "batch '%s' --set catalog.path=missing2.fits", b);
    assert_int_equal(tu_run(args, out, sizeof out, err, sizeof err), 1);
    assert_non_null(strstr(out, "3 of 3 runs failed"));
    assert_null(strstr(out, "missing.fits"));
    /* an unknown key is refused before anything runs */
    snprintf(args, sizeof args, "batch '%s' --set forest.n_treez=3", b);
    assert_int_equal(tu_run(args, out, sizeof out, err, sizeof err), 2);
    tu_rmtree(dir);
    free(dir);
    free(conf);
    free(b);
}

static void test_lens_demo(void **state)
{
    (void)state;
    const char *src = getenv("ODDSKY_SOURCE_DIR");
    char *dir = tu_tmpdir(), args[4096], cmd[4300];
    bundled_copy("mock_lenses_cutouts.fits", dir, "cut.fits");
    snprintf(args, sizeof args,
             "-q run '%s/configs/lens_demo.yaml' --top 3 --set lens.train_n=800 --set lens.test_n=300 "
             "--set lens.epochs=8 --set forest.n_trees=30 --set mlp.max_epochs=3 --set output='%s/lens' "
             "--set cutouts.path='%s/cut.fits'", src, dir, dir);
    int rc = tu_run(args, out, sizeof out, err, sizeof err);
    if (rc) fail_msg("exit %d: %s", rc, err);
    assert_non_null(strstr(out, "LENS_PROB"));
    snprintf(cmd, sizeof cmd, "grep -q LENSAUC '%s/lens/anomalies.fits' && grep -q 'CONCENTRATION' '%s/lens/forest_0.fits'",
             dir, dir);
    if (system(cmd) != 0) fail_msg("the export lacks the lens evaluation or the forest the morphology features");
    /* the run folder copied on without its cutouts (a laptop): its report
     * still opens, each picture a feature profile, and says why */
    snprintf(cmd, sizeof cmd, "cp -r '%s/lens' '%s/away' && rm '%s/cut.fits'", dir, dir, dir);
    assert_int_equal(system(cmd), 0);
    snprintf(args, sizeof args, "report '%s/away'", dir);
    if ((rc = tu_run(args, out, sizeof out, err, sizeof err))) fail_msg("report without cutouts: exit %d: %s", rc, err);
    if (!strstr(err, "cut.fits is not there: pictures show each object's features instead")) fail_msg("%s", err);
    snprintf(cmd, sizeof cmd, "%s/away/report/index.html", dir);
    assert_true(tu_file_exists(cmd));
    /* a cutout file that is not there: exit 2 naming it */
    snprintf(args, sizeof args, "-q run '%s/configs/lens_demo.yaml' --set cutouts.path=nothere.fits --set output='%s/x'", src, dir);
    assert_int_equal(tu_run(args, out, sizeof out, err, sizeof err), 2);
    assert_non_null(strstr(err, "nothere.fits"));
    /* a template no file matches drops every row: said so, where it was "only 0 objects left to score
     * ... check the filter and catalog.missing" */
    snprintf(args, sizeof args, "-q run '%s/configs/lens_demo.yaml' --set cutouts.layout=dir --set "
             "'cutouts.path=%s/none/{id}_{band}.fits' --set output='%s/x'", src, dir, dir);
    assert_int_equal(tu_run(args, out, sizeof out, err, sizeof err), 2);
    if (!strstr(err, "none/{id}_{band}.fits: none of the 600 catalog rows has a cutout") || strchr(err, '\n') != err + strlen(err) - 1)
        fail_msg("%s", err);
    tu_rmtree(dir);
    free(dir);
}

static void test_sdss_config(void **state)
{
    (void)state;
    char *sdss = tu_shared("catalogs/sdss_dr14_10k.fits");
    if (!sdss) skip();
    const char *src = getenv("ODDSKY_SOURCE_DIR");
    char *dir = tu_tmpdir(), args[4096];
    snprintf(args, sizeof args,
             "-q run '%s/configs/sdss.yaml' --top 5 --set catalog.path='%s[1][col *; ug = u - g; gr = g - r; ri = r - i; iz = i - z]' "
             "--set forest.n_trees=60 --set mlp.max_epochs=5 --set output='%s/sdss'",
             src, sdss, dir);
    int rc = tu_run(args, out, sizeof out, err, sizeof err);
    if (rc) fail_msg("exit %d: %s", rc, err);
    assert_non_null(strstr(out, "of 10000 objects"));
    tu_rmtree(dir);
    free(dir);
    free(sdss);
}

/* ================================================================ labels */

/* A boring label sinks its neighbours, an interesting one lifts them, and
 * the detector that drove a boring label loses weight. */
/* ================================================================ spectra, wide tables */

/* Rows [1, m] of string column `col` of a run's anomalies.fits. */
static void read_column_text(const char *path, const char *col, int m, char (*v)[32])
{
    fitsfile *f;
    int status = 0, cn = 0, anynul = 0;
    fits_open_table(&f, path, READONLY, &status);
    fits_get_colnum(f, CASEINSEN, (char *)col, &cn, &status);
    for (int r = 0; r < m && !status; r++) {
        char *p = v[r];
        fits_read_col(f, TSTRING, cn, r + 1, 1, 1, NULL, &p, &anynul, &status);
    }
    fits_close_file(f, &status);
    assert_int_equal(status, 0);
}

/* The element count of vector column `col` in HDU `hdu` (0: the first table). */
static long repeat_of(const char *path, const char *col)
{
    fitsfile *f;
    int status = 0, cn = 0, type = 0;
    long rep = 0, width = 0;
    fits_open_table(&f, path, READONLY, &status);
    fits_get_colnum(f, CASEINSEN, (char *)col, &cn, &status);
    fits_get_coltype(f, cn, &type, &rep, &width, &status);
    fits_close_file(f, &status);
    return status ? -1 : rep;
}

/* The bundled spectra: the recipe runs, the planted oddities fill the top
 * 20, and 721 grid bins travel as one FEATURES vector. */
static void test_spectra_demo(void **state)
{
    (void)state;
    const char *src = getenv("ODDSKY_SOURCE_DIR");
    char *dir = tu_tmpdir(), args[4096];
    snprintf(args, sizeof args, "-q run '%s/configs/spectra_demo.yaml' --set forest.n_trees=60 "
             "--set 'export.formats=[fits, csv]' --set output='%s/sp'", src, dir);
    int rc = tu_run(args, out, sizeof out, err, sizeof err);
    if (rc) fail_msg("exit %d: %s", rc, err);
    char *an = tu_path(dir, "sp/anomalies.fits"), *csv = tu_path(dir, "sp/anomalies.csv");
    char odd[20][32];
    read_column_text(an, "ODDITY", 20, odd);
    int n_odd = 0;
    for (int r = 0; r < 20; r++) n_odd += strcmp(odd[r], "none") != 0;
    assert_int_equal(n_odd, 16);
    assert_int_equal(repeat_of(an, "FEATURES"), 721);
    char cmd[4300];
    snprintf(cmd, sizeof cmd, "head -1 '%s' | grep -q 'F_\\|FEATURES'", csv);
    if (system(cmd) == 0) fail_msg("the CSV export carries the 721 spectral features");
    /* neighbours on 32 principal components (what large wide runs do by
     * themselves): the oddities still on top */
    snprintf(args, sizeof args, "-q run '%s/configs/spectra_demo.yaml' --set forest.n_trees=60 --set local.components=32 "
             "--set 'export.formats=[fits]' --set output='%s/pc'", src, dir);
    if ((rc = tu_run(args, out, sizeof out, err, sizeof err))) fail_msg("exit %d: %s", rc, err);
    char *pc = tu_path(dir, "pc/anomalies.fits");
    read_column_text(pc, "ODDITY", 20, odd);
    n_odd = 0;
    for (int r = 0; r < 20; r++) n_odd += strcmp(odd[r], "none") != 0;
    assert_true(n_odd >= 15);
    free(pc);
    /* check counts the grid bins as the features they are */
    snprintf(args, sizeof args, "check '%s/configs/spectra_demo.yaml'", src);
    if ((rc = tu_run(args, out, sizeof out, err, sizeof err))) fail_msg("exit %d: %s", rc, err);
    assert_non_null(strstr(out, ": 800 rows, 721 features found, the spectra's grid bins among them;"));
    /* a normalisation window of one bin makes that bin 1 everywhere: the warning says to widen the window, not to
     * drop a grid bin from catalog.features */
    snprintf(args, sizeof args, "run '%s/configs/spectra_demo.yaml' --set forest.n_trees=10 --set spectra.norm_from=5500 "
             "--set spectra.norm_to=5502 --set 'export.formats=[fits]' --set output='%s/one'", src, dir);
    if ((rc = tu_run(args, out, sizeof out, err, sizeof err))) fail_msg("exit %d: %s", rc, err);
    if (!strstr(err, "feature FLUX@5500 is 1 for all 800 objects — it cannot tell them apart; a bin of the "
                     "normalisation window 5500-5502 (spectra.norm_from, norm_to), by whose median each spectrum is "
                     "divided: widen the window"))
        fail_msg("no advice on the one-bin window: %s", err);
    /* a grid beyond the redder spectra's rest frame: those rows dropped, the reason said once and on record */
    snprintf(args, sizeof args, "run '%s/configs/spectra_demo.yaml' --set forest.n_trees=10 --set spectra.grid_start=7000 "
             "--set spectra.grid_stop=8900 --set spectra.norm_from=7000 --set spectra.norm_to=7200 "
             "--set 'export.formats=[fits]' --set output='%s/red'", src, dir);
    if ((rc = tu_run(args, out, sizeof out, err, sizeof err))) fail_msg("exit %d: %s", rc, err);
    if (!strstr(err, "of 800 rows (43%) dropped, 346 for an unusable spectrum (346 with under half the grid's bins "
                     "covered by good pixels) — the ranking covers only the rest"))
        fail_msg("no reason for the dropped spectra: %s", err);
    snprintf(cmd, sizeof cmd, "grep -q '^3,3,\"the spectrum, with under half the grid.s bins covered by good pixels\"$' "
             "'%s/red/dropped.csv'", dir);
    if (system(cmd) != 0) fail_msg("dropped.csv does not say why the spectrum went");
    /* a first run says how long it will take once the data's size is known */
    snprintf(cmd, sizeof cmd, "grep -q 's to go for 800 objects x 721 features' '%s/sp/oddsky.log'", dir);
    if (system(cmd) != 0) fail_msg("no first estimate of the run's time in its log");
    tu_rmtree(dir);
    free(dir), free(an), free(csv);
}

/* WHY in a vector column (a spectrum): a broad bump is one reason, not
 * three of its pixels, so a narrow dip elsewhere is named next.  Row 1 of
 * 300 smooth noisy rows has about +6 over elements 50-110 and -3 at 150. */
static void test_why_stretches(void **state)
{
    (void)state;
    enum { N = 300, D = 200 };
    char *dir = tu_tmpdir(), *fits = tu_path(dir, "v.fits"), *conf = tu_path(dir, "v.yaml"), fn[4200];
    fitsfile *f;
    int status = 0;
    snprintf(fn, sizeof fn, "!%s", fits);
    fits_create_file(&f, fn, &status);
    char *tt[] = {"row_id", "x"}, *tf[] = {"K", "200E"};
    fits_create_tbl(f, BINARY_TBL, 0, 2, tt, tf, NULL, "V", &status);
    double crval = 1000, cdelt = 10;  /* a vector WCS: element k at 1000 + 10 (k - 1) */
    fits_write_key(f, TDOUBLE, "1CRVL2", &crval, NULL, &status);
    fits_write_key(f, TDOUBLE, "1CDLT2", &cdelt, NULL, &status);
    ody_rng rng;
    ody_rng_stream(&rng, 5, 0);
    for (long r = 1; r <= N; r++) {
        long long id = r;
        float x[D];
        double a = ody_rng_uniform(&rng) - 0.5, b = ody_rng_uniform(&rng) - 0.5;
        for (int d = 0; d < D; d++) {
            x[d] = (float)(a * sin(d / 15.0) + b * cos(d / 23.0) + 0.05 * (ody_rng_uniform(&rng) - 0.5));
            if (r == 1 && d >= 50 && d <= 110) x[d] += 6.0f * (float)sin((d - 50) * 3.14159 / 60) + 1.0f;
            if (r == 1 && d == 150) x[d] -= 3.0f;
        }
        fits_write_col(f, TLONGLONG, 1, r, 1, 1, &id, &status);
        fits_write_col(f, TFLOAT, 2, r, 1, D, x, &status);
    }
    fits_close_file(f, &status);
    assert_int_equal(status, 0);
    FILE *c = fopen(conf, "w");
    fprintf(c, "catalog:\n  path: v.fits\n  id: row_id\n  features: [x]\nforest:\n  n_trees: 20\n"
               "export:\n  formats: [csv]\noutput: out\n");
    fclose(c);
    char args[4400], cmd[4400];
    snprintf(args, sizeof args, "-q run '%s' --top 0", conf);
    int rc = tu_run(args, out, sizeof out, err, sizeof err);
    if (rc) fail_msg("exit %d: %s", rc, err);
    /* the bump (elements 51-111: 1500-2100) one reason, its range given; the dip (2500) one element */
    snprintf(cmd, sizeof cmd, "grep -qE '^1,1,.*,x\\[(5[0-9]|[6-9][0-9]|10[0-9]|11[01])\\]@[0-9.]+ \\+[0-9.]+ "
             "\\(1[56][0-9]{2}-(19|20|21)[0-9]{2}\\); x\\[15[01]\\]@25[01]0 -[0-9.]+[;,]' '%s/out/anomalies.csv'", dir);
    if (system(cmd) != 0) {
        snprintf(cmd, sizeof cmd, "head -2 '%s/out/anomalies.csv' >&2", dir);
        if (system(cmd)) {}
        fail_msg("the bump is not one reason, with its range, and the dip named next");
    }
    tu_rmtree(dir);
    free(dir), free(fits), free(conf);
}

/* A table of 1,555 features (over FITS's 999 columns) as one vector column. */
static void test_wide_vector_table(void **state)
{
    (void)state;
    enum { N = 300, D = 1555 };
    char *dir = tu_tmpdir(), *fits = tu_path(dir, "wide.fits"), *conf = tu_path(dir, "w.yaml"), fn[4200];
    fitsfile *f;
    int status = 0;
    snprintf(fn, sizeof fn, "!%s", fits);
    fits_create_file(&f, fn, &status);
    char *tt[] = {"row_id", "x"}, *tf[] = {"K", "1555E"};
    fits_create_tbl(f, BINARY_TBL, 0, 2, tt, tf, NULL, "WIDE", &status);
    float *x = malloc((size_t)N * D * sizeof *x), *got = malloc((size_t)N * D * sizeof *got);
    ody_rng rng;
    ody_rng_stream(&rng, 3, 0);
    for (long r = 1; r <= N; r++) {
        long long id = r;
        float *xr = x + (size_t)(r - 1) * D;
        for (int d = 0; d < D; d++)  /* uniform noise; the first three rows shifted */
            xr[d] = (float)(ody_rng_uniform(&rng) - 0.5) + (r <= 3 ? 1.0f : 0.0f);
        fits_write_col(f, TLONGLONG, 1, r, 1, 1, &id, &status);
        fits_write_col(f, TFLOAT, 2, r, 1, D, xr, &status);
    }
    fits_close_file(f, &status);
    assert_int_equal(status, 0);
    FILE *c = fopen(conf, "w");
    fprintf(c, "catalog:\n  path: wide.fits\n  id: row_id\n  features: [x]\nforest:\n  n_trees: 40\noutput: out\n");
    fclose(c);
    char args[4400];
    snprintf(args, sizeof args, "-q run '%s' --top 3", conf);
    int rc = tu_run(args, out, sizeof out, err, sizeof err);
    if (rc) fail_msg("exit %d: %s", rc, err);
    char *an = tu_path(dir, "out/anomalies.fits");
    assert_int_equal(repeat_of(an, "FEATURES"), D);
    char ids[3][32];
    read_column_text(an, "row_id", 3, ids);
    for (int k = 0; k < 3; k++) assert_true(atoi(ids[k]) >= 1 && atoi(ids[k]) <= 3);  /* the shifted rows on top */
    /* every ranked row carries its own object's features (gathered as written) */
    long long rid[N];
    int anynul;
    fits_open_table(&f, an, READONLY, &status);
    int cid, cfe;
    fits_get_colnum(f, CASEINSEN, "row_id", &cid, &status);
    fits_get_colnum(f, CASEINSEN, "FEATURES", &cfe, &status);
    fits_read_col(f, TLONGLONG, cid, 1, 1, N, NULL, rid, &anynul, &status);
    fits_read_col(f, TFLOAT, cfe, 1, 1, (LONGLONG)N * D, NULL, got, &anynul, &status);
    fits_close_file(f, &status);
    assert_int_equal(status, 0);
    for (int r = 0; r < N; r++) {
        assert_true(rid[r] >= 1 && rid[r] <= N);
        assert_memory_equal(got + (size_t)r * D, x + (size_t)(rid[r] - 1) * D, D * sizeof *x);
    }
    tu_rmtree(dir);
    free(dir), free(fits), free(conf), free(an), free(x), free(got);
}

/* Real spectra (MILES, shared data): 985 stars x 4,300 pixels. */
static void test_miles_config(void **state)
{
    (void)state;
    char *miles = tu_shared("spectra/miles_stars_985.fits");
    if (!miles) skip();
    const char *src = getenv("ODDSKY_SOURCE_DIR");
    char *dir = tu_tmpdir(), args[4096];
    snprintf(args, sizeof args, "-q run '%s/configs/miles.yaml' --top 5 --set catalog.path='%s' "
             "--set forest.n_trees=40 --set 'export.formats=[fits]' --set output='%s/m'", src, miles, dir);
    int rc = tu_run(args, out, sizeof out, err, sizeof err);
    if (rc) fail_msg("exit %d: %s", rc, err);
    assert_non_null(strstr(out, "of 985 objects"));
    char *an = tu_path(dir, "m/anomalies.fits");
    assert_int_equal(repeat_of(an, "FEATURES"), 4300);
    tu_rmtree(dir);
    free(dir), free(an), free(miles);
}

static void test_learn_moves_neighbours(void **state)
{
    (void)state;
    /* four objects on a line; two detectors; object 0 tops detector 0 */
    float Z[] = {0, 0.5f, 5, 5.5f};
    double zd[] = {9, 0, 8, 0, 0, 7, 0, 6};
    lrn_opt o;
    lrn_opt_init(&o);
    o.reweight = 0.5;
    lrn l;
    ody_err e = {0};
    assert_ok(lrn_init(&l, Z, zd, 4, 1, 2, 1.0, &o, &e), e);
    assert_int_equal(lrn_next(&l), 0);
    lrn_add(&l, 0, 0);          /* boring: object 1, its neighbour, sinks below 2 and 3 */
    assert_true(l.score[1] < l.score[3]);
    assert_true(l.w[0] == 0.5 && l.w[1] == 1.0);
    assert_int_equal(lrn_next(&l), 2);
    lrn_add(&l, 2, 1);          /* interesting: its neighbour 3 rises */
    assert_true(l.score[3] > 6.0);
    assert_int_equal(lrn_next(&l), 3);
    lrn_add(&l, 3, 1);
    lrn_add(&l, 1, 0);
    assert_int_equal(lrn_next(&l), (size_t)-1);
    lrn_free(&l);
    /* score.combine: mean — without labels the score is the detectors' mean */
    o.mean = 1;
    assert_ok(lrn_init(&l, Z, zd, 4, 1, 2, 1.0, &o, &e), e);
    assert_true(l.score[0] == 4.5 && l.score[3] == 3.0);
    lrn_free(&l);
}

static void write_file(const char *path, const char *text)
{
    FILE *f = fopen(path, "w");
    assert_non_null(f);
    fputs(text, f);
    fclose(f);
}

/* `oddsky label` and `next` given a run folder keep its labels where serve
 * does (its labels.csv).  `label` keeps a labels file's format: a FITS one
 * stays FITS (it once came back as CSV under its .fits name, which nothing
 * then read), a new .fits one is made FITS; ECSV, which it does not write,
 * is refused and left as it was. */
static void test_label_keeps_the_format(void **state)
{
    (void)state;
    char *dir = tu_tmpdir(), *conf = small_config(dir, NULL), args[16000], path[4400], cmd[17000];
    snprintf(path, sizeof path, "!%s/lab.fits", dir);
    fitsfile *f = NULL;
    int status = 0;
    char *tt[] = {"id", "label"}, *tf[] = {"K", "I"};
    long long ids[] = {1, 2};
    short ys[] = {1, 0};
    fits_create_file(&f, path, &status);
    fits_create_tbl(f, BINARY_TBL, 0, 2, tt, tf, NULL, "L", &status);
    fits_write_col(f, TLONGLONG, 1, 1, 1, 2, ids, &status);
    fits_write_col(f, TSHORT, 2, 1, 1, 2, ys, &status);
    fits_close_file(f, &status);
    assert_int_equal(status, 0);
    snprintf(args, sizeof args, "-q run '%s' --top 0", conf);  /* label checks IDs against the run's catalog */
    int rc = tu_run(args, out, sizeof out, err, sizeof err);
    if (rc) fail_msg("run: exit %d: %s", rc, err);
    /* given the run folder, whose config sets no labels: its labels.csv, where serve keeps them */
    snprintf(args, sizeof args, "-q label '%s/out' 7 1", dir);
    if ((rc = tu_run(args, out, sizeof out, err, sizeof err))) fail_msg("label RUN_DIR: exit %d: %s", rc, err);
    snprintf(path, sizeof path, "%s/out/labels.csv", dir);
    assert_true(tu_file_exists(path));
    snprintf(args, sizeof args, "next '%s/out' -n 1", dir);
    if ((rc = tu_run(args, out, sizeof out, err, sizeof err))) fail_msg("next RUN_DIR: exit %d: %s", rc, err);
    snprintf(args, sizeof args, "grep -q 'learn: 1 labels from %s/out/labels.csv' '%s/out/oddsky.log'", dir, dir);
    assert_int_equal(system(args), 0);
    snprintf(args, sizeof args, "-q label '%s' 5 1 --comment 'a ring?' --set labels=%s/lab.fits", conf, dir);
    if ((rc = tu_run(args, out, sizeof out, err, sizeof err))) fail_msg("label: exit %d: %s", rc, err);
    snprintf(args, sizeof args, "-q label '%s' 2 1 --set labels=%s/new.fits", conf, dir);
    if ((rc = tu_run(args, out, sizeof out, err, sizeof err))) fail_msg("label into a new .fits: exit %d: %s", rc, err);
    snprintf(path, sizeof path, "%s/empty.csv", dir);  /* an empty file, as a missing one: named CSV, made CSV */
    write_file(path, "");
    snprintf(args, sizeof args, "-q label '%s' 3 0 --set labels=%s && grep -qx '3,0,' '%s'", conf, path, path);
    snprintf(cmd, sizeof cmd, "'%s' %s", getenv("ODDSKY_BIN"), args);
    assert_int_equal(system(cmd), 0);
    const char *want[2][3] = {{"1", "2", "5"}, {"2", NULL, NULL}};
    const char *file[] = {"lab.fits", "new.fits"};
    for (int k = 0; k < 2; k++) {
        snprintf(path, sizeof path, "%s/%s", dir, file[k]);
        long n = 0;
        fits_open_table(&f, path, READONLY, &status);  /* FITS, with the labels as written */
        fits_get_num_rows(f, &n, &status);
        for (long r = 0; r < n && !status; r++) {
            char id[32], *p = id, com[32] = "", *q = com;
            short y = -1;
            fits_read_col(f, TSTRING, 1, r + 1, 1, 1, NULL, &p, NULL, &status);
            fits_read_col(f, TSHORT, 2, r + 1, 1, 1, NULL, &y, NULL, &status);
            fits_read_col(f, TSTRING, 3, r + 1, 1, 1, NULL, &q, NULL, &status);
            assert_true(r < 3 && want[k][r]);
            assert_string_equal(id, want[k][r]);
            assert_int_equal(y, k == 0 && r == 1 ? 0 : 1);
            if (k == 0 && r == 2) assert_string_equal(com, "a ring?");
        }
        fits_close_file(f, &status);
        assert_int_equal(status, 0);
        assert_int_equal(n, k == 0 ? 3 : 1);
    }
    snprintf(args, sizeof args, "-q next '%s' -n 2 --ids --set labels=%s/lab.fits", conf, dir);
    if ((rc = tu_run(args, out, sizeof out, err, sizeof err))) fail_msg("next from FITS labels: exit %d: %s", rc, err);
    snprintf(path, sizeof path, "%s/lab.ecsv", dir);
    write_file(path, "# %ECSV 1.0\n# ---\n# datatype:\n# - {name: id, datatype: int64}\n"
                     "# - {name: label, datatype: int64}\nid label\n1 1\n");
    snprintf(args, sizeof args, "label '%s' 5 1 --set labels=%s", conf, path);
    assert_int_equal(tu_run(args, out, sizeof out, err, sizeof err), 2);
    if (!strstr(err, "lab.ecsv: oddsky reads labels from an ECSV file but does not write one")) fail_msg("%s", err);
    snprintf(args, sizeof args, "grep -q '^1 1$' '%s'", path);
    assert_int_equal(system(args), 0);
    tu_rmtree(dir);
    free(dir);
    free(conf);
}

static void test_labels_loop(void **state)
{
    (void)state;
    char *dir = tu_tmpdir(), *conf = small_config(dir, NULL), args[2048], lab[4200];
    /* without `labels:` next says what to add */
    snprintf(args, sizeof args, "next '%s'", conf);
    assert_int_equal(tu_run(args, out, sizeof out, err, sizeof err), 2);
    assert_non_null(strstr(err, "no `labels:` file set"));
    free(conf);
    snprintf(lab, sizeof lab, "%s/labels.csv", dir);
    char extra[4400];
    snprintf(extra, sizeof extra, "labels: %s\n", lab);
    conf = small_config(dir, extra);
    /* --set names the file as well as the config does */
    snprintf(args, sizeof args, "next '%.900s' -n 1 --ids --set labels=%.900s", conf, lab);
    assert_int_equal(tu_run(args, out, sizeof out, err, sizeof err), 0);
    /* no file yet: the unsupervised top, IDs only */
    snprintf(args, sizeof args, "next '%s' -n 3 --ids", conf);
    int rc = tu_run(args, out, sizeof out, err, sizeof err);
    if (rc) fail_msg("exit %d: %s", rc, err);
    char first[64] = "", second[64] = "";
    assert_int_equal(sscanf(out, "%63s %63s", first, second), 2);
    assert_int_equal((int)strspn(out, "0123456789\n"), (int)strlen(out));
    /* label the first boring, with a comment that needs quotes */
    snprintf(args, sizeof args, "label '%s' %s 0 --comment 'trail, bright star'", conf, first);
    assert_int_equal(tu_run(args, out, sizeof out, err, sizeof err), 0);
    char want[256];
    FILE *f = fopen(lab, "r");
    char text[4096] = "";
    size_t nr = fread(text, 1, sizeof text - 1, f);
    fclose(f);
    text[nr] = 0;
    snprintf(want, sizeof want, "id,label,comment\n%s,0,\"trail, bright star\"\n", first);
    assert_string_equal(text, want);
    snprintf(args, sizeof args, "next '%s' -n 3 --ids", conf);
    assert_int_equal(tu_run(args, out, sizeof out, err, sizeof err), 0);
    assert_null(strstr(out, first));
    /* an unknown ID is refused and leaves the file as it was */
    snprintf(args, sizeof args, "label '%s' 987654321 1", conf);
    assert_int_equal(tu_run(args, out, sizeof out, err, sizeof err), 2);
    assert_non_null(strstr(err, "not in the catalog"));
    f = fopen(lab, "r");
    nr = fread(text, 1, sizeof text - 1, f);
    fclose(f);
    text[nr] = 0;
    assert_string_equal(text, want);
    /* a run ranks the interesting first, the boring last, with LABEL */
    snprintf(args, sizeof args, "label '%s' %s 1", conf, second);
    assert_int_equal(tu_run(args, out, sizeof out, err, sizeof err), 0);
    snprintf(args, sizeof args, "-q run '%s' --top 0", conf);
    assert_int_equal(tu_run(args, out, sizeof out, err, sizeof err), 0);
    char path[4300];
    snprintf(path, sizeof path, "%s/out/anomalies.fits", dir);
    fitsfile *ff = NULL;
    int status = 0, cl = 0, ci = 0;
    long nrows = 0;
    short l1 = 0, ln = 0;
    long long id1 = 0, idn = 0;
    fits_open_table(&ff, path, READONLY, &status);
    fits_get_num_rows(ff, &nrows, &status);
    fits_get_colnum(ff, CASEINSEN, "LABEL", &cl, &status);
    fits_get_colnum(ff, CASEINSEN, "ID", &ci, &status);
    fits_read_col(ff, TSHORT, cl, 1, 1, 1, NULL, &l1, NULL, &status);
    fits_read_col(ff, TSHORT, cl, nrows, 1, 1, NULL, &ln, NULL, &status);
    fits_read_col(ff, TLONGLONG, ci, 1, 1, 1, NULL, &id1, NULL, &status);
    fits_read_col(ff, TLONGLONG, ci, nrows, 1, 1, NULL, &idn, NULL, &status);
    fits_close_file(ff, &status);
    assert_int_equal(status, 0);
    assert_int_equal(l1, 1);
    assert_int_equal(ln, 0);
    assert_int_equal(id1, atoll(second));
    assert_int_equal(idn, atoll(first));
    /* hostile labels files: exit 2 naming the file and line */
    struct {
        const char *text, *want;
    } bad[] = {
        {"id,label\n1,1\n2,yes\n", "labels.csv:3: label 'yes' for ID '2'"},
        {"id,label\n1,1\n2,0.5\n", "labels.csv:3: label '0.5' for ID '2'"},
        {"id,label\n1,1\n2,0\n1,0\n", "labels.csv:4: ID '1' labelled 0 here but 1 at"},
        {"id,label\n1,1\n424242,0\n", "labels.csv:3: ID '424242' is not in the catalog"},
        {"ident,verdict\n1,1\n", "no `id` or no `label` column"},
    };
    for (size_t k = 0; k < sizeof bad / sizeof *bad; k++) {
        write_file(lab, bad[k].text);
        snprintf(args, sizeof args, "next '%s'", conf);
        assert_int_equal(tu_run(args, out, sizeof out, err, sizeof err), 2);
        if (!strstr(err, bad[k].want)) fail_msg("case %zu: %s (want %s)", k, err, bad[k].want);
    }
    /* a gzip header alone: refused as a broken file, not read as 2.4 GB
     * (what its missing trailer's bytes happened to claim to CFITSIO) */
    {
        FILE *g = fopen(lab, "wb");
        fwrite("\x1f\x8b\x08\x00\x93", 1, 5, g);
        fclose(g);
        snprintf(args, sizeof args, "next '%s'", conf);
        assert_int_equal(tu_run(args, out, sizeof out, err, sizeof err), 2);
        if (!strstr(err, "labels.csv")) fail_msg("gzip header: %s", err);
    }
    /* a FITS table with the same columns works too */
    {
        char fl[1024], bang[1100];
        snprintf(fl, sizeof fl, "%.1000s/labels.fits", dir);
        snprintf(bang, sizeof bang, "!%s", fl);
        char *tt[] = {"ID", "LABEL"}, *tf[] = {"K", "I"};
        long long fid = atoll(first);
        short fy = 1;
        fitsfile *lf = NULL;
        int st2 = 0;
        fits_create_file(&lf, bang, &st2);
        fits_create_tbl(lf, BINARY_TBL, 0, 2, tt, tf, NULL, "LABELS", &st2);
        fits_write_col(lf, TLONGLONG, 1, 1, 1, 1, &fid, &st2);
        fits_write_col(lf, TSHORT, 2, 1, 1, 1, &fy, &st2);
        fits_close_file(lf, &st2);
        assert_int_equal(st2, 0);
        snprintf(args, sizeof args, "-q run '%s' --top 0 --set labels=%s", conf, fl);
        rc = tu_run(args, out, sizeof out, err, sizeof err);
        if (rc) fail_msg("FITS labels: exit %d: %s", rc, err);
    }
    /* columns wider than any fixed buffer (a 3,000-character comment is
     * valid; a 2,000-character label is not), read whole */
    {
        char *wide = malloc(4000);
        assert_non_null(wide);
        int o = snprintf(wide, 4000, "id,label,comment\n%s,1,", first);
        memset(wide + o, 'c', 3000);
        strcpy(wide + o + 3000, "\n");
        write_file(lab, wide);
        snprintf(args, sizeof args, "next '%s' -n 1 --ids", conf);
        rc = tu_run(args, out, sizeof out, err, sizeof err);
        if (rc) fail_msg("a long comment: exit %d: %s", rc, err);
        snprintf(wide, 4000, "id,label\n%s,1.0\n", first);  /* a spreadsheet's 1.0 is a 1 */
        write_file(lab, wide);
        rc = tu_run(args, out, sizeof out, err, sizeof err);
        if (rc) fail_msg("label 1.0: exit %d: %s", rc, err);
        o = snprintf(wide, 4000, "id,label\n%s,", first);
        memset(wide + o, 'y', 2000);
        strcpy(wide + o + 2000, "\n");
        write_file(lab, wide);
        assert_int_equal(tu_run(args, out, sizeof out, err, sizeof err), 2);
        assert_non_null(strstr(err, "labels.csv:2: label 'yyyyyyyy"));
        snprintf(wide, 4000, "id,label\n%s,nan\n", first);  /* read as missing: it was "label ''" */
        write_file(lab, wide);
        assert_int_equal(tu_run(args, out, sizeof out, err, sizeof err), 2);
        if (!strstr(err, "labels.csv:2: no label for ID")) fail_msg("%s", err);
        free(wide);
    }
    write_file(lab, "");  /* an empty file (touched): no label, as a missing one */
    snprintf(args, sizeof args, "next '%s' -n 1 --ids", conf);
    assert_int_equal(tu_run(args, out, sizeof out, err, sizeof err), 0);
    write_file(lab, "id,label,comment\n");  /* header only: valid, no label */
    snprintf(args, sizeof args, "next '%s' -n 1 --ids", conf);
    assert_int_equal(tu_run(args, out, sizeof out, err, sizeof err), 0);
    tu_rmtree(dir);
    free(dir);
    free(conf);
}

/* Column col (numbers) of HDU 2 of path, n values. */
static void read_doubles(const char *path, const char *col, long n, double *v)
{
    fitsfile *f;
    int status = 0, cn = 0, anynul = 0;
    fits_open_table(&f, path, READONLY, &status);
    fits_get_colnum(f, CASEINSEN, (char *)col, &cn, &status);
    fits_read_col(f, TDOUBLE, cn, 1, 1, n, NULL, v, &anynul, &status);
    fits_close_file(f, &status);
    if (status) fail_msg("cannot read %s from %s (status %d)", col, path, status);
}

/* The bundled mock survey under new IDs (ID + 1000000), written into dir:
 * the same objects, new to a run of the survey.  Owned by the caller. */
static char *moved_catalog(const char *dir)
{
    char path[4300];
    char *moved = tu_path(dir, "moved.fits");
    fitsfile *in, *outf;
    int status = 0;
    snprintf(path, sizeof path, "%s/catalogs/mock_survey.fits[CATALOG][col *; ID = ID + 1000000]",
             getenv("ODDSKY_SOURCE_DIR"));
    fits_open_file(&in, path, READONLY, &status);
    snprintf(path, sizeof path, "!%s", moved);
    fits_create_file(&outf, path, &status);
    fits_copy_file(in, outf, 1, 1, 1, &status);
    fits_close_file(outf, &status);
    fits_close_file(in, &status);
    assert_int_equal(status, 0);
    return moved;
}

/* score.detectors may list heap: 50 objects given one redshift, where the
 * catalog is sparse, are its top, and ANOMALY_SCORE is the rule with
 * score.heap_weight. */
static void test_heap_detector(void **state)
{
    (void)state;
    const char *src = getenv("ODDSKY_SOURCE_DIR");
    char *dir = tu_tmpdir(), *conf = tu_path(dir, "heap.yaml"), args[4400], path[4300];
    FILE *f = fopen(conf, "w");
    fprintf(f, "catalog:\n  path: \"%s/catalogs/mock_survey.fits[CATALOG][col *; ZH = (ID %% 100 == 0) ? 3.0 : "
               "REDSHIFT]\"\n  id: ID\n  features: [U, G, R, ZH]\nforest:\n  n_trees: 20\n"
               "score:\n  detectors: [isolation, heap]\n  heap_weight: 2\noutput: out\nseed: 5\n", src);
    fclose(f);
    snprintf(args, sizeof args, "run '%s' -q --top 0", conf);
    int rc = tu_run(args, out, sizeof out, err, sizeof err);
    if (rc) fail_msg("exit %d: %s", rc, err);
    snprintf(path, sizeof path, "%s/out/anomalies.fits", dir);
    long n = 5000;
    double *a = malloc((size_t)n * sizeof *a), *iso = malloc((size_t)n * sizeof *iso), *h = malloc((size_t)n * sizeof *h),
           *zh = malloc((size_t)n * sizeof *zh);
    read_doubles(path, "ANOMALY_SCORE", n, a);
    read_doubles(path, "ISOLATION", n, iso);
    read_doubles(path, "HEAP", n, h);
    read_doubles(path, "F_ZH", n, zh);
    double *zi = malloc((size_t)n * sizeof *zi), *zp = malloc((size_t)n * sizeof *zp), *in = malloc(50 * sizeof *in);
    robust_z_clipped(iso, n, zi);
    robust_z_clipped(h, n, zp);
    double far = 0;  /* the highest HEAP away from the heap's redshift */
    long m = 0;
    for (long i = 0; i < n; i++) {
        double want = zi[i] > 2 * zp[i] ? zi[i] : 2 * zp[i];
        if (fabs(a[i] - want) > 1e-9 * (1 + want)) fail_msg("row %ld: ANOMALY_SCORE %.17g, the rule gives %.17g", i, a[i], want);
        if (!isfinite(h[i]) || h[i] < 0) fail_msg("row %ld: HEAP %g", i, h[i]);
        if (zh[i] == 3.0 && m < 50) in[m++] = h[i];
        else if (fabs(zh[i] - 3) > 0.5 && h[i] > far) far = h[i];
    }
    assert_true(m == 50);
    double mid = median_of(in, m);
    if (!(mid > far && mid > 10)) fail_msg("the heap's median HEAP %g, the highest elsewhere %g", mid, far);
    /* `oddsky score`: the same objects under new IDs are new objects, and
     * those at the heap's value are in it against the run's catalog */
    char *moved = moved_catalog(dir);
    snprintf(args, sizeof args, "score '%s/out' '%s' -o '%s/moved' --top 0", dir, moved, dir);
    if ((rc = tu_run(args, out, sizeof out, err, sizeof err))) fail_msg("exit %d: %s", rc, err);
    snprintf(path, sizeof path, "%s/moved/anomalies.fits", dir);
    read_doubles(path, "HEAP", n, h);
    read_doubles(path, "F_ZH", n, zh);
    m = 0;
    for (long i = 0; i < n; i++)
        if (zh[i] == 3.0 && m < 50) in[m++] = h[i];
    assert_true(m == 50 && median_of(in, m) > 10);
    free(moved);
    free(a); free(iso); free(h); free(zh); free(zi); free(zp); free(in);
    tu_rmtree(dir);
    free(dir);
    free(conf);
}

/* Train once, score many: the run's own catalog gets the run's export back,
 * byte for byte; the same objects under new IDs are new objects scored
 * against the run (the same weirdness and isolation, their twin as nearest
 * neighbour at distance 0); an unfinished run or a catalog without the
 * run's columns is refused and the run folder is left as it was. */
static void test_score_new_objects(void **state)
{
    (void)state;
    enum { N = 5000 };
    const char *src = getenv("ODDSKY_SOURCE_DIR");
    char *dir = tu_tmpdir(), *conf = small_config(dir, "export:\n  formats: [fits, csv]\n"), args[8192], path[4300];
    snprintf(args, sizeof args, "-q run '%s' --top 0 --set similarity.leaf_sample=0", conf);  /* exact lists */
    assert_int_equal(tu_run(args, out, sizeof out, err, sizeof err), 0);
    char *run = tu_path(dir, "out");
    snprintf(path, sizeof path, "cp '%s/summary.txt' '%s/summary.before'", run, dir);
    assert_int_equal(system(path), 0);
    /* the run's own catalog, through the run's brackets */
    snprintf(args, sizeof args, "score '%s' '%s/catalogs/mock_survey.fits' -o '%s/same' --top 3", run, src, dir);
    int rc = tu_run(args, out, sizeof out, err, sizeof err);
    if (rc) fail_msg("exit %d: %s", rc, err);
    assert_non_null(strstr(out, "Top 3 of 5000 objects"));
    char a[4300], b[4300];
    snprintf(a, sizeof a, "%s/out/anomalies.fits", dir);
    snprintf(b, sizeof b, "%s/same/anomalies.fits", dir);
    tu_same_table(a, b);
    snprintf(path, sizeof path, "cmp -s '%s/out/anomalies.csv' '%s/same/anomalies.csv'", dir, dir);
    assert_int_equal(system(path), 0);
    /* a new catalog without some of the run's pass-through columns (a night's alerts have no truth columns):
     * scored, those left out and named in the run's log */
    snprintf(args, sizeof args, "score '%s' '%s/catalogs/mock_survey.fits[CATALOG][col -CLASS; -ANOMALY; UG = U - G; "
             "GR = G - R; RI = R - I; IZ = I - Z]' -o '%s/lean' --top 0", run, src, dir);
    if ((rc = tu_run(args, out, sizeof out, err, sizeof err))) fail_msg("exit %d: %s", rc, err);
    snprintf(path, sizeof path, "head -1 '%s/lean/anomalies.csv' | grep -q '^RANK,ID,RA,DEC,F_UG,'", dir);
    assert_int_equal(system(path), 0);
    snprintf(path, sizeof path, "grep -q 'not in this catalog, so not carried: CLASS, ANOMALY' '%s/oddsky.log'", run);
    assert_int_equal(system(path), 0);
    /* objects with a missing feature: said and listed whatever their share (a night's alerts are few), where
     * two of 5,000 were left out in silence */
    {
        char nan_cat[4300];
        snprintf(nan_cat, sizeof nan_cat, "cp '%s/catalogs/mock_survey.fits' '%s/nan.fits' && chmod u+w '%s/nan.fits'",
                 src, dir, dir);
        assert_int_equal(system(nan_cat), 0);
        snprintf(nan_cat, sizeof nan_cat, "%s/nan.fits", dir);
        fitsfile *ff = NULL;
        int status = 0, col = 0;
        double nan = NAN;
        fits_open_table(&ff, nan_cat, READWRITE, &status);
        fits_get_colnum(ff, CASEINSEN, "REDSHIFT", &col, &status);
        fits_write_col(ff, TDOUBLE, col, 7, 1, 1, &nan, &status);
        fits_write_col(ff, TDOUBLE, col, 9, 1, 1, &nan, &status);
        fits_close_file(ff, &status);
        assert_int_equal(status, 0);
        snprintf(args, sizeof args, "-q score '%s' '%s' -o '%s/nan' --top 0", run, nan_cat, dir);
        if ((rc = tu_run(args, out, sizeof out, err, sizeof err))) fail_msg("exit %d: %s", rc, err);
        if (!strstr(err, "nan.fits[CATALOG]") || !strstr(err, ": 2 of 5000 objects not scored, for missing feature values")) fail_msg("%s", err);
        snprintf(path, sizeof path, "test $(wc -l < '%s/nan/dropped.csv') = 3 && grep -q '^9,' '%s/nan/dropped.csv'",
                 dir, dir);
        assert_int_equal(system(path), 0);
    }
    /* the same objects under new IDs */
    char *moved = moved_catalog(dir);
    snprintf(args, sizeof args, "score '%s' '%s' -o '%s/moved' --top 0 --set threads=2", run, moved, dir);
    rc = tu_run(args, out, sizeof out, err, sizeof err);
    if (rc) fail_msg("exit %d: %s", rc, err);
    snprintf(b, sizeof b, "%s/moved/anomalies.fits", dir);
    double *ida = malloc(N * sizeof *ida), *idb = malloc(N * sizeof *idb), *wa = malloc(N * sizeof *wa),
           *wb = malloc(N * sizeof *wb), *ia = malloc(N * sizeof *ia), *ib = malloc(N * sizeof *ib);
    read_doubles(a, "ID", N, ida);
    read_doubles(b, "ID", N, idb);
    read_doubles(a, "WEIRDNESS", N, wa);
    read_doubles(b, "WEIRDNESS", N, wb);
    read_doubles(a, "ISOLATION", N, ia);
    read_doubles(b, "ISOLATION", N, ib);
    char (*near)[32] = malloc(N * sizeof *near), (*sim)[32] = malloc(N * sizeof *sim);
    read_column_text(b, "NEAREST", N, near);
    read_column_text(b, "NEIGHBOURS", N, sim);
    double *fk = malloc(N * sizeof *fk), *fka = malloc(N * sizeof *fka);
    read_doubles(b, "FOREST_KNN", N, fk);
    read_doubles(a, "FOREST_KNN", N, fka);
    int checked = 0;
    for (int r = 0; r < N; r++) {
        int q = 0;
        while (q < N && ida[q] != idb[r] - 1000000) q++;  /* its twin in the run */
        if (q == N) fail_msg("ID %.0f has no twin", idb[r]);
        if (wa[q] != wb[r] || ia[q] != ib[r]) fail_msg("ID %.0f: weirdness %.17g / %.17g, isolation %.17g / %.17g", idb[r], wb[r], wa[q], ib[r], ia[q]);
        char twin[32];
        snprintf(twin, sizeof twin, "%.0f", ida[q]);
        if (strncmp(near[r], twin, strlen(twin)) || (near[r][strlen(twin)] && near[r][strlen(twin)] != ';'))
            fail_msg("ID %.0f: nearest %s, not its twin %s", idb[r], near[r], twin);
        /* by forest proximity: the run's list of its twin with the twin itself
         * (similarity 1) added, so never farther on average */
        if (!sim[r][0] || !(fk[r] >= 0 && fk[r] <= fka[q] + 1e-9))
            fail_msg("ID %.0f: most similar '%s', FOREST_KNN %.17g against its twin's %.17g", idb[r], sim[r], fk[r], fka[q]);
        checked++;
    }
    assert_int_equal(checked, N);
    /* LOCAL of a new object: its kNN distance and LOF as robust z against the run's objects */
    double *col[5];
    const char *cn[5] = {"KNN_DIST", "LOF", "KNN_DIST", "LOF", "LOCAL"};
    for (int k = 0; k < 5; k++) {
        col[k] = malloc(N * sizeof *col[k]);
        read_doubles(k < 2 ? a : b, cn[k], N, col[k]);
    }
    robust_z_against(col[0], N, col[2], N, col[2]);
    robust_z_against(col[1], N, col[3], N, col[3]);
    for (int r = 0; r < N; r++)
        if (fabs(sqrt(col[2][r] * col[3][r]) - col[4][r]) > 1e-12 * (1 + col[4][r]))
            fail_msg("ID %.0f: LOCAL %.17g, from the run's scales %.17g", idb[r], col[4][r], sqrt(col[2][r] * col[3][r]));
    for (int k = 0; k < 5; k++) free(col[k]);
    /* refused: a catalog without the run's columns; a run not up to date with its config */
    snprintf(args, sizeof args, "score '%s' '%s/catalogs/mock_lenses.fits' -o '%s/bad'", run, src, dir);
    assert_int_equal(tu_run(args, out, sizeof out, err, sizeof err), 2);
    /* a new catalog without a value of one of the run's features: the advice is the new catalog's, not the config's */
    snprintf(args, sizeof args, "score '%s' '%s/catalogs/mock_survey.fits[CATALOG][col *; UG = U / 0; GR = G - R; "
             "RI = R - I; IZ = I - Z]' -o '%s/bad'", run, src, dir);
    assert_int_equal(tu_run(args, out, sizeof out, err, sizeof err), 2);
    if (!strstr(err, "(feature 'UG' misses 5000 of them) — the run's models need every one of its features: give the "
                     "new objects their values") || strstr(err, "catalog.features"))
        fail_msg("a feature missing in the new catalog: %s", err);
    snprintf(args, sizeof args, "score '%s' '%s' -o '%s/bad' --set forest.n_trees=41", run, moved, dir);
    assert_int_equal(tu_run(args, out, sizeof out, err, sizeof err), 2);
    assert_non_null(strstr(err, "not up to date"));
    /* a forest file of another feature count put in the run folder (from
     * another run): its trees once walked the rows past their features */
    snprintf(path, sizeof path, "%s/forest_0.fits", run);
    snprintf(args, sizeof args, "cp '%s' '%s/forest_0.keep'", path, dir);
    assert_int_equal(system(args), 0);
    fitsfile *ff = NULL;
    int status = 0, nf = 0;
    fits_open_file(&ff, path, READWRITE, &status);
    fits_movnam_hdu(ff, BINARY_TBL, "FOREST", 0, &status);
    fits_read_key(ff, TINT, "NFEAT", &nf, NULL, &status);
    nf += 3;
    fits_update_key(ff, TINT, "NFEAT", &nf, NULL, &status);
    fits_close_file(ff, &status);
    assert_int_equal(status, 0);
    snprintf(args, sizeof args, "score '%s' '%s' -o '%s/bad'", run, moved, dir);
    assert_int_equal(tu_run(args, out, sizeof out, err, sizeof err), 2);
    if (!strstr(err, "the forest takes") || !strstr(err, "features, the run has")) fail_msg("%s", err);
    snprintf(args, sizeof args, "cp '%s/forest_0.keep' '%s'", dir, path);
    assert_int_equal(system(args), 0);
    /* a neighbour list naming a row the catalog does not have, and a list
     * one row short: each refused by file, column and row */
    snprintf(path, sizeof path, "%s/local.fits", run);
    snprintf(args, sizeof args, "cp '%s' '%s/local.keep'", path, dir);
    assert_int_equal(system(args), 0);
    for (int damage = 0; damage < 2; damage++) {
        int far = N + 5;
        fits_open_file(&ff, path, READWRITE, &status);
        fits_movabs_hdu(ff, 2, NULL, &status);
        if (damage == 0) fits_write_col(ff, TINT, 2, 7, 2, 1, &far, &status);  /* column 2: NEAREST_ROWS */
        else fits_delete_rows(ff, N, 1, &status);
        fits_close_file(ff, &status);
        assert_int_equal(status, 0);
        snprintf(args, sizeof args, "score '%s' '%s' -o '%s/bad'", run, moved, dir);
        assert_int_equal(tu_run(args, out, sizeof out, err, sizeof err), 2);
        const char *want = damage == 0 ? "column NEAREST_ROWS holds 5005 in row 7, not -1 to 4999"
                                       : "column NEAREST_ROWS is 4999 rows x 20, the run needs 5000 x 20";
        if (!strstr(err, want)) fail_msg("damage %d: %s", damage, err);
        snprintf(args, sizeof args, "cp '%s/local.keep' '%s'", dir, path);
        assert_int_equal(system(args), 0);
    }
    /* a file of the right shape written by another run (its stage hash,
     * STAGEH, is not the manifest's): refused, not read as this run's */
    const char *stamped[] = {"forest_0.fits", "mlp.fits", "weirdness.fits", "catalog.fits"};
    for (int k = 0; k < 4; k++) {
        snprintf(path, sizeof path, "%s/%s", run, stamped[k]);
        snprintf(args, sizeof args, "cp '%s' '%s/stamped.keep'", path, dir);
        assert_int_equal(system(args), 0);
        fits_open_file(&ff, path, READWRITE, &status);
        fits_update_key(ff, TSTRING, "STAGEH", "0123456789abcdef", NULL, &status);
        fits_close_file(ff, &status);
        assert_int_equal(status, 0);
        snprintf(args, sizeof args, "score '%s' '%s' -o '%s/bad'", run, moved, dir);
        assert_int_equal(tu_run(args, out, sizeof out, err, sizeof err), 2);
        if (!strstr(err, stamped[k]) || !strstr(err, "was written by another run or config (stage hash 0123456789abcdef"))
            fail_msg("%s: %s", stamped[k], err);
        /* without the stamp (a run folder from before it): read as before */
        fits_open_file(&ff, path, READWRITE, &status);
        fits_delete_key(ff, "STAGEH", &status);
        fits_close_file(ff, &status);
        assert_int_equal(status, 0);
        snprintf(args, sizeof args, "-q score '%s' '%s' -o '%s/unstamped' --top 0", run, moved, dir);
        if ((rc = tu_run(args, out, sizeof out, err, sizeof err))) fail_msg("%s without STAGEH: exit %d: %s", stamped[k], rc, err);
        snprintf(args, sizeof args, "cp '%s/stamped.keep' '%s'", dir, path);
        assert_int_equal(system(args), 0);
    }
    snprintf(path, sizeof path, "%s/bad/anomalies.fits", dir);
    assert_false(tu_file_exists(path));
    snprintf(path, sizeof path, "cmp -s '%s/summary.txt' '%s/summary.before'", run, dir);
    assert_int_equal(system(path), 0);  /* the run folder as it was */
    tu_rmtree(dir);
    free(dir), free(conf), free(run), free(moved);
    free(ida), free(idb), free(wa), free(wb), free(ia), free(ib), free(near), free(sim), free(fk), free(fka);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_demo_end_to_end_and_skipping),
        cmocka_unit_test(test_threads_do_not_change_results),
        cmocka_unit_test(test_resume_after_kill),
        cmocka_unit_test(test_run_folder_lock),
        cmocka_unit_test(test_moved_run_folder),
        cmocka_unit_test(test_moved_run_folder_labels),
        cmocka_unit_test(test_inputs_in_the_run_folder),
        cmocka_unit_test(test_small_catalog_settings),
        cmocka_unit_test(test_output_cannot_be_written),
        cmocka_unit_test(test_row_number_ids),
        cmocka_unit_test(test_ranking_columns),
        cmocka_unit_test(test_weirdness_without_evidence),
        cmocka_unit_test(test_degenerate_inputs_warned),
        cmocka_unit_test(test_heap_detector),
        cmocka_unit_test(test_folder_names_cfitsio_would_misread),
        cmocka_unit_test(test_bad_input_gives_exit_2),
        cmocka_unit_test(test_batch_with_a_failing_run),
        cmocka_unit_test(test_lens_demo),
        cmocka_unit_test(test_sdss_config),
        cmocka_unit_test(test_spectra_demo),
        cmocka_unit_test(test_wide_vector_table),
        cmocka_unit_test(test_why_stretches),
        cmocka_unit_test(test_miles_config),
        cmocka_unit_test(test_learn_moves_neighbours),
        cmocka_unit_test(test_labels_loop),
        cmocka_unit_test(test_label_keeps_the_format),
        cmocka_unit_test(test_score_new_objects),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
