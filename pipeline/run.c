/* run.c — the pipeline's stages, manifest and exports. */
#define _GNU_SOURCE
#include "run.h"

#include <ctype.h>
#include <errno.h>
#include <fitsio.h>
#include <math.h>
#include <omp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "cat.h"
#include "cutout.h"
#include "fitsout.h"
#include "lens.h"
#include "nn.h"
#include "rf.h"

/* ================================================================ stages */

enum { S_INGEST, S_SYNTH, S_FOREST, S_WEIRD, S_SIM, S_MLP, S_LENS, S_EXPORT, N_STAGES };

static const char *stage_names[N_STAGES] = {"ingest", "synthesize", "forest", "weirdness",
                                            "similarity", "mlp", "lens", "export"};

/* Config keys each stage depends on, and the stages whose artifacts it reads. */
static const char *const stage_keys[N_STAGES][4] = {
    {"catalog.", "cutouts.", NULL}, {"synthetic.", "seed", NULL}, {"forest.", "seed", "weirdness.repeats", NULL},
    {"weirdness.", "isolation.", "seed", NULL}, {"similarity.", NULL}, {"mlp.", "seed", NULL},
    {"lens.", "seed", NULL}, {"export.", NULL}};
static const int stage_deps[N_STAGES][4] = {
    {-1}, {S_INGEST, -1}, {S_INGEST, S_SYNTH, -1}, {S_FOREST, -1}, {S_FOREST, -1},
    {S_INGEST, S_SYNTH, -1}, {S_INGEST, -1}, {S_WEIRD, S_SIM, S_MLP, S_LENS}};

int run_n_stages(void) { return N_STAGES; }
const char *run_stage_name(int k) { return k >= 0 && k < N_STAGES ? stage_names[k] : "?"; }

int run_stage_index(const char *name)
{
    for (int k = 0; name && k < N_STAGES; k++)
        if (!strcmp(name, stage_names[k])) return k;
    return -1;
}

void run_opt_init(run_opt *o)
{
    memset(o, 0, sizeof *o);
    o->progress = 1;
}

/* Everything a run holds in memory; stages fill it or load it back. */
typedef struct state {
    const cfg *c;
    const ody_log *log;
    char *dir, *history;
    cat *cat;
    size_t n;
    int F;
    float *S;
    rf_forest **forests;
    int n_forests;
    double *oob, *W, *iso, *anom, *knn, *pmlp, *plens;
    cut_set *cut;         /* cutouts of the kept rows, when read this run */
    lens_eval lev;        /* held-out evaluation of the lens classifier */
    uint32_t *n_good;
    int32_t *nb;
    float *nbs;
    int k;
    rf_sim_ctx ctx0;      /* forest 0's n_good and leaf counts, when the
                             weirdness stage computed them this run */
    int have_ctx0;
    uint64_t hash[N_STAGES];
    uint64_t done[N_STAGES];  /* hashes recorded in the manifest */
} state;

/* ================================================================ helpers */

static char *path_in(const state *st, const char *name)
{
    char *p = NULL;
    if (asprintf(&p, "%s/%s", st->dir, name) < 0) return NULL;
    return p;
}

static int mkdir_p(const char *dir, ody_err *err)
{
    char buf[4096];
    snprintf(buf, sizeof buf, "%s", dir);
    for (char *p = buf + 1; *p; p++) {
        if (*p != '/') continue;
        *p = 0;
        if (mkdir(buf, 0777) && errno != EEXIST)
            return ody_fail(err, ODY_EIO, "%s: cannot create the directory (%s) — check permissions", buf, strerror(errno));
        *p = '/';
    }
    if (mkdir(buf, 0777) && errno != EEXIST)
        return ody_fail(err, ODY_EIO, "%s: cannot create the run directory (%s) — check permissions", buf, strerror(errno));
    return 0;
}

/* FNV-1a of a file's bytes: the input checksum in the manifest.  The base
 * file of a CFITSIO extended path is what is hashed. */
static uint64_t file_checksum(const char *path)
{
    char base[4096];
    snprintf(base, sizeof base, "%.*s", (int)strcspn(path, "["), path);
    uint64_t h = 1469598103934665603ULL;
    FILE *f = fopen(base, "rb");
    if (!f) return 0;
    unsigned char buf[1 << 16];
    size_t n;
    while ((n = fread(buf, 1, sizeof buf, f)) > 0)
        for (size_t i = 0; i < n; i++) h = (h ^ buf[i]) * 1099511628211ULL;
    fclose(f);
    return h;
}

/* Provenance in the primary header of every output: version, input,
 * config file, and the effective config as HISTORY. */
static void provenance(const state *st, fitsfile *f, int *status)
{
    fits_write_key_longwarn(f, status);  /* LONGSTRN: INPUT and CONFIG may be long */
    fits_write_key(f, TSTRING, "CREATOR", (void *)"oddsky", "software", status);
    fits_write_key(f, TSTRING, "ODYVERS", (void *)ody_version(), "oddsky version", status);
    fits_write_key_longstr(f, "INPUT", st->c->cat_path, "input catalog", status);
    fits_write_key_longstr(f, "CONFIG", st->c->file, "configuration file", status);
    long long seed = (long long)st->c->seed;
    fits_write_key(f, TLONGLONG, "SEED", &seed, "master RNG seed", status);
    if (st->lev.n_test) {
        fits_write_key(f, TDOUBLE, "LENSAUC", (void *)&st->lev.auroc, "lens classifier AUROC, held-out simulation", status);
        fits_write_key(f, TDOUBLE, "LENSPREC", (void *)&st->lev.precision, "lens precision at P > 0.5", status);
        fits_write_key(f, TDOUBLE, "LENSREC", (void *)&st->lev.recall, "lens recall at P > 0.5", status);
    }
    fitsout_history(f, st->history, status);
}

/* A column to write: whole arrays in one call. */
typedef struct tcol {
    const char *name;
    int type;           /* TDOUBLE, TFLOAT, TINT, TLONGLONG, TSTRING */
    int repeat;         /* elements per row (strings: width) */
    const void *data;   /* TSTRING: rows of repeat+1 bytes */
    const char *unit;
} tcol;

static int write_table(fitsfile *f, const char *extname, const tcol *cols, int ncol, size_t nrows,
                       int *status)
{
    char **ttype = calloc((size_t)ncol, sizeof *ttype), **tform = calloc((size_t)ncol, sizeof *tform);
    char **tunit = calloc((size_t)ncol, sizeof *tunit);
    char (*fbuf)[24] = calloc((size_t)ncol, sizeof *fbuf);
    char **sp = NULL;
    if (!ttype || !tform || !tunit || !fbuf) { *status = MEMORY_ALLOCATION; goto done; }
    for (int k = 0; k < ncol; k++) {
        char code = cols[k].type == TDOUBLE ? 'D' : cols[k].type == TFLOAT ? 'E' : cols[k].type == TINT ? 'J'
                  : cols[k].type == TLONGLONG ? 'K' : 'A';
        snprintf(fbuf[k], sizeof fbuf[k], "%d%c", cols[k].repeat, code);
        ttype[k] = (char *)cols[k].name;
        tform[k] = fbuf[k];
        tunit[k] = (char *)(cols[k].unit ? cols[k].unit : "");
    }
    fits_create_tbl(f, BINARY_TBL, 0, ncol, ttype, tform, tunit, extname, status);
    for (int k = 0; k < ncol && !*status && nrows; k++) {
        if (cols[k].type == TSTRING) {
            free(sp);
            sp = malloc(nrows * sizeof *sp);
            if (!sp) { *status = MEMORY_ALLOCATION; break; }
            for (size_t i = 0; i < nrows; i++) sp[i] = (char *)cols[k].data + i * (size_t)(cols[k].repeat + 1);
            fits_write_col(f, TSTRING, k + 1, 1, 1, (LONGLONG)nrows, sp, status);
        } else {
            fits_write_col(f, cols[k].type, k + 1, 1, 1, (LONGLONG)nrows * cols[k].repeat, (void *)cols[k].data, status);
        }
    }
done:
    free(ttype); free(tform); free(tunit); free(fbuf); free(sp);
    return *status;
}

