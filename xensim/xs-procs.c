/*
 * xs-procs: process-group records of xensim domains (see xs-procs.h).
 */
#include "xs-procs.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

int xs_procs_dir(const char *dir, uint32_t domid, char *out, size_t size)
{
        int n = snprintf(out, size, "%s/dom%" PRIu32 ".procs", dir, domid);

        return n < 0 || (size_t)n >= size ? -ENAMETOOLONG : 0;
}

uint64_t xs_procs_start_time(pid_t pid)
{
        char path[64], buf[1024];
        const char *p;
        ssize_t n;
        int fd;

        n = snprintf(path, sizeof(path), "/proc/%d/stat", (int)pid);
        if (n < 0 || (size_t)n >= sizeof(path))
                return 0;
        fd = open(path, O_RDONLY | O_CLOEXEC);
        if (fd < 0)
                return 0;
        n = read(fd, buf, sizeof(buf) - 1);
        close(fd);
        if (n <= 0)
                return 0;
        buf[n] = 0;
        /* The command name may contain anything, so count fields after its last ')'. */
        p = strrchr(buf, ')');
        if (!p)
                return 0;
        /* After ')' come fields 3 onwards; the start time is field 22. */
        for (int field = 2; field < 22 && p; field++)
                p = strchr(p + 1, ' ');
        return p ? strtoull(p + 1, NULL, 10) : 0;
}

int xs_procs_record(const char *dir, uint32_t domid, pid_t pgid)
{
        char d[4096], path[4200], line[32];
        int fd, n;

        if (xs_procs_dir(dir, domid, d, sizeof(d)) < 0)
                return -ENAMETOOLONG;
        if (mkdir(d, 0700) < 0 && errno != EEXIST)
                return -errno;
        n = snprintf(path, sizeof(path), "%s/%d", d, (int)pgid);
        if (n < 0 || (size_t)n >= sizeof(path))
                return -ENAMETOOLONG;
        fd = open(path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
        if (fd < 0)
                return -errno;
        n = snprintf(line, sizeof(line), "%" PRIu64 "\n", xs_procs_start_time(pgid));
        if (write(fd, line, (size_t)n) != n) {
                close(fd);
                return -EIO;
        }
        close(fd);
        return 0;
}

int xs_procs_kill_all(const char *dir, uint32_t domid)
{
        char d[4096], path[4400], line[32];
        struct dirent *e;
        int n_killed = 0;
        DIR *dp;

        if (xs_procs_dir(dir, domid, d, sizeof(d)) < 0)
                return 0;
        dp = opendir(d);
        if (!dp)
                return 0;
        while ((e = readdir(dp))) {
                char *end;
                long pgid = strtol(e->d_name, &end, 10);
                uint64_t recorded = 0, now;
                ssize_t n;
                int fd;

                if (*end || pgid <= 1)
                        continue;
                n = snprintf(path, sizeof(path), "%s/%s", d, e->d_name);
                if (n < 0 || (size_t)n >= sizeof(path))
                        continue;
                fd = open(path, O_RDONLY | O_CLOEXEC);
                if (fd >= 0) {
                        n = read(fd, line, sizeof(line) - 1);
                        close(fd);
                        if (n > 0) {
                                line[n] = 0;
                                recorded = strtoull(line, NULL, 10);
                        }
                }
                now = xs_procs_start_time((pid_t)pgid);
                if (now == 0 || now == recorded) {
                        if (kill(-(pid_t)pgid, SIGKILL) == 0)
                                n_killed++;
                }
                unlink(path);
        }
        closedir(dp);
        rmdir(d);
        return n_killed;
}
