/* atomic_out.c: temporary files beside their targets, committed by rename. */
#include "atomic_out.h"
#include "tool.h"

#include <errno.h>
#include <fcntl.h>
#include <libgen.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#define MAX_OUTPUTS 8

struct pending {
    char tmp[4096];
    char target[4096];
    volatile sig_atomic_t live;
};

static struct pending outputs[MAX_OUTPUTS];

void amlfs_out_remove_pending(void)
{
    for (int i = 0; i < MAX_OUTPUTS; i++)
        if (outputs[i].live) {
            unlink(outputs[i].tmp);
            outputs[i].live = 0;
        }
}

static void on_signal(int sig)
{
    amlfs_out_remove_pending(); /* unlink is async-signal-safe */
    signal(sig, SIG_DFL);
    raise(sig);
}

void amlfs_out_install_cleanup(void)
{
    static int installed;
    if (installed)
        return;
    installed = 1;
    atexit(amlfs_out_remove_pending);
    signal(SIGINT, on_signal);
    signal(SIGTERM, on_signal);
    signal(SIGHUP, on_signal);
}

static void dir_of(const char *path, char *dir, size_t size)
{
    char copy[4096];
    snprintf(copy, sizeof copy, "%s", path);
    snprintf(dir, size, "%s", dirname(copy));
}

const char *amlfs_out_begin(const char *target)
{
    struct pending *p = NULL;
    for (int i = 0; i < MAX_OUTPUTS; i++)
        if (!outputs[i].live) {
            p = &outputs[i];
            break;
        }
    if (!p)
        amlfs_fail(AMLFS_EXIT_FAILED, target, "too many outputs open at once");
    char dir[4096], copy[4096];
    dir_of(target, dir, sizeof dir);
    snprintf(copy, sizeof copy, "%s", target);
    if (snprintf(p->target, sizeof p->target, "%s", target) >= (int)sizeof p->target ||
        snprintf(p->tmp, sizeof p->tmp, "%s/.%s.tmp.XXXXXX", dir, basename(copy)) >=
            (int)sizeof p->tmp)
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

static struct pending *find(const char *tmp)
{
    for (int i = 0; i < MAX_OUTPUTS; i++)
        if (outputs[i].live && outputs[i].tmp == tmp)
            return &outputs[i];
    return NULL;
}

void amlfs_out_abandon(const char *tmp)
{
    struct pending *p = find(tmp);
    if (p) {
        unlink(p->tmp);
        p->live = 0;
    }
}

void amlfs_out_commit(const char *tmp)
{
    struct pending *p = find(tmp);
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
