/* cfg.c — loading a config: the YAML tree, --set overrides, unknown keys,
 * typed values through the schema, and the rules between keys. */
#define _GNU_SOURCE
#include "cfg.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "schema.h"
#include "yamltree.h"

/* ================================================================ unknown keys */

static int unknown_in_section(const yt_node *sec, ody_err *err)
{
    char near[64], at[600], path[256];
    for (const yt_node *q = sec->child; q; q = q->next) {
        snprintf(path, sizeof path, "%s.%s", sec->key, q->key);
        if (schema_find(path)) continue;
        yt_where_key(at, sizeof at, q);
        const char *nb = schema_nearest(sec->key, q->key, near, sizeof near);
        return ody_fail(err, ODY_EINPUT, "%s: unknown key '%s' in %s%s%s%s — see configs/README.md for every key",
                        at, q->key, sec->key, nb ? " (did you mean '" : "", nb ? nb : "", nb ? "'?)" : "");
    }
    return 0;
}

static int check_unknown(const yt_node *root, ody_err *err)
{
    char at[600], near[64];
    if (root->kind != YT_MAP) {
        yt_where(at, sizeof at, root);
        return ody_fail(err, ODY_EINPUT, "%s: the config must be a mapping of sections (catalog:, forest:, ...) — "
                        "see configs/README.md", at);
    }
    for (const yt_node *c = root->child; c; c = c->next) {
        yt_where_key(at, sizeof at, c);
        if (schema_is_section(c->key)) {
            if (c->kind != YT_MAP)
                return ody_fail(err, ODY_EINPUT, "%s: '%s' must be a section of keys (key: value on indented lines)",
                                at, c->key);
            int rc = unknown_in_section(c, err);
            if (rc) return rc;
        } else if (!schema_find(c->key)) {
            const char *nb = schema_nearest("", c->key, near, sizeof near);
            return ody_fail(err, ODY_EINPUT, "%s: unknown key '%s'%s%s%s — see configs/README.md for every key", at,
                            c->key, nb ? " (did you mean '" : "", nb ? nb : "", nb ? "'?)" : "");
        }
    }
    return 0;
}

/* ================================================================ overrides */

static int unknown_override(const char *ov, const char *path, ody_err *err)
{
    char near[64], sect[256];
    snprintf(sect, sizeof sect, "%s", path);
    char *dot = strchr(sect, '.');
    const char *leaf = path;
    if (dot) {
        *dot = 0;
        leaf = path + (dot - sect) + 1;
    } else {
        sect[0] = 0;
    }
    const char *nb = schema_nearest(sect, leaf, near, sizeof near);
    return ody_fail(err, ODY_EINPUT, "--set %s: unknown key '%s'%s%s%s%s%s — see configs/README.md", ov, path,
                    nb ? " (did you mean '" : "", nb && sect[0] ? sect : "", nb && sect[0] ? "." : "", nb ? nb : "",
                    nb ? "'?)" : "");
}

/* Applies "a.b=value": replaces or inserts the node at that path. */
static int apply_override(yt_node **root, const char *ov, ody_err *err)
{
    const char *eq = strchr(ov, '=');
    if (!eq || eq == ov)
        return ody_fail(err, ODY_EINPUT, "--set %s: expected KEY=VALUE, e.g. --set forest.n_trees=200", ov);
    char path[256];
    snprintf(path, sizeof path, "%.*s", (int)(eq - ov), ov);
    if (!schema_find(path)) return unknown_override(ov, path, err);
    yt_node *v = NULL;
    int rc = yt_parse(eq + 1, strlen(eq + 1), "--set", &v, err);
    if (rc) return rc;
    if (!v) {
        v = calloc(1, sizeof *v);
        if (!v || !(v->val = strdup(""))) { free(v); return ody_fail(err, ODY_ENOMEM, "out of memory"); }
        v->kind = YT_SCALAR;
    }
    /* the whole value comes from --set: no line numbers */
    v->line = v->col = 0;
    v->src = "--set";
    for (yt_node *q = v->child; q; q = q->next) { q->line = q->col = 0; q->src = "--set"; }
    return yt_set(root, path, v, err);
}

/* ================================================================ load */

void cfg_destroy(cfg *c)
{
    if (!c) return;
    for (int k = 0; k < cfg_n_keys; k++) schema_free_value(c, &cfg_schema[k]);
    free(c->file);
    free(c->dir);
    free(c);
}

