/* SPDX-License-Identifier: MIT */
/*
 * rawauth: a client that does channel auth (docs/protocol.md 3.1) by hand over the broker's UNIX
 * socket, right or wrong, for tests/integration/auth.sh. KEY is a secret key file.
 *
 *   rawauth SOCKET KEY good REC     the whole exchange, right; writes the two HELLO frames it
 *                                   sent to REC; exits 0 when the broker answers a PING after
 *                                   the proof (it took the proof)
 *   rawauth SOCKET KEY replay REC   replays REC's two HELLO frames on a new link
 *   rawauth SOCKET KEY wrongkey     a proof naming KEY's public key, signed by another key
 *   rawauth SOCKET KEY truncated    a proof one byte short
 *   rawauth SOCKET KEY late         a PING first, then the proof
 *   rawauth SOCKET KEY badnonce     a 31-byte auth_challenge in the first HELLO
 *   rawauth SOCKET KEY reflect      the broker's own proof sent back as the client's
 *
 * Every mode but good exits 0 only if the broker answered with ERROR{PERMISSION_DENIED}
 * (replay, wrongkey, reflect) or ERROR{PROTOCOL_ERROR} (truncated, late, badnonce) and closed
 * the link; 1 otherwise; 2 on usage errors.
 *
 *   rawauth --broker SOCKET KEY MODE   a hostile broker for one libvbus client that pins KEY's
 *                                      public key: it listens on SOCKET, answers the client's
 *                                      HELLO per MODE (noauth: without AUTH; shortnonce: a
 *                                      31-byte nonce; noproof; shortproof: 95 bytes; garbage: 96
 *                                      random bytes; otherkey: a valid proof of another key;
 *                                      stale: KEY's proof over another client nonce), and exits
 *                                      0 only if the client then closes without sending any
 *                                      frame (no proof, no OPEN).
 */
#include <errno.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

#include "../common/rawframe.h"
#include "auth.h"
#include "control.h"
#include "frame.h"

enum { DENIED = VBUS__V1__STATUS__STATUS_PERMISSION_DENIED };
enum { PROTOCOL = VBUS__V1__STATUS__STATUS_PROTOCOL_ERROR };

static int fd = -1;
static VbusFrameDecoder dec;
static uint8_t rbuf[65536];
static size_t rlen, rpos;
/* What this side sent, for `good` to record. */
static uint8_t sent[2 * (VBUS_FRAME_HEADER_SIZE + VBUS_CONTROL_MAX)];
static size_t n_sent;

static void send_control(uint8_t type, const ProtobufCMessage *m)
{
        uint8_t buf[VBUS_FRAME_HEADER_SIZE + VBUS_CONTROL_MAX];
        VbusSegments out = {{buf, NULL}, {sizeof(buf), 0}};
        VbusFrameHeader h = {.type = type};
        size_t n;

        if (vbus__control_encode(&h, m, &out, &n) != 0) {
                fprintf(stderr, "rawauth: cannot encode\n");
                exit(1);
        }
        if (type == VBUS_FRAME_HELLO && n_sent + n <= sizeof(sent)) {
                memcpy(sent + n_sent, buf, n);
                n_sent += n;
        }
        raw_send_all(fd, buf, n, 0);
}

/* The next frame from the broker, decoded into @c (control frames only). Return: 0, or -1 when
 * the broker closed the link or sent nothing for 10 s. */
static int next_frame(VbusControl *c, uint8_t *ret_type, uint8_t *ret_flags)
{
        for (;;) {
                VbusFrame f;
                size_t used;
                int r;

                if (rpos == rlen) {
                        struct pollfd pfd = {.fd = fd, .events = POLLIN};
                        ssize_t n;

                        if (poll(&pfd, 1, 10000) <= 0)
                                return -1;
                        n = recv(fd, rbuf, sizeof(rbuf), 0);
                        if (n <= 0)
                                return -1;
                        rlen = (size_t)n;
                        rpos = 0;
                }
                r = vbus__frame_decoder_feed(&dec, rbuf + rpos, rlen - rpos, &used, &f);
                if (r < 0)
                        return -1;
                rpos += used;
                if (r == 0)
                        continue;
                *ret_type = f.header.type;
                *ret_flags = f.header.flags;
                *c = (VbusControl)VBUS_CONTROL_NULL;
                if (f.header.type == VBUS_FRAME_DATA)
                        continue;
                if (vbus__control_decode(&f.header, f.payload, VBUS_CONTROL_DECODE_BUDGET, c) != 0)
                        return -1;
                return 0;
        }
}

