/* h5get.h: reading an open HDF5 file without its schema: what schema.c's validation
 * needs, and the getters every reader uses once a file has validated (h5io.h includes
 * this header). Depends on: tool. */
#ifndef AMLFS_H5GET_H
#define AMLFS_H5GET_H

#include <hdf5.h>
#include <stddef.h>
#include <stdint.h>

/* Attributes of the object at obj ("/" for the root); a missing or mistyped one is
 * exit 2 naming the file. */
int64_t amlfs_attr_i64(hid_t loc, const char *obj, const char *name);
double amlfs_attr_f64(hid_t loc, const char *obj, const char *name);
/* Copies the string into buf (size n, truncated, always terminated). */
void amlfs_attr_str(hid_t loc, const char *obj, const char *name, char *buf, size_t n);
/* A string attribute that names state: its index in names (the enum's names table,
 * NULL-terminated); any other value is exit 2 naming the file and the attribute. */
int amlfs_attr_enum(hid_t loc, const char *obj, const char *name, const char *const *names);
int amlfs_attr_exists(hid_t loc, const char *obj, const char *name);

/* The dataset's dims (rank at most 8); returns the rank. */
int amlfs_h5_dims(hid_t loc, const char *path, hsize_t *dims);
/* Number of elements of the dataset. */
size_t amlfs_h5_count(hid_t loc, const char *path);
/* Reads a whole dataset converted to mem_type into buf (caller sized). */
void amlfs_h5_read(hid_t loc, const char *path, hid_t mem_type, void *buf);
int amlfs_h5_exists(hid_t loc, const char *path);

/* The file name an id belongs to, for messages. */
const char *amlfs_h5_name(hid_t loc);

#endif
