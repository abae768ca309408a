/* yamltree.c — YAML to a small tree, defended against hostile text. */
#define _GNU_SOURCE
#include "yamltree.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>
#include <yaml.h>

/* ================================================================ nodes */

void yt_free(yt_node *n)
{
    while (n) {
        yt_node *nx = n->next;
        yt_free(n->child);
        free(n->key);
        free(n->val);
        free(n);
        n = nx;
    }
}

yt_node *yt_get(const yt_node *m, const char *k)
{
    if (!m || m->kind != YT_MAP) return NULL;
    for (yt_node *c = m->child; c; c = c->next)
        if (c->key && !strcmp(c->key, k)) return c;
    return NULL;
}

const yt_node *yt_lookup(const yt_node *root, const char *path)
{
    char buf[256];
    snprintf(buf, sizeof buf, "%s", path);
    char *dot = strchr(buf, '.');
    if (!dot) return yt_get(root, buf);
    *dot = 0;
    return yt_get(yt_get(root, buf), dot + 1);
}

void yt_where(char *buf, size_t len, const yt_node *n)
{
    if (n->line) snprintf(buf, len, "%s:%d:%d", n->src, n->line, n->col);
    else snprintf(buf, len, "%s", n->src);
}

void yt_where_key(char *buf, size_t len, const yt_node *n)
{
    if (n->kline) snprintf(buf, len, "%s:%d:%d", n->src, n->kline, n->kcol);
    else yt_where(buf, len, n);
}

void yt_text(const yt_node *n, char *buf, size_t len)
{
    if (n->kind == YT_SCALAR) { snprintf(buf, len, "%s", n->val); return; }
    size_t at = (size_t)snprintf(buf, len, "[");
    for (const yt_node *q = n->child; q && at < len; q = q->next)
        at += (size_t)snprintf(buf + at, len - at, "%s%s", q == n->child ? "" : ", ",
                               q->kind == YT_SCALAR ? q->val : "");
    if (at < len) snprintf(buf + at, len - at, "]");
}

/* ================================================================ building */

/* The tree is built from libyaml's events rather than its document API:
 * nesting is counted as it opens, so a document nested a hundred thousand
 * levels deep stops at level 65 (libyaml's scanner slows down
 * quadratically with depth), and aliases are expanded here as copies under
 * a node budget.  An anchor is registered when its node is complete, so an
 * alias inside the node it names finds it still open: a self-reference. */

typedef struct anchor {
    char *name;
    yt_node *copy;           /* an independent copy of the anchored node */
} anchor;

typedef struct level {
    yt_node *node;           /* the open sequence or mapping */
    yt_node **tail;          /* where its next child goes */
    char *anchor;            /* its anchor, registered when it closes */
    char *key;               /* mapping: a key waiting for its value */
    int kline, kcol;
} level;

typedef struct builder {
    const char *src;
    ody_err *err;
    int rc;
    yt_node *root;
    level open[YT_MAX_DEPTH + 1];
    int depth;
    anchor *anchors;
    size_t n_anchors, cap_anchors;
    size_t made;             /* nodes created, copies included */
    int docs;
} builder;

static int fail_at(builder *b, yaml_mark_t m, const char *what)
{
    b->rc = ody_fail(b->err, ODY_EINPUT, "%s:%zu:%zu: %s", b->src, m.line + 1, m.column + 1, what);
    return b->rc;
}

static int oom(builder *b)
{
    b->rc = ody_fail(b->err, ODY_ENOMEM, "out of memory reading %s", b->src);
    return b->rc;
}

static yt_node *node_new(builder *b, yt_kind k, yaml_mark_t m)
{
    if (++b->made > YT_MAX_NODES) {
        fail_at(b, m, "the document expands to more than 100000 values (aliases repeated inside aliases?) — "
                      "write the values out plainly");
        return NULL;
    }
    yt_node *n = calloc(1, sizeof *n);
    if (!n) { oom(b); return NULL; }
    n->kind = k;
    n->src = b->src;
    n->line = (int)m.line + 1;
    n->col = (int)m.column + 1;
    return n;
}

