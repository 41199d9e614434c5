/* amlfs-synth: generated image folders for tests and demos. `face`: a face-like folder in
 * the CASIA-WebFace layout with an LFW-style test set and identification groups, the
 * input of amlfs-prep face; `market`: a person-like folder in Market-1501's layout, the
 * input of amlfs-prep market1501 (synth.h draws the images). */
#include "amlfs_rng.h"
#include "data.h"
#include "image.h"
#include "prep_images.h"
#include "synth.h"
#include "tool.h"

#include <dirent.h>
#include <errno.h>
#include <getopt.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

static const char usage[] =
    "usage: amlfs-synth face --out DIR [--identities K] [--images-per-identity N]\n"
    "                   [--heldout K2] [--probe-identities K3] [--distractors M]\n"
    "                   [--folds F] [--pairs-per-fold Q] [--size HxW] [--seed S]\n"
    "       amlfs-synth market --out DIR [--identities K] [--test-identities K2]\n"
    "                   [--cameras C] [--images-per-camera N] [--distractors M]\n"
    "                   [--junk J] [--size HxW] [--seed S]\n"
    "\n"
    "face: writes a face-like image folder (JPEG, quality 90):\n"
    "  DIR/train/<id>/<n>.jpg                 K identities of N images (CASIA layout:\n"
    "                                         ids %07d, images %03d from 001)\n"
    "  DIR/lfw/<name>/<name>_%04d.jpg         K2 other identities of N images\n"
    "  DIR/lfw/pairs.txt                      the header 'F Q', then per fold Q same\n"
    "                                         pairs and Q different ones (LFW's form)\n"
    "  DIR/probe/<id>/<n>.jpg                 K3 other identities of N images\n"
    "  DIR/distractors/<k>.jpg                M images, each of its own identity\n"
    "Each identity is a random smooth template (a face-like oval of a skin tone with\n"
    "eyes, mouth and coloured Gaussian blobs); each image applies its own jitter (shift,\n"
    "scale, brightness, background, noise): a small net can learn the identities, not\n"
    "trivially. Drawn from Philox streams of --seed: the same options give the same bytes.\n"
    "\n"
    "  --out DIR                the folder to write (created; must be empty or absent)\n"
    "  --identities K           training identities (default 20)\n"
    "  --images-per-identity N  images per identity, at least 2 (default 10)\n"
    "  --heldout K2             identities of the LFW-style test set, at least 2 (default 10)\n"
    "  --probe-identities K3    identities of the probe set (default 5; 0: none)\n"
    "  --distractors M          distractor images (default 100; 0: none)\n"
    "  --folds F                pairs.txt folds (default 10)\n"
    "  --pairs-per-fold Q       same (and as many different) pairs per fold (default 30)\n"
    "  --size HxW               112x96 (default); any 8..1024 each\n"
    "  --seed S                 0 to 4294967295 (default 1)\n"
    "\n"
    "market: writes a person-like folder in Market-1501's layout (JPEG, quality 90),\n"
    "file names PID_cCAMsSEQ_FRAME_IDX.jpg (PID %04d, or -1; FRAME the image's number\n"
    "in the folder's writing order, so names never repeat):\n"
    "  DIR/bounding_box_train/   K identities\n"
    "  DIR/query/                K2 other identities: one image of each camera where\n"
    "                            the identity has two or more\n"
    "  DIR/bounding_box_test/    the rest of the K2 identities' images, M distractors\n"
    "                            (pid 0, each its own person) and J junk images (pid -1,\n"
    "                            bad detections: a person zoomed and cut)\n"
    "The pids are 1..K+K2 in a random order (the training ones with gaps). Each identity\n"
    "is a random person-like template (head, hair, torso plain, striped or with blobs,\n"
    "arms, legs, shoes, maybe a bag) seen by a random 2..C of the cameras, 1..N images\n"
    "by each; each camera has its own colour look (gain and offset per channel,\n"
    "background colour); each image its own jitter (shift, scale, mirror, stride,\n"
    "colours, brightness, noise).\n"
    "  --identities K           training identities (default 32)\n"
    "  --test-identities K2     test identities (default 16)\n"
    "  --cameras C              2..9 (default 6)\n"
    "  --images-per-camera N    at most N (from 1) per identity and camera, 2..99\n"
    "                           (default 4)\n"
    "  --distractors M          pid 0 gallery images (default 20)\n"
    "  --junk J                 pid -1 gallery images (default 10)\n"
    "  --size HxW               256x128 (default), e.g. 64x32; any 8..1024 each\n"
    "  --seed S                 0 to 4294967295 (default 1)\n"
    "  --help, --version\n"
    "\n"
    "Exit status: 0 written, 1 a write failed, 2 bad usage.\n";

