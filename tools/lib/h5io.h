/* h5io.h: reading and writing amlfs HDF5 files.
 *
 * Writing: amlfs_h5_create() makes a file (object-time tracking off, so the same
 * content gives the same bytes) with the root attributes schema, schema_version and
 * amlfs_version; amlfs_h5_finish() closes it and commits it atomically.
 * Reading: amlfs_h5_open() checks the file exists, is HDF5, is of the expected kind and
 * validates against that kind's schema, else exit 2 naming the file and the problem;
 * the getters of h5get.h (included here) then read what the schema guarantees.
 * Depends on: h5get, schema, atomic_out, tool.
 */
#ifndef AMLFS_H5IO_H
#define AMLFS_H5IO_H

#include "h5get.h"

#include <hdf5.h>
#include <stddef.h>
#include <stdint.h>

typedef struct {
    hid_t file;
    const char *tmp;    /* the temporary path written */
    const char *target; /* the path it becomes */
} amlfs_h5_out;

amlfs_h5_out amlfs_h5_create(const char *target, const char *kind);
void amlfs_h5_finish(amlfs_h5_out *out);

/* Opens path read-only and validates it against kind (any kind when kind is NULL).
 * Exit 2 on a missing, unreadable, non-HDF5, wrong-kind or invalid file. */
hid_t amlfs_h5_open(const char *path, const char *kind);
/* Like amlfs_h5_open, but returns a negative id and fills why (size n) instead of
 * exiting, for tools that tolerate bad inputs (amlfs-reward). */
hid_t amlfs_h5_try_open(const char *path, const char *kind, char *why, size_t n);

/* Reads every value of the file, every dataset and every attribute of every object, so
 * that HDF5 verifies their checksums (the Fletcher32 of the datasets' chunks, the
 * metadata's of the 1.10 format: files the tools write carry both). 0, or -1 with the
 * first damage found in why. */
int amlfs_h5_verify(hid_t file, char *why, size_t n);

/* A group (and its parents) with object-time tracking off. */
hid_t amlfs_h5_group(hid_t loc, const char *path);

/* Datasets: rank 0..4, dims, an HDF5 native memory type and the file type it is stored
 * as (H5T_IEEE_F64LE, H5T_IEEE_F32LE, H5T_STD_I32LE, H5T_STD_U8LE, ...). */
void amlfs_h5_write(hid_t loc, const char *path, hid_t file_type, hid_t mem_type, int rank,
                    const hsize_t *dims, const void *data);
void amlfs_h5_write_f64(hid_t loc, const char *path, int rank, const hsize_t *dims,
                        const double *data);

/* A dataset written in pieces along its first dimension (streamed, never whole in
 * memory): created empty with an unlimited first dimension and the chunking and
 * Fletcher32 of amlfs_h5_write (row_dims: the rank-1 trailing dimensions); each
 * append extends it by rows and writes them. */
typedef struct {
    hid_t ds, mem_type;
    int rank;
    hsize_t dims[8];
    char path[256];
} amlfs_h5_stream;
amlfs_h5_stream amlfs_h5_stream_create(hid_t loc, const char *path, hid_t file_type,
                                       hid_t mem_type, int rank, const hsize_t *row_dims);
void amlfs_h5_stream_append(amlfs_h5_stream *s, hsize_t rows, const void *data);
void amlfs_h5_stream_close(amlfs_h5_stream *s);

/* Attributes on the object at path ("/" for the root). */
void amlfs_attr_set_str(hid_t loc, const char *obj, const char *name, const char *value);
void amlfs_attr_set_i64(hid_t loc, const char *obj, const char *name, int64_t value);
void amlfs_attr_set_f64(hid_t loc, const char *obj, const char *name, double value);
void amlfs_attr_set_f64v(hid_t loc, const char *obj, const char *name, const double *v,
                         size_t n);

#endif
