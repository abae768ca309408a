/* test_par.c — the processes of a distributed run: core's ody_comm helpers
 * for one process, and `mpirun -np 1, 2, 3 oddsky run` (oversubscribed)
 * against a run without mpirun, table for table and byte for byte.  The
 * mpirun tests skip when this build has no MPI or mpirun is missing. */
#define _GNU_SOURCE
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <fitsio.h>

#include "ody.h"
#include "par.h"
#include "testutil.h"

static char out[65536], err[65536];

/* ================================================================ one process */

static void test_one_process(void **state)
{
    (void)state;
    size_t lo, hi;
    ody_comm_part(NULL, 0, 17, &lo, &hi);
    assert_int_equal(lo, 0);
    assert_int_equal(hi, 17);
    ody_err e = {0};
    int v[3] = {1, 2, 3};
    assert_int_equal(ody_share_rows(NULL, v, 3, sizeof *v, &e), 0);
    assert_int_equal(ody_allreduce(NULL, v, 3, ODY_SUM_U32, &e), 0);
    assert_int_equal(v[2], 3);
    assert_int_equal(ody_comm_agree(NULL, 0, &e), 0);
    assert_int_equal(ody_comm_agree(NULL, ODY_EINPUT, &e), ODY_EINPUT);
    /* an exchange with oneself: a copy, also of nothing */
    size_t sc = sizeof v, rc = 0;
    void *got = NULL;
    assert_int_equal(ody_exchange(NULL, v, &sc, &got, &rc, &e), 0);
    assert_int_equal(rc, sizeof v);
    assert_memory_equal(got, v, sizeof v);
    free(got);
    sc = 0;
    assert_int_equal(ody_exchange(NULL, v, &sc, &got, &rc, &e), 0);
    assert_int_equal(rc, 0);
    assert_non_null(got);
    free(got);
}

/* Blocks cover every row once, in process order, sizes within one. */
static void test_parts(void **state)
{
    (void)state;
    for (int R = 1; R <= 7; R++)
        for (size_t n = 0; n < 40; n++) {
            ody_comm c = {.rank = 0, .size = R};
            size_t next = 0, mn = (size_t)-1, mx = 0;
            for (int p = 0; p < R; p++) {
                size_t lo, hi;
                ody_comm_part(&c, p, n, &lo, &hi);
                assert_int_equal(lo, next);
                next = hi;
                if (hi - lo < mn) mn = hi - lo;
                if (hi - lo > mx) mx = hi - lo;
            }
            assert_int_equal(next, n);
            assert_true(mx - mn <= 1);
        }
}

/* The k-th value of a process's values, as sorting them finds it; each
 * row's part as ody_part says. */
static int cmp_d(const void *a, const void *b)
{
    double x = *(const double *)a, y = *(const double *)b;
    return (x > y) - (x < y);
}

static void test_select(void **state)
{
    (void)state;
    enum { N = 2001 };
    double *v = malloc(N * sizeof *v), *s = malloc(N * sizeof *s), got;
    ody_rng r;
    ody_rng_stream(&r, 4, 0);
    for (int i = 0; i < N; i++) {
        double u = ody_rng_uniform(&r);
        v[i] = i % 7 == 0 ? 3.5 : i % 11 == 0 ? -1e300 : i % 13 == 0 ? 1e-310 : (u - 0.3) * 1e3;
    }
    v[5] = INFINITY, v[6] = -INFINITY, v[8] = 0.0;
    memcpy(s, v, N * sizeof *s);
    qsort(s, N, sizeof *s, cmp_d);
    ody_err e;
    for (uint64_t k = 0; k < N; k += 37) {
        assert_int_equal(ody_select(NULL, v, N, k, &got, &e), 0);
        assert_true(got == s[k]);
    }
    assert_int_equal(ody_select(NULL, v, N, N - 1, &got, &e), 0);
    assert_true(got == INFINITY);
    assert_int_equal(ody_select(NULL, v, N, N, &got, &e), ODY_EINTERNAL);
    for (int R = 1; R <= 5; R++)
        for (size_t n = 1; n < 30; n++)
            for (int p = 0; p < R; p++) {
                size_t lo, hi;
                ody_part(n, R, p, &lo, &hi);
                for (size_t i = lo; i < hi; i++) assert_int_equal(ody_part_of(n, R, i), p);
            }
    free(v);
    free(s);
}

/* ================================================================ mpirun */

static int have_mpirun(void)
{
    if (!par_have_mpi() || system("command -v mpirun >/dev/null 2>&1") != 0) return 0;
    /* root in a container: OpenMPI refuses without these */
    setenv("OMPI_ALLOW_RUN_AS_ROOT", "1", 1);
    setenv("OMPI_ALLOW_RUN_AS_ROOT_CONFIRM", "1", 1);
    setenv("OMPI_MCA_rmaps_base_oversubscribe", "1", 1);
    return 1;
}

