/* par.h — the processes of a distributed run over MPI (prefix par_).
 *
 * The library never calls MPI: it takes an ody_comm (core/ody.h), a table
 * of collectives.  This layer makes that table from MPI_COMM_WORLD for the
 * command, and only this layer and the command link MPI.  A build without
 * MPI (configure found no OpenMPI, or -DODDSKY_MPI=OFF) still compiles it:
 * par_init then gives one process, and refuses to start under mpirun, where
 * every copy would run the whole job and write the same files. */
#ifndef PAR_H
#define PAR_H

#include "ody.h"

/* Starts MPI when this process was started by an MPI launcher (mpirun,
 * srun: their environment says so); a process started by hand stays one
 * process and does not touch MPI.  On success *comm is the world's table
 * (NULL for one process alone, MPI or not) owned by this layer until
 * par_finish.  ODY_EINPUT when started under mpirun by a build without MPI. */
int par_init(ody_comm **comm, ody_err *err);

/* Ends MPI (when par_init started it) and frees the table.  comm may be NULL. */
void par_finish(ody_comm *comm);

/* Stops every process of the run with exit code `code`: for the command,
 * after a failure on one process that the others may be waiting for.
 * Returns only when comm is NULL. */
void par_abort(const ody_comm *comm, int code);

/* 1 when this build has MPI. */
int par_have_mpi(void);

#endif
