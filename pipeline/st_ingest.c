/* st_ingest.c — stage "ingest": the catalog (and cutouts) to catalog.fits:
 * the ROW, the ID, the pass-through columns and the clean features. */
#define _GNU_SOURCE
#include <fitsio.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "stage.h"

/* ================================================================ cutouts */

/* Names of the morphology features appended by ingest (n_bands x CUT_NFEAT);
 * NULL when out of memory. */
static char **morph_names(const cfg *c, int *n)
{
    int B = c->n_cut_bands > 0 ? c->n_cut_bands : 1, ok = 1;
    char **v = calloc((size_t)B * CUT_NFEAT, sizeof *v);
    if (!v) return NULL;
    for (int b = 0; b < B; b++)
        for (int k = 0; k < CUT_NFEAT; k++)
            if (asprintf(&v[b * CUT_NFEAT + k], "%s%s%s", c->n_cut_bands ? c->cut_bands[b] : "",
                         c->n_cut_bands ? "_" : "", cut_feature_name(k)) < 0) {
                v[b * CUT_NFEAT + k] = NULL;
                ok = 0;
            }
    *n = B * CUT_NFEAT;
    if (!ok) {
        for (int k = 0; k < *n; k++) free(v[k]);
        free(v);
        return NULL;
    }
    return v;
}

static void free_names(char **v, int n)
{
    for (int k = 0; v && k < n; k++) free(v[k]);
    free(v);
}

/* Drops the catalog rows without a cutout (cutouts.missing: drop). */
static int drop_missing_cutouts(run_state *st, ody_err *err)
{
    cut_set *cs = st->cut;
    size_t per = (size_t)cs->n_bands * cs->size * cs->size, at = 0;
    if (cs->n_missing == cs->n)  /* else "only 0 objects left to score", which blamed catalog.missing */
        return ody_fail(err, ODY_EINPUT, "%s: none of the %zu catalog rows has a cutout — check cutouts.path "
                        "(its folder, {id}, {band}) and cutouts.layout against the files, and catalog.id against the "
                        "IDs they carry", st->c->cut_path, cs->n);
    ody_logf(st->log, ODY_LOG_WARN, "cutouts: %zu catalog rows have no cutout and are dropped (cutouts.missing: drop)",
             cs->n_missing);
    for (size_t r = 0; r < cs->n; r++) {
        if (!cs->have[r]) continue;
        memmove(cs->pix + at * per, cs->pix + r * per, per * sizeof *cs->pix);
        at++;
    }
    int rc = cat_keep_rows(st->cat, cs->have, err);
    if (rc) return rc;
    cs->n = at;
    memset(cs->have, 1, at);
    return 0;
}

/* Appends the morphology features of every band to the catalog. */
static int add_morphology(run_state *st, ody_err *err)
{
    cut_set *cs = st->cut;
    size_t per = (size_t)cs->n_bands * cs->size * cs->size;
    int nm = 0;
    char **names = morph_names(st->c, &nm);
    float *v = malloc((cs->n ? cs->n : 1) * (size_t)nm * sizeof *v);
    if (!names || !v) { free(v); free_names(names, nm); return ody_fail(err, ODY_ENOMEM, "out of memory"); }
    for (size_t r = 0; r < cs->n; r++)
        for (int b = 0; b < cs->n_bands; b++) {
            double f[CUT_NFEAT];
            cut_features(cs->pix + r * per + (size_t)b * cs->size * cs->size, cs->size, f);
            for (int k = 0; k < CUT_NFEAT; k++) v[r * (size_t)nm + (size_t)b * CUT_NFEAT + k] = (float)f[k];
        }
    int rc = cat_add_features(st->cat, v, nm, names, err);
    free_names(names, nm);
    free(v);
    return rc;
}

/* Reads the cutouts of the catalog rows, drops rows without one, and
 * appends morphology features when asked. */
static int ingest_cutouts(run_state *st, ody_err *err)
{
    cut_opt co;
    stage_cutout_opt(st->c, &co);
    int rc = cut_read(&co, &st->cat->id, st->cat->n_rows, &st->cut, st->log, err);
    if (!rc && st->cut->n_missing) rc = drop_missing_cutouts(st, err);
    if (!rc && st->c->cut_morph) rc = add_morphology(st, err);
    return rc;
}

/* ================================================================ catalog.fits */

/* catalog.fits: ROW, the ID, the pass-through columns and the features as
 * one vector column FEATURES (any width), with their names in a FEATURES
 * table; each process's rows from it. */
