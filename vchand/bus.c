/* SPDX-License-Identifier: MIT */
/*
 * bus: the clock every module reads (see bus.h for the shared state).
 */
#include "bus.h"

#include <time.h>

uint64_t bus_now_us(void)
{
        struct timespec ts;

        clock_gettime(CLOCK_MONOTONIC, &ts);
        return (uint64_t)ts.tv_sec * 1000000u + (uint64_t)ts.tv_nsec / 1000u;
}