/* Every stage with work shared among processes: the forest, weirdness and
 * isolation, top-k similarity, neighbours among a reference sample (and
 * HEAP against its values), the MLP, WHY, labels; exports in three
 * formats. */
static char *config(const char *dir)
{
    const char *src = getenv("ODDSKY_SOURCE_DIR");
    char *p = tu_path(dir, "labels.csv");
    FILE *f = fopen(p, "w");
    fputs("id,label\n17,1\n2500,0\n4999,1\n", f);
    fclose(f);
    free(p);
    p = tu_path(dir, "run.yaml");
    f = fopen(p, "w");
    fprintf(f,
            "catalog:\n"
            "  path: \"%s/catalogs/mock_survey.fits[CATALOG][col *; UG = U - G; GR = G - R; RI = R - I; IZ = I - Z]\"\n"
            "  id: ID\n"
            "  features: [UG, GR, RI, IZ, R, REDSHIFT]\n"
            "  passthrough: [RA, DEC, CLASS]\n"
            "forest:\n  n_trees: 30\n"
            "weirdness:\n  repeats: 2\n"
            "mlp:\n  enabled: true\n  hidden: [16]\n  max_epochs: 4\n"
            "similarity:\n  enabled: true\n  top_k: 5\n"
            "local:\n  reference: 3000\n"
            "score:\n  detectors: [isolation, weirdness, local, context, heap]\n"
            "export:\n  formats: [fits, csv, votable]\n"
            "labels: \"%s/labels.csv\"\n"
            "output: one\n"
            "seed: 3\n",
            src, dir);
    fclose(f);
    return p;
}

static void test_mpirun_identical(void **state)
{
    (void)state;
    if (!have_mpirun()) skip();
    char *dir = tu_tmpdir(), *conf = config(dir), args[4096];
    snprintf(args, sizeof args, "-q run '%s' --top 0", conf);
    assert_int_equal(tu_run(args, out, sizeof out, err, sizeof err), 0);
    const char *tables[] = {"catalog.fits", "forest_0.fits", "forest_1.fits", "oob.fits", "weirdness.fits",
                            "neighbours.fits", "local.fits", "mlp_scores.fits", "score.fits", "learn.fits",
                            "anomalies.fits"};
    /* the last pass changes only the export: every other stage reads its
     * rows back from the run folder, each process its own */
    snprintf(args, sizeof args, "-q run '%s' --top 0 --set output=again --set export.top_n=4000", conf);
    assert_int_equal(tu_run(args, out, sizeof out, err, sizeof err), 0);
    for (int np = 1; np <= 4; np++) {
        char launcher[64], a[4096], b[4096];
        /* -np 3 as processes on several machines would: no shared memory */
        snprintf(launcher, sizeof launcher, "mpirun -np %d%s", np > 3 ? 2 : np, np == 3 ? " -x ODDSKY_MPI_NO_SHARED=1" : "");
        snprintf(args, sizeof args, "-q run '%s' --top 0 --set threads=%d --set output=np%d%s", conf, np == 2 ? 1 : 2,
                 np > 3 ? 2 : np, np > 3 ? " --set export.top_n=4000" : "");
        int rc = tu_run_under(launcher, args, out, sizeof out, err, sizeof err);
        if (rc) fail_msg("mpirun -np %d: exit %d: %s", np, rc, err);
        if (np > 3) {  /* np2 again, its anomalies against the one-process run's */
            snprintf(a, sizeof a, "%s/again/anomalies.fits", dir);
            snprintf(b, sizeof b, "%s/np2/anomalies.fits", dir);
            tu_same_table(a, b);
            snprintf(a, sizeof a, "cmp -s '%s/again/anomalies.csv' '%s/np2/anomalies.csv'", dir, dir);
            if (system(a) != 0) fail_msg("anomalies.csv differs read back under mpirun -np 2");
            continue;
        }
        for (size_t k = 0; k < sizeof tables / sizeof *tables; k++) {
            snprintf(a, sizeof a, "%s/one/%s", dir, tables[k]);
            snprintf(b, sizeof b, "%s/np%d/%s", dir, np, tables[k]);
            tu_same_table(a, b);
        }
        for (int k = 0; k < 2; k++) {
            char cmd[9000];
            snprintf(cmd, sizeof cmd, "cmp -s '%s/one/anomalies.%s' '%s/np%d/anomalies.%s'", dir, k ? "vot" : "csv", dir,
                     np, k ? "vot" : "csv");
            if (system(cmd) != 0) fail_msg("anomalies.%s differs under mpirun -np %d", k ? "vot" : "csv", np);
        }
        /* nothing left behind: no temporary of any process */
        snprintf(a, sizeof a, "ls -a '%s/np%d' | grep -c tmp- >/dev/null", dir, np);
        assert_int_not_equal(system(a), 0);
    }
    tu_rmtree(dir);
    free(dir);
    free(conf);
}

