/* par.c — ody_comm over MPI_COMM_WORLD. */
#include "par.h"

#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#ifdef ODY_HAVE_MPI
#include <mpi.h>
#endif

/* The launcher's word that this process is one of several. */
static int launched_size(void)
{
    const char *v[] = {"OMPI_COMM_WORLD_SIZE", "PMI_SIZE", "PMIX_SIZE", "SLURM_NTASKS"};
    for (size_t k = 0; k < sizeof v / sizeof *v; k++) {
        const char *s = getenv(v[k]);
        if (s && *s) return atoi(s);
    }
    return getenv("PMIX_RANK") || getenv("PMI_RANK") ? 2 : 0;
}

#ifdef ODY_HAVE_MPI

int par_have_mpi(void) { return 1; }

typedef struct par_impl {
    MPI_Datatype i128;
    MPI_Op sum128;
    double bytes;   /* passed to collectives so far */
    MPI_Comm node;  /* the processes of this machine: all of them, or MPI_COMM_NULL */
} par_impl;

/* MPI counts are ints: big buffers go in pieces. */
#define PIECE ((size_t)1 << 30)

static int bcast(const ody_comm *c, void *buf, size_t bytes, int root)
{
    ((par_impl *)c->impl)->bytes += (double)bytes;
    for (size_t at = 0; at < bytes; at += PIECE) {
        size_t b = bytes - at < PIECE ? bytes - at : PIECE;
        if (MPI_Bcast((char *)buf + at, (int)b, MPI_BYTE, root, MPI_COMM_WORLD) != MPI_SUCCESS) return -1;
    }
    return 0;
}

static void add128(void *in, void *inout, int *len, MPI_Datatype *type)
{
    (void)type;
    const __int128 *a = in;
    __int128 *b = inout;
    for (int k = 0; k < *len; k++) b[k] += a[k];
}

/* allreduce (root < 0) or reduce to root. */
static int reduce_to(const ody_comm *c, void *v, size_t n, ody_red op, int root)
{
    const par_impl *p = c->impl;
    MPI_Datatype t = op == ODY_SUM_I64 ? MPI_INT64_T : op == ODY_SUM_U32 ? MPI_UINT32_T
                   : op == ODY_SUM_I128 ? p->i128 : MPI_INT;
    MPI_Op o = op == ODY_MAX_INT ? MPI_MAX : op == ODY_SUM_I128 ? p->sum128 : MPI_SUM;
    size_t w = op == ODY_SUM_I64 ? 8 : op == ODY_SUM_I128 ? 16 : 4, piece = PIECE / w;
    ((par_impl *)c->impl)->bytes += (double)(n * w);
    for (size_t at = 0; at < n; at += piece) {
        size_t m = n - at < piece ? n - at : piece;
        void *at_v = (char *)v + at * w;
        int rc = root < 0 ? MPI_Allreduce(MPI_IN_PLACE, at_v, (int)m, t, o, MPI_COMM_WORLD)
               : root == c->rank ? MPI_Reduce(MPI_IN_PLACE, at_v, (int)m, t, o, root, MPI_COMM_WORLD)
                                 : MPI_Reduce(at_v, NULL, (int)m, t, o, root, MPI_COMM_WORLD);
        if (rc != MPI_SUCCESS) return -1;
    }
    return 0;
}

static int allreduce(const ody_comm *c, void *v, size_t n, ody_red op) { return reduce_to(c, v, n, op, -1); }

static int reduce(const ody_comm *c, void *v, size_t n, ody_red op, int root) { return reduce_to(c, v, n, op, root); }

