/*
** log.h -- leveled logging to stderr, as text or JSON lines.
**
** Provides: fy_log (C) and ferry.core.log (Lua: ferry.log.info/warn/error/debug).
** Level and format come from config (log = {level=, format=}) or FERRY_LOG
** ("debug", "info", "json", "json:debug" ...). Field values whose names look like secrets
** (key, secret, password, token, auth, priv, pk, mnemonic, seed, ...) are written as
** "[redacted]"; in every other value and in the message, runs that look like a private key
** (64+ hex digits) are masked and URLs cut to scheme://host:port (redact.h), except in fields
** named like hashes (hash, tx_hash).
** Text lines escape control bytes (
,  ...) and quote values with spaces, quotes or '=',
** so no value can forge a line or a field; a message from C keeps its lines, each one after
** the first indented by a tab.
** capture(true) keeps every record in memory until capture(false) returns it (ferry.log.capture:
** specs of failures that are expected to log keep them out of the run's output).
** Depends on: redact.h, Lua (fy_push_redacted). Loop thread only.
*/
#ifndef FY_LOG_H
#define FY_LOG_H

#include <stddef.h>

enum { FY_LOG_ERROR = 0, FY_LOG_WARN, FY_LOG_INFO, FY_LOG_DEBUG };

void fy_log(int level, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
int fy_log_enabled(int level);
/* Parse "debug", "json", "json:warn"...; returns 0, or -1 on an unknown word. */
int fy_log_configure(const char *spec);

/* Push s[0..n) onto L with every key-shaped run masked and every URL cut to its origin
** (redact.h): what an error message shows of a value it echoes from user input. May raise. */
struct lua_State;
void fy_push_redacted(struct lua_State *L, const char *s, size_t n);

#endif
