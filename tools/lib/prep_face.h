/* prep_face.h: `amlfs-prep face`, a face dataset file (schema dataset, task face) from a
 * training folder in the CASIA-WebFace layout, held-out identities for validation pairs,
 * an LFW-style test set from pairs.txt and optional identification groups (the file's
 * layout: schemas/dataset.schema).
 * Depends on: image, h5io, tool, the kernels' Philox (amlfs_rng.h). */
#ifndef AMLFS_PREP_FACE_H
#define AMLFS_PREP_FACE_H

/* amlfs-prep face ARGS: argv[0] is "face". Returns the exit status (errors exit). */
int amlfs_prep_face(int argc, char **argv);

#endif
