/* cfg.c — YAML configuration: a small tree, a schema table, validation. */
#define _GNU_SOURCE
#include "cfg.h"

#include <ctype.h>
#include <errno.h>
#include <limits.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <yaml.h>

/* ================================================================ schema */

/* T_PATH: text resolved against the config file's directory when relative */
typedef enum { T_INT, T_INT64, T_REAL, T_BOOL, T_STR, T_ENUM, T_STRLIST, T_INTLIST, T_PATH } ktype;

typedef struct key {
    const char *path;     /* dotted */
    ktype type;
    const char *def;      /* default as YAML text; NULL = required */
    double lo, hi;        /* numeric range (inclusive) */
    const char *choices;  /* T_ENUM / list items: "a|b|c" */
    size_t off, noff;     /* offset of the value (and of its count for lists) in cfg */
    const char *help;
} key;

#define O(f) offsetof(cfg, f)
#define NONE 0, 0
static const key schema[] = {
    {"catalog.path", T_PATH, NULL, NONE, NULL, O(cat_path), 0,
     "FITS catalog; CFITSIO syntax allowed (cat.fits[1][col UG=U-G; GR=G-R], [class==\"GALAXY\"])"},
    {"catalog.hdu", T_STR, "\"\"", NONE, NULL, O(cat_hdu), 0, "table HDU by number (0 = primary) or EXTNAME; empty: the first table"},
    {"catalog.id", T_STR, "\"\"", NONE, NULL, O(cat_id), 0, "ID column (integer or string); empty: the row number"},
    {"catalog.features", T_STRLIST, NULL, NONE, NULL, O(features), O(n_features),
     "numeric feature columns; NAME[k] for element k of a vector column"},
    {"catalog.passthrough", T_STRLIST, "[]", NONE, NULL, O(passthru), O(n_passthru),
     "columns copied into the exports (e.g. RA, DEC)"},
    {"catalog.missing", T_ENUM, "drop", NONE, "drop|impute|fail", O(cat_missing), 0,
     "rows with null/NaN/Inf features: drop them, impute the column median, or fail"},
    {"cutouts.path", T_PATH, "\"\"", NONE, NULL, O(cut_path), 0,
     "cutouts: a template with {id} (and {band}) for layout dir, else one file; empty: none"},
    {"cutouts.layout", T_ENUM, "dir", NONE, "dir|cube|mef", O(cut_layout), 0,
     "one file per object (dir), one cube with an IDS table (cube), one HDU per object (mef)"},
    {"cutouts.bands", T_STRLIST, "[]", NONE, NULL, O(cut_bands), O(n_cut_bands),
     "band names ({band} in the template, EXTNAMEs of a cube); empty: one band"},
    {"cutouts.size", T_INT, "48", 4, 4096, NULL, O(cut_size), 0, "pixels on a side (centre-cropped or padded)"},
    {"cutouts.missing", T_ENUM, "drop", NONE, "drop|fail", O(cut_missing), 0, "a catalog row without a cutout"},
    {"cutouts.morphology", T_BOOL, "false", NONE, NULL, O(cut_morph), 0,
     "append morphology features (10 per band) to the catalog features"},
    {"lens.enabled", T_BOOL, "false", NONE, NULL, O(lens_on), 0, "score every cutout with the lens classifier (P_LENS)"},
    {"lens.model", T_PATH, "\"\"", NONE, NULL, O(lens_model), 0,
     "a model from `oddsky lens train`; empty: train one on simulations matching the cutouts"},
    {"lens.pixel_scale", T_REAL, "0.2", 1e-4, 100, NULL, O(lens_pix), 0, "arcsec per pixel of the cutouts (simulations)"},
    {"lens.psf_fwhm", T_REAL, "0.8", 1e-4, 100, NULL, O(lens_psf), 0, "PSF FWHM in arcsec (simulations)"},
    {"lens.train_n", T_INT, "6000", 100, 10000000, NULL, O(lens_train_n), 0, "simulated training cutouts"},
    {"lens.test_n", T_INT, "2000", 100, 10000000, NULL, O(lens_test_n), 0, "simulated held-out cutouts (AUROC, precision, recall)"},
    {"lens.epochs", T_INT, "40", 1, 100000, NULL, O(lens_epochs), 0, "MLP epochs at most"},
    {"lens.downsample", T_INT, "2", 1, 64, NULL, O(lens_down), 0, "block-average cutouts by this factor for the MLP"},
    {"synthetic.mode", T_ENUM, "marginal", NONE, "marginal|uniform", O(synth_mode), 0,
     "synthetic data: resample each feature's values (marginal) or uniform over its range"},
    {"forest.n_trees", T_INT, "500", 1, 100000, NULL, O(rf_trees), 0, "trees in the real-versus-synthetic forest"},
    {"forest.max_features", T_STR, "sqrt", NONE, NULL, O(rf_max_features), 0,
     "candidate features per split: sqrt, log2, all, an integer, or a fraction in (0, 1]"},
    {"forest.min_samples_leaf", T_INT, "1", 1, 1e6, NULL, O(rf_min_leaf), 0, "smallest leaf, in bootstrap draws"},
    {"forest.max_depth", T_INT, "0", 0, 10000, NULL, O(rf_max_depth), 0, "depth limit; 0 grows trees fully"},
    {"forest.bootstrap", T_BOOL, "true", NONE, NULL, O(rf_bootstrap), 0, "draw each tree's rows with replacement"},
    {"forest.max_samples", T_INT64, "0", 0, 2147483647.0, NULL, O(rf_max_samples), 0,
     "rows drawn per tree (0: all real + synthetic rows); set it for large catalogs"},
    {"weirdness.leaf_filter", T_ENUM, "pure_real", NONE, "pure_real|majority_real|all", O(leaf_filter), 0,
     "leaves that count for similarity: no synthetic draw (the paper), real majority, or all"},
    {"weirdness.repeats", T_INT, "1", 1, 100, NULL, O(repeats), 0, "forests with seeds seed, seed+1, ... whose weirdness is averaged"},
    {"isolation.n_trees", T_INT, "200", 1, 100000, NULL, O(iso_trees), 0, "trees of the isolation forest in the default score"},
    {"isolation.max_samples", T_INT64, "256", 2, 2147483647.0, NULL, O(iso_max_samples), 0, "subsample per isolation tree"},
    {"mlp.enabled", T_BOOL, "true", NONE, NULL, O(mlp_on), 0, "train the MLP real-versus-synthetic discriminator"},
    {"mlp.hidden", T_INTLIST, "[64, 64]", 1, 1048576, NULL, O(mlp_hidden), O(n_mlp_hidden), "hidden layer sizes"},
    {"mlp.activation", T_ENUM, "relu", NONE, "relu|tanh|sigmoid|linear", O(mlp_act), 0, "hidden activation"},
    {"mlp.learning_rate", T_REAL, "0.01", 1e-12, 10, NULL, O(mlp_lr), 0, "SGD learning rate"},
    {"mlp.momentum", T_REAL, "0.9", 0, 0.999, NULL, O(mlp_momentum), 0, "momentum"},
    {"mlp.nesterov", T_BOOL, "true", NONE, NULL, O(mlp_nesterov), 0, "Nesterov momentum"},
    {"mlp.lr_decay", T_REAL, "0", 0, 1e6, NULL, O(mlp_lr_decay), 0, "learning rate / (1 + decay * epoch)"},
    {"mlp.l2", T_REAL, "0.0001", 0, 1e6, NULL, O(mlp_l2), 0, "L2 weight decay"},
    {"mlp.batch", T_INT, "64", 1, 1 << 24, NULL, O(mlp_batch), 0, "mini-batch size"},
    {"mlp.max_epochs", T_INT, "100", 1, 1000000, NULL, O(mlp_epochs), 0, "epochs at most"},
    {"mlp.patience", T_INT, "10", 1, 1000000, NULL, O(mlp_patience), 0, "stop after this many epochs without improvement"},
    {"mlp.epsilon", T_REAL, "0.0001", 0, 1e6, NULL, O(mlp_eps), 0, "validation-loss improvement that counts"},
    {"mlp.validation", T_REAL, "0.1", 0, 0.89, NULL, O(mlp_val), 0, "fraction held out for early stopping"},
    {"similarity.top_k", T_INT, "10", 1, 1000, NULL, O(top_k), 0, "most similar objects listed per object"},
    {"similarity.dense", T_BOOL, "false", NONE, NULL, O(dense), 0, "also write the dense N x N similarity matrix"},
    {"similarity.memory_gb", T_REAL, "2", 0.001, 1e6, NULL, O(sim_mem_gb), 0,
     "memory budget for the dense matrix and the top-k leaf lists"},
    {"similarity.max_pairs", T_REAL, "2e9", 1e3, 1e15, NULL, O(sim_max_pairs), 0,
     "work budget for top-k (pair updates); fewer trees are used beyond it, and the log says how many"},
    {"similarity.leaf_sample", T_INT, "64", 0, 1000000, NULL, O(leaf_sample), 0,
     "top-k: leaves with more members contribute an unbiased sample of this many (0: always exact)"},
    {"export.formats", T_STRLIST, "[fits, csv]", NONE, "fits|csv", O(formats), O(n_formats), "ranked list formats"},
    {"export.top_n", T_INT, "0", 0, 2147483647.0, NULL, O(top_n), 0, "rows in the ranked list; 0: every object"},
    {"export.rank_by", T_ENUM, "anomaly", NONE, "anomaly|weirdness|knn_distance|forest_oob|mlp|lens", O(rank_by), 0,
     "score the list is sorted by (decreasing)"},
    {"output", T_PATH, NULL, NONE, NULL, O(output), 0, "run directory (created if needed)"},
    {"seed", T_INT64, "1", 0, 9.2e18, NULL, O(seed), 0, "master RNG seed"},
    {"threads", T_INT, "0", 0, 4096, NULL, O(threads), 0, "OpenMP threads; 0: all cores (results do not depend on it)"},
};
#define NKEYS ((int)(sizeof schema / sizeof *schema))

