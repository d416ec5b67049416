/* SPDX-License-Identifier: MIT */
/*
 * agent: the guest agent's loop and relay (see agent.h). One epoll set: the signal fd, the
 * listening socket, the link to the broker ("up") and each local connection ("client").
 *
 * Invariants:
 *  - every frame read from either side has passed the link's checks (protocol.md rules 1-10)
 *    before it is relayed; session rules are the broker's (it ends the session that breaks one);
 *  - a client frame goes up only with the client's session id, a frame from the broker goes to
 *    the client of its session with session id 0: a process never sees or names another session;
 *  - frames keep their order each way: a frame that finds no room waits (up: in the client's one
 *    held slot, and the client is not read meanwhile; down: in the client's queue, and later
 *    frames queue behind it);
 *  - the up link is read in every iteration whatever the clients do.
 */
#include "agent.h"

#include <errno.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/signalfd.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <unistd.h>

#include <vbus/vbus.h>

#include "bus.h"
#include "heap.h"
#include "link.h"
#include "log.h"
#include "map.h"
#include "rundir.h"
#include "transport.h"
#include "util/list.h"
#include "vchan.h"
#include "vchand-limits.h"

typedef struct Agent Agent;

typedef struct Client {
        Agent *agent;
        List link;
        MapEntry entry; /* in agent->sessions once it has a session */
        uint8_t key[4];
        uint32_t session; /* 0 until its HELLO went up */
        VbusLink lk;
        uint32_t uid, pid;
        char command[65];
        bool registered;
        uint32_t events;
        bool closing; /* the session is over: flush what is queued, then close */
        bool dead;    /* closed: in agent->dead until agent_reap() */
        /* Writing to it failed (it closed its socket): what comes for it is discarded, but what
         * it sent before it closed is still read and relayed, to the end. */
        bool write_dead;
        /* One frame for the broker that found no room in the link. */
        VbusFrameHeader held_h;
        uint8_t *held;
        bool has_held;
        /* Frames for the process that found no room in its socket. */
        uint8_t *out;
        size_t n_out, cap_out;
} Client;

struct Agent {
        AgentConfig cfg;
        int epoll_fd, listen_fd, signal_fd;
        VbusLink up;
        bool up_open;  /* a link to the broker exists */
        bool up_ready; /* the broker answered our HELLO */
        bool up_registered;
        uint32_t up_events;
        bool up_vchan;
        uint32_t up_domid; /* vchan: the broker's domain */
        char up_path[108]; /* unix: the broker's socket */
        uint64_t up_started_us, reconnect_at_us, backoff_ms;
        uint64_t next_tick_us; /* the next heap_tick() (heap.h), every LIMIT_TICK_MS */
        int last_up_error;     /* logged once per change */
        uint32_t next_session;
        List clients;
        List dead; /* closed clients, freed at the end of the turn */
        uint32_t n_clients;
        Map sessions;
        bool more; /* a budget stopped a read: run again without sleeping */
        bool stopping;
        uint64_t accept_resume_us; /* accept paused (out of fds or memory) until then; 0: not */
        uint64_t accept_logged_us; /* when that was last logged (once per 10 s) */
};

static char tag_signal, tag_listen, tag_up;
#define TAG_SIGNAL ((void *)&tag_signal)
#define TAG_LISTEN ((void *)&tag_listen)
#define TAG_UP     ((void *)&tag_up)

void agent_config_defaults(AgentConfig *c)
{
        *c = (AgentConfig){
                .max_clients = LIMIT_AGENT_MAX_CLIENTS,
                .client_queue = LIMIT_AGENT_CLIENT_QUEUE,
                .socket_mode = LIMIT_SOCKET_MODE,
        };
        (void)snprintf(c->socket_group, sizeof(c->socket_group), "%s", LIMIT_SOCKET_GROUP);
        (void)snprintf(c->socket_path, sizeof(c->socket_path), "%s", "/run/vbus/broker.sock");
        (void)snprintf(c->upstream, sizeof(c->upstream), "%s", "vchan:0");
}

static int epoll_set(Agent *a, int op, int fd, uint32_t events, void *tag)
{
        struct epoll_event ev = {.events = events, .data.ptr = tag};

        return epoll_ctl(a->epoll_fd, op, fd, &ev) < 0 ? -errno : 0;
}

static void session_key(uint8_t key[4], uint32_t id)
{
        key[0] = (uint8_t)id;
        key[1] = (uint8_t)(id >> 8);
        key[2] = (uint8_t)(id >> 16);
        key[3] = (uint8_t)(id >> 24);
}

