/* lensclf.c — the lens classifier: cutouts -> MLP inputs -> P(lens). */
#define _GNU_SOURCE
#include <fitsio.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cutout.h"
#include "lens.h"

void lens_prep_init(lens_prep *p)
{
    p->size = 48;
    p->down = 2;
    p->n_bands = 3;
    p->norm = CUT_NORM_ASINH;
    p->morph = 1;
    p->p_lo = 1;
    p->p_hi = 99.5;
    p->n_threads = 0;
}

int lens_inputs(const lens_prep *p, const float *pix, size_t n, float **X, int *d, ody_err *err)
{
    int B = p->n_bands, S = p->size, so = S / p->down;
    int dim = B * so * so + (p->morph ? B * CUT_NFEAT : 0);
    size_t per = (size_t)B * S * S;
    float *x = malloc(n * (size_t)dim * sizeof *x);
    if (!x) return ody_fail(err, ODY_ENOMEM, "out of memory for %zu cutouts' inputs", n);
    int fail = 0;
#pragma omp parallel num_threads(ody_threads(p->n_threads))
    {
        float *tmp = malloc(per * sizeof *tmp);
        if (!tmp) {
#pragma omp atomic write
            fail = 1;
        }
#pragma omp for schedule(static)
        for (size_t k = 0; k < n; k++) {
            if (!tmp) continue;
            const float *img = pix + k * per;
            float *row = x + k * (size_t)dim;
            if (p->morph)
                for (int b = 0; b < B; b++) {
                    double f[CUT_NFEAT];
                    cut_features(img + (size_t)b * S * S, S, f);
                    for (int q = 0; q < CUT_NFEAT; q++) row[B * so * so + b * CUT_NFEAT + q] = (float)f[q];
                }
            memcpy(tmp, img, per * sizeof *tmp);
            cut_normalize(tmp, B, S, (cut_norm)p->norm, p->p_lo, p->p_hi);
            cut_downsample(tmp, B, S, p->down, row);
        }
        free(tmp);
    }
    if (fail) { free(x); return ody_fail(err, ODY_ENOMEM, "out of memory"); }
    *X = x;
    *d = dim;
    return 0;
}

typedef struct sy { double s; int y; } sy;
static int cmp_sy(const void *a, const void *b)
{
    double x = ((const sy *)a)->s, y = ((const sy *)b)->s;
    return (x > y) - (x < y);
}

double lens_auroc(const double *s, const int *y, size_t n)
{
    sy *v = malloc(n * sizeof *v);
    if (!v) return NAN;
    size_t pos = 0;
    for (size_t i = 0; i < n; i++) { v[i] = (sy){s[i], y[i] != 0}; pos += y[i] != 0; }
    qsort(v, n, sizeof *v, cmp_sy);
    double rank_sum = 0;
    for (size_t i = 0; i < n;) {
        size_t j = i;
        while (j < n && v[j].s == v[i].s) j++;
        double avg = 0.5 * ((double)i + 1 + (double)j);  /* tied ranks share */
        for (size_t k = i; k < j; k++) if (v[k].y) rank_sum += avg;
        i = j;
    }
    free(v);
    size_t neg = n - pos;
    if (!pos || !neg) return NAN;
    return (rank_sum - (double)pos * (pos + 1) / 2) / ((double)pos * (double)neg);
}

int lens_score(const nn_model *m, const lens_prep *prep, const float *pix, size_t n, double *p, ody_err *err)
{
    float *X = NULL, *P = NULL;
    int d = 0, rc = lens_inputs(prep, pix, n, &X, &d, err);
    if (rc) return rc;
    if (d != m->arch.n_in) {
        free(X);
        return ody_fail(err, ODY_EINPUT, "lens model expects %d inputs, the cutouts give %d — use cutouts of the "
                        "size and bands the model was trained on", m->arch.n_in, d);
    }
    P = malloc(n * sizeof *P);
    if (!P) { free(X); return ody_fail(err, ODY_ENOMEM, "out of memory"); }
    rc = nn_predict(m, X, n, 0, P, err);
    for (size_t k = 0; !rc && k < n; k++) p[k] = P[k];
    free(X);
    free(P);
    return rc;
}