/* Writes one table (after the provenance header) to dir/name atomically. */
static int save_table(const state *st, const char *name, const char *extname, const tcol *cols, int ncol,
                      size_t nrows, ody_err *err)
{
    char *path = path_in(st, name);
    if (!path) return ody_fail(err, ODY_ENOMEM, "out of memory");
    fitsout w;
    int rc = fitsout_open(&w, path, 1, err);
    if (!rc) {
        int status = 0;
        provenance(st, w.f, &status);
        write_table(w.f, extname, cols, ncol, nrows, &status);
        rc = fitsout_finish(&w, status ? ody_fits_fail(err, status, path, "cannot write", NULL) : 0, err);
    }
    free(path);
    return rc;
}

/* Reads n values of column `name` of dir/file[ext] as `type` into out. */
static int load_col(const state *st, const char *file, const char *col, int type, size_t n_elem, void *out,
                    ody_err *err)
{
    char *path = path_in(st, file);
    if (!path) return ody_fail(err, ODY_ENOMEM, "out of memory");
    fitsfile *f = NULL;
    int status = 0, colnum = 0, anynul = 0;
    long long nrows = 0;
    fits_open_table(&f, path, READONLY, &status);
    fits_get_colnum(f, CASEINSEN, (char *)col, &colnum, &status);
    fits_get_num_rowsll(f, &nrows, &status);
    fits_read_col(f, type, colnum, 1, 1, (LONGLONG)n_elem, NULL, out, &anynul, &status);
    int rc = status ? ody_fits_fail(err, status, path, "cannot read a stage artifact",
                                    "the run directory is damaged; rerun with --force") : 0;
    ody_fits_close(f);
    free(path);
    return rc;
}

/* ================================================================ manifest */

static void manifest_read(state *st)
{
    char *p = path_in(st, "manifest.txt");
    FILE *f = p ? fopen(p, "r") : NULL;
    free(p);
    if (!f) return;
    char line[512], name[64];
    unsigned long long h;
    while (fgets(line, sizeof line, f)) {
        if (line[0] == '#' || sscanf(line, "%63s %llx", name, &h) != 2) continue;
        int k = run_stage_index(name);
        if (k >= 0) st->done[k] = h;
    }
    fclose(f);
}

static int manifest_write(const state *st, const double *secs, ody_err *err)
{
    char *p = path_in(st, "manifest.txt"), *tmp = NULL;
    if (!p || asprintf(&tmp, "%s.tmp-%ld", p, (long)getpid()) < 0) { free(p); return ody_fail(err, ODY_ENOMEM, "out of memory"); }
    FILE *f = fopen(tmp, "w");
    int rc = 0;
    if (!f) rc = ody_fail(err, ODY_EIO, "%s: cannot write the manifest (%s)", tmp, strerror(errno));
    else {
        fprintf(f, "# stage config+inputs hash, seconds — written by oddsky %s; input %s checksum %016llx\n",
                ody_version(), st->c->cat_path, (unsigned long long)file_checksum(st->c->cat_path));
        for (int k = 0; k < N_STAGES; k++)
            if (st->done[k]) fprintf(f, "%s %016llx %.3f\n", stage_names[k], (unsigned long long)st->done[k], secs[k]);
        if (fclose(f) || rename(tmp, p)) rc = ody_fail(err, ODY_EIO, "%s: cannot write the manifest", p);
    }
    if (rc) unlink(tmp);
    free(p);
    free(tmp);
    return rc;
}

/* ================================================================ ingest */

/* Feature column names in catalog.fits: F_ + the name with [ ] made safe. */
static void feat_col(const char *name, char *buf, size_t len)
{
    snprintf(buf, len, "F_%s", name);
    for (char *p = buf; *p; p++)
        if (!isalnum((unsigned char)*p) && *p != '_' && *p != '-') *p = '_';
}

static void cutout_opt(const cfg *c, cut_opt *co)
{
    cut_opt_init(co);
    co->layout = (cut_layout)cut_layout_parse(c->cut_layout);
    co->path = c->cut_path;
    co->size = c->cut_size;
    co->fail_missing = !strcmp(c->cut_missing, "fail");
    co->n_bands = c->n_cut_bands > 0 ? c->n_cut_bands : 1;
    for (int b = 0; b < c->n_cut_bands; b++) snprintf(co->band[b], sizeof co->band[b], "%s", c->cut_bands[b]);
}

/* Names of the morphology features appended by ingest (n_bands x CUT_NFEAT). */
static char **morph_names(const cfg *c, int *n)
{
    int B = c->n_cut_bands > 0 ? c->n_cut_bands : 1;
    char **v = calloc((size_t)B * CUT_NFEAT, sizeof *v);
    if (!v) return NULL;
    for (int b = 0; b < B; b++)
        for (int k = 0; k < CUT_NFEAT; k++)
            if (asprintf(&v[b * CUT_NFEAT + k], "%s%s%s", c->n_cut_bands ? c->cut_bands[b] : "",
                         c->n_cut_bands ? "_" : "", cut_feature_name(k)) < 0)
                v[b * CUT_NFEAT + k] = NULL;
    *n = B * CUT_NFEAT;
    return v;
}

/* Reads the cutouts of the catalog rows, drops rows without one, and
 * appends morphology features when asked. */
static int ingest_cutouts(state *st, ody_err *err)
{
    const cfg *c = st->c;
    cut_opt co;
    cutout_opt(c, &co);
    int rc = cut_read(&co, &st->cat->id, st->cat->n_rows, &st->cut, st->log, err);
    if (rc) return rc;
    cut_set *cs = st->cut;
    size_t per = (size_t)cs->n_bands * cs->size * cs->size, at = 0;
    if (cs->n_missing) {
        ody_logf(st->log, ODY_LOG_WARN, "cutouts: %zu catalog rows have no cutout and are dropped (cutouts.missing: drop)",
                 cs->n_missing);
        for (size_t r = 0; r < cs->n; r++) {
            if (!cs->have[r]) continue;
            memmove(cs->pix + at * per, cs->pix + r * per, per * sizeof *cs->pix);
            at++;
        }
        if ((rc = cat_keep_rows(st->cat, cs->have, err))) return rc;
        cs->n = at;
        memset(cs->have, 1, at);
    }
    if (!c->cut_morph) return 0;
    int nm = 0;
    char **names = morph_names(c, &nm);
    float *v = malloc((cs->n ? cs->n : 1) * (size_t)nm * sizeof *v);
    if (!names || !v) { free(v); free(names); return ody_fail(err, ODY_ENOMEM, "out of memory"); }
    for (size_t r = 0; r < cs->n; r++)
        for (int b = 0; b < cs->n_bands; b++) {
            double f[CUT_NFEAT];
            cut_features(cs->pix + r * per + (size_t)b * cs->size * cs->size, cs->size, f);
            for (int k = 0; k < CUT_NFEAT; k++) v[r * (size_t)nm + (size_t)b * CUT_NFEAT + k] = (float)f[k];
        }
    rc = cat_add_features(st->cat, v, nm, names, err);
    for (int k = 0; k < nm; k++) free(names[k]);
    free(names);
    free(v);
    return rc;
}

