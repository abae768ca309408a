/* store.c — the run directory: artifact paths, provenance, atomic tables,
 * stale temporaries (the manifest and the lock: store_manifest.c). */
#define _GNU_SOURCE
#include <dirent.h>
#include <errno.h>
#include <ftw.h>
#include <math.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "knn.h"
#include "stage.h"

char *store_path(const run_state *st, const char *name)
{
    char *p = NULL;
    if (asprintf(&p, "%s/%s", st->dir, name) < 0) return NULL;
    return p;
}

int store_mkdir(const char *dir, ody_err *err)
{
    char buf[4096];
    if (snprintf(buf, sizeof buf, "%s", dir) >= (int)sizeof buf)
        return ody_fail(err, ODY_EINPUT, "%.200s...: the output path is too long", dir);
    for (char *p = buf + 1; *p; p++) {
        if (*p != '/') continue;
        *p = 0;
        if (mkdir(buf, 0777) && errno != EEXIST)
            return ody_fail(err, ODY_EIO, "%s: cannot create the directory (%s) — check permissions", buf, strerror(errno));
        *p = '/';
    }
    if (mkdir(buf, 0777) && errno != EEXIST)
        return ody_fail(err, ODY_EIO, "%s: cannot create the run directory (%s) — check permissions", buf, strerror(errno));
    struct stat sb;
    if (stat(buf, &sb) || !S_ISDIR(sb.st_mode))
        return ody_fail(err, ODY_EINPUT, "%s: exists and is not a directory — choose another output", buf);
    return 0;
}

uint64_t store_digest(const char *path, long long *size)
{
    struct stat sb;
    FILE *f = stat(path, &sb) || !S_ISREG(sb.st_mode) ? NULL : fopen(path, "rb");  /* never a FIFO or a device */
    if (size) *size = -1;
    if (!f) return 0;
    uint64_t h = 0x9E3779B97F4A7C15ULL ^ (uint64_t)sb.st_size, buf[1 << 13];
    size_t n;
    long long got = 0;
    while ((n = fread(buf, 1, sizeof buf, f)) > 0) {
        got += (long long)n;
        if (n % 8) memset((unsigned char *)buf + n, 0, 8 - n % 8);  /* the last, short read */
        for (size_t i = 0; i < (n + 7) / 8; i++) {
            h = (h ^ buf[i]) * 0xFF51AFD7ED558CCDULL;
            h ^= h >> 32;
        }
    }
    int bad = ferror(f);
    fclose(f);
    if (!bad && size) *size = got;
    return bad ? 0 : h | 1;
}

uint64_t store_checksum(const char *path)
{
    char base[4096];
    snprintf(base, sizeof base, "%.*s", (int)ody_fits_file_len(path), path);
    return store_digest(base, NULL);
}

/* ================================================================ tables */

void store_provenance(const run_state *st, fitsfile *f, int *status)
{
    fits_write_key_longwarn(f, status);  /* LONGSTRN: INPUT and CONFIG may be long */
    fits_write_key(f, TSTRING, "CREATOR", (void *)"oddsky", "software", status);
    fits_write_key(f, TSTRING, "ODYVERS", (void *)ody_version(), "oddsky version", status);
    fits_write_key_longstr(f, "INPUT", st->c->cat_path, "input catalog", status);
    fits_write_key_longstr(f, "CONFIG", st->c->file, "configuration file", status);
    long long seed = (long long)st->c->seed;
    fits_write_key(f, TLONGLONG, "SEED", &seed, "master RNG seed", status);
    if (st->stamp) {
        char h[24];
        snprintf(h, sizeof h, "%016llx", (unsigned long long)st->stamp);
        fits_write_key(f, TSTRING, "STAGEH", h, "the stage's hash in manifest.txt", status);
    }
    if (st->lev.n_test) {
        fits_write_key(f, TDOUBLE, "LENSAUC", (void *)&st->lev.auroc, "lens classifier AUROC, held-out simulation", status);
        fits_write_key(f, TDOUBLE, "LENSPREC", (void *)&st->lev.precision, "lens precision at P > 0.5", status);
        fits_write_key(f, TDOUBLE, "LENSREC", (void *)&st->lev.recall, "lens recall at P > 0.5", status);
    }
    fitsout_history(f, st->history, status);
}