/* The directory of path, absolute, so that resolved paths survive a
 * --print-config copy saved elsewhere. */
static int config_dir(cfg *c, const char *path, ody_err *err)
{
    const char *sl = strrchr(path, '/');
    char *d = sl ? strndup(path, (size_t)(sl - path) + (sl == path)) : strdup(".");
    c->file = strdup(path);
    c->dir = d ? realpath(d, NULL) : NULL;
    free(d);
    if (!c->file || !c->dir) return ody_fail(err, ODY_EINPUT, "%s: cannot resolve the config's directory", path);
    return 0;
}

static int set_defaults(cfg *c, ody_err *err)
{
    for (int k = 0; k < cfg_n_keys; k++) {
        int rc = schema_set_default(c, &cfg_schema[k], err);
        if (rc) return rc;
    }
    return 0;
}

/* Every key the tree gives, in schema order; required keys must be there. */
static int set_values(cfg *c, const yt_node *root, const char *path, ody_err *err)
{
    for (int k = 0; k < cfg_n_keys; k++) {
        const key *s = &cfg_schema[k];
        const yt_node *n = yt_lookup(root, s->path);
        int rc = 0;
        if (n && !s->def && n->kind == YT_SCALAR && !n->val[0])  /* `output: ""` would name no place */
            rc = ody_fail(err, ODY_EINPUT, "%s: required key '%s' is empty — give it a value (configs/README.md)",
                          path, s->path);
        else if (n) rc = schema_set(c, s, n, err);
        else if (!s->def)
            rc = ody_fail(err, ODY_EINPUT, "%s: missing required key '%s' (%s) — see configs/README.md", path,
                          s->path, s->help);
        if (rc) return rc;
    }
    return 0;
}

int cfg_load(const char *path, char *const *overrides, int n_overrides, cfg **out, ody_err *err)
{
    yt_node *root = NULL;
    int rc = yt_load_file(path, "config file", &root, err);
    if (rc) return rc;
    for (int k = 0; k < n_overrides && !rc; k++) rc = apply_override(&root, overrides[k], err);
    if (!rc && !root) rc = ody_fail(err, ODY_EINPUT, "%s: the config is empty — start from configs/demo.yaml", path);
    if (!rc) rc = check_unknown(root, err);
    cfg *c = rc ? NULL : calloc(1, sizeof *c);
    if (!rc && !c) rc = ody_fail(err, ODY_ENOMEM, "out of memory");
    if (!rc) rc = config_dir(c, path, err);
    if (!rc) rc = set_defaults(c, err);
    if (!rc) rc = set_values(c, root, path, err);
    if (!rc) rc = cfg_check(c, err);
    yt_free(root);
    if (rc) { cfg_destroy(c); return rc; }
    *out = c;
    return 0;
}

cfg *cfg_defaults(void)
{
    cfg *c = calloc(1, sizeof *c);
    ody_err e;
    if (!c || !(c->file = strdup("defaults")) || !(c->dir = strdup(".")) || set_defaults(c, &e)) {
        cfg_destroy(c);
        return NULL;
    }
    return c;
}

/* ================================================================ rules between keys */

/* A name listed twice in one list (column names are case-insensitive). */
static const char *repeated(char *const *v, int n)
{
    for (int i = 0; i < n; i++)
        for (int j = 0; j < i; j++)
            if (!strcasecmp(v[i], v[j])) return v[i];
    return NULL;
}

/* Column names the outputs use themselves; an ID or pass-through column of
 * the same name would give a table two columns of one name. */
static const char *const reserved[] = {"ROW", "RANK", "ANOMALY_SCORE", "WEIRDNESS", "ISOLATION", "KNN_DIST", "LOF",
                                       "FOREST_KNN", "P_SYNTH_FOREST", "P_SYNTH_MLP", "LENS_PROB", "N_GOOD",
                                       "DRIVEN_BY", "WHY", "NEAREST", "NEIGHBOURS", "LABEL", "LEARNED_SCORE", "LOCAL",
                                       "CONTEXT", "HEAP"};

static const char *reserved_name(const char *name)
{
    for (size_t k = 0; k < sizeof reserved / sizeof *reserved; k++)
        if (!strcasecmp(name, reserved[k])) return reserved[k];
    return NULL;
}

