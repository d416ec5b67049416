/* SPDX-License-Identifier: MIT */
/*
 * log: see log.h. The verbosity is the one piece of process-wide state: it is set once by main()
 * before the broker starts.
 */
#include "log.h"

#include <stdarg.h>
#include <stdio.h>

static int log_verbose;

void log_set_verbose(int verbose)
{
        log_verbose = verbose;
}

__attribute__((format(printf, 2, 0))) static void log_line(int prio, const char *fmt, va_list ap)
{
        char buf[1024];

        (void)vsnprintf(buf, sizeof(buf), fmt, ap); /* a longer line is cut: fine for a log */
        fprintf(stderr, "<%d>vchand: %s\n", prio, buf);
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
