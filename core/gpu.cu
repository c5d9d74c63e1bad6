// The GPU context (core/gpu.h): device selection, one stream, the cuBLAS and
// cuDNN handles, the compatibility checks and start-up line, and the sticky
// error that turns CUDA's deferred failures into a dl_status.
#include "core/gpu.h"

#include <library_types.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#ifndef DL_CUDA_ARCH
#define DL_CUDA_ARCH 90 // the oldest sm this build has code for (Makefile: CUDA_ARCH)
#endif

static struct {
  int id; // -1: no device selected yet
  cudaStream_t stream;
  cublasHandle_t cublas;
  cudnnHandle_t cudnn;
  double *scratch;
  int sync_launches; // DLTRAIN_CUDA_SYNC=1
  int tf32;          // precision: tf32 or DLTRAIN_TF32=1 (off by default: fp32 results)
  int deterministic; // deterministic: true (cuDNN algorithms that repeat bit for bit)
  dl_status error;   // the first failure
  char line[768];
} g = {-1, 0, 0, 0, 0, 0, 0, 0, DL_OK, ""};

// ---- errors ----------------------------------------------------------------

extern "C" dl_status dl_gpu_fail(dl_status st, const char *fmt, ...) {
  char msg[512];
  va_list ap;
  va_start(ap, fmt);
  vsnprintf(msg, sizeof msg, fmt, ap);
  va_end(ap);
  dl_error(st, "%s", msg);
  if (g.error == DL_OK) g.error = st;
  return st;
}

static dl_status out_of_memory(const char *what, const char *file, int line) {
  size_t free_b = 0, total = 0;
  if (cudaMemGetInfo(&free_b, &total) != cudaSuccess) cudaGetLastError();
  return dl_gpu_fail(DL_ENOMEM,
                     "%s:%d: %s: out of GPU memory (%.2f of %.2f GiB free on GPU %d); use a "
                     "smaller batch_size or net, or train on the CPU",
                     file, line, what, free_b / 1073741824.0, total / 1073741824.0, g.id);
}

extern "C" dl_status dl_gpu_check_cuda(cudaError_t e, const char *call, const char *file,
                                       int line) {
  if (e == cudaSuccess) return DL_OK;
  cudaGetLastError(); // a non-sticky error must not be reported again by the next check
  if (e == cudaErrorMemoryAllocation) return out_of_memory(call, file, line);
  return dl_gpu_fail(DL_EDEVICE, "%s:%d: %s failed: %s (%s)", file, line, call,
                     cudaGetErrorString(e), cudaGetErrorName(e));
}

extern "C" dl_status dl_gpu_check_cublas(cublasStatus_t e, const char *call, const char *file,
                                         int line) {
  if (e == CUBLAS_STATUS_SUCCESS) return DL_OK;
  if (e == CUBLAS_STATUS_ALLOC_FAILED) return out_of_memory(call, file, line);
  return dl_gpu_fail(DL_EDEVICE, "%s:%d: %s failed: cuBLAS %s (%d)", file, line, call,
                     cublasGetStatusString(e), (int)e);
}

extern "C" dl_status dl_gpu_check_cudnn(cudnnStatus_t e, const char *call, const char *file,
                                        int line) {
  if (e == CUDNN_STATUS_SUCCESS) return DL_OK;
  if (e == CUDNN_STATUS_ALLOC_FAILED) return out_of_memory(call, file, line);
  return dl_gpu_fail(DL_EDEVICE, "%s:%d: %s failed: cuDNN %s (%d)", file, line, call,
                     cudnnGetErrorString(e), (int)e);
}

extern "C" dl_status dl_gpu_check_launch(const char *file, int line) {
  dl_status st = dl_gpu_check_cuda(cudaGetLastError(), "kernel launch", file, line);
  if (!st && g.sync_launches)
    st = dl_gpu_check_cuda(cudaStreamSynchronize(g.stream), "kernel (DLTRAIN_CUDA_SYNC=1)", file,
                           line);
  return st;
}

extern "C" dl_status dl_gpu_error(void) { return g.error; }

extern "C" dl_status dl_gpu_sync(void) {
  if (g.id >= 0) CHECK_CUDA(cudaStreamSynchronize(g.stream));
  return g.error;
}

extern "C" size_t dl_gpu_memory_in_use(void) {
  size_t free_bytes = 0, total = 0;
  if (g.id < 0 || cudaMemGetInfo(&free_bytes, &total) != cudaSuccess) {
    cudaGetLastError(); /* a query: its failure is not the run's */
    return 0;
  }
  return total - free_bytes;
}

// ---- queries ---------------------------------------------------------------

static void split_version(int v, int *major, int *minor) { // CUDA's 1000 * major + 10 * minor
  *major = v / 1000;
  *minor = (v % 1000) / 10;
}

// cuDNN 9 numbers its versions 10000 * major + 100 * minor + patch (8.x: 1000 * major ...).
static void cudnn_version(size_t v, int *major, int *minor, int *patch) {
  int div = v >= 90000 ? 10000 : 1000;
  *major = (int)(v / div);
  *minor = (int)(v % div / 100);
  *patch = (int)(v % 100);
}

