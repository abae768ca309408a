/* tabin_vot.c — VOTable (TABLEDATA, BINARY, BINARY2) through expat, for the
 * text-table converter of tabin.c.
 *
 * The first TABLE of the file is read.  Its FIELDs declare the columns
 * (tabc_add_column, pass 1 only); every cell then goes to tabc_field as
 * text: TABLEDATA cells as written, BINARY cells decoded from base64 and
 * formatted (integers exactly, floats with enough digits to round-trip), so
 * one code path types, checks and writes every format.
 */
#define _GNU_SOURCE
#include <expat.h>
#include <math.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "tabconv.h"

typedef enum { VT_BOOL, VT_UBYTE, VT_SHORT, VT_INT, VT_LONG, VT_CHAR, VT_UCHAR, VT_FLOAT, VT_DOUBLE } vtype;

static const struct {
    const char *name;
    vtype t;
    int size;   /* bytes an element in BINARY */
    kind k;
} VTYPES[] = {
    {"boolean", VT_BOOL, 1, K_BOOL},     {"unsignedByte", VT_UBYTE, 1, K_INT}, {"short", VT_SHORT, 2, K_INT},
    {"int", VT_INT, 4, K_INT},           {"long", VT_LONG, 8, K_INT},          {"char", VT_CHAR, 1, K_STRING},
    {"unicodeChar", VT_UCHAR, 2, K_STRING}, {"float", VT_FLOAT, 4, K_FLOAT32}, {"double", VT_DOUBLE, 8, K_FLOAT64},
};

typedef struct vfield {
    vtype t;
    int size;
    int var;    /* arraysize ends in '*': a 4-byte count precedes the cells in BINARY */
    long n;     /* otherwise, the element count (1 for a scalar) */
} vfield;

typedef struct vot {
    conv *cv;
    XML_Parser xp;
    int tables, in_table, done, in_field, in_desc, in_td, in_stream, binary2, data;
    vfield *vf;
    int nvf;
    char *text;              /* a TD's or DESCRIPTION's characters */
    size_t len, cap;
    unsigned char *bin;      /* decoded BINARY bytes not yet made rows */
    size_t boff, blen, bcap;
    unsigned quad;           /* base64: bits of the current quad */
    int nq, pad;
} vot;

/* ================================================================ helpers */

static const char *local_name(const char *n)
{
    const char *c = strrchr(n, ':');
    return c ? c + 1 : n;
}

static const char *attr(const char **a, const char *name)
{
    for (; a && a[0]; a += 2)
        if (!strcmp(local_name(a[0]), name)) return a[1];
    return NULL;
}

static void fail(vot *v, int code, const char *what)
{
    if (!v->cv->rc)
        v->cv->rc = ody_fail(v->cv->err, code, "%s:%lu: %s", v->cv->file,
                             (unsigned long)XML_GetCurrentLineNumber(v->xp), what);
    XML_StopParser(v->xp, XML_FALSE);
}

static int append(vot *v, const char *s, size_t n)
{
    if (v->len + n + 1 > TAB_MAX_FIELD) {
        fail(v, ODY_EINPUT, "a cell or description over 1 MiB — is the file intact?");
        return -1;
    }
    if (v->len + n + 1 > v->cap) {
        size_t cap = 2 * (v->len + n + 1) + 256;
        char *g = realloc(v->text, cap);
        if (!g) {
            fail(v, ODY_ENOMEM, "out of memory");
            return -1;
        }
        v->text = g;
        v->cap = cap;
    }
    memcpy(v->text + v->len, s, n);
    v->len += n;
    v->text[v->len] = 0;
    return 0;
}

/* ================================================================ FIELDs */

