/* schema.c: parse the compiled-in schema texts and check files against them.
 * Depends on: h5get (reading the file checked), tool, and the texts that
 * embed-schemas.sh compiles in (build/.../gen/schemas.c). */
#include "schema.h"
#include "h5get.h"
#include "tool.h"

#include <ctype.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* Generated from schemas/NAME.schema by the Makefile (tools/lib/embed-schemas.sh). */
extern const char *const amlfs_schema_text[];
extern const char *const amlfs_schema_file[];

static amlfs_schema *parsed;
static int n_parsed;
static const char *kind_names[32];

static amlfs_schema_type parse_type(const char *t, char *choices, size_t n, const char *file,
                                    int line)
{
    choices[0] = 0;
    if (!strcmp(t, "-"))
        return SCHEMA_T_NONE;
    if (!strcmp(t, "uint8"))
        return SCHEMA_T_UINT8;
    if (!strcmp(t, "int32"))
        return SCHEMA_T_INT32;
    if (!strcmp(t, "int64"))
        return SCHEMA_T_INT64;
    if (!strcmp(t, "float32"))
        return SCHEMA_T_FLOAT32;
    if (!strcmp(t, "float64"))
        return SCHEMA_T_FLOAT64;
    if (!strcmp(t, "string"))
        return SCHEMA_T_STRING;
    if (!strncmp(t, "string{", 7) && t[strlen(t) - 1] == '}') {
        snprintf(choices, n, "%.*s", (int)(strlen(t) - 8), t + 7);
        return SCHEMA_T_STRING;
    }
    amlfs_fail(AMLFS_EXIT_FAILED, file, "line %d: unknown type '%s'", line, t);
}

static void parse_shape(amlfs_schema_entry *e, const char *s, const char *file, int line)
{
    if (!strcmp(s, "-") || !strcmp(s, "any")) {
        e->shape = -1;
        return;
    }
    if (!strcmp(s, "scalar")) {
        e->shape = 0;
        return;
    }
    size_t len = strlen(s);
    if (s[0] != '(' || s[len - 1] != ')')
        amlfs_fail(AMLFS_EXIT_FAILED, file, "line %d: bad shape '%s'", line, s);
    char buf[256];
    snprintf(buf, sizeof buf, "%.*s", (int)(len - 2), s + 1);
    e->shape = 0;
    for (char *tok = strtok(buf, ","); tok; tok = strtok(NULL, ",")) {
        if (e->shape == SCHEMA_MAX_DIMS)
            amlfs_fail(AMLFS_EXIT_FAILED, file, "line %d: too many dimensions", line);
        snprintf(e->dims[e->shape++], sizeof e->dims[0], "%s", tok);
    }
}

static void parse_one(amlfs_schema *s, const char *text, const char *file)
{
    memset(s, 0, sizeof *s);
    int line = 0;
    const char *p = text;
    while (*p) {
        const char *end = strchr(p, '\n');
        size_t len = end ? (size_t)(end - p) : strlen(p);
        char buf[1024];
        snprintf(buf, sizeof buf, "%.*s", (int)(len < sizeof buf ? len : sizeof buf - 1), p);
        p += len + (end ? 1 : 0);
        line++;
        char *hash = strchr(buf, '#');
        if (hash)
            *hash = 0;
        char f[5][256];
        int off = 0, nf = 0, used;
        while (nf < 5 && sscanf(buf + off, " %255s%n", f[nf], &used) == 1) {
            off += used;
            nf++;
        }
        if (nf == 0)
            continue;
        if (!strcmp(f[0], "schema")) {
            if (nf < 3)
                amlfs_fail(AMLFS_EXIT_FAILED, file, "line %d: schema KIND VERSION", line);
            snprintf(s->kind, sizeof s->kind, "%s", f[1]);
            s->version = strtol(f[2], NULL, 10);
            continue;
        }
        if (nf < 5 || s->n == SCHEMA_MAX_ENTRIES)
            amlfs_fail(AMLFS_EXIT_FAILED, file, "line %d: too few fields or too many lines",
                       line);
        amlfs_schema_entry *e = &s->e[s->n++];
        if (!strcmp(f[0], "group"))
            e->kind = SCHEMA_GROUP;
        else if (!strcmp(f[0], "dataset"))
            e->kind = SCHEMA_DATASET;
        else if (!strcmp(f[0], "attr"))
            e->kind = SCHEMA_ATTR;
        else
            amlfs_fail(AMLFS_EXIT_FAILED, file, "line %d: unknown kind '%s'", line, f[0]);
        if (e->kind == SCHEMA_ATTR) {
            char *at = strchr(f[1], '@');
            if (!at)
                amlfs_fail(AMLFS_EXIT_FAILED, file, "line %d: attribute path needs @", line);
            *at = 0;
            snprintf(e->path, sizeof e->path, "%s", f[1]);
            snprintf(e->attr, sizeof e->attr, "%s", at + 1);
        } else {
            snprintf(e->path, sizeof e->path, "%s", f[1]);
            size_t pl = strlen(e->path);
            e->wildcard = pl >= 2 && !strcmp(e->path + pl - 2, "/*");
        }
        e->type = parse_type(f[2], e->choices, sizeof e->choices, file, line);
        parse_shape(e, f[3], file, line);
        if (strcmp(f[4], "required") && strcmp(f[4], "optional"))
            amlfs_fail(AMLFS_EXIT_FAILED, file, "line %d: tier must be required or optional",
                       line);
        e->required = !strcmp(f[4], "required");
        while (buf[off] == ' ' || buf[off] == '\t')
            off++;
        snprintf(e->meaning, sizeof e->meaning, "%s", buf + off);
        size_t ml = strlen(e->meaning);
        while (ml && isspace((unsigned char)e->meaning[ml - 1]))
            e->meaning[--ml] = 0;
    }
}