static int stage_ingest(state *st, int run, ody_err *err)
{
    const cfg *c = st->c;
    cat_opt o;
    cat_opt_init(&o);
    char fc[128];
    int rc;
    if (run) {
        o.path = c->cat_path;
        o.hdu = c->cat_hdu[0] ? c->cat_hdu : NULL;
        o.features = (const char *const *)c->features;
        o.n_features = c->n_features;
        o.id_col = c->cat_id[0] ? c->cat_id : NULL;
        o.passthru = (const char *const *)c->passthru;
        o.n_passthru = c->n_passthru;
        o.missing = (cat_missing)cat_missing_parse(c->cat_missing);
        if ((rc = cat_read(&o, &st->cat, st->log, err))) return rc;
        if (c->cut_path[0] && (rc = ingest_cutouts(st, err))) return rc;
        cat *k = st->cat;
        int ncol = 2 + k->n_pass + (int)k->n_feat;
        tcol *cols = calloc((size_t)ncol, sizeof *cols);
        float **fv = calloc(k->n_feat, sizeof *fv);
        char **fn = calloc(k->n_feat, sizeof *fn);
        rc = !cols || !fv || !fn ? ody_fail(err, ODY_ENOMEM, "out of memory") : 0;
        int q = 0;
        if (!rc) {
            cols[q++] = (tcol){"ROW", TLONGLONG, 1, k->row, NULL};
            const cat_col *id = &k->id;
            cols[q++] = (tcol){id->name, id->type == CAT_COL_STRING ? TSTRING : id->type == CAT_COL_INT ? TLONGLONG : TDOUBLE,
                               id->type == CAT_COL_STRING ? id->width : 1,
                               id->type == CAT_COL_STRING ? (void *)id->s : id->type == CAT_COL_INT ? (void *)id->i : (void *)id->f,
                               id->unit};
            for (int p = 0; p < k->n_pass; p++) {
                const cat_col *pc = &k->pass[p];
                cols[q++] = (tcol){pc->name, pc->type == CAT_COL_STRING ? TSTRING : pc->type == CAT_COL_INT ? TLONGLONG : TDOUBLE,
                                   pc->type == CAT_COL_STRING ? pc->width : 1,
                                   pc->type == CAT_COL_STRING ? (void *)pc->s : pc->type == CAT_COL_INT ? (void *)pc->i : (void *)pc->f,
                                   pc->unit};
            }
            for (size_t j = 0; j < k->n_feat && !rc; j++) {
                fv[j] = malloc(k->n_rows * sizeof **fv);
                feat_col(k->feat_names[j], fc, sizeof fc);
                fn[j] = strdup(fc);
                if (!fv[j] || !fn[j]) { rc = ody_fail(err, ODY_ENOMEM, "out of memory"); break; }
                for (size_t i = 0; i < k->n_rows; i++) fv[j][i] = k->X[i * k->n_feat + j];
                cols[q++] = (tcol){fn[j], TFLOAT, 1, fv[j], k->feat_units[j]};
            }
        }
        if (!rc) rc = save_table(st, "catalog.fits", "CATALOG", cols, q, k->n_rows, err);
        for (size_t j = 0; fv && fn && j < k->n_feat; j++) { free(fv[j]); free(fn[j]); }
        free(fv); free(fn); free(cols);
        if (rc) return rc;
    } else {
        /* Read the clean catalog back: features F_*, the ID, pass-through. */
        char *path = path_in(st, "catalog.fits");
        int nm = 0, nf = c->n_features;
        char **mn = c->cut_morph ? morph_names(c, &nm) : NULL;
        char **names = calloc((size_t)(nf + nm), sizeof *names);
        char **orig = calloc((size_t)(nf + nm), sizeof *orig);
        if (!path || !names || !orig || (c->cut_morph && !mn)) {
            free(path); free(names); free(orig); free(mn);
            return ody_fail(err, ODY_ENOMEM, "out of memory");
        }
        for (int j = 0; j < nf + nm; j++) {
            orig[j] = j < nf ? c->features[j] : mn[j - nf];
            feat_col(orig[j], fc, sizeof fc);
            names[j] = strdup(fc);
        }
        o.path = path;
        o.features = (const char *const *)names;
        o.n_features = nf + nm;
        o.missing = CAT_MISSING_FAIL;
        /* the ID column is the second column, whatever its name */
        fitsfile *f = NULL;
        int status = 0;
        char idname[FLEN_VALUE] = "ROW";
        fits_open_table(&f, path, READONLY, &status);
        fits_read_key(f, TSTRING, "TTYPE2", idname, NULL, &status);
        ody_fits_close(f);
        o.id_col = idname;
        o.passthru = (const char *const *)c->passthru;
        o.n_passthru = c->n_passthru;
        rc = status ? ody_fits_fail(err, status, path, "cannot read the ingested catalog", "rerun with --force") : 0;
        if (!rc) rc = cat_read(&o, &st->cat, NULL, err);
        if (!rc) {
            /* restore the names the user gave */
            for (int j = 0; j < nf + nm; j++) {
                free(st->cat->feat_names[j]);
                st->cat->feat_names[j] = strdup(orig[j]);
            }
        }
        for (int j = 0; j < nf + nm; j++) free(names[j]);
        for (int j = 0; j < nm; j++) free(mn[j]);
        free(names);
        free(orig);
        free(mn);
        free(path);
        if (rc) return rc;
    }
    st->n = st->cat->n_rows;
    st->F = (int)st->cat->n_feat;
    if (st->n < 10)
        return ody_fail(err, ODY_EINPUT, "%s: only %zu objects left to score — oddsky needs at least 10; check the "
                        "filter and catalog.missing", c->cat_path, st->n);
    return 0;
}

/* ================================================================ synthesize */

static int stage_synth(state *st, int run, ody_err *err)
{
    size_t n = st->n, F = (size_t)st->F;
    st->S = malloc(n * F * sizeof *st->S);
    if (!st->S) return ody_fail(err, ODY_ENOMEM, "out of memory for %zu synthetic rows", n);
    if (!run) return load_col(st, "synthetic.fits", "X", TFLOAT, n * F, st->S, err);
    int rc = rf_synthesize((rf_synth)rf_synth_parse(st->c->synth_mode), st->cat->X, n, (int)F,
                           (uint64_t)st->c->seed, st->S, err);
    if (rc) return rc;
    tcol col = {"X", TFLOAT, (int)F, st->S, NULL};
    return save_table(st, "synthetic.fits", "SYNTHETIC", &col, 1, n, err);
}

