-- tests/helpers/child.lua -- run a program (usually ./ferry) as a child process to completion.
--
--   local child = require "helpers.child"
--   local code, out, err = child.ferry({ "-e", "print(1)" }, { FERRY_LOG = "json" })
--   local code, out, err = child.sh("printf 'x\n' | ./ferry repl")
-- Children log at the default level and format unless env says otherwise, so exact stderr
-- checks hold whatever FERRY_LOG the suite itself runs under, and keep their data (REPL
-- history) in a temp dir of the run (FERRY_DATA_DIR), never in the checkout's ./.ferry. The process is killed and
-- closed on every path (the <close> of the Process).
local proc = require "ferry.core.proc"

local M = {}

-- One data dir for every child of this run (config.lua: FERRY_DATA_DIR), so the REPL's
-- history and whatever else a child keeps stay out of the checkout's ./.ferry.
local data_dir

--- data_dir() -> the children's FERRY_DATA_DIR: a path under the temp dir, made by whoever
--- writes there first (the REPL makes its data dir).
function M.data_dir()
  if not data_dir then
    local p = os.tmpname()
    os.remove(p)
    data_dir = p .. "-ferry-data"
  end
  return data_dir
end

--- run(argv, env, timeout = 30) -> exit code, stdout, stderr
function M.run(argv, env, timeout)
  env = env or {}
  if env.FERRY_LOG == nil then env.FERRY_LOG = "info,text" end
  if env.FERRY_DATA_DIR == nil then env.FERRY_DATA_DIR = M.data_dir() end
  argv.stdout, argv.stderr, argv.env = "pipe", "pipe", env
  local p <close> = assert(proc.spawn(argv))
  local out = p:read_all(timeout or 30)
  local code = p:wait(timeout or 30)
  assert(code ~= nil, "child did not exit in time: " .. table.concat(argv, " "))
  return code, out, p:read_err()
end

--- ferry(args, env) runs ./ferry with args
function M.ferry(args, env, timeout)
  local argv = { "./ferry" }
  for _, a in ipairs(args) do argv[#argv + 1] = a end
  return M.run(argv, env, timeout)
end

--- sh(cmd, env) runs a shell command line
function M.sh(cmd, env, timeout) return M.run({ "/bin/sh", "-c", cmd }, env, timeout) end

--- tmpdir() -> the path of a new empty temporary directory (the caller removes it)
function M.tmpdir()
  local path = os.tmpname()
  os.remove(path)
  assert(M.sh("mkdir -p '" .. path .. "'") == 0)
  return path
end

--- write_as_editor(path, text): write text the way editors save a file -- into a hidden temp
--- file beside it, then renamed over it -- so a watcher never sees half of it
function M.write_as_editor(path, text)
  local dir, base = path:match("^(.*)/([^/]+)$")
  local tmp = ("%s/.%s.swp"):format(dir, base)
  local f = assert(io.open(tmp, "w"))
  f:write(text)
  f:close()
  assert(os.rename(tmp, path))
end

--- tmpfile(text) -> the path of a new temporary file holding text (the caller removes it)
function M.tmpfile(text)
  local path = os.tmpname()
  local f = assert(io.open(path, "w"))
  f:write(text)
  f:close()
  return path
end

return M
