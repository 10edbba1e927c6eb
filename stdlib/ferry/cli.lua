--- ferry.cli -- cast-style commands: `ferry balance ADDR`, `ferry call TO SIG ARGS...` ...
---
--- engine/main.c runs M.main(name, args...) when the first argument names no file. Each
--- command is a few lines over the public API (ferry.eth); output is for a person, or JSON
--- with --json. A failure is one line on stderr, "ferry CMD: code: message", and exit 1.
--- Keys are never taken on the command line: `send` reads the variable --key-env names
--- (PAYER_KEY by default), in C, so the key never becomes a Lua string.
local ferry = require "ferry"
local json = require "ferry.core.json"
local u256 = require "ferry.core.u256"
local config = require "ferry.config"

local M = {}
local raise = ferry.raise

-- Options every command takes, and those only some do (name -> takes a value).
local COMMON = { ["--chain"] = true, ["--json"] = false, ["--config"] = true }

local function bad(msg) raise("invalid_argument", msg) end

-- args -> positional list, options table; refuses unknown options and keys on the command line
local function parse(cmd, args, extra)
  local pos, opt = {}, {}
  local i = 1
  while i <= #args do
    local a = args[i]
    local name, inline = a:match("^(%-%-[%w-]+)=(.*)$")
    name = name or a
    if name == "--key" or name == "--private-key" or name == "--pk" then
      bad("keys are never taken on the command line: put the key in an environment variable and name it with " ..
        "--key-env NAME (default PAYER_KEY)")
    end
    if name:match("^%-%-.") then
      local takes = COMMON[name]
      if takes == nil then takes = extra[name] end
      if takes == nil then
        local allowed = {}
        for k in pairs(COMMON) do allowed[k] = true end
        for k in pairs(extra) do allowed[k] = true end
        local s = config.suggest(name, allowed)
        bad(("unknown option %s for %s%s"):format(name, cmd, s and (' (did you mean "' .. s .. '"?)') or ""))
      end
      if takes then
        local v = inline
        if v == nil then
          i = i + 1
          v = args[i]
        end
        if v == nil then bad(name .. " needs a value") end
        opt[name:sub(3)] = v
      else
        opt[name:sub(3)] = true
      end
    else
      pos[#pos + 1] = a
    end
    i = i + 1
  end
  return pos, opt
end

-- the chain a command talks to: --chain, else the config's only chain, else "local"
local function chain_of(opt)
  local eth = require "ferry.eth"
  if opt.config then ferry.options.config = opt.config end
  local name = opt.chain
  if not name then
    local names = {}
    for k in pairs(ferry.config().chains) do names[#names + 1] = k end
    name = #names == 1 and names[1] or "local"
  end
  return eth.chain(name)
end

local function need(pos, n, usage)
  if #pos < n then bad("usage: ferry " .. usage) end
end

local function too_many(pos, n, usage)
  if #pos > n then bad(("unexpected argument %q (usage: ferry %s)"):format(ferry.redact(pos[n + 1]), usage)) end
end

local function out(s) io.stdout:write(s, "\n") end

local function emit(opt, tbl, human)
  if opt.json then out(json.encode(tbl)) else out(human) end
end

-- "1.5ether", "30gwei", "100wei", "100" (wei), as cast reads an amount
local UNITS = { ether = 18, eth = 18, gwei = 9, wei = 0 }
local function amount(text)
  local num, unit = text:match("^%s*([%d.]+)%s*(%a*)%s*$")
  if not num then bad(("--value: %q is not an amount (e.g. 1.5ether, 30gwei, 100wei)"):format(ferry.redact(text))) end
  if unit == "" then unit = "wei" end
  local d = UNITS[unit:lower()]
  if not d then bad(("--value: unknown unit %q (ether, gwei or wei)"):format(unit)) end
  local ok, v = pcall(u256.parse_units, num, d)
  if not ok or not v then bad(("--value: %q is not an amount in %s"):format(text, unit)) end
  return v
end

-- split "a,b,(c,d)" at top-level commas
local function split_top(s)
  local parts, depth, cur = {}, 0, {}
  for ch in s:gmatch(".") do
    if (ch == "," ) and depth == 0 then
      parts[#parts + 1] = table.concat(cur)
      cur = {}
    else
      if ch == "(" or ch == "[" then depth = depth + 1 elseif ch == ")" or ch == "]" then depth = depth - 1 end
      cur[#cur + 1] = ch
    end
  end
  local last = table.concat(cur)
  if last ~= "" or #parts > 0 then parts[#parts + 1] = last end
  for k, p in ipairs(parts) do parts[k] = p:match("^%s*(.-)%s*$") end
  return parts
end

-- a command-line word -> the ABI value of type t (bool, arrays "[1,2]", tuples "(a,b)")
local function abi_value(t, word)
  local elem = t:match("^(.*)%[%d*%]$")
  if elem then
    local inner = word:match("^%s*%[(.*)%]%s*$")
    if not inner then bad(("argument %q: expected a list like [a,b] for %s"):format(ferry.redact(word), t)) end
    local list = {}
    for k, w in ipairs(split_top(inner)) do list[k] = abi_value(elem, w) end
    return list
  end
  local fields = t:match("^%((.*)%)$")
  if fields then
    local inner = word:match("^%s*%((.*)%)%s*$")
    if not inner then bad(("argument %q: expected a tuple like (a,b) for %s"):format(ferry.redact(word), t)) end
    local types, words, list = split_top(fields), split_top(inner), {}
    for k, ty in ipairs(types) do list[k] = abi_value(ty, words[k] or "") end
    return list
  end
  if t == "bool" then
    if word == "true" then return true elseif word == "false" then return false end
    bad(("argument %q: expected true or false for bool"):format(ferry.redact(word)))
  end
  return word
end

-- a decoded ABI value, for a person (cast's style) and for JSON
local function show(v)
  if u256.is_u256(v) then return tostring(v) end
  if type(v) == "table" then
    local parts = {}
    for k, x in ipairs(v) do parts[k] = show(x) end
    return "[" .. table.concat(parts, ", ") .. "]"
  end
  return tostring(v)
end
local function plain(v)
  if u256.is_u256(v) then return tostring(v) end
  if type(v) == "table" then
    local list = json.array({})
    for k, x in ipairs(v) do list[k] = plain(x) end
    return list
  end
  if type(v) == "number" then return math.type(v) == "integer" and tostring(v) or v end
  return v
end

local function qty(v) return v and require("ferry.eth").quantity(v) end

M.commands = {}
local C = M.commands

C.balance = { usage = "balance ADDR [--chain NAME] [--json]", run = function(args)
  local pos, opt = parse("balance", args, {})
  need(pos, 1, C.balance.usage)
  too_many(pos, 1, C.balance.usage)
  local eth = require "ferry.eth"
  local addr = eth.address(pos[1])
  local wei = chain_of(opt):balance(addr)
  local ether = eth.format_ether(wei)
  emit(opt, { address = addr, wei = tostring(wei), ether = ether }, ("%s ETH (%s wei)"):format(ether, tostring(wei)))
end }

C.nonce = { usage = "nonce ADDR [--chain NAME] [--json]", run = function(args)
  local pos, opt = parse("nonce", args, {})
  need(pos, 1, C.nonce.usage)
  too_many(pos, 1, C.nonce.usage)
  local addr = require("ferry.eth").address(pos[1])
  local n = chain_of(opt):nonce(addr)
  emit(opt, { address = addr, nonce = n }, tostring(n))
end }

C["chain-id"] = { usage = "chain-id [--chain NAME] [--json]", run = function(args)
  local pos, opt = parse("chain-id", args, {})
  too_many(pos, 0, C["chain-id"].usage)
  local chain = chain_of(opt)
  local id = chain:chain_id_remote()
  emit(opt, { chain = chain.name, chain_id = id }, tostring(id))
end }

C.call = { usage = 'call TO SIG [ARGS...] [--from ADDR] [--block N] [--chain NAME] [--json]   (SIG: "f(address)(uint256)", or 0x calldata)',
  run = function(args)
  local pos, opt = parse("call", args, { ["--from"] = true, ["--block"] = true })
  need(pos, 2, C.call.usage)
  local eth = require "ferry.eth"
  local to = eth.address(pos[1])
  local block = opt.block
  if block and block:match("^%d+$") then block = ("0x%x"):format(math.tointeger(tonumber(block))) end
  local from = opt.from and eth.address(opt.from)
  if pos[2]:match("^0x%x*$") then           -- raw calldata, as cast takes it: the raw result
    if #pos > 2 then bad(("raw calldata takes no further arguments, got %d"):format(#pos - 2)) end
    local result = chain_of(opt):eth_call({ to = to, data = pos[2], from = from }, block)
    emit(opt, { result = result }, result)
    return
  end
  local fsig, rest = pos[2]:match("^%s*([%w_]+%b())%s*(.-)%s*$")
  if not fsig then bad(("SIG %q: expected name(types) or name(types)(return types)"):format(pos[2])) end
  local rets = rest:match("^returns%s*(%b())$") or rest:match("^(%b())$")
  if rest ~= "" and not rets then bad(("SIG %q: after the arguments, expected (return types)"):format(pos[2])) end
  local types = split_top(fsig:match("%((.*)%)$"))
  local given = #pos - 2
  if given ~= #types then
    bad(("%s takes %d argument%s, got %d"):format(fsig, #types, #types == 1 and "" or "s", given))
  end
  local values = {}
  for k, t in ipairs(types) do values[k] = abi_value(t, pos[k + 2]) end
  local data = eth.abi.encode_call(fsig, table.unpack(values, 1, #types))
  local result = chain_of(opt):eth_call({ to = to, data = data, from = from }, block)
  if not rets then
    emit(opt, { result = result }, result)
    return
  end
  local rtypes = split_top(rets:sub(2, -2))
  local decoded = table.pack(eth.abi.decode(rtypes, result))
  if decoded[1] == nil and #rtypes > 0 then
    raise("bad_response", ("the call's result does not decode as %s: %s"):format(rets, tostring(decoded[2])), { result = result })
  end
  local lines, list = {}, json.array({})
  for k = 1, #rtypes do
    lines[k] = show(decoded[k])
    list[k] = plain(decoded[k])
  end
  emit(opt, { result = result, values = list }, table.concat(lines, "\n"))
end }

C.send = { usage = "send TO [--value AMOUNT] [--data 0x..] [--key-env NAME] [--timeout S] [--chain NAME] [--json]",
  run = function(args)
  local pos, opt = parse("send", args, { ["--value"] = true, ["--data"] = true, ["--key-env"] = true, ["--timeout"] = true })
  need(pos, 1, C.send.usage)
  too_many(pos, 1, C.send.usage)
  local eth = require "ferry.eth"
  local to = eth.address(pos[1])
  local value = opt.value and amount(opt.value) or nil
  local timeout = tonumber(opt.timeout or 120)
  if not timeout or timeout <= 0 then bad("--timeout: expected seconds > 0") end
  local chain = chain_of(opt)
  local signer <close> = chain:signer{ env = opt["key-env"] or "PAYER_KEY" }
  local tx = signer:send{ to = to, value = value, data = opt.data }
  if not opt.json then
    out(("sent %s (from %s, nonce %d)"):format(tx.hash, signer.address, tx.nonce))
    io.stdout:flush()
  end
  local rc = tx:wait{ confirmations = 1, timeout = timeout }
  local status = rc.status == "0x1" and "success" or "failed"
  local block, gas = qty(rc.blockNumber), qty(rc.gasUsed)
  if opt.json then
    out(json.encode({ hash = rc.transactionHash or tx.hash, from = signer.address, to = to, nonce = tx.nonce,
                      block = block, gas_used = gas, status = status }))
  else
    out(("mined in block %d, status %s, gas used %d"):format(block, status, gas))
  end
  if status ~= "success" then os.exit(1) end
end }

-- {label, value} rows as aligned text lines; a row without a value is left out
local function rows_text(rows)
  local lines = {}
  for _, r in ipairs(rows) do
    if r[2] ~= nil then lines[#lines + 1] = ("%-10s %s"):format(r[1], tostring(r[2])) end
  end
  return table.concat(lines, "\n")
end

C.receipt = { usage = "receipt HASH [--chain NAME] [--json]", run = function(args)
  local pos, opt = parse("receipt", args, {})
  need(pos, 1, C.receipt.usage)
  too_many(pos, 1, C.receipt.usage)
  local hash = pos[1]
  if not hash:match("^0x" .. ("%x"):rep(64) .. "$") then bad(("%q is not a transaction hash (0x + 64 hex digits)"):format(ferry.redact(hash))) end
  local rc = chain_of(opt):_raw_receipt(hash)
  if rc == nil or rc == json.null then
    raise("invalid_argument", "no receipt for that hash: not mined, or unknown to the node")
  end
  if opt.json then out(json.encode(rc)) return end
  local rows = {
    { "hash", rc.transactionHash }, { "status", rc.status == "0x1" and "success" or "failed" },
    { "block", qty(rc.blockNumber) }, { "from", rc.from }, { "to", rc.to ~= json.null and rc.to or nil },
    { "contract", rc.contractAddress ~= json.null and rc.contractAddress or nil },
    { "gas used", qty(rc.gasUsed) },
    { "gas price", rc.effectiveGasPrice and (require("ferry.eth").format_units(rc.effectiveGasPrice, 9) .. " gwei") },
    { "logs", type(rc.logs) == "table" and #rc.logs or 0 },
  }
  out(rows_text(rows))
end }

C.block = { usage = "block [N|latest] [--chain NAME] [--json]", run = function(args)
  local pos, opt = parse("block", args, {})
  too_many(pos, 1, C.block.usage)
  local which = pos[1] or "latest"
  local n
  if which:match("^%d+$") then n = math.tointeger(tonumber(which))
  elseif which:match("^0x%x+$") or which == "latest" or which == "earliest" or which == "pending"
      or which == "safe" or which == "finalized" then n = which
  else bad(("%q is not a block (a number, 0x quantity, latest, earliest, pending, safe or finalized)"):format(ferry.redact(which))) end
  local b = chain_of(opt):_raw_block(n)
  if b == nil or b == json.null then raise("invalid_argument", ("no block %s on this chain"):format(which)) end
  if opt.json then out(json.encode(b)) return end
  local eth = require "ferry.eth"
  local ts = qty(b.timestamp)
  local rows = {
    { "number", qty(b.number) }, { "hash", b.hash }, { "parent", b.parentHash },
    { "timestamp", ts and ("%d (%s)"):format(ts, os.date("!%Y-%m-%d %H:%M:%S UTC", ts)) },
    { "txs", type(b.transactions) == "table" and #b.transactions or 0 },
    { "gas used", b.gasUsed and ("%d of %d"):format(qty(b.gasUsed), qty(b.gasLimit)) },
    { "base fee", b.baseFeePerGas and (eth.format_units(b.baseFeePerGas, 9) .. " gwei") },
    { "miner", b.miner },
  }
  out(rows_text(rows))
end }

-- ferry init's starter files: one local chain; mainnet as an example to uncomment
M.STARTER_CONFIG = [==[
-- ferry configuration (written by `ferry init`). It runs in a sandbox: env(name, default)
-- reads the environment, and .env in this directory (names as in .env.example). Secrets
-- (keys, API URLs) belong in the environment or .env, never in this file.
return {
  chains = {
    ["local"] = {
      kind = "evm", chain_id = env("LOCAL_CHAIN_ID", 31337), confirmations = 1,
      providers = {
        { name = "local", url = env("LOCAL_RPC_URL", "http://127.0.0.1:8545"), rps = env("RPC_RATE_LIMIT_LOCAL", 1000) },
      },
    },
    -- mainnet = {
    --   kind = "evm", chain_id = 1, confirmations = 12, simulation_required = true,
    --   providers = {
    --     { name = "alchemy", url = env "ETH_MAINNET_RPC_ALCHEMY", rps = env("RPC_RATE_LIMIT_ALCHEMY", 25), priority = 1 },
    --     { name = "public", url = env("ETH_MAINNET_RPC_PUBLIC", "https://ethereum-rpc.publicnode.com"), rps = 5, priority = 2 },
    --   },
    -- },
  },
  limits = { max_gas_price_gwei = env("MAX_GAS_PRICE_GWEI", 500) },
}
]==]

M.STARTER_ENV = [==[
# Environment read by config.lua. Copy to .env (ferry reads .env from the working directory;
# what the environment already has wins). Never commit real values.
LOCAL_RPC_URL=http://127.0.0.1:8545
# ETH_MAINNET_RPC_ALCHEMY=https://eth-mainnet.g.alchemy.com/v2/YOUR_KEY
MAX_GAS_PRICE_GWEI=500
# the key `ferry send` and chain:signer{env = "PAYER_KEY"} sign with
PAYER_KEY=
]==]

C.init = { usage = "init   (writes config.lua and .env.example in the current directory)", run = function(args)
  local pos = parse("init", args, {})
  too_many(pos, 0, C.init.usage)
  local files = { { "config.lua", M.STARTER_CONFIG }, { ".env.example", M.STARTER_ENV } }
  for _, f in ipairs(files) do
    local h = io.open(f[1], "r")
    if h then
      h:close()
      bad(("%s already exists here: nothing written (move it away to start afresh)"):format(f[1]))
    end
  end
  for _, f in ipairs(files) do
    local h, err = io.open(f[1], "w")
    if not h then bad(("cannot write %s: %s"):format(f[1], err)) end
    h:write(f[2])
    h:close()
  end
  out("wrote config.lua and .env.example: copy .env.example to .env and fill it in, then try `ferry chain-id`")
end }

C.serve = { usage = "serve   (runs until SIGTERM or Ctrl-C: the policies and their watcher, the REPL socket of "
  .. "repl.socket, the scripts of serve.scripts)",
  run = function(args)
  local pos = parse("serve", args, {})
  too_many(pos, 0, C.serve.usage)
  local signal = require "ferry.core.signal"
  local cfg = ferry.config()
  local policy = require "ferry.policy"
  if cfg.policies then
    policy.start{ dir = cfg.policies.dir, enabled = cfg.policies.enabled, watch = cfg.policies.watch }
  end
  local srv = cfg.repl and cfg.repl.socket and require("ferry.repl.server").start(cfg.repl.socket)
  -- signal watchers and sockets never keep the loop alive: this task's timer does, until a
  -- signal cancels it
  local keep = ferry.spawn(function() while true do ferry.sleep(3600) end end)
  for _, name in ipairs({ "TERM", "INT" }) do
    local w = signal.watch(name)
    ferry.spawn(function()
      if w:wait() then ferry.log.info("stopping", { signal = name }); keep:cancel() end
    end):daemon()
  end
  -- the scripts the config names, each a task of its own: one that fails is logged, the rest go on
  for _, path in ipairs(cfg.serve and cfg.serve.scripts or {}) do
    local chunk, lerr = loadfile(path, "t")
    if not chunk then ferry.log.error("serve: cannot load a script", { script = path, err = lerr })
    else
      ferry.spawn(function()
        local ok, e = pcall(chunk)
        if ok then ferry.log.info("serve: script done", { script = path })
        else ferry.log.error("serve: script failed", { script = path, err = tostring(e) }) end
      end)
    end
  end
  ferry.log.info("serving", { policies = cfg.policies and cfg.policies.dir, repl = srv and srv.path })
  keep:wait()
  if srv then srv.close() end
  policy.stop()
end }

--- main(name, args...): run one command; exits 1 with a one-line error on failure.
function M.main(name, ...)
  local args = table.pack(...)
  local cmd = C[name]
  if not cmd then
    local s = config.suggest(name, C)
    local names = {}
    for k in pairs(C) do names[#names + 1] = k end
    table.sort(names)
    io.stderr:write(("ferry: unknown command %q"):format(ferry.redact(name)),
      s and (' (did you mean "' .. s .. '"?)') or (" and no such file (commands: " .. table.concat(names, ", ") .. ")"), "\n")
    os.exit(1)
  end
  if args[1] == "--help" or args[1] == "-h" then
    out("usage: ferry " .. cmd.usage)
    return
  end
  local list = {}
  for i = 1, args.n do list[i] = args[i] end
  local ok, err = pcall(cmd.run, list)
  if not ok then
    local msg
    if ferry.is_error(err) then msg = err.code .. ": " .. tostring(err.message)
    else msg = tostring(err) end
    io.stderr:write("ferry ", name, ": ", ferry.redact((msg:gsub("\n.*", ""))), "\n")
    io.stderr:flush()
    os.exit(1)
  end
end

return M
