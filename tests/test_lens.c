/* test_lens.c — cutouts (layouts, compression, NaN, sizes, missing), the
 * lens simulator (determinism, physics) and the morphology features. */
#include <fitsio.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cutout.h"
#include "lens.h"
#include "testutil.h"

/* A string ID column "1".."n". */
static cat_col ids_col(size_t n)
{
    cat_col c = {0};
    c.type = CAT_COL_STRING;
    c.width = 15;
    c.s = calloc(n, 16);
    for (size_t k = 0; k < n; k++) snprintf(c.s + k * 16, 16, "%d", (int)(k + 1));
    return c;
}

/* Cutout options for bands g and r of size S under a layout; path is the
 * caller's. */
static cut_opt gr_opt(cut_layout layout, const char *path, int S)
{
    cut_opt o;
    cut_opt_init(&o);
    o.layout = layout;
    o.path = path;
    o.n_bands = 2;
    o.size = S;
    strcpy(o.band[0], "g");
    strcpy(o.band[1], "r");
    return o;
}

static void test_simulator_deterministic_and_physical(void **state)
{
    (void)state;
    lens_sim_opt o;
    lens_sim_opt_init(&o);
    o.n = 24;
    o.size = 32;
    size_t per = 3 * 32 * 32;
    float *a = malloc(o.n * per * sizeof *a), *b = malloc(o.n * per * sizeof *b);
    lens_truth ta[24], tb[24];
    ody_err e;
    o.n_threads = 2;
    assert_ok(lens_simulate(&o, a, ta, &e), e);
    o.n_threads = 1;  /* the images do not depend on the thread count */
    assert_ok(lens_simulate(&o, b, tb, &e), e);
    assert_memory_equal(a, b, o.n * per * sizeof *a);
    o.seed = 2;
    assert_ok(lens_simulate(&o, b, tb, &e), e);
    assert_true(memcmp(a, b, o.n * per * sizeof *a) != 0);
    int lenses = 0;
    for (int k = 0; k < 24; k++) lenses += ta[k].is_lens;
    assert_true(lenses > 4 && lenses < 20);
    /* image multiplicity: 4 inside the tangential caustic, 2 between the
     * caustics, 1 far outside */
    assert_int_equal(lens_count_images(1.0, 0.7, 0.3, 0, 0, 0.05, 0.03), 4);
    assert_int_equal(lens_count_images(1.0, 0.8, 0.0, 0, 0, 0.5, 0.0), 2);
    assert_int_equal(lens_count_images(1.0, 0.7, 0.3, 0, 0, 2.0, 0.0), 1);
    /* a round SIE deflects by theta_E everywhere */
    double ax, ay;
    lens_sie_deflect(1.3, 1.0, 0, 0, 0, 3, 4, &ax, &ay);
    assert_true(fabs(hypot(ax, ay) - 1.3) < 1e-12);
    /* a Sersic profile integrates to its flux */
    double s = 0, h = 0.02;
    for (double x = -15; x < 15; x += h)
        for (double y = -15; y < 15; y += h) s += lens_sersic(hypot(x, y), 0.8, 1.0, 5.0, 1.0) * h * h;
    assert_true(fabs(s - 5.0) < 0.01);
    /* noise-free flux: total counts of a lensed source exceed its intrinsic
     * flux (magnification > 1), checked through the simulator's sky-free mean */
    lens_sim_opt q = o;
    q.n = 8;
    q.frac_lens = 1;
    q.sky = 0;
    q.read_noise = 0;
    float *c = malloc(q.n * per * sizeof *c);
    lens_truth tc[8];
    assert_ok(lens_simulate(&q, c, tc, &e), e);
    for (int k = 0; k < 8; k++) assert_true(tc[k].is_lens && tc[k].theta_e >= 0.8 && tc[k].theta_e <= 2.0);
    free(a); free(b); free(c);
    o.size = 2;
    assert_int_equal(lens_simulate(&o, NULL, NULL, &e), ODY_EINPUT);
}

