/* SPDX-License-Identifier: MIT */
/*
 * forward: vbusctl's `expose`, `forward` and `connect` commands, socket programs over the bus
 * (the equivalent of qrexec's qubes.ConnectTCP; docs/forward.md is the user's guide).
 *
 * `expose NAME --to ADDR` serves "forward.NAME"; `forward --listen ADDR NAME` accepts local
 * connections and carries each as one bidirectional streaming call to "forward.NAME/Connect";
 * `connect NAME` does the same for its own stdin and stdout. At the exposing end every call
 * connects to ADDR (or runs a command on a socketpair, --exec) and the bytes flow both ways.
 * `expose` and `forward` take up to FWD_ENDPOINTS_MAX endpoints (a domain has one link to the
 * broker, so one process carries them all); each connection belongs to one Endpoint.
 *
 * Framing on the call (both directions are sequences of stream messages):
 * - caller to server: each message is bytes; the caller's end of file is its half-close
 *   (vbus_stream_close_send(), on_message(NULL) at the server).
 * - server to caller: each non-empty message is bytes; one empty message is the server's end of
 *   file (the server cannot half-close a call: vbus_stream_finish() ends both directions). The
 *   server finishes the call with OK once both directions reached their end of file and every
 *   byte is written to its socket.
 * - any other outcome (a refused connect, a reset, a process or link that went away, a
 *   cancellation) ends the call with a non-OK status, and the other end resets its socket
 *   (SO_LINGER 0: the local program sees ECONNRESET, never a clean end of file).
 *
 * Flow control: a socket is read only when the stream takes more (vbus_stream_send() said
 * -EAGAIN: wait for on_writable), and a stream delivers only while its socket takes the bytes
 * (what write() leaves is kept and the stream paused until it is written). So each connection
 * holds at most one FORWARD_CHUNK read buffer and one received message of its own, plus the
 * library's one window per direction, whatever the speeds of the two programs.
 *
 * Invariants: one thread, one poll() loop over the broker link, the listening sockets and every
 * connection. Library callbacks only record what happened (and write to the socket); everything
 * that calls back into a stream runs from conn_step() in the loop, so a Conn is freed only there.
 * Before the loop polls, conn_step() and vbus_conn_process() alternate until neither has work
 * for the other (fwd_settle()): a library call may need a process step to take effect.
 */
#include "forward.h"

#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <inttypes.h>
#include <poll.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include <vbus/vbus.h>

#include "fwd-addr.h"

#define FWD_NAME_MAX          (255 - (int)sizeof(FORWARD_SERVICE_PREFIX) + 1) /* service <= 255 */
#define FWD_POLL_MAX_MS       1000 /* backstop: signals and timers are checked at least this often */
#define FWD_READS_PER_ROUND   4    /* reads per connection per round: fairness between them */
#define FWD_ACCEPT_BACKOFF_MS 100  /* out of fds: wait before accepting again (no busy loop) */
#define FWD_LOG_PER_SEC       10   /* problem lines per second: peers can cause them in bulk */
#define FWD_SETTLE_ROUNDS     8    /* step/process rounds per poll before polling with no wait */
#define FWD_ENDPOINTS_MAX     16   /* endpoints per command (one link per domain: one process) */

static volatile sig_atomic_t fwd_quit;

typedef enum FwdMode {
        MODE_EXPOSE,
        MODE_FORWARD,
        MODE_CONNECT,
} FwdMode;

typedef struct Fwd Fwd;

/* One endpoint of the command: exposed (service, target) or forwarded (listener, method). */
typedef struct Endpoint {
        Fwd *fwd;
        const char *name;
        char service[256];
        char method[256 + sizeof(FORWARD_METHOD)];
        const char *exec; /* expose --exec: the command, instead of addr */
        FwdAddr addr;     /* expose: the target; forward: where to listen */
        int listen_fd;
        vbus_server *srv;
        bool announced;      /* expose: "# exposing" printed */
        bool not_found_said; /* forward: "nobody exposes NAME" printed since the last success */
} Endpoint;

typedef struct Conn {
        Fwd *fwd;
        Endpoint *ep;
        struct Conn *next;
        uint64_t id;
        int rfd, wfd;   /* the same socket, or stdin and stdout (connect) */
        bool is_socket; /* shutdown() for a half-close, SO_LINGER 0 for a reset */
        pid_t pid;      /* expose --exec: the command, until reaped */
        char who[128];  /* the caller's identity (expose) or the local peer (forward) */
        vbus_stream *st;
        bool connecting; /* expose: connect() in progress */

        /* socket -> stream */
        uint8_t *in;
        size_t n_in;   /* bytes read and not yet taken by the stream */
        bool blocked;  /* the stream said -EAGAIN: wait for on_writable */
        bool rd_eof;   /* the socket said end of file */
        bool eof_sent; /* ... and the stream was told */

        /* stream -> socket */
        uint8_t *out;
        size_t n_out, off_out, cap_out;
        bool paused;   /* the stream is paused while out holds bytes */
        bool peer_eof; /* the other end's end of file arrived */
        bool wr_shut;  /* ... and the socket was shut down for writing */

        /* outcome */
        int err;            /* a local socket error (errno), handled by conn_step() */
        const char *err_op; /* what failed: "connect to", "read from", "write to" */
        bool ended;         /* on_end ran: st is gone */
        int end_status;
        char end_message[256];
        bool dead; /* closed; freed by the loop */
        uint64_t n_up, n_down;
} Conn;

struct Fwd {
        Endpoint eps[FWD_ENDPOINTS_MAX];
        size_t n_eps;
        const char *url;
        vbus_conn *conn;
        Conn *conns;
        uint64_t next_id;
        uint64_t accept_after; /* CLOCK_MONOTONIC us: accept again from then (out of fds) */
        long timeout_ms;
        uint64_t log_second; /* the second (CLOCK_MONOTONIC) of the problem lines counted ... */
        uint64_t n_unlogged; /* ... beyond FWD_LOG_PER_SEC of them: counted, not printed */
        unsigned n_logged;
        FwdMode mode;
        int exit_status; /* connect: 0 once its connection ended cleanly, else 1 */
        bool any_exec;
        bool verbose;
        bool kick; /* a callback ran or conn_step() called the library: process again */
};

