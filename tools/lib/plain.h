/* plain.h: inputs written by hand (h5py, NumPy, PyTorch, h5import) without the root
 * attribute 'schema' (README, "Your own framework"). Such a file is read by its
 * datasets' names, shapes and types alone; NumPy's and PyTorch's usual types are
 * converted on read, and objects the reader does not use are passed over. A file that
 * carries 'schema' is an amlfs file: it is validated against its schema as before
 * (h5io.h), the contract for the project's own files. Every problem with a plain file
 * is exit 2 with one line naming the file, the dataset or attribute and what was
 * expected. */
#ifndef AMLFS_PLAIN_H
#define AMLFS_PLAIN_H

#include <hdf5.h>
#include <stddef.h>
#include <stdint.h>

/* Opens path read-only. A file with the root attribute 'schema' goes through
 * amlfs_h5_open(path, kind) (validated; exit 2 on any violation), *plain = 0; an HDF5
 * file without it is opened as it is, *plain = 1. A missing, unreadable or non-HDF5
 * file is exit 2 as in amlfs_h5_open. */
hid_t amlfs_h5_open_or_plain(const char *path, const char *kind, int *plain);

/* The element types a plain dataset may hold:
 * PLAIN_FLOAT    float32 or float64 (read as double or float by the caller);
 * PLAIN_INTEGER  a signed or unsigned integer of 8 to 64 bits (read as int64; the
 *                caller checks the range);
 * PLAIN_UINT8    uint8 only (pixels). */
typedef enum { PLAIN_FLOAT, PLAIN_INTEGER, PLAIN_UINT8 } amlfs_plain_type;

/* The dims of dataset name of file f (path, for messages), which must exist, be a
 * dataset of the type given and of rank min_rank to max_rank; shape is the expected
 * shape in words for the message ("(N,C)"). Exit 2 otherwise. Returns the rank. */
int amlfs_plain_dims(hid_t f, const char *path, const char *name, amlfs_plain_type type,
                     int min_rank, int max_rank, const char *shape, hsize_t *dims);

/* "(4,1)" for dims {4, 1}, "()" for rank 0, into buf (size n); returns buf. */
const char *amlfs_plain_shape(int rank, const hsize_t *dims, char *buf, size_t n);

/* Optional attributes of object obj ("/" the root). Absent: *v = def, returns 0.
 * Present: returns 1 with its value; it must be scalar (or hold one value) and a number
 * (_f64: integer or float; _i64: integer) or a string (_str: one of choices, a
 * NULL-terminated list, or any when choices is NULL), else exit 2 naming it. */
int amlfs_plain_attr_f64(hid_t f, const char *path, const char *obj, const char *name,
                         double def, double *v);
int amlfs_plain_attr_i64(hid_t f, const char *path, const char *obj, const char *name,
                         int64_t def, int64_t *v);
int amlfs_plain_attr_str(hid_t f, const char *path, const char *obj, const char *name,
                         const char *const *choices, const char *def, char *buf, size_t n);
/* A string attribute naming state, as _str with choices the enum's names table: its
 * index, def when absent; *given (or NULL) says whether it was there. */
int amlfs_plain_attr_enum(hid_t f, const char *path, const char *obj, const char *name,
                          const char *const *choices, int def, int *given);
/* A numeric attribute of exactly n values into v; absent: returns 0, v untouched. */
int amlfs_plain_attr_f64v(hid_t f, const char *path, const char *obj, const char *name,
                          double *v, size_t n);

#endif