static void test_every_layout_round_trips(void **state)
{
    (void)state;
    const int S = 16, B = 2;
    size_t n = 5, per = (size_t)B * S * S;
    float *pix = malloc(n * per * sizeof *pix);
    for (size_t k = 0; k < n * per; k++) pix[k] = (float)((k * 37) % 101) - 20.0f;
    pix[3] = NAN;  /* one NaN pixel in object 1, band 0 */
    char *ids[5] = {"1", "2", "3", "4", "5"};
    cat_col col = ids_col(6);  /* row 6 has no cutout */
    char *dir = tu_tmpdir();
    const char *tpl[] = {"dir/{id}_{band}.fits", "dir2/{id}.fits", "cube.fits", "mef.fits"};
    cut_layout lay[] = {CUT_DIR, CUT_DIR, CUT_CUBE, CUT_MEF};
    for (int t = 0; t < 4; t++) {
        for (int compress = 0; compress < 2; compress++) {
            char *p = tu_path(dir, tpl[t]);
            cut_opt o = gr_opt(lay[t], p, S);
            ody_err e;
            assert_ok(cut_write(&o, ids, n, pix, compress, &e), e);
            cut_set *cs = NULL;
            assert_ok(cut_read(&o, &col, 6, &cs, NULL, &e), e);
            assert_int_equal(cs->n_missing, 1);
            assert_false(cs->have[5]);
            assert_int_equal(cs->n_nan, 1);
            for (size_t k = 0; k < n * per; k++) {
                float want = k == 3 ? 0.0f : pix[k];
                /* Rice compression of floats quantises; lossless otherwise */
                /* the step follows the image's own noise estimate (large
                 * for this sawtooth pattern) */
                if (compress) { if (!(fabsf(cs->pix[k] - want) < 10.0f)) fail_msg("compressed pixel %zu: %g vs %g", k, cs->pix[k], want); }
                else if (cs->pix[k] != want) fail_msg("layout %d pixel %zu: %g vs %g", t, k, cs->pix[k], want);
            }
            cut_destroy(cs);
            /* missing as an error */
            o.fail_missing = 1;
            assert_int_equal(cut_read(&o, &col, 6, &cs, NULL, &e), ODY_EINPUT);
            assert_non_null(strstr(e.msg, "no cutout for ID 6"));
            /* another size: centre crop and zero pad */
            o.fail_missing = 0;
            o.size = 8;
            assert_ok(cut_read(&o, &col, 6, &cs, NULL, &e), e);
            assert_int_equal(cs->n_resized, 5);
            if (!compress) assert_true(cs->pix[(size_t)8 * 8 + 0] == pix[(size_t)S * S + 4 * S + 4]);  /* band 1 of object 1 */
            cut_destroy(cs);
            o.size = 20;
            assert_ok(cut_read(&o, &col, 6, &cs, NULL, &e), e);
            assert_true(cs->pix[0] == 0.0f);
            if (!compress) assert_true(cs->pix[2 * 20 + 2] == pix[0]);
            cut_destroy(cs);
            free(p);
        }
    }
    /* a cube whose IDs are as long as a catalog's may be: written and read
     * whole (the IDS table was once 32 characters wide) */
    {
        char *longid = malloc(CAT_ID_MAX + 1);
        memset(longid, '7', CAT_ID_MAX);
        longid[CAT_ID_MAX] = 0;
        char *wids[2] = {"1", longid};
        cat_col wcol = {.type = CAT_COL_STRING, .width = CAT_ID_MAX, .s = calloc(2, CAT_ID_MAX + 1)};
        strcpy(wcol.s, "1");
        strcpy(wcol.s + CAT_ID_MAX + 1, longid);
        cut_opt o;
        cut_opt_init(&o);
        char *p = tu_path(dir, "wide.fits");
        o.layout = CUT_CUBE;
        o.path = p;
        o.n_bands = 1;
        o.size = S;
        strcpy(o.band[0], "g");
        ody_err e;
        assert_ok(cut_write(&o, wids, 2, pix, 0, &e), e);
        cut_set *cs = NULL;
        assert_ok(cut_read(&o, &wcol, 2, &cs, NULL, &e), e);
        assert_int_equal(cs->n_missing, 0);
        assert_true(cs->pix[(size_t)S * S + 5] == pix[(size_t)S * S + 5]);  /* the long ID's plane (one band) */
        cut_destroy(cs);
        free(p); free(longid); free(wcol.s);
    }
    /* an unreadable cutout is an error naming it */
    char *bad = tu_path(dir, "dir2/2.fits");
    FILE *f = fopen(bad, "w");
    fputs("not fits", f);
    fclose(f);
    cut_opt o;
    cut_opt_init(&o);
    char *p = tu_path(dir, "dir2/{id}.fits");
    o.path = p;
    o.n_bands = B;
    o.size = S;
    cut_set *cs = NULL;
    ody_err e;
    assert_int_equal(cut_read(&o, &col, 6, &cs, NULL, &e), ODY_EINPUT);
    assert_non_null(strstr(e.msg, "2.fits"));
    /* a valid FITS file that is no image (a spectrum, a table) says so, where it was "unreadable cutout
     * (CFITSIO: illegal NAXIS keyword value) — run fitsverify" */
    remove(bad);
    fitsfile *ff = NULL;
    int status = 0;
    long len = 32;
    fits_create_file(&ff, bad, &status);
    fits_create_img(ff, FLOAT_IMG, 1, &len, &status);
    fits_write_img(ff, TFLOAT, 1, 32, pix, &status);
    fits_close_file(ff, &status);
    assert_int_equal(status, 0);
    assert_int_equal(cut_read(&o, &col, 6, &cs, NULL, &e), ODY_EINPUT);
    if (!strstr(e.msg, "2.fits: holds no 2-D image (its first image HDU has NAXIS = 1)")) fail_msg("%s", e.msg);
    tu_rmtree(dir);
    free(dir); free(p); free(bad); free(pix); free(col.s);
}