/* ================================================================ forest */

static int stage_forest(state *st, int run, ody_err *err)
{
    const cfg *c = st->c;
    size_t n = st->n, F = (size_t)st->F;
    int R = c->repeats, rc = 0;
    st->forests = calloc((size_t)R, sizeof *st->forests);
    st->oob = malloc(n * sizeof *st->oob);
    if (!st->forests || !st->oob) return ody_fail(err, ODY_ENOMEM, "out of memory");
    st->n_forests = R;
    if (!run) {
        for (int r = 0; r < R && !rc; r++) {
            char name[64];
            snprintf(name, sizeof name, "forest_%d.fits", r);
            char *p = path_in(st, name);
            rc = p ? rf_load(p, &st->forests[r], err) : ody_fail(err, ODY_ENOMEM, "out of memory");
            free(p);
        }
        return rc ? rc : load_col(st, "oob.fits", "P_SYNTH_OOB", TDOUBLE, n, st->oob, err);
    }
    rf_opt o;
    rf_opt_init(&o);
    o.n_trees = c->rf_trees;
    if (rf_maxf_parse(c->rf_max_features, &o.max_features, &o.max_features_value))
        return ody_fail(err, ODY_EINPUT, "%s: forest.max_features '%s' is not sqrt, log2, all, an integer or a "
                        "fraction in (0, 1]", c->file, c->rf_max_features);
    o.min_samples_leaf = c->rf_min_leaf;
    o.max_depth = c->rf_max_depth;
    o.bootstrap = c->rf_bootstrap;
    o.max_samples = (size_t)c->rf_max_samples;
    o.n_threads = c->threads;
    float *XS = malloc(2 * n * F * sizeof *XS);
    uint8_t *y = malloc(2 * n);
    double *oob = malloc(n * sizeof *oob);
    if (!XS || !y || !oob) { free(XS); free(y); free(oob); return ody_fail(err, ODY_ENOMEM, "out of memory for the training set"); }
    memcpy(XS, st->cat->X, n * F * sizeof *XS);
    memcpy(XS + n * F, st->S, n * F * sizeof *XS);
    for (size_t i = 0; i < 2 * n; i++) y[i] = i >= n;
    for (size_t i = 0; i < n; i++) st->oob[i] = 0;
    for (int r = 0; r < R && !rc; r++) {
        o.seed = (uint64_t)c->seed + (uint64_t)r;
        rc = rf_train(&o, XS, y, 2 * n, (int)F, oob, n, &st->forests[r], st->log, err);
        if (rc) break;
        ody_logf(st->log, ODY_LOG_INFO, "forest %d: out-of-bag accuracy real vs synthetic %.4f", r,
                 st->forests[r]->oob_accuracy);
        for (size_t i = 0; i < n; i++) st->oob[i] += (isnan(oob[i]) ? 0.5 : oob[i]) / R;
        char name[64];
        snprintf(name, sizeof name, "forest_%d.fits", r);
        char *p = path_in(st, name);
        rc = p ? rf_save(st->forests[r], p, st->cat->feat_names, st->history, 1, err)
               : ody_fail(err, ODY_ENOMEM, "out of memory");
        free(p);
    }
    free(XS); free(y); free(oob);
    if (rc) return rc;
    tcol col = {"P_SYNTH_OOB", TDOUBLE, 1, st->oob, NULL};
    return save_table(st, "oob.fits", "OOB", &col, 1, n, err);
}

/* ================================================================ weirdness */

static int stage_weird(state *st, int run, ody_err *err)
{
    const cfg *c = st->c;
    size_t n = st->n;
    st->W = calloc(n, sizeof *st->W);
    st->iso = malloc(n * sizeof *st->iso);
    st->anom = malloc(n * sizeof *st->anom);
    st->n_good = calloc(n, sizeof *st->n_good);
    double *w1 = malloc(n * sizeof *w1);
    int rc = 0;
    if (!st->W || !st->iso || !st->anom || !st->n_good || !w1) { free(w1); return ody_fail(err, ODY_ENOMEM, "out of memory"); }
    if (!run) {
        free(w1);
        if ((rc = load_col(st, "weirdness.fits", "WEIRDNESS", TDOUBLE, n, st->W, err))) return rc;
        if ((rc = load_col(st, "weirdness.fits", "ISOLATION", TDOUBLE, n, st->iso, err))) return rc;
        if ((rc = load_col(st, "weirdness.fits", "N_GOOD", TUINT, n, st->n_good, err))) return rc;
        return load_col(st, "weirdness.fits", "ANOMALY_SCORE", TDOUBLE, n, st->anom, err);
    }
    rf_leaf_filter filt = (rf_leaf_filter)rf_leaf_filter_parse(c->leaf_filter);
    for (int r = 0; r < st->n_forests && !rc; r++) {
        rf_sim_ctx ctx;
        if ((rc = rf_sim_ctx_init(&ctx, st->forests[r], st->cat->X, n, filt, err))) break;
        rc = rf_weirdness(&ctx, w1, err);
        for (size_t i = 0; !rc && i < n; i++) {
            st->W[i] += w1[i] / st->n_forests;
            if (r == 0) st->n_good[i] = ctx.n_good[i];
        }
        if (r == 0 && !rc) {  /* the similarity stage needs the same pass */
            st->ctx0 = ctx;
            st->have_ctx0 = 1;
        } else {
            rf_sim_ctx_free(&ctx);
        }
    }
    free(w1);
    if (rc) return rc;
    rf_iso_opt io;
    rf_iso_opt_init(&io);
    io.n_trees = c->iso_trees;
    io.max_samples = (size_t)c->iso_max_samples;
    io.seed = (uint64_t)c->seed;
    rf_forest *iso = NULL;
    if ((rc = rf_iso_train(&io, st->cat->X, n, st->F, &iso, err))) return rc;
    rc = rf_iso_score(iso, st->cat->X, n, st->iso, err);
    rf_destroy(iso);
    if (!rc) rc = rf_anomaly_score(st->W, st->iso, n, st->anom, err);
    if (rc) return rc;
    tcol cols[] = {{"WEIRDNESS", TDOUBLE, 1, st->W, NULL}, {"N_GOOD", TINT, 1, st->n_good, NULL},
                   {"ISOLATION", TDOUBLE, 1, st->iso, NULL}, {"ANOMALY_SCORE", TDOUBLE, 1, st->anom, NULL}};
    return save_table(st, "weirdness.fits", "WEIRDNESS", cols, 4, n, err);
}

/* ================================================================ similarity */

