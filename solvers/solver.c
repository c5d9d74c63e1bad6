/* The training loop. Order per iteration follows Caffe: test when due, then
 * forward/backward (iter_size times), normalize, check for divergence, clip,
 * regularize, update, iter++, display, snapshot when due. */
#include "solvers/solver.h"

#include <errno.h>
#include <libgen.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "core/device.h"
#ifdef DL_GPU
#include "core/gpu.h"
#endif
#include "core/math.h"
/* From io/prefetch.c: seconds this data layer made the net wait (0 for others). */
double dl_data_layer_wait_seconds(dl_layer *l);

volatile sig_atomic_t dl_stop_requested, dl_snapshot_requested;

static double now_seconds(void) {
  struct timespec t;
  clock_gettime(CLOCK_MONOTONIC, &t);
  return (double)t.tv_sec + 1e-9 * (double)t.tv_nsec;
}

/* "dir/of/solver.yaml" + "net.yaml" -> "dir/of/net.yaml"; absolute paths stay. */
static char *path_beside(const char *file, const char *rel) {
  if (rel[0] == '/' || !file || !strchr(file, '/')) return strdup(rel);
  char *copy = strdup(file);
  if (!copy) return NULL;
  const char *dir = dirname(copy);
  size_t n = strlen(dir) + strlen(rel) + 2;
  char *out = malloc(n);
  if (out) snprintf(out, n, "%s/%s", dir, rel);
  free(copy);
  return out;
}

static void mkdirs_for(const char *path) {
  char *copy = strdup(path);
  if (!copy) return;
  for (char *p = copy + 1; *p; p++)
    if (*p == '/') {
      *p = 0;
      mkdir(copy, 0755);
      *p = '/';
    }
  free(copy);
}

static int train_batch_size(const dl_net *net) {
  for (int i = 0; i < net->nsteps; i++)
    if (net->steps[i].layer->ops->flags & DL_LAYER_DATA && net->steps[i].nt > 0)
      return dl_blob_dim(net->steps[i].top[0], 0);
  return 1;
}

dl_status dl_solver_create(const dl_solver_param *p, const char *solver_file,
                           const dl_solver_opts *opts, dl_solver **out) {
  static const dl_solver_opts no_opts = {.seed = -1, .gpu = -1};
  if (!opts) opts = &no_opts;
  *out = NULL;
  dl_solver *s = calloc(1, sizeof *s);
  if (!s) return dl_error(DL_ENOMEM, "out of memory");
  s->param = *p;
  s->log = stderr;
  s->quiet = opts->quiet;
  s->solver_file = strdup(solver_file ? solver_file : "<solver>");
  dl_status st = DL_OK;
  int gpu = opts->gpu >= 0 || p->mode == 1;
  if (gpu) {
    st = dl_gpu_require(opts->gpu >= 0 ? opts->gpu : p->device_id);
    if (st) goto fail;
#ifdef DL_GPU
    const char *tf32_env = getenv("DLTRAIN_TF32");
    st = dl_gpu_set_math(p->precision == DL_PRECISION_TF32 || (tf32_env && tf32_env[0] == '1'),
                         p->deterministic);
    if (st) goto fail;
#endif
  } else if (p->precision == DL_PRECISION_TF32 && !opts->quiet) {
    fprintf(stderr, "precision: tf32 applies to GPU runs; this CPU run computes in fp32\n");
  }
  if (opts->net_path)
    s->net_file = strdup(opts->net_path);
  else if (p->net[0])
    s->net_file = path_beside(solver_file, p->net);
  else {
    st = dl_error(DL_EUSAGE, "%s: no net given: set 'net:' in the solver or pass NET.yaml", s->solver_file);
    goto fail;
  }
  if (opts->seed >= 0)
    s->param.seed = (int)(opts->seed & 0x7fffffff);
  else if (p->seed < 0)
    s->param.seed = (int)((uint64_t)time(NULL) ^ ((uint64_t)getpid() << 16)) & 0x7fffffff;
  if (opts->threads > 0) s->param.threads = opts->threads;
  dl_set_threads(s->param.threads);
  s->ctx = (dl_ctx){.seed = (uint64_t)s->param.seed,
                    .threads = dl_get_threads(),
                    .batch = opts->batch,
                    .gpu = gpu};

  st = dl_net_from_file(s->net_file, DL_TRAIN, &s->ctx, &s->train);
  if (!st && s->param.test_iter > 0) {
    st = dl_net_from_file(s->net_file, DL_TEST, &s->ctx, &s->test);
    if (!st) st = dl_net_share_params(s->test, s->train);
  }
  if (st) goto fail;
  size_t history = (size_t)dl_solver_history_slots(p->type) * s->train->param_count;
  s->history = dl_mem_new(history ? history : 1);
  s->loss_window = dl_mem_new((size_t)s->param.average_loss);
  if (!s->history || !s->loss_window || !dl_mem_host_mut(s->history) ||
      !dl_mem_host_mut(s->loss_window)) {
    st = dl_error(DL_ENOMEM, "out of memory for solver state");
    goto fail;
  }
#ifdef DL_GPU
  if (gpu && (st = dl_solver_gpu_create(s))) goto fail;
#endif
  if ((st = dl_solver_backward_update_setup(s))) goto fail;
  if (gpu && !s->quiet) {
    fprintf(s->log, "%s\n", dl_gpu_startup_line());
    dl_net_report_cpu_layers(s->train, s->log);
    dl_net_report_cpu_layers(s->test, s->log);
  }
  const char *mpath = opts->metrics_path;
  char buf[DL_STR_MAX + 32];
  if (!mpath) {
    snprintf(buf, sizeof buf, "%s_metrics.jsonl", s->param.snapshot_prefix);
    mpath = buf;
  }
  mkdirs_for(mpath);
  s->metrics = fopen(mpath, "a");
  if (!s->metrics) {
    st = dl_error(DL_EIO, "cannot write the metrics log %s: %s", mpath, strerror(errno));
    goto fail;
  }
  *out = s;
  return DL_OK;
fail:
  dl_solver_free(s);
  return st;
}