typedef struct {
    uint32_t seed;
    int h, w;
} synth_opts;

static void make_dir(const char *path)
{
    if (mkdir(path, 0777) != 0 && errno != EEXIST)
        amlfs_fail(AMLFS_EXIT_FAILED, path, "cannot create the folder: %s", strerror(errno));
}

/* out, new or empty (exit 2 otherwise), created. */
static void make_fresh_dir(const char *out)
{
    DIR *d = opendir(out);
    if (d) {
        struct dirent *e;
        int used = 0;
        while ((e = readdir(d)))
            used |= strcmp(e->d_name, ".") && strcmp(e->d_name, "..");
        closedir(d);
        if (used)
            amlfs_fail(AMLFS_EXIT_USAGE, out, "not empty: give a new or empty folder");
    }
    make_dir(out);
}

/* count images of identity `id` into dir (created), named by fmt (one %d: n from first). */
static void write_identity(const synth_opts *o, uint32_t id, int count, const char *dir,
                           const char *fmt, int first)
{
    make_dir(dir);
    amlfs_face_template t;
    amlfs_face_template_make(o->seed, id, &t);
    int failed = 0;
    char err[512] = "", bad[4096] = "";
#pragma omp parallel for schedule(dynamic)
    for (int n = 0; n < count; n++) {
        uint8_t *rgb = malloc((size_t)o->h * o->w * 3);
        char name[256], path[4096], e[512];
        snprintf(name, sizeof name, fmt, n + first);
        snprintf(path, sizeof path, "%s/%s", dir, name);
        int bad_write = !rgb;
        if (rgb) {
            amlfs_face_render(&t, o->seed, id, (uint32_t)n, o->h, o->w, rgb);
            bad_write = amlfs_image_write_jpeg(path, rgb, o->h, o->w, 90, e, sizeof e) != 0;
        } else {
            snprintf(e, sizeof e, "out of memory");
        }
        if (bad_write)
#pragma omp critical
        {
            if (!failed++) {
                snprintf(err, sizeof err, "%s", e);
                snprintf(bad, sizeof bad, "%s", path);
            }
        }
        free(rgb);
    }
    if (failed)
        amlfs_fail(AMLFS_EXIT_FAILED, bad, "%s", err);
}

