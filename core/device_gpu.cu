// CUDA device queries (compiled only when the build has GPU support). The
// GPU backend's kernels live beside their CPU twins as layers/NAME.cu.
#include <cuda_runtime.h>
#include <cudnn.h>
#include <stdio.h>

extern "C" int dl_cuda_device_count(void) {
  int n = 0;
  if (cudaGetDeviceCount(&n) != cudaSuccess) {
    cudaGetLastError();  // clear the sticky error: no driver or no device
    return 0;
  }
  return n;
}

extern "C" const char *dl_cuda_build_info(void) {
  static char buf[160];
  int rt = 0;
  cudaRuntimeGetVersion(&rt);
  snprintf(buf, sizeof buf, "CUDA runtime %d.%d, cuDNN %zu (built against %d.%d.%d)", rt / 1000,
           (rt % 1000) / 10, cudnnGetVersion(), CUDNN_MAJOR, CUDNN_MINOR, CUDNN_PATCHLEVEL);
  return buf;
}
