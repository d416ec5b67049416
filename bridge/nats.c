/* SPDX-License-Identifier: MIT */
/*
 * nats: the bridge's one connection to the NATS cluster, with the credentials, TLS and
 * reconnect behaviour of the configuration. libnats reconnects by itself (to any server of the
 * cluster it knows, forever) and keeps up to nats-reconnect-buffer bytes of publishes while
 * disconnected; the callbacks here only count (they run on libnats' threads).
 */
#include <errno.h>
#include <stdio.h>

#include "bridge.h"

static void nats_on_disconnected(natsConnection *nc, void *closure)
{
        Bridge *b = closure;

        atomic_fetch_add(&b->m.nats_disconnects, 1);
        fprintf(stderr, "vbus-bridge: NATS connection lost\n");
}

static void nats_on_reconnected(natsConnection *nc, void *closure)
{
        Bridge *b = closure;
        char url[256] = "";

        atomic_fetch_add(&b->m.nats_reconnects, 1);
        natsConnection_GetConnectedUrl(nc, url, sizeof(url));
        fprintf(stderr, "vbus-bridge: NATS reconnected to %s\n", url);
}

static void nats_on_connected(natsConnection *nc, void *closure)
{
        char url[256] = "";

        natsConnection_GetConnectedUrl(nc, url, sizeof(url));
        fprintf(stderr, "vbus-bridge: NATS connected to %s\n", url);
}

static void nats_on_error(natsConnection *nc, natsSubscription *sub, natsStatus err, void *closure)
{
        Bridge *b = closure;

        if (err == NATS_SLOW_CONSUMER) {
                /* Rate-limited by nature: libnats reports a slow consumer once per episode. */
                atomic_fetch_add(&b->m.nats_slow_consumer, 1);
                fprintf(stderr, "vbus-bridge: NATS slow consumer: messages dropped (seen as "
                                "gaps by the importer)\n");
                return;
        }
        atomic_fetch_add(&b->m.nats_errors, 1);
        fprintf(stderr, "vbus-bridge: NATS error: %s\n", natsStatus_GetText(err));
}

int nats_connect(Bridge *b)
{
        const Config *c = b->cfg;
        natsOptions *o = NULL;
        natsStatus s;
        char name[64];

        snprintf(name, sizeof(name), "vbus-bridge %s", c->host);
        s = natsOptions_Create(&o);
        if (s == NATS_OK)
                s = natsOptions_SetServers(o, (const char **)c->nats_urls, (int)c->n_nats_urls);
        if (s == NATS_OK)
                s = natsOptions_SetName(o, name);
        if (s == NATS_OK)
                s = natsOptions_SetMaxReconnect(o, -1);
        if (s == NATS_OK)
                s = natsOptions_SetReconnectWait(o, c->nats_reconnect_wait_ms);
        if (s == NATS_OK)
                s = natsOptions_SetReconnectBufSize(o, (int)c->nats_reconnect_buffer);
        /* Latency rather than batching: each publish is written at once instead of by
         * libnats' flusher thread. */
        if (s == NATS_OK && c->nats_send_asap)
                s = natsOptions_SetSendAsap(o, true);
        if (s == NATS_OK && c->nats_ignore_discovered)
                s = natsOptions_SetIgnoreDiscoveredServers(o, true);
        if (s == NATS_OK)
                /* With a callback, a failed first connect is retried in the background
                 * (without one, natsConnection_Connect() would retry forever, blocking). */
                s = natsOptions_SetRetryOnFailedConnect(o, true, nats_on_connected, b);
        /* The bridge never wants its own publications back: an "import *" rule skips this host
         * anyway, and a call must not come back to the bridge that forwards it. */
        if (s == NATS_OK)
                s = natsOptions_SetNoEcho(o, true);
        if (s == NATS_OK)
                s = natsOptions_SetDisconnectedCB(o, nats_on_disconnected, b);
        if (s == NATS_OK)
                s = natsOptions_SetReconnectedCB(o, nats_on_reconnected, b);
        if (s == NATS_OK)
                s = natsOptions_SetErrorHandler(o, nats_on_error, b);
        if (s == NATS_OK && c->nats_user)
                s = natsOptions_SetUserInfo(o, c->nats_user, c->nats_password);
        if (s == NATS_OK && c->nats_token)
                s = natsOptions_SetToken(o, c->nats_token);
        if (s == NATS_OK && c->nats_creds)
                s = natsOptions_SetUserCredentialsFromFiles(o, c->nats_creds, NULL);
        if (s == NATS_OK && c->nats_nkey_pub)
                s = natsOptions_SetNKeyFromSeed(o, c->nats_nkey_pub, c->nats_nkey_seed);
        if (s == NATS_OK && c->nats_tls)
                s = natsOptions_SetSecure(o, true);
        if (s == NATS_OK && c->nats_tls_ca)
                s = natsOptions_LoadCATrustedCertificates(o, c->nats_tls_ca);
        if (s == NATS_OK && c->nats_tls_cert)
                s = natsOptions_LoadCertificatesChain(o, c->nats_tls_cert, c->nats_tls_key);
        if (s == NATS_OK)
                s = natsConnection_Connect(&b->nc, o);
        natsOptions_Destroy(o);
        /* With retry on failed connect, NATS_NOT_YET_CONNECTED means "connecting in the
         * background": the bridge starts anyway and publishes into the reconnect buffer. */
        if (s == NATS_NOT_YET_CONNECTED)
                s = NATS_OK;
        if (s != NATS_OK) {
                fprintf(stderr, "vbus-bridge: NATS: %s (%s)\n", natsStatus_GetText(s),
                        nats_GetLastError(NULL));
                return -EIO;
        }
        return 0;
}

void nats_close(Bridge *b)
{
        if (!b->nc)
                return;
        /* Sends what is buffered, then stops the delivery threads (they may be waiting on a
         * closed queue: queue_close() runs first). */
        natsConnection_FlushTimeout(b->nc, 1000);
        natsConnection_Close(b->nc);
        natsConnection_Destroy(b->nc);
        b->nc = NULL;
}
