/* tabin.c — CSV and ECSV tables converted to FITS, streaming. */
#define _GNU_SOURCE
#include "tabin.h"

#include <csv.h>
#include <errno.h>
#include <fitsio.h>
#include <math.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/stat.h>
#include <unistd.h>
#include <zlib.h>

#include "tabconv.h"
#include "yamltree.h"

/* ================================================================ reading */

int tabc_open_text(const char *file, gzFile *gz, ody_err *err)
{
    *gz = gzopen(file, "rb");
    if (!*gz)
        return ody_fail(err, ODY_EINPUT, "%s: cannot open: %s — check the path", file,
                        errno ? strerror(errno) : "out of memory");
    gzbuffer(*gz, 256 * 1024);
    return 0;
}

/* ================================================================ columns */

static int is_missing(const col *c, const char *s, size_t n)
{
    static const char *const tok[] = {"nan", "null", "none", "na", "n/a", "--"};
    if (!s || n == 0) return 1;
    if (c->null_tok && strlen(c->null_tok) == n && !memcmp(s, c->null_tok, n)) return 1;
    for (size_t k = 0; k < sizeof tok / sizeof *tok; k++)
        if (strlen(tok[k]) == n && !strncasecmp(s, tok[k], n)) return 1;
    return 0;
}

static int parse_int(const char *s, long long *v)
{
    char *e;
    errno = 0;
    long long x = strtoll(s, &e, 10);
    if (e == s || *e || errno) return 0;
    *v = x;
    return 1;
}

static int parse_num(const char *s, double *v)
{
    char *e;
    double x = strtod(s, &e);
    if (e == s || *e) return 0;
    *v = x;
    return 1;
}

/* Pass 1 only types a column: a syntax check answers for the common forms
 * without converting; anything else goes to strtoll / strtod, so the
 * answer is always theirs. */
static int is_int(const char *s)
{
    const char *p = s + (*s == '+' || *s == '-');
    size_t n = strspn(p, "0123456789");
    long long v;
    if (n && !p[n]) return n <= 18 || parse_int(s, &v);
    return parse_int(s, &v);
}

static int is_num(const char *s)
{
    const char *p = s + (*s == '+' || *s == '-');
    size_t a = strspn(p, "0123456789"), b = 0;
    p += a;
    if (*p == '.') b = strspn(++p, "0123456789"), p += b;
    if (a + b && (*p == 'e' || *p == 'E')) {
        const char *q = p + 1 + (p[1] == '+' || p[1] == '-');
        size_t c = strspn(q, "0123456789");
        if (c) p = q + c;
    }
    double v;
    return (a + b && !*p) || parse_num(s, &v);
}

static int parse_bool(const char *s, long long *v)
{
    if (!strcasecmp(s, "true") || !strcasecmp(s, "t") || !strcmp(s, "1")) *v = 1;
    else if (!strcasecmp(s, "false") || !strcasecmp(s, "f") || !strcmp(s, "0")) *v = 0;
    else return 0;
    return 1;
}

long tabc_line(const conv *cv)
{
    return cv->xml_line ? cv->xml_line : cv->hdr_line + (long)cv->row + 1;
}

/* ================================================================ the two passes */

col *tabc_add_column(conv *cv, const char *s, size_t n)
{
    int j = cv->ncol;
    if (j >= TAB_MAX_COLS) {
        cv->rc = ody_fail(cv->err, ODY_EINPUT, "%s:%ld: more than %d columns (FITS's limit) — select fewer columns "
                          "when you export the table", cv->file, tabc_line(cv), TAB_MAX_COLS);
        return NULL;
    }
    if (n > TAB_MAX_NAME) {
        cv->rc = ody_fail(cv->err, ODY_EINPUT, "%s:%ld: column %d's name is %zu characters long (at most %d) — shorten it",
                          cv->file, tabc_line(cv), j + 1, n, TAB_MAX_NAME);
        return NULL;
    }
    col *g = realloc(cv->c, (size_t)(j + 1) * sizeof *g);
    if (!g) {
        cv->rc = ody_fail(cv->err, ODY_ENOMEM, "out of memory reading %s", cv->file);
        return NULL;
    }
    cv->c = g;
    col *c = &cv->c[j];
    memset(c, 0, sizeof *c);
    c->int_ok = c->num_ok = 1;
    if (n) memcpy(c->name, s, n);
    else snprintf(c->name, sizeof c->name, "col%d", j + 1);
    cv->ncol = j + 1;
    return c;
}

