/* Runs a pyvideo model file through the C API alone (no C++, Python or torch in the process), as an app on a phone
 * would: the smallest complete example of deploying a program, and the tool tests use to run x86-written model files
 * on ARM64 under qemu (tests/accelerator/test_program_arm64.py).
 *
 *   run_program MODEL INPUT OUTPUT N T H W C [THREADS]
 *
 * INPUT holds the float32 input in channels-last order [N, T, H, W, C] (native byte order); OUTPUT receives the raw
 * elements of the program's first output. On success it prints "shape N T H W C dtype D layout L" (the C API's
 * codes) and exits 0; on any error it prints the library's message to stderr and exits 1. */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>

#include "pyvideo.h"

static int fail(const char* what) {
  fprintf(stderr, "run_program: %s\n", what);
  return 1;
}

int main(int argc, char** argv) {
  if (argc != 9 && argc != 10)
    return fail("usage: run_program MODEL INPUT OUTPUT N T H W C [THREADS]");
  int64_t shape[5];
  int64_t count = 1;
  for (int i = 0; i < 5; ++i) {
    char* end = NULL;
    shape[i] = strtoll(argv[4 + i], &end, 10);
    if (*end != '\0' || shape[i] <= 0 || shape[i] > (1 << 20)) return fail("N T H W C must be positive integers");
    count *= shape[i];
  }
  const int threads = argc == 10 ? atoi(argv[9]) : 1;

  float* input = malloc((size_t)count * sizeof(float));
  if (!input) return fail("out of memory");
  FILE* f = fopen(argv[2], "rb");
  if (!f) {
    free(input);
    return fail("cannot open INPUT");
  }
  const size_t got = fread(input, sizeof(float), (size_t)count, f);
  const int trailing = fgetc(f) != EOF;
  fclose(f);
  if (got != (size_t)count || trailing) {
    free(input);
    return fail("INPUT does not hold exactly N*T*H*W*C float32 values");
  }

  pyvideo_program* program = NULL;
  if (pyvideo_program_load(argv[1], &program) != PYVIDEO_OK ||
      pyvideo_program_run(program, input, shape, threads) != PYVIDEO_OK) {
    fprintf(stderr, "run_program: %s\n", pyvideo_last_error());
    pyvideo_program_free(program);
    free(input);
    return 1;
  }
  free(input);
  int64_t out_shape[5];
  int32_t dtype = 0, layout = 0;
  const void* data = NULL;
  if (pyvideo_program_output(program, 0, out_shape, &dtype, &layout, &data) != PYVIDEO_OK) {
    fprintf(stderr, "run_program: %s\n", pyvideo_last_error());
    pyvideo_program_free(program);
    return 1;
  }
  const size_t elements = (size_t)(out_shape[0] * out_shape[1] * out_shape[2] * out_shape[3] * out_shape[4]);
  FILE* out = fopen(argv[3], "wb");
  const size_t element_size = dtype == 0 ? sizeof(float) : 1;
  const int written = out && fwrite(data, element_size, elements, out) == elements;
  if (out) fclose(out);
  pyvideo_program_free(program);
  if (!written) return fail("cannot write OUTPUT");
  printf("shape %lld %lld %lld %lld %lld dtype %d layout %d\n", (long long)out_shape[0], (long long)out_shape[1],
         (long long)out_shape[2], (long long)out_shape[3], (long long)out_shape[4], (int)dtype, (int)layout);
  return 0;
}
