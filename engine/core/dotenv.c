/*
** dotenv.c -- .env in the working directory, read before the engine starts (engine/main.c).
** Parsed here, in C, so that a key in it (PAYER_KEY) never becomes a Lua string; nothing in
** the file is expanded or executed. See dotenv.h for the rules.
*/
#include "core/dotenv.h"

#include <ctype.h>
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#define MAX_LINE 8192

int fy_dotenv_parse_line(const char *p, char *name, size_t nname, char *value, size_t nvalue) {
  while (*p == ' ' || *p == '\t') p++;
  if (*p == 0 || *p == '#') return 0;
  if (strncmp(p, "export", 6) == 0 && (p[6] == ' ' || p[6] == '\t')) {
    p += 6;
    while (*p == ' ' || *p == '\t') p++;
  }
  size_t n = 0;
  if (!(isalpha((unsigned char)*p) || *p == '_')) return -1;
  while (isalnum((unsigned char)p[n]) || p[n] == '_') n++;
  if (n + 1 > nname) return -1;
  memcpy(name, p, n);
  name[n] = 0;
  p += n;
  while (*p == ' ' || *p == '\t') p++;
  if (*p != '=') return -1;
  p++;
  while (*p == ' ' || *p == '\t') p++;
  size_t k = 0;
  if (*p == '\'' || *p == '"') {
    char q = *p++;
    for (;; p++) {
      if (*p == 0) return -1;                       /* no closing quote */
      if (*p == q) { p++; break; }
      char c = *p;
      if (q == '"' && c == '\\' && (p[1] == '"' || p[1] == '\\' || p[1] == 'n')) {
        p++;
        c = *p == 'n' ? '\n' : *p;
      }
      if (k + 1 >= nvalue) return -1;
      value[k++] = c;
    }
    while (*p == ' ' || *p == '\t') p++;
    if (*p != 0 && *p != '#') return -1;            /* text after the closing quote */
  } else {
    const char *s = p;
    while (*p && !(*p == '#' && p > s && (p[-1] == ' ' || p[-1] == '\t'))) p++;
    while (p > s && (p[-1] == ' ' || p[-1] == '\t')) p--;
    k = (size_t)(p - s);
    if (k + 1 > nvalue) return -1;
    memcpy(value, s, k);
  }
  value[k] = 0;
  return 1;
}

int fy_dotenv_load(const char *path, FILE *warn) {
  FILE *f = fopen(path, "r");
  if (!f) return -1;
  char line[MAX_LINE], name[256], value[MAX_LINE];
  int lineno = 0, set = 0, skipping = 0;
  while (fgets(line, sizeof line, f)) {
    size_t len = strlen(line);
    int whole = len > 0 && line[len - 1] == '\n';
    if (skipping) { skipping = !whole; continue; }   /* the rest of an over-long line */
    lineno++;
    if (!whole && !feof(f)) {
      if (warn) fprintf(warn, "ferry: %s:%d: line longer than %d bytes, ignored\n", path, lineno, MAX_LINE - 2);
      skipping = 1;
      continue;
    }
    while (len > 0 && (line[len - 1] == '\n' || line[len - 1] == '\r')) line[--len] = 0;
    int r = fy_dotenv_parse_line(line, name, sizeof name, value, sizeof value);
    if (r < 0) {
      if (warn) fprintf(warn, "ferry: %s:%d: expected NAME=VALUE, line ignored\n", path, lineno);
      continue;
    }
    if (r == 0 || value[0] == 0 || getenv(name)) continue;   /* the environment wins */
    if (setenv(name, value, 0) == 0) set++;
  }
  /* the values held secrets: leave no copy on the stack */
  explicit_bzero(line, sizeof line);
  explicit_bzero(value, sizeof value);
  fclose(f);
  return set;
}
