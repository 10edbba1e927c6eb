/*
** dotenv.h -- read a .env file into the process environment (plain C, no Lua).
*/
#ifndef FERRY_DOTENV_H
#define FERRY_DOTENV_H

#include <stdio.h>

/* fy_dotenv_load(path, warn): set every NAME=VALUE of the file that the environment does not
 * already have (setenv(..., 0)). Lines: blank, "# comment", or [export] NAME=VALUE where VALUE
 * is 'single quoted' (as is), "double quoted" (\" \\ \n escapes) or bare (up to a " #"
 * comment, trimmed). Nothing is expanded or run. An empty value sets nothing. A line of any
 * other shape is named on warn ("ferry: PATH:N: expected NAME=VALUE, line ignored") and
 * never shown (it may hold a secret). -> lines set, or -1 when the file cannot be read (absent:
 * nothing said). */
int fy_dotenv_load(const char *path, FILE *warn);

/* fy_dotenv_parse_line(line, name, nname, value, nvalue) -> 1: an assignment (name and value
 * filled, NUL-terminated), 0: blank or comment, -1: malformed or too long. */
int fy_dotenv_parse_line(const char *line, char *name, size_t nname, char *value, size_t nvalue);

#endif
