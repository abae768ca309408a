/* test_cat.c — catalog ingest and inspect. */
#include <fitsio.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cat.h"
#include "testutil.h"

#define NR 23  /* rows in the generated table: not a multiple of small chunks */

typedef struct fixture {
    char *dir;
    char *all;  /* table with every column type */
} fixture;

/* Expected values, computed the same way the writer fills them. */
static double v_b(int r) { return (double)(r * 7 % 256); }
static double v_i(int r) { return (double)(r * 100 - 1000); }
static double v_j(int r) { return (double)(r * 100000 - 7); }
static double v_k(int r) { return (double)((long long)r * 3000000000LL); }
static double v_e(int r) { return (double)(float)(r * 0.25f - 1.5f); }
static double v_d(int r) { return r * 1.0 / 3.0; }
static double v_scaled(int r) { return 10.0 + 0.5 * (r - 5); }  /* TSCAL 0.5 TZERO 10 */
static double v_u(int r) { return 40000.0 + r; }                /* uint16 via TZERO */
static double v_vec(int r, int k) { return 100.0 * r + k; }
/* Rows with a missing feature: I has TNULL at r=3; E NaN at r=5 and r=6. */
static int i_null(int r) { return r == 3; }
static int e_nan(int r) { return r == 5 || r == 6; }

static void write_all_types(const char *path)
{
    int status = 0;
    fitsfile *f;
    char *ttype[] = {"OBJ", "NAME", "B", "I", "J", "K", "E", "D", "L", "SCALED", "U", "VEC", "RA"};
    char *tform[] = {"K", "8A", "B", "I", "J", "K", "E", "D", "L", "I", "I", "3E", "D"};
    char *tunit[] = {"", "", "", "adu", "", "", "mag", "", "", "Jy", "", "", "deg"};
    char path2[512];
    snprintf(path2, sizeof path2, "!%s", path);
    fits_create_file(&f, path2, &status);
    fits_create_img(f, BYTE_IMG, 0, NULL, &status);
    long ax[2] = {4, 4};
    fits_create_img(f, FLOAT_IMG, 2, ax, &status);  /* an image HDU before the table */
    fits_write_key(f, TSTRING, "EXTNAME", "PIXELS", NULL, &status);
    fits_create_tbl(f, BINARY_TBL, 0, 13, ttype, tform, tunit, "CAT", &status);
    long tnull = -32768;
    fits_write_key(f, TLONG, "TNULL4", &tnull, NULL, &status);
    double sc = 0.5, z0 = 10.0, uz = 32768.0;
    fits_write_key(f, TDOUBLE, "TSCAL10", &sc, NULL, &status);
    fits_write_key(f, TDOUBLE, "TZERO10", &z0, NULL, &status);
    fits_write_key(f, TDOUBLE, "TZERO11", &uz, NULL, &status);
    fits_set_tscale(f, 10, sc, z0, &status);
    fits_set_tscale(f, 11, 1.0, uz, &status);
    fits_set_btblnull(f, 4, tnull, &status);
    for (int r = 0; r < NR; r++) {
        long long row = r + 1, id = 1000 + r, k = (long long)v_k(r);
        char name[16], *np = name;
        snprintf(name, sizeof name, "obj%02d", r);
        unsigned char b = (unsigned char)v_b(r);
        short iv = (short)v_i(r);
        int j = (int)v_j(r);
        float e = e_nan(r) ? NAN : (float)v_e(r);
        double d = v_d(r), s = v_scaled(r), u = v_u(r), ra = 10.0 + r;
        char l = (char)(r % 2);
        float vec[3] = {(float)v_vec(r, 1), (float)v_vec(r, 2), (float)v_vec(r, 3)};
        fits_write_col(f, TLONGLONG, 1, row, 1, 1, &id, &status);
        fits_write_col(f, TSTRING, 2, row, 1, 1, &np, &status);
        fits_write_col(f, TBYTE, 3, row, 1, 1, &b, &status);
        if (i_null(r)) fits_write_col_null(f, 4, row, 1, 1, &status);
        else fits_write_col(f, TSHORT, 4, row, 1, 1, &iv, &status);
        fits_write_col(f, TINT, 5, row, 1, 1, &j, &status);
        fits_write_col(f, TLONGLONG, 6, row, 1, 1, &k, &status);
        fits_write_col(f, TFLOAT, 7, row, 1, 1, &e, &status);
        fits_write_col(f, TDOUBLE, 8, row, 1, 1, &d, &status);
        fits_write_col(f, TLOGICAL, 9, row, 1, 1, &l, &status);
        fits_write_col(f, TDOUBLE, 10, row, 1, 1, &s, &status);
        fits_write_col(f, TDOUBLE, 11, row, 1, 1, &u, &status);
        fits_write_col(f, TFLOAT, 12, row, 1, 3, vec, &status);
        fits_write_col(f, TDOUBLE, 13, row, 1, 1, &ra, &status);
    }
    /* A second table: empty, and one with a single row. */
    char *t1[] = {"X"}, *f1[] = {"D"}, *u1[] = {""};
    fits_create_tbl(f, BINARY_TBL, 0, 1, t1, f1, u1, "EMPTY", &status);
    fits_create_tbl(f, BINARY_TBL, 0, 1, t1, f1, u1, "ONE", &status);
    double x = 42.0;
    fits_write_col(f, TDOUBLE, 1, 1, 1, 1, &x, &status);
    /* An ASCII table with a null string. */
    char *ta[] = {"A", "B"}, *fa[] = {"F8.3", "I6"}, *ua[] = {"", ""};
    fits_create_tbl(f, ASCII_TBL, 0, 2, ta, fa, ua, "ASC", &status);
    fits_write_key(f, TSTRING, "TNULL2", "*", NULL, &status);
    fits_set_atblnull(f, 2, "*", &status);
    for (int r = 0; r < 4; r++) {
        double a = r * 1.5;
        int bi = r * 10;
        fits_write_col(f, TDOUBLE, 1, r + 1, 1, 1, &a, &status);
        if (r == 2) fits_write_col_null(f, 2, r + 1, 1, 1, &status);
        else fits_write_col(f, TINT, 2, r + 1, 1, 1, &bi, &status);
    }
    fits_close_file(f, &status);
    assert_int_equal(status, 0);
}

static int setup(void **state)
{
    fixture *fx = calloc(1, sizeof *fx);
    fx->dir = tu_tmpdir();
    fx->all = tu_path(fx->dir, "all.fits");
    write_all_types(fx->all);
    *state = fx;
    return 0;
}

static int teardown(void **state)
{
    fixture *fx = *state;
    tu_rmtree(fx->dir);
    free(fx->dir);
    free(fx->all);
    free(fx);
    return 0;
}

/* Reads `features` from the fixture table with the given policy. */
static int read_feats(const fixture *fx, const char *const *feats, int n, cat_missing m, long chunk,
                      cat **out, ody_err *err)
{
    cat_opt o;
    cat_opt_init(&o);
    o.path = fx->all;
    o.features = feats;
    o.n_features = n;
    o.missing = m;
    o.chunk_rows = chunk;
    o.id_col = "obj";
    return cat_read(&o, out, NULL, err);
}

/* ================================================================ values */

static void test_every_type_read_back(void **state)
{
    fixture *fx = *state;
    const char *feats[] = {"B", "j", "K", "D", "L", "SCALED", "U", "VEC[2]", "vec[3]"};
    long chunks[] = {0, 1, 7, 1000};
    for (int ci = 0; ci < 4; ci++) {
        cat *c = NULL;
        ody_err err = {0};
        assert_ok(read_feats(fx, feats, 9, CAT_MISSING_FAIL, chunks[ci], &c, &err), err);
        assert_int_equal(c->n_rows, NR);
        assert_int_equal(c->n_feat, 9);
        for (int r = 0; r < NR; r++) {
            const float *x = c->X + (size_t)r * 9;
            assert_true(x[0] == (float)v_b(r));
            assert_true(x[1] == (float)v_j(r));
            assert_true(x[2] == (float)v_k(r));
            assert_true(x[3] == (float)v_d(r));
            assert_true(x[4] == (float)(r % 2));
            assert_true(x[5] == (float)v_scaled(r));
            assert_true(x[6] == (float)v_u(r));
            assert_true(x[7] == (float)v_vec(r, 2));
            assert_true(x[8] == (float)v_vec(r, 3));
            assert_int_equal(c->id.type, CAT_COL_INT);
            assert_int_equal(c->id.i[r], 1000 + r);
            assert_int_equal(c->row[r], r + 1);
        }
        assert_string_equal(c->feat_names[7], "VEC[2]");
        cat_destroy(c);
    }
}

/* A vector column named bare is a block of features, one per element; a
 * slice NAME[a:b] takes elements a..b; both read the column once a chunk. */
static void test_feature_blocks(void **state)
{
    fixture *fx = *state;
    const char *feats[] = {"B", "VEC", "vec[2:3]", "VEC[1]"};
    long chunks[] = {0, 1, 7};
    for (int ci = 0; ci < 3; ci++) {
        cat *c = NULL;
        ody_err err = {0};
        assert_ok(read_feats(fx, feats, 4, CAT_MISSING_FAIL, chunks[ci], &c, &err), err);
        assert_int_equal(c->n_feat, 7);
        static const char *names[] = {"B", "VEC[1]", "VEC[2]", "VEC[3]", "VEC[2]", "VEC[3]", "VEC[1]"};
        static const int elem[] = {0, 1, 2, 3, 2, 3, 1};
        for (int j = 0; j < 7; j++) assert_string_equal(c->feat_names[j], names[j]);
        for (int r = 0; r < NR; r++)
            for (int j = 1; j < 7; j++) assert_true(c->X[(size_t)r * 7 + (size_t)j] == (float)v_vec(r, elem[j]));
        cat_destroy(c);
    }
}

