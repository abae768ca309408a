/* cfg_batch.c — batch files: explicit runs and grids of runs over keys. */
#define _GNU_SOURCE
#include "cfg.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "yamltree.h"

#define MAX_GRID_RUNS 10000

void cfg_batch_destroy(cfg_batch *b)
{
    if (!b) return;
    for (int j = 0; j < b->n_jobs; j++) {
        free(b->jobs[j].name);
        free(b->jobs[j].config);
        for (int k = 0; k < b->jobs[j].n_set; k++) free(b->jobs[j].set[k]);
        free(b->jobs[j].set);
    }
    free(b->jobs);
    free(b);
}

/* Where the batch file is: relative configs are resolved against dir; runs
 * write under absdir/batch_runs. */
typedef struct bctx {
    cfg_batch *b;
    char *dir, *absdir;
    ody_err *err;
    const char *path;  /* the batch file, for messages */
} bctx;

/* Adds a job; takes ownership of set (n_set strings) whatever happens. */
/* A run's name is a folder in batch_runs, and goes quoted into its output
 * override: one path component, nothing that ends the quotes. */
static int bad_name_char(char c)
{
    return c == '/' || c == '\\' || c == '"' || (unsigned char)c < 0x20;
}

static int bad_name(const char *name)
{
    if (!name[0] || !strcmp(name, ".") || !strcmp(name, "..")) return 1;
    for (const char *c = name; *c; c++)
        if (bad_name_char(*c)) return 1;
    return 0;
}

static int add_job(bctx *x, const char *config, const char *name, char **set, int n_set)
{
    cfg_batch *b = x->b;
    if (bad_name(name)) {
        for (int q = 0; q < n_set; q++) free(set[q]);
        free(set);
        return ody_fail(x->err, ODY_EINPUT, "%s: run name '%.200s' is not a folder name — a run's results go to "
                        "batch_runs/<name>: no '/', '\\' or '\"', and not '.' or '..'", x->path, name);
    }
    for (int k = 0; k < b->n_jobs; k++)
        if (!strcmp(b->jobs[k].name, name)) {
            for (int q = 0; q < n_set; q++) free(set[q]);
            free(set);
            return ody_fail(x->err, ODY_EINPUT, "%s: two runs are named '%s' — give each a distinct name", x->path, name);
        }
    cfg_job *nj = realloc(b->jobs, (size_t)(b->n_jobs + 1) * sizeof *nj);
    if (!nj) {
        for (int q = 0; q < n_set; q++) free(set[q]);
        free(set);
        return ody_fail(x->err, ODY_ENOMEM, "out of memory");
    }
    b->jobs = nj;
    cfg_job *j = &b->jobs[b->n_jobs++];
    memset(j, 0, sizeof *j);
    if (config[0] == '/' || !strcmp(x->dir, ".")) j->config = strdup(config);
    else if (asprintf(&j->config, "%s/%s", x->dir, config) < 0) j->config = NULL;
    j->name = strdup(name);
    j->set = set;
    j->n_set = n_set;
    int ok = j->config && j->name;
    for (int q = 0; q < n_set; q++) ok &= set[q] != NULL;
    return ok ? 0 : ody_fail(x->err, ODY_ENOMEM, "out of memory");
}

/* The output override that puts a job under <batch dir>/batch_runs/<name>. */
static char *output_override(const bctx *x, const char *name)
{
    char *s = NULL;
    if (asprintf(&s, "output=\"%s/batch_runs/%s\"", x->absdir, name) < 0) return NULL;
    return s;
}

/* ================================================================ runs: */

static int run_keys_known(bctx *x, const yt_node *r)
{
    for (const yt_node *q = r->kind == YT_MAP ? r->child : NULL; q; q = q->next)
        if (strcmp(q->key, "config") && strcmp(q->key, "name") && strcmp(q->key, "set")) {
            char qa[600];
            yt_where_key(qa, sizeof qa, q);
            return ody_fail(x->err, ODY_EINPUT, "%s: unknown key '%s' in a run — use config, name, set", qa, q->key);
        }
    return 0;
}

static int add_run(bctx *x, const yt_node *r, int idx)
{
    char at[600], name[256];
    yt_where(at, sizeof at, r);
    int rc = run_keys_known(x, r);
    if (rc) return rc;
    const yt_node *cf = yt_get(r, "config"), *nm = yt_get(r, "name"), *st = yt_get(r, "set");
    if (!cf || cf->kind != YT_SCALAR) return ody_fail(x->err, ODY_EINPUT, "%s: each run needs config: FILE.yaml", at);
    if (st && st->kind != YT_MAP) return ody_fail(x->err, ODY_EINPUT, "%s: set must be a mapping {key: value}", at);
    if (nm && nm->kind == YT_SCALAR) {
        snprintf(name, sizeof name, "%s", nm->val);
    } else {
        const char *base = strrchr(cf->val, '/');
        base = base ? base + 1 : cf->val;
        snprintf(name, sizeof name, "%d-%.*s", idx + 1, (int)strcspn(base, "."), base);
    }
    int ns = 0, k = 0;
    for (const yt_node *q = st ? st->child : NULL; q; q = q->next) ns++;
    char **set = calloc((size_t)ns + 1, sizeof *set);
    if (!set) return ody_fail(x->err, ODY_ENOMEM, "out of memory");
    for (const yt_node *q = st ? st->child : NULL; q; q = q->next, k++) {
        char v[2048];
        yt_text(q, v, sizeof v);
        if (asprintf(&set[k], "%s=%s", q->key, v) < 0) set[k] = NULL;
    }
    set[k++] = output_override(x, name);
    return add_job(x, cf->val, name, set, k);
}

