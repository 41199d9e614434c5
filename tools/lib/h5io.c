/* h5io.c: HDF5 files made and opened behind the schema checks, and writes. A failed HDF5
 * call on an output is exit 1 (the work failed). The reads are h5get.c's.
 * Depends on: h5get (names, existence), schema (validation), atomic_out, tool. */
#include "h5io.h"
#include "atomic_out.h"
#include "h5get.h"
#include "schema.h"
#include "tool.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#define OUT_FAIL(loc, ...) amlfs_fail(AMLFS_EXIT_FAILED, amlfs_h5_name(loc), __VA_ARGS__)

/* Why a write failed, from the errno the failing write(2) under HDF5 left (reset before
 * each write): the file system full or over quota is said as such. */
static const char *write_error(int e)
{
    static char buf[256];
    if (e == ENOSPC)
        return "no space left on device";
    if (e == EDQUOT)
        return "disk quota exceeded";
    if (e == EIO)
        return "I/O error";
    if (e)
        snprintf(buf, sizeof buf, "%s", strerror(e));
    else
        snprintf(buf, sizeof buf, "HDF5 error");
    return buf;
}

/* Attributes stay in their object's header, never in the dense storage HDF5 moves them
 * to past 8 (a fractal heap whose blocks carry no checksum): the header's checksum then
 * covers every attribute value. */
static void compact_attributes(hid_t ocpl) { H5Pset_attr_phase_change(ocpl, 1024, 0); }

amlfs_h5_out amlfs_h5_create(const char *target, const char *kind)
{
    amlfs_h5_out out;
    out.target = target;
    out.tmp = amlfs_out_begin(target);
    hid_t fcpl = H5Pcreate(H5P_FILE_CREATE);
    H5Pset_obj_track_times(fcpl, 0); /* the root group's times */
    compact_attributes(fcpl);
    /* the HDF5 1.10 format: every piece of metadata (superblock, object headers with
     * the attributes in them, B-trees, heaps) carries a checksum that the library
     * verifies when it reads it */
    hid_t fapl = H5Pcreate(H5P_FILE_ACCESS);
    H5Pset_libver_bounds(fapl, H5F_LIBVER_V110, H5F_LIBVER_V110);
    out.file = H5Fcreate(out.tmp, H5F_ACC_TRUNC, fcpl, fapl);
    H5Pclose(fapl);
    H5Pclose(fcpl);
    if (out.file < 0)
        amlfs_fail(AMLFS_EXIT_FAILED, target, "cannot create HDF5 file");
    const amlfs_schema *s = amlfs_schema_find(kind);
    if (!s)
        amlfs_fail(AMLFS_EXIT_FAILED, target, "no schema named '%s'", kind);
    amlfs_attr_set_str(out.file, "/", "schema", kind);
    amlfs_attr_set_i64(out.file, "/", "schema_version", s->version);
    amlfs_attr_set_str(out.file, "/", "amlfs_version", AMLFS_VERSION);
    return out;
}

void amlfs_h5_finish(amlfs_h5_out *out)
{
    errno = 0;
    if (H5Fflush(out->file, H5F_SCOPE_GLOBAL) < 0 || H5Fclose(out->file) < 0)
        amlfs_fail(AMLFS_EXIT_FAILED, out->target, "cannot write: %s", write_error(errno));
    out->file = -1;
    amlfs_out_commit(out->tmp);
}

hid_t amlfs_h5_try_open(const char *path, const char *kind, char *why, size_t n)
{
    if (access(path, F_OK) != 0) {
        snprintf(why, n, "no such file");
        return -1;
    }
    if (access(path, R_OK) != 0) {
        snprintf(why, n, "cannot read: %s", strerror(errno));
        return -1;
    }
    if (H5Fis_hdf5(path) <= 0) {
        snprintf(why, n, "not an HDF5 file");
        return -1;
    }
    hid_t f = H5Fopen(path, H5F_ACC_RDONLY, H5P_DEFAULT);
    if (f < 0) {
        snprintf(why, n, "cannot open as HDF5 (truncated or damaged)");
        return -1;
    }
    if (amlfs_schema_validate(f, kind, why, n) != 0) {
        H5Fclose(f);
        return -1;
    }
    return f;
}