/* A deep copy of n (without its key and siblings), within the budget. */
static yt_node *copy_tree(builder *b, const yt_node *n, yaml_mark_t m)
{
    yt_node *c = node_new(b, n->kind, m);
    if (!c) return NULL;
    c->line = n->line;
    c->col = n->col;
    if (n->val && !(c->val = strdup(n->val))) { yt_free(c); oom(b); return NULL; }
    yt_node **tail = &c->child;
    for (const yt_node *q = n->child; q; q = q->next) {
        yt_node *k = copy_tree(b, q, m);
        if (!k || (q->key && !(k->key = strdup(q->key)))) {
            yt_free(k);
            yt_free(c);
            if (!b->rc) oom(b);
            return NULL;
        }
        k->kline = q->kline;
        k->kcol = q->kcol;
        *tail = k;
        tail = &k->next;
    }
    return c;
}

static int add_anchor(builder *b, const char *name, const yt_node *n, yaml_mark_t m)
{
    if (b->n_anchors == b->cap_anchors) {
        size_t cap = b->cap_anchors ? 2 * b->cap_anchors : 8;
        anchor *a = realloc(b->anchors, cap * sizeof *a);
        if (!a) return oom(b);
        b->anchors = a;
        b->cap_anchors = cap;
    }
    anchor *a = &b->anchors[b->n_anchors];
    if (!(a->copy = copy_tree(b, n, m))) return b->rc;
    if (!(a->name = strdup(name))) { yt_free(a->copy); return oom(b); }
    b->n_anchors++;
    return 0;
}

/* Places a finished node: the root, an item of the open sequence, a key of
 * the open mapping, or the value of its waiting key.  Takes n. */
static int attach(builder *b, yt_node *n, yaml_mark_t m)
{
    if (b->depth == 0) {
        b->root = n;
        return 0;
    }
    level *lv = &b->open[b->depth - 1];
    if (lv->node->kind == YT_MAP && !lv->key) {
        if (n->kind != YT_SCALAR) {
            yt_free(n);
            return fail_at(b, m, "a key must be a plain name, not a list or mapping");
        }
        for (const yt_node *q = lv->node->child; q; q = q->next) {
            if (strcmp(q->key, n->val)) continue;
            char what[400];
            snprintf(what, sizeof what, "key '%.200s' appears twice in one mapping (first at line %d) — keep one",
                     n->val, q->kline);
            yt_free(n);
            return fail_at(b, m, what);
        }
        lv->key = n->val;
        lv->kline = n->line;
        lv->kcol = n->col;
        n->val = NULL;
        yt_free(n);
        return 0;
    }
    if (lv->node->kind == YT_MAP) {
        n->key = lv->key;
        n->kline = lv->kline;
        n->kcol = lv->kcol;
        lv->key = NULL;
    }
    *lv->tail = n;
    lv->tail = &n->next;
    return 0;
}

static int on_scalar(builder *b, const yaml_event_t *ev)
{
    yt_node *n = node_new(b, YT_SCALAR, ev->start_mark);
    if (!n) return b->rc;
    if (!(n->val = strndup((const char *)ev->data.scalar.value, ev->data.scalar.length))) { yt_free(n); return oom(b); }
    if (ev->data.scalar.anchor && add_anchor(b, (const char *)ev->data.scalar.anchor, n, ev->start_mark)) {
        yt_free(n);
        return b->rc;
    }
    return attach(b, n, ev->start_mark);
}

static int on_open(builder *b, const yaml_event_t *ev, yt_kind kind)
{
    if (b->depth >= YT_MAX_DEPTH)
        return fail_at(b, ev->start_mark, "lists and mappings are nested more than 64 levels deep — a config needs 2");
    yt_node *n = node_new(b, kind, ev->start_mark);
    if (!n) return b->rc;
    const yaml_char_t *an = kind == YT_SEQ ? ev->data.sequence_start.anchor : ev->data.mapping_start.anchor;
    level *lv = &b->open[b->depth++];
    memset(lv, 0, sizeof *lv);
    lv->node = n;
    lv->tail = &n->child;
    if (an && !(lv->anchor = strdup((const char *)an))) return oom(b);
    return 0;
}

static int on_close(builder *b, const yaml_event_t *ev)
{
    level *lv = &b->open[--b->depth];
    yt_node *n = lv->node;
    int rc = lv->anchor ? add_anchor(b, lv->anchor, n, ev->start_mark) : 0;
    free(lv->anchor);
    free(lv->key);
    memset(lv, 0, sizeof *lv);
    if (rc) { yt_free(n); return rc; }
    return attach(b, n, ev->start_mark);
}

