/* batch.c — running the jobs of a batch file as child processes. */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include "cfg.h"
#include "cli.h"
#include "fitsout.h"
#include "run.h"

typedef struct jobstate {
    pid_t pid;
    double t0, wall;
    int status;       /* exit code, -1 while running */
    char objects[32], top[CAT_ID_MAX + 1];
    char reason[240];  /* a failed run's error line, from its log */
} jobstate;

/* The last "oddsky: error: " line of a failed job's log, as its reason. */
static void read_reason(const char *logpath, jobstate *s)
{
    snprintf(s->reason, sizeof s->reason, "see its log");
    FILE *f = fopen(logpath, "r");
    if (!f) return;
    char line[1200];
    while (fgets(line, sizeof line, f)) {
        line[strcspn(line, "\n")] = 0;
        if (!strncmp(line, "oddsky: error: ", 15)) snprintf(s->reason, sizeof s->reason, "%.239s", line + 15);
    }
    fclose(f);
}

/* Reads N_OBJECTS / TOP_ID from the job's summary.txt. */
static void read_summary(const cfg_job *j, const char *absdir, jobstate *s)
{
    char path[4096];
    snprintf(path, sizeof path, "%s/batch_runs/%s/summary.txt", absdir, j->name);
    snprintf(s->objects, sizeof s->objects, "-");
    snprintf(s->top, sizeof s->top, "-");
    FILE *f = fopen(path, "r");
    if (!f) return;
    char line[512];
    while (fgets(line, sizeof line, f)) {
        line[strcspn(line, "\n")] = 0;
        if (!strncmp(line, "n_objects=", 10)) snprintf(s->objects, sizeof s->objects, "%.31s", line + 10);
        if (!strncmp(line, "top_id=", 7)) snprintf(s->top, sizeof s->top, "%.255s", line + 7);  /* CAT_ID_MAX */
    }
    fclose(f);
}

/* A run's overrides: its own, then those given to `oddsky batch --set`
 * (which win).  The array is malloc'd; the strings are borrowed. */
static char **job_sets(const cli_batch_opt *o, const cfg_job *j, int *n)
{
    char **v = calloc((size_t)(j->n_set + o->n_set + 1), sizeof *v);
    if (!v) return NULL;
    *n = 0;
    for (int k = 0; k < j->n_set; k++) v[(*n)++] = j->set[k];
    for (int k = 0; k < o->n_set; k++) v[(*n)++] = o->set[k];
    return v;
}

static pid_t spawn(const cli_batch_opt *o, const cfg_job *j, const char *logpath)
{
    int argc = 0, ns = 0;
    char **sets = job_sets(o, j, &ns);
    char **argv = calloc((size_t)(6 + 2 * ns), sizeof *argv);
    if (!argv || !sets) { free(argv); free(sets); return -1; }
    argv[argc++] = (char *)o->exe;
    argv[argc++] = "-q";
    argv[argc++] = "run";
    argv[argc++] = j->config;
    for (int k = 0; k < ns; k++) {
        argv[argc++] = "--set";
        argv[argc++] = sets[k];
    }
    argv[argc] = NULL;
    pid_t pid = fork();
    if (pid == 0) {
        int fd = open(logpath, O_WRONLY | O_CREAT | O_TRUNC, 0666);
        if (fd >= 0) { dup2(fd, 2); dup2(fd, 1); close(fd); }
        execv(o->exe, argv);
        _exit(127);
    }
    free(argv);
    free(sets);
    return pid;
}

/* Checks every config before starting anything: a typo fails fast. */
static int check_configs(const cfg_batch *b, const cli_batch_opt *o, ody_err *err)
{
    for (int j = 0; j < b->n_jobs; j++) {
        cfg *c = NULL;
        ody_err e2;
        int ns = 0;
        char **sets = job_sets(o, &b->jobs[j], &ns);
        if (!sets) return ody_fail(err, ODY_ENOMEM, "out of memory");
        int rc = cfg_load(b->jobs[j].config, sets, ns, &c, &e2);
        free(sets);
        if (rc) return ody_fail(err, e2.code, "batch run '%s': %s", b->jobs[j].name, e2.msg);
        cfg_destroy(c);
    }
    return 0;
}

/* A batch under way: its jobs, where their logs go, how many at once. */
typedef struct batchrun {
    const cfg_batch *b;
    const cli_batch_opt *o;
    jobstate *js;
    char absdir[4096], logdir[4200];
    const ody_log *log;
} batchrun;

static void job_log(const batchrun *br, int j, char *buf, size_t len)
{
    snprintf(buf, len, "%s/%s.log", br->logdir, br->b->jobs[j].name);
}

/* The job that ended with wait status st. */
static void job_ended(batchrun *br, pid_t pid, int st)
{
    for (int j = 0; j < br->b->n_jobs; j++) {
        jobstate *s = &br->js[j];
        if (s->pid != pid || s->status != -1) continue;
        s->wall = ody_now() - s->t0;
        s->status = WIFEXITED(st) ? WEXITSTATUS(st) : 128 + WTERMSIG(st);
        read_summary(&br->b->jobs[j], br->absdir, s);
        if (s->status) {
            char lp[4500];
            job_log(br, j, lp, sizeof lp);
            read_reason(lp, s);
        }
        ody_logf(br->log, ODY_LOG_INFO, "batch: %s %s", br->b->jobs[j].name, s->status ? "failed" : "done");
    }
}