static void add_field(vot *v, const char **a)
{
    const char *name = attr(a, "name"), *dt = attr(a, "datatype"), *as = attr(a, "arraysize");
    if (!name) name = attr(a, "ID");
    if (!name) name = "";
    char msg[400];
    size_t k = 0;
    while (k < sizeof VTYPES / sizeof *VTYPES && (!dt || strcmp(dt, VTYPES[k].name))) k++;
    if (k == sizeof VTYPES / sizeof *VTYPES) {
        snprintf(msg, sizeof msg, "FIELD '%.68s' has datatype '%.40s', which oddsky does not read — use boolean, "
                 "unsignedByte, short, int, long, float, double, char or unicodeChar", name, dt ? dt : "(none)");
        fail(v, ODY_EINPUT, msg);
        return;
    }
    vfield f = {VTYPES[k].t, VTYPES[k].size, 0, 1};
    int text = f.t == VT_CHAR || f.t == VT_UCHAR;
    if (as && text) {
        f.var = strchr(as, '*') != NULL;
        f.n = f.var ? 0 : strtol(as, NULL, 10);
        if (!f.var && (f.n < 1 || f.n > TAB_MAX_FIELD / f.size)) {
            fail(v, ODY_EINPUT, "a char FIELD's arraysize must be a count from 1, or end in '*'");
            return;
        }
    } else if (as && strcmp(as, "1")) {
        snprintf(msg, sizeof msg, "FIELD '%.68s' holds arrays (arraysize=\"%.20s\"), which oddsky does not read yet "
                 "— write its elements as separate FIELDs", name, as);
        fail(v, ODY_EINPUT, msg);
        return;
    }
    vfield *g = realloc(v->vf, (size_t)(v->nvf + 1) * sizeof *g);
    if (!g) { fail(v, ODY_ENOMEM, "out of memory"); return; }
    v->vf = g;
    v->vf[v->nvf++] = f;
    if (v->cv->pass != 1) return;
    col *c = tabc_add_column(v->cv, name, strlen(name));
    if (!c) { fail(v, v->cv->rc, ""); return; }
    c->decl = VTYPES[k].k;
    snprintf(c->decl_name, sizeof c->decl_name, "%s", dt);
    const char *u = attr(a, "unit");
    if (u && !(c->unit = strdup(u))) fail(v, ODY_ENOMEM, "out of memory");
}

/* ================================================================ BINARY rows */

static uint64_t be(const unsigned char *p, int n)
{
    uint64_t x = 0;
    for (int k = 0; k < n; k++) x = x << 8 | p[k];
    return x;
}

/* Bytes of the row starting at p, or 0 when fewer than n are there yet. */
static size_t row_size(const vot *v, const unsigned char *p, size_t n)
{
    size_t off = v->binary2 ? (size_t)(v->nvf + 7) / 8 : 0;
    for (int j = 0; j < v->nvf; j++) {
        uint64_t cnt = (uint64_t)v->vf[j].n;
        if (v->vf[j].var) {
            if (off + 4 > n) return 0;
            cnt = be(p + off, 4);
            off += 4;
        }
        if (cnt * (uint64_t)v->vf[j].size > n - (off < n ? off : n)) return 0;
        off += (size_t)cnt * (size_t)v->vf[j].size;
    }
    return off <= n ? off : 0;
}

