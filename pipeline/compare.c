/* compare.c — how two runs' rankings differ: `oddsky compare RUN_A RUN_B`. */
#define _GNU_SOURCE
#include <fitsio.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "run.h"
#include "yamltree.h"

/* One run's ranked list: every object's ID (as text) and rank. */
typedef struct ranking {
    long n;
    int idw;
    char *ids;       /* n IDs of idw + 1 bytes, in rank order */
    char idname[FLEN_VALUE];
    long *by_id;     /* row indices sorted by ID */
} ranking;

static const char *id_of(const ranking *r, long i) { return r->ids + (size_t)i * (size_t)(r->idw + 1); }

static int cmp_id(const void *a, const void *b, void *r)
{
    return strcmp(id_of(r, *(const long *)a), id_of(r, *(const long *)b));
}

/* Reads RANK order and the ID column (the second) of DIR/anomalies.fits. */
static int load(const char *dir, ranking *r, ody_err *err)
{
    char path[4200];
    snprintf(path, sizeof path, "%s/anomalies.fits", dir);
    fitsfile *f = NULL;
    int status = 0, type = 0;
    long rep = 0, width = 0;
    memset(r, 0, sizeof *r);
    if (ody_fits_open(&f, path, ODY_FITS_TABLE, READONLY, &status)) {
        ody_fits_close(f);
        return ody_fail(err, ODY_EINPUT, "%s: cannot open (%s) — give the output folder of a finished run "
                        "(`output:` in its config)", path, status == FILE_NOT_OPENED ? "no such file" : "not a ranked list");
    }
    fits_get_num_rows(f, &r->n, &status);
    fits_read_key(f, TSTRING, "TTYPE2", r->idname, NULL, &status);
    fits_get_coltype(f, 2, &type, &rep, &width, &status);
    r->idw = status ? 0 : (int)ody_fits_strbuf(f, 2, &status) - 1;  /* at least 31: a float ID's 17 digits fit */
    if (!status && r->n > 0) {
        r->ids = malloc((size_t)r->n * (size_t)(r->idw + 1));
        char **p = malloc((size_t)r->n * sizeof *p);
        r->by_id = malloc((size_t)r->n * sizeof *r->by_id);
        if (!r->ids || !p || !r->by_id) status = MEMORY_ALLOCATION;
        for (long i = 0; !status && i < r->n; i++) p[i] = r->ids + (size_t)i * (size_t)(r->idw + 1);
        int anynul = 0;
        if (!status && (type == TDOUBLE || type == TFLOAT)) {  /* print a float ID in full */
            for (long i = 0; i < r->n && !status; i++) {
                double v = 0;
                fits_read_col(f, TDOUBLE, 2, i + 1, 1, 1, NULL, &v, &anynul, &status);
                snprintf(p[i], (size_t)r->idw + 1, "%.17g", v);
            }
        } else if (!status) fits_read_col(f, TSTRING, 2, 1, 1, r->n, NULL, p, &anynul, &status);
        for (long i = 0; !status && i < r->n; i++) {  /* trim the padding */
            char *s = p[i] + strspn(p[i], " ");
            memmove(p[i], s, strlen(s) + 1);
            r->by_id[i] = i;
        }
        free(p);
    }
    ody_fits_close(f);
    if (status) return ody_fits_fail(err, status, path, "cannot read the ranked list", NULL);
    qsort_r(r->by_id, (size_t)r->n, sizeof *r->by_id, cmp_id, r);
    return 0;
}

static void ranking_free(ranking *r)
{
    free(r->ids);
    free(r->by_id);
}

/* Pairs (rank in A, rank in B), 0-based, of the objects in both lists. */
static long match(const ranking *a, const ranking *b, long *ra, long *rb)
{
    long i = 0, j = 0, m = 0;
    while (i < a->n && j < b->n) {
        int c = strcmp(id_of(a, a->by_id[i]), id_of(b, b->by_id[j]));
        if (c == 0) {
            ra[m] = a->by_id[i++];
            rb[m++] = b->by_id[j++];
        } else if (c < 0) i++;
        else j++;
    }
    return m;
}

/* Spearman's rho of the shared objects' ranks, re-ranked among themselves
 * (ranks are distinct, so no ties). */