static int save_catalog(run_state *st, ody_err *err)
{
    const cat *k = st->cat;
    int ncol = 3 + k->n_pass, q = 0;
    fitsout_col *cols = calloc((size_t)ncol, sizeof *cols);
    store_featnames fn = {0};
    int rc = cols ? store_featnames_make(k, &fn, err) : ody_fail(err, ODY_ENOMEM, "out of memory");
    rc = ody_comm_agree(st->comm, rc, err);
    if (!rc) {
        size_t at = stage_id_at(st);
        cols[q++] = (fitsout_col){"ROW", TLONGLONG, 1, k->row + at, NULL, NULL};
        if (st->c->cat_id[0]) cols[q++] = store_col_from(store_carried_col(&k->id), at);  /* else ROW is the ID */
        for (int p = 0; p < k->n_pass; p++) cols[q++] = store_col_from(store_carried_col(&k->pass[p]), at);
        cols[q++] = (fitsout_col){"FEATURES", TFLOAT, (int)k->n_feat, st->X, NULL,
                                  "the features, in the order of the FEATURES table"};
        rc = store_save_slices_then(st, "catalog.fits", "CATALOG", cols, q, &fn.hdu, 1, err);
    }
    store_featnames_free(&fn);
    free(cols);
    return rc;
}

int stage_save_dropped(run_state *st, ody_err *err)
{
    const cat *k = st->cat;
    fitsout_text t;
    int rc = store_text_open(st, "dropped.csv", &t, err);
    if (rc) return rc;
    fputs("row,", t.f);
    stage_csv_field(t.f, k->id.name);
    fputs(",missing\n", t.f);
    for (size_t d = 0; k->drop_row && d < k->n_dropped; d++) {
        char id[512], why[600];
        cat_col_format(&k->drop_id, d, id, sizeof id);
        fprintf(t.f, "%lld,", (long long)k->drop_row[d]);
        stage_csv_field(t.f, id);
        int spec = k->drop_spec[d] < CAT_SPEC_WHY, other = k->drop_nmiss[d] - (spec ? k->spec_out : 0);
        size_t at = 0;  /* the spectrum's bins are one reason, said as such, after any other feature */
        why[0] = 0;
        if (other > 0)
            at = (size_t)snprintf(why, sizeof why, other > 1 ? "%s and %d more" : "%s", k->feat_names[k->drop_feat[d]],
                                  other - 1);
        if (spec && at < sizeof why)
            snprintf(why + at, sizeof why - at, "%sthe spectrum, %s", at ? "; " : "", cat_spec_why(k->drop_spec[d]));
        fputc(',', t.f);
        stage_csv_field(t.f, why);
        fputc('\n', t.f);
    }
    return fitsout_text_commit(&t, err);
}

/* ================================================================ reading back */

/* The catalog as o describes it: by parts with several processes, unless
 * whole is asked (the cutouts are matched to rows and rows dropped by
 * every process alike). */
static int read_catalog(run_state *st, const cat_opt *o, int whole, ody_err *err)
{
    if (ody_comm_size(st->comm) > 1 && !whole) return stage_read_parts(st, o, err);
    return cat_read(o, &st->cat, st->log, err);
}

static int load_catalog(run_state *st, ody_err *err)
{
    const cfg *c = st->c;
    char *path = store_path(st, "catalog.fits");
    if (!path) return ody_fail(err, ODY_ENOMEM, "out of memory");
    static const char *const feat[] = {"FEATURES"};  /* the whole vector */
    cat_opt o;
    cat_opt_init(&o);
    o.path = path;
    o.features = feat;
    o.n_features = 1;
    o.missing = CAT_MISSING_FAIL;
    o.quiet_values = 1;
    o.id_col = c->cat_id[0] ? c->cat_id : "ROW";  /* the original row when there is no ID column */
    o.passthru = (const char *const *)c->passthru;
    o.n_passthru = c->n_passthru;
    int rc = store_check_file(path, st->stamp, err);
    if (!rc) rc = read_catalog(st, &o, 0, err);
    if (!rc) rc = store_load_featnames(st, "catalog.fits", st->cat, err);
    free(path);
    return rc;
}

/* ================================================================ the stage */

/* The catalog as the config describes it; spec: storage for its spectra
 * options. */
