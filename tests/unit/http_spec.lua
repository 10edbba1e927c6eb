-- ferry.core.http's request arguments (engine/net/http_lua.c). No server: the requests go to a
-- closed port, so every call ends in provider_down after its headers were built and handed to
-- curl. What is checked is that building them is memory-safe (make check: ASan, aggressive GC).
local http = require "ferry.core.http"
local ferry = require "ferry"
local child = require "helpers.child"

local URL = "http://127.0.0.1:1/"

-- the binary running this spec (./ferry, or build/asan/ferry under make check)
local function self_exe()
  local code, out = child.sh("readlink /proc/$PPID/exe")
  assert(code == 0)
  return (out:gsub("%s+$", ""))
end

local function headers(n, numeric)
  local h = {}
  for i = 1, n do
    if numeric then h[#h + 1] = 1000000 + i else h["X-Ferry-" .. i] = ("value %d"):format(i) end
  end
  return h
end

describe("ferry.core.http request headers", function()
  for _, n in ipairs({ 26, 31, 32, 64 }) do
    it(("takes %d headers in name = value form"):format(n), function()
      -- on a fresh task (a small Lua stack), as a script's first request would be
      local t = ferry.spawn(function()
        collectgarbage("incremental", 1, 1000)
        local status, err = http.request(URL, { headers = headers(n), timeout = 5 })
        collectgarbage("incremental", 200, 100)
        return status, err
      end)
      local ok, status, err = t:wait()
      assert.is_true(ok, tostring(status))
      assert.is_nil(status)
      assert.equal("provider_down", err.code)
    end)
  end

  it("takes numbers as header lines in array form and keeps them alive for curl", function()
    -- a collector that never pauses: the strings converted from the numbers are swept at
    -- once if nothing holds them while curl copies them
    collectgarbage("incremental", 1, 1000)
    local ok, e = pcall(function()
      for _ = 1, 5 do
        local status, err = http.request(URL, { headers = headers(30, true), timeout = 5 })
        assert.is_nil(status)
        assert.equal("provider_down", err.code)
      end
    end)
    collectgarbage("incremental", 200, 100)
    assert(ok, e)
  end)

  it("keeps number header lines alive for curl in a fresh process (aggressive GC)", function()
    local path = os.tmpname()
    local f = assert(io.open(path, "w"))
    f:write([[
local http = require "ferry.core.http"
local h = {}
for i = 1, 30 do h[i] = 1000000 + i end
for _ = 1, 3 do
  local status, err = http.request("http://127.0.0.1:1/", { headers = h, timeout = 5 })
  assert(status == nil and err.code == "provider_down", tostring(err))
end
print("ok")
]])
    f:close()
    local code, out, err = child.run({ self_exe(), path }, { FERRY_GC = "aggressive" })
    os.remove(path)
    assert.equal(0, code, err)
    assert.equal("ok\n", out)
  end)

  it("refuses more than 64 headers with invalid_argument naming the call", function()
    local ok, err = pcall(http.request, URL, { headers = headers(65), timeout = 5 })
    assert.is_false(ok)
    assert.is_true(ferry.is_error(err))
    assert.equal("invalid_argument", err.code)
    assert.matches("http.request", err.message, 1, true)
  end)

  it("refuses a header value with a line break (no header injection)", function()
    local ok, err = pcall(http.request, URL, { headers = { ["X-A"] = "1\r\nHost: evil" }, timeout = 5 })
    assert.is_false(ok)
    assert.equal("invalid_argument", err.code)
  end)

  it("refuses a header value that is not a string or number", function()
    local ok, err = pcall(http.request, URL, { headers = { ["X-A"] = {} }, timeout = 5 })
    assert.is_false(ok)
    assert.is_true(ferry.is_error(err))
    assert.equal("invalid_argument", err.code)
  end)
end)
