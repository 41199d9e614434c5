/* plain.c: reading hand-written HDF5 inputs that carry no 'schema' attribute. */
#include "plain.h"
#include "h5io.h"
#include "tool.h"

#include <stdlib.h>
#include <string.h>
#include <unistd.h>

hid_t amlfs_h5_open_or_plain(const char *path, const char *kind, int *plain)
{
    *plain = 0;
    /* anything but a readable HDF5 file: amlfs_h5_open says what is wrong */
    if (access(path, R_OK) != 0 || H5Fis_hdf5(path) <= 0)
        return amlfs_h5_open(path, kind);
    hid_t f = H5Fopen(path, H5F_ACC_RDONLY, H5P_DEFAULT);
    if (f < 0)
        return amlfs_h5_open(path, kind);
    if (H5Aexists_by_name(f, "/", "schema", H5P_DEFAULT) > 0) {
        H5Fclose(f);
        return amlfs_h5_open(path, kind);
    }
    *plain = 1;
    return f;
}

const char *amlfs_plain_shape(int rank, const hsize_t *dims, char *buf, size_t n)
{
    size_t used = (size_t)snprintf(buf, n, "(");
    for (int i = 0; i < rank && used < n; i++)
        used += (size_t)snprintf(buf + used, n - used, "%s%llu", i ? "," : "",
                                 (unsigned long long)dims[i]);
    if (used < n)
        snprintf(buf + used, n - used, ")");
    return buf;
}

/* What an HDF5 type is, in NumPy's words ("float32", "int64", "uint8", "a string"). */
static void type_words(hid_t t, char *buf, size_t n)
{
    H5T_class_t c = H5Tget_class(t);
    size_t size = H5Tget_size(t);
    if (c == H5T_INTEGER)
        snprintf(buf, n, "%sint%zu", H5Tget_sign(t) == H5T_SGN_NONE ? "u" : "", size * 8);
    else if (c == H5T_FLOAT)
        snprintf(buf, n, "float%zu", size * 8);
    else if (c == H5T_STRING)
        snprintf(buf, n, "a string");
    else if (c == H5T_ENUM)
        snprintf(buf, n, "an enum (bool?)");
    else
        snprintf(buf, n, "HDF5 type class %d", (int)c);
}

static int type_accepted(hid_t t, amlfs_plain_type want)
{
    H5T_class_t c = H5Tget_class(t);
    size_t size = H5Tget_size(t);
    switch (want) {
    case PLAIN_FLOAT:
        return c == H5T_FLOAT && (size == 4 || size == 8);
    case PLAIN_INTEGER:
        return c == H5T_INTEGER && size >= 1 && size <= 8;
    case PLAIN_UINT8:
        return c == H5T_INTEGER && size == 1 && H5Tget_sign(t) == H5T_SGN_NONE;
    }
    return 0;
}

static const char *const type_expected[] = {"float32 or float64", "an integer type", "uint8"};

int amlfs_plain_dims(hid_t f, const char *path, const char *name, amlfs_plain_type type,
                     int min_rank, int max_rank, const char *shape, hsize_t *dims)
{
    if (!amlfs_h5_exists(f, name))
        amlfs_fail(AMLFS_EXIT_USAGE, path, "%s: missing, expected a dataset of %s, shape %s",
                   name, type_expected[type], shape);
    H5O_info_t info;
    if (H5Oget_info_by_name(f, name, &info, H5P_DEFAULT) < 0 || info.type != H5O_TYPE_DATASET)
        amlfs_fail(AMLFS_EXIT_USAGE, path, "%s: not a dataset, expected a dataset of %s, "
                   "shape %s", name, type_expected[type], shape);
    hid_t ds = H5Dopen2(f, name, H5P_DEFAULT);
    if (ds < 0)
        amlfs_fail(AMLFS_EXIT_USAGE, path, "%s: cannot open the dataset", name);
    hid_t t = H5Dget_type(ds), sp = H5Dget_space(ds);
    int ok_type = type_accepted(t, type);
    char found[64];
    type_words(t, found, sizeof found);
    int rank = H5Sget_simple_extent_ndims(sp);
    hsize_t got[H5S_MAX_RANK];
    if (rank > 0)
        H5Sget_simple_extent_dims(sp, got, NULL);
    H5Sclose(sp);
    H5Tclose(t);
    H5Dclose(ds);
    if (!ok_type)
        amlfs_fail(AMLFS_EXIT_USAGE, path, "%s: %s, expected %s, shape %s", name, found,
                   type_expected[type], shape);
    if (rank < min_rank || rank > max_rank) {
        char s[128];
        amlfs_plain_shape(rank < 0 ? 0 : rank, got, s, sizeof s);
        amlfs_fail(AMLFS_EXIT_USAGE, path, "%s: shape %s, expected %s", name, s, shape);
    }
    for (int i = 0; i < rank; i++)
        dims[i] = got[i];
    return rank;
}

