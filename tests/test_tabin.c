/* test_tabin.c — CSV and ECSV tables read as catalogs. */
#include <dirent.h>
#include <fitsio.h>
#include <math.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <zlib.h>

#include "cat.h"
#include "tabin.h"
#include "testutil.h"

/* ================================================================ helpers */

static char *write_text(const char *dir, const char *name, const char *text)
{
    char *p = tu_path(dir, name);
    FILE *f = fopen(p, "wb");
    assert_non_null(f);
    fputs(text, f);
    fclose(f);
    return p;
}

/* Files in dir: the converter must leave none behind. */
static int count_files(const char *dir)
{
    DIR *d = opendir(dir);
    int n = 0;
    for (struct dirent *e; d && (e = readdir(d));) n += e->d_name[0] != '.';
    if (d) closedir(d);
    return n;
}

/* Reads path as a catalog with the given features (and ID / pass-through). */
static int read_cat(const char *path, const char *const *feat, int nf, const char *id, const char *const *pass,
                    int np, cat **c, ody_err *err)
{
    cat_opt o;
    cat_opt_init(&o);
    o.path = path;
    o.features = feat;
    o.n_features = nf;
    o.id_col = id;
    o.passthru = pass;
    o.n_passthru = np;
    o.missing = CAT_MISSING_DROP;
    return cat_read(&o, c, NULL, err);
}

/* Every call below converts into TMPDIR: point it at a fresh folder. */
static int setup(void **state)
{
    char *dir = tu_tmpdir(), *tmp = tu_path(dir, "tmp");
    char cmd[600];
    snprintf(cmd, sizeof cmd, "mkdir -p '%s'", tmp);
    if (system(cmd)) return -1;
    setenv("TMPDIR", tmp, 1);
    free(tmp);
    *state = dir;
    return 0;
}

static int teardown(void **state)
{
    tu_rmtree(*state);
    free(*state);
    return 0;
}

static char *tmpdir_of(void **state)
{
    return tu_path(*state, "tmp");
}

/* ================================================================ CSV */

static void test_csv_types_and_missing(void **state)
{
    const char *dir = *state;
    char *p = write_text(dir, "t.csv",
                         "\xef\xbb\xbf# a comment before the table\n"
                         "id,name,x,n,mixed\r\n"
                         "101,\"Abell 2218, core\",1.5,7,3\r\n"
                         "102,M87,NaN,8,x\r\n"
                         "103,,2.5e3,,4\r\n"
                         "104,\"say \"\"hi\"\"\",null,10,5\r\n");
    const char *feat[] = {"x", "n"}, *pass[] = {"name", "mixed"};
    cat *c = NULL;
    ody_err err = {0};
    assert_ok(read_cat(p, feat, 2, "id", pass, 2, &c, &err), err);
    /* rows 102 (x NaN), 103 (n empty) and 104 (x null) go for missing features */
    assert_int_equal(c->n_table_rows, 4);
    assert_int_equal(c->n_rows, 1);
    assert_int_equal(c->id.type, CAT_COL_INT);
    assert_int_equal(c->id.i[0], 101);
    assert_true(fabsf(c->X[0] - 1.5f) < 1e-6f && fabsf(c->X[1] - 7.0f) < 1e-6f);
    assert_int_equal(c->pass[0].type, CAT_COL_STRING);
    assert_string_equal(c->pass[0].s, "Abell 2218, core");
    assert_int_equal(c->pass[1].type, CAT_COL_STRING);  /* "x" makes the column text */
    assert_int_equal(c->n_dropped, 3);
    assert_int_equal(c->n_missing[0], 2);
    assert_int_equal(c->n_missing[1], 1);
    cat_destroy(c);
    /* inspect shows it as the one table it is, with its format */
    cat_info *info = NULL;
    assert_ok(cat_inspect(p, &info, &err), err);
    assert_int_equal(info->n_hdu, 1);
    assert_string_equal(info->hdu[0].format, "CSV");
    assert_int_equal(info->hdu[0].n_rows, 4);
    cat_info_destroy(info);
    char *t = tmpdir_of(state);
    assert_int_equal(count_files(t), 0);
    free(t);
    free(p);
}