/* The ID column of table `file` of run folder dir, n values. */
static void read_ids(const char *dir, const char *file, long long *id, long n)
{
    char p[4096];
    snprintf(p, sizeof p, "%s/%s[1]", dir, file);
    fitsfile *f;
    int status = 0, col = 0, any = 0;
    fits_open_table(&f, p, READONLY, &status);
    fits_get_colnum(f, CASEINSEN, "ID", &col, &status);
    fits_read_col(f, TLONGLONG, col, 1, 1, n, NULL, id, &any, &status);
    fits_close_file(f, &status);
    assert_int_equal(status, 0);
}

/* The exports of a catalog long enough for several windows of blocks, with
 * and without the FITS file, an artifact sent in several pieces, and the
 * MLP's rows fetched over several rounds. */
static void test_mpirun_long_exports(void **state)
{
    (void)state;
    if (!have_mpirun()) skip();
    char *dir = tu_tmpdir(), args[4096];
    snprintf(args, sizeof args, "-q simulate -n 140000 -s 2 -o '%s/long.fits'", dir);
    assert_int_equal(tu_run(args, out, sizeof out, err, sizeof err), 0);
    char *conf = tu_path(dir, "long.yaml");
    FILE *f = fopen(conf, "w");
    fprintf(f, "catalog:\n  path: \"%s/long.fits[CATALOG]\"\n  id: ID\n  features: [U, G, R, I, Z, REDSHIFT]\n"
               "forest:\n  n_trees: 8\n  max_samples: 5000\nisolation:\n  n_trees: 20\nlocal:\n  reference: 2000\n"
               "synthetic:\n  mode: uniform\nmlp:\n  enabled: true\n  hidden: [8]\n  max_epochs: 2\n"
               "export:\n  formats: [csv, votable]\noutput: one\nseed: 2\n", dir);
    fclose(f);
    snprintf(args, sizeof args, "-q run '%s' --top 0", conf);
    assert_int_equal(tu_run(args, out, sizeof out, err, sizeof err), 0);
    /* one process alone: the artifact's pieces each at their place (its rows are the catalog's) */
    enum { N = 140000 };
    long long *ia = malloc(N * sizeof *ia), *ib = malloc(N * sizeof *ib);
    char *one = tu_path(dir, "one");
    read_ids(one, "catalog.fits", ia, N);
    read_ids(one, "local.fits", ib, N);
    assert_memory_equal(ia, ib, N * sizeof *ia);
    free(ia);
    free(ib);
    free(one);
    for (int np = 2; np <= 3; np++)
        for (int fits = 0; fits < 2; fits++) {
            char launcher[64], cmd[9000];
            snprintf(launcher, sizeof launcher, "mpirun -np %d", np);
            snprintf(args, sizeof args, "-q run '%s' --top 0 --set output=np%d%d%s", conf, np, fits,
                     fits ? " --set export.formats=[csv,votable,fits]" : "");
            int rc = tu_run_under(launcher, args, out, sizeof out, err, sizeof err);
            if (rc) fail_msg("mpirun -np %d: exit %d: %s", np, rc, err);
            for (int k = 0; k < 2; k++) {
                snprintf(cmd, sizeof cmd, "cmp -s '%s/one/anomalies.%s' '%s/np%d%d/anomalies.%s'", dir,
                         k ? "vot" : "csv", dir, np, fits, k ? "vot" : "csv");
                if (system(cmd) != 0) fail_msg("anomalies.%s differs under mpirun -np %d", k ? "vot" : "csv", np);
            }
            /* local.fits is 13 MB here: each process sends process 0 its rows in several pieces;
             * the MLP trains on 280,000 rows (uniform synthetic ones) fetched from their processes */
            const char *tables[] = {"local.fits", "mlp_scores.fits"};
            for (int t = 0; t < 2; t++) {
                char a[4096], b[4096];
                snprintf(a, sizeof a, "%s/one/%s", dir, tables[t]);
                snprintf(b, sizeof b, "%s/np%d%d/%s", dir, np, fits, tables[t]);
                tu_same_table(a, b);
            }
        }
    tu_rmtree(dir);
    free(dir);
    free(conf);
}

/* ================================================================ a catalog read by parts */

