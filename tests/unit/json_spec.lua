-- ferry.json (= ferry.core.json, engine/core/json.c): exact integers, big numbers as
-- json.Number, null handling, array/object markers, canonical form, limits and errors.
local ferry = require "ferry"
local json = require "ferry.core.json"

local function roundtrip(v) return json.decode(json.encode(v)) end

describe("ferry.json", function()
  it("is the same module as ferry.core.json", function()
    assert.equal(json, ferry.json)
  end)

  describe("integers", function()
    it("round-trip exactly at the edges of the int64 range", function()
      for _, n in ipairs{ math.mininteger, math.maxinteger, 0, -1, 1,
                          math.mininteger + 1, math.maxinteger - 1 } do
        local back = roundtrip(n)
        assert.equal("integer", math.type(back))
        assert.equal(n, back)
      end
    end)

    it("encode int64 extremes as their exact digits", function()
      assert.equal("-9223372036854775808", json.encode(math.mininteger))
      assert.equal("9223372036854775807", json.encode(math.maxinteger))
    end)

    it("keep 2^53 + 1 exact (a double would round it)", function()
      local n = (1 << 53) + 1
      assert.equal("9007199254740993", json.encode(n))
      local back = json.decode("9007199254740993")
      assert.equal("integer", math.type(back))
      assert.equal(n, back)
    end)

    it("decode 18 and 19 digit literals as integers", function()
      assert.equal(999999999999999999, json.decode("999999999999999999"))
      assert.equal(-999999999999999999, json.decode("-999999999999999999"))
      assert.equal(math.maxinteger, json.decode("9223372036854775807"))
      assert.equal(math.mininteger, json.decode("-9223372036854775808"))
    end)

    it("decode -0 as integer 0", function()
      local v = json.decode("-0")
      assert.equal("integer", math.type(v))
      assert.equal(0, v)
    end)
  end)

  describe("big integers", function()
    it("just past int64 become json.Number", function()
      local v = json.decode("9223372036854775808")
      assert.is_true(json.is_number(v))
      assert.equal("9223372036854775808", tostring(v))
      local m = json.decode("-9223372036854775809")
      assert.is_true(json.is_number(m))
      assert.equal("-9223372036854775809", tostring(m))
    end)

    it("keep every digit of 2^64 - 1 and encode back unchanged", function()
      local v = json.decode("18446744073709551615")
      assert.is_true(json.is_number(v))
      assert.equal("18446744073709551615", tostring(v))
      assert.equal("18446744073709551615", json.encode(v))
    end)

    it("keep every digit of 10^30 and of a negative big number", function()
      local text = '[1000000000000000000000000000000,-123456789012345678901234567890]'
      local v = json.decode(text)
      assert.is_true(json.is_number(v[1]))
      assert.is_true(json.is_number(v[2]))
      assert.equal("1000000000000000000000000000000", tostring(v[1]))
      assert.equal("-123456789012345678901234567890", tostring(v[2]))
      assert.equal(text, json.encode(v))
    end)

    it("inside objects encode back unchanged", function()
      local v = json.decode('{"lamports":340282366920938463463374607431768211455}')
      assert.equal('{"lamports":340282366920938463463374607431768211455}', json.encode(v))
    end)

    it("compare equal by digits and concatenate as text", function()
      assert.equal(json.number("18446744073709551616"), json.decode("18446744073709551616"))
      assert.are_not.equal(json.number("18446744073709551616"), json.number("18446744073709551617"))
      assert.equal("n=18446744073709551616", "n=" .. json.decode("18446744073709551616"))
    end)

    it("json.number builds one from digits and rejects anything else", function()
      local n = json.number("-42000000000000000000000")
      assert.is_true(json.is_number(n))
      assert.equal("-42000000000000000000000", json.encode(n))
      for _, bad in ipairs{ "", "-", "12a", "1.5", "1e5", " 1", "+1" } do
        assert.has_error(function() json.number(bad) end)
      end
    end)

    it("is_number is false for plain values", function()
      assert.is_false(json.is_number(1))
      assert.is_false(json.is_number("1"))
      assert.is_false(json.is_number({ digits = "1" }))
      assert.is_false(json.is_number(nil))
    end)
  end)

  describe("floats", function()
    it("round-trip by value", function()
      for _, x in ipairs{ 0.1, -2.5, 3.141592653589793, 1e300, -1e-300, 5e-324, 1.7976931348623157e308 } do
        local back = roundtrip(x)
        assert.equal("float", math.type(back))
        assert.equal(x, back)
      end
    end)

    it("decode fractions and exponents as floats", function()
      assert.equal("float", math.type(json.decode("1.0")))
      assert.equal(1.5, json.decode("1.5"))
      assert.equal(100.0, json.decode("1e2"))
      assert.equal("float", math.type(json.decode("1e2")))
      assert.equal(-0.025, json.decode("-2.5E-2"))
      assert.equal(12.0, json.decode("1.2e+1"))
    end)
  end)

  describe("strings", function()
    it("decode the simple escapes", function()
      assert.equal('a"b\\c/d\be\ff\ng\rh\ti', json.decode([["a\"b\\c\/d\be\ff\ng\rh\ti"]]))
    end)

    it("decode \\u escapes to UTF-8", function()
      assert.equal("A\u{e9}\u{20ac}", json.decode([["\u0041\u00e9\u20AC"]]))
    end)

    it("decode a surrogate pair to one 4-byte character", function()
      assert.equal("\u{1F600}", json.decode([["\ud83d\ude00"]]))
      assert.equal("x\u{10FFFF}y", json.decode([["x\udbff\udfffy"]]))
    end)

    it("decode lone surrogates as U+FFFD", function()
      assert.equal("\u{FFFD}", json.decode([["\ud83d"]]))
      assert.equal("\u{FFFD}x", json.decode([["\ud83dx"]]))
      assert.equal("\u{FFFD}", json.decode([["\ude00"]]))
      assert.equal("\u{FFFD}A", json.decode([["\ud83d\u0041"]]))
    end)

    it("encode quotes, backslashes and control characters as escapes", function()
      assert.equal([["\"\\\n\r\t\b\f\u0001\u001f\u0000"]], json.encode('"\\\n\r\t\b\f\1\31\0'))
    end)

    it("encode UTF-8 and DEL unescaped", function()
      assert.equal('"\u{e9}\u{1F600}\127"', json.encode("\u{e9}\u{1F600}\127"))
    end)

    it("round-trip every byte 0..127 and embedded zeros", function()
      local bytes = {}
      for i = 0, 127 do bytes[#bytes + 1] = string.char(i) end
      local s = table.concat(bytes)
      assert.equal(s, roundtrip(s))
      assert.equal("a\0b", roundtrip("a\0b"))
    end)

    it("round-trip strings long enough to need buffer growth", function()
      local s = ("x\"y\n"):rep(10000)
      assert.equal(s, roundtrip(s))
    end)

    it("refuse to encode bytes that are not UTF-8 (JSON text is UTF-8), saying where", function()
      for _, bad in ipairs{ "\xff", "ab\xc0\xaf", "\xed\xa0\x80", "\xf4\x90\x80\x80", "\xe2\x82", "\x80" } do
        local ok, err = pcall(json.encode, { x = bad })
        assert.is_false(ok, bad)
        assert.matches("json.encode: string is not valid UTF-8 (byte ", err, 1, true)
      end
      local _, err = pcall(json.encode, "ab\xc0\xaf")
      assert.matches("(byte 3 is 0xc0); hex-encode binary data", err, 1, true)
    end)

    it("decode malformed UTF-8 as U+FFFD, so every decoded string encodes again", function()
      assert.equal("a\u{FFFD}b", json.decode('"a\xffb"'))
      assert.equal("\u{e9}\u{FFFD}\n", json.decode('"\\u00e9\xff\\n"'))      -- on the escape path too
      assert.equal("\u{FFFD}\u{FFFD}", json.decode([["\ud800\ud800"]]))        -- two lone high surrogates
      for _, t in ipairs{ '"\xc0\xaf"', '"\xed\xa0\x80x"', '"\xe2\x82"', '"\xf8\x88\x80\x80\x80"' } do
        local v = json.decode(t)
        assert.is_string(v)
        assert.equal(v, json.decode(json.encode(v)))
      end
    end)
  end)

  describe("null", function()
    it("decodes to the json.null sentinel inside arrays, keeping positions", function()
      local v = json.decode("[1,null,3,null]")
      assert.equal(4, #v)
      assert.equal(json.null, v[2])
      assert.equal(json.null, v[4])
      assert.equal(3, v[3])
    end)

    it("round-trips inside arrays", function()
      assert.equal("[null,1,null]", json.encode(json.decode("[null,1,null]")))
    end)

    it("is dropped from objects", function()
      local v = json.decode('{"a":null,"b":1}')
      assert.is_nil(v.a)
      assert.equal(1, v.b)
      assert.equal('{"b":1}', json.encode(v))
    end)

    it("decodes as the sentinel at the top level and encodes as null", function()
      assert.equal(json.null, json.decode("null"))
      assert.equal("null", json.encode(json.null))
      assert.equal("null", json.encode(nil))
    end)
  end)

  describe("empty containers", function()
    it("[] decodes and encodes back as []", function()
      assert.equal("[]", json.encode(json.decode("[]")))
    end)

    it("{} decodes and encodes back as {}", function()
      assert.equal("{}", json.encode(json.decode("{}")))
    end)

    it("nested empties keep their kind", function()
      local text = '{"a":[],"b":{},"c":[[],{}]}'
      assert.equal(text, json.canonical(json.decode(text)))
    end)

    it("a plain empty table encodes as {}", function()
      assert.equal("{}", json.encode({}))
    end)
  end)

  describe("markers", function()
    it("json.array makes an empty table encode as []", function()
      assert.equal("[]", json.encode(json.array()))
      assert.equal("[]", json.encode(json.array({})))
    end)

    it("json.object makes a list encode as an object", function()
      assert.equal('{"1":"a"}', json.encode(json.object({ "a" })))
      assert.equal("{}", json.encode(json.object()))
    end)

    it("json.array returns the table it was given", function()
      local t = { 1, 2 }
      assert.equal(t, json.array(t))
      assert.equal("[1,2]", json.encode(t))
    end)

    it("reject non-tables", function()
      assert.has_error(function() json.array(1) end)
      assert.has_error(function() json.object("x") end)
    end)
  end)

  describe("tables", function()
    it("encode a list as an array and a record as an object", function()
      assert.equal('[1,"two",true,false]', json.encode({ 1, "two", true, false }))
      assert.equal('{"k":"v"}', json.encode({ k = "v" }))
    end)

    it("encode sparse arrays as objects with string keys", function()
      local t = {}
      t[1], t[3] = "a", "c"
      local v = json.decode(json.encode(t))
      assert.same({ ["1"] = "a", ["3"] = "c" }, v)
      assert.same({ ["1"] = 1, ["2"] = 2, ["4"] = 4 }, json.decode(json.encode({ [1] = 1, [2] = 2, [4] = 4 })))
    end)

    it("encode a list with extra keys as an object", function()
      local v = json.decode(json.encode({ 1, 2, n = 2 }))
      assert.same({ ["1"] = 1, ["2"] = 2, n = 2 }, v)
    end)

    it("encode a holey list whose 0 key pads the count as an object (no key dropped)", function()
      local t = {}
      t[1], t[2], t[3], t[4] = 1, 2, 3, 4
      t[3] = nil
      t[0] = 0
      local v = json.decode(json.encode(t))
      assert.equal(0, v["0"])
    end)

    it("encode numeric keys of records as strings", function()
      assert.equal('{"1.5":1}', json.encode({ [1.5] = 1 }))
    end)

    it("round-trip nested structures", function()
      local v = { a = { 1, 2, { b = "c" } }, d = { e = { f = { 1.5 } } } }
      assert.same(v, roundtrip(v))
    end)
  end)

  describe("canonical", function()
    it("sorts keys at every level", function()
      assert.equal('{"a":{"c":3,"d":2},"b":1}', json.canonical({ b = 1, a = { d = 2, c = 3 } }))
    end)

    it("gives the same text for equal tables built in different orders", function()
      local a, b = {}, {}
      local keys = {}
      for i = 1, 64 do keys[i] = "k" .. i end
      for i = 1, 64 do a[keys[i]] = i end
      for i = 64, 1, -1 do b[keys[i]] = i end
      b.extra = true; b.extra = nil
      assert.equal(json.canonical(a), json.canonical(b))
    end)

    it("sorts by bytes, shorter prefix first", function()
      assert.equal('{"B":2,"a":1,"ab":3}', json.canonical({ a = 1, ab = 3, B = 2 }))
    end)

    it("raises on non-string object keys", function()
      assert.has_error(function() json.canonical({ [1.5] = 1 }) end)
    end)
  end)

  describe("depth limit", function()
    local function nested(n) return ("["):rep(n) .. ("]"):rep(n) end

    it("refuses 200 nested arrays with the default limit", function()
      local v, err = json.decode(nested(200))
      assert.is_nil(v)
      assert.matches("too deep", err)
    end)

    it("accepts 128 nested arrays with the default limit", function()
      assert.is_table(json.decode(nested(128)))
      assert.is_nil(json.decode(nested(129)))
    end)

    it("honours a custom limit", function()
      assert.is_table(json.decode(nested(200), 300))
      assert.is_table(json.decode(nested(4), 4))
      local v, err = json.decode(nested(5), 4)
      assert.is_nil(v)
      assert.matches("too deep", err)
    end)

    it("refuses a depth limit above 512, and one that is not a positive integer", function()
      -- 1e9 would let 100000 nested arrays recurse the C stack away
      for _, depth in ipairs({ 1e9, 513, math.maxinteger, 0, -1, 0.5, 0 / 0, math.huge, "x" }) do
        for _, f in ipairs({ json.decode, json.encode }) do
          local ok, err = pcall(f, f == json.decode and nested(100000) or {}, depth)
          assert.is_false(ok, tostring(depth))
          assert.is_true(ferry.is_error(err), tostring(err))
          assert.equal("invalid_argument", err.code)
          assert.matches("depth", err.message)
        end
      end
      assert.is_table(json.decode(nested(512), 512))
      local v, err = json.decode(nested(513), 512)
      assert.is_nil(v)
      assert.matches("too deep", err)
      assert.equal(1, json.decode("1", 1))
    end)

    it("counts objects as well as arrays", function()
      local v, err = json.decode(('{"a":'):rep(3) .. "1" .. ("}"):rep(3), 2)
      assert.is_nil(v)
      assert.matches("too deep", err)
    end)

    it("encode raises past its limit", function()
      local t = {}
      local cur = t
      for _ = 1, 10 do cur[1] = {}; cur = cur[1] end
      assert.has_error(function() json.encode(t, 5) end)
      assert.equal(("["):rep(10) .. "{}" .. ("]"):rep(10), json.encode(t, 11))
    end)
  end)

  describe("malformed input", function()
    local cases = {
      { "truncated array", "[1,2", "unterminated array" },
      { "truncated object", '{"a":1', "unterminated object" },
      { "empty input", "", "end of input" },
      { "only whitespace", "   ", "end of input" },
      { "trailing garbage", "[1] x", "trailing characters" },
      { "two values", "1 2", "trailing characters" },
      { "bad escape", [["\q"]], "bad escape" },
      { "bad \\u escape", [["\u12G4"]], "bad \\u escape" },
      { "short \\u escape", [["\u12"]], "short \\u escape" },
      { "leading zero", "01", "leading zero" },
      { "negative leading zero", "-01", "leading zero" },
      { "lone minus", "-", "bad number" },
      { "minus then letter", "-a", "bad number" },
      { "dot without digits", "1.", "bad number" },
      { "exponent without digits", "1e", "bad number" },
      { "plus sign", "+1", "bad number" },
      { "unterminated string", '"abc', "unterminated string" },
      { "unterminated string after escape", [["ab\n]], "unterminated string" },
      { "tab in string", '"a\tb"', "control character" },
      { "newline in string after escape", '"\\n\n"', "control character" },
      { "trailing comma in array", "[1,]", "bad number" },
      { "trailing comma in object", '{"a":1,}', "expected a string key" },
      { "missing colon", '{"a" 1}', "expected ':'" },
      { "unquoted key", "{a:1}", "expected a string key" },
      { "missing comma", "[1 2]", "expected ',' or ']'" },
      { "misspelt literal", "tru", "unexpected word" },
      { "NaN literal", "NaN", "bad number" },
    }
    for _, c in ipairs(cases) do
      it(("gives nil and a message for %s"):format(c[1]), function()
        local v, err = json.decode(c[2])
        assert.is_nil(v)
        assert.is_string(err)
        assert.matches(c[3], err, 1, true)
        assert.matches("^json: ", err)
      end)
    end

    it("reports the byte offset of the problem", function()
      local _, err = json.decode("[1,2,x]")
      assert.equal("json: bad number at byte 6", err)
    end)

    it("says truncated when input ends early", function()
      local _, err = json.decode('{"a":[1,')
      assert.matches("truncated", err)
    end)

    it("raises on a non-string argument", function()
      assert.has_error(function() json.decode({}) end)
    end)
  end)

  describe("encode errors", function()
    it("raises on functions", function()
      assert.error_matches(function() json.encode(print) end, "json.encode: cannot encode a function", 1, true)
      assert.has_error(function() json.encode({ f = function() end }) end)
    end)

    it("raises on NaN and infinities", function()
      assert.has_error(function() json.encode(0 / 0) end)
      assert.error_matches(function() json.encode(math.huge) end, "json.encode: cannot encode inf", 1, true)
      assert.error_matches(function() json.encode({ -math.huge }) end, "json.encode: cannot encode -inf", 1, true)
    end)

    it("raises on cycles instead of looping", function()
      local t = {}
      t.self = t
      local ok, err = pcall(json.encode, t)
      assert.is_false(ok)
      assert.matches("cycle", err)
    end)

    it("raises on threads and boolean keys", function()
      assert.has_error(function() json.encode(coroutine.create(function() end)) end)
      assert.has_error(function() json.encode({ [true] = 1 }) end)
    end)

    it("raises and leaves the engine usable (no leak of the buffer state)", function()
      for _ = 1, 100 do pcall(json.encode, { ("x"):rep(1000), print }) end
      assert.equal('["ok"]', json.encode({ "ok" }))
    end)
  end)
end)