static Client *find_session(Agent *a, uint32_t id)
{
        uint8_t key[4];
        MapEntry *e;

        session_key(key, id);
        e = map_find(&a->sessions, (const char *)key, sizeof(key));
        return e ? container_of(e, Client, entry) : NULL;
}

/* --- the link to the broker -------------------------------------------------------------- */

static int up_send_control(Agent *a, uint8_t type, uint8_t flags, uint32_t session,
                           const ProtobufCMessage *msg)
{
        VbusFrameHeader h = {.type = type, .flags = flags, .session_id = session};

        return vbus__link_write_control(&a->up, &h, msg);
}

static void client_free(Agent *a, Client *c);

/* The link to the broker is gone: every local connection goes with it (agent.h, "Faults"). */
static void up_lost(Agent *a, const char *why)
{
        if (!a->up_open)
                return;
        /* A ring the broker never mapped is republished every few seconds while no broker
         * runs: not worth a line each time. */
        if (a->up_ready || a->n_clients > 0)
                log_info("agent: link to the broker lost (%s): closing %u local connections", why,
                         a->n_clients);
        else
                log_debug("agent: %s", why);
        {
                List *pos, *tmp;

                list_for_each_safe(pos, tmp, &a->clients)
                {
                        client_free(a, list_entry(pos, Client, link));
                }
        }
        if (a->up_registered)
                (void)epoll_ctl(a->epoll_fd, EPOLL_CTL_DEL,
                                vbus__transport_get_fd(&a->up.transport), NULL);
        a->up_registered = false;
        vbus__link_deinit(&a->up);
        a->up_open = a->up_ready = false;
        a->backoff_ms = a->backoff_ms ? a->backoff_ms * 2 : LIMIT_AGENT_RECONNECT_MIN_MS;
        if (a->backoff_ms > LIMIT_AGENT_RECONNECT_MAX_MS)
                a->backoff_ms = LIMIT_AGENT_RECONNECT_MAX_MS;
        a->reconnect_at_us = bus_now_us() + a->backoff_ms * 1000u;
}

static int up_open_transport(Agent *a, VbusTransport *t)
{
        if (a->up_vchan) {
                VbusVchan *vc = NULL;
                int r = vbus__vchan_server_open_to(a->up_domid, "vbus", LIMIT_AGENT_RING,
                                                   LIMIT_AGENT_RING, &vc);

                if (r < 0)
                        return r;
                return vbus__transport_init_vchan(t, vc);
        }
        struct sockaddr_un sa = {.sun_family = AF_UNIX};
        int fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0), r;

        if (fd < 0)
                return -errno;
        memcpy(sa.sun_path, a->up_path, sizeof(a->up_path));
        if (connect(fd, (struct sockaddr *)&sa, sizeof(sa)) < 0) {
                r = -errno;
                close(fd);
                return r;
        }
        r = vbus__transport_init_unix(t, fd);
        if (r < 0)
                close(fd);
        return r;
}

static void up_connect_failed(Agent *a, int r)
{
        if (r != a->last_up_error) {
                if (r == -EADDRINUSE)
                        log_error("agent: another process of this domain holds its vchan to the "
                                  "broker (dom%u): stop it, so that it connects through this "
                                  "agent; retrying",
                                  a->up_domid);
                else
                        log_error("agent: cannot connect to the broker at %s: %s; retrying",
                                  a->cfg.upstream, strerror(-r));
                a->last_up_error = r;
        }
        a->backoff_ms = a->backoff_ms ? a->backoff_ms * 2 : LIMIT_AGENT_RECONNECT_MIN_MS;
        if (a->backoff_ms > LIMIT_AGENT_RECONNECT_MAX_MS)
                a->backoff_ms = LIMIT_AGENT_RECONNECT_MAX_MS;
        a->reconnect_at_us = bus_now_us() + a->backoff_ms * 1000u;
}

static void up_connect(Agent *a)
{
        Vbus__V1__Hello h = VBUS__V1__HELLO__INIT;
        VbusTransport t;
        int r;

        r = up_open_transport(a, &t);
        if (r < 0) {
                up_connect_failed(a, r);
                return;
        }
        r = vbus__link_init(&a->up, &t, LIMIT_AGENT_MAX_FRAME);
        if (r < 0) {
                vbus__transport_deinit(&t);
                up_connect_failed(a, r);
                return;
        }
        a->up_open = true;
        a->up_ready = false;
        a->up_started_us = bus_now_us();
        a->next_session = 0;
        h.version_min = VBUS_PROTOCOL_VERSION;
        h.version_max = VBUS_PROTOCOL_VERSION;
        h.max_frame = LIMIT_AGENT_MAX_FRAME;
        h.peer_name = (char *)"vchand-agent";
        r = up_send_control(a, VBUS_FRAME_HELLO, 0, 0, &h.base);
        if (r == 0)
                r = vbus__link_flush(&a->up);
        if (r < 0 && r != -EAGAIN)
                up_lost(a, strerror(-r));
}