/* Whether name is a section: the part before the dot of some key's path. */
static int is_section(const char *name)
{
    size_t n = strlen(name);
    for (int k = 0; k < NKEYS; k++)
        if (!strncmp(schema[k].path, name, n) && schema[k].path[n] == '.') return 1;
    return 0;
}

/* ================================================================ tree */

typedef enum { N_SCALAR, N_SEQ, N_MAP } nkind;

typedef struct node {
    nkind kind;
    char *key;           /* in a map */
    char *val;           /* scalar */
    int line, col;       /* of the value, 1-based; 0 for --set */
    int kline, kcol;     /* of its key, in a map */
    const char *src;     /* file name or "--set" */
    struct node *child, *next;
} node;

static void node_free(node *n)
{
    while (n) {
        node *nx = n->next;
        node_free(n->child);
        free(n->key);
        free(n->val);
        free(n);
        n = nx;
    }
}

static node *node_new(nkind k, const yaml_node_t *y, const char *src)
{
    node *n = calloc(1, sizeof *n);
    if (!n) return NULL;
    n->kind = k;
    n->src = src;
    if (y) {
        n->line = (int)y->start_mark.line + 1;
        n->col = (int)y->start_mark.column + 1;
    }
    return n;
}

/* Converts a libyaml node into our tree; NULL on allocation failure. */
static node *convert(yaml_document_t *doc, yaml_node_t *y, const char *src, int *oom)
{
    node *n = NULL;
    if (!y) return NULL;
    if (y->type == YAML_SCALAR_NODE) {
        n = node_new(N_SCALAR, y, src);
        if (n) n->val = strndup((const char *)y->data.scalar.value, y->data.scalar.length);
        if (!n || !n->val) goto fail;
        return n;
    }
    node **tail;
    if (y->type == YAML_SEQUENCE_NODE) {
        n = node_new(N_SEQ, y, src);
        if (!n) goto fail;
        tail = &n->child;
        for (yaml_node_item_t *it = y->data.sequence.items.start; it < y->data.sequence.items.top; it++) {
            node *c = convert(doc, yaml_document_get_node(doc, *it), src, oom);
            if (*oom) { node_free(n); return NULL; }
            if (!c) continue;
            *tail = c;
            tail = &c->next;
        }
        return n;
    }
    n = node_new(N_MAP, y, src);
    if (!n) goto fail;
    tail = &n->child;
    for (yaml_node_pair_t *p = y->data.mapping.pairs.start; p < y->data.mapping.pairs.top; p++) {
        yaml_node_t *k = yaml_document_get_node(doc, p->key);
        node *c = convert(doc, yaml_document_get_node(doc, p->value), src, oom);
        if (*oom) { node_free(n); return NULL; }
        if (!c) continue;
        c->key = k && k->type == YAML_SCALAR_NODE
                     ? strndup((const char *)k->data.scalar.value, k->data.scalar.length)
                     : strdup("?");
        if (k) { c->kline = (int)k->start_mark.line + 1; c->kcol = (int)k->start_mark.column + 1; }
        *tail = c;
        tail = &c->next;
    }
    return n;
fail:
    node_free(n);
    *oom = 1;
    return NULL;
}

