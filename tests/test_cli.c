/* test_cli.c — the oddsky executable: exit codes and messages. */
#define _GNU_SOURCE  /* truncate() */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <fitsio.h>

#include "testutil.h"

static char out[1 << 16], err[1 << 14];

static void test_help_and_version(void **state)
{
    (void)state;
    assert_int_equal(tu_run("--version", out, sizeof out, err, sizeof err), 0);
    assert_non_null(strstr(out, "oddsky "));
    assert_int_equal(tu_run("--help", out, sizeof out, err, sizeof err), 0);
    assert_non_null(strstr(out, "inspect"));
    assert_int_equal(tu_run("simulate --help", out, sizeof out, err, sizeof err), 0);
    assert_non_null(strstr(out, "[2000]"));  /* live defaults in the usage */
    /* every command's --help prints its usage and exits 0, whatever it
     * would need to run (report and serve once crashed here: no run to load) */
    const char *cmds[] = {"run", "check", "batch", "lens", "inspect", "compare", "next",
                          "label", "report", "serve", "score", "simulate"};
    for (size_t i = 0; i < sizeof cmds / sizeof *cmds; i++) {
        char args[64];
        snprintf(args, sizeof args, "%s --help", cmds[i]);
        if (tu_run(args, out, sizeof out, err, sizeof err) != 0 || !strstr(out, cmds[i]))
            fail_msg("`oddsky %s` did not print its usage and exit 0; stderr: %s", args, err);
    }
    /* and without its arguments, one error line and exit 2 (`lens` printed its usage to stdout, nothing
     * on stderr) */
    for (size_t i = 0; i < sizeof cmds / sizeof *cmds; i++) {
        if (tu_run(cmds[i], out, sizeof out, err, sizeof err) != 2 || strncmp(err, "oddsky: error: ", 15) ||
            strchr(err, '\n') != err + strlen(err) - 1)
            fail_msg("`oddsky %s` alone: stderr: %s", cmds[i], err);
    }
    assert_int_equal(tu_run("", out, sizeof out, err, sizeof err), 2);
    assert_int_equal(tu_run("frobnicate", out, sizeof out, err, sizeof err), 2);
    assert_non_null(strstr(err, "unknown command 'frobnicate'"));
    assert_int_equal(tu_run("inspect", out, sizeof out, err, sizeof err), 2);
    /* a bad option is named, in one line (getopt's own message is off) */
    assert_int_equal(tu_run("run x.yaml --set", out, sizeof out, err, sizeof err), 2);
    assert_string_equal(err, "oddsky: error: run: option '--set' needs a value — run `oddsky run --help`\n");
    assert_int_equal(tu_run("simulate -n", out, sizeof out, err, sizeof err), 2);
    assert_non_null(strstr(err, "option '-n' needs a value"));
    assert_int_equal(tu_run("compare a b --frob", out, sizeof out, err, sizeof err), 2);
    assert_string_equal(err, "oddsky: error: compare: unknown option '--frob' — run `oddsky compare --help`\n");
    /* lens score --ids: an empty ID was scored as "missing", a long one cut and then not found */
    const char *ids[] = {"''", "1,,2", "1,", "xxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxx"};
    for (size_t k = 0; k < sizeof ids / sizeof *ids; k++) {
        char args[256];
        snprintf(args, sizeof args, "lens score --model m.fits --cutouts c.fits --ids %s", ids[k]);
        if (tu_run(args, out, sizeof out, err, sizeof err) != 2 || !strstr(err, "--ids ") || strchr(err, '\n') != err + strlen(err) - 1)
            fail_msg("%s: %s", args, err);
    }
    assert_int_equal(tu_run("lens train -x", out, sizeof out, err, sizeof err), 2);
    assert_non_null(strstr(err, "unknown option '-x'"));
    /* an unknown letter inside a cluster, after a long option: the letter
     * is named, not the long option before it */
    assert_int_equal(tu_run("run x.yaml --force -xy", out, sizeof out, err, sizeof err), 2);
    assert_string_equal(err, "oddsky: error: run: unknown option '-x' — run `oddsky run --help`\n");
    /* numbers out of range, infinite or not numbers at all: refused by
     * name with the range (an infinite -n was cast to a size) */
    const char *bad[] = {"simulate -o x.fits -n 1e309", "simulate -o x.fits --quasars 2", "simulate -o x.fits -n 2.5",
                         "simulate -o x.fits --lens-survey --size 5", "lens train -o x.fits --pixel-scale inf",
                         "lens train -o x.fits --sky nan"};
    for (size_t k = 0; k < sizeof bad / sizeof *bad; k++) {
        assert_int_equal(tu_run(bad[k], out, sizeof out, err, sizeof err), 2);
        if (!strstr(err, "expects a") || strchr(err, '\n') != err + strlen(err) - 1) fail_msg("%s: %s", bad[k], err);
    }
}