/* --- local connections ------------------------------------------------------------------- */

static void client_update_events(Agent *a, Client *c)
{
        int fd = vbus__transport_get_fd(&c->lk.transport);
        uint32_t ev = 0;

        /* A client waiting for room upstream (or for the broker) is not read: its bytes wait in
         * its socket, and a readable fd we do not read would wake us in a loop. */
        if (a->up_ready && !c->has_held && !c->closing)
                ev |= EPOLLIN;
        if (!c->write_dead &&
            (c->n_out > 0 || (vbus__transport_get_events(&c->lk.transport) & EPOLLOUT)))
                ev |= EPOLLOUT;
        if (c->registered && ev == c->events)
                return;
        if (ev == 0) {
                if (c->registered)
                        (void)epoll_ctl(a->epoll_fd, EPOLL_CTL_DEL, fd, NULL);
                c->registered = false;
                c->events = 0;
                return;
        }
        if (epoll_set(a, c->registered ? EPOLL_CTL_MOD : EPOLL_CTL_ADD, fd, ev, c) == 0) {
                c->registered = true;
                c->events = ev;
        }
}

/*
 * Closes @c: out of the lists and the epoll set at once, its socket closed; the memory is freed
 * by agent_reap() at the end of the turn, so that no caller up the stack, and no loop over the
 * clients, ever holds a freed client.
 */
static void client_free(Agent *a, Client *c)
{
        if (c->dead)
                return;
        c->dead = true;
        if (c->registered)
                (void)epoll_ctl(a->epoll_fd, EPOLL_CTL_DEL,
                                vbus__transport_get_fd(&c->lk.transport), NULL);
        c->registered = false;
        if (c->session && !c->closing)
                map_remove(&a->sessions, &c->entry);
        list_unlink(&c->link);
        a->n_clients--;
        vbus__link_deinit(&c->lk);
        list_add_tail(&a->dead, &c->link);
}

static void agent_reap(Agent *a)
{
        List *pos, *tmp;

        list_for_each_safe(pos, tmp, &a->dead)
        {
                Client *c = list_entry(pos, Client, link);

                list_unlink(&c->link);
                free(c->held);
                free(c->out);
                free(c);
        }
}

/* Ends @c's session at the broker (GOAWAY for it) and closes the connection. */
static void client_end(Agent *a, Client *c, int status, const char *why)
{
        if (c->session && !c->closing && a->up_ready) {
                Vbus__V1__GoAway g = VBUS__V1__GO_AWAY__INIT;

                g.status = status;
                g.message = (char *)why;
                if (up_send_control(a, VBUS_FRAME_GOAWAY, 0, c->session, &g.base) == -ENOBUFS) {
                        up_lost(a, "the broker does not read its link");
                        return; /* @c went with it */
                }
        }
        if (c->session)
                log_debug("agent: session %u (pid %u %s) ended: %s", c->session, c->pid, c->command,
                          why);
        client_free(a, c);
}

/* The session is over at the broker: nothing more goes up; what is queued goes down. */
static void client_close_session(Agent *a, Client *c)
{
        if (c->session && !c->closing)
                map_remove(&a->sessions, &c->entry);
        c->closing = true;
}

/*
 * Writing to @c failed: it has closed its socket (or it broke). Its session does not end here:
 * the frames it sent before it closed are still in its socket, and a publisher's last messages
 * are among them; reading to its end of file ends the session (client_read).
 */
static void client_write_failed(Client *c)
{
        c->write_dead = true;
        c->n_out = 0;
}

/*
 * One frame toward @c: written now if nothing waits before it and it fits, else queued. A
 * client over its queue limit is cut off. Return: 0, or -EPIPE when @c was freed.
 */