/* A table of n rows whose missing values fall at both ends of every
 * process's part (-np 2 and 3): ID, ID2 (row 2991 repeats row 11's), A and
 * B with NaNs, C with one NaN (row 2501), D without, and signed zeros in A
 * (its median is 0 when imputed). */
static void write_gappy(const char *path, long n)
{
    fitsfile *f;
    int status = 0;
    /* string IDs: unique (SNAME); two values held twice (SDUP); one missing (SHOLE); floats with 0 and -0 (FDUP) */
    char *ttype[] = {"ID", "ID2", "A", "B", "C", "D", "SNAME", "SDUP", "SHOLE", "FDUP"},
         *tform[] = {"1K", "1K", "1E", "1E", "1E", "1E", "12A", "12A", "12A", "1D"};
    fits_create_file(&f, path, &status);
    fits_create_tbl(f, BINARY_TBL, n, 10, ttype, tform, NULL, "CATALOG", &status);
    for (long i = 0; i < n; i++) {
        long long id = 1000 + 7 * i, id2 = i == 2990 ? 1000 + 7 * 10 : id;
        int edge = i == 999 || i == 1000 || i == 1499 || i == 1500 || i == 2000 || i == 2001 || i == 0 || i == n - 1;
        float a = i % 97 == 5 || edge ? NAN : i % 3 == 0 ? (i % 2 ? -0.0f : 0.0f) : (float)sin(0.37 * (double)i);
        float b = i % 89 == 1 || (edge && i % 2) ? NAN : (float)cos(0.11 * (double)i) * (float)(i % 13);
        float c = i == 2500 ? NAN : (float)((i * 7919) % 1000) / 100.0f, d = (float)((i * 104729) % 997);
        char name[24], dup[24], hole[24], *s[3] = {name, dup, hole};
        double fd = i == 2800 ? -0.0 : i == 3 ? 0.0 : 1 + 0.25 * (double)i;
        snprintf(name, sizeof name, "g%06ld", i);
        snprintf(dup, sizeof dup, "g%06ld", i == 2700 ? 40 : i == 1200 ? 1300 : i);
        snprintf(hole, sizeof hole, "%s", i == 2950 ? "" : name);
        fits_write_col(f, TLONGLONG, 1, i + 1, 1, 1, &id, &status);
        fits_write_col(f, TLONGLONG, 2, i + 1, 1, 1, &id2, &status);
        fits_write_col(f, TFLOAT, 3, i + 1, 1, 1, &a, &status);
        fits_write_col(f, TFLOAT, 4, i + 1, 1, 1, &b, &status);
        fits_write_col(f, TFLOAT, 5, i + 1, 1, 1, &c, &status);
        fits_write_col(f, TFLOAT, 6, i + 1, 1, 1, &d, &status);
        for (int k = 0; k < 3; k++) fits_write_col(f, TSTRING, 7 + k, i + 1, 1, 1, &s[k], &status);
        fits_write_col(f, TDOUBLE, 10, i + 1, 1, 1, &fd, &status);
    }
    fits_close_file(f, &status);
    assert_int_equal(status, 0);
}

/* The line of err that starts "oddsky: error:" (mpirun adds its own after). */
static void error_line(const char *e, char *line, size_t len)
{
    const char *p = strstr(e, "oddsky: error:");
    snprintf(line, len, "%.*s", p ? (int)strcspn(p, "\n") : 0, p ? p : "");
}

/* The error line of `oddsky args` under mpirun -np 2 and 3 is `one`, the
 * line of one process, with exit 2. */
static void same_error_under_mpirun(const char *args, const char *one)
{
    for (int np = 2; np <= 3; np++) {
        char launcher[64], many[1024];
        snprintf(launcher, sizeof launcher, "mpirun -np %d", np);
        assert_int_equal(tu_run_under(launcher, args, out, sizeof out, err, sizeof err), 2);
        error_line(err, many, sizeof many);
        assert_string_equal(one, many);
    }
}

/* Spectra read by parts: the bundled mock spectra on a grid the redder ones
 * do not cover, so that rows go from every part.  Each process resamples its
 * own rows; the features, the dropped list with each spectrum's reason, the
 * warning that names the reason and the ranking are those of one process. */
