/* Net construction (YAML -> steps), forward/backward, flat parameters. */
#include "core/net.h"

#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "core/device.h"
#include "core/layer_build.h"
#include "core/math.h"
#include "core/registry.h"
#include "io/config.h"

#ifdef DL_GPU
#include "core/math_gpu.h"
#endif

extern const dl_layer_ops dl_layer_split;

/* ---- parsing helpers ---------------------------------------------------- */

#define MAX_NAMES DL_MAX_LAYER_BLOBS

/* A string or a list of strings ("bottom: data" or "top: [data, label]"). */
static dl_status parse_names(const dl_ydoc *doc, const dl_ynode *n, const char *owner,
                             const char *key, const char **out, int *count) {
  *count = 0;
  if (!n) return DL_OK;
  dl_loc loc = dl_yloc(doc, n);
  if (n->type == DL_Y_SCALAR) {
    out[(*count)++] = n->value;
    return DL_OK;
  }
  if (n->type != DL_Y_SEQ)
    return dl_error_at(DL_ECONFIG, &loc, "%s: %s: expected a blob name or a list of names", owner,
                       key);
  if (n->n > MAX_NAMES)
    return dl_error_at(DL_ECONFIG, &loc, "%s: %s: at most %d blobs", owner, key, MAX_NAMES);
  for (int i = 0; i < n->n; i++) {
    if (n->items[i]->type != DL_Y_SCALAR) {
      loc = dl_yloc(doc, n->items[i]);
      return dl_error_at(DL_ECONFIG, &loc, "%s: %s: expected a blob name, got a %s", owner, key,
                         dl_ytype_name(n->items[i]->type));
    }
    out[(*count)++] = n->items[i]->value;
  }
  return DL_OK;
}

static const char *const phase_names[] = {"train", "test", NULL};

/* include/exclude: `train`, `[train]` or `{phase: train}` (Caffe's form). */
static dl_status parse_phase_rule(const dl_ydoc *doc, const dl_ynode *n, const char *owner,
                                  const char *key, int *phase) {
  const dl_ynode *v = n;
  if (n->type == DL_Y_MAP) {
    for (int i = 0; i < n->n; i++)
      if (strcmp(n->keys[i]->value, "phase") != 0) {
        dl_loc loc = dl_yloc(doc, n->keys[i]);
        return dl_error_at(DL_ECONFIG, &loc, "%s: %s: unknown key '%s' (only 'phase' is supported)",
                           owner, key, n->keys[i]->value);
      }
    v = dl_ymap_get(n, "phase");
  } else if (n->type == DL_Y_SEQ && n->n == 1) {
    v = n->items[0];
  }
  dl_param_spec s = {key, DL_PT_ENUM, 0, "train", 0, 0, phase_names, NULL, NULL};
  if (!v) {
    dl_loc loc = dl_yloc(doc, n);
    return dl_error_at(DL_ECONFIG, &loc, "%s: %s: missing 'phase' (train or test)", owner, key);
  }
  return dl_parse_value(&s, doc, v, owner, phase);
}

static dl_status layer_in_phase(const dl_ydoc *doc, const dl_ynode *node, const char *owner,
                                dl_phase phase, int *active) {
  const dl_ynode *inc = dl_ymap_get(node, "include"), *exc = dl_ymap_get(node, "exclude");
  int p = 0;
  dl_status st;
  *active = 1;
  if (inc && exc) {
    dl_loc loc = dl_yloc(doc, exc);
    return dl_error_at(DL_ECONFIG, &loc, "%s: give include or exclude, not both", owner);
  }
  if (inc) {
    if ((st = parse_phase_rule(doc, inc, owner, "include", &p))) return st;
    *active = p == (int)phase;
  }
  if (exc) {
    if ((st = parse_phase_rule(doc, exc, owner, "exclude", &p))) return st;
    *active = p != (int)phase;
  }
  return DL_OK;
}

/* param: [{name: w, lr_mult: 1, decay_mult: 1}, ...] */
typedef struct {
  char name[DL_STR_MAX];
  float lr_mult, decay_mult;
} param_rule;

static const dl_param_spec param_rule_spec[] = {
    DL_P_STRING(param_rule, name, "", "shares this parameter with every other one of that name",
                "param { name }"),
    DL_P_FLOAT(param_rule, lr_mult, "1", 0, 1e6, "learning-rate multiplier", "param { lr_mult }"),
    DL_P_FLOAT(param_rule, decay_mult, "1", 0, 1e6, "weight-decay multiplier",
               "param { decay_mult }"),
    DL_SPEC_END};

static dl_status parse_param_rules(const dl_ydoc *doc, const dl_ynode *n, const char *owner,
                                   param_rule *rules, int *count) {
  *count = 0;
  if (!n) return DL_OK;
  dl_loc loc = dl_yloc(doc, n);
  const dl_ynode *one[1] = {n};
  const dl_ynode *const *items = n->type == DL_Y_SEQ ? (const dl_ynode *const *)n->items : one;
  int k = n->type == DL_Y_SEQ ? n->n : 1;
  if (k > DL_MAX_LAYER_PARAMS)
    return dl_error_at(DL_ECONFIG, &loc, "%s: param: at most %d entries", owner,
                       DL_MAX_LAYER_PARAMS);
  char sub[320];
  snprintf(sub, sizeof sub, "%s: param", owner);
  for (int i = 0; i < k; i++) {
    dl_schema_defaults(param_rule_spec, &rules[i]);
    dl_status st = dl_schema_apply(param_rule_spec, doc, items[i], NULL, sub, &rules[i]);
    if (st) return st;
  }
  *count = k;
  return DL_OK;
}

/* ---- graph building ----------------------------------------------------- */

/* A pending layer before splits are inserted: blob "versions" by index. */
typedef struct {
  dl_layer *layer;
  const dl_ynode *node;
  int nb, nt;
  int bottom_v[MAX_NAMES], top_v[MAX_NAMES];
  float loss_weight[MAX_NAMES];
  int has_loss_weight;
  param_rule rules[DL_MAX_LAYER_PARAMS];
  int nrules;
} pending;

typedef struct {
  char *name;
  int blob;      /* index into net->blobs */
  int consumers; /* layers reading this version */
  int in_place_consumer;
  int next_consumer; /* while wiring splits */
  int split_step;    /* -1 or index of the split layer's pending entry */
} version;

