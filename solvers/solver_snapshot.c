/* What goes into a snapshot (io/snapshot.c is the file format): solver type,
 * iteration, seed, a hash of the net's parameter layout, the loss window,
 * every parameter by name and shape, the solver's history (one or two floats
 * per parameter, see dl_solver_history_slots), each data layer's cursor and
 * (format version 2) the state each recurrent layer carries into its next
 * forward. Resuming restores all of it, so the following losses are
 * bit-identical to an uninterrupted run. */
#include <glob.h>
#include <stdlib.h>
#include <string.h>

#include "io/snapshot.h"
#include "solvers/solver.h"

typedef struct {
  char name[256];
  int ndim;
  int shape[DL_MAX_AXES];
  size_t count;
  const unsigned char *data;
} snap_param;

typedef struct {
  char key[300];
  int64_t cursor[4];
} snap_cursor;

typedef struct {
  char key[300]; /* "train/lstm1" */
  uint64_t count;
  const unsigned char *data;
} snap_state;

typedef struct {
  uint32_t kind, version;
  char solver_type[32];
  uint64_t iter, seed, hash;
  uint32_t window_n;
  uint64_t losses_seen;
  const unsigned char *window;
  uint32_t nparams;
  snap_param *params;
  uint64_t history_count;
  const unsigned char *history;
  uint32_t ncursors;
  snap_cursor *cursors;
  uint32_t nstates;
  snap_state *states;
  unsigned char *payload;
} snap;

static void snap_free(snap *z) {
  free(z->params);
  free(z->cursors);
  free(z->states);
  free(z->payload);
}

static void put_params(dl_sbuf *b, const dl_net *net) {
  dl_sbuf_u32(b, (uint32_t)net->nparams);
  for (int j = 0; j < net->nparams; j++) {
    dl_blob *p = net->params[j];
    dl_sbuf_str(b, p->name);
    dl_sbuf_u32(b, (uint32_t)p->ndim);
    for (int a = 0; a < p->ndim; a++) dl_sbuf_u32(b, (uint32_t)p->shape[a]);
    dl_sbuf_floats(b, dl_cdata(p), p->count);
  }
}

static void put_cursors(dl_sbuf *b, const dl_net *net, const char *phase, uint32_t *count,
                        int write) {
  for (int i = 0; net && i < net->nsteps; i++) {
    dl_layer *l = net->steps[i].layer;
    if (!l->ops->get_cursor) continue;
    (*count)++;
    if (!write) continue;
    int64_t c[4] = {0};
    l->ops->get_cursor(l, c);
    char key[300];
    snprintf(key, sizeof key, "%s/%s", phase, l->name);
    dl_sbuf_str(b, key);
    for (int k = 0; k < 4; k++) dl_sbuf_u64(b, (uint64_t)c[k]);
  }
}

/* Counts (write 0) or writes the carried state of every layer that has one. */
static dl_status put_states(dl_sbuf *b, const dl_net *net, const char *phase, uint32_t *count,
                            int write) {
  for (int i = 0; net && i < net->nsteps; i++) {
    dl_layer *l = net->steps[i].layer;
    if (!l->ops->get_state) continue;
    (*count)++;
    if (!write) continue;
    size_t n = l->ops->state_size(l);
    float *x = malloc((n ? n : 1) * sizeof(float));
    if (!x) return dl_error(DL_ENOMEM, "out of memory saving the state of layer '%s'", l->name);
    l->ops->get_state(l, x);
    char key[300];
    snprintf(key, sizeof key, "%s/%s", phase, l->name);
    dl_sbuf_str(b, key);
    dl_sbuf_u64(b, (uint64_t)n);
    dl_sbuf_floats(b, x, n);
    free(x);
  }
  return DL_OK;
}

static int iter_of(const char *path) {
  const char *p = strstr(path, "_iter_");
  return p ? atoi(p + 6) : -1;
}

