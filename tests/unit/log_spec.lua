-- ferry.log (engine/core/log.c): a text line cannot be forged by a value, secrets are redacted
-- by name and by value. Each case logs from a child ./ferry and reads its stderr.
local json = require "ferry.core.json"
local logc = require "ferry.core.log"
local run_ferry = require("helpers.child").ferry

-- a private key's shape: 64 hex digits (this one is keccak256("log_spec"), no real account)
local KEY = "5f0a1c9b1e3f4d2a8c7b6e5d4c3b2a1908f7e6d5c4b3a29181706f5e4d3c2b1a"

local function lines(s)
  local t = {}
  for l in s:gmatch("[^\n]+") do t[#t + 1] = l end
  return t
end

-- run `code` in a child with FERRY_LOG = format; -> its stderr (exit 0 asserted)
local function logged(code, format)
  local rc, _, err = run_ferry({ "-e", code }, { FERRY_LOG = format or "text" })
  assert.equal(0, rc, err)
  return err
end

describe("ferry.log", function()
  describe("text lines", function()
    it("escape a newline in a field, so a value cannot start a forged record", function()
      local err = logged([[require("ferry").log.info("paid", {
        note = "ok\n2026-01-01T00:00:00.000Z ERROR forged line", user = "bob" })]])
      local ls = lines(err)
      assert.equal(1, #ls, err)
      assert.matches(' note="ok\\n2026-01-01T00:00:00.000Z ERROR forged line"', ls[1], 1, true)
      assert.matches(" user=bob", ls[1], 1, true)
    end)

    it("escape carriage returns, escapes and other control bytes in values and in the message", function()
      local err = logged([[require("ferry").log.warn("two\nlines\r", { v = "a\27[31mred\0b", k = "back\\slash" })]])
      local ls = lines(err)
      assert.equal(1, #ls, err)
      assert.matches(" WARN  two\\nlines\\r ", ls[1], 1, true)
      assert.matches(" v=a\\x1b[31mred\\x00b", ls[1], 1, true)
      assert.matches(" k=back\\\\slash", ls[1], 1, true)
      assert.is_nil(err:find("\27", 1, true))
    end)

    it("quote a value with spaces, quotes or '=' so that it cannot pass for more fields", function()
      local err = logged([[require("ferry").log.info("x", { note = 'a level=ERROR b="c"' })]])
      assert.matches([[ note="a level=ERROR b=\"c\""]], err, 1, true)
    end)

    it("keep the lines of an engine message (a task's traceback), indented after the first", function()
      local err = logged([[
        local ferry = require "ferry"
        local t = ferry.spawn(function() error("boom\n2026-01-01T00:00:00.000Z ERROR forged", 0) end)
        while t:status() ~= "failed" do ferry.sleep(0.001) end]])
      assert.matches("ERROR task %d+ failed: boom\n\t2026%-01%-01T00:00:00%.000Z ERROR forged\n", err)
      for _, l in ipairs(lines(err)) do
        assert.is_nil(l:match("^%d%d%d%d%-%d%d%-%d%dT.- ERROR forged"), "a line passed for a record: " .. l)
      end
    end)
  end)

  describe("redaction", function()
    it("covers names like pk, priv, mnemonic, seed, secret, token, auth, password", function()
      local err = logged([[require("ferry").log.info("creds", { pk = "v1", priv = "v2", privateKey = "v3",
        payer_pk = "v4", MNEMONIC = "v5", seed_phrase = "v6", webhook_secret = "v7", jwt = "v8",
        authorization = "v9", db_password = "v10", api_token = "v11", pkg = "kept" })]])
      for i = 1, 11 do assert.is_nil(err:find("v" .. i .. "[^%d]"), "v" .. i .. " leaked: " .. err) end
      assert.matches(" pkg=kept", err, 1, true)
      assert.matches(" pk=[redacted]", err, 1, true)
    end)

    it("masks a private key's shape in any field, with or without 0x, in text and JSON", function()
      for _, format in ipairs{ "text", "json" } do
        local err = logged(([[require("ferry").log.info("oops", { note = "0x%s", raw = "%s",
          err = "bad to: %s (got it)" })]]):format(KEY, KEY:upper(), KEY), format)
        assert.is_nil(err:lower():find(KEY:sub(5), 1, true), format .. ": key leaked: " .. err)
        if format == "json" then
          local rec = assert(json.decode(lines(err)[1]))
          assert.equal("0x5f0a\u{2026}(64 hex digits, redacted)", rec.note)
          assert.equal("5F0A\u{2026}(64 hex digits, redacted)", rec.raw)
          assert.equal("bad to: 5f0a\u{2026}(64 hex digits, redacted) (got it)", rec.err)
        end
      end
    end)

    it("masks a private key's shape in the message too", function()
      local err = logged(([[require("ferry").log.warn("signer 0x%s failed")]]):format(KEY))
      assert.is_nil(err:find(KEY, 1, true))
      assert.matches("signer 0x5f0a\u{2026}(64 hex digits, redacted) failed", err, 1, true)
    end)

    it("cuts a URL in a field or the message to scheme://host:port", function()
      local err = logged([[require("ferry").log.warn("calling https://rpc.example/v2/MsgApiKey123", {
        rpc = "https://eth.example:8443/v2/FieldApiKey123?x=1", redis = "redis://user:RedisPw123@db:6379/0",
        plain = "http://127.0.0.1:8545" })]])
      for _, secret in ipairs{ "MsgApiKey123", "FieldApiKey123", "RedisPw123", "user:" } do
        assert.is_nil(err:find(secret, 1, true), secret .. " leaked: " .. err)
      end
      assert.matches("calling https://rpc.example ", err, 1, true)
      assert.matches(" rpc=https://eth.example:8443", err, 1, true)
      assert.matches(" redis=redis://db:6379", err, 1, true)
      assert.matches(" plain=http://127.0.0.1:8545", err, 1, true)
    end)

    it("shows hashes the engine computed in fields named like hashes", function()
      local err = logged(([[require("ferry").log.info("sent", { hash = "0x%s", tx_hash = "0x%s" })]]):format(KEY, KEY))
      assert.matches(" hash=0x" .. KEY, err, 1, true)
      assert.matches(" tx_hash=0x" .. KEY, err, 1, true)
    end)
  end)

  describe("redact()", function()
    it("masks every run of 64 or more hex digits and leaves addresses and short hex alone", function()
      local addr = "0x70997970C51812dc3A010C7d01b50e0d17dc79C8"
      assert.equal(addr, logc.redact(addr))
      assert.equal("a 0x5f0a\u{2026}(64 hex digits, redacted) b 5f0a\u{2026}(65 hex digits, redacted)",
        logc.redact("a 0x" .. KEY .. " b " .. KEY .. "f"))
      assert.equal("0xdead", logc.redact("0xdead"))
      assert.equal("at https://h.example:1 now", logc.redact("at https://u:p@h.example:1/v2/k?q#f now"))
      assert.equal("12", logc.redact(12))
    end)
  end)
  -- specs of failures that are expected to log: the records go to the spec, not the run's
  -- output (issue 14), and a capture that fails shows them after all
  describe("capture", function()
    it("keeps fn's records, the engine's included, off stderr and returns them", function()
      local rc, out, err = run_ferry({ "-e", [[
        local ferry = require "ferry"
        local text, v = ferry.log.capture(function()
          ferry.log.error("expected", { n = 1 })
          local t = ferry.spawn(function() error("expected task failure") end)
          while t:status() ~= "failed" do ferry.sleep(0.001) end
          return 42
        end)
        io.stdout:write(v, "\n", text)
        ferry.log.error("after")]] }, { FERRY_LOG = "text" })
      assert.equal(0, rc, err)
      assert.matches("^42\n[^\n]* ERROR expected n=1\n[^\n]* ERROR task %d+ failed: [^\n]*expected task failure", out)
      assert.equal(1, #lines(err), err)
      assert.matches(" ERROR after$", lines(err)[1])
    end)

    it("writes what it kept to stderr when fn raises, and the error goes on", function()
      local rc, out, err = run_ferry({ "-e", [[
        local ferry = require "ferry"
        local ok, e = pcall(ferry.log.capture, function() ferry.log.warn("context") error("real failure", 0) end)
        print(ok, e)]] }, { FERRY_LOG = "text" })
      assert.equal(0, rc, err)
      assert.equal("false\treal failure\n", out)
      assert.matches(" WARN  context\n$", err)
    end)
  end)
end)
