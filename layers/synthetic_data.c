/* SyntheticData: random batches with no I/O, for benchmarks and tests (Caffe's
 * DummyData). Batch k is a pure function of (seed, layer name, k), so a run
 * resumes exactly; with `fixed` every batch is batch 0, generated once. */
#include <stdlib.h>
#include <string.h>

#include "core/layer.h"
#include "io/prefetch.h"

enum { SYN_GAUSSIAN, SYN_UNIFORM, SYN_CONSTANT, SYN_CLASSES };
static const char *const syn_fill_names[] = {"gaussian", "uniform", "constant", "classes", NULL};

typedef struct {
  dl_ints shape;
  int batch_axis;
  int num_classes;
  int fill;
  float value;
  float mean, std;
  float min, max;
  int fixed;
} syn_param;

static const dl_param_spec syn_schema[] = {
    DL_P_INTS(syn_param, shape, NULL, 1, 1 << 30,
              "shape of the data top, batch first (see batch_axis): [64, 3, 32, 32]",
              "dummy_data_param { shape { dim } }"),
    DL_P_INT(syn_param, batch_axis, "0", 0, DL_MAX_AXES - 1,
             "which axis of shape is the batch: 0, or 1 for time-major sequences (T, N); the "
             "label top has shape's axes up to this one, and `dltrain bench --batch` changes it",
             "(none)"),
    DL_P_INT(syn_param, num_classes, "0", 0, 1 << 30,
             "0: no label top; > 0: a label top (N, or T x N with batch_axis 1) of random "
             "classes in [0, num_classes)",
             "(none)"),
    DL_P_ENUM(syn_param, fill, "gaussian", syn_fill_names,
              "how the data is drawn (classes: integers in [0, num_classes), e.g. token ids for "
              "an Embed layer)",
              "dummy_data_param { data_filler { type } }"),
    DL_P_FLOAT(syn_param, value, "0", -1e30, 1e30, "the value of fill: constant",
               "data_filler { value }"),
    DL_P_FLOAT(syn_param, mean, "0", -1e30, 1e30, "mean of fill: gaussian", "data_filler { mean }"),
    DL_P_FLOAT(syn_param, std, "1", 0, 1e30, "standard deviation of fill: gaussian",
               "data_filler { std }"),
    DL_P_FLOAT(syn_param, min, "0", -1e30, 1e30, "lower end of fill: uniform",
               "data_filler { min }"),
    DL_P_FLOAT(syn_param, max, "1", -1e30, 1e30, "upper end of fill: uniform",
               "data_filler { max }"),
    DL_P_BOOL(syn_param, fixed, "true",
              "true: one batch generated at setup and handed out every time (a benchmark input); "
              "false: a new batch each forward, from a counter",
              "(DummyData refills only with a non-constant filler)"),
    DL_SPEC_END};

typedef struct {
  syn_param prm;
  uint64_t key;
  size_t count;       /* floats in one data batch */
  size_t nlabels;     /* shape[0] x ... x shape[batch_axis] */
  int64_t cursor[4];  /* {the next batch's number, 0, 0, 0} */
  dl_prefetch *pf;    /* fixed: NULL */
  float *fixed_data;  /* fixed: (count) */
  float *fixed_label; /* fixed: (nlabels) */
} syn_priv;

/* Batch number `k` into data (count) and label (nlabels). Separate streams for
 * data and labels, so the labels do not depend on the data's size. */
static void generate(const syn_priv *p, int64_t k, float *data, float *label) {
  const syn_param *prm = &p->prm;
  dl_rng rng;
  dl_rng_seed(&rng, dl_seed_mix(p->key, (uint64_t)k, 1));
  for (size_t i = 0; i < p->count; i++) {
    switch (prm->fill) {
    case SYN_GAUSSIAN: data[i] = dl_rng_gaussian(&rng, prm->mean, prm->std); break;
    case SYN_UNIFORM: data[i] = dl_rng_uniform_range(&rng, prm->min, prm->max); break;
    case SYN_CLASSES: data[i] = (float)dl_rng_below(&rng, (uint64_t)prm->num_classes); break;
    default: data[i] = prm->value; break;
    }
  }
  if (prm->num_classes <= 0) return;
  dl_rng_seed(&rng, dl_seed_mix(p->key, (uint64_t)k, 2));
  for (size_t j = 0; j < p->nlabels; j++)
    label[j] = (float)dl_rng_below(&rng, (uint64_t)prm->num_classes);
}

/* Runs on the prefetch thread. */
static int syn_fill(void *user, const int64_t pos[4], float *const *out, char *err, size_t errlen) {
  (void)err, (void)errlen;
  generate(user, pos[0], out[0], out[1]);
  return 0;
}

static void syn_destroy(dl_layer *l) {
  syn_priv *p = l->priv;
  if (!p) return;
  dl_prefetch_free(p->pf);
  free(p->fixed_data);
  free(p->fixed_label);
  free(p);
  l->priv = NULL;
}

