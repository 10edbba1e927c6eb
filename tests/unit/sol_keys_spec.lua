-- chain:signer's key formats, from the environment too: base58 of 64 or 32 bytes, a JSON array
-- of 64 numbers (the Solana CLI's id.json), 0x hex, sol.raw. A secret never shows in an error
-- or in tostring.
local sol = require "ferry.sol"
local core = require "ferry.core.sol"
local child = require "helpers.child"

local SEED = string.rep("\11", 32)
local chain = sol.connect{ providers = { { url = "http://127.0.0.1:9" } } }

describe("sol signers", function()
  local want = chain:signer(sol.raw(SEED)).address
  local pub = core.b58decode(want, 32)
  local b58_64 = core.b58encode(SEED .. pub)
  local numbers = {}
  for i = 1, 64 do numbers[i] = ((SEED .. pub):byte(i)) end
  local json_array = "[" .. table.concat(numbers, ",") .. "]"

  it("reads every format to the same address", function()
    assert.are.equal(want, chain:signer(b58_64).address)
    assert.are.equal(want, chain:signer(core.b58encode(SEED)).address)
    assert.are.equal(want, chain:signer(numbers).address)
    assert.are.equal(want, chain:signer("0x" .. string.rep("0b", 32)).address)
  end)

  it("refuses what is not a key, without echoing it", function()
    for _, bad in ipairs { "0OIl", string.rep("z", 20), "0x1234", { 1, 2, 3 } } do
      local ok, err = pcall(chain.signer, chain, bad)
      assert.is_false(ok)
      assert.are.equal("invalid_argument", err.code)
      if type(bad) == "string" then assert.is_nil(err.message:find(bad, 1, true)) end
    end
    -- a 64-byte secret whose public half is another key's
    local ok, err = pcall(chain.signer, chain, core.b58encode(SEED .. string.rep("\1", 32)))
    assert.is_false(ok)
    assert.matches("does not match", err.message)
    assert.is_nil(tostring(chain:signer(b58_64).key):find(b58_64, 1, true))
  end)

  it("reads {env = NAME} in every format, and says unset or invalid without the value", function()
    local script = [[
      local sol = require "ferry.sol"
      local chain = sol.connect{ providers = { { url = "http://127.0.0.1:9" } } }
      for _, name in ipairs { "K_B58", "K_JSON", "K_HEX" } do print(chain:signer{ env = name }.address) end
      for _, name in ipairs { "K_UNSET", "K_BAD" } do
        local ok, err = pcall(chain.signer, chain, { env = name })
        print(ok, err.code, err.message)
      end
    ]]
    local code, out, err = child.run({ "./ferry", "-e", script }, {
      K_B58 = b58_64, K_JSON = json_array .. "\n", K_HEX = string.rep("0b", 32), K_BAD = "not-a-secret-xyz" })
    assert.are.equal(0, code, err)
    local lines = {}
    for l in out:gmatch("[^\n]+") do lines[#lines + 1] = l end
    assert.are.same({ want, want, want }, { lines[1], lines[2], lines[3] })
    assert.matches("^false\tinvalid_argument\t.*K_UNSET is unset", lines[4])
    assert.matches("^false\tinvalid_argument\t.*K_BAD is invalid", lines[5])
    assert.is_nil(out:find("not-a-secret-xyz", 1, true))
  end)
end)