static uint64_t now_usec(void)
{
        struct timespec ts;

        clock_gettime(CLOCK_MONOTONIC, &ts);
        return (uint64_t)ts.tv_sec * 1000000u + (uint64_t)ts.tv_nsec / 1000u;
}

static const char *cmd_name(const Fwd *f)
{
        return f->mode == MODE_EXPOSE ? "expose" : f->mode == MODE_FORWARD ? "forward" : "connect";
}

/* A line on stderr, "# " for -v information, "vbusctl CMD: " for problems. */
static void fwd_log(Fwd *f, bool info, const char *fmt, ...) __attribute__((format(printf, 3, 4)));
static void fwd_log(Fwd *f, bool info, const char *fmt, ...)
{
        va_list ap;

        if (info && !f->verbose)
                return;
        if (!info) {
                uint64_t sec = now_usec() / 1000000u;

                if (sec != f->log_second) {
                        if (f->n_unlogged)
                                fprintf(stderr, "vbusctl %s: %" PRIu64 " more such lines\n",
                                        cmd_name(f), f->n_unlogged);
                        f->log_second = sec;
                        f->n_logged = 0;
                        f->n_unlogged = 0;
                }
                if (f->n_logged++ >= FWD_LOG_PER_SEC) {
                        f->n_unlogged++;
                        return;
                }
        }
        if (info)
                fputs("# ", stderr);
        else
                fprintf(stderr, "vbusctl %s: ", cmd_name(f));
        va_start(ap, fmt);
        vfprintf(stderr, fmt, ap);
        va_end(ap);
        fputc('\n', stderr);
}

/* --- connections --------------------------------------------------------------------------- */

static Conn *conn_new(Endpoint *ep)
{
        Fwd *f = ep->fwd;
        Conn *c = calloc(1, sizeof(*c));

        if (!c)
                return NULL;
        c->in = malloc(FORWARD_CHUNK);
        if (!c->in) {
                free(c);
                return NULL;
        }
        c->fwd = f;
        c->ep = ep;
        c->id = ++f->next_id;
        c->rfd = c->wfd = -1;
        c->is_socket = true;
        c->next = f->conns;
        f->conns = c;
        return c;
}

/* Closes the connection's descriptors; @reset: so that the local program sees a reset. */
static void conn_close(Conn *c, bool reset)
{
        if (c->is_socket) {
                if (reset)
                        fwd_addr_close_reset(c->rfd);
                else if (c->rfd >= 0)
                        close(c->rfd);
        } else if (c->fwd->mode != MODE_CONNECT) {
                if (c->rfd >= 0)
                        close(c->rfd);
                if (c->wfd >= 0 && c->wfd != c->rfd)
                        close(c->wfd);
        }
        /* connect's stdin and stdout stay open: main() exits with the outcome. */
        if (c->fwd->mode == MODE_CONNECT)
                c->fwd->exit_status = reset ? 1 : 0;
        if (reset && c->pid > 0)
                (void)kill(c->pid, SIGTERM);
        c->rfd = c->wfd = -1;
        c->dead = true;
}

/* A failure at this end (a socket error, a refused connect): the other end is told and this
 * socket is reset. */
static void conn_abort(Conn *c, int err, const char *op)
{
        Fwd *f = c->fwd;
        char msg[sizeof(c->ep->addr.text) + 128];
        const char *what = c->who;

        f->kick = true;
        if (f->mode == MODE_EXPOSE)
                what = c->ep->exec ? "the command" : c->ep->addr.text;
        else if (f->mode == MODE_CONNECT)
                what = strcmp(op, "read from") == 0 ? "stdin" : "stdout";
        /* Sized for the longest address and any errno text: it fits. */
        (void)snprintf(msg, sizeof(msg), "%s %s: %s", op, what, strerror(err));
        if (c->st && f->mode == MODE_EXPOSE)
                (void)vbus_stream_finish(c->st, VBUS_STATUS_UNAVAILABLE, msg);
        else if (c->st)
                (void)vbus_stream_cancel(c->st);
        c->st = NULL;
        if (f->mode == MODE_CONNECT)
                fwd_log(f, false, "%s", msg);
        else
                fwd_log(f, true, "%" PRIu64 " %s: reset: %s", c->id, c->who, msg);
        c->end_status = VBUS_STATUS_UNAVAILABLE;
        conn_close(c, true);
}

/* The call ended without success at the other end (or on the way): reset the socket. */
static void conn_ended_badly(Conn *c)
{
        Fwd *f = c->fwd;

        if (f->mode != MODE_EXPOSE && c->end_status == VBUS_STATUS_NOT_FOUND) {
                if (f->mode == MODE_CONNECT || !c->ep->not_found_said)
                        fwd_log(f, false, "nobody exposes '%s' (%s: %s)", c->ep->name,
                                vbus_status_name(c->end_status), c->end_message);
                c->ep->not_found_said = true;
        } else if (f->mode == MODE_CONNECT) {
                fwd_log(f, false, "%s: connection reset: %s%s%s", c->ep->name,
                        vbus_status_name(c->end_status), c->end_message[0] ? ": " : "",
                        c->end_message);
        } else {
                fwd_log(f, f->mode == MODE_EXPOSE, "%" PRIu64 " %s: reset: %s%s%s", c->id, c->who,
                        vbus_status_name(c->end_status), c->end_message[0] ? ": " : "",
                        c->end_message);
        }
        conn_close(c, true);
}

