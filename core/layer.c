/* Layer construction from YAML and the helpers layers share. */
#include "core/layer.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/layer_build.h"
#include "core/registry.h"
#include "io/config.h"

/* Keys every layer mapping may carry besides its own parameters. */
const char *const dl_layer_common_keys[] = {"name",    "type",  "bottom",      "top", "include",
                                            "exclude", "param", "loss_weight", NULL};

static const dl_ctx default_ctx = {.seed = 1, .threads = 1};

dl_status dl_layer_add_param(dl_layer *l, const char *suffix, int ndim, const int *shape,
                             dl_blob **out) {
  DL_ASSERT(l->nparams < DL_MAX_LAYER_PARAMS);
  char name[300];
  snprintf(name, sizeof name, "%s/%s", l->name, suffix);
  dl_blob *b = dl_blob_new(name);
  if (!b) return DL_ENOMEM;
  dl_status st = dl_blob_reshape(b, ndim, shape);
  if (st) {
    dl_blob_free(b);
    return dl_layer_error(l, st, "cannot create parameter '%s'", suffix);
  }
  l->params[l->nparams] = b;
  l->lr_mult[l->nparams] = 1;
  l->decay_mult[l->nparams] = 1;
  l->nparams++;
  if (out) *out = b;
  return DL_OK;
}

void dl_layer_rng(const dl_layer *l, int stream, dl_rng *rng) {
  /* Keyed by the layer's name, not its position: inserting a layer elsewhere
   * does not change this layer's initial weights. */
  uint64_t h = 1469598103934665603ull;
  for (const char *c = l->name; *c; c++) h = (h ^ (unsigned char)*c) * 1099511628211ull;
  dl_rng_seed(rng, dl_seed_mix(l->ctx->seed, h, (uint64_t)stream));
}

dl_status dl_layer_error(const dl_layer *l, dl_status code, const char *fmt, ...) {
  char msg[400];
  va_list ap;
  va_start(ap, fmt);
  vsnprintf(msg, sizeof msg, fmt, ap);
  va_end(ap);
  return dl_error_at(code, &l->loc, "layer '%s' (%s): %s", l->name, l->ops->type, msg);
}

dl_status dl_layer_from_node(const dl_ydoc *doc, const dl_ynode *node, dl_phase phase,
                             const dl_ctx *ctx, dl_layer **out) {
  *out = NULL;
  dl_loc loc = dl_yloc(doc, node);
  if (node->type != DL_Y_MAP)
    return dl_error_at(DL_ECONFIG, &loc, "a layer must be a mapping (name: ..., type: ...), got a %s",
                       dl_ytype_name(node->type));
  const dl_ynode *name = dl_ymap_get(node, "name"), *type = dl_ymap_get(node, "type");
  if (!name || name->type != DL_Y_SCALAR || !name->value[0])
    return dl_error_at(DL_ECONFIG, &loc, "layer: missing required key 'name' (a unique string)");
  if (strlen(name->value) > 200) return dl_error_at(DL_ECONFIG, &loc, "layer name too long");
  if (!type || type->type != DL_Y_SCALAR)
    return dl_error_at(DL_ECONFIG, &loc, "layer '%s': missing required key 'type' (see `dltrain layers`)",
                       name->value);
  const dl_layer_ops *ops = dl_registry_find(type->value);
  if (!ops) {
    char near[200];
    dl_loc tl = dl_yloc(doc, type);
    dl_registry_suggest(type->value, near, sizeof near);
    return dl_error_at(DL_ECONFIG, &tl, "layer '%s': unknown layer type '%s'%s%s%s (`dltrain layers` lists all)",
                       name->value, type->value, near[0] ? "; did you mean " : "", near,
                       near[0] ? "?" : "");
  }
  dl_layer *l = calloc(1, sizeof *l);
  if (!l) return dl_error(DL_ENOMEM, "out of memory");
  l->ops = ops;
  l->name = strdup(name->value);
  l->phase = phase;
  l->ctx = ctx ? ctx : &default_ctx;
  l->loc = (dl_loc){loc.file ? strdup(loc.file) : NULL, loc.line, loc.col};
  l->param = calloc(1, ops->param_size ? ops->param_size : 1);
  if (!l->name || !l->param) {
    dl_layer_free(l);
    return dl_error(DL_ENOMEM, "out of memory");
  }
  if (ops->schema) dl_schema_defaults(ops->schema, l->param);
  char owner[300];
  snprintf(owner, sizeof owner, "layer '%s' (%s)", l->name, ops->type);
  static const dl_param_spec no_params[] = {DL_SPEC_END};
  dl_status st = dl_schema_apply(ops->schema ? ops->schema : no_params, doc, node,
                                 dl_layer_common_keys, owner, l->param);
  if (st) {
    dl_layer_free(l);
    return st;
  }
  *out = l;
  return DL_OK;
}

