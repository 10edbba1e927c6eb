/*
** log.c -- leveled text / JSON-lines logging (see log.h).
*/
#include "core/bind.h"
#include "core/utf8.h"
#include "core/log.h"
#include "core/redact.h"

#include <lauxlib.h>
#include <lua.h>
#include <ctype.h>
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/time.h>
#include <time.h>

static int log_level = FY_LOG_INFO;
static int log_json = 0;
/* capture(true): records go to this memory stream instead of stderr until capture(false) */
static FILE *capture_f = NULL;
static char *capture_buf = NULL;
static size_t capture_len = 0;
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

/* Field names that hold secrets: any name containing one of `words`, or one of `parts` as a
 * whole part of the name (pk, api_pk, PK_HEX; but not "pkg"). */
static int secret_name(const char *k) {
  static const char *const words[] = {"key", "secret", "password", "passwd", "passphrase", "pwd",
                                      "token", "auth", "mnemonic", "seed", "priv", "credential",
                                      "cookie", "bearer", NULL};
  static const char *const parts[] = {"pk", "sk", "pass", "jwt", NULL};
  for (int i = 0; words[i]; i++)
    if (strcasestr(k, words[i])) return 1;
  for (const char *p = k; *p;) {
    while (*p && !isalnum((unsigned char)*p)) p++;
    const char *q = p;
    while (*q && isalnum((unsigned char)*q)) q++;
    for (int i = 0; parts[i]; i++)
      if ((size_t)(q - p) == strlen(parts[i]) && strncasecmp(p, parts[i], (size_t)(q - p)) == 0) return 1;
    p = q;
  }
  return 0;
}

/* Names whose values are hashes the engine computed (tx hash, block hash): shown as they are. */
static int hash_name(const char *k) { return strcasestr(k, "hash") != NULL; }

/* A value in a text line: control bytes and backslashes escaped (a value can never start a
 * line of its own), quoted when it holds a space, a quote or an '=' (or is empty), so one
 * field cannot pass for two. quote < 0: never quote (the message). */
static void text_value(FILE *f, const char *s, size_t n, int quote) {
  if (quote == 0) quote = n == 0 || memchr(s, ' ', n) || memchr(s, '"', n) || memchr(s, '=', n);
  if (quote > 0) fputc('"', f);
  for (size_t i = 0; i < n; i++) {
    unsigned char c = (unsigned char)s[i];
    if (c == '\\') fputs("\\\\", f);
    else if (c == '\n') fputs("\\n", f);
    else if (c == '\r') fputs("\\r", f);
    else if (c == '\t') fputs("\\t", f);
    else if (c < 0x20 || c == 0x7f) fprintf(f, "\\x%02x", c);
    else if (c == '"' && quote > 0) fputs("\\\"", f);
    else fputc(c, f);
  }
  if (quote > 0) fputc('"', f);
}

/* A message from C (task failures with their traceback): its lines are kept, each one after
 * the first indented by a tab, so no line of it can pass for a record of its own. */
static void text_lines(FILE *f, const char *s, size_t n) {
  for (size_t i = 0; i < n; i++) {
    unsigned char c = (unsigned char)s[i];
    if (c == '\n') fputs("\n\t", f);
    else if (c == '\t') fputc(c, f);
    else if (c < 0x20 || c == 0x7f) fprintf(f, "\\x%02x", c);
    else fputc(c, f);
  }
}

/* s[0..n) with every secret-looking run masked; *tmp holds a copy when one was needed (free it).
 * Without any such run, s itself. */
static const char *redacted(const char *s, size_t *n, char **tmp) {
  fy_redact_span_t sp;
  *tmp = NULL;
  if (!fy_redact_next(s, *n, &sp)) return s;
  /* each span is replaced by a text no longer than itself: out never passes n */
  char *b = malloc(*n + 1);
  if (!b) { *n = 10; return "[redacted]"; }
  size_t out = 0, i = 0;
  do {
    memcpy(b + out, s + i, sp.at);
    out += sp.at;
    memcpy(b + out, sp.text, sp.text_len);
    out += sp.text_len;
    i += sp.at + sp.len;
  } while (fy_redact_next(s + i, *n - i, &sp));
  memcpy(b + out, s + i, *n - i);
  out += *n - i;
  *n = out;
  *tmp = b;
  return b;
}

void fy_push_redacted(lua_State *L, const char *s, size_t n) {
  char *tmp;
  const char *r = redacted(s, &n, &tmp);
  lua_pushlstring(L, r, n);
  free(tmp);
}