/* Queues @size bytes that the socket did not take. Return: 0 or -ENOMEM. */
static int conn_keep(Conn *c, const uint8_t *data, size_t size)
{
        if (c->off_out > 0) {
                memmove(c->out, c->out + c->off_out, c->n_out - c->off_out);
                c->n_out -= c->off_out;
                c->off_out = 0;
        }
        if (c->n_out + size > c->cap_out) {
                uint8_t *p = realloc(c->out, c->n_out + size);

                if (!p)
                        return -ENOMEM;
                c->out = p;
                c->cap_out = c->n_out + size;
        }
        memcpy(c->out + c->n_out, data, size);
        c->n_out += size;
        return 0;
}

/* Writes what out holds. Return: true if it is all written. */
static bool conn_flush(Conn *c)
{
        while (c->off_out < c->n_out && !c->err) {
                ssize_t k = write(c->wfd, c->out + c->off_out, c->n_out - c->off_out);

                if (k < 0 && errno == EINTR)
                        continue;
                if (k < 0) {
                        if (errno != EAGAIN) {
                                c->err = errno;
                                c->err_op = "write to";
                        }
                        return false;
                }
                c->off_out += (size_t)k;
        }
        if (c->off_out < c->n_out)
                return false;
        c->off_out = c->n_out = 0;
        if (c->cap_out > FORWARD_CHUNK) {
                /* One large message from a peer does not stay with us. */
                free(c->out);
                c->out = NULL;
                c->cap_out = 0;
        }
        return true;
}

static void on_message(vbus_stream *st, const void *data, size_t size, void *userdata)
{
        Conn *c = userdata;
        bool eof = c->fwd->mode == MODE_EXPOSE ? data == NULL : size == 0;

        (void)st;
        c->fwd->kick = true;
        if (c->dead || c->err || c->peer_eof)
                return; /* failed or finished here: discard (the loop ends the call) */
        if (eof) {
                c->peer_eof = true;
                return;
        }
        if (size == 0)
                return;
        c->n_down += size;
        if (!c->connecting && c->off_out == c->n_out) {
                for (;;) {
                        ssize_t k = write(c->wfd, data, size);

                        if (k < 0 && errno == EINTR)
                                continue;
                        if (k < 0 && errno != EAGAIN) {
                                c->err = errno;
                                c->err_op = "write to";
                                return;
                        }
                        if (k > 0) {
                                data = (const uint8_t *)data + k;
                                size -= (size_t)k;
                        }
                        break;
                }
                if (size == 0)
                        return;
        }
        if (conn_keep(c, data, size) < 0) {
                c->err = ENOMEM;
                c->err_op = "buffer for";
                return;
        }
        /* The socket is full: no more messages until it took these (flow control). */
        c->paused = true;
        (void)vbus_stream_set_paused(st, true);
}

static void on_end(vbus_stream *st, int status, const char *message, void *userdata)
{
        Conn *c = userdata;

        (void)st;
        c->fwd->kick = true;
        c->st = NULL; /* freed when we return */
        c->ended = true;
        c->end_status = status;
        /* Shown to the user only: a message longer than 255 bytes is shown cut. */
        (void)snprintf(c->end_message, sizeof(c->end_message), "%s", message ? message : "");
}

static void on_writable(vbus_stream *st, void *userdata)
{
        Conn *c = userdata;

        (void)st;
        c->fwd->kick = true;
        c->blocked = false;
}

static const vbus_stream_handlers conn_handlers = {
        .on_message = on_message,
        .on_end = on_end,
        .on_writable = on_writable,
};

/* Offers what was read to the stream. */
static void conn_send_in(Conn *c)
{
        int r = vbus_stream_send(c->st, c->in, c->n_in);

        c->fwd->kick = true;
        if (r == -EAGAIN) {
                c->blocked = true;
                return;
        }
        if (r == 0)
                c->n_up += c->n_in;
        /* -EPIPE: the stream is ending and on_end will say how; drop the bytes as TCP would. */
        c->n_in = 0;
        if (r < 0 && r != -EPIPE) {
                c->err = -r;
                c->err_op = "send from";
        }
}

/* Tells the other end that this socket reached its end of file. */
static void conn_send_eof(Conn *c)
{
        int r;

        c->fwd->kick = true;
        if (c->fwd->mode == MODE_EXPOSE) {
                r = vbus_stream_send(c->st, NULL, 0);
                if (r == -EAGAIN) {
                        c->blocked = true;
                        return;
                }
        } else {
                r = vbus_stream_close_send(c->st);
        }
        (void)r; /* -EPIPE: the stream is ending; on_end says how */
        c->eof_sent = true;
}

/* Reads the socket while the stream takes what is read. */
static void conn_read(Conn *c)
{
        for (int i = 0; i < FWD_READS_PER_ROUND; i++) {
                ssize_t k;

                if (!c->st || c->blocked || c->n_in > 0 || c->rd_eof || c->err || c->dead)
                        return;
                k = read(c->rfd, c->in, FORWARD_CHUNK);
                if (k > 0) {
                        c->n_in = (size_t)k;
                        conn_send_in(c);
                } else if (k == 0) {
                        c->rd_eof = true;
                } else if (errno != EAGAIN && errno != EINTR) {
                        c->err = errno;
                        c->err_op = "read from";
                } else {
                        return;
                }
        }
}

/* Shuts the socket down for writing: the local program sees the other end's end of file. */
static void conn_shut(Conn *c)
{
        c->wr_shut = true;
        if (c->is_socket) {
                (void)shutdown(c->wfd, SHUT_WR);
        } else if (c->fwd->mode == MODE_CONNECT) {
                /* stdout: close it (keeping fd 1 taken) so that a reader sees the end. */
                int null = open("/dev/null", O_WRONLY | O_CLOEXEC);

                if (null >= 0) {
                        dup2(null, c->wfd);
                        close(null);
                }
        }
}

