/* SPDX-License-Identifier: MIT */
/*
 * scrape: the metrics listener (see scrape.h).
 *
 * Each connection has a fixed slot; the epoll registration's data.ptr is the slot (or the
 * listener's tag), so scrape_owns() is two pointer comparisons. A connection reads its request
 * into the slot's buffer until the blank line that ends the headers, then renders the metrics
 * once into a buffer it writes out as the socket takes it, and closes.
 */
#include "scrape.h"

#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <unistd.h>

#include "admin.h"
#include "log.h"
#include "rundir.h"
#include "vchand-limits.h"

typedef struct ScrapeConn {
        int fd; /* -1: the slot is free */
        uint64_t started_us;
        char req[LIMIT_SCRAPE_REQUEST];
        size_t n_req;
        char *out; /* the response, once the request is complete */
        size_t n_out, off;
} ScrapeConn;

struct Scrape {
        Bus *bus;
        int epoll_fd;
        int listen_fd;
        char listen_tag;
        bool unix_path; /* unlink path at the end */
        char path[108];
        uint32_t n_conns;
        bool accept_paused;        /* out of fds or memory: resumed by the next tick */
        uint64_t accept_logged_us; /* once per 10 s */
        ScrapeConn conns[LIMIT_SCRAPE_CONNS];
};

static int scrape_listen(Scrape *s, const ConfigListen *l)
{
        union {
                struct sockaddr sa;
                struct sockaddr_un un;
                struct sockaddr_in in;
                struct sockaddr_in6 in6;
        } a = {0};
        socklen_t n;
        int one = 1, fd;

        switch (l->kind) {
        case CONFIG_LISTEN_UNIX:
                a.un.sun_family = AF_UNIX;
                memcpy(a.un.sun_path, l->path, strlen(l->path) + 1); /* < 108: config.c */
                n = sizeof(a.un);
                break;
        case CONFIG_LISTEN_TCP4:
                a.in.sin_family = AF_INET;
                a.in.sin_port = htons(l->port);
                a.in.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
                n = sizeof(a.in);
                break;
        case CONFIG_LISTEN_TCP6:
                a.in6.sin6_family = AF_INET6;
                a.in6.sin6_port = htons(l->port);
                a.in6.sin6_addr = in6addr_loopback;
                n = sizeof(a.in6);
                break;
        default:
                return -EINVAL;
        }
        fd = socket(a.sa.sa_family, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
        if (fd < 0)
                return -errno;
        if (l->kind == CONFIG_LISTEN_UNIX) {
                (void)unlink(l->path); /* a socket left by a broker that died */
        } else {
                (void)setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one));
        }
        if (bind(fd, &a.sa, n) < 0 || (l->kind == CONFIG_LISTEN_UNIX && chmod(l->path, 0660) < 0) ||
            listen(fd, LIMIT_SCRAPE_CONNS) < 0) {
                int r = -errno;

                close(fd);
                return r;
        }
        if (l->kind == CONFIG_LISTEN_UNIX) {
                s->unix_path = true;
                memcpy(s->path, l->path, sizeof(s->path));
        }
        s->listen_fd = fd;
        return 0;
}

int scrape_new(Bus *b, const ConfigListen *l, int epoll_fd, Scrape **ret)
{
        struct epoll_event ev = {.events = EPOLLIN};
        Scrape *s = calloc(1, sizeof(*s));
        int r;

        if (!s)
                return -ENOMEM;
        s->bus = b;
        s->epoll_fd = epoll_fd;
        s->listen_fd = -1;
        for (size_t i = 0; i < LIMIT_SCRAPE_CONNS; i++)
                s->conns[i].fd = -1;
        r = scrape_listen(s, l);
        if (r == 0) {
                ev.data.ptr = &s->listen_tag;
                if (epoll_ctl(epoll_fd, EPOLL_CTL_ADD, s->listen_fd, &ev) < 0)
                        r = -errno;
        }
        if (r < 0) {
                scrape_free(s);
                return r;
        }
        *ret = s;
        return 0;
}

