-- tools/docs.lua -- the API reference (docs/api.md) from the stdlib's LuaLS `---@` annotations,
-- and the config reference (docs/config.md) from the config schema itself, so neither can
-- drift from the code. `make docs` runs it: `./ferry tools/docs.lua [--check]`; it writes
-- both files (not with --check) and exits 1, naming each, when a public function has no
-- annotation or a config key has no description. tests/unit/docs_spec.lua runs the same checks.
--
-- What is public (docs/guide.md, "What the reference covers"): every file of stdlib/ferry is
-- either in PUBLIC (the modules users require, and the files that define the objects those
-- hand out) or in INTERNAL, with the reason; a file in neither is an error, so a new module
-- is classified when it is added. In a public file, a public function is one defined at the
-- start of a line as `function T.name(...)` where T is the table the file returns, or
-- `function Class:name(...)` (a method of an object it hands out), and whose last name does
-- not start with `_`. Such a function is annotated when the `---` block right above it has a
-- `---@param NAME` line for each of its parameters (and none for a parameter it does not
-- have); one without parameters needs the block only. `---@return` lines are shown as given.
local M = {}

-- stdlib/ferry/<file> -> the module name users require (in the order the reference shows them)
M.PUBLIC = {
  { "init.lua", "ferry" },
  { "eth.lua", "ferry.eth" },
  { "eth/values.lua", "ferry.eth (values)" },
  { "eth/chain.lua", "ferry.eth.chain" },
  { "eth/signer.lua", "ferry.eth.signer" },
  { "eth/send.lua", "ferry.eth.send" },
  { "eth/tx.lua", "ferry.eth.tx" },
  { "eth/erc20.lua", "ferry.eth.erc20" },
  { "eth/abi.lua", "ferry.eth.abi" },
  { "eth/eip712.lua", "ferry.eth.eip712" },
  { "eth/events.lua", "ferry.eth.events" },
  { "workflow.lua", "ferry.workflow" },
  { "journal.lua", "ferry.journal" },
  { "policy.lua", "ferry.policy" },
  { "redis.lua", "ferry.redis" },
  { "subscribe.lua", "ferry.subscribe" },
  { "sol.lua", "ferry.sol" },
  { "sol/values.lua", "ferry.sol (values)" },
  { "sol/chain.lua", "ferry.sol.chain" },
  { "sol/signer.lua", "ferry.sol.signer" },
  { "sol/tx.lua", "ferry.sol.tx" },
  { "sol/builders.lua", "ferry.sol.builders" },
}

-- stdlib/ferry/<file> -> why it is not in the reference
M.INTERNAL = {
  ["boot.lua"] = "starts the engine and runs the script (no API)",
  ["cli.lua"] = "the commands; documented by `ferry help` and the guide",
  ["config.lua"] = "docs/config.md is generated from its schema",
  ["heads.lua"] = "the pool's view of the head",
  ["nonces.lua"] = "the nonce allocator behind signer:send",
  ["pool.lua"] = "behind chain:call",
  ["pretty.lua"] = "the REPL's printer",
  ["repl.lua"] = "the REPL",
  ["rpc.lua"] = "the JSON-RPC client behind the pool",
  ["shutdown.lua"] = "signal handling, armed by the first send",
  ["simulate.lua"] = "the simulate step of signer:send",
  ["ws.lua"] = "the WebSocket JSON-RPC client behind chain:subscribe (docs/ws.md)",
  ["store.lua"] = "the journal's storage (ferry.journal reads it)",
  ["eth/args.lua"] = "argument rules of ferry.eth",
  ["eth/decode.lua"] = "what chain:block/transaction/receipt/logs return (documented there)",
  ["eth/delivery.lua"] = "what a broadcast's answer means, for the send step",
  ["eth/receipts.lua"] = "the receipt book behind tx:wait (docs/ws.md)",
  ["eth/replies.lua"] = "reply shapes checked by the pool",
  ["policy/gate.lua"] = "the policy step of signer:send",
  ["pool/request.lua"] = "the pool's requests",
  ["pool/tracker.lua"] = "the pool's head tracker",
  ["repl/server.lua"] = "the REPL socket (`ferry serve`)",
  ["store/journal.lua"] = "the journal's SQL",
  ["store/redis.lua"] = "nonces on Redis, behind signer:send",
  ["store/redis_funds.lua"] = "funds holds on Redis, behind signer:send",
  ["store/redis_journal.lua"] = "the journal's rows on Redis (ferry.journal reads them)",
}