int lens_train(const lens_sim_opt *sim, const lens_prep *prep, nn_train_opt *o, const int *hidden,
               int n_hidden, size_t n_test, nn_model **mout, lens_eval *ev, const ody_log *log, ody_err *err)
{
    if (n_hidden + 1 > NN_MAX_LAYERS) return ody_fail(err, ODY_EINPUT, "too many hidden layers");
    if (prep->down < 1 || prep->size % prep->down)
        return ody_fail(err, ODY_EINPUT, "downsample factor %d must divide the cutout size %d", prep->down, prep->size);
    size_t per = (size_t)sim->n_bands * sim->size * sim->size;
    lens_sim_opt ts = *sim;
    ts.n = n_test;
    ts.seed = sim->seed + 7919;
    float *pix = malloc((sim->n > n_test ? sim->n : n_test) * per * sizeof *pix);
    lens_truth *tr = malloc((sim->n > n_test ? sim->n : n_test) * sizeof *tr);
    float *X = NULL, *T = NULL;
    double *p = NULL;
    int *y = NULL, d = 0, rc = 0;
    nn_model *m = NULL;
    double t0 = ody_now();
    if (!pix || !tr) { rc = ody_fail(err, ODY_ENOMEM, "out of memory for %zu simulated cutouts", sim->n); goto done; }
    if ((rc = lens_simulate(sim, pix, tr, err))) goto done;
    ody_logf(log, ODY_LOG_INFO, "lens: simulated %zu training cutouts in %.1f s", sim->n, ody_now() - t0);
    if ((rc = lens_inputs(prep, pix, sim->n, &X, &d, err))) goto done;
    T = malloc(sim->n * sizeof *T);
    if (!T) { rc = ody_fail(err, ODY_ENOMEM, "out of memory"); goto done; }
    for (size_t k = 0; k < sim->n; k++) T[k] = (float)tr[k].is_lens;
    nn_arch a;
    memset(&a, 0, sizeof a);
    a.n_in = d;
    for (int l = 0; l < n_hidden; l++) { a.size[l] = hidden[l]; a.act[l] = NN_RELU; }
    a.n_layers = n_hidden + 1;
    a.size[n_hidden] = 1;
    a.act[n_hidden] = NN_SIGMOID;
    a.loss = NN_BCE;
    if ((rc = nn_create(&a, o->init, o->seed, &m, err))) goto done;
    nn_history h;
    int batch = o->batch;
    size_t ntr = nn_train_opt_fit_batch(o, sim->n);
    if (ntr)
        ody_logf(log, ODY_LOG_INFO, "lens: %zu training cutouts, fewer than mlp.batch = %d: each step takes them all",
                 ntr, batch);
    if ((rc = nn_train(m, o, X, T, sim->n, &h, log, err))) goto done;
    free(X);
    X = NULL;
    /* held-out simulation with another seed */
    if ((rc = lens_simulate(&ts, pix, tr, err))) goto done;
    p = malloc(n_test * sizeof *p);
    y = calloc(n_test ? n_test : 1, sizeof *y);
    if (!p || !y) { rc = ody_fail(err, ODY_ENOMEM, "out of memory"); goto done; }
    if ((rc = lens_score(m, prep, pix, n_test, p, err))) goto done;
    size_t tp = 0, fp = 0, fn = 0;
    for (size_t k = 0; k < n_test; k++) {
        y[k] = tr[k].is_lens;
        int pred = p[k] > 0.5;
        tp += pred && y[k];
        fp += pred && !y[k];
        fn += !pred && y[k];
    }
    ev->n_test = n_test;
    ev->auroc = lens_auroc(p, y, n_test);
    ev->threshold = 0.5;
    ev->precision = tp + fp ? (double)tp / (double)(tp + fp) : NAN;
    ev->recall = tp + fn ? (double)tp / (double)(tp + fn) : NAN;
    ev->train_s = ody_now() - t0;
    char line[LENS_EVAL_STR];
    ody_logf(log, ODY_LOG_INFO, "lens: held-out %s (%zu cutouts)", lens_eval_str(ev, line, sizeof line), n_test);
    *mout = m;
    m = NULL;
done:
    free(pix); free(tr); free(X); free(T); free(p); free(y);
    nn_destroy(m);
    return rc;
}

/* One figure, or what it would have needed where it has none. */
static size_t eval_part(char *buf, size_t len, const char *name, double v, int digits, const char *needs)
{
    int w = isnan(v) ? snprintf(buf, len, "%s n/a (no %s held out)", name, needs)
                     : snprintf(buf, len, "%s %.*f", name, digits, v);
    return w < 0 ? 0 : (size_t)w < len ? (size_t)w : len - 1;
}

const char *lens_eval_str(const lens_eval *ev, char *buf, size_t len)
{
    size_t at = eval_part(buf, len, "AUROC", ev->auroc, 4, "lens or no non-lens");
    at += eval_part(buf + at, len - at, ", precision", ev->precision, 3, "cutout above P = 0.5");
    at += eval_part(buf + at, len - at, ", recall", ev->recall, 3, "lens");
    snprintf(buf + at, len - at, " at P > 0.5");
    return buf;
}

