/*
** log.c -- leveled text / JSON-lines logging (see log.h).
*/
#include "core/bind.h"
#include "core/utf8.h"
#include "core/log.h"

#include <lauxlib.h>
#include <lua.h>
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>
#include <strings.h>
#include <sys/time.h>
#include <time.h>

static int log_level = FY_LOG_INFO;
static int log_json = 0;
static const char *const level_names[] = {"ERROR", "WARN", "INFO", "DEBUG"};

int fy_log_enabled(int level) { return level <= log_level; }

static int parse_level(const char *s, size_t n) {
  for (int i = 0; i < 4; i++)
    if (strlen(level_names[i]) == n && strncasecmp(s, level_names[i], n) == 0) return i;
  if (n == 7 && strncasecmp(s, "warning", 7) == 0) return FY_LOG_WARN;
  return -1;
}

int fy_log_configure(const char *spec) {
  while (spec && *spec) {
    const char *end = strpbrk(spec, ":,");
    size_t n = end ? (size_t)(end - spec) : strlen(spec);
    int lv;
    if (n == 4 && strncasecmp(spec, "json", 4) == 0) log_json = 1;
    else if (n == 4 && strncasecmp(spec, "text", 4) == 0) log_json = 0;
    else if ((lv = parse_level(spec, n)) >= 0) log_level = lv;
    else return -1;
    spec = end ? end + 1 : NULL;
  }
  return 0;
}

static void timestamp(char *buf, size_t n) {
  struct timeval tv;
  struct tm tm;
  gettimeofday(&tv, NULL);
  gmtime_r(&tv.tv_sec, &tm);
  size_t k = strftime(buf, n, "%Y-%m-%dT%H:%M:%S", &tm);
  snprintf(buf + k, n - k, ".%03dZ", (int)(tv.tv_usec / 1000));
}

/* A JSON string: escapes, and bytes that are not UTF-8 as U+FFFD, so a line always parses. */
static void json_string(FILE *f, const char *s, size_t n) {
  fputc('"', f);
  for (size_t i = 0; i < n; i++) {
    unsigned char c = (unsigned char)s[i];
    if (c >= 0x80) {
      size_t k = fy_utf8_len((const unsigned char *)s + i, n - i);
      if (!k) { fputs("\\ufffd", f); continue; }
      fwrite(s + i, 1, k, f);
      i += k - 1;
      continue;
    }
    if (c == '"' || c == '\\') fprintf(f, "\\%c", c);
    else if (c == '\n') fputs("\\n", f);
    else if (c == '\t') fputs("\\t", f);
    else if (c < 0x20) fprintf(f, "\\u%04x", c);
    else fputc(c, f);
  }
  fputc('"', f);
}

static int secret_name(const char *k) {
  static const char *const words[] = {"key", "secret", "password", "passwd", "token", "auth",
                                      "mnemonic", "seed", NULL};
  for (int i = 0; words[i]; i++)
    if (strcasestr(k, words[i])) return 1;
  return 0;
}

/* Write one record. fields: optional Lua table index on L (NULL L for C callers). */
static void emit(int level, const char *msg, size_t len, lua_State *L, int fields) {
  char ts[40];
  FILE *f = stderr;
  timestamp(ts, sizeof ts);
  if (log_json) {
    fprintf(f, "{\"ts\":\"%s\",\"level\":\"%s\",\"msg\":", ts, level_names[level]);
    json_string(f, msg, len);
  } else {
    fprintf(f, "%s %-5s %.*s", ts, level_names[level], (int)len, msg);
  }
  if (L && fields && lua_type(L, fields) == LUA_TTABLE) {
    lua_pushnil(L);
    while (lua_next(L, fields)) {
      if (lua_type(L, -2) == LUA_TSTRING) {
        const char *k = lua_tostring(L, -2);
        size_t vn;
        const char *v;
        if (secret_name(k)) { v = "[redacted]"; vn = 10; }
        else { v = luaL_tolstring(L, -1, &vn); lua_pop(L, 1); }
        if (log_json) {
          fputc(',', f);
          json_string(f, k, strlen(k));
          fputc(':', f);
          /* numbers raw, except nan/inf, which JSON cannot hold */
          int raw = lua_type(L, -1) == LUA_TBOOLEAN ||
                    (lua_type(L, -1) == LUA_TNUMBER && (lua_isinteger(L, -1) || isfinite(lua_tonumber(L, -1))));
          if (raw) fwrite(v, 1, vn, f);
          else json_string(f, v, vn);
        } else {
          fprintf(f, " %s=%.*s", k, (int)vn, v);
        }
      }
      lua_pop(L, 1);
    }
  }
  fputs(log_json ? "}\n" : "\n", f);
  fflush(f);
}

void fy_log(int level, const char *fmt, ...) {
  if (!fy_log_enabled(level)) return;
  char buf[8192];
  va_list ap;
  va_start(ap, fmt);
  int n = vsnprintf(buf, sizeof buf, fmt, ap);
  va_end(ap);
  if (n < 0) return;
  emit(level, buf, (size_t)n < sizeof buf ? (size_t)n : sizeof buf - 1, NULL, 0);
}

/* log(level, msg, fields?) */
static int l_log(lua_State *L) {
  int level = (int)fy_checkinteger(L, 1);
  fy_argcheck(L, level >= 0 && level <= 3, 1, "level 0..3");
  if (!fy_log_enabled(level)) return 0;
  size_t n;
  const char *msg = luaL_tolstring(L, 2, &n);
  emit(level, msg, n, L, lua_istable(L, 3) ? 3 : 0);
  return 0;
}

static int l_configure(lua_State *L) {
  const char *spec = fy_checkstring(L, 1);
  if (fy_log_configure(spec) != 0)
    return fy_error(L, "log: unknown level or format in '%s' (expected error, warn, info, "
                         "debug, text or json)", spec);
  return 0;
}

static int l_level(lua_State *L) {
  lua_pushstring(L, level_names[log_level]);
  lua_pushstring(L, log_json ? "json" : "text");
  return 2;
}

static int l_enabled(lua_State *L) {
  lua_pushboolean(L, fy_log_enabled((int)fy_checkinteger(L, 1)));
  return 1;
}

int luaopen_ferry_core_log(lua_State *L) {
  static const luaL_Reg f[] = {{"log", l_log}, {"configure", l_configure}, {"level", l_level},
                               {"enabled", l_enabled}, {NULL, NULL}};
  luaL_newlib(L, f);
  return 1;
}