static dl_status syn_setup(dl_layer *l, dl_blob *const *bottom, int nb, dl_blob *const *top,
                           int nt) {
  (void)bottom, (void)nb;
  const syn_param *prm = l->param;
  if (prm->shape.n < 1 || prm->shape.n > DL_MAX_AXES)
    return dl_layer_error(l, DL_ECONFIG, "shape: expected 1 to %d dims, got %d", DL_MAX_AXES,
                          prm->shape.n);
  if (prm->batch_axis >= prm->shape.n)
    return dl_layer_error(l, DL_ECONFIG, "batch_axis %d is not an axis of shape (%d dims)",
                          prm->batch_axis, prm->shape.n);
  if (nt > 1 && prm->num_classes <= 0)
    return dl_layer_error(l, DL_ECONFIG,
                          "a second (label) top needs num_classes > 0 (num_classes is %d)",
                          prm->num_classes);
  if (prm->fill == SYN_CLASSES && prm->num_classes <= 0)
    return dl_layer_error(l, DL_ECONFIG, "fill: classes needs num_classes > 0");
  if (prm->fill == SYN_UNIFORM && prm->min > prm->max)
    return dl_layer_error(l, DL_ECONFIG, "min (%g) is larger than max (%g)", (double)prm->min,
                          (double)prm->max);
  /* Sizing the top here validates the shape (positive, under the size limit). */
  dl_status st = dl_blob_reshape(top[0], prm->shape.n, prm->shape.v);
  if (st) return dl_layer_error(l, st, "shape: cannot make a data top of this shape");
  syn_priv *p = dl_calloc(1, sizeof *p);
  if (!p) return DL_ENOMEM;
  l->priv = p;
  p->prm = *prm;
  p->key = dl_data_key(l);
  p->count = top[0]->count;
  p->nlabels = 1;
  for (int a = 0; a <= prm->batch_axis; a++)
    p->nlabels *= (size_t)prm->shape.v[a];
  if (prm->fixed) {
    p->fixed_data = dl_malloc(p->count * sizeof(float));
    p->fixed_label = dl_malloc(p->nlabels * sizeof(float));
    if (!p->fixed_data || !p->fixed_label) return DL_ENOMEM;
    generate(p, 0, p->fixed_data, p->fixed_label);
    return DL_OK;
  }
  size_t counts[2] = {p->count, p->nlabels};
  if ((st = dl_prefetch_create(l, 2, counts, syn_fill, p, &p->pf))) return st;
  dl_prefetch_start(p->pf, p->cursor);
  return DL_OK;
}

static dl_status syn_reshape(dl_layer *l, dl_blob *const *bottom, int nb, dl_blob *const *top,
                             int nt) {
  (void)bottom, (void)nb;
  const syn_priv *p = l->priv;
  dl_status st = dl_blob_reshape(top[0], p->prm.shape.n, p->prm.shape.v);
  if (!st && nt > 1) st = dl_blob_reshape(top[1], p->prm.batch_axis + 1, p->prm.shape.v);
  return st;
}

/* Fixed data is copied every time (not left in the top from setup) because the
 * net may share the top's storage, or a layer may work in place on it. */
static dl_status syn_forward(dl_layer *l, dl_blob *const *bottom, int nb, dl_blob *const *top,
                             int nt) {
  (void)bottom, (void)nb;
  syn_priv *p = l->priv;
  const float *data = p->fixed_data, *label = p->fixed_label;
  if (p->pf) {
    float *const *batch;
    char err[400];
    dl_status st = dl_prefetch_wait(p->pf, &batch, err, sizeof err);
    if (st) {
      dl_prefetch_start(p->pf, p->cursor);
      return dl_layer_error(l, st, "%s", err);
    }
    data = batch[0];
    label = batch[1];
  }
  p->cursor[0]++;
  if (p->pf) dl_prefetch_start(p->pf, p->cursor);
  memcpy(dl_data(top[0]), data, p->count * sizeof(float));
  if (nt > 1) memcpy(dl_data(top[1]), label, p->nlabels * sizeof(float));
  return DL_OK;
}

/* The label top holds classes below num_classes; so does the data top with
 * fill: classes (token ids). */
static int syn_max_label(const dl_layer *l, int t) {
  const syn_priv *p = l->priv;
  if (p->prm.num_classes <= 0 || (t == 0 && p->prm.fill != SYN_CLASSES)) return -1;
  return p->prm.num_classes - 1;
}

static void syn_get_cursor(dl_layer *l, int64_t cursor[4]) {
  const syn_priv *p = l->priv;
  memcpy(cursor, p->cursor, sizeof p->cursor);
}

static dl_status syn_set_cursor(dl_layer *l, const int64_t cursor[4]) {
  syn_priv *p = l->priv;
  if (cursor[0] < 0)
    return dl_layer_error(l, DL_EDATA, "cannot resume: batch number %lld is negative",
                          (long long)cursor[0]);
  if (p->pf) dl_prefetch_cancel(p->pf);
  /* Resuming: the snapshot's seed replaces the one the batches were keyed by. */
  p->key = dl_data_key(l);
  if (p->prm.fixed) generate(p, 0, p->fixed_data, p->fixed_label);
  p->cursor[0] = cursor[0];
  if (p->pf) dl_prefetch_start(p->pf, p->cursor);
  return DL_OK;
}

const dl_layer_ops dl_layer_synthetic_data = {
    .type = "SyntheticData",
    .summary = "random data (gaussian, uniform or constant) and labels, no I/O: benchmarks, tests",
    .schema = syn_schema,
    .param_size = sizeof(syn_param),
    .min_bottoms = 0,
    .max_bottoms = 0,
    .min_tops = 1,
    .max_tops = 2,
    .bottoms_doc = "none",
    .tops_doc = "data: `shape`; label (needs num_classes > 0): N random classes",
    .flags = DL_LAYER_DATA,
    .setup = syn_setup,
    .reshape = syn_reshape,
    .forward = syn_forward,
    .destroy = syn_destroy,
    .get_cursor = syn_get_cursor,
    .max_label = syn_max_label,
    .set_cursor = syn_set_cursor,
};