fitsout_col store_carried_col(const cat_col *c)
{
    fitsout_col o = {c->name, TDOUBLE, 1, c->f, c->unit, NULL};
    if (c->type == CAT_COL_STRING) { o.type = TSTRING; o.repeat = c->width; o.data = c->s; }
    else if (c->type == CAT_COL_INT) { o.type = TLONGLONG; o.data = c->i; }
    return o;
}

fitsout_col store_col_from(fitsout_col c, size_t rows)
{
    size_t w = (size_t)c.repeat;
    size_t es = c.type == TSTRING ? w + 1 : c.type == TDOUBLE || c.type == TLONGLONG ? 8 * w : c.type == TSHORT ? 2 * w : 4 * w;
    c.data = (const char *)c.data + rows * es;
    return c;
}

int store_save_objects(const run_state *st, const char *name, const char *extname, const fitsout_col *cols,
                       int ncol, ody_err *err)
{
    fitsout_col *all = calloc((size_t)ncol + 1, sizeof *all);
    if (!all) return ody_fail(err, ODY_ENOMEM, "out of memory");
    all[0] = store_col_from(store_carried_col(&st->cat->id), stage_id_at(st));
    all[0].desc = "the object's ID (ROW: its row in the input table, from 1)";
    memcpy(all + 1, cols, (size_t)ncol * sizeof *cols);
    int rc = store_save_slices(st, name, extname, all, ncol + 1, err);
    free(all);
    return rc;
}

/* Bytes of rows a process makes and writes at a time. */
enum { SLICE_BYTES = 4 << 20 };

int store_save_slices(const run_state *st, const char *name, const char *extname, const fitsout_col *cols, int ncol,
                      ody_err *err)
{
    return store_save_slices_then(st, name, extname, cols, ncol, NULL, 0, err);
}

int store_save_slices_then(const run_state *st, const char *name, const char *extname, const fitsout_col *cols,
                           int ncol, const store_hdu *then, int n_then, ody_err *err)
{
    store_spread sp;
    int rc = store_spread_open(st, name, extname, cols, ncol, st->n, &sp, err), status = 0;
    if (rc) return rc;
    size_t piece = sp.rb ? SLICE_BYTES / sp.rb : 1, rows = stage_rows(st);
    fitsout_col *at = malloc((size_t)(ncol ? ncol : 1) * sizeof *at);  /* the columns from a piece's first row */
    if (!at) rc = ody_fail(err, ODY_ENOMEM, "out of memory writing %s", name);
    if (piece < 1) piece = 1;
    for (size_t r0 = 0; !rc && r0 < rows; r0 += piece) {
        size_t nr = rows - r0 < piece ? rows - r0 : piece, len = 0;
        char *mem = NULL;
        for (int k = 0; k < ncol; k++) at[k] = store_col_from(cols[k], r0);
        if (fitsout_rows_bytes(at, NULL, ncol, 0, nr, &mem, &len, &status))
            rc = ody_fail(err, ODY_ENOMEM, "out of memory writing %s", name);
        else store_spread_put(&sp, st->lo + r0, mem, len);
        free(mem);
    }
    free(at);
    return store_spread_close(st, &sp, then, n_then, rc, err);
}

int store_save_tables(const run_state *st, const char *name, const store_hdu *hdu, int n_hdu, ody_err *err)
{
    if (!store_writes(st)) return 0;
    char *path = store_path(st, name);
    if (!path) return ody_fail(err, ODY_ENOMEM, "out of memory");
    fitsout w;
    int rc = fitsout_open(&w, path, 1, err);
    if (!rc) {
        int status = 0;
        store_provenance(st, w.f, &status);
        for (int h = 0; h < n_hdu; h++) fitsout_table_rows(w.f, hdu[h].extname, hdu[h].cols, hdu[h].rows, hdu[h].ncol, hdu[h].nrows, &status);
        rc = fitsout_finish(&w, status ? ody_fits_fail(err, status, path, "cannot write", NULL) : 0, err);
    }
    free(path);
    return rc;
}

