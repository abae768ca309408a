/* yamltree.h — YAML text to a small tree with source positions (prefix yt_).
 * Used by config/ (configs, batch files) and io/ (ECSV headers).
 *
 * The loader defends against hostile text before any of it is used:
 *   - input larger than YT_MAX_BYTES, or not a regular file, is refused;
 *   - a mapping that repeats a key, and a stream with a second document,
 *     are errors (YAML would silently keep one of them);
 *   - aliases are expanded into copies, with nesting limited to YT_MAX_DEPTH
 *     levels and the expanded tree to YT_MAX_NODES nodes, and an alias that
 *     refers to a node containing itself is an error (libyaml builds such a
 *     document as a cycle).
 * Every error names SOURCE:LINE:COL.
 */
#ifndef YAMLTREE_H
#define YAMLTREE_H

#include <stddef.h>

#include "ody.h"

#define YT_MAX_BYTES (1 << 20)   /* a config or batch file: 1 MiB */
#define YT_MAX_DEPTH 64          /* nesting of lists and mappings */
#define YT_MAX_NODES 100000      /* nodes after alias expansion */

typedef enum { YT_SCALAR, YT_SEQ, YT_MAP } yt_kind;

typedef struct yt_node {
    yt_kind kind;
    char *key;           /* in a map: its key; else NULL */
    char *val;           /* YT_SCALAR: the text */
    int line, col;       /* of the value, 1-based; 0 when it came from --set */
    int kline, kcol;     /* of its key, in a map */
    const char *src;     /* file name or "--set": not owned, outlives the tree */
    struct yt_node *child, *next;
} yt_node;

/* Parses text (len bytes) into *out (NULL for an empty document).  src names
 * the text in messages and must outlive the tree.  On error *out is NULL. */
int yt_parse(const char *text, size_t len, const char *src, yt_node **out, ody_err *err);

/* Reads a whole file (a regular file of at most YT_MAX_BYTES) and parses it.
 * what ("config", "batch file") goes into messages. */
int yt_load_file(const char *path, const char *what, yt_node **out, ody_err *err);

void yt_free(yt_node *n);

/* The child of map m with key k, or NULL. */
yt_node *yt_get(const yt_node *m, const char *k);

/* Dotted path "a.b" (one dot at most) from the root, or NULL. */
const yt_node *yt_lookup(const yt_node *root, const char *path);

/* "SRC:LINE:COL" of a value, or of a map entry's key. */
void yt_where(char *buf, size_t len, const yt_node *n);
void yt_where_key(char *buf, size_t len, const yt_node *n);

/* Replaces (or inserts) the value at "sect.leaf" or "leaf" with v, creating
 * the section when absent; v is owned by the tree afterwards, or freed on
 * error.  *root is created when NULL. */
int yt_set(yt_node **root, const char *path, yt_node *v, ody_err *err);

/* A scalar or flow-list value as YAML text that yt_parse reads back. */
void yt_text(const yt_node *n, char *buf, size_t len);

#endif
