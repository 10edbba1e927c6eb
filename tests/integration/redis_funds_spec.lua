-- Funds holds shared through Redis (ferry.store.redis_funds, ferry.nonces "Funds"): the
-- scripts alone on a real redis-server, then four ferry processes sending from one address
-- whose balance covers only some of their payments: exactly that many pay, counted by
-- balances, and every other send is refused insufficient_funds.
local ferry = require "ferry"
local eth = require "ferry.eth"
local proc = require "ferry.core.proc"
local redis = require "ferry.redis"
local funds = require "ferry.store.redis_funds"
local peers = require "helpers.peers"
local child = require "helpers.child"

local ADDR = "0xF39Fd6e51aad88F6F4ce6aB8827279cffFb92266"

describe("ferry.store.redis_funds", function()
  local server, client, f
  setup(function()
    server = peers.redis()
    client = redis.connect{ url = server.url, timeout = 2 }
  end)
  teardown(function() client:close(); server:stop() end)
  before_each(function()
    client:call("FLUSHALL")
    f = funds.new(client, { prefix = "t:" }):holds("31337:0xabc", ADDR)
  end)

  local function sum(amounts)
    local s = 0
    for _, a in ipairs(amounts) do s = s + tonumber(a) end
    return s
  end

  it("orders holds by commit and sums those committed before, unmined at the count", function()
    local a = f:hold(100, "p1", 30)
    local b = f:hold(20, "p2", 30)
    local c = f:hold(3, "p1", 30)
    assert.same({ 1, 2, 3 }, { a, b, c })
    assert.equal(0, sum((f:ahead(a, 0))))
    assert.equal(120, sum((f:ahead(c, 0))))
    f:put(a, 100, 5, true, "p1", 30)                              -- signed at nonce 5 and sent
    assert.equal(120, sum((f:ahead(c, 5))))                       -- not mined at count 5
    assert.equal(20, sum((f:ahead(c, 6))))                        -- mined: the balance shows it
    f:done(b, false)                                              -- b failed before its broadcast
    assert.equal(0, sum((f:ahead(c, 6))))
  end)

  it("prunes holds mined below the lowest count a running check read, and says a count older than that is stale", function()
    local a = f:hold(1, "p1", 30)
    f:put(a, 1, 0, true, "p1", 30)
    local b = f:hold(1, "p2", 30)                                 -- its check registers the count 0
    local c = f:hold(1, "p3", 30)
    f:ahead(c, 1)                                                 -- b's check may still read 0: a stays
    assert.is_not_nil(f:state().holds[a])
    f:put(b, 1, 1, true, "p2", 30)                                -- b's check is over
    f:ahead(c, 1)
    assert.is_nil(f:state().holds[a])
    local amounts, pruned = f:ahead(c, 0)                          -- a provider behind the prune
    assert.is_nil(amounts)
    assert.equal(1, pruned)
  end)

  it("an unsent hold expires with its lease, or goes at once when its owner is forgotten; a sent one stays", function()
    local a = f:hold(7, "gone", 0.05)
    local b = f:hold(5, "dead", 30)
    local c = f:hold(3, "dead", 30)
    f:put(c, 3, 0, true, "dead", 30)
    local d = f:hold(1, "me", 30)
    local amounts, owners = f:ahead(d, 0)
    assert.equal(15, sum(amounts))
    assert.same({ "dead", "gone" }, (function() table.sort(owners); return owners end)())
    assert.equal(1, f:forget("dead"))                             -- b; c is sent
    ferry.sleep(0.1)
    assert.equal(3, sum((f:ahead(d, 0))))
    assert.is_nil(f:state().holds[a])
    assert.is_nil(f:state().holds[b])
  end)
end)

-- the payer: a key of its own, funded with an exact balance
local PAYER_KEY = eth.keccak256(eth.raw("ferry redis funds spec payer"))
local PROCESSES, EACH, COVERED = 4, 12, 19
local VALUE, PRICE, GAS = eth.gwei(1000000), eth.gwei(2), 21000