/* Pass 1: how each value types its column, and whether it fits a declared type. */
static void scan_value(conv *cv, col *c, const char *s, size_t n)
{
    if (n > c->width) c->width = n;
    if (is_missing(c, s, n)) return;
    c->n_val++;
    long long iv;
    if (c->int_ok && !is_int(s)) c->int_ok = 0;
    if (!c->int_ok && c->num_ok && !is_num(s)) c->num_ok = 0;
    /* 1e999 or 1e-999 would be read as Inf (a missing value) or 0: noted in the copy's header (TAB_RANGE_KEY), for
     * the catalog reader to refuse if the column is a feature; a column only carried along keeps it */
    if (!c->int_ok && c->num_ok && !c->range_line && strpbrk(s, "eEpP")) {
        errno = 0;
        (void)strtod(s, NULL);
        if (errno == ERANGE) {  /* overflow, or underflow to 0 or a subnormal */
            c->range_line = tabc_line(cv);
            snprintf(c->range_val, sizeof c->range_val, "%s", s);
        }
    }
    int bad = (c->decl == K_INT && !c->int_ok) || ((c->decl == K_FLOAT64 || c->decl == K_FLOAT32) && !c->num_ok) ||
              (c->decl == K_BOOL && !parse_bool(s, &iv));
    if (bad)
        cv->rc = ody_fail(cv->err, ODY_EINPUT, "%s:%ld: column '%s' is declared %s but holds '%.40s' — fix the value "
                          "or the column's datatype in the header", cv->file, tabc_line(cv), c->name, c->decl_name, s);
}

/* Pass 2: the value into the chunk buffer. */
static void put_value(col *c, long r, const char *s, size_t n)
{
    int miss = is_missing(c, s, n);
    switch (c->k) {
    case K_INT:
        if (miss || !parse_int(s, &c->i[r])) c->i[r] = INT64_MIN;
        break;
    case K_BOOL:
        if (miss || !parse_bool(s, &c->i[r])) c->i[r] = INT64_MIN;
        break;
    case K_FLOAT64:
    case K_FLOAT32:
        if (miss || !parse_num(s, &c->d[r])) c->d[r] = NAN;
        break;
    default: {
        char *p = c->s + (size_t)r * (c->width + 1);
        if (n > c->width) n = c->width;
        if (n) memcpy(p, s, n);
        p[n] = 0;
        c->sp[r] = p;
    }
    }
}

void tabc_field(conv *cv, const char *s, size_t n)
{
    if (cv->rc) return;
    const char *t = s ? s : "";
    if (!s) n = 0;
    if (n && memchr(t, 0, n)) {  /* a value would end there, silently: the file is not text at this place */
        cv->rc = ody_fail(cv->err, ODY_EINPUT, "%s:%ld: a NUL byte inside field %d — the file is corrupt or binary "
                          "there; re-export the table", cv->file, tabc_line(cv), cv->field + 1);
        return;
    }
    if (cv->header) {
        if (cv->pass == 1) tabc_add_column(cv, t, n);
    } else if (cv->field < cv->ncol && cv->pass == 1) scan_value(cv, &cv->c[cv->field], t, n);
    else if (cv->field < cv->ncol) put_value(&cv->c[cv->field], cv->n_chunk, t, n);
    cv->field++;
}

static int flush(conv *cv);
static int ecsv_match(conv *cv);

int tabc_header_done(conv *cv)
{
    for (int a = 0; a < cv->ncol; a++)
        for (int b = 0; b < a; b++)
            if (!strcasecmp(cv->c[a].name, cv->c[b].name))
                return ody_fail(cv->err, ODY_EINPUT, "%s:%ld: column '%s' appears twice (columns %d and %d) — "
                                "rename one", cv->file, cv->xml_line ? cv->xml_line : cv->hdr_line, cv->c[a].name, b + 1, a + 1);
    return 0;
}

