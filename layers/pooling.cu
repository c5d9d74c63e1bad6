// Pooling's GPU twin: one thread per output in forward, one per input in
// backward (a gather: no atomics, the same sums in the same order on every
// run). The windows are the CPU code's (layers/pooling.c): Caffe's output
// sizes (ceil or floor), windows clipped to the input, the average's divisor
// counting the padded cells. Max pooling keeps no mask on the device:
// backward finds each window's winner again from the input (the first
// maximum in raster order, strict >, as max_window), which costs a few reads
// per input where a mask would cost an int per output of device memory.
#include "core/gpu.h"
#include "layers/pooling.h"

struct window {
  int h0, h1, w0, w1, area;
};

__device__ static window window_of(const dl_pool_geom &g, int oy, int ox) {
  int h0 = oy * g.sh - g.ph, w0 = ox * g.sw - g.pw;
  int h1 = min(h0 + g.kh, g.h + g.ph), w1 = min(w0 + g.kw, g.w + g.pw);
  window win = {max(h0, 0), min(h1, g.h), max(w0, 0), min(w1, g.w), (h1 - h0) * (w1 - w0)};
  return win;
}

// The window's maximum and where it is (iy * w + ix within the plane).
__device__ static int argmax_of(const dl_pool_geom &g, const float *x, const window &win,
                                float *best) {
  int arg = win.h0 * g.w + win.w0;
  float b = x[arg];
  for (int iy = win.h0; iy < win.h1; iy++)
    for (int ix = win.w0; ix < win.w1; ix++)
      if (x[iy * g.w + ix] > b) b = x[iy * g.w + ix], arg = iy * g.w + ix;
  *best = b;
  return arg;
}

__global__ static void pool_forward_kernel(dl_pool_geom g, const float *x, float *y) {
  size_t n = (size_t)g.planes * g.oh * g.ow;
  DL_GPU_LOOP(i, n) {
    int ox = (int)(i % g.ow), oy = (int)(i / g.ow % g.oh);
    size_t plane = i / ((size_t)g.oh * g.ow);
    const float *xp = x + plane * g.h * g.w;
    window win = window_of(g, oy, ox);
    if (g.max) {
      float best;
      argmax_of(g, xp, win, &best);
      y[i] = best;
    } else {
      float sum = 0;
      for (int iy = win.h0; iy < win.h1; iy++)
        for (int ix = win.w0; ix < win.w1; ix++)
          sum += xp[iy * g.w + ix];
      y[i] = sum / (float)win.area;
    }
  }
}

// dx[iy, ix] = the sum over the windows holding it of dy (max: where it won;
// average: dy / area), windows in raster order as the CPU adds them.
__global__ static void pool_backward_kernel(dl_pool_geom g, const float *x, const float *dy,
                                            float *dx) {
  size_t n = (size_t)g.planes * g.h * g.w;
  DL_GPU_LOOP(i, n) {
    int ix = (int)(i % g.w), iy = (int)(i / g.w % g.h);
    size_t plane = i / ((size_t)g.h * g.w);
    const float *xp = x + plane * g.h * g.w, *dyp = dy + plane * g.oh * g.ow;
    // outputs whose window [o s - p, o s - p + k) holds iy: from floor((iy + p - k) / s) + 1
    // (C's division truncates, and max(0, .) covers the negative numerators) to (iy + p) / s
    int oy0 = max(0, (iy + g.ph - g.kh + g.sh) / g.sh), oy1 = min(g.oh - 1, (iy + g.ph) / g.sh);
    int ox0 = max(0, (ix + g.pw - g.kw + g.sw) / g.sw), ox1 = min(g.ow - 1, (ix + g.pw) / g.sw);
    float sum = 0;
    for (int oy = oy0; oy <= oy1; oy++)
      for (int ox = ox0; ox <= ox1; ox++) {
        window win = window_of(g, oy, ox);
        if (iy < win.h0 || iy >= win.h1 || ix < win.w0 || ix >= win.w1) continue;
        float g_out = dyp[oy * g.ow + ox], best;
        if (!g.max)
          sum += g_out / (float)win.area;
        else if (argmax_of(g, xp, win, &best) == iy * g.w + ix)
          sum += g_out;
      }
    dx[i] = sum;
  }
}

extern "C" dl_status dl_pooling_forward_gpu(dl_layer *l, dl_blob *const *bottom, int,
                                            dl_blob *const *top, int) {
  dl_pool_geom g = dl_pooling_geom(l);
  const float *x = dl_gpu_cdata(bottom[0]); // (planes, h, w)
  float *y = dl_gpu_data(top[0]);           // (planes, oh, ow)
  if (!x || !y) return dl_gpu_error();
  size_t n = (size_t)g.planes * g.oh * g.ow;
  pool_forward_kernel<<<dl_gpu_blocks(n), DL_GPU_THREADS, 0, dl_gpu_stream()>>>(g, x, y);
  return CHECK_LAUNCH();
}

extern "C" void dl_pooling_backward_gpu(dl_layer *l, dl_blob *const *top, int,
                                        const int *propagate_down, dl_blob *const *bottom, int) {
  if (!propagate_down[0]) return;
  dl_pool_geom g = dl_pooling_geom(l);
  const float *x = dl_gpu_cdata(bottom[0]), *dy = dl_gpu_cdiff(top[0]);
  float *dx = dl_gpu_diff(bottom[0]);
  if (!x || !dy || !dx) return;
  size_t n = (size_t)g.planes * g.h * g.w;
  pool_backward_kernel<<<dl_gpu_blocks(n), DL_GPU_THREADS, 0, dl_gpu_stream()>>>(g, x, dy, dx);
  CHECK_LAUNCH();
}