static int synth_face(int argc, char **argv)
{
    static const struct option opts[] = {{"out", required_argument, 0, 'o'},
                                         {"identities", required_argument, 0, 'k'},
                                         {"images-per-identity", required_argument, 0, 'n'},
                                         {"heldout", required_argument, 0, 'H'},
                                         {"probe-identities", required_argument, 0, 'p'},
                                         {"distractors", required_argument, 0, 'd'},
                                         {"folds", required_argument, 0, 'f'},
                                         {"pairs-per-fold", required_argument, 0, 'q'},
                                         {"size", required_argument, 0, 'z'},
                                         {"seed", required_argument, 0, 'S'},
                                         {0, 0, 0, 0}};
    const char *out = NULL;
    int k = 20, per = 10, k2 = 10, k3 = 5, m = 100, folds = 10, q = 30, c;
    synth_opts o = {1, 112, 96};
    optind = 1;
    opterr = 0;
    while ((c = getopt_long(argc, argv, "", opts, NULL)) != -1) {
        switch (c) {
        case 'o': out = optarg; break;
        case 'k': k = (int)amlfs_arg_int("--identities", optarg, 1, 1 << 20); break;
        case 'n': per = (int)amlfs_arg_int("--images-per-identity", optarg, 2, 9999); break;
        case 'H': k2 = (int)amlfs_arg_int("--heldout", optarg, 2, 1 << 20); break;
        case 'p': k3 = (int)amlfs_arg_int("--probe-identities", optarg, 0, 1 << 20); break;
        case 'd': m = (int)amlfs_arg_int("--distractors", optarg, 0, 1 << 24); break;
        case 'f': folds = (int)amlfs_arg_int("--folds", optarg, 1, 1000); break;
        case 'q': q = (int)amlfs_arg_int("--pairs-per-fold", optarg, 1, 100000); break;
        case 'z': amlfs_prep_parse_size(optarg, "112x96", &o.h, &o.w); break;
        case 'S': o.seed = (uint32_t)amlfs_arg_int("--seed", optarg, 0, 0xffffffffLL); break;
        default:
            amlfs_fail(AMLFS_EXIT_USAGE, NULL, "unknown or incomplete option '%s' (see --help)",
                       argv[optind - 1]);
        }
    }
    if (optind != argc)
        amlfs_fail(AMLFS_EXIT_USAGE, NULL, "unexpected argument '%s'", argv[optind]);
    if (!out)
        amlfs_fail(AMLFS_EXIT_USAGE, NULL, "--out DIR is required");
    make_fresh_dir(out);
    char path[4096], sub[4096];
    /* identities: train 0..k-1, lfw k.., probe k+k2.., distractors k+k2+k3.. */
    snprintf(path, sizeof path, "%s/train", out);
    make_dir(path);
    for (int i = 0; i < k; i++) {
        snprintf(sub, sizeof sub, "%s/%07d", path, i);
        write_identity(&o, (uint32_t)i, per, sub, "%03d.jpg", 1);
    }
    snprintf(path, sizeof path, "%s/lfw", out);
    make_dir(path);
    for (int i = 0; i < k2; i++) {
        char fmt[64];
        snprintf(sub, sizeof sub, "%s/Synth_%04d", path, i);
        snprintf(fmt, sizeof fmt, "Synth_%04d_%%04d.jpg", i);
        write_identity(&o, (uint32_t)(k + i), per, sub, fmt, 1);
    }
    snprintf(sub, sizeof sub, "%s/pairs.txt", path);
    FILE *pf = fopen(sub, "w");
    if (!pf)
        amlfs_fail(AMLFS_EXIT_FAILED, sub, "cannot create: %s", strerror(errno));
    fprintf(pf, "%d\t%d\n", folds, q);
    amlfs_rng_name r = amlfs_rng(o.seed, 0, 0xffffffffu, AMLFS_STREAM_SYNTH);
    uint64_t u = 0;
    for (int f = 0; f < folds; f++) {
        for (int i = 0; i < q; i++, u += 4) {
            int a = (int)amlfs_rng_below(r, u, (uint32_t)k2);
            int n1 = (int)amlfs_rng_below(r, u + 1, (uint32_t)per);
            int n2 = (int)amlfs_rng_below(r, u + 2, (uint32_t)per - 1);
            n2 += n2 >= n1;
            fprintf(pf, "Synth_%04d\t%d\t%d\n", a, n1 + 1, n2 + 1);
        }
        for (int i = 0; i < q; i++, u += 4) {
            int a = (int)amlfs_rng_below(r, u, (uint32_t)k2);
            int b = (int)amlfs_rng_below(r, u + 1, (uint32_t)k2 - 1);
            b += b >= a;
            fprintf(pf, "Synth_%04d\t%d\tSynth_%04d\t%d\n", a,
                    (int)amlfs_rng_below(r, u + 2, (uint32_t)per) + 1, b,
                    (int)amlfs_rng_below(r, u + 3, (uint32_t)per) + 1);
        }
    }
    if (ferror(pf) | (fclose(pf) != 0))
        amlfs_fail(AMLFS_EXIT_FAILED, sub, "cannot write: %s", strerror(errno));
    if (k3 > 0) {
        snprintf(path, sizeof path, "%s/probe", out);
        make_dir(path);
        for (int i = 0; i < k3; i++) {
            snprintf(sub, sizeof sub, "%s/%04d", path, i);
            write_identity(&o, (uint32_t)(k + k2 + i), per, sub, "%03d.jpg", 1);
        }
    }
    if (m > 0) {
        snprintf(path, sizeof path, "%s/distractors", out);
        make_dir(path);
        int failed = 0;
        char bad[4096] = "", err[512] = "";
#pragma omp parallel for schedule(dynamic)
        for (int i = 0; i < m; i++) {
            amlfs_face_template t;
            uint32_t id = (uint32_t)(k + k2 + k3 + i);
            amlfs_face_template_make(o.seed, id, &t);
            uint8_t *rgb = malloc((size_t)o.h * o.w * 3);
            char p[4096], e[512] = "out of memory";
            snprintf(p, sizeof p, "%s/%06d.jpg", path, i);
            int b = !rgb;
            if (rgb) {
                amlfs_face_render(&t, o.seed, id, 0, o.h, o.w, rgb);
                b = amlfs_image_write_jpeg(p, rgb, o.h, o.w, 90, e, sizeof e) != 0;
            }
            if (b)
#pragma omp critical
            {
                if (!failed++) {
                    snprintf(bad, sizeof bad, "%s", p);
                    snprintf(err, sizeof err, "%s", e);
                }
            }
            free(rgb);
        }
        if (failed)
            amlfs_fail(AMLFS_EXIT_FAILED, bad, "%s", err);
    }
    printf("%s\n", out);
    amlfs_note("face: %d train identities, %d LFW-style identities (%d pairs), %d probe "
               "identities, %d images each, %d distractors, %dx%d", k, k2, 2 * folds * q, k3,
               per, m, o.h, o.w);
    return AMLFS_EXIT_OK;
}

