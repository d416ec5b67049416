/* SPDX-License-Identifier: MIT */
/*
 * log: vchand's log lines on stderr (journald adds the timestamp). When stderr is the journal
 * ($JOURNAL_STREAM matches it), "<level>vchand: ..." with the syslog priority prefix sd-daemon
 * understands; elsewhere (a terminal, a file) "vchand: ...", errors as "vchand: error: ...".
 * Debug lines only with --verbose.
 */
#ifndef VCHAND_LOG_H
#define VCHAND_LOG_H

void log_set_verbose(int verbose);
void log_error(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
void log_info(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
void log_debug(const char *fmt, ...) __attribute__((format(printf, 1, 2)));

#endif /* VCHAND_LOG_H */