static int stage_sim(state *st, int run, ody_err *err)
{
    const cfg *c = st->c;
    size_t n = st->n;
    int k = c->top_k < (int)n ? c->top_k : (int)n - 1, rc = 0;
    st->k = k;
    st->nb = malloc(n * (size_t)k * sizeof *st->nb);
    st->nbs = malloc(n * (size_t)k * sizeof *st->nbs);
    st->knn = malloc(n * sizeof *st->knn);
    if (!st->nb || !st->nbs || !st->knn) return ody_fail(err, ODY_ENOMEM, "out of memory");
    if (!run) {
        if ((rc = load_col(st, "neighbours.fits", "NEIGHBOUR_ROWS", TINT, n * (size_t)k, st->nb, err))) return rc;
        if ((rc = load_col(st, "neighbours.fits", "SIMILARITY", TFLOAT, n * (size_t)k, st->nbs, err))) return rc;
        return load_col(st, "neighbours.fits", "KNN_DISTANCE", TDOUBLE, n, st->knn, err);
    }
    rf_sim_ctx ctx;
    if (st->have_ctx0) {
        ctx = st->ctx0;
        st->have_ctx0 = 0;  /* this stage frees it */
    } else if ((rc = rf_sim_ctx_init(&ctx, st->forests[0], st->cat->X, n,
                                     (rf_leaf_filter)rf_leaf_filter_parse(c->leaf_filter), err))) {
        return rc;
    }
    rf_topk_opt to;
    rf_topk_opt_init(&to);
    to.k = k;
    to.mem_budget = (size_t)(c->sim_mem_gb * 1e9);
    to.max_pairs = c->sim_max_pairs;
    to.leaf_sample = c->leaf_sample;
    int used = 0;
    rc = rf_topk(&ctx, &to, st->nb, st->nbs, &used, err);
    if (!rc) {
        rf_knn_distance(n, k, st->nbs, st->knn);
        if (used < st->forests[0]->n_trees)
            ody_logf(st->log, ODY_LOG_WARN, "similarity: top-%d lists use the first %d of %d trees (work budget "
                     "similarity.max_pairs = %g; leaves are large: raise forest.max_samples for finer ones, or "
                     "lower similarity.leaf_sample)", k, used, st->forests[0]->n_trees, c->sim_max_pairs);
        else
            ody_logf(st->log, ODY_LOG_INFO, "similarity: top-%d lists over all %d trees", k, used);
    }
    if (!rc && c->dense) {
        char *p = path_in(st, "similarity.fits");
        rc = p ? rf_dense_write(&ctx, p, (size_t)(c->sim_mem_gb * 1e9), 1, err) : ody_fail(err, ODY_ENOMEM, "out of memory");
        free(p);
    }
    rf_sim_ctx_free(&ctx);
    if (rc) return rc;
    tcol cols[] = {{"NEIGHBOUR_ROWS", TINT, k, st->nb, NULL}, {"SIMILARITY", TFLOAT, k, st->nbs, NULL},
                   {"KNN_DISTANCE", TDOUBLE, 1, st->knn, NULL}};
    return save_table(st, "neighbours.fits", "NEIGHBOURS", cols, 3, n, err);
}

/* ================================================================ mlp */

static int stage_mlp(state *st, int run, ody_err *err)
{
    const cfg *c = st->c;
    size_t n = st->n, F = (size_t)st->F;
    if (!c->mlp_on) return 0;
    st->pmlp = malloc(n * sizeof *st->pmlp);
    if (!st->pmlp) return ody_fail(err, ODY_ENOMEM, "out of memory");
    if (!run) return load_col(st, "mlp_scores.fits", "P_SYNTH_MLP", TDOUBLE, n, st->pmlp, err);
    nn_arch a;
    memset(&a, 0, sizeof a);
    a.n_in = (int)F;
    if (c->n_mlp_hidden + 1 > NN_MAX_LAYERS)
        return ody_fail(err, ODY_EINPUT, "%s: mlp.hidden lists %d layers — at most %d", c->file, c->n_mlp_hidden,
                        NN_MAX_LAYERS - 1);
    for (int l = 0; l < c->n_mlp_hidden; l++) {
        a.size[l] = c->mlp_hidden[l];
        a.act[l] = (nn_act)nn_act_parse(c->mlp_act);
    }
    a.n_layers = c->n_mlp_hidden + 1;
    a.size[a.n_layers - 1] = 1;
    a.act[a.n_layers - 1] = NN_SIGMOID;
    a.loss = NN_BCE;
    nn_train_opt o;
    nn_train_opt_init(&o);
    o.lr = c->mlp_lr;
    o.momentum = c->mlp_momentum;
    o.nesterov = c->mlp_nesterov;
    o.lr_decay = c->mlp_lr_decay;
    o.l2 = c->mlp_l2;
    o.batch = c->mlp_batch;
    o.max_epochs = c->mlp_epochs;
    o.patience = c->mlp_patience;
    o.epsilon = c->mlp_eps;
    o.val_frac = c->mlp_val;
    o.seed = (uint64_t)c->seed;
    float *XS = malloc(2 * n * F * sizeof *XS), *T = malloc(2 * n * sizeof *T), *P = malloc(n * sizeof *P);
    nn_model *m = NULL;
    int rc = !XS || !T || !P ? ody_fail(err, ODY_ENOMEM, "out of memory") : 0;
    if (!rc) {
        memcpy(XS, st->cat->X, n * F * sizeof *XS);
        memcpy(XS + n * F, st->S, n * F * sizeof *XS);
        for (size_t i = 0; i < 2 * n; i++) T[i] = (float)(i >= n);
        rc = nn_create(&a, o.init, o.seed, &m, err);
    }
    nn_history h;
    if (!rc) rc = nn_train(m, &o, XS, T, 2 * n, &h, st->log, err);
    if (!rc) {
        ody_logf(st->log, ODY_LOG_INFO, "mlp: real vs synthetic validation accuracy %.4f after %d epochs (kept %d), "
                 "%.0f samples/s", h.val_acc, h.epochs, h.best_epoch, h.samples_per_s);
        rc = nn_predict(m, st->cat->X, n, P, err);
    }
    if (!rc) {
        for (size_t i = 0; i < n; i++) st->pmlp[i] = P[i];
        char *p = path_in(st, "mlp.fits");
        rc = p ? nn_save(m, &o, p, st->history, 1, err) : ody_fail(err, ODY_ENOMEM, "out of memory");
        free(p);
    }
    free(XS); free(T); free(P);
    nn_destroy(m);
    if (rc) return rc;
    tcol col = {"P_SYNTH_MLP", TDOUBLE, 1, st->pmlp, NULL};
    return save_table(st, "mlp_scores.fits", "MLP", &col, 1, n, err);
}

/* ================================================================ lens */

