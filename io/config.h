/* Schema-driven parsing: fills a param struct from a YAML mapping using a
 * dl_param_spec table (core/schema.h), with file:line:col errors, "did you
 * mean" for unknown keys, type and range checks, and defaults parsed from the
 * same table (so docs and behaviour cannot drift). */
#ifndef DL_CONFIG_H
#define DL_CONFIG_H

#include "core/schema.h"
#include "io/yaml.h"

/* Fills `out` with every default of the schema. */
void dl_schema_defaults(const dl_param_spec *spec, void *out);

/* Applies the keys of `map` to `out`. Keys listed in `reserved` (NULL-terminated)
 * are skipped (the caller handles them) but count for "did you mean". `owner`
 * names the thing in messages ("layer 'conv1'", "solver"). Reports every
 * problem it finds; returns the first status. */
dl_status dl_schema_apply(const dl_param_spec *spec, const dl_ydoc *doc, const dl_ynode *map,
                          const char *const *reserved, const char *owner, void *out);

/* One value, for callers with their own keys (e.g. the net's loss_weight). */
dl_status dl_parse_value(const dl_param_spec *s, const dl_ydoc *doc, const dl_ynode *node,
                         const char *owner, void *field);

/* The closest of `candidates` (NULL-terminated) to `word`, or NULL. */
const char *dl_closest(const char *word, const char *const *candidates);

/* Writes the default value as docs text ("0", "xavier", "required"). */
const char *dl_spec_default_text(const dl_param_spec *s);

#endif