/* ---------------------------------------------------------------- feature names */

void store_featnames_free(store_featnames *fn)
{
    free(fn->name);
    free(fn->unit);
    memset(fn, 0, sizeof *fn);
}

int store_featnames_make(const cat *k, store_featnames *fn, ody_err *err)
{
    size_t wn = 1, wu = 1, F = k->n_feat;
    for (size_t j = 0; j < F; j++) {
        if (strlen(k->feat_names[j]) > wn) wn = strlen(k->feat_names[j]);
        if (strlen(k->feat_units[j]) > wu) wu = strlen(k->feat_units[j]);
    }
    fn->name = calloc(F ? F : 1, wn + 1);
    fn->unit = calloc(F ? F : 1, wu + 1);
    if (!fn->name || !fn->unit) {
        store_featnames_free(fn);
        return ody_fail(err, ODY_ENOMEM, "out of memory");
    }
    for (size_t j = 0; j < F; j++) {
        memcpy(fn->name + j * (wn + 1), k->feat_names[j], strlen(k->feat_names[j]));
        memcpy(fn->unit + j * (wu + 1), k->feat_units[j], strlen(k->feat_units[j]));
    }
    fn->cols[0] = (fitsout_col){"NAME", TSTRING, (int)wn, fn->name, NULL, "feature name; element k of FEATURES"};
    fn->cols[1] = (fitsout_col){"UNIT", TSTRING, (int)wu, fn->unit, NULL, NULL};
    fn->hdu = (store_hdu){"FEATURES", fn->cols, 2, F, NULL};
    return 0;
}

int store_load_featnames(const run_state *st, const char *file, cat *k, ody_err *err)
{
    char *path = store_path(st, file);
    if (!path) return ody_fail(err, ODY_ENOMEM, "out of memory");
    fitsfile *f = NULL;
    int status = 0, cn = 0, cu = 0, anynul = 0;
    long nrows = 0;
    ody_fits_open(&f, path, ODY_FITS_FILE, READONLY, &status);
    fits_movnam_hdu(f, BINARY_TBL, "FEATURES", 0, &status);
    fits_get_num_rows(f, &nrows, &status);
    fits_get_colnum(f, CASEINSEN, "NAME", &cn, &status);
    fits_get_colnum(f, CASEINSEN, "UNIT", &cu, &status);
    if (!status && (size_t)nrows != k->n_feat) status = BAD_ROW_NUM;
    for (size_t j = 0; j < k->n_feat && !status; j++) {
        char name[1024] = "", unit[1024] = "", *pn = name, *pu = unit;
        fits_read_col(f, TSTRING, cn, (LONGLONG)j + 1, 1, 1, NULL, &pn, &anynul, &status);
        fits_read_col(f, TSTRING, cu, (LONGLONG)j + 1, 1, 1, NULL, &pu, &anynul, &status);
        if (status) break;
        /* CFITSIO reads a blank string as one blank: the unit was empty */
        for (size_t l = strlen(unit); l > 0 && unit[l - 1] == ' '; l--) unit[l - 1] = 0;
        free(k->feat_names[j]);
        free(k->feat_units[j]);
        k->feat_names[j] = strdup(name);
        k->feat_units[j] = strdup(unit);
        if (!k->feat_names[j] || !k->feat_units[j]) status = MEMORY_ALLOCATION;
    }
    int rc = status ? ody_fits_fail(err, status, path, "cannot read the feature names",
                                    "the run directory is damaged; rerun with --force") : 0;
    ody_fits_close(f);
    free(path);
    return rc;
}

int store_stamp_file(const run_state *st, const char *path, ody_err *err)
{
    if (!st->stamp || !store_writes(st)) return 0;
    fitsfile *f = NULL;
    int status = 0;
    char h[24];
    snprintf(h, sizeof h, "%016llx", (unsigned long long)st->stamp);
    ody_fits_open(&f, path, ODY_FITS_FILE, READWRITE, &status);
    fits_update_key(f, TSTRING, "STAGEH", h, "the stage's hash in manifest.txt", &status);
    fits_write_chksum(f, &status);  /* the header changed: its CHECKSUM too */
    if (status) {
        int rc = ody_fits_fail(err, status, path, "cannot stamp", NULL);
        ody_fits_close(f);
        return rc;
    }
    fits_close_file(f, &status);
    return status ? ody_fits_fail(err, status, path, "cannot stamp", NULL) : 0;
}