extern "C" int dl_cuda_device_count(char *why, size_t n) {
  int count = 0;
  cudaError_t e = cudaGetDeviceCount(&count);
  if (e == cudaSuccess && count > 0) return count;
  if (e != cudaSuccess) cudaGetLastError();
  if (why && n) {
    int drv = 0, dmaj, dmin, rmaj, rmin;
    if (cudaDriverGetVersion(&drv) != cudaSuccess) cudaGetLastError();
    split_version(drv, &dmaj, &dmin);
    split_version(CUDART_VERSION, &rmaj, &rmin);
    if (e == cudaErrorInsufficientDriver && drv > 0)
      snprintf(why, n,
               "the NVIDIA driver supports CUDA %d.%d, older than the CUDA %d.%d this dltrain "
               "was built with: update the driver",
               dmaj, dmin, rmaj, rmin);
    else if (drv == 0)
      snprintf(why, n, "no NVIDIA driver found");
    else
      snprintf(why, n, "cudaGetDeviceCount: %s",
               e == cudaSuccess ? "0 devices" : cudaGetErrorString(e));
  }
  return 0;
}

extern "C" const char *dl_cuda_build_info(void) {
  static char buf[200];
  int rt = 0, rmaj, rmin, maj, min, patch;
  if (cudaRuntimeGetVersion(&rt) != cudaSuccess) cudaGetLastError();
  split_version(rt, &rmaj, &rmin);
  cudnn_version(cudnnGetVersion(), &maj, &min, &patch);
  snprintf(buf, sizeof buf, "CUDA runtime %d.%d, cuDNN %d.%d.%d (built against %d.%d.%d)", rmaj,
           rmin, maj, min, patch, CUDNN_MAJOR, CUDNN_MINOR, CUDNN_PATCHLEVEL);
  return buf;
}

extern "C" int dl_gpu_current(void) { return g.id; }

// The start-up line's last part: the math in use.
static const char *math_words(void) {
  if (g.tf32)
    return g.deterministic ? "TF32 tensor-core math; deterministic algorithms"
                           : "TF32 tensor-core math";
  return g.deterministic ? "fp32 math (TF32 off); deterministic algorithms"
                         : "fp32 math (TF32 off)";
}

extern "C" int dl_gpu_tf32(void) { return g.tf32; }

extern "C" int dl_gpu_deterministic(void) { return g.deterministic; }

extern "C" dl_status dl_gpu_set_math(int tf32, int deterministic) {
  g.tf32 = tf32;
  g.deterministic = deterministic;
  if (g.id < 0) return DL_OK; // applied by init
  char *last = strrchr(g.line, ';');
  if (last) snprintf(last, sizeof g.line - (size_t)(last - g.line), "; %s", math_words());
  return CHECK_CUBLAS(
      cublasSetMathMode(g.cublas, tf32 ? CUBLAS_TF32_TENSOR_OP_MATH : CUBLAS_DEFAULT_MATH));
}
extern "C" const char *dl_gpu_startup_line(void) { return g.line; }
cudaStream_t dl_gpu_stream(void) { return g.stream; }
cublasHandle_t dl_gpu_cublas(void) { return g.cublas; }
cudnnHandle_t dl_gpu_cudnn(void) { return g.cudnn; }
double *dl_gpu_scratch(void) { return g.scratch; }

// ---- set-up ----------------------------------------------------------------

extern "C" void dl_gpu_shutdown(void) {
  if (g.cudnn) cudnnDestroy(g.cudnn);
  if (g.cublas) cublasDestroy(g.cublas);
  if (g.scratch) cudaFree(g.scratch);
  if (g.stream) cudaStreamDestroy(g.stream);
  cudaGetLastError();
  g.cudnn = 0;
  g.cublas = 0;
  g.scratch = 0;
  g.stream = 0;
  g.id = -1;
  g.line[0] = 0;
}

__global__ static void probe_kernel(int *out) {
  if (blockIdx.x == 0 && threadIdx.x == 0) *out = 42;
}

// One launch and a copy back: proves that this build's code runs on the GPU.
static dl_status probe(int id, const cudaDeviceProp *prop) {
  int *d = NULL, h = 0;
  dl_status st = CHECK_CUDA(cudaMalloc(&d, sizeof(int)));
  if (st) return st;
  probe_kernel<<<1, 32, 0, g.stream>>>(d);
  cudaError_t e = cudaGetLastError();
  if (e == cudaSuccess) e = cudaMemcpyAsync(&h, d, sizeof h, cudaMemcpyDeviceToHost, g.stream);
  if (e == cudaSuccess) e = cudaStreamSynchronize(g.stream);
  cudaFree(d);
  if (e == cudaSuccess && h == 42) return DL_OK;
  cudaGetLastError();
  return dl_error(DL_EDEVICE,
                  "GPU %d (%s, sm_%d%d) cannot run this build's kernels (%s); rebuild for it with "
                  "`make CUDA_ARCH=%d%d`",
                  id, prop->name, prop->major, prop->minor,
                  e == cudaSuccess ? "wrong result" : cudaGetErrorString(e), prop->major,
                  prop->minor);
}