/* Parses YAML text into a tree; NULL tree for an empty document. */
static int parse_yaml(const char *text, size_t len, const char *src, node **out, ody_err *err)
{
    yaml_parser_t p;
    yaml_document_t doc;
    *out = NULL;
    if (!yaml_parser_initialize(&p)) return ody_fail(err, ODY_ENOMEM, "out of memory");
    yaml_parser_set_input_string(&p, (const unsigned char *)text, len);
    if (!yaml_parser_load(&p, &doc)) {
        int rc = ody_fail(err, ODY_EINPUT, "%s:%zu:%zu: YAML syntax error: %s%s%s — check the indentation "
                          "and quoting there", src, p.problem_mark.line + 1, p.problem_mark.column + 1,
                          p.problem ? p.problem : "unknown", p.context ? " " : "", p.context ? p.context : "");
        yaml_parser_delete(&p);
        return rc;
    }
    int oom = 0;
    *out = convert(&doc, yaml_document_get_root_node(&doc), src, &oom);
    yaml_document_delete(&doc);
    yaml_parser_delete(&p);
    if (oom) return ody_fail(err, ODY_ENOMEM, "out of memory reading %s", src);
    return 0;
}

static node *map_get(const node *m, const char *k)
{
    if (!m || m->kind != N_MAP) return NULL;
    for (node *c = m->child; c; c = c->next)
        if (c->key && !strcmp(c->key, k)) return c;
    return NULL;
}

/* ================================================================ values */

static void *field(cfg *c, size_t off) { return (char *)c + off; }

static int where(char *buf, size_t len, const node *n)
{
    if (n->line) return snprintf(buf, len, "%s:%d:%d", n->src, n->line, n->col);
    return snprintf(buf, len, "%s", n->src);
}

/* Where a map entry's key is (for unknown keys and misplaced sections). */
static int where_key(char *buf, size_t len, const node *n)
{
    if (n->kline) return snprintf(buf, len, "%s:%d:%d", n->src, n->kline, n->kcol);
    return where(buf, len, n);
}

static int parse_bool(const char *s, int *v)
{
    static const char *t[] = {"true", "True", "TRUE", "yes", "Yes", "on", "On"};
    static const char *f[] = {"false", "False", "FALSE", "no", "No", "off", "Off"};
    for (int k = 0; k < 7; k++) {
        if (!strcmp(s, t[k])) { *v = 1; return 0; }
        if (!strcmp(s, f[k])) { *v = 0; return 0; }
    }
    return -1;
}

static int in_choices(const char *s, const char *choices)
{
    size_t n = strlen(s);
    for (const char *p = choices; *p;) {
        size_t m = strcspn(p, "|");
        if (m == n && !strncmp(p, s, n)) return 1;
        p += m;
        if (*p == '|') p++;
    }
    return 0;
}

