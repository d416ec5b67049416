/* SPDX-License-Identifier: MIT */
/*
 * keygen: vbusctl's channel auth: `vbusctl keygen PATH`, and the --key/--broker-key options of
 * every command (docs/vbusctl.1.md).
 */
#ifndef VBUSCTL_KEYGEN_H
#define VBUSCTL_KEYGEN_H

#include <stdbool.h>

/* The usage text, for vbusctl --help (a literal, to concatenate). */
#define KEYGEN_USAGE                                                                               \
        "  keygen PATH               write a new key pair for channel auth: PATH (secret,\n"       \
        "                            mode 0600) and PATH.pub (public, 0644); never\n"              \
        "                            overwrites; prints the public key\n"

/* The options every command takes (a literal, to concatenate). */
#define KEYGEN_OPTIONS_USAGE                                                                       \
        "  --key FILE       prove the secret key FILE to the broker (channel auth; the\n"          \
        "                   broker names the caller by it); default $VBUS_KEY_FILE\n"              \
        "  --broker-key KEY refuse a broker that does not prove the public key KEY (its\n"         \
        "                   44-character text); default $VBUS_BROKER_KEY\n"

/**
 * keygen_take_options() - takes --key and --broker-key out of @argv (and @argc) wherever they
 * are before a "--", setting VBUS_KEY_FILE and VBUS_BROKER_KEY for libvbus.
 * Return: 0, or the exit status of a usage error (2) or a failure (1), with a message printed.
 */
int keygen_take_options(int *argc, char **argv);

/**
 * keygen_main() - run `vbusctl keygen` if @argv names it.
 * Return: -1 if the command is another one, else the exit status.
 */
int keygen_main(int argc, char **argv);

/* Explains vbus_conn_open()'s @error when it comes from the key file or the lack of auth in this
 * build. Return: true if it printed something. */
bool keygen_explain_open(int error);

/* Prints what a connection's channel auth @error (-EACCES, -EPERM) means; nothing otherwise. */
void keygen_explain(int error);

#endif /* VBUSCTL_KEYGEN_H */