/* One image of the market folder: who, through which camera, where. */
typedef struct {
    uint32_t id, n; /* template and image number (synth.h streams) */
    int cam, junk, sub; /* sub: the sub-folder's index */
    char name[64];
} market_image;

typedef struct {
    market_image *img;
    int count, frame, counts[3];
    amlfs_rng_cursor *r; /* the layout's draws, in order */
} market_layout;

/* Appends an image to sub-folder `sub` of the layout: a random sequence (1..6) and box
 * index (1..8), the next frame number, so no two names are equal. pid -1 is junk. */
static void add_image(market_layout *L, uint32_t id, uint32_t n, int cam, int junk, int sub,
                      int pid)
{
    market_image *x = &L->img[L->count++];
    x->id = id;
    x->n = n;
    x->cam = cam;
    x->junk = junk;
    x->sub = sub;
    int seq = 1 + (int)(amlfs_next_uniform(L->r) * 6) % 6;
    int idx = 1 + (int)(amlfs_next_uniform(L->r) * 8) % 8;
    if (pid < 0)
        snprintf(x->name, sizeof x->name, "-1_c%ds%d_%06d_%02d.jpg", cam + 1, seq, L->frame++,
                 idx);
    else
        snprintf(x->name, sizeof x->name, "%04d_c%ds%d_%06d_%02d.jpg", pid, cam + 1, seq,
                 L->frame++, idx);
    L->counts[sub]++;
}

