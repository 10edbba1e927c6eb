-- Ids shared across processes (ferry.store.redis_journal, ferry.store.journal): with
-- redis.url set a send's id is claimed once by every process on that Redis, and any of them
-- reads any row. The rows alone on a real redis-server, then four processes paying
-- overlapping batches under the SAME ids, one SIGKILLed and run again: every recipient paid
-- exactly once, counted by balances.
local ferry = require "ferry"
local eth = require "ferry.eth"
local proc = require "ferry.core.proc"
local db = require "ferry.core.db"
local redis = require "ferry.redis"
local rjournal = require "ferry.store.redis_journal"
local store = require "ferry.store"
local journal = require "ferry.journal"
local evm = require "helpers.evm"
local peers = require "helpers.peers"
local child = require "helpers.child"

describe("ferry.store.redis_journal", function()
  local server, client, rj
  setup(function()
    server = peers.redis()
    client = redis.connect{ url = server.url, timeout = 2 }
  end)
  teardown(function() client:close(); server:stop() end)
  before_each(function()
    client:call("FLUSHALL")
    rj = rjournal.new(client, { prefix = "t:" })
  end)

  local ROW = { chain = "local", chain_id = 31337, address = "0xabc", fields = '{"to":"0xdef","value":"5"}' }

  it("claims an id once: another live owner finds it busy, its owner finds its own row", function()
    assert.equal("claimed", rj:claim("c1", "pay-1", "A", ROW, 30))
    local outcome, row = rj:claim("c1", "pay-1", "B", ROW, 30)
    assert.equal("busy", outcome)
    assert.equal("A", row.owner)
    assert.equal("new", row.state)
    assert.equal("5", row.fields.value)
    assert.equal("row", (rj:claim("c1", "pay-1", "A", ROW, 30)))
  end)

  it("a claim whose owner died before signing is taken over; one that signed is returned, not taken", function()
    rj:claim("c1", "pay-2", "A", ROW, 30)
    assert.is_true(rj:put("c1", "pay-2", "A", "reserved", { nonce = 4 }))
    local outcome, from = rj:claim("c1", "pay-2", "B", ROW, 30, "A")        -- B found A's process gone
    assert.same({ "taken_over", "A" }, { outcome, from })
    -- A wakes up: its writes before a signature are refused, so it signs nothing
    assert.is_false(rj:put("c1", "pay-2", "A", "signed", { raw = "0x01", hash = "0xaa", hashes = '["0xaa"]' }))
    assert.is_true(rj:put("c1", "pay-2", "B", "signed", { nonce = 7, raw = "0x02", hash = "0xBB", hashes = '["0xbb"]' }))
    local o2, row = rj:claim("c1", "pay-2", "C", ROW, 30, "B")
    assert.equal("row", o2)
    assert.same({ "B", "0x02", 7, "signed" }, { row.owner, row.raw, row.nonce, row.state })
    -- once signed, a process that knows nothing of the bytes cannot unpay the row (A's
    -- restart marking its dead run's rows failed); one tracking them (by their hash) writes
    -- their outcome; a final row stays final
    assert.is_false(rj:put("c1", "pay-2", "A", "failed", { error = "interrupted before it was signed" }))
    assert.is_true(rj:put("c1", "pay-2", "C", "confirmed", { block = 9, hash = "0xbb" }))
    assert.is_true(rj:put("c1", "pay-2", "B", "unsure", {}))
    local final = rj:get("pay-2")
    assert.same({ "confirmed", "B" }, { final.state, final.owner })
    assert.equal("pay-2", rj:by_hash("0xbb").id)
    assert.equal(9, rj:by_hash("0xBB").block)
  end)

  it("'nothing was paid' of signed bytes lands only from a writer that knows every version", function()
    rj:claim("c3", "pay-4", "B", ROW, 30)
    rj:put("c3", "pay-4", "B", "signed", { nonce = 3, raw = "0x0b", hash = "0xbb", hashes = '["0xbb"]' })
    -- C tracks B's bytes (a duplicate) and bumps them: one more version at the same nonce
    assert.is_true(rj:put("c3", "pay-4", "C", "sent", { raw = "0x0c", hash = "0xcc", hashes = '["0xbb","0xcc"]' }))
    -- B sees nonce 3 used by "another transaction" (C's bump): its 'taken' must not unpay the id
    assert.is_false(rj:put("c3", "pay-4", "B", "taken", { error = "nonce used by another transaction" }, { "0xbb" }))
    assert.equal("sent", rj:get("pay-4").state)
    assert.equal("row", (rj:claim("c3", "pay-4", "D", ROW, 30)))   -- not claimable again
    assert.is_true(rj:put("c3", "pay-4", "B", "taken", { error = "none of its versions mined" }, { "0xbb", "0xcc" }))
    assert.equal("claimed", (rj:claim("c3", "pay-4", "D", ROW, 30)))
  end)

  it("a claim silent past its lease is taken over; an unpaid one is claimed again", function()
    rj:claim("c2", "pay-3", "A", ROW, 30)
    ferry.sleep(0.06)
    assert.equal("taken_over", (rj:claim("c2", "pay-3", "B", ROW, 0.05)))
    rj:put("c2", "pay-3", "B", "failed", { error = "insufficient_funds" })
    assert.equal("claimed", (rj:claim("c2", "pay-3", "C", ROW, 30)))
    local row = rj:get("pay-3")
    assert.same({ "C", "new" }, { row.owner, row.state })
    assert.is_nil(row.error)
  end)
end)

local COUNTS = { 40, 30, 50, 40 }   -- the same batch name: ids <batch>-1 .. <batch>-count overlap
local KILLED = 3

local function recipients(batch, count)
  local list = {}
  for i = 1, count do
    list[i] = { address = eth.address("0x" .. eth.keccak256(eth.raw("payout " .. batch .. " " .. i)):sub(-40)),
                amount = eth.gwei(1000000 * (1 + (i - 1) % 10)) }
  end
  return list
end

local function states(data_dir)
  local c <close> = db.open(data_dir .. "/ferry.db")
  local counts = {}
  for _, r in ipairs(assert(c:exec("SELECT state, count(*) AS n FROM txs GROUP BY state"))) do counts[r.state] = r.n end
  return counts
end

local function n_signed(st) return (st.signed or 0) + (st.sent or 0) + (st.unsure or 0) end
local function n_unsigned(st) return (st.new or 0) + (st.reserved or 0) end

-- Four batch_payouts processes with the same batch name (overlapping ids); the one to be
-- killed starts first and claims its first 32 ids, the others start while they are its, and
-- it is SIGKILLed as soon as its journal shows `when` (read from its SQLite journal), then
-- run again on its data dir. -> every recipient paid exactly once, by balances
local function run_and_kill(when, what, said)
  local anvil, server = peers.anvil({ "--block-time", "1" }), peers.redis()
  local chain = evm.chain_at(anvil.url)
  local batch = ("same-ids-%d"):format(math.random(1e9))
  local envs, kids = {}, {}
  local function start(k)
    envs[k] = { LOCAL_RPC_URL = anvil.url, REDIS_URL = server.url, FERRY_DATA_DIR = child.tmpdir(),
                PAYER_KEY = evm.KEY0, FERRY_LOG = "info,text" }
    kids[k] = assert(proc.spawn{ "./ferry", "examples/batch_payouts.lua", tostring(COUNTS[k]), "local", batch,
      env = envs[k], stdout = "pipe", stderr = "pipe" })
  end
  start(KILLED)
  local killed = kids[KILLED]
  assert.matches("paying", killed:read_line(20) or "")
  local deadline, left = ferry.now() + 20, {}
  while n_unsigned(left) + n_signed(left) == 0 and ferry.now() < deadline do
    ferry.sleep(0.02)
    left = states(envs[KILLED].FERRY_DATA_DIR)
  end
  for k = 1, #COUNTS do if k ~= KILLED then start(k) end end
  while not when(left) and ferry.now() < deadline do
    ferry.sleep(0.02)
    left = states(envs[KILLED].FERRY_DATA_DIR)
  end
  killed:kill("KILL")
  killed:wait(10)
  assert.is_true(when(left), ("killed without %s in flight: the test proves nothing %s"):format(what, ferry.json.encode(left)))
  local logs = {}
  for k, p in ipairs(kids) do
    if k ~= KILLED then
      local out = p:read_all(180)
      assert.equal(0, p:wait(30), ("process %d:\n%s\n%s"):format(k, out, p:read_err()))
      logs[#logs + 1] = p:read_err()
    end
  end
  if said then assert.matches(said, table.concat(logs), 1, true) end
  local code, out, err = child.ferry({ "examples/batch_payouts.lua", tostring(COUNTS[KILLED]), "local", batch },
    envs[KILLED], 180)
  assert.equal(0, code, out .. err)
  local top, wrong = math.max(table.unpack(COUNTS)), {}
  for i, r in ipairs(recipients(batch, top)) do
    -- exactly its amount: paid twice would be twice
    local got = chain:balance(r.address, "latest", { fresh = true })
    if got ~= r.amount then wrong[#wrong + 1] = ("recipient %d: %s, not %s"):format(i, tostring(got), tostring(r.amount)) end
  end
  assert.same({}, wrong, out .. err)
  -- any process reads any row: this one, on the same Redis, reads what the children paid
  local st = store.get()
  store.share_nonces(st, server.url)
  local _ <close> = setmetatable({}, { __close = function() st.redis_nonces, st.kind = nil, (st.kind:gsub("%+redis$", "")) end })
  local row = journal.get(batch .. "-1")
  assert.equal("confirmed", row.state)
  assert.are_not.equal(store.owner, row.owner)
  assert.equal(recipients(batch, 1)[1].address:lower(), row.fields.to:lower())
  assert.equal(batch .. "-1", journal.by_hash(row.hash).id)
  server:stop(); anvil:stop()
end

describe("four processes paying the same ids through one Redis, one SIGKILLed and run again", function()
  it("killed before its claims are signed: the others take them over; every recipient paid exactly once", function()
    -- (an address's first reserve on a fresh Redis waits out the nonce store's 2 s window)
    run_and_kill(function(st) return n_unsigned(st) > 0 and n_signed(st) == 0 end, "unsigned claims",
      "took over an id whose process died before signing")
  end)

  it("killed once its claims are signed: the others return them; every recipient paid exactly once", function()
    run_and_kill(function(st) return n_signed(st) > 0 end, "signed payments")
  end)
end)

describe("a send with an id while Redis is frozen", function()
  it("waits for the claim and says why, then pays once", function()
    local anvil, chain, signer = evm.on_anvil()
    local server = peers.redis()
    local st = store.get()
    store.share_nonces(st, server.url, "frozen-ids:")
    local _ <close> = setmetatable({}, { __close = function()
      st.redis_nonces, st.kind = nil, (st.kind:gsub("%+redis$", ""))
      server:stop(); anvil:stop()
    end })
    -- connected, address ready (the nonce store's first contact logs its recovery window)
    ferry.log.capture(function() signer:send{ to = evm.fresh_address(1), value = 1 }:wait{ timeout = 10 } end)
    local to, id = evm.fresh_address(2), ("frozen-%d"):format(math.random(1e9))
    server:freeze()
    local sending = ferry.spawn(function() return ferry.log.capture(signer.send, signer, { to = to, value = 3, id = id }) end)
    ferry.sleep(2.5)
    assert.equal(eth.u256(0), chain:balance(to, "latest", { fresh = true }))
    server:thaw()
    local ok, logged, tx = sending:wait()
    assert.is_true(ok, tostring(logged))
    tx:wait{ timeout = 10 }
    assert.matches("the journal on Redis is unreachable", logged, 1, true)
    assert.equal(tx.hash, signer:send{ to = to, value = 3, id = id }.hash)       -- the same id: the same payment
    assert.equal(eth.u256(3), chain:balance(to, "latest", { fresh = true }))
    assert.equal(tx.hash, journal.get(id).hash)
    local st2 = ferry.stats().journal_redis
    assert.is_true(st2.claims >= 1 and st2.writes >= 4, ferry.json.encode(st2))
  end)
end)

describe("one process on the shared journal", function()
  it("five sends of one id at once pay once, and a used id for another payment is refused", function()
    local anvil, chain, signer = evm.on_anvil()
    local server = peers.redis()
    local st = store.get()
    store.share_nonces(st, server.url, "five:")
    local _ <close> = setmetatable({}, { __close = function()
      st.redis_nonces, st.kind = nil, (st.kind:gsub("%+redis$", ""))
      server:stop(); anvil:stop()
    end })
    local to, id = evm.fresh_address(3), ("five-%d"):format(math.random(1e9))
    local hashes = {}
    ferry.log.capture(function()          -- the nonce store's first contact logs its window
      local tasks = {}
      for i = 1, 5 do tasks[i] = ferry.spawn(function() return signer:send{ to = to, value = 7, id = id } end) end
      for i = 1, 5 do
        local ok, tx = tasks[i]:wait()
        assert.is_true(ok, tostring(tx))
        hashes[tx.hash] = true
      end
    end)
    assert.equal(1, (function() local n = 0; for _ in pairs(hashes) do n = n + 1 end; return n end)())
    local h = next(hashes)
    local ok, err = pcall(signer.send, signer, { to = to, value = 8, id = id })
    assert.is_false(ok)
    assert.equal("invalid_argument", err.code)
    local deadline = ferry.now() + 10
    while chain:balance(to, "latest", { fresh = true }) == eth.u256(0) and ferry.now() < deadline do ferry.sleep(0.05) end
    assert.equal(eth.u256(7), chain:balance(to, "latest", { fresh = true }))
    assert.equal(h, journal.get(id).hash)
  end)
end)