static int gather(const ody_comm *c, const void *mine, size_t bytes, void *all, size_t *sizes, int root)
{
    ((par_impl *)c->impl)->bytes += (double)bytes;
    if (bytes > (size_t)INT32_MAX) return -1;
    int me = (int)bytes, *cnt = NULL, *off = NULL, rc = 0;
    if (c->rank == root) {
        cnt = malloc((size_t)c->size * sizeof *cnt);
        off = malloc((size_t)c->size * sizeof *off);
        if (!cnt || !off) rc = -1;
    }
    /* every process takes part even when root is short of memory: the sizes
     * go first, so no process is left waiting */
    if (MPI_Gather(&me, 1, MPI_INT, cnt, 1, MPI_INT, root, MPI_COMM_WORLD) != MPI_SUCCESS) rc = -1;
    size_t at = 0;
    for (int p = 0; c->rank == root && cnt && off && p < c->size; p++) {
        off[p] = (int)at;
        sizes[p] = (size_t)cnt[p];
        at += (size_t)cnt[p];
        if (at > (size_t)INT32_MAX) rc = -1;
    }
    if (MPI_Gatherv(mine, me, MPI_BYTE, rc ? NULL : all, cnt, off, MPI_BYTE, root, MPI_COMM_WORLD) != MPI_SUCCESS)
        rc = -1;
    free(cnt);
    free(off);
    return rc;
}

/* Counts and displacements of bytes as MPI's ints: -1 when they do not fit. */
static int int_counts(const size_t *n, int R, int *cnt, int *off)
{
    size_t at = 0;
    for (int p = 0; p < R; p++) {
        if (n[p] > (size_t)INT32_MAX || at > (size_t)INT32_MAX) return -1;
        cnt[p] = (int)n[p];
        off[p] = (int)at;
        at += n[p];
    }
    return at > (size_t)INT32_MAX ? -1 : 0;
}

static int alltoallv(const ody_comm *c, const void *send, const size_t *scount, void *recv, const size_t *rcount)
{
    size_t R = (size_t)c->size;
    int small[4 * 64], *v = R <= 64 ? small : malloc(4 * R * sizeof *v), rc = 0;
    if (!v) return -1;  /* (past 64 processes only: the others then wait; as gather's sizes, a few bytes a process) */
    for (size_t p = 0; p < R; p++) ((par_impl *)c->impl)->bytes += (double)scount[p];
    /* every process takes part: one whose counts do not fit sends and receives nothing, and the
     * processes then agree on the failure (ody_exchange) */
    if (int_counts(scount, c->size, v, v + R) || int_counts(rcount, c->size, v + 2 * R, v + 3 * R)) {
        memset(v, 0, 4 * R * sizeof *v);
        rc = -1;
    }
    if (MPI_Alltoallv(send, v, v + R, MPI_BYTE, recv, v + 2 * R, v + 3 * R, MPI_BYTE, MPI_COMM_WORLD) != MPI_SUCCESS)
        rc = -1;
    if (v != small) free(v);
    return rc;
}

static double moved(const ody_comm *c) { return ((const par_impl *)c->impl)->bytes; }

/* Shared memory: a window of process 0's memory, mapped by every process
 * (all on one machine), in one passive-target epoch from allocation to
 * free, as MPI-3's unified model asks for plain loads and stores. */
static void *shared_alloc(const ody_comm *c, size_t bytes, void **h)
{
    const par_impl *p = c->impl;
    *h = NULL;
    if (p->node == MPI_COMM_NULL) return NULL;
    MPI_Win *win = malloc(sizeof *win);
    char *base = NULL;
    int ok = win != NULL, all;
    MPI_Allreduce(&ok, &all, 1, MPI_INT, MPI_MIN, p->node);
    if (!all) { free(win); return NULL; }
    if (MPI_Win_allocate_shared(c->rank == 0 ? (MPI_Aint)bytes : 0, 1, MPI_INFO_NULL, p->node, &base, win) !=
        MPI_SUCCESS) {
        free(win);
        return NULL;
    }
    MPI_Aint sz;
    int disp;
    MPI_Win_shared_query(*win, 0, &sz, &disp, &base);
    MPI_Win_lock_all(MPI_MODE_NOCHECK, *win);
    *h = win;
    return base;
}

static int shared_sync(const ody_comm *c, void *h)
{
    const par_impl *p = c->impl;
    MPI_Win *win = h;
    return MPI_Win_sync(*win) != MPI_SUCCESS || MPI_Barrier(p->node) != MPI_SUCCESS || MPI_Win_sync(*win) != MPI_SUCCESS
           ? -1 : 0;
}