static int stage_lens(state *st, int run, ody_err *err)
{
    const cfg *c = st->c;
    size_t n = st->n;
    if (!c->lens_on) return 0;
    st->plens = malloc(n * sizeof *st->plens);
    if (!st->plens) return ody_fail(err, ODY_ENOMEM, "out of memory");
    int rc = 0;
    if (!run) {
        if ((rc = load_col(st, "lens_scores.fits", "P_LENS", TDOUBLE, n, st->plens, err))) return rc;
        char *p = path_in(st, "lens_scores.fits");
        fitsfile *f = NULL;
        int status = 0;
        fits_open_file(&f, p, READONLY, &status);
        fits_read_key(f, TDOUBLE, "LENSAUC", &st->lev.auroc, NULL, &status);
        fits_read_key(f, TDOUBLE, "LENSPREC", &st->lev.precision, NULL, &status);
        fits_read_key(f, TDOUBLE, "LENSREC", &st->lev.recall, NULL, &status);
        st->lev.n_test = status ? 0 : 1;
        ody_fits_close(f);
        free(p);
        return 0;
    }
    if (!st->cut) {  /* ingest was up to date: read the kept rows' cutouts again */
        cut_opt co;
        cutout_opt(c, &co);
        co.fail_missing = 1;
        if ((rc = cut_read(&co, &st->cat->id, n, &st->cut, st->log, err))) return rc;
    }
    nn_model *m = NULL;
    lens_prep prep;
    if (c->lens_model[0]) {
        if ((rc = lens_model_load(c->lens_model, &m, &prep, err))) return rc;
        if (prep.size != st->cut->size || prep.n_bands != st->cut->n_bands) {
            nn_destroy(m);
            return ody_fail(err, ODY_EINPUT, "%s: the lens model was trained on %d-pixel cutouts in %d bands; these are "
                            "%d pixels in %d — set cutouts.size / bands to match, or leave lens.model empty to train one",
                            c->lens_model, prep.size, prep.n_bands, st->cut->size, st->cut->n_bands);
        }
    } else {
        lens_sim_opt so;
        lens_sim_opt_init(&so);
        so.n = (size_t)c->lens_train_n;
        so.size = st->cut->size;
        so.pix_scale = c->lens_pix;
        so.psf_fwhm = c->lens_psf;
        so.n_bands = st->cut->n_bands;
        for (int b = 0; b < so.n_bands; b++)
            snprintf(so.band[b], sizeof so.band[b], "%s", c->n_cut_bands ? c->cut_bands[b] : "band");
        so.seed = (uint64_t)c->seed;
        lens_prep_init(&prep);
        prep.size = so.size;
        prep.n_bands = so.n_bands;
        prep.down = c->lens_down;
        nn_train_opt to;
        nn_train_opt_init(&to);
        to.max_epochs = c->lens_epochs;
        to.seed = (uint64_t)c->seed;
        int hidden[2] = {128, 64};
        if ((rc = lens_train(&so, &prep, &to, hidden, 2, (size_t)c->lens_test_n, &m, &st->lev, st->log, err))) return rc;
        char *p = path_in(st, "lens_model.fits");
        rc = p ? lens_model_save(p, m, &to, &prep, &so, &st->lev, err) : ody_fail(err, ODY_ENOMEM, "out of memory");
        free(p);
    }
    if (!rc) rc = lens_score(m, &prep, st->cut->pix, n, st->plens, err);
    nn_destroy(m);
    if (rc) return rc;
    tcol col = {"P_LENS", TDOUBLE, 1, st->plens, NULL};
    return save_table(st, "lens_scores.fits", "LENS", &col, 1, n, err);
}

/* ================================================================ export */

static const double *rank_score(const state *st)
{
    const char *r = st->c->rank_by;
    if (!strcmp(r, "weirdness")) return st->W;
    if (!strcmp(r, "knn_distance")) return st->knn;
    if (!strcmp(r, "forest_oob")) return st->oob;
    if (!strcmp(r, "mlp")) return st->pmlp;
    if (!strcmp(r, "lens")) return st->plens;
    return st->anom;
}

/* Sort key: score descending, then row ascending (a total, stable order). */
typedef struct rk { double s; size_t i; } rk;
static int cmp_rk(const void *a, const void *b)
{
    const rk *x = a, *y = b;
    if (x->s != y->s) return x->s < y->s ? 1 : -1;
    return (x->i > y->i) - (x->i < y->i);
}

static void csv_field(FILE *f, const char *s)
{
    if (strpbrk(s, ",\"\n")) {
        fputc('"', f);
        for (; *s; s++) { if (*s == '"') fputc('"', f); fputc(*s, f); }
        fputc('"', f);
    } else {
        fputs(s, f);
    }
}