/* Reads until the broker closes: 0 if an ERROR with @status came first. */
static int expect_error(int status)
{
        VbusControl c;
        uint8_t type, flags;
        int got = -1;

        while (next_frame(&c, &type, &flags) == 0) {
                if (type == VBUS_FRAME_ERROR) {
                        const Vbus__V1__Error *e = (const Vbus__V1__Error *)c.msg;

                        printf("broker: ERROR %d: %s\n", e->status, e->message);
                        if (got < 0)
                                got = e->status;
                }
                vbus__control_deinit(&c);
        }
        if (got != status)
                fprintf(stderr, "rawauth: expected ERROR %d before the close, got %d\n", status,
                        got);
        return got == status ? 0 : 1;
}

static void hello_fields(const Vbus__V1__Hello *m, VbusAuthHelloFields *ret)
{
        *ret = (VbusAuthHelloFields){m->version_min, m->version_max, m->features};
}

/* The first HELLO, with AUTH and a nonce of @nonce_len bytes (32 is right). */
static void send_hello(VbusAuthTranscript *t, size_t nonce_len)
{
        Vbus__V1__Hello h = VBUS__V1__HELLO__INIT;

        h.version_min = 1;
        h.version_max = 1;
        h.max_frame = VBUS_FRAME_MAX_DEFAULT;
        h.features = VBUS_FEATURE_AUTH;
        h.peer_name = (char *)"rawauth";
        if (vbus__auth_random(t->client_nonce, sizeof(t->client_nonce)) < 0)
                exit(1);
        h.auth_challenge.data = t->client_nonce;
        h.auth_challenge.len = nonce_len;
        hello_fields(&h, &t->client);
        send_control(VBUS_FRAME_HELLO, &h.base);
}

/* Reads the broker's HELLO into @t; its proof, if any, into @ret_proof. Return: 0 or -1. */
static int recv_hello(VbusAuthTranscript *t, uint8_t ret_proof[VBUS_AUTH_PROOF_SIZE])
{
        VbusControl c;
        uint8_t type, flags;
        const Vbus__V1__Hello *m;

        if (next_frame(&c, &type, &flags) < 0 || type != VBUS_FRAME_HELLO) {
                fprintf(stderr, "rawauth: no HELLO from the broker\n");
                return -1;
        }
        m = (const Vbus__V1__Hello *)c.msg;
        if (!(m->features & VBUS_FEATURE_AUTH) || m->auth_challenge.len != VBUS_AUTH_NONCE_SIZE) {
                fprintf(stderr, "rawauth: the broker offers no channel auth\n");
                vbus__control_deinit(&c);
                return -1;
        }
        t->version = m->version;
        memcpy(t->broker_nonce, m->auth_challenge.data, VBUS_AUTH_NONCE_SIZE);
        hello_fields(m, &t->broker);
        memset(ret_proof, 0, VBUS_AUTH_PROOF_SIZE);
        if (m->auth_proof.len == VBUS_AUTH_PROOF_SIZE) {
                memcpy(ret_proof, m->auth_proof.data, VBUS_AUTH_PROOF_SIZE);
                memcpy(t->broker_key, m->auth_proof.data, VBUS_AUTH_PUBLIC_KEY_SIZE);
        }
        vbus__control_deinit(&c);
        return 0;
}

static void send_proof(const VbusAuthTranscript *t, const uint8_t *proof, size_t len)
{
        Vbus__V1__Hello h = VBUS__V1__HELLO__INIT;

        h.version_min = t->client.version_min;
        h.version_max = t->client.version_max;
        h.version = t->version;
        h.max_frame = VBUS_FRAME_MAX_DEFAULT; /* as in the first HELLO */
        h.features = VBUS_FEATURE_AUTH;
        h.auth_proof.data = (uint8_t *)proof;
        h.auth_proof.len = len;
        send_control(VBUS_FRAME_HELLO, &h.base);
}

/* A PING; 0 once its ACK came back. */
static int ping_acked(void)
{
        Vbus__V1__Ping p = VBUS__V1__PING__INIT;
        VbusControl c;
        uint8_t type, flags;

        p.opaque = 42;
        send_control(VBUS_FRAME_PING, &p.base);
        while (next_frame(&c, &type, &flags) == 0) {
                bool ack = type == VBUS_FRAME_PING && (flags & VBUS_FLAG_ACK);

                if (type == VBUS_FRAME_ERROR)
                        printf("broker: ERROR %d: %s\n", ((Vbus__V1__Error *)c.msg)->status,
                               ((Vbus__V1__Error *)c.msg)->message);
                vbus__control_deinit(&c);
                if (ack)
                        return 0;
        }
        return -1;
}

