/* atomic_out.h: outputs appear whole or not at all (DESIGN.md 2).
 * A tool writes into a temporary file beside the target (same directory, so rename is
 * atomic), then commits: fsync the file, rename it over the target, fsync the directory.
 * Temporaries not yet committed are removed at exit and on SIGINT, SIGTERM, SIGHUP
 * (pending.h, installed by amlfs_tool_start). Depends on: pending, tool. */
#ifndef AMLFS_ATOMIC_OUT_H
#define AMLFS_ATOMIC_OUT_H

/* Reserve a temporary path beside target: "DIR/.NAME.tmp.XXXXXX". Exit 1 naming the
 * target when its directory cannot be written. Returns a string owned by the module. */
const char *amlfs_out_begin(const char *target);

/* fsync the temporary, rename it to its target, fsync the directory. Exit 1 with the
 * reason on failure (the temporary is removed, the old target is untouched). */
void amlfs_out_commit(const char *tmp);

/* Remove a temporary that will not be committed. */
void amlfs_out_abandon(const char *tmp);

/* The --stats sidecar of a tool that computes (amlfs-train-epoch, amlfs-eval): the
 * images it processed and the seconds that took, as the lines "images=N" and
 * "seconds=S", written atomically. Scripts sum these instead of reading logs; the
 * HDF5 outputs hold no wall-clock time (DESIGN.md 2). */
void amlfs_stats_write(const char *path, long long images, double seconds);

#endif
