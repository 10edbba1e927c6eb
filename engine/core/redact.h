/*
** redact.h -- what a secret looks like, for every place that echoes a value it did not make.
**
** Provides: fy_redact_find (the next run of 64 or more hex digits, with its 0x if any: the
** shape of a private key, raw or in hex) and fy_redact_mask (the text shown instead:
** "0x1234…(64 hex digits, redacted)"). The Lua side is ferry.core.log.redact (log.c) and
** fy_push_redacted (log.h), used by errors that echo user input and by every log field.
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

/* The first secret-looking run in s[0..n): 1 and its offset and length (0x included), or 0. */
int fy_redact_find(const char *s, size_t n, size_t *at, size_t *len);

/* The text shown instead of the run s[0..len) (as found above), NUL-terminated, into out
** (cap >= 64 is always enough). Returns its length. */
size_t fy_redact_mask(const char *s, size_t len, char *out, size_t cap);

#endif
