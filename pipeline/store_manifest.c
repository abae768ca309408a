/* store_manifest.c — what a run folder's record vouches for: the manifest
 * (each stage's hash and time, its artifacts' sizes and the exports'
 * digests) and the folder's lock. */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <unistd.h>

#include "stage.h"

/* ================================================================ artifacts as written */

char *store_files_record(const run_state *st, const stage_def *d)
{
    char *out = NULL, name[256];
    size_t len = 0;
    FILE *m = open_memstream(&out, &len);
    if (!m) return NULL;
    int ok = 1;
    for (int a = 0; d->writes[a] && ok; a++)
        for (int k = 0; ok && stage_artifact(st->c, d, a, k, name, sizeof name); k++) {
            char *p = store_path(st, name);
            long long size = -1;
            uint64_t h = 0;
            struct stat sb;
            if (p && d->digests) h = store_digest(p, &size);
            else if (p && !stat(p, &sb)) size = (long long)sb.st_size;
            ok = size >= 0 && !strchr(name, ' ') && !strchr(name, '=');
            if (ok) fprintf(m, "%s%s=%lld:%llx", ftell(m) ? " " : "", name, size, (unsigned long long)h);
            free(p);
        }
    if (fclose(m) || !ok) {
        free(out);
        return NULL;
    }
    return out;
}

/* What record says of artifact `name`: 1 with its size and digest, else 0. */
static int recorded(const char *record, const char *name, long long *size, uint64_t *h)
{
    size_t n = strlen(name);
    for (const char *q = record; q && *q; q = strchr(q, ' '), q = q ? q + 1 : NULL) {
        unsigned long long d;
        if (!strncmp(q, name, n) && q[n] == '=' && sscanf(q + n + 1, "%lld:%llx", size, &d) == 2) {
            *h = d;
            return 1;
        }
    }
    return 0;
}

int store_files_intact(const run_state *st, const stage_def *d, const char *record, char *why, size_t len)
{
    char name[256];
    for (int a = 0; d->writes[a]; a++)
        for (int k = 0; stage_artifact(st->c, d, a, k, name, sizeof name); k++) {
            char *p = store_path(st, name);
            long long want = -1, size = -1;
            uint64_t h = 0, now = 0;
            struct stat sb;
            int ok = p && access(p, R_OK) == 0;
            if (ok && record && recorded(record, name, &want, &h)) {
                if (h) now = store_digest(p, &size);
                else if (!stat(p, &sb)) size = (long long)sb.st_size;
                ok = size == want && now == h;
            }
            free(p);
            if (!ok) {
                snprintf(why, len, "%s", name);
                return 0;
            }
        }
    return 1;
}

/* ================================================================ manifest */

void store_manifest_read(const run_state *st, uint64_t *done, double *secs, char **files, uint64_t *input_sum)
{
    for (int k = 0; k < run_stage_count; k++) done[k] = 0, secs[k] = 0, files[k] = NULL;
    *input_sum = 0;
    char *p = store_path(st, "manifest.txt");
    FILE *f = p ? fopen(p, "r") : NULL;
    free(p);
    if (!f) return;
    char line[16384], name[64];
    unsigned long long h;
    double t;
    /* the header names the input and its checksum last: "... checksum %016llx" */
    if (fgets(line, sizeof line, f) && line[0] == '#') {
        const char *c = NULL;
        for (const char *q = strstr(line, " checksum "); q; q = strstr(q + 1, " checksum ")) c = q;
        if (c && sscanf(c, " checksum %llx", &h) == 1) *input_sum = h;
    } else rewind(f);
    while (fgets(line, sizeof line, f)) {
        int end = 0, got = line[0] == '#' ? 0 : sscanf(line, "%63s %llx %lf%n", name, &h, &t, &end);
        if (got < 2) continue;
        int k = run_stage_index(name);
        if (k < 0) continue;
        done[k] = h, secs[k] = got == 3 && t >= 0 ? t : 0;
        const char *rest = got == 3 ? line + end + strspn(line + end, " ") : "";
        size_t n = strcspn(rest, "\r\n");
        free(files[k]);
        files[k] = n ? strndup(rest, n) : NULL;  /* out of memory: presence alone is checked */
    }
    fclose(f);
}

int store_manifest_write(const run_state *st, const uint64_t *done, const double *secs, char *const *files,
                         uint64_t input_sum, ody_err *err)
{
    fitsout_text t;
    int rc = store_text_open(st, "manifest.txt", &t, err);
    if (rc) return rc;
    fprintf(t.f, "# stage config+inputs hash, seconds — written by oddsky %s; input %s checksum %016llx\n",
            ody_version(), st->c->cat_path, (unsigned long long)input_sum);
    for (int k = 0; k < run_stage_count; k++)
        if (done[k])
            fprintf(t.f, "%s %016llx %.3f%s%s\n", run_stage_table[k]->name, (unsigned long long)done[k], secs[k],
                    files[k] ? " " : "", files[k] ? files[k] : "");
    return fitsout_text_commit(&t, err);
}

/* ================================================================ the folder's lock */

int store_lock(const run_state *st, int read_only, int *fd, ody_err *err)
{
    *fd = -1;
    char *p = store_path(st, ".oddsky.lock");
    if (!p) return ody_fail(err, ODY_ENOMEM, "out of memory");
    int f = open(p, O_RDWR | O_CREAT | O_CLOEXEC, 0666);
    if (f < 0 && read_only) f = open(p, O_RDONLY | O_CLOEXEC);
    free(p);
    if (f < 0) return 0;  /* a folder that takes no file: the writes that follow say why, if any */
    int r;
    while ((r = flock(f, (read_only ? LOCK_SH : LOCK_EX) | LOCK_NB)) && errno == EINTR) {}
    if (r) {
        int busy = errno == EWOULDBLOCK;
        char pid[32] = "";
        ssize_t n = busy ? pread(f, pid, sizeof pid - 1, 0) : 0;
        pid[n > 0 ? n : 0] = 0;
        pid[strcspn(pid, "\n")] = 0;
        close(f);
        if (!busy) return 0;  /* a file system without locks: as before there was one */
        return ody_fail(err, ODY_EINPUT, "%s: another oddsky is %s this run folder%s%s%s — wait for it to finish "
                        "(or stop it), or give this one another output", st->dir,
                        read_only ? "writing to" : "using", pid[0] ? " (process " : "", pid, pid[0] ? ")" : "");
    }
    if (!read_only) {  /* who holds it, for the message of a process refused */
        char pid[32];
        int n = snprintf(pid, sizeof pid, "%ld\n", (long)getpid());
        if (ftruncate(f, 0) == 0 && pwrite(f, pid, (size_t)n, 0) != n) {}
    }
    *fd = f;
    return 0;
}

void store_unlock(int fd)
{
    if (fd >= 0) close(fd);  /* closing the last descriptor releases the lock */
}
