/* Internal: building layers from a parsed YAML node (used by the net). */
#ifndef DL_LAYER_BUILD_H
#define DL_LAYER_BUILD_H

#include "core/layer.h"
#include "io/yaml.h"

extern const char *const dl_layer_common_keys[];

dl_status dl_layer_from_node(const dl_ydoc *doc, const dl_ynode *node, dl_phase phase,
                             const dl_ctx *ctx, dl_layer **out);

#endif