/* Stores the value of node n for key k into c. */
static int set_value(cfg *c, const key *k, const node *n, ody_err *err)
{
    char at[600];
    where(at, sizeof at, n);
    if (k->type == T_STRLIST || k->type == T_INTLIST) {
        int cnt = 0;
        const node *items = n->kind == N_SEQ ? n->child : n;  /* a scalar is a one-item list */
        if (n->kind == N_MAP)
            return ody_fail(err, ODY_EINPUT, "%s: %s must be a list, e.g. [a, b] — not a mapping", at, k->path);
        for (const node *q = items; q; q = n->kind == N_SEQ ? q->next : NULL) cnt++;
        if (n->kind == N_SCALAR && !n->val[0]) cnt = 0;
        if (k->type == T_STRLIST) {
            char **v = calloc((size_t)(cnt ? cnt : 1), sizeof *v);
            if (!v) return ody_fail(err, ODY_ENOMEM, "out of memory");
            int i = 0;
            for (const node *q = items; q && i < cnt; q = n->kind == N_SEQ ? q->next : NULL) {
                char qa[600];
                where(qa, sizeof qa, q);
                if (q->kind != N_SCALAR || !q->val[0]) {
                    for (int j = 0; j < i; j++) free(v[j]);
                    free(v);
                    return ody_fail(err, ODY_EINPUT, "%s: %s: every item must be a non-empty name", qa, k->path);
                }
                if (k->choices && !in_choices(q->val, k->choices)) {
                    for (int j = 0; j < i; j++) free(v[j]);
                    free(v);
                    return ody_fail(err, ODY_EINPUT, "%s: %s: '%s' is not one of %s", qa, k->path, q->val, k->choices);
                }
                v[i++] = strdup(q->val);
            }
            char ***dst = field(c, k->off);
            int *dn = field(c, k->noff);
            for (int j = 0; j < *dn; j++) free((*dst)[j]);
            free(*dst);
            *dst = v;
            *dn = cnt;
        } else {
            int *v = calloc((size_t)(cnt ? cnt : 1), sizeof *v);
            if (!v) return ody_fail(err, ODY_ENOMEM, "out of memory");
            int i = 0;
            for (const node *q = items; q && i < cnt; q = n->kind == N_SEQ ? q->next : NULL) {
                char qa[600], *end;
                where(qa, sizeof qa, q);
                long x = q->kind == N_SCALAR ? strtol(q->val, &end, 10) : 0;
                if (q->kind != N_SCALAR || end == q->val || *end || x < k->lo || x > k->hi) {
                    free(v);
                    return ody_fail(err, ODY_EINPUT, "%s: %s: items must be whole numbers from %.0f to %.0f", qa,
                                    k->path, k->lo, k->hi);
                }
                v[i++] = (int)x;
            }
            int **dst = field(c, k->off);
            free(*dst);
            *dst = v;
            *(int *)field(c, k->noff) = cnt;
        }
        return 0;
    }
    if (n->kind != N_SCALAR)
        return ody_fail(err, ODY_EINPUT, "%s: %s must be a single value, not a %s", at, k->path,
                        n->kind == N_SEQ ? "list" : "mapping");
    const char *s = n->val;
    char *end;
    switch (k->type) {
    case T_INT: case T_INT64: {
        errno = 0;
        double x = strtod(s, &end);
        if (end == s || *end || errno || x != floor(x))
            return ody_fail(err, ODY_EINPUT, "%s: %s: expected a whole number, got '%s'", at, k->path, s);
        if (x < k->lo || x > k->hi)
            return ody_fail(err, ODY_EINPUT, "%s: %s = %s is out of range — use %.0f to %.0f", at, k->path, s, k->lo, k->hi);
        if (k->type == T_INT) *(int *)field(c, k->off) = (int)x;
        else *(int64_t *)field(c, k->off) = (int64_t)strtoll(s, NULL, 10);
        return 0;
    }
    case T_REAL: {
        errno = 0;
        double x = strtod(s, &end);
        if (end == s || *end || errno || !isfinite(x))
            return ody_fail(err, ODY_EINPUT, "%s: %s: expected a number, got '%s'", at, k->path, s);
        if (x < k->lo || x > k->hi)
            return ody_fail(err, ODY_EINPUT, "%s: %s = %s is out of range — use %g to %g", at, k->path, s, k->lo, k->hi);
        *(double *)field(c, k->off) = x;
        return 0;
    }
    case T_BOOL:
        if (parse_bool(s, (int *)field(c, k->off)))
            return ody_fail(err, ODY_EINPUT, "%s: %s: expected true or false, got '%s'", at, k->path, s);
        return 0;
    case T_ENUM:
        if (!in_choices(s, k->choices))
            return ody_fail(err, ODY_EINPUT, "%s: %s: '%s' is not one of %s", at, k->path, s, k->choices);
        /* fall through */
    default: {
        char **dst = field(c, k->off);
        free(*dst);
        /* a relative path is relative to the config file (a CFITSIO suffix
         * such as [1][col ...] stays as it is) */
        if (k->type == T_PATH && s[0] && s[0] != '/') {
            if (asprintf(dst, "%s/%s", c->dir, s) < 0) *dst = NULL;
        } else {
            *dst = strdup(s);
        }
        return *dst ? 0 : ody_fail(err, ODY_ENOMEM, "out of memory");
    }
    }
}

/* ================================================================ validation */

static const key *find_key(const char *path)
{
    for (int k = 0; k < NKEYS; k++)
        if (!strcmp(schema[k].path, path)) return &schema[k];
    return NULL;
}

/* Nearest valid name among the children of prefix ("" for the top level). */
static const char *nearest(const char *prefix, const char *want, char *buf, size_t len)
{
    int best = 1 << 20;
    buf[0] = 0;
    size_t pl = strlen(prefix);
    if (!pl)
        for (int k = 0; k < NKEYS; k++) {  /* section names, from the schema */
            const char *dot = strchr(schema[k].path, '.');
            if (!dot) continue;
            char sect[64];
            snprintf(sect, sizeof sect, "%.*s", (int)(dot - schema[k].path), schema[k].path);
            int d = ody_edit_distance(want, sect);
            if (d < best) { best = d; snprintf(buf, len, "%s", sect); }
        }
    for (int k = 0; k < NKEYS; k++) {
        const char *p = schema[k].path;
        if (strncmp(p, prefix, pl) || (pl && p[pl] != '.')) continue;
        const char *leaf = pl ? p + pl + 1 : p;
        if (strchr(leaf, '.')) continue;
        int d = ody_edit_distance(want, leaf);
        if (d < best) { best = d; snprintf(buf, len, "%s", leaf); }
    }
    return best <= 3 || (best <= (int)strlen(want) / 2) ? buf : NULL;
}