hid_t amlfs_h5_open(const char *path, const char *kind)
{
    char why[1024];
    hid_t f = amlfs_h5_try_open(path, kind, why, sizeof why);
    if (f < 0)
        amlfs_fail(AMLFS_EXIT_USAGE, path, "%s", why);
    return f;
}

static hid_t untracked(hid_t cls)
{
    hid_t p = H5Pcreate(cls);
    H5Pset_obj_track_times(p, 0);
    compact_attributes(p);
    return p;
}

hid_t amlfs_h5_group(hid_t loc, const char *path)
{
    if (amlfs_h5_exists(loc, path))
        return H5Gopen2(loc, path, H5P_DEFAULT);
    hid_t lcpl = H5Pcreate(H5P_LINK_CREATE);
    H5Pset_create_intermediate_group(lcpl, 1);
    hid_t gcpl = untracked(H5P_GROUP_CREATE);
    hid_t g = H5Gcreate2(loc, path, lcpl, gcpl, H5P_DEFAULT);
    H5Pclose(gcpl);
    H5Pclose(lcpl);
    if (g < 0)
        OUT_FAIL(loc, "cannot create group %s", path);
    return g;
}

/* Every value written is checksummed: a dataset's values by the Fletcher32 filter on
 * chunks of at most about 1 MiB (whole rows of its first dimension), which HDF5 verifies
 * on every read; a scalar is stored compact, inside its object header and so under that
 * header's checksum. Empty datasets have nothing to check. */
#define CHUNK_BYTES (1u << 20)
#define CHUNK_ROW_ALONE (16u << 10) /* streamed datasets: rows this big are chunked alone */

static void checksummed(hid_t dcpl, hid_t file_type, int rank, const hsize_t *dims)
{
    if (rank == 0) {
        H5Pset_layout(dcpl, H5D_COMPACT);
        return;
    }
    hsize_t row = H5Tget_size(file_type), chunk[8];
    for (int i = 0; i < rank; i++) {
        if (dims[i] == 0)
            return;
        chunk[i] = dims[i];
        if (i > 0)
            row *= dims[i];
    }
    hsize_t rows = row >= CHUNK_BYTES ? 1 : CHUNK_BYTES / row;
    chunk[0] = rows < dims[0] ? rows : dims[0];
    H5Pset_chunk(dcpl, rank, chunk);
    H5Pset_fletcher32(dcpl);
}

void amlfs_h5_write(hid_t loc, const char *path, hid_t file_type, hid_t mem_type, int rank,
                    const hsize_t *dims, const void *data)
{
    hid_t space = rank == 0 ? H5Screate(H5S_SCALAR) : H5Screate_simple(rank, dims, NULL);
    hid_t lcpl = H5Pcreate(H5P_LINK_CREATE);
    H5Pset_create_intermediate_group(lcpl, 1);
    hid_t dcpl = untracked(H5P_DATASET_CREATE);
    checksummed(dcpl, file_type, rank, dims);
    errno = 0;
    hid_t ds = H5Dcreate2(loc, path, file_type, space, lcpl, dcpl, H5P_DEFAULT);
    int bad = ds < 0 || H5Dwrite(ds, mem_type, H5S_ALL, H5S_ALL, H5P_DEFAULT, data) < 0;
    int e = errno;
    if (ds >= 0)
        bad |= H5Dclose(ds) < 0;
    e = e ? e : errno;
    H5Pclose(dcpl);
    H5Pclose(lcpl);
    H5Sclose(space);
    if (bad)
        OUT_FAIL(loc, "cannot write dataset %s: %s", path, write_error(e));
}

void amlfs_h5_write_f64(hid_t loc, const char *path, int rank, const hsize_t *dims,
                        const double *data)
{
    amlfs_h5_write(loc, path, H5T_IEEE_F64LE, H5T_NATIVE_DOUBLE, rank, dims, data);
}

