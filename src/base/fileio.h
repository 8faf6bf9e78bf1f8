// Whole-file reads and crash-safe writes. An atomic write goes to a temporary file in the same
// directory, is fsync'd, renamed over the target, and the directory is fsync'd, so after a crash the
// target holds either the old or the new contents, never a mix. Checkpoints are built on these.
#ifndef SLLM_BASE_FILEIO_H
#define SLLM_BASE_FILEIO_H
#include <stddef.h>

// Reads the whole file into a malloc'd buffer with a NUL appended (not counted in *len).
int fileio_read_all(const char *path, char **data, size_t *len);
// Atomically replaces `path` with `len` bytes of `data` (mode 0644).
int fileio_write_atomic(const char *path, const void *data, size_t len);

// The same, streamed: open, write pieces, commit (fsync, rename over `path`, fsync the directory).
// On any failure the temporary file is removed and `path` is untouched; abort() discards explicitly.
typedef struct { int fd; char *tmp; const char *path; int err; } fileio_atomic;
int fileio_atomic_open(fileio_atomic *a, const char *path);
// data NULL writes n zero bytes. Errors are remembered and reported by commit.
void fileio_atomic_write(fileio_atomic *a, const void *data, size_t n);
int fileio_atomic_commit(fileio_atomic *a);
void fileio_atomic_abort(fileio_atomic *a);
// fsync a file or a directory by path.
int fileio_fsync_path(const char *path);
// fsync the directory that contains `path` (makes a rename/create/unlink in it durable).
int fileio_fsync_parent(const char *path);
// mkdir -p (mode 0755). Existing directories are fine.
int fileio_mkdirs(const char *path);
// Recursively removes a file or a directory tree (no error when it does not exist).
int fileio_remove_tree(const char *path);
#endif
