/* SPDX-License-Identifier: MIT */
/*
 * keygen: vbusctl's channel auth (docs/protocol.md 3.1): `vbusctl keygen PATH`, and the options
 * --key FILE and --broker-key KEY that every command takes. The options are handed to libvbus
 * through its environment variables (VBUS_KEY_FILE, VBUS_BROKER_KEY), so that every connection
 * vbusctl opens, expose and forward included, proves the key and pins the broker.
 */
#include "keygen.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <vbus/vbus.h>

/* The value of option @name at argv[*i] ("--name VALUE" or "--name=VALUE"), NULL if argv[*i]
 * is not that option, or "" when its value is missing; *i moves past what was taken. */
static const char *take_value(int argc, char **argv, int *i, const char *name)
{
        size_t n = strlen(name);
        const char *a = argv[*i];

        if (!a || strncmp(a, name, n) != 0)
                return NULL;
        if (a[n] == '=')
                return a + n + 1;
        if (a[n] != '\0')
                return NULL;
        if (*i + 1 >= argc)
                return "";
        (*i)++;
        return argv[*i];
}

int keygen_take_options(int *argc, char **argv)
{
        int out = 1;

        for (int i = 1; i < *argc; i++) {
                const char *key = NULL, *broker = NULL;

                if (strcmp(argv[i], "--") == 0) {
                        /* The rest is not vbusctl's (a command line for --exec, say). */
                        while (i < *argc)
                                argv[out++] = argv[i++];
                        break;
                }
                key = take_value(*argc, argv, &i, "--key");
                if (!key)
                        broker = take_value(*argc, argv, &i, "--broker-key");
                if (!key && !broker) {
                        argv[out++] = argv[i];
                        continue;
                }
                if ((key && !key[0]) || (broker && !broker[0])) {
                        fprintf(stderr, "vbusctl: %s wants a value (see --help)\n",
                                key ? "--key" : "--broker-key");
                        return 2;
                }
                if (setenv(key ? "VBUS_KEY_FILE" : "VBUS_BROKER_KEY", key ? key : broker, 1) < 0) {
                        fprintf(stderr, "vbusctl: %s\n", strerror(errno));
                        return 1;
                }
        }
        argv[out] = NULL;
        *argc = out;
        return 0;
}

int keygen_main(int argc, char **argv)
{
        char pub[VBUS_KEY_TEXT_SIZE];
        int r;

        if (argc < 2 || strcmp(argv[1], "keygen") != 0)
                return -1;
        if (argc == 3 && (strcmp(argv[2], "-h") == 0 || strcmp(argv[2], "--help") == 0)) {
                fputs("Usage: vbusctl keygen PATH\n" KEYGEN_USAGE, stdout);
                return 0;
        }
        if (argc != 3 || argv[2][0] == '-') {
                fprintf(stderr, "vbusctl keygen: want exactly one PATH (see --help)\n");
                return 2;
        }
        r = vbus_key_generate(argv[2], pub, sizeof(pub));
        switch (r) {
        case 0:
                printf("%s\n", pub);
                return 0;
        case -EEXIST:
                fprintf(stderr,
                        "vbusctl keygen: %s or %s.pub exists: refusing to overwrite a key "
                        "(remove it first, or choose another PATH)\n",
                        argv[2], argv[2]);
                return 1;
        case -ENOTSUP:
                fprintf(stderr, "vbusctl keygen: this libvbus was built without channel auth "
                                "(libsodium)\n");
                return 1;
        default:
                fprintf(stderr, "vbusctl keygen: %s: %s\n", argv[2], strerror(-r));
                return 1;
        }
}

void keygen_explain(int error)
{
        if (error == -EACCES)
                fprintf(stderr,
                        "vbusctl: the broker did not prove the key given with --broker-key or "
                        "$VBUS_BROKER_KEY (an impostor, another broker, or a broker without "
                        "channel auth)\n");
        else if (error == -EPERM)
                fprintf(stderr, "vbusctl: the broker refused this connection's key, or wants one "
                                "(--key, $VBUS_KEY_FILE): see the broker's log\n");
}

bool keygen_explain_open(int error)
{
        const char *key = getenv("VBUS_KEY_FILE");

        if (!key || !key[0] ||
            (error != -EPERM && error != -EBADMSG && error != -ENOENT && error != -EACCES &&
             error != -ENOTSUP))
                return false;
        if (error == -EPERM)
                fprintf(stderr,
                        "vbusctl: key file %s: not a regular file, or group or others may read "
                        "it: refused, the secret may have leaked (chmod 600 it, or make a new key "
                        "with vbusctl keygen)\n",
                        key);
        else if (error == -EBADMSG)
                fprintf(stderr,
                        "vbusctl: %s is not a secret key file (vbusctl keygen writes one)\n", key);
        else if (error == -ENOTSUP)
                fprintf(stderr, "vbusctl: this libvbus was built without channel auth (libsodium): "
                                "--key and --broker-key cannot be used\n");
        else
                fprintf(stderr, "vbusctl: key file %s: %s\n", key, strerror(-error));
        return true;
}