static double spearman(long m, const long *ra, const long *rb, long n_a, long n_b)
{
    long n = n_a > n_b ? n_a : n_b;
    long *slot = malloc((size_t)n * sizeof *slot), *pa = malloc((size_t)m * sizeof *pa);
    double d2 = 0, rho = NAN;
    if (m >= 2 && slot && pa) {
        long r, q = 0;
        for (r = 0; r < n; r++) slot[r] = -1;
        for (long k = 0; k < m; k++) slot[ra[k]] = k;
        for (r = 0; r < n; r++) if (slot[r] >= 0) pa[slot[r]] = q++;
        for (r = 0; r < n; r++) slot[r] = -1;
        for (long k = 0; k < m; k++) slot[rb[k]] = k;
        q = 0;
        for (r = 0; r < n; r++)
            if (slot[r] >= 0) {
                double d = (double)(pa[slot[r]] - q++);
                d2 += d * d;
            }
        double md = (double)m;
        rho = 1.0 - 6.0 * d2 / (md * (md * md - 1.0));
    }
    free(slot);
    free(pa);
    return rho;
}

typedef struct moved { long k; long d; } moved;

static int cmp_moved(const void *x, const void *y)
{
    const moved *a = x, *b = y;
    if (a->d != b->d) return a->d < b->d ? 1 : -1;
    return (a->k > b->k) - (a->k < b->k);
}

static void report(FILE *o, const ranking *a, const ranking *b, long m, const long *ra, const long *rb, int top)
{
    fprintf(o, "A: %ld objects, B: %ld objects, %ld in both (matched by %s)\n", a->n, b->n, m, a->idname);
    const int ks[] = {10, 50, 100, top};
    for (int q = 0; q < 4; q++) {
        long k = ks[q], shared = 0;
        if (q == 3 && (top == 10 || top == 50 || top == 100)) break;
        for (long t = 0; t < m; t++) shared += ra[t] < k && rb[t] < k;
        fprintf(o, "top %ld: %ld shared (%.0f%%)\n", k, shared, 100.0 * (double)shared / (double)k);
    }
    fprintf(o, "Spearman rank correlation over the %ld shared objects: %.4f\n", m, spearman(m, ra, rb, a->n, b->n));
    moved *mv = malloc((size_t)(m ? m : 1) * sizeof *mv);
    long nm = 0;
    for (long t = 0; mv && t < m; t++)
        if (ra[t] < top || rb[t] < top) mv[nm++] = (moved){t, labs(ra[t] - rb[t])};
    if (!mv || nm == 0) {
        free(mv);
        return;
    }
    qsort(mv, (size_t)nm, sizeof *mv, cmp_moved);
    fprintf(o, "Moved most, of the top %d in either (+: higher in B):\n%*s  %8s  %8s  %8s\n", top,
            a->idw < 20 ? a->idw : 20, a->idname, "rank A", "rank B", "moved");
    for (long t = 0; t < nm && t < 10; t++) {
        long k = mv[t].k;
        fprintf(o, "%*s  %8ld  %8ld  %+8ld\n", a->idw < 20 ? a->idw : 20, id_of(a, ra[k]), ra[k] + 1, rb[k] + 1,
                ra[k] - rb[k]);
    }
    free(mv);
}

/* ================================================================ settings */

/* What two runs were made with, from the effective configuration each run
 * folder keeps (config.yaml, every key with defaults filled): the keys whose
 * values differ, so that a moved ranking comes with its likely cause.
 * `output` always differs and is left out.  A folder without a readable
 * config.yaml is said so and the rankings are still compared: the list is
 * what is compared, the settings only explain it. */

typedef struct setting { char path[128]; char val[512]; } setting;

/* The leaves of an effective config as "sect.key" = text, in file order;
 * NULL (and *n 0) when the file is missing or not YAML. */
