-- ferry.core.u256: the ferry.U256 userdata. Arithmetic vectors: fixtures/vectors/u256.lua.
local u256 = require "ferry.core.u256"

local here = debug.getinfo(1, "S").source:match("^@(.*)[/\\]") or "."
local V = dofile(here .. "/../fixtures/vectors/u256.lua")

local MAX = "115792089237316195423570985008687907853269984665640564039457584007913129639935"
local U = u256.new

local function raises(text, fn)   -- plain-text match (no Lua patterns)
  local ok, err = pcall(fn)
  assert.is_false(ok, "expected an error containing " .. text)
  assert.is_truthy(tostring(err):find(text, 1, true), "error '" .. tostring(err) .. "' lacks '" .. text .. "'")
end

describe("ferry.core.u256", function()
  describe("new", function()
    it("accepts integers, decimal and hex strings, and U256 values", function()
      assert.equal("0", tostring(U(0)))
      assert.equal("42", tostring(U("42")))
      assert.equal("255", tostring(U("0xff")))
      assert.equal("255", tostring(U("0XFF")))
      assert.equal("7", tostring(U(U(7))))
      assert.equal(tostring(math.maxinteger), tostring(U(math.maxinteger)))
    end)

    it("accepts whole floats, exactly", function()
      assert.equal("1000000000000000000", tostring(U(1e18)))
      assert.equal(tostring(U(2) ^ 200), tostring(U(2.0 ^ 200)))
    end)

    it("parses 2^256-1 in both bases and rejects 2^256", function()
      assert.equal(MAX, tostring(U(MAX)))
      assert.equal(MAX, tostring(U("0x" .. string.rep("f", 64))))
      assert.equal(MAX, tostring(U("0x000" .. string.rep("f", 64))))
      raises("does not fit in 256 bits", function() U("115792089237316195423570985008687907853269984665640564039457584007913129639936") end)
      raises("does not fit in 256 bits", function() U("0x1" .. string.rep("0", 64)) end)
    end)

    it("rejects negative integers, fractional floats, NaN and infinity", function()
      raises("negative integer", function() U(-1) end)
      raises("fractional part", function() U(1.5) end)
      raises("NaN", function() U(0 / 0) end)
      raises("too large", function() U(math.huge) end)
      raises("negative", function() U(-2.0) end)
    end)

    it("rejects malformed strings", function()
      for _, s in ipairs { "", " 1", "1 ", "+1", "-1", "1e18", "1.0", "0x", "0xg", "1_000", "12a", "0b101" } do
        raises("not a decimal or 0x-hex number", function() U(s) end)
      end
    end)

    it("rejects other types", function()
      raises("expected U256", function() U({}) end)
      raises("expected U256", function() U(true) end)
      raises("bad argument", function() U() end)
    end)

    it("exposes MAX and is_u256", function()
      assert.equal(MAX, tostring(u256.MAX))
      assert.is_true(u256.is_u256(U(1)))
      assert.is_false(u256.is_u256(1))
    end)
  end)

  describe("arithmetic", function()
    local ops = {
      { "+", function(a, b) return a + b end, 3 },
      { "-", function(a, b) return a - b end, 4 },
      { "*", function(a, b) return a * b end, 5 },
      { "//", function(a, b) return a // b end, 6 },
      { "%", function(a, b) return a % b end, 7 },
    }
    local errword = { overflow = "overflow", underflow = "underflow", divzero = "division by zero" }

    it("matches the Python big-integer vectors (" .. #V.arith .. " pairs x 5 ops)", function()
      for _, row in ipairs(V.arith) do
        local a, b = U(row[1]), U(row[2])
        for _, op in ipairs(ops) do
          local want = row[op[3]]
          if errword[want] then
            raises(errword[want] .. " in '" .. op[1] .. "'", function() return op[2](a, b) end)
          else
            assert.equal(want, tostring(op[2](a, b)), row[1] .. " " .. op[1] .. " " .. row[2])
          end
        end
      end
    end)

    it("raises at the edges with the operator named", function()
      raises("overflow in '+'", function() return u256.MAX + 1 end)
      raises("underflow in '-'", function() return U(0) - 1 end)
      raises("overflow in '*'", function() return u256.MAX * 2 end)
      raises("division by zero in '//'", function() return U(1) // 0 end)
      raises("division by zero in '%'", function() return U(1) % 0 end)
      raises("overflow in '^'", function() return U(2) ^ 256 end)
      raises("unary minus", function() return -U(1) end)
      raises("use '//'", function() return U(4) / 2 end)
    end)

    it("keeps 2^256-1 arithmetic exact", function()
      assert.equal(MAX, tostring(u256.MAX - 0))
      assert.equal("0", tostring(u256.MAX - u256.MAX))
      assert.equal("1", tostring(u256.MAX // u256.MAX))
      assert.equal(MAX, tostring(u256.MAX * 1))
      assert.equal(MAX, tostring((u256.MAX // 2) * 2 + 1))
      assert.equal("1", tostring(U(0) ^ 0))
    end)

    it("matches the pow vectors", function()
      for _, row in ipairs(V.pow) do
        if row[3] == "overflow" then
          raises("overflow in '^'", function() return U(row[1]) ^ row[2] end)
        else
          assert.equal(row[3], tostring(U(row[1]) ^ row[2]), row[1] .. "^" .. row[2])
        end
      end
    end)

    it("mixes with integers on either side", function()
      local u = U(10)
      assert.equal("11", tostring(u + 1))
      assert.equal("11", tostring(1 + u))
      assert.equal("20", tostring(2 * u))
      assert.equal("90", tostring(100 - u))
      assert.equal("3", tostring(u // 3))
      assert.equal("1", tostring(u % 3))
      assert.equal("100", tostring(u ^ 2))
      assert.equal("1024", tostring(2 ^ U(10)))
      assert.equal("12", tostring(u + "2"))
      raises("negative integer", function() return u + (-1) end)
      raises("fractional part", function() return u + 0.5 end)
    end)
  end)

  describe("comparison", function()
    it("compares U256 values", function()
      assert.is_true(U(1) < U(2))
      assert.is_true(U(2) <= U(2))
      assert.is_true(U(2) == U(2))
      assert.is_false(U(2) == U(3))
      assert.is_true(u256.MAX > U(MAX) - 1)
    end)

    it("compares with plain integers on either side through __lt/__le", function()
      local u = U(5000)
      assert.is_true(u > 1000)
      assert.is_true(1000 < u)
      assert.is_true(u >= 5000)
      assert.is_true(5000 <= u)
      assert.is_false(u < 5000)
    end)

    it("== with a plain integer is false (Lua 5.4 __eq needs two userdata): use :eq", function()
      local u = U(5)
      assert.is_false(u == 5)
      assert.is_true(u:eq(5))
      assert.is_true(u:eq("0x5"))
      assert.is_false(u:eq(6))
    end)
  end)

  describe("conversions", function()
    it("tostring, concat and __name", function()
      assert.equal("x=42", "x=" .. U(42))
      assert.equal("42!", U(42) .. "!")
      assert.equal("4242", U(42) .. U(42))
      raises("ferry.U256", function() return U(1) < {} end)
    end)

    it("tohex is minimal and 0x0 for zero", function()
      assert.equal("0x0", U(0):tohex())
      assert.equal("0x1", U(1):tohex())
      assert.equal("0xff", U(255):tohex())
      assert.equal("0x" .. string.rep("f", 64), u256.MAX:tohex())
      for _, row in ipairs(V.hex) do
        assert.equal(row[2], U(row[1]):tohex())
        assert.equal(row[1], tostring(U(row[2])))
      end
    end)

    it("tobytes and from_bytes round-trip big-endian", function()
      assert.equal(string.rep("\0", 31) .. "\1", U(1):tobytes())
      assert.equal("\1\0", U(256):tobytes(2))
      assert.equal("", U(0):tobytes(0))
      raises("does not fit in 1 bytes", function() U(256):tobytes(1) end)
      raises("0..32", function() U(1):tobytes(33) end)
      assert.equal("256", tostring(u256.from_bytes("\1\0")))
      assert.equal("0", tostring(u256.from_bytes("")))
      assert.equal("1", tostring(u256.from_bytes(string.rep("\0", 40) .. "\1")))
      assert.equal(MAX, tostring(u256.from_bytes(u256.MAX:tobytes())))
      raises("more than 32", function() u256.from_bytes("\1" .. string.rep("\0", 32)) end)
    end)

    it("tointeger returns nil past int64", function()
      assert.equal(42, U(42):tointeger())
      assert.equal(math.maxinteger, U(math.maxinteger):tointeger())
      assert.is_nil((U(math.maxinteger) + 1):tointeger())
    end)
  end)

  describe("units", function()
    it("parses and formats like cast to-wei", function()
      for _, row in ipairs(V.units) do
        local v = u256.parse_units(row[1], row[2])
        assert.equal(row[3], tostring(v))
        local back = u256.format_units(v, row[2])
        assert.equal(tostring(v), tostring(u256.parse_units(back, row[2])))
      end
    end)

    it("formats without trailing zeros", function()
      assert.equal("1.5", u256.format_units(u256.parse_units("1.5", 18), 18))
      assert.equal("1", u256.format_units(U("1000000000000000000"), 18))
      assert.equal("0", u256.format_units(0, 18))
      assert.equal("0.000000000000000001", u256.format_units(1, 18))
      assert.equal("12345", u256.format_units(12345, 0))
      assert.equal("2.5", u256.format_units("2500000000", 9))
    end)

    it("rejects more fractional digits than the unit allows", function()
      raises("too many decimal places", function() u256.parse_units("1.0000000000000000001", 18) end)
      raises("too many decimal places", function() u256.parse_units("0.5", 0) end)
      assert.equal("15", tostring(u256.parse_units("1.50", 1)))   -- trailing zeros are exact
    end)

    it("rejects malformed amounts", function()
      for _, s in ipairs { "", ".", "1.", ".5", "-1", "+1", "1e18", "1,5", " 1", "0x10", "1.2.3" } do
        raises("invalid number", function() u256.parse_units(s, 18) end)
      end
    end)

    it("raises on overflow and bad decimals", function()
      local over = "115792089237316195423570985008687907853269984665640564039457584007913129639936"
      raises("overflow", function() u256.parse_units(over:sub(1, -19) .. "." .. over:sub(-18), 18) end)
      assert.equal(MAX, tostring(u256.parse_units(MAX:sub(1, -19) .. "." .. MAX:sub(-18), 18)))
      raises("decimals must be 0..77", function() u256.parse_units("1", 78) end)
      raises("decimals must be 0..77", function() u256.format_units(1, -1) end)
    end)
  end)
end)
