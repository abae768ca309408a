/* schema.h — the table of config keys and typed access to a cfg through it.
 * Private to config/. */
#ifndef SCHEMA_H
#define SCHEMA_H

#include <stddef.h>

#include "cfg.h"
#include "yamltree.h"

/* T_PATH:  text resolved against the config file's directory when relative
 * T_ENUM:  one of `choices`, stored as codes[position] (an int-sized enum)
 * T_FLAGS: a list of `choices`, stored as an int with bit (1 << position)
 * T_MAXF:  forest.max_features: the text, and its parse into rf_maxf
 * T_REAL_AUTO: a number in range, or `auto`, stored as CFG_AUTO
 * T_INT_AUTO:  a whole number in range, or `auto`, stored as CFG_AUTO_INT */
typedef enum {
    T_INT, T_INT64, T_REAL, T_BOOL, T_STR, T_ENUM, T_STRLIST, T_INTLIST, T_PATH, T_FLAGS, T_MAXF, T_REALLIST,
    T_REAL_AUTO, T_INT_AUTO
} ktype;

typedef struct key {
    const char *path;     /* dotted */
    ktype type;
    const char *def;      /* default as YAML text; NULL = required */
    double lo, hi;        /* numeric range (inclusive) */
    const char *choices;  /* T_ENUM / T_FLAGS / list items: "a|b|c" */
    const int *codes;     /* T_ENUM: the value stored for each choice */
    size_t off, noff;     /* offset of the value (and of its count for lists) in cfg */
    const char *help;
} key;

extern const key cfg_schema[];
extern const int cfg_n_keys;

/* The key at a dotted path, or NULL. */
const key *schema_find(const char *path);

/* Whether name is a section: the part before the dot of some key's path. */
int schema_is_section(const char *name);

/* Nearest valid name to `want` among the children of prefix ("" for the top
 * level), into buf; NULL when nothing is close. */
const char *schema_nearest(const char *prefix, const char *want, char *buf, size_t len);

/* Stores the value of node n for key k into c (replacing what was there).
 * Relative T_PATH values are resolved against c->dir. */
int schema_set(cfg *c, const key *k, const yt_node *n, ody_err *err);

/* Stores k's default (required keys: an empty value). */
int schema_set_default(cfg *c, const key *k, ody_err *err);

/* The YAML text of k's value in c (what --print-config prints). */
void schema_text(const cfg *c, const key *k, char *buf, size_t len);

/* Frees what c owns for key k. */
void schema_free_value(cfg *c, const key *k);

#endif
