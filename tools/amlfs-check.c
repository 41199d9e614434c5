/* amlfs-check: which kind of amlfs file this is, validated against its schema, and a
 * summary: the root's attributes and every dataset with its type and shape. */
#include "h5io.h"
#include "schema.h"
#include "tool.h"

#include <stdlib.h>
#include <string.h>

static const char usage[] =
    "usage: amlfs-check [--epoch E] FILE.h5 ...\n"
    "       amlfs-check --get FILE.h5 PATH[@ATTR]\n"
    "\n"
    "Validates each file against the schema its root attribute 'schema' names, reads every\n"
    "value in it (so that HDF5 verifies the checksums the tools write: Fletcher32 on the\n"
    "datasets, the 1.10 format's on the metadata and attributes) and prints its kind and a\n"
    "summary on stdout (root attributes, datasets with type and shape).\n"
    "Stops at the first file that fails, with its first schema violation on stderr.\n"
    "--epoch E: a file whose root attribute 'epoch' is not E (or that has none) fails\n"
    "too: a valid file of another epoch is not this epoch's output.\n"
    "\n"
    "Kinds: checkpoint, dataset, eval, loss-input, loss-output, policy, rewards, thetas\n"
    "(their schemas are in PREFIX/share/amlfs/schemas).\n"
    "\n"
    "--get prints one value of a valid file, for scripts: PATH a dataset's values, one a\n"
    "line in row-major order; PATH@ATTR (/@best, /raw@unit) the attribute ATTR of the\n"
    "object at PATH, its values one a line. Numbers in the shortest form that reads back\n"
    "as the same value (nan, inf as such), strings as they are.\n"
    "\n"
    "Exit status: 0 every file valid (--get: printed), 2 a file missing, not HDF5, or\n"
    "invalid, or (--get) no such dataset or attribute.\n";

static void print_type(hid_t t)
{
    H5T_class_t c = H5Tget_class(t);
    size_t size = H5Tget_size(t);
    if (c == H5T_INTEGER)
        printf("%sint%zu", H5Tget_sign(t) == H5T_SGN_NONE ? "u" : "", size * 8);
    else if (c == H5T_FLOAT)
        printf("float%zu", size * 8);
    else
        printf("string");
}

static void print_attr_value(hid_t f, const char *obj, const char *name)
{
    hid_t a = H5Aopen_by_name(f, obj, name, H5P_DEFAULT, H5P_DEFAULT);
    hid_t t = H5Aget_type(a), sp = H5Aget_space(a);
    hssize_t n = H5Sget_simple_extent_npoints(sp);
    H5T_class_t c = H5Tget_class(t);
    if (c == H5T_STRING) {
        char buf[1024];
        amlfs_attr_str(f, obj, name, buf, sizeof buf);
        printf("\"%s\"", buf);
    } else if (n >= 1 && n <= 64) {
        double v[64];
        H5Aread(a, H5T_NATIVE_DOUBLE, v);
        for (hssize_t i = 0; i < n; i++) {
            /* the shortest form that reads back as the same double */
            char text[64];
            for (int digits = 15; digits <= 17; digits++) {
                snprintf(text, sizeof text, "%.*g", digits, v[i]);
                if (strtod(text, NULL) == v[i])
                    break;
            }
            printf("%s%s", i ? " " : "", text);
        }
    }
    H5Sclose(sp);
    H5Tclose(t);
    H5Aclose(a);
}

static herr_t root_attr(hid_t loc, const char *name, const H5A_info_t *ai, void *data)
{
    (void)ai;
    (void)data;
    printf("  @%s = ", name);
    print_attr_value(loc, "/", name);
    putchar('\n');
    return 0;
}