/* ================================================================ spectra */

/* Options reading the spectra of path with sp, by ID. */
static cat_opt spec_opt(const char *path, const cat_spec *sp)
{
    cat_opt o;
    cat_opt_init(&o);
    o.path = path;
    o.n_features = 0;
    o.id_col = "ID";
    o.spec = sp;
    return o;
}

/* A new table SPEC at path with n columns tt of forms tf: the caller writes
 * its rows and closes it. */
static fitsfile *spec_table(const char *path, int n, char **tt, char **tf)
{
    fitsfile *f = NULL;
    int status = 0;
    char fn[300];
    snprintf(fn, sizeof fn, "!%s", path);
    fits_create_file(&f, fn, &status);
    fits_create_tbl(f, BINARY_TBL, 0, n, tt, tf, NULL, "SPEC", &status);
    assert_int_equal(status, 0);
    return f;
}

/* A table of spectra observed at redshift z on one grid (WCS 1000 + 2 k A,
 * 200 pixels) whose rest-frame flux density is a + b lambda: linear, so any
 * flux-conserving resampling gives a + b (bin centre) exactly.  Row 3 has
 * pixels flagged in MASK (set to garbage), row 4 is mostly masked, row 5
 * has no redshift. */
static char *write_spectra(const char *dir)
{
    char *path = tu_path(dir, "spec.fits");
    fitsfile *f;
    int status = 0;
    char fn[300];
    snprintf(fn, sizeof fn, "!%s", path);
    fits_create_file(&f, fn, &status);
    char *tt[] = {"ID", "Z", "FLUX", "MASK"}, *tf[] = {"K", "D", "200E", "200B"};
    fits_create_tbl(f, BINARY_TBL, 0, 4, tt, tf, NULL, "SPEC", &status);
    double crval = 1000, cdelt = 2;
    fits_write_key(f, TDOUBLE, "1CRVL3", &crval, NULL, &status);
    fits_write_key(f, TDOUBLE, "1CDLT3", &cdelt, NULL, &status);
    for (int r = 0; r < 5; r++) {
        long long id = r + 1;
        double z = 0.1 * r, a = 1 + r, b = 0.01;
        float flux[200];
        unsigned char mask[200] = {0};
        for (int k = 0; k < 200; k++) flux[k] = (float)(a + b * (1000 + 2 * k) / (1 + z));
        if (r == 2)  /* observed 1300-1318 A: rest 1083-1098, inside the grid */
            for (int k = 150; k < 160; k++) flux[k] = 1e6f, mask[k] = 1;
        if (r == 3)
            for (int k = 0; k < 170; k++) mask[k] = 1;
        fits_write_col(f, TLONGLONG, 1, r + 1, 1, 1, &id, &status);
        if (r == 4) fits_write_col_null(f, 2, r + 1, 1, 1, &status);
        else fits_write_col(f, TDOUBLE, 2, r + 1, 1, 1, &z, &status);
        fits_write_col(f, TFLOAT, 3, r + 1, 1, 200, flux, &status);
        fits_write_col(f, TBYTE, 4, r + 1, 1, 200, mask, &status);
    }
    fits_close_file(f, &status);
    assert_int_equal(status, 0);
    return path;
}

static void test_spectra_recipe(void **state)
{
    (void)state;
    char *dir = tu_tmpdir(), *path = write_spectra(dir);
    cat_spec sp = {.flux = "FLUX", .mask = "MASK", .redshift = "Z", .grid_start = 1000, .grid_stop = 1200,
                   .grid_step = 4, .downsample = 1};
    cat_opt o = spec_opt(path, &sp);
    cat *c = NULL;
    ody_err e = {0};
    assert_ok(cat_read(&o, &c, NULL, &e), e);
    assert_int_equal(c->n_feat, 51);
    assert_string_equal(c->feat_names[0], "FLUX@1000");
    assert_string_equal(c->feat_names[50], "FLUX@1200");
    assert_int_equal(c->n_rows, 3);           /* row 4 mostly masked, row 5 without z: dropped */
    assert_int_equal(c->n_dropped, 2);
    assert_int_equal(c->spec_bad_why[CAT_SPEC_COVER], 1);
    assert_int_equal(c->spec_bad_why[CAT_SPEC_NO_Z], 1);
    assert_int_equal(c->drop_spec[0], CAT_SPEC_COVER);  /* dropped.csv says why each went */
    assert_int_equal(c->drop_spec[1], CAT_SPEC_NO_Z);
    assert_string_equal(cat_spec_why(CAT_SPEC_NO_Z), "with no usable redshift");
    for (size_t r = 0; r < 3; r++)
        for (size_t k = 0; k < 51; k++) {  /* every bin the spectrum covers whole: to the pixels' sampling */
            double c0 = 1000 + 4.0 * (double)k, z = 0.1 * (double)r;
            if (c0 - 2 < 999 / (1 + z) || c0 + 2 > 1399 / (1 + z)) continue;
            double want = (1.0 + (double)r) + 0.01 * c0, got = c->X[r * 51 + k];
            if (fabs(got - want) > 5e-4 * want) fail_msg("row %zu bin %zu: %g, want %g", r, k, got, want);
        }
    cat_destroy(c);
    /* normalised by the median over a window, and two bins to a feature */
    sp.norm_lo = 1090, sp.norm_hi = 1110, sp.downsample = 2;
    assert_ok(cat_read(&o, &c, NULL, &e), e);
    assert_int_equal(c->n_feat, 25);
    for (size_t r = 0; r < 3; r++) {
        double a = 1.0 + (double)r, med = a + 0.01 * 1100;
        double want = (a + 0.01 * 1042) / med;  /* feature 5: bins 1040 and 1044 averaged */
        if (fabs(c->X[r * 25 + 5] - want) > 1e-3 * want) fail_msg("row %zu: %g, want %g", r, c->X[r * 25 + 5], want);
    }
    cat_destroy(c);
    /* the file's own grid needs spectra at rest: a redshift column asks for a grid */
    sp.grid_step = 0;
    assert_int_equal(cat_read(&o, &c, NULL, &e), ODY_EINPUT);
    assert_non_null(strstr(e.msg, "grid_start"));
    sp.redshift = NULL, sp.norm_lo = sp.norm_hi = 0, sp.downsample = 1;
    assert_ok(cat_read(&o, &c, NULL, &e), e);  /* at rest on the file's grid: 200 features, as written */
    assert_int_equal(c->n_feat, 200);
    assert_true(fabs(c->X[10] - (1 + 0.01 * 1020)) < 1e-4);
    cat_destroy(c);
    sp.downsample = 201;  /* more than the file's own grid has */
    assert_int_equal(cat_read(&o, &c, NULL, &e), ODY_EINPUT);
    assert_non_null(strstr(e.msg, "spec.fits: spectra.downsample = 201 is more than the 200 bins of the spectra's own "
                                  "grid — set it to at most 200"));
    sp.downsample = 1;
    sp.flux = "Z";  /* a scalar is no spectrum */
    assert_int_equal(cat_read(&o, &c, NULL, &e), ODY_EINPUT);
    assert_non_null(strstr(e.msg, "vector column"));
    tu_rmtree(dir);
    free(dir), free(path);
}

/* The spectra of path (FLUX, WAVE) on the grid 1010-1190 A by 4 into *c. */
static int read_wave_grid(const char *path, cat **c, const ody_log *log, ody_err *e)
{
    cat_spec sp = {.flux = "FLUX", .wave = "WAVE", .grid_start = 1010, .grid_stop = 1190, .grid_step = 4,
                   .downsample = 1};
    cat_opt o = spec_opt(path, &sp);
    *c = NULL;
    return cat_read(&o, c, log, e);
}

/* Spectra stored red to blue are read as the same spectra stored blue to
 * red, whether the wavelengths come a row (a WAVE column) or from a
 * negative WCS step; a row whose wavelengths are out of order is a missing
 * value counted under its own reason.  Rows 1 and 2 are row 0 reversed;
 * row 3 has two pixels swapped; row 4's wavelengths are NaN. */
