/* The Convolution geometries that tests/test_conv.c checks the native engine
 * on against a double-precision reference, and tests/test_conv_onednn.c checks
 * the oneDNN engine on against the native one. */
#ifndef DL_TEST_CONV_CASES_H
#define DL_TEST_CONV_CASES_H

#include <stddef.h>

typedef struct {
  int n, c, h, w, m;
  int kh, kw, sh, sw, ph, pw, dh, dw;
  int group, bias, gemm_images;
} conv_case;

extern const conv_case dl_conv_cases[];
extern const int dl_conv_ncases;

/* The case as one layer's YAML, on `engine` (auto, native or onednn), with
 * gaussian fillers of std 1: the same weights for every engine. */
void dl_conv_case_yaml(const conv_case *k, const char *engine, char *buf, size_t n);

#endif
