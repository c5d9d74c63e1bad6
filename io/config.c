/* The schema engine (see io/config.h). */
#include "io/config.h"

#include <ctype.h>
#include <stdarg.h>
#include <stdio.h>
#include <errno.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "core/registry.h"

const char *const dl_filler_names[] = {"constant", "uniform", "gaussian", "xavier", "msra", NULL};
const char *const dl_fan_names[] = {"fan_in", "fan_out", "average", NULL};

const char *dl_ptype_name(dl_ptype t) {
  switch (t) {
  case DL_PT_INT: return "integer";
  case DL_PT_FLOAT: return "number";
  case DL_PT_BOOL: return "true/false";
  case DL_PT_ENUM: return "choice";
  case DL_PT_STRING: return "string";
  case DL_PT_INTS: return "integer list";
  case DL_PT_FLOATS: return "number list";
  case DL_PT_FILLER: return "filler";
  case DL_PT_STRINGS: return "string list";
  }
  return "?";
}

const char *dl_closest(const char *word, const char *const *candidates) {
  const char *best = NULL;
  int limit = 1 + (int)strlen(word) / 3, best_d = 999;
  if (limit > 3) limit = 3;
  for (int i = 0; candidates && candidates[i]; i++) {
    int d = dl_edit_distance(word, candidates[i]);
    if (d <= limit && d < best_d) best = candidates[i], best_d = d;
  }
  return best;
}

static dl_status bad(const dl_ydoc *doc, const dl_ynode *n, const char *owner, const char *key,
                     const char *fmt, ...) __attribute__((format(printf, 5, 6)));
static dl_status bad(const dl_ydoc *doc, const dl_ynode *n, const char *owner, const char *key,
                     const char *fmt, ...) {
  dl_loc loc = dl_yloc(doc, n);
  char what[400];
  va_list ap;
  va_start(ap, fmt);
  vsnprintf(what, sizeof what, fmt, ap);
  va_end(ap);
  return dl_error_at(DL_ECONFIG, &loc, "%s: %s: %s", owner, key, what);
}

static const char *int_kind(double lo) {
  return lo >= 1 ? "a positive integer" : lo >= 0 ? "a non-negative integer" : "an integer";
}

static dl_status parse_int(const dl_param_spec *s, const dl_ydoc *doc, const dl_ynode *n,
                           const char *owner, int *out) {
  const char *kind = int_kind(s->min);
  if (n->type != DL_Y_SCALAR)
    return bad(doc, n, owner, s->key, "expected %s, got a %s", kind, dl_ytype_name(n->type));
  char *end;
  errno = 0;
  long long v = strtoll(n->value, &end, 10);
  if (end == n->value || *end || errno) {
    /* "64.0" and "1e3" are integers in spirit; accept exact ones. */
    double d = strtod(n->value, &end);
    if (end == n->value || *end || d != floor(d) || fabs(d) > 2e9)
      return bad(doc, n, owner, s->key, "expected %s, got '%s'", kind, n->value);
    v = (long long)d;
  }
  if ((double)v < s->min || (double)v > s->max)
    return bad(doc, n, owner, s->key, "expected %s in [%.0f, %.0f], got '%s'", kind, s->min,
               s->max, n->value);
  *out = (int)v;
  return DL_OK;
}

static dl_status parse_float(const dl_param_spec *s, const dl_ydoc *doc, const dl_ynode *n,
                             const char *owner, float *out) {
  if (n->type != DL_Y_SCALAR)
    return bad(doc, n, owner, s->key, "expected a number, got a %s", dl_ytype_name(n->type));
  char *end;
  const char *text = n->value;
  if (strcasestr(text, ".nan") || strcasestr(text, ".inf"))
    return bad(doc, n, owner, s->key, "expected a finite number, got '%s'", text);
  double v = strtod(text, &end);
  if (end == text || *end) return bad(doc, n, owner, s->key, "expected a number, got '%s'", text);
  if (!isfinite(v) || fabs(v) > 3e38)
    return bad(doc, n, owner, s->key, "expected a finite number, got '%s'", n->value);
  if (v < s->min || v > s->max)
    return bad(doc, n, owner, s->key, "expected a number in [%g, %g], got '%s'", s->min, s->max,
               n->value);
  *out = (float)v;
  return DL_OK;
}

