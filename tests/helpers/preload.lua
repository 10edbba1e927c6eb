-- Loaded by busted before the specs (see .busted).
local ferry = require "ferry"

-- with_timeout(seconds, fn): run fn in a task; fail the test instead of hanging the run.
function _G.with_timeout(seconds, fn)
  local t = ferry.spawn(fn)
  local ok, a, b = t:wait(seconds)
  if ok == nil then
    t:cancel("test timed out")
    error(("timed out after %ss"):format(seconds), 2)
  end
  if not ok then error(a, 2) end
  return a, b
end

-- The specs' own sends journal into a store of this run, never the checkout's ./.ferry.
do
  local path = os.tmpname()
  os.remove(path)
  require("ferry.store").configure({ backend = "sqlite", path = path .. "-ferry.db" })
  _G.FERRY_TEST_STORE = path .. "-ferry.db"
end
