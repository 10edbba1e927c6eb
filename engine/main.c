/*
** main.c -- the ferry command line: a Lua interpreter whose main chunk runs as a task.
**
**   ferry [--config FILE] script.lua [args]   run a script (arg table as in lua.c)
**   ferry -e 'code'                           run a string
**   ferry -                                   run stdin
**   ferry repl                                interactive prompt on a fresh engine
**   ferry repl --attach SOCKET                the prompt of a running engine (ferry.repl.attach)
**   ferry --repl SOCKET script.lua            serve that socket while the script runs
**   ferry COMMAND [args]                      a command of stdlib/ferry/cli.lua (balance, send ...):
**                                             a first argument that is no file, has no '/' and
**                                             does not end in .lua
**   ferry --help
*/
#include "core/dotenv.h"
#include "core/engine.h"

#include <lauxlib.h>
#include <lualib.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

/* The C modules this binary opens: engine/modules.def, one X(name) a module. */
#define X(name) int luaopen_ferry_core_##name(lua_State *L);
#include "modules.def"
#undef X

static const luaL_Reg modules[] = {
#define X(name) {"ferry.core." #name, luaopen_ferry_core_##name},
#include "modules.def"
#undef X
  {NULL, NULL}};

static const char usage[] =
  "usage: ferry [options] [script.lua [args...]]\n"
  "       ferry repl [--config FILE]\n"
  "       ferry repl --attach SOCKET        evaluate in a running engine (one started with --repl\n"
  "                                         SOCKET, or `ferry serve` with repl.socket)\n"
  "       ferry [--repl SOCKET] script.lua  serve the REPL on SOCKET while the script runs\n"
  "       ferry COMMAND [args...] [--chain NAME] [--json]\n"
  "\n"
  "commands (cast-style; --chain NAME: default the config's only chain, or \"local\"):\n"
  "  balance ADDR              the balance in ether and wei\n"
  "  nonce ADDR                the next nonce (pending)\n"
  "  call TO SIG [ARGS...]     eth_call; SIG as in cast, \"balanceOf(address)(uint256)\" decodes\n"
  "  send TO [--value 1ether] [--data 0x..] [--key-env NAME]   sign with $PAYER_KEY (or NAME), wait\n"
  "  receipt HASH              a transaction's receipt\n"
  "  block [N|latest]          a block's header\n"
  "  chain-id                  the chain id the node reports\n"
  "  init                      write a starter config.lua and .env.example here\n"
  "  serve                     run until SIGTERM: policies (hot-reloaded), the REPL socket (repl.socket)\n"
  "\n"
  "options:\n"
  "  --config FILE  configuration to load (default ./config.lua, or $FERRY_CONFIG)\n"
  "  -e CODE        run CODE (may repeat; runs before the script)\n"
  "  -l MOD         require MOD before running the script\n"
  "  -v             print the version\n"
  "  -              run the script read from standard input\n"
  "  --             stop handling options\n"
  "  --help         this text\n"
  "\n"
  "Every script runs as a task on the engine's event loop: ferry.sleep, RPC calls and\n"
  "task:wait() work at top level. Exit status: 0, or 1 on an uncaught error (an error table\n"
  "prints one line, file:line: code: message; FERRY_TRACE=1 adds the engine's traceback).\n"
  "Environment: FERRY_LOG (error|warn|info|debug, text|json), FERRY_CONFIG, FERRY_HOME,\n"
  "FERRY_TRACE; .env in the working directory adds NAME=VALUE lines the environment does not\n"
  "already have.\n";

#define FERRY_VERSION "0.1.0"

/* Read all of stdin (before the loop starts; nothing else is running yet). */
static char *slurp_stdin(size_t *n) {
  size_t cap = 65536, len = 0;
  char *b = malloc(cap);
  if (!b) return NULL;
  size_t k;
  while ((k = fread(b + len, 1, cap - len, stdin)) > 0) {
    len += k;
    if (len == cap) {
      char *nb = realloc(b, cap *= 2);
      if (!nb) { free(b); return NULL; }
      b = nb;
    }
  }
  *n = len;
  return b;
}

/* A path that fits in a Lua long string [==[...]==] and a 4 KiB buffer. */
static int lua_quotable(const char *s) { return strlen(s) < 4000 && !strstr(s, "]==]") && !strchr(s, '\n'); }