static int by_iter(const void *a, const void *b) {
  return iter_of(*(char *const *)a) - iter_of(*(char *const *)b);
}

/* Removes all but the newest `keep` snapshots of this prefix. */
static void prune_snapshots(const char *prefix, int keep) {
  char pattern[DL_STR_MAX + 32];
  snprintf(pattern, sizeof pattern, "%s_iter_*.dlsnap", prefix);
  glob_t g;
  if (glob(pattern, 0, NULL, &g) != 0) return;
  qsort(g.gl_pathv, g.gl_pathc, sizeof(char *), by_iter);
  for (size_t i = 0; i + (size_t)keep < g.gl_pathc; i++) remove(g.gl_pathv[i]);
  globfree(&g);
}

dl_status dl_solver_snapshot(dl_solver *s) {
  char path[DL_STR_MAX + 64];
  snprintf(path, sizeof path, "%s_iter_%lld.dlsnap", s->param.snapshot_prefix, (long long)s->iter);
  dl_sbuf b = {0};
  dl_sbuf_str(&b, dl_solver_type_names[s->param.type]);
  dl_sbuf_u64(&b, (uint64_t)s->iter);
  dl_sbuf_u64(&b, (uint64_t)s->param.seed);
  dl_sbuf_u64(&b, s->train->structure_hash);
  dl_sbuf_u32(&b, (uint32_t)s->param.average_loss);
  dl_sbuf_u64(&b, (uint64_t)s->losses_seen);
  dl_sbuf_floats(&b, dl_mem_host(s->loss_window), (size_t)s->param.average_loss);
  put_params(&b, s->train);
  size_t history = (size_t)dl_solver_history_slots(s->param.type) * s->train->param_count;
  dl_sbuf_u64(&b, history);
  dl_sbuf_floats(&b, dl_mem_host(s->history), history);
  uint32_t n = 0;
  put_cursors(&b, s->train, "train", &n, 0);
  put_cursors(&b, s->test, "test", &n, 0);
  dl_sbuf_u32(&b, n);
  n = 0;
  put_cursors(&b, s->train, "train", &n, 1);
  put_cursors(&b, s->test, "test", &n, 1);
  n = 0;
  put_states(&b, s->train, "train", &n, 0);
  put_states(&b, s->test, "test", &n, 0);
  dl_sbuf_u32(&b, n);
  dl_status st = put_states(&b, s->train, "train", &n, 1);
  if (!st) st = put_states(&b, s->test, "test", &n, 1);
  if (!st) st = dl_snapshot_write_file(path, DL_SNAP_FULL, &b);
  dl_sbuf_free(&b);
  if (st) return st;
  snprintf(s->last_snapshot, sizeof s->last_snapshot, "%s", path);
  if (!s->quiet) fprintf(s->log, "snapshot written: %s\n", path);
  prune_snapshots(s->param.snapshot_prefix, s->param.snapshot_keep);
  return DL_OK;
}

dl_status dl_net_export_weights(const dl_net *net, const char *path) {
  dl_sbuf b = {0};
  dl_sbuf_str(&b, "");
  dl_sbuf_u64(&b, 0);
  dl_sbuf_u64(&b, 0);
  dl_sbuf_u64(&b, net->structure_hash);
  dl_sbuf_u32(&b, 0);
  dl_sbuf_u64(&b, 0);
  put_params(&b, net);
  dl_sbuf_u64(&b, 0);
  dl_sbuf_u32(&b, 0); /* no cursors */
  dl_sbuf_u32(&b, 0); /* no carried states */
  dl_status st = dl_snapshot_write_file(path, DL_SNAP_WEIGHTS, &b);
  dl_sbuf_free(&b);
  return st;
}

static dl_status corrupt(const char *path, const char *what) {
  return dl_error(DL_EIO, "%s: snapshot is corrupt (%s)", path, what);
}

