/*
 * replay.c - run a fuzz target on the files named on the command line, once
 * each, without libFuzzer.
 *
 * Linked with a fuzz_*.c file instead of -fsanitize=fuzzer, it replays the
 * seed corpus (regression inputs included) with any compiler, under
 * valgrind, or with coverage instrumentation, where libFuzzer's runtime is
 * not available or not wanted.
 */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

/* Read a whole file into memory; NULL (with a message) on failure. */
static uint8_t *slurp(const char *path, size_t *size)
{
    FILE *f = fopen(path, "rb");
    if (f == NULL) {
        perror(path);
        return NULL;
    }
    size_t cap = 4096;
    size_t len = 0;
    uint8_t *buf = malloc(cap);
    while (buf != NULL) {
        len += fread(buf + len, 1, cap - len, f);
        if (len < cap) {
            break;
        }
        uint8_t *bigger = realloc(buf, cap * 2);
        if (bigger == NULL) {
            free(buf);
            buf = NULL;
            break;
        }
        buf = bigger;
        cap *= 2;
    }
    if (buf == NULL || ferror(f)) {
        fprintf(stderr, "%s: cannot read\n", path);
        free(buf);
        buf = NULL;
    }
    fclose(f);
    *size = len;
    return buf;
}

int main(int argc, char **argv)
{
    int failed = 0;
    for (int i = 1; i < argc; i++) {
        size_t size;
        uint8_t *data = slurp(argv[i], &size);
        if (data == NULL) {
            failed = 1;
            continue;
        }
        /* A failing check aborts, so reaching the next line is a pass. */
        LLVMFuzzerTestOneInput(data, size);
        free(data);
    }
    if (!failed) {
        printf("replayed %d input%s\n", argc - 1, argc == 2 ? "" : "s");
    }
    return failed;
}