static void load_all(void)
{
    if (parsed)
        return;
    for (n_parsed = 0; amlfs_schema_text[n_parsed]; n_parsed++)
        ;
    parsed = calloc((size_t)n_parsed, sizeof *parsed);
    if (!parsed)
        amlfs_fail(AMLFS_EXIT_FAILED, NULL, "out of memory");
    int kinds = 0;
    for (int i = 0; i < n_parsed; i++) {
        parse_one(&parsed[i], amlfs_schema_text[i], amlfs_schema_file[i]);
        int seen = 0;
        for (int k = 0; k < kinds; k++)
            seen |= !strcmp(kind_names[k], parsed[i].kind);
        if (!seen && kinds < 31)
            kind_names[kinds++] = parsed[i].kind;
    }
}

static void free_all(void)
{
    free(parsed);
    parsed = NULL;
}

const amlfs_schema *amlfs_schema_find_version(const char *kind, long version)
{
    if (!parsed) {
        load_all();
        atexit(free_all);
    }
    const amlfs_schema *best = NULL;
    for (int i = 0; i < n_parsed; i++)
        if (!strcmp(parsed[i].kind, kind) &&
            (version > 0 ? parsed[i].version == version
                         : !best || parsed[i].version > best->version))
            best = &parsed[i];
    return best;
}

const amlfs_schema *amlfs_schema_find(const char *kind)
{
    return amlfs_schema_find_version(kind, 0);
}

const char *const *amlfs_schema_kinds(void)
{
    amlfs_schema_find("");
    return kind_names;
}

/* ---- validation ------------------------------------------------------------------- */

struct binding {
    char name[32];
    long long value;
};

struct ctx {
    hid_t f;
    const amlfs_schema *s;
    struct binding bound[16];
    int n_bound;
    char *why;
    size_t n;
};

static const char *type_name(amlfs_schema_type t)
{
    static const char *names[] = {"group", "uint8", "int32", "int64",
                                  "float32", "float64", "string"};
    return names[t];
}

/* What an HDF5 type is, in schema words ("float32", "string", "int16", ...). */
static void describe_type(hid_t t, char *buf, size_t n)
{
    H5T_class_t c = H5Tget_class(t);
    size_t size = H5Tget_size(t);
    if (c == H5T_INTEGER)
        snprintf(buf, n, "%sint%zu", H5Tget_sign(t) == H5T_SGN_NONE ? "u" : "", size * 8);
    else if (c == H5T_FLOAT)
        snprintf(buf, n, "float%zu", size * 8);
    else if (c == H5T_STRING)
        snprintf(buf, n, "string");
    else
        snprintf(buf, n, "HDF5 type class %d", (int)c);
}

