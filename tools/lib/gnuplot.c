/* gnuplot.c: one gnuplot run per PNG, its stderr kept for the message.
 * Depends on: atomic_out (the PNG's temporary), tool. */
#include "gnuplot.h"
#include "atomic_out.h"
#include "tool.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/types.h>
#include <sys/wait.h>
#include <unistd.h>

#define PATH_LEN 4096
#define STDERR_KEEP 65536 /* bytes of gnuplot's stderr kept for messages */

/* The last non-empty line of text (gnuplot's error message ends its output). */
static void last_line(const char *text, char *buf, size_t n)
{
    buf[0] = '\0';
    const char *s = text;
    while (*s) {
        const char *e = strchr(s, '\n');
        size_t len = e ? (size_t)(e - s) : strlen(s);
        size_t i = 0;
        while (i < len && (s[i] == ' ' || s[i] == '\t'))
            i++;
        if (i < len)
            snprintf(buf, n, "%.*s", (int)(len - i), s + i);
        s += len + (e ? 1 : 0);
    }
}

/* path = dir "/" name; exit 2 when it does not fit. */
static void join(char *path, size_t n, const char *dir, const char *name)
{
    if (snprintf(path, n, "%s/%s", dir, name) >= (int)n)
        amlfs_fail(AMLFS_EXIT_USAGE, dir, "path too long");
}

void amlfs_gnuplot_draw(const char *dir, const char *script, const char *png)
{
    char target[PATH_LEN], script_path[PATH_LEN];
    join(target, sizeof target, dir, png);
    join(script_path, sizeof script_path, dir, script);
    const char *tmp = amlfs_out_begin(target);
    const char *tmp_name = strrchr(tmp, '/') ? strrchr(tmp, '/') + 1 : tmp;
    char set_out[PATH_LEN];
    /* the temporary's name is NAME.png's with [A-Za-z0-9] added: safe in quotes */
    snprintf(set_out, sizeof set_out, "out='%s'", tmp_name);

    int err_pipe[2], exec_pipe[2];
    if (pipe(err_pipe) != 0 || pipe2(exec_pipe, O_CLOEXEC) != 0)
        amlfs_fail(AMLFS_EXIT_FAILED, NULL, "cannot create a pipe: %s", strerror(errno));
    fflush(NULL);
    pid_t pid = fork();
    if (pid < 0)
        amlfs_fail(AMLFS_EXIT_FAILED, NULL, "cannot start gnuplot: %s", strerror(errno));
    if (pid == 0) {
        /* the child leaves through _exit: the parent's exit handlers are not its own */
        close(err_pipe[0]);
        close(exec_pipe[0]);
        int null = open("/dev/null", O_RDWR);
        if (null >= 0) {
            dup2(null, STDIN_FILENO);
            dup2(null, STDOUT_FILENO);
        }
        dup2(err_pipe[1], STDERR_FILENO);
        if (chdir(dir) == 0)
            execlp("gnuplot", "gnuplot", "--default-settings", "-e", set_out, script,
                   (char *)NULL);
        int e = errno;
        if (write(exec_pipe[1], &e, sizeof e) < 0)
            _exit(127);
        _exit(127);
    }
    close(err_pipe[1]);
    close(exec_pipe[1]);
    char *text = amlfs_zalloc(STDERR_KEEP + 1, 1);
    size_t len = 0;
    char chunk[4096];
    ssize_t got;
    while ((got = read(err_pipe[0], chunk, sizeof chunk)) != 0) {
        if (got < 0) {
            if (errno == EINTR)
                continue;
            break;
        }
        size_t take = (size_t)got < STDERR_KEEP - len ? (size_t)got : STDERR_KEEP - len;
        memcpy(text + len, chunk, take);
        len += take;
    }
    close(err_pipe[0]);
    int exec_errno = 0;
    ssize_t n = read(exec_pipe[0], &exec_errno, sizeof exec_errno);
    close(exec_pipe[0]);
    int status = 0;
    while (waitpid(pid, &status, 0) < 0 && errno == EINTR)
        ;
    char line[1024];
    last_line(text, line, sizeof line);
    free(text);
    if (n == (ssize_t)sizeof exec_errno) {
        amlfs_out_abandon(tmp);
        if (exec_errno == ENOENT)
            amlfs_fail(AMLFS_EXIT_FAILED, "gnuplot",
                       "not found on PATH (Debian: apt-get install gnuplot-nox)");
        amlfs_fail(AMLFS_EXIT_FAILED, "gnuplot", "cannot run in %s: %s", dir,
                   strerror(exec_errno));
    }
    if (!WIFEXITED(status) || WEXITSTATUS(status) != 0) {
        amlfs_out_abandon(tmp);
        if (WIFSIGNALED(status))
            amlfs_fail(AMLFS_EXIT_FAILED, script_path, "gnuplot was killed by signal %d",
                       WTERMSIG(status));
        amlfs_fail(AMLFS_EXIT_FAILED, script_path, "gnuplot failed (exit %d): %s",
                   WEXITSTATUS(status), line[0] ? line : "no message");
    }
    static const unsigned char magic[8] = {0x89, 'P', 'N', 'G', '\r', '\n', 0x1a, '\n'};
    unsigned char head[8] = {0};
    FILE *f = fopen(tmp, "rb");
    size_t have = f ? fread(head, 1, sizeof head, f) : 0;
    if (f)
        fclose(f);
    if (have != sizeof head || memcmp(head, magic, sizeof magic)) {
        amlfs_out_abandon(tmp);
        amlfs_fail(AMLFS_EXIT_FAILED, script_path, "gnuplot exited 0 but wrote no PNG%s%s",
                   line[0] ? ": " : "", line);
    }
    if (line[0])
        amlfs_note("%s: gnuplot says: %s", script_path, line);
    amlfs_out_commit(tmp);
}

