/* The test runner: all suites in one binary. `-s NAME` runs one suite (as does
 * CK_RUN_SUITE); GPU suites print a SKIP notice when no GPU is present. */
#include <check.h>
#include <stdlib.h>
#include <string.h>

#include "core/math.h"

#include "tests/testutil.h"

int main(int argc, char **argv) {
  const char *only = argc > 2 && strcmp(argv[1], "-s") == 0 ? argv[2] : NULL;
  dl_set_threads(1); /* tests are checked at one thread; forks run in parallel under make -j */
  SRunner *sr = srunner_create(NULL);
#define DL_SUITE(name) \
  if (!only || strcmp(only, #name) == 0) srunner_add_suite(sr, suite_##name());
#include "tests/suites.h"
#undef DL_SUITE
  srunner_run_all(sr, CK_NORMAL);
  int failed = srunner_ntests_failed(sr);
  srunner_free(sr);
  return failed ? EXIT_FAILURE : EXIT_SUCCESS;
}
