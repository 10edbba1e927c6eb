--- helpers.nonce_contract -- what every nonce backend must do, as specs. A backend's spec file
--- calls it with a factory:
---
---   require("helpers.nonce_contract")(_ENV, "memory", function(chain, addr) return Nonces.new(chain, addr) end)
---
--- (_ENV: the spec file's, where busted keeps describe, it and assert)
---
--- Each case gets a fresh anvil and a chain over it; the mined count is moved with
--- anvil_setNonce, as another process sending from the same address would move it.
local ferry = require "ferry"
local eth = require "ferry.eth"
local evm = require "helpers.evm"

local ADDR = evm.ADDR1

return function(env, backend, make)
  local describe, it, assert = env.describe, env.it, env.assert
  local before_each, after_each = env.before_each, env.after_each
  describe("nonce backend contract (" .. backend .. ")", function()
    local anvil, chain, nonces
    before_each(function()
      anvil, chain = evm.on_anvil({ head_poll = 0 })
      nonces = make(chain, ADDR)
    end)
    after_each(function() anvil:stop() end)

    local function set_mined(n)
      assert.is_nil(select(2, anvil.rpc:call("anvil_setNonce", { ADDR, ("0x%x"):format(n) })))
    end

    it("reserve starts at the chain's count and hands out distinct, contiguous nonces, also at once", function()
      set_mined(5)
      local tasks, got = {}, {}
      for i = 1, 50 do tasks[i] = ferry.spawn(function() return nonces:reserve() end) end
      for i = 1, 50 do
        local ok, n = tasks[i]:wait()
        assert.is_true(ok, tostring(n))
        assert.is_nil(got[n], "handed out twice: " .. tostring(n))
        got[n] = true
      end
      for n = 5, 54 do assert.is_true(got[n], "missing " .. n) end
    end)

    it("release: the lowest freed nonce goes first; one freed at the top is simply given back", function()
      local a, b, c = nonces:reserve(), nonces:reserve(), nonces:reserve()
      assert.same({ 0, 1, 2 }, { a, b, c })
      nonces:release(b)
      assert.equal(1, nonces:reserve())
      nonces:release(c)                                 -- the top: no gap
      assert.equal(2, nonces:reserve())
      assert.equal(3, nonces:reserve())
    end)

    it("bind: a nonce a payment is bound to is never handed out again, even after a resync", function()
      local n = nonces:reserve()
      local done = ferry.spawn(function() ferry.sleep(10) end)
      -- the bound payment: the backend's tracker waits on it until it settles
      nonces:bind({ nonce = n, hash = "0x" .. ("ab"):rep(32), from = ADDR,
                    wait = function() done:wait(); return {} end })
      nonces:resync()
      for _ = 1, 3 do assert.are_not.equal(n, nonces:reserve()) end
      done:cancel()
    end)

    it("resync never lowers the count, and jumps to the chain's when another process used nonces", function()
      assert.equal(0, nonces:reserve())
      assert.equal(1, nonces:reserve())
      nonces:resync()                                   -- the chain still says 0
      assert.equal(2, nonces:reserve())
      set_mined(10)                                     -- someone else sent 10
      nonces:release(2)                                 -- below the chain's count: dropped
      nonces:resync()
      assert.equal(10, nonces:reserve())
    end)

    it("funds: a hold counts against later checks until its nonce is mined; an unsent one is given back", function()
      local balance = chain:balance(ADDR, "latest", { fresh = true })
      local h1 = nonces:hold(eth.ether "1")
      local h2 = nonces:hold(eth.ether "2")
      local bal, held, n = nonces:funds(h2)
      assert.equal(balance, bal)
      assert.equal(eth.ether "1", held)
      assert.equal(1, n)
      nonces:assign(h1, nonces:reserve())
      nonces:sent(h1)
      assert.equal(eth.ether "2", nonces:resize(h2, eth.ether "3"))
      local h3 = nonces:hold(1)
      local _, held3, n3 = nonces:funds(h3)
      assert.equal(eth.ether "4", held3)                -- h1 and the resized h2
      assert.equal(2, n3)
      -- h2 fails before it is sent: closing it gives it back; h1's nonce is mined
      getmetatable(h2).__close(h2)
      set_mined(1)
      -- within floor_every (1 s) of the last read a check judges by it, against every hold not
      -- mined at its count: h1 (mined since) is still counted, on the safe side
      local h4 = nonces:hold(1)
      local _, held4, n4 = nonces:funds(h4)
      assert.equal(eth.ether "1" + eth.u256(1), held4)  -- h1 and h3
      assert.equal(2, n4)
      getmetatable(h4).__close(h4)
      -- a check after that reads the chain again, and h1 is mined
      ferry.sleep(1.05)
      local h5 = nonces:hold(1)
      local _, held5, n5 = nonces:funds(h5)
      assert.equal(eth.u256(1), held5)                  -- only h3, which is not sent yet
      assert.equal(1, n5)
    end)
  end)
end