static int check_columns(const cfg *c, ody_err *err)
{
    const char *f = c->file, *r;
    if (c->n_features < 1 && !c->spec_flux[0])
        return ody_fail(err, ODY_EINPUT, "%s: catalog.features is empty — list at least one feature column (or set "
                        "spectra.flux)", f);
    if (c->spec_dg > 0 && !(c->spec_g1 > c->spec_g0))
        return ody_fail(err, ODY_EINPUT, "%s: spectra.grid_stop = %g is not above grid_start = %g — give the grid's "
                        "first and last bin centres", f, c->spec_g1, c->spec_g0);
    double bins = c->spec_dg > 0 ? floor((c->spec_g1 - c->spec_g0) / c->spec_dg + 1e-9) + 1 : 0;
    if (bins > 1e6)
        return ody_fail(err, ODY_EINPUT, "%s: spectra.grid_start..grid_stop by grid_step makes %.0f bins — at most "
                        "10^6: raise spectra.grid_step", f, bins);
    if (bins > 0 && c->spec_ds > bins)
        return ody_fail(err, ODY_EINPUT, "%s: spectra.downsample = %d is more than the grid's %.0f bins — set it to "
                        "at most %.0f", f, c->spec_ds, bins, bins);
    if (c->spec_n1 < c->spec_n0)
        return ody_fail(err, ODY_EINPUT, "%s: spectra.norm_to = %g is below norm_from = %g — give the window's ends "
                        "in order (equal: not normalised)", f, c->spec_n1, c->spec_n0);
    if (c->spec_dg > 0 && c->spec_n1 > c->spec_n0 && (c->spec_n1 < c->spec_g0 || c->spec_n0 > c->spec_g1))
        return ody_fail(err, ODY_EINPUT, "%s: the normalisation window %g-%g (spectra.norm_from, norm_to) lies "
                        "outside the grid %g-%g, so no spectrum could be normalised — choose a window inside the grid",
                        f, c->spec_n0, c->spec_n1, c->spec_g0, c->spec_g1);
    if (!c->spec_flux[0] && (c->spec_wave[0] || c->spec_z[0] || c->spec_ivar[0] || c->spec_mask[0]))
        return ody_fail(err, ODY_EINPUT, "%s: spectra.* keys are set but spectra.flux is empty — name the flux column",
                        f);
    if ((r = repeated(c->features, c->n_features)))
        return ody_fail(err, ODY_EINPUT, "%s: catalog.features lists '%s' twice — keep one", f, r);
    if ((r = repeated(c->passthru, c->n_passthru)))
        return ody_fail(err, ODY_EINPUT, "%s: catalog.passthrough lists '%s' twice — keep one", f, r);
    for (int k = 0; k < c->n_passthru; k++) {
        if (!strcasecmp(c->passthru[k], c->cat_id[0] ? c->cat_id : "ROW"))
            return ody_fail(err, ODY_EINPUT, "%s: catalog.passthrough lists the ID column '%s', which the exports "
                            "carry anyway — remove it from passthrough", f, c->passthru[k]);
        if ((r = reserved_name(c->passthru[k])))
            return ody_fail(err, ODY_EINPUT, "%s: catalog.passthrough column '%s' has the name of an oddsky output "
                            "column — rename it in the path, e.g. FILE[col *; MY_%s = %s]", f, c->passthru[k], r,
                            c->passthru[k]);
    }
    if (c->cat_id[0] && (r = reserved_name(c->cat_id)))
        return ody_fail(err, ODY_EINPUT, "%s: catalog.id '%s' has the name of an oddsky output column — rename it "
                        "in the path, e.g. FILE[col *; MY_%s = %s], or leave id empty to use the row number", f,
                        c->cat_id, r, c->cat_id);
    return 0;
}

static int check_cutouts(const cfg *c, ody_err *err)
{
    const char *f = c->file;
    if ((c->lens_on || c->cut_morph) && !c->cut_path[0])
        return ody_fail(err, ODY_EINPUT, "%s: lens.enabled / cutouts.morphology need cutouts.path — give the cutouts", f);
    if (c->n_cut_bands > CUT_MAX_BANDS)
        return ody_fail(err, ODY_EINPUT, "%s: cutouts.bands lists %d bands — at most %d", f, c->n_cut_bands,
                        CUT_MAX_BANDS);
    if (c->lens_on && !c->lens_model[0] && (c->cut_size < 8 || c->cut_size > 1024))
        return ody_fail(err, ODY_EINPUT, "%s: cutouts.size = %d: the lens classifier trains on simulations of 8 to "
                        "1024 pixels — resize the cutouts or give lens.model", f, c->cut_size);
    if (c->lens_on && !c->lens_model[0] && c->cut_size % c->lens_down)
        return ody_fail(err, ODY_EINPUT, "%s: lens.downsample = %d does not divide cutouts.size = %d — use a "
                        "divisor of the size", f, c->lens_down, c->cut_size);
    return 0;
}

