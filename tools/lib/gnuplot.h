/* gnuplot.h: drawing a PNG with gnuplot (Debian: gnuplot-nox), atomically.
 * Depends on: atomic_out, tool. */
#ifndef AMLFS_GNUPLOT_H
#define AMLFS_GNUPLOT_H

/* Runs `gnuplot --default-settings -e "out='TMP'" SCRIPT` in dir, where TMP is a
 * temporary beside dir/png that the script draws into (its "out"), and commits dir/png.
 * Exit 1 when gnuplot is missing, fails or draws no PNG; a message gnuplot printed on
 * success becomes a note. */
void amlfs_gnuplot_draw(const char *dir, const char *script, const char *png);

#endif