static int check_unknown(const node *root, ody_err *err)
{
    char at[600], near[64];
    if (root->kind != N_MAP) {
        where(at, sizeof at, root);
        return ody_fail(err, ODY_EINPUT, "%s: the config must be a mapping of sections (catalog:, forest:, ...) — "
                        "see configs/README.md", at);
    }
    for (const node *c = root->child; c; c = c->next) {
        where_key(at, sizeof at, c);
        if (is_section(c->key)) {
            if (c->kind != N_MAP)
                return ody_fail(err, ODY_EINPUT, "%s: '%s' must be a section of keys (key: value on indented lines)",
                                at, c->key);
            for (const node *q = c->child; q; q = q->next) {
                char path[256];
                snprintf(path, sizeof path, "%s.%s", c->key, q->key);
                if (find_key(path)) continue;
                char qa[600];
                where_key(qa, sizeof qa, q);
                const char *nb = nearest(c->key, q->key, near, sizeof near);
                return ody_fail(err, ODY_EINPUT, "%s: unknown key '%s' in %s%s%s%s — see configs/README.md for "
                                "every key", qa, q->key, c->key, nb ? " (did you mean '" : "", nb ? nb : "", nb ? "'?)" : "");
            }
        } else if (!find_key(c->key)) {
            const char *nb = nearest("", c->key, near, sizeof near);
            return ody_fail(err, ODY_EINPUT, "%s: unknown key '%s'%s%s%s — see configs/README.md for every key", at,
                            c->key, nb ? " (did you mean '" : "", nb ? nb : "", nb ? "'?)" : "");
        }
    }
    return 0;
}

static const node *lookup(const node *root, const char *path)
{
    char buf[256];
    snprintf(buf, sizeof buf, "%s", path);
    char *dot = strchr(buf, '.');
    if (!dot) return map_get(root, buf);
    *dot = 0;
    return map_get(map_get(root, buf), dot + 1);
}

/* ================================================================ overrides */

/* Applies "a.b=value": replaces or inserts the node at that path. */
static int apply_override(node **root, const char *ov, ody_err *err)
{
    const char *eq = strchr(ov, '=');
    if (!eq || eq == ov)
        return ody_fail(err, ODY_EINPUT, "--set %s: expected KEY=VALUE, e.g. --set forest.n_trees=200", ov);
    char path[256];
    snprintf(path, sizeof path, "%.*s", (int)(eq - ov), ov);
    if (!find_key(path)) {
        char near[64], sect[256];
        snprintf(sect, sizeof sect, "%s", path);
        char *dot = strchr(sect, '.');
        const char *leaf = path;
        if (dot) { *dot = 0; leaf = dot + 1; } else sect[0] = 0;
        const char *nb = nearest(sect, leaf, near, sizeof near);
        return ody_fail(err, ODY_EINPUT, "--set %s: unknown key '%s'%s%s%s%s%s — see configs/README.md", ov, path,
                        nb ? " (did you mean '" : "", nb && sect[0] ? sect : "", nb && sect[0] ? "." : "", nb ? nb : "",
                        nb ? "'?)" : "");
    }
    node *v = NULL;
    const char *val = eq + 1;
    int rc = parse_yaml(val, strlen(val), "--set", &v, err);
    if (rc) return rc;
    if (!v) {
        v = calloc(1, sizeof *v);
        if (!v || !(v->val = strdup(""))) { free(v); return ody_fail(err, ODY_ENOMEM, "out of memory"); }
        v->kind = N_SCALAR;
    }
    /* mark the whole value as coming from --set */
    v->line = v->col = 0;
    v->src = "--set";
    for (node *q = v->child; q; q = q->next) { q->line = q->col = 0; q->src = "--set"; }
    if (!*root) {
        *root = calloc(1, sizeof **root);
        if (!*root) { node_free(v); return ody_fail(err, ODY_ENOMEM, "out of memory"); }
        (*root)->kind = N_MAP;
        (*root)->src = "--set";
    }
    node *parent = *root;
    char *dot = strchr(path, '.');
    const char *leaf = path;
    if (dot) {
        *dot = 0;
        leaf = dot + 1;
        node *sec = map_get(*root, path);
        if (!sec) {
            sec = calloc(1, sizeof *sec);
            if (!sec || !(sec->key = strdup(path))) { free(sec); node_free(v); return ody_fail(err, ODY_ENOMEM, "out of memory"); }
            sec->kind = N_MAP;
            sec->src = "--set";
            sec->next = (*root)->child;
            (*root)->child = sec;
        } else if (sec->kind != N_MAP) {
            node_free(v);
            return ody_fail(err, ODY_EINPUT, "--set %s: '%s' in the config is not a section", ov, path);
        }
        parent = sec;
    }
    node **pp = &parent->child;
    while (*pp && strcmp((*pp)->key, leaf)) pp = &(*pp)->next;
    v->key = strdup(leaf);
    if (*pp) {
        v->next = (*pp)->next;
        (*pp)->next = NULL;
        node_free(*pp);
    }
    *pp = v;
    return 0;
}

/* ================================================================ load */

void cfg_destroy(cfg *c)
{
    if (!c) return;
    for (int k = 0; k < NKEYS; k++) {
        const key *s = &schema[k];
        if (s->type == T_STR || s->type == T_ENUM || s->type == T_PATH) free(*(char **)field(c, s->off));
        else if (s->type == T_STRLIST) {
            char **v = *(char ***)field(c, s->off);
            int n = *(int *)field(c, s->noff);
            for (int j = 0; j < n; j++) free(v[j]);
            free(v);
        } else if (s->type == T_INTLIST) free(*(int **)field(c, s->off));
    }
    free(c->file);
    free(c->dir);
    free(c);
}