static void test_mpirun_spectra(void **state)
{
    (void)state;
    if (!have_mpirun()) skip();
    const char *src = getenv("ODDSKY_SOURCE_DIR");
    char *dir = tu_tmpdir(), args[4096];
    for (int np = 1; np <= 3; np++) {
        char launcher[64];
        snprintf(launcher, sizeof launcher, "mpirun -np %d", np);
        snprintf(args, sizeof args, "-q run '%s/configs/spectra_demo.yaml' --top 0 --set forest.n_trees=10 "
                 "--set isolation.n_trees=50 --set spectra.grid_start=7000 --set spectra.grid_stop=8900 "
                 "--set spectra.norm_from=7000 --set spectra.norm_to=7200 --set similarity.enabled=false "
                 "--set 'export.formats=[fits, csv]' --set output='%s/np%d'", src, dir, np);
        int rc = np == 1 ? tu_run(args, out, sizeof out, err, sizeof err)
                         : tu_run_under(launcher, args, out, sizeof out, err, sizeof err);
        if (rc) fail_msg("%s: exit %d: %s", launcher, rc, err);
        if (!strstr(err, "346 for an unusable spectrum (346 with under half the grid's bins covered"))
            fail_msg("%s: the dropped spectra's reason not said: %s", launcher, err);
        if (np == 1) continue;
        char a[4300], b[4300];
        const char *files[] = {"catalog.fits", "anomalies.fits"};
        for (int k = 0; k < 2; k++) {
            snprintf(a, sizeof a, "%s/np1/%s", dir, files[k]);
            snprintf(b, sizeof b, "%s/np%d/%s", dir, np, files[k]);
            tu_same_table(a, b);
        }
        snprintf(a, sizeof a, "cmp -s '%s/np1/dropped.csv' '%s/np%d/dropped.csv' && cmp -s '%s/np1/anomalies.csv' "
                 "'%s/np%d/anomalies.csv'", dir, dir, np, dir, dir, np);
        if (system(a) != 0) fail_msg("dropped.csv or anomalies.csv differs under mpirun -np %d", np);
    }
    tu_rmtree(dir);
    free(dir);
}

/* The bundled mock spectra written twice: as 1200E vectors, and as
 * variable-length rows (1PE, 1PB) whose red ends are cut by up to 117
 * pixels, which the fixed copy flags in MASK instead.  Both say the same. */
static void write_vla_pair(const char *src, const char *fixed, const char *vla)
{
    enum { L = 1200 };
    char in[4200], fn[4200];
    snprintf(in, sizeof in, "%s/catalogs/mock_spectra.fits[1]", src);
    fitsfile *f = NULL, *o[2] = {NULL, NULL};
    int status = 0;
    long n = 0;
    fits_open_file(&f, in, READONLY, &status);
    fits_get_num_rows(f, &n, &status);
    char *tt[] = {"ID", "Z", "KIND", "ODDITY", "FLUX", "MASK"};
    char *tf[2][6] = {{"K", "E", "11A", "9A", "1200E", "1200B"}, {"K", "E", "11A", "9A", "1PE(1200)", "1PB(1200)"}};
    const char *paths[2] = {fixed, vla};
    double crval = 3800, cdelt = 4.5, crpix = 1;
    for (int k = 0; k < 2; k++) {
        snprintf(fn, sizeof fn, "!%s", paths[k]);
        fits_create_file(&o[k], fn, &status);
        fits_create_tbl(o[k], BINARY_TBL, 0, 6, tt, tf[k], NULL, "SPECTRA", &status);
        fits_write_key(o[k], TDOUBLE, "1CRVL5", &crval, NULL, &status);
        fits_write_key(o[k], TDOUBLE, "1CDLT5", &cdelt, NULL, &status);
        fits_write_key(o[k], TDOUBLE, "1CRPX5", &crpix, NULL, &status);
    }
    float flux[L], z;
    unsigned char mask[L];
    long long id;
    char kind[12], odd[10], *pk = kind, *po = odd;
    for (long r = 1; r <= n && !status; r++) {
        fits_read_col(f, TLONGLONG, 1, r, 1, 1, NULL, &id, NULL, &status);
        fits_read_col(f, TFLOAT, 4, r, 1, 1, NULL, &z, NULL, &status);
        fits_read_col(f, TSTRING, 5, r, 1, 1, NULL, &pk, NULL, &status);
        fits_read_col(f, TSTRING, 6, r, 1, 1, NULL, &po, NULL, &status);
        fits_read_col(f, TFLOAT, 9, r, 1, L, NULL, flux, NULL, &status);
        fits_read_col(f, TBYTE, 10, r, 1, L, NULL, mask, NULL, &status);
        long keep = L - (r % 40) * 3;
        for (long k = keep; k < L; k++) mask[k] = 1;
        for (int k = 0; k < 2; k++) {
            long w = k ? keep : L;
            fits_write_col(o[k], TLONGLONG, 1, r, 1, 1, &id, &status);
            fits_write_col(o[k], TFLOAT, 2, r, 1, 1, &z, &status);
            fits_write_col(o[k], TSTRING, 3, r, 1, 1, &pk, &status);
            fits_write_col(o[k], TSTRING, 4, r, 1, 1, &po, &status);
            fits_write_col(o[k], TFLOAT, 5, r, 1, w, flux, &status);
            fits_write_col(o[k], TBYTE, 6, r, 1, w, mask, &status);
        }
    }
    for (int k = 0; k < 2; k++) fits_close_file(o[k], &status);
    fits_close_file(f, &status);
    assert_int_equal(status, 0);
}

