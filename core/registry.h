/* The layer registry: every type listed once in layers/list.h. */
#ifndef DL_REGISTRY_H
#define DL_REGISTRY_H

#include "core/layer.h"

const dl_layer_ops *dl_registry_find(const char *type);
int dl_registry_count(void);
const dl_layer_ops *dl_registry_at(int i);
/* Up to 3 known type names closest to `type`, comma separated, into buf. */
const char *dl_registry_suggest(const char *type, char *buf, size_t n);

/* Edit distance (Damerau-less Levenshtein), case-insensitive; for "did you mean". */
int dl_edit_distance(const char *a, const char *b);

#endif