-- each child sends EACH payments, 8 at once, at a fixed legacy price: what a payment spends
-- is exactly what its hold holds, so the payments the balance covers are a number
local SCRIPT = [[
local eth = require "ferry.eth"
local workflow = require "ferry.workflow"
local ferry = require "ferry"
local chain = eth.chain "local"
local signer = chain:signer{ env = "PAYER_KEY" }
local each, tag = tonumber(arg[1]), arg[2]
local items = {}
for i = 1, each do items[i] = i end
local paid, short, other = {}, 0, {}
workflow.parallel(items, { max_concurrent = 8, progress = false }, function(i)
  local to = eth.address("0x" .. eth.keccak256(eth.raw("funds " .. tag .. " " .. i)):sub(-40))
  local ok, tx = pcall(signer.send, signer, { to = to, value = eth.gwei(1000000), gas = 21000, gas_price = eth.gwei(2) })
  if ok then
    tx:wait{ timeout = 60 }
    paid[#paid + 1] = i
  elseif type(tx) == "table" and tx.code == "insufficient_funds" then
    short = short + 1
  else
    other[#other + 1] = tostring(tx)
  end
end)
print(ferry.json.encode({ paid = #paid, short = short, other = other }))
]]

describe("four processes sending from one address, funds shared through Redis", function()
  it("exactly the payments the balance covers are paid; every other send is refused insufficient_funds", function()
    local anvil, server = peers.anvil(), peers.redis()
    local chain = require("helpers.evm").chain_at(anvil.url)
    local payer = chain:signer(PAYER_KEY).address
    local cost = VALUE + eth.u256(GAS) * PRICE
    -- COVERED payments and half of one more
    local balance = cost * eth.u256(COVERED) + cost // eth.u256(2)
    assert.is_nil(select(2, anvil.rpc:call("anvil_setBalance", { payer, balance:tohex() })))
    local script = child.tmpfile(SCRIPT)
    local kids, tags = {}, {}
    for k = 1, PROCESSES do
      tags[k] = ("funds-%d-%d"):format(k, math.random(1e9))
      kids[k] = assert(proc.spawn{ "./ferry", script, tostring(EACH), tags[k], stdout = "pipe", stderr = "pipe",
        env = { LOCAL_RPC_URL = anvil.url, REDIS_URL = server.url, FERRY_DATA_DIR = child.tmpdir(), PAYER_KEY = PAYER_KEY,
                FERRY_LOG = "warn,text" } })
    end
    local paid, short = 0, 0
    for k, p in ipairs(kids) do
      local out = p:read_all(120)
      assert.equal(0, p:wait(30), ("process %d:\n%s\n%s"):format(k, out, p:read_err()))
      local r = ferry.json.decode(out:match("{[^\n]*}"))
      assert.same({}, r.other, ("process %d: sends failed otherwise"):format(k))
      paid, short = paid + r.paid, short + r.short
    end
    os.remove(script)
    -- by balances: every recipient holds its payment or nothing
    local on_chain = 0
    for _, tag in ipairs(tags) do
      for i = 1, EACH do
        local to = eth.address("0x" .. eth.keccak256(eth.raw("funds " .. tag .. " " .. i)):sub(-40))
        local got = chain:balance(to, "latest", { fresh = true })
        if got == VALUE then on_chain = on_chain + 1 else assert.equal(eth.u256(0), got) end
      end
    end
    assert.equal(COVERED, on_chain)
    assert.equal(COVERED, paid)
    assert.equal(PROCESSES * EACH - COVERED, short)
    assert.equal(balance - cost * eth.u256(COVERED), chain:balance(payer, "latest", { fresh = true }))
    server:stop(); anvil:stop()
  end)
end)

describe("a funds check while Redis is frozen", function()
  it("waits and says why, never passes unchecked, and goes on once Redis answers", function()
    local evm = require "helpers.evm"
    local store = require "ferry.store"
    local anvil, chain, signer = evm.on_anvil()
    local server = peers.redis()
    local st = store.get()
    store.share_nonces(st, server.url, "frozen:")
    local _ <close> = setmetatable({}, { __close = function()
      st.redis_nonces, st.kind = nil, (st.kind:gsub("%+redis$", ""))
      server:stop(); anvil:stop()
    end })
    -- connected, address ready (the nonce store's first contact logs its recovery window)
    ferry.log.capture(function() signer:send{ to = evm.fresh_address(1), value = 1 }:wait{ timeout = 10 } end)
    local to = evm.fresh_address(2)
    server:freeze()
    local sending = ferry.spawn(function() return ferry.log.capture(signer.send, signer, { to = to, value = 2 }) end)
    ferry.sleep(2.5)
    assert.equal(eth.u256(0), chain:balance(to, "latest", { fresh = true }))
    server:thaw()
    local ok, logged, tx = sending:wait()
    assert.is_true(ok, tostring(logged))
    tx:wait{ timeout = 10 }
    assert.equal(eth.u256(2), chain:balance(to, "latest", { fresh = true }))
    assert.matches("funds store (Redis) is unreachable", logged, 1, true)
  end)
end)