dl_status dl_layer_from_yaml(const char *yaml_text, dl_phase phase, const dl_ctx *ctx,
                             dl_layer **out) {
  dl_ydoc *doc = NULL;
  *out = NULL;
  dl_status st = dl_yaml_load_string(yaml_text, "<string>", &doc);
  if (st) return st;
  st = dl_layer_from_node(doc, doc->root, phase, ctx, out);
  dl_yaml_free(doc);
  return st;
}

static dl_status check_arity(const dl_layer *l, const char *what, int n, int lo, int hi) {
  if (n >= lo && (hi < 0 || n <= hi)) return DL_OK;
  char want[64];
  if (hi == lo) snprintf(want, sizeof want, "exactly %d", lo);
  else if (hi < 0) snprintf(want, sizeof want, "at least %d", lo);
  else snprintf(want, sizeof want, "%d to %d", lo, hi);
  return dl_layer_error(l, DL_ECONFIG, "expected %s %s, got %d", want, what, n);
}

dl_status dl_layer_setup(dl_layer *l, dl_blob *const *bottom, int nb, dl_blob *const *top,
                         int nt) {
  const dl_layer_ops *o = l->ops;
  dl_status st = check_arity(l, "bottom blobs", nb, o->min_bottoms, o->max_bottoms);
  if (!st) st = check_arity(l, "top blobs", nt, o->min_tops, o->max_tops);
  if (st) return st;
  if (!(o->flags & DL_LAYER_IN_PLACE))
    for (int t = 0; t < nt; t++)
      for (int b = 0; b < nb; b++)
        if (top[t] == bottom[b])
          return dl_layer_error(l, DL_ECONFIG,
                                "cannot work in place (top '%s' is also a bottom); give the top a new name",
                                top[t]->name);
  if (o->setup && (st = o->setup(l, bottom, nb, top, nt))) return st;
  return o->reshape ? o->reshape(l, bottom, nb, top, nt) : DL_OK;
}

void dl_layer_free(dl_layer *l) {
  if (!l) return;
  if (l->ops && l->ops->destroy) l->ops->destroy(l);
  for (int i = 0; i < l->nparams; i++) dl_blob_free(l->params[i]);
  free(l->param);
  free(l->name);
  free((char *)l->loc.file);
  free(l);
}

#ifdef DL_GPU
#include "core/math_gpu.h"

dl_status dl_view_forward_gpu(dl_layer *l, dl_blob *const *bottom, int nb, dl_blob *const *top,
                              int nt) {
  (void)l, (void)bottom, (void)nb, (void)top, (void)nt; /* data is shared */
  return DL_OK;
}

void dl_view_backward_gpu(dl_layer *l, dl_blob *const *top, int nt, const int *propagate_down,
                          dl_blob *const *bottom, int nb) {
  (void)l, (void)nt, (void)nb;
  if (!propagate_down[0] || top[0]->diff == bottom[0]->diff) return;
  const float *dy = dl_gpu_cdiff(top[0]);
  float *dx = dl_gpu_diff(bottom[0]);
  if (dy && dx) dl_gpu_copy(top[0]->count, dy, dx);
}
#endif