static void input_opt(const cfg *c, cat_opt *o, cat_spec *spec)
{
    cat_opt_init(o);
    *spec = (cat_spec){c->spec_flux, c->spec_wave, c->spec_loglam, c->spec_ivar, c->spec_mask, c->spec_z,
                       c->spec_g0, c->spec_g1, c->spec_dg, c->spec_n0, c->spec_n1, c->spec_ds};
    if (c->spec_flux[0]) o->spec = spec;
    o->path = c->cat_path;
    o->hdu = c->cat_hdu[0] ? c->cat_hdu : NULL;
    o->features = (const char *const *)c->features;
    o->n_features = c->n_features;
    o->id_col = c->cat_id[0] ? c->cat_id : NULL;
    o->passthru = (const char *const *)c->passthru;
    o->n_passthru = c->n_passthru;
    o->missing = c->cat_missing;
    o->nulls = c->cat_nulls;
    o->n_nulls = c->n_cat_nulls;
    o->format = c->cat_format;
}

int run_check_catalog(const cfg *c, long long *n_rows, int *n_feat, ody_err *err)
{
    cat_opt o;
    cat_spec spec;
    input_opt(c, &o, &spec);
    return cat_check(&o, n_rows, n_feat, err);
}

int stage_read_catalog(const cfg *c, const char *path, cat **out, const ody_log *log, ody_err *err)
{
    cat_opt o;
    cat_spec spec;
    input_opt(c, &o, &spec);
    o.path = path;
    o.run_features = 1;
    o.passthru_optional = 1;
    return cat_read(&o, out, log, err);
}

static int read_input(run_state *st, ody_err *err)
{
    const cfg *c = st->c;
    cat_opt o;
    cat_spec spec;
    input_opt(c, &o, &spec);
    int rc = read_catalog(st, &o, c->cut_path[0] != 0, err);
    if (!rc && c->cut_path[0]) rc = ingest_cutouts(st, err);
    return rc;
}

/* More than 2% of the rows gone is a biased subset: said even with -q. */
static void warn_dropped(const run_state *st)
{
    const cfg *c = st->c;
    const cat *k = st->cat;
    if (k->n_dropped * 50 <= k->n_table_rows) return;
    if (k->spec_bad * 2 > k->n_dropped) {  /* mostly spectra: the reason most share, and the grid to look at */
        int why = cat_spec_main_why(k);
        ody_logf(st->log, ODY_LOG_WARN, "%s: %zu of %zu rows (%.0f%%) dropped, %zu for an unusable spectrum (%zu %s) — "
                 "the ranking covers only the rest (a run lists them in %s/dropped.csv)%s", c->cat_path, k->n_dropped,
                 k->n_table_rows, 100.0 * (double)k->n_dropped / (double)k->n_table_rows, k->spec_bad,
                 k->spec_bad_why[why], cat_spec_why(why), c->output, why == CAT_SPEC_COVER ? "; a grid (spectra.grid_"
                 "start, grid_stop) within every spectrum's rest-frame wavelengths keeps them" : "");
        return;
    }
    ody_logf(st->log, ODY_LOG_WARN, "%s: %zu of %zu rows (%.0f%%) dropped for missing feature values — the ranking "
             "covers only the rest (a run lists them in %s/dropped.csv); set `catalog.missing: impute` to keep "
             "them, or choose other features", c->cat_path, k->n_dropped, k->n_table_rows,
             100.0 * (double)k->n_dropped / (double)k->n_table_rows, c->output);
}

/* The run folder's record of the input: catalog.fits, dropped.csv. */
static int save_input(run_state *st, ody_err *err)
{
    int rc = save_catalog(st, err);
    if (!rc && store_writes(st)) rc = stage_save_dropped(st, err);
    rc = ody_comm_agree(st->comm, rc, err);
    if (!rc) warn_dropped(st);
    return rc;
}

/* The run's peak memory, estimated before the forest starts: the features
 * (4 bytes a value) and the forest's training set (a byte a value for the
 * real and the synthetic rows; the MLP makes its rows as it reads them);
 * per object, the neighbour lists (8 bytes a neighbour while they are
 * found) and the similar objects (8 bytes each while they are found; the
 * export makes its ID lists a chunk of rows at a time), and its scores. */
static int run_fits(const run_state *st, ody_err *err)
{
    const cfg *c = st->c;
    int K = c->local_k > c->lof_k ? c->local_k : c->lof_k;
    double nf = (double)st->n * st->F, need = nf * (4 + 2) +
                                              (double)st->n * (8.0 * K + 8.0 * c->top_k + 64);
    double have = ody_phys_memory();
    if (have > 0 && need > 0.8 * have)
        return ody_fail(err, ODY_EINPUT, "%s: %zu objects x %d features need about %.1f GB to run; this machine has "
                        "%.1f GB — select rows in catalog.path, keep fewer features, or use a larger machine",
                        c->cat_path, st->n, st->F, need / 1e9, have / 1e9);
    return 0;
}

