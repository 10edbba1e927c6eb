-- luacheck (Debian's lua-check) over the Lua of this repository: `make lint`, run by `make check`.
-- What it is for: unused variables, shadowing and accidental globals.
std = "lua54"
max_line_length = 150          -- long log and error strings read better whole
codes = true
exclude_files = { "tests/peers/node_modules/**", "tests/fixtures/**", "build/**" }

-- what the engine means to replace: boot.lua forwards coroutine.resume/wrap and os.exit,
-- tests/run.lua hands busted its arg[0]
files["stdlib/ferry/boot.lua"] = { ignore = { "122" } }
files["tests/run.lua"] = { ignore = { "122" } }

-- busted, as the specs see it (tests/run.lua runs busted inside ./ferry)
-- and with_timeout from tests/helpers/preload.lua
files["tests/**/*_spec.lua"] = { std = "+busted", read_globals = { "with_timeout" } }
files["tests/helpers/**"] = { std = "+busted" }

-- config files run in the config sandbox, which gives them env(name, default)
files["config.lua"] = { read_globals = { "env" } }