static int stage_export(state *st, int run, run_summary *sum, ody_err *err)
{
    const cfg *c = st->c;
    size_t n = st->n;
    const double *score = rank_score(st);
    if (!score)
        return ody_fail(err, ODY_EINPUT, "%s: export.rank_by = %s but that score is off (mlp.enabled / lens.enabled) — "
                        "enable it or rank by another score", c->file, c->rank_by);
    rk *order = malloc(n * sizeof *order);
    if (!order) return ody_fail(err, ODY_ENOMEM, "out of memory");
    for (size_t i = 0; i < n; i++) order[i] = (rk){score[i], i};
    qsort(order, n, sizeof *order, cmp_rk);
    size_t m = c->top_n > 0 && (size_t)c->top_n < n ? (size_t)c->top_n : n;
    const cat *k = st->cat;
    char idbuf[128];
    cat_col_format(&k->id, order[0].i, idbuf, sizeof idbuf);
    snprintf(sum->top_id, sizeof sum->top_id, "%s", idbuf);
    sum->top_score = order[0].s;
    if (!run) { free(order); return 0; }

    int want_fits = 0, want_csv = 0;
    for (int f = 0; f < c->n_formats; f++) {
        want_fits |= !strcmp(c->formats[f], "fits");
        want_csv |= !strcmp(c->formats[f], "csv");
    }
    int K = st->k;
    int idstr = k->id.type == CAT_COL_STRING;
    int idw = idstr ? k->id.width : 20;
    /* gathered, ranked columns */
    int32_t *rank = malloc(m * sizeof *rank);
    double *cw = malloc(m * sizeof *cw), *ca = malloc(m * sizeof *ca), *ck = malloc(m * sizeof *ck);
    double *ci = malloc(m * sizeof *ci), *co = malloc(m * sizeof *co), *cm = malloc(m * sizeof *cm);
    double *cl = malloc(m * sizeof *cl);
    int32_t *cg = malloc(m * sizeof *cg);
    void *cid = malloc(m * (idstr ? (size_t)idw + 1 : sizeof(int64_t)));
    double *cidf = malloc(m * sizeof *cidf);
    size_t nbw = (size_t)K * ((size_t)idw + 1) + 1;
    char *cnb = calloc(m, nbw);
    int64_t *cnbi = malloc(m * (size_t)K * sizeof *cnbi);
    int rc = 0;
    void **pv = calloc((size_t)(k->n_pass ? k->n_pass : 1), sizeof *pv);
    if (!rank || !cw || !ca || !ck || !ci || !co || !cm || !cl || !cg || !cid || !cidf || !cnb || !cnbi || !pv) {
        rc = ody_fail(err, ODY_ENOMEM, "out of memory exporting %zu rows", m);
        goto done;
    }
    for (size_t r = 0; r < m; r++) {
        size_t i = order[r].i;
        rank[r] = (int32_t)(r + 1);
        cw[r] = st->W[i];
        ca[r] = st->anom[i];
        ck[r] = st->knn[i];
        ci[r] = st->iso[i];
        co[r] = st->oob[i];
        cm[r] = st->pmlp ? st->pmlp[i] : NAN;
        cl[r] = st->plens ? st->plens[i] : NAN;
        cg[r] = (int32_t)st->n_good[i];
        if (idstr) memcpy((char *)cid + r * (size_t)(idw + 1), k->id.s + i * (size_t)(idw + 1), (size_t)idw + 1);
        else if (k->id.type == CAT_COL_INT) ((int64_t *)cid)[r] = k->id.i[i];
        else cidf[r] = k->id.f[i];
        char *nbp = cnb + r * nbw;
        size_t at = 0;
        for (int q = 0; q < K; q++) {
            int32_t j = st->nb[i * (size_t)K + q];
            cnbi[r * (size_t)K + q] = j < 0 ? -1 : k->id.type == CAT_COL_INT ? k->id.i[j] : (int64_t)j + 1;
            if (j < 0) continue;
            cat_col_format(&k->id, (size_t)j, idbuf, sizeof idbuf);
            at += (size_t)snprintf(nbp + at, nbw - at, "%s%s", at ? ";" : "", idbuf);
            if (at >= nbw) break;
        }
    }
    /* pass-through columns, gathered */
    for (int p = 0; p < k->n_pass; p++) {
        const cat_col *pc = &k->pass[p];
        size_t es = pc->type == CAT_COL_STRING ? (size_t)pc->width + 1 : 8;
        pv[p] = malloc(m * es);
        if (!pv[p]) { rc = ody_fail(err, ODY_ENOMEM, "out of memory"); goto done; }
        for (size_t r = 0; r < m; r++) {
            size_t i = order[r].i;
            if (pc->type == CAT_COL_STRING) memcpy((char *)pv[p] + r * es, pc->s + i * es, es);
            else if (pc->type == CAT_COL_INT) ((int64_t *)pv[p])[r] = pc->i[i];
            else ((double *)pv[p])[r] = pc->f[i];
        }
    }
    if (want_fits) {
        tcol cols[32 + 64];
        int q = 0;
        cols[q++] = (tcol){"RANK", TINT, 1, rank, NULL};
        cols[q++] = (tcol){k->id.name, idstr ? TSTRING : k->id.type == CAT_COL_INT ? TLONGLONG : TDOUBLE,
                           idstr ? idw : 1, idstr || k->id.type == CAT_COL_INT ? cid : (void *)cidf, k->id.unit};
        for (int p = 0; p < k->n_pass && q < 64; p++) {
            const cat_col *pc = &k->pass[p];
            cols[q++] = (tcol){pc->name, pc->type == CAT_COL_STRING ? TSTRING : pc->type == CAT_COL_INT ? TLONGLONG : TDOUBLE,
                               pc->type == CAT_COL_STRING ? pc->width : 1, pv[p], pc->unit};
        }
        cols[q++] = (tcol){"ANOMALY_SCORE", TDOUBLE, 1, ca, NULL};
        cols[q++] = (tcol){"WEIRDNESS", TDOUBLE, 1, cw, NULL};
        cols[q++] = (tcol){"KNN_DISTANCE", TDOUBLE, 1, ck, NULL};
        cols[q++] = (tcol){"ISOLATION", TDOUBLE, 1, ci, NULL};
        cols[q++] = (tcol){"P_SYNTH_FOREST", TDOUBLE, 1, co, NULL};
        if (st->pmlp) cols[q++] = (tcol){"P_SYNTH_MLP", TDOUBLE, 1, cm, NULL};
        if (st->plens) cols[q++] = (tcol){"LENS_PROB", TDOUBLE, 1, cl, NULL};
        cols[q++] = (tcol){"N_GOOD", TINT, 1, cg, NULL};
        if (idstr) cols[q++] = (tcol){"NEIGHBOURS", TSTRING, (int)nbw - 1, cnb, NULL};
        else cols[q++] = (tcol){"NEIGHBOURS", TLONGLONG, K, cnbi, NULL};
        rc = save_table(st, "anomalies.fits", "ANOMALIES", cols, q, m, err);
        if (rc) goto done;
    }
    if (want_csv) {
        char *p = path_in(st, "anomalies.csv"), *tmp = NULL;
        if (!p || asprintf(&tmp, "%s.tmp-%ld", p, (long)getpid()) < 0) { free(p); rc = ody_fail(err, ODY_ENOMEM, "out of memory"); goto done; }
        FILE *f = fopen(tmp, "w");
        if (!f) rc = ody_fail(err, ODY_EIO, "%s: cannot write (%s)", tmp, strerror(errno));
        else {
            fprintf(f, "rank,");
            csv_field(f, k->id.name);
            for (int q = 0; q < k->n_pass; q++) { fputc(',', f); csv_field(f, k->pass[q].name); }
            fprintf(f, ",anomaly_score,weirdness,knn_distance,isolation,p_synth_forest%s%s,n_good,neighbours\n",
                    st->pmlp ? ",p_synth_mlp" : "", st->plens ? ",lens_prob" : "");
            for (size_t r = 0; r < m; r++) {
                size_t i = order[r].i;
                fprintf(f, "%zu,", r + 1);
                cat_col_format(&k->id, i, idbuf, sizeof idbuf);
                csv_field(f, idbuf);
                for (int q = 0; q < k->n_pass; q++) {
                    char vb[512];
                    cat_col_format(&k->pass[q], i, vb, sizeof vb);
                    fputc(',', f);
                    csv_field(f, vb);
                }
                fprintf(f, ",%.10g,%.10g,%.10g,%.10g,%.10g", ca[r], cw[r], ck[r], ci[r], co[r]);
                if (st->pmlp) fprintf(f, ",%.10g", cm[r]);
                if (st->plens) fprintf(f, ",%.10g", cl[r]);
                fprintf(f, ",%d,", cg[r]);
                csv_field(f, cnb + r * nbw);
                fputc('\n', f);
            }
            if (fclose(f) || rename(tmp, p)) rc = ody_fail(err, ODY_EIO, "%s: cannot write the CSV export", p);
        }
        if (rc) unlink(tmp);
        free(p);
        free(tmp);
    }
done:
    for (int p = 0; pv && p < k->n_pass; p++) free(pv[p]);
    free(pv); free(order); free(rank); free(cw); free(ca); free(ck); free(ci); free(co); free(cm); free(cl); free(cg);
    free(cid); free(cidf); free(cnb); free(cnbi);
    return rc;
}

/* ================================================================ driver */

static void state_free(state *st)
{
    cat_destroy(st->cat);
    free(st->S);
    for (int r = 0; r < st->n_forests; r++) rf_destroy(st->forests[r]);
    free(st->forests);
    free(st->oob); free(st->W); free(st->iso); free(st->anom); free(st->knn); free(st->pmlp); free(st->plens);
    cut_destroy(st->cut);
    free(st->n_good); free(st->nb); free(st->nbs);
    if (st->have_ctx0) rf_sim_ctx_free(&st->ctx0);
    free(st->dir);
    free(st->history);
}