/* Everything the callbacks and the sockets left to do for @c, in the loop. */
static void conn_step(Conn *c)
{
        Fwd *f = c->fwd;

        if (c->dead)
                return;
        /* A server's on_end only reports an end without its own vbus_stream_finish(). */
        if (!c->err && c->ended && (c->end_status != VBUS_STATUS_OK || f->mode == MODE_EXPOSE)) {
                conn_ended_badly(c);
                return;
        }
        if (!c->err && c->st && c->n_in > 0 && !c->blocked)
                conn_send_in(c);
        if (!c->err && c->st && c->rd_eof && c->n_in == 0 && !c->blocked && !c->eof_sent)
                conn_send_eof(c);
        if (!c->err && !c->connecting && conn_flush(c)) {
                if (c->paused && c->st) {
                        c->paused = false;
                        (void)vbus_stream_set_paused(c->st, false);
                        f->kick = true;
                }
                if (c->peer_eof && !c->wr_shut)
                        conn_shut(c);
        }
        if (c->err) {
                conn_abort(c, c->err, c->err_op);
                return;
        }
        if (f->mode == MODE_EXPOSE && c->st && c->eof_sent && c->wr_shut) {
                /* Both directions reached their end, every byte is written: success. */
                (void)vbus_stream_finish(c->st, VBUS_STATUS_OK, NULL);
                c->st = NULL;
                f->kick = true;
                c->end_status = VBUS_STATUS_OK;
                fwd_log(f, true, "%" PRIu64 " %s: closed, %" PRIu64 " bytes in, %" PRIu64 " out",
                        c->id, c->who, c->n_down, c->n_up);
                conn_close(c, false);
        } else if (f->mode != MODE_EXPOSE && c->ended && c->off_out == c->n_out) {
                if (!c->wr_shut)
                        conn_shut(c);
                c->ep->not_found_said = false;
                fwd_log(f, true, "%" PRIu64 " %s: closed, %" PRIu64 " bytes out, %" PRIu64 " in",
                        c->id, c->who, c->n_up, c->n_down);
                conn_close(c, false);
        }
}

static void conn_free(Conn *c)
{
        free(c->in);
        free(c->out);
        free(c);
}

/* Frees the connections that are done; their streams are gone. */
static void fwd_sweep(Fwd *f)
{
        Conn **pp = &f->conns;

        while (*pp) {
                Conn *c = *pp;

                if (c->dead && !c->st) {
                        *pp = c->next;
                        conn_free(c);
                } else {
                        pp = &c->next;
                }
        }
}

/* --- expose -------------------------------------------------------------------------------- */

static void format_caller(const vbus_request *req, char *buf, size_t n)
{
        /* Display text; with n >= 96 (a domain name is at most 64 bytes) it is never cut. */
        if (vbus_request_is_caller_local(req))
                (void)snprintf(buf, n, "local(uid=%" PRIu32 ")", vbus_request_get_caller_uid(req));
        else
                (void)snprintf(buf, n, "dom%" PRIu32 "(%s)", vbus_request_get_caller_domid(req),
                               vbus_request_get_caller_name(req));
}

/* Runs @cmd with its stdin and stdout on one end of a socketpair. Return: 0 or -errno. */
static int spawn_command(Conn *c, const char *cmd)
{
        int sv[2];
        pid_t pid;

        if (socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sv) < 0)
                return -errno;
        pid = fork();
        if (pid < 0) {
                int r = -errno;

                close(sv[0]);
                close(sv[1]);
                return r;
        }
        if (pid == 0) {
                if (dup2(sv[1], 0) < 0 || dup2(sv[1], 1) < 0)
                        _exit(127);
                setenv("VBUS_CALLER", c->who, 1);
                setenv("VBUS_FORWARD_NAME", c->ep->name, 1);
                execl("/bin/sh", "sh", "-c", cmd, (char *)NULL);
                _exit(127);
        }
        close(sv[1]);
        (void)fcntl(sv[0], F_SETFL, O_NONBLOCK);
        c->pid = pid;
        c->rfd = c->wfd = sv[0];
        return 0;
}

static void on_connect(vbus_server *srv, vbus_request *req, void *userdata)
{
        Endpoint *ep = userdata;
        Fwd *f = ep->fwd;
        Conn *c = conn_new(ep);
        int r;

        (void)srv;
        f->kick = true;
        if (!c) {
                (void)vbus_request_fail(req, VBUS_STATUS_RESOURCE_EXHAUSTED, "out of memory");
                return;
        }
        format_caller(req, c->who, sizeof(c->who));
        r = vbus_request_stream(req, &conn_handlers, c, &c->st);
        if (r < 0) {
                if (r != -ECANCELED)
                        (void)vbus_request_fail(req, VBUS_STATUS_RESOURCE_EXHAUSTED,
                                                "out of memory");
                c->dead = true;
                return;
        }
        if (ep->exec) {
                r = spawn_command(c, ep->exec);
        } else {
                r = fwd_addr_connect(&ep->addr, &c->rfd);
                c->wfd = c->rfd;
                c->connecting = r == -EINPROGRESS;
                if (r == -EINPROGRESS)
                        r = 0;
        }
        if (r < 0) {
                c->err = -r;
                c->err_op = ep->exec ? "run" : "connect to";
                return;
        }
        fwd_log(f, true, "%" PRIu64 " %s: connected to %s", c->id, c->who,
                ep->exec ? "the command" : ep->addr.text);
}

static void on_other_method(vbus_server *srv, vbus_request *req, void *userdata)
{
        (void)srv;
        (void)userdata;
        (void)vbus_request_fail(req, VBUS_STATUS_NOT_FOUND,
                                "a forwarding endpoint has one method: " FORWARD_METHOD);
}

/* Reaps the commands of expose --exec that exited. */
static void fwd_reap(Fwd *f)
{
        pid_t pid;

        while ((pid = waitpid(-1, NULL, WNOHANG)) > 0)
                for (Conn *c = f->conns; c; c = c->next)
                        if (c->pid == pid)
                                c->pid = 0;
}

/* --- forward ------------------------------------------------------------------------------- */

