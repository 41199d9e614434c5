/* atomic_out.c: temporary files beside their targets, committed by rename.
 * Depends on: pending (the table of live temporaries), tool (messages). */
#include "atomic_out.h"
#include "pending.h"
#include "tool.h"

#include <errno.h>
#include <fcntl.h>
#include <libgen.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

static void dir_of(const char *path, char *dir, size_t size)
{
    char copy[4096];
    snprintf(copy, sizeof copy, "%s", path);
    snprintf(dir, size, "%s", dirname(copy));
}

const char *amlfs_out_begin(const char *target)
{
    amlfs_pending *p = amlfs_pending_free_slot();
    if (!p)
        amlfs_fail(AMLFS_EXIT_FAILED, target, "too many outputs open at once");
    char dir[4096], copy[4096];
    dir_of(target, dir, sizeof dir);
    snprintf(copy, sizeof copy, "%s", target);
    /* the temporary names its writer, HOST-PID, so that a driver starting on a run
     * directory removes only those whose writer is gone (workflow/amlfs-run) */
    char host[256] = "";
    if (gethostname(host, sizeof host - 1) != 0 || !host[0])
        snprintf(host, sizeof host, "unknown");
    for (char *h = host; *h; h++)
        if (*h == '/' || *h == '-')
            *h = '_';
    if (snprintf(p->target, sizeof p->target, "%s", target) >= (int)sizeof p->target ||
        snprintf(p->tmp, sizeof p->tmp, "%s/.%s.tmp.%s-%ld.XXXXXX", dir, basename(copy), host,
                 (long)getpid()) >= (int)sizeof p->tmp)
        amlfs_fail(AMLFS_EXIT_USAGE, target, "path too long");
    int fd = mkstemp(p->tmp);
    if (fd < 0)
        amlfs_fail(AMLFS_EXIT_FAILED, target, "cannot write in %s: %s", dir, strerror(errno));
    close(fd);
    /* mkstemp makes the file 0600; outputs get the usual 0666 less the umask */
    mode_t mask = umask(0);
    umask(mask);
    chmod(p->tmp, 0666 & ~mask);
    p->live = 1;
    return p->tmp;
}

void amlfs_out_abandon(const char *tmp)
{
    amlfs_pending *p = amlfs_pending_find(tmp);
    if (p) {
        unlink(p->tmp);
        p->live = 0;
    }
}

void amlfs_out_commit(const char *tmp)
{
    amlfs_pending *p = amlfs_pending_find(tmp);
    if (!p)
        amlfs_fail(AMLFS_EXIT_FAILED, tmp, "not a pending output");
    int fd = open(p->tmp, O_RDONLY);
    if (fd < 0 || fsync(fd) != 0) {
        int e = errno;
        if (fd >= 0)
            close(fd);
        amlfs_fail(AMLFS_EXIT_FAILED, p->target, "cannot flush to disk: %s",
                   e == ENOSPC ? "no space left on device" : strerror(e));
    }
    close(fd);
    if (rename(p->tmp, p->target) != 0)
        amlfs_fail(AMLFS_EXIT_FAILED, p->target, "cannot rename into place: %s",
                   strerror(errno));
    p->live = 0;
    char dir[4096];
    dir_of(p->target, dir, sizeof dir);
    int dfd = open(dir, O_RDONLY | O_DIRECTORY);
    if (dfd >= 0) { /* the rename itself must reach the disk too */
        fsync(dfd);
        close(dfd);
    }
}

void amlfs_stats_write(const char *path, long long images, double seconds)
{
    const char *tmp = amlfs_out_begin(path);
    FILE *f = fopen(tmp, "w");
    if (!f)
        amlfs_fail(AMLFS_EXIT_FAILED, path, "cannot write: %s", strerror(errno));
    int bad = fprintf(f, "images=%lld\nseconds=%.6f\n", images, seconds) < 0;
    bad |= fclose(f) != 0;
    if (bad)
        amlfs_fail(AMLFS_EXIT_FAILED, path, "cannot write: %s", strerror(errno));
    amlfs_out_commit(tmp);
}
