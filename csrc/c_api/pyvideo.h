/* pyvideo C API: the plain C ABI of libvideo.so, for applications that link the library without Python or torch.
 *
 * Conventions: every function that can fail returns a pyvideo_status; on failure, pyvideo_last_error() returns a
 * message for the calling thread (valid until that thread's next call). No C++ exception crosses this boundary.
 * Buffers are owned by the caller; the library never keeps a pointer after a call returns (the one exception: a
 * program's outputs, which the program owns until its next run or its release). */
#ifndef PYVIDEO_H
#define PYVIDEO_H

#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

typedef enum {
  PYVIDEO_OK = 0,
  PYVIDEO_ERROR_INVALID_ARGUMENT = 1,
  PYVIDEO_ERROR_RUNTIME = 2,
} pyvideo_status;

const char* pyvideo_version(void);
const char* pyvideo_last_error(void);

/* Kernel ISA level in use ("scalar", "avx2", "avx512", "neon"), and a way to force one. */
pyvideo_status pyvideo_get_isa(const char** name);
pyvideo_status pyvideo_set_isa(const char* name);

/* Depthwise 3-D convolution, fp32, channels-last: input [N,T,H,W,C], weight [kt,kh,kw,C], bias [C] or NULL,
 * output [N,To,Ho,Wo,C]. Zero padding, dilation 1. num_threads <= 0 means one thread. */
typedef struct {
  int64_t batch, channels;
  int64_t in_t, in_h, in_w;
  int64_t kernel_t, kernel_h, kernel_w;
  int64_t stride_t, stride_h, stride_w;
  int64_t pad_t, pad_h, pad_w;
} pyvideo_dwconv3d_shape;

pyvideo_status pyvideo_dwconv3d_output_size(const pyvideo_dwconv3d_shape* shape, int64_t* out_t, int64_t* out_h,
                                            int64_t* out_w);
pyvideo_status pyvideo_dwconv3d_f32(const pyvideo_dwconv3d_shape* shape, const float* input, const float* weight,
                                    const float* bias, float* output, int num_threads);

/* Native programs: model files written by pyvideo.accelerator.native.NativeProgram.save (Python), holding a whole
 * deploy-form or int8 network (weights included) that runs in one call, without Python or torch. A program may be
 * run from one thread at a time per handle; load one handle per thread for concurrent inference. */
typedef struct pyvideo_program pyvideo_program;

/* Reads a model file. A missing, truncated, corrupt (its checksum, format version 10 on) or malformed file is
   PYVIDEO_ERROR_INVALID_ARGUMENT with a message. */
pyvideo_status pyvideo_program_load(const char* path, pyvideo_program** program);
void pyvideo_program_free(pyvideo_program* program);
pyvideo_status pyvideo_program_input_channels(const pyvideo_program* program, int64_t* channels);
/* Programs of multi-pathway models (SlowFast) take several inputs, one clip per pathway: their count, and the channels
 * of input `index`. */
pyvideo_status pyvideo_program_num_inputs(const pyvideo_program* program, int32_t* count);
pyvideo_status pyvideo_program_input_channels_at(const pyvideo_program* program, int32_t index, int64_t* channels);
pyvideo_status pyvideo_program_num_outputs(const pyvideo_program* program, int32_t* count);

/* Runs on a float32 channels-last input: shape = {N, T, H, W, C}, any size the layers accept. */
pyvideo_status pyvideo_program_run(pyvideo_program* program, const float* input, const int64_t shape[5],
                                   int num_threads);
/* Runs a program on `count` inputs (its num_inputs), each float32 channels-last with its own shape {N, T, H, W, C}. */
pyvideo_status pyvideo_program_run_inputs(pyvideo_program* program, int32_t count, const float* const* inputs,
                                          const int64_t (*shapes)[5], int num_threads);

/* Output `index` of the last run: its channels-last shape {N, T, H, W, C}, element type (0 = float32, 1 = int8),
 * layout hint (0 = [N,C,T,H,W] tensor, 1 = [N,T,H,W,C] tensor, 2 = [N,C] vector) and data, owned by the program
 * and valid until its next run or pyvideo_program_free. */
pyvideo_status pyvideo_program_output(const pyvideo_program* program, int32_t index, int64_t shape[5],
                                      int32_t* dtype, int32_t* layout, const void** data);

#ifdef __cplusplus
}
#endif

#endif /* PYVIDEO_H */