int lens_model_save(const char *path, const nn_model *m, const nn_train_opt *o, const lens_prep *prep,
                    const lens_sim_opt *sim, const lens_eval *ev, ody_err *err)
{
    char *h = NULL;
    char bands[160] = "";
    for (int b = 0; b < sim->n_bands; b++) {
        size_t at = strlen(bands);
        snprintf(bands + at, sizeof bands - at, "%s%s", b ? "," : "", sim->band[b]);
    }
    if (asprintf(&h, "LENS_SIZE=%d\nLENS_DOWN=%d\nLENS_BANDS=%d\nLENS_NORM=%d\nLENS_MORPH=%d\nLENS_PLO=%.17g\n"
                 "LENS_PHI=%.17g\nSIM_PIXSCALE=%.17g\nSIM_PSF_FWHM=%.17g\nSIM_BANDS=%s\nSIM_N=%zu\nSIM_SEED=%llu\n"
                 "TEST_AUROC=%.6f\nTEST_PRECISION=%.6f\nTEST_RECALL=%.6f\nTEST_N=%zu\n",
                 prep->size, prep->down, prep->n_bands, prep->norm, prep->morph, prep->p_lo, prep->p_hi,
                 sim->pix_scale, sim->psf_fwhm, bands, sim->n, (unsigned long long)sim->seed, ev->auroc,
                 ev->precision, ev->recall, ev->n_test) < 0)
        return ody_fail(err, ODY_ENOMEM, "out of memory");
    int rc = nn_save(m, o, path, h, 1, err);
    free(h);
    return rc;
}

int lens_model_load(const char *path, nn_model **m, lens_prep *prep, ody_err *err)
{
    int rc = nn_load(path, m, err);
    if (rc) return rc;
    fitsfile *f = NULL;
    int status = 0, nkeys = 0, got = 0;
    lens_prep_init(prep);
    ody_fits_open(&f, path, ODY_FITS_FILE, READONLY, &status);
    fits_get_hdrspace(f, &nkeys, NULL, &status);
    for (int k = 1; k <= nkeys && !status; k++) {
        char card[FLEN_CARD];
        fits_read_record(f, k, card, &status);
        if (strncmp(card, "HISTORY LENS_", 13)) continue;
        const char *kv = card + 8;
        double v = atof(strchr(kv, '=') ? strchr(kv, '=') + 1 : "0");
        int iv = v >= -1e6 && v <= 1e6 ? (int)v : -1;  /* out of any range checked below, and no UB */
        if (!strncmp(kv, "LENS_SIZE=", 10)) { prep->size = iv; got++; }
        else if (!strncmp(kv, "LENS_DOWN=", 10)) prep->down = iv;
        else if (!strncmp(kv, "LENS_BANDS=", 11)) prep->n_bands = iv;
        else if (!strncmp(kv, "LENS_NORM=", 10)) prep->norm = iv;
        else if (!strncmp(kv, "LENS_MORPH=", 11)) prep->morph = iv;
        else if (!strncmp(kv, "LENS_PLO=", 9)) prep->p_lo = v;
        else if (!strncmp(kv, "LENS_PHI=", 9)) prep->p_hi = v;
    }
    ody_fits_close(f);
    if (status || !got) rc = ody_fail(err, ODY_EINPUT, "%s: an MLP file, but not a lens model (no LENS_ "
                                      "preprocessing) — train one with `oddsky lens train`", path);
    int bad = prep->size < 8 || prep->size > 4096 || prep->down < 1 || prep->size % prep->down ||
              prep->n_bands < 1 || prep->n_bands > CUT_MAX_BANDS || prep->norm < 0 || prep->norm > CUT_NORM_NONE;
    int so = bad ? 0 : prep->size / prep->down;  /* within the ranges just checked: no overflow */
    int dim = prep->n_bands * so * so + (prep->morph ? prep->n_bands * CUT_NFEAT : 0);
    if (!rc && (bad || dim != (*m)->arch.n_in))
        rc = ody_fail(err, ODY_EINPUT, "%s: the lens model's preprocessing (size %d, downsample %d, %d bands) does "
                      "not fit its network (%d inputs) — the file is damaged; train it again", path, prep->size,
                      prep->down, prep->n_bands, (*m)->arch.n_in);
    if (rc) {
        nn_destroy(*m);
        *m = NULL;
    }
    return rc;
}
