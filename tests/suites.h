/* Every Check suite, once: DL_SUITE(name) expects `Suite *suite_name(void)`. */
DL_SUITE(core)
DL_SUITE(relu)
DL_SUITE(data)
DL_SUITE(config)
DL_SUITE(solver)
DL_SUITE(cli)
DL_SUITE(e2e)
DL_SUITE(dense)