static int type_matches(hid_t t, amlfs_schema_type want)
{
    H5T_class_t c = H5Tget_class(t);
    size_t size = H5Tget_size(t);
    H5T_order_t order = H5Tget_order(t);
    int le = order == H5T_ORDER_LE || order == H5T_ORDER_NONE;
    switch (want) {
    case SCHEMA_T_UINT8:
        return c == H5T_INTEGER && size == 1 && H5Tget_sign(t) == H5T_SGN_NONE;
    case SCHEMA_T_INT32:
        return c == H5T_INTEGER && size == 4 && H5Tget_sign(t) == H5T_SGN_2 && le;
    case SCHEMA_T_INT64:
        return c == H5T_INTEGER && size == 8 && H5Tget_sign(t) == H5T_SGN_2 && le;
    case SCHEMA_T_FLOAT32:
        return c == H5T_FLOAT && size == 4 && le;
    case SCHEMA_T_FLOAT64:
        return c == H5T_FLOAT && size == 8 && le;
    case SCHEMA_T_STRING:
        return c == H5T_STRING;
    default:
        return 0;
    }
}

static void where(const amlfs_schema_entry *e, char *buf, size_t n)
{
    if (e->kind == SCHEMA_ATTR)
        snprintf(buf, n, "%s@%s", e->path, e->attr);
    else
        snprintf(buf, n, "%s", e->path);
}

#define VIOLATION(c, ...) (snprintf((c)->why, (c)->n, __VA_ARGS__), -1)

/* The value a dimension token stands for; binds upper-case names on first use.
 * Returns 0 and *want, or 1 when it binds now (value taken from got). */
static int resolve_dim(struct ctx *c, const char *tok, long long got, long long *want,
                       int *bad_ref)
{
    *bad_ref = 0;
    char *end;
    long long lit = strtoll(tok, &end, 10);
    if (end != tok && *end == 0) {
        *want = lit;
        return 0;
    }
    long long factor = 1;
    const char *name = tok;
    const char *star = strchr(tok, '*');
    if (star) {
        factor = strtoll(tok, NULL, 10);
        name = star + 1;
    }
    if (islower((unsigned char)name[0])) {
        if (H5Aexists_by_name(c->f, "/", name, H5P_DEFAULT) <= 0) {
            *bad_ref = 1;
            return 0;
        }
        long long v = 0;
        hid_t a = H5Aopen_by_name(c->f, "/", name, H5P_DEFAULT, H5P_DEFAULT);
        if (a < 0 || H5Aread(a, H5T_NATIVE_LLONG, &v) < 0)
            *bad_ref = 1;
        if (a >= 0)
            H5Aclose(a);
        *want = factor * v;
        return 0;
    }
    for (int i = 0; i < c->n_bound; i++)
        if (!strcmp(c->bound[i].name, name)) {
            *want = factor * c->bound[i].value;
            return 0;
        }
    if (c->n_bound < 16) {
        snprintf(c->bound[c->n_bound].name, sizeof c->bound[0].name, "%s", name);
        c->bound[c->n_bound++].value = got / factor;
    }
    *want = got;
    return 1;
}

static int check_shape(struct ctx *c, const amlfs_schema_entry *e, hid_t space)
{
    if (e->shape < 0)
        return 0;
    char at[256];
    where(e, at, sizeof at);
    int rank = H5Sget_simple_extent_ndims(space);
    H5S_class_t cls = H5Sget_simple_extent_type(space);
    if (e->shape == 0) {
        if (cls != H5S_SCALAR)
            return VIOLATION(c, "%s: expected a scalar, found rank %d", at, rank);
        return 0;
    }
    if (rank != e->shape)
        return VIOLATION(c, "%s: expected rank %d, found rank %d", at, e->shape,
                         rank < 0 ? 0 : rank);
    hsize_t dims[SCHEMA_MAX_DIMS];
    H5Sget_simple_extent_dims(space, dims, NULL);
    for (int i = 0; i < rank; i++) {
        long long want;
        int bad_ref;
        resolve_dim(c, e->dims[i], (long long)dims[i], &want, &bad_ref);
        if (bad_ref)
            return VIOLATION(c, "%s: dimension %d is %s, but that attribute is missing", at,
                             i, e->dims[i]);
        if ((long long)dims[i] != want)
            return VIOLATION(c, "%s: dimension %d expected %s = %lld, found %llu", at, i,
                             e->dims[i], want, (unsigned long long)dims[i]);
    }
    return 0;
}