static int client_send(Agent *a, Client *c, const VbusFrameHeader *h, const void *payload)
{
        struct iovec piece = {(void *)payload, h->length};
        size_t need = VBUS_FRAME_HEADER_SIZE + h->length;
        int r = -EAGAIN;

        if (c->write_dead)
                return 0;
        if (c->n_out == 0) {
                r = vbus__link_write(&c->lk, h, &piece, 1);
                if (r == 0)
                        return 0;
        }
        if (r != -EAGAIN) {
                client_write_failed(c);
                return 0;
        }
        if (c->n_out + need > a->cfg.client_queue) {
                log_info("agent: pid %u (%s) does not read its socket (%zu bytes waiting): its "
                         "session ends",
                         c->pid, c->command, c->n_out);
                client_end(a, c, VBUS__V1__STATUS__STATUS_RESOURCE_EXHAUSTED,
                           "the local process does not read its socket");
                return -EPIPE;
        }
        if (c->n_out + need > c->cap_out) {
                size_t cap = c->cap_out ? c->cap_out : 65536;
                uint8_t *n;

                while (cap < c->n_out + need)
                        cap *= 2;
                n = realloc(c->out, cap);
                if (!n) {
                        client_end(a, c, VBUS__V1__STATUS__STATUS_RESOURCE_EXHAUSTED,
                                   "the agent is out of memory");
                        return -EPIPE;
                }
                c->out = n;
                c->cap_out = cap;
        }
        vbus__frame_header_encode(h, c->out + c->n_out);
        if (h->length)
                memcpy(c->out + c->n_out + VBUS_FRAME_HEADER_SIZE, payload, h->length);
        c->n_out += need;
        return 0;
}

/* Writes what waits toward @c as its socket takes it; closes a finished session. */
static void client_flush(Agent *a, Client *c)
{
        size_t done = 0;
        int r;

        while (done < c->n_out) {
                VbusFrameHeader h;
                struct iovec piece;

                (void)vbus__frame_header_decode(c->out + done, c->n_out - done,
                                                VBUS_FRAME_MAX_LIMIT, &h); /* we encoded it */
                piece.iov_base = c->out + done + VBUS_FRAME_HEADER_SIZE;
                piece.iov_len = h.length;
                r = vbus__link_write(&c->lk, &h, &piece, 1);
                if (r == -EAGAIN)
                        break;
                if (r < 0) {
                        client_write_failed(c);
                        done = 0;
                        break;
                }
                done += VBUS_FRAME_HEADER_SIZE + h.length;
        }
        if (done > 0) {
                memmove(c->out, c->out + done, c->n_out - done);
                c->n_out -= done;
        }
        if (!c->write_dead) {
                r = vbus__link_flush(&c->lk);
                if (r < 0 && r != -EAGAIN)
                        client_write_failed(c);
        }
        if (c->closing &&
            (c->write_dead || (c->n_out == 0 && !vbus__transport_has_pending(&c->lk.transport))))
                client_free(a, c);
}

/* The process's HELLO goes up as its session's HELLO, with the agent's claims about it. */
static int client_hello(Agent *a, Client *c, const Vbus__V1__Hello *m)
{
        Vbus__V1__Hello h = *m;
        Vbus__V1__Claims cl = VBUS__V1__CLAIMS__INIT;
        int r;

        if (a->next_session == UINT32_MAX) {
                up_lost(a, "session ids exhausted: starting a new link");
                return -EPIPE;
        }
        c->session = ++a->next_session;
        session_key(c->key, c->session);
        if (map_add(&a->sessions, &c->entry, (const char *)c->key, sizeof(c->key)) < 0) {
                c->session = 0;
                client_end(a, c, VBUS__V1__STATUS__STATUS_RESOURCE_EXHAUSTED, "out of memory");
                return -EPIPE;
        }
        cl.uid = c->uid;
        cl.pid = c->pid;
        cl.command = c->command;
        h.claims = &cl;
        if (h.max_frame > LIMIT_AGENT_MAX_FRAME)
                h.max_frame = LIMIT_AGENT_MAX_FRAME;
        r = up_send_control(a, VBUS_FRAME_HELLO, 0, c->session, &h.base);
        if (r < 0) {
                up_lost(a, "the broker does not read its link");
                return -EPIPE;
        }
        log_debug("agent: session %u for pid %u (%s), uid %u", c->session, c->pid, c->command,
                  c->uid);
        return 0;
}

/* A frame of @c that breaks framing or the agent's rules: its session ends, told why. */
static void client_violation(Agent *a, Client *c, const char *why)
{
        Vbus__V1__Error e = VBUS__V1__ERROR__INIT;
        VbusFrameHeader h = {.type = VBUS_FRAME_ERROR};

        e.status = VBUS__V1__STATUS__STATUS_PROTOCOL_ERROR;
        e.message = (char *)why;
        (void)vbus__link_write_control(&c->lk, &h, &e.base);
        (void)vbus__link_flush(&c->lk);
        log_info("agent: pid %u (%s): protocol violation: %s", c->pid, c->command, why);
        client_end(a, c, VBUS__V1__STATUS__STATUS_PROTOCOL_ERROR, why);
}

