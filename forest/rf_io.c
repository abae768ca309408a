/* rf_io.c — forest save / load as a FITS binary table, one row per node. */
#include <fitsio.h>
#include <limits.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "fitsin.h"
#include "fitsout.h"
#include "rf.h"

#define RF_FORMAT 1  /* the layout written below; raise it when it changes */

static const char *maxf_name(rf_maxf m)
{
    static const char *names[] = {"sqrt", "log2", "int", "fraction", "all"};
    return (unsigned)m < 5 ? names[m] : "sqrt";
}

int rf_save(const rf_forest *f, const char *path, char *const *feat_names, const char *history,
            int overwrite, ody_err *err)
{
    fitsout w;
    int rc = fitsout_open(&w, path, overwrite, err);
    if (rc) return rc;
    int status = 0;
    if (history) fitsout_history(w.f, history, &status);
    char *ttype[] = {"TREE", "NODE", "FEATURE", "THRESH", "LEFT", "N_REAL", "N_SYNTH"};
    char *tform[] = {"J", "J", "J", "E", "J", "J", "J"};
    char *tunit[] = {"", "", "", "", "", "", ""};
    fits_create_tbl(w.f, BINARY_TBL, 0, 7, ttype, tform, tunit, "FOREST", &status);
    const rf_opt *o = &f->opt;
    long long seed = (long long)o->seed, ms = (long long)o->max_samples, ntr = (long long)f->n_train;
    int mf = (int)o->max_features;
    fits_write_key(w.f, TSTRING, "CREATOR", (void *)"oddsky", "software", &status);
    fits_write_key(w.f, TSTRING, "ODYVERS", (void *)ody_version(), "oddsky version", &status);
    int fmt = RF_FORMAT;
    fits_write_key(w.f, TINT, "FORMAT", &fmt, "forest file layout version", &status);
    fits_write_key(w.f, TINT, "NTREES", (void *)&f->n_trees, "number of trees", &status);
    fits_write_key(w.f, TINT, "NFEAT", (void *)&f->n_feat, "number of features", &status);
    fits_write_key(w.f, TINT, "MAXFKIND", &mf, maxf_name(o->max_features), &status);
    fits_write_key(w.f, TDOUBLE, "MAXFVAL", (void *)&o->max_features_value, "max_features value", &status);
    fits_write_key(w.f, TINT, "MINLEAF", (void *)&o->min_samples_leaf, "min_samples_leaf", &status);
    fits_write_key(w.f, TINT, "MAXDEPTH", (void *)&o->max_depth, "max_depth (0 = unlimited)", &status);
    fits_write_key(w.f, TLOGICAL, "BOOTSTRP", (void *)&o->bootstrap, "bootstrap draws", &status);
    fits_write_key(w.f, TLONGLONG, "MAXSAMP", &ms, "draws per tree (0 = all rows)", &status);
    fits_write_key(w.f, TLONGLONG, "SEED", &seed, "master RNG seed", &status);
    fits_write_key(w.f, TLONGLONG, "NTRAIN", &ntr, "training rows (real + synthetic)", &status);
    if (!isnan(f->oob_accuracy))
        fits_write_key(w.f, TDOUBLE, "OOBACC", (void *)&f->oob_accuracy, "out-of-bag accuracy", &status);
    for (int j = 0; feat_names && j < f->n_feat && !status; j++) {
        char key[16];
        snprintf(key, sizeof key, "FEAT%d", j + 1);
        fits_write_key(w.f, TSTRING, key, feat_names[j], "feature column", &status);
    }
    size_t N = f->tree_off[f->n_trees];
    int32_t *col = malloc((N ? N : 1) * sizeof *col);
    float *thr = malloc((N ? N : 1) * sizeof *thr);
    if (!col || !thr) { rc = ody_fail(err, ODY_ENOMEM, "out of memory saving the forest"); goto done; }
    for (int t = 0; t < f->n_trees; t++)
        for (size_t k = f->tree_off[t]; k < f->tree_off[t + 1]; k++) col[k] = t;
    fits_write_col(w.f, TINT, 1, 1, 1, (LONGLONG)N, col, &status);
    for (int t = 0; t < f->n_trees; t++)
        for (size_t k = f->tree_off[t]; k < f->tree_off[t + 1]; k++) col[k] = (int32_t)(k - f->tree_off[t]);
    fits_write_col(w.f, TINT, 2, 1, 1, (LONGLONG)N, col, &status);
    for (size_t k = 0; k < N; k++) col[k] = f->node[k].feat;
    fits_write_col(w.f, TINT, 3, 1, 1, (LONGLONG)N, col, &status);
    for (size_t k = 0; k < N; k++) thr[k] = f->node[k].thr;
    fits_write_col(w.f, TFLOAT, 4, 1, 1, (LONGLONG)N, thr, &status);
    for (size_t k = 0; k < N; k++) col[k] = f->node[k].left;
    fits_write_col(w.f, TINT, 5, 1, 1, (LONGLONG)N, col, &status);
    for (int c = 0; c < 2; c++) {
        for (size_t k = 0; k < N; k++) col[k] = (int32_t)f->cnt[2 * k + c];
        fits_write_col(w.f, TINT, 6 + c, 1, 1, (LONGLONG)N, col, &status);
    }
    if (status) rc = ody_fits_fail(err, status, path, "cannot write the forest", NULL);
done:
    free(col);
    free(thr);
    return fitsout_finish(&w, rc, err);
}