static void test_spectra_red_to_blue(void **state)
{
    (void)state;
    char *dir = tu_tmpdir(), *path = tu_path(dir, "rb.fits");
    char *tt[] = {"ID", "FLUX", "WAVE", "FLUXD"}, *tf[] = {"K", "100E", "100D", "100E"};
    fitsfile *f = spec_table(path, 4, tt, tf);
    int status = 0;
    double crval = 1198, cdelt = -2;  /* FLUXD: every row red to blue on the WCS */
    fits_write_key(f, TDOUBLE, "1CRVL4", &crval, NULL, &status);
    fits_write_key(f, TDOUBLE, "1CDLT4", &cdelt, NULL, &status);
    for (int r = 0; r < 5; r++) {
        long long id = r + 1;
        float flux[100], fluxd[100];
        double wave[100];
        for (int k = 0; k < 100; k++) {
            int q = r == 1 || r == 2 ? 99 - k : k;  /* rows 1, 2: reversed */
            wave[k] = r == 4 ? NAN : 1000 + 2 * q;
            flux[k] = (float)(2 + 0.01 * (1000 + 2 * q) + (q % 7 == 0));
            fluxd[k] = (float)(2 + 0.01 * (1198 - 2 * k) + ((99 - k) % 7 == 0));
        }
        if (r == 3) wave[40] = 1000 + 2 * 41, wave[41] = 1000 + 2 * 40;
        fits_write_col(f, TLONGLONG, 1, r + 1, 1, 1, &id, &status);
        fits_write_col(f, TFLOAT, 2, r + 1, 1, 100, flux, &status);
        fits_write_col(f, TDOUBLE, 3, r + 1, 1, 100, wave, &status);
        fits_write_col(f, TFLOAT, 4, r + 1, 1, 100, fluxd, &status);
    }
    fits_close_file(f, &status);
    assert_int_equal(status, 0);
    cat *c = NULL;
    ody_err e = {0};
    char *text = NULL;
    size_t len = 0;
    FILE *m = open_memstream(&text, &len);
    ody_log log = {ODY_LOG_INFO, m, NULL};
    assert_ok(read_wave_grid(path, &c, &log, &e), e);
    fclose(m);
    /* the bins missing alike in one line, and the reason named */
    assert_non_null(strstr(text, "features FLUX@1010 to FLUX@1190 (46): 2 missing values each (drop)\n"));
    assert_null(strstr(text, "feature FLUX@1014"));
    assert_non_null(strstr(text, "2 spectra unusable: 2 with wavelengths not finite or not in order\n"));
    free(text);
    assert_int_equal(c->n_rows, 3);
    assert_int_equal(c->spec_bad, 2);
    assert_int_equal(c->spec_bad_why[CAT_SPEC_WAVE], 2);
    assert_int_equal(c->spec_bad_why[CAT_SPEC_COVER], 0);
    for (size_t k = 0; k < c->n_feat; k++) {
        assert_true(c->X[k] == c->X[c->n_feat + k]);  /* row 1 as row 0 */
        assert_true(c->X[k] == c->X[2 * c->n_feat + k]);
    }
    float row0[46];
    assert_int_equal(c->n_feat, 46);
    memcpy(row0, c->X, sizeof row0);
    cat_destroy(c);
    /* the file's own grid, with a negative step: the features run blue to red */
    cat_spec sp = {.flux = "FLUXD", .grid_start = 1010, .grid_stop = 1190, .downsample = 1};
    cat_opt o = spec_opt(path, &sp);
    assert_ok(cat_read(&o, &c, NULL, &e), e);
    assert_int_equal(c->n_rows, 5);
    assert_int_equal(c->n_feat, 100);
    assert_string_equal(c->feat_names[0], "FLUXD@1000");
    assert_string_equal(c->feat_names[99], "FLUXD@1198");
    for (size_t k = 0; k < 100; k++) {
        double want = 2 + 0.01 * (1000 + 2.0 * (double)k) + (k % 7 == 0);
        if (fabs(c->X[k] - want) > 1e-4 * want) fail_msg("bin %zu: %g, want %g", k, c->X[k], want);
    }
    cat_destroy(c);
    /* on the configured grid, the WCS's red-to-blue spectra are the WAVE column's */
    sp.grid_step = 4;
    assert_ok(cat_read(&o, &c, NULL, &e), e);
    for (size_t k = 0; k < 46; k++)
        if (fabs(c->X[k] - row0[k]) > 1e-5 * row0[k]) fail_msg("bin %zu: %g, want %g", k, c->X[k], row0[k]);
    cat_destroy(c);
    tu_rmtree(dir);
    free(dir), free(path);
}

/* Shorter spectra in a wider column, their unused pixels' wavelengths NaN
 * or 0 at either end (and red to blue too): read as the spectrum alone.
 * Row r holds the same 100 pixels from offset 0, 20, 10 and (reversed) 5. */
static void test_spectra_padded(void **state)
{
    (void)state;
    char *dir = tu_tmpdir(), *path = tu_path(dir, "pad.fits");
    char *tt[] = {"ID", "FLUX", "WAVE"}, *tf[] = {"K", "120E", "120D"};
    fitsfile *f = spec_table(path, 3, tt, tf);
    int status = 0;
    const int off[4] = {0, 20, 10, 5};
    for (int r = 0; r < 4; r++) {
        long long id = r + 1;
        float flux[120];
        double wave[120];
        for (int k = 0; k < 120; k++) {
            int q = k - off[r];
            if (r == 3) q = 99 - q;  /* red to blue */
            int in = k >= off[r] && k < off[r] + 100;
            wave[k] = in ? 1000 + 2 * q : r == 1 ? 0 : NAN;
            flux[k] = in ? (float)(2 + 0.01 * (1000 + 2 * q) + (q % 5 == 0)) : r == 1 ? 0.0f : NAN;
        }
        fits_write_col(f, TLONGLONG, 1, r + 1, 1, 1, &id, &status);
        fits_write_col(f, TFLOAT, 2, r + 1, 1, 120, flux, &status);
        fits_write_col(f, TDOUBLE, 3, r + 1, 1, 120, wave, &status);
    }
    fits_close_file(f, &status);
    assert_int_equal(status, 0);
    cat *c = NULL;
    ody_err e = {0};
    assert_ok(read_wave_grid(path, &c, NULL, &e), e);
    assert_int_equal(c->n_rows, 4);
    for (size_t r = 1; r < 4; r++)
        for (size_t k = 0; k < c->n_feat; k++)
            if (c->X[r * c->n_feat + k] != c->X[k]) fail_msg("row %zu bin %zu: %g, not %g", r, k, c->X[r * c->n_feat + k], c->X[k]);
    /* the same spectra as variable-length arrays (no padding), row 1 red to
     * blue, row 2's wavelengths running past its flux, row 3 with no pixels:
     * rows 0-2 read as above, row 3 a missing value */
    float row0[120];
    size_t nf = c->n_feat;
    assert_true(nf <= 120);
    memcpy(row0, c->X, nf * sizeof *row0);
    cat_destroy(c);
    char *tv[] = {"ID", "FLUX", "WAVE"}, *fv[] = {"K", "1PE(100)", "1QD"};
    f = spec_table(path, 3, tv, fv);
    for (int r = 0; r < 4; r++) {
        long long id = r + 1;
        float flux[100];
        double wave[110];
        for (int k = 0; k < 110; k++) {
            int q = r == 1 ? 99 - k : k;
            wave[k] = 1000 + 2 * q;
            if (k < 100) flux[k] = (float)(2 + 0.01 * (1000 + 2 * q) + (q % 5 == 0));
        }
        fits_write_col(f, TLONGLONG, 1, r + 1, 1, 1, &id, &status);
        if (r < 3) fits_write_col(f, TFLOAT, 2, r + 1, 1, 100, flux, &status);
        fits_write_col(f, TDOUBLE, 3, r + 1, 1, r == 2 ? 110 : 100, wave, &status);
    }
    fits_close_file(f, &status);
    assert_int_equal(status, 0);
    assert_ok(read_wave_grid(path, &c, NULL, &e), e);
    assert_int_equal(c->n_rows, 3);
    assert_int_equal(c->n_dropped, 1);
    assert_int_equal(c->spec_bad_why[CAT_SPEC_EMPTY], 1);
    assert_int_equal(c->n_feat, nf);
    for (size_t r = 0; r < 3; r++)
        for (size_t k = 0; k < nf; k++)
            if (c->X[r * nf + k] != row0[k]) fail_msg("VLA row %zu bin %zu: %g, not %g", r, k, c->X[r * nf + k], row0[k]);
    cat_destroy(c);
    /* inspect reads them a row at a time: no null row, the flux's range */
    cat_info *info = NULL;
    assert_ok(cat_inspect(path, &info, &e), e);
    const cat_colinfo *fc = &info->hdu[1].cols[1];
    assert_int_equal(fc->n_null, 0);
    assert_int_equal(fc->len_min, 0);  /* row 3 */
    assert_int_equal(fc->len_max, 100);
    assert_int_equal(info->hdu[1].cols[0].len_max, -1);  /* a fixed-size column */
    assert_true(fabs(fc->lo - 12.02) < 1e-4 && fabs(fc->hi - 14.9) < 1e-4);  /* q = 1 and q = 95 */
    cat_info_destroy(info);
    /* as a feature a variable-length array is refused, saying where it is read */
    const char *feat[] = {"FLUX"};
    cat_opt fo;
    cat_opt_init(&fo);
    fo.path = path, fo.features = feat, fo.n_features = 1;
    c = NULL;
    assert_int_equal(cat_read(&fo, &c, NULL, &e), ODY_EINPUT);
    assert_null(c);
    assert_non_null(strstr(e.msg, "pad.fits: feature column 'FLUX' is a variable-length array, which oddsky reads "
                                  "only as a spectrum"));
    /* a damaged descriptor, row 2's flux pointing past the heap: refused by row, before CFITSIO reads garbage;
     * inspect leaves that column's counts unknown */
    char fn[300];
    snprintf(fn, sizeof fn, "%s[SPEC]", path);
    fits_open_file(&f, fn, READWRITE, &status);
    fits_write_descript(f, 2, 2, 100, 1000000, &status);
    fits_close_file(f, &status);
    assert_int_equal(status, 0);
    c = NULL;
    assert_int_equal(read_wave_grid(path, &c, NULL, &e), ODY_EINPUT);
    assert_null(c);
    assert_non_null(strstr(e.msg, "pad.fits: spectra.flux column 'FLUX' at row 2 points past the end of the table's heap "
                                  "— the file is damaged or truncated: check it with `fitsverify "));
    cat_info *bad = NULL;
    assert_ok(cat_inspect(path, &bad, &e), e);
    assert_int_equal(bad->hdu[1].cols[1].n_null, -1);
    assert_int_equal(bad->hdu[1].cols[2].n_null, 0);  /* WAVE is intact */
    cat_info_destroy(bad);
    tu_rmtree(dir);
    free(dir), free(path);
}

/* Optional pass-through columns (`oddsky score`): one the table lacks is
 * left out and named; one it has is carried, matched as any column is
 * (in case alone; '#' and '?' in a name are no CFITSIO wildcards). */