void dl_solver_free(dl_solver *s) {
  if (!s) return;
  dl_net_free(s->test);
  dl_solver_backward_update_free(s);
  dl_net_free(s->train);
#ifdef DL_GPU
  dl_solver_gpu_free(s);
#endif
  dl_mem_release(s->history);
  if (s->metrics) fclose(s->metrics);
  dl_mem_release(s->loss_window);
  free(s->solver_file);
  free(s->net_file);
  free(s);
}

/* ---- divergence ----------------------------------------------------------- */

static dl_status diverged(dl_solver *s, double loss, double lr) {
  dl_net *net = s->train;
  const char *what = "a parameter gradient", *where = "";
  char buf[400] = "";
  for (int i = 0; i < net->nsteps && !buf[0]; i++) {
    dl_net_step *st = &net->steps[i];
    for (int k = 0; k < st->nt && !buf[0]; k++)
      if (!dl_all_finite(st->top[k]->count, dl_cdata(st->top[k])))
        snprintf(buf, sizeof buf, "blob '%s' (output of layer '%s')", st->top[k]->name,
                 st->layer->name);
  }
  int handed = dl_solver_backward_update_failed(s); /* its diff was never stored */
  if (handed && !buf[0])
    snprintf(buf, sizeof buf, "the gradient of '%s'", net->params[handed - 1]->name);
  for (int j = 0; j < net->nparams && !buf[0]; j++)
    if (!(net->in_backward && net->in_backward[j]) &&
        !dl_all_finite(net->params[j]->count, dl_cdiff(net->params[j])))
      snprintf(buf, sizeof buf, "the gradient of '%s'", net->params[j]->name);
  if (buf[0]) what = buf;
  if (s->last_snapshot[0]) where = s->last_snapshot;
  return dl_error(DL_EDIVERGED,
                  "training diverged at iteration %lld: loss is %g at lr %g; the first non-finite "
                  "values are in %s. %s%s. Try a lower base_lr or set clip_gradients.",
                  (long long)s->iter, loss, lr, what,
                  where[0] ? "The last good snapshot is " : "No snapshot was written yet", where);
}