M.ROOT = "stdlib/ferry/"

local function read(path)
  local f = assert(io.open(path, "r"))
  local s = f:read("a")
  f:close()
  return s
end

local function lines_of(text)
  local t = {}
  for l in (text .. "\n"):gmatch("([^\n]*)\n") do t[#t + 1] = l end
  return t
end

-- The identifier of the file's last top-level `return X`.
local function returned_table(lines)
  for i = #lines, 1, -1 do
    local x = lines[i]:match("^return%s+([%a_][%w_]*)%s*$")
    if x then return x end
  end
end

-- "a, b, ..." -> {"a", "b", "..."}
local function param_names(list)
  local t = {}
  for p in list:gmatch("[^,%s]+") do t[#t + 1] = p end
  return t
end

-- The `---` lines right above line i (comments first to last).
local function doc_block(lines, i)
  local block = {}
  local j = i - 1
  while j >= 1 and lines[j]:match("^%s*%-%-%-") do
    table.insert(block, 1, (lines[j]:gsub("^%s*%-%-%-%s?", "", 1)))
    j = j - 1
  end
  return block
end

--- parse(file) -> {module = header lines, functions = {{name, params, doc, line}...}}: the
--- public functions of one stdlib file.
function M.parse(file)
  local lines = lines_of(read(M.ROOT .. file))
  local mod = returned_table(lines)
  local header = {}
  for _, l in ipairs(lines) do
    if not l:match("^%-%-%-") then break end
    header[#header + 1] = (l:gsub("^%-%-%-%s?", "", 1))
  end
  local fns = {}
  for i, l in ipairs(lines) do
    local name, params = l:match("^function%s+([%w_.:]+)%s*%(([^)]*)%)")
    if name then
      local last = name:match("([%w_]+)$")
      local first = name:match("^([%w_]+)")
      local method = name:find(":", 1, true) ~= nil
      if not last:match("^_") and (method or (first == mod and name ~= first)) then
        fns[#fns + 1] = { name = name, params = param_names(params), doc = doc_block(lines, i), line = i }
      end
    end
  end
  return { header = header, functions = fns }
end

-- What an annotation lacks: nil when complete, else a reason.
local function lacks(fn)
  if #fn.doc == 0 then return "no --- annotation" end
  local documented = {}
  for _, d in ipairs(fn.doc) do
    local p = d:match("^@param%s+([%w_.]+)")
    if p then documented[(p:gsub("%?$", ""))] = true end
  end
  local want = {}
  for _, p in ipairs(fn.params) do
    want[p] = true
    if not documented[p] then return "no ---@param " .. p end
  end
  for p in pairs(documented) do
    if not want[p] then return "---@param " .. p .. " is not a parameter" end
  end
  return nil
end

-- Every file under stdlib/ferry, relative to it.
local function stdlib_files()
  local out = {}
  local p = io.popen("cd " .. M.ROOT .. " && find . -name '*.lua' | sort")
  for l in p:lines() do out[#out + 1] = l:gsub("^%./", "") end
  p:close()
  return out
end

--- api_problems() -> a list of "file:line: name: what is missing", empty when every public
--- function is annotated and every stdlib file is classified.
function M.api_problems()
  local problems = {}
  local public = {}
  for _, e in ipairs(M.PUBLIC) do public[e[1]] = true end
  for _, f in ipairs(stdlib_files()) do
    if not public[f] and not M.INTERNAL[f] then
      problems[#problems + 1] = M.ROOT .. f .. ": neither public nor internal (tools/docs.lua PUBLIC, INTERNAL)"
    end
  end
  for _, e in ipairs(M.PUBLIC) do
    for _, fn in ipairs(M.parse(e[1]).functions) do
      local why = lacks(fn)
      if why then problems[#problems + 1] = ("%s%s:%d: %s: %s"):format(M.ROOT, e[1], fn.line, fn.name, why) end
    end
  end
  return problems
end

-- A function's heading: "chain:balance(addr, block, opts)" for Chain:balance
local function display_name(name)
  local class, method = name:match("^([%w_]+):([%w_]+)$")
  if class then return class:lower() .. ":" .. method end
  return name:gsub("^M%.", "")
end

local function md_escape(s) return (s:gsub("|", "\\|")) end

-- Comment lines as markdown, in order: runs of lines indented by two spaces (examples) become
-- code blocks, the rest prose.
local function render_text(out, text)
  local run, code = {}, false
  local function flush()
    while run[#run] == "" do run[#run] = nil end
    if #run == 0 then return end
    if code then out[#out + 1] = "```lua\n" .. table.concat(run, "\n") .. "\n```\n"
    else out[#out + 1] = table.concat(run, "\n") .. "\n" end
    run = {}
  end
  for _, t in ipairs(text) do
    local is_code = t:match("^  ") ~= nil
    if is_code ~= code and not (t == "" and code) then flush(); code = is_code end
    if is_code then run[#run + 1] = (t:gsub("^  ", "", 1))
    elseif t ~= "" or #run > 0 then run[#run + 1] = t end
  end
  flush()
end

-- "fun(item: any): any the function" -> "fun(item: any): any", "the function": a type ends at the
-- first blank outside brackets, a function type's ": ret" included.
local function split_type(text)
  local depth, i, n = 0, 1, #text
  while i <= n do
    local c = text:sub(i, i)
    if c == "(" or c == "{" or c == "<" or c == "[" then depth = depth + 1
    elseif c == ")" or c == "}" or c == ">" or c == "]" then depth = depth - 1
    elseif c == ":" and depth == 0 then
      i = i + 1
      while text:sub(i, i) == " " do i = i + 1 end
      i = i - 1
    elseif c:match("%s") and depth == 0 then break end
    i = i + 1
  end
  return text:sub(1, i - 1), (text:sub(i):gsub("^%s+", ""))
end

local function render_function(out, fn)
  out[#out + 1] = ("### `%s(%s)`\n"):format(display_name(fn.name), table.concat(fn.params, ", "))
  local text, params, returns = {}, {}, {}
  for _, d in ipairs(fn.doc) do
    local pn, prest = d:match("^@param%s+([%w_.?]+)%s+(.*)$")
    local rrest = d:match("^@return%s+(.*)$")
    if pn then
      local pt, pd = split_type(prest)
      params[#params + 1] = { pn, pt, pd }
    elseif rrest then returns[#returns + 1] = { split_type(rrest) }
    elseif not d:match("^@") then text[#text + 1] = d end
  end
  render_text(out, text)
  if #params > 0 then
    out[#out + 1] = "| parameter | type | |\n|---|---|---|"
    for _, p in ipairs(params) do out[#out + 1] = ("| `%s` | `%s` | %s |"):format(p[1], md_escape(p[2]), md_escape(p[3])) end
    out[#out + 1] = ""
  end
  for _, r in ipairs(returns) do
    out[#out + 1] = ("Returns `%s`%s\n"):format(md_escape(r[1]), r[2] ~= "" and (" -- " .. r[2]) or "")
  end
end

--- api_markdown() -> the text of docs/api.md
function M.api_markdown()
  local out = { "# ferry -- API reference\n",
    "Generated by `make docs` (tools/docs.lua) from the `---@` annotations of stdlib/ferry; do not edit.",
    "What counts as public, and the rest of the story (sending, payouts, failover, errors, stats):",
    "[guide.md](guide.md). The configuration: [config.md](config.md).\n" }
  out[#out + 1] = "## Modules\n"
  for _, e in ipairs(M.PUBLIC) do
    -- GitHub's anchor of a heading: lower case, punctuation dropped, spaces as hyphens
    out[#out + 1] = ("- [%s](#%s)"):format(e[2], (e[2]:lower():gsub("[^%w%- ]", ""):gsub(" ", "-")))
  end
  out[#out + 1] = ""
  for _, e in ipairs(M.PUBLIC) do
    local p = M.parse(e[1])
    out[#out + 1] = ("## %s\n"):format(e[2])
    out[#out + 1] = ("`stdlib/ferry/%s`\n"):format(e[1])
    local prose = {}
    for _, h in ipairs(p.header) do if not h:match("^@") then prose[#prose + 1] = h end end
    render_text(out, prose)
    for _, fn in ipairs(p.functions) do render_function(out, fn) end
  end
  return table.concat(out, "\n")
end

-- Config schema ------------------------------------------------------------------------------

local function node_doc(node) return node.doc or node.description end

-- Each key of the schema, depth first: f(path, node)
local function walk(node, path, f)
  if node.t == "table" and node.fields then
    local keys = {}
    for k in pairs(node.fields) do keys[#keys + 1] = k end
    table.sort(keys)
    for _, k in ipairs(keys) do
      local child = node.fields[k]
      local p = path == "" and k or (path .. "." .. k)
      f(p, child)
      walk(child, p, f)
    end
  elseif node.t == "map" and node.item then
    walk(node.item, path .. ".<name>", f)
  elseif node.t == "array" and node.item then
    walk(node.item, path .. "[i]", f)
  end
end

--- config_problems(schema?) -> a list of "path: no description", empty when every key has a doc
function M.config_problems(schema)
  schema = schema or require("ferry.config").schema
  local problems = {}
  walk(schema, "", function(path, node)
    local d = node_doc(node)
    if type(d) ~= "string" or d == "" then problems[#problems + 1] = path .. ": no description (doc = \"...\")" end
  end)
  return problems
end

local function type_text(node)
  local t = node.t
  if t == "enum" then return "one of " .. table.concat(node.values, ", ") end
  if t == "map" then return "map of name -> " .. type_text(node.item) end
  if t == "array" then return "list of " .. type_text(node.item) end
  if t == "cap" then return "number, or false / \"off\"" end
  if t == "url" then return node.what or "URL" end
  return t
end

local function default_text(node)
  local d = node.default
  if d == nil then return "" end
  if type(d) == "table" then return next(d) == nil and "{}" or "(table)" end
  if type(d) == "string" then return ("%q"):format(d) end
  return tostring(d)
end

--- config_markdown(schema?) -> the text of docs/config.md
function M.config_markdown(schema)
  schema = schema or require("ferry.config").schema
  local out = { "# ferry -- configuration reference\n",
    "Generated by `make docs` (tools/docs.lua) from the schema in stdlib/ferry/config.lua; do not edit.",
    "config.lua returns one table; it is validated against this schema, and a misspelt key or a value",
    "of the wrong type is an error naming its path. `<name>` is a name you choose (a chain, a policy),",
    "`[i]` an entry of a list. Values may come from the environment: `env(\"NAME\", default)`.\n",
    "| key | type | default | |", "|---|---|---|---|" }
  walk(schema, "", function(path, node)
    local extra = {}
    if node.required then extra[#extra + 1] = "required" end
    if node.min then extra[#extra + 1] = ">= " .. node.min end
    if node.hide then extra[#extra + 1] = "hidden in logs" end
    local doc = node_doc(node) or ""
    if #extra > 0 then doc = doc .. " (" .. table.concat(extra, ", ") .. ")" end
    out[#out + 1] = ("| `%s` | %s | %s | %s |"):format(path, md_escape(type_text(node)), md_escape(default_text(node)),
      md_escape(doc))
  end)
  return table.concat(out, "\n") .. "\n"
end

local function write(path, text)
  local f = assert(io.open(path, "w"))
  f:write(text)
  f:close()
end

--- main(args) -> exit code: writes docs/api.md and docs/config.md (unless --check), 1 on problems
function M.main(args)
  local check = false
  for _, a in ipairs(args) do if a == "--check" then check = true end end
  local problems = M.api_problems()
  for _, p in ipairs(M.config_problems()) do problems[#problems + 1] = "config: " .. p end
  if not check then
    write("docs/api.md", M.api_markdown())
    write("docs/config.md", M.config_markdown())
  end
  for _, p in ipairs(problems) do io.stderr:write(p, "\n") end
  if #problems > 0 then
    io.stderr:write(("docs: %d problem(s): annotate them (docs/guide.md, \"What the reference covers\")\n"):format(#problems))
    return 1
  end
  if not check then print("docs: wrote docs/api.md and docs/config.md") end
  return 0
end

if arg and type(arg[0]) == "string" and arg[0]:match("tools/docs%.lua$") then os.exit(M.main(arg)) end
return M
