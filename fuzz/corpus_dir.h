/*
 * The replay drivers' shared helper (fuzz/replay.c, fuzz/client_replay.c):
 * the entries of a corpus directory as "dir/name" paths, sorted, so that a
 * replay runs in one fixed order. Dot files are skipped. The caller frees
 * each path and the array (never NULL for a directory that opened, even
 * an empty one). NULL when the directory cannot be opened; allocation
 * failure aborts (a test driver, not the library).
 */
#ifndef AREDIS_FUZZ_CORPUS_DIR_H
#define AREDIS_FUZZ_CORPUS_DIR_H

#include <dirent.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static int corpus_cmp_names(const void *a, const void *b) {
    return strcmp(*(char *const *)a, *(char *const *)b);
}

static char **corpus_dir_list(const char *path, size_t *count) {
    *count = 0;
    DIR *d = opendir(path);
    if (!d) return NULL;
    char **names = NULL;
    size_t n = 0;
    for (struct dirent *e; (e = readdir(d));) {
        if (e->d_name[0] == '.') continue;
        char **nn = realloc(names, (n + 1) * sizeof *nn);
        if (!nn) abort();
        names = nn;
        size_t len = strlen(path) + strlen(e->d_name) + 2;
        if (!(names[n] = malloc(len))) abort();
        snprintf(names[n++], len, "%s/%s", path, e->d_name);
    }
    closedir(d);
    if (!names && !(names = malloc(sizeof *names))) abort();
    if (n) qsort(names, n, sizeof *names, corpus_cmp_names);
    *count = n;
    return names;
}

#endif