static int add_runs(bctx *x, const yt_node *c)
{
    char at[600];
    yt_where_key(at, sizeof at, c);
    if (c->kind != YT_SEQ) return ody_fail(x->err, ODY_EINPUT, "%s: runs must be a list of {config, name, set}", at);
    int idx = 0, rc = 0;
    for (const yt_node *r = c->child; r && !rc; r = r->next, idx++) rc = add_run(x, r, idx);
    return rc;
}

/* ================================================================ grid: */

static int n_values(const yt_node *q)
{
    int nv = 0;
    for (const yt_node *v = q->kind == YT_SEQ ? q->child : q; v; v = q->kind == YT_SEQ ? v->next : NULL) nv++;
    return nv;
}

/* The g-th combination of the grid's values: overrides and a run name. */
static int add_grid_run(bctx *x, const yt_node *cf, const char *base, const yt_node *vary, int nk, long g)
{
    char **set = calloc((size_t)nk + 1, sizeof *set), name[512];
    if (!set) return ody_fail(x->err, ODY_ENOMEM, "out of memory");
    int k = 0, nl = snprintf(name, sizeof name, "%s", base);
    for (const yt_node *q = vary->child; q; q = q->next, k++) {
        int nv = n_values(q), pick = (int)(g % nv);
        g /= nv;
        const yt_node *v = q->kind == YT_SEQ ? q->child : q;
        for (int p = 0; p < pick; p++) v = v->next;
        char vt[1024];
        yt_text(v, vt, sizeof vt);
        if (asprintf(&set[k], "%s=%s", q->key, vt) < 0) set[k] = NULL;
        const char *leaf = strrchr(q->key, '.') ? strrchr(q->key, '.') + 1 : q->key;
        for (char *c = vt; *c; c++)  /* a value is part of a folder name: a path's '/' must not nest it */
            if (bad_name_char(*c)) *c = '_';
        if (nl < (int)sizeof name) nl += snprintf(name + nl, sizeof name - (size_t)nl, "-%s%s", leaf, vt);
    }
    set[k++] = output_override(x, name);
    return add_job(x, cf->val, name, set, k);
}

static int add_grid(bctx *x, const yt_node *c)
{
    char at[600];
    yt_where_key(at, sizeof at, c);
    const yt_node *cf = yt_get(c, "config"), *nm = yt_get(c, "name"), *vary = yt_get(c, "vary");
    if (!cf || cf->kind != YT_SCALAR || !vary || vary->kind != YT_MAP)
        return ody_fail(x->err, ODY_EINPUT, "%s: grid needs config: FILE.yaml and vary: {key: [values]}", at);
    int nk = 0;
    long total = 1;
    for (const yt_node *q = vary->child; q && total <= MAX_GRID_RUNS; q = q->next, nk++) total *= n_values(q);
    if (total > MAX_GRID_RUNS)
        return ody_fail(x->err, ODY_EINPUT, "%s: the grid has more than %d runs — vary fewer values", at, MAX_GRID_RUNS);
    const char *base = nm && nm->kind == YT_SCALAR ? nm->val : "grid";
    int rc = 0;
    for (long g = 0; g < total && !rc; g++) rc = add_grid_run(x, cf, base, vary, nk, g);
    return rc;
}

/* ================================================================ file */

static int batch_entries(bctx *x, const yt_node *root, const char *path)
{
    char at[600];
    if (!root || root->kind != YT_MAP)
        return ody_fail(x->err, ODY_EINPUT, "%s: a batch file is a mapping with runs: and/or grid: — see "
                        "configs/README.md", path);
    int rc = 0;
    for (const yt_node *c = root->child; c && !rc; c = c->next) {
        yt_where_key(at, sizeof at, c);
        if (!strcmp(c->key, "jobs")) {
            char *end = NULL;
            long v = c->kind == YT_SCALAR ? strtol(c->val, &end, 10) : 0;
            if (c->kind != YT_SCALAR || end == c->val || *end || v < 1 || v > 256)
                rc = ody_fail(x->err, ODY_EINPUT, "%s: jobs must be a whole number from 1 to 256", at);
            else x->b->jobs_at_once = (int)v;
        } else if (!strcmp(c->key, "runs")) {
            rc = add_runs(x, c);
        } else if (!strcmp(c->key, "grid")) {
            rc = add_grid(x, c);
        } else {
            rc = ody_fail(x->err, ODY_EINPUT, "%s: unknown key '%s' in a batch file — use runs, grid, jobs", at, c->key);
        }
    }
    if (!rc && x->b->n_jobs == 0) rc = ody_fail(x->err, ODY_EINPUT, "%s: the batch lists no runs", path);
    return rc;
}

int cfg_batch_load(const char *path, cfg_batch **out, ody_err *err)
{
    yt_node *root = NULL;
    int rc = yt_load_file(path, "batch file", &root, err);
    if (rc) return rc;
    bctx x = {calloc(1, sizeof *x.b), NULL, NULL, err, path};
    const char *sl = strrchr(path, '/');
    x.dir = sl ? strndup(path, (size_t)(sl - path) + (sl == path)) : strdup(".");
    x.absdir = x.dir ? realpath(x.dir, NULL) : NULL;
    if (!x.b || !x.dir || !x.absdir) rc = ody_fail(err, ODY_ENOMEM, "%s: cannot resolve its directory", path);
    if (!rc) rc = batch_entries(&x, root, path);
    yt_free(root);
    free(x.dir);
    free(x.absdir);
    if (rc) { cfg_batch_destroy(x.b); return rc; }
    *out = x.b;
    return 0;
}
