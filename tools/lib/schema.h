/* schema.h: the file kinds of schemas/NAME.schema (compiled in) and validation of an open
 * HDF5 file against one. The format is described in schemas/README.md.
 * Depends on: h5get, tool. */
#ifndef AMLFS_SCHEMA_H
#define AMLFS_SCHEMA_H

#include <hdf5.h>
#include <stddef.h>

typedef enum { SCHEMA_GROUP, SCHEMA_DATASET, SCHEMA_ATTR } amlfs_schema_kind;
typedef enum {
    SCHEMA_T_NONE,
    SCHEMA_T_UINT8,
    SCHEMA_T_INT32,
    SCHEMA_T_INT64,
    SCHEMA_T_FLOAT32,
    SCHEMA_T_FLOAT64,
    SCHEMA_T_STRING
} amlfs_schema_type;

#define SCHEMA_MAX_DIMS 8
#define SCHEMA_MAX_ENTRIES 64

typedef struct {
    amlfs_schema_kind kind;
    char path[128];    /* object path; for attributes the object's */
    char attr[64];     /* attribute name, attributes only */
    int wildcard;      /* path ends in "*" */
    amlfs_schema_type type;
    char choices[256]; /* string{...}: comma-separated allowed values, else "" */
    int shape;         /* -1 any, 0 scalar, else rank */
    char dims[SCHEMA_MAX_DIMS][32];
    int required;
    char meaning[256];
} amlfs_schema_entry;

typedef struct {
    char kind[32];
    long version;
    int n;
    amlfs_schema_entry e[SCHEMA_MAX_ENTRIES];
} amlfs_schema;

/* The schema of a file kind (its newest version), or NULL. */
const amlfs_schema *amlfs_schema_find(const char *kind);
/* The schema of one version of a kind (version <= 0: the newest), or NULL. */
const amlfs_schema *amlfs_schema_find_version(const char *kind, long version);
/* The names of all kinds, NULL-terminated. */
const char *const *amlfs_schema_kinds(void);

/* Validates file f against kind (or against the kind its root attribute names, when kind
 * is NULL). Returns 0, or -1 with the first violation in why: the HDF5 path, what was
 * expected and what was found. */
int amlfs_schema_validate(hid_t f, const char *kind, char *why, size_t n);

#endif
