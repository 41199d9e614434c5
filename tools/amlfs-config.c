/* amlfs-config: the resolved config of a search (DESIGN.md 2, configuration): config
 * files and --set resolved against the one key table (tools/lib/config.c), printed as
 * RUN/config's key = value lines. amlfs-run, amlfs-step and slurm/amlfs-submit read
 * every config through it. */
#include "config.h"
#include "tool.h"

#include <stdio.h>
#include <string.h>

static const char usage[] =
    "usage: amlfs-config [--config FILE ...] [--set key=value ...] [--slurm] [--get KEY]\n"
    "       amlfs-config --keys [all|search|slurm]\n"
    "       amlfs-config --table [all|slurm]\n"
    "\n"
    "Resolves a config: the keys of the files and of --set (in the order given, a later\n"
    "one over an earlier one), every other key's default (those marked @ from the\n"
    "dataset, the cores and jobs, the threads or the device), each value checked against\n"
    "its kind and range, then what only makes sense together (replay takes its source\n"
    "run's intervals, space and form, and samples = 1; B >= 2 outside fixed mode; an\n"
    "even B for antithetic sampling; cifar10 needs src or data; one GPU per job), the\n"
    "paths data and replay_run made absolute. Prints every key as `key = value`, in\n"
    "RUN/config's order, or one value with --get. An empty value stands for the default.\n"
    "\n"
    "  --config FILE    key = value lines, # comments (repeatable)\n"
    "  --set key=value  one key (repeatable)\n"
    "  --slurm          resolve as slurm/amlfs-submit does: threads default to\n"
    "                   cpus_per_task, else 4\n"
    "  --get KEY        print KEY's resolved value alone\n"
    "  --keys [WHICH]   the key names, one a line: all (default), search (amlfs-run's\n"
    "                   own) or slurm (amlfs-submit's)\n"
    "  --table [WHICH]  the keys with range, default and meaning, as the drivers'\n"
    "                   --help-config print them: all (default) or slurm\n"
    "  --help, --version\n"
    "\n"
    "Exit status: 0 printed, 2 bad usage, an unknown key, a malformed line or a value\n"
    "outside its kind and range (one line naming FILE:LINE or --set, the key and what\n"
    "was expected).\n";

/* The word after --keys or --table (one of allowed), or "all" when none follows. */
static const char *which_of(int argc, char **argv, int *i, const char *const *allowed)
{
    if (*i + 1 >= argc || argv[*i + 1][0] == '-')
        return "all";
    const char *w = argv[++*i];
    amlfs_arg_choice(argv[*i - 1], w, allowed);
    return w;
}

static void print_keys(const char *which)
{
    for (int i = 0; i < amlfs_config_nkeys; i++) {
        int slurm = amlfs_config_is_slurm(i);
        if (!strcmp(which, "all") || (!strcmp(which, "slurm") == !!slurm))
            printf("%s\n", amlfs_config_keys[i].key);
    }
}

static void print_table(const char *which)
{
    for (int i = 0; i < amlfs_config_nkeys; i++) {
        const amlfs_config_key *k = &amlfs_config_keys[i];
        const char *range = *k->range ? k->range : "-";
        const char *fallback = *k->fallback ? k->fallback : "(none)";
        if (!strcmp(which, "all"))
            printf("  %-13s %-20s default %-14s %s\n", k->key, range, fallback, k->meaning);
        else if (amlfs_config_is_slurm(i))
            printf("  %-13s %-10s default %-8s %s\n", k->key, range, fallback, k->meaning + 7);
    }
}

int main(int argc, char **argv)
{
    amlfs_tool_start("amlfs-config");
    amlfs_help_version(argc, argv, usage);
    static const char *const key_sets[] = {"all", "search", "slurm", NULL};
    static const char *const table_sets[] = {"all", "slurm", NULL};
    amlfs_config c;
    amlfs_config_init(&c);
    const char *get = NULL, *keys = NULL, *table = NULL;
    int slurm = 0;
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i];
        int more = i + 1 < argc;
        if (!strcmp(a, "--config") && more)
            amlfs_config_load(&c, argv[++i]);
        else if (!strcmp(a, "--set") && more)
            amlfs_config_set(&c, argv[++i]);
        else if (!strcmp(a, "--get") && more)
            get = argv[++i];
        else if (!strcmp(a, "--slurm"))
            slurm = 1;
        else if (!strcmp(a, "--keys"))
            keys = which_of(argc, argv, &i, key_sets);
        else if (!strcmp(a, "--table"))
            table = which_of(argc, argv, &i, table_sets);
        else
            amlfs_fail(AMLFS_EXIT_USAGE, NULL, "unknown or incomplete option '%s' (see --help)", a);
    }
    if (keys || table) {
        if (keys)
            print_keys(keys);
        if (table)
            print_table(table);
        amlfs_config_free(&c);
        return AMLFS_EXIT_OK;
    }
    if (get && amlfs_config_key_index(get) < 0)
        amlfs_fail(AMLFS_EXIT_USAGE, "--get", "%s: unknown key (amlfs-run --help-config)", get);
    amlfs_config_resolve(&c, slurm);
    if (get) {
        printf("%s\n", amlfs_config_get(&c, get));
    } else {
        for (int i = 0; i < amlfs_config_nkeys; i++)
            printf("%s = %s\n", amlfs_config_keys[i].key, amlfs_config_get(&c, amlfs_config_keys[i].key));
    }
    amlfs_config_free(&c);
    if (fflush(stdout) != 0 || ferror(stdout))
        amlfs_fail(AMLFS_EXIT_FAILED, NULL, "cannot write to stdout");
    return AMLFS_EXIT_OK;
}
