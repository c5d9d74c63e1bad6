/* Every Check suite, once: DL_SUITE(name) expects `Suite *suite_name(void)`. */
DL_SUITE(core)
DL_SUITE(relu)
