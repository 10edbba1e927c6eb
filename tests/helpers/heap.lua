--- helpers.heap -- what Lua can reach: the secrets specs look there for keys and passwords.
local M = {}

--- walk(root, found, opts) -> how many values were visited. Every value reachable from root
--- through tables (keys, values, metatables), functions (upvalues), userdata (metatables,
--- user values) and, with opts.threads, coroutine stacks (locals), each visited once;
--- found(s) is called on every string. A spec's own locals hold what it looks for, so its
--- thread is walked only in a child process.
function M.walk(root, found, opts)
  local threads = opts and opts.threads
  local seen, stack = {}, { root }
  local function push(v)
    local t = type(v)
    if (t == "table" or t == "function" or t == "userdata" or t == "string" or (threads and t == "thread"))
        and not seen[v] then
      seen[v] = true
      stack[#stack + 1] = v
    end
  end
  local n = 0
  while #stack > 0 do
    local v = table.remove(stack)
    n = n + 1
    local t = type(v)
    if t == "string" then
      found(v)
    elseif t == "table" then
      for k, x in next, v do push(k); push(x) end
      push(debug.getmetatable(v))
    elseif t == "function" then
      for i = 1, 255 do
        local name, x = debug.getupvalue(v, i)
        if name == nil then break end
        push(x)
      end
    elseif t == "userdata" then
      push(debug.getmetatable(v))
      for i = 1, 16 do
        local x, ok = debug.getuservalue(v, i)
        if not ok then break end
        push(x)
      end
    elseif t == "thread" then
      for level = 0, 200 do
        if not debug.getinfo(v, level, "l") then break end
        for i = 1, 255 do
          local name, x = debug.getlocal(v, level, i)
          if name == nil then break end
          push(x)
        end
      end
    end
  end
  return n
end

return M