static void shared_free(const ody_comm *c, void *h)
{
    (void)c;
    MPI_Win *win = h;
    if (!win) return;
    MPI_Win_unlock_all(*win);
    MPI_Win_free(win);
    free(win);
}

int par_init(ody_comm **comm, ody_err *err)
{
    *comm = NULL;
    if (launched_size() < 1) return 0;
    int provided, rank, size;
    /* serialized: the export calls MPI from whichever thread writes */
    if (MPI_Init_thread(NULL, NULL, MPI_THREAD_SERIALIZED, &provided) != MPI_SUCCESS)
        return ody_fail(err, ODY_EINPUT, "MPI: cannot start (MPI_Init failed) — run oddsky without mpirun, or check "
                        "the MPI installation with: mpirun -np 2 hostname");
    if (provided < MPI_THREAD_SERIALIZED) {
        MPI_Finalize();
        return ody_fail(err, ODY_EINPUT, "MPI: this MPI library cannot be called from more than one thread "
                        "(MPI_THREAD_SERIALIZED) — use Debian's OpenMPI (libopenmpi-dev)");
    }
    MPI_Comm_rank(MPI_COMM_WORLD, &rank);
    MPI_Comm_size(MPI_COMM_WORLD, &size);
    ody_comm *c = calloc(1, sizeof *c);
    par_impl *p = calloc(1, sizeof *p);
    if (!c || !p) {
        free(c);
        free(p);
        MPI_Finalize();
        return ody_fail(err, ODY_ENOMEM, "out of memory");
    }
    MPI_Type_contiguous(16, MPI_BYTE, &p->i128);
    MPI_Type_commit(&p->i128);
    MPI_Op_create(add128, 1, &p->sum128);
    /* shared memory only when every process is on this machine (and not
     * refused: ODDSKY_MPI_NO_SHARED=1 takes the path of processes on
     * several machines, for tests) */
    int nsize = 0;
    p->node = MPI_COMM_NULL;
    if (MPI_Comm_split_type(MPI_COMM_WORLD, MPI_COMM_TYPE_SHARED, 0, MPI_INFO_NULL, &p->node) == MPI_SUCCESS)
        MPI_Comm_size(p->node, &nsize);
    const char *no = getenv("ODDSKY_MPI_NO_SHARED");
    int one = nsize == size && !(no && *no == '1'), all;
    MPI_Allreduce(&one, &all, 1, MPI_INT, MPI_MIN, MPI_COMM_WORLD);
    if (!all && p->node != MPI_COMM_NULL) MPI_Comm_free(&p->node);
    *c = (ody_comm){rank, size, p, bcast, allreduce, gather, moved, shared_alloc, shared_sync, shared_free, reduce,
                    alltoallv};
    *comm = c;
    return 0;
}

void par_finish(ody_comm *comm)
{
    if (!comm) return;
    par_impl *p = comm->impl;
    if (p->node != MPI_COMM_NULL) MPI_Comm_free(&p->node);
    MPI_Op_free(&p->sum128);
    MPI_Type_free(&p->i128);
    free(p);
    free(comm);
    MPI_Finalize();
}

void par_abort(const ody_comm *comm, int code)
{
    if (comm) MPI_Abort(MPI_COMM_WORLD, code);
}

#else  /* a build without MPI */

int par_have_mpi(void) { return 0; }

int par_init(ody_comm **comm, ody_err *err)
{
    *comm = NULL;
    if (launched_size() > 1)
        return ody_fail(err, ODY_EINPUT, "this oddsky was built without MPI, so under mpirun every process would run "
                        "the whole job — install libopenmpi-dev and rebuild (cmake -S . -B build && cmake --build "
                        "build), or run oddsky without mpirun");
    return 0;
}

void par_finish(ody_comm *comm) { (void)comm; }

void par_abort(const ody_comm *comm, int code)
{
    (void)comm;
    (void)code;
}

#endif
