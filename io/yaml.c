/* YAML loading on libyaml's event API: we build our own small tree so that
 * aliases can be refused outright (they are how "billion laughs" files blow up)
 * and every limit is checked while parsing, not after. */
#include "io/yaml.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <yaml.h>

typedef struct {
  yaml_parser_t parser;
  const char *file;
  int nodes;
} loader;

static void node_free(dl_ynode *n) {
  if (!n) return;
  for (int i = 0; i < n->n; i++) {
    if (n->keys) node_free(n->keys[i]);
    node_free(n->items[i]);
  }
  free(n->keys);
  free(n->items);
  free(n->value);
  free(n);
}

void dl_yaml_free(dl_ydoc *doc) {
  if (!doc) return;
  node_free(doc->root);
  free(doc->file);
  free(doc);
}

static dl_status loc_error(loader *L, yaml_mark_t m, const char *what) {
  dl_loc loc = {L->file, (int)m.line + 1, (int)m.column + 1};
  return dl_error_at(DL_ECONFIG, &loc, "%s", what);
}

static dl_status parser_error(loader *L) {
  yaml_parser_t *p = &L->parser;
  char msg[300];
  snprintf(msg, sizeof msg, "YAML syntax error: %s%s%s", p->problem ? p->problem : "unknown",
           p->context ? " " : "", p->context ? p->context : "");
  return loc_error(L, p->problem_mark, msg);
}

static dl_ynode *new_node(loader *L, dl_ytype t, yaml_mark_t m, dl_status *st) {
  if (++L->nodes > DL_YAML_MAX_NODES) {
    *st = loc_error(L, m, "file too large: more than 200000 YAML nodes");
    return NULL;
  }
  dl_ynode *n = calloc(1, sizeof *n);
  if (!n) {
    *st = dl_error(DL_ENOMEM, "out of memory reading %s", L->file);
    return NULL;
  }
  n->type = t;
  n->line = (int)m.line + 1;
  n->col = (int)m.column + 1;
  return n;
}

static int push(dl_ynode *parent, dl_ynode *key, dl_ynode *item) {
  if ((parent->n & (parent->n - 1)) == 0) { /* grow at powers of two */
    size_t cap = parent->n ? (size_t)parent->n * 2 : 1;
    dl_ynode **items = realloc(parent->items, cap * sizeof *items);
    if (!items) return 0;
    parent->items = items;
    if (parent->type == DL_Y_MAP) {
      dl_ynode **keys = realloc(parent->keys, cap * sizeof *keys);
      if (!keys) return 0;
      parent->keys = keys;
    }
  }
  if (parent->type == DL_Y_MAP) parent->keys[parent->n] = key;
  parent->items[parent->n++] = item;
  return 1;
}

/* Parses one node whose first event is `ev` (consumed by the caller's loop). */
static dl_status parse_node(loader *L, yaml_event_t *ev, int depth, dl_ynode **out);

static dl_status next_event(loader *L, yaml_event_t *ev) {
  if (!yaml_parser_parse(&L->parser, ev)) return parser_error(L);
  return DL_OK;
}

static dl_status parse_children(loader *L, dl_ynode *n, int depth) {
  yaml_event_type_t end = n->type == DL_Y_MAP ? YAML_MAPPING_END_EVENT : YAML_SEQUENCE_END_EVENT;
  for (;;) {
    yaml_event_t ev;
    dl_status st = next_event(L, &ev);
    if (st) return st;
    if (ev.type == end) {
      yaml_event_delete(&ev);
      return DL_OK;
    }
    dl_ynode *key = NULL, *item = NULL;
    if (n->type == DL_Y_MAP) {
      st = parse_node(L, &ev, depth + 1, &key);
      if (st) return st;
      if (key->type != DL_Y_SCALAR) {
        st = dl_error_at(DL_ECONFIG, &(dl_loc){L->file, key->line, key->col},
                         "mapping keys must be plain words, not a %s", dl_ytype_name(key->type));
        node_free(key);
        return st;
      }
      for (int i = 0; i < n->n; i++)
        if (strcmp(n->keys[i]->value, key->value) == 0) {
          st = dl_error_at(DL_ECONFIG, &(dl_loc){L->file, key->line, key->col},
                           "duplicate key '%s' (first given at line %d)", key->value,
                           n->keys[i]->line);
          node_free(key);
          return st;
        }
      st = next_event(L, &ev);
      if (st) {
        node_free(key);
        return st;
      }
    }
    st = parse_node(L, &ev, depth + 1, &item);
    if (st || !push(n, key, item)) {
      node_free(key);
      node_free(item);
      return st ? st : dl_error(DL_ENOMEM, "out of memory reading %s", L->file);
    }
  }
}

