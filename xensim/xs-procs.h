/*
 * xs-procs: the record of a domain's processes, shared by `xensim run` and xensimd.
 *
 * `xensim run --domid N` puts the command in its own process group and records the group as
 * the file D/dom<N>.procs/<pgid>, holding the leader's start time (field 22 of
 * /proc/<pid>/stat). Destroying the domain sends SIGKILL to every recorded group whose leader
 * is gone or is still the recorded process, so a reused pid is never killed by mistake.
 */
#pragma once

#include <stdint.h>
#include <sys/types.h>

/* Writes the record directory of domain domid in dir into out. Returns 0 or -ENAMETOOLONG. */
int xs_procs_dir(const char *dir, uint32_t domid, char *out, size_t size);

/* The start time of pid, or 0 when it cannot be read. */
uint64_t xs_procs_start_time(pid_t pid);

/* Records process group pgid (whose leader is the caller) for domain domid. 0 or -errno. */
int xs_procs_record(const char *dir, uint32_t domid, pid_t pgid);

/* SIGKILLs every recorded group of domain domid and removes the records. Returns the number
 * of groups signalled. */
int xs_procs_kill_all(const char *dir, uint32_t domid);