/* Spectra in variable-length rows read by parts: the same features and
 * ranking as one process reading the fixed-size copy. */
static void test_mpirun_vla_spectra(void **state)
{
    (void)state;
    if (!have_mpirun()) skip();
    const char *src = getenv("ODDSKY_SOURCE_DIR");
    char *dir = tu_tmpdir(), *fixed = tu_path(dir, "fixed.fits"), *vla = tu_path(dir, "vla.fits"), args[4096];
    write_vla_pair(src, fixed, vla);
    for (int np = 1; np <= 2; np++) {
        snprintf(args, sizeof args, "-q run '%s/configs/spectra_demo.yaml' --top 0 --set forest.n_trees=10 "
                 "--set isolation.n_trees=50 --set similarity.enabled=false --set catalog.path='%s' "
                 "--set 'export.formats=[fits, csv]' --set output='%s/np%d'", src, np == 1 ? fixed : vla, dir, np);
        int rc = np == 1 ? tu_run(args, out, sizeof out, err, sizeof err)
                         : tu_run_under("mpirun -np 2", args, out, sizeof out, err, sizeof err);
        if (rc) fail_msg("np %d: exit %d: %s", np, rc, err);
    }
    char a[4300], b[4300];
    snprintf(a, sizeof a, "%s/np1/catalog.fits", dir);
    snprintf(b, sizeof b, "%s/np2/catalog.fits", dir);
    tu_same_table(a, b);
    snprintf(a, sizeof a, "cmp -s '%s/np1/anomalies.csv' '%s/np2/anomalies.csv'", dir, dir);
    if (system(a) != 0) fail_msg("anomalies.csv of the variable-length spectra under mpirun -np 2 differs");
    tu_rmtree(dir);
    free(dir), free(fixed), free(vla);
}

/* Each process reads its part of the table: the catalog, the dropped list
 * and the imputed values are those of one process reading it all, and so
 * are the errors a whole read meets first. */
