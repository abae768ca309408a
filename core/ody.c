/* ody.c — errors, logging and small helpers shared by every module. */
#define _POSIX_C_SOURCE 200809L
#define _XOPEN_SOURCE 700  /* realpath */
#define __STDC_WANT_IEC_60559_BFP_EXT__ 1  /* strfromd */
#include "ody.h"

#include <ctype.h>
#include <errno.h>
#include <omp.h>
#include <fitsio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#ifndef ODY_VERSION_STRING
#define ODY_VERSION_STRING "0.0.0-unknown"
#endif

/* ================================================================ errors */

int ody_fail(ody_err *err, int code, const char *fmt, ...)
{
    if (err) {
        va_list ap;
        va_start(ap, fmt);
        vsnprintf(err->msg, sizeof err->msg, fmt, ap);
        va_end(ap);
        err->code = code;
    }
    return code;
}

int ody_prefix(ody_err *err, const char *fmt, ...)
{
    if (!err) return 0;
    char lead[ODY_ERR_LEN];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(lead, sizeof lead, fmt, ap);
    va_end(ap);
    size_t l = strlen(lead), r = strnlen(err->msg, sizeof err->msg - 1);
    if (l + r > sizeof err->msg - 1) r = sizeof err->msg - 1 - l;  /* the message's end gives way */
    memmove(err->msg + l, err->msg, r);
    memcpy(err->msg, lead, l);
    err->msg[l + r] = 0;
    return err->code;
}

static const char *fits_default_hint(int status)
{
    switch (status) {
    case FILE_NOT_OPENED:
        return "check the path and that the file is readable";
    case READ_ERROR: case END_OF_FILE: case BAD_FILEPTR:
        return "the file is not FITS, or is empty, truncated or damaged; check it with "
               "`fitsverify FILE`, re-download or regenerate it";
    case UNKNOWN_REC: case NO_SIMPLE: case BAD_HEADER_FILL: case BAD_KEYCHAR:
        return "this is not a valid FITS file; check it with `fitsverify FILE`";
    case BAD_HDU_NUM: case URL_PARSE_ERROR:
        return "run `oddsky inspect FILE` to list its HDUs";
    case COL_NOT_FOUND: case BAD_COL_NUM:
        return "run `oddsky inspect FILE` to list its columns";
    case PARSE_SYNTAX_ERR: case PARSE_BAD_TYPE: case PARSE_LRG_VECTOR:
    case PARSE_NO_OUTPUT: case PARSE_BAD_COL: case PARSE_BAD_OUTPUT:
        return "check the CFITSIO filter expression in brackets";
    case FILE_NOT_CREATED: case WRITE_ERROR:
        return "check that the output directory exists, is writable and has space";
    default:
        return "run `fitsverify FILE` to see what is wrong with it";
    }
}

int ody_fits_fail(ody_err *err, int status, const char *file, const char *what,
                  const char *hint)
{
    int sys = errno;  /* what the failed write saw, before anything resets it */
    char text[FLEN_STATUS] = "";
    char stack[FLEN_ERRMSG] = "", first[FLEN_ERRMSG] = "";
    fits_get_errstatus(status, text);
    /* The first stacked message is usually the most specific one. */
    if (fits_read_errmsg(stack)) {
        snprintf(first, sizeof first, "%s", stack);
        size_t n = strlen(first);
        while (n && isspace((unsigned char)first[n - 1])) first[--n] = 0;
    }
    fits_clear_errmsg();
    int code = ODY_EINPUT;
    if (status == MEMORY_ALLOCATION) code = ODY_ENOMEM;
    else if (status == FILE_NOT_CREATED || status == WRITE_ERROR) code = ODY_EIO;
    if (code == ODY_EIO && sys) {  /* the system's reason first, and what to do about it */
        const char *todo = sys == ENOSPC || sys == EDQUOT ? "make room on the disk or choose another output folder"
                           : sys == EACCES || sys == EPERM || sys == EROFS ? "choose a folder you can write to"
                           : sys == ENOENT || sys == ENOTDIR ? "check the folder exists, or choose another"
                           : "choose another output folder";
        return ody_fail(err, code, "cannot write %s: %s (%s; CFITSIO: %s) — %s; nothing half-written is left", file,
                        strerror(sys), what, text, todo);
    }
    if (!hint) hint = fits_default_hint(status);
    /* Hints say FILE where the user's file name belongs. */
    char hbuf[512];
    const char *at = strstr(hint, "FILE");
    if (at) {
        /* ...without any extended-syntax suffix, which fitsverify would not take */
        int flen = (int)ody_fits_file_len(file);
        snprintf(hbuf, sizeof hbuf, "%.*s%.*s%s", (int)(at - hint), hint, flen, file, at + 4);
        hint = hbuf;
    }
    if (first[0] && strcmp(first, text) != 0)
        return ody_fail(err, code, "%s: %s (CFITSIO: %s; %s) — %s", file, what, text, first, hint);
    return ody_fail(err, code, "%s: %s (CFITSIO: %s) — %s", file, what, text, hint);
}

