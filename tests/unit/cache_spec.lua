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

  it("overwrites that add, drop or swap ttl, head_bound and block (same-size values)", function()
    -- entries store the expiry and the head/block mark only when they use them
    local clk = fake_clock(100)
    local c = cache.new{ clock = clk.now }
    local kinds = {
      { },                                  -- plain
      { ttl = 10 },
      { hb = true },
      { block = 7 },
      { ttl = 10, hb = true },
      { ttl = 10, block = 7 },
    }
    local function put(k, v, kind)
      return c:set(k, v, kind.ttl, (kind.hb or kind.block) and { head_bound = kind.hb, block = kind.block } or nil)
    end
    for i, from in ipairs(kinds) do
      for j, to in ipairs(kinds) do
        c:flush()
        clk.t = 100
        local k = ("k%d-%d"):format(i, j)
        assert.is_true(put(k, "old!", from))
        assert.is_true(put("other", "keep", {}))
        assert.is_true(put(k, "new!", to))               -- same size: rewritten where it is
        assert.are.equal("new!", c:get(k))
        assert.are.equal(2, c:stats().entries)
        assert.are.equal(2 * cache.ENTRY_OVERHEAD + #k + 4 + 5 + 4, c:stats().bytes)
        clk.t = 110
        assert.are.equal(to.ttl == nil, c:get(k) ~= nil, "ttl " .. k)
        if not to.ttl then
          c:new_head()
          assert.are.equal(not to.hb, c:get(k) ~= nil, "head " .. k)
          assert.are.equal((to.block and not to.hb) and 1 or 0, c:drop_from_block(7), "block " .. k)
        end
        assert.are.equal("keep", c:get("other"))
      end
    end
  end)

  it("keeps values right across many layout-changing overwrites", function()
    local c = cache.new{ max_entries = 500 }
    for round = 1, 6 do
      for i = 1, 2000 do
        local opts = i % 3 == 0 and { head_bound = true } or i % 3 == 1 and { block = i } or nil
        c:set("key" .. i, ("%08d"):format(i + round), (i + round) % 2 == 0 and 60 or nil, opts)
      end
      for i = 1501, 2000 do assert.are.equal(("%08d"):format(i + round), c:get("key" .. i)) end
      assert.are.equal(500, c:stats().entries)
    end
    c:new_head()
    local live = 0
    for i = 1501, 2000 do if c:get("key" .. i) then live = live + 1 end end
    assert.are.equal(500 - 166, live)                   -- i % 3 == 0 among 1501..2000: 166
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
    assert.error_matches(function() c:get("k") end, "attempt to use a closed ferry.Cache", 1, true)
    do local scoped <close> = cache.new{}; scoped:set("a", "b") end
    collectgarbage()
  end)
end)
