/* SPDX-License-Identifier: MIT */
/*
 * log: see log.h. The verbosity is the one piece of process-wide state: it is set once by main()
 * before the broker starts; whether stderr is the journal is found out once, at the first line.
 */
#include "log.h"

#include <errno.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/stat.h>

static int log_verbose;
static int log_to_journal = -1; /* unknown until the first line */

/*
 * Whether stderr is connected to journald: systemd sets $JOURNAL_STREAM to "DEV:INODE" of the
 * stream it gave the service, and stderr is that stream only if they match (a child or a
 * redirection inherits the variable, not the stream). Only then do lines carry the "<N>"
 * priority prefix; on a terminal or in a file it would be noise.
 */
static bool stderr_is_journal(void)
{
        const char *js = getenv("JOURNAL_STREAM");
        unsigned long long dev, ino;
        struct stat st;
        char *end;

        if (!js || js[0] < '0' || js[0] > '9')
                return false;
        errno = 0;
        dev = strtoull(js, &end, 10);
        if (errno || *end != ':' || end[1] < '0' || end[1] > '9')
                return false;
        ino = strtoull(end + 1, &end, 10);
        if (errno || *end)
                return false;
        if (fstat(2, &st) < 0)
                return false;
        return (unsigned long long)st.st_dev == dev && (unsigned long long)st.st_ino == ino;
}

void log_set_verbose(int verbose)
{
        log_verbose = verbose;
}

__attribute__((format(printf, 2, 0))) static void log_line(int prio, const char *fmt, va_list ap)
{
        char buf[1024];

        (void)vsnprintf(buf, sizeof(buf), fmt, ap); /* a longer line is cut: fine for a log */
        if (log_to_journal < 0)
                log_to_journal = stderr_is_journal();
        if (log_to_journal)
                fprintf(stderr, "<%d>vchand: %s\n", prio, buf);
        else
                fprintf(stderr, "vchand: %s%s\n", prio <= 3 ? "error: " : "", buf);
}

void log_error(const char *fmt, ...)
{
        va_list ap;

        va_start(ap, fmt);
        log_line(3, fmt, ap);
        va_end(ap);
}

void log_info(const char *fmt, ...)
{
        va_list ap;

        va_start(ap, fmt);
        log_line(6, fmt, ap);
        va_end(ap);
}

void log_debug(const char *fmt, ...)
{
        va_list ap;

        if (!log_verbose)
                return;
        va_start(ap, fmt);
        log_line(7, fmt, ap);
        va_end(ap);
}