typedef struct {
  dl_net *net;
  const dl_ydoc *doc;
  pending *layers;
  int nlayers;
  version *vers;
  int nvers;
} builder;

static int find_version(const builder *b, const char *name) {
  for (int i = b->nvers - 1; i >= 0; i--)
    if (strcmp(b->vers[i].name, name) == 0) return i;
  return -1;
}

static dl_status add_blob(dl_net *net, const char *name, int *index) {
  dl_blob *blob = dl_blob_new(name);
  if (!blob) return DL_ENOMEM;
  dl_blob **grown = realloc(net->blobs, sizeof *grown * (size_t)(net->nblobs + 1));
  if (!grown) {
    dl_blob_free(blob);
    return dl_error(DL_ENOMEM, "out of memory");
  }
  net->blobs = grown;
  net->blobs[net->nblobs] = blob;
  *index = net->nblobs++;
  return DL_OK;
}

static dl_status unknown_bottom(builder *b, const dl_ynode *node, const char *owner,
                                const char *name) {
  const char *names[256];
  int n = 0;
  for (int i = 0; i < b->nvers && n < 255; i++)
    names[n++] = b->vers[i].name;
  names[n] = NULL;
  const char *near = dl_closest(name, names);
  const dl_ynode *bn = dl_ymap_get(node, "bottom");
  dl_loc loc = dl_yloc(b->doc, bn ? bn : node);
  return dl_error_at(DL_ECONFIG, &loc,
                     "%s: bottom '%s' is not produced by any earlier layer in the %s phase%s%s%s",
                     owner, name, phase_names[b->net->phase], near ? " (did you mean '" : "",
                     near ? near : "", near ? "'?)" : "");
}

static dl_status add_pending(builder *b, const dl_ynode *node, dl_layer *layer) {
  char owner[300];
  snprintf(owner, sizeof owner, "layer '%s' (%s)", layer->name, layer->ops->type);
  const char *bn[MAX_NAMES], *tn[MAX_NAMES];
  pending p = {.layer = layer, .node = node};
  dl_status st = parse_names(b->doc, dl_ymap_get(node, "bottom"), owner, "bottom", bn, &p.nb);
  if (!st) st = parse_names(b->doc, dl_ymap_get(node, "top"), owner, "top", tn, &p.nt);
  if (!st) st = parse_param_rules(b->doc, dl_ymap_get(node, "param"), owner, p.rules, &p.nrules);
  if (st) return st;
  const dl_ynode *lw = dl_ymap_get(node, "loss_weight");
  if (lw) {
    dl_param_spec s = {"loss_weight", DL_PT_FLOATS, 0, NULL, -1e6, 1e6, NULL, NULL, NULL};
    dl_floats w;
    if ((st = dl_parse_value(&s, b->doc, lw, owner, &w))) return st;
    if (w.n > p.nt) {
      dl_loc loc = dl_yloc(b->doc, lw);
      return dl_error_at(DL_ECONFIG, &loc,
                         "%s: loss_weight has %d values but the layer has %d tops", owner, w.n,
                         p.nt);
    }
    for (int i = 0; i < w.n; i++)
      p.loss_weight[i] = w.v[i];
    p.has_loss_weight = 1;
  } else if (layer->ops->flags & DL_LAYER_LOSS) {
    p.loss_weight[0] = 1;
  }
  for (int i = 0; i < p.nb; i++) {
    int v = find_version(b, bn[i]);
    if (v < 0) return unknown_bottom(b, node, owner, bn[i]);
    p.bottom_v[i] = v;
  }
  for (int i = 0; i < p.nt; i++) {
    int in_place = -1;
    for (int j = 0; j < p.nb; j++)
      if (strcmp(tn[i], bn[j]) == 0) in_place = p.bottom_v[j];
    if (in_place < 0 && find_version(b, tn[i]) >= 0) {
      const dl_ynode *tnode = dl_ymap_get(node, "top");
      dl_loc loc = dl_yloc(b->doc, tnode ? tnode : node);
      return dl_error_at(DL_ECONFIG, &loc,
                         "%s: top '%s' is already produced by an earlier layer; give it a new name "
                         "(or list it as a bottom too to work in place)",
                         owner, tn[i]);
    }
    version v = {.name = strdup(tn[i]), .split_step = -1};
    if (in_place >= 0) {
      v.blob = b->vers[in_place].blob;
      b->vers[in_place].in_place_consumer = 1;
    } else if ((st = add_blob(b->net, tn[i], &v.blob))) {
      free(v.name);
      return st;
    }
    version *grown = realloc(b->vers, sizeof *grown * (size_t)(b->nvers + 1));
    if (!grown) {
      free(v.name);
      return dl_error(DL_ENOMEM, "out of memory");
    }
    b->vers = grown;
    p.top_v[i] = b->nvers;
    b->vers[b->nvers++] = v;
  }
  for (int i = 0; i < p.nb; i++)
    b->vers[p.bottom_v[i]].consumers++;
  pending *grown = realloc(b->layers, sizeof *grown * (size_t)(b->nlayers + 1));
  if (!grown) return dl_error(DL_ENOMEM, "out of memory");
  b->layers = grown;
  b->layers[b->nlayers++] = p;
  return DL_OK;
}

/* Turns pending layers into steps, inserting a Split after each blob version
 * that several layers read. */
