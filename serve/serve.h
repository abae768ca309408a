/* serve.h — the local review page: a small HTTP server on 127.0.0.1 over a
 * run's view (prefix srv_).
 *
 * The page shows the objects to look at next; its buttons label them
 * (interesting / not), which writes the labels file and re-ranks.  Every
 * request must carry the session token, as ?token=T or the header
 * X-Oddsky-Token: T (the page passes it on); anything else gets 403.  The
 * JSON API (docs in docs/REVIEW.md):
 *
 *   GET  /                  the review page
 *   GET  /api/next?n=K      the next K unlabelled objects, best first (1..1000)
 *   GET  /api/object?id=ID  one object
 *   POST /api/label         body {"id": ID, "label": 0 or 1}; ID a string or integer
 *   GET  /api/status        objects, labels, labels file
 *   GET  /img?id=ID         the object's picture (PNG)
 *   GET  /report/FILE       the run's HTML report, when written
 *
 * Requests are handled one at a time, in the order they arrive, on one
 * thread of the server's own: concurrent clicks are each recorded, a label
 * is in the file (written atomically) before its answer is sent, and a
 * client that goes away loses nothing it sent in full.  Bad requests get a
 * 4xx and a JSON {"error": ...}; the server keeps serving.
 */
#ifndef SERVE_H
#define SERVE_H

#include <stddef.h>

#include "ody.h"
#include "report.h"

typedef struct srv_opt {
    int port;                /* 0: any free port */
    const char *token;       /* NULL: 32 random hex digits */
    size_t max_body;         /* bytes of a POST body at most; default 64 KiB */
} srv_opt;

void srv_opt_init(srv_opt *o);

typedef struct srv srv;

/* Starts serving v (borrowed: it must outlive the server, which re-ranks it
 * when labels come in) on 127.0.0.1 only.  *out is the caller's (srv_stop);
 * unchanged on error (e.g. the port is taken). */
int srv_start(rep_view *v, const srv_opt *o, srv **out, ody_err *err);

/* "http://127.0.0.1:PORT/?token=TOKEN". */
const char *srv_url(const srv *s);
int srv_port(const srv *s);

/* Finishes the request in progress, stops and frees. */
void srv_stop(srv *s);

#endif
