/* SPDX-License-Identifier: MIT */
/*
 * reflect: `vbusctl describe SERVICE` and `vbusctl call --json SERVICE/METHOD JSON`, from the
 * description a server registered with the broker (vbus.v1.Broker/Describe, docs/reflection.md).
 * The JSON codec is pbjson.h's.
 */
#ifndef VBUSCTL_REFLECT_H
#define VBUSCTL_REFLECT_H

#include <stddef.h>
#include <stdint.h>

#include <vbus/vbus.h>

/*
 * Prints the methods and types of @service (borrowed) on stdout, over @c (borrowed, ready).
 * Return: the exit status: 0; 1 (the broker's failure, or no description: said on stderr); 2
 * (@service is not a service name).
 */
int reflect_describe(vbus_conn *c, const char *service, uint64_t timeout_usec);

/*
 * Calls @method ("SERVICE/METHOD") with the request built from the JSON object @json (@n bytes),
 * and prints each reply message as one line of JSON; a server-streaming method prints every
 * message of the stream. @opts: borrowed: deadline and headers.
 * Return: the exit status: 0; 1 (the call failed, or no description); 2 (bad JSON, with where and
 * why on stderr; or @method is not SERVICE/METHOD, or not a method of the description).
 */
int reflect_call_json(vbus_conn *c, const char *method, const char *json, size_t n,
                      const vbus_call_options *opts);

#endif /* VBUSCTL_REFLECT_H */