/* Starts the call of a connection on local descriptors. Return: 0 or a negative errno. */
static int conn_start_call(Conn *c)
{
        Fwd *f = c->fwd;
        int r = vbus_stream_open(f->conn, c->ep->method, NULL, &conn_handlers, c, &c->st);

        if (r < 0) {
                c->st = NULL;
                return r;
        }
        fwd_log(f, true, "%" PRIu64 " %s: opened a call to %s", c->id, c->who, c->ep->method);
        return 0;
}

static void fwd_accept(Endpoint *ep)
{
        Fwd *f = ep->fwd;

        for (;;) {
                int fd = accept4(ep->listen_fd, NULL, NULL, SOCK_NONBLOCK | SOCK_CLOEXEC);
                Conn *c;
                int r;

                if (fd < 0) {
                        if (errno == EMFILE || errno == ENFILE || errno == ENOBUFS ||
                            errno == ENOMEM) {
                                fwd_log(f, false, "cannot accept: %s", strerror(errno));
                                f->accept_after =
                                        now_usec() + (uint64_t)FWD_ACCEPT_BACKOFF_MS * 1000u;
                        }
                        if (errno == ECONNABORTED || errno == EINTR)
                                continue;
                        return;
                }
                c = conn_new(ep);
                if (!c) {
                        fwd_addr_close_reset(fd);
                        continue;
                }
                c->rfd = c->wfd = fd;
                fwd_addr_describe_peer(fd, c->who, sizeof(c->who));
                r = conn_start_call(c);
                if (r < 0) {
                        fwd_log(f, false, "%s: cannot open a call: %s", c->who, strerror(-r));
                        conn_close(c, true);
                }
        }
}

/* --- the loop ------------------------------------------------------------------------------ */

typedef struct PollSet {
        struct pollfd *fds;
        Conn **conns;   /* fds[i] belongs to conns[i] ... */
        Endpoint **eps; /* ... or is eps[i]'s listener (both NULL: the link) */
        size_t n, cap;
} PollSet;

static int pollset_add(PollSet *p, int fd, short events, Conn *c, Endpoint *ep)
{
        if (p->n == p->cap) {
                size_t cap = p->cap ? p->cap * 2 : 16;
                struct pollfd *fds = realloc(p->fds, cap * sizeof(*fds));
                Conn **conns;
                Endpoint **eps;

                if (!fds)
                        return -ENOMEM;
                p->fds = fds;
                conns = realloc(p->conns, cap * sizeof(Conn *));
                if (!conns)
                        return -ENOMEM;
                p->conns = conns;
                eps = realloc(p->eps, cap * sizeof(Endpoint *));
                if (!eps)
                        return -ENOMEM;
                p->eps = eps;
                p->cap = cap;
        }
        p->fds[p->n] = (struct pollfd){.fd = fd, .events = events};
        p->eps[p->n] = ep;
        p->conns[p->n++] = c;
        return 0;
}

/* The poll set of this round: the link, the listener (while the link is up), each connection's
 * descriptors for what it waits for. Return: 0 or -ENOMEM. */
static int fwd_build_pollset(Fwd *f, PollSet *p, uint64_t now)
{
        int fd = vbus_conn_get_fd(f->conn), r = 0;

        p->n = 0;
        if (fd >= 0)
                r = pollset_add(p, fd, (short)vbus_conn_get_events(f->conn), NULL, NULL);
        for (size_t i = 0; i < f->n_eps && r == 0; i++)
                if (f->eps[i].listen_fd >= 0 && now >= f->accept_after &&
                    vbus_conn_get_state(f->conn) == VBUS_CONN_READY)
                        r = pollset_add(p, f->eps[i].listen_fd, POLLIN, NULL, &f->eps[i]);
        for (Conn *c = f->conns; c && r == 0; c = c->next) {
                bool want_in = c->st && !c->blocked && c->n_in == 0 && !c->rd_eof &&
                               !c->connecting && !c->dead && !c->err;
                bool want_out = !c->dead && (c->connecting || c->off_out < c->n_out);

                if (c->rfd == c->wfd && (want_in || want_out))
                        r = pollset_add(p, c->rfd,
                                        (short)((want_in ? POLLIN : 0) | (want_out ? POLLOUT : 0)),
                                        c, NULL);
                else {
                        if (want_in)
                                r = pollset_add(p, c->rfd, POLLIN, c, NULL);
                        if (want_out && r == 0)
                                r = pollset_add(p, c->wfd, POLLOUT, c, NULL);
                }
        }
        return r;
}

static int fwd_poll_timeout(Fwd *f, uint64_t now)
{
        uint64_t due = UINT64_MAX, ms;

        if (f->kick)
                return 0; /* fwd_settle() ran out of rounds: go on at once */
        (void)vbus_conn_get_timeout(f->conn, &due);
        if (f->accept_after > now && f->accept_after < due)
                due = f->accept_after;
        if (due <= now)
                return 0;
        ms = (due - now + 999) / 1000;
        return ms > FWD_POLL_MAX_MS ? FWD_POLL_MAX_MS : (int)ms;
}

static void fwd_handle_events(Fwd *f, const PollSet *p)
{
        for (size_t i = 0; i < p->n; i++) {
                Conn *c = p->conns[i];
                short ev = p->fds[i].revents;

                if (!ev)
                        continue;
                if (p->eps[i]) {
                        fwd_accept(p->eps[i]);
                        continue;
                }
                if (!c)
                        continue;
                if (c->dead)
                        continue;
                if (c->connecting && (ev & (POLLOUT | POLLERR | POLLHUP))) {
                        int r = fwd_addr_connected(c->rfd);

                        c->connecting = false;
                        if (r < 0) {
                                c->err = -r;
                                c->err_op = "connect to";
                                continue;
                        }
                }
                if (ev & (POLLIN | POLLHUP | POLLERR))
                        conn_read(c);
        }
}

static void on_signal(int sig)
{
        (void)sig;
        fwd_quit = 1;
}