/* Runs every job, at_once at a time, until all have ended. */
static void run_jobs(batchrun *br, int at_once)
{
    const cfg_batch *b = br->b;
    int next = 0, running = 0, finished = 0;
    for (int j = 0; j < b->n_jobs; j++) br->js[j].status = -1;
    while (finished < b->n_jobs) {
        for (; running < at_once && next < b->n_jobs; next++) {
            char lp[4500];
            job_log(br, next, lp, sizeof lp);
            br->js[next].t0 = ody_now();
            br->js[next].pid = spawn(br->o, &b->jobs[next], lp);
            ody_logf(br->log, ODY_LOG_INFO, "batch: started %s", b->jobs[next].name);
            if (br->js[next].pid < 0) {
                br->js[next].status = 126;
                snprintf(br->js[next].reason, sizeof br->js[next].reason, "could not start (%s)", strerror(errno));
                finished++;
            } else {
                running++;
            }
        }
        int st = 0;
        pid_t pid = wait(&st);
        if (pid < 0) {
            if (errno == EINTR) continue;
            break;
        }
        job_ended(br, pid, st);
        running--;
        finished++;
    }
}

/* The summary table on out, and as CSV; the number of failed runs. */
static int summarize(const batchrun *br, FILE *out)
{
    const cfg_batch *b = br->b;
    char csvp[4200];
    if (br->o->summary_csv) snprintf(csvp, sizeof csvp, "%s", br->o->summary_csv);
    else snprintf(csvp, sizeof csvp, "%s/batch_summary.csv", br->absdir);
    fitsout_text t;
    ody_err e;
    int have_csv = fitsout_text_open(&t, csvp, &e) == 0;
    if (!have_csv) ody_logf(br->log, ODY_LOG_WARN, "%s", e.msg);
    if (have_csv) fprintf(t.f, "run,status,wall_s,n_objects,top_object,reason,log\n");
    fprintf(out, "%-32s %-8s %9s %10s  %s\n", "run", "status", "wall [s]", "objects", "top object / reason");
    int failed = 0;
    for (int j = 0; j < b->n_jobs; j++) {
        const jobstate *s = &br->js[j];
        failed += s->status != 0;
        fprintf(out, "%-32s %-8s %9.2f %10s  %s\n", b->jobs[j].name, s->status == 0 ? "ok" : "FAILED", s->wall,
                s->objects, s->status == 0 ? s->top : s->reason);
        if (have_csv)
            fprintf(t.f, "%s,%s,%.3f,%s,%s,\"%s\",%s/%s.log\n", b->jobs[j].name, s->status == 0 ? "ok" : "failed",
                    s->wall, s->objects, s->top, s->status == 0 ? "" : s->reason, br->logdir, b->jobs[j].name);
    }
    if (failed) fprintf(out, "%d of %d runs failed; their logs are in %s/\n", failed, b->n_jobs, br->logdir);
    if (have_csv && fitsout_text_commit(&t, &e) == 0) fprintf(out, "summary: %s\n", csvp);
    else if (have_csv) ody_logf(br->log, ODY_LOG_WARN, "%s", e.msg);
    return failed;
}

int cli_batch(const char *batch_file, const cli_batch_opt *o, FILE *out, int *n_failed, const ody_log *log,
              ody_err *err)
{
    cfg_batch *b = NULL;
    int rc = cfg_batch_load(batch_file, &b, err);
    if (!rc) rc = check_configs(b, o, err);
    batchrun br = {b, o, NULL, "", "", log};
    if (!rc) {
        const char *sl = strrchr(batch_file, '/');
        char *dir = sl ? strndup(batch_file, (size_t)(sl - batch_file) + (sl == batch_file)) : strdup(".");
        char *abs = dir ? realpath(dir, NULL) : NULL;
        br.js = calloc((size_t)b->n_jobs, sizeof *br.js);
        if (!abs || !br.js) rc = ody_fail(err, ODY_ENOMEM, "out of memory");
        else snprintf(br.absdir, sizeof br.absdir, "%s", abs);
        free(dir);
        free(abs);
    }
    if (!rc) {
        snprintf(br.logdir, sizeof br.logdir, "%s/batch_runs", br.absdir);
        if (mkdir(br.logdir, 0777) && errno != EEXIST)
            rc = ody_fail(err, ODY_EIO, "%s: cannot create the folder (%s)", br.logdir, strerror(errno));
    }
    if (!rc) {
        run_jobs(&br, o->jobs > 0 ? o->jobs : b->jobs_at_once > 0 ? b->jobs_at_once : 1);
        *n_failed = summarize(&br, out);
    }
    free(br.js);
    cfg_batch_destroy(b);
    return rc;
}
