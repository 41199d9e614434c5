/* prep_face.h: `amlfs-prep face`, a face dataset file (schema dataset, task face) from a
 * training folder in the CASIA-WebFace layout, held-out identities for validation pairs,
 * an LFW-style test set from pairs.txt and optional identification groups (issue 16;
 * the file's layout: /work/notes/face-contract.md 1, schemas/dataset.schema).
 * Depends on: image, h5io, tool, the kernels' Philox (amlfs_rng.h). */
#ifndef AMLFS_PREP_FACE_H
#define AMLFS_PREP_FACE_H

/* The Philox stream of the held-out identities and the validation pairs (a number no
 * other use takes; kernels/amlfs_rng.h lists the others). */
#define AMLFS_STREAM_FACE_PAIRS 7

/* amlfs-prep face ARGS: argv[0] is "face". Returns the exit status (errors exit). */
int amlfs_prep_face(int argc, char **argv);

#endif
