/* SPDX-License-Identifier: MIT */
/*
 * Replays a fuzz corpus through a libFuzzer harness without libFuzzer, so that every corpus and
 * regression input runs as an ordinary test in every build (gcc too).
 * Usage: <harness>-replay DIR|FILE...   Exits non-zero if no input was found.
 */
#include <dirent.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static int replay_file(const char *path)
{
        FILE *f = fopen(path, "rb");
        uint8_t *buf;
        long n;

        if (!f) {
                perror(path);
                return -1;
        }
        if (fseek(f, 0, SEEK_END) != 0 || (n = ftell(f)) < 0 || fseek(f, 0, SEEK_SET) != 0) {
                (void)fclose(f); /* read only: nothing to lose */
                return -1;
        }
        buf = malloc(n > 0 ? (size_t)n : 1);
        if (!buf || fread(buf, 1, (size_t)n, f) != (size_t)n) {
                free(buf);
                (void)fclose(f); /* read only: nothing to lose */
                return -1;
        }
        (void)fclose(f); /* read only: nothing to lose */
        LLVMFuzzerTestOneInput(buf, (size_t)n);
        free(buf);
        return 0;
}

int main(int argc, char **argv)
{
        int n_inputs = 0;

        for (int i = 1; i < argc; i++) {
                struct stat st;
                DIR *dir;
                struct dirent *e;

                if (stat(argv[i], &st) < 0) {
                        perror(argv[i]);
                        return 1;
                }
                if (!S_ISDIR(st.st_mode)) {
                        if (replay_file(argv[i]) < 0)
                                return 1;
                        n_inputs++;
                        continue;
                }
                dir = opendir(argv[i]);
                if (!dir) {
                        perror(argv[i]);
                        return 1;
                }
                while ((e = readdir(dir))) {
                        char path[4096];

                        if (e->d_name[0] == '.')
                                continue;
                        if ((size_t)snprintf(path, sizeof(path), "%s/%s", argv[i], e->d_name) >=
                            sizeof(path)) {
                                fprintf(stderr, "%s/%s: path too long\n", argv[i], e->d_name);
                                closedir(dir);
                                return 1;
                        }
                        if (replay_file(path) < 0) {
                                closedir(dir);
                                return 1;
                        }
                        n_inputs++;
                }
                closedir(dir);
        }
        printf("replayed %d inputs\n", n_inputs);
        if (n_inputs == 0) {
                fprintf(stderr, "no corpus inputs found: an empty corpus tests nothing\n");
                return 1;
        }
        return 0;
}
