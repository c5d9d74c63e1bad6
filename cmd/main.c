/* dltrain: the command table. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cmd/cmd.h"
#include "core/device.h"
#include "core/status.h"

static const struct {
  const char *name;
  int (*run)(int, char **);
  const char *help;
} commands[] = {
    {"train", cmd_train, "train a net: dltrain train NET.yaml SOLVER.yaml [options]"},
    {"test", cmd_test, "evaluate trained weights: dltrain test NET.yaml WEIGHTS [--iterations N]"},
    {"bench", cmd_bench, "time training iterations per layer: dltrain bench NET.yaml [options]"},
    {"layers", cmd_layers, "list layer types, or describe one: dltrain layers [TYPE]"},
    {"vocab", cmd_vocab, "build a word list for TokenData: dltrain vocab TEXT... > vocab.txt"},
    {"convert", cmd_convert, "make CIFAR-format, PNG or mean files: dltrain convert cifar|png|mean"},
};
#define NCOMMANDS (int)(sizeof commands / sizeof commands[0])

static void usage(FILE *f) {
  fprintf(f, "dltrain %s: deep-learning training from YAML files\n\nusage: dltrain COMMAND [args]\n\ncommands:\n",
          DLTRAIN_VERSION);
  for (int i = 0; i < NCOMMANDS; i++) fprintf(f, "  %-8s %s\n", commands[i].name, commands[i].help);
  fprintf(f,
          "\n`dltrain COMMAND --help` describes each command's options.\n"
          "exit codes: 0 ok, 1 internal error, 2 usage, 3 config, 4 data, 5 diverged (non-finite\n"
          "loss), 6 device (GPU), 7 snapshot/log i/o, 8 out of memory, 130 interrupted (a\n"
          "snapshot was written). See docs/cli.md.\n");
}

int main(int argc, char **argv) {
  dl_gpu_handover_argv(argv);
  if (argc < 2) {
    usage(stderr);
    return DL_EUSAGE;
  }
  if (!strcmp(argv[1], "--help") || !strcmp(argv[1], "-h") || !strcmp(argv[1], "help")) {
    usage(stdout);
    return 0;
  }
  if (!strcmp(argv[1], "--version")) {
    printf("dltrain %s\n", DLTRAIN_VERSION);
    return 0;
  }
  for (int i = 0; i < NCOMMANDS; i++)
    if (!strcmp(argv[1], commands[i].name)) return commands[i].run(argc - 1, argv + 1);
  fprintf(stderr, "dltrain: unknown command '%s'\n\n", argv[1]);
  usage(stderr);
  return DL_EUSAGE;
}