/* One cell of a BINARY row as text for tabc_field. */
static void binary_cell(vot *v, const vfield *f, const unsigned char *p, uint64_t cnt)
{
    char buf[64];
    const char *s = buf;
    size_t n = 0;
    double x;
    switch (f->t) {
    case VT_CHAR:
        n = strnlen((const char *)p, (size_t)cnt);
        tabc_field(v->cv, (const char *)p, n);
        return;
    case VT_UCHAR:  /* UCS-2 to UTF-8; the converter copies the text */
        v->len = 0;
        for (uint64_t k = 0; k < cnt; k++) {
            unsigned u = (unsigned)be(p + 2 * k, 2);
            char e[3] = {(char)u, 0, 0};
            if (!u) break;
            if (u >= 0x80 && u < 0x800) e[0] = (char)(0xc0 | u >> 6), e[1] = (char)(0x80 | (u & 0x3f));
            else if (u >= 0x800) e[0] = '?';
            if (append(v, e, strlen(e))) return;
        }
        tabc_field(v->cv, v->len ? v->text : NULL, v->len);
        return;
    case VT_BOOL:
        s = strchr("Tt1", p[0]) && p[0] ? "true" : strchr("Ff0", p[0]) && p[0] ? "false" : NULL;
        tabc_field(v->cv, s, s ? strlen(s) : 0);
        return;
    case VT_UBYTE: n = (size_t)snprintf(buf, sizeof buf, "%u", p[0]); break;
    case VT_SHORT: n = (size_t)snprintf(buf, sizeof buf, "%d", (int16_t)be(p, 2)); break;
    case VT_INT: n = (size_t)snprintf(buf, sizeof buf, "%d", (int32_t)be(p, 4)); break;
    case VT_LONG: n = (size_t)snprintf(buf, sizeof buf, "%lld", (long long)(int64_t)be(p, 8)); break;
    case VT_FLOAT: {
        uint32_t b = (uint32_t)be(p, 4);
        float y;
        memcpy(&y, &b, 4);
        x = y;
        if (isnan(x)) { tabc_field(v->cv, NULL, 0); return; }
        n = (size_t)snprintf(buf, sizeof buf, "%.9g", x);
        break;
    }
    case VT_DOUBLE: {
        uint64_t b = be(p, 8);
        memcpy(&x, &b, 8);
        if (isnan(x)) { tabc_field(v->cv, NULL, 0); return; }
        n = (size_t)snprintf(buf, sizeof buf, "%.17g", x);
        break;
    }
    }
    tabc_field(v->cv, s, n);
}

static void binary_row(vot *v, const unsigned char *p)
{
    size_t off = v->binary2 ? (size_t)(v->nvf + 7) / 8 : 0;
    for (int j = 0; j < v->nvf && !v->cv->rc; j++) {
        const vfield *f = &v->vf[j];
        uint64_t cnt = (uint64_t)f->n;
        if (f->var) {
            cnt = be(p + off, 4);
            off += 4;
        }
        if (v->binary2 && (p[j / 8] >> (7 - j % 8) & 1)) tabc_field(v->cv, NULL, 0);
        else binary_cell(v, f, p + off, cnt);
        off += (size_t)cnt * (size_t)f->size;
    }
    v->cv->xml_line = (long)XML_GetCurrentLineNumber(v->xp);
    tabc_record(v->cv);
}

static void binary_rows(vot *v)
{
    size_t sz;
    while (!v->cv->rc && (sz = row_size(v, v->bin + v->boff, v->blen - v->boff)) > 0) {
        binary_row(v, v->bin + v->boff);
        v->boff += sz;
    }
    if (v->cv->rc) XML_StopParser(v->xp, XML_FALSE);
    if (v->blen - v->boff > TAB_MAX_FIELD + 4 * (size_t)v->nvf) {
        fail(v, ODY_EINPUT, "a BINARY row over 1 MiB — is the stream intact?");
        return;
    }
    memmove(v->bin, v->bin + v->boff, v->blen - v->boff);
    v->blen -= v->boff;
    v->boff = 0;
}

static int b64(int ch)
{
    if (ch >= 'A' && ch <= 'Z') return ch - 'A';
    if (ch >= 'a' && ch <= 'z') return ch - 'a' + 26;
    if (ch >= '0' && ch <= '9') return ch - '0' + 52;
    return ch == '+' ? 62 : ch == '/' ? 63 : ch == '=' ? 64 : ch == ' ' || ch == '\n' || ch == '\r' || ch == '\t' ? 65 : -1;
}