static dl_status parse_bool(const dl_param_spec *s, const dl_ydoc *doc, const dl_ynode *n,
                            const char *owner, int *out) {
  static const char *const yes[] = {"true", "yes", "on", "1", NULL},
                           *const no[] = {"false", "no", "off", "0", NULL};
  if (n->type == DL_Y_SCALAR)
    for (int i = 0; yes[i]; i++) {
      if (strcasecmp(n->value, yes[i]) == 0) return *out = 1, DL_OK;
      if (strcasecmp(n->value, no[i]) == 0) return *out = 0, DL_OK;
    }
  return bad(doc, n, owner, s->key, "expected true or false, got '%s'",
             n->type == DL_Y_SCALAR ? n->value : dl_ytype_name(n->type));
}

static dl_status parse_enum(const char *key, const char *const *choices, const dl_ydoc *doc,
                            const dl_ynode *n, const char *owner, int *out) {
  if (n->type == DL_Y_SCALAR)
    for (int i = 0; choices[i]; i++)
      if (strcasecmp(n->value, choices[i]) == 0) return *out = i, DL_OK;
  char list[300] = "";
  size_t off = 0;
  for (int i = 0; choices[i] && off < sizeof list; i++)
    off += (size_t)snprintf(list + off, sizeof list - off, "%s%s", i ? ", " : "", choices[i]);
  const char *got = n->type == DL_Y_SCALAR ? n->value : dl_ytype_name(n->type);
  const char *near = n->type == DL_Y_SCALAR ? dl_closest(n->value, choices) : NULL;
  return bad(doc, n, owner, key, "expected one of %s, got '%s'%s%s%s", list, got,
             near ? " (did you mean '" : "", near ? near : "", near ? "'?)" : "");
}

static dl_status parse_list(const dl_param_spec *s, const dl_ydoc *doc, const dl_ynode *n,
                            const char *owner, void *out) {
  int is_int = s->type == DL_PT_INTS;
  dl_ints *iv = out;
  dl_floats *fv = out;
  const dl_ynode *one[1] = {n};
  const dl_ynode *const *items = n->type == DL_Y_SEQ ? (const dl_ynode *const *)n->items : one;
  int count = n->type == DL_Y_SEQ ? n->n : 1;
  if (n->type == DL_Y_MAP)
    return bad(doc, n, owner, s->key, "expected a list of numbers, got a mapping");
  if (count > DL_LIST_MAX)
    return bad(doc, n, owner, s->key, "expected at most %d values, got %d", DL_LIST_MAX, count);
  dl_param_spec item = *s;
  item.type = is_int ? DL_PT_INT : DL_PT_FLOAT;
  for (int i = 0; i < count; i++) {
    dl_status st = is_int ? parse_int(&item, doc, items[i], owner, &iv->v[i])
                          : parse_float(&item, doc, items[i], owner, &fv->v[i]);
    if (st) return st;
  }
  if (is_int)
    iv->n = count;
  else
    fv->n = count;
  return DL_OK;
}

static dl_status parse_string(const dl_param_spec *s, const dl_ydoc *doc, const dl_ynode *n,
                              const char *owner, char *out) {
  if (n->type != DL_Y_SCALAR)
    return bad(doc, n, owner, s->key, "expected a string, got a %s", dl_ytype_name(n->type));
  if (strlen(n->value) >= DL_STR_MAX)
    return bad(doc, n, owner, s->key, "string longer than %d characters", DL_STR_MAX - 1);
  strcpy(out, n->value);
  return DL_OK;
}