static void test_csv_delimiters_gzip_and_filters(void **state)
{
    const char *dir = *state;
    char *tsv = write_text(dir, "t.tsv", "a\tb\n1\t2\n3\t4\n5\t6\n");
    char *p = tu_path(dir, "t.csv.gz");
    gzFile gz = gzopen(p, "wb");
    assert_non_null(gz);
    gzputs(gz, "a;b\n1;2\n3;4\n5;6\n");
    gzclose(gz);
    const char *feat[] = {"a", "b"};
    const char *paths[] = {tsv, p};
    for (int k = 0; k < 2; k++) {
        cat *c = NULL;
        ody_err err = {0};
        assert_ok(read_cat(paths[k], feat, 2, NULL, NULL, 0, &c, &err), err);
        assert_int_equal(c->n_rows, 3);
        assert_true(c->X[4] == 5.0f && c->X[5] == 6.0f);
        cat_destroy(c);
    }
    /* CFITSIO's row filters and derived columns work on a text table */
    char filt[600];
    snprintf(filt, sizeof filt, "%s[col *; s=a+b][a>1]", tsv);
    const char *feat2[] = {"s"};
    cat *c = NULL;
    ody_err err = {0};
    assert_ok(read_cat(filt, feat2, 1, NULL, NULL, 0, &c, &err), err);
    assert_int_equal(c->n_rows, 2);
    assert_true(c->X[0] == 7.0f && c->X[1] == 11.0f);
    cat_destroy(c);
    free(tsv);
    free(p);
}

/* Each bad table: exit code 2 (ODY_EINPUT), a message naming the file and
 * the line, and no file left in TMPDIR. */
static void test_csv_errors(void **state)
{
    const char *dir = *state;
    struct {
        const char *text, *want;
    } bad[] = {
        {"a,b\n1,2\n3\n", "t.csv:3: 1 field where the header line (1) names 2 columns"},
        {"a,b\n1,2,3\n", "t.csv:2: 3 fields"},
        {"a,A\n1,2\n", "column 'A' appears twice (columns 1 and 2)"},
        {"", "is empty"},
        {"# only a comment\n", "no header line"},
        {"a,b\n1,\"2\n", "t.csv:2: an unclosed quote"},
        {"a,b\n1,2\"x\n", "t.csv:2: a stray quote"},
        {"a,b\n1,2\n1e999,3\n", "t.csv:3: column 'a' holds 1e999, beyond what a double holds"},
        {"a,b\n1,2\n-1E-400,3\n", "t.csv:3: column 'a' holds -1E-400, beyond what a double holds"},
        {"a,b\n2e-310,2\n5e-320,3\n", "t.csv:2: column 'a' holds 2e-310"},
    };
    const char *feat[] = {"a"};
    for (size_t k = 0; k < sizeof bad / sizeof *bad; k++) {
        char *p = write_text(dir, "t.csv", bad[k].text);
        cat *c = NULL;
        ody_err err = {0};
        int rc = read_cat(p, feat, 1, NULL, NULL, 0, &c, &err);
        if (rc != ODY_EINPUT || !strstr(err.msg, bad[k].want) || !strstr(err.msg, p))
            fail_msg("case %zu: rc %d, message: %s (want '%s')", k, rc, err.msg, bad[k].want);
        assert_null(c);
        free(p);
    }
    /* a field of more than 1 MiB (a binary file, a quote never closed) */
    char *p = tu_path(dir, "t.csv");
    FILE *f = fopen(p, "wb");
    fputs("a\n\"", f);
    for (int k = 0; k < (3 << 20) / 64; k++) fputs("0123456789012345678901234567890123456789012345678901234567890123", f);
    fclose(f);
    cat *c = NULL;
    ody_err err = {0};
    assert_int_equal(read_cat(p, feat, 1, NULL, NULL, 0, &c, &err), ODY_EINPUT);
    assert_non_null(strstr(err.msg, "a field over 1048576 bytes"));
    free(p);
    char *t = tmpdir_of(state);
    assert_int_equal(count_files(t), 0);
    free(t);
}

/* A number no double holds is refused only where it is read as a feature: a
 * column carried along, or not read, keeps it; a NUL byte inside a field is
 * refused with its line (the value would end there, silently). */
