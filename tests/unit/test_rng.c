/* test_rng: the project's random streams against Philox4x32-10's published known
 * answers and an independent pure-Python implementation (tests/fixtures/rng.h5, made by
 * tests/fixtures/make_rng_fixtures.py), and the normals' first two moments. */
#include "amlfs_rng.h"
#include "check.h"

#include <hdf5.h>
#include <hdf5_hl.h>
#include <stdlib.h>

#define NAMES 5

int main(void)
{
    hid_t f = H5Fopen("tests/fixtures/rng.h5", H5F_ACC_RDONLY, H5P_DEFAULT);
    if (f < 0) {
        fprintf(stderr, "test_rng: cannot open tests/fixtures/rng.h5 (run from the repo root)\n");
        return 1;
    }
    uint32_t ctr[3][4], key[3][2], want[3][4], names[NAMES][4], blocks[NAMES][4][4];
    double normals[NAMES][16], uniforms[NAMES][16];
    H5LTread_dataset(f, "kat/counter", H5T_NATIVE_UINT32, ctr);
    H5LTread_dataset(f, "kat/key", H5T_NATIVE_UINT32, key);
    H5LTread_dataset(f, "kat/result", H5T_NATIVE_UINT32, want);
    H5LTread_dataset(f, "names", H5T_NATIVE_UINT32, names);
    H5LTread_dataset(f, "blocks", H5T_NATIVE_UINT32, blocks);
    H5LTread_dataset_double(f, "normals", &normals[0][0]);
    H5LTread_dataset_double(f, "uniforms", &uniforms[0][0]);
    H5Fclose(f);

    /* Random123 itself against the published answers */
    for (int i = 0; i < 3; i++) {
        philox4x32_ctr_t c = {{ctr[i][0], ctr[i][1], ctr[i][2], ctr[i][3]}};
        philox4x32_key_t k = {{key[i][0], key[i][1]}};
        philox4x32_ctr_t r = philox4x32_R(10, c, k);
        for (int j = 0; j < 4; j++)
            CHECK(r.v[j] == want[i][j], "KAT %d word %d: %08x, want %08x", i, j, r.v[j],
                  want[i][j]);
    }
    /* our naming of streams, uniforms and normals against the reference */
    for (int s = 0; s < NAMES; s++) {
        amlfs_rng_name r = amlfs_rng(names[s][0], names[s][1], names[s][2], names[s][3]);
        for (uint32_t n = 0; n < 4; n++) {
            uint32_t w[4];
            amlfs_rng_block(r, n, w);
            for (int j = 0; j < 4; j++)
                CHECK(w[j] == blocks[s][n][j], "name %d block %u word %d", s, n, j);
        }
        for (int i = 0; i < 16; i++) {
            CHECK_CLOSE(amlfs_rng_uniform(r, (uint64_t)i), uniforms[s][i], 0, 1e-15, "uniform");
            CHECK_CLOSE(amlfs_rng_normal(r, (uint64_t)i), normals[s][i], 1e-15, 1e-14, "normal");
        }
    }
    /* different names are different streams */
    CHECK(amlfs_rng_normal(amlfs_rng(1, 1, 0, 1), 0) != amlfs_rng_normal(amlfs_rng(1, 1, 1, 1), 0),
          "samples 0 and 1 share a stream");
    CHECK(amlfs_rng_normal(amlfs_rng(1, 1, 0, 1), 0) != amlfs_rng_normal(amlfs_rng(1, 2, 0, 1), 0),
          "epochs 1 and 2 share a stream");
    /* moments of 200,000 normals: the mean's standard error is 1/sqrt(n) = 0.0022, the
     * variance's sqrt(2/n) = 0.0032; 5 standard errors is a bound a correct stream
     * crosses once in millions of seeds */
    const int n = 200000;
    double sum = 0, sum2 = 0, umin = 1, umax = 0;
    amlfs_rng_name r = amlfs_rng(7, 3, 5, 1);
    for (int i = 0; i < n; i++) {
        double z = amlfs_rng_normal(r, (uint64_t)i);
        sum += z;
        sum2 += z * z;
        double u = amlfs_rng_uniform(r, (uint64_t)i);
        umin = u < umin ? u : umin;
        umax = u > umax ? u : umax;
    }
    double mean = sum / n, var = sum2 / n - mean * mean;
    CHECK(fabs(mean) < 5 / sqrt(n), "normal mean %g", mean);
    CHECK(fabs(var - 1) < 5 * sqrt(2.0 / n), "normal variance %g", var);
    CHECK(umin > 0 && umax < 1, "uniforms outside (0,1): %g %g", umin, umax);
    for (int i = 0; i < 1000; i++) {
        uint32_t k = amlfs_rng_below(r, (uint64_t)i, 10);
        CHECK(k < 10, "below(10) gave %u", k);
    }
    return check_done("test_rng");
}
