-- ferry.core.cache: TTL + LRU byte-string cache (engine/prim/cache_lua.c)
local cache = require "ferry.core.cache"

local function fake_clock(t)
  local clock = { t = t or 1000 }
  function clock.now() return clock.t end
  return clock
end

describe("ferry.core.cache", function()
  it("stores and returns byte strings", function()
    local c = cache.new{}
    assert.is_nil(c:get("k"))
    assert.is_true(c:set("k", '{"result":"0x1"}'))
    assert.are.equal('{"result":"0x1"}', c:get("k"))
    assert.is_true(c:set("bin\0key", "v\0\255"))
    assert.are.equal("v\0\255", c:get("bin\0key"))
    assert.are.equal(2, #c)
  end)

  it("overwrites and deletes", function()
    local c = cache.new{}
    c:set("k", "a")
    c:set("k", "bbbb")
    assert.are.equal("bbbb", c:get("k"))
    assert.is_true(c:delete("k"))
    assert.is_false(c:delete("k"))
    assert.is_nil(c:get("k"))
  end)

  it("evicts the least recently used entry when full", function()
    local c = cache.new{ max_entries = 3 }
    c:set("a", "1"); c:set("b", "2"); c:set("c", "3")
    c:get("a")
    local ok, err, forcible = c:set("d", "4")
    assert.is_true(ok)
    assert.is_nil(err)
    assert.is_true(forcible)
    assert.is_nil(c:get("b"))
    assert.are.equal("1", c:get("a"))
    assert.are.equal(1, c:stats().evictions)
  end)

  it("keeps accounted bytes under max_bytes and refuses what cannot fit", function()
    local one = cache.ENTRY_OVERHEAD + 2 + 10
    local c = cache.new{ max_bytes = 2 * one }
    c:set("k1", "0123456789"); c:set("k2", "0123456789"); c:set("k3", "0123456789")
    local s = c:stats()
    assert.are.equal(2, s.entries)
    assert.are.equal(2 * one, s.bytes)
    assert.is_nil(c:get("k1"))
    local ok, err = c:set("k4", string.rep("x", 1000))
    assert.is_nil(ok)
    assert.are.equal("too_large", err)
  end)

  it("expires entries after their ttl", function()
    local clk = fake_clock()
    local c = cache.new{ clock = clk.now }
    c:set("short", "v", 12)
    c:set("forever", "v")
    clk.t = clk.t + 11.9
    assert.are.equal("v", c:get("short"))
    clk.t = clk.t + 0.1
    assert.is_nil(c:get("short"))
    assert.are.equal("v", c:get("forever"))
    assert.are.equal(1, c:stats().expirations)
  end)

  it("drops head-bound entries on a new head", function()
    local c = cache.new{}
    c:set("balance@latest", "0x10", 30, { head_bound = true })
    c:set("chain_id", "0x1")
    assert.are.equal("0x10", c:get("balance@latest"))
    c:new_head()
    assert.is_nil(c:get("balance@latest"))
    assert.are.equal("0x1", c:get("chain_id"))
  end)

  it("drops everything at or above a reorg's fork block", function()
    local c = cache.new{}
    for b = 100, 110 do c:set("block:" .. b, "h" .. b, nil, { block = b }) end
    c:set("latest", "x", nil, { head_bound = true })
    assert.are.equal(6, c:drop_from_block(105))
    assert.are.equal("h104", c:get("block:104"))
    assert.is_nil(c:get("block:105"))
    assert.is_nil(c:get("latest"))
  end)

  it("counts hits and misses", function()
    local c = cache.new{}
    c:set("a", "1")
    c:get("a"); c:get("a"); c:get("b"); c:get("c")
    local s = c:stats()
    assert.are.equal(2, s.hits)
    assert.are.equal(2, s.misses)
    assert.are.equal(0.5, s.hit_rate)
    c:flush()
    assert.are.equal(0, c:stats().entries)
    assert.are.equal(0, c:stats().bytes)
  end)

  it("raises on wrong arguments and on use after close", function()
    local c = cache.new{}
    assert.has_error(function() c:set("k") end)
    assert.has_error(function() c:set("k", "v", 1, { block = -1 }) end)
    assert.has_error(function() c.get({}, "k") end)
    assert.has_error(function() cache.new{ max_entries = -1 } end)
    c:close()
    c:close()
    assert.has_error(function() c:get("k") end, "attempt to use a closed ferry.Cache")
    do local scoped <close> = cache.new{}; scoped:set("a", "b") end
    collectgarbage()
  end)
end)
