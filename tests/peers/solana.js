#!/usr/bin/env node
// solana.js -- a Solana JSON-RPC peer for the specs: a thin adapter over litesvm 1.5.0 (real
// signature verification, real programs, real fees), with the parts litesvm lacks: a slot
// ticker, a blockhash ring with lastValidBlockHeight, statuses by commitment, fees from balance
// differences, Solana's error shapes, and fault methods.
//
//   node tests/peers/solana.js [--port 0] [--host 127.0.0.1] [--slot-ms 50] [--valid-blocks 150]
//
// stdout: "listening on 127.0.0.1:NNNNN" (again after each restart, same port).
//
// A supervisor (node:cluster primary) runs the server in one worker and forks a new one when it
// dies: litesvm aborts the whole process on some malformed messages (PEERS.md §5), which the
// worker screens with kit's message decoder first. A restart loses the ledger (a fresh litesvm);
// it prints "worker restarted (code N)".
//
// JSON-RPC: getLatestBlockhash, isBlockhashValid, getSlot, getBlockHeight, getBalance,
// getAccountInfo (base64), getMultipleAccounts, getMinimumBalanceForRentExemption, requestAirdrop,
// sendTransaction, simulateTransaction, getSignatureStatuses, getTransaction (meta only),
// getRecentPrioritizationFees, getFeeForMessage, getHealth, getVersion, getGenesisHash, getEpochInfo.
// Admin and faults (never on a real node):
//   peer_advanceSlots [n]            n slots now (each a new blockhash)
//   peer_expireBlockhashes []        every blockhash given so far expires now: the block height
//                                    jumps past their lastValidBlockHeight (valid-blocks + 1 slots)
//   peer_fault [{mode, count, slots}] mode: "drop" (sendTransaction answers the signature, the tx
//                                    never lands), "delay" (it lands `slots` later, if its blockhash
//                                    is still valid then), "429" (HTTP 429 to any request), "pass"
//                                    (clears all); count: how many requests it applies to (default
//                                    1). Faults of different modes stack (drop is served first).
//   peer_setPrioritizationFees [[micro_lamports, ...]]  what getRecentPrioritizationFees reports
//                                    (slot i gets list[i % n]; [] reports the landed prices again)
//   peer_stats []                    {sent, landed, dropped, delayed, rejected, expired_refused}
//   peer_setLookupTable [key, [addresses]]  writes an active address lookup table account
//   peer_crash []                    abort the worker as litesvm would (tests the supervisor)
// WebSocket on the same port: the JSON-RPC methods above, plus slotSubscribe (a notification
// each slot), signatureSubscribe [sig, {commitment}] (one notification once it reaches the
// commitment, default finalized), accountSubscribe [key, {commitment, encoding: base64}] (a
// notification after each slot in which its lamports or data changed), and their *Unsubscribe.
'use strict';
const cluster = require('node:cluster');
const http = require('node:http');
const fs = require('node:fs');
const path = require('node:path');

const args = {};
for (let i = 2; i < process.argv.length; i += 2) args[process.argv[i].replace(/^--/, '')] = process.argv[i + 1];
const HOST = args.host || '127.0.0.1';
const PORT = Number(args.port || 0);
const SLOT_MS = Number(args['slot-ms'] || 50);
const VALID_BLOCKS = Number(args['valid-blocks'] || 150); // a blockhash lives this many blocks
const FINALIZED_DEPTH = 32;                                 // slots until "finalized"

if (cluster.isPrimary) supervise();
else serve();

// The primary picks the port once (a worker that listened on 0 would get a new port after a
// restart: the primary drops the shared handle when its last worker dies).
function supervise() {
  if (PORT !== 0) return run(PORT);
  const probe = require('node:net').createServer();
  probe.listen(0, HOST, () => {
    const port = probe.address().port;
    probe.close(() => run(port));
  });
}