static void stream_chars(vot *v, const char *s, int n)
{
    if (v->blen + (size_t)n > v->bcap) {
        size_t cap = 2 * (v->blen + (size_t)n) + 4096;
        unsigned char *g = realloc(v->bin, cap);
        if (!g) { fail(v, ODY_ENOMEM, "out of memory"); return; }
        v->bin = g;
        v->bcap = cap;
    }
    for (int k = 0; k < n; k++) {
        int d = b64((unsigned char)s[k]);
        if (d < 0) { fail(v, ODY_EINPUT, "a character that is not base64 in a STREAM — is the file intact?"); return; }
        if (d == 65) continue;
        if (d == 64) {
            v->pad++;
            d = 0;
        } else if (v->pad) { fail(v, ODY_EINPUT, "base64 data after the padding of a STREAM"); return; }
        v->quad = v->quad << 6 | (unsigned)d;
        if (++v->nq < 4) continue;
        unsigned char b[3] = {(unsigned char)(v->quad >> 16), (unsigned char)(v->quad >> 8), (unsigned char)v->quad};
        int keep = 3 - (v->pad > 2 ? 2 : v->pad);
        memcpy(v->bin + v->blen, b, (size_t)keep);
        v->blen += (size_t)keep;
        v->nq = 0;
        v->quad = 0;
    }
    binary_rows(v);
}

/* ================================================================ expat */

static void on_start(void *data, const char *name, const char **a)
{
    vot *v = data;
    const char *n = local_name(name);
    if (v->done || v->cv->rc) return;
    if (!strcmp(n, "TABLE")) v->in_table = ++v->tables == 1;
    if (!v->in_table) return;
    if (!strcmp(n, "FIELD") && !v->data) {
        v->in_field = 1;
        add_field(v, a);
    } else if (!strcmp(n, "DESCRIPTION") && v->in_field) {
        v->in_desc = 1;
        v->len = 0;
    } else if (!strcmp(n, "VALUES") && v->in_field && v->cv->pass == 1 && attr(a, "null")) {
        col *c = &v->cv->c[v->cv->ncol - 1];
        if (!c->null_tok && !(c->null_tok = strdup(attr(a, "null")))) fail(v, ODY_ENOMEM, "out of memory");
    } else if (!strcmp(n, "DATA")) {
        v->data = 1;
        if (!v->nvf) fail(v, ODY_EINPUT, "a TABLE without FIELDs");
        else if (v->cv->pass == 1 && (v->cv->rc = tabc_header_done(v->cv))) XML_StopParser(v->xp, XML_FALSE);
    } else if (!strcmp(n, "TD")) {
        v->in_td = 1;
        v->len = 0;
    } else if (!strcmp(n, "BINARY2")) {
        v->binary2 = 1;
    } else if (!strcmp(n, "STREAM")) {
        if (attr(a, "href")) {
            fail(v, ODY_EINPUT, "the table's data is in another file (STREAM href) — download that file, or save "
                        "the table with its data inline (TOPCAT: votable-binary-inline)");
            return;
        }
        const char *enc = attr(a, "encoding");
        if (!enc || strcmp(enc, "base64")) { fail(v, ODY_EINPUT, "a STREAM that is not base64-encoded"); return; }
        v->in_stream = 1;
    } else if (!strcmp(n, "FITS")) {
        fail(v, ODY_EINPUT, "a VOTable whose data is a FITS file — read that FITS file instead");
    }
}

static void on_end(void *data, const char *name)
{
    vot *v = data;
    const char *n = local_name(name);
    if (v->done || !v->in_table || v->cv->rc) return;
    conv *cv = v->cv;
    if (!strcmp(n, "TD")) {
        v->in_td = 0;
        cv->xml_line = (long)XML_GetCurrentLineNumber(v->xp);
        tabc_field(cv, v->len ? v->text : NULL, v->len);
    } else if (!strcmp(n, "TR")) {
        cv->xml_line = (long)XML_GetCurrentLineNumber(v->xp);
        tabc_record(cv);
    } else if (!strcmp(n, "FIELD")) {
        v->in_field = 0;
    } else if (!strcmp(n, "DESCRIPTION") && v->in_desc) {
        v->in_desc = 0;
        col *c = cv->pass == 1 && cv->ncol ? &cv->c[cv->ncol - 1] : NULL;
        const char *t = v->text ? v->text : "";
        size_t a = 0, b = v->len;  /* without the indentation around it */
        while (a < b && strchr(" \t\r\n", t[a])) a++;
        while (b > a && strchr(" \t\r\n", t[b - 1])) b--;
        if (c && !c->desc && !(c->desc = strndup(t + a, b - a))) fail(v, ODY_ENOMEM, "out of memory");
    } else if (!strcmp(n, "STREAM")) {
        v->in_stream = 0;
        if (v->nq || v->blen) fail(v, ODY_EINPUT, "a BINARY stream that ends inside a row — the file is truncated");
    } else if (!strcmp(n, "TABLE")) {
        v->done = 1;
        XML_StopParser(v->xp, XML_FALSE);  /* the rest of the file is not needed */
    }
    if (cv->rc) XML_StopParser(v->xp, XML_FALSE);
}