static void test_csv_out_of_range_and_nul(void **state)
{
    const char *dir = *state;
    char *p = write_text(dir, "r.csv", "id,a,b\n1,1.5,2\n2,2.5,1e999\n3,3.5,4\n");
    const char *fa[] = {"a"}, *fb[] = {"b"}, *pb[] = {"b"};
    cat *c = NULL;
    ody_err err = {0};
    assert_int_equal(read_cat(p, fa, 1, "id", pb, 1, &c, &err), 0);  /* b carried along */
    assert_int_equal(c->n_rows, 3);
    cat_destroy(c);
    c = NULL;
    assert_int_equal(read_cat(p, fb, 1, "id", NULL, 0, &c, &err), ODY_EINPUT);
    assert_null(c);
    if (!strstr(err.msg, "r.csv:3: column 'b' holds 1e999, beyond what a double holds") || strstr(err.msg, "["))
        fail_msg("out of range: %s", err.msg);
    char filtered[700];  /* the message names the file, not its filters */
    snprintf(filtered, sizeof filtered, "%s[col *; c = a * 2][a > 0]", p);
    assert_int_equal(read_cat(filtered, fb, 1, "id", NULL, 0, &c, &err), ODY_EINPUT);
    if (!strstr(err.msg, "r.csv:3: column 'b' holds 1e999") || strstr(err.msg, "["))
        fail_msg("out of range, filtered: %s", err.msg);
    free(p);
    /* ECSV: a declared float64 column alike */
    p = write_text(dir, "r.ecsv", "# %ECSV 1.0\n# ---\n# datatype:\n# - {name: a, datatype: float64}\n"
                                  "# - {name: b, datatype: float64}\na b\n1.0 2.0\n1e-999 3.0\n");
    assert_int_equal(read_cat(p, fa, 1, NULL, NULL, 0, &c, &err), ODY_EINPUT);
    if (!strstr(err.msg, "r.ecsv:8: column 'a' holds 1e-999")) fail_msg("ECSV out of range: %s", err.msg);
    free(p);
    /* a NUL byte */
    p = tu_path(dir, "n.csv");
    FILE *f = fopen(p, "wb");
    assert_non_null(f);
    static const char nul_text[] = "a,b\n1,2\n3,4\0junk\n5,6\n";
    fwrite(nul_text, 1, sizeof nul_text - 1, f);
    fclose(f);
    assert_int_equal(read_cat(p, fa, 1, NULL, NULL, 0, &c, &err), ODY_EINPUT);
    if (!strstr(err.msg, "n.csv:3: a NUL byte inside field 2")) fail_msg("NUL: %s", err.msg);
    free(p);
    char *t = tmpdir_of(state);
    assert_int_equal(count_files(t), 0);
    free(t);
}

static void test_header_only_and_detection(void **state)
{
    const char *dir = *state;
    char *p = write_text(dir, "h.csv", "a,b\n");
    const char *feat[] = {"a"};
    cat *c = NULL;
    ody_err err = {0};
    int rc = read_cat(p, feat, 1, NULL, NULL, 0, &c, &err);
    if (!rc) {  /* no rows: a valid, empty table */
        assert_int_equal(c->n_rows, 0);
        cat_destroy(c);
    }
    tab_format f;
    assert_ok(tab_detect(p, &f, &err), err);
    assert_int_equal(f, TAB_CSV);
    char *e = write_text(dir, "x.txt", "# %ECSV 1.0\n");
    assert_ok(tab_detect(e, &f, &err), err);
    assert_int_equal(f, TAB_ECSV);
    char *b = write_text(dir, "b.bin", "\x01\x02junk");
    assert_ok(tab_detect(b, &f, &err), err);
    assert_int_equal(f, TAB_FITS);  /* left to the FITS checks, which name the problem */
    /* a prolog longer than the bytes looked at (a licence comment, a DOCTYPE) is still XML, not CSV */
    char prolog[1024];
    snprintf(prolog, sizeof prolog, "<?xml version=\"1.0\"?>\n<!-- %0600d -->\n<VOTABLE/>\n", 0);
    char *x = write_text(dir, "x.dat", prolog);
    assert_ok(tab_detect(x, &f, &err), err);
    assert_int_equal(f, TAB_VOTABLE);
    free(x);
    /* a config given where a catalog goes is named as one (read as CSV it was "a stray quote") */
    char *y = write_text(dir, "run.yaml", "catalog:\n  path: \"cat.fits\"\n  features: [a, b]\n");
    assert_int_equal(read_cat(y, feat, 1, NULL, NULL, 0, &c, &err), ODY_EINPUT);
    if (!strstr(err.msg, "a YAML file (a config?), not a table")) fail_msg("%s", err.msg);
    free(y);
    assert_int_equal(tab_format_parse("csv"), TAB_CSV);
    assert_int_equal(tab_format_parse("xls"), -1);
    free(p);
    free(e);
    free(b);
}

