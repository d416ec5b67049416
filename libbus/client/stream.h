/* SPDX-License-Identifier: MIT */
/*
 * stream: streaming calls at both ends (stream.c). Servers reach the streams that carry the
 * requests of methods served as streams only through the VbusRequestStreamOps that
 * vbus_server_stream_method() registers (server.h). Not installed.
 */
#ifndef VBUS_LIBBUS_STREAM_H
#define VBUS_LIBBUS_STREAM_H

#include <stdbool.h>
#include <stdint.h>

#include <vbus/vbus.h>

#include "server.h"

/* The stream's id (for tests that speak the protocol by hand on a stream). */
uint32_t vbus__stream_get_id(const vbus_stream *st);

#endif /* VBUS_LIBBUS_STREAM_H */
