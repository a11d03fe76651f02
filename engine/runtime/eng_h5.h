/* eng_h5.h - the HDF5 helpers every layer's files share (part of the shared runtime, see
 * eng_util.h): silencing HDF5's own error printing around a call (errors are reported through
 * eng_err_set instead) and writing an HDF5 file atomically. */
#ifndef ENG_H5_H
#define ENG_H5_H

#include <hdf5.h>

/* HDF5's automatic error printing, saved by eng_h5_quiet_begin and restored by _end. */
typedef struct eng_h5_quiet {
    H5E_auto2_t fn;
    void *data;
} eng_h5_quiet;

void eng_h5_quiet_begin(eng_h5_quiet *q);
void eng_h5_quiet_end(const eng_h5_quiet *q);

/* Create path.tmp.<pid>, let write_cb fill the open file, close it and move it over path
 * (eng_atomic_commit): path is untouched on any failure.  Returns 0, write_cb's status,
 * ENG_EIO (create, close, commit) or ENG_ENOMEM. */
int eng_h5_atomic_write(const char *path, int (*write_cb)(hid_t f, void *ctx), void *ctx);

#endif