/* Relays what @c sent, up to its per-turn budget, until the link to the broker is full. */
static void client_read(Agent *a, Client *c)
{
        int r;

        if (!a->up_ready || c->closing)
                return;
        if (c->has_held) {
                struct iovec piece = {c->held, c->held_h.length};

                r = vbus__link_write(&a->up, &c->held_h, &piece, 1);
                if (r == -EAGAIN)
                        return;
                if (r < 0) {
                        up_lost(a, strerror(-r));
                        return;
                }
                c->has_held = false;
        }
        for (unsigned i = 0; i < LIMIT_AGENT_FRAMES_PER_CLIENT; i++) {
                const VbusControl *ctl = NULL;
                VbusFrameHeader h;
                VbusFrame f;
                struct iovec piece;

                r = vbus__link_next(&c->lk, &f, &ctl);
                if (r == 0)
                        return;
                if (r == -EPROTO) {
                        client_violation(a, c, vbus__frame_error_name(c->lk.violation));
                        return;
                }
                if (r < 0) {
                        client_end(a, c, VBUS__V1__STATUS__STATUS_CANCELLED,
                                   "the local process went away");
                        return;
                }
                if (f.header.session_id != 0) {
                        client_violation(a, c, "a local process speaks session 0 only");
                        return;
                }
                if (!c->session) {
                        if (f.header.type != VBUS_FRAME_HELLO) {
                                client_violation(a, c, "the first frame must be HELLO");
                                return;
                        }
                        if (client_hello(a, c, (const Vbus__V1__Hello *)ctl->msg) < 0)
                                return;
                        continue;
                }
                /* Leaving: its session ends when its socket closes (streams end as they end). */
                if (f.header.type == VBUS_FRAME_GOAWAY)
                        continue;
                h = f.header;
                h.session_id = c->session;
                piece.iov_base = (void *)f.payload;
                piece.iov_len = f.header.length;
                r = vbus__link_write(&a->up, &h, &piece, 1);
                if (r == -EAGAIN) {
                        if (!c->held)
                                c->held = malloc(LIMIT_AGENT_MAX_FRAME);
                        if (!c->held) {
                                client_end(a, c, VBUS__V1__STATUS__STATUS_RESOURCE_EXHAUSTED,
                                           "the agent is out of memory");
                                return;
                        }
                        c->held_h = h;
                        if (h.length)
                                memcpy(c->held, f.payload, h.length);
                        c->has_held = true;
                        return;
                }
                if (r < 0) {
                        up_lost(a, strerror(-r));
                        return;
                }
        }
        a->more = true;
}

static void command_of(uint32_t pid, char *buf, size_t n)
{
        char path[64];
        FILE *f;
        size_t k = 0;

        (void)snprintf(path, sizeof(path), "/proc/%u/comm", pid);
        buf[0] = '\0';
        f = fopen(path, "re");
        if (!f)
                return;
        if (fgets(buf, (int)n, f))
                k = strlen(buf);
        (void)fclose(f); /* read-only: nothing to lose */
        while (k > 0 && buf[k - 1] == '\n')
                buf[--k] = '\0';
        /* Log and claim text: printable ASCII only. */
        for (size_t i = 0; i < k; i++)
                if (buf[i] < 0x20 || buf[i] > 0x7e)
                        buf[i] = '?';
}

/* Out of fds or memory: the listening socket rests (as the broker's, broker.c), logged once
 * per 10 s; what waits in the backlog is taken when the pause ends (agent_accept_resume()). */
static void agent_accept_pause(Agent *a, int error)
{
        uint64_t now = bus_now_us();

        a->accept_resume_us = now + (uint64_t)LIMIT_ACCEPT_PAUSE_MS * 1000u;
        (void)epoll_set(a, EPOLL_CTL_MOD, a->listen_fd, 0, TAG_LISTEN);
        if (a->accept_logged_us && now - a->accept_logged_us < UINT64_C(10000000))
                return;
        log_error("agent: accept: %s: new local connections wait in the backlog", strerror(error));
        a->accept_logged_us = now;
}

static void agent_accept_resume(Agent *a, uint64_t now)
{
        if (!a->accept_resume_us || now < a->accept_resume_us)
                return;
        a->accept_resume_us = 0;
        (void)epoll_set(a, EPOLL_CTL_MOD, a->listen_fd, EPOLLIN, TAG_LISTEN);
}

