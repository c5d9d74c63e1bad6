/* The layer registry, generated from layers/list.h (no self-registration:
 * static linking could drop it, and the order would be unspecified). */
#include "core/registry.h"

#include <ctype.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define DL_LAYER(id) extern const dl_layer_ops dl_layer_##id;
#include "layers/list.h"
#undef DL_LAYER

static const dl_layer_ops *const all_layers[] = {
#define DL_LAYER(id) &dl_layer_##id,
#include "layers/list.h"
#undef DL_LAYER
};

int dl_registry_count(void) { return (int)(sizeof all_layers / sizeof all_layers[0]); }

const dl_layer_ops *dl_registry_at(int i) {
  return i >= 0 && i < dl_registry_count() ? all_layers[i] : NULL;
}

const dl_layer_ops *dl_registry_find(const char *type) {
  for (int i = 0; i < dl_registry_count(); i++)
    if (strcmp(all_layers[i]->type, type) == 0) return all_layers[i];
  return NULL;
}

int dl_edit_distance(const char *a, const char *b) {
  size_t la = strlen(a), lb = strlen(b);
  if (la > 64 || lb > 64) return 99;
  int prev[65], cur[65];
  for (size_t j = 0; j <= lb; j++) prev[j] = (int)j;
  for (size_t i = 1; i <= la; i++) {
    cur[0] = (int)i;
    for (size_t j = 1; j <= lb; j++) {
      int cost = tolower((unsigned char)a[i - 1]) != tolower((unsigned char)b[j - 1]);
      int best = prev[j - 1] + cost;
      if (prev[j] + 1 < best) best = prev[j] + 1;
      if (cur[j - 1] + 1 < best) best = cur[j - 1] + 1;
      cur[j] = best;
    }
    memcpy(prev, cur, sizeof(int) * (lb + 1));
  }
  return prev[lb];
}

const char *dl_registry_suggest(const char *type, char *buf, size_t n) {
  int best[3] = {-1, -1, -1}, dist[3] = {999, 999, 999};
  for (int i = 0; i < dl_registry_count(); i++) {
    int d = dl_edit_distance(type, all_layers[i]->type);
    /* A case-insensitive substring match counts as close ("conv" -> Convolution). */
    if (strncasecmp(type, all_layers[i]->type, strlen(type)) == 0 && strlen(type) >= 3) d = 1;
    for (int k = 0; k < 3; k++)
      if (d < dist[k]) {
        for (int m = 2; m > k; m--) best[m] = best[m - 1], dist[m] = dist[m - 1];
        best[k] = i, dist[k] = d;
        break;
      }
  }
  size_t off = 0;
  buf[0] = 0;
  for (int k = 0; k < 3 && best[k] >= 0; k++) {
    int limit = (int)strlen(type) / 3 + 1;
    if (dist[k] > limit) break;
    off += (size_t)snprintf(buf + off, n - off, "%s'%s'", k ? ", " : "", all_layers[best[k]]->type);
    if (off >= n) break;
  }
  return buf;
}