void ody_fits_close(fitsfile *f)
{
    int status = 0;
    if (f) fits_close_file(f, &status);
    fits_clear_errmsg();
}

size_t ody_fits_strbuf(fitsfile *f, int col, int *status)
{
    int w = 0;
    if (fits_get_col_display_width(f, col, &w, status)) return 0;
    return w < 31 ? 32 : (size_t)w + 1;
}

int ody_fits_int_text(const char *v, long long *out)
{
    const char *p = v + strspn(v, " ");
    char *end = NULL;
    errno = 0;
    long long x = strtoll(p, &end, 10);
    if (end == p || (*p != '-' && *p != '+' && !isdigit((unsigned char)*p))) return -1;
    end += strspn(end, " ");
    if (*end && *end != '/') return -1;
    if (errno == ERANGE) return -2;
    *out = x;
    return 0;
}

int ody_fits_read_int(fitsfile *f, const char *key, long long lo, long long hi, long long *v, int *status)
{
    char val[FLEN_VALUE];
    long long x = 0;
    if (*status > 0) return *status;
    if (fits_read_keyword(f, key, val, NULL, status)) return *status;
    if (!val[strspn(val, " ")]) return *status = VALUE_UNDEFINED;
    int r = ody_fits_int_text(val, &x);
    if (r == -1) return *status = BAD_INTKEY;
    if (r || x < lo || x > hi) return *status = NUM_OVERFLOW;
    *v = x;
    return 0;
}

int ody_fits_read_int32(fitsfile *f, const char *key, int lo, int hi, int *v, int *status)
{
    long long x = 0;
    if (!ody_fits_read_int(f, key, lo, hi, &x, status)) *v = (int)x;
    return *status;
}

int ody_fits_file_there(const char *path)
{
    char base[4096];
    snprintf(base, sizeof base, "%.*s", (int)ody_fits_file_len(path), path);
    return access(base, F_OK) == 0;
}

size_t ody_fits_file_len(const char *path)
{
    struct stat sb;
    if (!stat(path, &sb)) return strlen(path);
    char buf[4096];
    for (size_t i = 0; i < sizeof buf && path[i]; i++) {
        if (path[i] != '[') continue;
        memcpy(buf, path, i);
        buf[i] = 0;
        if (!stat(buf, &sb) && !S_ISDIR(sb.st_mode)) return i;
    }
    return strcspn(path, "[");
}

/* As fits_open_table and fits_open_image move on from an empty primary
 * array: to HDU 2, which must be of the kind asked for. */
static int first_of_kind(fitsfile *f, int kind, int *status)
{
    int type = IMAGE_HDU, naxis = 0;
    if (kind == ODY_FITS_FILE || fits_get_img_dim(f, &naxis, status)) return *status;
    if (naxis == 0) fits_movabs_hdu(f, 2, &type, status);  /* past an empty primary array */
    if (!*status && kind == ODY_FITS_TABLE && type == IMAGE_HDU) *status = NOT_TABLE;
    if (!*status && kind == ODY_FITS_IMAGE && type != IMAGE_HDU) *status = NOT_IMAGE;
    return *status;
}

static int open_kind(fitsfile **f, const char *path, int kind, int mode, int *status)
{
    if (kind == ODY_FITS_TABLE) return fits_open_table(f, path, mode, status);
    if (kind == ODY_FITS_IMAGE) return fits_open_image(f, path, mode, status);
    return fits_open_file(f, path, mode, status);
}