static void setup_signals(void)
{
        struct sigaction sa = {.sa_handler = on_signal}; /* no SA_RESTART: poll() returns */

        sigemptyset(&sa.sa_mask);
        sigaction(SIGINT, &sa, NULL);
        sigaction(SIGTERM, &sa, NULL);
        /* A write to a closed socket or pipe is an EPIPE error. Cannot fail. */
        (void)signal(SIGPIPE, SIG_IGN);
}

/*
 * Alternates conn_step() over every connection and vbus_conn_process() until neither has
 * anything left for the other: a library call from conn_step() (a send, an unpause, a finish)
 * may need a process step before the link is polled (an unpaused stream returns its credit only
 * from one: without it the sender waits for the next event, which may never come), and a
 * process step may run callbacks whose consequences conn_step() carries out. Bounded: what is
 * left after FWD_SETTLE_ROUNDS makes the next poll return at once (f->kick stays set).
 * Return: 0 or -1 (a message is printed).
 */
static int fwd_settle(Fwd *f)
{
        for (int round = 0; round < FWD_SETTLE_ROUNDS; round++) {
                int r;

                f->kick = false;
                for (Conn *c = f->conns; c; c = c->next)
                        conn_step(c);
                r = vbus_conn_process(f->conn);
                if (r < 0 && r != -EINTR) {
                        fwd_log(f, false, "%s", strerror(-r));
                        return -1;
                }
                if (!f->kick)
                        break;
        }
        fwd_sweep(f);
        return 0;
}

/* expose: says when the broker routes an endpoint's calls to us. Return: 0, or -1 when the
 * broker refused a registration (printed). */
static int fwd_check_servers(Fwd *f)
{
        for (size_t i = 0; i < f->n_eps; i++) {
                Endpoint *ep = &f->eps[i];
                const char *why = "";
                int st;

                if (!ep->srv)
                        continue;
                st = vbus_server_get_status(ep->srv, &why);
                if (st > 0) {
                        fwd_log(f, false, "the broker refused to let this serve %s: %s%s%s",
                                ep->service, vbus_status_name(st), why[0] ? ": " : "", why);
                        return -1;
                }
                if (!ep->announced && vbus_server_is_active(ep->srv)) {
                        fprintf(stderr, "# exposing %s as %s (service %s)\n",
                                ep->exec ? ep->exec : ep->addr.text, ep->name, ep->service);
                        ep->announced = true;
                }
        }
        return 0;
}

/* Runs until a signal (expose, forward), the link refuses us, or (connect) the one connection
 * is done. Return: 0 or -1 (a message is printed). */
static int fwd_run(Fwd *f)
{
        PollSet p = {0};
        int status = 0;

        while (!fwd_quit) {
                uint64_t now = now_usec();
                int r;

                if (fwd_build_pollset(f, &p, now) < 0) {
                        fwd_log(f, false, "out of memory");
                        status = -1;
                        break;
                }
                r = poll(p.fds, p.n, fwd_poll_timeout(f, now));
                if (r < 0 && errno != EINTR) {
                        fwd_log(f, false, "poll: %s", strerror(errno));
                        status = -1;
                        break;
                }
                if (r > 0)
                        fwd_handle_events(f, &p);
                if (fwd_settle(f) < 0) {
                        status = -1;
                        break;
                }
                if (f->any_exec)
                        fwd_reap(f);
                if (fwd_check_servers(f) < 0) {
                        status = -1;
                        break;
                }
                if (f->mode == MODE_CONNECT && !f->conns)
                        break;
        }
        free(p.fds);
        free(p.conns);
        free(p.eps);
        return status;
}

/* Ends every connection that is still open (a signal or a fatal error): their peers see a
 * reset, as they would if this process died. */
static void fwd_reset_all(Fwd *f)
{
        for (Conn *c = f->conns; c; c = c->next) {
                if (c->st && f->mode == MODE_EXPOSE)
                        (void)vbus_stream_finish(c->st, VBUS_STATUS_UNAVAILABLE,
                                                 "the exposing vbusctl is stopping");
                else if (c->st)
                        (void)vbus_stream_cancel(c->st);
                c->st = NULL;
                if (!c->dead)
                        conn_close(c, true);
        }
        fwd_sweep(f);
        (void)vbus_conn_flush(f->conn, 1000000);
}

/* --- commands ------------------------------------------------------------------------------ */

static int fwd_connect_broker(Fwd *f)
{
        int r = vbus_conn_open(f->url, &f->conn);

        if (r < 0) {
                fwd_log(f, false, "cannot use URL '%s': %s", f->url ? f->url : "(default)",
                        strerror(-r));
                return -1;
        }
        r = vbus_conn_wait_ready(f->conn, (uint64_t)f->timeout_ms * 1000u);
        if (r < 0) {
                int why = vbus_conn_get_last_error(f->conn);

                fwd_log(f, false, "no broker answered at %s: %s", vbus_conn_get_url(f->conn),
                        strerror(-(r != -ETIMEDOUT || why == 0 ? r : why)));
                return -1;
        }
        return 0;
}

static int cmd_expose(Fwd *f)
{
        int r = 0;

        for (size_t i = 0; i < f->n_eps && r == 0; i++) {
                Endpoint *ep = &f->eps[i];

                r = vbus_serve(f->conn, ep->service, on_other_method, ep, &ep->srv);
                if (r == 0)
                        r = vbus_server_stream_method(ep->srv, FORWARD_METHOD, on_connect, ep);
                if (r < 0)
                        fwd_log(f, false, "cannot serve %s: %s", ep->service, strerror(-r));
        }
        if (r == 0)
                r = fwd_run(f);
        fwd_reset_all(f);
        for (size_t i = 0; i < f->n_eps; i++)
                f->eps[i].srv = vbus_server_free(f->eps[i].srv);
        return r < 0 ? 1 : 0;
}