static void agent_accept(Agent *a)
{
        for (;;) {
                struct ucred cred;
                socklen_t n = sizeof(cred);
                VbusTransport t;
                Client *c;
                int fd = accept4(a->listen_fd, NULL, NULL, SOCK_NONBLOCK | SOCK_CLOEXEC);

                if (fd < 0) {
                        if (rundir_accept_must_rest(errno))
                                agent_accept_pause(a, errno);
                        else if (errno != EAGAIN && errno != EINTR && errno != ECONNABORTED)
                                log_error("agent: accept: %s", strerror(errno));
                        return;
                }
                if (a->n_clients >= a->cfg.max_clients ||
                    getsockopt(fd, SOL_SOCKET, SO_PEERCRED, &cred, &n) < 0) {
                        if (a->n_clients >= a->cfg.max_clients)
                                log_info("agent: refused a local connection: %u already "
                                         "(agent_max_clients)",
                                         a->n_clients);
                        close(fd);
                        continue;
                }
                c = calloc(1, sizeof(*c));
                if (!c || vbus__transport_init_unix(&t, fd) < 0) {
                        free(c);
                        close(fd);
                        continue;
                }
                if (vbus__link_init(&c->lk, &t, LIMIT_AGENT_MAX_FRAME) < 0) {
                        vbus__transport_deinit(&t);
                        free(c);
                        continue;
                }
                c->agent = a;
                c->uid = cred.uid;
                c->pid = (uint32_t)cred.pid;
                command_of(c->pid, c->command, sizeof(c->command));
                list_add_tail(&a->clients, &c->link);
                a->n_clients++;
                client_update_events(a, c);
        }
}

/* --- frames from the broker -------------------------------------------------------------- */

/* Session 0: the agent's own. */
static void up_own_frame(Agent *a, const VbusFrame *f, const VbusControl *ctl)
{
        switch (f->header.type) {
        case VBUS_FRAME_HELLO:
                if (a->up_ready || vbus__link_set_max_frame(&a->up, LIMIT_AGENT_MAX_FRAME) < 0)
                        break;
                a->up_ready = true;
                a->backoff_ms = 0;
                a->last_up_error = 0;
                log_info("agent: connected to the broker at %s; serving %s", a->cfg.upstream,
                         a->cfg.socket_path);
                break;
        case VBUS_FRAME_PING:
                if (!(f->header.flags & VBUS_FLAG_ACK) &&
                    up_send_control(a, VBUS_FRAME_PING, VBUS_FLAG_ACK, 0, ctl->msg) < 0)
                        up_lost(a, "the broker does not read its link");
                break;
        case VBUS_FRAME_GOAWAY: {
                List *pos, *tmp;

                /* The broker is stopping: each process hears it as from a broker of its own. */
                log_info("agent: the broker is stopping");
                list_for_each_safe(pos, tmp, &a->clients)
                {
                        Client *c = list_entry(pos, Client, link);
                        VbusFrameHeader h = f->header;

                        if (c->session && !c->closing)
                                (void)client_send(a, c, &h, f->payload);
                        if (!a->up_open)
                                break; /* up_lost(): every client is gone */
                }
                break;
        }
        case VBUS_FRAME_ERROR:
                log_info("agent: the broker sent ERROR: %.200s",
                         ((const Vbus__V1__Error *)ctl->msg)->message);
                break;
        default:
                break; /* the agent opens no stream of its own */
        }
}

/* A frame of session @f->header.session_id goes to its process as session 0. */
static void up_session_frame(Agent *a, const VbusFrame *f, const VbusControl *ctl)
{
        Client *c = find_session(a, f->header.session_id);
        VbusFrameHeader h = f->header;

        if (!c)
                return; /* its process has gone, and its GOAWAY is on the way up */
        h.session_id = 0;
        if (h.type == VBUS_FRAME_HELLO) {
                /* The process sends frames as large as this says: no larger than we relay. */
                Vbus__V1__Hello m = *(const Vbus__V1__Hello *)ctl->msg;
                uint8_t buf[VBUS_FRAME_HEADER_SIZE + VBUS_CONTROL_MAX];
                VbusSegments out = {{buf, NULL}, {sizeof(buf), 0}};
                size_t n;

                if (m.max_frame > LIMIT_AGENT_MAX_FRAME)
                        m.max_frame = LIMIT_AGENT_MAX_FRAME;
                if (vbus__control_encode(&h, &m.base, &out, &n) < 0)
                        return;
                (void)vbus__frame_header_decode(buf, n, VBUS_FRAME_MAX_LIMIT, &h);
                if (client_send(a, c, &h, buf + VBUS_FRAME_HEADER_SIZE) == 0)
                        (void)vbus__link_set_max_frame(&c->lk, LIMIT_AGENT_MAX_FRAME);
                return;
        }
        if (client_send(a, c, &h, f->payload) < 0)
                return;
        if (h.type == VBUS_FRAME_GOAWAY)
                client_close_session(a, c);
}