/* ================================================================ ECSV */

static const char ECSV[] = "# %ECSV 1.0\n"
                           "# ---\n"
                           "# datatype:\n"
                           "# - {name: id, datatype: int64}\n"
                           "# - {name: ra, unit: deg, datatype: float64, description: right ascension}\n"
                           "# - {name: mag, unit: mag, datatype: float32}\n"
                           "# - {name: ok, datatype: bool}\n"
                           "# - {name: cls, datatype: string}\n"
                           "# schema: astropy-2.0\n"
                           "id ra mag ok cls\n"
                           "1 10.5 17.25 True \"a star\"\n"
                           "2 11.5 \"\" False GALAXY\n"
                           "3 12.5 18.5 True QSO\n";

static void test_ecsv_types_units(void **state)
{
    const char *dir = *state;
    char *p = write_text(dir, "t.ecsv", ECSV);
    const char *feat[] = {"mag", "ok"}, *pass[] = {"ra", "cls"};
    cat *c = NULL;
    ody_err err = {0};
    assert_ok(read_cat(p, feat, 2, "id", pass, 2, &c, &err), err);
    assert_int_equal(c->n_rows, 2);  /* id 2 has a masked mag */
    assert_int_equal(c->id.i[1], 3);
    assert_true(c->X[0] == 17.25f && c->X[1] == 1.0f);
    assert_string_equal(c->feat_units[0], "mag");
    assert_string_equal(c->pass[0].unit, "deg");
    assert_string_equal(c->pass[1].s, "a star");
    cat_destroy(c);
    /* the description reaches the FITS copy as TCOMMn */
    char *fits = NULL, *tmp = NULL;
    assert_ok(tab_resolve(p, TAB_AUTO, &fits, &tmp, &err), err);
    fitsfile *f = NULL;
    int status = 0;
    char comm[FLEN_VALUE] = "";
    fits_open_table(&f, fits, READONLY, &status);
    fits_read_key(f, TSTRING, "TCOMM2", comm, NULL, &status);
    fits_close_file(f, &status);
    assert_int_equal(status, 0);
    assert_string_equal(comm, "right ascension");
    remove(tmp);
    free(tmp);
    free(fits);
    free(p);
}

static void test_ecsv_errors(void **state)
{
    const char *dir = *state;
    struct {
        const char *from, *to, *want;
    } bad[] = {
        {"1 10.5 17.25", "1 10.5 bright", "t.ecsv:11: column 'mag' is declared float32 but holds 'bright'"},
        {"2 11.5", "2.5 11.5", "t.ecsv:12: column 'id' is declared int64 but holds '2.5'"},
        {"True QSO", "maybe QSO", "column 'ok' is declared bool"},
        {"id ra mag ok cls", "id ra mag ok class", "column 5 is 'class' in the header line but 'cls'"},
        {"datatype: string}", "datatype: string, subtype: 'int64[2]'}", "has a subtype"},
        {"datatype: float32}", "datatype: complex128}", "datatype 'complex128'"},
        {"# datatype:\n", "# datatypes:\n", "has no `datatype:` list"},
    };
    const char *feat[] = {"mag"};
    for (size_t k = 0; k < sizeof bad / sizeof *bad; k++) {
        char text[2048];
        const char *at = strstr(ECSV, bad[k].from);
        assert_non_null(at);
        snprintf(text, sizeof text, "%.*s%s%s", (int)(at - ECSV), ECSV, bad[k].to, at + strlen(bad[k].from));
        char *p = write_text(dir, "t.ecsv", text);
        cat *c = NULL;
        ody_err err = {0};
        int rc = read_cat(p, feat, 1, NULL, NULL, 0, &c, &err);
        if (rc != ODY_EINPUT || !strstr(err.msg, bad[k].want))
            fail_msg("case %zu: rc %d, message: %s (want '%s')", k, rc, err.msg, bad[k].want);
        free(p);
    }
    char *t = tmpdir_of(state);
    assert_int_equal(count_files(t), 0);
    free(t);
}

/* ================================================================ VOTable */