void tabc_record(conv *cv)
{
    if (cv->rc) return;
    if (cv->header) {
        cv->header = 0;
        cv->field = 0;
        if (cv->pass == 1) cv->rc = tabc_header_done(cv);
        if (cv->pass == 1 && !cv->rc && cv->fmt == TAB_ECSV) cv->rc = ecsv_match(cv);
        return;
    }
    if (cv->field != cv->ncol) {
        cv->rc = cv->xml_line ? ody_fail(cv->err, ODY_EINPUT, "%s:%ld: a row of %d cells where the table has %d FIELDs",
                                         cv->file, cv->xml_line, cv->field, cv->ncol)
                              : ody_fail(cv->err, ODY_EINPUT, "%s:%ld: %d field%s where the header line (%ld) names %d "
                                         "columns — check the delimiter and the quoting there", cv->file, tabc_line(cv),
                                         cv->field, cv->field == 1 ? "" : "s", cv->hdr_line, cv->ncol);
        return;
    }
    cv->field = 0;
    cv->row++;
    if (cv->pass == 2 && ++cv->n_chunk == cv->chunk) cv->rc = flush(cv);
}

static void on_field(void *s, size_t n, void *data)
{
    tabc_field(data, s, n);
}

static void on_record(int term, void *data)
{
    (void)term;
    tabc_record(data);
}

/* libcsv grows its field buffer with this: one field may not pass
 * TAB_MAX_FIELD, so a binary file or a missing quote cannot take the memory. */
static void *capped_realloc(void *p, size_t n)
{
    return n > TAB_MAX_FIELD + 1024 ? NULL : realloc(p, n);
}

static int no_space(unsigned char ch)
{
    (void)ch;
    return 0;
}

/* ================================================================ reading the text */

/* Skips a UTF-8 BOM and the '#' lines before the table; for ECSV, keeps them
 * (without the "# ") as YAML, the first line blanked so YAML's line numbers
 * are the file's. */
static int read_preamble(conv *cv, gzFile gz, char **yaml)
{
    unsigned char bom[3];
    if (gzread(gz, bom, 3) != 3 || bom[0] != 0xef || bom[1] != 0xbb || bom[2] != 0xbf) gzrewind(gz);
    size_t cap = 0, len = 0;
    char line[4096];
    cv->hdr_line = 1;
    int ch;
    for (; (ch = gzgetc(gz)) == '#'; cv->hdr_line++) {
        gzungetc(ch, gz);
        int first = 1;
        do {  /* one line, in pieces of the buffer */
            if (!gzgets(gz, line, sizeof line)) break;
            const char *t = line;
            if (first) t += line[1] == ' ' ? 2 : 1;
            if (first && cv->hdr_line == 1) t = "\n";
            first = 0;
            size_t n = strlen(t);
            if (!yaml) continue;
            if (len + n + 1 > TAB_MAX_HEADER)
                return ody_fail(cv->err, ODY_EINPUT, "%s:%ld: over %d bytes of '#' header lines — is this the "
                                "table you meant?", cv->file, cv->hdr_line, TAB_MAX_HEADER);
            if (len + n + 1 > cap) {
                cap = 2 * (len + n + 1) + 4096;
                char *g = realloc(*yaml, cap);
                if (!g) return ody_fail(cv->err, ODY_ENOMEM, "out of memory reading %s", cv->file);
                *yaml = g;
            }
            memcpy(*yaml + len, t, n + 1);
            len += n;
        } while (!strchr(line, '\n'));
    }
    if (ch != -1) gzungetc(ch, gz);  /* put back the table's first byte */
    return 0;
}

/* The delimiter of a CSV file from its header line: ',' unless the line has
 * none and has tabs (TSV) or semicolons. */
static char sniff_delim(const char *b, size_t n)
{
    size_t e = 0;
    int comma = 0, tab = 0, semi = 0;
    while (e < n && b[e] != '\n') {
        comma += b[e] == ',';
        tab += b[e] == '\t';
        semi += b[e] == ';';
        e++;
    }
    return comma ? ',' : tab ? '\t' : semi ? ';' : ',';
}

