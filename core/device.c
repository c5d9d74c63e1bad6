/* CPU side of device handling; core/device_gpu.cu provides the CUDA queries
 * when the build has GPU support (DL_GPU). */
#include "core/device.h"

#include <stdio.h>

#ifdef DL_GPU
int dl_cuda_device_count(void);
const char *dl_cuda_build_info(void);
int dl_gpu_count(void) { return dl_cuda_device_count(); }
const char *dl_gpu_build_info(void) { return dl_cuda_build_info(); }
#else
int dl_gpu_count(void) { return 0; }
const char *dl_gpu_build_info(void) { return "CPU-only build (GPU=0)"; }
#endif

dl_status dl_gpu_require(int id) {
  int n = dl_gpu_count();
#ifndef DL_GPU
  (void)n;
  return dl_error(DL_EDEVICE,
                  "GPU %d requested, but this dltrain was built without CUDA; rebuild with "
                  "`make GPU=1` on a machine with the CUDA toolkit, or train on the CPU (drop "
                  "--gpu / use mode: cpu)",
                  id);
#else
  if (n <= 0)
    return dl_error(DL_EDEVICE,
                    "GPU %d requested, but no CUDA GPU is visible on this machine (%s); train on "
                    "the CPU (drop --gpu / use mode: cpu) or check the driver with nvidia-smi",
                    id, dl_gpu_build_info());
  if (id >= n)
    return dl_error(DL_EDEVICE, "GPU %d requested, but only %d GPU(s) are visible (ids 0..%d)", id,
                    n, n - 1);
  return dl_error(DL_EDEVICE,
                  "GPU %d found, but GPU training is not implemented in this version yet; use "
                  "mode: cpu",
                  id);
#endif
}