static void test_passthru_optional(void **state)
{
    (void)state;
    char *dir = tu_tmpdir(), *path = tu_path(dir, "p.fits");
    char *tt[] = {"ID", "N#1", "X"}, *tf[] = {"K", "D", "E"};
    fitsfile *f = spec_table(path, 3, tt, tf);
    int status = 0;
    for (int r = 1; r <= 12; r++) {
        long long id = r;
        double n = 10.0 * r;
        float x = (float)(r % 5);
        fits_write_col(f, TLONGLONG, 1, r, 1, 1, &id, &status);
        fits_write_col(f, TDOUBLE, 2, r, 1, 1, &n, &status);
        fits_write_col(f, TFLOAT, 3, r, 1, 1, &x, &status);
    }
    fits_close_file(f, &status);
    assert_int_equal(status, 0);
    const char *feat[] = {"X"}, *pass[] = {"n#1", "GONE", "N?1"};  /* N?1: a CFITSIO template would match N#1 */
    cat_opt o;
    cat_opt_init(&o);
    o.path = path;
    o.features = feat;
    o.n_features = 1;
    o.id_col = "ID";
    o.passthru = pass;
    o.n_passthru = 3;
    o.passthru_optional = 1;
    cat *c = NULL;
    ody_err e = {0};
    assert_ok(cat_read(&o, &c, NULL, &e), e);
    assert_int_equal(c->n_pass, 1);
    assert_string_equal(c->pass_left, "GONE, N?1");
    cat_destroy(c);
    o.passthru_optional = 0;  /* a run's own catalog: a missing one is an error */
    assert_int_equal(cat_read(&o, &c, NULL, &e), ODY_EINPUT);
    assert_non_null(strstr(e.msg, "no pass-through column named 'GONE'"));
    tu_rmtree(dir);
    free(dir), free(path);
}

/* Every spectrum unusable: the error says why and what to set, not "drop
 * FLUX@... from catalog.features" (a grid bin is no catalog column). */
static void test_spectra_none_usable(void **state)
{
    (void)state;
    char *dir = tu_tmpdir(), *path = write_spectra(dir);  /* 1000-1398 A observed, z 0-0.4 */
    cat_spec sp = {.flux = "FLUX", .redshift = "Z", .grid_start = 3000, .grid_stop = 3100, .grid_step = 4,
                   .downsample = 1};
    cat_opt o = spec_opt(path, &sp);
    cat *c = NULL;
    ody_err e = {0};
    assert_int_equal(cat_read(&o, &c, NULL, &e), ODY_EINPUT);
    assert_non_null(strstr(e.msg, "no spectrum is usable: 4 of 5 with under half the grid's bins covered"));
    assert_non_null(strstr(e.msg, "the grid 3000-3100 A must lie within the spectra's wavelengths at rest, and the "
                                  "first spectrum spans 1000-1398 — set spectra.grid_start and grid_stop inside it"));
    /* a velocity (km/s) given as the redshift: the spectra at rest under 1 A, and the hint says so */
    char vel[300];
    snprintf(vel, sizeof vel, "%s[col *; VEL = Z * 299792.458 + 3000]", path);
    o.path = vel, sp.redshift = "VEL", sp.grid_start = 1000, sp.grid_stop = 1200;
    assert_int_equal(cat_read(&o, &c, NULL, &e), ODY_EINPUT);
    assert_non_null(strstr(e.msg, "under 1 A — is spectra.redshift 'VEL' a redshift z, not a velocity (km/s)?"));
    o.path = path, sp.redshift = "Z", sp.grid_start = 3000, sp.grid_stop = 3100;
    o.missing = CAT_MISSING_IMPUTE;  /* nothing to impute from: the same reason, not "FLUX@3000 has no value" */
    assert_int_equal(cat_read(&o, &c, NULL, &e), ODY_EINPUT);
    assert_non_null(strstr(e.msg, "no spectrum is usable: 4 of 5 with under half the grid's bins covered"));
    o.missing = CAT_MISSING_FAIL, sp.grid_start = 1000, sp.grid_stop = 1200;  /* row 4 mostly masked, row 5 no z */
    sp.mask = "MASK";
    assert_int_equal(cat_read(&o, &c, NULL, &e), ODY_EINPUT);
    assert_non_null(strstr(e.msg, "spec.fits: row 4: the spectrum is unusable, with under half the grid's bins covered "
                                  "by good pixels — set `missing: drop`"));
    o.missing = CAT_MISSING_DROP;
    sp.grid_start = 1000, sp.grid_stop = 1100, sp.mask = "FLUX";  /* every pixel's "mask" nonzero */
    assert_int_equal(cat_read(&o, &c, NULL, &e), ODY_EINPUT);
    assert_non_null(strstr(e.msg, "no spectrum is usable: 4 of 5 with no good pixel (flux missing or flagged in "
                                  "every pixel) — a pixel is bad where its flux is NaN or absent, its mask nonzero — "
                                  "check those columns"));
    sp.mask = NULL, sp.redshift = NULL, sp.grid_step = 0, sp.norm_lo = 2000, sp.norm_hi = 2100;  /* the file's grid */
    assert_int_equal(cat_read(&o, &c, NULL, &e), ODY_EINPUT);
    assert_non_null(strstr(e.msg, "5 of 5 with no positive flux to normalise by — the normalisation window 2000-2100 "
                                  "(spectra.norm_from, norm_to) lies outside the grid 1000-1398"));
    assert_null(c);
    tu_rmtree(dir);
    free(dir), free(path);
}

static void test_missing_policies(void **state)
{
    fixture *fx = *state;
    const char *feats[] = {"I", "E"};
    cat *c = NULL;
    ody_err err = {0};
    /* drop: rows 3, 5, 6 go */
    assert_ok(read_feats(fx, feats, 2, CAT_MISSING_DROP, 4, &c, &err), err);
    assert_int_equal(c->n_rows, NR - 3);
    assert_int_equal(c->n_dropped, 3);
    assert_int_equal(c->n_missing[0], 1);
    assert_int_equal(c->n_missing[1], 2);
    for (size_t k = 0; k < c->n_rows; k++) {
        int r = (int)c->row[k] - 1;
        assert_false(i_null(r) || e_nan(r));
        assert_true(c->X[k * 2] == (float)v_i(r));
        assert_true(c->X[k * 2 + 1] == (float)v_e(r));
        assert_int_equal(c->id.i[k], 1000 + r);
    }
    cat_destroy(c);

    /* impute: medians of the valid values */
    c = NULL;
    assert_ok(read_feats(fx, feats, 2, CAT_MISSING_IMPUTE, 0, &c, &err), err);
    assert_int_equal(c->n_rows, NR);
    assert_int_equal(c->n_imputed, 3);
    /* I valid for r != 3: values r*100-1000; 22 values, median of r in {..} */
    double vi[NR], ve[NR];
    int ni = 0, ne = 0;
    for (int r = 0; r < NR; r++) {
        if (!i_null(r)) vi[ni++] = v_i(r);
        if (!e_nan(r)) ve[ne++] = v_e(r);
    }
    /* both already sorted ascending */
    double mi = ni % 2 ? vi[ni / 2] : 0.5 * (vi[ni / 2 - 1] + vi[ni / 2]);
    double me = ne % 2 ? ve[ne / 2] : 0.5 * (ve[ne / 2 - 1] + ve[ne / 2]);
    assert_true(c->X[3 * 2] == (float)mi);
    assert_true(c->X[5 * 2 + 1] == (float)me);
    assert_true(c->X[6 * 2 + 1] == (float)me);
    cat_destroy(c);

    /* fail: names the column and the row */
    c = NULL;
    assert_int_equal(read_feats(fx, feats, 2, CAT_MISSING_FAIL, 0, &c, &err), ODY_EINPUT);
    assert_null(c);
    assert_non_null(strstr(err.msg, "'I', row 4"));
    assert_non_null(strstr(err.msg, "all.fits"));
}

/* dir/name: a table CAT of n rows whose column k (name names[k], TFORM
 * forms[k]) holds value(r, k), written as doubles (CFITSIO converts). */
static char *value_table(const fixture *fx, const char *name, int ncol, char **names, char **forms, int n,
                         double (*value)(int r, int k))
{
    char *path = tu_path(fx->dir, name), path2[600];
    snprintf(path2, sizeof path2, "!%s", path);
    int status = 0;
    fitsfile *f;
    fits_create_file(&f, path2, &status);
    fits_create_tbl(f, BINARY_TBL, 0, ncol, names, forms, NULL, "CAT", &status);
    for (int r = 0; r < n; r++)
        for (int k = 0; k < ncol; k++) {
            double v = value(r, k);
            fits_write_col(f, TDOUBLE, k + 1, r + 1, 1, 1, &v, &status);
        }
    fits_close_file(f, &status);
    assert_int_equal(status, 0);
    return path;
}

/* Reading path's first n columns names as features, the rest default. */
static cat_opt value_opt(const char *path, char **names, int n)
{
    cat_opt o;
    cat_opt_init(&o);
    o.path = path;
    o.features = (const char *const *)names;
    o.n_features = n;
    return o;
}

/* cat_read of o with its warnings caught: the return code; *text (the
 * warnings, malloc'd) is the caller's, as is *c. */
static int read_warned(const cat_opt *o, cat **c, char **text, ody_err *err)
{
    size_t len = 0;
    *text = NULL;
    FILE *m = open_memstream(text, &len);
    ody_log log = {ODY_LOG_WARN, m, NULL};
    *c = NULL;
    int rc = cat_read(o, c, &log, err);
    fclose(m);
    return rc;
}

/* read_warned that must succeed. */
static void read_ok(const cat_opt *o, cat **c, char **text)
{
    ody_err err = {0};
    assert_ok(read_warned(o, c, text, &err), err);
}

