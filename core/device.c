/* CPU side of device handling; core/gpu.cu provides the CUDA queries and the
 * GPU context when the build has GPU support (DL_GPU). */
#include "core/device.h"

#include <errno.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

static char **handover_argv;
void dl_gpu_handover_argv(char **argv) { handover_argv = argv; }

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

/* <directory of this executable>/dltrain-gpu into buf; 0 when not runnable. */
static int gpu_build_path(char *buf, size_t n) {
  ssize_t len = readlink("/proc/self/exe", buf, n - 1);
  if (len <= 0) return 0;
  buf[len] = 0;
  char *slash = strrchr(buf, '/');
  if (!slash || (size_t)(slash - buf) + sizeof "/dltrain-gpu" > n) return 0;
  strcpy(slash, "/dltrain-gpu");
  return access(buf, X_OK) == 0;
}

dl_status dl_gpu_require(int id) {
  char path[4096];
  if (handover_argv && gpu_build_path(path, sizeof path)) {
    fflush(NULL);
    execv(path, handover_argv);
    return dl_error(DL_EDEVICE, "GPU %d requested: cannot start the GPU build %s: %s", id, path,
                    strerror(errno));
  }
  return dl_error(DL_EDEVICE,
                  "GPU %d requested, but this dltrain was built without CUDA and no dltrain-gpu "
                  "is beside it; build one with `make` (or `make GPU=1`) on a machine with the "
                  "CUDA toolkit and cuDNN, or train on the CPU (drop --gpu / use mode: cpu)",
                  id);
}

const char *dl_gpu_startup_line(void) { return ""; }
dl_status dl_gpu_error(void) { return DL_OK; }
dl_status dl_gpu_sync(void) { return DL_OK; }
size_t dl_gpu_memory_in_use(void) { return 0; }
#endif