static int check_models(const cfg *c, ody_err *err)
{
    const char *f = c->file;
    /* forest.max_features as a number is checked against the features when
     * the forest is grown: a vector column or spectra expand into many */
    if (c->rf_max_samples == 1)
        return ody_fail(err, ODY_EINPUT, "%s: forest.max_samples = 1 cannot grow a tree — use 0 (all rows) or at "
                        "least 2", f);
    if (c->n_mlp_hidden + 1 > NN_MAX_LAYERS)
        return ody_fail(err, ODY_EINPUT, "%s: mlp.hidden lists %d layers — at most %d", f, c->n_mlp_hidden,
                        NN_MAX_LAYERS - 1);
    return 0;
}

static int check_export(const cfg *c, ody_err *err)
{
    const char *f = c->file;
    if (c->rank_by == CFG_SCORE_MLP && !c->mlp_on)
        return ody_fail(err, ODY_EINPUT, "%s: export.rank_by = mlp but mlp.enabled is false — enable the MLP or "
                        "rank by another score", f);
    if (c->rank_by == CFG_SCORE_LENS && !c->lens_on)
        return ody_fail(err, ODY_EINPUT, "%s: export.rank_by = lens but lens.enabled is false — enable the lens "
                        "classifier (it needs cutouts.path) or rank by another score", f);
    if (!c->detectors)
        return ody_fail(err, ODY_EINPUT, "%s: score.detectors is empty — list at least one, e.g. [isolation, "
                        "weirdness, local]", f);
    if (c->detectors & (1 << CFG_SCORE_ANOMALY | 1 << CFG_SCORE_LENS))
        return ody_fail(err, ODY_EINPUT, "%s: score.detectors may not list anomaly (it is their combination) or lens "
                        "(not an anomaly score) — remove them", f);
    int weighed = 0;  /* a listed detector that counts: all at weight 0 made ANOMALY_SCORE 0 for every object */
    for (int d = 0; d < CFG_N_SCORES; d++)
        if ((c->detectors & 1 << d) && cfg_detector_weight(c, (cfg_score)d, 0) > 0) weighed = 1;
    if (!weighed)
        return ody_fail(err, ODY_EINPUT, "%s: every detector in score.detectors has weight 0 (score.local_weight, "
                        "context_weight, heap_weight), so the anomaly score would be 0 for every object — raise a "
                        "weight or list another detector", f);
    if ((c->detectors & 1 << CFG_SCORE_MLP) && !c->mlp_on)
        return ody_fail(err, ODY_EINPUT, "%s: score.detectors lists mlp but mlp.enabled is false — enable the MLP or "
                        "remove it from the detectors", f);
    if (c->dense && !c->sim_on)
        return ody_fail(err, ODY_EINPUT, "%s: similarity.dense needs similarity.enabled: true", f);
    if (((c->detectors | 1 << c->rank_by) & 1 << CFG_SCORE_FOREST_KNN) && !c->sim_on)
        return ody_fail(err, ODY_EINPUT, "%s: forest_knn (in score.detectors or export.rank_by) needs the similarity "
                        "lists — set similarity.enabled: true", f);
    if (!(c->formats & ~CFG_FMT_HTML))
        return ody_fail(err, ODY_EINPUT, "%s: export.formats lists no table — list fits and/or csv (html is the "
                        "report, made from them)", f);
    if (c->n_rep_map && c->n_rep_map != 2)
        return ody_fail(err, ODY_EINPUT, "%s: report.map lists %d feature%s — give two (x, y), or [] for the first two "
                        "principal components", f, c->n_rep_map, c->n_rep_map == 1 ? "" : "s");
    for (int m = 0; m < c->n_rep_map; m++) {
        int found = 0;
        for (int j = 0; j < c->n_features && !found; j++) found = !strcasecmp(c->rep_map[m], c->features[j]);
        if (!found)
            return ody_fail(err, ODY_EINPUT, "%s: report.map: '%s' is not one of catalog.features — name two of them",
                            f, c->rep_map[m]);
    }
    return 0;
}