static double lum_value(int r, int k) { return k == 0 ? r : r == 2 ? 3e44 : r == 5 ? INFINITY : 1e30 * (r + 1); }
static double sigma_value(int r, int k) { return k == 0 ? r : r == 7 ? 0 : 6.65e-50 * (r + 1); }
static double jd_value(int r, int k) { return k == 0 ? 2459000.5 + 0.013 * r : k == 1 ? 15 + 0.1 * r : r % 3; }
static double sentinel_value(int r, int k)
{
    if (k == 0) return r % 50 == 7 ? -9999 : 20 + 0.01 * r;
    if (k == 1) return r % 60 == 11 ? -9999.99 : 19.5 + 0.01 * (r % 23);  /* a float column */
    return r % 40 == 3 ? 99 : 19 + 0.02 * (r % 17);
}

/* A finite value float32 cannot hold (a luminosity in erg/s) is refused by
 * row, with the log to take, under every policy; an Inf stays a missing
 * value; the advised column expression reads; and a nonzero value below
 * float32's normal range is refused alike. */
static void test_beyond_float32(void **state)
{
    fixture *fx = *state;
    char *cols[] = {"A", "LUM"}, *forms[] = {"D", "D"}, path2[600];
    char *path = value_table(fx, "lum.fits", 2, cols, forms, 20, lum_value);
    cat_missing policy[] = {CAT_MISSING_DROP, CAT_MISSING_IMPUTE, CAT_MISSING_FAIL};
    const char *logged[] = {"A", "log_LUM"};
    cat_opt o = value_opt(path, cols, 2);
    for (int k = 0; k < 3; k++) {
        cat *c = NULL;
        ody_err err = {0};
        o.missing = policy[k];
        assert_int_equal(cat_read(&o, &c, NULL, &err), ODY_EINPUT);
        assert_null(c);
        assert_non_null(strstr(err.msg, "lum.fits: feature 'LUM', row 3: 3e+44 is beyond float32's range"));
        assert_non_null(strstr(err.msg, "[col *; log_LUM = log10(LUM)]"));
    }
    snprintf(path2, sizeof path2, "%s[col *; log_LUM = log10(LUM)]", path);
    o.path = path2;
    o.features = logged;
    o.missing = CAT_MISSING_DROP;
    cat *c = NULL;
    ody_err err = {0};
    assert_ok(cat_read(&o, &c, NULL, &err), err);
    assert_int_equal(c->n_rows, 19);  /* the Inf row dropped as missing */
    assert_int_equal(c->n_missing[1], 1);
    assert_true(fabsf(c->X[2 * 2 + 1] - 44.4771f) < 1e-4f);
    cat_destroy(c);
    free(path);

    /* A tiny value (a cross-section in cm^2) would read as 0: refused the same way, not a constant column. */
    char *cols2[] = {"A", "SIGMA"};
    path = value_table(fx, "sigma.fits", 2, cols2, forms, 20, sigma_value);
    o = value_opt(path, cols2, 2);
    c = NULL;
    assert_int_equal(cat_read(&o, &c, NULL, &err), ODY_EINPUT);
    assert_null(c);
    assert_non_null(strstr(err.msg, "sigma.fits: feature 'SIGMA', row 1: 6.65e-50 is below float32's smallest normal"));
    assert_non_null(strstr(err.msg, "[col *; log_SIGMA = log10(SIGMA)]"));
    free(path);
}

static double gap_value(int r, int k) { return k == 0 ? (r % 2 ? NAN : r) : k == 1 ? (r % 2 ? r : NAN) : NAN; }

/* Every row dropped for a missing value: the error names the feature that
 * missed most, and says to drop it when it has no value at all. */
static void test_none_left(void **state)
{
    fixture *fx = *state;
    char *cols[] = {"A", "B", "E"}, *forms[] = {"D", "D", "D"};
    char *path = value_table(fx, "gaps.fits", 3, cols, forms, 30, gap_value);
    const char *says[] = {"gaps.fits: no rows left after dropping 30 rows with missing feature values (feature 'A' "
                          "misses 15 of them) — set `missing: impute`",
                          "gaps.fits: no rows left after dropping 30 rows with missing feature values: feature 'E' "
                          "has no value in any row — drop it from catalog.features"};
    for (int k = 0; k < 2; k++) {
        cat_opt o = value_opt(path, cols, k ? 3 : 2);
        cat *c = NULL;
        ody_err err = {0};
        assert_int_equal(cat_read(&o, &c, NULL, &err), ODY_EINPUT);
        assert_null(c);
        if (!strstr(err.msg, says[k])) fail_msg("expected '%s' in: %s", says[k], err.msg);
    }
    free(path);
}

/* A feature float32 holds on a few levels (a Julian date over a night)
 * gets a warning naming the offset to subtract; whole numbers and an
 * ordinary spread do not. */
static void test_float32_levels_warned(void **state)
{
    fixture *fx = *state;
    char *cols[] = {"JD", "MAG", "N"}, *forms[] = {"D", "D", "D"}, *text = NULL;
    char *path = value_table(fx, "jd.fits", 3, cols, forms, 30, jd_value);
    cat_opt o = value_opt(path, cols, 3);
    cat *c = NULL;
    read_ok(&o, &c, &text);
    assert_non_null(strstr(text, "feature JD spans 2459000.5 to 2459000.877"));
    assert_non_null(strstr(text, "FILE[col *; d_JD = JD - 2459000], and use d_JD"));
    assert_null(strstr(text, "MAG"));
    assert_null(strstr(text, "feature N "));
    free(text);
    cat_destroy(c);
    free(path);
}

/* A feature missing in most objects (a spectral model's parameter, given
 * only for the sources fitted with it), imputed: the median stands in for
 * most, and the rest stand out for having a value.  Warned of under
 * impute, with the row filter that keeps the rows that have it; not under
 * drop (the dropped-rows warning says it), nor for a feature missing in a
 * few. */
static double sparse_value(int r, int k) { return k != 1 ? (r % 5 == 0 ? 1.5 + r + k : NAN) : r % 9 == 0 ? NAN : r; }

static void test_mostly_missing_warned(void **state)
{
    fixture *fx = *state;
    char *cols[] = {"CUTOFF", "FLUX", "M3", "M4", "M5", "M6", "M7", "M8"}, *forms[8], *text = NULL;
    for (int k = 0; k < 8; k++) forms[k] = "D";
    char *path = value_table(fx, "sparse.fits", 8, cols, forms, 40, sparse_value);
    cat_opt o = value_opt(path, cols, 2);
    o.missing = CAT_MISSING_IMPUTE;
    cat *c = NULL;
    read_ok(&o, &c, &text);
    if (!strstr(text, "feature CUTOFF: 32 of 40 values missing, imputed with the median of the other 8") ||
        !strstr(text, "FILE[!ISNULL(CUTOFF)]") || strstr(text, "FLUX"))
        fail_msg("%s", text);
    free(text);
    cat_destroy(c);
    o.missing = CAT_MISSING_DROP;
    read_ok(&o, &c, &text);
    assert_null(strstr(text, "values missing, imputed"));
    free(text);
    cat_destroy(c);
    /* seven such features (a vector column's elements, say): five named, the rest summed up in one line, each
     * still in the run log (info level) */
    char *seven[] = {"CUTOFF", "M3", "M4", "M5", "M6", "M7", "M8"};
    o = value_opt(path, seven, 7);
    o.missing = CAT_MISSING_IMPUTE;
    read_ok(&o, &c, &text);
    int named = 0;
    for (const char *s = text; (s = strstr(s, "values missing, imputed")); s++) named++;
    if (named != 5 || !strstr(text, "feature M6: 32 of 40") || strstr(text, "feature M7:") ||
        !strstr(text, "2 more features are missing in most objects and imputed, from M7 on — the run log names each"))
        fail_msg("%s", text);
    free(text);
    cat_destroy(c);
    free(path);
}

/* A survey's "not measured" value (-9999 in a double column, -9999.99 in
 * a float one, 99 at the other end) gets a warning naming it; listed in
 * catalog.nulls it is missing: dropped, imputed, or refused under fail. */
static void test_sentinels(void **state)
{
    fixture *fx = *state;
    char *cols[] = {"U", "G", "R"}, *forms[] = {"D", "E", "D"}, *text = NULL;
    char *path = value_table(fx, "sent.fits", 3, cols, forms, 200, sentinel_value);
    cat_opt o = value_opt(path, cols, 3);
    cat *c = NULL;
    read_ok(&o, &c, &text);
    assert_non_null(strstr(text, "feature U: 4 objects at -9999, far below the rest"));
    assert_non_null(strstr(text, "(nulls: [-9999])"));
    assert_non_null(strstr(text, "feature G: 4 objects at -9999.990234"));
    assert_non_null(strstr(text, "feature R: 5 objects at 99, far above the rest"));
    free(text);
    cat_destroy(c);
    double nulls[] = {-9999, -9999.99, 99};
    o.nulls = nulls;
    o.n_nulls = 3;
    cat_missing policy[] = {CAT_MISSING_DROP, CAT_MISSING_IMPUTE, CAT_MISSING_FAIL};
    ody_err err = {0};
    for (int k = 0; k < 3; k++) {
        o.missing = policy[k];
        int rc = read_warned(&o, &c, &text, &err);
        if (k == 2) {
            assert_int_equal(rc, ODY_EINPUT);
            assert_non_null(strstr(err.msg, "row 4: value is null, NaN, Inf or one of catalog.nulls"));
        } else {
            assert_ok(rc, err);
            assert_int_equal(c->n_missing[0], 4);
            assert_int_equal(c->n_missing[1], 4);  /* the float column's -9999.99 is the listed one */
            assert_int_equal(c->n_missing[2], 5);
            assert_int_equal(c->n_rows, k == 0 ? 200 - 13 : 200);
            assert_null(strstr(text, "far below") ? text : NULL);
        }
        free(text);
        cat_destroy(c);
    }
    free(path);
}

