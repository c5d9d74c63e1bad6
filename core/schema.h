/* Parameter schemas: one table per layer (and one for the solver) that drives
 * YAML parsing, validation, `dltrain layers TYPE` and docs/config.md alike. */
#ifndef DL_SCHEMA_H
#define DL_SCHEMA_H

#include <stddef.h>

#ifdef __cplusplus
extern "C" {
#endif

typedef enum {
  DL_PT_INT,    /* int */
  DL_PT_FLOAT,  /* float */
  DL_PT_BOOL,   /* int, 0 or 1 (true/false in YAML) */
  DL_PT_ENUM,   /* int, index into choices */
  DL_PT_STRING, /* char[DL_STR_MAX] */
  DL_PT_INTS,   /* dl_ints: a list of ints (or one int) */
  DL_PT_FLOATS, /* dl_floats: a list of floats (or one float) */
  DL_PT_FILLER, /* dl_filler: a mapping {type, value, min, max, mean, std} */
  DL_PT_STRINGS /* dl_strings: a list of strings (or one string), e.g. several data files */
} dl_ptype;

#define DL_STR_MAX 512
#define DL_LIST_MAX 16

typedef struct { int n; int v[DL_LIST_MAX]; } dl_ints;
typedef struct { int n; float v[DL_LIST_MAX]; } dl_floats;
typedef struct { int n; char v[DL_LIST_MAX][DL_STR_MAX]; } dl_strings;

typedef enum { DL_FILL_CONSTANT, DL_FILL_UNIFORM, DL_FILL_GAUSSIAN, DL_FILL_XAVIER, DL_FILL_MSRA } dl_fill_type;
typedef enum { DL_FAN_IN, DL_FAN_OUT, DL_FAN_AVERAGE } dl_fan;
typedef struct {
  int type;          /* dl_fill_type */
  float value;       /* constant */
  float min, max;    /* uniform */
  float mean, std;   /* gaussian */
  int variance_norm; /* dl_fan, for xavier and msra */
} dl_filler;

typedef struct dl_param_spec {
  const char *key;
  dl_ptype type;
  size_t offset;              /* into the param struct */
  const char *def;            /* default as YAML text; NULL means required */
  double min, max;            /* inclusive range for numbers and list items */
  const char *const *choices; /* for DL_PT_ENUM: NULL-terminated names */
  const char *help;
  const char *caffe;          /* the Caffe prototxt equivalent, for the docs */
} dl_param_spec;

#define DL_SPEC_END {NULL, 0, 0, NULL, 0, 0, NULL, NULL, NULL}

/* Table-entry helpers; the YAML key is the struct field's name. */
#define DL_P_INT(st, f, def, lo, hi, help, caffe) {#f, DL_PT_INT, offsetof(st, f), def, lo, hi, NULL, help, caffe}
#define DL_P_FLOAT(st, f, def, lo, hi, help, caffe) {#f, DL_PT_FLOAT, offsetof(st, f), def, lo, hi, NULL, help, caffe}
#define DL_P_BOOL(st, f, def, help, caffe) {#f, DL_PT_BOOL, offsetof(st, f), def, 0, 1, NULL, help, caffe}
#define DL_P_ENUM(st, f, def, choices, help, caffe) {#f, DL_PT_ENUM, offsetof(st, f), def, 0, 0, choices, help, caffe}
#define DL_P_STRING(st, f, def, help, caffe) {#f, DL_PT_STRING, offsetof(st, f), def, 0, 0, NULL, help, caffe}
#define DL_P_INTS(st, f, def, lo, hi, help, caffe) {#f, DL_PT_INTS, offsetof(st, f), def, lo, hi, NULL, help, caffe}
#define DL_P_FLOATS(st, f, def, lo, hi, help, caffe) {#f, DL_PT_FLOATS, offsetof(st, f), def, lo, hi, NULL, help, caffe}
#define DL_P_FILLER(st, f, def, help, caffe) {#f, DL_PT_FILLER, offsetof(st, f), def, 0, 0, NULL, help, caffe}
#define DL_P_STRINGS(st, f, def, help, caffe) {#f, DL_PT_STRINGS, offsetof(st, f), def, 0, 0, NULL, help, caffe}

extern const char *const dl_filler_names[]; /* constant, uniform, gaussian, xavier, msra */
extern const char *const dl_fan_names[];    /* fan_in, fan_out, average */

const char *dl_ptype_name(dl_ptype t); /* "integer", "number", ... for messages and docs */

#ifdef __cplusplus
}
#endif

#endif