static int synth_market(int argc, char **argv)
{
    static const struct option opts[] = {{"out", required_argument, 0, 'o'},
                                         {"identities", required_argument, 0, 'k'},
                                         {"test-identities", required_argument, 0, 't'},
                                         {"cameras", required_argument, 0, 'c'},
                                         {"images-per-camera", required_argument, 0, 'n'},
                                         {"distractors", required_argument, 0, 'd'},
                                         {"junk", required_argument, 0, 'j'},
                                         {"size", required_argument, 0, 'z'},
                                         {"seed", required_argument, 0, 'S'},
                                         {0, 0, 0, 0}};
    const char *out = NULL;
    int k = 32, k2 = 16, cams = 6, per = 4, m = 20, junk = 10, c;
    synth_opts o = {1, 256, 128};
    optind = 1;
    opterr = 0;
    while ((c = getopt_long(argc, argv, "", opts, NULL)) != -1) {
        switch (c) {
        case 'o': out = optarg; break;
        case 'k': k = (int)amlfs_arg_int("--identities", optarg, 1, 9999); break;
        case 't': k2 = (int)amlfs_arg_int("--test-identities", optarg, 1, 9999); break;
        case 'c': cams = (int)amlfs_arg_int("--cameras", optarg, 2, 9); break;
        case 'n': per = (int)amlfs_arg_int("--images-per-camera", optarg, 2, 99); break;
        case 'd': m = (int)amlfs_arg_int("--distractors", optarg, 0, 1 << 20); break;
        case 'j': junk = (int)amlfs_arg_int("--junk", optarg, 0, 1 << 20); break;
        case 'z': amlfs_prep_parse_size(optarg, "256x128", &o.h, &o.w); break;
        case 'S': o.seed = (uint32_t)amlfs_arg_int("--seed", optarg, 0, 0xffffffffLL); break;
        default:
            amlfs_fail(AMLFS_EXIT_USAGE, NULL, "unknown or incomplete option '%s' (see --help)",
                       argv[optind - 1]);
        }
    }
    if (optind != argc)
        amlfs_fail(AMLFS_EXIT_USAGE, NULL, "unexpected argument '%s'", argv[optind]);
    if (!out)
        amlfs_fail(AMLFS_EXIT_USAGE, NULL, "--out DIR is required");
    if (k + k2 > 9999)
        amlfs_fail(AMLFS_EXIT_USAGE, NULL, "--identities and --test-identities: %d in all, "
                   "at most 9999 (four-digit pids)", k + k2);
    static const char *const subs[3] = {"bounding_box_train", "query", "bounding_box_test"};
    make_fresh_dir(out);
    char dirs[3][4096];
    for (int s = 0; s < 3; s++) {
        snprintf(dirs[s], sizeof dirs[s], "%s/%s", out, subs[s]);
        make_dir(dirs[s]);
    }
    /* the folder's layout, drawn in order from one stream; the pixels in parallel below */
    amlfs_rng_cursor r = {amlfs_rng(o.seed, 0, 0xfffffffeu, AMLFS_STREAM_SYNTH), 0};
    int ids = k + k2, *pid = amlfs_zalloc((size_t)ids, sizeof(int));
    for (int i = 0; i < ids; i++)
        pid[i] = i + 1;
    amlfs_shuffle(pid, ids, amlfs_rng(o.seed, 0, 0xfffffffdu, AMLFS_STREAM_SYNTH));
    market_layout L = {amlfs_zalloc((size_t)(ids * cams * per + m + junk), sizeof(market_image)),
                       0, 0, {0}, &r};
    int camset[9];
    for (int i = 0; i < ids; i++) {
        int seen = 2 + (int)(amlfs_next_uniform(&r) * (cams - 1));
        if (seen > cams)
            seen = cams;
        for (int q = 0; q < cams; q++)
            camset[q] = q;
        for (int q = 0; q < seen; q++) { /* the first `seen` of a shuffle */
            int t = q + (int)(amlfs_next_uniform(&r) * (cams - q));
            t = t < cams ? t : cams - 1;
            int x = camset[q];
            camset[q] = camset[t];
            camset[t] = x;
        }
        /* the cameras in increasing order, for readable listings */
        for (int a = 1; a < seen; a++)
            for (int b = a; b > 0 && camset[b - 1] > camset[b]; b--) {
                int x = camset[b];
                camset[b] = camset[b - 1];
                camset[b - 1] = x;
            }
        uint32_t n = 0;
        for (int q = 0; q < seen; q++) {
            int many = 1 + (int)(amlfs_next_uniform(&r) * per);
            many = many < per ? many : per;
            for (int e = 0; e < many; e++) {
                int sub = i < k ? 0 : (many >= 2 && e == 0) ? 1 : 2;
                add_image(&L, (uint32_t)i, n++, camset[q], 0, sub, pid[i]);
            }
        }
    }
    for (int d = 0; d < m; d++)
        add_image(&L, (uint32_t)(ids + d), 0, (int)(amlfs_next_uniform(&r) * cams) % cams, 0, 2, 0);
    for (int d = 0; d < junk; d++)
        add_image(&L, (uint32_t)(ids + m + d), 0, (int)(amlfs_next_uniform(&r) * cams) % cams, 1, 2, -1);
    amlfs_camera_look look[9];
    for (int q = 0; q < cams; q++)
        amlfs_camera_look_make(o.seed, (uint32_t)q, &look[q]);
    int failed = 0;
    char bad[4096] = "", err[512] = "";
#pragma omp parallel for schedule(dynamic, 4)
    for (int i = 0; i < L.count; i++) {
        const market_image *x = &L.img[i];
        amlfs_person_template t;
        amlfs_person_template_make(o.seed, x->id, &t);
        uint8_t *rgb = malloc((size_t)o.h * o.w * 3);
        char e[512] = "out of memory", path[4200];
        snprintf(path, sizeof path, "%s/%s", dirs[x->sub], x->name);
        int b = !rgb;
        if (rgb) {
            amlfs_person_render(&t, &look[x->cam], o.seed, x->id, x->n, x->junk, o.h, o.w, rgb);
            b = amlfs_image_write_jpeg(path, rgb, o.h, o.w, 90, e, sizeof e) != 0;
        }
        if (b)
#pragma omp critical
        {
            if (!failed++) {
                snprintf(bad, sizeof bad, "%s", path);
                snprintf(err, sizeof err, "%s", e);
            }
        }
        free(rgb);
    }
    if (failed)
        amlfs_fail(AMLFS_EXIT_FAILED, bad, "%s", err);
    printf("%s\n", out);
    amlfs_note("market: %d train identities (%d images), %d test identities (%d query, %d "
               "gallery images with %d distractors and %d junk), %d cameras, %dx%d", k,
               L.counts[0], k2, L.counts[1], L.counts[2], m, junk, cams, o.h, o.w);
    free(L.img);
    free(pid);
    return AMLFS_EXIT_OK;
}

int main(int argc, char **argv)
{
    amlfs_tool_start("amlfs-synth");
    amlfs_help_version(argc, argv, usage);
    if (argc < 2)
        amlfs_fail(AMLFS_EXIT_USAGE, NULL, "give a generator: face or market (see --help)");
    static const char *const kinds[] = {"face", "market", NULL};
    int kind = amlfs_arg_choice("generator", argv[1], kinds);
    return kind == 0 ? synth_face(argc - 1, argv + 1) : synth_market(argc - 1, argv + 1);
}