static void test_mpirun_parts(void **state)
{
    (void)state;
    if (!have_mpirun()) skip();
    char *dir = tu_tmpdir(), args[4096], *cat = tu_path(dir, "gappy.fits"), *conf = tu_path(dir, "g.yaml");
    write_gappy(cat, 3001);
    FILE *f = fopen(conf, "w");
    fprintf(f, "catalog:\n  path: \"%s\"\n  id: ID\n  features: [A, B, C, D]\n  passthrough: [ID2]\n"
               "forest:\n  n_trees: 10\n  max_samples: 600\nisolation:\n  n_trees: 20\nlocal:\n  reference: 500\n"
               "mlp:\n  enabled: true\n  hidden: [8]\n  max_epochs: 2\n  max_samples: 700\n"
               "export:\n  formats: [csv]\noutput: one\nseed: 4\n", cat);
    fclose(f);
    for (int imp = 0; imp < 2; imp++)
        for (int np = 1; np <= 3; np++) {
            char launcher[64], a[4096], b[4096];
            snprintf(launcher, sizeof launcher, "mpirun -np %d", np);
            /* imputed: string IDs, and pass-through columns of each type, held by parts and asked for by ID */
            snprintf(args, sizeof args, "-q run '%s' --top 0 --set output=%s%d --set catalog.missing=%s%s", conf,
                     imp ? "imp" : "drop", np, imp ? "impute" : "drop",
                     imp ? " --set catalog.id=SNAME --set catalog.passthrough=[ID,SDUP,FDUP]" : "");
            int rc = np == 1 ? tu_run(args, out, sizeof out, err, sizeof err)
                             : tu_run_under(launcher, args, out, sizeof out, err, sizeof err);
            if (rc) fail_msg("%s: exit %d: %s", launcher, rc, err);
            if (np == 1) continue;
            /* the forest trains by parts (max_samples 600 of 6,000 rows): its votes too; the MLP on a sample */
            const char *files[] = {"catalog.fits", "local.fits", "score.fits", "oob.fits", "mlp_scores.fits"};
            for (int k = 0; k < 5; k++) {
                snprintf(a, sizeof a, "%s/%s1/%s", dir, imp ? "imp" : "drop", files[k]);
                snprintf(b, sizeof b, "%s/%s%d/%s", dir, imp ? "imp" : "drop", np, files[k]);
                tu_same_table(a, b);
            }
            for (int k = 0; k < 2; k++) {
                char cmd[9000];
                snprintf(cmd, sizeof cmd, "cmp -s '%s/%s1/%s' '%s/%s%d/%s'", dir, imp ? "imp" : "drop",
                         k ? "dropped.csv" : "anomalies.csv", dir, imp ? "imp" : "drop", np,
                         k ? "dropped.csv" : "anomalies.csv");
                if (system(cmd) != 0) fail_msg("%s differs under mpirun -np %d", k ? "dropped.csv" : "anomalies.csv", np);
            }
        }
    /* a run that keeps every row's features throughout (the reference sample is every object): the IDs and
     * pass-through columns still in parts */
    for (int np = 1; np <= 2; np++) {
        snprintf(args, sizeof args, "-q run '%s' --top 0 --set output=all%d --set local.reference=5000 "
                 "--set catalog.id=SNAME --set catalog.passthrough=[ID,SDUP,FDUP]", conf, np);
        int rc = np == 1 ? tu_run(args, out, sizeof out, err, sizeof err)
                         : tu_run_under("mpirun -np 2", args, out, sizeof out, err, sizeof err);
        if (rc) fail_msg("keeping every row, %d process(es): exit %d: %s", np, rc, err);
    }
    /* a sentinel, -9999 in six rows spread over every part, and a Julian date over a tenth of a day, which
     * float32 holds on a few levels: one process warns of both, and so do several, each reading its part */
    for (int np = 1; np <= 3; np++) {
        char launcher[64];
        snprintf(launcher, sizeof launcher, "mpirun -np %d", np);
        snprintf(args, sizeof args, "-q run '%s' --top 0 --set output=sent%d --set 'catalog.path=\"%s[CATALOG][col *; "
                 "S = (#ROW %% 500 == 7) ? -9999 : D; T = 2459000.5 + D / 10000]\"' "
                 "--set 'catalog.features=[C, D, S, T]'", conf, np, cat);
        int rc = np == 1 ? tu_run(args, out, sizeof out, err, sizeof err)
                         : tu_run_under(launcher, args, out, sizeof out, err, sizeof err);
        if (rc) fail_msg("a sentinel, %d process(es): exit %d: %s", np, rc, err);
        if (!strstr(err, "feature S: 6 objects at -9999, far below the rest"))
            fail_msg("no sentinel warning with %d process(es): %s", np, err);
        if (!strstr(err, "feature T spans 2459000.5 to 2459000.6, which float32"))
            fail_msg("no float32-levels warning with %d process(es): %s", np, err);
    }
    char same[9000];
    snprintf(same, sizeof same, "cmp -s '%s/all1/anomalies.csv' '%s/all2/anomalies.csv'", dir, dir);
    if (system(same) != 0) fail_msg("anomalies.csv differs under mpirun -np 2 when every row is kept");
    /* errors: the first missing value (in the last process's part); a repeated ID (rows in the first and last);
     * of two repeated strings the smaller; 0 and -0 as one float; an object with no ID */
    const char *bad[] = {"--set catalog.missing=fail --set catalog.features=[C,D]",
                         "--set catalog.id=ID2 --set catalog.passthrough=[ID]", "--set catalog.id=SDUP",
                         "--set catalog.id=FDUP", "--set catalog.id=SHOLE"};
    const char *says[] = {"2501", "2991", "holds g000040 in rows 41 and 2701", "holds 0 in rows 4 and 2801",
                          "no value in row 2951"};
    for (int k = 0; k < 5; k++) {
        char one[1024];
        snprintf(args, sizeof args, "-q run '%s' --set output=bad %s", conf, bad[k]);
        assert_int_equal(tu_run(args, out, sizeof out, err, sizeof err), 2);
        error_line(err, one, sizeof one);
        if (!strstr(one, says[k])) fail_msg("%s: expected '%s' in: %s", bad[k], says[k], one);
        same_error_under_mpirun(args, one);
    }
    /* a feature with no value anywhere (every part drops every row): named from the counts summed over the parts */
    snprintf(args, sizeof args, "-q run '%s' --set output=none --set 'catalog.path=%s[col *; E = D / 0]' "
             "--set catalog.features=[C,E]", conf, cat);
    assert_int_equal(tu_run(args, out, sizeof out, err, sizeof err), 2);
    char none[1024];
    error_line(err, none, sizeof none);
    if (!strstr(none, "no rows left after dropping 3001 rows with missing feature values: feature 'E' has no value"))
        fail_msg("a feature missing everywhere: %s", none);
    same_error_under_mpirun(args, none);
    /* a truncated copy: the last processes' parts lie past its end, and every process count says what one says */
    char *cut = tu_path(dir, "cut.fits"), cmd[9000], one[1024];
    snprintf(cmd, sizeof cmd, "head -c 60000 '%s' > '%s'", cat, cut);
    assert_int_equal(system(cmd), 0);
    snprintf(args, sizeof args, "-q run '%s' --set output=cut --set catalog.path=%s", conf, cut);
    assert_int_equal(tu_run(args, out, sizeof out, err, sizeof err), 2);
    error_line(err, one, sizeof one);
    assert_non_null(strstr(one, "cut.fits"));
    assert_non_null(strstr(one, "truncated"));
    same_error_under_mpirun(args, one);
    free(cut);
    tu_rmtree(dir);
    free(dir);
    free(cat);
    free(conf);
}