/* A band with no signal: in some cutouts (a survey's edge) warned of with
 * their count, in every cutout (a wrong HDU for the band) refused. */
static void test_blank_band(void **state)
{
    (void)state;
    const int S = 8, B = 2;
    size_t n = 4, per = (size_t)B * S * S;
    float *pix = malloc(n * per * sizeof *pix);
    for (size_t k = 0; k < n * per; k++) pix[k] = 1.0f + (float)(k % 7);
    for (size_t r = 0; r < 2; r++)  /* band r of objects 1 and 2: NaN, then 0 */
        for (int q = 0; q < S * S; q++) pix[r * per + (size_t)S * S + q] = r ? 0.0f : NAN;
    char *ids[4] = {"1", "2", "3", "4"}, *dir = tu_tmpdir(), *p = tu_path(dir, "cube.fits");
    cat_col col = ids_col(4);
    cut_opt o = gr_opt(CUT_CUBE, p, S);
    ody_err e;
    assert_ok(cut_write(&o, ids, n, pix, 0, &e), e);
    char *text = NULL;
    size_t len = 0;
    FILE *m = open_memstream(&text, &len);
    ody_log log = {ODY_LOG_WARN, m, NULL};
    cut_set *cs = NULL;
    assert_ok(cut_read(&o, &col, 4, &cs, &log, &e), e);
    fclose(m);
    if (!strstr(text, "cube.fits: band r has no signal (every pixel NaN or 0) in 2 of 4 cutouts"))
        fail_msg("no warning of the blank planes: %s", text);
    cut_destroy(cs);
    free(text);
    for (size_t r = 2; r < n; r++)  /* now in every cutout */
        for (int q = 0; q < S * S; q++) pix[r * per + (size_t)S * S + q] = NAN;
    assert_ok(cut_write(&o, ids, n, pix, 0, &e), e);
    cs = NULL;
    assert_int_equal(cut_read(&o, &col, 4, &cs, NULL, &e), ODY_EINPUT);
    assert_null(cs);
    if (!strstr(e.msg, "cube.fits: band r has no signal (every pixel NaN or 0) in any of the 4 cutouts found — check "
                       "cutouts.path and cutouts.bands (the band's HDU)"))
        fail_msg("%s", e.msg);
    tu_rmtree(dir);
    free(dir); free(p); free(pix); free(col.s);
}

/* The zoo's real int16 image of M13, plain and tile-compressed four ways,
 * read as cutouts: every form gives the same pixels. */
