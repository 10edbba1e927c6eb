-- bench/policy.lua -- the policies' numbers for `make bench` (bench/run.lua's "policy" rows):
-- time per decision of each shipped policy (a typical send's tx and ctx, copied into the
-- policy's own state each call, as the send pipeline does), and the reload latency from a
-- file's rename to the new version judging.
local ferry = require "ferry"
local policy = require "ferry.policy"

local function read(path)
  local f = assert(io.open(path))
  local s = f:read("a")
  f:close()
  return s
end

-- what the gate hands a policy for a plain transfer (ferry.policy.gate.context)
local function sample()
  local history = {}
  for i = 1, 21 do history[i] = 20 + i * 0.5 end
  local tx = { from = "0xf39fd6e51aad88f6f4ce6ab8827279cfffb92266", to = "0x70997970c51812dc3a010c7d01b50e0d17dc79c8",
               value = "1000000000000000", value_eth = 0.001, data = "0x", gas = 21000, legacy = false,
               max_fee_gwei = 60.5, tip_gwei = 1 }
  local ctx = { chain = { name = "local", chain_id = 31337, simulation_required = false },
                fees = { history = history, next_base_fee = 30.5, base_fee = 30, avg = 25.5, slope = 0.5, gas_used_ratio = 0.4 },
                simulation = { ok = true, reverted = false, gas_used = 21000, via = "debug_traceCall", reentrant = false },
                pending = 3, limits = { max_gas_price_gwei = 500, max_value_eth = 10 }, spent_hour_eth = 1.5,
                queued_for = 0, attempts = 1, now = os.time() }
  return tx, ctx
end

return function()
  local rows = {}
  local tx, ctx = sample()
  local N = 20000
  for _, name in ipairs({ "gas_spike", "simulation", "limits", "approvals" }) do
    local p = assert(policy.compile(read("policies/" .. name .. ".lua"), "policies/" .. name .. ".lua"))
    local list = { p }
    assert(policy.judge(tx, ctx, list) == "allow")
    local best = math.huge
    for _ = 1, 3 do
      local t0 = ferry.now()
      for _ = 1, N do policy.judge(tx, ctx, list) end
      best = math.min(best, ferry.now() - t0)
    end
    local us = best / N * 1e6
    rows[#rows + 1] = { ("policy decision: %s"):format(name), ("%.2f us"):format(us), "", "", "< 5 us", us < 5 }
  end

  -- reload latency: write a temp file, rename it over the policy, time until it judges
  local dir = os.tmpname()
  os.remove(dir)
  assert(os.execute("mkdir -p " .. dir))
  local function put(v)
    local f = assert(io.open(dir .. "/.bench.tmp", "w"))
    f:write(("return { name = 'bench', version = %d, before_send = function() return 'allow' end }"):format(v))
    f:close()
    assert(os.rename(dir .. "/.bench.tmp", dir .. "/bench.lua"))
  end
  put(0)
  ferry.log.capture(policy.start, { dir = dir, hup = false })
  local lat = {}
  ferry.log.capture(function()
    for v = 1, 15 do
      local before = policy.status().files.bench.hash
      put(v)
      local t0 = ferry.now()
      while policy.status().files.bench.hash == before do ferry.sleep(0.0005) end
      lat[#lat + 1] = (ferry.now() - t0) * 1000
      ferry.sleep(0.05)
    end
  end)
  policy.stop()
  os.execute("rm -rf " .. dir)
  table.sort(lat)
  local med, worst = lat[(#lat + 1) // 2], lat[#lat]
  rows[#rows + 1] = { "policy reload, rename to live (median, 15)", ("%.1f ms"):format(med), ("max %.1f ms"):format(worst),
                      "", "< 100 ms", worst < 100 }
  rows[#rows + 1] = { "  ... of which the debounce", ("%.0f ms"):format(policy.DEBOUNCE * 1000), "", "", "", nil }
  return rows
end