static void test_passthrough_and_string_id(void **state)
{
    fixture *fx = *state;
    const char *feats[] = {"D"};
    const char *pass[] = {"RA", "K", "NAME", "L"};
    cat_opt o;
    cat_opt_init(&o);
    o.path = fx->all;
    o.features = feats;
    o.n_features = 1;
    o.id_col = "name";
    o.passthru = pass;
    o.n_passthru = 4;
    cat *c = NULL;
    ody_err err = {0};
    assert_ok(cat_read(&o, &c, NULL, &err), err);
    assert_int_equal(c->id.type, CAT_COL_STRING);
    char buf[64];
    cat_col_format(&c->id, 7, buf, sizeof buf);
    assert_string_equal(buf, "obj07");
    assert_int_equal(c->pass[0].type, CAT_COL_FLOAT);
    assert_true(c->pass[0].f[4] == 14.0);
    assert_string_equal(c->pass[0].unit, "deg");
    assert_int_equal(c->pass[1].type, CAT_COL_INT);
    assert_true(c->pass[1].i[22] == 22LL * 3000000000LL);  /* int64 kept exactly */
    assert_int_equal(c->pass[2].type, CAT_COL_STRING);
    assert_int_equal(c->pass[3].type, CAT_COL_INT);
    assert_int_equal(c->pass[3].i[3], 1);
    cat_destroy(c);
}

/* ================================================================ IDs, warnings */

/* Reads feature D of path with ID column id into *c (the caller's). */
static int read_with_id(const char *path, const char *id, cat **c, ody_err *err)
{
    const char *feats[] = {"D"};
    cat_opt o;
    cat_opt_init(&o);
    o.path = path;
    o.features = feats;
    o.n_features = 1;
    o.id_col = id;
    *c = NULL;
    return cat_read(&o, c, NULL, err);
}

static int read_id(const char *path, const char *id, ody_err *err)
{
    cat *c = NULL;
    int rc = read_with_id(path, id, &c, err);
    cat_destroy(c);
    return rc;
}

/* Row row's value of column 2 (the ID) of path's table becomes id. */
static void rewrite_id(const char *path, long row, char *id)
{
    fitsfile *f = NULL;
    int status = 0;
    fits_open_table(&f, path, READWRITE, &status);
    fits_write_col(f, TSTRING, 2, row, 1, 1, &id, &status);
    fits_close_file(f, &status);
    assert_int_equal(status, 0);
}

static void test_ids_must_be_unique(void **state)
{
    fixture *fx = *state;
    ody_err err = {0};
    /* a logical column as the ID: 0 and 1 repeat */
    assert_int_equal(read_id(fx->all, "L", &err), ODY_EINPUT);
    if (!strstr(err.msg, "ID column L holds") || !strstr(err.msg, "must be unique") || !strstr(err.msg, "rows"))
        fail_msg("%s", err.msg);
    /* a null in the ID column (I is null in row 4) */
    assert_int_equal(read_id(fx->all, "I", &err), ODY_EINPUT);
    if (!strstr(err.msg, "ID column I has no value in row 4")) fail_msg("%s", err.msg);
    /* a floating-point ID that repeats: the message says why it may */
    char p[600];
    snprintf(p, sizeof p, "%s[CAT][col *; F2 = 1.0 * floor(D)]", fx->all);
    assert_int_equal(read_id(p, "F2", &err), ODY_EINPUT);
    if (!strstr(err.msg, "floating-point ID")) fail_msg("%s", err.msg);
    /* a row filter naming only #row: refused (CFITSIO reads freed memory
     * there); with a column named too it is read */
    snprintf(p, sizeof p, "%s[CAT][#row <= 5]", fx->all);
    assert_int_equal(read_id(p, "OBJ", &err), ODY_EINPUT);
    if (!strstr(err.msg, "names #row and no column") || !strstr(err.msg, "[#row <= 1000 && ID > 0]"))
        fail_msg("%s", err.msg);
    assert_true(ody_fits_row_only_filter("a.fits[1][#ROW > 3 .and. #row < 1e3]"));
    assert_false(ody_fits_row_only_filter("a.fits[1][#row > 3 && D > 0]"));
    assert_false(ody_fits_row_only_filter("a.fits[col X = #row; Y = D]"));
    assert_false(ody_fits_row_only_filter("a.fits[EVENTS]"));
    snprintf(p, sizeof p, "%s[CAT][#row <= 5 && D == D]", fx->all);
    assert_ok(read_id(p, "OBJ", &err), err);
    /* unique IDs of each type pass */
    assert_ok(read_id(fx->all, "OBJ", &err), err);
    assert_ok(read_id(fx->all, "NAME", &err), err);
    assert_ok(read_id(fx->all, "SCALED", &err), err);
    /* string IDs: CAT_ID_MAX characters kept whole, one more refused */
    char *lp = tu_path(fx->dir, "longid.fits"), bang[1200];
    snprintf(bang, sizeof bang, "!%s", lp);
    char *tt[] = {"D", "ID"}, *tf[] = {"E", "300A"};
    fitsfile *f = NULL;
    int status = 0;
    fits_create_file(&f, bang, &status);
    fits_create_tbl(f, BINARY_TBL, 0, 2, tt, tf, NULL, "CAT", &status);
    char ids[20][CAT_ID_MAX + 2], *idp[20];
    for (int r = 0; r < 20; r++) {
        memset(ids[r], 'a' + r, CAT_ID_MAX);
        ids[r][CAT_ID_MAX] = 0;
        idp[r] = ids[r];
        float d = (float)r;
        fits_write_col(f, TFLOAT, 1, r + 1, 1, 1, &d, &status);
    }
    fits_write_col(f, TSTRING, 2, 1, 1, 20, idp, &status);
    fits_close_file(f, &status);
    assert_int_equal(status, 0);
    cat *c = NULL;
    assert_ok(read_with_id(lp, "ID", &c, &err), err);
    cat_ids x;
    assert_int_equal(cat_ids_build(&x, &c->id, c->n_rows), 0);
    assert_int_equal(cat_ids_find(&x, ids[7]), 7);  /* found by the whole ID */
    cat_ids_free(&x);
    cat_destroy(c);
    strcat(ids[3], "z");  /* one character more */
    rewrite_id(lp, 4, ids[3]);
    assert_int_equal(read_id(lp, "ID", &err), ODY_EINPUT);
    if (!strstr(err.msg, "ID column ID holds 256 characters in row 4 — IDs are at most 255")) fail_msg("%s", err.msg);
    ids[3][2] = ';';  /* the separator of the exports' neighbour lists */
    ids[3][CAT_ID_MAX] = 0;
    rewrite_id(lp, 4, ids[3]);
    assert_int_equal(read_id(lp, "ID", &err), ODY_EINPUT);
    if (!strstr(err.msg, "in row 4 — an ID may not contain ';'")) fail_msg("%s", err.msg);
    free(lp);
}

static void test_dropped_rows_recorded(void **state)
{
    fixture *fx = *state;
    const char *feats[] = {"I", "E"};
    cat *c = NULL;
    ody_err err = {0};
    /* rows 4 (I null), 6 and 7 (E NaN) go, each with its reason and ID */
    assert_ok(read_feats(fx, feats, 2, CAT_MISSING_DROP, 4, &c, &err), err);
    assert_int_equal(c->n_dropped, 3);
    int64_t rows[3] = {4, 6, 7};
    int32_t feat[3] = {0, 1, 1};
    for (int d = 0; d < 3; d++) {
        assert_int_equal(c->drop_row[d], rows[d]);
        assert_int_equal(c->drop_feat[d], feat[d]);
        assert_int_equal(c->drop_nmiss[d], 1);
        assert_int_equal(c->drop_id.i[d], 1000 + rows[d] - 1);
    }
    cat_destroy(c);
    /* impute keeps every row: nothing recorded */
    c = NULL;
    assert_ok(read_feats(fx, feats, 2, CAT_MISSING_IMPUTE, 0, &c, &err), err);
    assert_int_equal(c->n_dropped, 0);
    assert_null(c->drop_row);
    cat_destroy(c);
}

/* ================================================================ HDUs and syntax */