/* smoothed_loss from the window of the last average_loss losses; the latest. */
static double window_update(dl_solver *s) {
  const float *w = dl_mem_host(s->loss_window);
  int k = s->param.average_loss;
  int have = s->losses_seen < k ? (int)s->losses_seen : k;
  double sum = 0;
  for (int i = 0; i < have; i++) sum += w[i];
  s->smoothed_loss = have ? sum / have : 0;
  return have ? w[(s->losses_seen - 1) % k] : 0;
}

/* With an update during backward (s->bwu) the loss is checked before
 * backward, which then changes the weights. */
static dl_status step_cpu(dl_solver *s, double *loss_out) {
  dl_net *net = s->train;
  double loss = 0, lr = dl_lr_at(&s->param, s->iter);
  dl_net_zero_param_diffs(net);
  s->ctx.iter = s->iter;
  if (s->bwu) dl_solver_backward_update_begin(s, lr);
  for (int k = 0; k < s->param.iter_size; k++) {
    double l;
    s->ctx.substep = k;
    dl_status st = dl_net_forward(net, &l);
    if (st) return st;
    if (s->bwu && !isfinite(l)) return diverged(s, l, lr);
    dl_net_backward(net);
    loss += l;
  }
  loss /= s->param.iter_size;
  if (!isfinite(loss) || dl_solver_backward_update_failed(s) || !dl_solver_update(s, lr))
    return diverged(s, loss, lr);
  dl_mem_host_mut(s->loss_window)[s->losses_seen % s->param.average_loss] = (float)loss;
  s->losses_seen++;
  window_update(s);
  s->iter++;
  if (loss_out) *loss_out = loss;
  return DL_OK;
}

#ifdef DL_GPU
/* Brings the losses to the host (waiting for the GPU): smoothed_loss, the
 * latest loss, and divergence, reported at the iteration where it began. */
static dl_status gpu_read(dl_solver *s, double *loss_out) {
  int64_t bad = 0;
  dl_status st = dl_solver_gpu_diverged(s, &bad);
  if (st) return st;
  double loss = window_update(s);
  if ((st = dl_gpu_error())) return st;
  if (bad) {
    int64_t now = s->iter;
    s->iter = bad - 1;
    st = diverged(s, loss, dl_lr_at(&s->param, s->iter));
    s->iter = now;
    return st;
  }
  if (loss_out) *loss_out = loss;
  return DL_OK;
}

/* The same steps with everything on the device; the loss comes back only
 * when asked for. With a host update the gradients come to the host anyway,
 * so they are checked there, before the update, as on the CPU. */
static dl_status step_gpu(dl_solver *s, double *loss_out) {
  dl_net *net = s->train;
  dl_status st;
  dl_net_zero_param_diffs(net);
  s->ctx.iter = s->iter;
  dl_solver_gpu_loss_begin(s);
  for (int k = 0; k < s->param.iter_size; k++) {
    s->ctx.substep = k;
    if ((st = dl_net_forward(net, NULL))) return st;
    dl_net_backward(net);
    dl_solver_gpu_loss_add(s);
  }
  dl_solver_gpu_loss_end(s, (int)(s->losses_seen % s->param.average_loss));
  s->losses_seen++;
  if ((st = dl_gpu_error())) return st;
  double lr = dl_lr_at(&s->param, s->iter);
  /* The host update (non-SGD solvers) checks the gradients as it goes; the
   * fused GPU kernel flags non-finite values on the device (gpu_read). */
  if (!dl_solver_update(s, lr)) return diverged(s, window_update(s), lr);
  s->iter++;
  if ((st = dl_gpu_error())) return st;
  return loss_out ? gpu_read(s, loss_out) : DL_OK;
}
#endif

dl_status dl_solver_step(dl_solver *s, double *loss_out) {
#ifdef DL_GPU
  if (s->gpu) return step_gpu(s, loss_out);
#endif
  return step_cpu(s, loss_out);
}

/* In GPU mode: the losses up to now, and divergence, before anything is
 * written or reported (nothing to do on the CPU, which checks every step). */
static dl_status settle(dl_solver *s) {
#ifdef DL_GPU
  if (s->gpu) return gpu_read(s, NULL);
#endif
  (void)s;
  return DL_OK;
}

/* ---- testing --------------------------------------------------------------- */