static void conn_close(Scrape *s, ScrapeConn *c)
{
        if (c->fd < 0)
                return;
        (void)epoll_ctl(s->epoll_fd, EPOLL_CTL_DEL, c->fd, NULL);
        close(c->fd);
        free(c->out);
        c->fd = -1;
        c->out = NULL;
        c->n_req = c->n_out = c->off = 0;
        s->n_conns--;
        if (s->n_conns == LIMIT_SCRAPE_CONNS - 1 && s->listen_fd >= 0) {
                /* A slot is free again: take connections from the backlog. */
                struct epoll_event ev = {.events = EPOLLIN, .data.ptr = &s->listen_tag};

                (void)epoll_ctl(s->epoll_fd, EPOLL_CTL_MOD, s->listen_fd, &ev);
        }
}

Scrape *scrape_free(Scrape *s)
{
        if (!s)
                return NULL;
        for (size_t i = 0; i < LIMIT_SCRAPE_CONNS; i++)
                conn_close(s, &s->conns[i]);
        if (s->listen_fd >= 0) {
                (void)epoll_ctl(s->epoll_fd, EPOLL_CTL_DEL, s->listen_fd, NULL);
                close(s->listen_fd);
        }
        if (s->unix_path)
                (void)unlink(s->path);
        free(s);
        return NULL;
}

bool scrape_owns(const Scrape *s, const void *tag)
{
        const char *t = tag;

        return s && (t == &s->listen_tag || (t >= (const char *)s->conns &&
                                             t < (const char *)(s->conns + LIMIT_SCRAPE_CONNS)));
}

static void scrape_accept(Scrape *s)
{
        while (s->n_conns < LIMIT_SCRAPE_CONNS) {
                struct epoll_event ev = {.events = EPOLLIN};
                ScrapeConn *c = NULL;
                int fd = accept4(s->listen_fd, NULL, NULL, SOCK_NONBLOCK | SOCK_CLOEXEC);

                if (fd < 0 && rundir_accept_must_rest(errno)) {
                        /* A readable socket we cannot accept from would spin the loop: it
                         * rests until the next tick (the broker's own socket does the same). */
                        uint64_t now = bus_now_us();

                        if (!s->accept_logged_us || now - s->accept_logged_us >= 10000000u) {
                                log_error("metrics listener: accept: %s: scrapes wait",
                                          strerror(errno));
                                s->accept_logged_us = now;
                        }
                        s->accept_paused = true;
                        break;
                }
                if (fd < 0) {
                        if (errno != EAGAIN && errno != EINTR && errno != ECONNABORTED)
                                log_error("metrics listener: accept: %s", strerror(errno));
                        return;
                }
                for (size_t i = 0; i < LIMIT_SCRAPE_CONNS && !c; i++) {
                        if (s->conns[i].fd < 0)
                                c = &s->conns[i];
                }
                ev.data.ptr = c;
                if (!c || epoll_ctl(s->epoll_fd, EPOLL_CTL_ADD, fd, &ev) < 0) {
                        close(fd);
                        continue;
                }
                c->fd = fd;
                c->started_us = bus_now_us();
                s->n_conns++;
        }
        /* Every slot taken, or paused: leave the rest in the backlog until one frees. */
        {
                struct epoll_event ev = {.events = 0, .data.ptr = &s->listen_tag};

                (void)epoll_ctl(s->epoll_fd, EPOLL_CTL_MOD, s->listen_fd, &ev);
        }
}

/* Builds the whole response for the request in @c (complete: it ends with a blank line). */
static int conn_respond(Scrape *s, ScrapeConn *c)
{
        static const char ctype[] = "text/plain; version=0.0.4; charset=utf-8";
        bool get = strncmp(c->req, "GET ", 4) == 0, head = strncmp(c->req, "HEAD ", 5) == 0;
        char *body = NULL, *out = NULL;
        size_t n_body = 0, n_out = 0;
        FILE *f;

        if ((get || head) && admin_metrics_text(s->bus, &body, &n_body) < 0)
                return -ENOMEM;
        f = open_memstream(&out, &n_out);
        if (!f) {
                free(body);
                return -ENOMEM;
        }
        if (get || head)
                fprintf(f, "HTTP/1.0 200 OK\r\nContent-Type: %s\r\nContent-Length: %zu\r\n\r\n",
                        ctype, n_body);
        else
                fprintf(f, "HTTP/1.0 405 Method Not Allowed\r\nAllow: GET, HEAD\r\n"
                           "Content-Length: 0\r\n\r\n");
        if (get)
                (void)fwrite(body, 1, n_body, f); /* a memory stream: fclose() reports */
        free(body);
        if (fclose(f) != 0 || !out) {
                free(out);
                return -ENOMEM;
        }
        c->out = out;
        c->n_out = n_out;
        return 0;
}