static void test_hdu_selection_and_filters(void **state)
{
    fixture *fx = *state;
    const char *feats[] = {"X"};
    cat_opt o;
    cat_opt_init(&o);
    o.path = fx->all;
    o.features = feats;
    o.n_features = 1;
    cat *c = NULL;
    ody_err err = {0};

    o.hdu = "ONE";  /* by EXTNAME */
    assert_ok(cat_read(&o, &c, NULL, &err), err);
    assert_int_equal(c->n_rows, 1);
    assert_true(c->X[0] == 42.0f);
    cat_destroy(c);
    c = NULL;

    o.hdu = "4";  /* by number, 0 = primary */
    assert_ok(cat_read(&o, &c, NULL, &err), err);
    assert_int_equal(c->n_rows, 1);
    cat_destroy(c);
    c = NULL;

    o.hdu = "EMPTY";
    assert_int_equal(cat_read(&o, &c, NULL, &err), ODY_EINPUT);
    assert_non_null(strstr(err.msg, "no rows"));

    o.hdu = "PIXELS";
    assert_int_equal(cat_read(&o, &c, NULL, &err), ODY_EINPUT);
    assert_non_null(strstr(err.msg, "image, not a table"));

    o.hdu = "NOPE";
    assert_int_equal(cat_read(&o, &c, NULL, &err), ODY_EINPUT);
    assert_non_null(strstr(err.msg, "no such HDU"));
    assert_null(c);

    /* The first table HDU is found past the image; a row filter and a
     * derived column through CFITSIO's syntax. */
    char path[600];
    snprintf(path, sizeof path, "%s[CAT][col JD = J + D; B][JD > 1000000]", fx->all);
    const char *f2[] = {"JD", "B"};
    o.path = path;
    o.hdu = NULL;
    o.features = f2;
    o.n_features = 2;
    assert_ok(cat_read(&o, &c, NULL, &err), err);
    assert_int_equal(c->n_rows, NR - 11);  /* v_j(r) > 1e6 for r >= 11 */
    assert_true(c->X[0] == (float)(v_j(11) + v_d(11)));
    assert_true(c->X[1] == (float)v_b(11));
    cat_destroy(c);
    c = NULL;

    snprintf(path, sizeof path, "%s[CAT][J > 1e12]", fx->all);
    o.features = feats + 0;
    const char *f3[] = {"J"};
    o.features = f3;
    o.n_features = 1;
    assert_int_equal(cat_read(&o, &c, NULL, &err), ODY_EINPUT);
    assert_non_null(strstr(err.msg, "after filtering"));

    /* ASCII table with a TNULL string */
    snprintf(path, sizeof path, "%s", fx->all);
    o.path = path;
    o.hdu = "ASC";
    const char *f4[] = {"A", "B"};
    o.features = f4;
    o.n_features = 2;
    assert_ok(cat_read(&o, &c, NULL, &err), err);
    assert_int_equal(c->n_rows, 3);
    assert_int_equal(c->n_missing[1], 1);
    assert_true(c->X[2 * 2] == 4.5f && c->X[2 * 2 + 1] == 30.0f);
    cat_destroy(c);
}

static void test_column_errors(void **state)
{
    fixture *fx = *state;
    cat *c = NULL;
    ody_err err = {0};
    const char *typo[] = {"SCALD"};
    assert_int_equal(read_feats(fx, typo, 1, CAT_MISSING_DROP, 0, &c, &err), ODY_EINPUT);
    assert_non_null(strstr(err.msg, "no feature column named 'SCALD'; closest: SCALED"));
    const char *str[] = {"NAME"};
    assert_int_equal(read_feats(fx, str, 1, CAT_MISSING_DROP, 0, &c, &err), ODY_EINPUT);
    assert_non_null(strstr(err.msg, "holds strings"));
    const char *slices[][1] = {{"VEC[3:2]"}, {"VEC[0:2]"}, {"VEC[1:4]"}, {"VEC[1:]"}, {"VEC[a:2]"}};
    for (int k = 0; k < 5; k++) {
        assert_int_equal(read_feats(fx, slices[k], 1, CAT_MISSING_DROP, 0, &c, &err), ODY_EINPUT);
        if (!strstr(err.msg, "VEC")) fail_msg("%s: %s", slices[k][0], err.msg);
    }
    const char *past[] = {"VEC[4]"};
    assert_int_equal(read_feats(fx, past, 1, CAT_MISSING_DROP, 0, &c, &err), ODY_EINPUT);
    assert_non_null(strstr(err.msg, "past the end"));
    const char *bad[] = {"VEC[x]"};
    assert_int_equal(read_feats(fx, bad, 1, CAT_MISSING_DROP, 0, &c, &err), ODY_EINPUT);
    assert_null(c);

    cat_opt o;
    cat_opt_init(&o);
    o.path = "/nonexistent/dir/cat.fits";
    o.features = typo;
    o.n_features = 1;
    assert_int_equal(cat_read(&o, &c, NULL, &err), ODY_EINPUT);
    assert_non_null(strstr(err.msg, "/nonexistent/dir/cat.fits"));
}

static double case_value(int r, int k) { return k == 0 ? r : k == 1 ? 100 + r : k == 2 ? -r : 7.0 * r; }

/* Column names that differ in case alone (SDSS's u beside a U of another
 * system): the name as written wins; the one column that differs in case
 * is taken; two such columns are refused by name, never the first of them. */
static void test_names_differing_in_case(void **state)
{
    fixture *fx = *state;
    char *cols[] = {"u", "U", "mag_r", "MAG_R"}, *forms[] = {"D", "D", "D", "D"};
    char *path = value_table(fx, "case.fits", 4, cols, forms, 12, case_value);
    char *want[][1] = {{"U"}, {"u"}, {"Mag_R"}, {"MAG_R"}};
    double first[] = {100, 0, 0, 0};
    for (int k = 0; k < 4; k++) {
        cat_opt o = value_opt(path, want[k], 1);
        cat *c = NULL;
        ody_err err = {0};
        int rc = cat_read(&o, &c, NULL, &err);
        if (k == 2) {
            assert_int_equal(rc, ODY_EINPUT);
            assert_non_null(strstr(err.msg, "feature column 'Mag_R' is not there, and columns mag_r and MAG_R differ "
                                            "from it in case alone"));
            continue;
        }
        assert_ok(rc, err);
        assert_true(c->X[1] == (float)case_value(1, k == 0 ? 1 : k == 1 ? 0 : 3));
        assert_true(c->X[0] == (float)first[k]);
        cat_destroy(c);
    }
    free(path);
}

static void test_truncated_and_not_fits(void **state)
{
    fixture *fx = *state;
    /* Cut the fixture in the middle of the table data. */
    char *cut = tu_path(fx->dir, "cut.fits");
    char *junk = tu_path(fx->dir, "junk.fits");
    FILE *in = fopen(fx->all, "rb"), *out = fopen(cut, "wb");
    char buf[2880];
    for (int b = 0; b < 4; b++) {  /* primary, image header+data, table header */
        size_t n = fread(buf, 1, sizeof buf, in);
        fwrite(buf, 1, n, out);
    }
    fclose(in);
    fclose(out);
    out = fopen(junk, "wb");
    fputs("this is a text file, not FITS\n", out);
    fclose(out);
    const char *feats[] = {"D"};
    cat_opt o;
    cat_opt_init(&o);
    o.features = feats;
    o.n_features = 1;
    cat *c = NULL;
    ody_err err = {0};
    o.path = cut;
    assert_int_equal(cat_read(&o, &c, NULL, &err), ODY_EINPUT);
    assert_non_null(strstr(err.msg, "cut.fits"));
    o.path = junk;
    assert_int_equal(cat_read(&o, &c, NULL, &err), ODY_EINPUT);
    assert_non_null(strstr(err.msg, "not FITS"));
    cat_info *info = NULL;
    assert_int_equal(cat_inspect(cut, &info, &err), ODY_EINPUT);
    assert_null(info);
    free(cut);
    free(junk);
}

static void test_inspect_counts_nulls(void **state)
{
    fixture *fx = *state;
    cat_info *info = NULL;
    ody_err err = {0};
    assert_ok(cat_inspect(fx->all, &info, &err), err);
    assert_int_equal(info->n_hdu, 6);
    assert_int_equal(info->hdu[1].hdutype, IMAGE_HDU);
    const cat_hduinfo *t = &info->hdu[2];
    assert_string_equal(t->extname, "CAT");
    assert_int_equal(t->n_rows, NR);
    assert_int_equal(t->n_cols, 13);
    assert_string_equal(t->cols[3].name, "I");
    assert_int_equal(t->cols[3].n_null, 1);
    assert_int_equal(t->cols[6].n_null, 2);
    assert_string_equal(t->cols[6].unit, "mag");
    assert_int_equal(t->cols[11].repeat, 3);
    assert_int_equal(t->cols[1].n_null, -1);  /* strings are not counted */
    assert_true(t->cols[1].lo > t->cols[1].hi);  /* nor ranged */
    /* the range of finite values: I without its null row, E without its NaNs, VEC over every element */
    double ilo = INFINITY, ihi = -INFINITY, elo = INFINITY, ehi = -INFINITY;
    for (int r = 0; r < NR; r++) {
        if (!i_null(r)) ilo = fmin(ilo, v_i(r)), ihi = fmax(ihi, v_i(r));
        if (!e_nan(r)) elo = fmin(elo, v_e(r)), ehi = fmax(ehi, v_e(r));
    }
    assert_true(t->cols[3].lo == ilo && t->cols[3].hi == ihi);
    assert_true(t->cols[6].lo == elo && t->cols[6].hi == ehi);
    assert_true(t->cols[11].lo == v_vec(0, 1) && t->cols[11].hi == v_vec(NR - 1, 3));
    assert_int_equal(info->hdu[5].hdutype, ASCII_TBL);
    assert_int_equal(info->hdu[5].cols[1].n_null, 1);
    assert_int_equal(t->n_scanned, NR);
    cat_info_destroy(info);
    /* bounded (inspect's default, for a survey of 10^9 rows): counts and ranges over the first rows, and
     * it says how many; a bound past the table's size reads it all */
    assert_ok(cat_inspect_upto(fx->all, 1, &info, &err), err);
    t = &info->hdu[2];
    assert_int_equal(t->n_rows, NR);
    assert_int_equal(t->n_scanned, 1);
    assert_int_equal(t->cols[3].n_null, 0);  /* its null is row 3 */
    assert_true(t->cols[11].lo == v_vec(0, 1) && t->cols[11].hi == v_vec(0, 3));
    cat_info_destroy(info);
    assert_ok(cat_inspect_upto(fx->all, CAT_INSPECT_BYTES, &info, &err), err);
    assert_int_equal(info->hdu[2].n_scanned, NR);
    assert_int_equal(info->hdu[2].cols[3].n_null, 1);
    cat_info_destroy(info);
}

/* ================================================================ shared data */

