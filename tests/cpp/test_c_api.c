/* The C API compiles as C and works without any C++ or Python around it. */
#include <math.h>
#include <stdio.h>
#include <string.h>

#include "pyvideo.h"

static int failures = 0;
#define EXPECT(cond)                                                        \
  do {                                                                      \
    if (!(cond)) {                                                          \
      ++failures;                                                           \
      fprintf(stderr, "%s:%d: expectation failed: %s\n", __FILE__, __LINE__, #cond); \
    }                                                                       \
  } while (0)

int main(void) {
  EXPECT(strlen(pyvideo_version()) > 0);
  const char* isa = NULL;
  EXPECT(pyvideo_get_isa(&isa) == PYVIDEO_OK && isa != NULL);
  EXPECT(pyvideo_set_isa("scalar") == PYVIDEO_OK);
  EXPECT(pyvideo_set_isa("bogus") == PYVIDEO_ERROR_INVALID_ARGUMENT);
  EXPECT(strstr(pyvideo_last_error(), "bogus") != NULL);

  /* 1x1x1x4x1 input (T=1,H=1,W=4), 1x1x3 kernel [1,2,3], padding 1 along W, bias 0.5 */
  pyvideo_dwconv3d_shape s = {1, 1, 1, 1, 4, 1, 1, 3, 1, 1, 1, 0, 0, 1};
  float x[4] = {1, 2, 3, 4}, w[3] = {1, 2, 3}, b[1] = {0.5f}, y[4] = {0};
  int64_t ot, oh, ow;
  EXPECT(pyvideo_dwconv3d_output_size(&s, &ot, &oh, &ow) == PYVIDEO_OK && ot == 1 && oh == 1 && ow == 4);
  EXPECT(pyvideo_dwconv3d_f32(&s, x, w, b, y, 2) == PYVIDEO_OK);
  const float expected[4] = {0 * 1 + 1 * 2 + 2 * 3 + 0.5f, 1 * 1 + 2 * 2 + 3 * 3 + 0.5f, 2 + 6 + 12 + 0.5f,
                             3 + 8 + 0 + 0.5f};
  for (int i = 0; i < 4; ++i) EXPECT(fabsf(y[i] - expected[i]) < 1e-6f);

  s.stride_w = 0;
  EXPECT(pyvideo_dwconv3d_f32(&s, x, w, b, y, 1) == PYVIDEO_ERROR_INVALID_ARGUMENT);
  EXPECT(pyvideo_dwconv3d_f32(NULL, x, w, b, y, 1) == PYVIDEO_ERROR_INVALID_ARGUMENT);
  printf("test_c_api: %d failures\n", failures);
  return failures == 0 ? 0 : 1;
}
