/* tests/c/dotenv_test.c -- engine/core/dotenv.c's line parser and loader, alone. */
#include "core/dotenv.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

static int failures;

static void line(const char *in, int want, const char *wname, const char *wvalue) {
  char name[256], value[64];
  int r = fy_dotenv_parse_line(in, name, sizeof name, value, sizeof value);
  if (r != want || (r == 1 && (strcmp(name, wname) != 0 || strcmp(value, wvalue) != 0))) {
    fprintf(stderr, "FAIL %s: got %d", in, r);
    if (r == 1) fprintf(stderr, " [%s]=[%s]", name, value);
    fprintf(stderr, ", want %d [%s]=[%s]\n", want, wname ? wname : "", wvalue ? wvalue : "");
    failures++;
  }
}

int main(void) {
  line("", 0, NULL, NULL);
  line("   # comment", 0, NULL, NULL);
  line("A=1", 1, "A", "1");
  line("  export  B_2 = two words  # c", 1, "B_2", "two words");
  line("export=3", 1, "export", "3");
  line("C=a#b", 1, "C", "a#b");                      /* # only starts a comment after a space */
  line("D='x # y'", 1, "D", "x # y");
  line("E=\"q\\\"u\\\\o\\nte\"  # c", 1, "E", "q\"u\\o\nte");
  line("F='single \\n raw'", 1, "F", "single \\n raw");
  line("G=$(rm -rf /)", 1, "G", "$(rm -rf /)");
  line("H=", 1, "H", "");
  line("bad line", -1, NULL, NULL);
  line("1X=1", -1, NULL, NULL);
  line("X-Y=1", -1, NULL, NULL);
  line("I='open", -1, NULL, NULL);
  line("J=\"x\" trailing", -1, NULL, NULL);
  line("K=0123456789012345678901234567890123456789012345678901234567890123456789", -1, NULL, NULL);

  /* the loader: the environment wins, empty values set nothing, CRLF lines */
  char path[] = "/tmp/ferry_dotenv_XXXXXX";
  int fd = mkstemp(path);
  if (fd < 0) { perror("mkstemp"); return 1; }
  const char *text = "DOTENV_T1=from file\r\nDOTENV_T2=from file\nDOTENV_T3=\nnot valid\n";
  if (write(fd, text, strlen(text)) != (ssize_t)strlen(text)) { perror("write"); return 1; }
  close(fd);
  setenv("DOTENV_T2", "from env", 1);
  unsetenv("DOTENV_T1");
  unsetenv("DOTENV_T3");
  FILE *warn = tmpfile();
  int set = fy_dotenv_load(path, warn);
  unlink(path);
  char said[256] = {0};
  rewind(warn);
  size_t got = fread(said, 1, sizeof said - 1, warn);
  said[got] = 0;
  const char *t1 = getenv("DOTENV_T1"), *t2 = getenv("DOTENV_T2");
  if (set != 1 || !t1 || strcmp(t1, "from file") != 0 || strcmp(t2, "from env") != 0 || getenv("DOTENV_T3") ||
      !strstr(said, ":4: expected NAME=VALUE, line ignored\n")) {
    fprintf(stderr, "FAIL load: set %d, T1 %s, T2 %s, said %s\n", set, t1 ? t1 : "(unset)", t2, said);
    failures++;
  }
  if (fy_dotenv_load("/nonexistent/.env", warn) != -1) { fprintf(stderr, "FAIL absent file\n"); failures++; }
  if (failures) return 1;
  printf("dotenv_test: ok\n");
  return 0;
}