static void test_zoo_compressed_cutouts(void **state)
{
    (void)state;
    char *zoo = tu_shared("fits_zoo");
    if (!zoo) skip();
    const char *names[] = {"m13", "m13_gzip", "m13_rice", "m13_plio", "m13_hcomp"};
    cat_col col = {0};
    col.type = CAT_COL_STRING;
    col.width = 15;
    col.s = calloc(5, 16);
    for (int k = 0; k < 5; k++) snprintf(col.s + k * 16, 16, "%s", names[k]);
    cut_opt o;
    cut_opt_init(&o);
    char *tpl = tu_path(zoo, "{id}.fits");
    o.path = tpl;
    o.size = 64;
    o.fail_missing = 1;
    cut_set *cs = NULL;
    ody_err e;
    assert_ok(cut_read(&o, &col, 5, &cs, NULL, &e), e);
    assert_int_equal(cs->n_resized, 5);  /* 300 x 300 cropped to 64 x 64 */
    for (int k = 1; k < 5; k++)
        if (memcmp(cs->pix, cs->pix + (size_t)k * 64 * 64, 64 * 64 * sizeof(float)))
            fail_msg("%s differs from m13.fits", names[k]);
    cut_destroy(cs);
    /* the truncated copy is an error naming the file, not a crash */
    snprintf(col.s, 16, "truncated_m13");
    assert_int_equal(cut_read(&o, &col, 1, &cs, NULL, &e), ODY_EINPUT);
    assert_non_null(strstr(e.msg, "truncated_m13"));
    free(col.s);
    free(tpl);
    free(zoo);
}

static void test_features_on_analytic_images(void **state)
{
    (void)state;
    const int S = 64;
    float *g = malloc(S * S * sizeof *g), *ring = malloc(S * S * sizeof *ring), *ell = malloc(S * S * sizeof *ell);
    double c = 0.5 * (S - 1), sig = 3.0;
    for (int i = 0; i < S; i++)
        for (int j = 0; j < S; j++) {
            double dx = j - c, dy = i - c, r = hypot(dx, dy);
            g[i * S + j] = (float)(1000 * exp(-0.5 * r * r / (sig * sig)));
            ell[i * S + j] = (float)(1000 * exp(-0.5 * (dx * dx / 16.0 + dy * dy / 4.0)));
            ring[i * S + j] = g[i * S + j] + (float)(300 * exp(-0.5 * (r - 12) * (r - 12) / 1.5));
        }
    double fg[CUT_NFEAT], fe[CUT_NFEAT], fr[CUT_NFEAT];
    cut_features(g, S, fg);
    cut_features(ell, S, fe);
    cut_features(ring, S, fr);
    /* a round Gaussian: centred, size sqrt(2) sigma, no ellipticity, symmetric */
    assert_true(fg[0] < 1e-6);
    assert_true(fabs(fg[1] - sqrt(2.0) * sig) < 0.05);
    assert_true(fg[2] < 1e-3);
    assert_true(fg[5] < 1e-6);
    /* sigma_x = 4, sigma_y = 2: e = (16 - 4) / (16 + 4) = 0.6, along x */
    assert_true(fabs(fe[2] - 0.6) < 0.01);
    assert_true(fabs(fe[3]) < 1e-6);
    /* a ring shows up in the ring statistic; the Gaussian hardly */
    assert_true(fr[8] > 0.2);
    assert_true(fg[8] < 0.05);
    assert_true(fr[8] > 10 * fg[8]);
    /* a Gaussian's concentration: r80/r20 = sqrt(ln 5 / ln 1.25) */
    assert_true(fabs(fg[4] - 5 * log10(sqrt(log(5.0) / log(1.25)))) < 0.4);
    /* scale-free: the same features for the image times 1e-11 (the units of
     * the lens-challenge images); the far tail underflows in float32, hence
     * the tolerance */
    for (int k = 0; k < S * S; k++) g[k] *= 1e-11f;
    double fs[CUT_NFEAT];
    cut_features(g, S, fs);
    for (int k = 0; k < CUT_NFEAT; k++)
        if (k != 3 /* a round source has no angle */ && !(fabs(fs[k] - fg[k]) < 0.02 * (1 + fabs(fg[k])))) fail_msg("feature %s: %g vs %g", cut_feature_name(k), fs[k], fg[k]);
    /* pixels near FLT_MAX (a saturated or mis-scaled image) give finite features: the asymmetry of
     * +3e38 against -3e38 was inf, computed in float */
    for (int k = 0; k < S * S; k++) ell[k] *= 3e35f;
    ell[0] = 3e38f;
    ell[S * S - 1] = -3e38f;
    cut_features(ell, S, fs);
    for (int k = 0; k < CUT_NFEAT; k++)
        if (!isfinite(fs[k])) fail_msg("feature %s of an image near FLT_MAX: %g", cut_feature_name(k), fs[k]);
    free(g); free(ring); free(ell);
}

