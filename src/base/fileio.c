#include "base/fileio.h"
#include "base/error.h"
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

int fileio_read_all(const char *path, char **data, size_t *len) {
    *data = NULL;
    if (len) *len = 0;
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0) return err_set(SLLM_ERR_IO, "%s: cannot open: %s", path, strerror(errno));
    struct stat st;
    if (fstat(fd, &st) != 0 || !S_ISREG(st.st_mode)) {
        close(fd);
        return err_set(SLLM_ERR_IO, "%s: not a regular file", path);
    }
    size_t cap = (size_t)st.st_size + 1, n = 0;
    char *buf = malloc(cap);
    if (!buf) { close(fd); return err_set(SLLM_ERR_NOMEM, "%s: out of memory (%zu bytes)", path, cap); }
    for (;;) {
        if (n + 1 >= cap) {   // file grew while reading: keep going
            char *nb = realloc(buf, cap * 2);
            if (!nb) { free(buf); close(fd); return err_set(SLLM_ERR_NOMEM, "%s: out of memory", path); }
            buf = nb;
            cap *= 2;
        }
        ssize_t r = read(fd, buf + n, cap - 1 - n);
        if (r < 0) {
            if (errno == EINTR) continue;
            int e = errno;
            free(buf);
            close(fd);
            return err_set(SLLM_ERR_IO, "%s: read failed: %s", path, strerror(e));
        }
        if (r == 0) break;
        n += (size_t)r;
    }
    close(fd);
    buf[n] = 0;
    *data = buf;
    if (len) *len = n;
    return SLLM_OK;
}

static int write_all(int fd, const void *p, size_t n) {
    const char *c = p;
    while (n) {
        ssize_t w = write(fd, c, n);
        if (w < 0) {
            if (errno == EINTR) continue;
            return -1;
        }
        c += w;
        n -= (size_t)w;
    }
    return 0;
}

int fileio_fsync_path(const char *path) {
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0) return err_set(SLLM_ERR_IO, "%s: cannot open for fsync: %s", path, strerror(errno));
    int rc = fsync(fd);
    int e = errno;
    close(fd);
    // some file systems refuse fsync on directories (EINVAL): nothing more can be done there
    if (rc != 0 && e != EINVAL) return err_set(SLLM_ERR_IO, "%s: fsync failed: %s", path, strerror(e));
    return SLLM_OK;
}

int fileio_fsync_parent(const char *path) {
    char dir[PATH_MAX];
    size_t n = strlen(path);
    if (n >= sizeof dir) return err_set(SLLM_ERR_ARG, "%s: path too long", path);
    memcpy(dir, path, n + 1);
    while (n > 1 && dir[n - 1] == '/') dir[--n] = 0;   // "a/b/" names b
    char *slash = strrchr(dir, '/');
    if (!slash) strcpy(dir, ".");
    else if (slash == dir) dir[1] = 0;
    else *slash = 0;
    return fileio_fsync_path(dir);
}

int fileio_atomic_open(fileio_atomic *a, const char *path) {
    size_t plen = strlen(path);
    *a = (fileio_atomic){.fd = -1, .path = path};
    if (!(a->tmp = malloc(plen + 16))) return err_set(SLLM_ERR_NOMEM, "%s: out of memory", path);
    snprintf(a->tmp, plen + 16, "%s.tmp.XXXXXX", path);
    if ((a->fd = mkstemp(a->tmp)) < 0) {
        int e = errno;
        free(a->tmp);
        a->tmp = NULL;
        return err_set(SLLM_ERR_IO, "%s: cannot create temporary file: %s", path, strerror(e));
    }
    return SLLM_OK;
}