static int check_choice(struct ctx *c, const amlfs_schema_entry *e, hid_t a, hid_t t)
{
    if (!e->choices[0])
        return 0;
    char val[256] = "", at[256];
    where(e, at, sizeof at);
    hid_t mt = H5Tcopy(H5T_C_S1);
    H5Tset_cset(mt, H5Tget_cset(t)); /* HDF5 converts no character set to another */
    int ok;
    if (H5Tis_variable_str(t) > 0) {
        char *s = NULL;
        H5Tset_size(mt, H5T_VARIABLE);
        ok = H5Aread(a, mt, &s) >= 0;
        snprintf(val, sizeof val, "%s", s ? s : "");
        if (s)
            H5free_memory(s);
    } else {
        size_t size = H5Tget_size(t);
        H5Tset_size(mt, sizeof val);
        H5Tset_strpad(mt, H5T_STR_NULLTERM);
        ok = size < sizeof val && H5Aread(a, mt, val) >= 0;
    }
    H5Tclose(mt);
    if (!ok)
        return VIOLATION(c, "%s: cannot read the string", at);
    char list[256];
    snprintf(list, sizeof list, "%s", e->choices);
    for (char *tok = strtok(list, ","); tok; tok = strtok(NULL, ","))
        if (!strcmp(tok, val))
            return 0;
    return VIOLATION(c, "%s: expected one of {%s}, found '%s'", at, e->choices, val);
}

static int check_attr(struct ctx *c, const amlfs_schema_entry *e)
{
    char at[256];
    where(e, at, sizeof at);
    if (!amlfs_h5_exists(c->f, e->path) ||
        H5Aexists_by_name(c->f, e->path, e->attr, H5P_DEFAULT) <= 0)
        return e->required
                   ? VIOLATION(c, "%s: required attribute missing (%s %s)", at,
                               type_name(e->type), e->meaning)
                   : 0;
    hid_t a = H5Aopen_by_name(c->f, e->path, e->attr, H5P_DEFAULT, H5P_DEFAULT);
    if (a < 0)
        return VIOLATION(c, "%s: cannot open attribute", at);
    hid_t t = H5Aget_type(a), space = H5Aget_space(a);
    int r = 0;
    if (!type_matches(t, e->type)) {
        char found[64];
        describe_type(t, found, sizeof found);
        r = VIOLATION(c, "%s: expected %s, found %s", at, type_name(e->type), found);
    }
    if (!r)
        r = check_shape(c, e, space);
    if (!r && e->type == SCHEMA_T_STRING)
        r = check_choice(c, e, a, t);
    H5Sclose(space);
    H5Tclose(t);
    H5Aclose(a);
    return r;
}

static int check_object(struct ctx *c, const amlfs_schema_entry *e, const char *path)
{
    H5O_info_t info;
    if (H5Oget_info_by_name(c->f, path, &info, H5P_DEFAULT) < 0)
        return VIOLATION(c, "%s: cannot read object", path);
    if (e->kind == SCHEMA_GROUP) {
        if (info.type != H5O_TYPE_GROUP)
            return VIOLATION(c, "%s: expected a group, found another object", path);
        return 0;
    }
    if (info.type != H5O_TYPE_DATASET)
        return VIOLATION(c, "%s: expected a dataset, found a group", path);
    hid_t ds = H5Dopen2(c->f, path, H5P_DEFAULT);
    if (ds < 0)
        return VIOLATION(c, "%s: cannot open dataset", path);
    hid_t t = H5Dget_type(ds), space = H5Dget_space(ds);
    int r = 0;
    if (!type_matches(t, e->type)) {
        char found[64];
        describe_type(t, found, sizeof found);
        r = VIOLATION(c, "%s: expected %s, found %s", path, type_name(e->type), found);
    }
    if (!r)
        r = check_shape(c, e, space);
    H5Sclose(space);
    H5Tclose(t);
    H5Dclose(ds);
    return r;
}

struct member_walk {
    struct ctx *c;
    const amlfs_schema_entry *e;
    char group[128];
    int count, result;
};

static herr_t walk_member(hid_t g, const char *name, const H5L_info_t *li, void *data)
{
    (void)g;
    (void)li;
    struct member_walk *w = data;
    char path[512];
    snprintf(path, sizeof path, "%s/%s", w->group, name);
    w->count++;
    w->result = check_object(w->c, w->e, path);
    return w->result ? 1 : 0;
}