/* Variable-length columns: their row lengths, one line for the columns
 * that share them, and that spectra read them. */
static void test_inspect_vla(void **state)
{
    (void)state;
    char *dir = tu_tmpdir(), *path = tu_path(dir, "v.fits"), fn[1100], args[1200];
    fitsfile *f = NULL;
    int status = 0;
    char *tt[] = {"ID", "FLUX", "WAVE", "IVAR"}, *tf[] = {"K", "1PE", "1QD", "1PE"};
    snprintf(fn, sizeof fn, "!%s", path);
    fits_create_file(&f, fn, &status);
    fits_create_tbl(f, BINARY_TBL, 0, 4, tt, tf, NULL, "SPEC", &status);
    double v[7] = {1, 2, 3, 4, 5, 6, 7};
    for (int r = 1; r <= 3; r++) {
        long long id = r;
        fits_write_col(f, TLONGLONG, 1, r, 1, 1, &id, &status);
        for (int c = 2; c <= 4; c++) fits_write_col(f, TDOUBLE, c, r, 1, c == 4 ? 7 : 2 + r, v, &status);
    }
    fits_close_file(f, &status);
    assert_int_equal(status, 0);
    snprintf(args, sizeof args, "inspect '%s'", path);
    assert_int_equal(tu_run(args, out, sizeof out, err, sizeof err), 0);
    assert_non_null(strstr(out, "\n  FLUX, WAVE: variable-length rows of 3 to 5 elements (read as spectra: "
                                "spectra.flux, wave, ivar or mask)\n  IVAR: variable-length rows of 7 to 7 elements"));
    tu_rmtree(dir);
    free(dir), free(path);
}

/* A survey-sized table (a sparse file: 2 x 10^7 rows of zeros, 320 MB on paper) is described in a moment,
 * its counts over the first 256 MB; --all reads every row.  It read every row of every column, which at
 * 10^9 rows took minutes. */
static void test_inspect_bounded(void **state)
{
    (void)state;
    char *dir = tu_tmpdir(), *path = tu_path(dir, "big.fits"), args[1200];
    const char *cards[] = {"SIMPLE  =                    T", "BITPIX  =                    8",
                           "NAXIS   =                    0", "EXTEND  =                    T", "END", NULL,
                           "XTENSION= 'BINTABLE'", "BITPIX  =                    8", "NAXIS   =                    2",
                           "NAXIS1  =                   16", "NAXIS2  =             20000000",
                           "PCOUNT  =                    0", "GCOUNT  =                    1",
                           "TFIELDS =                    2", "TTYPE1  = 'ID      '", "TFORM1  = 'K       '",
                           "TTYPE2  = 'F       '", "TFORM2  = 'D       '", "END", NULL};
    FILE *f = fopen(path, "wb");
    assert_non_null(f);
    for (int h = 0, k = 0; h < 2; h++, k++) {
        char block[2880];
        memset(block, ' ', sizeof block);
        for (int c = 0; cards[k]; c++, k++) memcpy(block + 80 * c, cards[k], strlen(cards[k]));
        fwrite(block, 1, sizeof block, f);
    }
    fclose(f);
    long long data = 16LL * 20000000;
    assert_int_equal(truncate(path, 2 * 2880 + (data + 2879) / 2880 * 2880), 0);
    snprintf(args, sizeof args, "inspect '%s'", path);
    assert_int_equal(tu_run(args, out, sizeof out, err, sizeof err), 0);
    if (!strstr(out, "20000000 rows x 2 columns\n  (null rows, min and max over the first 16777216 rows; "
                     "`oddsky inspect --all` reads all 20000000)\n"))
        fail_msg("%s", out);
    snprintf(args, sizeof args, "inspect --all '%s'", path);
    assert_int_equal(tu_run(args, out, sizeof out, err, sizeof err), 0);
    assert_null(strstr(out, "over the first"));
    tu_rmtree(dir);
    free(dir), free(path);
}