static dl_status parse_node(loader *L, yaml_event_t *ev, int depth, dl_ynode **out) {
  dl_status st = DL_OK;
  yaml_mark_t m = ev->start_mark;
  *out = NULL;
  if (depth > DL_YAML_MAX_DEPTH) {
    yaml_event_delete(ev);
    return loc_error(L, m, "nesting deeper than 32 levels; no dltrain file needs that");
  }
  switch (ev->type) {
  case YAML_ALIAS_EVENT:
    yaml_event_delete(ev);
    return loc_error(L, m, "YAML aliases (*name) are not supported: write the value out");
  case YAML_SCALAR_EVENT: {
    if (ev->data.scalar.anchor) {
      yaml_event_delete(ev);
      return loc_error(L, m, "YAML anchors (&name) are not supported: write the value out");
    }
    dl_ynode *n = new_node(L, DL_Y_SCALAR, m, &st);
    if (n) {
      n->value = strndup((const char *)ev->data.scalar.value, ev->data.scalar.length);
      n->quoted = ev->data.scalar.style == YAML_SINGLE_QUOTED_SCALAR_STYLE ||
                  ev->data.scalar.style == YAML_DOUBLE_QUOTED_SCALAR_STYLE;
      if (!n->value) st = dl_error(DL_ENOMEM, "out of memory reading %s", L->file);
    }
    yaml_event_delete(ev);
    *out = n;
    return st;
  }
  case YAML_SEQUENCE_START_EVENT:
  case YAML_MAPPING_START_EVENT: {
    int is_map = ev->type == YAML_MAPPING_START_EVENT;
    int anchored = is_map ? ev->data.mapping_start.anchor != NULL
                          : ev->data.sequence_start.anchor != NULL;
    yaml_event_delete(ev);
    if (anchored)
      return loc_error(L, m, "YAML anchors (&name) are not supported: write the value out");
    dl_ynode *n = new_node(L, is_map ? DL_Y_MAP : DL_Y_SEQ, m, &st);
    if (!n) return st;
    st = parse_children(L, n, depth);
    if (st) {
      node_free(n);
      return st;
    }
    *out = n;
    return DL_OK;
  }
  default:
    yaml_event_delete(ev);
    return loc_error(L, m, "unexpected YAML structure");
  }
}

static dl_status load(const char *text, size_t len, const char *name, dl_ydoc **out) {
  *out = NULL;
  if (memchr(text, 0, len))
    return dl_error(DL_ECONFIG, "%s: not a YAML text file (it contains NUL bytes)", name);
  loader L = {.file = name};
  if (!yaml_parser_initialize(&L.parser)) return dl_error(DL_ENOMEM, "cannot start YAML parser");
  yaml_parser_set_input_string(&L.parser, (const unsigned char *)text, len);
  dl_ydoc *doc = calloc(1, sizeof *doc);
  dl_status st = doc ? DL_OK : DL_ENOMEM;
  if (doc) doc->file = strdup(name);
  yaml_event_t ev;
  /* stream start, document start, the root node, document end */
  while (st == DL_OK) {
    st = next_event(&L, &ev);
    if (st) break;
    if (ev.type == YAML_STREAM_START_EVENT || ev.type == YAML_DOCUMENT_START_EVENT) {
      yaml_event_delete(&ev);
      continue;
    }
    if (ev.type == YAML_STREAM_END_EVENT) {
      yaml_event_delete(&ev);
      break;
    }
    if (ev.type == YAML_DOCUMENT_END_EVENT) {
      yaml_event_delete(&ev);
      continue;
    }
    if (doc->root) {
      st = loc_error(&L, ev.start_mark, "more than one YAML document in the file");
      yaml_event_delete(&ev);
      break;
    }
    st = parse_node(&L, &ev, 0, &doc->root);
  }
  yaml_parser_delete(&L.parser);
  if (st == DL_OK && (!doc->root || (doc->root->type == DL_Y_SCALAR && !doc->root->value[0])))
    st = dl_error(DL_ECONFIG, "%s: the file is empty", name);
  if (st) {
    dl_yaml_free(doc);
    return st;
  }
  *out = doc;
  return DL_OK;
}

dl_status dl_yaml_load_string(const char *text, const char *name, dl_ydoc **out) {
  return load(text, strlen(text), name, out);
}

dl_status dl_yaml_load_file(const char *path, dl_ydoc **out) {
  *out = NULL;
  FILE *f = fopen(path, "rb");
  if (!f) return dl_error(DL_ECONFIG, "%s: cannot open: %s", path, strerror(errno));
  char *buf = malloc(DL_YAML_MAX_BYTES + 1);
  if (!buf) {
    fclose(f);
    return dl_error(DL_ENOMEM, "out of memory reading %s", path);
  }
  size_t len = fread(buf, 1, DL_YAML_MAX_BYTES + 1, f);
  int err = ferror(f);
  fclose(f);
  dl_status st;
  if (err)
    st = dl_error(DL_ECONFIG, "%s: read error", path);
  else if (len > DL_YAML_MAX_BYTES)
    st = dl_error(DL_ECONFIG, "%s: larger than 16 MiB; not a dltrain config", path);
  else
    st = load(buf, len, path, out);
  free(buf);
  return st;
}

const dl_ynode *dl_ymap_get(const dl_ynode *map, const char *key) {
  if (!map || map->type != DL_Y_MAP) return NULL;
  for (int i = 0; i < map->n; i++)
    if (strcmp(map->keys[i]->value, key) == 0) return map->items[i];
  return NULL;
}

dl_loc dl_yloc(const dl_ydoc *doc, const dl_ynode *node) {
  dl_loc l = {doc ? doc->file : NULL, node ? node->line : 0, node ? node->col : 0};
  return l;
}

const char *dl_ytype_name(dl_ytype t) {
  return t == DL_Y_SCALAR ? "single value" : t == DL_Y_SEQ ? "list" : "mapping";
}
