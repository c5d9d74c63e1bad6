/* dltrain layers [TYPE]: the registry, described from the same schemas the
 * parser uses. */
#include <stdio.h>
#include <string.h>

#include "cmd/cmd.h"
#include "core/registry.h"
#include "io/config.h"

static void arity(const char *what, int lo, int hi, const char *doc) {
  if (lo == hi)
    printf("%s: %d", what, lo);
  else if (hi < 0)
    printf("%s: %d or more", what, lo);
  else
    printf("%s: %d to %d", what, lo, hi);
  printf("%s%s\n", doc ? " - " : "", doc ? doc : "");
}

static void describe(const dl_layer_ops *o) {
  printf("%s: %s\n\n", o->type, o->summary);
  arity("bottoms", o->min_bottoms, o->max_bottoms, o->bottoms_doc);
  arity("tops", o->min_tops, o->max_tops, o->tops_doc);
  if (o->flags & DL_LAYER_IN_PLACE) printf("can work in place (top: same name as bottom)\n");
  if (o->flags & DL_LAYER_LOSS) printf("loss layer: loss_weight defaults to 1\n");
  printf("\nparameters:\n");
  int any = 0;
  for (const dl_param_spec *s = o->schema; s && s->key; s++, any = 1) {
    char type[400];
    if (s->type == DL_PT_ENUM) {
      size_t off = (size_t)snprintf(type, sizeof type, "one of ");
      for (int i = 0; s->choices[i] && off < sizeof type; i++)
        off += (size_t)snprintf(type + off, sizeof type - off, "%s%s", i ? "|" : "", s->choices[i]);
    } else if ((s->type == DL_PT_INT || s->type == DL_PT_FLOAT) && (s->min > -1e8 || s->max < 1e8)) {
      snprintf(type, sizeof type, "%s in [%g, %g]", dl_ptype_name(s->type), s->min, s->max);
    } else {
      snprintf(type, sizeof type, "%s", dl_ptype_name(s->type));
    }
    printf("  %-16s %s\n  %-16s default: %s\n  %-16s %s\n", s->key, type, "", dl_spec_default_text(s),
           "", s->help ? s->help : "");
  }
  if (!any) printf("  (none)\n");
  printf("\ncommon keys: name, type, bottom, top, include/exclude {phase: train|test}, "
         "param [{name, lr_mult, decay_mult}], loss_weight\n");
}

int cmd_layers(int argc, char **argv) {
  if (argc > 1 && (!strcmp(argv[1], "--help") || !strcmp(argv[1], "-h"))) {
    printf("usage: dltrain layers [TYPE]\n");
    return 0;
  }
  if (argc > 1) {
    const dl_layer_ops *o = dl_registry_find(argv[1]);
    if (!o) {
      char near[200];
      dl_registry_suggest(argv[1], near, sizeof near);
      fprintf(stderr, "dltrain: unknown layer type '%s'%s%s%s\n", argv[1],
              near[0] ? "; did you mean " : "", near, near[0] ? "?" : "");
      return 3;
    }
    describe(o);
    return 0;
  }
  printf("layer types (`dltrain layers TYPE` for details):\n");
  for (int i = 0; i < dl_registry_count(); i++)
    printf("  %-18s %s\n", dl_registry_at(i)->type, dl_registry_at(i)->summary);
  return 0;
}
