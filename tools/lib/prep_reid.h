/* prep_reid.h: `amlfs-prep market1501` and `amlfs-prep dukemtmc`, a re-ID dataset file
 * (schema dataset, task reid) from the released folder (bounding_box_train, query,
 * bounding_box_test): training identities relabelled, a validation query/gallery from
 * held-out training identities, the test query/gallery as released (the file's layout:
 * schemas/dataset.schema; the choices: the usage text in prep_reid.c).
 * Depends on: prep_images, h5io, data (shuffle), tool, the kernels' Philox. */
#ifndef AMLFS_PREP_REID_H
#define AMLFS_PREP_REID_H

/* amlfs-prep market1501|dukemtmc ARGS: argv[0] is the data set's name. Returns the exit
 * status (errors exit). */
int amlfs_prep_reid(int argc, char **argv);

#endif
