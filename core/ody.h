/* ody.h — what every oddsky module shares: error reporting, logging, version.
 *
 * Contract used across the library:
 *   - Functions that can fail return 0 on success or an ODY_E* code, and fill
 *     the caller's ody_err with one human-readable line.  On failure, output
 *     arguments are left untouched unless the function's comment says otherwise.
 *   - Library code never prints to stdout, never calls exit() or abort();
 *     diagnostics go through ody_log() to stderr / the run log only.
 *   - There is no global mutable state: a logger is passed in by the caller.
 */
#ifndef ODY_H
#define ODY_H

#include <fitsio.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

/* ---------------------------------------------------------------- errors */

enum {
    ODY_OK = 0,
    ODY_EINPUT = 2,    /* bad input: file, column, config, parameter.  CLI exit 2 */
    ODY_ENOMEM = 3,    /* allocation failed */
    ODY_EIO = 4,       /* writing output failed (disk full, permissions) */
    ODY_EINTERNAL = 5  /* a bug: please report */
};

#define ODY_ERR_LEN 1024

typedef struct ody_err {
    int code;
    char msg[ODY_ERR_LEN];
} ody_err;

/* Sets err (if not NULL) to code + formatted message; returns code so callers
 * can write `return ody_fail(err, ODY_EINPUT, "...")`. */