static dl_status wire_steps(builder *b) {
  dl_net *net = b->net;
  for (int v = 0; v < b->nvers; v++) {
    version *ver = &b->vers[v];
    if (ver->consumers > 1 && ver->in_place_consumer)
      return dl_error(DL_ECONFIG,
                      "%s: blob '%s' is read by %d layers and one of them works on it in place, "
                      "which would change what the others read; give that layer's top a new name",
                      b->doc->file, ver->name, ver->consumers);
  }
  int max_steps = b->nlayers * 2 + 1;
  net->steps = calloc((size_t)max_steps, sizeof *net->steps);
  if (!net->steps) return dl_error(DL_ENOMEM, "out of memory");
  dl_blob **split_tops = calloc((size_t)b->nvers * MAX_NAMES, sizeof *split_tops);
  if (!split_tops) return dl_error(DL_ENOMEM, "out of memory");
  dl_status st = DL_OK;
  for (int i = 0; i < b->nlayers && !st; i++) {
    pending *p = &b->layers[i];
    dl_net_step *s = &net->steps[net->nsteps++];
    s->layer = p->layer;
    s->source = i;
    p->layer = NULL; /* owned by the net now */
    s->nb = p->nb;
    s->nt = p->nt;
    for (int k = 0; k < p->nb; k++) {
      version *ver = &b->vers[p->bottom_v[k]];
      s->bottom[k] =
          ver->consumers > 1
              ? split_tops[(size_t)p->bottom_v[k] * MAX_NAMES + (size_t)ver->next_consumer++]
              : net->blobs[ver->blob];
    }
    for (int k = 0; k < p->nt; k++) {
      s->top[k] = net->blobs[b->vers[p->top_v[k]].blob];
      s->loss_weight[k] = p->loss_weight[k];
    }
    for (int k = 0; k < p->nt && !st; k++) {
      version *ver = &b->vers[p->top_v[k]];
      if (ver->consumers <= 1) continue;
      if (ver->consumers > MAX_NAMES) {
        st = dl_error(DL_ECONFIG, "%s: blob '%s' feeds %d layers; at most %d are supported",
                      b->doc->file, ver->name, ver->consumers, MAX_NAMES);
        break;
      }
      dl_layer *split = calloc(1, sizeof *split);
      char name[300];
      snprintf(name, sizeof name, "%s_split", ver->name);
      if (!split) return dl_error(DL_ENOMEM, "out of memory");
      split->ops = &dl_layer_split;
      split->name = strdup(name);
      split->phase = net->phase;
      split->ctx = net->ctx;
      split->loc = s->layer->loc;
      split->loc.file = s->layer->loc.file ? strdup(s->layer->loc.file) : NULL;
      dl_net_step *ss = &net->steps[net->nsteps++];
      ss->layer = split;
      ss->source = -1;
      ss->nb = 1;
      ss->bottom[0] = net->blobs[ver->blob];
      ss->nt = ver->consumers;
      for (int c = 0; c < ver->consumers && !st; c++) {
        char tname[300];
        int idx;
        snprintf(tname, sizeof tname, "%s_split_%d", ver->name, c);
        st = add_blob(net, tname, &idx);
        if (!st)
          ss->top[c] = split_tops[(size_t)p->top_v[k] * MAX_NAMES + (size_t)c] = net->blobs[idx];
      }
    }
  }
  free(split_tops);
  return st;
}

/* ---- analysis: which layers need backward ------------------------------- */

static int blob_index(const dl_net *net, const dl_blob *blob) {
  for (int i = 0; i < net->nblobs; i++)
    if (net->blobs[i] == blob) return i;
  return -1;
}

static void plan_backward(dl_net *net) {
  int *needs_grad = calloc((size_t)net->nblobs, sizeof(int));
  int *reaches_loss = calloc((size_t)net->nblobs, sizeof(int));
  DL_ASSERT(needs_grad && reaches_loss);
  for (int i = 0; i < net->nsteps; i++) {
    dl_net_step *s = &net->steps[i];
    int need = 0;
    for (int p = 0; p < s->layer->nparams; p++)
      need |= s->layer->lr_mult[p] > 0;
    for (int k = 0; k < s->nb; k++) {
      s->prop_down[k] = needs_grad[blob_index(net, s->bottom[k])] &&
                        !(s->layer->ops->no_grad_bottoms & (1u << k));
      need |= s->prop_down[k];
    }
    s->need_backward = need && s->layer->ops->backward;
    for (int k = 0; k < s->nt; k++)
      needs_grad[blob_index(net, s->top[k])] = s->need_backward;
  }
  for (int i = net->nsteps - 1; i >= 0; i--) {
    dl_net_step *s = &net->steps[i];
    int contributes = 0;
    for (int k = 0; k < s->nt; k++)
      contributes |= s->loss_weight[k] != 0 || reaches_loss[blob_index(net, s->top[k])];
    s->need_backward &= contributes;
    for (int k = 0; k < s->nb; k++) {
      s->prop_down[k] &= s->need_backward;
      if (s->prop_down[k]) reaches_loss[blob_index(net, s->bottom[k])] = 1;
    }
  }
  free(needs_grad);
  free(reaches_loss);
}

/* ---- parameters: sharing and the flat buffers --------------------------- */

