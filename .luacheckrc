-- luacheck (Debian's lua-check) over the Lua of this repository: `make lint`, run by `make check`.
-- What it is for: unused variables, shadowing and accidental globals.
std = "lua54"
max_line_length = 150          -- long log and error strings read better whole
codes = true
exclude_files = { "tests/peers/node_modules/**", "build/**" }

-- busted, as the specs see it (tests/run.lua runs busted inside ./ferry)
files["tests/**/*_spec.lua"] = { std = "+busted" }
files["tests/helpers/**"] = { std = "+busted" }
