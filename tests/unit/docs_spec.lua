-- The references cannot drift (tools/docs.lua, `make docs`): every public stdlib function has
-- its `---@param` annotations, every config key its description, every stdlib file is either
-- public or internal; and the checks themselves catch what they are for.
local docs = dofile("tools/docs.lua")

describe("make docs", function()
  it("every public function of the stdlib is annotated, every stdlib file classified", function()
    local problems = docs.api_problems()
    assert.same({}, problems, table.concat(problems, "\n"))
  end)

  it("every config key has a description", function()
    local problems = docs.config_problems()
    assert.same({}, problems, table.concat(problems, "\n"))
  end)

  it("a function without its annotation, or with a stale @param, is found", function()
    local tmp = os.tmpname()
    os.remove(tmp)
    assert(os.execute("mkdir -p " .. tmp))
    local f = assert(io.open(tmp .. "/mod.lua", "w"))
    f:write(table.concat({
      "local M = {}",
      "local Obj = {}",
      "--- documented",
      "---@param a string",
      "---@param b? integer",
      "function M.good(a, b) end",
      "function M.bare(x) end",
      "--- a description but no @param",
      "function Obj:method(y) end",
      "---@param old string",
      "function M.renamed(new) end",
      "function M._private(z) end",
      "local function helper(w) end",
      "--- no parameters: the description is enough",
      "function M.none() end",
      "return M",
    }, "\n"))
    f:close()
    local root, public, internal = docs.ROOT, docs.PUBLIC, docs.INTERNAL
    docs.ROOT, docs.PUBLIC, docs.INTERNAL = tmp .. "/", { { "mod.lua", "mod" } }, {}
    local ok, problems = pcall(docs.api_problems)
    docs.ROOT, docs.PUBLIC, docs.INTERNAL = root, public, internal
    os.execute("rm -rf " .. tmp)
    assert(ok, problems)
    local text = table.concat(problems, "\n")
    assert.equal(3, #problems, text)
    assert.matches("mod.lua:7: M.bare: no --- annotation", text, 1, true)
    assert.matches("mod.lua:9: Obj:method: no ---@param y", text, 1, true)
    assert.matches("mod.lua:11: M.renamed: no ---@param new", text, 1, true)
  end)

  it("an unclassified stdlib file is a problem", function()
    local internal = docs.INTERNAL
    docs.INTERNAL = {}
    local problems = docs.api_problems()
    docs.INTERNAL = internal
    assert.matches("stdlib/ferry/boot.lua: neither public nor internal", table.concat(problems, "\n"), 1, true)
  end)

  it("a config key without a description is found", function()
    local S = function(t, x) x = x or {}; x.t = t; return x end
    local schema = S("table", { fields = {
      a = S("string", { doc = "described" }),
      b = S("table", { doc = "a section", fields = { c = S("number") } }),
      m = S("map", { doc = "by name", item = S("table", { fields = { d = S("integer", { description = "also fine" }),
                                                                   e = S("boolean") } }) }),
    } })
    assert.same({ 'b.c: no description (doc = "...")', 'm.<name>.e: no description (doc = "...")' },
      docs.config_problems(schema))
  end)

  it("the references name every public function and every config key", function()
    local api = docs.api_markdown()
    assert.matches("### `chain:logs(filter)`", api, 1, true)
    assert.matches("### `signer:send(t)`", api, 1, true)
    assert.matches("## ferry.workflow", api, 1, true)
    assert.matches("| `fn` | `fun(item: any, i: integer): any` |", api, 1, true)   -- a type with blanks stays whole
    local cfg = docs.config_markdown()
    assert.matches("| `rpc.timeout` | number |", cfg, 1, true)
    assert.matches("| `chains.<name>.providers[i].url` |", cfg, 1, true)
  end)
end)