int main(int argc, char **argv) {
  const char *config = NULL, *script = NULL;
  int script_idx = argc, repl = 0, from_stdin = 0, command = 0, attach = 0;
  static char attach_code[4096 + 64], serve_code[4096 + 64];
  const char *pre[64];
  char pre_kind[64];
  int npre = 0;

  for (int i = 1; i < argc; i++) {
    const char *a = argv[i];
    if (strcmp(a, "--help") == 0 || strcmp(a, "-h") == 0) { fputs(usage, stdout); return 0; }
    if (strcmp(a, "-v") == 0 || strcmp(a, "--version") == 0) {
      printf("ferry %s (%s)\n", FERRY_VERSION, LUA_RELEASE);
      return 0;
    }
    if (strcmp(a, "--config") == 0 || strcmp(a, "-c") == 0) {
      if (++i >= argc) { fprintf(stderr, "ferry: --config needs a file\n"); return 1; }
      config = argv[i];
      continue;
    }
    if (strcmp(a, "--repl") == 0) {
      /* this engine serves its REPL on a Unix socket while the script runs (ferry.repl.server) */
      if (++i >= argc || !lua_quotable(argv[i])) { fprintf(stderr, "ferry: --repl needs a socket path\n"); return 1; }
      if (npre == 64) { fprintf(stderr, "ferry: too many -e/-l\n"); return 1; }
      snprintf(serve_code, sizeof serve_code, "require('ferry.repl.server').start([==[%s]==])", argv[i]);
      pre_kind[npre] = 'e';
      pre[npre++] = serve_code;
      continue;
    }
    if ((strcmp(a, "-e") == 0 || strcmp(a, "-l") == 0)) {
      if (++i >= argc) { fprintf(stderr, "ferry: %s needs an argument\n", a); return 1; }
      if (npre == 64) { fprintf(stderr, "ferry: too many -e/-l\n"); return 1; }
      pre_kind[npre] = a[1];
      pre[npre++] = argv[i];
      continue;
    }
    if (strcmp(a, "--") == 0) { if (i + 1 < argc) { script_idx = i + 1; script = argv[i + 1]; } break; }
    if (strcmp(a, "-") == 0) { from_stdin = 1; script_idx = i; script = "-"; break; }
    if (strcmp(a, "repl") == 0 && !script && !repl) { repl = 1; script_idx = i; continue; }
    if (repl) {
      if (strcmp(a, "--attach") == 0) {
        /* the client of a running engine's REPL socket (ferry.repl.attach), on a fresh loop */
        if (++i >= argc || !lua_quotable(argv[i])) { fprintf(stderr, "ferry repl: --attach needs a socket path\n"); return 1; }
        if (npre == 64) { fprintf(stderr, "ferry: too many -e/-l\n"); return 1; }
        snprintf(attach_code, sizeof attach_code, "require('ferry.repl').attach([==[%s]==])", argv[i]);
        pre_kind[npre] = 'e';
        pre[npre++] = attach_code;
        attach = 1;
        continue;
      }
      fprintf(stderr, "ferry repl: unexpected argument '%s'\n", a);
      return 1;
    }
    if (a[0] == '-') { fprintf(stderr, "ferry: unknown option '%s'\n%s", a, usage); return 1; }
    script_idx = i;
    script = a;
    /* a word that names no file is a command (ferry.cli knows which; it says "did you mean") */
    size_t al = strlen(a);
    command = !strchr(a, '/') && !(al >= 4 && strcmp(a + al - 4, ".lua") == 0) && access(a, F_OK) != 0;
    break;
  }
  /* .env of the working directory: what the environment lacks (before FERRY_* are read) */
  fy_dotenv_load(".env", stderr);
  if (!config && getenv("FERRY_CONFIG") && *getenv("FERRY_CONFIG")) config = getenv("FERRY_CONFIG");

  fy_engine_t *E = fy_engine_new(modules);
  if (!E) return 1;
  lua_State *L = E->L;

  /* arg table, as lua.c builds it: arg[0] = script, arg[1..] its arguments. The script's
   * arguments are also pushed as boot.main's varargs (below): make room for all of them first,
   * as lua.c's pushargs does (a Lua stack starts with 20 free slots). */
  if (!lua_checkstack(L, argc + 16)) {
    fprintf(stderr, "ferry: too many arguments (%d)\n", argc);
    E->exit_code = 1;
    return fy_engine_close(E);
  }
  lua_createtable(L, argc, 1);
  for (int i = 0; i < argc; i++) {
    lua_pushstring(L, argv[i]);
    lua_rawseti(L, -2, i - script_idx);
  }
  lua_setglobal(L, "arg");

  /* boot.main(kind, source, chunkname, config, pre_kinds, pre_values) spawns the main task */
  lua_getglobal(L, "require");
  lua_pushliteral(L, "ferry.boot");
  lua_call(L, 1, 1);
  lua_getfield(L, -1, "main");
  if (attach) { lua_pushliteral(L, "none"); lua_pushnil(L); lua_pushnil(L); }
  else if (repl) { lua_pushliteral(L, "repl"); lua_pushnil(L); lua_pushnil(L); }
  else if (from_stdin) {
    size_t n;
    char *src = slurp_stdin(&n);
    lua_pushliteral(L, "string");
    lua_pushlstring(L, src ? src : "", src ? n : 0);
    lua_pushliteral(L, "=stdin");
    free(src);
  } else if (command) {
    lua_pushliteral(L, "command");
    lua_pushstring(L, script);
    lua_pushnil(L);
  } else if (script) {
    lua_pushliteral(L, "file");
    lua_pushstring(L, script);
    lua_pushnil(L);
  } else if (npre > 0) {
    lua_pushliteral(L, "none"); lua_pushnil(L); lua_pushnil(L);
  } else {
    lua_pushliteral(L, "repl"); lua_pushnil(L); lua_pushnil(L);
  }
  if (config) lua_pushstring(L, config);
  else lua_pushnil(L);
  lua_createtable(L, npre, 0);
  for (int i = 0; i < npre; i++) {
    lua_pushfstring(L, "%c%s", pre_kind[i], pre[i]);
    lua_rawseti(L, -2, i + 1);
  }
  /* script arguments */
  int nargs = 0;
  if (!repl && script) {
    for (int i = script_idx + 1; i < argc; i++) { lua_pushstring(L, argv[i]); nargs++; }
  }
  if (lua_pcall(L, 5 + nargs, 0, 0) != LUA_OK) {
    fprintf(stderr, "ferry: %s\n", lua_tostring(L, -1));
    lua_pop(L, 2);
    E->exit_code = 1;
    return fy_engine_close(E);
  }
  lua_pop(L, 1);
  fy_engine_run(E);
  return fy_engine_close(E);
}