int ody_fail(ody_err *err, int code, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

/* Puts a formatted lead before err's message ("FILE: " + "forest.n_trees
 * = 0 ..."), for a caller that knows where an error it passes on came from;
 * returns the code err holds. */
int ody_prefix(ody_err *err, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

/* The one CFITSIO-status wrapper.  Builds "FILE: WHAT (CFITSIO: text) — HINT"
 * from a nonzero CFITSIO status, clears CFITSIO's message stack, and returns
 * ODY_EINPUT (or ODY_ENOMEM / ODY_EIO when the status says so).  hint may be
 * NULL, in which case a default suggestion is chosen from the status. */
int ody_fits_fail(ody_err *err, int status, const char *file, const char *what,
                  const char *hint);

/* Closes f if not NULL, whatever state it is in, and clears CFITSIO's
 * message stack: for cleanup paths, where a close error adds nothing to the
 * error already reported. */
void ody_fits_close(fitsfile *f);

/* Paths through CFITSIO.  CFITSIO reads a file name as syntax: "a.fits[2]"
 * is an HDU, "a.fits[col X=Y]" a filter, "a(b).fits" a template.  A folder
 * or file named with ( or [ -- "Run (2024)/cat.fits" -- would be misread.
 *
 * ody_fits_file_len: how much of path is the file: all of it when that
 * names an existing file, else up to the first '[' at which it does (the
 * rest is syntax), else up to the first '['.
 * ody_fits_open: opens path as CFITSIO's fits_open_file, fits_open_table or
 * fits_open_image would (kind ODY_FITS_FILE, _TABLE, _IMAGE), the syntax
 * after the file included, whatever characters the file's own path holds.
 * Sets *status as CFITSIO does and returns it.
 * ody_fits_create: creates the file at path, taken literally (no '!', no
 * syntax). */
enum { ODY_FITS_FILE, ODY_FITS_TABLE, ODY_FITS_IMAGE };
size_t ody_fits_file_len(const char *path);
int ody_fits_file_there(const char *path);  /* whether the file part of path exists */
int ody_fits_open(fitsfile **f, const char *path, int kind, int mode, int *status);
int ody_fits_create(fitsfile **f, const char *path, int *status);

/* 1 when the syntax after path's file holds a row filter that names #row
 * and no column ("cat.fits[#row <= 100]"): CFITSIO 4.2 evaluates such a
 * filter reading freed memory (docs/LIMITS.md), so the readers refuse it
 * and say to name a column too ("[#row <= 100 && ID > 0]"). */
int ody_fits_row_only_filter(const char *path);

/* The bytes a TSTRING read of one value of column col needs, its
 * terminator included (at least 32): CFITSIO writes the column's whole
 * display width (a string column's width, a number's format), so a fixed
 * buffer overflows on a wide column of a hostile file.  0 with *status set
 * when the column cannot be asked. */
size_t ody_fits_strbuf(fitsfile *f, int col, int *status);

/* The whole number a FITS value text holds (optionally signed, then only
 * blanks or a '/' comment) into *out: 0, -1 when it is not one, -2 when it
 * is out of range for a long long; *out unchanged on failure. */
int ody_fits_int_text(const char *v, long long *out);

/* Reads integer keyword key of f's current HDU into *v, which must lie in
 * [lo, hi] (else NUM_OVERFLOW).  CFITSIO's own integer reads (TINT, TLONG,
 * TLONGLONG...) overrun a stack buffer building their error message for a
 * long value that is not a number (CFITSIO 4.2, ffc2j: a fuzz finding;
 * glibc's fortify aborts there), so this reads the value as text and parses
 * it here: a whole number, optionally signed, then only blanks.  Sets
 * *status as CFITSIO would (KEY_NO_EXIST, VALUE_UNDEFINED, BAD_INTKEY) and
 * returns it; *v is left unchanged on error. */
int ody_fits_read_int(fitsfile *f, const char *key, long long lo, long long hi, long long *v, int *status);

/* The same into an int (the range [lo, hi] within int's). */
int ody_fits_read_int32(fitsfile *f, const char *key, int lo, int hi, int *v, int *status);

/* CLI exit code for an error code: 2 for bad input and for outputs that
 * cannot be written (disk full, permissions), 1 for everything else. */
int ody_exit_code(int code);

/* ---------------------------------------------------------------- logging */

enum { ODY_LOG_ERROR = 0, ODY_LOG_WARN = 1, ODY_LOG_INFO = 2, ODY_LOG_DEBUG = 3 };

typedef struct ody_log {
    int level;   /* messages above this level are dropped */
    FILE *err;   /* console stream (stderr), may be NULL */
    FILE *file;  /* run log file, may be NULL; gets every message <= DEBUG */
} ody_log;

/* Logs one line.  log may be NULL (silent). */
void ody_logf(const ody_log *log, int level, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

/* Progress of a long loop, in units the user counts (trees, epochs,
 * objects) with the time left at the rate so far: a bar redrawn on the
 * console when it is a terminal, a log line every 10 s otherwise.  Owned by
 * the caller; call update from one thread only. */
typedef struct ody_progress {
    const ody_log *log;
    char what[64], unit[16];
    size_t total;
    double t0, last;
    int tty, drawn;
} ody_progress;

void ody_progress_start(ody_progress *p, const ody_log *log, const char *what, const char *unit, size_t total);
void ody_progress_update(ody_progress *p, size_t done);
void ody_progress_end(ody_progress *p);

/* ---------------------------------------------------------------- RNG */

/* xoshiro256** (Blackman & Vigna), seeded through splitmix64.  Small and
 * fast for the hot loops of the forest; each tree / stream owns one, so
 * results never depend on thread scheduling.  ody_rng_stream(seed, k) gives
 * independent streams for k = 0, 1, 2, ... */
typedef struct ody_rng { unsigned long long s[4]; } ody_rng;

static inline unsigned long long ody_splitmix64(unsigned long long *x)
{
    unsigned long long z = (*x += 0x9E3779B97F4A7C15ULL);
    z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ULL;
    z = (z ^ (z >> 27)) * 0x94D049BB133111EBULL;
    return z ^ (z >> 31);
}

static inline void ody_rng_stream(ody_rng *r, unsigned long long seed, unsigned long long k)
{
    unsigned long long x = seed ^ (0xD1B54A32D192ED03ULL * (k + 1));
    for (int i = 0; i < 4; i++) r->s[i] = ody_splitmix64(&x);
}

static inline unsigned long long ody_rng_next(ody_rng *r)
{
    unsigned long long *s = r->s;
    unsigned long long t = s[1] << 17, x = s[1] * 5;
    unsigned long long res = ((x << 7) | (x >> 57)) * 9;
    s[2] ^= s[0]; s[3] ^= s[1]; s[1] ^= s[2]; s[0] ^= s[3];
    s[2] ^= t;
    s[3] = (s[3] << 45) | (s[3] >> 19);
    return res;
}

/* Uniform integer in [0, n), n >= 1 (Lemire's multiply-shift; the bias is
 * below 2^-32 for the n used here). */
static inline unsigned long long ody_rng_below(ody_rng *r, unsigned long long n)
{
    return (unsigned long long)(((unsigned __int128)ody_rng_next(r) * n) >> 64);
}

/* Uniform double in [0, 1). */
static inline double ody_rng_uniform(ody_rng *r)
{
    return (double)(ody_rng_next(r) >> 11) * 0x1.0p-53;
}

/* Counter-based draws: number k of stream `key`, computed directly with no
 * state, for values that are drawn where they are needed, in any order, by
 * any thread (the forest's synthetic rows).  ody_draw_key(seed, k) makes
 * independent stream keys. */
static inline unsigned long long ody_draw_key(unsigned long long seed, unsigned long long k)
{
    unsigned long long x = seed ^ (0xD1B54A32D192ED03ULL * (k + 1));
    return ody_splitmix64(&x);
}

static inline unsigned long long ody_draw(unsigned long long key, unsigned long long k)
{
    unsigned long long x = key ^ (0xA0761D6478BD642FULL * (k + 1));
    return ody_splitmix64(&x);
}

/* ---------------------------------------------------------------- misc */

const char *ody_version(void);

/* Case-insensitive edit distance, used to suggest the closest valid name. */
int ody_edit_distance(const char *a, const char *b);

/* Copies src into a malloc'd string; NULL on allocation failure. */
char *ody_strdup(const char *src);

/* Wall-clock seconds from an arbitrary origin (monotonic). */
double ody_now(void);

/* Threads for a parallel region: requested when > 0, else every core
 * OpenMP sees.  Every parallel function takes its thread count from its
 * caller (no library call changes OpenMP's global setting), and results
 * never depend on it. */
int ody_threads(int requested);

/* OpenBLAS's own threads off for a parallel region whose threads each call
 * BLAS on small blocks (threads inside threads oversubscribe the cores):
 * returns the previous setting for ody_blas_restore.  OpenBLAS keeps the
 * setting process-wide, so the pair brackets one parallel region. */
int ody_blas_single(void);
void ody_blas_restore(int prev);

/* Bytes of physical memory of this machine (0 when unknown). */
double ody_phys_memory(void);

/* ---------------------------------------------------------------- numbers as text */

/* The text snprintf gives for "%.<digits>g" (digits 1 to 17; else "%g")
 * and for "%lld", without printf: libquadmath (OpenBLAS's Fortran runtime
 * loads it) registers a printf type, and from then on glibc parses every
 * printf format in the process on its slow positional path, a fifth of a
 * CSV export's time.  strfromd shares printf's digit generation but not
 * its parser.  Both write at most len - 1 characters and a NUL; they
 * return the length the whole text would take. */
int ody_fmt_g(char *buf, size_t len, int digits, double v);
int ody_fmt_ll(char *buf, size_t len, long long v);

/* ---------------------------------------------------------------- processes */

/* The processes of a distributed run (MPI ranks), as the library sees them:
 * a table of collective operations that every process calls in the same
 * order with buffers of the same shape.  A NULL ody_comm is one process
 * alone, and every ody_comm_* / ody_share / ody_allreduce call below then
 * does nothing (or the local copy).  The MPI table is made in par/ so that
 * no other layer links MPI.
 *
 * Results never depend on the number of processes: every reduction is of
 * integers (sums in any order are exact), and every floating-point result
 * is computed by exactly one process and then shared. */
typedef enum {
    ODY_SUM_I64 = 0,   /* int64_t */
    ODY_SUM_U32 = 1,   /* uint32_t */
    ODY_SUM_I128 = 2,  /* __int128: fixed-point sums of doubles */
    ODY_MAX_INT = 3    /* int: agreeing on an error */
} ody_red;

typedef struct ody_comm {
    int rank, size;
    void *impl;
    /* bytes at buf on process root copied to buf on every process */
    int (*bcast)(const struct ody_comm *c, void *buf, size_t bytes, int root);
    /* n values at v reduced elementwise over the processes, in place on all */
    int (*allreduce)(const struct ody_comm *c, void *v, size_t n, ody_red op);
    /* every process's `bytes` bytes at mine (sizes may differ, each below
     * 2 GB) to process root, concatenated in process order into all; the
     * sizes into sizes[size] there.  all and sizes matter on root only,
     * where all holds the sum of the sizes (the caller learns them first
     * by a reduction, or allows enough). */
    int (*gather)(const struct ody_comm *c, const void *mine, size_t bytes, void *all, size_t *sizes, int root);
    /* bytes this process has passed to the collectives so far (what the
     * run log reports per stage: counted, not estimated) */
    double (*bytes)(const struct ody_comm *c);
    /* One copy of `bytes` bytes that every process reads and writes, when
     * the processes share one machine (MPI-3 shared memory); NULL when they
     * do not, or when out of memory (on every process alike).  Each process
     * writes only its own part; shared_sync (every process, together)
     * makes every write visible to all; shared_free (together) releases
     * it.  *h is the handle.  Functions may be NULL: no shared memory. */
    void *(*shared_alloc)(const struct ody_comm *c, size_t bytes, void **h);
    int (*shared_sync)(const struct ody_comm *c, void *h);
    void (*shared_free)(const struct ody_comm *c, void *h);
    /* n values at v reduced elementwise over the processes into v on
     * process root alone (v elsewhere is then unspecified): half an
     * allreduce's traffic when one process needs the result.  NULL: none
     * (ody_reduce then takes allreduce). */
    int (*reduce)(const struct ody_comm *c, void *v, size_t n, ody_red op, int root);
    /* each process's scount[p] bytes for process p (consecutive at send,
     * in process order) to p, which receives every process's in process
     * order at recv, rcount[q] bytes from q (known to it beforehand); each
     * process's sum of either below 2 GB */
    int (*alltoallv)(const struct ody_comm *c, const void *send, const size_t *scount, void *recv,
                     const size_t *rcount);
} ody_comm;

static inline int ody_comm_rank(const ody_comm *c) { return c ? c->rank : 0; }
static inline int ody_comm_size(const ody_comm *c) { return c ? c->size : 1; }

/* The rows [*lo, *hi) of n that process p owns: contiguous blocks in
 * process order, sizes differing by at most one (ody_part with the
 * communicator's size; NULL: one part). */
void ody_comm_part(const ody_comm *c, int p, size_t n, size_t *lo, size_t *hi);
void ody_part(size_t n, int parts, int p, size_t *lo, size_t *hi);
/* The part (ody_part) that row i of n falls in. */
int ody_part_of(size_t n, int parts, size_t i);

/* Each process p's bytes [off[p], off[p + 1]) of buf sent to every other
 * process: afterwards every process holds all of buf.  0 or ODY_EIO. */
int ody_share(const ody_comm *c, void *buf, const size_t *off, ody_err *err);

/* Each process's own rows [lo, hi) (ody_comm_part) of an n-row array of
 * row_bytes-byte rows at a, sent to every other process: afterwards every
 * process holds the whole array.  0 or ODY_EIO. */
int ody_share_rows(const ody_comm *c, void *a, size_t n, size_t row_bytes, ody_err *err);

/* The whole n-row array of row_bytes-byte rows, each process holding its
 * own rows [lo, hi) (ody_comm_part) at mine, into *all on every process
 * (malloc'd, n rows; the caller frees it).  Every process calls it
 * together; on error (ODY_ENOMEM, ODY_EIO, on every process alike) *all is
 * NULL.  The counterpart of keeping only one's rows, for the few steps
 * that read every row. */
int ody_gather_rows(const ody_comm *c, const void *mine, size_t n, size_t row_bytes, void **all, ody_err *err);

/* Every process's `bytes` bytes at mine (each below 2 GB, their sum too)
 * concatenated in process order into all on process root, with each
 * process's size in sizes[p] there (all and sizes matter on root only; all
 * holds enough: the caller knows the sizes).  One process alone: a copy.
 * 0 or ODY_EIO. */
int ody_gather(const ody_comm *c, const void *mine, size_t bytes, void *all, size_t *sizes, int root, ody_err *err);

/* A personal exchange: this process's scount[p] bytes for each process p
 * (consecutive at send, in process order) to p.  *recv gets (malloc'd, at
 * least one byte; the caller frees it) what every process sent this one,
 * in process order, rcount[q] bytes from q (rcount has a slot a process).
 * Every process calls it together, also with nothing to send.  One process
 * alone: a copy.  0, or ODY_ENOMEM / ODY_EIO on every process alike, *recv
 * then NULL.  What lets a process ask the owners of the rows it names for
 * their values without any process holding every row. */
int ody_exchange(const ody_comm *c, const void *send, const size_t *scount, void **recv, size_t *rcount,
                 ody_err *err);

/* The k-th smallest (from 0) of the values of every process (n at v here),
 * exactly and the same on every process, with no process holding more than
 * its own: a radix selection on the values' order-preserving 64-bit keys, 8
 * bits a round, each round's 256 counts summed over the processes (8
 * reductions, 8 passes over v).  -0 orders below +0; no NaN.  0, ODY_EIO,
 * or ODY_EINTERNAL when k is not below the values' count. */
int ody_select(const ody_comm *c, const double *v, size_t n, uint64_t k, double *out, ody_err *err);

/* bytes at buf on process root copied to buf on every process (one
 * process alone: nothing to do).  0 or ODY_EIO. */
int ody_bcast(const ody_comm *c, void *buf, size_t bytes, int root, ody_err *err);

/* n values at v reduced in place over the processes.  0 or ODY_EIO. */
int ody_allreduce(const ody_comm *c, void *v, size_t n, ody_red op, ody_err *err);

/* The same into v on process root alone (root < 0: on every process, as
 * ody_allreduce); v on the others is then unspecified.  0 or ODY_EIO. */
int ody_reduce(const ody_comm *c, void *v, size_t n, ody_red op, int root, ody_err *err);

/* Whether any process has rc != 0: every process calls it at the same point
 * after work that may fail on some only, so that none waits forever in the
 * next collective for one that has given up.  Returns 0 when none failed,
 * else on every process the code of the lowest-numbered process that failed;
 * that process keeps its message in err, every other one gets an empty
 * message (one line to show, not one per process).  A failure agreed on
 * before and agreed on again keeps its message: the lowest failing process
 * that still has one is the one. */
int ody_comm_agree(const ody_comm *c, int rc, ody_err *err);

#endif
