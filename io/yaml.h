/* A small YAML tree built from libyaml events, with limits that make hostile
 * files fail fast with a clear message: size, depth, node count, no aliases,
 * no duplicate keys, no binary. Every node keeps its 1-based line and column. */
#ifndef DL_YAML_H
#define DL_YAML_H

#include "core/status.h"

typedef enum { DL_Y_SCALAR, DL_Y_SEQ, DL_Y_MAP } dl_ytype;

typedef struct dl_ynode {
  dl_ytype type;
  char *value; /* scalars */
  int quoted;  /* scalar was quoted: always a string */
  int line, col;
  int n;                  /* items in a sequence or pairs in a mapping */
  struct dl_ynode **keys; /* mapping keys (scalars) */
  struct dl_ynode **items;
} dl_ynode;

typedef struct dl_ydoc {
  char *file; /* name used in messages */
  dl_ynode *root;
} dl_ydoc;

#define DL_YAML_MAX_BYTES (16u << 20)
#define DL_YAML_MAX_DEPTH 32
#define DL_YAML_MAX_NODES 200000

dl_status dl_yaml_load_file(const char *path, dl_ydoc **out);
dl_status dl_yaml_load_string(const char *text, const char *name, dl_ydoc **out);
void dl_yaml_free(dl_ydoc *doc);

const dl_ynode *dl_ymap_get(const dl_ynode *map, const char *key);
dl_loc dl_yloc(const dl_ydoc *doc, const dl_ynode *node);
const char *dl_ytype_name(dl_ytype t);

#endif