/* One pass over the table: the preamble, then every record through libcsv. */
static int run_pass(conv *cv, char **yaml)
{
    gzFile gz;
    int rc = tabc_open_text(cv->file, &gz, cv->err);
    if (rc) return rc;
    struct csv_parser p;
    char *buf = malloc(TAB_BLOCK);
    if (!buf || csv_init(&p, CSV_STRICT | CSV_STRICT_FINI | CSV_APPEND_NULL | CSV_EMPTY_IS_NULL)) {
        free(buf);
        gzclose(gz);
        return ody_fail(cv->err, ODY_ENOMEM, "out of memory reading %s", cv->file);
    }
    csv_set_realloc_func(&p, capped_realloc);
    cv->header = 1;
    cv->field = 0;
    cv->row = 0;
    rc = read_preamble(cv, gz, cv->pass == 1 ? yaml : NULL);
    int first = 1;
    while (!rc && !cv->rc) {
        int n = gzread(gz, buf, TAB_BLOCK);
        if (n < 0) {
            int zerr;
            const char *why = gzerror(gz, &zerr);
            rc = ody_fail(cv->err, ODY_EINPUT, "%s: cannot read past line %ld (%s) — the file is damaged or "
                          "truncated; download it again", cv->file, tabc_line(cv), why);
            break;
        }
        if (n == 0) break;
        if (first && cv->pass == 1 && cv->fmt == TAB_CSV) cv->delim = sniff_delim(buf, (size_t)n);
        if (first) {
            csv_set_delim(&p, (unsigned char)cv->delim);
            if (cv->delim == ' ' || cv->delim == '\t') csv_set_space_func(&p, no_space);
        }
        first = 0;
        if (csv_parse(&p, buf, (size_t)n, on_field, on_record, cv) != (size_t)n && !cv->rc)
            rc = csv_error(&p) == CSV_EPARSE
                     ? ody_fail(cv->err, ODY_EINPUT, "%s:%ld: a stray quote — a quoted field must end with a quote "
                                "followed by the delimiter, and a quote inside it is written \"\"", cv->file, tabc_line(cv))
                     : ody_fail(cv->err, ODY_EINPUT, "%s:%ld: a field over %d bytes — is this a text table? (a binary "
                                "file, or a quote never closed)", cv->file, tabc_line(cv), TAB_MAX_FIELD);
    }
    if (!rc && !cv->rc && csv_fini(&p, on_field, on_record, cv) && !cv->rc)
        rc = ody_fail(cv->err, ODY_EINPUT, "%s:%ld: an unclosed quote runs to the end of the file — close it "
                      "(a quote inside a quoted field is written \"\")", cv->file, tabc_line(cv));
    csv_free(&p);
    free(buf);
    gzclose(gz);
    if (!rc && !cv->rc && cv->header)
        rc = ody_fail(cv->err, ODY_EINPUT, "%s: no header line with the column names — the first line that "
                      "does not start with '#' must name the columns", cv->file);
    return rc ? rc : cv->rc;
}

/* ================================================================ ECSV header */

static kind ecsv_kind(const char *t)
{
    if (!strncmp(t, "int", 3) || (!strncmp(t, "uint", 4) && strcmp(t, "uint64"))) return K_INT;
    if (!strcmp(t, "uint64") || !strcmp(t, "float64") || !strcmp(t, "float128")) return K_FLOAT64;
    if (!strcmp(t, "float16") || !strcmp(t, "float32")) return K_FLOAT32;
    if (!strcmp(t, "bool")) return K_BOOL;
    if (!strcmp(t, "string")) return K_STRING;
    return K_NONE;
}

