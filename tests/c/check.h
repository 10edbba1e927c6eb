/* check.h -- the C tests' one assertion: CHECK(cond) counts, and reports a failure with its
** file and line without stopping, so one run shows every failing check. A test's main()
** prints `checks` and `failures` and returns failures != 0. */
#ifndef FY_TEST_CHECK_H
#define FY_TEST_CHECK_H

#include <stdio.h>

static int failures, checks;

#define CHECK(cond)                                                            \
  do {                                                                         \
    checks++;                                                                  \
    if (!(cond)) {                                                             \
      failures++;                                                              \
      fprintf(stderr, "%s:%d: CHECK failed: %s\n", __FILE__, __LINE__, #cond); \
    }                                                                          \
  } while (0)

#endif