static void test_sdss_catalog(void **state)
{
    (void)state;
    char *p = tu_shared("catalogs/sdss_dr14_10k.fits");
    if (!p) skip();
    const char *feats[] = {"u", "g", "r", "i", "z", "redshift"};
    const char *pass[] = {"ra", "dec", "class"};
    cat_opt o;
    cat_opt_init(&o);
    o.path = p;
    o.features = feats;
    o.n_features = 6;
    o.id_col = "objid";
    o.passthru = pass;
    o.n_passthru = 3;
    cat *c = NULL;
    ody_err err = {0};
    assert_ok(cat_read(&o, &c, NULL, &err), err);
    assert_int_equal(c->n_rows, 10000);
    assert_int_equal(c->id.i[0], 1);
    assert_int_equal(c->pass[2].type, CAT_COL_STRING);
    cat_destroy(c);
    /* a filtered read through CFITSIO syntax */
    char path[600];
    snprintf(path, sizeof path, "%s[1][class==\"QSO\"]", p);
    o.path = path;
    assert_ok(cat_read(&o, &c, NULL, &err), err);
    assert_int_equal(c->n_rows, 850);
    cat_destroy(c);
    free(p);
}

static void test_fermi_catalog(void **state)
{
    (void)state;
    char *p = tu_shared("catalogs/fermi_3fgl.fits.gz");
    if (!p) skip();
    const char *feats[] = {"Signif_Avg", "Spectral_Index", "Flux_History[3]", "Unc_Flux_History[2]"};
    cat_opt o;
    cat_opt_init(&o);
    o.path = p;
    o.hdu = "LAT_Point_Source_Catalog";
    o.features = feats;
    o.n_features = 4;
    o.id_col = "Source_Name";
    cat *c = NULL;
    ody_err err = {0};
    assert_ok(cat_read(&o, &c, NULL, &err), err);
    assert_true(c->n_rows > 2900 && c->n_rows <= 3034);
    assert_int_equal(c->n_rows + c->n_dropped, 3034);
    char id[64];
    cat_col_format(&c->id, 0, id, sizeof id);
    assert_non_null(strstr(id, "3FGL"));
    cat_destroy(c);
    free(p);
}

static void test_zoo_broken_files(void **state)
{
    (void)state;
    const char *broken[] = {"Astro_UIT.fits", "truncated_m13.fits", "truncated_fermi.fits",
                            "not_fits.fits", "empty.fits"};
    const char *good[] = {"m13.fits", "m13_rice.fits", "m13_hcomp.fits", "m13_plio.fits",
                          "m13_gzip.fits", "bt12.fits", "bt12.fits.fz", "test.fits.gz",
                          "test.fits.bz2", "ascii.fits", "tdim.fits", "variable_length_table.fits",
                          "zerowidth.fits", "HST_FOS.fits", "IUE_LWP.fits", "rp600245n00_im1.fits.Z"};
    char *dir = tu_shared("fits_zoo");
    if (!dir) skip();
    for (size_t k = 0; k < sizeof broken / sizeof *broken; k++) {
        char *p = tu_path(dir, broken[k]);
        cat_info *info = NULL;
        ody_err err = {0};
        int rc = cat_inspect(p, &info, &err);
        if (rc != ODY_EINPUT) fail_msg("%s: expected an input error, got %d", broken[k], rc);
        assert_null(info);
        assert_non_null(strstr(err.msg, broken[k]));
        /* and reading a table from it fails the same way */
        const char *feats[] = {"X"};
        cat_opt o;
        cat_opt_init(&o);
        o.path = p;
        o.features = feats;
        o.n_features = 1;
        cat *c = NULL;
        assert_int_equal(cat_read(&o, &c, NULL, &err), ODY_EINPUT);
        assert_null(c);
        free(p);
    }
    for (size_t k = 0; k < sizeof good / sizeof *good; k++) {
        char *p = tu_path(dir, good[k]);
        cat_info *info = NULL;
        ody_err err = {0};
        int rc = cat_inspect(p, &info, &err);
        if (rc) fail_msg("%s: %s", good[k], err.msg);
        cat_info_destroy(info);
        free(p);
    }
    free(dir);
}

/* ================================================================ image blocks */

/* A table (ID, A) of 9 rows and beside it an image HDU FLUX of 9 rows x 6
 * values (value r + k / 10, a NaN at row 4) with a wavelength WCS, and a
 * 3-D image CUBE. */
static char *write_image_block(const char *dir)
{
    char *path = tu_path(dir, "img.fits");
    fitsfile *f;
    int status = 0;
    char fn[300];
    snprintf(fn, sizeof fn, "!%s", path);
    fits_create_file(&f, fn, &status);
    char *tt[] = {"ID", "A"}, *tf[] = {"K", "D"};
    fits_create_tbl(f, BINARY_TBL, 0, 2, tt, tf, NULL, "TAB", &status);
    for (int r = 0; r < 9; r++) {
        long long id = 100 + r;
        double a = r * r;
        fits_write_col(f, TLONGLONG, 1, r + 1, 1, 1, &id, &status);
        fits_write_col(f, TDOUBLE, 2, r + 1, 1, 1, &a, &status);
    }
    long ax[2] = {6, 9};
    fits_create_img(f, FLOAT_IMG, 2, ax, &status);
    fits_write_key(f, TSTRING, "EXTNAME", "FLUX", NULL, &status);
    double crval = 4000, cdelt = 2;
    fits_write_key(f, TDOUBLE, "CRVAL1", &crval, NULL, &status);
    fits_write_key(f, TDOUBLE, "CDELT1", &cdelt, NULL, &status);
    float v[54];
    for (int r = 0; r < 9; r++)
        for (int k = 0; k < 6; k++) v[r * 6 + k] = r == 3 && k == 2 ? NAN : (float)(r + k / 10.0);
    fits_write_img(f, TFLOAT, 1, 54, v, &status);
    long ax3[3] = {2, 3, 9};
    fits_create_img(f, FLOAT_IMG, 3, ax3, &status);
    fits_write_key(f, TSTRING, "EXTNAME", "CUBE", NULL, &status);
    fits_close_file(f, &status);
    assert_int_equal(status, 0);
    return path;
}

static void test_image_blocks(void **state)
{
    fixture *fx = *state;
    char *path = write_image_block(fx->dir), spec[400];
    snprintf(spec, sizeof spec, "%s[TAB]", path);
    const char *feats[] = {"FLUX", "A"};
    cat_opt o;
    cat_opt_init(&o);
    o.path = spec;
    o.features = feats;
    o.n_features = 2;
    o.id_col = "ID";
    o.missing = CAT_MISSING_DROP;
    long chunks[] = {0, 1, 4};
    for (int ci = 0; ci < 3; ci++) {
        o.chunk_rows = chunks[ci];
        cat *c = NULL;
        ody_err err = {0};
        assert_ok(cat_read(&o, &c, NULL, &err), err);
        assert_int_equal(c->n_feat, 7);
        assert_int_equal(c->n_rows, 8);  /* the row with a NaN dropped */
        assert_string_equal(c->feat_names[0], "A");  /* the table's columns, then the image's values */
        assert_string_equal(c->feat_names[1], "FLUX[1]@4000");
        assert_string_equal(c->feat_names[6], "FLUX[6]@4010");
        for (size_t i = 0; i < c->n_rows; i++) {
            int r = (int)c->id.i[i] - 100;
            assert_true(r != 3);
            assert_true(c->X[i * 7] == (float)(r * r));
            for (int k = 0; k < 6; k++) assert_true(c->X[i * 7 + 1 + (size_t)k] == (float)(r + k / 10.0));
        }
        cat_destroy(c);
    }
    /* a 3-D image, and a row filter that leaves the table shorter than the image */
    const char *cube[] = {"CUBE"};
    o.features = cube;
    o.n_features = 1;
    cat *c = NULL;
    ody_err err = {0};
    assert_int_equal(cat_read(&o, &c, NULL, &err), ODY_EINPUT);
    assert_non_null(strstr(err.msg, "CUBE"));
    snprintf(spec, sizeof spec, "%s[TAB][ID > 102]", path);
    o.features = feats;
    o.n_features = 2;
    assert_int_equal(cat_read(&o, &c, NULL, &err), ODY_EINPUT);
    assert_non_null(strstr(err.msg, "row filter"));
    assert_null(c);
    free(path);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_every_type_read_back),
        cmocka_unit_test(test_feature_blocks),
        cmocka_unit_test(test_spectra_recipe),
        cmocka_unit_test(test_spectra_red_to_blue),
        cmocka_unit_test(test_spectra_none_usable),
        cmocka_unit_test(test_spectra_padded),
        cmocka_unit_test(test_passthru_optional),
        cmocka_unit_test(test_image_blocks),
        cmocka_unit_test(test_missing_policies),
        cmocka_unit_test(test_beyond_float32),
        cmocka_unit_test(test_none_left),
        cmocka_unit_test(test_mostly_missing_warned),
        cmocka_unit_test(test_float32_levels_warned),
        cmocka_unit_test(test_sentinels),
        cmocka_unit_test(test_passthrough_and_string_id),
        cmocka_unit_test(test_ids_must_be_unique),
        cmocka_unit_test(test_dropped_rows_recorded),
        cmocka_unit_test(test_hdu_selection_and_filters),
        cmocka_unit_test(test_column_errors),
        cmocka_unit_test(test_names_differing_in_case),
        cmocka_unit_test(test_truncated_and_not_fits),
        cmocka_unit_test(test_inspect_counts_nulls),
        cmocka_unit_test(test_sdss_catalog),
        cmocka_unit_test(test_fermi_catalog),
        cmocka_unit_test(test_zoo_broken_files),
    };
    return cmocka_run_group_tests(tests, setup, teardown);
}