static char *slurp(const char *path, size_t *len)
{
    FILE *f = fopen(path, "rb");
    if (!f) return NULL;
    size_t cap = 4096, n = 0;
    char *buf = malloc(cap);
    while (buf) {
        size_t r = fread(buf + n, 1, cap - n, f);
        n += r;
        if (n < cap) break;
        char *nb = realloc(buf, cap *= 2);
        if (!nb) { free(buf); buf = NULL; }
        else buf = nb;
    }
    fclose(f);
    if (buf) { buf[n < cap ? n : cap - 1] = 0; *len = n; }
    return buf;
}

int cfg_load(const char *path, char *const *overrides, int n_overrides, cfg **out, ody_err *err)
{
    size_t len = 0;
    char *text = slurp(path, &len);
    if (!text) return ody_fail(err, ODY_EINPUT, "%s: cannot read the config file (%s) — check the path", path, strerror(errno));
    node *root = NULL;
    int rc = parse_yaml(text, len, path, &root, err);
    free(text);
    if (rc) return rc;
    for (int k = 0; k < n_overrides && !rc; k++) rc = apply_override(&root, overrides[k], err);
    if (!rc && !root) rc = ody_fail(err, ODY_EINPUT, "%s: the config is empty — start from configs/demo.yaml", path);
    if (!rc) rc = check_unknown(root, err);
    cfg *c = calloc(1, sizeof *c);
    if (!rc && !c) rc = ody_fail(err, ODY_ENOMEM, "out of memory");
    if (!rc) {
        /* the file's directory, absolute, so that resolved paths survive a
         * --print-config copy saved elsewhere */
        const char *sl = strrchr(path, '/');
        char *d = sl ? strndup(path, (size_t)(sl - path) + (sl == path)) : strdup(".");
        c->file = strdup(path);
        c->dir = d ? realpath(d, NULL) : NULL;
        free(d);
        if (!c->file || !c->dir) rc = ody_fail(err, ODY_EINPUT, "%s: cannot resolve the config's directory", path);
    }
    for (int k = 0; k < NKEYS && !rc; k++) {
        const key *s = &schema[k];
        const node *n = lookup(root, s->path);
        if (!n) {
            if (!s->def)
                rc = ody_fail(err, ODY_EINPUT, "%s: missing required key '%s' (%s) — see configs/README.md", path,
                              s->path, s->help);
            else {
                node *d = NULL;
                rc = parse_yaml(s->def, strlen(s->def), "default", &d, err);
                if (!rc && d) rc = set_value(c, s, d, err);
                node_free(d);
            }
            continue;
        }
        rc = set_value(c, s, n, err);
    }
    if (!rc && c->n_features < 1)
        rc = ody_fail(err, ODY_EINPUT, "%s: catalog.features is empty — list at least one feature column", path);
    if (!rc && (c->lens_on || c->cut_morph) && !c->cut_path[0])
        rc = ody_fail(err, ODY_EINPUT, "%s: lens.enabled / cutouts.morphology need cutouts.path — give the cutouts", path);
    if (!rc && c->n_cut_bands > 8)
        rc = ody_fail(err, ODY_EINPUT, "%s: cutouts.bands lists %d bands — at most 8", path, c->n_cut_bands);
    node_free(root);
    if (rc) { cfg_destroy(c); return rc; }
    *out = c;
    return 0;
}

/* ================================================================ output */

/* Appends the YAML text of key k's value. */
static void value_text(const cfg *c, const key *k, char *buf, size_t len)
{
    switch (k->type) {
    case T_INT: snprintf(buf, len, "%d", *(const int *)field((cfg *)c, k->off)); break;
    case T_INT64: snprintf(buf, len, "%lld", (long long)*(const int64_t *)field((cfg *)c, k->off)); break;
    case T_REAL: snprintf(buf, len, "%.17g", *(const double *)field((cfg *)c, k->off)); break;
    case T_BOOL: snprintf(buf, len, "%s", *(const int *)field((cfg *)c, k->off) ? "true" : "false"); break;
    case T_STRLIST: case T_INTLIST: {
        int n = *(const int *)field((cfg *)c, k->noff);
        size_t at = 0;
        at += (size_t)snprintf(buf + at, len - at, "[");
        for (int j = 0; j < n && at < len; j++) {
            if (k->type == T_STRLIST) {
                const char *s = (*(char ***)field((cfg *)c, k->off))[j];
                at += (size_t)snprintf(buf + at, len - at, "%s\"%s\"", j ? ", " : "", s);
            } else {
                at += (size_t)snprintf(buf + at, len - at, "%s%d", j ? ", " : "", (*(int **)field((cfg *)c, k->off))[j]);
            }
        }
        if (at < len) snprintf(buf + at, len - at, "]");
        break;
    }
    default: {
        const char *s = *(char **)field((cfg *)c, k->off);
        /* quote strings so YAML reads them back as they are */
        size_t at = 0;
        at += (size_t)snprintf(buf, len, "\"");
        for (; s && *s && at + 3 < len; s++) {
            if (*s == '"' || *s == '\\') buf[at++] = '\\';
            buf[at++] = *s;
        }
        snprintf(buf + at, len - at, "\"");
    }
    }
}

char *cfg_dump(const cfg *c)
{
    size_t cap = 1 << 16, at = 0;
    char *out = malloc(cap);
    if (!out) return NULL;
    out[0] = 0;
    char val[4096];
    at += (size_t)snprintf(out + at, cap - at, "# effective configuration (oddsky %s)\n", ody_version());
    char cur[64] = "";
    for (int k = 0; k < NKEYS; k++) {
        const key *s = &schema[k];
        const char *dot = strchr(s->path, '.');
        char sect[64] = "";
        if (dot) snprintf(sect, sizeof sect, "%.*s", (int)(dot - s->path), s->path);
        if (strcmp(sect, cur)) {
            if (sect[0]) at += (size_t)snprintf(out + at, cap - at, "%s:\n", sect);
            snprintf(cur, sizeof cur, "%s", sect);
        }
        value_text(c, s, val, sizeof val);
        at += (size_t)snprintf(out + at, cap - at, "%s%s: %s\n", dot ? "  " : "", dot ? dot + 1 : s->path, val);
        if (at >= cap - 1) break;
    }
    return out;
}