amlfs_h5_stream amlfs_h5_stream_create(hid_t loc, const char *path, hid_t file_type,
                                       hid_t mem_type, int rank, const hsize_t *row_dims)
{
    amlfs_h5_stream s;
    memset(&s, 0, sizeof s);
    s.mem_type = mem_type;
    s.rank = rank;
    snprintf(s.path, sizeof s.path, "%s", path);
    hsize_t maxdims[8], chunk[8];
    hsize_t row = H5Tget_size(file_type);
    s.dims[0] = 0;
    maxdims[0] = H5S_UNLIMITED;
    for (int i = 1; i < rank; i++) {
        s.dims[i] = maxdims[i] = chunk[i] = row_dims[i - 1];
        row *= row_dims[i - 1];
    }
    /* rows of 16 KiB or more (a 112x96 RGB face is 32 KiB) get a chunk each: a streamed
     * training split reads its batches' rows in random order, and HDF5 reads and
     * checks a whole chunk for any row of it */
    chunk[0] = row >= CHUNK_ROW_ALONE ? 1 : CHUNK_BYTES / (row ? row : 1);
    hid_t space = H5Screate_simple(rank, s.dims, maxdims);
    hid_t lcpl = H5Pcreate(H5P_LINK_CREATE);
    H5Pset_create_intermediate_group(lcpl, 1);
    hid_t dcpl = untracked(H5P_DATASET_CREATE);
    H5Pset_chunk(dcpl, rank, chunk);
    H5Pset_fletcher32(dcpl);
    errno = 0;
    s.ds = H5Dcreate2(loc, path, file_type, space, lcpl, dcpl, H5P_DEFAULT);
    int e = errno;
    H5Pclose(dcpl);
    H5Pclose(lcpl);
    H5Sclose(space);
    if (s.ds < 0)
        OUT_FAIL(loc, "cannot create dataset %s: %s", path, write_error(e));
    return s;
}

void amlfs_h5_stream_append(amlfs_h5_stream *s, hsize_t rows, const void *data)
{
    if (rows == 0)
        return;
    hsize_t start[8] = {0}, count[8];
    start[0] = s->dims[0];
    count[0] = rows;
    for (int i = 1; i < s->rank; i++)
        count[i] = s->dims[i];
    s->dims[0] += rows;
    errno = 0;
    int bad = H5Dset_extent(s->ds, s->dims) < 0;
    hid_t fspace = bad ? -1 : H5Dget_space(s->ds);
    hid_t mspace = H5Screate_simple(s->rank, count, NULL);
    bad = bad || fspace < 0 ||
          H5Sselect_hyperslab(fspace, H5S_SELECT_SET, start, NULL, count, NULL) < 0 ||
          H5Dwrite(s->ds, s->mem_type, mspace, fspace, H5P_DEFAULT, data) < 0;
    int e = errno;
    if (fspace >= 0)
        H5Sclose(fspace);
    H5Sclose(mspace);
    if (bad)
        OUT_FAIL(s->ds, "cannot write dataset %s: %s", s->path, write_error(e));
}

void amlfs_h5_stream_close(amlfs_h5_stream *s)
{
    errno = 0;
    if (s->ds >= 0 && H5Dclose(s->ds) < 0)
        amlfs_fail(AMLFS_EXIT_FAILED, NULL, "cannot write dataset %s: %s", s->path,
                   write_error(errno));
    s->ds = -1;
}

static void set_attr(hid_t loc, const char *obj, const char *name, hid_t file_type,
                     hid_t mem_type, hid_t space, const void *data)
{
    if (H5Aexists_by_name(loc, obj, name, H5P_DEFAULT) > 0)
        H5Adelete_by_name(loc, obj, name, H5P_DEFAULT);
    hid_t a = H5Acreate_by_name(loc, obj, name, file_type, space, H5P_DEFAULT, H5P_DEFAULT,
                                H5P_DEFAULT);
    int bad = a < 0 || H5Awrite(a, mem_type, data) < 0;
    if (a >= 0)
        H5Aclose(a);
    if (bad)
        OUT_FAIL(loc, "cannot write attribute %s@%s", obj, name);
}

void amlfs_attr_set_str(hid_t loc, const char *obj, const char *name, const char *value)
{
    /* fixed-length, null-terminated ASCII: what h5dump and every reader handle */
    hid_t t = H5Tcopy(H5T_C_S1);
    H5Tset_size(t, strlen(value) + 1);
    H5Tset_strpad(t, H5T_STR_NULLTERM);
    hid_t space = H5Screate(H5S_SCALAR);
    set_attr(loc, obj, name, t, t, space, value);
    H5Sclose(space);
    H5Tclose(t);
}

