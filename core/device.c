/* CPU side of device handling; core/gpu.cu provides the CUDA queries and the
 * GPU context when the build has GPU support (DL_GPU). */
#include "core/device.h"

#include <stdio.h>

#ifdef DL_GPU
#include "core/gpu.h"

int dl_gpu_count(void) { return dl_cuda_device_count(NULL, 0); }
const char *dl_gpu_build_info(void) { return dl_cuda_build_info(); }

dl_status dl_gpu_require(int id) {
  char why[256] = "";
  int n = dl_cuda_device_count(why, sizeof why);
  if (n <= 0)
    return dl_error(DL_EDEVICE,
                    "GPU %d requested, but no CUDA GPU is visible on this machine (%s; %s); train "
                    "on the CPU (drop --gpu / use mode: cpu) or check the driver with nvidia-smi",
                    id, why, dl_gpu_build_info());
  if (id >= n)
    return dl_error(DL_EDEVICE, "GPU %d requested, but only %d GPU(s) are visible (ids 0..%d)", id,
                    n, n - 1);
  return dl_gpu_init(id);
}
#else
int dl_gpu_count(void) { return 0; }
const char *dl_gpu_build_info(void) { return "CPU-only build (GPU=0)"; }

dl_status dl_gpu_require(int id) {
  return dl_error(DL_EDEVICE,
                  "GPU %d requested, but this dltrain was built without CUDA; rebuild with "
                  "`make GPU=1` on a machine with the CUDA toolkit, or train on the CPU (drop "
                  "--gpu / use mode: cpu)",
                  id);
}

const char *dl_gpu_startup_line(void) { return ""; }
dl_status dl_gpu_error(void) { return DL_OK; }
dl_status dl_gpu_sync(void) { return DL_OK; }
#endif