/* Write one record. fields: optional Lua table index on L (NULL L for C callers). from_c: the
 * message comes from the engine (fy_log), not from Lua. */
static void emit(int level, const char *msg, size_t len, lua_State *L, int fields, int from_c) {
  char ts[40];
  FILE *f = capture_f ? capture_f : stderr;
  char *tmp;
  timestamp(ts, sizeof ts);
  msg = redacted(msg, &len, &tmp);
  if (log_json) {
    fprintf(f, "{\"ts\":\"%s\",\"level\":\"%s\",\"msg\":", ts, level_names[level]);
    json_string(f, msg, len);
  } else {
    fprintf(f, "%s %-5s ", ts, level_names[level]);
    if (from_c) text_lines(f, msg, len);
    else text_value(f, msg, len, -1);
  }
  free(tmp);
  if (L && fields && lua_type(L, fields) == LUA_TTABLE) {
    lua_pushnil(L);
    while (lua_next(L, fields)) {
      if (lua_type(L, -2) == LUA_TSTRING) {
        size_t kn;
        const char *k = lua_tolstring(L, -2, &kn);
        size_t vn;
        const char *v;
        int vt = lua_type(L, -1), finite = vt == LUA_TNUMBER && (lua_isinteger(L, -1) || isfinite(lua_tonumber(L, -1)));
        tmp = NULL;
        if (secret_name(k)) { lua_pushliteral(L, "[redacted]"); vt = LUA_TSTRING; }
        else luaL_tolstring(L, -1, NULL);    /* stays on the stack while it is written */
        v = lua_tolstring(L, -1, &vn);
        if (!hash_name(k)) v = redacted(v, &vn, &tmp);
        if (log_json) {
          fputc(',', f);
          json_string(f, k, kn);
          fputc(':', f);
          /* numbers raw, except nan/inf, which JSON cannot hold */
          if (vt == LUA_TBOOLEAN || finite) fwrite(v, 1, vn, f);
          else json_string(f, v, vn);
        } else {
          fputc(' ', f);
          text_value(f, k, kn, -1);
          fputc('=', f);
          text_value(f, v, vn, 0);
        }
        lua_pop(L, 1);
        free(tmp);
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
  emit(level, buf, (size_t)n < sizeof buf ? (size_t)n : sizeof buf - 1, NULL, 0, 1);
}

/* log(level, msg, fields?) */
static int l_log(lua_State *L) {
  int level = (int)fy_checkinteger(L, 1);
  fy_argcheck(L, level >= 0 && level <= 3, 1, "level 0..3");
  if (!fy_log_enabled(level)) return 0;
  size_t n;
  const char *msg = luaL_tolstring(L, 2, &n);
  emit(level, msg, n, L, lua_istable(L, 3) ? 3 : 0, 0);
  return 0;
}

/* redact(s) -> s with every secret-looking run of hex digits masked (non-strings: tostring) */
static int l_redact(lua_State *L) {
  size_t n;
  const char *s = luaL_tolstring(L, 1, &n);
  fy_push_redacted(L, s, n);
  return 1;
}

static int l_configure(lua_State *L) {
  const char *spec = fy_checkstring(L, 1);
  if (fy_log_configure(spec) != 0)
    return fy_error(L, "log: unknown level or format in '%s' (expected error, warn, info, "
                         "debug, text or json)", spec);
  return 0;
}

/* capture(true): keep every record (Lua's and the engine's) in memory instead of writing it
 * to stderr; capture(false) -> the text kept, and stderr again. One capture at a time. */
static int l_capture(lua_State *L) {
  if (lua_toboolean(L, 1)) {
    if (capture_f) return fy_error(L, "log.capture: already capturing");
    capture_f = open_memstream(&capture_buf, &capture_len);
    if (!capture_f) return fy_error(L, "log.capture: cannot open a memory stream");
    return 0;
  }
  if (!capture_f) return fy_error(L, "log.capture: not capturing");
  fclose(capture_f);
  capture_f = NULL;
  lua_pushlstring(L, capture_buf ? capture_buf : "", capture_buf ? capture_len : 0);
  free(capture_buf);
  capture_buf = NULL;
  capture_len = 0;
  return 1;
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
                               {"enabled", l_enabled}, {"redact", l_redact},
                               {"capture", l_capture}, {NULL, NULL}};
  luaL_newlib(L, f);
  return 1;
}