static dl_status gather_params(dl_net *net, builder *b) {
  int total = 0;
  for (int i = 0; i < net->nsteps; i++)
    total += net->steps[i].layer->nparams;
  net->params = calloc((size_t)total + 1, sizeof *net->params);
  net->lr_mult = calloc((size_t)total + 1, sizeof(float));
  net->decay_mult = calloc((size_t)total + 1, sizeof(float));
  net->param_offset = calloc((size_t)total + 1, sizeof(size_t));
  const char **share_name = calloc((size_t)total + 1, sizeof(char *));
  if (!net->params || !net->lr_mult || !net->decay_mult || !net->param_offset || !share_name) {
    free(share_name);
    return dl_error(DL_ENOMEM, "out of memory");
  }
  dl_status st = DL_OK;
  for (int i = 0; i < net->nsteps && !st; i++) {
    dl_layer *l = net->steps[i].layer;
    if (net->steps[i].source < 0) continue; /* an inserted split */
    pending *p = &b->layers[net->steps[i].source];
    if (p->nrules > l->nparams) {
      const dl_ynode *pn = dl_ymap_get(p->node, "param");
      dl_loc loc = dl_yloc(b->doc, pn);
      st = dl_error_at(DL_ECONFIG, &loc,
                       "layer '%s': param lists %d entries but the layer has %d parameters",
                       l->name, p->nrules, l->nparams);
      break;
    }
    for (int k = 0; k < l->nparams; k++) {
      /* A layer that sets lr_mult 0 itself (BatchNorm's running statistics)
       * updates that blob on its own: it must not be learned (as Caffe). */
      int frozen = l->lr_mult[k] == 0;
      if (k < p->nrules && frozen && p->rules[k].lr_mult != 0) {
        const dl_ynode *pn = dl_ymap_get(p->node, "param");
        dl_loc loc = dl_yloc(b->doc, pn);
        st = dl_error_at(DL_ECONFIG, &loc,
                         "layer '%s': parameter %d ('%s') is maintained by the layer and cannot "
                         "be learned; give it lr_mult: 0 or leave it out of param",
                         l->name, k, l->params[k]->name);
        break;
      }
      if (k < p->nrules && !frozen) {
        l->lr_mult[k] = p->rules[k].lr_mult;
        l->decay_mult[k] = p->rules[k].decay_mult;
      }
      const char *share = k < p->nrules && p->rules[k].name[0] ? p->rules[k].name : NULL;
      int owner = -1;
      for (int j = 0; share && j < net->nparams; j++)
        if (share_name[j] && strcmp(share_name[j], share) == 0) owner = j;
      if (owner >= 0) {
        dl_blob *o = net->params[owner], *mine = l->params[k];
        char a[96], c[96];
        if (o->count != mine->count || o->ndim != mine->ndim ||
            memcmp(o->shape, mine->shape, sizeof o->shape) != 0) {
          st = dl_layer_error(
              l, DL_ECONFIG, "shared parameter '%s' has shape %s here but %s in '%s'", share,
              dl_blob_shape_str(mine, a, sizeof a), dl_blob_shape_str(o, c, sizeof c), o->name);
          break;
        }
        continue; /* linked to its owner after flattening */
      }
      share_name[net->nparams] = share;
      net->lr_mult[net->nparams] = l->lr_mult[k];
      net->decay_mult[net->nparams] = l->decay_mult[k];
      net->param_offset[net->nparams] = net->param_count;
      net->param_count += l->params[k]->count;
      net->params[net->nparams++] = l->params[k];
    }
  }
  if (!st) {
    net->flat_data = dl_mem_new(net->param_count ? net->param_count : 1);
    net->flat_diff = dl_mem_new(net->param_count ? net->param_count : 1);
    if (!net->flat_data || !net->flat_diff) st = DL_ENOMEM;
  }
  /* Move every owner into the flat buffers, then point shared params at them. */
  for (int j = 0; j < net->nparams && !st; j++) {
    dl_blob *p = net->params[j];
    const float *old = dl_cdata(p);
    float *flat = dl_mem_host_mut(net->flat_data);
    if (!flat || !old) {
      st = dl_error(DL_ENOMEM, "out of memory for %zu parameters", net->param_count);
      break;
    }
    memcpy(flat + net->param_offset[j], old, p->count * sizeof(float));
    dl_mem *d = dl_mem_view(net->flat_data, net->param_offset[j], p->count);
    dl_mem *g = dl_mem_view(net->flat_diff, net->param_offset[j], p->count);
    dl_mem_release(p->data);
    dl_mem_release(p->diff);
    p->data = d;
    p->diff = g;
  }
  for (int i = 0; i < net->nsteps && !st; i++) {
    dl_layer *l = net->steps[i].layer;
    if (net->steps[i].source < 0) continue;
    pending *p = &b->layers[net->steps[i].source];
    for (int k = 0; k < p->nrules && k < l->nparams; k++) {
      const char *share = p->rules[k].name[0] ? p->rules[k].name : NULL;
      for (int j = 0; share && j < net->nparams; j++)
        if (share_name[j] && strcmp(share_name[j], share) == 0 && net->params[j] != l->params[k]) {
          dl_blob_share_data(l->params[k], net->params[j]);
          dl_blob_share_diff(l->params[k], net->params[j]);
        }
    }
  }
  free(share_name);
  return st;
}

/* ---- setup -------------------------------------------------------------- */

static dl_status setup_steps(dl_net *net) {
  for (int i = 0; i < net->nsteps; i++) {
    dl_net_step *s = &net->steps[i];
    dl_status st = dl_layer_setup(s->layer, s->bottom, s->nb, s->top, s->nt);
    if (st) return st;
    s->layer->index = i;
    /* Working in place on a view (a Flatten or Reshape output) would also
     * change the viewed blob, which its producer may read in backward. */
    for (int k = 0; k < s->nt && k < s->nb; k++)
      if (s->top[k] == s->bottom[k] && s->bottom[k]->data->refs > 1)
        return dl_layer_error(s->layer, DL_ECONFIG,
                              "works in place on '%s', whose data is shared with another blob "
                              "(it is a Flatten, Reshape or Split output); give this layer's top "
                              "a new name",
                              s->bottom[k]->name);
  }
  return DL_OK;
}

/* ---- layouts ------------------------------------------------------------ */

static unsigned blocked_ok(const dl_net_step *s) {
  const dl_layer_ops *ops = s->layer->ops;
  return ops->blocked_ok ? ops->blocked_ok(s->layer, s->bottom, s->nb, s->top, s->nt) : 0;
}

/* ok[b]: blob b is 4-d with whole channel blocks, consumed (the net's outputs
 * are read as NCHW), and its producer and every consumer take it blocked. */
static void blocked_candidates(const dl_net *net, char *ok, char *used) {
  for (int i = 0; i < net->nblobs; i++)
    ok[i] = net->blobs[i]->ndim == 4 && net->blobs[i]->shape[1] % DL_BLOCK == 0;
  for (int i = 0; i < net->nsteps; i++) {
    const dl_net_step *s = &net->steps[i];
    unsigned can = blocked_ok(s);
    for (int k = 0; k < s->nb; k++) {
      int b = blob_index(net, s->bottom[k]);
      used[b] = 1;
      if (k || !(can & DL_BLOCKED_BOTTOM)) ok[b] = 0;
    }
    for (int k = 0; k < s->nt; k++)
      if (k || !(can & DL_BLOCKED_TOP)) ok[blob_index(net, s->top[k])] = 0;
  }
  for (int i = 0; i < net->nblobs; i++)
    ok[i] = ok[i] && used[i];
}

/* Drops the candidates whose neighbour across a layer that keeps one layout
 * from bottom to top (ReLU) or makes a blocked top only from a blocked bottom
 * (pooling) is plain; dropping one can drop others, until none changes. */