static int write_file(const char *path, const uint8_t *p, size_t n)
{
        FILE *f = fopen(path, "wb");

        if (!f || fwrite(p, 1, n, f) != n) {
                if (f)
                        (void)fclose(f); /* failed already */
                return -1;
        }
        return fclose(f) == 0 ? 0 : -1;
}

/* REC's frames, replayed: the first HELLO, the broker's answer read and ignored, the proof. */
static int replay(const char *path)
{
        uint8_t buf[sizeof(sent)], proof[VBUS_AUTH_PROOF_SIZE];
        VbusAuthTranscript t = {0};
        FILE *f = fopen(path, "rb");
        size_t n, first;

        if (!f)
                return 2;
        n = fread(buf, 1, sizeof(buf), f);
        (void)fclose(f); /* read-only: what was read is checked below */
        if (n < VBUS_FRAME_HEADER_SIZE)
                return 2;
        first = VBUS_FRAME_HEADER_SIZE + ((size_t)buf[4] | (size_t)buf[5] << 8);
        if (first > n)
                return 2;
        raw_send_all(fd, buf, first, 0);
        if (recv_hello(&t, proof) < 0)
                return 1;
        raw_send_all(fd, buf + first, n - first, 0);
        return expect_error(DENIED);
}

/* The hostile broker (see the top of the file). */
static int broker_main(const char *path, const char *key_path, const char *mode)
{
        struct sockaddr_un sa = {.sun_family = AF_UNIX};
        uint8_t nonce[VBUS_AUTH_NONCE_SIZE], proof[VBUS_AUTH_PROOF_SIZE];
        Vbus__V1__Hello a = VBUS__V1__HELLO__INIT;
        VbusAuthTranscript t = {0};
        VbusAuthKey key, signer;
        const Vbus__V1__Hello *h;
        VbusControl c;
        uint8_t type, flags;
        int lfd;

        if (strlen(path) >= sizeof(sa.sun_path) || vbus__auth_key_load(key_path, &key) < 0)
                return 2;
        memcpy(sa.sun_path, path, strlen(path) + 1); /* its length checked above */
        lfd = socket(AF_UNIX, SOCK_STREAM, 0);
        if (lfd < 0 || bind(lfd, (struct sockaddr *)&sa, sizeof(sa)) < 0 || listen(lfd, 1) < 0)
                return 1;
        fd = accept(lfd, NULL, NULL);
        if (fd < 0)
                return 1;
        vbus__frame_decoder_init(&dec, VBUS_FRAME_MAX_LIMIT);
        if (next_frame(&c, &type, &flags) < 0 || type != VBUS_FRAME_HELLO)
                return 1;
        h = (const Vbus__V1__Hello *)c.msg;
        if (h->auth_challenge.len != VBUS_AUTH_NONCE_SIZE) {
                fprintf(stderr, "rawauth: the client did not offer a 32-byte nonce\n");
                return 1;
        }
        t.version = 1;
        memcpy(t.client_nonce, h->auth_challenge.data, VBUS_AUTH_NONCE_SIZE);
        hello_fields(h, &t.client);
        vbus__control_deinit(&c);
        a.version_min = a.version_max = a.version = 1;
        a.max_frame = VBUS_FRAME_MAX_DEFAULT;
        a.features = strcmp(mode, "noauth") == 0 ? 0 : VBUS_FEATURE_AUTH;
        if (vbus__auth_random(nonce, sizeof(nonce)) < 0 ||
            vbus__auth_random(proof, sizeof(proof)) < 0)
                return 1;
        memcpy(t.broker_nonce, nonce, sizeof(nonce));
        hello_fields(&a, &t.broker);
        a.auth_challenge.data = nonce;
        a.auth_challenge.len = strcmp(mode, "shortnonce") == 0 ? 31 : sizeof(nonce);
        signer = key;
        if (strcmp(mode, "otherkey") == 0 && vbus__auth_key_generate(&signer) < 0)
                return 1;
        if (strcmp(mode, "stale") == 0)
                t.client_nonce[0] ^= 1; /* a proof made for another link */
        if (strcmp(mode, "otherkey") == 0 || strcmp(mode, "stale") == 0 ||
            strcmp(mode, "shortnonce") == 0 || strcmp(mode, "noauth") == 0) {
                memcpy(t.broker_key, signer.public_key, VBUS_AUTH_PUBLIC_KEY_SIZE);
                if (vbus__auth_prove(&t, VBUS_AUTH_ROLE_BROKER, &signer, proof) < 0)
                        return 1;
        }
        a.auth_proof.data = proof;
        a.auth_proof.len = strcmp(mode, "noproof") == 0      ? 0
                           : strcmp(mode, "shortproof") == 0 ? sizeof(proof) - 1
                                                             : sizeof(proof);
        send_control(VBUS_FRAME_HELLO, &a.base);
        /* An honest broker's proof of the right key would let the client go on; none of these
         * must: it closes, having sent nothing more. */
        if (next_frame(&c, &type, &flags) == 0) {
                fprintf(stderr,
                        "rawauth: the client sent a frame of type %u after a bad broker "
                        "HELLO (%s)\n",
                        type, mode);
                vbus__control_deinit(&c);
                return 1;
        }
        printf("the client closed without a frame after the %s HELLO\n", mode);
        return 0;
}

