/* SPDX-License-Identifier: MIT */
/*
 * Fuzz target for the policy parser (vchand/policy.c) and its evaluator.
 *
 * Input: the text of one policy file. If it parses, every rule is evaluated against a few
 * subjects and names derived from the input itself (its first line, as a topic, a pattern, a
 * service and a method), so the pattern walkers (match, covers, intersects) and @self run on
 * what the parser accepted, and the rules kept for a '>' subscription must decide each name as the
 * whole policy does. If it does not parse, the error must be "t.policy:LINE:COLUMN: ..."
 * and NUL-terminated within its buffer. Any crash, over-read (ASan) or undefined behaviour
 * (UBSan) is a finding.
 */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "policy.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static const uint8_t key[32] = {1, 2, 3};

static void evaluate(const Policy *p, const char *name)
{
        const PolicySubject subjects[] = {
                {.domid = 3, .name = "sensor", .tags = "lab app"},
                {.domid = 0, .name = "Domain-0", .tags = ""},
                {.domid = 9, .name = name, .tags = name},
                {.local = true, .uid = 0, .gid = 0},
                {.local = true, .uid = 1000, .gid = 100, .has_key = true, .key = key},
        };
        const PolicyRule *r, *rules[64];

        for (size_t i = 0; i < sizeof(subjects) / sizeof(subjects[0]); i++) {
                for (int a = 0; a < POLICY_N_ACTIONS; a++)
                        (void)policy_check(p, &subjects[i], (PolicyAction)a, name, &r);
                (void)policy_check_pattern(p, &subjects[i], name, &r);
                (void)policy_has_bridge_right(p, &subjects[i]);
                /* A '>' subscription's rules decide any name as the whole policy does. */
                int n = policy_relevant_rules(p, &subjects[i], ">", rules, 64);

                if (n >= 0 && policy_check_rules(rules, (size_t)n, &subjects[i], name) !=
                                      policy_check(p, &subjects[i], POLICY_SUBSCRIBE, name, &r))
                        abort();
                (void)policy_relevant_rules(p, &subjects[i], name, rules, 64);
        }
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
        Policy *p = policy_new();
        char err[256], name[256];
        size_t n = 0;

        if (!p)
                return 0;
        err[sizeof(err) - 1] = 'x';
        if (policy_parse(p, "t.policy", (const char *)data, size, err, sizeof(err) - 1) == 0) {
                /* The first line, up to 255 printable bytes, as the name to check. */
                while (n < size && n < sizeof(name) - 1 && data[n] > 0x20 && data[n] < 0x7f)
                        n++;
                memcpy(name, data, n);
                name[n] = '\0';
                evaluate(p, name);
                evaluate(p, ">");
                evaluate(p, "a.*.c/M");
        } else if (strncmp(err, "t.policy:", 9) != 0 || err[sizeof(err) - 1] != 'x' ||
                   !memchr(err, '\0', sizeof(err) - 1)) {
                abort();
        }
        policy_free(p);
        return 0;
}
