/* share.c: finding the share folder beside the running program.
 * Depends on: tool (messages). */
#include "share.h"
#include "tool.h"

#include <errno.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

static int is_dir(const char *path)
{
    struct stat st;
    return stat(path, &st) == 0 && S_ISDIR(st.st_mode);
}

static void copy_to(char *buf, size_t n, const char *dir)
{
    if (snprintf(buf, n, "%s", dir) >= (int)n)
        amlfs_fail(AMLFS_EXIT_USAGE, dir, "path too long");
}

void amlfs_share_dir(char *buf, size_t n, const char *given, const char *part)
{
    const char *env = getenv("AMLFS_SHARE");
    if (given || (env && *env)) {
        copy_to(buf, n, given ? given : env);
        return;
    }
    char exe[PATH_MAX];
    ssize_t len = readlink("/proc/self/exe", exe, sizeof exe - 1);
    if (len < 0)
        amlfs_fail(AMLFS_EXIT_USAGE, "/proc/self/exe", "cannot find the program's folder "
                   "(%s): set AMLFS_SHARE to the share folder", strerror(errno));
    exe[len] = '\0';
    char *slash = strrchr(exe, '/');
    if (slash)
        *slash = '\0';
    /* installed (PREFIX/bin, PREFIX/share/amlfs), then the source tree (build/rel/bin) */
    static const char *const beside[] = {"../share/amlfs", "../../../share"};
    char tried[2][PATH_MAX + 32];
    for (int i = 0; i < 2; i++) {
        char probe[PATH_MAX + 64];
        snprintf(tried[i], sizeof tried[i], "%s/%s", exe, beside[i]);
        snprintf(probe, sizeof probe, "%s/%s", tried[i], part);
        if (is_dir(probe)) {
            char real[PATH_MAX];
            copy_to(buf, n, realpath(tried[i], real) ? real : tried[i]);
            return;
        }
    }
    amlfs_fail(AMLFS_EXIT_USAGE, part, "no share folder with it beside the program (looked "
               "in %s and %s): set AMLFS_SHARE or give the folder", tried[0], tried[1]);
}