int store_check_stamp(fitsfile *f, const char *path, uint64_t want_hash, ody_err *err)
{
    if (!want_hash) return 0;
    int status = 0, at = 1, got;
    char h[FLEN_VALUE] = "", want[24];
    fits_get_hdu_num(f, &at);
    fits_movabs_hdu(f, 1, NULL, &status);
    got = !status && !fits_read_key(f, TSTRING, "STAGEH", h, NULL, &status);
    status = 0;
    fits_clear_errmsg();
    fits_movabs_hdu(f, at, NULL, &status);
    snprintf(want, sizeof want, "%016llx", (unsigned long long)want_hash);
    if (status) return ody_fits_fail(err, status, path, "cannot read a stage artifact", "the run directory is damaged; "
                                     "rerun with --force");
    if (got && strcmp(h, want))
        return ody_fail(err, ODY_EINPUT, "%s was written by another run or config (stage hash %s, the manifest's %s) — "
                        "rerun with --force", path, h, want);
    return 0;
}

int store_check_file(const char *path, uint64_t want, ody_err *err)
{
    if (!want) return 0;
    fitsfile *f = NULL;
    int status = 0;
    if (ody_fits_open(&f, path, ODY_FITS_FILE, READONLY, &status)) {
        int rc = ody_fits_fail(err, status, path, "cannot read a stage artifact", "the run directory is damaged; "
                               "rerun with --force");
        ody_fits_close(f);
        return rc;
    }
    int rc = store_check_stamp(f, path, want, err);
    ody_fits_close(f);
    return rc;
}

int store_load_rows(const run_state *st, const char *file, const char *col, int type, size_t per_row, void *out,
                    ody_err *err)
{
    char *path = store_path(st, file);
    if (!path) return ody_fail(err, ODY_ENOMEM, "out of memory");
    fitsfile *f = NULL;
    int status = 0, colnum = 0, anynul = 0;
    ody_fits_open(&f, path, ODY_FITS_TABLE, READONLY, &status);
    fits_get_colnum(f, CASEINSEN, (char *)col, &colnum, &status);
    /* a file of another run's shape (copied in by hand: the manifest vouches
     * for the config and the catalog, not for the files) is refused whole */
    LONGLONG nrows = 0, repeat = 0, width = 0;
    int tc = 0;
    fits_get_num_rowsll(f, &nrows, &status);
    fits_get_coltypell(f, colnum, &tc, &repeat, &width, &status);
    int rc = status ? ody_fits_fail(err, status, path, "cannot read a stage artifact",
                                    "the run directory is damaged; rerun with --force") : 0;
    if (!rc) rc = store_check_stamp(f, path, st->stamp, err);
    if (!rc && ((size_t)nrows != st->n || (size_t)repeat != per_row))
        rc = ody_fail(err, ODY_EINPUT, "%s: column %s is %lld rows x %lld, the run needs %zu x %zu — the run directory "
                      "is damaged; rerun with --force", path, col, (long long)nrows, (long long)repeat, st->n, per_row);
    if (!rc && stage_rows(st) && per_row)
        fits_read_col(f, type, colnum, (LONGLONG)st->lo + 1, 1, (LONGLONG)(stage_rows(st) * per_row), NULL, out, &anynul,
                      &status);
    if (!rc && status) rc = ody_fits_fail(err, status, path, "cannot read a stage artifact",
                                          "the run directory is damaged; rerun with --force");
    ody_fits_close(f);
    free(path);
    return rc;
}

int store_load_index(const run_state *st, const char *file, const char *col, size_t per_row, int32_t hi, int32_t *out,
                     ody_err *err)
{
    int rc = store_load_rows(st, file, col, TINT, per_row, out, err);
    size_t m = stage_rows(st) * per_row, k = 0;
    while (!rc && k < m && out[k] >= -1 && out[k] < hi) k++;
    if (rc || k == m) return rc;
    char *path = store_path(st, file);
    rc = ody_fail(err, ODY_EINPUT, "%s: column %s holds %d in row %zu, not -1 to %d — the run directory is damaged; "
                  "rerun with --force", path ? path : file, col, (int)out[k], st->lo + k / per_row + 1, (int)hi - 1);
    free(path);
    return rc;
}

