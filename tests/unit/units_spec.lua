-- eth.ether / eth.gwei: an amount is what the caller wrote, never off by a few wei.
local eth = require "ferry.eth"

local function refused(f, x, pattern)
  local ok, err = pcall(f, x)
  assert.is_false(ok, tostring(x) .. " was taken")
  assert.equal("invalid_argument", err.code)
  if pattern then assert.matches(pattern, err.message, 1, true) end
  return err
end

describe("eth.ether and eth.gwei with a Lua float", function()
  it("take the decimal the float prints as", function()
    assert.equal(eth.u256("300000000000000000"), eth.ether(0.3))
    assert.equal(eth.u256("30200000000"), eth.gwei(30.2))
    assert.equal(eth.u256("1500000000000000000"), eth.ether(1.5))
    assert.equal(eth.u256("123456789123000000000000000"), eth.ether(123456789.123))
    assert.equal(eth.u256(125000000000), eth.ether(1.25e-7))
    assert.equal(eth.u256(1), eth.ether(1e-18))
    assert.equal(eth.ether "100", eth.ether(1e2))
    assert.equal(eth.gwei "0.000000001", eth.gwei(1e-9))
  end)

  it("refuse a float that is not exactly a short decimal, and say how to write it", function()
    refused(eth.ether, 0.1 + 0.2, 'pass the amount as a string, such as "0.3"')
    refused(eth.ether, 2 ^ 70, "not exactly a decimal")
  end)

  it("refuse less than one unit, NaN, infinities and negatives", function()
    refused(eth.ether, 1e-19, "too many decimal places")
    refused(eth.gwei, 0.0000000001, "too many decimal places")
    refused(eth.ether, 0 / 0, "not an amount")
    refused(eth.ether, 1 / 0, "not an amount")
    refused(eth.ether, -1 / 0, "not an amount")
    refused(eth.ether, -1.5)
  end)

  it("strings and integers are exact as before", function()
    assert.equal(eth.u256("1500000000000000000"), eth.ether "1.5")
    assert.equal(eth.u256(30000000000), eth.gwei(30))
    refused(eth.ether, "0.1234567890123456789", "too many decimal places")
  end)
end)

describe("a revert's error", function()
  local A = require "ferry.eth.args"
  it("says 'execution reverted' once, with the decoded reason when there is one", function()
    assert.equal("execution reverted", A.revert_error({ message = "execution reverted" }).message)
    local e = A.revert_error({ message = "execution reverted: nope" })
    assert.equal("execution reverted: nope", e.message)
    assert.equal("nope", e.reason)
    local data = eth.abi.encode_call("Error(string)", "too low")
    e = A.revert_error({ message = "execution reverted", data = data })
    assert.equal("execution reverted: too low", e.message)
    assert.equal("reverted", e.code)
  end)
end)
