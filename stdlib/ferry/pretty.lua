--- ferry.pretty -- readable, bounded rendering of Lua values for the REPL and logs.
--- Tables are printed with sorted keys up to a depth and an item limit; binary strings are
--- shown as hex; cycles are marked. pretty.render(v, {depth = 4, items = 50, indent = "  "}).
local M = {}

local KEYWORDS = {}
for w in ("and break do else elseif end false for function goto if in local nil not or repeat return then true until while"):gmatch("%a+") do
  KEYWORDS[w] = true
end

local function is_binary(s)
  return s:find("[^\t\n\r\032-\126\128-\255]") ~= nil
end

local function key_order(a, b)
  local ta, tb = type(a), type(b)
  if ta ~= tb then return ta == "number" end
  if ta == "number" or ta == "string" then return a < b end
  return tostring(a) < tostring(b)
end

local function render_string(s)
  if is_binary(s) then
    return ("<%d bytes 0x%s%s>"):format(#s, (s:sub(1, 64):gsub(".", function(c) return ("%02x"):format(c:byte()) end)),
      #s > 64 and "..." or "")
  end
  if #s > 2000 then s = s:sub(1, 2000) .. "...(" .. #s .. " bytes)" end
  return ("%q"):format(s):gsub("\\\n", "\\n")
end

local function render(v, depth, opts, seen, indent)
  local t = type(v)
  if t == "string" then return render_string(v) end
  if t ~= "table" then
    if t == "userdata" or t == "number" or t == "boolean" or t == "nil" then return tostring(v) end
    return "<" .. tostring(v) .. ">"
  end
  local mt = getmetatable(v)
  if mt and mt.__tostring and mt.__name ~= nil then return tostring(v) end
  if mt and mt.__tostring and not next(v) then return tostring(v) end
  if seen[v] then return "<cycle>" end
  if depth >= opts.depth then return "{...}" end
  seen[v] = true
  local keys, n = {}, #v
  for k in pairs(v) do
    if not (math.type(k) == "integer" and k >= 1 and k <= n) then keys[#keys + 1] = k end
  end
  table.sort(keys, key_order)
  local parts, count = {}, 0
  local inner = indent .. opts.indent
  for i = 1, n do
    count = count + 1
    if count > opts.items then parts[#parts + 1] = ("... %d more"):format(n - i + 1 + #keys); break end
    parts[#parts + 1] = render(v[i], depth + 1, opts, seen, inner)
  end
  if count <= opts.items then
    for _, k in ipairs(keys) do
      count = count + 1
      if count > opts.items then parts[#parts + 1] = ("... %d more"):format(#keys - (count - n) + 1); break end
      local ks = type(k) == "string" and k:match("^[%a_][%w_]*$") and not KEYWORDS[k] and k
        or ("[" .. render(k, opts.depth, opts, seen, inner) .. "]")
      parts[#parts + 1] = ks .. " = " .. render(v[k], depth + 1, opts, seen, inner)
    end
  end
  seen[v] = nil
  if #parts == 0 then return "{}" end
  local flat = "{ " .. table.concat(parts, ", ") .. " }"
  if #flat <= 80 and not flat:find("\n") then return flat end
  return "{\n" .. inner .. table.concat(parts, ",\n" .. inner) .. "\n" .. indent .. "}"
end

function M.render(v, opts)
  opts = opts or {}
  opts.depth = opts.depth or 4
  opts.items = opts.items or 50
  opts.indent = opts.indent or "  "
  return render(v, 0, opts, {}, "")
end

return M