static int ecsv_column(conv *cv, col *c, const yt_node *m)
{
    char at[256];
    yt_where(at, sizeof at, m);
    const yt_node *nm = yt_get(m, "name"), *dt = yt_get(m, "datatype"), *u = yt_get(m, "unit"),
                  *ds = yt_get(m, "description");
    if (m->kind != YT_MAP || !nm || nm->kind != YT_SCALAR || !dt || dt->kind != YT_SCALAR)
        return ody_fail(cv->err, ODY_EINPUT, "%s: a datatype entry without a name and a datatype — is the ECSV "
                        "header intact?", at);
    if (yt_get(m, "subtype"))
        return ody_fail(cv->err, ODY_EINPUT, "%s: column '%s' has a subtype (an array in each cell), which oddsky "
                        "does not read yet — write its elements as separate columns", at, nm->val);
    if ((c->decl = ecsv_kind(dt->val)) == K_NONE)
        return ody_fail(cv->err, ODY_EINPUT, "%s: column '%s' has datatype '%s', which oddsky does not read — use "
                        "bool, int8..int64, uint8..uint64, float16..float64 or string", at, nm->val, dt->val);
    snprintf(c->decl_name, sizeof c->decl_name, "%s", dt->val);
    if ((u && u->kind == YT_SCALAR && !(c->unit = strdup(u->val))) ||
        (ds && ds->kind == YT_SCALAR && !(c->desc = strdup(ds->val))))
        return ody_fail(cv->err, ODY_ENOMEM, "out of memory reading %s", cv->file);
    return 0;
}

/* Reads the declared columns from the YAML header; checks them against the
 * column names the table's first line gives (pass 1 has read that line). */
static int ecsv_header(conv *cv, const char *yaml, col **decl, int *ndecl)
{
    yt_node *root = NULL;
    int rc = yt_parse(yaml, strlen(yaml), cv->file, &root, cv->err);
    if (rc) return rc;
    const yt_node *dt = root ? yt_get(root, "datatype") : NULL, *dl = root ? yt_get(root, "delimiter") : NULL;
    cv->delim = ' ';
    if (dl && dl->kind == YT_SCALAR) cv->delim = dl->val[0] ? dl->val[0] : ' ';
    if (!dt || dt->kind != YT_SEQ)
        rc = ody_fail(cv->err, ODY_EINPUT, "%s: the ECSV header has no `datatype:` list — is the header intact?",
                      cv->file);
    int n = 0;
    for (const yt_node *m = dt && !rc ? dt->child : NULL; m; m = m->next) n++;
    *decl = calloc((size_t)(n ? n : 1), sizeof **decl);
    if (!rc && !*decl) rc = ody_fail(cv->err, ODY_ENOMEM, "out of memory reading %s", cv->file);
    int k = 0;
    for (const yt_node *m = dt && !rc ? dt->child : NULL; m && !rc; m = m->next, k++) {
        rc = ecsv_column(cv, &(*decl)[k], m);
        const yt_node *nm = rc ? NULL : yt_get(m, "name");
        if (nm) snprintf((*decl)[k].name, sizeof (*decl)[k].name, "%s", nm->val);
    }
    *ndecl = k;
    yt_free(root);
    return rc;
}

static int ecsv_match(conv *cv)
{
    col *decl = cv->decl;
    int ndecl = cv->ndecl;
    if (ndecl != cv->ncol)
        return ody_fail(cv->err, ODY_EINPUT, "%s:%ld: the header line names %d columns, the ECSV header declares %d — "
                        "they must agree", cv->file, cv->hdr_line, cv->ncol, ndecl);
    for (int j = 0; j < ndecl; j++) {
        if (strcmp(decl[j].name, cv->c[j].name))
            return ody_fail(cv->err, ODY_EINPUT, "%s:%ld: column %d is '%s' in the header line but '%s' in the ECSV "
                            "header — they must agree", cv->file, cv->hdr_line, j + 1, cv->c[j].name, decl[j].name);
        cv->c[j].decl = decl[j].decl;
        memcpy(cv->c[j].decl_name, decl[j].decl_name, sizeof decl[j].decl_name);
        cv->c[j].unit = decl[j].unit;
        cv->c[j].desc = decl[j].desc;
        decl[j].unit = decl[j].desc = NULL;
    }
    return 0;
}

/* ================================================================ writing FITS */