/* Opens attribute obj@name that holds one value, or returns -1 when it is absent. */
static hid_t open_scalar_attr(hid_t f, const char *path, const char *obj, const char *name)
{
    if (!amlfs_h5_exists(f, obj) || H5Aexists_by_name(f, obj, name, H5P_DEFAULT) <= 0)
        return -1;
    hid_t a = H5Aopen_by_name(f, obj, name, H5P_DEFAULT, H5P_DEFAULT);
    if (a < 0)
        amlfs_fail(AMLFS_EXIT_USAGE, path, "%s@%s: cannot open the attribute", obj, name);
    hid_t sp = H5Aget_space(a);
    hssize_t count = H5Sget_simple_extent_npoints(sp);
    H5Sclose(sp);
    if (count != 1)
        amlfs_fail(AMLFS_EXIT_USAGE, path, "%s@%s: %lld values, expected one", obj, name,
                   (long long)count);
    return a;
}

/* Reads a numeric attribute a into v (mem_type); integer_only refuses floats. */
static void read_number(hid_t a, const char *path, const char *obj, const char *name,
                        int integer_only, hid_t mem_type, void *v)
{
    hid_t t = H5Aget_type(a);
    H5T_class_t c = H5Tget_class(t);
    char found[64];
    type_words(t, found, sizeof found);
    H5Tclose(t);
    int ok = c == H5T_INTEGER || (!integer_only && c == H5T_FLOAT);
    if (ok)
        ok = H5Aread(a, mem_type, v) >= 0;
    H5Aclose(a);
    if (!ok)
        amlfs_fail(AMLFS_EXIT_USAGE, path, "%s@%s: %s, expected %s", obj, name, found,
                   integer_only ? "an integer" : "a number");
}

int amlfs_plain_attr_f64(hid_t f, const char *path, const char *obj, const char *name,
                         double def, double *v)
{
    hid_t a = open_scalar_attr(f, path, obj, name);
    *v = def;
    if (a < 0)
        return 0;
    read_number(a, path, obj, name, 0, H5T_NATIVE_DOUBLE, v);
    return 1;
}

int amlfs_plain_attr_i64(hid_t f, const char *path, const char *obj, const char *name,
                         int64_t def, int64_t *v)
{
    hid_t a = open_scalar_attr(f, path, obj, name);
    *v = def;
    if (a < 0)
        return 0;
    read_number(a, path, obj, name, 1, H5T_NATIVE_INT64, v);
    return 1;
}

int amlfs_plain_attr_str(hid_t f, const char *path, const char *obj, const char *name,
                         const char *const *choices, const char *def, char *buf, size_t n)
{
    hid_t a = open_scalar_attr(f, path, obj, name);
    if (a < 0) {
        snprintf(buf, n, "%s", def);
        return 0;
    }
    hid_t t = H5Aget_type(a);
    int is_str = H5Tget_class(t) == H5T_STRING;
    H5Tclose(t);
    H5Aclose(a);
    if (!is_str)
        amlfs_fail(AMLFS_EXIT_USAGE, path, "%s@%s: not a string", obj, name);
    amlfs_attr_str(f, obj, name, buf, n); /* fixed or variable length, any character set */
    if (!choices)
        return 1;
    if (amlfs_choice_index(choices, buf) >= 0)
        return 1;
    char list[256] = "";
    for (const char *const *c = choices; *c; c++) {
        snprintf(list + strlen(list), sizeof list - strlen(list), "%s%s", list[0] ? "," : "",
                 *c);
    }
    amlfs_fail(AMLFS_EXIT_USAGE, path, "%s@%s: '%s', expected one of {%s}", obj, name, buf,
               list);
}

int amlfs_plain_attr_enum(hid_t f, const char *path, const char *obj, const char *name,
                          const char *const *choices, int def, int *given)
{
    char buf[64];
    int there = amlfs_plain_attr_str(f, path, obj, name, choices, choices[def], buf, sizeof buf);
    if (given)
        *given = there;
    return amlfs_choice_index(choices, buf);
}

int amlfs_plain_attr_f64v(hid_t f, const char *path, const char *obj, const char *name,
                          double *v, size_t n)
{
    if (!amlfs_h5_exists(f, obj) || H5Aexists_by_name(f, obj, name, H5P_DEFAULT) <= 0)
        return 0;
    hid_t a = H5Aopen_by_name(f, obj, name, H5P_DEFAULT, H5P_DEFAULT);
    if (a < 0)
        amlfs_fail(AMLFS_EXIT_USAGE, path, "%s@%s: cannot open the attribute", obj, name);
    hid_t sp = H5Aget_space(a);
    hssize_t count = H5Sget_simple_extent_npoints(sp);
    H5Sclose(sp);
    if (count != (hssize_t)n) {
        H5Aclose(a);
        amlfs_fail(AMLFS_EXIT_USAGE, path, "%s@%s: %lld values, expected %zu", obj, name,
                   (long long)count, n);
    }
    read_number(a, path, obj, name, 0, H5T_NATIVE_DOUBLE, v);
    return 1;
}