static void settle_layouts(const dl_net *net, char *ok) {
  for (int changed = 1; changed;) {
    changed = 0;
    for (int i = 0; i < net->nsteps; i++) {
      const dl_net_step *s = &net->steps[i];
      unsigned can = s->nb && s->nt ? blocked_ok(s) : 0;
      if (!(can & (DL_BLOCKED_SAME | DL_BLOCKED_TOP_FOLLOWS))) continue;
      int b = blob_index(net, s->bottom[0]), t = blob_index(net, s->top[0]);
      if ((can & DL_BLOCKED_SAME) && ok[b] != ok[t]) ok[b] = ok[t] = 0, changed = 1;
      if ((can & DL_BLOCKED_TOP_FOLLOWS) && ok[t] && !ok[b]) ok[t] = 0, changed = 1;
    }
  }
}

/* The blocked layout (dl_blob.blocked) for every blob that can take it.
 * Between oneDNN convolutions it saves converting every activation and
 * gradient to NCHW and back (AlexNet-R, docs/benchmarks.md). The CPU only;
 * not with plain_layouts. */
static void plan_layouts(dl_net *net) {
  if (!net->ctx || net->ctx->gpu || net->ctx->plain_layouts) return;
  char *ok = malloc((size_t)net->nblobs), *used = calloc((size_t)net->nblobs, 1);
  if (ok && used) { /* else (out of memory) all stay plain */
    blocked_candidates(net, ok, used);
    settle_layouts(net, ok);
    for (int i = 0; i < net->nblobs; i++)
      net->blobs[i]->blocked = ok[i];
  }
  free(ok);
  free(used);
}

/* The layers with a blocked blob size themselves again for it. */
static dl_status reshape_blocked(dl_net *net) {
  for (int i = 0; i < net->nsteps; i++) {
    dl_net_step *s = &net->steps[i];
    int any = 0;
    for (int k = 0; k < s->nb; k++)
      any |= s->bottom[k]->blocked;
    for (int k = 0; k < s->nt; k++)
      any |= s->top[k]->blocked;
    dl_status st = any && s->layer->ops->reshape
                       ? s->layer->ops->reshape(s->layer, s->bottom, s->nb, s->top, s->nt)
                       : DL_OK;
    if (st) return st;
  }
  return DL_OK;
}

/* The step whose top is `b`, looking through Splits (their tops view their
 * bottom), and which of its tops it is. */
static const dl_net_step *producer(const dl_net *net, const dl_blob *b, int *top) {
  for (int i = 0; i < net->nsteps; i++) {
    const dl_net_step *s = &net->steps[i];
    for (int k = 0; k < s->nt; k++)
      if (s->top[k] == b) {
        if (s->layer->ops == &dl_layer_split) return producer(net, s->bottom[0], top);
        *top = k;
        return s;
      }
  }
  return NULL;
}

/* Labels that cannot fit the classifier are a setup error, before any
 * training: "labels go up to 9 but 'ip2' gives 5 classes". */
static dl_status check_labels(const dl_net *net) {
  for (int i = 0; i < net->nsteps; i++) {
    const dl_net_step *s = &net->steps[i];
    if (!s->layer->ops->num_classes || s->nb < 2) continue;
    int t, classes = s->layer->ops->num_classes(s->layer);
    const dl_net_step *d = producer(net, s->bottom[1], &t);
    if (!d || !d->layer->ops->max_label || classes <= 0) continue;
    int mx = d->layer->ops->max_label(d->layer, t);
    if (mx >= classes)
      return dl_layer_error(s->layer, DL_ECONFIG,
                            "the labels from '%s' go up to %d, but the scores '%s' have only %d "
                            "classes (is num_output of the layer before too small?)",
                            d->layer->name, mx, s->bottom[0]->name, classes);
  }
  return DL_OK;
}

static void find_outputs(dl_net *net) {
  net->outputs = calloc((size_t)net->nblobs + 1, sizeof *net->outputs);
  net->output_weight = calloc((size_t)net->nblobs + 1, sizeof(float));
  for (int i = 0; i < net->nsteps; i++) {
    dl_net_step *s = &net->steps[i];
    for (int k = 0; k < s->nt; k++) {
      int consumed = 0;
      for (int j = i + 1; j < net->nsteps && !consumed; j++)
        for (int m = 0; m < net->steps[j].nb; m++)
          consumed |= net->steps[j].bottom[m] == s->top[k];
      if (!consumed && !(s->layer->ops->flags & DL_LAYER_DATA)) {
        net->outputs[net->noutputs] = s->top[k];
        net->output_weight[net->noutputs++] = s->loss_weight[k];
      }
    }
  }
}

/* ---- GPU mode ------------------------------------------------------------
 * The few places where the net itself touches blob contents (the loss sum,
 * the loss seeds, the parameter-gradient reset) have device versions here;
 * everything else is the layers' business. */

static int net_gpu(const dl_net *net) { return net->ctx && net->ctx->gpu; }

#ifdef DL_GPU
/* In GPU mode blobs are allocated on the device only; the host copies come
 * when a CPU layer (or a report) asks for them. A test-phase net has no
 * backward: its diffs stay unallocated. */
static dl_status reserve_device(dl_net *net) {
  dl_status st = DL_OK;
  for (int i = 0; i < net->nblobs && !st; i++) {
    dl_blob *b = net->blobs[i];
    st = dl_mem_reserve_device(b->data);
    if (!st && net->phase == DL_TRAIN) st = dl_mem_reserve_device(b->diff);
    if (st) dl_error(st, "cannot place blob '%s' (%zu floats) on the GPU", b->name, b->count);
  }
  if (!st) st = dl_mem_reserve_device(net->flat_data);
  if (!st && net->phase == DL_TRAIN) st = dl_mem_reserve_device(net->flat_diff);
  if (!st) st = dl_mem_reserve_device(net->loss);
  return st;
}

static void gpu_loss_reset(dl_net *net) {
  float *acc = dl_mem_device_mut(net->loss);
  if (acc) dl_gpu_set(1, 0, acc);
}

static void gpu_loss_add(dl_net *net, dl_blob *top, float weight) {
  const float *y = dl_gpu_cdata(top);
  float *acc = dl_mem_device_mut(net->loss);
  if (y && acc) dl_gpu_reduce_into(top->count, y, NULL, weight, 1, acc);
}

static void gpu_seed(dl_blob *top, float weight) {
  float *d = dl_gpu_diff(top);
  if (d) dl_gpu_set(top->count, weight, d);
}