static void cols_free(conv *cv)
{
    for (int j = 0; cv->c && j < cv->ncol; j++) {
        col *c = &cv->c[j];
        free(c->unit);
        free(c->desc);
        free(c->null_tok);
        free(c->d);
        free(c->i);
        free(c->s);
        free(c->sp);
    }
    free(cv->c);
    cv->c = NULL;
}

static int write_fail(conv *cv, int status)
{
    return ody_fits_fail(cv->err, status, cv->tmp, "writing the FITS copy of the text table",
                         "set TMPDIR to a folder on a disk with room for a binary copy of the table");
}

static int flush(conv *cv)
{
    int status = 0;
    long long first = (long long)cv->row - cv->n_chunk + 1;
    for (int j = 0; j < cv->ncol && !status; j++) {
        col *c = &cv->c[j];
        if (c->k == K_INT || c->k == K_BOOL) fits_write_col(cv->out, TLONGLONG, j + 1, first, 1, cv->n_chunk, c->i, &status);
        else if (c->k == K_STRING) fits_write_col(cv->out, TSTRING, j + 1, first, 1, cv->n_chunk, c->sp, &status);
        else fits_write_col(cv->out, TDOUBLE, j + 1, first, 1, cv->n_chunk, c->d, &status);
    }
    cv->n_chunk = 0;
    return status ? write_fail(cv, status) : 0;
}

/* Settles each column's type from pass 1 and allocates its chunk buffer. */
static int settle(conv *cv)
{
    /* A chunk is written a column at a time, so its rows should fit
     * CFITSIO's I/O buffers (40 x 2880 bytes), or every column's write
     * evicts the last: about 100 kB of FITS rows. */
    size_t fits_row = 0;
    for (int j = 0; j < cv->ncol; j++) {
        const col *c = &cv->c[j];
        fits_row += c->decl == K_STRING || (!c->decl && c->n_val && !c->num_ok) ? c->width : 8;
    }
    cv->chunk = (long)(100000 / (fits_row ? fits_row : 1));
    if (cv->chunk > TAB_CHUNK) cv->chunk = TAB_CHUNK;
    if (cv->chunk < 1) cv->chunk = 1;
    size_t nb = (size_t)cv->chunk;
    for (int j = 0; j < cv->ncol; j++) {
        col *c = &cv->c[j];
        c->k = c->decl ? c->decl : c->n_val == 0 ? K_FLOAT64 : c->int_ok ? K_INT : c->num_ok ? K_FLOAT64 : K_STRING;
        if (c->width == 0) c->width = 1;
        if (c->k == K_INT || c->k == K_BOOL) c->i = malloc(nb * sizeof *c->i);
        else if (c->k == K_STRING) {
            c->s = malloc(nb * (c->width + 1));
            c->sp = malloc(nb * sizeof *c->sp);
        } else c->d = malloc(nb * sizeof *c->d);
        if (!c->i && !c->d && (!c->s || !c->sp))
            return ody_fail(cv->err, ODY_ENOMEM, "out of memory reading %s (column '%s' is %zu bytes wide)", cv->file,
                            c->name, c->width);
    }
    return 0;
}