double *store_score(run_state *st, cfg_score s)
{
    free(st->score[s]);
    st->score[s] = malloc((stage_rows(st) ? stage_rows(st) : 1) * sizeof *st->score[s]);
    return st->score[s];
}

int store_text_open(const run_state *st, const char *name, fitsout_text *t, ody_err *err)
{
    if (!store_writes(st)) return fitsout_text_open(t, NULL, err);
    char *p = store_path(st, name);
    if (!p) return ody_fail(err, ODY_ENOMEM, "out of memory");
    int rc = fitsout_text_open(t, p, err);
    free(p);
    return rc;
}

/* ================================================================ temporaries */

/* The PID of a "NAME.tmp-PID" entry, or 0. */
static long tmp_pid(const char *name)
{
    const char *t = strstr(name, ".tmp-");
    if (!t) return 0;
    char *end;
    long pid = strtol(t + 5, &end, 10);
    return *end || pid <= 0 ? 0 : pid;
}

void store_sweep_stale(const run_state *st)
{
    DIR *d = opendir(st->dir);
    if (!d) return;
    struct dirent *e;
    while ((e = readdir(d))) {
        long pid = tmp_pid(e->d_name);
        if (!pid || pid == (long)getpid() || kill((pid_t)pid, 0) == 0 || errno != ESRCH) continue;
        char *p = store_path(st, e->d_name);
        if (p && (unlink(p) == 0 || (errno == EISDIR && store_remove_tree(p) == 0)))
            ody_logf(st->log, ODY_LOG_INFO, "removed %s, left by process %ld that is gone", e->d_name, pid);
        free(p);
    }
    closedir(d);
}

static int remove_entry(const char *path, const struct stat *sb, int flag, struct FTW *ftw)
{
    (void)sb, (void)flag, (void)ftw;
    return remove(path);
}

int store_remove_tree(const char *path)
{
    return nftw(path, remove_entry, 16, FTW_DEPTH | FTW_PHYS);
}

/* ================================================================ shared helpers */

const double *stage_rank_score(const cfg *c, double *const *score, const double *learned)
{
    return learned && c->rank_by == CFG_SCORE_ANOMALY ? learned : score[c->rank_by];
}

/* The ranking's order: group (interesting, unlabelled, not interesting),
 * score descending, row: a total order, so any sort gives the same.  The
 * rows are sorted in place (8 bytes an object, no copy of the scores). */
typedef struct rank_by { const double *s; const int16_t *l; } rank_by;

static int cmp_rank(const void *a, const void *b, void *v)
{
    const rank_by *r = v;
    size_t i = *(const size_t *)a, j = *(const size_t *)b;
    int gi = stage_rank_group(r->l, i), gj = stage_rank_group(r->l, j);
    if (gi != gj) return gi - gj;
    if (r->s[i] != r->s[j]) return r->s[i] < r->s[j] ? 1 : -1;
    return (i > j) - (i < j);
}

int stage_rank_order(const double *score, const int16_t *label, size_t n, size_t *order, ody_err *err)
{
    (void)err;
    rank_by r = {score, label};
    for (size_t i = 0; i < n; i++) order[i] = i;
    qsort_r(order, n, sizeof *order, cmp_rank, &r);
    return 0;
}

void stage_csv_field(FILE *f, const char *s)
{
    if (!strpbrk(s, ",\"\n\r")) { fputs(s, f); return; }
    fputc('"', f);
    for (; *s; s++) {
        if (*s == '"') fputc('"', f);
        fputc(*s, f);
    }
    fputc('"', f);
}

void stage_feature_column(const char *name, char *buf, size_t len)
{
    snprintf(buf, len, "F_%s", name);
    for (char *p = buf; *p; p++)
        if (!((*p >= 'a' && *p <= 'z') || (*p >= 'A' && *p <= 'Z') || (*p >= '0' && *p <= '9')) && *p != '_' &&
            *p != '-')
            *p = '_';
}

