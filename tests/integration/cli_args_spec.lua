-- ferry with many script arguments (engine/main.c): they reach arg and ... however many there are.
local child = require "helpers.child"

local function script(text)
  local path = os.tmpname()
  local f = assert(io.open(path, "w"))
  f:write(text)
  f:close()
  return setmetatable({ path = path }, { __close = function(s) os.remove(s.path) end })
end

describe("ferry CLI arguments", function()
  for _, n in ipairs({ 100, 1000, 10000 }) do
    it(("passes %d arguments to arg and ..."):format(n), function()
      local s <close> = script("print(#arg, select('#', ...), arg[1], arg[#arg], (select(select('#', ...), ...)))\n")
      local argv = { s.path }
      for i = 1, n do argv[#argv + 1] = "a" .. i end
      local code, out, err = child.ferry(argv, nil, 60)
      assert.equal(0, code, err)
      assert.equal(("%d\t%d\ta1\ta%d\ta%d\n"):format(n, n, n, n), out)
    end)
  end
end)