static herr_t dataset(hid_t loc, const char *name, const H5O_info_t *info, void *data)
{
    (void)data;
    if (info->type != H5O_TYPE_DATASET)
        return 0;
    hid_t ds = H5Dopen2(loc, name, H5P_DEFAULT);
    hid_t t = H5Dget_type(ds), sp = H5Dget_space(ds);
    hsize_t dims[8];
    int rank = H5Sget_simple_extent_ndims(sp);
    if (rank > 8)
        rank = 8;
    H5Sget_simple_extent_dims(sp, dims, NULL);
    printf("  /%s ", name);
    print_type(t);
    printf(" (");
    for (int i = 0; i < rank; i++)
        printf("%s%llu", i ? "," : "", (unsigned long long)dims[i]);
    printf(")\n");
    H5Sclose(sp);
    H5Tclose(t);
    H5Dclose(ds);
    return 0;
}

/* One number in the shortest form that reads back as the same value: as a float when
 * the stored type is 4 bytes wide, else as a double. */
static void print_number(double v, int single)
{
    char text[64];
    for (int digits = single ? 6 : 15; digits <= 17; digits++) {
        snprintf(text, sizeof text, "%.*g", digits, v);
        if (single ? strtof(text, NULL) == (float)v : strtod(text, NULL) == v)
            break;
    }
    printf("%s\n", text);
}

/* The n values of obj (an attribute or a dataset) of type t, one a line; a string
 * attribute is left to the caller. */
static void print_values(hid_t t, hsize_t n, hid_t obj, int is_attr, const char *file,
                         const char *what)
{
    H5T_class_t c = H5Tget_class(t);
    if (c == H5T_STRING) {
        if (!is_attr || n != 1)
            amlfs_fail(AMLFS_EXIT_USAGE, file, "%s: only scalar string attributes are printed",
                       what);
        return; /* the caller prints it */
    }
    if (c != H5T_INTEGER && c != H5T_FLOAT)
        amlfs_fail(AMLFS_EXIT_USAGE, file, "%s: not numbers or a string", what);
    int integer = c == H5T_INTEGER, single = c == H5T_FLOAT && H5Tget_size(t) == 4;
    int unsig = integer && H5Tget_sign(t) == H5T_SGN_NONE;
    hid_t mem = integer ? (unsig ? H5T_NATIVE_ULLONG : H5T_NATIVE_LLONG) : H5T_NATIVE_DOUBLE;
    void *buf = amlfs_zalloc(n ? (size_t)n : 1, 8);
    herr_t e = is_attr ? H5Aread(obj, mem, buf) : H5Dread(obj, mem, H5S_ALL, H5S_ALL, H5P_DEFAULT, buf);
    if (e < 0)
        amlfs_fail(AMLFS_EXIT_USAGE, file, "%s: cannot read", what);
    for (hsize_t i = 0; i < n; i++) {
        if (!integer)
            print_number(((double *)buf)[i], single);
        else if (unsig)
            printf("%llu\n", ((unsigned long long *)buf)[i]);
        else
            printf("%lld\n", ((long long *)buf)[i]);
    }
    free(buf);
}