static int on_alias(builder *b, const yaml_event_t *ev)
{
    const char *name = (const char *)ev->data.alias.anchor;
    for (size_t k = b->n_anchors; k-- > 0;) {
        if (strcmp(b->anchors[k].name, name)) continue;
        yt_node *n = copy_tree(b, b->anchors[k].copy, ev->start_mark);
        return n ? attach(b, n, ev->start_mark) : b->rc;
    }
    for (int d = 0; d < b->depth; d++)
        if (b->open[d].anchor && !strcmp(b->open[d].anchor, name))
            return fail_at(b, ev->start_mark, "an alias refers to itself (the anchored value contains its own "
                                              "alias) — write the value out");
    char what[600];
    snprintf(what, sizeof what, "alias *%.200s names no anchor before it — define &%.200s first", name, name);
    return fail_at(b, ev->start_mark, what);
}

static int on_event(builder *b, const yaml_event_t *ev)
{
    switch (ev->type) {
    case YAML_DOCUMENT_START_EVENT:
        if (++b->docs > 1)
            return fail_at(b, ev->start_mark, "a second YAML document starts here (after ---) — a config is one "
                                              "document; remove it or split the file");
        return 0;
    case YAML_SCALAR_EVENT: return on_scalar(b, ev);
    case YAML_SEQUENCE_START_EVENT: return on_open(b, ev, YT_SEQ);
    case YAML_MAPPING_START_EVENT: return on_open(b, ev, YT_MAP);
    case YAML_SEQUENCE_END_EVENT: case YAML_MAPPING_END_EVENT: return on_close(b, ev);
    case YAML_ALIAS_EVENT: return on_alias(b, ev);
    default: return 0;
    }
}

static void builder_free(builder *b)
{
    while (b->depth > 0) {
        level *lv = &b->open[--b->depth];
        yt_free(lv->node);
        free(lv->anchor);
        free(lv->key);
    }
    for (size_t k = 0; k < b->n_anchors; k++) {
        free(b->anchors[k].name);
        yt_free(b->anchors[k].copy);
    }
    free(b->anchors);
}

/* ================================================================ parsing */

/* Line and column (1-based) of byte offset off in text. */
static void offset_pos(const char *text, size_t len, size_t off, size_t *line, size_t *col)
{
    *line = 1;
    *col = 1;
    for (size_t i = 0; i < off && i < len; i++) {
        if (text[i] == '\n') { (*line)++; *col = 1; }
        else (*col)++;
    }
}

static int syntax_error(const yaml_parser_t *p, const char *text, size_t len, const char *src, ody_err *err)
{
    if (p->error == YAML_READER_ERROR) {
        size_t line, col;
        offset_pos(text, len, p->problem_offset, &line, &col);
        unsigned v = p->problem_offset < len ? (unsigned char)text[p->problem_offset] : 0;
        return ody_fail(err, ODY_EINPUT, "%s:%zu:%zu: %s (byte 0x%02x) — a config must be UTF-8 text; "
                        "save it as UTF-8", src, line, col, p->problem ? p->problem : "unreadable text", v);
    }
    if (p->error == YAML_MEMORY_ERROR) return ody_fail(err, ODY_ENOMEM, "out of memory reading %s", src);
    return ody_fail(err, ODY_EINPUT, "%s:%zu:%zu: YAML syntax error: %s%s%s — check the indentation "
                    "and quoting there", src, p->problem_mark.line + 1, p->problem_mark.column + 1,
                    p->problem ? p->problem : "unknown", p->context ? " " : "", p->context ? p->context : "");
}

int yt_parse(const char *text, size_t len, const char *src, yt_node **out, ody_err *err)
{
    yaml_parser_t p;
    *out = NULL;
    if (!yaml_parser_initialize(&p)) return ody_fail(err, ODY_ENOMEM, "out of memory");
    yaml_parser_set_input_string(&p, (const unsigned char *)text, len);
    builder b;
    memset(&b, 0, sizeof b);
    b.src = src;
    b.err = err;
    for (int done = 0; !done && !b.rc;) {
        yaml_event_t ev;
        if (!yaml_parser_parse(&p, &ev)) {
            b.rc = syntax_error(&p, text, len, src, err);
            break;
        }
        done = ev.type == YAML_STREAM_END_EVENT;
        on_event(&b, &ev);
        yaml_event_delete(&ev);
    }
    yaml_parser_delete(&p);
    builder_free(&b);
    if (b.rc) {
        yt_free(b.root);
        return b.rc;
    }
    *out = b.root;
    return 0;
}

/* ================================================================ files */

