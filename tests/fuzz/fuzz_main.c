/* fuzz_main.c - a stand-in for libFuzzer's driver, so that the fuzz targets
 * run over their seed corpus as an ordinary test with any compiler: calls
 * LLVMFuzzerTestOneInput once per file named on the command line and per
 * regular file in a directory named there (not recursively, in name
 * order).  Exit status 0, or 1 if an input cannot be read or none was
 * found (a violated property aborts in the target).
 */
#include <dirent.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

/* Run the target on the file at path; -1 if it cannot be read. */
static int run_file(const char *path)
{
    FILE *f = fopen(path, "rb");
    if (!f) {
        perror(path);
        return -1;
    }
    size_t len = 0, cap = 4096;
    uint8_t *p = malloc(cap);
    size_t n;
    while (p && (n = fread(p + len, 1, cap - len, f)) > 0) {
        len += n;
        if (len == cap) {
            uint8_t *q = realloc(p, cap *= 2);
            if (!q)
                free(p);
            p = q;
        }
    }
    int bad = ferror(f) || !p;
    fclose(f);
    if (bad) {
        fprintf(stderr, "%s: cannot read\n", path);
        free(p);
        return -1;
    }
    LLVMFuzzerTestOneInput(p, len);
    free(p);
    return 0;
}

/* scandir order: by name. */
static int by_name(const struct dirent **a, const struct dirent **b)
{
    return strcmp((*a)->d_name, (*b)->d_name);
}

/* Run the target on path, or on the regular files in it if it is a
 * directory; returns the number of inputs run, -1 on an error. */
static long run_path(const char *path)
{
    struct stat st;
    if (stat(path, &st) < 0) {
        perror(path);
        return -1;
    }
    if (!S_ISDIR(st.st_mode))
        return run_file(path) < 0 ? -1 : 1;
    struct dirent **names;
    int n = scandir(path, &names, NULL, by_name);
    if (n < 0) {
        perror(path);
        return -1;
    }
    long count = 0;
    for (int i = 0; i < n; i++) {
        char full[4096];
        snprintf(full, sizeof full, "%s/%s", path, names[i]->d_name);
        if (names[i]->d_name[0] != '.' && stat(full, &st) == 0 && S_ISREG(st.st_mode)) {
            if (run_file(full) < 0)
                count = -1;
            else if (count >= 0)
                count++;
        }
        free(names[i]);
    }
    free(names);
    return count;
}

int main(int argc, char **argv)
{
    long total = 0;
    for (int i = 1; i < argc; i++) {
        long n = run_path(argv[i]);
        if (n < 0)
            return 1;
        total += n;
    }
    printf("%ld inputs checked\n", total);
    return total > 0 ? 0 : 1;
}
