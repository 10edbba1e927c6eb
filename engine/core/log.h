/*
** log.h -- leveled logging to stderr, as text or JSON lines.
**
** Provides: fy_log (C) and ferry.core.log (Lua: ferry.log.info/warn/error/debug).
** Level and format come from config (log = {level=, format=}) or FERRY_LOG
** ("debug", "info", "json", "json:debug" ...). Field values whose names look like secrets
** (key, secret, password, token, auth) are written as "[redacted]".
** Depends on: nothing but libc. Loop thread only.
*/
#ifndef FY_LOG_H
#define FY_LOG_H

enum { FY_LOG_ERROR = 0, FY_LOG_WARN, FY_LOG_INFO, FY_LOG_DEBUG };

void fy_log(int level, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
int fy_log_enabled(int level);
/* Parse "debug", "json", "json:warn"...; returns 0, or -1 on an unknown word. */
int fy_log_configure(const char *spec);

#endif