static const char VOT_HEAD[] =
    "<?xml version=\"1.0\"?>\n"
    "<VOTABLE version=\"1.4\" xmlns=\"http://www.ivoa.net/xml/VOTable/v1.3\">\n"
    "<RESOURCE><TABLE name=\"t\">\n"
    "<FIELD name=\"id\" datatype=\"long\"><VALUES null=\"-1\"/></FIELD>\n"
    "<FIELD name=\"mag\" datatype=\"float\" unit=\"mag\"><DESCRIPTION>\n  PSF magnitude\n</DESCRIPTION></FIELD>\n"
    "<FIELD name=\"name\" datatype=\"char\" arraysize=\"*\"/>\n"
    "<DATA>";
static const char VOT_TAIL[] = "</DATA></TABLE>\n<TABLE><FIELD name=\"x\" datatype=\"int\"/></TABLE></RESOURCE></VOTABLE>\n";

static void b64(const unsigned char *in, size_t n, char *out)
{
    static const char A[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    size_t o = 0;
    for (size_t k = 0; k < n; k += 3) {
        unsigned v = (unsigned)in[k] << 16 | (k + 1 < n ? (unsigned)in[k + 1] << 8 : 0) | (k + 2 < n ? in[k + 2] : 0);
        out[o++] = A[v >> 18 & 63];
        out[o++] = A[v >> 12 & 63];
        out[o++] = k + 1 < n ? A[v >> 6 & 63] : '=';
        out[o++] = k + 2 < n ? A[v & 63] : '=';
        if (k % 57 == 54) out[o++] = '\n';
    }
    out[o] = 0;
}

/* Big-endian bytes of one row: id (long), mag (float), name (char, *). */
static size_t vot_row(unsigned char *p, int binary2, int nullmask, long long id, float mag, const char *name)
{
    size_t o = 0;
    if (binary2) p[o++] = (unsigned char)nullmask;
    for (int k = 7; k >= 0; k--) p[o++] = (unsigned char)((unsigned long long)id >> (8 * k));
    uint32_t m;
    memcpy(&m, &mag, 4);
    for (int k = 3; k >= 0; k--) p[o++] = (unsigned char)(m >> (8 * k));
    uint32_t n = (uint32_t)strlen(name);
    for (int k = 3; k >= 0; k--) p[o++] = (unsigned char)(n >> (8 * k));
    memcpy(p + o, name, n);
    return o + n;
}

/* The same four rows as TABLEDATA, BINARY and BINARY2: ids 2 and 4 have no
 * mag (empty, NaN, BINARY2's null flag); -1 is id's declared null. */
static void test_votable_three_serialisations(void **state)
{
    const char *dir = *state;
    char text[8192];
    snprintf(text, sizeof text, "%s<TABLEDATA>\n<TR><TD>1</TD><TD>17.5</TD><TD>a &amp; b</TD></TR>\n"
             "<TR><TD>2</TD><TD></TD><TD>M87</TD></TR>\n<TR><TD>-1</TD><TD>18.25</TD><TD/></TR>\n"
             "<TR><TD>4</TD><TD>NaN</TD><TD>x</TD></TR>\n</TABLEDATA>%s", VOT_HEAD, VOT_TAIL);
    char *paths[3];
    paths[0] = write_text(dir, "td.vot", text);
    for (int b2 = 0; b2 < 2; b2++) {
        unsigned char raw[512];
        size_t n = 0;
        n += vot_row(raw + n, b2, 0, 1, 17.5f, "a & b");
        n += vot_row(raw + n, b2, 0x40, 2, b2 ? 0.0f : NAN, "M87");  /* BINARY2: mag flagged null */
        n += vot_row(raw + n, b2, 0, -1, 18.25f, "");
        n += vot_row(raw + n, b2, 0, 4, NAN, "x");
        char enc[1024];
        b64(raw, n, enc);
        snprintf(text, sizeof text, "%s<%s><STREAM encoding=\"base64\">\n%s\n</STREAM></%s>%s", VOT_HEAD,
                 b2 ? "BINARY2" : "BINARY", enc, b2 ? "BINARY2" : "BINARY", VOT_TAIL);
        paths[1 + b2] = write_text(dir, b2 ? "b2.vot" : "b.vot", text);
    }
    const char *feat[] = {"mag"}, *pass[] = {"id", "name"};
    for (int k = 0; k < 3; k++) {
        tab_format f;
        ody_err err = {0};
        assert_ok(tab_detect(paths[k], &f, &err), err);
        assert_int_equal(f, TAB_VOTABLE);
        cat *c = NULL;
        if (read_cat(paths[k], feat, 1, NULL, pass, 2, &c, &err)) fail_msg("%s: %s", paths[k], err.msg);
        assert_int_equal(c->n_table_rows, 4);  /* the second TABLE is not read */
        assert_int_equal(c->n_rows, 2);
        assert_true(c->X[0] == 17.5f && c->X[1] == 18.25f);
        assert_string_equal(c->feat_units[0], "mag");
        assert_int_equal(c->pass[0].type, CAT_COL_INT);
        assert_int_equal(c->pass[0].i[0], 1);
        assert_int_equal(c->pass[0].i[1], CAT_INT_NULL);  /* VALUES null="-1" */
        assert_string_equal(c->pass[1].s, "a & b");
        cat_destroy(c);
        free(paths[k]);
    }
}

static void test_votable_errors(void **state)
{
    const char *dir = *state;
    struct {
        const char *body, *want;
    } bad[] = {
        {"<FIELD name=\"v\" datatype=\"double\" arraysize=\"3\"/><DATA/>", "holds arrays"},
        {"<FIELD name=\"v\" datatype=\"floatComplex\"/><DATA/>", "datatype 'floatComplex'"},
        {"<FIELD name=\"v\" datatype=\"int\"/><DATA><BINARY><STREAM href=\"x.bin\"/></BINARY></DATA>", "STREAM href"},
        {"<FIELD name=\"v\" datatype=\"int\"/><DATA><BINARY><STREAM encoding=\"base64\">AAA*</STREAM></BINARY></DATA>",
         "not base64"},
        {"<FIELD name=\"v\" datatype=\"int\"/><DATA><BINARY><STREAM encoding=\"base64\">AAAA</STREAM></BINARY></DATA>",
         "ends inside a row"},
        {"<FIELD name=\"v\" datatype=\"int\"/><DATA><TABLEDATA><TR><TD>1.5</TD></TR></TABLEDATA></DATA>",
         "declared int but holds '1.5'"},
        {"<FIELD name=\"v\" datatype=\"int\"/><DATA><TABLEDATA><TR><TD>1</TD><TD>2</TD></TR></TABLEDATA></DATA>",
         "a row of 2 cells where the table has 1 FIELDs"},
        {"<FIELD name=\"v\" datatype=\"int\"/><FIELD name=\"V\" datatype=\"int\"/><DATA/>", "appears twice"},
        {"<DATA/>", "a TABLE without FIELDs"},
        {"<FIELD name=\"v\" datatype=\"int\"/><DATA><TABLEDATA><TR><TD>1", "truncated"},
    };
    const char *feat[] = {"v"};
    for (size_t k = 0; k < sizeof bad / sizeof *bad; k++) {
        char text[2048];
        int open_end = strstr(bad[k].body, "<TD>1") && !strstr(bad[k].body, "</TABLEDATA>");
        snprintf(text, sizeof text, "<?xml version=\"1.0\"?>\n<VOTABLE><RESOURCE><TABLE>\n%s%s", bad[k].body,
                 open_end ? "" : "</TABLE></RESOURCE></VOTABLE>\n");
        char *p = write_text(dir, "t.vot", text);
        cat *c = NULL;
        ody_err err = {0};
        int rc = read_cat(p, feat, 1, NULL, NULL, 0, &c, &err);
        if (rc != ODY_EINPUT || !strstr(err.msg, bad[k].want) || !strstr(err.msg, "t.vot"))
            fail_msg("case %zu: rc %d, message: %s (want '%s')", k, rc, err.msg, bad[k].want);
        free(p);
    }
    /* entities could expand without bound: any declaration is refused, also where the DOCTYPE runs
     * past the bytes the format is told by (it was read as CSV: "a stray quote") */
    char doctype[2048];
    snprintf(doctype, sizeof doctype, "<?xml version=\"1.0\"?>\n<!DOCTYPE VOTABLE [<!ENTITY a \"aaaa\">%s]>\n"
             "<VOTABLE><RESOURCE><TABLE><FIELD name=\"v\" datatype=\"int\"/></TABLE></RESOURCE></VOTABLE>\n", "");
    for (int k = 0; k < 2; k++) {
        if (k) {
            char more[1024] = "";
            for (int e = 0; e < 20; e++) snprintf(more + strlen(more), sizeof more - strlen(more),
                                                  "<!ENTITY b%02d \"&a;&a;&a;\">", e);
            snprintf(doctype, sizeof doctype, "<?xml version=\"1.0\"?>\n<!DOCTYPE VOTABLE [<!ENTITY a \"aaaa\">%s]>\n"
                     "<VOTABLE><RESOURCE><TABLE><FIELD name=\"v\" datatype=\"int\"/></TABLE></RESOURCE></VOTABLE>\n",
                     more);
        }
        char *p = write_text(dir, k ? "e.dat" : "e.vot", doctype);
        cat *c = NULL;
        ody_err err = {0};
        assert_int_equal(read_cat(p, feat, 1, NULL, NULL, 0, &c, &err), ODY_EINPUT);
        if (!strstr(err.msg, "entity declaration")) fail_msg("%s: %s", p, err.msg);
        free(p);
    }
    char *t = tmpdir_of(state);
    assert_int_equal(count_files(t), 0);
    free(t);
}

/* ================================================================ real data */

/* The SkyServer CSV as downloaded gives the same features as its FITS copy. */
static void test_sdss_csv_matches_fits(void **state)
{
    char *csv = tu_shared("catalogs/sdss_dr14_10k.csv"), *fits = tu_shared("catalogs/sdss_dr14_10k.fits");
    if (!csv || !fits) {
        free(csv);
        free(fits);
        skip();
    }
    const char *feat[] = {"u", "g", "r", "i", "z", "redshift"}, *pass[] = {"class"};
    cat *a = NULL, *b = NULL;
    ody_err err = {0};
    assert_ok(read_cat(csv, feat, 6, NULL, pass, 1, &a, &err), err);
    assert_ok(read_cat(fits, feat, 6, NULL, pass, 1, &b, &err), err);
    assert_int_equal(a->n_rows, b->n_rows);
    assert_memory_equal(a->X, b->X, a->n_rows * a->n_feat * sizeof *a->X);
    for (size_t r = 0; r < a->n_rows; r++)
        assert_string_equal(a->pass[0].s + r * (size_t)(a->pass[0].width + 1),
                            b->pass[0].s + r * (size_t)(b->pass[0].width + 1));
    /* ECSV and VOTable (TABLEDATA, BINARY2) copies written by astropy read the same */
    char *dir = *state, cmd[2048];
    snprintf(cmd, sizeof cmd, "/usr/bin/python3 -W ignore -c \"from astropy.table import Table; "
             "t = Table.read('%s'); t.write('%s/s.ecsv'); t.write('%s/s.vot', format='votable'); "
             "t.write('%s/s2.vot', format='votable', tabledata_format='binary2')\" 2>/dev/null", fits, dir, dir, dir);
    if (system(cmd) == 0) {
        const char *copies[] = {"s.ecsv", "s.vot", "s2.vot"};
        for (int k = 0; k < 3; k++) {
            char *p = tu_path(dir, copies[k]);
            cat *d = NULL;
            if (read_cat(p, feat, 6, "objid", pass, 1, &d, &err)) fail_msg("%s: %s", copies[k], err.msg);
            assert_int_equal(d->n_rows, b->n_rows);
            assert_memory_equal(d->X, b->X, b->n_rows * b->n_feat * sizeof *b->X);
            cat_destroy(d);
            free(p);
        }
    }
    /* its objid was stored as floats that lost digits: duplicates, refused */
    cat *c = NULL;
    int rc = read_cat(csv, feat, 1, "objid", NULL, 0, &c, &err);
    assert_int_equal(rc, ODY_EINPUT);
    assert_non_null(strstr(err.msg, "must be unique"));
    cat_destroy(a);
    cat_destroy(b);
    free(csv);
    free(fits);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_csv_types_and_missing),
        cmocka_unit_test(test_csv_delimiters_gzip_and_filters),
        cmocka_unit_test(test_csv_errors),
        cmocka_unit_test(test_csv_out_of_range_and_nul),
        cmocka_unit_test(test_header_only_and_detection),
        cmocka_unit_test(test_ecsv_types_units),
        cmocka_unit_test(test_ecsv_errors),
        cmocka_unit_test(test_votable_three_serialisations),
        cmocka_unit_test(test_votable_errors),
        cmocka_unit_test(test_sdss_csv_matches_fits),
    };
    return cmocka_run_group_tests(tests, setup, teardown);
}
