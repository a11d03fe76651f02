/* eng_file.h - atomic file replacement (temp file + fsync + rename) and folder helpers (part of
 * the shared runtime, see eng_util.h). */
#ifndef ENG_FILE_H
#define ENG_FILE_H

#include <stdio.h>

/* Atomically replace `path` by a file written through `write_cb` to a temp name in the
 * same directory: write, fflush, fsync, rename, fsync(dir).  On any failure the temp
 * file is removed and `path` is untouched.  Returns 0 or a negative status. */
int eng_atomic_write(const char *path, int (*write_cb)(FILE *f, void *ctx), void *ctx);
/* Make `tmp` durable and move it over `path` (fsync file, rename, fsync directory).
 * For writers that need the path (e.g. HDF5). Removes `tmp` on failure. */
int eng_atomic_commit(const char *tmp, const char *path);


/* mkdir -p: every missing folder of path.  Returns 0, ENG_EINVAL (path too long), ENG_EIO. */
int eng_mkdir_p(const char *path);

/* rm -rf of path (files and folders, links not followed); best effort, no error. */
void eng_rm_rf(const char *path);

#endif