int cfg_names_key(const char *text)
{
    for (int k = 0; k < cfg_n_keys; k++) {
        size_t n = strlen(cfg_schema[k].path);
        if (strchr(cfg_schema[k].path, '.') && !strncmp(text, cfg_schema[k].path, n) && text[n] == ' ') return 1;
    }
    return 0;
}

int cfg_check(const cfg *c, ody_err *err)
{
    int rc = check_columns(c, err);
    if (!rc) rc = check_cutouts(c, err);
    if (!rc) rc = check_models(c, err);
    if (!rc) rc = check_export(c, err);
    return rc;
}

/* ================================================================ output */

char *cfg_dump(const cfg *c)
{
    size_t cap = 1 << 16, at = 0;
    char *out = malloc(cap);
    if (!out) return NULL;
    char val[4096], cur[64] = "";
    at += (size_t)snprintf(out + at, cap - at, "# effective configuration (oddsky %s)\n", ody_version());
    for (int k = 0; k < cfg_n_keys && at < cap - 1; k++) {
        const key *s = &cfg_schema[k];
        const char *dot = strchr(s->path, '.');
        char sect[64] = "";
        if (dot) snprintf(sect, sizeof sect, "%.*s", (int)(dot - s->path), s->path);
        if (strcmp(sect, cur)) {
            if (sect[0]) at += (size_t)snprintf(out + at, cap - at, "%s:\n", sect);
            snprintf(cur, sizeof cur, "%s", sect);
        }
        schema_text(c, s, val, sizeof val);
        at += (size_t)snprintf(out + at, cap - at, "%s%s: %s\n", dot ? "  " : "", dot ? dot + 1 : s->path, val);
    }
    return out;
}

static uint64_t fnv(uint64_t h, const char *s)
{
    for (; *s; s++) h = (h ^ (unsigned char)*s) * 1099511628211ULL;
    return h;
}

uint64_t cfg_hash(const cfg *c, const char *const *prefixes, int n_prefixes)
{
    uint64_t h = 1469598103934665603ULL;
    char val[4096];
    for (int k = 0; k < cfg_n_keys; k++) {
        int take = 0;
        for (int p = 0; p < n_prefixes; p++) take |= !strncmp(cfg_schema[k].path, prefixes[p], strlen(prefixes[p]));
        if (!take) continue;
        schema_text(c, &cfg_schema[k], val, sizeof val);
        h = fnv(h, cfg_schema[k].path);
        h = fnv(h, "=");
        h = fnv(h, val);
        h = fnv(h, "\n");
    }
    return h;
}

/* The type column of the reference ('|' would split a Markdown cell). */
static void type_text(const key *s, char *type, size_t len)
{
    static const char *tn[] = {"integer", "integer", "number", "true/false", "text", "one of", "list of names",
                               "list of integers", "path (relative to the config file)", "list of names", "text",
                               "list of numbers", "auto or a number", "auto or an integer"};
    if (s->type == T_ENUM) {
        size_t t = (size_t)snprintf(type, len, "one of ");
        for (const char *p = s->choices; *p && t + 4 < len; p++) {
            if (*p == '|') t += (size_t)snprintf(type + t, len - t, " / ");
            else type[t++] = *p;
        }
        type[t] = 0;
    } else if ((s->type == T_INT || s->type == T_INT64 || s->type == T_REAL || s->type == T_REAL_AUTO ||
                s->type == T_INT_AUTO) &&
               s->hi > s->lo) {
        snprintf(type, len, "%s, %g to %g", tn[s->type], s->lo, s->hi);
    } else {
        snprintf(type, len, "%s", tn[s->type]);
    }
}

char *cfg_reference_markdown(void)
{
    size_t cap = 1 << 16, at = 0;
    char *out = malloc(cap);
    if (!out) return NULL;
    at += (size_t)snprintf(out + at, cap - at, "| key | type | default | meaning |\n|---|---|---|---|\n");
    for (int k = 0; k < cfg_n_keys && at < cap; k++) {
        const key *s = &cfg_schema[k];
        char type[128];
        type_text(s, type, sizeof type);
        at += (size_t)snprintf(out + at, cap - at, "| `%s` | %s | %s | %s |\n", s->path, type,
                               s->def ? s->def : "**required**", s->help);
    }
    return out;
}