static void test_simulate_then_inspect(void **state)
{
    (void)state;
    char *dir = tu_tmpdir();
    char args[1024];
    snprintf(args, sizeof args, "simulate -n 500 -s 3 -o '%s/a.fits'", dir);
    assert_int_equal(tu_run(args, out, sizeof out, err, sizeof err), 0);
    snprintf(args, sizeof args, "simulate -n 500 -s 3 -o '%s/b.fits'", dir);
    assert_int_equal(tu_run(args, out, sizeof out, err, sizeof err), 0);
    /* refuses to overwrite, leaves no temporary behind */
    assert_int_equal(tu_run(args, out, sizeof out, err, sizeof err), 2);
    assert_non_null(strstr(err, "--overwrite"));
    /* the same seed gives the same data: same DATASUM (the CHECKSUM comments
     * carry the time of writing) */
    char cmd[1024];
    snprintf(cmd, sizeof cmd, "test \"$(grep -ao 'DATASUM = .[0-9 ]*' '%s/a.fits')\" = \"$(grep -ao 'DATASUM = .[0-9 ]*' '%s/b.fits')\"", dir, dir);
    assert_int_equal(system(cmd), 0);
    snprintf(cmd, sizeof cmd, "test $(ls '%s' | wc -l) -eq 2", dir);
    assert_int_equal(system(cmd), 0);
    snprintf(args, sizeof args, "inspect '%s/a.fits'", dir);
    assert_int_equal(tu_run(args, out, sizeof out, err, sizeof err), 0);
    assert_non_null(strstr(out, "500 rows x 12 columns"));
    assert_non_null(strstr(out, "REDSHIFT"));
    /* a spectrum column's wavelengths from its vector WCS, for choosing spectra.grid_* */
    snprintf(args, sizeof args, "inspect '%s/catalogs/mock_spectra.fits'", getenv("ODDSKY_SOURCE_DIR"));
    assert_int_equal(tu_run(args, out, sizeof out, err, sizeof err), 0);
    assert_non_null(strstr(out, "\n  FLUX: element coordinates 3800 to 9195.5, step 4.5 (its vector WCS, 1CRVL9/1CDLT9)\n"));
    snprintf(args, sizeof args, "simulate -n 5 -o '%s/c.fits'", dir);
    assert_int_equal(tu_run(args, out, sizeof out, err, sizeof err), 2);
    /* lens train -o: a catalog there is refused before training, a lens
     * model there is retrained, --overwrite replaces anything */
    const char *train = "lens train -n 30 --test 10 --size 16 --epochs 1 --hidden 4";
    snprintf(args, sizeof args, "%s -o '%s/a.fits'", train, dir);
    assert_int_equal(tu_run(args, out, sizeof out, err, sizeof err), 2);
    assert_non_null(strstr(err, "a.fits: exists and is not a lens model — choose another -o, or pass --overwrite"));
    snprintf(cmd, sizeof cmd, "test \"$(grep -ao 'DATASUM = .[0-9 ]*' '%s/a.fits')\" = \"$(grep -ao 'DATASUM = .[0-9 ]*' "
             "'%s/b.fits')\"", dir, dir);
    assert_int_equal(system(cmd), 0);  /* the catalog untouched */
    for (int k = 0; k < 2; k++) {
        snprintf(args, sizeof args, "%s -o '%s/m.fits'", train, dir);
        assert_int_equal(tu_run(args, out, sizeof out, err, sizeof err), 0);
    }
    snprintf(args, sizeof args, "%s -o '%s/a.fits' --overwrite", train, dir);
    assert_int_equal(tu_run(args, out, sizeof out, err, sizeof err), 0);
    tu_rmtree(dir);
    free(dir);
}

static void test_broken_zoo_exit_2(void **state)
{
    (void)state;
    char *dir = tu_shared("fits_zoo");
    if (!dir) skip();
    const char *broken[] = {"Astro_UIT.fits", "truncated_m13.fits", "truncated_fermi.fits",
                            "not_fits.fits", "empty.fits"};
    for (size_t k = 0; k < sizeof broken / sizeof *broken; k++) {
        char args[1024];
        snprintf(args, sizeof args, "inspect '%s/%s'", dir, broken[k]);
        int rc = tu_run(args, out, sizeof out, err, sizeof err);
        if (rc != 2) fail_msg("%s: exit %d, stderr: %s", broken[k], rc, err);
        assert_non_null(strstr(err, "oddsky: error: "));
        assert_non_null(strstr(err, broken[k]));
        assert_non_null(strstr(err, " — "));
        /* one line */
        assert_ptr_equal(strchr(err, '\n'), err + strlen(err) - 1);
    }
    free(dir);
}

static void test_inspect_real_catalogs(void **state)
{
    (void)state;
    char *fermi = tu_shared("catalogs/fermi_3fgl.fits.gz");
    char *sdss = tu_shared("catalogs/sdss_dr14_10k.fits");
    if (!fermi || !sdss) { free(fermi); free(sdss); skip(); }
    char args[1024];
    snprintf(args, sizeof args, "inspect '%s'", fermi);
    assert_int_equal(tu_run(args, out, sizeof out, err, sizeof err), 0);
    assert_non_null(strstr(out, "LAT_Point_Source_Catalog  3034 rows x 77 columns"));
    assert_non_null(strstr(out, "Flux_History"));
    snprintf(args, sizeof args, "inspect '%s'", sdss);
    assert_int_equal(tu_run(args, out, sizeof out, err, sizeof err), 0);
    assert_non_null(strstr(out, "10000 rows x 18 columns"));
    free(fermi);
    free(sdss);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_help_and_version),
        cmocka_unit_test(test_inspect_bounded),
        cmocka_unit_test(test_simulate_then_inspect),
        cmocka_unit_test(test_inspect_vla),
        cmocka_unit_test(test_broken_zoo_exit_2),
        cmocka_unit_test(test_inspect_real_catalogs),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