static dl_status snap_read(const char *path, snap *z) {
  memset(z, 0, sizeof *z);
  size_t len;
  dl_status st = dl_snapshot_read_file(path, &z->kind, &z->version, &z->payload, &len);
  if (st) return st;
  dl_sreader r = {.p = z->payload, .n = len, .file = path};
  uint32_t sl;
  const char *type = dl_sread_str(&r, &sl);
  if (sl >= sizeof z->solver_type) return corrupt(path, "solver type");
  if (type) memcpy(z->solver_type, type, sl);
  z->iter = dl_sread_u64(&r);
  z->seed = dl_sread_u64(&r);
  z->hash = dl_sread_u64(&r);
  z->window_n = dl_sread_u32(&r);
  z->losses_seen = dl_sread_u64(&r);
  z->window = dl_sread_floats(&r, z->window_n);
  z->nparams = dl_sread_u32(&r);
  if (r.failed || z->nparams > 1000000) return corrupt(path, "header fields");
  z->params = calloc(z->nparams + 1, sizeof *z->params);
  if (!z->params) return dl_error(DL_ENOMEM, "out of memory");
  for (uint32_t j = 0; j < z->nparams && !r.failed; j++) {
    snap_param *p = &z->params[j];
    const char *name = dl_sread_str(&r, &sl);
    if (sl >= sizeof p->name) return corrupt(path, "parameter name");
    if (name) memcpy(p->name, name, sl);
    p->ndim = (int)dl_sread_u32(&r);
    if (p->ndim > DL_MAX_AXES) return corrupt(path, "parameter shape");
    p->count = 1;
    for (int a = 0; a < p->ndim; a++) {
      p->shape[a] = (int)dl_sread_u32(&r);
      if (p->shape[a] <= 0 || p->count > ((size_t)1 << 40) / (size_t)p->shape[a])
        return corrupt(path, "parameter shape");
      p->count *= (size_t)p->shape[a];
    }
    p->data = dl_sread_floats(&r, p->count);
  }
  z->history_count = dl_sread_u64(&r);
  z->history = dl_sread_floats(&r, z->history_count);
  z->ncursors = dl_sread_u32(&r);
  if (r.failed || z->ncursors > 10000) return corrupt(path, "truncated payload");
  z->cursors = calloc(z->ncursors + 1, sizeof *z->cursors);
  if (!z->cursors) return dl_error(DL_ENOMEM, "out of memory");
  for (uint32_t i = 0; i < z->ncursors && !r.failed; i++) {
    const char *key = dl_sread_str(&r, &sl);
    if (sl >= sizeof z->cursors[i].key) return corrupt(path, "cursor name");
    if (key) memcpy(z->cursors[i].key, key, sl);
    for (int k = 0; k < 4; k++) z->cursors[i].cursor[k] = (int64_t)dl_sread_u64(&r);
  }
  if (z->version >= 2) {
    z->nstates = dl_sread_u32(&r);
    if (r.failed || z->nstates > 10000) return corrupt(path, "truncated payload");
    z->states = calloc(z->nstates + 1, sizeof *z->states);
    if (!z->states) return dl_error(DL_ENOMEM, "out of memory");
    for (uint32_t i = 0; i < z->nstates && !r.failed; i++) {
      snap_state *q = &z->states[i];
      const char *key = dl_sread_str(&r, &sl);
      if (sl >= sizeof q->key) return corrupt(path, "state name");
      if (key) memcpy(q->key, key, sl);
      q->count = dl_sread_u64(&r);
      if (q->count > ((uint64_t)1 << 40)) return corrupt(path, "state size");
      q->data = dl_sread_floats(&r, (size_t)q->count);
    }
  }
  if (r.failed || r.off != r.n) return corrupt(path, "payload length does not match its contents");
  return DL_OK;
}

static const snap_param *find_param(const snap *z, const char *name) {
  for (uint32_t j = 0; j < z->nparams; j++)
    if (strcmp(z->params[j].name, name) == 0) return &z->params[j];
  return NULL;
}