/* A feature with one value over the whole catalog cannot tell objects
 * apart: it costs time and says nothing. */
static int warn_constant(const run_state *st, ody_err *err)
{
    size_t F = (size_t)st->F, nl = stage_rows(st);
    float *v0 = malloc(F * sizeof *v0);  /* the first object's values, from the process that holds it */
    int64_t *differ = calloc(F, sizeof *differ);
    int rc = ody_comm_agree(st->comm, v0 && differ ? 0 : ody_fail(err, ODY_ENOMEM, "out of memory"), err);
    if (!rc) {
        if (st->lo == 0) memcpy(v0, st->X, F * sizeof *v0);
        rc = ody_bcast(st->comm, v0, F * sizeof *v0, 0, err);
    }
    for (size_t j = 0; !rc && j < F; j++)
        for (size_t i = 0; i < nl && !differ[j]; i++) differ[j] = st->X[i * F + j] != v0[j];
    if (!rc) rc = ody_allreduce(st->comm, differ, F, ODY_SUM_I64, err);
    cat_warned named = {0};  /* five by name on the console, the rest summed up (a blank band's morphology) */
    for (size_t j = 0; !rc && j < F; j++) {
        if (differ[j]) continue;
        const char *name = st->cat->feat_names[j], *at = strrchr(name, '@');
        char advice[200] = "drop it from catalog.features";
        if (j >= st->cat->n_table_feat && st->cat->spec_out && at) {  /* a bin of the spectral grid */
            double centre = strtod(at + 1, NULL), n0 = st->c->spec_n0, n1 = st->c->spec_n1;
            if (n1 > n0 && centre >= n0 - 0.5 * st->c->spec_dg && centre <= n1 + 0.5 * st->c->spec_dg)
                snprintf(advice, sizeof advice, "a bin of the normalisation window %g-%g (spectra.norm_from, "
                         "norm_to), by whose median each spectrum is divided: widen the window", n0, n1);
            else snprintf(advice, sizeof advice, "a bin of the spectral grid: look at the spectra there");
        }
        ody_logf(st->log, cat_warned_level(&named, name), "%s: feature %s is %g for all %zu objects — it cannot tell "
                 "them apart; %s", st->c->cat_path, name, (double)v0[j], st->n, advice);
    }
    if (!rc) cat_warned_close(&named, CAT_WARNED_CONSTANT, st->c->cat_path, st->log);
    free(v0);
    free(differ);
    return rc;
}

/* The ID column listed as a feature too: a catalog's running number or
 * survey object ID says where an object sits in the file, not what it is. */
static void warn_id_feature(const run_state *st)
{
    const cfg *c = st->c;
    for (int j = 0; c->cat_id[0] && j < c->n_features; j++)
        if (!strcasecmp(c->features[j], c->cat_id))
            ody_logf(st->log, ODY_LOG_WARN, "%s: %s is catalog.id and a feature too — an ID says where an object "
                     "sits in the catalog, not what it is; remove it from catalog.features", c->file, c->cat_id);
}

/* A catalog read by parts: the value warnings cat_read gives when one
 * process reads it all, on the first process, from every process's
 * summary: the float32 levels from the parts' ranges as read, then the
 * sentinels from each part's ends and sample, a block of features at a
 * time. */
