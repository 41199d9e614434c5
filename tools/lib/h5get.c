/* h5get.c: reading what an open HDF5 file holds, no schema involved: the file's name,
 * whether an object or attribute exists, attributes and whole datasets. A failed read of
 * an input that validated cannot happen short of a disk error: exit 2 naming the file.
 * Depends on: tool (messages). */
#include "h5get.h"
#include "tool.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static char name_buf[4096];

const char *amlfs_h5_name(hid_t loc)
{
    if (H5Fget_name(loc, name_buf, sizeof name_buf) < 0)
        snprintf(name_buf, sizeof name_buf, "(unnamed)");
    /* temporaries are named after their target: show the target */
    char *slash = strrchr(name_buf, '/');
    char *base = slash ? slash + 1 : name_buf;
    if (base[0] == '.' && strstr(base, ".tmp.")) {
        char target[4096];
        size_t dirlen = (size_t)(base - name_buf);
        snprintf(target, sizeof target, "%.*s%.*s", (int)dirlen, name_buf,
                 (int)(strstr(base, ".tmp.") - base - 1), base + 1);
        snprintf(name_buf, sizeof name_buf, "%s", target);
    }
    return name_buf;
}

int amlfs_attr_exists(hid_t loc, const char *obj, const char *name)
{
    return H5Aexists_by_name(loc, obj, name, H5P_DEFAULT) > 0;
}

static void get_attr(hid_t loc, const char *obj, const char *name, hid_t mem_type, void *v)
{
    hid_t a = H5Aopen_by_name(loc, obj, name, H5P_DEFAULT, H5P_DEFAULT);
    int bad = a < 0 || H5Aread(a, mem_type, v) < 0;
    if (a >= 0)
        H5Aclose(a);
    if (bad)
        amlfs_fail(AMLFS_EXIT_USAGE, amlfs_h5_name(loc), "cannot read attribute %s@%s", obj,
                   name);
}

int64_t amlfs_attr_i64(hid_t loc, const char *obj, const char *name)
{
    int64_t v;
    get_attr(loc, obj, name, H5T_NATIVE_INT64, &v);
    return v;
}

double amlfs_attr_f64(hid_t loc, const char *obj, const char *name)
{
    double v;
    get_attr(loc, obj, name, H5T_NATIVE_DOUBLE, &v);
    return v;
}

void amlfs_attr_str(hid_t loc, const char *obj, const char *name, char *buf, size_t n)
{
    hid_t a = H5Aopen_by_name(loc, obj, name, H5P_DEFAULT, H5P_DEFAULT);
    if (a < 0)
        amlfs_fail(AMLFS_EXIT_USAGE, amlfs_h5_name(loc), "no attribute %s@%s", obj, name);
    hid_t ft = H5Aget_type(a);
    int ok = H5Tget_class(ft) == H5T_STRING;
    if (ok && H5Tis_variable_str(ft) > 0) {
        char *s = NULL;
        hid_t mt = H5Tcopy(H5T_C_S1);
        H5Tset_cset(mt, H5Tget_cset(ft)); /* HDF5 converts no character set to another */
        H5Tset_size(mt, H5T_VARIABLE);
        ok = H5Aread(a, mt, &s) >= 0;
        snprintf(buf, n, "%s", ok && s ? s : "");
        if (s)
            H5free_memory(s);
        H5Tclose(mt);
    } else if (ok) {
        size_t size = H5Tget_size(ft);
        char *tmp = calloc(size + 1, 1);
        hid_t mt = H5Tcopy(H5T_C_S1);
        H5Tset_cset(mt, H5Tget_cset(ft));
        H5Tset_size(mt, size + 1);
        H5Tset_strpad(mt, H5T_STR_NULLTERM);
        ok = tmp && H5Aread(a, mt, tmp) >= 0;
        snprintf(buf, n, "%s", ok ? tmp : "");
        free(tmp);
        H5Tclose(mt);
    }
    H5Tclose(ft);
    H5Aclose(a);
    if (!ok)
        amlfs_fail(AMLFS_EXIT_USAGE, amlfs_h5_name(loc), "attribute %s@%s is not a string",
                   obj, name);
}

int amlfs_attr_enum(hid_t loc, const char *obj, const char *name, const char *const *names)
{
    char buf[64];
    amlfs_attr_str(loc, obj, name, buf, sizeof buf);
    int k = amlfs_choice_index(names, buf);
    if (k >= 0)
        return k;
    char list[256] = "";
    for (const char *const *c = names; *c; c++)
        snprintf(list + strlen(list), sizeof list - strlen(list), "%s%s", list[0] ? "," : "",
                 *c);
    amlfs_fail(AMLFS_EXIT_USAGE, amlfs_h5_name(loc), "%s@%s: '%s', expected one of {%s}", obj,
               name, buf, list);
}

int amlfs_h5_exists(hid_t loc, const char *path)
{
    /* H5Lexists needs each parent to exist: walk the path */
    if (!strcmp(path, "/"))
        return 1;
    char buf[1024];
    snprintf(buf, sizeof buf, "%s", path);
    for (char *p = buf + 1;; p++) {
        if (*p == '/' || *p == 0) {
            char c = *p;
            *p = 0;
            if (H5Lexists(loc, buf, H5P_DEFAULT) <= 0)
                return 0;
            if (!c)
                return 1;
            *p = c;
        }
    }
}

int amlfs_h5_dims(hid_t loc, const char *path, hsize_t *dims)
{
    hid_t ds = H5Dopen2(loc, path, H5P_DEFAULT);
    if (ds < 0)
        amlfs_fail(AMLFS_EXIT_USAGE, amlfs_h5_name(loc), "no dataset %s", path);
    hid_t sp = H5Dget_space(ds);
    int rank = H5Sget_simple_extent_ndims(sp);
    if (rank > 8)
        rank = -1;
    else if (rank > 0)
        H5Sget_simple_extent_dims(sp, dims, NULL);
    H5Sclose(sp);
    H5Dclose(ds);
    if (rank < 0)
        amlfs_fail(AMLFS_EXIT_USAGE, amlfs_h5_name(loc), "dataset %s: unsupported rank", path);
    return rank;
}

size_t amlfs_h5_count(hid_t loc, const char *path)
{
    hsize_t dims[8];
    int rank = amlfs_h5_dims(loc, path, dims);
    size_t n = 1;
    for (int i = 0; i < rank; i++)
        n *= dims[i];
    return n;
}

void amlfs_h5_read(hid_t loc, const char *path, hid_t mem_type, void *buf)
{
    hid_t ds = H5Dopen2(loc, path, H5P_DEFAULT);
    int bad = ds < 0 || H5Dread(ds, mem_type, H5S_ALL, H5S_ALL, H5P_DEFAULT, buf) < 0;
    if (ds >= 0)
        H5Dclose(ds);
    if (bad)
        amlfs_fail(AMLFS_EXIT_USAGE, amlfs_h5_name(loc), "cannot read dataset %s", path);
}