function run(port) {
  let stopping = false;
  const start = () => cluster.fork({ FERRY_SOL_PORT: String(port) }).on('exit', (code, signal) => {
    if (stopping) return;
    console.log(`worker restarted (code ${code}${signal ? ', ' + signal : ''})`);
    start();
  });
  const stop = () => {
    stopping = true;
    for (const w of Object.values(cluster.workers)) w.process.kill('SIGKILL');
    process.exit(0);
  };
  process.on('SIGTERM', stop);
  process.on('SIGINT', stop);
  start();
}

function serve() {
  const { LiteSVM } = require('litesvm');
  const kit = require('@solana/kit');
  const b58enc = kit.getBase58Encoder(), b58dec = kit.getBase58Decoder();
  const txDecoder = kit.getTransactionDecoder();
  const msgDecoder = kit.getCompiledTransactionMessageDecoder();
  const toB58 = (bytes) => b58dec.decode(bytes);
  const fromB58 = (s) => new Uint8Array(b58enc.encode(s));
  const { txErrors, ixErrors } = errorNames();

  const svm = new LiteSVM();
  const inner = svm.inner;
  inner.setBlockhashCheck(false); // the ring below decides, with lastValidBlockHeight
  inner.setTransactionHistory(0n); // statuses below decide AlreadyProcessed

  let slot = inner.getClock().slot;
  let height = 1n;
  const ring = new Map();      // blockhash -> lastValidBlockHeight
  const statuses = new Map();  // signature -> {slot, err, fee, cu, logs}
  const slotPrices = new Map(); // slot -> [micro-lamport prices of the txs that landed in it]
  let extraPrices = [];
  const delayed = [];          // {at_slot, bytes, tx}
  let faults = {};             // mode -> {count, slots}
  const takeFault = (mode) => {
    const f = faults[mode];
    if (!f || f.count <= 0) return null;
    f.count--;
    return f;
  };
  const stats = { sent: 0, landed: 0, failed_landed: 0, dropped: 0, delayed: 0, rejected: 0, expired_refused: 0 };

  const SYSTEM = '11111111111111111111111111111111';
  const COMPUTE_BUDGET = 'ComputeBudget111111111111111111111111111111';

  ring.set(inner.latestBlockhash(), height + BigInt(VALID_BLOCKS));

  function tick() {
    slot += 1n;
    height += 1n;
    inner.warpToSlot(slot);
    inner.expireBlockhash(); // a fresh litesvm blockhash: durable nonces advance to it
    ring.set(inner.latestBlockhash(), height + BigInt(VALID_BLOCKS));
    for (const [h, last] of ring) if (last < height) ring.delete(h);
    for (const [s] of slotPrices) if (s < slot - 150n) slotPrices.delete(s);
    notify();
    for (let i = delayed.length - 1; i >= 0; i--) {
      if (delayed[i].at_slot > slot) continue;
      const d = delayed.splice(i, 1)[0];
      if (lifetimeError(d.tx) === null && !statuses.has(d.sig)) execute(d.bytes, d.tx, d.sig);
    }
  }
  setInterval(tick, SLOT_MS).unref();

  const latest = () => [...ring.keys()].pop();

  // ---- transactions ---------------------------------------------------------------------------

  class RpcError extends Error {
    constructor(code, message, data) { super(message); this.code = code; this.data = data; }
  }

  // wire bytes -> {bytes, msg, sig, keys}; kit's decoders refuse what would crash litesvm
  function parseTx(b64) {
    let bytes, decoded, msg;
    try {
      bytes = new Uint8Array(Buffer.from(String(b64), 'base64'));
      decoded = txDecoder.decode(bytes);
      msg = msgDecoder.decode(decoded.messageBytes);
    } catch (e) {
      throw new RpcError(-32602, 'failed to deserialize solana_sdk::transaction::versioned::VersionedTransaction: ' + e.message);
    }
    const sigs = Object.values(decoded.signatures);
    if (bytes.length > 1232) throw new RpcError(-32602, `base64 encoded solana_sdk::transaction::versioned::VersionedTransaction too large: ${bytes.length} bytes (max: encoded/raw 1644/1232)`);
    if (sigs.length !== msg.header.numSignerAccounts || sigs.length === 0)
      throw new RpcError(-32602, 'invalid transaction: Transaction failed to sanitize accounts offsets correctly');
    return { bytes, msg, sig: toB58(sigs[0]), keys: msg.staticAccounts.map(String) };
  }

  // every account key the message touches: static keys, then what its lookup tables resolve to
  function allKeys(tx) {
    const keys = [...tx.keys];
    for (const l of tx.msg.addressTableLookups || []) {
      const acct = inner.getAccount(fromB58(String(l.lookupTableAddress)));
      if (!acct) continue;
      const data = acct.data();
      const at = (i) => toB58(data.subarray(56 + 32 * i, 88 + 32 * i));
      for (const i of l.writableIndexes || l.writableIndices || []) keys.push(at(i));
      for (const i of l.readonlyIndexes || l.readonlyIndices || []) keys.push(at(i));
    }
    return keys;
  }

  function isNonceAdvance(tx) {
    const ix = tx.msg.instructions[0];
    if (!ix || tx.keys[ix.programAddressIndex] !== SYSTEM || !ix.data) return false;
    const d = ix.data;
    return d.length === 4 && d[0] === 4 && d[1] === 0 && d[2] === 0 && d[3] === 0;
  }

  // null when the tx may land now; else the TransactionError a validator gives
  function lifetimeError(tx) {
    const hash = String(tx.msg.lifetimeToken);
    if (isNonceAdvance(tx)) {
      // a durable-nonce tx lives as long as its nonce account stores this value
      const nonceKey = tx.keys[tx.msg.instructions[0].accountIndices[0]];
      const acct = nonceKey && inner.getAccount(fromB58(nonceKey));
      if (!acct || acct.data().length < 72) return 'BlockhashNotFound';
      return toB58(acct.data().subarray(40, 72)) === hash ? null : 'BlockhashNotFound';
    }
    const last = ring.get(hash);
    return last !== undefined && last >= height ? null : 'BlockhashNotFound';
  }

  function errJson(e) {
    if (typeof e === 'number') return txErrors[e] || `TransactionError${e}`;
    if (e && typeof e.err === 'function') { // InstructionError
      const ie = e.err();
      let inner_ = typeof ie === 'number' ? ixErrors[ie] : ie;
      if (ie && typeof ie === 'object' && 'code' in ie) inner_ = { Custom: ie.code };
      else if (ie && typeof ie === 'object' && 'msg' in ie) inner_ = { BorshIoError: ie.msg };
      return { InstructionError: [e.index, inner_] };
    }
    if (e && 'accountIndex' in e) return { InsufficientFundsForRent: { account_index: e.accountIndex } };
    if (e && 'index' in e) return { DuplicateInstruction: e.index };
    return String(e);
  }

  const landsWithError = (e) => typeof e !== 'number'; // instruction errors are charged and recorded

  function errText(err) {
    if (err === 'BlockhashNotFound') return 'Blockhash not found';
    if (err === 'AlreadyProcessed') return 'This transaction has already been processed';
    if (err && err.InsufficientFundsForRent)
      return `Transaction results in an account (${err.InsufficientFundsForRent.account_index}) with insufficient funds for rent`;
    if (err && err.InstructionError) {
      const [i, e] = err.InstructionError;
      const what = e && e.Custom !== undefined ? `custom program error: 0x${e.Custom.toString(16)}` : JSON.stringify(e);
      return `Error processing Instruction ${i}: ${what}`;
    }
    return typeof err === 'string' ? err : JSON.stringify(err);
  }

  function priceOf(tx) {
    for (const ix of tx.msg.instructions) {
      const d = ix.data;
      if (tx.keys[ix.programAddressIndex] === COMPUTE_BUDGET && d && d.length === 9 && d[0] === 3)
        return Buffer.from(d).readBigUInt64LE(1);
    }
    return 0n;
  }

  function execute(bytes, tx, sig) {
    const keys = allKeys(tx);
    const balances = () => keys.reduce((s, k) => s + (inner.getBalance(fromB58(k)) || 0n), 0n);
    const before = balances();
    const res = inner.sendVersionedTransaction(bytes);
    const failed = typeof res.err === 'function';
    const meta = failed ? res.meta() : res;
    if (failed && !landsWithError(res.err())) return { err: errJson(res.err()), meta }; // never in a block
    const fee = before - balances(); // lamports are conserved among the accounts but for the fee
    const err = failed ? errJson(res.err()) : null;
    statuses.set(sig, { slot, err, fee, cu: meta.computeUnitsConsumed(), logs: meta.logs() });
    if (!slotPrices.has(slot)) slotPrices.set(slot, []);
    slotPrices.get(slot).push(priceOf(tx));
    stats.landed++;
    if (err) stats.failed_landed++;
    return { landed: true, err, meta };
  }

  function simulate(tx) {
    const res = inner.simulateVersionedTransaction(tx.bytes);
    const failed = typeof res.err === 'function';
    const meta = res.meta();
    return { err: failed ? errJson(res.err()) : null, logs: meta.logs(), unitsConsumed: Number(meta.computeUnitsConsumed()) };
  }

  function sendTransaction([b64, opts = {}]) {
    stats.sent++;
    const tx = parseTx(b64);
    const refuse = (err, extra = {}) => {
      stats.rejected++;
      throw new RpcError(-32002, 'Transaction simulation failed: ' + errText(err),
        { err, logs: [], unitsConsumed: 0, accounts: null, returnData: null, ...extra });
    };
    if (statuses.has(tx.sig)) refuse('AlreadyProcessed');
    const life = lifetimeError(tx);
    if (life) { stats.expired_refused++; refuse(life); }
    if (!opts.skipPreflight) {
      const sim = simulate(tx);
      if (sim.err) refuse(sim.err, { logs: sim.logs, unitsConsumed: sim.unitsConsumed });
    }
    if (takeFault('drop')) {
      stats.dropped++;
      return tx.sig;
    }
    const d = takeFault('delay');
    if (d) {
      stats.delayed++;
      delayed.push({ at_slot: slot + BigInt(d.slots || 5), bytes: tx.bytes, tx, sig: tx.sig });
      return tx.sig;
    }
    const r = execute(tx.bytes, tx, tx.sig);
    if (!r.landed) stats.rejected++; // skipPreflight: a node answers the signature and drops it
    return tx.sig;
  }

  function simulateTransaction([b64, opts = {}]) {
    const tx = parseTx(b64);
    const sim = simulate(tx);
    if (!sim.err && opts.sigVerify !== false) { /* litesvm verified the signatures */ }
    const life = opts.replaceRecentBlockhash ? null : lifetimeError(tx);
    return ctx({ err: life || sim.err, logs: sim.logs, unitsConsumed: sim.unitsConsumed, accounts: null, returnData: null,
                 replacementBlockhash: opts.replaceRecentBlockhash ? { blockhash: latest(), lastValidBlockHeight: Number(ring.get(latest())) } : null });
  }

  // ---- reads ----------------------------------------------------------------------------------

  const ctx = (value) => ({ context: { slot: Number(slot), apiVersion: '2.2.0' }, value });

  function commitmentOf(st) {
    if (slot - st.slot >= BigInt(FINALIZED_DEPTH)) return 'finalized';
    return slot > st.slot ? 'confirmed' : 'processed';
  }

  function statusJson(st) {
    const c = commitmentOf(st);
    return { slot: Number(st.slot), confirmations: c === 'finalized' ? null : Number(slot - st.slot),
             err: st.err, status: st.err ? { Err: st.err } : { Ok: null }, confirmationStatus: c };
  }

  function accountJson(key) {
    const a = inner.getAccount(fromB58(key));
    if (!a || (a.lamports() === 0n && a.data().length === 0)) return null;
    return { lamports: Number(a.lamports()), owner: toB58(a.owner()), executable: a.executable(),
             rentEpoch: Number.MAX_SAFE_INTEGER, space: a.data().length, data: [Buffer.from(a.data()).toString('base64'), 'base64'] };
  }

  const checkKey = (k) => {
    try { if (fromB58(String(k)).length === 32) return String(k); } catch (_) { /* refused below */ }
    throw new RpcError(-32602, `Invalid param: Invalid`);
  };

  const methods = {
    getHealth: () => 'ok',
    getVersion: () => ({ 'solana-core': '2.2.0', 'feature-set': 0, litesvm: '1.5.0' }),
    getGenesisHash: () => 'ferryLiteSvm1111111111111111111111111111111',
    getSlot: () => Number(slot),
    getBlockHeight: () => Number(height),
    getEpochInfo: () => ({ absoluteSlot: Number(slot), blockHeight: Number(height), epoch: 0, slotIndex: 0, slotsInEpoch: 432000 }),
    getLatestBlockhash: () => ctx({ blockhash: latest(), lastValidBlockHeight: Number(ring.get(latest())) }),
    isBlockhashValid: ([h]) => ctx(ring.has(String(h)) && ring.get(String(h)) >= height),
    getBalance: ([k]) => ctx(Number(inner.getBalance(fromB58(checkKey(k))) || 0n)),
    getAccountInfo: ([k]) => ctx(accountJson(checkKey(k))),
    getMultipleAccounts: ([ks]) => ctx((ks || []).map((k) => accountJson(checkKey(k)))),
    getMinimumBalanceForRentExemption: ([n]) => Number(inner.minimumBalanceForRentExemption(BigInt(n || 0))),
    getFeeForMessage: ([b64]) => {
      const m = msgDecoder.decode(new Uint8Array(Buffer.from(String(b64), 'base64')));
      return ctx(5000 * m.header.numSignerAccounts);
    },
    requestAirdrop: ([k, lamports]) => {
      const r = inner.airdrop(fromB58(checkKey(k)), BigInt(lamports));
      if (!r || typeof r.err === 'function') throw new RpcError(-32603, 'airdrop failed: ' + (r ? errText(errJson(r.err())) : 'no answer'));
      const sig = toB58(r.signature());
      statuses.set(sig, { slot, err: null, fee: 0n, cu: 0n, logs: [] });
      return sig;
    },
    sendTransaction,
    simulateTransaction,
    getSignatureStatuses: ([sigs]) => ctx((sigs || []).map((s) => statuses.has(s) ? statusJson(statuses.get(s)) : null)),
    getTransaction: ([s]) => {
      const st = statuses.get(String(s));
      if (!st) return null;
      return { slot: Number(st.slot), blockTime: null, meta: { err: st.err, fee: Number(st.fee), computeUnitsConsumed: Number(st.cu),
               logMessages: st.logs, status: st.err ? { Err: st.err } : { Ok: null } } };
    },
    getRecentPrioritizationFees: () => {
      const out = [];
      for (let s = slot - 149n; s <= slot; s++) {
        const prices = slotPrices.get(s) || [];
        let fee = prices.length ? prices.reduce((a, b) => (b < a ? b : a)) : 0n; // the block's lowest
        if (extraPrices.length) fee = BigInt(extraPrices[Number(s % BigInt(extraPrices.length))]);
        out.push({ slot: Number(s), prioritizationFee: Number(fee) });
      }
      return out;
    },
    peer_advanceSlots: ([n]) => { for (let i = 0; i < Number(n || 1); i++) tick(); return Number(slot); },
    peer_expireBlockhashes: () => { for (let i = 0; i <= VALID_BLOCKS; i++) tick(); return latest(); },
    peer_fault: ([f]) => {
      const mode = String(f.mode || 'pass');
      if (mode === 'pass') faults = {};
      else faults[mode] = { count: Number(f.count ?? 1), slots: Number(f.slots || 5) };
      return faults;
    },
    peer_setPrioritizationFees: ([prices]) => { extraPrices = prices || []; return extraPrices.length; },
    peer_stats: () => ({ ...stats, slot: Number(slot), height: Number(height), pending_delayed: delayed.length }),
    peer_setLookupTable: ([key, addresses]) => {
      // LookupTableMeta: type 1, deactivation slot u64::MAX (active), last extended slot 0,
      // start index 0, an authority, padding; then the addresses
      const meta = Buffer.alloc(56);
      meta.writeUInt32LE(1, 0);
      meta.writeBigUInt64LE(0xffffffffffffffffn, 4);
      meta[21] = 1;
      const data = Buffer.concat([meta, ...(addresses || []).map((a) => Buffer.from(fromB58(checkKey(a))))]);
      const { Account } = require('litesvm/dist/internal');
      inner.setAccount(fromB58(checkKey(key)), new Account(inner.minimumBalanceForRentExemption(BigInt(data.length)),
        new Uint8Array(data), fromB58('AddressLookupTab1e1111111111111111111111111'), false, 0n));
      return data.length;
    },
    peer_crash: () => { setImmediate(() => process.abort()); return true; },
  };

  // ---- WebSocket subscriptions ---------------------------------------------------------------
  const subs = new Map(); // id -> {ws, kind, key, commitment, last}
  let nextSub = 1;
  const send = (ws, obj) => { if (ws.readyState === 1) ws.send(JSON.stringify(obj, (_, v) => (typeof v === 'bigint' ? Number(v) : v))); };
  const RANK = { processed: 1, confirmed: 2, finalized: 3 };
  const accountFingerprint = (key) => {
    const a = inner.getAccount(fromB58(key));
    return a ? `${a.lamports()}:${Buffer.from(a.data()).toString('base64')}` : 'none';
  };

  function notify() {
    for (const [id, sub] of subs) {
      if (sub.ws.readyState !== 1) { subs.delete(id); continue; }
      if (sub.kind === 'slot') {
        send(sub.ws, { jsonrpc: '2.0', method: 'slotNotification', params: { subscription: id,
          result: { slot: Number(slot), parent: Number(slot - 1n), root: Number(slot - BigInt(FINALIZED_DEPTH)) } } });
      } else if (sub.kind === 'signature') {
        const st = statuses.get(sub.key);
        if (st && RANK[commitmentOf(st)] >= RANK[sub.commitment]) {
          send(sub.ws, { jsonrpc: '2.0', method: 'signatureNotification', params: { subscription: id,
            result: { context: { slot: Number(slot) }, value: { err: st.err } } } });
          subs.delete(id); // one shot, as on a validator
        }
      } else if (sub.kind === 'account') {
        const fp = accountFingerprint(sub.key);
        if (fp !== sub.last) {
          sub.last = fp;
          send(sub.ws, { jsonrpc: '2.0', method: 'accountNotification', params: { subscription: id,
            result: ctx(accountJson(sub.key)) } });
        }
      }
    }
  }

  function subscribe(ws, req) {
    const p = Array.isArray(req.params) ? req.params : [];
    const m = req.method;
    if (m === 'slotSubscribe') { subs.set(nextSub, { ws, kind: 'slot' }); return nextSub++; }
    if (m === 'signatureSubscribe') {
      subs.set(nextSub, { ws, kind: 'signature', key: String(p[0]), commitment: (p[1] && p[1].commitment) || 'finalized' });
      return nextSub++;
    }
    if (m === 'accountSubscribe') {
      const key = checkKey(p[0]);
      subs.set(nextSub, { ws, kind: 'account', key, last: accountFingerprint(key) });
      return nextSub++;
    }
    if (/Unsubscribe$/.test(m)) return subs.delete(Number(p[0]));
    return undefined;
  }

  function handle(req) {
    const id = req && req.id !== undefined ? req.id : null;
    if (!req || req.jsonrpc !== '2.0' || typeof req.method !== 'string')
      return { jsonrpc: '2.0', id, error: { code: -32600, message: 'Invalid request' } };
    const fn = methods[req.method];
    if (!fn) return { jsonrpc: '2.0', id, error: { code: -32601, message: 'Method not found' } };
    try {
      const params = req.params === undefined ? [] : req.params;
      if (!Array.isArray(params)) throw new RpcError(-32602, 'Invalid params: expected an array');
      return { jsonrpc: '2.0', id, result: fn(params) };
    } catch (e) {
      if (e instanceof RpcError) return { jsonrpc: '2.0', id, error: { code: e.code, message: e.message, ...(e.data ? { data: e.data } : {}) } };
      return { jsonrpc: '2.0', id, error: { code: -32602, message: 'Invalid params: ' + e.message } };
    }
  }

  const server = http.createServer((req, res) => {
    const chunks = [];
    req.on('data', (c) => chunks.push(c));
    req.on('end', () => {
      if (takeFault('429')) {
        res.writeHead(429, { 'Content-Type': 'application/json', 'Retry-After': '1' });
        return res.end('{"jsonrpc":"2.0","id":null,"error":{"code":429,"message":"Too many requests"}}');
      }
      let body;
      try { body = JSON.parse(Buffer.concat(chunks).toString('utf8')); } catch (_) {
        res.writeHead(200, { 'Content-Type': 'application/json' });
        return res.end('{"jsonrpc":"2.0","error":{"code":-32700,"message":"Parse error"},"id":null}');
      }
      const out = Array.isArray(body) ? body.map(handle) : handle(body);
      res.writeHead(200, { 'Content-Type': 'application/json' });
      res.end(JSON.stringify(out, (_, v) => (typeof v === 'bigint' ? Number(v) : v)));
    });
  });
  server.keepAliveTimeout = 30000;
  const { WebSocketServer } = require('ws');
  const wss = new WebSocketServer({ server });
  wss.on('connection', (ws) => {
    ws.on('message', (data) => {
      let req;
      try { req = JSON.parse(String(data)); } catch (_) {
        return send(ws, { jsonrpc: '2.0', id: null, error: { code: -32700, message: 'Parse error' } });
      }
      let result;
      try { result = req && typeof req.method === 'string' ? subscribe(ws, req) : undefined; } catch (e) {
        return send(ws, { jsonrpc: '2.0', id: req.id, error: { code: e.code || -32602, message: e.message } });
      }
      send(ws, result !== undefined ? { jsonrpc: '2.0', id: req.id, result } : handle(req));
    });
    ws.on('close', () => { for (const [id, sub] of subs) if (sub.ws === ws) subs.delete(id); });
  });
  server.listen(Number(process.env.FERRY_SOL_PORT || PORT), HOST, () => console.log(`listening on ${HOST}:${server.address().port}`));
}

// TransactionError and InstructionError names by number, read from litesvm's own typings
// (they are const enums: nothing exists at runtime to ask)
function errorNames() {
  const dts = fs.readFileSync(path.join(path.dirname(require.resolve('litesvm')), 'internal.d.ts'), 'utf8');
  const enumOf = (name) => {
    const body = dts.match(new RegExp(`const enum ${name} \\{([^}]*)\\}`))[1];
    const out = {};
    for (const m of body.matchAll(/(\w+) = (\d+)/g)) out[Number(m[2])] = m[1];
    return out;
  };
  return { txErrors: enumOf('TransactionErrorFieldless'), ixErrors: enumOf('InstructionErrorFieldless') };
}
