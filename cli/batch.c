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
#include "run.h"

typedef struct jobstate {
    pid_t pid;
    double t0, wall;
    int status;       /* exit code, -1 while running */
    char objects[32], top[160];
} jobstate;

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
        if (!strncmp(line, "top_id=", 7)) snprintf(s->top, sizeof s->top, "%.159s", line + 7);
    }
    fclose(f);
}

static pid_t spawn(const cli_batch_opt *o, const cfg_job *j, const char *logpath)
{
    int argc = 0;
    char **argv = calloc((size_t)(6 + 2 * j->n_set), sizeof *argv);
    if (!argv) return -1;
    argv[argc++] = (char *)o->exe;
    argv[argc++] = "-q";
    argv[argc++] = "run";
    argv[argc++] = j->config;
    for (int k = 0; k < j->n_set; k++) {
        argv[argc++] = "--set";
        argv[argc++] = j->set[k];
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
    return pid;
}

int cli_batch(const char *batch_file, const cli_batch_opt *o, FILE *out, int *n_failed, const ody_log *log,
              ody_err *err)
{
    cfg_batch *b = NULL;
    int rc = cfg_batch_load(batch_file, &b, err);
    if (rc) return rc;
    /* Check every config before starting anything: a typo fails fast. */
    for (int j = 0; j < b->n_jobs; j++) {
        cfg *c = NULL;
        ody_err e2;
        if (cfg_load(b->jobs[j].config, b->jobs[j].set, b->jobs[j].n_set, &c, &e2)) {
            rc = ody_fail(err, e2.code, "batch run '%s': %s", b->jobs[j].name, e2.msg);
            cfg_batch_destroy(b);
            return rc;
        }
        cfg_destroy(c);
    }
    char *dir = NULL;
    const char *sl = strrchr(batch_file, '/');
    dir = sl ? strndup(batch_file, (size_t)(sl - batch_file) + (sl == batch_file)) : strdup(".");
    char *absdir = dir ? realpath(dir, NULL) : NULL;
    free(dir);
    jobstate *js = calloc((size_t)b->n_jobs, sizeof *js);
    if (!absdir || !js) { free(absdir); free(js); cfg_batch_destroy(b); return ody_fail(err, ODY_ENOMEM, "out of memory"); }
    char logdir[4096];
    snprintf(logdir, sizeof logdir, "%s/batch_runs", absdir);
    mkdir(logdir, 0777);
    int at_once = o->jobs > 0 ? o->jobs : b->jobs_at_once > 0 ? b->jobs_at_once : 1;
    int next = 0, running = 0, finished = 0;
    for (int j = 0; j < b->n_jobs; j++) js[j].status = -1;
    while (finished < b->n_jobs) {
        while (running < at_once && next < b->n_jobs) {
            char lp[4400];
            snprintf(lp, sizeof lp, "%s/%s.log", logdir, b->jobs[next].name);
            js[next].t0 = ody_now();
            js[next].pid = spawn(o, &b->jobs[next], lp);
            ody_logf(log, ODY_LOG_INFO, "batch: started %s", b->jobs[next].name);
            if (js[next].pid < 0) { js[next].status = 126; finished++; }
            else running++;
            next++;
        }
        int st = 0;
        pid_t pid = wait(&st);
        if (pid < 0) { if (errno == EINTR) continue; break; }
        for (int j = 0; j < b->n_jobs; j++) {
            if (js[j].pid != pid || js[j].status != -1) continue;
            js[j].wall = ody_now() - js[j].t0;
            js[j].status = WIFEXITED(st) ? WEXITSTATUS(st) : 128 + WTERMSIG(st);
            read_summary(&b->jobs[j], absdir, &js[j]);
            ody_logf(log, ODY_LOG_INFO, "batch: %s %s", b->jobs[j].name, js[j].status ? "failed" : "done");
            running--;
            finished++;
        }
    }
    /* The summary table, on screen and as CSV. */
    char csvp[4200];
    if (o->summary_csv) snprintf(csvp, sizeof csvp, "%s", o->summary_csv);
    else snprintf(csvp, sizeof csvp, "%s/batch_summary.csv", absdir);
    FILE *csv = fopen(csvp, "w");
    if (csv) fprintf(csv, "run,status,wall_s,n_objects,top_object,log\n");
    fprintf(out, "%-32s %-8s %9s %10s  %s\n", "run", "status", "wall [s]", "objects", "top object");
    int failed = 0;
    for (int j = 0; j < b->n_jobs; j++) {
        const char *status = js[j].status == 0 ? "ok" : "FAILED";
        failed += js[j].status != 0;
        fprintf(out, "%-32s %-8s %9.2f %10s  %s\n", b->jobs[j].name, status, js[j].wall, js[j].objects, js[j].top);
        if (csv)
            fprintf(csv, "%s,%s,%.3f,%s,%s,%s/%s.log\n", b->jobs[j].name, js[j].status == 0 ? "ok" : "failed",
                    js[j].wall, js[j].objects, js[j].top, logdir, b->jobs[j].name);
    }
    if (failed) fprintf(out, "%d of %d runs failed; their logs are in %s/\n", failed, b->n_jobs, logdir);
    fprintf(out, "summary: %s\n", csvp);
    if (csv) fclose(csv);
    *n_failed = failed;
    free(js);
    free(absdir);
    cfg_batch_destroy(b);
    return 0;
}