static setting *settings_of(const char *dir, long *n, char *version, size_t vlen)
{
    char path[4200], line[160] = "";
    snprintf(path, sizeof path, "%s/config.yaml", dir);
    *n = 0;
    snprintf(version, vlen, "?");
    FILE *f = fopen(path, "r");
    if (f) {  /* "# effective configuration (oddsky VERSION)" */
        const char *tag = "# effective configuration (oddsky ";
        if (fgets(line, sizeof line, f) && !strncmp(line, tag, strlen(tag)))
            snprintf(version, vlen, "%.*s", (int)strcspn(line + strlen(tag), ")\n"), line + strlen(tag));
        fclose(f);
    }
    yt_node *root = NULL;
    ody_err e = {0};
    if (yt_load_file(path, "config", &root, &e) || !root || root->kind != YT_MAP) {
        yt_free(root);
        return NULL;
    }
    long cap = 0;
    for (const yt_node *s = root->child; s; s = s->next)
        if (s->kind != YT_MAP) cap++;
        else
            for (const yt_node *k = s->child; k; k = k->next) cap++;
    setting *v = calloc((size_t)(cap ? cap : 1), sizeof *v);
    for (const yt_node *s = root->child; v && s; s = s->next) {
        if (s->kind != YT_MAP) {
            snprintf(v[*n].path, sizeof v[*n].path, "%s", s->key);
            yt_text(s, v[*n].val, sizeof v[*n].val);
            (*n)++;
            continue;
        }
        for (const yt_node *k = s->child; k; k = k->next, (*n)++) {
            snprintf(v[*n].path, sizeof v[*n].path, "%s.%s", s->key, k->key);
            if (k->kind == YT_MAP) snprintf(v[*n].val, sizeof v[*n].val, "{...}");
            else yt_text(k, v[*n].val, sizeof v[*n].val);
        }
    }
    yt_free(root);
    return v;
}

static const setting *find_setting(const setting *v, long n, const char *path)
{
    for (long i = 0; i < n; i++)
        if (!strcmp(v[i].path, path)) return &v[i];
    return NULL;
}

static void settings_diff(FILE *o, const char *dir_a, const char *dir_b)
{
    long na = 0, nb = 0, shown = 0;
    char va[64], vb[64];
    setting *a = settings_of(dir_a, &na, va, sizeof va), *b = settings_of(dir_b, &nb, vb, sizeof vb);
    if (!a || !b) {
        fprintf(o, "Settings: not compared (%s/config.yaml cannot be read)\n", !a ? dir_a : dir_b);
        free(a);
        free(b);
        return;
    }
    if (strcmp(va, vb)) fprintf(o, "oddsky versions differ: A %s, B %s\n", va, vb);
    for (int pass = 0; pass < 2; pass++) {  /* A's keys in A's order, then the keys only B has */
        const setting *p = pass ? b : a, *q = pass ? a : b;
        long np = pass ? nb : na, nq = pass ? na : nb;
        for (long i = 0; i < np; i++) {
            const setting *other = find_setting(q, nq, p[i].path);
            if (!strcmp(p[i].path, "output") || (pass && other) || (other && !strcmp(p[i].val, other->val))) continue;
            if (!shown++) fprintf(o, "Settings that differ (A -> B):\n");
            const char *from = pass ? "(absent)" : p[i].val, *to = pass ? p[i].val : other ? other->val : "(absent)";
            fprintf(o, "  %s: %s -> %s\n", p[i].path, from[0] ? from : "\"\"", to[0] ? to : "\"\"");
        }
    }
    if (!shown) fprintf(o, "Settings: the same (each run's config.yaml, output aside)\n");
    free(a);
    free(b);
}

int run_compare(const char *dir_a, const char *dir_b, int top, char **text, ody_err *err)
{
    ranking a, b;
    *text = NULL;
    if (top < 1) return ody_fail(err, ODY_EINPUT, "compare: --top must be at least 1");
    int rc = load(dir_a, &a, err);
    if (rc) return rc;
    if ((rc = load(dir_b, &b, err))) {
        ranking_free(&a);
        return rc;
    }
    long cap = a.n < b.n ? a.n : b.n;
    long *ra = malloc((size_t)(cap ? cap : 1) * sizeof *ra), *rb = malloc((size_t)(cap ? cap : 1) * sizeof *rb);
    long m = ra && rb ? match(&a, &b, ra, rb) : 0;
    size_t len = 0;
    FILE *o = ra && rb ? open_memstream(text, &len) : NULL;
    if (!o) rc = ody_fail(err, ODY_ENOMEM, "out of memory comparing %s and %s", dir_a, dir_b);
    else if (m == 0)
        rc = ody_fail(err, ODY_EINPUT, "%s and %s share no object ID — are they runs on the same catalog, with the "
                      "same `catalog.id`?", dir_a, dir_b);
    else {
        report(o, &a, &b, m, ra, rb, top);
        settings_diff(o, dir_a, dir_b);
    }
    if (o) fclose(o);
    if (rc) {
        free(*text);
        *text = NULL;
    }
    free(ra);
    free(rb);
    ranking_free(&a);
    ranking_free(&b);
    return rc;
}