static void gpu_zero_param_diffs(dl_net *net) {
  float *d = dl_mem_device_mut(net->flat_diff);
  if (d) dl_gpu_set(net->param_count, 0, d);
}
#else
/* Unreachable in the CPU-only build: a net is never in GPU mode there. */
static dl_status reserve_device(dl_net *net) { return (void)net, DL_EINTERNAL; }
static void gpu_loss_reset(dl_net *net) { (void)net; }
static void gpu_loss_add(dl_net *net, dl_blob *top, float weight) {
  (void)net, (void)top, (void)weight;
}
static void gpu_seed(dl_blob *top, float weight) { (void)top, (void)weight; }
static void gpu_zero_param_diffs(dl_net *net) { (void)net; }
#endif

/* Touches every buffer now, so that running out of memory is a setup error
 * and the iteration loop never allocates. Unused split diffs stay zero. */
static dl_status allocate_all(dl_net *net) {
  net->loss = dl_mem_new(1);
  if (!net->loss) return DL_ENOMEM;
  if (net_gpu(net)) return reserve_device(net);
  for (int i = 0; i < net->nblobs; i++) {
    dl_blob *b = net->blobs[i];
    if (!dl_data(b) || !dl_diff(b))
      return dl_error(DL_ENOMEM, "out of memory for blob '%s' (%zu floats)", b->name, b->count);
  }
  if (net->param_count && !dl_mem_host_mut(net->flat_diff))
    return dl_error(DL_ENOMEM, "out of memory for parameter gradients");
  return DL_OK;
}

static uint64_t fnv(uint64_t h, const void *p, size_t n) {
  const unsigned char *c = p;
  for (size_t i = 0; i < n; i++)
    h = (h ^ c[i]) * 1099511628211ull;
  return h;
}

static void hash_structure(dl_net *net) {
  uint64_t h = 1469598103934665603ull;
  for (int j = 0; j < net->nparams; j++) {
    h = fnv(h, net->params[j]->name, strlen(net->params[j]->name));
    h = fnv(h, net->params[j]->shape, sizeof net->params[j]->shape);
  }
  net->structure_hash = h;
}

/* ---- batch size ---------------------------------------------------------- */

static const dl_param_spec *find_spec(const dl_param_spec *schema, const char *key, dl_ptype type) {
  for (const dl_param_spec *s = schema; s && s->key; s++)
    if (s->type == type && strcmp(s->key, key) == 0) return s;
  return NULL;
}

int *dl_layer_batch_slot(dl_layer *l) {
  const dl_param_spec *schema = l->ops->schema, *s;
  char *param = l->param;
  if (!(l->ops->flags & DL_LAYER_DATA) || !param) return NULL;
  if ((s = find_spec(schema, "batch_size", DL_PT_INT))) return (int *)(param + s->offset);
  if ((s = find_spec(schema, "shape", DL_PT_INTS))) {
    dl_ints *shape = (dl_ints *)(param + s->offset);
    const dl_param_spec *ax = find_spec(schema, "batch_axis", DL_PT_INT);
    int axis = ax ? *(const int *)(param + ax->offset) : 0;
    return axis >= 0 && axis < shape->n ? &shape->v[axis] : NULL;
  }
  return NULL;
}

int dl_net_batch_size(const dl_net *net) {
  for (int i = 0; i < net->nsteps; i++) {
    int *b = dl_layer_batch_slot(net->steps[i].layer);
    if (b) return *b;
  }
  return 0;
}

/* ctx->batch > 0 replaces a data layer's batch size (before setup sizes its tops). */
static dl_status override_batch(const dl_net *net, dl_layer *l) {
  if (!net->ctx || net->ctx->batch <= 0 || !(l->ops->flags & DL_LAYER_DATA)) return DL_OK;
  int *b = dl_layer_batch_slot(l);
  if (!b)
    return dl_layer_error(l, DL_ECONFIG,
                          "cannot set its batch size to %d: it has no batch_size parameter (nor a "
                          "shape with batch_axis)",
                          net->ctx->batch);
  *b = net->ctx->batch;
  return DL_OK;
}

static dl_status build(dl_net *net, const dl_ydoc *doc) {
  const dl_ynode *root = doc->root;
  dl_loc loc = dl_yloc(doc, root);
  if (root->type != DL_Y_MAP)
    return dl_error_at(DL_ECONFIG, &loc, "a net file is a mapping with 'name' and 'layers'");
  static const char *const net_keys[] = {"name", "layers", NULL};
  for (int i = 0; i < root->n; i++) {
    const char *k = root->keys[i]->value;
    if (strcmp(k, "name") && strcmp(k, "layers")) {
      const char *near = dl_closest(k, net_keys);
      dl_loc kl = dl_yloc(doc, root->keys[i]);
      return dl_error_at(DL_ECONFIG, &kl, "net: unknown key '%s'%s%s%s", k,
                         near ? " (did you mean '" : " (a net file has 'name' and 'layers')",
                         near ? near : "", near ? "'?)" : "");
    }
  }
  const dl_ynode *name = dl_ymap_get(root, "name"), *layers = dl_ymap_get(root, "layers");
  net->name = strdup(name && name->type == DL_Y_SCALAR ? name->value : "net");
  if (!layers || layers->type != DL_Y_SEQ || layers->n == 0) {
    dl_loc ll = dl_yloc(doc, layers ? layers : root);
    return dl_error_at(DL_ECONFIG, &ll, "net: 'layers' must be a non-empty list of layers");
  }
  builder b = {.net = net, .doc = doc};
  dl_status st = DL_OK, first = DL_OK;
  for (int i = 0; i < layers->n && st != DL_ENOMEM; i++) {
    const dl_ynode *node = layers->items[i];
    dl_layer *l = NULL;
    st = dl_layer_from_node(doc, node, net->phase, net->ctx, &l);
    int active = 1;
    if (!st) {
      char owner[300];
      snprintf(owner, sizeof owner, "layer '%s'", l->name);
      st = layer_in_phase(doc, node, owner, net->phase, &active);
    }
    /* Names are unique within a phase: Caffe's train and test data layers
     * commonly share one name. */
    if (!st && active) {
      for (int j = 0; j < b.nlayers; j++)
        if (strcmp(b.layers[j].layer->name, l->name) == 0) {
          st = dl_layer_error(l, DL_ECONFIG, "a layer named '%s' is defined earlier (line %d)",
                              l->name, b.layers[j].layer->loc.line);
          break;
        }
    }
    if (!st && active) st = override_batch(net, l);
    if (!st && active) {
      st = add_pending(&b, node, l);
      if (!st) l = NULL;
    }
    dl_layer_free(l);
    if (st && !first) first = st;
  }
  st = first;
  if (!st) st = wire_steps(&b);
  if (!st) st = setup_steps(net);
  if (!st) plan_layouts(net), st = reshape_blocked(net);
  if (!st) st = check_labels(net);
  if (!st) st = gather_params(net, &b);
  if (!st) {
    plan_backward(net);
    find_outputs(net);
    hash_structure(net);
    st = allocate_all(net);
  }
  for (int i = 0; i < b.nlayers; i++)
    dl_layer_free(b.layers[i].layer);
  for (int i = 0; i < b.nvers; i++)
    free(b.vers[i].name);
  free(b.layers);
  free(b.vers);
  return st;
}