/* One string or a list of them (`source: a.bin` or `source: [a.bin, b.bin]`). */
static dl_status parse_strings(const dl_param_spec *s, const dl_ydoc *doc, const dl_ynode *n,
                               const char *owner, dl_strings *out) {
  if (n->type == DL_Y_MAP)
    return bad(doc, n, owner, s->key, "expected a string or a list of strings, got a mapping");
  const dl_ynode *one[1] = {n};
  const dl_ynode *const *items = n->type == DL_Y_SEQ ? (const dl_ynode *const *)n->items : one;
  int count = n->type == DL_Y_SEQ ? n->n : 1;
  if (count > DL_LIST_MAX)
    return bad(doc, n, owner, s->key, "expected at most %d strings, got %d", DL_LIST_MAX, count);
  for (int i = 0; i < count; i++) {
    dl_status st = parse_string(s, doc, items[i], owner, out->v[i]);
    if (st) return st;
  }
  out->n = count;
  return DL_OK;
}

static const dl_param_spec filler_spec[] = {
    {"type", DL_PT_ENUM, offsetof(dl_filler, type), "constant", 0, 0, dl_filler_names,
     "constant, uniform, gaussian, xavier or msra", "type"},
    {"value", DL_PT_FLOAT, offsetof(dl_filler, value), "0", -1e30, 1e30, NULL, "constant", "value"},
    {"min", DL_PT_FLOAT, offsetof(dl_filler, min), "0", -1e30, 1e30, NULL, "uniform low", "min"},
    {"max", DL_PT_FLOAT, offsetof(dl_filler, max), "1", -1e30, 1e30, NULL, "uniform high", "max"},
    {"mean", DL_PT_FLOAT, offsetof(dl_filler, mean), "0", -1e30, 1e30, NULL, "gaussian mean", "mean"},
    {"std", DL_PT_FLOAT, offsetof(dl_filler, std), "1", 0, 1e30, NULL, "gaussian std", "std"},
    {"variance_norm", DL_PT_ENUM, offsetof(dl_filler, variance_norm), "fan_in", 0, 0, dl_fan_names,
     "xavier/msra: fan_in, fan_out or average", "variance_norm"},
    DL_SPEC_END};

static dl_status parse_filler(const dl_param_spec *s, const dl_ydoc *doc, const dl_ynode *n,
                              const char *owner, dl_filler *out) {
  dl_schema_defaults(filler_spec, out);
  if (n->type == DL_Y_SCALAR) /* shorthand: `weight_filler: xavier` */
    return parse_enum(s->key, dl_filler_names, doc, n, owner, &out->type);
  if (n->type != DL_Y_MAP)
    return bad(doc, n, owner, s->key, "expected a filler like {type: xavier}, got a list");
  char sub[200];
  snprintf(sub, sizeof sub, "%s: %s", owner, s->key);
  return dl_schema_apply(filler_spec, doc, n, NULL, sub, out);
}

dl_status dl_parse_value(const dl_param_spec *s, const dl_ydoc *doc, const dl_ynode *n,
                         const char *owner, void *field) {
  switch (s->type) {
  case DL_PT_INT: return parse_int(s, doc, n, owner, field);
  case DL_PT_FLOAT: return parse_float(s, doc, n, owner, field);
  case DL_PT_BOOL: return parse_bool(s, doc, n, owner, field);
  case DL_PT_ENUM: return parse_enum(s->key, s->choices, doc, n, owner, field);
  case DL_PT_STRING: return parse_string(s, doc, n, owner, field);
  case DL_PT_INTS:
  case DL_PT_FLOATS: return parse_list(s, doc, n, owner, field);
  case DL_PT_FILLER: return parse_filler(s, doc, n, owner, field);
  case DL_PT_STRINGS: return parse_strings(s, doc, n, owner, field);
  }
  return DL_EINTERNAL;
}

