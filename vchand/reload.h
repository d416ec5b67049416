/* SPDX-License-Identifier: MIT */
/*
 * reload: what the broker re-reads without a restart. reload_all() (vbus.v1.Broker/Reload, an
 * admin method) re-reads vchand.conf, then the keyring file and the policy directory;
 * reload_keys_and_policy() (SIGHUP) the last two only. The keyring: all of it or nothing, the
 * keys of links already open named again, under auth = required those no longer listed dropped.
 * The policy: access_reload(), all files or nothing, streams the new policy denies revoked.
 *
 * vchand.conf: the file read at start (bus->config_path) is parsed again over the defaults, and
 * the command line's settings (socket, --no-xen, -v) are kept. Values that shape links and
 * streams already open cannot change under them (socket, xen, max_frame, max_message,
 * max_streams, publish_window), and where the policy and keys come from (policy, auth*): a
 * changed one is kept as it was and named in the answer as needing a restart. The others (queues,
 * budgets, counts, timeouts) apply to what opens or connects from now on. A file that does not
 * parse changes nothing.
 */
#ifndef VCHAND_RELOAD_H
#define VCHAND_RELOAD_H

#include <stddef.h>

#include "bus.h"

/*
 * reload_all() - reload what can be reloaded.
 * @msg: at least @n_msg bytes; receives what changed, or why nothing did.
 * Return: 0 (reloaded, maybe with keys left for a restart, said in @msg); -EINVAL (vchand.conf
 * does not parse: nothing changed); -errno (it cannot be read, or the policy failed to load: the
 * configuration was applied, the previous policy stays in force; said in @msg).
 */
int reload_all(Bus *b, char *msg, size_t n_msg);

/*
 * reload_keys_and_policy() - SIGHUP: the keyring file (auth_keyring; links named again, those
 * whose key is gone dropped under auth = required) and the policy directory, not vchand.conf.
 * @msg: as for reload_all(), starting empty. Return: 0, or the first -errno (said in @msg).
 */
int reload_keys_and_policy(Bus *b, char *msg, size_t n_msg);

#endif /* VCHAND_RELOAD_H */
