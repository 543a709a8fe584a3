// A minimal assertion harness for the C++ tests: each test is a program; failures print and set the exit code.
#pragma once
#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <stdexcept>

namespace check {
inline int& failures() {
  static int n = 0;
  return n;
}
inline int& checks() {
  static int n = 0;
  return n;
}
inline int finish(const char* name) {
  std::printf("%s: %d checks, %d failures\n", name, checks(), failures());
  return failures() == 0 ? EXIT_SUCCESS : EXIT_FAILURE;
}
}  // namespace check

#define CHECK(cond)                                                                  \
  do {                                                                               \
    ++check::checks();                                                               \
    if (!(cond)) {                                                                   \
      ++check::failures();                                                           \
      std::fprintf(stderr, "%s:%d: CHECK failed: %s\n", __FILE__, __LINE__, #cond);  \
    }                                                                                \
  } while (0)

#define CHECK_NEAR(a, b, tol)                                                                            \
  do {                                                                                                   \
    ++check::checks();                                                                                   \
    const double check_a_ = (a), check_b_ = (b);                                                         \
    if (!(std::fabs(check_a_ - check_b_) <= (tol))) {                                                   \
      ++check::failures();                                                                               \
      std::fprintf(stderr, "%s:%d: CHECK_NEAR failed: %s=%g vs %s=%g (tol %g)\n", __FILE__, __LINE__, #a, \
                   check_a_, #b, check_b_, double(tol));                                                 \
    }                                                                                                    \
  } while (0)

#define CHECK_THROWS(expr, exc_type)          \
  do {                                        \
    ++check::checks();                        \
    bool check_thrown_ = false;               \
    try {                                     \
      expr;                                   \
    } catch (const exc_type&) {               \
      check_thrown_ = true;                   \
    }                                         \
    if (!check_thrown_) {                     \
      ++check::failures();                    \
      std::fprintf(stderr, "%s:%d: expected %s from %s\n", __FILE__, __LINE__, #exc_type, #expr); \
    }                                         \
  } while (0)