static int same_shape(const snap_param *sp, const dl_blob *b) {
  if (sp->ndim != b->ndim) return 0;
  for (int a = 0; a < b->ndim; a++)
    if (sp->shape[a] != b->shape[a]) return 0;
  return 1;
}

static dl_status restore_cursors(dl_net *net, const char *phase, const snap *z, const char *path) {
  for (int i = 0; net && i < net->nsteps; i++) {
    dl_layer *l = net->steps[i].layer;
    if (!l->ops->set_cursor) continue;
    char key[300];
    snprintf(key, sizeof key, "%s/%s", phase, l->name);
    const snap_cursor *c = NULL;
    for (uint32_t k = 0; k < z->ncursors; k++)
      if (strcmp(z->cursors[k].key, key) == 0) c = &z->cursors[k];
    if (!c) return dl_error(DL_EIO, "%s: has no data position for layer '%s'", path, l->name);
    dl_status st = l->ops->set_cursor(l, c->cursor);
    if (st) return st;
  }
  return DL_OK;
}

/* Hands each stateful layer its saved state. Format 1 files have none: the
 * layers keep their zero state, with a note (the resume is then not exact). */
static dl_status restore_states(dl_solver *s, dl_net *net, const char *phase, const snap *z,
                                const char *path) {
  for (int i = 0; net && i < net->nsteps; i++) {
    dl_layer *l = net->steps[i].layer;
    if (!l->ops->set_state) continue;
    if (z->version < 2) {
      if (!s->quiet)
        fprintf(s->log,
                "note: %s is a format %u snapshot, which does not hold the state layer '%s' "
                "carries between batches; it starts from zero, so the resumed losses differ "
                "slightly from an uninterrupted run's\n",
                path, z->version, l->name);
      continue;
    }
    char key[300];
    snprintf(key, sizeof key, "%s/%s", phase, l->name);
    const snap_state *q = NULL;
    for (uint32_t k = 0; k < z->nstates; k++)
      if (strcmp(z->states[k].key, key) == 0) q = &z->states[k];
    if (!q)
      return dl_error(DL_EIO, "%s: has no carried state for layer '%s' (%s phase)", path, l->name,
                      phase);
    size_t want = l->ops->state_size(l);
    if (q->count != (uint64_t)want)
      return dl_error(DL_ECONFIG,
                      "%s: the carried state of layer '%s' (%s phase) holds %llu floats, but the "
                      "layer now carries %zu: the snapshot was written with another batch size "
                      "(or hidden size); resume with the net it was written with, or start from "
                      "its weights with --weights",
                      path, l->name, phase, (unsigned long long)q->count, want);
    float *x = malloc((want ? want : 1) * sizeof(float));
    if (!x) return dl_error(DL_ENOMEM, "out of memory");
    memcpy(x, q->data, want * sizeof(float)); /* the payload is not float-aligned */
    dl_status st = l->ops->set_state(l, x, want);
    free(x);
    if (st) return st;
  }
  return DL_OK;
}