static dl_status from_doc(dl_ydoc *doc, dl_phase phase, dl_ctx *ctx, dl_net **out) {
  *out = NULL;
  dl_net *net = calloc(1, sizeof *net);
  if (!net) return dl_error(DL_ENOMEM, "out of memory");
  net->phase = phase;
  net->ctx = ctx;
  net->file = strdup(doc->file);
  dl_status st = build(net, doc);
  if (st) {
    dl_net_free(net);
    return st;
  }
  *out = net;
  return DL_OK;
}

dl_status dl_net_from_file(const char *path, dl_phase phase, dl_ctx *ctx, dl_net **out) {
  dl_ydoc *doc = NULL;
  *out = NULL;
  dl_status st = dl_yaml_load_file(path, &doc);
  if (!st) st = from_doc(doc, phase, ctx, out);
  dl_yaml_free(doc);
  return st;
}

dl_status dl_net_from_string(const char *yaml, const char *name, dl_phase phase, dl_ctx *ctx,
                             dl_net **out) {
  dl_ydoc *doc = NULL;
  *out = NULL;
  dl_status st = dl_yaml_load_string(yaml, name, &doc);
  if (!st) st = from_doc(doc, phase, ctx, out);
  dl_yaml_free(doc);
  return st;
}

void dl_net_free(dl_net *net) {
  if (!net) return;
  for (int i = 0; i < net->nsteps; i++)
    dl_layer_free(net->steps[i].layer);
  for (int i = 0; i < net->nblobs; i++)
    dl_blob_free(net->blobs[i]);
  dl_mem_release(net->flat_data);
  dl_mem_release(net->flat_diff);
  dl_mem_release(net->loss);
  free(net->steps);
  free(net->blobs);
  free(net->params);
  free(net->lr_mult);
  free(net->decay_mult);
  free(net->param_offset);
  free(net->in_backward);
  free(net->outputs);
  free(net->output_weight);
  free(net->name);
  free(net->file);
  free(net);
}

/* ---- running ------------------------------------------------------------ */

static double now_seconds(void) {
  struct timespec t;
  clock_gettime(CLOCK_MONOTONIC, &t);
  return (double)t.tv_sec + 1e-9 * (double)t.tv_nsec;
}

/* In GPU mode a layer runs its GPU twin when it has one; the loss stays on
 * the device (net->loss) and comes to the host only when asked for. Timings
 * wait for the GPU, so they are the layers' own. */
dl_status dl_net_forward(dl_net *net, double *loss) {
  int gpu = net_gpu(net);
  double total = 0;
  dl_status st;
  if (gpu) gpu_loss_reset(net);
  for (int i = 0; i < net->nsteps; i++) {
    dl_net_step *s = &net->steps[i];
    const dl_layer_ops *ops = s->layer->ops;
    dl_forward_fn fwd = gpu && ops->forward_gpu ? ops->forward_gpu : ops->forward;
    if (gpu && net->timing) dl_gpu_sync();
    double t0 = net->timing ? now_seconds() : 0;
    if ((st = fwd(s->layer, s->bottom, s->nb, s->top, s->nt))) return st;
    if (gpu && (st = net->timing ? dl_gpu_sync() : dl_gpu_error())) return st;
    if (net->timing) s->fwd_seconds += now_seconds() - t0;
    for (int k = 0; k < s->nt; k++) {
      if (s->loss_weight[k] == 0) continue;
      if (gpu) {
        gpu_loss_add(net, s->top[k], s->loss_weight[k]);
        continue;
      }
      const float *y = dl_cdata(s->top[k]);
      double sum = 0;
      for (size_t e = 0; e < s->top[k]->count; e++) sum += y[e];
      total += s->loss_weight[k] * sum;
    }
  }
  if (gpu) {
    if (loss) total = dl_mem_host(net->loss)[0];
    if ((st = dl_gpu_error())) return st;
  }
  if (loss) *loss = total;
  return DL_OK;
}

void dl_net_backward(dl_net *net) {
  int gpu = net_gpu(net);
  for (int i = net->nsteps - 1; i >= 0; i--) {
    dl_net_step *s = &net->steps[i];
    if (!s->need_backward) continue;
    for (int k = 0; k < s->nt; k++) {
      if (s->loss_weight[k] == 0) continue;
      if (gpu)
        gpu_seed(s->top[k], s->loss_weight[k]);
      else
        dl_set(s->top[k]->count, s->loss_weight[k], dl_diff(s->top[k]));
    }
    const dl_layer_ops *ops = s->layer->ops;
    dl_backward_fn bwd = gpu && ops->backward_gpu ? ops->backward_gpu : ops->backward;
    if (gpu && net->timing) dl_gpu_sync();
    double t0 = net->timing ? now_seconds() : 0;
    bwd(s->layer, s->top, s->nt, s->prop_down, s->bottom, s->nb);
    if (gpu && net->timing) dl_gpu_sync();
    if (net->timing) s->bwd_seconds += now_seconds() - t0;
  }
}

size_t dl_net_stored_grad_count(const dl_net *net) {
  size_t n = net->param_count;
  for (int j = 0; net->in_backward && j < net->nparams; j++)
    if (net->in_backward[j]) n -= net->params[j]->count;
  return n;
}

