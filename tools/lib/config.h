/* config.h: the config keys of amlfs-run and slurm/amlfs-submit, and the one reader and
 * resolver of `key = value` files (DESIGN.md 2, configuration). The key table (kinds,
 * ranges, choices, defaults, the dataset's defaults, meanings) lives in config.c alone;
 * the drivers reach it through amlfs-config, amlfs-report through these functions.
 *
 * A config file: `key = value` lines, `#` starts a comment, blank lines are skipped; a
 * key is [A-Za-z0-9_]+, the value is what follows `=`, blanks trimmed. A key given twice
 * keeps its last value. An empty value means the key's default. */
#ifndef AMLFS_CONFIG_H
#define AMLFS_CONFIG_H

#include <stddef.h>

typedef struct {
    const char *key;
    const char *kind;    /* int, int-or-all, float, choice, epoch-list, path, device, slurm-name,
                          * slurm-time, slurm-mem, slurm-gres, sbatch-args */
    const char *range;   /* int, float: "lo..hi"; choice: "a,b,c"; else "" */
    const char *fallback; /* the default; "@" computed: from the dataset, or from the
                           * cores and jobs (threads), threads (cpus_per_task), device (gres) */
    const char *meaning; /* the Slurm keys' start with "Slurm: " */
} amlfs_config_key;

extern const amlfs_config_key amlfs_config_keys[];
extern const int amlfs_config_nkeys;

/* The index of key in the table, -1 when it is no key. */
int amlfs_config_key_index(const char *key);
/* Whether key i is one of amlfs-submit's Slurm keys. */
int amlfs_config_is_slurm(int i);

/* ---- a file's lines, as written ---------------------------------------------------- */
typedef struct {
    char *key, *value;
    int line; /* from 1 */
} amlfs_config_entry;

typedef struct {
    amlfs_config_entry *entry; /* in file order, a repeated key once per line */
    int n;
    int skipped; /* lenient reads: lines not of the form key = value */
} amlfs_config_file;

/* Reads path. Strict (lenient = 0): a line not of the form key = value, or a key not in
 * the table, is exit 2 naming path:line. Lenient: such lines are counted in skipped and
 * left out, and any key is kept (amlfs-report shows a run's config as it is). A missing
 * or unreadable file is exit 2. */
void amlfs_config_file_read(amlfs_config_file *f, const char *path, int lenient);
/* The last value given for key, NULL when none. */
const char *amlfs_config_file_get(const amlfs_config_file *f, const char *key);
void amlfs_config_file_free(amlfs_config_file *f);

/* ---- the resolved config ------------------------------------------------------------ */
#define AMLFS_CONFIG_MAX_KEYS 96

typedef struct {
    char *given[AMLFS_CONFIG_MAX_KEYS]; /* by key index: the value the files or --set
                                         * gave, or NULL */
    char *where[AMLFS_CONFIG_MAX_KEYS]; /* where it was given ("FILE:N", "--set") */
    char *value[AMLFS_CONFIG_MAX_KEYS]; /* after amlfs_config_resolve: every key's */
} amlfs_config;

void amlfs_config_init(amlfs_config *c);
/* The keys of a config file (strict), over what was given before. */
void amlfs_config_load(amlfs_config *c, const char *path);
/* "key=value" (--set), over what was given before; exit 2 on a bad form or key. */
void amlfs_config_set(amlfs_config *c, const char *assignment);
/* Fills in every key: given values, else defaults (slurm: threads default to the given
 * cpus_per_task, else 4, as on a cluster the tasks' CPUs decide), checks each value
 * against its kind and range (exit 2 naming where it came from, the key and what was
 * expected), then what only makes sense together: replay's source run (its intervals,
 * space and form; samples = 1), B >= 2 outside fixed mode, antithetic's even B,
 * cifar10's source, one GPU per job; the paths data and replay_run made absolute. */
void amlfs_config_resolve(amlfs_config *c, int slurm);
/* A resolved key's value ("" when empty); NULL for a key not in the table. */
const char *amlfs_config_get(const amlfs_config *c, const char *key);
void amlfs_config_free(amlfs_config *c);

#endif
