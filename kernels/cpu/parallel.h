// Split [0, n) into contiguous chunks across OpenMP threads. Kernels stay single-threaded; callers parallelise here.
#pragma once
#include <algorithm>
#include <cstdint>

#if defined(_OPENMP)
#include <omp.h>
#endif

namespace pyvideo::kernels {

template <class F>
void parallel_for_chunks(int64_t n, int num_threads, F&& body) {
  if (n <= 0) return;
  const int threads = static_cast<int>(std::max<int64_t>(1, std::min<int64_t>(num_threads, n)));
#if defined(_OPENMP)
  if (threads > 1) {
#pragma omp parallel num_threads(threads)
    {
      const int64_t t = omp_get_thread_num(), nt = omp_get_num_threads();
      const int64_t begin = n * t / nt, end = n * (t + 1) / nt;
      if (begin < end) body(begin, end);
    }
    return;
  }
#endif
  body(int64_t{0}, n);
}

}  // namespace pyvideo::kernels