int run_pipeline(const cfg *c, const run_opt *o, run_summary *sum, const ody_log *log_in, ody_err *err)
{
    double t0 = ody_now();
    memset(sum, 0, sizeof *sum);
    state st;
    memset(&st, 0, sizeof st);
    st.c = c;
    st.dir = strdup(c->output);
    st.history = cfg_dump(c);
    if (!st.dir || !st.history) { state_free(&st); return ody_fail(err, ODY_ENOMEM, "out of memory"); }
    int rc = mkdir_p(st.dir, err);
    if (rc) { state_free(&st); return rc; }
    char *real = realpath(st.dir, NULL);
    if (real) { free(st.dir); st.dir = real; }
    snprintf(sum->out_dir, sizeof sum->out_dir, "%s", st.dir);
    /* the run log: everything, in the run directory */
    char *lp = path_in(&st, "oddsky.log");
    FILE *lf = lp ? fopen(lp, "a") : NULL;
    free(lp);
    ody_log log = {log_in ? log_in->level : ODY_LOG_ERROR, log_in ? log_in->err : NULL, lf};
    st.log = &log;
    if (c->threads > 0) omp_set_num_threads(c->threads);
    ody_logf(&log, ODY_LOG_INFO, "run: oddsky %s, config %s, output %s", ody_version(), c->file, st.dir);

    int from = o->force ? 0 : o->from_stage ? run_stage_index(o->from_stage) : N_STAGES;
    if (o->from_stage && from < 0) {
        rc = ody_fail(err, ODY_EINPUT, "--from %s: no such stage — use one of ingest, synthesize, forest, weirdness, "
                      "similarity, mlp, lens, export", o->from_stage);
        goto out;
    }
    manifest_read(&st);
    double secs[N_STAGES] = {0};
    uint64_t input_sum = file_checksum(c->cat_path);
    for (int s = 0; s < N_STAGES && !rc; s++) {
        int np = 0;
        while (np < 4 && stage_keys[s][np]) np++;
        uint64_t h = cfg_hash(c, stage_keys[s], np) ^ (0x9E3779B97F4A7C15ULL * (uint64_t)(s + 1));
        if (s == S_INGEST) h ^= input_sum * 0xBF58476D1CE4E5B9ULL;
        for (int d = 0; d < 4 && stage_deps[s][d] >= 0; d++)
            h = (h ^ st.hash[stage_deps[s][d]]) * 1099511628211ULL;
        st.hash[s] = h;
        int run = s >= from || st.done[s] != h;
        /* a stage whose upstream ran must run too (its hash changed above) */
        double ts = ody_now();
        if (run) {
            st.done[s] = 0;
            ody_logf(&log, ODY_LOG_INFO, "stage %s: running", stage_names[s]);
        } else {
            ody_logf(&log, ODY_LOG_INFO, "stage %s: up to date, reading its artifacts", stage_names[s]);
        }
        switch (s) {
        case S_INGEST: rc = stage_ingest(&st, run, err); break;
        case S_SYNTH: rc = stage_synth(&st, run, err); break;
        case S_FOREST: rc = stage_forest(&st, run, err); break;
        case S_WEIRD: rc = stage_weird(&st, run, err); break;
        case S_SIM: rc = stage_sim(&st, run, err); break;
        case S_MLP: rc = stage_mlp(&st, run, err); break;
        case S_LENS: rc = stage_lens(&st, run, err); break;
        default: rc = stage_export(&st, run, sum, err); break;
        }
        if (rc) break;
        secs[s] = ody_now() - ts;
        if (run) {
            sum->stages_run++;
            st.done[s] = h;
            rc = manifest_write(&st, secs, err);
            ody_logf(&log, ODY_LOG_INFO, "stage %s: done in %.2f s", stage_names[s], secs[s]);
        } else {
            sum->stages_skipped++;
        }
    }
    sum->n_objects = st.n;
    sum->wall_s = ody_now() - t0;
    if (!rc) {
        ody_logf(&log, ODY_LOG_INFO, "run: %zu objects, %d stages run, %d up to date, %.2f s", st.n,
                 sum->stages_run, sum->stages_skipped, sum->wall_s);
        char *sp = path_in(&st, "summary.txt");
        FILE *f = sp ? fopen(sp, "w") : NULL;
        if (f) {
            fprintf(f, "n_objects=%zu\ntop_id=%s\ntop_score=%.10g\nstages_run=%d\nstages_skipped=%d\nwall_s=%.3f\n",
                    st.n, sum->top_id, sum->top_score, sum->stages_run, sum->stages_skipped, sum->wall_s);
            fclose(f);
        }
        free(sp);
    }
    else ody_logf(&log, ODY_LOG_ERROR, "%s", err->msg);
out:
    if (lf) fclose(lf);
    state_free(&st);
    return rc;
}

/* ================================================================ top table */

int run_top_table(const char *dir, int n, char **text, ody_err *err)
{
    char *path = NULL;
    if (asprintf(&path, "%s/anomalies.fits", dir) < 0) return ody_fail(err, ODY_ENOMEM, "out of memory");
    fitsfile *f = NULL;
    int status = 0, ncol = 0, rc = 0;
    long nrows = 0;
    fits_open_table(&f, path, READONLY, &status);
    fits_get_num_rows(f, &nrows, &status);
    fits_get_num_cols(f, &ncol, &status);
    if (status) {
        rc = ody_fits_fail(err, status, path, "cannot read the ranked list", "add fits to export.formats");
        goto done;
    }
    if (n > nrows) n = (int)nrows;
    /* every column but the long NEIGHBOURS one and the secondary scores */
    int show[64], ns = 0;
    char names[64][FLEN_VALUE];
    for (int k = 1; k <= ncol && ns < 64; k++) {
        char key[FLEN_KEYWORD], name[FLEN_VALUE] = "";
        fits_make_keyn("TTYPE", k, key, &status);
        fits_read_key(f, TSTRING, key, name, NULL, &status);
        if (!strcmp(name, "NEIGHBOURS") || !strcmp(name, "N_GOOD") || !strcmp(name, "KNN_DISTANCE") ||
            !strcmp(name, "ISOLATION"))
            continue;
        show[ns] = k;
        snprintf(names[ns++], FLEN_VALUE, "%s", name);
    }
    size_t cap = 256 + (size_t)(n + 1) * (size_t)ns * 24, at = 0;
    char *out = malloc(cap);
    if (!out) { rc = ody_fail(err, ODY_ENOMEM, "out of memory"); goto done; }
    for (int c = 0; c < ns; c++) at += (size_t)snprintf(out + at, cap - at, c ? " %14.14s" : "%5.5s", names[c]);
    at += (size_t)snprintf(out + at, cap - at, "\n");
    for (long r = 1; r <= n && !status; r++) {
        for (int c = 0; c < ns; c++) {
            char buf[96] = "", *bp = buf;
            int anynul = 0, type = 0;
            long rep = 0, width = 0;
            fits_get_coltype(f, show[c], &type, &rep, &width, &status);
            if (type == TDOUBLE || type == TFLOAT) {
                double v = 0;
                fits_read_col(f, TDOUBLE, show[c], r, 1, 1, NULL, &v, &anynul, &status);
                snprintf(buf, sizeof buf, "%.5g", v);
            } else {
                fits_read_col(f, TSTRING, show[c], r, 1, 1, NULL, &bp, &anynul, &status);
            }
            char *b = buf;
            while (*b == ' ') b++;
            at += (size_t)snprintf(out + at, cap - at, c ? " %14.14s" : "%5.5s", b);
        }
        at += (size_t)snprintf(out + at, cap - at, "\n");
    }
    if (status) { free(out); rc = ody_fits_fail(err, status, path, "cannot read the ranked list", NULL); goto done; }
    *text = out;
done:
    ody_fits_close(f);
    free(path);
    return rc;
}
