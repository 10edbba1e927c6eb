-- ferry.core.keccak: Keccak-256 (Ethereum padding) and hex helpers.
local keccak = require "ferry.core.keccak"

local here = debug.getinfo(1, "S").source:match("^@(.*)[/\\]") or "."
local VECTORS = here .. "/../fixtures/vectors/"

describe("ferry.core.keccak", function()
  local hex, unhex = keccak.tohex, keccak.fromhex

  it("hashes the empty string", function()
    assert.equal("0xc5d2460186f7233c927e7db2dcc703c0e500b653ca82273b7bfad8045d85a470", hex(keccak.keccak256("")))
  end)

  it("hashes 'abc' (Keccak padding, not SHA3-256)", function()
    assert.equal("0x4e03657aea45a94fc7d47ba826c8d667c0d1e6e33a64a036ec44f58fa12d6c45", hex(keccak.keccak256("abc")))
  end)

  it("hashes 200 bytes of 0xab (crosses the 136-byte rate)", function()
    assert.equal("0x8ca353cee0a5c5b999a0916e88da37a16293cf14a73c735d6b5197b50c3d6656",
                 hex(keccak.keccak256(string.rep("\xab", 200))))
  end)

  it("returns 32 raw bytes", function()
    assert.equal(32, #keccak.keccak256("x"))
  end)

  it("matches every cast vector in fixtures/vectors/keccak.txt", function()
    local n = 0
    for line in io.lines(VECTORS .. "keccak.txt") do
      local input, digest = line:match("^(%S+) (%S+)$")
      assert.equal(digest, hex(keccak.keccak256(unhex(input))), "input " .. input:sub(1, 20))
      n = n + 1
    end
    assert.is_true(n >= 10)
  end)

  it("hashes strings with embedded zeros", function()
    assert.are_not.equal(keccak.keccak256("a\0b"), keccak.keccak256("a"))
  end)

  it("raises on a non-string argument", function()
    assert.has_error(function() keccak.keccak256({}) end)
  end)

  describe("tohex/fromhex", function()
    it("round-trips all byte values", function()
      local t = {}
      for i = 0, 255 do t[#t + 1] = string.char(i) end
      local s = table.concat(t)
      assert.equal(s, unhex(hex(s)))
    end)

    it("encodes the empty string as 0x", function()
      assert.equal("0x", hex(""))
      assert.equal("", unhex("0x"))
    end)

    it("accepts upper case digits and a missing prefix", function()
      assert.equal("\xde\xad", unhex("0xDEAD"))
      assert.equal("\xde\xad", unhex("dead"))
    end)

    it("rejects an odd number of digits", function()
      local ok, err = pcall(unhex, "0xabc")
      assert.is_false(ok)
      assert.matches("hex string has an odd number of digits", err)
    end)

    it("rejects non-hex characters", function()
      local ok, err = pcall(unhex, "0xzz")
      assert.is_false(ok)
      assert.matches("invalid hex digit at position 1", err)
    end)
  end)
end)
