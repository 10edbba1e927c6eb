--- ferry.store -- what must outlive the process: the transaction journal, idempotency ids and
--- the lease that makes one process the only sender of an address.
---
---   local store = require("ferry.store").get()      -- the engine's store, from config `store`
---   store.kind                                       -- "sqlite" | "memory" (| "redis")
---   store:lease(key) -> true, token | false, holder  -- take or renew an address's lease
---   store.journal                                    -- ferry.store.journal over this store
---
--- The SQLite backend (the default) keeps everything in data_dir/ferry.db (WAL): one process,
--- nothing to run, nothing lost when the process dies. "memory" is the same schema in an
--- in-memory database (nothing survives the process: tests, throwaway scripts). Every
--- statement runs off the loop thread (ferry.core.db), in the order it was issued.
local ferry = require "ferry"
local db = require "ferry.core.db"
local signal = require "ferry.core.signal"
local proc = require "ferry.core.proc"

local M = {}

-- Who this process is, for leases and journal rows: host, pid and a start token (a pid is
-- reused after a restart; the token is not).
local function whoami()
  local host = (io.open("/proc/sys/kernel/hostname") or { read = function() return "localhost" end, close = function() end })
  local name = host:read("l") or "localhost"
  host:close()
  local f = io.open("/dev/urandom", "rb")
  local token = f and f:read(6) or tostring(os.time())
  if f then f:close() end
  return ("%s:%d:%s"):format(name, signal.pid(), (token:gsub(".", function(c) return ("%02x"):format(c:byte()) end)))
end
M.owner = whoami()

--- Wall-clock seconds (journal times, lease expiries: they are compared across processes).
M.wall = require("ferry.core.task").wall

local SCHEMA = {
  [[CREATE TABLE IF NOT EXISTS txs(
      id TEXT PRIMARY KEY, chain TEXT, chain_id INTEGER, chain_key TEXT, address TEXT, nonce INTEGER,
      state TEXT NOT NULL, hash TEXT, raw TEXT, hashes TEXT, fields TEXT, block INTEGER,
      error TEXT, provider TEXT, owner TEXT, created REAL, updated REAL, events TEXT)]],
  "CREATE INDEX IF NOT EXISTS txs_by_state ON txs(state)",
  "CREATE INDEX IF NOT EXISTS txs_by_address ON txs(chain_key, address, state)",
  "CREATE INDEX IF NOT EXISTS txs_by_hash ON txs(hash)",
  [[CREATE TABLE IF NOT EXISTS leases(
      key TEXT PRIMARY KEY, owner TEXT NOT NULL, token INTEGER NOT NULL, expires REAL NOT NULL)]],
}

-- PRAGMA user_version of the schema above: a database written by another version of ferry is
-- refused with a clear error, never misread.
M.SCHEMA_VERSION = 1

local Store = {}
Store.__index = Store

local function must(r, err)
  if r == nil then error(err, 0) end
  return r
end