static void up_read(Agent *a)
{
        for (unsigned i = 0; i < LIMIT_AGENT_FRAMES_FROM_BROKER; i++) {
                const VbusControl *ctl = NULL;
                VbusFrame f;
                int r;

                if (!a->up_open)
                        return;
                r = vbus__link_next(&a->up, &f, &ctl);
                if (r == 0)
                        return;
                if (r < 0) {
                        up_lost(a, r == -EPIPE ? "closed" : strerror(-r));
                        return;
                }
                if (f.header.session_id == 0)
                        up_own_frame(a, &f, ctl);
                else if (a->up_ready)
                        up_session_frame(a, &f, ctl);
        }
        a->more = true;
}

static void up_update_events(Agent *a)
{
        uint32_t ev;
        int fd;

        if (!a->up_open)
                return;
        fd = vbus__transport_get_fd(&a->up.transport);
        ev = EPOLLIN | (vbus__transport_get_events(&a->up.transport) & EPOLLOUT);
        if (a->up_registered && ev == a->up_events)
                return;
        if (epoll_set(a, a->up_registered ? EPOLL_CTL_MOD : EPOLL_CTL_ADD, fd, ev, TAG_UP) == 0) {
                a->up_registered = true;
                a->up_events = ev;
        }
}

/* --- setup and loop ---------------------------------------------------------------------- */

static int agent_parse_upstream(Agent *a)
{
        const char *u = a->cfg.upstream;

        if (strncmp(u, "vchan:", 6) == 0) {
                char *end;
                unsigned long v;

                errno = 0;
                v = strtoul(u + 6, &end, 10);
                if (u[6] < '0' || u[6] > '9' || errno || *end || v > VBUS_VCHAN_DOMID_MAX)
                        return -EINVAL;
                a->up_vchan = true;
                a->up_domid = (uint32_t)v;
                return 0;
        }
        if (strncmp(u, "unix:", 5) == 0 && u[5] == '/' && strlen(u + 5) < sizeof(a->up_path)) {
                memcpy(a->up_path, u + 5, strlen(u + 5) + 1);
                return 0;
        }
        return -EINVAL;
}

static int agent_listen(Agent *a)
{
        struct sockaddr_un sa = {.sun_family = AF_UNIX};
        char note[256];
        int fd, r;

        if (strlen(a->cfg.socket_path) >= sizeof(sa.sun_path))
                return -ENAMETOOLONG;
        memcpy(sa.sun_path, a->cfg.socket_path, strlen(a->cfg.socket_path) + 1);
        /* The caller holds the run directory's lock: a socket here is a dead instance's. */
        r = rundir_listen(sa.sun_path, a->cfg.socket_owner, a->cfg.socket_group,
                          !a->cfg.socket_group_set, a->cfg.socket_mode, &fd, note, sizeof(note));
        if (r < 0) {
                log_error("agent: %s", note);
                return r;
        }
        if (note[0])
                log_info("agent: %s", note);
        a->listen_fd = fd;
        return 0;
}

static int agent_init(Agent *a, const AgentConfig *cfg)
{
        sigset_t mask;
        int r;

        *a = (Agent){.cfg = *cfg, .epoll_fd = -1, .listen_fd = -1, .signal_fd = -1};
        list_init(&a->clients);
        list_init(&a->dead);
        (void)map_init(&a->sessions);
        if (agent_parse_upstream(a) < 0) {
                log_error("agent: --upstream wants vchan:<broker domid> or unix:<absolute path>, "
                          "not '%s'",
                          cfg->upstream);
                return -EINVAL;
        }
        a->epoll_fd = epoll_create1(EPOLL_CLOEXEC);
        if (a->epoll_fd < 0)
                return -errno;
        sigemptyset(&mask);
        sigaddset(&mask, SIGTERM);
        sigaddset(&mask, SIGINT);
        sigaddset(&mask, SIGPIPE);
        if (sigprocmask(SIG_BLOCK, &mask, NULL) < 0)
                return -errno;
        a->signal_fd = signalfd(-1, &mask, SFD_NONBLOCK | SFD_CLOEXEC);
        if (a->signal_fd < 0)
                return -errno;
        r = epoll_set(a, EPOLL_CTL_ADD, a->signal_fd, EPOLLIN, TAG_SIGNAL);
        if (r < 0)
                return r;
        r = agent_listen(a);
        if (r < 0) {
                log_error("agent: cannot listen on %s: %s", cfg->socket_path, strerror(-r));
                return r;
        }
        return epoll_set(a, EPOLL_CTL_ADD, a->listen_fd, EPOLLIN, TAG_LISTEN);
}