dl_status dl_solver_test(dl_solver *s, double *means) {
  dl_net *net = s->test;
  if (!net) return DL_OK;
  for (int o = 0; o < net->noutputs; o++) means[o] = 0;
  for (int i = 0; i < s->param.test_iter; i++) {
    dl_status st = dl_net_forward(net, NULL);
    if (st) return st;
    for (int o = 0; o < net->noutputs; o++) {
      const float *y = dl_cdata(net->outputs[o]);
      for (size_t e = 0; e < net->outputs[o]->count; e++) means[o] += y[e];
    }
  }
  for (int o = 0; o < net->noutputs; o++) means[o] /= s->param.test_iter * (double)net->outputs[o]->count;
  if (!s->quiet)
    for (int o = 0; o < net->noutputs; o++) {
      fprintf(s->log, "test @ iter %lld: %s = %.6g", (long long)s->iter, net->outputs[o]->name, means[o]);
      if (net->output_weight[o] != 0)
        fprintf(s->log, " (* %g = %.6g loss)", net->output_weight[o], means[o] * net->output_weight[o]);
      if (dl_net_output_perplexity(net, o))
        fprintf(s->log, ", perplexity = %.6g", exp(means[o]));
      fputc('\n', s->log);
    }
  fprintf(s->metrics, "{\"iter\": %lld, \"phase\": \"test\"", (long long)s->iter);
  for (int o = 0; o < net->noutputs; o++) {
    fprintf(s->metrics, ", \"%s\": %.8g", net->outputs[o]->name, means[o]);
    if (dl_net_output_perplexity(net, o))
      fprintf(s->metrics, ", \"%s_perplexity\": %.8g", net->outputs[o]->name, exp(means[o]));
  }
  fprintf(s->metrics, "}\n");
  fflush(s->metrics);
  return DL_OK;
}

static dl_status run_test(dl_solver *s) {
  if (!s->test) return DL_OK;
  double means[256];
  if (s->test->noutputs > 256) return dl_error(DL_ECONFIG, "test net has too many outputs");
  return dl_solver_test(s, means);
}

/* ---- display ---------------------------------------------------------------- */

static void format_duration(double sec, char *buf, size_t n) {
  long t = (long)(sec + 0.5);
  if (t >= 3600)
    snprintf(buf, n, "%ldh%02ldm", t / 3600, (t / 60) % 60);
  else if (t >= 60)
    snprintf(buf, n, "%ldm%02lds", t / 60, t % 60);
  else
    snprintf(buf, n, "%.1fs", sec);
}

/* When the training loss is a single perplexity-reporting loss (a language
 * model), its loss_weight w (else 0): the display adds exp(smoothed loss / w). */
static double train_perplexity_weight(const dl_net *net) {
  double w = 0;
  for (int o = 0; o < net->noutputs; o++) {
    if (net->output_weight[o] == 0) continue;
    if (w != 0 || !dl_net_output_perplexity(net, o)) return 0;
    w = net->output_weight[o];
  }
  return w;
}

static void display(dl_solver *s, double loss, double lr, int64_t first_iter, double t0) {
  double elapsed = now_seconds() - t0, per_iter = elapsed / (double)(s->iter - first_iter);
  double ips = train_batch_size(s->train) * s->param.iter_size / per_iter;
  double wait = 0;
  for (int i = 0; i < s->train->nsteps; i++) wait += dl_data_layer_wait_seconds(s->train->steps[i].layer);
  char el[32], eta[32];
  format_duration(elapsed, el, sizeof el);
  format_duration(per_iter * (double)(s->param.max_iter - s->iter), eta, sizeof eta);
  char clip[96] = "";
  if (s->clipped)
    snprintf(clip, sizeof clip, "  clipped %lld (max norm %.4g)", (long long)s->clipped,
             s->clip_norm_max);
  s->clipped = 0;
  s->clip_norm_max = 0;
  double w = train_perplexity_weight(s->train);
  char ppl_text[48] = "", ppl_json[48] = "";
  if (w != 0) {
    snprintf(ppl_text, sizeof ppl_text, ", perplexity %.5g", exp(s->smoothed_loss / w));
    snprintf(ppl_json, sizeof ppl_json, ", \"perplexity\": %.8g", exp(s->smoothed_loss / w));
  }
  if (!s->quiet) {
    if (isatty(fileno(s->log))) fprintf(s->log, "\r\033[K");
    fprintf(s->log,
            "iter %lld/%d  loss %.6g (avg %.6g%s)  lr %.6g  %.0f img/s  data wait %.0f%%  elapsed %s  eta %s%s\n",
            (long long)s->iter, s->param.max_iter, loss, s->smoothed_loss, ppl_text, lr, ips,
            100.0 * wait / (elapsed > 0 ? elapsed : 1), el, eta, clip);
  }
  fprintf(s->metrics,
          "{\"iter\": %lld, \"time\": %.4f, \"lr\": %.8g, \"loss\": %.8g, \"smoothed_loss\": %.8g%s, "
          "\"images_per_s\": %.2f}\n",
          (long long)s->iter, elapsed, lr, loss, s->smoothed_loss, ppl_json, ips);
  fflush(s->metrics);
}

