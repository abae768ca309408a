/* tabin_fmt.c — which format a table file is in: by its name, by its first
 * bytes (tabin.h). */
#define _GNU_SOURCE
#include "tabin.h"

#include <string.h>
#include <strings.h>
#include <zlib.h>

#include "tabconv.h"

/* ================================================================ formats */

static const char *const FORMAT_NAMES[] = {"auto", "fits", "csv", "ecsv", "votable"};

int tab_format_parse(const char *s)
{
    for (int k = 0; s && k < 5; k++)
        if (!strcmp(s, FORMAT_NAMES[k])) return k;
    return -1;
}

const char *tab_format_name(tab_format f)
{
    return f >= TAB_AUTO && f <= TAB_VOTABLE ? FORMAT_NAMES[f] : "?";
}

int tab_named(const char *file, const char *const *exts)
{
    size_t n = strlen(file);
    if (n > 3 && !strcasecmp(file + n - 3, ".gz")) n -= 3;
    for (int k = 0; exts[k]; k++) {
        size_t m = strlen(exts[k]);
        if (n > m && !strncasecmp(file + n - m, exts[k], m)) return 1;
    }
    return 0;
}

static int named_csv(const char *file)
{
    static const char *const text[] = {".csv", ".tsv", ".txt", NULL};
    return tab_named(file, text);
}

int tab_detect(const char *file, tab_format *out, ody_err *err)
{
    gzFile gz;
    int rc = tabc_open_text(file, &gz, err);
    if (rc) return rc;
    unsigned char b[512];
    int n = gzread(gz, b, sizeof b);
    gzclose(gz);
    *out = TAB_FITS;
    if (n <= 0) return 0;  /* empty or unreadable: the FITS checks say which */
    int off = n >= 3 && b[0] == 0xef && b[1] == 0xbb && b[2] == 0xbf ? 3 : 0;  /* a UTF-8 BOM */
    if (n - off >= 7 && !memcmp(b + off, "# %ECSV", 7)) {
        *out = TAB_ECSV;
        return 0;
    }
    if (n >= 9 && !memcmp(b, "SIMPLE  =", 9)) return 0;
    /* XML: a declaration, comment or DOCTYPE may run past these 512 bytes before the root element, so
     * the prolog decides; the VOTable reader then says whether the root is one */
    if (n - off >= 5 && (!memcmp(b + off, "<?xml", 5) || !memcmp(b + off, "<!", 2) ||
                         ((!memcmp(b + off, "<VOTA", 5) || memmem(b, (size_t)n, ":VOTABLE", 8)) && b[off] == '<'))) {
        *out = TAB_VOTABLE;
        return 0;
    }
    /* text: printable ASCII, tabs, line ends, UTF-8; a file named as CSV is read as CSV anyway, so that
     * a stray control byte is reported by line, not as a FITS file that will not open */
    for (int k = off; k < n; k++)
        if (b[k] < 0x20 && b[k] != '\t' && b[k] != '\n' && b[k] != '\r' && !named_csv(file)) return 0;
    *out = TAB_CSV;
    return 0;
}

tab_format tab_format_by_name(const char *file)
{
    static const char *const fits[] = {".fits", ".fit", ".fts", ".fz", NULL}, *const ecsv[] = {".ecsv", NULL},
                             *const vot[] = {".vot", ".xml", NULL};
    return tab_named(file, fits) ? TAB_FITS : tab_named(file, ecsv) ? TAB_ECSV : tab_named(file, vot) ? TAB_VOTABLE
                                                                                                      : TAB_CSV;
}
