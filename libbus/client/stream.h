/* SPDX-License-Identifier: MIT */
/*
 * stream: streaming calls at both ends (stream.c), and what servers (server.c) use of them: the
 * stream that carries a request of a method served as a stream. Not installed.
 */
#ifndef VBUS_LIBBUS_STREAM_H
#define VBUS_LIBBUS_STREAM_H

#include <stdbool.h>
#include <stdint.h>

#include <vbus/vbus.h>

#include "server.h"

/**
 * vbus__stream_new_for_request() - makes the stream that will carry @req for a method served as
 * a stream (before the application has taken it with vbus_request_stream()): @req's stream is
 * bound to the new object, and @req leaves its server set's list.
 * Return: the stream, or NULL on ENOMEM (@req unchanged).
 */
vbus_stream *vbus__stream_new_for_request(vbus_request *req);

/* Frees a stream made by vbus__stream_new_for_request() that the application did not take,
 * leaving its request to be answered as a plain request (vbus__request_adopt()). */
void vbus__stream_detach_request(vbus_stream *st);

/* Whether the application took @st (vbus_request_stream()). */
bool vbus__stream_is_taken(const vbus_stream *st);

/* The stream's id (for tests that speak the protocol by hand on a stream). */
uint32_t vbus__stream_get_id(const vbus_stream *st);

#endif /* VBUS_LIBBUS_STREAM_H */