static int create_fits(conv *cv)
{
    const char *dir = getenv("TMPDIR");
    if (!dir || !dir[0]) dir = "/tmp";
    size_t n = strlen(dir) + 32;
    if (!(cv->tmp = malloc(n))) return ody_fail(cv->err, ODY_ENOMEM, "out of memory");
    snprintf(cv->tmp, n, "%s/oddsky-XXXXXX.fits", dir);
    int fd = mkstemps(cv->tmp, 5);
    if (fd < 0) {
        int e = errno;
        free(cv->tmp);
        cv->tmp = NULL;
        return ody_fail(cv->err, ODY_EIO, "%s: cannot create a temporary file in %s to convert it: %s — set TMPDIR "
                        "to a writable folder", cv->file, dir, strerror(e));
    }
    close(fd);
    char **ttype = calloc((size_t)cv->ncol, sizeof *ttype), **tform = calloc((size_t)cv->ncol, sizeof *tform);
    char *forms = calloc((size_t)cv->ncol, 24);
    int status = 0;
    if (!ttype || !tform || !forms) status = MEMORY_ALLOCATION;
    for (int j = 0; !status && j < cv->ncol; j++) {
        const col *c = &cv->c[j];
        ttype[j] = (char *)c->name;
        tform[j] = forms + 24 * j;
        if (c->k == K_STRING) snprintf(tform[j], 24, "%zuA", c->width);
        else snprintf(tform[j], 24, "%s", c->k == K_INT || c->k == K_BOOL ? "K" : c->k == K_FLOAT32 ? "E" : "D");
    }
    unlink(cv->tmp);  /* mkstemp's empty file: created anew, its name taken literally */
    if (!status) ody_fits_create(&cv->out, cv->tmp, &status);
    if (!status) fits_create_tbl(cv->out, BINARY_TBL, (LONGLONG)cv->row, cv->ncol, ttype, tform, NULL, "TABLE", &status);
    for (int j = 0; !status && j < cv->ncol; j++) {
        const col *c = &cv->c[j];
        char key[16];
        snprintf(key, sizeof key, "TNULL%d", j + 1);
        if (c->k == K_INT || c->k == K_BOOL) fits_write_key_lng(cv->out, key, INT64_MIN, "missing value", &status);
        snprintf(key, sizeof key, "TUNIT%d", j + 1);
        if (c->unit && c->unit[0]) fits_write_key_str(cv->out, key, c->unit, "from the table's header", &status);
        snprintf(key, sizeof key, "TCOMM%d", j + 1);
        if (c->desc && c->desc[0]) fits_write_key_longstr(cv->out, key, c->desc, "", &status);
    }
    for (int j = 0, k = 0; !status && j < cv->ncol; j++) {
        const col *c = &cv->c[j];
        if (!c->range_line || (c->k != K_FLOAT64 && c->k != K_FLOAT32)) continue;
        char key[16], val[160];
        snprintf(key, sizeof key, TAB_RANGE_KEY "%d", ++k);
        snprintf(val, sizeof val, "%ld|%s|%s", c->range_line, c->range_val, c->name);
        fits_write_key_longstr(cv->out, key, val, "line|value no double holds|column (TAB_RANGE_KEY)", &status);
    }
    if (!status) fits_write_key_longstr(cv->out, "ORIGFILE", cv->file, "the text table this was read from", &status);
    if (!status) fits_write_key_str(cv->out, "ORIGFMT", cv->fmt == TAB_ECSV ? "ECSV" : cv->fmt == TAB_VOTABLE ? "VOTable" : "CSV",
                                      "its format", &status);
    if (!status && cv->fmt != TAB_VOTABLE)  /* row r came from line HDRLINE + r (one line a row) */
        fits_write_key_lng(cv->out, "HDRLINE", cv->hdr_line, "line of the column names in ORIGFILE", &status);
    if (!status) fits_set_hdustruc(cv->out, &status);  /* take the TNULLn just written */
    free(ttype);
    free(tform);
    free(forms);
    return status ? write_fail(cv, status) : 0;
}

int tab_to_fits(const char *file, tab_format fmt, char **tmp, ody_err *err)
{
    *tmp = NULL;
    conv cv = {.file = file, .fmt = fmt, .err = err, .pass = 1, .delim = ','};
    char *yaml = NULL;
    int rc = 0;
    if (fmt == TAB_ECSV) {  /* the header first: it says the delimiter */
        gzFile gz;
        rc = tabc_open_text(file, &gz, err);
        if (!rc) {
            rc = read_preamble(&cv, gz, &yaml);
            gzclose(gz);
        }
        if (!rc) rc = ecsv_header(&cv, yaml ? yaml : "", &cv.decl, &cv.ndecl);
    }
    if (fmt == TAB_VOTABLE) cv.header = 0;  /* its columns come from FIELDs */
    if (!rc) rc = fmt == TAB_VOTABLE ? tab_vot_pass(&cv) : run_pass(&cv, NULL);
    if (!rc) rc = settle(&cv);
    if (!rc) rc = create_fits(&cv);
    cv.pass = 2;
    if (!rc) rc = fmt == TAB_VOTABLE ? tab_vot_pass(&cv) : run_pass(&cv, NULL);
    if (!rc && cv.n_chunk) rc = flush(&cv);
    int status = 0;
    if (cv.out) {
        if (rc) ody_fits_close(cv.out);
        else if (fits_close_file(cv.out, &status)) rc = write_fail(&cv, status);
    }
    if (rc && cv.tmp) {
        unlink(cv.tmp);
        free(cv.tmp);
        cv.tmp = NULL;
    }
    *tmp = cv.tmp;
    cols_free(&cv);
    for (int j = 0; j < cv.ndecl; j++) {
        free(cv.decl[j].unit);
        free(cv.decl[j].desc);
    }
    free(cv.decl);
    free(yaml);
    return rc;
}

