-- The odd-argument sweep (issue 8): every public function and method of the Lua API that needs
-- no network, called with odd arguments of every type in several positions, a GC step between
-- calls. Passes when nothing crashes (make check runs it under ASan+UBSan with an aggressive
-- GC, so a memory error is a failed run) and every failure is a ferry.Error with a string code,
-- never a raw string. Functions that wait run in a task that is cancelled when still waiting.
--
-- Left out, with why (keep this short):
--   network I/O: ferry.core.http, chain reads, signer:send (the lead's sweep covers them);
--   process-wide effects: ferry.core.task.exit (ends the process), ferry.core.proc (starts
--     programs), ferry.core.term (the terminal), ferry.config / ferry.set_config (replace the
--     configuration every other spec reads), ferry.core.log.capture (sends every log record of
--     the run to memory until called again; ferry.log.capture, which always ends it, is swept);
--   ferry.log.error: it writes every call to stderr at any level (1 MB lines); its C function,
--     ferry.core.log.log, is swept.
-- Allowed besides error tables (ALLOWED below): the error raised by the odd table's own
-- __index metamethod, passed on unchanged. A binding that reads a field of a user's table runs
-- the user's code, and replacing the user's error with ours would hide it.
local ferry = require "ferry"
local eth = require "ferry.eth"

local KEY = "0x59c6995e998f97a5a0044966f0945389dc9e86dae88c7a8412f4603b6b78690d"   -- anvil key 1
local INDEX_ERROR = "sweep: __index of the odd table"
local ALLOWED = { [INDEX_ERROR] = true }

local MB = "0x" .. ("a5"):rep(512 * 1024 - 1)
local ODD = {
  { "nil", function() return nil end },
  { "true", function() return true end },
  { "0", function() return 0 end },
  { "-1", function() return -1 end },
  { "2^63-1", function() return math.maxinteger end },
  { "0.5", function() return 0.5 end },
  { "NaN", function() return 0 / 0 end },
  { "inf", function() return math.huge end },
  { '""', function() return "" end },
  { '"0x"', function() return "0x" end },
  { '"zz"', function() return "zz" end },
  { "1 MB string", function() return MB end },
  { "{}", function() return {} end },
  { "table with a failing __index", function()
      return setmetatable({}, { __index = function() error(INDEX_ERROR, 0) end })
    end },
  { "function", function() return function() end end },
  { "coroutine", function() return coroutine.create(function() end) end },
  { "userdata of another type", function() return require("ferry.core.ratelimit").new{ rate = 1 } end },
}
-- where the odd value goes (v); "0x" stands in for an argument that is at least a string
local POSITIONS = {
  function(v) return { n = 1, v } end,
  function(v) return { n = 2, v, v } end,
  function(v) return { n = 2, nil, v } end,
  function(v) return { n = 2, "0x", v } end,
  function(v) return { n = 3, v, v, v } end,
  function(v) return { n = 3, 1, nil, v } end,
}

describe("the odd-argument sweep", function()
  it("never crashes and raises only error tables with a code", function()
    local targets, seen = {}, {}
    local function add(name, f, waits)
      if type(f) == "function" and not seen[name] then
        seen[name] = true
        targets[#targets + 1] = { name = name, f = f, waits = waits }
      end
    end
    local function add_module(prefix, mod, skip, waits)
      local names = {}
      for k, v in pairs(mod) do if type(v) == "function" then names[#names + 1] = k end end
      table.sort(names)
      for _, k in ipairs(names) do
        if not (skip and skip[k]) then add(prefix .. k, mod[k], waits and waits[k]) end
      end
    end
    -- methods: on a fresh good object (new() per call: close and friends change it), and bare
    local function add_methods(prefix, new, skip, waits)
      local obj = new()
      local mt = getmetatable(obj)
      local index = type(mt) == "table" and mt.__index or nil
      local names = {}
      if type(index) == "table" then
        for k, v in pairs(index) do if type(v) == "function" then names[#names + 1] = k end end
      end
      table.sort(names)
      for _, k in ipairs(names) do
        if not (skip and skip[k]) then
          local f = index[k]
          add(prefix .. ":" .. k, function(...) return f(new(), ...) end, waits and waits[k])
          add(prefix .. "." .. k, f, waits and waits[k])
        end
      end
    end

    -- ferry
    add_module("ferry.", ferry, { config = true, set_config = true, sleep = true })
    add("ferry.sleep", ferry.sleep, true)
    add_module("ferry.log.", ferry.log, { error = true })
    add_module("ferry.json.", ferry.json)
    -- the bindings that need no network
    local task = require "ferry.core.task"
    add_module("ferry.core.task.", task, { exit = true, sleep = true })
    add("ferry.core.task.sleep", task.sleep, true)
    add_methods("Task", function() return task.spawn(function() end) end, nil, { wait = true })
    add_methods("Queue", function() return task.queue() end, nil, { get = true })
    for _, name in ipairs{ "json", "log", "keccak", "rlp", "u256", "secp256k1", "abi", "tx", "bytes",
                           "ratelimit", "cache", "health" } do
      add_module("ferry.core." .. name .. ".", require("ferry.core." .. name), name == "log" and { capture = true } or nil)
    end
    local u256 = require "ferry.core.u256"
    add_methods("U256", function() return u256.new(5) end)
    for _, op in ipairs{ "+", "-", "*", "//", "%", "^", "/", "==", "<", "<=", "..", "unary -" } do
      local f = load(op == "unary -" and "local a = ... return -a" or ("local a, b = ... return a %s b"):format(op))
      add("U256 " .. op, function(v) return f(u256.new(5), v) end)
      if op ~= "unary -" then add("U256 " .. op .. " (right)", function(v) return f(v, u256.new(5)) end) end
    end
    add_methods("RateLimit", function() return require("ferry.core.ratelimit").new{ rate = 10 } end)
    add_methods("Cache", function() return require("ferry.core.cache").new{} end)
    add_methods("Health", function() return require("ferry.core.health").new{ providers = { {} } } end)
    add_methods("Bytes", function() return eth.raw("\1\2") end)
    -- ferry.eth: values and units, keccak, addresses, ABI
    for _, k in ipairs{ "u256", "ether", "gwei", "wei", "parse_units", "format_units", "format_ether", "hex",
                        "bytes", "raw", "is_raw", "keccak256", "address", "is_address", "quantity" } do
      assert(eth[k], k)
      add("eth." .. k, eth[k])
    end
    add_module("eth.abi.", eth.abi)
    -- signer:sign and personal_sign need no I/O: a chain whose one provider cannot be reached
    local chain = eth.connect{ chain_id = 31337, providers = { { url = "http://127.0.0.1:1" } } }
    local signer = chain:signer(KEY)
    add("signer:sign", function(...) return signer:sign(...) end)
    add("signer.sign", signer.sign)
    add("signer:personal_sign", function(...) return signer:personal_sign(...) end)
    add("signer.personal_sign", signer.personal_sign)

    -- ferry.log.* and log.log write what they are given: keep it to errors while sweeping
    local logc = require "ferry.core.log"
    local level, format = logc.level()
    logc.configure("error")
    local calls, raw, leaked = 0, {}, {}
    local function judge(name, odd, pos, ok, err)
      calls = calls + 1
      if ok then return end
      local m = ferry.is_error(err) and rawget(err, "message")
      local text = type(m) == "string" and m or type(err) == "string" and err or ("(a %s)"):format(type(err))
      if text:find(KEY:sub(3, 18), 1, true) then leaked[#leaked + 1] = name end
      if not (ferry.is_error(err) and type(err.code) == "string") and not ALLOWED[err] then
        raw[#raw + 1] = ("%s with %s at position %d: %s"):format(name, odd, pos, text:sub(1, 200))
      end
    end
    -- what the swept log functions write is the sweep's own noise, not the run's: kept, and
    -- only a task that failed in it (a real failure) is shown
    local kept = ferry.log.capture(function()
      for _, t in ipairs(targets) do
        for _, o in ipairs(ODD) do
          for p, position in ipairs(POSITIONS) do
            local args = position(o[2]())
            if t.waits then
              local tk = ferry.spawn(function() return pcall(t.f, table.unpack(args, 1, args.n)) end)
              if tk:status() ~= "done" then ferry.sleep(0.001) end
              if tk:status() ~= "done" then tk:cancel("sweep") end      -- still waiting, as told
              local done, ok, err = tk:wait()          -- true, pcall's results | false, {code = "cancelled"}
              if done then judge(t.name, o[1], p, ok, err)
              else judge(t.name, o[1], p, ferry.is_error(ok) and ok.code == "cancelled", ok) end
            else
              judge(t.name, o[1], p, pcall(t.f, table.unpack(args, 1, args.n)))
            end
            collectgarbage("step")
          end
        end
      end
    end)
    local failed = kept:match("task %d+ failed[^\n]*")
    assert.is_nil(failed, failed)
    chain:close()
    logc.configure(level:lower() .. "," .. format)
    print(("\nsweep: %d functions, %d calls, %d raw-string errors, %d key leaks"):format(#targets, calls, #raw, #leaked))
    assert.are.same({}, leaked)
    assert.are.same({}, raw)
  end)
end)
