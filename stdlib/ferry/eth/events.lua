--- ferry.eth.events -- what the send pipeline's steps report: one event per step of every
--- send, fee bump and gap fill, {id, step, outcome, at, dt, nonce, hash}. The journal (stores
--- journal (ferry.store.journal) keeps them with the send's row; eth.on_step(fn) listens.
local ferry = require "ferry"

local M = {}
local listeners = {}

--- on_step(fn) -> off(): fn(event) for every step of every send, fee bump and gap fill.
---@param fn fun(event: table) called with {id, step, outcome, at, dt, nonce, hash}
---@return function off removes the listener
function M.on_step(fn)
  if type(fn) ~= "function" then
    ferry.raise("invalid_argument", ("eth.on_step: expects a function, got %s"):format(type(fn)), { argument = "fn" })
  end
  listeners[fn] = true
  return function() listeners[fn] = nil end
end

--- emit(ctx, step, outcome, t0): the event of one step of ctx (a send's context), kept in
--- ctx.events and handed to every listener; a listener that fails is logged, never the send.
---@param ctx table the send's context
---@param step string
---@param outcome string
---@param t0 number when the step began (ferry.now())
function M.emit(ctx, step, outcome, t0)
  local ev = { id = ctx.id, step = step, outcome = outcome, at = t0, dt = ferry.now() - t0,
               nonce = ctx.nonce, hash = ctx.hash }
  ctx.events[#ctx.events + 1] = ev
  if ctx.journal then ctx.journal:event(ctx.id, ev) end
  for fn in pairs(listeners) do
    local ok, err = pcall(fn, ev)
    if not ok then ferry.log.warn("eth.on_step listener failed", { err = tostring(err) }) end
  end
end

return M