uint64_t cfg_hash(const cfg *c, const char *const *prefixes, int n_prefixes)
{
    uint64_t h = 1469598103934665603ULL;
    char val[4096];
    for (int k = 0; k < NKEYS; k++) {
        int take = 0;
        for (int p = 0; p < n_prefixes; p++) take |= !strncmp(schema[k].path, prefixes[p], strlen(prefixes[p]));
        if (!take) continue;
        value_text(c, &schema[k], val, sizeof val);
        for (const char *s = schema[k].path; *s; s++) h = (h ^ (unsigned char)*s) * 1099511628211ULL;
        h = (h ^ '=') * 1099511628211ULL;
        for (const char *s = val; *s; s++) h = (h ^ (unsigned char)*s) * 1099511628211ULL;
        h = (h ^ '\n') * 1099511628211ULL;
    }
    return h;
}

char *cfg_reference_markdown(void)
{
    size_t cap = 1 << 16, at = 0;
    char *out = malloc(cap);
    if (!out) return NULL;
    at += (size_t)snprintf(out + at, cap - at, "| key | type | default | meaning |\n|---|---|---|---|\n");
    static const char *tn[] = {"integer", "integer", "number", "true/false", "text", "one of", "list of names",
                               "list of integers", "path (relative to the config file)"};
    for (int k = 0; k < NKEYS && at < cap; k++) {
        const key *s = &schema[k];
        char type[128];
        if (s->type == T_ENUM) {
            /* '|' would split a Markdown table cell */
            size_t t = (size_t)snprintf(type, sizeof type, "one of ");
            for (const char *p = s->choices; *p && t + 4 < sizeof type; p++) {
                if (*p == '|') t += (size_t)snprintf(type + t, sizeof type - t, " / ");
                else type[t++] = *p;
            }
            type[t] = 0;
        }
        else if ((s->type == T_INT || s->type == T_INT64 || s->type == T_REAL) && s->hi > s->lo)
            snprintf(type, sizeof type, "%s, %g to %g", tn[s->type], s->lo, s->hi);
        else snprintf(type, sizeof type, "%s", tn[s->type]);
        at += (size_t)snprintf(out + at, cap - at, "| `%s` | %s | %s | %s |\n", s->path, type,
                               s->def ? s->def : "**required**", s->help);
    }
    return out;
}

/* ================================================================ batch */

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

/* Text of a scalar or flow list node, as YAML the override parser reads. */
static void node_text(const node *n, char *buf, size_t len)
{
    if (n->kind == N_SCALAR) { snprintf(buf, len, "%s", n->val); return; }
    size_t at = (size_t)snprintf(buf, len, "[");
    for (const node *q = n->child; q && at < len; q = q->next)
        at += (size_t)snprintf(buf + at, len - at, "%s%s", q == n->child ? "" : ", ", q->kind == N_SCALAR ? q->val : "");
    if (at < len) snprintf(buf + at, len - at, "]");
}

static int add_job(cfg_batch *b, const char *dir, const char *config, const char *name, char **set, int n_set,
                   ody_err *err)
{
    cfg_job *nj = realloc(b->jobs, (size_t)(b->n_jobs + 1) * sizeof *nj);
    if (!nj) return ody_fail(err, ODY_ENOMEM, "out of memory");
    b->jobs = nj;
    cfg_job *j = &b->jobs[b->n_jobs];
    memset(j, 0, sizeof *j);
    if (config[0] == '/' || !strcmp(dir, ".")) j->config = strdup(config);
    else if (asprintf(&j->config, "%s/%s", dir, config) < 0) j->config = NULL;
    j->name = strdup(name);
    j->set = set;
    j->n_set = n_set;
    b->n_jobs++;
    if (!j->config || !j->name) return ody_fail(err, ODY_ENOMEM, "out of memory");
    for (int k = 0; k < b->n_jobs - 1; k++)
        if (!strcmp(b->jobs[k].name, name))
            return ody_fail(err, ODY_EINPUT, "batch: two runs are named '%s' — give each a distinct name:", name);
    return 0;
}

/* The output override that puts a job under <batch dir>/batch_runs/<name>. */
static char *output_override(const char *absdir, const char *name)
{
    char *s = NULL;
    if (asprintf(&s, "output=\"%s/batch_runs/%s\"", absdir, name) < 0) return NULL;
    return s;
}