int ody_fits_open(fitsfile **f, const char *path, int kind, int mode, int *status)
{
    if (*status) return *status;
    size_t len = ody_fits_file_len(path);
    int literal = 0;  /* the file's own path holds characters CFITSIO parses */
    for (size_t i = 0; i < len; i++) literal |= strchr("()[]", path[i]) != NULL;
    if (!literal) return open_kind(f, path, kind, mode, status);
    if (!path[len]) {
        if (fits_open_diskfile(f, path, mode, status)) return *status;
        return first_of_kind(*f, kind, status);
    }
    /* the file, then syntax: through a link of a plain name to the file */
    char dir[4096], link[4200], *part = strndup(path, len);
    char *real = part ? realpath(part, NULL) : NULL;
    free(part);
    const char *tmp = getenv("TMPDIR");
    snprintf(dir, sizeof dir, "%s/oddsky-open-XXXXXX", tmp && *tmp ? tmp : "/tmp");
    if (!real || !mkdtemp(dir)) {
        free(real);
        return *status = FILE_NOT_OPENED;
    }
    const char *base = strrchr(real, '/') ? strrchr(real, '/') + 1 : real;
    size_t at = (size_t)snprintf(link, sizeof link, "%s/", dir);
    for (const char *c = base; *c && at + 1 < sizeof link; c++) link[at++] = strchr("()[]", *c) ? '_' : *c;
    link[at] = 0;  /* the name kept, its extension (.gz) too */
    size_t nf = strlen(link) + strlen(path + len) + 1;
    char *full = malloc(nf);
    if (full) snprintf(full, nf, "%s%s", link, path + len);
    if (!full || symlink(real, link)) *status = FILE_NOT_OPENED;
    else open_kind(f, full, kind, mode, status);
    free(full);
    unlink(link);  /* the open file stays open */
    rmdir(dir);
    free(real);
    return *status;
}

int ody_fits_row_only_filter(const char *path)
{
    for (const char *p = path + ody_fits_file_len(path); (p = strchr(p, '['));) {
        const char *e = strchr(p, ']');
        if (!e) return 0;
        int row = 0, name = 0;
        for (const char *q = p + 1; q < e;) {
            const char *s = q;
            if (*q == '#' || isalpha((unsigned char)*q) || *q == '_') {
                for (q++; q < e && (isalnum((unsigned char)*q) || *q == '_'); q++) {}
                size_t n = (size_t)(q - s);
                int dotted = s > p + 1 && s[-1] == '.' && q < e && *q == '.';  /* .lt. .and. */
                int exponent = s > p + 1 && (isdigit((unsigned char)s[-1]) || s[-1] == '.') && strchr("eEdD", *s);
                if (*s == '#') row |= n == 4 && tolower((unsigned char)s[1]) == 'r' &&
                                      tolower((unsigned char)s[2]) == 'o' && tolower((unsigned char)s[3]) == 'w';
                else if (!dotted && !exponent) name = 1;
            } else q++;
        }
        if (row && !name) return 1;
        p = e + 1;
    }
    return 0;
}

int ody_fits_create(fitsfile **f, const char *path, int *status)
{
    return fits_create_diskfile(f, path, status);
}

int ody_exit_code(int code)
{
    /* 2: something the user can fix in what they gave or where the output
     * goes; 1: out of memory, or a bug */
    return code == ODY_OK ? 0 : code == ODY_EINPUT || code == ODY_EIO ? 2 : 1;
}

/* ================================================================ logging */

static const char *level_name[] = {"error", "warning", "info", "debug"};

void ody_logf(const ody_log *log, int level, const char *fmt, ...)
{
    if (!log) return;
    if (level < ODY_LOG_ERROR) level = ODY_LOG_ERROR;
    if (level > ODY_LOG_DEBUG) level = ODY_LOG_DEBUG;
    char line[2048];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(line, sizeof line, fmt, ap);
    va_end(ap);
    if (log->err && level <= log->level) {
        if (level <= ODY_LOG_WARN) fprintf(log->err, "oddsky: %s: %s\n", level_name[level], line);
        else fprintf(log->err, "oddsky: %s\n", line);
        fflush(log->err);
    }
    if (log->file) {
        time_t t = time(NULL);
        struct tm tm;
        char stamp[32];
        gmtime_r(&t, &tm);
        strftime(stamp, sizeof stamp, "%Y-%m-%dT%H:%M:%SZ", &tm);
        fprintf(log->file, "%s %-7s %s\n", stamp, level_name[level], line);
        fflush(log->file);
    }
}

/* ================================================================ progress */

void ody_progress_start(ody_progress *p, const ody_log *log, const char *what, const char *unit, size_t total)
{
    memset(p, 0, sizeof *p);
    p->log = log;
    snprintf(p->what, sizeof p->what, "%s", what);
    snprintf(p->unit, sizeof p->unit, "%s", unit);
    p->total = total;
    p->t0 = p->last = ody_now();
    p->tty = log && log->err && log->level >= ODY_LOG_INFO && isatty(fileno(log->err));
}