dl_status dl_solver_restore(dl_solver *s, const char *path) {
  snap z;
  dl_status st = snap_read(path, &z);
  dl_net *net = s->train;
  if (st) goto out;
  if (z.kind != DL_SNAP_FULL) {
    st = dl_error(DL_EIO, "%s: holds weights only; use --weights to fine-tune from it", path);
    goto out;
  }
  if (strcmp(z.solver_type, dl_solver_type_names[s->param.type]) != 0) {
    /* Histories of different types mean different things (and sizes). */
    st = dl_error(DL_ECONFIG,
                  "%s: written by solver type '%s', but this solver is '%s'; resume with "
                  "'type: %s', or start a new run from its weights with --weights",
                  path, z.solver_type, dl_solver_type_names[s->param.type], z.solver_type);
    goto out;
  }
  size_t history = (size_t)dl_solver_history_slots(s->param.type) * net->param_count;
  if (z.hash != net->structure_hash || z.nparams != (uint32_t)net->nparams ||
      z.history_count != history) {
    st = dl_error(DL_ECONFIG, "%s: was written for a net with different parameters (names or shapes); use --weights to fine-tune from it instead", path);
    goto out;
  }
  for (int j = 0; j < net->nparams; j++) {
    const snap_param *sp = find_param(&z, net->params[j]->name);
    if (!sp || !same_shape(sp, net->params[j])) {
      st = dl_error(DL_ECONFIG, "%s: parameter '%s' missing or of another shape", path, net->params[j]->name);
      goto out;
    }
    memcpy(dl_data(net->params[j]), sp->data, sp->count * sizeof(float));
  }
  memcpy(dl_mem_host_mut(s->history), z.history, z.history_count * sizeof(float));
  if (z.window_n == (uint32_t)s->param.average_loss) {
    memcpy(dl_mem_host_mut(s->loss_window), z.window, z.window_n * sizeof(float));
    s->losses_seen = (int64_t)z.losses_seen;
  }
  s->iter = (int64_t)z.iter;
  s->param.seed = (int)z.seed;
  s->ctx.seed = z.seed;
  s->ctx.iter = s->iter;
  st = restore_cursors(s->train, "train", &z, path);
  if (!st) st = restore_cursors(s->test, "test", &z, path);
  if (!st) st = restore_states(s, s->train, "train", &z, path);
  if (!st) st = restore_states(s, s->test, "test", &z, path);
  if (!st && !s->quiet)
    fprintf(s->log, "resumed from %s at iteration %lld (seed %llu)\n", path, (long long)s->iter,
            (unsigned long long)z.seed);
out:
  snap_free(&z);
  return st;
}

dl_status dl_net_load_weights(dl_net *net, const char *path, FILE *report, int *loaded_out) {
  snap z;
  dl_status st = snap_read(path, &z);
  if (st) {
    snap_free(&z);
    return st;
  }
  int loaded = 0;
  for (int j = 0; j < net->nparams; j++) {
    dl_blob *b = net->params[j];
    const snap_param *sp = find_param(&z, b->name);
    char a[96], c[96];
    if (!sp) {
      if (report) fprintf(report, "  %-28s not in file (keeps its initial values)\n", b->name);
    } else if (!same_shape(sp, b)) {
      if (report) {
        snap_param tmp = *sp;
        dl_blob shape = {.ndim = tmp.ndim};
        memcpy(shape.shape, tmp.shape, sizeof shape.shape);
        fprintf(report, "  %-28s shape mismatch: net %s, file %s (keeps its initial values)\n",
                b->name, dl_blob_shape_str(b, a, sizeof a), dl_blob_shape_str(&shape, c, sizeof c));
      }
    } else {
      memcpy(dl_data(b), sp->data, sp->count * sizeof(float));
      loaded++;
      if (report) fprintf(report, "  %-28s loaded %s\n", b->name, dl_blob_shape_str(b, a, sizeof a));
    }
  }
  for (uint32_t k = 0; k < z.nparams && report; k++) {
    int found = 0;
    for (int j = 0; j < net->nparams; j++) found |= strcmp(net->params[j]->name, z.params[k].name) == 0;
    if (!found) fprintf(report, "  %-28s in file but not in net (ignored)\n", z.params[k].name);
  }
  if (loaded_out) *loaded_out = loaded;
  snap_free(&z);
  return DL_OK;
}

dl_status dl_solver_load_weights(dl_solver *s, const char *path, FILE *report) {
  if (report) fprintf(report, "fine-tuning from %s:\n", path);
  int loaded = 0;
  dl_status st = dl_net_load_weights(s->train, path, report, &loaded);
  if (!st && loaded == 0)
    st = dl_error(DL_ECONFIG, "%s: no parameter of the net matches the file by name and shape", path);
  return st;
}
