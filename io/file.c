// Whole-file helpers: read a file into memory, and write one atomically
// (a temp file beside the target, fsync, rename, fsync of the directory), so
// a crash or a full disk never leaves a half-written checkpoint or output.
#include "file.h"

#include <dirent.h>

#include <errno.h>
#include <fcntl.h>
#include <libgen.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "../common/gn_common.h"

int io_read_file(const char *path, unsigned char **buf, size_t *len) {
    FILE *f = fopen(path, "rb");
    if (!f) return gn_err(GN_EIO, "%s: cannot open: %s", path, strerror(errno));
    struct stat st;
    if (fstat(fileno(f), &st) || !S_ISREG(st.st_mode)) {
        fclose(f);
        return gn_err(GN_EIO, "%s: not a regular file", path);
    }
    size_t n = (size_t)st.st_size;
    unsigned char *b = gn_malloc(n ? n : 1);
    if (!b) {
        fclose(f);
        return GN_ENOMEM;
    }
    if (fread(b, 1, n, f) != n) {
        int e = errno;
        fclose(f);
        free(b);
        return gn_err(GN_EIO, "%s: read error: %s", path, strerror(e));
    }
    fclose(f);
    *buf = b;
    *len = n;
    return GN_OK;
}

static int fsync_dir_of(const char *path) {
    char *tmp = gn_strdup(path);
    if (!tmp) return GN_ENOMEM;
    int fd = open(dirname(tmp), O_RDONLY | O_DIRECTORY);
    free(tmp);
    if (fd >= 0) {
        fsync(fd);
        close(fd);
    }
    return GN_OK;
}

// Temp file beside the target, so rename() is atomic (same file system).
FILE *io_open_temp(const char *path, char *tmp, size_t tlen) {
    snprintf(tmp, tlen, "%s.tmp.%ld", path, (long)getpid());
    FILE *f = fopen(tmp, "wb");
    if (!f) gn_err(GN_EIO, "%s: cannot create: %s", tmp, strerror(errno));
    return f;
}

int io_commit_temp(FILE *f, const char *tmp, const char *path) {
    int bad = fflush(f) != 0 || ferror(f);
    int e = errno;
    if (!bad && fsync(fileno(f))) {
        bad = 1;
        e = errno;
    }
    if (fclose(f)) {
        if (!bad) e = errno;
        bad = 1;
    }
    if (bad) {
        unlink(tmp);
        return gn_err(GN_EIO, "%s: write failed: %s", path, strerror(e));
    }
    if (rename(tmp, path)) {
        e = errno;
        unlink(tmp);
        return gn_err(GN_EIO, "%s: cannot rename temp file into place: %s", path, strerror(e));
    }
    return fsync_dir_of(path);
}

int io_write_atomic(const char *path, const void *buf, size_t len) {
    char tmp[4096];
    FILE *f = io_open_temp(path, tmp, sizeof tmp);
    if (!f) return GN_EIO;
    if (len && fwrite(buf, 1, len, f) != len) {
        int e = errno;
        fclose(f);
        unlink(tmp);
        return gn_err(GN_EIO, "%s: write failed: %s", path, strerror(e));
    }
    return io_commit_temp(f, tmp, path);
}

int io_mkdirs(const char *path, int *made) {
    char p[4096];
    if (made) *made = 0;
    if (snprintf(p, sizeof p, "%s", path) >= (int)sizeof p)
        return gn_err(GN_EINVAL, "%s: path too long", path);
    for (char *s = p + 1; *s; s++) {
        if (*s != '/') continue;
        *s = 0;
        if (!mkdir(p, 0755)) {
            if (made) ++*made;
        } else if (errno != EEXIST)
            return gn_err(GN_EIO, "%s: cannot create: %s", p, strerror(errno));
        *s = '/';
    }
    if (!mkdir(p, 0755)) {
        if (made) ++*made;
    } else if (errno != EEXIST)
        return gn_err(GN_EIO, "%s: cannot create: %s", p, strerror(errno));
    struct stat st;
    if (stat(p, &st) || !S_ISDIR(st.st_mode)) return gn_err(GN_EIO, "%s: exists and is not a directory", p);
    return GN_OK;
}

int io_remove_stale_temps(const char *dir) {
    DIR *d = opendir(dir);
    if (!d) return 0;
    int n = 0;
    struct dirent *e;
    char p[4400];
    while ((e = readdir(d))) {
        const char *t = strstr(e->d_name, ".tmp.");
        if (!t || !t[5] || strspn(t + 5, "0123456789") != strlen(t + 5)) continue;
        snprintf(p, sizeof p, "%s/%s", dir, e->d_name);
        n += !unlink(p);
    }
    closedir(d);
    return n;
}

void io_rmdirs(const char *path, int levels) {
    char p[4096];
    snprintf(p, sizeof p, "%s", path);
    for (int k = 0; k < levels; k++) {
        size_t L = strlen(p);
        while (L > 1 && p[L - 1] == '/') p[--L] = 0;
        if (rmdir(p)) return; // not empty: it holds something worth keeping
        char *s = strrchr(p, '/');
        if (!s || s == p) return;
        *s = 0;
    }
}

int io_abs_path(const char *path, char *out, size_t len) {
    char cwd[4096];
    if (path[0] == '/') return snprintf(out, len, "%s", path) >= (int)len;
    if (!getcwd(cwd, sizeof cwd)) return 1;
    return snprintf(out, len, "%s/%s", cwd, path[0] == '.' && path[1] == '/' ? path + 2 : path) >= (int)len;
}

void io_rel_path(const char *from, const char *to, char *out, size_t len) {
    size_t i = 0, common = 0;
    while (from[i] && to[i] && from[i] == to[i]) {
        if (from[i] == '/') common = i;
        i++;
    }
    if (!from[i] && (to[i] == '/' || !to[i])) common = i; // from is a prefix directory of to
    int up = 0;
    for (const char *p = from + common; *p; p++) up += *p == '/' && p[1];
    size_t o = 0;
    out[0] = 0;
    for (int k = 0; k < up && o + 3 < len; k++) o += (size_t)snprintf(out + o, len - o, "../");
    snprintf(out + o, len - o, "%s", to[common] == '/' ? to + common + 1 : to + common);
}