/* The options and sizes from the FOREST table's keywords. */
static int read_keywords(fitsfile *ff, const char *path, rf_forest *f, ody_err *err)
{
    int status = 0, mf = 0;
    long long seed = 0, ms = 0, ntr = 0;
    rf_opt_init(&f->opt);
    ody_fits_read_int32(ff, "NTREES", INT_MIN, INT_MAX, &f->n_trees, &status);
    ody_fits_read_int32(ff, "NFEAT", INT_MIN, INT_MAX, &f->n_feat, &status);
    ody_fits_read_int32(ff, "MAXFKIND", INT_MIN, INT_MAX, &mf, &status);
    fits_read_key(ff, TDOUBLE, "MAXFVAL", &f->opt.max_features_value, NULL, &status);
    ody_fits_read_int32(ff, "MINLEAF", INT_MIN, INT_MAX, &f->opt.min_samples_leaf, &status);
    ody_fits_read_int32(ff, "MAXDEPTH", INT_MIN, INT_MAX, &f->opt.max_depth, &status);
    fits_read_key(ff, TLOGICAL, "BOOTSTRP", &f->opt.bootstrap, NULL, &status);
    ody_fits_read_int(ff, "MAXSAMP", LLONG_MIN, LLONG_MAX, &ms, &status);
    ody_fits_read_int(ff, "SEED", LLONG_MIN, LLONG_MAX, &seed, &status);
    ody_fits_read_int(ff, "NTRAIN", LLONG_MIN, LLONG_MAX, &ntr, &status);
    if (status) return ody_fits_fail(err, status, path, "forest keywords missing", NULL);
    f->opt.max_features = (rf_maxf)mf;
    f->opt.max_samples = (size_t)ms;
    f->opt.seed = (uint64_t)seed;
    f->opt.n_trees = f->n_trees;
    f->n_train = (size_t)ntr;
    if (fits_read_key(ff, TDOUBLE, "OOBACC", &f->oob_accuracy, NULL, &status)) f->oob_accuracy = NAN;
    fits_clear_errmsg();
    return 0;
}

/* The N node rows: tree offsets from the TREE column, then every field. */
static int read_nodes(fitsfile *ff, const char *path, rf_forest *f, size_t N, int32_t *col, float *thr, ody_err *err)
{
    int status = 0, anynul = 0;
    fits_read_col(ff, TINT, 1, 1, 1, (LONGLONG)N, NULL, col, &anynul, &status);
    for (size_t k = 0; k < N && !status; k++) {
        if (col[k] < 0 || col[k] >= f->n_trees || (k && col[k] < col[k - 1]))
            return ody_fail(err, ODY_EINPUT, "%s: row %zu has tree %d out of order — the file is damaged", path,
                            k + 1, col[k]);
        f->tree_off[col[k] + 1] = k + 1;
    }
    for (int t = 1; t <= f->n_trees; t++)
        if (f->tree_off[t] < f->tree_off[t - 1]) f->tree_off[t] = f->tree_off[t - 1];
    fits_read_col(ff, TINT, 3, 1, 1, (LONGLONG)N, NULL, col, &anynul, &status);
    for (size_t k = 0; k < N; k++) f->node[k].feat = col[k];
    fits_read_col(ff, TFLOAT, 4, 1, 1, (LONGLONG)N, NULL, thr, &anynul, &status);
    for (size_t k = 0; k < N; k++) f->node[k].thr = thr[k];
    fits_read_col(ff, TINT, 5, 1, 1, (LONGLONG)N, NULL, col, &anynul, &status);
    for (size_t k = 0; k < N; k++) f->node[k].left = col[k];
    for (int c = 0; c < 2; c++) {
        fits_read_col(ff, TINT, 6 + c, 1, 1, (LONGLONG)N, NULL, col, &anynul, &status);
        for (size_t k = 0; k < N; k++) f->cnt[2 * k + c] = (uint32_t)col[k];
    }
    return status ? ody_fits_fail(err, status, path, "cannot read the forest", NULL) : 0;
}

