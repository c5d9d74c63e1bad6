/* Devices: how many CUDA GPUs this process can use, and a description. The
 * CPU-only build (and a GPU build on a machine without a GPU) reports none,
 * which callers turn into a clear error rather than a crash. Declared in both
 * builds; the GPU context itself is core/gpu.h. */
#ifndef DL_DEVICE_H
#define DL_DEVICE_H

#include "core/status.h"

#ifdef __cplusplus
extern "C" {
#endif

int dl_gpu_count(void);              /* 0 when no usable GPU or CPU-only build */
const char *dl_gpu_build_info(void); /* "CPU-only build" or "CUDA 13.0, cuDNN 9.x" */
/* Checks that GPU `id` can be used and makes it this process's device (the
 * stream, cuBLAS and cuDNN are set up); DL_EDEVICE with an actionable
 * message if not: a CPU-only build, no GPU, no such id, a driver too old, a
 * cuDNN of another major version, a GPU older than the build's target. */
dl_status dl_gpu_require(int id);
/* The CPU-only build: `argv` (main's) is handed, unchanged, to a GPU build
 * named dltrain-gpu beside this executable (execv) when dl_gpu_require is
 * called, so `dltrain ... --gpu 0` works from the light CPU binary, which
 * does not load the CUDA libraries (150 MiB of RSS on every CPU run). Without
 * that file dl_gpu_require says how to build it. No effect in a GPU build. */
void dl_gpu_handover_argv(char **argv);
/* After dl_gpu_require: one line with the GPU, its compute capability and the
 * driver, runtime, cuBLAS and cuDNN versions (loaded, and compiled against). */
const char *dl_gpu_startup_line(void);

/* The first GPU failure recorded (CUDA reports most of them at a later call);
 * DL_OK if none, and always in the CPU-only build. */
dl_status dl_gpu_error(void);
/* Waits for the GPU's queued work; returns the first failure, if any. */
dl_status dl_gpu_sync(void);
/* Bytes in use on the current GPU by every user (cudaMemGetInfo: this
 * process's context, libraries' workspaces and buffers, and other processes);
 * 0 without a GPU context. */
size_t dl_gpu_memory_in_use(void);

#ifdef __cplusplus
}
#endif

#endif