void dl_schema_defaults(const dl_param_spec *spec, void *out) {
  for (const dl_param_spec *s = spec; s->key; s++) {
    if (!s->def) continue;
    void *field = (char *)out + s->offset;
    if (s->type == DL_PT_STRING && !s->def[0]) {
      ((char *)field)[0] = 0;
      continue;
    }
    if (s->type == DL_PT_STRINGS && !strcmp(s->def, "[]")) {
      ((dl_strings *)field)->n = 0;
      continue;
    }
    if ((s->type == DL_PT_INTS || s->type == DL_PT_FLOATS) && !strcmp(s->def, "[]")) {
      memset(field, 0, s->type == DL_PT_INTS ? sizeof(dl_ints) : sizeof(dl_floats));
      continue;
    }
    dl_ydoc *doc = NULL;
    dl_status st = dl_yaml_load_string(s->def, "<default>", &doc);
    if (st == DL_OK) st = dl_parse_value(s, doc, doc->root, "default", field);
    if (st) fprintf(stderr, "bad default for '%s': %s\n", s->key, dl_diag_text());
    DL_ASSERT(st == DL_OK); /* a bug in a schema table, not user input */
    dl_yaml_free(doc);
  }
}

static int in_list(const char *key, const char *const *list) {
  for (int i = 0; list && list[i]; i++)
    if (strcmp(key, list[i]) == 0) return 1;
  return 0;
}

static dl_status unknown_key(const dl_param_spec *spec, const dl_ydoc *doc, const dl_ynode *key,
                             const char *const *reserved, const char *owner) {
  const char *names[128];
  int n = 0;
  for (const dl_param_spec *s = spec; s->key && n < 100; s++) names[n++] = s->key;
  for (int i = 0; reserved && reserved[i] && n < 127; i++) names[n++] = reserved[i];
  names[n] = NULL;
  const char *near = dl_closest(key->value, names);
  dl_loc loc = dl_yloc(doc, key);
  if (near)
    return dl_error_at(DL_ECONFIG, &loc, "%s: unknown key '%s' (did you mean '%s'?)", owner,
                       key->value, near);
  char list[600] = "";
  size_t off = 0;
  for (int i = 0; i < n && off < sizeof list; i++)
    off += (size_t)snprintf(list + off, sizeof list - off, "%s%s", i ? ", " : "", names[i]);
  return dl_error_at(DL_ECONFIG, &loc, "%s: unknown key '%s' (known keys: %s)", owner, key->value,
                     list);
}

dl_status dl_schema_apply(const dl_param_spec *spec, const dl_ydoc *doc, const dl_ynode *map,
                          const char *const *reserved, const char *owner, void *out) {
  dl_status first = DL_OK, st;
  if (map->type != DL_Y_MAP) {
    dl_loc loc = dl_yloc(doc, map);
    return dl_error_at(DL_ECONFIG, &loc, "%s: expected a mapping of key: value, got a %s", owner,
                       dl_ytype_name(map->type));
  }
  for (int i = 0; i < map->n; i++) {
    const char *key = map->keys[i]->value;
    if (in_list(key, reserved)) continue;
    const dl_param_spec *s = spec;
    while (s->key && strcmp(s->key, key) != 0) s++;
    st = s->key ? dl_parse_value(s, doc, map->items[i], owner, (char *)out + s->offset)
                : unknown_key(spec, doc, map->keys[i], reserved, owner);
    if (st && !first) first = st;
  }
  for (const dl_param_spec *s = spec; s->key; s++)
    if (!s->def && !dl_ymap_get(map, s->key)) {
      dl_loc loc = dl_yloc(doc, map);
      st = dl_error_at(DL_ECONFIG, &loc, "%s: missing required key '%s' (%s)", owner, s->key,
                       s->help ? s->help : dl_ptype_name(s->type));
      if (!first) first = st;
    }
  return first;
}

const char *dl_spec_default_text(const dl_param_spec *s) {
  return !s->def ? "(required)" : s->def[0] ? s->def : "(empty)";
}