/* Defaults but n simulated cutouts of size pixels, trained for epochs. */
static void train_setup(size_t n, int size, int epochs, lens_sim_opt *so, lens_prep *prep, nn_train_opt *to)
{
    lens_sim_opt_init(so);
    so->n = n;
    so->size = size;
    lens_prep_init(prep);
    prep->size = size;
    nn_train_opt_init(to);
    to->max_epochs = epochs;
}

/* A training set smaller than the default batch (64): `lens train -n 40`
 * once failed on "mlp.batch = 64 must be 1 to 36", a key not set. */
static void test_small_training_set(void **state)
{
    (void)state;
    lens_sim_opt so;
    lens_prep prep;
    nn_train_opt to;
    train_setup(20, 16, 1, &so, &prep, &to);
    int hidden[1] = {4};
    nn_model *m = NULL;
    lens_eval ev;
    ody_err e;
    assert_ok(lens_train(&so, &prep, &to, hidden, 1, 10, &m, &ev, NULL, &e), e);
    assert_int_equal(to.batch, 18);  /* as trained (and saved): all 18 training cutouts a step */
    nn_destroy(m);
    /* a held-out set too small to hold both kinds says so, never "nan" */
    char line[LENS_EVAL_STR];
    lens_eval none = {.n_test = 2, .auroc = NAN, .precision = 0, .recall = NAN};
    lens_eval_str(&none, line, sizeof line);
    assert_string_equal(line, "AUROC n/a (no lens or no non-lens held out), precision 0.000, recall n/a (no lens held "
                              "out) at P > 0.5");
    lens_eval two = {.n_test = 9, .auroc = 0.98765, .precision = 0.95, .recall = 0.9};
    assert_string_equal(lens_eval_str(&two, line, sizeof line), "AUROC 0.9877, precision 0.950, recall 0.900 at P > 0.5");
}

static void test_classifier_learns(void **state)
{
    (void)state;
    lens_sim_opt so;
    lens_prep prep;
    nn_train_opt to;
    train_setup(1500, 32, 15, &so, &prep, &to);
    int hidden[2] = {64, 32};
    nn_model *m = NULL;
    lens_eval ev;
    ody_err e;
    assert_ok(lens_train(&so, &prep, &to, hidden, 2, 500, &m, &ev, NULL, &e), e);
    if (ev.auroc < 0.9) fail_msg("held-out AUROC %.3f after a short training", ev.auroc);
    char *dir = tu_tmpdir(), *p = tu_path(dir, "lens.fits");
    assert_ok(lens_model_save(p, m, &to, &prep, &so, &ev, &e), e);
    nn_model *m2 = NULL;
    lens_prep p2;
    assert_ok(lens_model_load(p, &m2, &p2, &e), e);
    assert_int_equal(p2.size, 32);
    assert_int_equal(p2.down, prep.down);
    assert_memory_equal(m->w, m2->w, m->n_par * sizeof(float));
    /* a preprocessing record out of every range (it once overflowed an int
     * computing the input count): refused as damaged */
    {
        fitsfile *f = NULL;
        int status = 0;
        fits_open_file(&f, p, READWRITE, &status);
        fits_write_history(f, "LENS_SIZE=1e12", &status);
        fits_close_file(f, &status);
        assert_int_equal(status, 0);
        nn_model *m3 = NULL;
        assert_int_equal(lens_model_load(p, &m3, &p2, &e), ODY_EINPUT);
        if (!strstr(e.msg, "does not fit its network")) fail_msg("%s", e.msg);
        assert_null(m3);
    }
    double y[4] = {0.1, 0.4, 0.35, 0.8};
    int lab[4] = {0, 0, 1, 1};
    assert_true(fabs(lens_auroc(y, lab, 4) - 0.75) < 1e-12);
    nn_destroy(m);
    nn_destroy(m2);
    tu_rmtree(dir);
    free(dir);
    free(p);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_simulator_deterministic_and_physical),
        cmocka_unit_test(test_every_layout_round_trips),
        cmocka_unit_test(test_blank_band),
        cmocka_unit_test(test_zoo_compressed_cutouts),
        cmocka_unit_test(test_features_on_analytic_images),
        cmocka_unit_test(test_small_training_set),
        cmocka_unit_test(test_classifier_learns),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
