/* share.h: where a tool's data files are (the report's templates): the folder that
 * `make install` fills as PREFIX/share/amlfs, or the source tree's share/ for the tools
 * of build/{rel,san,cuda}/bin (and the bin/ links to them). Depends on tool.h only. */
#ifndef AMLFS_SHARE_H
#define AMLFS_SHARE_H

#include <stddef.h>

/* The share folder into buf (size n): `given` when not NULL (an option), else the
 * environment's AMLFS_SHARE when set and not empty, else the first of BIN/../share/amlfs
 * and BIN/../../../share that holds `part` (a sub-folder, "report"), where BIN is the
 * folder of the running program with links resolved. Exit 2 naming where it looked when
 * none holds it. */
void amlfs_share_dir(char *buf, size_t n, const char *given, const char *part);

#endif
