/*
** redact.h -- what a secret looks like, for every place that shows a value it did not make.
**
** Provides: fy_redact_next, the next span of a text to hide and what to show instead:
**  - a run of 64 or more hex digits, with its 0x if any (the shape of a private key, raw or
**    in hex): shown as "0x1234…(64 hex digits, redacted)";
**  - a URL with a user:password@, a path, a query or a fragment (where API keys live):
**    shown as scheme://host:port.
** The Lua side is ferry.core.log.redact (log.c) and fy_push_redacted (log.h), used by the
** errors that echo user input, by every log line and by the REPL's history.
** Depends on: nothing but libc. Reentrant.
**
** Only values that came from outside the engine go through it: a transaction hash the
** engine computed has the same shape and may be shown.
*/
#ifndef FY_REDACT_H
#define FY_REDACT_H

#include <stddef.h>

/* The shortest run of hex digits treated as a secret (a 32-byte key in hex). */
#define FY_REDACT_MIN_DIGITS 64

typedef struct {
  size_t at, len;       /* the span of the input to hide */
  char text[96];        /* what to show instead (NUL-terminated), never longer than the span */
  size_t text_len;
} fy_redact_span_t;

/* The first span to hide in s[0..n): 1 and *sp filled, or 0 when there is none. */
int fy_redact_next(const char *s, size_t n, fy_redact_span_t *sp);

#endif
