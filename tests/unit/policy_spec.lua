-- ferry.policy: the loader, the sandbox each policy runs in, verdicts, hot reload of a dir.
local ferry = require "ferry"
local policy = require "ferry.policy"

local child = require "helpers.child"
local tmpdir = child.tmpdir

-- Write like an editor: a temp file, then renamed over the old one.
local function write(dir, stem, src) child.write_as_editor(("%s/%s.lua"):format(dir, stem), src) end

-- A policy that rejects a value above max; test: its self_test's body.
local function rule(name, max, test)
  return ([[
local MAX = %d
return {
  name = %q,
  before_send = function(tx, ctx)
    if tx.value > MAX then return "reject", "value above " .. MAX end
    return "allow"
  end,
  self_test = function() %s end,
}]]):format(max, name, test or "assert(MAX > 0)")
end

describe("ferry.policy", function()
  after_each(function() policy.stop() end)

  describe("compile", function()
    it("loads a policy, runs its self_test and judges with it", function()
      local p = assert(policy.compile(rule("cap", 10), "cap.lua"))
      assert.equal("cap", p.name)
      assert.matches("^0x%x+$", p.hash)
      local v, reason, d = policy.judge({ value = 11 }, {}, { p })
      assert.equal("reject", v)
      assert.equal("value above 10", reason)
      assert.equal("cap", d[1].policy)
      assert.equal(p.hash, d[1].hash)
      assert.equal("allow", (policy.judge({ value = 3 }, {}, { p })))
    end)

    it("refuses a syntax error, a failing self_test and a table that is not a policy", function()
      local _, err = policy.compile("return {name = 'x', before_send = function( end}", "bad.lua")
      assert.matches("bad.lua:1:", err)
      _, err = policy.compile(rule("x", 1, "error('nope')"), "st.lua")
      assert.matches("self_test failed: .*nope", err)
      _, err = policy.compile("return {name = 'x', before_send = function() end, self_test = function() return false, 'broken' end}", "f.lua")
      assert.matches("self_test failed: broken", err)
      _, err = policy.compile("return 42", "n.lua")
      assert.matches("must return a table", err)
      _, err = policy.compile("return {name = 5, before_send = function() end}", "n.lua")
      assert.matches("no `name`", err)
      _, err = policy.compile("return {name = 'x', before_send = 'allow'}", "n.lua")
      assert.matches("`before_send` must be a function", err)
      _, err = policy.compile("return {name = 'x'}", "n.lua")
      assert.matches("neither before_send nor on_head", err)
      _, err = policy.compile("return {name = 'x', before_send = function() end, befor_send = function() end}", "n.lua")
      assert.matches("befor_send", err)
    end)

    it("turns a policy error or a verdict that is not one into a rejection that says so", function()
      local p = assert(policy.compile([[return {name='e', before_send = function(tx)
        if tx.v == 1 then error('boom') end
        return tx.answer, tx.arg
      end}]], "e.lua"))
      local v, reason, d = policy.judge({ v = 1 }, {}, { p })
      assert.equal("reject", v)
      assert.matches("policy e failed: .*boom", reason)
      assert.is_true(d[1].failed)
      v, reason = policy.judge({ answer = "maybe" }, {}, { p })
      assert.equal("reject", v)
      assert.matches('answered "maybe"', reason)
      v, reason = policy.judge({ answer = "route", arg = "moon" }, {}, { p })
      assert.equal("reject", v)
      assert.matches("not a route", reason)
      v, reason = policy.judge({ answer = "route", arg = "public" }, {}, { p })
      assert.equal("route", v)
      assert.equal("public", reason)
      v, reason = policy.judge({ answer = "queue", arg = "later" }, {}, { p })
      assert.equal("queue", v)
      assert.equal("later", reason)
    end)

    it("asks the policies in order; the first that does not allow decides", function()
      local a = assert(policy.compile("return {name='a', before_send = function() return 'allow' end}", "a.lua"))
      local r = assert(policy.compile("return {name='r', before_send = function() return 'reject', 'no' end}", "r.lua"))
      local q = assert(policy.compile("return {name='q', before_send = function() return 'queue', 'wait' end}", "q.lua"))
      local v, reason, d = policy.judge({}, {}, { a, r, q })
      assert.equal("reject", v)
      assert.equal("no", reason)
      assert.equal(2, #d)
    end)
  end)

  describe("the sandbox", function()
    -- each escape is contained with an error, and the engine goes on
    local escapes = {
      io = "return io.open('/etc/passwd')",
      os = "return os.execute('true')",
      os_getenv = "return os.getenv('HOME')",
      require = "return require('ferry')",
      load = "return load('return 1')",
      load_bytecode = "return load(string.char(27) .. 'Lua')",
      dofile = "return dofile('/etc/passwd')",
      string_dump = "return string.dump(function() end)",
      string_dump_method = "return (''):dump()",
      debug = "return debug.getregistry()",
      getmetatable = "return getmetatable('').__index",
      setmetatable = "return setmetatable(tx, {})",
      rawset = "return rawset(tx, 'value', 1)",
      ctx_write = "ctx.limits.max = 1 return 'allow'",
      ctx_new_key = "tx.value = 0 return 'allow'",
      global_write = "x = 1 return 'allow'",
      collectgarbage = "return collectgarbage('count')",
      loop = "while true do end",
      pcall_loop = "local ok = pcall(function() while true do end end) while true do end",
      pcall_loop_return = "return pcall(function() while true do end end)",
      gigabyte = "return ('x'):rep(1e9)",
      table_growth = "local t = {} for i = 1, 1e8 do t[i] = i end",
      recursion = "local function f() return 1 + f() end return f()",
      coroutine = "return coroutine.wrap(function() end)",
      env_write = "_ENV.x = 1 return 'allow'",
      string_meta = "local s = ('x').rep; string.rep = nil; return ('y'):rep(2) .. tostring(s == nil) .. io.write",
    }
    for name, body in pairs(escapes) do
      it("contains " .. name, function()
        local src = ("return {name = 'esc', before_send = function(tx, ctx) %s end}"):format(body)
        local p = assert(policy.compile(src, "esc.lua"))
        local v, reason, d = policy.judge({ value = 5 }, { limits = { max = 3 } }, { p })
        assert.equal("reject", v, name)
        assert.is_true(d[1].failed, name)
        assert.is_string(reason)
        -- the same policy still answers afterwards
        assert.equal("reject", (policy.judge({ value = 5 }, { limits = {} }, { p })))
      end)
    end

    it("reads tx and ctx as views: fields, #, pairs and ipairs work", function()
      local p = assert(policy.compile([[return {name = 'v', before_send = function(tx, ctx)
        local n = 0 for _ in pairs(ctx.fees) do n = n + 1 end
        local s = 0 for _, x in ipairs(ctx.fees.history) do s = s + x end
        return 'reject', ('%d %d %d %s'):format(n, #ctx.fees.history, s, tx.to)
      end}]], "v.lua"))
      local _, reason = policy.judge({ to = "0xab" }, { fees = { history = { 1, 2, 3 }, next = 4 } }, { p })
      assert.equal("2 3 6 0xab", reason)
    end)

    it("reads nested views with pairs, and refuses a view kept past its call", function()
      local p = assert(policy.compile([[
        local kept
        return {name = 'k', before_send = function(tx, ctx)
          if kept then return 'reject', tostring(kept.next) end
          kept = ctx.fees
          local keys = {}
          for k, v in pairs(ctx) do keys[#keys + 1] = k .. '=' .. type(v) end
          table.sort(keys)
          return 'queue', table.concat(keys, ',')
        end}]], "k.lua"))
      local v, reason = policy.judge({}, { fees = { next = 4 }, n = 1, s = "x", b = true }, { p })
      assert.equal("queue", v)
      assert.equal("b=boolean,fees=table,n=number,s=string", reason)
      local _, _, d = policy.judge({}, { fees = { next = 5 } }, { p })
      assert.is_true(d[1].failed)
      assert.matches("only good during the call", d[1].reason)
    end)

    it("refuses a chunk that loops or eats memory at load time, and one that writes a global", function()
      local _, err = policy.compile("while true do end", "l.lua")
      assert.matches("instruction budget", err)
      _, err = policy.compile("local s = ('x'):rep(1e9) return {}", "m.lua")
      assert.matches("memory cap", err)
      _, err = policy.compile("helper = 1 return {name='g', before_send = function() end}", "g.lua")
      assert.matches("global write", err)
    end)
  end)

  describe("the fee view", function()
    it("turns eth_feeHistory into gwei, its mean and its slope per block", function()
      local gate = require "ferry.policy.gate"
      local gwei = function(n) return ("0x%x"):format(n * 1000000000) end
      local v = gate.fee_view({ baseFeePerGas = { gwei(10), gwei(20), gwei(30), gwei(40) }, gasUsedRatio = { 0.5, 1, 0 } })
      assert.same({ 10, 20, 30, 40 }, v.history)
      assert.equal(40, v.next_base_fee)
      assert.equal(30, v.base_fee)
      assert.equal(25, v.avg)
      assert.equal(10, v.slope)
      assert.equal(0.5, v.gas_used_ratio)
      local flat = gate.fee_view({ baseFeePerGas = { gwei(7), gwei(7) } })
      assert.equal(0, flat.slope)
    end)
  end)

  describe("a policies dir", function()
    it("loads every file, keeps the old version of one that breaks, and reloads on a change", function()
      local dir = tmpdir()
      write(dir, "cap", rule("cap", 10))
      write(dir, "other", "return {name = 'other', before_send = function() return 'allow' end}")
      local st = policy.start{ dir = dir, hup = false }
      assert.is_true(st.files.cap.ok)
      assert.equal(2, #policy.current())
      local old = policy.current()
      local first = st.files.cap.hash

      -- a syntax error, a failing self_test, nonsense: each refused, the old version stays
      for _, broken in ipairs({ "return {", rule("cap", 20, "error('self test says no')"), "return {name = 'cap'}" }) do
        write(dir, "cap", broken)
        local log = ferry.log.capture(policy.reload)
        assert.matches("policy refused", log)
        local s = policy.status()
        assert.is_false(s.files.cap.ok)
        assert.equal(first, s.files.cap.kept)
        assert.equal("reject", (policy.judge({ value = 11 }, {})))
      end
      assert.equal(old, policy.current())     -- nothing was swapped

      -- a good edit is picked up by the watcher, without a call
      write(dir, "cap", rule("cap", 20))
      local log = ferry.log.capture(function()
        local deadline = ferry.now() + 2
        while policy.status().files.cap.hash == first and ferry.now() < deadline do ferry.sleep(0.005) end
      end)
      assert.matches("policy reloaded .*trigger=fs", log)
      local s = policy.status()
      assert.is_true(s.files.cap.ok)
      assert.not_equal(first, s.files.cap.hash)
      assert.equal("allow", (policy.judge({ value = 11 }, {})))
      -- a judgment that held the old list still sees the old version
      assert.equal("reject", (policy.judge({ value = 11 }, {}, old)))
      os.execute("rm -rf " .. dir)
    end)

    it("reloads on SIGHUP", function()
      local dir = tmpdir()
      write(dir, "cap", rule("cap", 10))
      policy.start{ dir = dir, watch = false }
      local f = assert(io.open(dir .. "/cap.lua", "w"))
      f:write(rule("cap", 30))
      f:close()
      ferry.sleep(0.05)
      assert.equal("reject", (policy.judge({ value = 25 }, {})))      -- not watched: not yet
      ferry.log.capture(function()
        require("ferry.core.signal").raise("HUP")
        local deadline = ferry.now() + 2
        while policy.judge({ value = 25 }, {}) ~= "allow" and ferry.now() < deadline do ferry.sleep(0.005) end
      end)
      assert.equal("allow", (policy.judge({ value = 25 }, {})))
      assert.equal("SIGHUP", policy.status().last_reload.trigger)
      os.execute("rm -rf " .. dir)
    end)
  end)
end)