void fileio_atomic_write(fileio_atomic *a, const void *data, size_t n) {
    static const uint8_t zeros[4096];
    if (a->err || a->fd < 0) return;
    if (data) { if (write_all(a->fd, data, n)) a->err = errno ? errno : EIO; return; }
    for (size_t k; n && !a->err; n -= k) {
        k = n < sizeof zeros ? n : sizeof zeros;
        if (write_all(a->fd, zeros, k)) a->err = errno ? errno : EIO;
    }
}

void fileio_atomic_abort(fileio_atomic *a) {
    if (a->fd >= 0) close(a->fd);
    if (a->tmp) { unlink(a->tmp); free(a->tmp); }
    a->fd = -1;
    a->tmp = NULL;
}

int fileio_atomic_commit(fileio_atomic *a) {
    if (a->fd < 0 || !a->tmp) return err_set(SLLM_ERR_ARG, "%s: atomic write was not opened", a->path);
    int e = a->err;
    if (!e && fchmod(a->fd, 0644) != 0) e = errno;
    if (!e && fsync(a->fd) != 0) e = errno;
    if (close(a->fd) != 0 && !e) e = errno;
    a->fd = -1;
    if (!e && rename(a->tmp, a->path) != 0) e = errno;
    if (e) {
        fileio_atomic_abort(a);
        return err_set(SLLM_ERR_IO, "%s: write failed: %s", a->path, strerror(e));
    }
    free(a->tmp);
    a->tmp = NULL;
    return fileio_fsync_parent(a->path);
}

int fileio_write_atomic(const char *path, const void *data, size_t len) {
    fileio_atomic a;
    int rc = fileio_atomic_open(&a, path);
    if (rc != SLLM_OK) return rc;
    fileio_atomic_write(&a, data, len);
    return fileio_atomic_commit(&a);
}

int fileio_mkdirs(const char *path) {
    char buf[PATH_MAX];
    size_t n = strlen(path);
    if (n == 0 || n >= sizeof buf) return err_set(SLLM_ERR_ARG, "'%s': bad directory path", path);
    memcpy(buf, path, n + 1);
    for (size_t i = 1; i <= n; i++) {
        if (buf[i] != '/' && buf[i] != 0) continue;
        char c = buf[i];
        buf[i] = 0;
        if (mkdir(buf, 0755) != 0 && errno != EEXIST)
            return err_set(SLLM_ERR_IO, "%s: cannot create directory: %s", buf, strerror(errno));
        buf[i] = c;
    }
    struct stat st;
    if (stat(path, &st) != 0 || !S_ISDIR(st.st_mode)) return err_set(SLLM_ERR_IO, "%s: not a directory", path);
    return SLLM_OK;
}

int fileio_remove_tree(const char *path) {
    struct stat st;
    if (lstat(path, &st) != 0) {
        if (errno == ENOENT) return SLLM_OK;
        return err_set(SLLM_ERR_IO, "%s: cannot stat: %s", path, strerror(errno));
    }
    if (S_ISDIR(st.st_mode)) {
        DIR *d = opendir(path);
        if (!d) return err_set(SLLM_ERR_IO, "%s: cannot open directory: %s", path, strerror(errno));
        struct dirent *de;
        int rc = SLLM_OK;
        while (rc == SLLM_OK && (de = readdir(d))) {
            if (!strcmp(de->d_name, ".") || !strcmp(de->d_name, "..")) continue;
            char sub[PATH_MAX];
            if (snprintf(sub, sizeof sub, "%s/%s", path, de->d_name) >= (int)sizeof sub) {
                rc = err_set(SLLM_ERR_IO, "%s/%s: path too long", path, de->d_name);
                break;
            }
            rc = fileio_remove_tree(sub);
        }
        closedir(d);
        if (rc) return rc;
        if (rmdir(path) != 0) return err_set(SLLM_ERR_IO, "%s: cannot remove: %s", path, strerror(errno));
        return SLLM_OK;
    }
    if (unlink(path) != 0) return err_set(SLLM_ERR_IO, "%s: cannot remove: %s", path, strerror(errno));
    return SLLM_OK;
}