/* Count of lines of s that start with prefix. */
static int lines_starting(const char *s, const char *prefix)
{
    int k = 0;
    for (const char *p = s; p && *p; p = strchr(p, '\n') ? strchr(p, '\n') + 1 : NULL)
        k += !strncmp(p, prefix, strlen(prefix));
    return k;
}

/* A bad config fails every process the same way: one line, exit 2; only
 * `run` is distributed. */
static void test_mpirun_errors(void **state)
{
    (void)state;
    if (!have_mpirun()) skip();
    char *dir = tu_tmpdir(), *conf = config(dir), args[4096];
    snprintf(args, sizeof args, "-q run '%s' --set forest.n_tres=5", conf);
    assert_int_equal(tu_run_under("mpirun -np 2", args, out, sizeof out, err, sizeof err), 2);
    assert_int_equal(lines_starting(err, "oddsky: error:"), 1);
    assert_non_null(strstr(err, "n_tres"));
    snprintf(args, sizeof args, "-q run '%s' --set catalog.features=[UG,NOPE]", conf);
    assert_int_equal(tu_run_under("mpirun -np 3", args, out, sizeof out, err, sizeof err), 2);
    assert_int_equal(lines_starting(err, "oddsky: error:"), 1);
    assert_non_null(strstr(err, "NOPE"));
    snprintf(args, sizeof args, "score '%s/one' '%s/x.fits'", dir, dir);
    assert_int_equal(tu_run_under("mpirun -np 2", args, out, sizeof out, err, sizeof err), 2);
    assert_int_equal(lines_starting(err, "oddsky: error:"), 1);
    assert_non_null(strstr(err, "only `oddsky run` is distributed"));
    /* a write that fails on every process (a file-size limit, as a full disk): one line, exit 2, and no
     * temporary left of the file every process was writing its rows into */
    snprintf(args, sizeof args, "-q run '%s' --top 0 --set output=full", conf);
    assert_int_equal(tu_run_under("mpirun -np 2 sh -c 'ulimit -f 400; trap \"\" XFSZ; exec \"$0\" \"$@\"'", args, out,
                                  sizeof out, err, sizeof err), 2);
    assert_int_equal(lines_starting(err, "oddsky: error:"), 1);
    assert_non_null(strstr(err, "cannot write"));
    char cmd[5000];
    snprintf(cmd, sizeof cmd, "ls -a '%s/full' | grep -q tmp-", dir);
    assert_int_not_equal(system(cmd), 0);
    tu_rmtree(dir);
    free(dir);
    free(conf);
}

/* A build without MPI refuses to run as several copies of the whole job. */
static void test_mpirun_without_mpi(void **state)
{
    (void)state;
    if (par_have_mpi() || system("command -v mpirun >/dev/null 2>&1") != 0) skip();
    setenv("OMPI_ALLOW_RUN_AS_ROOT", "1", 1);
    setenv("OMPI_ALLOW_RUN_AS_ROOT_CONFIRM", "1", 1);
    setenv("OMPI_MCA_rmaps_base_oversubscribe", "1", 1);
    char *dir = tu_tmpdir(), *conf = config(dir), args[4096];
    snprintf(args, sizeof args, "-q run '%s'", conf);
    assert_int_equal(tu_run_under("mpirun -np 2", args, out, sizeof out, err, sizeof err), 2);
    assert_non_null(strstr(err, "built without MPI"));
    char *one = tu_path(dir, "one");
    assert_false(tu_file_exists(one));
    free(one);
    tu_rmtree(dir);
    free(dir);
    free(conf);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_one_process),
        cmocka_unit_test(test_parts),
        cmocka_unit_test(test_select),
        cmocka_unit_test(test_mpirun_identical),
        cmocka_unit_test(test_mpirun_long_exports),
        cmocka_unit_test(test_mpirun_parts),
        cmocka_unit_test(test_mpirun_spectra),
        cmocka_unit_test(test_mpirun_vla_spectra),
        cmocka_unit_test(test_mpirun_errors),
        cmocka_unit_test(test_mpirun_without_mpi),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