static int check_entry(struct ctx *c, const amlfs_schema_entry *e)
{
    if (e->kind == SCHEMA_ATTR)
        return check_attr(c, e);
    if (e->wildcard) {
        struct member_walk w = {c, e, "", 0, 0};
        snprintf(w.group, sizeof w.group, "%.*s", (int)strlen(e->path) - 2, e->path);
        if (!amlfs_h5_exists(c->f, w.group))
            return 0; /* the group's own entry says whether it is required */
        H5Literate_by_name(c->f, w.group, H5_INDEX_NAME, H5_ITER_INC, NULL, walk_member, &w,
                           H5P_DEFAULT);
        if (w.result)
            return w.result;
        if (e->required && w.count == 0)
            return VIOLATION(c, "%s: expected at least one %s dataset, found none", e->path,
                             type_name(e->type));
        return 0;
    }
    if (!amlfs_h5_exists(c->f, e->path))
        return e->required ? VIOLATION(c, "%s: required %s missing (%s)", e->path,
                                       e->kind == SCHEMA_GROUP ? "group" : "dataset",
                                       e->meaning)
                           : 0;
    return check_object(c, e, e->path);
}

/* ---- objects and attributes the schema does not list ------------------------------ */

static int listed(const amlfs_schema *s, const char *path, const char *attr)
{
    for (int i = 0; i < s->n; i++) {
        const amlfs_schema_entry *e = &s->e[i];
        if (attr) {
            if (e->kind == SCHEMA_ATTR && !strcmp(e->path, path) && !strcmp(e->attr, attr))
                return 1;
            continue;
        }
        if (e->kind == SCHEMA_ATTR)
            continue;
        if (!strcmp(e->path, path))
            return 1;
        if (e->wildcard) {
            size_t gl = strlen(e->path) - 1; /* "/params/" */
            if (!strncmp(e->path, path, gl) && !strchr(path + gl, '/'))
                return 1;
        }
    }
    return 0;
}

struct unknown_walk {
    struct ctx *c;
    const char *obj;
    int result;
};

static herr_t walk_attr(hid_t loc, const char *name, const H5A_info_t *ai, void *data)
{
    (void)loc;
    (void)ai;
    struct unknown_walk *w = data;
    if (!listed(w->c->s, w->obj, name)) {
        w->result = VIOLATION(w->c, "%s@%s: attribute not in the %s schema", w->obj, name,
                              w->c->s->kind);
        return 1;
    }
    return 0;
}

static int check_attrs_of(struct ctx *c, const char *obj)
{
    struct unknown_walk w = {c, obj, 0};
    hid_t o = H5Oopen(c->f, obj, H5P_DEFAULT);
    if (o < 0)
        return VIOLATION(c, "%s: cannot open object", obj);
    H5Aiterate2(o, H5_INDEX_NAME, H5_ITER_INC, NULL, walk_attr, &w);
    H5Oclose(o);
    return w.result;
}

static herr_t walk_link(hid_t loc, const char *name, const H5L_info_t *info, void *data)
{
    (void)loc;
    struct unknown_walk *w = data;
    char path[512];
    snprintf(path, sizeof path, "/%s", name);
    if (info->type != H5L_TYPE_HARD) {
        w->result = VIOLATION(w->c, "%s: a %s link; amlfs files hold objects only", path,
                              info->type == H5L_TYPE_SOFT ? "soft" : "external");
        return 1;
    }
    if (!listed(w->c->s, path, NULL)) {
        w->result = VIOLATION(w->c, "%s: object not in the %s schema", path, w->c->s->kind);
        return 1;
    }
    w->result = check_attrs_of(w->c, path);
    return w->result ? 1 : 0;
}