int main(int argc, char **argv)
{
        struct sockaddr_un sa = {.sun_family = AF_UNIX};
        uint8_t proof[VBUS_AUTH_PROOF_SIZE], broker_proof[VBUS_AUTH_PROOF_SIZE];
        VbusAuthTranscript t = {0};
        VbusAuthKey key, other;
        const char *what;

        if (argc == 5 && strcmp(argv[1], "--broker") == 0)
                return broker_main(argv[2], argv[3], argv[4]);
        if (argc < 4 || strlen(argv[1]) >= sizeof(sa.sun_path))
                return 2;
        what = argv[3];
        if (vbus__auth_key_load(argv[2], &key) < 0) {
                fprintf(stderr, "rawauth: cannot load %s\n", argv[2]);
                return 2;
        }
        memcpy(sa.sun_path, argv[1], strlen(argv[1]) + 1); /* its length checked above */
        fd = socket(AF_UNIX, SOCK_STREAM, 0);
        if (fd < 0 || connect(fd, (struct sockaddr *)&sa, sizeof(sa)) < 0) {
                perror("rawauth: connect");
                return 1;
        }
        vbus__frame_decoder_init(&dec, VBUS_FRAME_MAX_LIMIT);
        if (strcmp(what, "replay") == 0)
                return argc == 5 ? replay(argv[4]) : 2;
        send_hello(&t, strcmp(what, "badnonce") == 0 ? 31 : VBUS_AUTH_NONCE_SIZE);
        if (strcmp(what, "badnonce") == 0)
                return expect_error(PROTOCOL);
        if (recv_hello(&t, broker_proof) < 0)
                return 1;
        memcpy(t.client_key, key.public_key, sizeof(t.client_key));
        if (vbus__auth_prove(&t, VBUS_AUTH_ROLE_CLIENT, &key, proof) < 0)
                return 1;
        if (strcmp(what, "good") == 0) {
                send_proof(&t, proof, sizeof(proof));
                if (ping_acked() < 0) {
                        fprintf(stderr, "rawauth: the broker refused a good proof\n");
                        return 1;
                }
                return argc == 5 && write_file(argv[4], sent, n_sent) == 0 ? 0 : 1;
        }
        if (strcmp(what, "wrongkey") == 0) {
                if (vbus__auth_key_generate(&other) < 0)
                        return 1;
                memcpy(t.client_key, other.public_key, sizeof(t.client_key));
                if (vbus__auth_prove(&t, VBUS_AUTH_ROLE_CLIENT, &other, proof) < 0)
                        return 1;
                memcpy(proof, key.public_key, VBUS_AUTH_PUBLIC_KEY_SIZE);
                send_proof(&t, proof, sizeof(proof));
                return expect_error(DENIED);
        }
        if (strcmp(what, "truncated") == 0) {
                send_proof(&t, proof, sizeof(proof) - 1);
                return expect_error(PROTOCOL);
        }
        if (strcmp(what, "late") == 0) {
                if (ping_acked() < 0)
                        return 1;
                send_proof(&t, proof, sizeof(proof));
                return expect_error(PROTOCOL);
        }
        if (strcmp(what, "reflect") == 0) {
                if (!vbus__auth_key_is_set(t.broker_key)) {
                        fprintf(stderr, "rawauth: reflect needs a broker with a key\n");
                        return 1;
                }
                send_proof(&t, broker_proof, sizeof(broker_proof));
                return expect_error(DENIED);
        }
        return 2;
}
