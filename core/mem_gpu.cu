// The device half of synced memory (core/mem.c): plain cudaMalloc'd buffers
// and copies on the context's stream, so they are ordered with the kernels.
#include "core/gpu.h"

#include <stdio.h>

extern "C" float *dl_mem_gpu_alloc(size_t count) {
  void *p = NULL;
  size_t bytes = count * sizeof(float);
  cudaError_t e = cudaMalloc(&p, bytes);
  if (e == cudaSuccess) return (float *)p;
  char what[96];
  snprintf(what, sizeof what, "allocating %.1f MiB", bytes / 1048576.0);
  dl_gpu_check_cuda(e, what, __FILE__, __LINE__);
  return NULL;
}

// cudaFree waits for the device; a failure here (only after an earlier,
// already recorded one) is not worth a second message.
extern "C" void dl_mem_gpu_free(float *p) {
  if (cudaFree(p) != cudaSuccess) cudaGetLastError();
}

// From pageable host memory the copy returns once the data is staged, so the
// host buffer may change right after; no wait is needed.
extern "C" dl_status dl_mem_gpu_upload(float *dst_device, const float *src_host, size_t count) {
  return CHECK_CUDA(cudaMemcpyAsync(dst_device, src_host, count * sizeof(float),
                                    cudaMemcpyHostToDevice, dl_gpu_stream()));
}

// Waits for everything queued before (the kernels that wrote src), then copies.
extern "C" dl_status dl_mem_gpu_download(float *dst_host, const float *src_device, size_t count) {
  dl_status st = CHECK_CUDA(cudaMemcpyAsync(dst_host, src_device, count * sizeof(float),
                                            cudaMemcpyDeviceToHost, dl_gpu_stream()));
  return st ? st : CHECK_CUDA(cudaStreamSynchronize(dl_gpu_stream()));
}

extern "C" dl_status dl_mem_gpu_zero(float *dst_device, size_t count) {
  return CHECK_CUDA(cudaMemsetAsync(dst_device, 0, count * sizeof(float), dl_gpu_stream()));
}