/* Reads a regular file of at most YT_MAX_BYTES into a NUL-terminated buffer. */
static int slurp(const char *path, const char *what, char **text, size_t *len, ody_err *err)
{
    int fd = open(path, O_RDONLY | O_NONBLOCK | O_CLOEXEC);
    if (fd < 0) return ody_fail(err, ODY_EINPUT, "%s: cannot read the %s (%s) — check the path", path, what, strerror(errno));
    struct stat st;
    int rc = 0;
    if (fstat(fd, &st)) rc = ody_fail(err, ODY_EINPUT, "%s: cannot read the %s (%s)", path, what, strerror(errno));
    else if (S_ISDIR(st.st_mode)) rc = ody_fail(err, ODY_EINPUT, "%s: is a directory, not a %s — give the YAML file in it", path, what);
    else if (!S_ISREG(st.st_mode)) rc = ody_fail(err, ODY_EINPUT, "%s: not a regular file — give a YAML %s on disk", path, what);
    else if (st.st_size > YT_MAX_BYTES)
        rc = ody_fail(err, ODY_EINPUT, "%s: %lld bytes is larger than a %s may be (1 MiB) — is this the right file?",
                      path, (long long)st.st_size, what);
    char *buf = rc ? NULL : malloc((size_t)st.st_size + 2);
    if (!rc && !buf) rc = ody_fail(err, ODY_ENOMEM, "out of memory");
    size_t n = 0;
    while (!rc && n <= (size_t)st.st_size) {  /* one byte more than expected: the file grew */
        ssize_t r = read(fd, buf + n, (size_t)st.st_size + 1 - n);
        if (r < 0 && errno == EINTR) continue;
        if (r < 0) rc = ody_fail(err, ODY_EINPUT, "%s: cannot read the %s (%s)", path, what, strerror(errno));
        if (r <= 0) break;
        n += (size_t)r;
    }
    close(fd);
    if (!rc && n > YT_MAX_BYTES) rc = ody_fail(err, ODY_EINPUT, "%s: larger than a %s may be (1 MiB)", path, what);
    if (rc) { free(buf); return rc; }
    buf[n] = 0;
    *text = buf;
    *len = n;
    return 0;
}

int yt_load_file(const char *path, const char *what, yt_node **out, ody_err *err)
{
    char *text = NULL;
    size_t len = 0;
    int rc = slurp(path, what, &text, &len, err);
    if (rc) return rc;
    rc = yt_parse(text, len, path, out, err);
    free(text);
    return rc;
}

/* ================================================================ editing */

static yt_node *section_for(yt_node *root, const char *name, ody_err *err, int *rc)
{
    yt_node *sec = yt_get(root, name);
    if (sec && sec->kind != YT_MAP) {
        *rc = ody_fail(err, ODY_EINPUT, "--set %s...: '%s' in the config is not a section", name, name);
        return NULL;
    }
    if (sec) return sec;
    sec = calloc(1, sizeof *sec);
    if (!sec || !(sec->key = strdup(name))) {
        free(sec);
        *rc = ody_fail(err, ODY_ENOMEM, "out of memory");
        return NULL;
    }
    sec->kind = YT_MAP;
    sec->src = "--set";
    sec->next = root->child;
    root->child = sec;
    return sec;
}

int yt_set(yt_node **root, const char *path, yt_node *v, ody_err *err)
{
    if (!*root) {
        *root = calloc(1, sizeof **root);
        if (!*root) { yt_free(v); return ody_fail(err, ODY_ENOMEM, "out of memory"); }
        (*root)->kind = YT_MAP;
        (*root)->src = "--set";
    }
    char sect[256];
    snprintf(sect, sizeof sect, "%s", path);
    char *dot = strchr(sect, '.');
    const char *leaf = path;
    yt_node *parent = *root;
    int rc = 0;
    if (dot) {
        *dot = 0;
        leaf = dot + 1;
        leaf = path + (leaf - sect);
        if (!(parent = section_for(*root, sect, err, &rc))) { yt_free(v); return rc; }
    }
    free(v->key);
    if (!(v->key = strdup(leaf))) { yt_free(v); return ody_fail(err, ODY_ENOMEM, "out of memory"); }
    yt_node **pp = &parent->child;
    while (*pp && strcmp((*pp)->key, leaf)) pp = &(*pp)->next;
    if (*pp) {
        v->next = (*pp)->next;
        (*pp)->next = NULL;
        yt_free(*pp);
    }
    *pp = v;
    return 0;
}