static dl_status init(int id) {
  int drv = 0, rt = 0, dmaj, dmin, rmaj, rmin, bmaj, bmin;
  if (cudaDriverGetVersion(&drv) != cudaSuccess || cudaRuntimeGetVersion(&rt) != cudaSuccess)
    cudaGetLastError();
  split_version(drv, &dmaj, &dmin);
  split_version(rt, &rmaj, &rmin);
  split_version(CUDART_VERSION, &bmaj, &bmin);
  if (dmaj < bmaj)
    return dl_error(DL_EDEVICE,
                    "the NVIDIA driver supports CUDA %d.%d, but this dltrain was built with CUDA "
                    "%d.%d: update the driver (a CUDA %d driver), or train on the CPU",
                    dmaj, dmin, bmaj, bmin, bmaj);
  int cmaj, cmin, cpatch;
  cudnn_version(cudnnGetVersion(), &cmaj, &cmin, &cpatch);
  if (cmaj != CUDNN_MAJOR)
    return dl_error(DL_EDEVICE,
                    "cuDNN %d.%d.%d was loaded, but this dltrain was built against cuDNN %d.%d.%d: "
                    "put a cuDNN %d library first in LD_LIBRARY_PATH, or rebuild against the "
                    "installed one",
                    cmaj, cmin, cpatch, CUDNN_MAJOR, CUDNN_MINOR, CUDNN_PATCHLEVEL, CUDNN_MAJOR);
  cudaDeviceProp prop;
  dl_status st = CHECK_CUDA(cudaSetDevice(id));
  if (!st) st = CHECK_CUDA(cudaGetDeviceProperties(&prop, id));
  if (st) return st;
  if (prop.major * 10 + prop.minor < DL_CUDA_ARCH)
    return dl_error(DL_EDEVICE,
                    "GPU %d (%s) has compute capability %d.%d, but this dltrain was built for "
                    "sm_%d and newer: rebuild with `make CUDA_ARCH=%d%d`, or train on the CPU",
                    id, prop.name, prop.major, prop.minor, DL_CUDA_ARCH, prop.major, prop.minor);
  g.id = id;
  const char *env = getenv("DLTRAIN_CUDA_SYNC");
  g.sync_launches = env && env[0] == '1';
  env = getenv("DLTRAIN_TF32");
  g.tf32 = env && env[0] == '1';
  st = CHECK_CUDA(cudaStreamCreateWithFlags(&g.stream, cudaStreamNonBlocking));
  if (!st) st = CHECK_CUBLAS(cublasCreate(&g.cublas));
  if (!st) st = CHECK_CUBLAS(cublasSetStream(g.cublas, g.stream));
  // fp32 GEMMs by default: no TF32 tensor-core math unless asked for.
  if (!st)
    st = CHECK_CUBLAS(
        cublasSetMathMode(g.cublas, g.tf32 ? CUBLAS_TF32_TENSOR_OP_MATH : CUBLAS_DEFAULT_MATH));
  if (!st) st = CHECK_CUDNN(cudnnCreate(&g.cudnn));
  if (!st) st = CHECK_CUDNN(cudnnSetStream(g.cudnn, g.stream));
  if (!st) st = CHECK_CUDA(cudaMalloc(&g.scratch, (DL_GPU_REDUCE_BLOCKS + 1) * sizeof(double)));
  if (!st) st = probe(id, &prop);
  if (st) return st;
  int lmaj = 0, lmin = 0, lpatch = 0;
  cublasGetProperty(MAJOR_VERSION, &lmaj);
  cublasGetProperty(MINOR_VERSION, &lmin);
  cublasGetProperty(PATCH_LEVEL, &lpatch);
  snprintf(g.line, sizeof g.line,
           "GPU %d: %s (sm_%d%d, %d SMs, %.1f GiB); driver CUDA %d.%d, runtime %d.%d (built with "
           "%d.%d); cuBLAS %d.%d.%d (built with %d.%d.%d); cuDNN %d.%d.%d (built against "
           "%d.%d.%d); %s",
           id, prop.name, prop.major, prop.minor, prop.multiProcessorCount,
           prop.totalGlobalMem / 1073741824.0, dmaj, dmin, rmaj, rmin, bmaj, bmin, lmaj, lmin,
           lpatch, CUBLAS_VER_MAJOR, CUBLAS_VER_MINOR, CUBLAS_VER_PATCH, cmaj, cmin, cpatch,
           CUDNN_MAJOR, CUDNN_MINOR, CUDNN_PATCHLEVEL, math_words());
  return DL_OK;
}

extern "C" dl_status dl_gpu_init(int id) {
  if (g.id == id) return DL_OK;
  if (g.id >= 0) dl_gpu_shutdown();
  dl_status st = init(id);
  if (st) dl_gpu_shutdown();
  return st;
}