--- open{backend=, path=, sync=, lease_ttl=} -> a store (its schema created)
function M.open(opts)
  local kind = opts.backend or "sqlite"
  if kind ~= "sqlite" and kind ~= "memory" then
    ferry.raise("invalid_argument", ("store: backend %q is not available in this build (sqlite, memory)"):format(kind))
  end
  local path = kind == "memory" and ":memory:" or opts.path
  local conn = db.open(path, { sync = opts.sync })
  local stmts = { { "PRAGMA user_version" } }
  for _, sql in ipairs(SCHEMA) do stmts[#stmts + 1] = { sql } end
  local ok, err = conn:batch(stmts)
  local version = ok and ok[1].rows[1].user_version
  if ok and version ~= 0 and version ~= M.SCHEMA_VERSION then
    conn:close()
    ferry.raise("store_unavailable", ("store: %s was written by another version of ferry (schema %d; this one reads %d)")
      :format(path, version, M.SCHEMA_VERSION), { path = path })
  end
  if ok and version == 0 then ok, err = conn:exec("PRAGMA user_version = " .. M.SCHEMA_VERSION) end
  if not ok then
    conn:close()
    ferry.raise(err.code == "store_unavailable" and err.code or "store_unavailable",
      ("store: cannot use %s: %s"):format(path, err.message), { path = path })
  end
  local s = setmetatable({ kind = kind, path = path, conn = conn, lease_ttl = opts.lease_ttl or 30,
                           leases = {} }, Store)
  s.journal = require("ferry.store.journal").new(s)
  return s
end

local current, opening, override

--- configure{backend=, path=, sync=, lease_ttl=}: use these instead of the config's `store`
--- (before the first use; the specs point it at a temp file)
function M.configure(opts)
  override = opts
  current = nil
end

--- get() -> the engine's store, opened from the config on first use (one per config; tasks
--- asking at once share one open).
function M.get()
  local cfg = ferry.config()
  if current and current.cfg == cfg then return current end
  if opening and opening.cfg == cfg then
    local ok, s = opening.task:wait()
    if not ok then error(s, 0) end
    return s
  end
  local sc = override or cfg.store or {}
  local backend = sc.backend or "sqlite"
  -- nonces on Redis when it is configured (the journal stays in this process's data_dir)
  local rcfg = cfg.redis
  local shared = rcfg and rcfg.url and (sc.backend == nil or sc.backend == "redis") and not override
  if backend == "redis" then backend = "sqlite" end
  local task = ferry.spawn(function()
    local path = sc.path
    if backend == "sqlite" and not path then
      local dir = cfg.data_dir or ".ferry"
      local p = proc.spawn{ "mkdir", "-p", "--", dir }     -- a child, not os.execute: the loop goes on
      if p then p:wait() end
      path = dir .. "/ferry.db"
    end
    local s = M.open({ backend = backend, path = path, sync = sc.sync, lease_ttl = sc.lease_ttl })
    s.cfg = cfg
    if shared then M.share_nonces(s, rcfg.url, rcfg.prefix) end
    return s
  end):detach()
  opening = { cfg = cfg, task = task }
  local ok, s = task:wait()
  if opening and opening.task == task then opening = nil end
  if not ok then error(s, 0) end
  current = s
  ferry.register_stats("store", function() return current:stats() end)
  return s
end

--- share_nonces(store, url, prefix): nonces from now on come from the allocator on that Redis
--- (ferry.store.redis), shared by every process using it
function M.share_nonces(s, url, prefix)
  local redis = require "ferry.redis"
  -- a step waits at most 1 s for Redis: a send that must wait for it says so (ferry.nonces)
  s.redis_nonces = require("ferry.store.redis").new(redis.shared(url, "store"), { prefix = prefix or "ferry:", timeout = 1 })
  s.kind = s.kind .. "+redis"
end

--- process_of(owner) -> the process an owner names ("<host>:<pid>:<token>", without the
--- "#<n>" a Redis reservation adds to name one reserve)
function M.process_of(owner) return (owner:gsub("#%d+$", "")) end

--- dead(owner) -> true when owner (a store.owner) is a process of this host that is gone
function M.dead(owner)
  local host, pid = M.process_of(owner):match("^(.*):(%d+):%x+$")
  local me = M.owner:match("^(.*):%d+:%x+$")
  return host == me and pid ~= nil and not signal.alive(tonumber(pid))
end

--- current() -> the store opened so far, or nil (no I/O)
function M.current() return current end

--- store:exec(sql, ...) -> rows, changes (raises the store's error)
function Store:exec(sql, ...)
  local rows, x = self.conn:exec(sql, ...)
  if rows == nil then error(x, 0) end
  return rows, x
end

--- store:batch{{sql, ...}, ...} -> results, in one transaction (raises)
function Store:batch(stmts) return must(self.conn:batch(stmts)) end

--- store:post(sql, ...): queued behind everything issued before, not waited for
function Store:post(sql, ...) self.conn:post(sql, ...) end

-- Leases. An address is sent from by one process at a time: the one holding its lease. A
-- lease runs for lease_ttl seconds and is renewed while the process sends; one held by a
-- process that died on this host is taken at once (its pid is gone), one held elsewhere
-- when it expires. The token grows with every new holder (a fencing token).

--- store:lease(key) -> true, token | false, holder, expires_in
function Store:lease(key)
  local now = M.wall()
  local rows = self:exec("SELECT owner, token, expires FROM leases WHERE key = ?", key)
  local held = rows[1]
  local take_dead = held and held.owner ~= M.owner and held.expires > now and M.dead(held.owner)
  local r = self:batch({
    { [[INSERT INTO leases(key, owner, token, expires) VALUES(?1, ?2, 1, ?3)
        ON CONFLICT(key) DO UPDATE SET
          token = CASE WHEN owner = excluded.owner THEN token ELSE token + 1 END,
          owner = excluded.owner, expires = excluded.expires
        WHERE owner = excluded.owner OR expires < ?4 OR (?5 AND owner = ?6)]],
      key, M.owner, now + self.lease_ttl, now, take_dead and 1 or 0, held and held.owner or "" },
    { "SELECT owner, token, expires FROM leases WHERE key = ?", key },
  })
  local row = r[2].rows[1]
  if row.owner == M.owner then
    self.leases[key] = { token = row.token, expires = row.expires }
    return true, row.token
  end
  self.leases[key] = nil
  return false, row.owner, row.expires - now
end

--- store:unlease(key): give it back (a clean exit)
function Store:unlease(key)
  self.leases[key] = nil
  self:post("DELETE FROM leases WHERE key = ? AND owner = ?", key, M.owner)
end

function Store:stats()
  local s = self.conn:stats()
  local held = 0
  for _ in pairs(self.leases) do held = held + 1 end
  return { kind = self.kind, path = self.path, jobs = s.jobs, queued = s.queued, failed = s.failed,
           last_error = s.last_error, leases_held = held, journal = self.journal:counts(),
           redis_nonces = self.redis_nonces and self.redis_nonces:stats() or nil }
end

return M
