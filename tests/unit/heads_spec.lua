-- ferry.heads: canonical hashes, reorgs and waiters, fed by hand (no node needed).
local ferry = require "ferry"
local Heads = require "ferry.heads"

local function h(n, fork) return ("0x%064x"):format(n * 1000 + (fork or 0)) end

describe("ferry.heads", function()
  local heads, news, reorgs
  before_each(function()
    news, reorgs = {}, {}
    heads = Heads.new{ name = "t", depth = 8,
      on_new = function(n) news[#news + 1] = n end,
      on_reorg = function(fork, n) reorgs[#reorgs + 1] = { fork, n } end }
  end)

  it("takes a chain of blocks as new heads, and a repeat as the same", function()
    for n = 1, 5 do assert.equal("new", heads:on_head(n, h(n), h(n - 1))) end
    assert.equal("same", heads:on_head(5, h(5), h(4)))
    assert.same({ 1, 2, 3, 4, 5 }, news)
    assert.equal(5, heads.number)
    assert.equal(h(5), heads.hash)
    assert.same({}, reorgs)
  end)

  it("keeps only the last `depth` hashes", function()
    for n = 1, 20 do heads:on_head(n, h(n), h(n - 1)) end
    local count = 0
    for _ in pairs(heads.hashes) do count = count + 1 end
    assert.equal(8, count)
    assert.is_nil(heads.hashes[12])
  end)

  it("finds the fork point of a reorg by walking back with fetch", function()
    for n = 1, 6 do heads:on_head(n, h(n), h(n - 1)) end
    -- blocks 5 and 6 are replaced: the new 6 has the new 5 as parent, 4 is common
    local canonical = { [4] = h(4), [5] = h(5, 1) }
    local outcome = heads:on_head(6, h(6, 1), h(5, 1), function(n) return { hash = canonical[n] } end)
    assert.equal("reorg", outcome)
    assert.same({ { 4, 6 } }, reorgs)
    assert.equal(h(6, 1), heads.hashes[6])
    assert.is_nil(heads.hashes[5])
    assert.equal(h(4), heads.hashes[4])
    assert.equal(1, heads:stats().reorgs)
  end)

  it("a new hash at a known height is a reorg even without a parent", function()
    for n = 1, 3 do heads:on_head(n, h(n), h(n - 1)) end
    assert.equal("reorg", heads:on_head(3, h(3, 7), nil, function(n) return { hash = h(n) } end))
    assert.same({ { 2, 3 } }, reorgs)
  end)

  it("wakes every waiter on a new head; a wait past the head returns at once; a timeout returns nil", function()
    heads:on_head(1, h(1), h(0))
    assert.equal(1, heads:wait(nil, 1))
    assert.equal(1, heads:wait(0, 1))
    local t0 = ferry.now()
    assert.is_nil(heads:wait(1, 0.05))
    assert.is_true(ferry.now() - t0 >= 0.04)
    local got = {}
    local ws = {}
    for i = 1, 3 do ws[i] = ferry.spawn(function() got[i] = heads:wait(1, 5) end) end
    ferry.sleep(0.01)
    heads:on_head(2, h(2), h(1))
    for i = 1, 3 do assert.is_true((ws[i]:wait(1))) end
    assert.same({ 2, 2, 2 }, got)
    assert.is_nil(next(heads.waiters))
  end)

  it("a number without a hash (a block-number read) moves the head only up", function()
    heads:saw_number(7)
    heads:saw_number(3)
    assert.equal(7, heads.number)
    assert.same({ 7 }, news)
  end)
end)