int tab_range_check(fitsfile *f, const char *file, int (*is_used)(const void *ctx, const char *column),
                    const void *ctx, ody_err *err)
{
    for (int k = 1;; k++) {
        char key[16], *val = NULL;
        int status = 0;
        snprintf(key, sizeof key, TAB_RANGE_KEY "%d", k);
        if (fits_read_key_longstr(f, key, &val, NULL, &status)) {  /* no (more) notes: a FITS catalog has none */
            fits_clear_errmsg();
            return 0;
        }
        char *v = strchr(val, '|'), *name = v ? strchr(v + 1, '|') : NULL;
        int rc = 0;
        if (name && is_used(ctx, name + 1)) {
            *name = 0;
            rc = ody_fail(err, ODY_EINPUT, "%.*s:%ld: column '%s' holds %s, beyond what a double holds (about "
                          "2.2e-308 to 1.8e308 in size) — fix the value, or leave it empty where nothing was measured",
                          (int)ody_fits_file_len(file), file, strtol(val, NULL, 10), name + 1, v + 1);
        }
        fits_free_memory(val, &status);
        if (rc) return rc;
    }
}

int tab_resolve(const char *path, tab_format fmt, char **fits_path, char **tmp, ody_err *err)
{
    *fits_path = *tmp = NULL;
    size_t base = ody_fits_file_len(path);
    char *file = strndup(path, base);
    if (!file) return ody_fail(err, ODY_ENOMEM, "out of memory");
    int rc = 0;
    /* only a regular file is looked into: opening a pipe would block, and
     * the FITS checks name what is wrong with anything else */
    struct stat st;
    if (fmt == TAB_AUTO && stat(file, &st) == 0 && S_ISREG(st.st_mode) && access(file, R_OK) == 0) {
        rc = tab_detect(file, &fmt, err);
        static const char *const yaml[] = {".yaml", ".yml", NULL};
        if (!rc && fmt == TAB_CSV && tab_named(file, yaml))  /* read as CSV it was "a stray quote" at a line of the config */
            rc = ody_fail(err, ODY_EINPUT, "%s: a YAML file (a config?), not a table — give the catalog it names in "
                          "catalog.path, or check the config with `oddsky check %s`", file, file);
        else if (!rc && fmt != TAB_FITS && tab_format_by_name(file) == TAB_FITS)
            rc = ody_fail(err, ODY_EINPUT, "%s: named like a FITS file but is text, not FITS — if it is a %s table "
                          "set `catalog.format: %s`; else it is damaged: download it again", file,
                          fmt == TAB_ECSV ? "ECSV" : fmt == TAB_VOTABLE ? "VOTable" : "CSV", tab_format_name(fmt));
    }
    char *t = NULL;
    if (!rc && fmt != TAB_AUTO && fmt != TAB_FITS && !(rc = tab_to_fits(file, fmt, &t, err))) {
        size_t n = strlen(t) + strlen(path + base) + 4;
        if (!(*fits_path = malloc(n))) {
            unlink(t);
            free(t);
            rc = ody_fail(err, ODY_ENOMEM, "out of memory");
        } else {
            snprintf(*fits_path, n, "%s[1]%s", t, path + base);
            *tmp = t;
        }
    }
    free(file);
    return rc;
}