/* "12 s left" from the rate so far; "" until there is a rate. */
static void time_left(const ody_progress *p, size_t done, double now, char *buf, size_t len)
{
    buf[0] = 0;
    if (done == 0 || done >= p->total || now - p->t0 < 1) return;
    double left = (now - p->t0) * (double)(p->total - done) / (double)done;
    if (left < 120) snprintf(buf, len, ", %.0f s left", left);
    else snprintf(buf, len, ", %.0f min left", left / 60);
}

void ody_progress_update(ody_progress *p, size_t done)
{
    if (!p->log || !p->total) return;
    double now = ody_now();
    char left[32];
    if (p->tty) {
        if (now - p->last < 0.1 && done < p->total) return;
        int w = 30, fill = (int)((double)w * (double)done / (double)p->total);
        char bar[40];
        for (int k = 0; k < w; k++) bar[k] = k < fill ? '#' : '.';
        bar[w] = 0;
        time_left(p, done, now, left, sizeof left);
        fprintf(p->log->err, "\r%-12s [%s] %zu/%zu %s  %.0f s%s   ", p->what, bar, done, p->total, p->unit,
                now - p->t0, left);
        fflush(p->log->err);
        p->drawn = 1;
    } else {
        if (now - p->last < 10) return;
        time_left(p, done, now, left, sizeof left);
        ody_logf(p->log, ODY_LOG_INFO, "%s: %zu of %zu %s (%.0f%%), %.0f s%s", p->what, done, p->total, p->unit,
                 100.0 * (double)done / (double)p->total, now - p->t0, left);
    }
    p->last = now;
}

void ody_progress_end(ody_progress *p)
{
    if (p->tty && p->drawn) {
        fprintf(p->log->err, "\r%*s\r", 100, "");
        fflush(p->log->err);
    }
}

/* ================================================================ misc */

const char *ody_version(void) { return ODY_VERSION_STRING; }

int ody_edit_distance(const char *a, const char *b)
{
    size_t la = strlen(a), lb = strlen(b);
    if (la > 255 || lb > 255) return 1 << 20;
    int row[256], prev;
    for (size_t j = 0; j <= lb; j++) row[j] = (int)j;
    for (size_t i = 1; i <= la; i++) {
        prev = row[0];
        row[0] = (int)i;
        for (size_t j = 1; j <= lb; j++) {
            int cost = tolower((unsigned char)a[i - 1]) != tolower((unsigned char)b[j - 1]);
            int best = prev + cost;
            if (row[j] + 1 < best) best = row[j] + 1;
            if (row[j - 1] + 1 < best) best = row[j - 1] + 1;
            prev = row[j];
            row[j] = best;
        }
    }
    return row[lb];
}

char *ody_strdup(const char *src)
{
    size_t n = strlen(src) + 1;
    char *s = malloc(n);
    if (s) memcpy(s, src, n);
    return s;
}

double ody_phys_memory(void)
{
    long pages = sysconf(_SC_PHYS_PAGES), size = sysconf(_SC_PAGESIZE);
    return pages > 0 && size > 0 ? (double)pages * (double)size : 0;
}

int ody_threads(int requested)
{
    return requested > 0 ? requested : omp_get_max_threads();
}

void openblas_set_num_threads(int num_threads);
int openblas_get_num_threads(void);

int ody_blas_single(void)
{
    int prev = openblas_get_num_threads();
    if (prev != 1) openblas_set_num_threads(1);
    return prev;
}

void ody_blas_restore(int prev)
{
    if (prev != 1) openblas_set_num_threads(prev);
}

double ody_now(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + 1e-9 * (double)ts.tv_nsec;
}

/* ================================================================ numbers as text */

int ody_fmt_g(char *buf, size_t len, int digits, double v)
{
    static const char *const fmt[18] = {"%g", "%.1g", "%.2g", "%.3g", "%.4g", "%.5g", "%.6g", "%.7g", "%.8g",
                                        "%.9g", "%.10g", "%.11g", "%.12g", "%.13g", "%.14g", "%.15g", "%.16g", "%.17g"};
    return strfromd(buf, len, fmt[digits >= 1 && digits <= 17 ? digits : 0], v);
}

int ody_fmt_ll(char *buf, size_t len, long long v)
{
    char tmp[24];
    int n = 0;
    unsigned long long u = v < 0 ? 0ULL - (unsigned long long)v : (unsigned long long)v;
    do tmp[n++] = (char)('0' + u % 10); while ((u /= 10) > 0);
    if (v < 0) tmp[n++] = '-';
    for (int k = 0; k < n && (size_t)k + 1 < len; k++) buf[k] = tmp[n - 1 - k];
    if (len) buf[(size_t)n < len ? (size_t)n : len - 1] = 0;
    return n;
}