static void conn_write(Scrape *s, ScrapeConn *c)
{
        while (c->off < c->n_out) {
                ssize_t n = send(c->fd, c->out + c->off, c->n_out - c->off, MSG_NOSIGNAL);

                if (n < 0 && errno == EINTR)
                        continue;
                if (n < 0 && errno == EAGAIN) {
                        struct epoll_event ev = {.events = EPOLLOUT, .data.ptr = c};

                        (void)epoll_ctl(s->epoll_fd, EPOLL_CTL_MOD, c->fd, &ev);
                        return;
                }
                if (n <= 0)
                        break;
                c->off += (size_t)n;
        }
        conn_close(s, c);
}

/* Before closing on a request we did not read whole: what already arrived is read and thrown
 * away (a bounded amount), so that the close is a FIN after our answer, not a reset that could
 * destroy it before the client reads it. */
static void conn_discard(int fd)
{
        char buf[4096];

        (void)shutdown(fd, SHUT_WR);
        for (int i = 0; i < 16; i++) {
                if (recv(fd, buf, sizeof(buf), MSG_DONTWAIT) <= 0)
                        break;
        }
}

/* Reads what arrived; once the headers are complete, answers. */
static void conn_read(Scrape *s, ScrapeConn *c)
{
        static const char too_large[] = "HTTP/1.0 431 Request Header Fields Too Large\r\n"
                                        "Content-Length: 0\r\n\r\n";

        for (;;) {
                ssize_t n;

                if (c->n_req == sizeof(c->req) - 1) {
                        (void)send(c->fd, too_large, sizeof(too_large) - 1, MSG_NOSIGNAL);
                        conn_discard(c->fd);
                        conn_close(s, c);
                        return;
                }
                n = recv(c->fd, c->req + c->n_req, sizeof(c->req) - 1 - c->n_req, 0);
                if (n < 0 && errno == EINTR)
                        continue;
                if (n < 0 && errno == EAGAIN)
                        return;
                if (n <= 0) {
                        conn_close(s, c);
                        return;
                }
                c->n_req += (size_t)n;
                c->req[c->n_req] = '\0';
                /* A NUL in the request ends the string early: then it never completes, and the
                 * connection goes at its timeout. */
                if (strstr(c->req, "\r\n\r\n") || strstr(c->req, "\n\n"))
                        break;
        }
        if (conn_respond(s, c) < 0) {
                conn_close(s, c);
                return;
        }
        conn_write(s, c);
}

void scrape_process(Scrape *s, const void *tag, uint32_t events)
{
        ScrapeConn *c;

        if (tag == &s->listen_tag) {
                scrape_accept(s);
                return;
        }
        c = (ScrapeConn *)tag;
        if (c->fd < 0)
                return; /* closed earlier in this batch of events */
        if (c->out)
                conn_write(s, c);
        else if (events & (EPOLLIN | EPOLLHUP | EPOLLERR))
                conn_read(s, c);
}

void scrape_tick(Scrape *s, uint64_t now_us)
{
        if (!s)
                return;
        if (s->accept_paused && s->listen_fd >= 0) {
                struct epoll_event ev = {.events = EPOLLIN, .data.ptr = &s->listen_tag};

                s->accept_paused = false;
                (void)epoll_ctl(s->epoll_fd, EPOLL_CTL_MOD, s->listen_fd, &ev);
        }
        for (size_t i = 0; i < LIMIT_SCRAPE_CONNS; i++) {
                ScrapeConn *c = &s->conns[i];

                if (c->fd >= 0 &&
                    now_us - c->started_us > (uint64_t)LIMIT_SCRAPE_TIMEOUT_MS * 1000u)
                        conn_close(s, c);
        }
}
