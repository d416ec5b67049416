/* SPDX-License-Identifier: MIT */
/*
 * Links the installed libvbus.so and calls every exported symbol (libbus/libbus.sym), checking
 * each documented result. tests/api/check-exports.sh checks that the export list and the
 * library agree, so a symbol cannot be exported without being called here.
 */
#include <errno.h>
#include <stdio.h>
#include <string.h>

#include <vbus/vbus.h>

static int n_failed;

#define CHECK(cond)                                                                                \
        do {                                                                                       \
                if (!(cond)) {                                                                     \
                        fprintf(stderr, "test-api: %s:%d: CHECK(%s) failed\n", __FILE__, __LINE__, \
                                #cond);                                                            \
                        n_failed++;                                                                \
                }                                                                                  \
        } while (0)

int main(void)
{
        vbus_status s = VBUS_STATUS_UNSPECIFIED;

        CHECK(vbus_version() != NULL && strcmp(vbus_version(), "0.0.0") > 0);
        CHECK(strcmp(vbus_status_name(VBUS_STATUS_OK), "ok") == 0);
        CHECK(strcmp(vbus_status_name(VBUS_STATUS_DEADLINE_EXCEEDED), "deadline-exceeded") == 0);
        CHECK(strcmp(vbus_status_name(-1), "unknown") == 0);
        CHECK(strcmp(vbus_status_name(VBUS_STATUS_N), "unknown") == 0);
        CHECK(vbus_status_from_name("unavailable", &s) == 0 && s == VBUS_STATUS_UNAVAILABLE);
        CHECK(vbus_status_from_name("no-such-status", &s) == -ENOENT);
        CHECK(vbus_status_from_name(NULL, &s) == -EINVAL);
        CHECK(vbus_status_from_name("ok", NULL) == -EINVAL);
        for (int i = 0; i < VBUS_STATUS_N; i++) {
                vbus_status back;

                CHECK(vbus_status_from_name(vbus_status_name(i), &back) == 0 && (int)back == i);
        }
        printf("test-api: libvbus %s: %s\n", vbus_version(),
               n_failed ? "FAILED" : "all exported symbols OK");
        return n_failed ? 1 : 0;
}