int amlfs_schema_validate(hid_t f, const char *kind, char *why, size_t n)
{
    char found[64] = "";
    if (H5Aexists_by_name(f, "/", "schema", H5P_DEFAULT) <= 0)
        return snprintf(why, n, "not an amlfs file (no root attribute 'schema')"), -1;
    hid_t a = H5Aopen_by_name(f, "/", "schema", H5P_DEFAULT, H5P_DEFAULT);
    hid_t t = H5Aget_type(a);
    int is_str = H5Tget_class(t) == H5T_STRING;
    H5Tclose(t);
    H5Aclose(a);
    if (!is_str)
        return snprintf(why, n, "/@schema: expected string, found another type"), -1;
    amlfs_attr_str(f, "/", "schema", found, sizeof found);
    if (kind && strcmp(found, kind))
        return snprintf(why, n, "is a '%s' file, expected '%s'", found, kind), -1;
    const amlfs_schema *s = amlfs_schema_find(found);
    if (!s) {
        char kinds[256] = "";
        for (const char *const *k = amlfs_schema_kinds(); *k; k++)
            snprintf(kinds + strlen(kinds), sizeof kinds - strlen(kinds), "%s%s",
                     kinds[0] ? ", " : "", *k);
        return snprintf(why, n, "/@schema: unknown file kind '%s' (expected one of %s)", found,
                        kinds), -1;
    }
    struct ctx c = {.f = f, .s = s, .why = why, .n = n};
    /* the version first: a newer file would fail below with a misleading message; an
     * earlier version that the tools still read (schemas/old/) is checked against its
     * own schema */
    if (H5Aexists_by_name(f, "/", "schema_version", H5P_DEFAULT) > 0) {
        hid_t va = H5Aopen_by_name(f, "/", "schema_version", H5P_DEFAULT, H5P_DEFAULT);
        long long v = -1;
        hid_t vt = H5Aget_type(va);
        if (H5Tget_class(vt) == H5T_INTEGER)
            H5Aread(va, H5T_NATIVE_LLONG, &v);
        H5Tclose(vt);
        H5Aclose(va);
        const amlfs_schema *old = v > 0 ? amlfs_schema_find_version(found, (long)v) : NULL;
        if (!old) {
            char versions[64] = "";
            for (long k = 1; k <= s->version; k++)
                if (amlfs_schema_find_version(found, k))
                    snprintf(versions + strlen(versions), sizeof versions - strlen(versions),
                             "%s%ld", versions[0] ? " or " : "", k);
            return VIOLATION(&c, "/@schema_version: expected %s, found %lld", versions, v);
        }
        c.s = s = old;
    }
    /* root attributes before the rest: shapes refer to them */
    for (int pass = 0; pass < 2; pass++)
        for (int i = 0; i < s->n; i++) {
            const amlfs_schema_entry *e = &s->e[i];
            int root_attr = e->kind == SCHEMA_ATTR && !strcmp(e->path, "/");
            if ((pass == 0) != root_attr)
                continue;
            if (check_entry(&c, e))
                return -1;
        }
    if (check_attrs_of(&c, "/"))
        return -1;
    /* every link, not every object: a second name for an object, or a soft or external
     * link, is content the schema does not describe */
    struct unknown_walk w = {&c, NULL, 0};
    H5Lvisit(f, H5_INDEX_NAME, H5_ITER_INC, walk_link, &w);
    if (w.result)
        return -1;
    /* a present optional attribute may require a companion (cosines needs its scale) */
    if (!strcmp(s->kind, "loss-input")) {
        int lg = amlfs_h5_exists(f, "/logits"), cs = amlfs_h5_exists(f, "/cosines");
        if (lg == cs)
            return VIOLATION(&c, "expected exactly one of /logits and /cosines, found %s",
                             lg ? "both" : "neither");
        if (cs && H5Aexists_by_name(f, "/cosines", "scale", H5P_DEFAULT) <= 0)
            return VIOLATION(&c, "/cosines@scale: required with /cosines, missing");
    }
    /* a dataset file's optional face objects come in companions (dataset.schema) */
    if (!strcmp(s->kind, "dataset")) {
        static const char *const pairs[][2] = {
            {"/val/pairs", "/val/issame"},       {"/test/pairs", "/test/issame"},
            {"/probe", "/probe/images"},         {"/probe", "/probe/labels"},
            {"/distractors", "/distractors/images"}, {"/distractors", "/distractors/labels"}};
        for (size_t i = 0; i < sizeof pairs / sizeof pairs[0]; i++) {
            int a = amlfs_h5_exists(f, pairs[i][0]), b = amlfs_h5_exists(f, pairs[i][1]);
            if (a && !b)
                return VIOLATION(&c, "%s: required with %s, missing", pairs[i][1], pairs[i][0]);
            if (b && !a && i < 2)
                return VIOLATION(&c, "%s: required with %s, missing", pairs[i][0], pairs[i][1]);
        }
        /* re-ID: the six columns together, exactly when /@task is reid */
        static const char *const reid[] = {"/train/camids", "/train/pids", "/val/camids",
                                           "/val/query",    "/test/camids", "/test/query"};
        char task[32] = "";
        if (H5Aexists_by_name(f, "/", "task", H5P_DEFAULT) > 0)
            amlfs_attr_str(f, "/", "task", task, sizeof task);
        int is_reid = !strcmp(task, "reid");
        for (size_t i = 0; i < sizeof reid / sizeof reid[0]; i++) {
            int a = amlfs_h5_exists(f, reid[i]);
            if (is_reid && !a)
                return VIOLATION(&c, "%s: required with /@task reid, missing", reid[i]);
            if (!is_reid && a)
                return VIOLATION(&c, "%s: only in a re-ID data set (/@task reid), found "
                                 "with /@task %s", reid[i], task[0] ? task : "absent");
        }
    }
    return 0;
}