static void agent_deinit(Agent *a)
{
        up_lost(a, "the agent is stopping");
        agent_reap(a);
        map_deinit(&a->sessions);
        if (a->listen_fd >= 0) {
                close(a->listen_fd);
                (void)unlink(a->cfg.socket_path);
        }
        if (a->signal_fd >= 0)
                close(a->signal_fd);
        if (a->epoll_fd >= 0)
                close(a->epoll_fd);
}

static int agent_timeout_ms(Agent *a, uint64_t now)
{
        uint64_t wake = now + 1000000u; /* backstop: a shared ring's events can be withheld */

        if (a->more)
                return 0;
        if (!a->up_open && a->reconnect_at_us < wake)
                wake = a->reconnect_at_us;
        if (a->accept_resume_us && a->accept_resume_us < wake)
                wake = a->accept_resume_us;
        return (int)((wake > now ? wake - now + 999 : 0) / 1000u);
}

/* One turn: what the broker sent, then each local connection's queue and frames. */
static void agent_turn(Agent *a)
{
        List *pos, *tmp;
        int r;

        a->more = false;
        up_read(a);
        list_for_each_safe(pos, tmp, &a->clients)
        {
                client_flush(a, list_entry(pos, Client, link));
                if (!a->up_open)
                        break; /* up_lost(): every client is gone */
        }
        /* Freeing a client (its flush, its read) never frees another one, except up_lost(),
         * which frees them all: hence the check of the list before each step. */
        list_for_each_safe(pos, tmp, &a->clients)
        {
                client_read(a, list_entry(pos, Client, link));
                if (!a->up_open)
                        break;
        }
        if (a->up_open) {
                r = vbus__link_flush(&a->up);
                if (r < 0 && r != -EAGAIN)
                        up_lost(a, strerror(-r));
        }
        list_for_each_safe(pos, tmp, &a->clients)
        {
                Client *c = list_entry(pos, Client, link);

                (void)vbus__link_flush(&c->lk);
                client_update_events(a, c);
        }
        up_update_events(a);
        agent_reap(a);
}

int agent_run(const AgentConfig *cfg)
{
        Agent a;
        int r;

        r = agent_init(&a, cfg);
        if (r < 0) {
                agent_deinit(&a);
                return r;
        }
        log_info("vbus agent %s: serving %s, broker at %s", vbus_version(), cfg->socket_path,
                 cfg->upstream);
        while (!a.stopping) {
                struct epoll_event events[64];
                uint64_t now = bus_now_us();
                int n;

                if (!a.up_open && now >= a.reconnect_at_us)
                        up_connect(&a);
                now = bus_now_us();
                if (a.up_open && a.up_vchan && !a.up_ready &&
                    now > a.up_started_us + (uint64_t)LIMIT_AGENT_VCHAN_WAIT_MS * 1000u &&
                    vbus__vchan_get_peer(a.up.transport.vchan) == VBUS_VCHAN_PEER_WAITING) {
                        up_lost(&a, "the broker did not map the ring: publishing it afresh");
                        a.reconnect_at_us = now;
                        continue;
                }
                agent_turn(&a);
                agent_accept_resume(&a, bus_now_us());
                if (now >= a.next_tick_us) {
                        /* Frames relayed upward and downward: the agent's traffic. */
                        heap_tick(a.up.n_frames_in + a.up.n_frames_out);
                        a.next_tick_us = now + (uint64_t)LIMIT_TICK_MS * 1000u;
                }
                n = epoll_wait(a.epoll_fd, events, 64, agent_timeout_ms(&a, bus_now_us()));
                if (n < 0 && errno != EINTR) {
                        r = -errno;
                        break;
                }
                for (int i = 0; i < n; i++) {
                        void *tag = events[i].data.ptr;

                        if (tag == TAG_SIGNAL) {
                                struct signalfd_siginfo si;

                                while (read(a.signal_fd, &si, sizeof(si)) == sizeof(si))
                                        if (si.ssi_signo == SIGTERM || si.ssi_signo == SIGINT)
                                                a.stopping = true;
                        } else if (tag == TAG_LISTEN) {
                                agent_accept(&a);
                        } else if (tag == TAG_UP) {
                                /* A failure is kept by the transport and seen by the next
                                 * read (up_read): the clients of later events stay valid. */
                                if (a.up_open)
                                        (void)vbus__transport_process(&a.up.transport);
                        } else {
                                Client *c = tag;

                                if (!c->dead)
                                        (void)vbus__transport_process(&c->lk.transport);
                        }
                }
        }
        log_info("agent: stopping");
        agent_deinit(&a);
        return r < 0 ? r : 0;
}