void dl_net_zero_param_diffs(dl_net *net) {
  if (!net->param_count) return;
  if (net_gpu(net)) {
    gpu_zero_param_diffs(net);
    return;
  }
  float *diff = dl_mem_host_mut(net->flat_diff);
  if (!net->in_backward) {
    dl_set(net->param_count, 0, diff);
    return;
  }
  for (int j = 0; j < net->nparams; j++)
    if (!net->in_backward[j]) dl_set(net->params[j]->count, 0, diff + net->param_offset[j]);
}

void dl_net_report_cpu_layers(const dl_net *net, FILE *f) {
  static const dl_layer_ops *told[128];
  static int ntold;
  if (!net || !f || !net_gpu(net)) return;
  for (int i = 0; i < net->nsteps; i++) {
    const dl_net_step *s = &net->steps[i];
    const dl_layer_ops *ops = s->layer->ops;
    int fwd = !ops->forward_gpu, bwd = s->need_backward && ops->backward && !ops->backward_gpu;
    if ((ops->flags & DL_LAYER_DATA) || (!fwd && !bwd)) continue;
    int seen = 0;
    for (int k = 0; k < ntold; k++) seen |= told[k] == ops;
    if (seen || ntold == (int)(sizeof told / sizeof told[0])) continue;
    told[ntold++] = ops;
    char names[160] = "";
    size_t off = 0;
    for (int j = i; j < net->nsteps && off < sizeof names; j++)
      if (net->steps[j].layer->ops == ops)
        off += (size_t)snprintf(names + off, sizeof names - off, "%s'%s'", off ? ", " : "",
                                net->steps[j].layer->name);
    fprintf(f,
            "GPU mode: %s has no GPU code yet: its %s on the CPU (%s), with copies between host "
            "and device around it\n",
            ops->type,
            fwd && bwd ? "forward and backward run" : fwd ? "forward runs" : "backward runs", names);
  }
}

dl_status dl_net_share_params(dl_net *test, const dl_net *train) {
  for (int i = 0; i < test->nsteps; i++) {
    dl_layer *l = test->steps[i].layer;
    if (!l->nparams) continue;
    dl_layer *src = dl_net_layer(train, l->name);
    if (!src || src->nparams != l->nparams)
      return dl_layer_error(l, DL_ECONFIG,
                            "has parameters in the test phase but no matching layer '%s' in the "
                            "train phase to take them from",
                            l->name);
    for (int k = 0; k < l->nparams; k++) {
      if (src->params[k]->count != l->params[k]->count)
        return dl_layer_error(l, DL_ECONFIG,
                              "parameter %d has %zu values in the test phase but %zu in train", k,
                              l->params[k]->count, src->params[k]->count);
      dl_blob_share_data(l->params[k], src->params[k]);
    }
  }
  return DL_OK;
}

int dl_net_output_perplexity(const dl_net *net, int o) {
  if (o < 0 || o >= net->noutputs) return 0;
  for (int i = net->nsteps - 1; i >= 0; i--) { /* the last writer of the blob */
    const dl_net_step *s = &net->steps[i];
    const dl_layer *l = s->layer;
    if (s->nt > 0 && s->top[0] == net->outputs[o])
      return l->ops->reports_perplexity && l->ops->reports_perplexity(l);
  }
  return 0;
}

dl_blob *dl_net_blob(const dl_net *net, const char *name) {
  for (int i = 0; i < net->nblobs; i++)
    if (strcmp(net->blobs[i]->name, name) == 0) return net->blobs[i];
  return NULL;
}

dl_layer *dl_net_layer(const dl_net *net, const char *name) {
  for (int i = 0; i < net->nsteps; i++)
    if (strcmp(net->steps[i].layer->name, name) == 0) return net->steps[i].layer;
  return NULL;
}

const char *dl_net_param_name(const dl_net *net, int k) { return net->params[k]->name; }

size_t dl_net_activation_bytes(const dl_net *net) {
  size_t n = 0;
  for (int i = 0; i < net->nblobs; i++) {
    dl_blob *b = net->blobs[i];
    if (b->data->parent == NULL && b->data->refs >= 1) n += b->capacity * sizeof(float);
    n += b->capacity * sizeof(float); /* diff */
  }
  return n;
}

static void human_bytes(double b, char *buf, size_t n) {
  const char *u[] = {"B", "KiB", "MiB", "GiB"};
  int i = 0;
  while (b >= 1024 && i < 3)
    b /= 1024, i++;
  snprintf(buf, n, i ? "%.1f %s" : "%.0f %s", b, u[i]);
}

void dl_net_print_summary(const dl_net *net, FILE *f) {
  fprintf(f, "net '%s' (%s phase): %d layers\n", net->name, phase_names[net->phase], net->nsteps);
  fprintf(f, "  %-20s %-16s %-28s %12s\n", "layer", "type", "top shapes", "params");
  for (int i = 0; i < net->nsteps; i++) {
    const dl_net_step *s = &net->steps[i];
    size_t np = 0;
    for (int k = 0; k < s->layer->nparams; k++)
      np += s->layer->params[k]->count;
    char shapes[200] = "", one[96];
    size_t off = 0;
    for (int k = 0; k < s->nt && off < sizeof shapes; k++)
      off += (size_t)snprintf(shapes + off, sizeof shapes - off, "%s%s%s", k ? ", " : "",
                              dl_blob_shape_str(s->top[k], one, sizeof one),
                              s->top[k]->blocked ? " nChw16c" : "");
    fprintf(f, "  %-20s %-16s %-28s %12zu%s\n", s->layer->name, s->layer->ops->type, shapes, np,
            s->need_backward ? "" : "  (no backward)");
  }
  char act[32], par[32];
  human_bytes((double)dl_net_activation_bytes(net), act, sizeof act);
  size_t stored = dl_net_stored_grad_count(net);
  human_bytes((double)(net->param_count + stored) * sizeof(float), par, sizeof par);
  fprintf(f, "  parameters: %zu (%s with gradients%s); activations and gradients: %s\n",
          net->param_count, par,
          stored < net->param_count ? ", those of the weights updated during backward not stored"
                                    : "",
          act);
  int blocked = 0;
  for (int i = 0; i < net->nblobs; i++)
    blocked += net->blobs[i]->blocked;
  if (blocked)
    fprintf(f, "  %d blob%s kept in oneDNN's blocked layout (nChw16c)\n", blocked,
            blocked > 1 ? "s" : "");
}
