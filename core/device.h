/* Devices: how many CUDA GPUs this process can use, and a description. The
 * CPU-only build (and a GPU build on a machine without a GPU) reports none,
 * which callers turn into a clear error rather than a crash. */
#ifndef DL_DEVICE_H
#define DL_DEVICE_H

#include "core/status.h"

int dl_gpu_count(void);           /* 0 when no usable GPU or CPU-only build */
const char *dl_gpu_build_info(void); /* "CPU-only build" or "CUDA 13.0, cuDNN 9.x" */
/* Checks that GPU `id` can be used; DL_EDEVICE with an actionable message if not. */
dl_status dl_gpu_require(int id);

#endif