void amlfs_attr_set_i64(hid_t loc, const char *obj, const char *name, int64_t value)
{
    hid_t space = H5Screate(H5S_SCALAR);
    set_attr(loc, obj, name, H5T_STD_I64LE, H5T_NATIVE_INT64, space, &value);
    H5Sclose(space);
}

void amlfs_attr_set_f64(hid_t loc, const char *obj, const char *name, double value)
{
    hid_t space = H5Screate(H5S_SCALAR);
    set_attr(loc, obj, name, H5T_IEEE_F64LE, H5T_NATIVE_DOUBLE, space, &value);
    H5Sclose(space);
}

void amlfs_attr_set_f64v(hid_t loc, const char *obj, const char *name, const double *v,
                         size_t n)
{
    hsize_t dims[1] = {n};
    hid_t space = H5Screate_simple(1, dims, NULL);
    set_attr(loc, obj, name, H5T_IEEE_F64LE, H5T_NATIVE_DOUBLE, space, v);
    H5Sclose(space);
}

/* ---- verifying every value ---------------------------------------------------------- */

typedef struct {
    char *why;
    size_t n;
} verify_ctx;

static herr_t verify_attr(hid_t loc, const char *name, const H5A_info_t *ai, void *data)
{
    (void)ai;
    verify_ctx *v = data;
    hid_t a = H5Aopen(loc, name, H5P_DEFAULT);
    hid_t t = a < 0 ? -1 : H5Aget_type(a);
    hid_t sp = a < 0 ? -1 : H5Aget_space(a);
    hssize_t count = sp < 0 ? -1 : H5Sget_simple_extent_npoints(sp);
    int bad = a < 0 || t < 0 || count < 0;
    if (!bad && count > 0) {
        size_t size = H5Tget_size(t);
        void *buf = calloc((size_t)count, size ? size : 1);
        bad = !buf || H5Aread(a, t, buf) < 0;
        if (!bad && H5Tis_variable_str(t) > 0)
            H5Dvlen_reclaim(t, sp, H5P_DEFAULT, buf);
        free(buf);
    }
    if (sp >= 0)
        H5Sclose(sp);
    if (t >= 0)
        H5Tclose(t);
    if (a >= 0)
        H5Aclose(a);
    if (bad)
        snprintf(v->why, v->n, "attribute @%s cannot be read (damaged)", name);
    return bad ? -1 : 0;
}

static herr_t verify_object(hid_t loc, const char *name, const H5O_info_t *info, void *data)
{
    verify_ctx *v = data;
    hid_t o = H5Oopen(loc, name, H5P_DEFAULT);
    if (o < 0) {
        snprintf(v->why, v->n, "/%s cannot be opened (damaged)", strcmp(name, ".") ? name : "");
        return -1;
    }
    int bad = 0;
    if (H5Aiterate2(o, H5_INDEX_NAME, H5_ITER_INC, NULL, verify_attr, v) < 0) {
        if (!v->why[0])
            snprintf(v->why, v->n, "the attributes of /%s cannot be read (damaged)", name);
        bad = 1;
    } else if (info->type == H5O_TYPE_DATASET) {
        hid_t t = H5Dget_type(o), sp = H5Dget_space(o);
        hssize_t count = sp < 0 ? -1 : H5Sget_simple_extent_npoints(sp);
        size_t size = t < 0 ? 0 : H5Tget_size(t);
        bad = t < 0 || count < 0 || H5Tis_variable_str(t) > 0;
        if (!bad && count > 0) {
            void *buf = malloc((size_t)count * size);
            bad = !buf || H5Dread(o, t, H5S_ALL, H5S_ALL, H5P_DEFAULT, buf) < 0;
            free(buf);
        }
        if (sp >= 0)
            H5Sclose(sp);
        if (t >= 0)
            H5Tclose(t);
        if (bad)
            snprintf(v->why, v->n, "dataset /%s cannot be read: its values are damaged "
                     "(checksum) or truncated", name);
    }
    H5Oclose(o);
    return bad ? -1 : 0;
}

int amlfs_h5_verify(hid_t file, char *why, size_t n)
{
    verify_ctx v = {why, n};
    why[0] = 0;
    if (H5Ovisit(file, H5_INDEX_NAME, H5_ITER_INC, verify_object, &v) < 0) {
        if (!why[0])
            snprintf(why, n, "its structure cannot be read (damaged)");
        return -1;
    }
    return 0;
}