static void on_chars(void *data, const char *s, int n)
{
    vot *v = data;
    if (v->cv->rc) return;
    if (v->in_td || v->in_desc) append(v, s, (size_t)n);
    else if (v->in_stream) stream_chars(v, s, n);
}

/* A document type with entities could expand without bound: refused. */
static void on_entity(void *data, const char *name, int pe, const char *value, int vlen, const char *base,
                      const char *sys, const char *pub, const char *notation)
{
    (void)name, (void)pe, (void)value, (void)vlen, (void)base, (void)sys, (void)pub, (void)notation;
    fail(data, ODY_EINPUT, "an entity declaration (in a DOCTYPE) — VOTables need none, and it is refused: remove the DOCTYPE or export the table again");
}

int tab_vot_pass(conv *cv)
{
    gzFile gz;
    int rc = tabc_open_text(cv->file, &gz, cv->err);
    if (rc) return rc;
    vot v = {.cv = cv, .xp = XML_ParserCreate(NULL)};
    char *buf = malloc(TAB_BLOCK);
    if (!v.xp || !buf) rc = ody_fail(cv->err, ODY_ENOMEM, "out of memory reading %s", cv->file);
    if (!rc) {
        XML_SetUserData(v.xp, &v);
        XML_SetElementHandler(v.xp, on_start, on_end);
        XML_SetCharacterDataHandler(v.xp, on_chars);
        XML_SetEntityDeclHandler(v.xp, on_entity);
    }
    cv->row = 0;
    cv->field = 0;
    for (int last = 0; !rc && !last && !v.done && !cv->rc;) {
        int n = gzread(gz, buf, TAB_BLOCK);
        if (n < 0) {
            int z;
            rc = ody_fail(cv->err, ODY_EINPUT, "%s: cannot read it (%s) — the file is damaged or truncated",
                          cv->file, gzerror(gz, &z));
            break;
        }
        last = n == 0;
        if (XML_Parse(v.xp, buf, n, last) == XML_STATUS_ERROR && !cv->rc && !v.done)
            rc = ody_fail(cv->err, ODY_EINPUT, "%s:%lu: not well-formed XML (%s) — the file is damaged or truncated",
                          cv->file, (unsigned long)XML_GetCurrentLineNumber(v.xp),
                          XML_ErrorString(XML_GetErrorCode(v.xp)));
    }
    if (!rc && !cv->rc && !v.tables)
        rc = ody_fail(cv->err, ODY_EINPUT, "%s: no TABLE element — is this a VOTable?", cv->file);
    else if (!rc && !cv->rc && !v.done)
        rc = ody_fail(cv->err, ODY_EINPUT, "%s: the file ends inside its TABLE — it is truncated", cv->file);
    if (!rc && !cv->rc && cv->pass == 1 && !v.data) rc = tabc_header_done(cv);  /* a table without DATA: no rows */
    cv->xml_line = 0;
    if (v.xp) XML_ParserFree(v.xp);
    gzclose(gz);
    free(buf);
    free(v.vf);
    free(v.text);
    free(v.bin);
    return rc ? rc : cv->rc;
}