/* Structure checks, so that a damaged file cannot send traversal astray:
 * every tree has a root (a walk starts at node 0 of each), and every
 * split's children are inside its tree, after it. */
static int check_trees(const rf_forest *f, const char *path, ody_err *err)
{
    for (int t = 0; t < f->n_trees; t++) {
        size_t nn = f->tree_off[t + 1] - f->tree_off[t];
        if (!nn)
            return ody_fail(err, ODY_EINPUT, "%s: tree %d of %d has no nodes — the file is damaged; retrain the forest",
                            path, t, f->n_trees);
        for (size_t k = 0; k < nn; k++) {
            const rf_node *nd = &f->node[f->tree_off[t] + k];
            if (nd->feat < -1 || nd->feat >= f->n_feat ||
                (nd->feat >= 0 && (nd->left <= (int32_t)k || (size_t)nd->left + 1 >= nn)))
                return ody_fail(err, ODY_EINPUT, "%s: tree %d node %zu is malformed — the file is damaged; "
                                "retrain the forest", path, t, k);
        }
    }
    return 0;
}

int rf_load(const char *path, rf_forest **out, ody_err *err)
{
    fitsfile *ff = NULL;
    int status = 0, rc = 0;
    char name[FLEN_FILENAME];
    snprintf(name, sizeof name, "%s[FOREST]", path);
    if ((rc = fitsin_check(path, NULL, err))) return rc;
    if (ody_fits_open(&ff, name, ODY_FITS_TABLE, READONLY, &status)) {
        /* the message first: closing would clear CFITSIO's stack */
        rc = ody_fits_fail(err, status, path, "cannot open the forest table", "is this a forest saved by oddsky (HDU FOREST)?");
        ody_fits_close(ff);
        return rc;
    }
    rf_forest *f = calloc(1, sizeof *f);
    int32_t *col = NULL;
    float *thr = NULL;
    long long nrows = 0;
    rc = f ? fitsin_format(ff, path, RF_FORMAT, err) : ody_fail(err, ODY_ENOMEM, "out of memory");
    if (!rc) rc = read_keywords(ff, path, f, err);
    if (!rc && (fits_get_num_rowsll(ff, &nrows, &status) || f->n_trees < 1 || f->n_feat < 1 || nrows < f->n_trees))
        rc = ody_fail(err, ODY_EINPUT, "%s: the forest table is inconsistent (%lld nodes for %d trees) — retrain and "
                      "save it again", path, nrows, f->n_trees);
    size_t N = (size_t)nrows;
    if (!rc) {
        f->tree_off = calloc((size_t)f->n_trees + 1, sizeof *f->tree_off);
        f->node = malloc(N * sizeof *f->node);
        f->cnt = malloc(2 * N * sizeof *f->cnt);
        col = malloc(N * sizeof *col);
        thr = malloc(N * sizeof *thr);
        if (!f->tree_off || !f->node || !f->cnt || !col || !thr)
            rc = ody_fail(err, ODY_ENOMEM, "out of memory loading %zu nodes", N);
    }
    if (!rc) rc = read_nodes(ff, path, f, N, col, thr, err);
    if (!rc) rc = check_trees(f, path, err);
    ody_fits_close(ff);
    free(col);
    free(thr);
    if (rc) {
        rf_destroy(f);
        return rc;
    }
    *out = f;
    return 0;
}
