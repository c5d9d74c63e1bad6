/* The GPU context (GPU build only, core/gpu.cu): one device, one stream that
 * every kernel, copy and library call runs on, the cuBLAS and cuDNN handles,
 * the start-up line, and a sticky error: CUDA reports most failures at a
 * later call, so the first one is recorded (with file:line) and the net and
 * the solver return it as a dl_status at their next check. Runtime failures a
 * user can cause (out of device memory, a driver too old, a GPU in use) are
 * statuses with a message, never an abort.
 *
 * C files of the GPU build include this for the C part; .cu files also get
 * the handles and the CHECK_* macros. */
#ifndef DL_GPU_H
#define DL_GPU_H

#include <stddef.h>

#include "core/device.h"
#include "core/status.h"

#ifdef __CUDACC__
#include <cublas_v2.h>
#include <cuda_runtime.h>
#include <cudnn.h>
#endif

#ifdef __cplusplus
extern "C" {
#endif

/* Devices visible to this process; 0 without a driver or a GPU. The reason
 * for 0 (the CUDA error) goes into `why` when it is not NULL. */
int dl_cuda_device_count(char *why, size_t n);
const char *dl_cuda_build_info(void);

/* Makes GPU `id` the device of this process: selects it, creates the stream
 * and the handles, and checks that the driver, the runtime, cuDNN and the
 * GPU's compute capability can work with this build (DL_EDEVICE with one
 * actionable line if not). Calling it again for the same id does nothing. */
dl_status dl_gpu_init(int id);
void dl_gpu_shutdown(void);
int dl_gpu_current(void); /* the device in use, -1 before dl_gpu_init */
int dl_gpu_tf32(void);    /* 1 when TF32 tensor-core math is allowed (precision: tf32) */
int dl_gpu_deterministic(void); /* 1: only algorithms that repeat bit for bit (cuDNN) */
/* The solver's `precision` and `deterministic` (DLTRAIN_TF32=1 in the
 * environment also allows TF32); updates cuBLAS and the start-up line. */
dl_status dl_gpu_set_math(int tf32, int deterministic);
/* Records a failure found by dltrain's own checks (a message, and the sticky
 * error if none is set yet); returns `st`. */
dl_status dl_gpu_fail(dl_status st, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

/* The device half of core/mem.c (core/mem_gpu.cu). Each failure is recorded
 * as the sticky error with a message and returned. */
float *dl_mem_gpu_alloc(size_t count); /* NULL on failure */
void dl_mem_gpu_free(float *p);
dl_status dl_mem_gpu_upload(float *dst_device, const float *src_host, size_t count);
dl_status dl_mem_gpu_download(float *dst_host, const float *src_device, size_t count);
dl_status dl_mem_gpu_zero(float *dst_device, size_t count);

#ifdef __CUDACC__
cudaStream_t dl_gpu_stream(void);
cublasHandle_t dl_gpu_cublas(void);
cudnnHandle_t dl_gpu_cudnn(void);
/* Device scratch for reductions: DL_GPU_REDUCE_BLOCKS + 1 doubles. */
double *dl_gpu_scratch(void);

/* Each returns DL_OK or records the failure ("file:line: call: message") as
 * the sticky error and returns its status (DL_ENOMEM for out of memory,
 * DL_EDEVICE otherwise). */
dl_status dl_gpu_check_cuda(cudaError_t e, const char *call, const char *file, int line);
dl_status dl_gpu_check_cublas(cublasStatus_t e, const char *call, const char *file, int line);
dl_status dl_gpu_check_cudnn(cudnnStatus_t e, const char *call, const char *file, int line);
/* After a kernel launch: the launch error, and with DLTRAIN_CUDA_SYNC=1 in
 * the environment also the kernel's own (the stream is synchronized, which
 * pins an asynchronous fault to the launch that caused it). */
dl_status dl_gpu_check_launch(const char *file, int line);
#endif

#ifdef __cplusplus
}
#endif

#ifdef __CUDACC__
#define CHECK_CUDA(call)   dl_gpu_check_cuda((call), #call, __FILE__, __LINE__)
#define CHECK_CUBLAS(call) dl_gpu_check_cublas((call), #call, __FILE__, __LINE__)
#define CHECK_CUDNN(call)  dl_gpu_check_cudnn((call), #call, __FILE__, __LINE__)
#define CHECK_LAUNCH()     dl_gpu_check_launch(__FILE__, __LINE__)

/* Launch shapes: 256 threads, and at most 65536 blocks; kernels loop with a
 * grid stride (size_t indices), so any count up to DL_MAX_BLOB_COUNT works. */
#define DL_GPU_THREADS       256
#define DL_GPU_MAX_BLOCKS    65536
#define DL_GPU_REDUCE_BLOCKS 256
static inline unsigned dl_gpu_blocks(size_t n) {
  size_t b = (n + DL_GPU_THREADS - 1) / DL_GPU_THREADS;
  return (unsigned)(b < 1 ? 1 : b > DL_GPU_MAX_BLOCKS ? DL_GPU_MAX_BLOCKS : b);
}
#define DL_GPU_LOOP(i, n)                                                                          \
  for (size_t i = (size_t)blockIdx.x * blockDim.x + threadIdx.x; i < (n);                          \
       i += (size_t)blockDim.x * gridDim.x)

/* Reduces v over a one-dimensional block (blockDim.x a power of two, at most
 * DL_GPU_THREADS) through `sh`, a __shared__ array of blockDim.x elements.
 * Every thread of the block must call it; every thread gets the result, and
 * `sh` may be reused right after (the last barrier sees to that). */
template <typename T, typename Op> __device__ T dl_block_reduce(T v, T *sh, Op op) {
  sh[threadIdx.x] = v;
  __syncthreads();
  for (unsigned s = blockDim.x / 2; s > 0; s >>= 1) {
    if (threadIdx.x < s) sh[threadIdx.x] = op(sh[threadIdx.x], sh[threadIdx.x + s]);
    __syncthreads();
  }
  T r = sh[0];
  __syncthreads();
  return r;
}
struct dl_op_sum {
  template <typename T> __device__ T operator()(T a, T b) const { return a + b; }
};
struct dl_op_max {
  __device__ float operator()(float a, float b) const { return fmaxf(a, b); }
};
#endif

#endif