int cfg_batch_load(const char *path, cfg_batch **out, ody_err *err)
{
    size_t len = 0;
    char *text = slurp(path, &len);
    if (!text) return ody_fail(err, ODY_EINPUT, "%s: cannot read the batch file (%s)", path, strerror(errno));
    node *root = NULL;
    int rc = parse_yaml(text, len, path, &root, err);
    free(text);
    if (rc) return rc;
    char at[600];
    cfg_batch *b = calloc(1, sizeof *b);
    char *dir = NULL, *absdir = NULL;
    const char *sl = strrchr(path, '/');
    dir = sl ? strndup(path, (size_t)(sl - path) + (sl == path)) : strdup(".");
    absdir = dir ? realpath(dir, NULL) : NULL;
    if (!b || !dir || !absdir) { rc = ody_fail(err, ODY_ENOMEM, "%s: cannot resolve its directory", path); goto done; }
    if (!root || root->kind != N_MAP) {
        rc = ody_fail(err, ODY_EINPUT, "%s: a batch file is a mapping with runs: and/or grid: — see configs/README.md", path);
        goto done;
    }
    for (node *c = root->child; c && !rc; c = c->next) {
        where_key(at, sizeof at, c);
        if (!strcmp(c->key, "jobs")) {
            char *end;
            long v = c->kind == N_SCALAR ? strtol(c->val, &end, 10) : 0;
            if (c->kind != N_SCALAR || *end || v < 1 || v > 256)
                rc = ody_fail(err, ODY_EINPUT, "%s: jobs must be a whole number from 1 to 256", at);
            else b->jobs_at_once = (int)v;
        } else if (!strcmp(c->key, "runs")) {
            if (c->kind != N_SEQ) { rc = ody_fail(err, ODY_EINPUT, "%s: runs must be a list of {config, name, set}", at); break; }
            int idx = 0;
            for (node *r = c->child; r && !rc; r = r->next, idx++) {
                where(at, sizeof at, r);
                node *cf = map_get(r, "config"), *nm = map_get(r, "name"), *st = map_get(r, "set");
                for (node *q = r->kind == N_MAP ? r->child : NULL; q && !rc; q = q->next)
                    if (strcmp(q->key, "config") && strcmp(q->key, "name") && strcmp(q->key, "set")) {
                        char qa[600];
                        where_key(qa, sizeof qa, q);
                        rc = ody_fail(err, ODY_EINPUT, "%s: unknown key '%s' in a run — use config, name, set", qa, q->key);
                    }
                if (rc) break;
                if (!cf || cf->kind != N_SCALAR) { rc = ody_fail(err, ODY_EINPUT, "%s: each run needs config: FILE.yaml", at); break; }
                char name[256];
                if (nm && nm->kind == N_SCALAR) snprintf(name, sizeof name, "%s", nm->val);
                else {
                    const char *base = strrchr(cf->val, '/');
                    snprintf(name, sizeof name, "%d-%.*s", idx + 1, (int)strcspn(base ? base + 1 : cf->val, "."), base ? base + 1 : cf->val);
                }
                int ns = 0;
                for (node *q = st && st->kind == N_MAP ? st->child : NULL; q; q = q->next) ns++;
                if (st && st->kind != N_MAP) { rc = ody_fail(err, ODY_EINPUT, "%s: set must be a mapping {key: value}", at); break; }
                char **set = calloc((size_t)ns + 1, sizeof *set);
                if (!set) { rc = ody_fail(err, ODY_ENOMEM, "out of memory"); break; }
                int k = 0;
                for (node *q = st ? st->child : NULL; q; q = q->next) {
                    char v[2048];
                    node_text(q, v, sizeof v);
                    if (asprintf(&set[k], "%s=%s", q->key, v) < 0) set[k] = NULL;
                    k++;
                }
                set[k++] = output_override(absdir, name);
                rc = add_job(b, dir, cf->val, name, set, k, err);
            }
        } else if (!strcmp(c->key, "grid")) {
            node *cf = map_get(c, "config"), *nm = map_get(c, "name"), *vary = map_get(c, "vary");
            if (!cf || cf->kind != N_SCALAR || !vary || vary->kind != N_MAP) {
                rc = ody_fail(err, ODY_EINPUT, "%s: grid needs config: FILE.yaml and vary: {key: [values]}", at);
                break;
            }
            int nk = 0;
            long total = 1;
            for (node *q = vary->child; q; q = q->next) {
                int nv = 0;
                for (node *v = q->kind == N_SEQ ? q->child : q; v; v = q->kind == N_SEQ ? v->next : NULL) nv++;
                total *= nv;
                nk++;
            }
            if (total > 10000) { rc = ody_fail(err, ODY_EINPUT, "%s: the grid has %ld runs — at most 10000", at, total); break; }
            for (long g = 0; g < total && !rc; g++) {
                char **set = calloc((size_t)nk + 1, sizeof *set);
                if (!set) { rc = ody_fail(err, ODY_ENOMEM, "out of memory"); break; }
                long rem = g;
                int k = 0;
                char name[512];
                int nl = snprintf(name, sizeof name, "%s", nm && nm->kind == N_SCALAR ? nm->val : "grid");
                for (node *q = vary->child; q; q = q->next) {
                    int nv = 0;
                    for (node *v = q->kind == N_SEQ ? q->child : q; v; v = q->kind == N_SEQ ? v->next : NULL) nv++;
                    int pick = (int)(rem % nv);
                    rem /= nv;
                    node *v = q->kind == N_SEQ ? q->child : q;
                    for (int p = 0; p < pick; p++) v = v->next;
                    char vt[1024];
                    node_text(v, vt, sizeof vt);
                    if (asprintf(&set[k], "%s=%s", q->key, vt) < 0) set[k] = NULL;
                    k++;
                    if (nl < (int)sizeof name)
                        nl += snprintf(name + nl, sizeof name - (size_t)nl, "-%s%s", strrchr(q->key, '.') ? strrchr(q->key, '.') + 1 : q->key, vt);
                }
                set[k++] = output_override(absdir, name);
                rc = add_job(b, dir, cf->val, name, set, k, err);
            }
        } else {
            rc = ody_fail(err, ODY_EINPUT, "%s: unknown key '%s' in a batch file — use runs, grid, jobs", at, c->key);
        }
    }
    if (!rc && b->n_jobs == 0) rc = ody_fail(err, ODY_EINPUT, "%s: the batch lists no runs", path);
done:
    node_free(root);
    free(dir);
    free(absdir);
    if (rc) { cfg_batch_destroy(b); return rc; }
    *out = b;
    return 0;
}