static void fwd_unlisten(Fwd *f)
{
        for (size_t i = 0; i < f->n_eps; i++) {
                Endpoint *ep = &f->eps[i];

                if (ep->listen_fd < 0)
                        continue;
                close(ep->listen_fd);
                ep->listen_fd = -1;
                if (ep->addr.is_unix)
                        (void)unlink(((const struct sockaddr_un *)&ep->addr.sa)->sun_path);
        }
}

/* Listens before the broker is reached, so that a bad or busy address fails at once. */
static int fwd_listen(Fwd *f)
{
        for (size_t i = 0; i < f->n_eps; i++) {
                Endpoint *ep = &f->eps[i];

                ep->listen_fd = fwd_addr_listen(&ep->addr);
                if (ep->listen_fd < 0) {
                        fwd_log(f, false, "cannot listen on %s: %s%s", ep->addr.text,
                                strerror(-ep->listen_fd),
                                ep->listen_fd != -EADDRINUSE ? ""
                                : ep->addr.is_unix
                                        ? " (a program listens there, or it is not a socket)"
                                        : " (another program listens there)");
                        ep->listen_fd = -1;
                        fwd_unlisten(f);
                        return -1;
                }
        }
        return 0;
}

static int cmd_forward(Fwd *f)
{
        char bound[FWD_ADDR_TEXT_MAX];
        int r;

        for (size_t i = 0; i < f->n_eps; i++) {
                Endpoint *ep = &f->eps[i];

                fwd_addr_describe_bound(&ep->addr, ep->listen_fd, bound, sizeof(bound));
                fprintf(stderr, "# forwarding %s to %s\n", bound, ep->method);
        }
        r = fwd_run(f);
        fwd_reset_all(f);
        fwd_unlisten(f);
        return r < 0 ? 1 : 0;
}

static int cmd_connect(Fwd *f)
{
        int flags_in = fcntl(0, F_GETFL), flags_out = fcntl(1, F_GETFL), r;
        Conn *c;

        if (flags_in < 0 || flags_out < 0) {
                fwd_log(f, false, "stdin and stdout must be open");
                return 1;
        }
        c = conn_new(&f->eps[0]);
        if (!c) {
                fwd_log(f, false, "out of memory");
                return 1;
        }
        c->rfd = 0;
        c->wfd = 1;
        c->is_socket = false;
        (void)snprintf(c->who, sizeof(c->who), "stdin");
        /* Non-blocking for the loop; the flags are shared with whoever shares the files (a
         * terminal), so they are put back before exit. */
        (void)fcntl(0, F_SETFL, flags_in | O_NONBLOCK);
        (void)fcntl(1, F_SETFL, flags_out | O_NONBLOCK);
        f->exit_status = 1;
        r = conn_start_call(c);
        if (r < 0) {
                fwd_log(f, false, "cannot open a call to %s: %s", f->eps[0].method, strerror(-r));
                conn_close(c, true);
        }
        if (fwd_run(f) < 0 || f->conns) /* a fatal error or a signal: reset */
                f->exit_status = 1;
        fwd_reset_all(f);
        (void)fcntl(0, F_SETFL, flags_in);
        (void)fcntl(1, F_SETFL, flags_out);
        return f->exit_status;
}

static const struct option fwd_options[] = {
        {"url", required_argument, NULL, 'u'},    {"timeout", required_argument, NULL, 't'},
        {"listen", required_argument, NULL, 'l'}, {"to", required_argument, NULL, 'o'},
        {"exec", required_argument, NULL, 'e'},   {"verbose", no_argument, NULL, 'v'},
        {"help", no_argument, NULL, 'h'},         {0},
};

/* The command word of @argv: the first argument that is neither an option nor the value of
 * the global --url/--timeout. */
static const char *find_command(int argc, char **argv)
{
        for (int i = 1; i < argc; i++) {
                if (strcmp(argv[i], "--url") == 0 || strcmp(argv[i], "--timeout") == 0) {
                        i++;
                        continue;
                }
                if (argv[i][0] != '-')
                        return argv[i];
        }
        return NULL;
}

static bool name_is_valid(const char *name)
{
        bool start = true;

        if (strlen(name) > FWD_NAME_MAX)
                return false;
        for (const char *p = name; *p; p++) {
                if (*p == '.' && !start) {
                        start = true;
                } else if ((*p >= 'A' && *p <= 'Z') || (*p >= 'a' && *p <= 'z') || *p == '_' ||
                           (!start && *p >= '0' && *p <= '9')) {
                        start = false;
                } else {
                        return false;
                }
        }
        return !start;
}

/* Sets up endpoint @ep of @f: NAME @name with the target or listen address @addr (NULL for
 * connect) or the command @exec. Return: 0, or 2 on a usage error (printed). */
static int fwd_add_endpoint(Fwd *f, const char *name, const char *addr, const char *exec)
{
        Endpoint *ep = &f->eps[f->n_eps];
        const char *why = "";
        int r;

        if (!name_is_valid(name)) {
                fprintf(stderr,
                        "vbusctl %s: '%s' is not a valid endpoint name (identifiers "
                        "[A-Za-z_][A-Za-z0-9_]* joined by '.', at most %d bytes)\n",
                        cmd_name(f), name, FWD_NAME_MAX);
                return 2;
        }
        for (size_t i = 0; i < f->n_eps && f->mode == MODE_EXPOSE; i++)
                if (strcmp(f->eps[i].name, name) == 0) {
                        fprintf(stderr, "vbusctl expose: '%s' twice\n", name);
                        return 2;
                }
        ep->fwd = f;
        ep->name = name;
        ep->exec = exec;
        ep->listen_fd = -1;
        /* name_is_valid() kept the service within 255 bytes: both fit. */
        (void)snprintf(ep->service, sizeof(ep->service), "%s%s", FORWARD_SERVICE_PREFIX, name);
        (void)snprintf(ep->method, sizeof(ep->method), "%s%s/%s", FORWARD_SERVICE_PREFIX, name,
                       FORWARD_METHOD);
        if (addr) {
                r = fwd_addr_parse(addr, f->mode == MODE_FORWARD, &ep->addr, &why);
                if (r < 0) {
                        fprintf(stderr, "vbusctl %s: bad address '%s': %s\n", cmd_name(f), addr,
                                why);
                        return 2;
                }
        }
        f->any_exec |= exec != NULL;
        f->n_eps++;
        return 0;
}