static void progress(dl_solver *s, int64_t since) {
  if (s->quiet || !isatty(fileno(s->log)) || s->param.display == 0) return;
  int width = 30, done = (int)(width * (s->iter - since) / s->param.display);
  if (done > width) done = width;
  fprintf(s->log, "\r  [%.*s%*s] iter %lld", done, "==============================", width - done,
          "", (long long)s->iter);
  fflush(s->log);
}

/* ---- the loop ----------------------------------------------------------------- */

dl_status dl_solver_solve(dl_solver *s) {
  const dl_solver_param *p = &s->param;
  int64_t first_iter = s->iter, last_display = s->iter;
  double t0 = now_seconds();
  dl_status st = DL_OK;
  if (!s->quiet)
    fprintf(s->log, "training from iteration %lld to %d\n", (long long)s->iter, p->max_iter);
  while (s->iter < p->max_iter) {
    if (p->test_interval > 0 && s->iter % p->test_interval == 0 &&
        (s->iter > 0 || p->test_initialization) && (st = run_test(s)))
      return st;
    double loss = 0, lr = dl_lr_at(p, s->iter);
    /* The loss is read (in GPU mode: brought from the device) only to show it. */
    int show = p->display > 0 && ((s->iter + 1) % p->display == 0 || s->iter == first_iter);
    if ((st = dl_solver_step(s, show ? &loss : NULL))) return st;
    if (show) {
      display(s, loss, lr, first_iter, t0);
      last_display = s->iter;
    } else {
      progress(s, last_display);
    }
    int due = p->snapshot > 0 && s->iter % p->snapshot == 0 && s->iter < p->max_iter;
    if (due || dl_snapshot_requested) {
      dl_snapshot_requested = 0;
      if ((st = settle(s)) || (st = dl_solver_snapshot(s))) return st;
    }
    if (dl_stop_requested) {
      if (!s->quiet) fprintf(s->log, "\nstopping at iteration %lld on a signal\n", (long long)s->iter);
      if ((st = settle(s)) || (st = dl_solver_snapshot(s))) return st;
      return DL_EINTERRUPTED;
    }
  }
  if ((st = settle(s))) return st;
  if (p->snapshot_after_train && (st = dl_solver_snapshot(s))) return st;
  if (s->test && (st = run_test(s))) return st;
  return DL_OK;
}

/* ---- signals ---------------------------------------------------------------- */

static void on_signal(int sig) {
  if (sig == SIGHUP) {
    dl_snapshot_requested = 1;
    return;
  }
  if (dl_stop_requested && sig == SIGINT) {
    static const char msg[] = "\nsecond interrupt: exiting without a snapshot\n";
    ssize_t ignored = write(2, msg, sizeof msg - 1);
    (void)ignored;
    _exit(DL_EINTERRUPTED);
  }
  dl_stop_requested = 1;
}

void dl_solver_install_signals(void) {
  struct sigaction sa;
  memset(&sa, 0, sizeof sa);
  sa.sa_handler = on_signal;
  sigemptyset(&sa.sa_mask);
  sigaction(SIGINT, &sa, NULL);
  sigaction(SIGTERM, &sa, NULL);
  sigaction(SIGHUP, &sa, NULL);
}