float *stage_all_rows(const run_state *st, int *mine, ody_err *err)
{
    *mine = 0;
    if (st->cat->X) return st->cat->X;
    void *X = NULL;
    if (ody_gather_rows(st->comm, st->X, st->n, (size_t)st->F * sizeof *st->X, &X, err)) return NULL;
    *mine = 1;
    return X;
}

float *stage_standardized(const run_state *st)
{
    ody_err e;
    int mine = 0;
    const float *X = stage_all_rows(st, &mine, &e);
    float *Z = X ? malloc((st->n ? st->n : 1) * (size_t)st->F * sizeof *Z) : NULL;
    knn_scale sc = {0};
    const knn_scale *s = stage_kept_scale(st);  /* the local stage's, fitted on the reference rows */
    int rc = ody_comm_agree(st->comm, Z ? 0 : ody_fail(&e, ODY_ENOMEM, "out of memory"), &e);
    if (!rc && !s) rc = stage_scale_fit(st, &sc, &e);
    if (!rc) knn_scale_rows(s ? s : &sc, X, st->n, Z);
    knn_scale_free(&sc);
    if (rc) {
        free(Z);
        Z = NULL;
    }
    if (mine) free((void *)X);
    return Z;
}

void stage_cutout_opt(const cfg *c, cut_opt *co)
{
    cut_opt_init(co);
    co->layout = c->cut_layout;
    co->path = c->cut_path;
    co->size = c->cut_size;
    co->fail_missing = c->cut_fail_missing;
    co->n_bands = c->n_cut_bands > 0 ? c->n_cut_bands : 1;
    for (int b = 0; b < c->n_cut_bands; b++) snprintf(co->band[b], sizeof co->band[b], "%s", c->cut_bands[b]);
}

/* s appended at out[at] (cut to fit len, NUL-terminated); the new end as
 * snprintf counts it, past len when cut. */
static size_t put_text(char *out, size_t at, size_t len, const char *s)
{
    size_t n = strlen(s);
    if (at < len) {
        size_t k = len - 1 - at < n ? len - 1 - at : n;
        memcpy(out + at, s, k);
        out[at + k] = 0;
    }
    return at + n;
}

/* "GR +4.1; IZ -2.3": the features that set object i apart, in standard
 * deviations of the catalog from its nearest normal neighbours.  Not
 * through printf ("%s %+.1f"): an export makes it for every object, and
 * printf is slow in this process (ody.h). */
void stage_why_text(char *const *names, int n_why, const int32_t *feat, const int32_t *span, const float *dev,
                    char *out, size_t len)
{
    size_t at = 0;
    char num[48];
    out[0] = 0;
    for (int w = 0; w < n_why && at < len; w++) {
        if (feat[w] < 0) continue;
        if (at) at = put_text(out, at, len, "; ");
        at = put_text(out, at, len, names[feat[w]]);
        at = put_text(out, at, len, signbit(dev[w]) ? " " : " +");
        strfromd(num, sizeof num, "%.1f", dev[w]);
        at = put_text(out, at, len, num);
        const char *first = span && span[2 * w] >= 0 ? names[span[2 * w]] : NULL;
        const char *last = span && span[2 * w + 1] >= 0 ? names[span[2 * w + 1]] : NULL;
        const char *a1 = first ? strchr(first, '@') : NULL, *a2 = last ? strchr(last, '@') : NULL;
        if (a1 && a2 && span[2 * w] < span[2 * w + 1]) {  /* " (6548.1-6577.8)": the elements it covers */
            at = put_text(out, at, len, " (");
            at = put_text(out, at, len, a1 + 1);
            at = put_text(out, at, len, "-");
            at = put_text(out, at, len, a2 + 1);
            at = put_text(out, at, len, ")");
        }
    }
}

void stage_format_why(const run_state *st, size_t i, char *out, size_t len)
{
    size_t at = i * (size_t)st->n_why;
    stage_why_text(st->cat->feat_names, st->n_why, st->why_feat + at, st->why_span ? st->why_span + 2 * at : NULL,
                   st->why_dev + at, out, len);
}