static int warn_parts(const run_state *st, ody_err *err)
{
    enum { B = 64 };
    const cat *k = st->cat;
    int R = ody_comm_size(st->comm), me = ody_comm_rank(st->comm);
    size_t F = (size_t)st->F, nt = k->n_table_feat < F ? k->n_table_feat : F, w = cat_sentinel_len(R);
    size_t len = 2 * nt > B * w ? 2 * nt : B * w;  /* doubles a process sends at a time */
    double *mine = malloc(len * sizeof *mine), *all = me ? NULL : malloc((size_t)R * len * sizeof *all);
    size_t *sizes = calloc((size_t)R, sizeof *sizes);
    int rc = ody_comm_agree(st->comm, mine && sizes && (me || all) ? 0 : ody_fail(err, ODY_ENOMEM, "out of memory"),
                            err);
    for (size_t j = 0; !rc && j < nt; j++) {  /* a part with no range of its own (none kept, or not kept) is none */
        mine[2 * j] = k->read_lo ? k->read_lo[j] : INFINITY;
        mine[2 * j + 1] = k->read_hi ? k->read_hi[j] : -INFINITY;
    }
    if (!rc) rc = ody_gather(st->comm, mine, 2 * nt * sizeof *mine, all, sizes, 0, err);
    cat_warned levels = {0}, sentinels = {0};
    for (size_t j = 0; !rc && !me && j < nt; j++) {
        double lo = INFINITY, hi = -INFINITY;
        for (int p = 0; p < R; p++) {
            lo = fmin(lo, all[2 * ((size_t)p * nt + j)]);
            hi = fmax(hi, all[2 * ((size_t)p * nt + j) + 1]);
        }
        cat_warn_levels(k, j, lo, hi, st->c->cat_path, st->log, &levels);
    }
    if (!rc && !me) cat_warned_close(&levels, CAT_WARNED_LEVELS, st->c->cat_path, st->log);
    for (size_t j0 = 0; !rc && j0 < nt; j0 += B) {
        size_t j1 = j0 + B < nt ? j0 + B : nt;
        cat_sentinel_part(st->X, stage_rows(st), F, j0, j1, R, mine);
        rc = ody_gather(st->comm, mine, (j1 - j0) * w * sizeof *mine, all, sizes, 0, err);
        if (!rc && !me) cat_sentinel_warn(k, j0, j1, all, R, st->c->cat_path, st->log, &sentinels);
    }
    if (!rc && !me) cat_warned_close(&sentinels, CAT_WARNED_SENTINEL, st->c->cat_path, st->log);
    free(mine);
    free(all);
    free(sizes);
    return rc;
}

static int enough_objects(const run_state *st, ody_err *err)
{
    if (st->n >= 10) return 0;
    return ody_fail(err, ODY_EINPUT, "%s: only %zu object%s left to score — oddsky needs at least 10; check the "
                    "filter and catalog.missing", st->c->cat_path, st->n, st->n == 1 ? "" : "s");
}

static int ingest(run_state *st, int run, ody_err *err)
{
    int rc = run ? read_input(st, err) : load_catalog(st, err);
    if (rc) return rc;
    st->n = st->cat->n_rows;
    ody_comm_part(st->comm, ody_comm_rank(st->comm), st->n, &st->lo, &st->hi);
    st->F = (int)st->cat->n_feat;
    st->X = st->cat->X ? st->cat->X + st->lo * (size_t)st->F : st->X_own;
    if (stage_keeps_all(st) && (rc = stage_join_parts(st, err))) return rc;
    /* refusals before catalog.fits is written: a run that stops here leaves
     * no artifact behind, only its log */
    if ((rc = run_fits(st, err))) return rc;
    if ((rc = enough_objects(st, err))) return rc;
    if (run && (rc = save_input(st, err))) return rc;
    free(st->cat->row);  /* in catalog.fits now; no later stage reads them (8 bytes an object, every process) */
    st->cat->row = NULL;
    /* said when the catalog is read, not each time a later command (score,
     * report, next) loads the run */
    if (run && (rc = warn_constant(st, err))) return rc;
    if (run && ody_comm_size(st->comm) > 1 && !st->c->cut_path[0] && (rc = warn_parts(st, err))) return rc;
    if (run) warn_id_feature(st);
    return 0;
}

/* `oddsky check --values`: the checks of ingest above, nothing written. */
int run_check_values(const cfg *c, const ody_log *log, run_check_info *info, ody_err *err)
{
    run_state st;
    memset(&st, 0, sizeof st);
    st.c = c;
    st.log = log;
    int rc = read_input(&st, err);
    if (!rc) {
        st.n = st.hi = st.cat->n_rows;
        st.F = (int)st.cat->n_feat;
        st.X = st.cat->X;
        info->n_table_rows = st.cat->n_table_rows;
        info->n_rows = st.n;
        info->n_dropped = st.cat->n_dropped;
        info->n_imputed = st.cat->n_imputed;
        info->n_features = st.F;
        rc = run_fits(&st, err);
    }
    if (!rc) rc = enough_objects(&st, err);
    if (!rc) {
        warn_dropped(&st);
        rc = warn_constant(&st, err);
    }
    if (!rc) warn_id_feature(&st);
    cut_destroy(st.cut);
    cat_destroy(st.cat);
    return rc;
}

const stage_def stage_ingest = {
    .name = "ingest",
    .what = "catalog (+ cutouts, morphology) -> the clean feature matrix",
    .keys = (const char *const[]){"catalog.", "spectra.", "cutouts.", NULL},
    .reads = (const char *const[]){NULL},
    .writes = (const char *const[]){"catalog.fits", "dropped.csv", NULL},
    .hashes_input = 1,
    .version = 2,  /* 2: features as one vector column */
    .fn = ingest,
};
