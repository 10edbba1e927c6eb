--- ferry.eth.delivery -- what a broadcast's answer means for the payment it carries.
---
--- Delivery. Once signed bytes may have reached a node, the payment is bound to their nonce
--- and hash. It ends mined, replaced by a fee bump of itself, or proven absent with its nonce
--- taken by another transaction; it is never signed again at another nonce. A broadcast ends
--- in one of four outcomes:
---  "sent"     the node has it (accepted, "already known", or found by its hash);
---  "unsure"   no answer settles it (a timeout, a cut reply, a 5xx after the request went
---             out), and its hash is not found: the bytes may still arrive. The caller gets
---             the tx all the same; tx:wait (and a tracker when nobody waits) sends the same
---             bytes again until it is mined or proven absent;
---  "taken"    its nonce is mined by another transaction and its hash is nowhere: nothing
---             was paid, and nothing will be. The caller gets nonce_too_low;
---  "refused"  every node that answered refused it (underpriced, insufficient funds, revert)
---             and no attempt can have been delivered: the nonce is free again.
--- A "nonce too low" is never taken at its word: the hash is looked up first (a cut reply to
--- the first copy makes its retry meet "nonce too low"), then the mined count must show the
--- nonce used.
local ferry = require "ferry"

local M = {}

-- Is a transaction with this hash known to the node (pending or mined)? -> true | false | nil
-- (nil: the lookup itself failed)
function M.known(chain, hash)
  local seen, err = chain:_call("eth_getTransactionByHash", { hash }, { fresh = true })
  if err then return nil end
  if seen then return true end
  local rc, rerr = chain:_call("eth_getTransactionReceipt", { hash }, { fresh = true })
  if rerr then return nil end
  return rc ~= nil
end

-- Broadcast tx.raw and settle what its answer means. -> outcome, err
function M.deliver(chain, tx)
  local r, err = chain:_call("eth_sendRawTransaction", { tx.raw })
  if err == nil or err.code == "already_known" then
    if r ~= nil and r ~= tx.hash then
      ferry.log.warn("node returned a different tx hash", { expected_hash = tx.hash, returned_hash = tostring(r) })
    end
    return "sent"
  end
  local maybe = err.maybe_sent       -- set by the pool: an attempt may have been delivered
  if not maybe and err.code ~= "nonce_too_low" then return "refused", err end
  local seen = M.known(chain, tx.hash)
  if seen then return "sent" end
  if err.code == "nonce_too_low" then
    local ok, mined = pcall(chain.nonce, chain, tx.from, "latest")
    if seen == false and ok and mined > tx.nonce then
      err.message = ("nonce %d of %s was taken by another transaction; this one (%s) was not sent and nothing was paid")
        :format(tx.nonce, tx.from, tx.hash)
      return "taken", err
    end
    -- the node's story does not hold (the nonce is not used, or we cannot tell): it may be ours
  end
  ferry.log.warn("broadcast not answered; the payment stays bound to its nonce and hash and is sent again until it is mined or proven absent",
    { hash = tx.hash, nonce = tx.nonce, from = tx.from, err = tostring(err) })
  return "unsure", err
end

return M