/*
 * Parses the command line into @f. The i-th NAME goes with the i-th --to/--exec (expose) or
 * --listen (forward), whatever the order on the line: "expose web --to A db --to B" and
 * "forward --listen A web --listen B db" both pair web with A.
 * Return: 0, 1 for --help, 2 on a usage error (printed).
 */
static int fwd_parse(Fwd *f, int argc, char **argv)
{
        const char *names[FWD_ENDPOINTS_MAX + 1], *targets[FWD_ENDPOINTS_MAX + 1];
        bool is_exec[FWD_ENDPOINTS_MAX + 1];
        size_t n_names = 0, n_targets = 0;
        bool saw_command = false;
        int c, r;
        char *end;

        opterr = 1;
        while ((c = getopt_long(argc, argv, "-hv", fwd_options, NULL)) != -1) {
                switch (c) {
                case 1:
                        if (!saw_command) { /* the command word itself */
                                saw_command = true;
                                break;
                        }
                        if (n_names > FWD_ENDPOINTS_MAX) {
                                fprintf(stderr, "vbusctl %s: at most %d endpoints\n", cmd_name(f),
                                        FWD_ENDPOINTS_MAX);
                                return 2;
                        }
                        names[n_names++] = optarg;
                        break;
                case 'u':
                        f->url = optarg;
                        break;
                case 't':
                        errno = 0;
                        f->timeout_ms = strtol(optarg, &end, 10);
                        if (errno || *end || end == optarg || f->timeout_ms < 0 ||
                            f->timeout_ms > 86400000) {
                                fprintf(stderr,
                                        "vbusctl: --timeout wants a whole number of "
                                        "milliseconds from 0 to 86400000, not '%s'\n"
                                        "Try 'vbusctl --help' for more information.\n",
                                        optarg);
                                return 2;
                        }
                        break;
                case 'l':
                case 'o':
                case 'e':
                        if (f->mode == MODE_CONNECT || (c == 'l') != (f->mode == MODE_FORWARD)) {
                                fprintf(stderr, "vbusctl %s: no option --%s (see --help)\n",
                                        cmd_name(f),
                                        c == 'l'   ? "listen"
                                        : c == 'o' ? "to"
                                                   : "exec");
                                return 2;
                        }
                        if (n_targets > FWD_ENDPOINTS_MAX) {
                                fprintf(stderr, "vbusctl %s: at most %d endpoints\n", cmd_name(f),
                                        FWD_ENDPOINTS_MAX);
                                return 2;
                        }
                        is_exec[n_targets] = c == 'e';
                        targets[n_targets++] = optarg;
                        break;
                case 'v':
                        f->verbose = true;
                        break;
                case 'h':
                        return 1;
                default:
                        return 2;
                }
        }
        if (n_names == 0 || n_names > FWD_ENDPOINTS_MAX ||
            (f->mode == MODE_CONNECT && n_names != 1)) {
                fprintf(stderr, "vbusctl %s: want %s NAME (see --help)\n", cmd_name(f),
                        f->mode == MODE_CONNECT ? "exactly one" : "at least one");
                return 2;
        }
        if (f->mode == MODE_EXPOSE && n_targets != n_names) {
                fprintf(stderr,
                        "vbusctl expose: want one of --to ADDR and --exec CMD for each NAME "
                        "(%zu names, %zu of them)\n",
                        n_names, n_targets);
                return 2;
        }
        if (f->mode == MODE_FORWARD && n_targets != n_names) {
                fprintf(stderr,
                        "vbusctl forward: --listen ADDR is required for each NAME (%zu names, "
                        "%zu --listen)\n",
                        n_names, n_targets);
                return 2;
        }
        for (size_t i = 0; i < n_names; i++) {
                const char *addr = i < n_targets && !is_exec[i] ? targets[i] : NULL;
                const char *exec = i < n_targets && is_exec[i] ? targets[i] : NULL;

                r = fwd_add_endpoint(f, names[i], addr, exec);
                if (r != 0)
                        return r;
        }
        return 0;
}

int forward_main(int argc, char **argv)
{
        const char *cmd = find_command(argc, argv);
        Fwd f = {.timeout_ms = 5000};
        int r;

        if (!cmd)
                return -1;
        if (strcmp(cmd, "expose") == 0)
                f.mode = MODE_EXPOSE;
        else if (strcmp(cmd, "forward") == 0)
                f.mode = MODE_FORWARD;
        else if (strcmp(cmd, "connect") == 0)
                f.mode = MODE_CONNECT;
        else
                return -1;
        r = fwd_parse(&f, argc, argv);
        if (r == 1) {
                printf("Usage: vbusctl [--url URL] COMMAND [ARGS]\n\n%s\n%s", FORWARD_USAGE,
                       "ADDR is tcp:HOST:PORT, tcp:[IPV6]:PORT or unix:/PATH. Each connection is\n"
                       "one streaming call to forward.NAME/Connect; see docs/forward.md.\n");
                return 0;
        }
        if (r != 0)
                return r;
        setup_signals();
        if (f.mode == MODE_FORWARD && fwd_listen(&f) < 0)
                return 1;
        if (fwd_connect_broker(&f) < 0) {
                vbus_conn_free(f.conn);
                fwd_unlisten(&f);
                return 1;
        }
        switch (f.mode) {
        case MODE_EXPOSE:
                r = cmd_expose(&f);
                break;
        case MODE_FORWARD:
                r = cmd_forward(&f);
                break;
        default:
                r = cmd_connect(&f);
                break;
        }
        vbus_conn_free(f.conn);
        return r;
}