/* amlfs-check --get FILE PATH[@ATTR] */
static int get(const char *file, const char *spec)
{
    char path[1024], attr[256] = "";
    const char *at = strchr(spec, '@');
    if (spec[0] != '/')
        amlfs_fail(AMLFS_EXIT_USAGE, NULL, "--get %s: expected /PATH or /PATH@ATTR", spec);
    snprintf(path, sizeof path, "%.*s", (int)(at ? at - spec : (long)strlen(spec)), spec);
    if (at)
        snprintf(attr, sizeof attr, "%s", at + 1);
    if (at && !attr[0])
        amlfs_fail(AMLFS_EXIT_USAGE, NULL, "--get %s: no attribute name after @", spec);
    hid_t f = amlfs_h5_open(file, NULL);
    if (strcmp(path, "/") && (H5Lexists(f, path, H5P_DEFAULT) <= 0 ||
                              H5Oexists_by_name(f, path, H5P_DEFAULT) <= 0))
        amlfs_fail(AMLFS_EXIT_USAGE, file, "no object %s", path);
    if (at) {
        if (H5Aexists_by_name(f, path, attr, H5P_DEFAULT) <= 0)
            amlfs_fail(AMLFS_EXIT_USAGE, file, "%s: no attribute %s", path, attr);
        hid_t a = H5Aopen_by_name(f, path, attr, H5P_DEFAULT, H5P_DEFAULT);
        hid_t t = H5Aget_type(a), sp = H5Aget_space(a);
        hssize_t n = H5Sget_simple_extent_npoints(sp);
        print_values(t, (hsize_t)n, a, 1, file, spec);
        if (H5Tget_class(t) == H5T_STRING) {
            char buf[4096];
            amlfs_attr_str(f, path, attr, buf, sizeof buf);
            printf("%s\n", buf);
        }
        H5Sclose(sp);
        H5Tclose(t);
        H5Aclose(a);
    } else {
        H5O_info_t info;
        if (H5Oget_info_by_name(f, path, &info, H5P_DEFAULT) < 0 || info.type != H5O_TYPE_DATASET)
            amlfs_fail(AMLFS_EXIT_USAGE, file, "%s: not a dataset (PATH@ATTR for an attribute)",
                       path);
        hid_t ds = H5Dopen2(f, path, H5P_DEFAULT);
        hid_t t = H5Dget_type(ds), sp = H5Dget_space(ds);
        hssize_t n = H5Sget_simple_extent_npoints(sp);
        print_values(t, (hsize_t)n, ds, 0, file, spec);
        H5Sclose(sp);
        H5Tclose(t);
        H5Dclose(ds);
    }
    H5Fclose(f);
    if (fflush(stdout) != 0)
        amlfs_fail(AMLFS_EXIT_FAILED, NULL, "cannot write to stdout");
    return AMLFS_EXIT_OK;
}

int main(int argc, char **argv)
{
    amlfs_tool_start("amlfs-check");
    amlfs_help_version(argc, argv, usage);
    if (argc < 2)
        amlfs_fail(AMLFS_EXIT_USAGE, NULL, "give a file to check (see --help)");
    if (!strcmp(argv[1], "--get")) {
        if (argc != 4)
            amlfs_fail(AMLFS_EXIT_USAGE, NULL, "--get FILE PATH[@ATTR] (see --help)");
        return get(argv[2], argv[3]);
    }
    long long epoch = -1;
    int first = 1;
    if (argc >= 3 && !strcmp(argv[1], "--epoch")) {
        epoch = amlfs_arg_int("--epoch", argv[2], 0, 1LL << 40);
        first = 3;
    }
    if (first >= argc)
        amlfs_fail(AMLFS_EXIT_USAGE, NULL, "give a file to check (see --help)");
    for (int i = first; i < argc; i++) {
        if (argv[i][0] == '-')
            amlfs_fail(AMLFS_EXIT_USAGE, NULL, "unknown option '%s' (see --help)", argv[i]);
        hid_t f = amlfs_h5_open(argv[i], NULL);
        char why[1024];
        if (amlfs_h5_verify(f, why, sizeof why) != 0) {
            H5Fclose(f);
            amlfs_fail(AMLFS_EXIT_USAGE, argv[i], "%s", why);
        }
        char kind[64];
        amlfs_attr_str(f, "/", "schema", kind, sizeof kind);
        if (epoch >= 0) {
            if (!H5Aexists(f, "epoch"))
                amlfs_fail(AMLFS_EXIT_USAGE, argv[i], "/@epoch: missing, expected %lld", epoch);
            long long e = (long long)amlfs_attr_i64(f, "/", "epoch");
            if (e != epoch)
                amlfs_fail(AMLFS_EXIT_USAGE, argv[i], "/@epoch: %lld, expected %lld", e, epoch);
        }
        printf("%s: %s, valid\n", argv[i], kind);
        H5Aiterate2(f, H5_INDEX_NAME, H5_ITER_INC, NULL, root_attr, NULL);
        H5Ovisit(f, H5_INDEX_NAME, H5_ITER_INC, dataset, NULL);
        H5Fclose(f);
    }
    return AMLFS_EXIT_OK;
}
