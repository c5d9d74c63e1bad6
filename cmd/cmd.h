/* Subcommands and the small argument helpers they share. Only cmd/ prints
 * diagnostics and chooses exit codes. */
#ifndef DL_CMD_H
#define DL_CMD_H

#include <stdint.h>

#define DLTRAIN_VERSION "0.1.0"

int cmd_train(int argc, char **argv);
int cmd_test(int argc, char **argv);
int cmd_layers(int argc, char **argv);
int cmd_bench(int argc, char **argv);
int cmd_vocab(int argc, char **argv);
int cmd_convert(int argc, char **argv);

/* Parses a non-negative integer option value; prints a usage error if bad. */
int cmd_parse_int(const char *opt, const char *value, int64_t lo, int64_t hi, int64_t *out);
/* Prints the diagnostics and returns the exit code for `status`. */
int cmd_fail(int status);
void cmd_print_header(int threads, long long seed);

#endif
