#!/usr/bin/env node
// faultproxy.js -- a dependency-free HTTP (+WS pass-through) proxy in front of a JSON-RPC node
// (anvil) whose behaviour a test switches at runtime.
//
//   node tests/peers/faultproxy.js --target http://127.0.0.1:8545 [--port 0] [--host 127.0.0.1]
//
// stdout line 1: "listening on 127.0.0.1:NNNNN"  (the proxy port)
// stdout line 2: "admin on 127.0.0.1:MMMMM"      (admin only; stays up while the proxy refuses)
//
// Admin API, served on both ports (never faulted):
//   POST /__fault        {"mode": M, ...options}   -> {"ok":true,"fault":{...current fault...}}
//   GET  /__fault                                   -> {"ok":true,"fault":{...}}
//   GET  /__stats[?window_ms=1000]                  -> stats (see stats() below)
//   POST /__reset_stats                             -> {"ok":true}
// Each stdin line holding the same JSON as POST /__fault also sets the fault.
//
// Modes:  pass | refuse | hang | 429 {retry_after} | 500 {status} | garbage | truncated
//         | delay {ms} | stale_head {block} | wrong_chain {chain_id}
//         | wrong_id (forwards, then answers with other ids) | huge {bytes} (a JSON-RPC reply
//         whose result is a string that long) | deep {depth} (a reply nested that deep)
//         | reply {status = 200, result | error} (a lying provider: answers that, with the
//         request's id, without forwarding) | forward_then_reply (the same, after forwarding
//         the request to the node and dropping the node's answer)
// Options valid for every mode:
//   count: N            fault only the next N requests, then back to pass
//   for_ms: N           back to pass after N ms (the way to end `refuse` without the admin port)
//   methods: [..]       fault only requests containing one of these JSON-RPC methods; others pass
//   param: V            ... and only those with V among their params ("pending", say)
// `refuse` closes the listening socket and destroys open connections (clients get ECONNREFUSED /
// ECONNRESET); leaving it re-listens on the same port. Unknown mode -> HTTP 400.
'use strict';
const http = require('http');
const net = require('net');

const args = {};
for (let i = 2; i < process.argv.length; i += 2) args[process.argv[i].replace(/^--/, '')] = process.argv[i + 1];
if (!args.target) { console.error('usage: faultproxy.js --target http://HOST:PORT [--port 0] [--host 127.0.0.1]'); process.exit(2); }
const target = new URL(args.target);
const host = args.host || '127.0.0.1';
const MODES = ['pass', 'refuse', 'hang', '429', '500', 'garbage', 'truncated', 'delay', 'stale_head', 'wrong_chain',
               'wrong_id', 'huge', 'deep', 'reply', 'forward_then_reply',
               'ws_drop', 'ws_stall', 'ws_garbage', 'ws_binary', 'ws_huge', 'ws_close', 'ws_refuse', 'ws_flood'];
const agent = new http.Agent({ keepAlive: true, maxSockets: 256 });
const nowMs = () => performance.timeOrigin + performance.now();

let fault = { mode: 'pass' };
let faultTimer = null;
let stats;
function resetStats() {
  stats = { requests: 0, calls: 0, forwarded: 0, answered: 0, upstream_errors: 0, ws_connections: 0,
            by_mode: {}, methods: {}, arrivals_ms: [] };
}
resetStats();
const modeStats = (m) => (stats.by_mode[m] ||= { requests: 0, forwarded: 0, answered: 0 });

function setFault(f) {
  if (!f || !MODES.includes(String(f.mode))) throw new Error('unknown mode: ' + (f && f.mode));
  clearTimeout(faultTimer);
  const wasRefusing = fault.mode === 'refuse';
  fault = { ...f, mode: String(f.mode) };
  if (fault.for_ms > 0) faultTimer = setTimeout(() => setFault({ mode: 'pass' }), fault.for_ms);
  if (fault.mode.startsWith('ws_')) applyWsFault(fault);
  if (fault.mode === 'refuse' && !wasRefusing) stopListening();
  if (fault.mode !== 'refuse' && wasRefusing) startListening();
}

// ---- the proxy listener: closed and re-opened on the same port for `refuse` ----
const sockets = new Set();
const server = http.createServer(onRequest);
server.requestTimeout = 0;  // let `hang` hang for as long as the client waits
server.on('connection', (s) => { sockets.add(s); s.on('close', () => sockets.delete(s)); });
server.on('upgrade', onUpgrade);
let port = Number(args.port || 0);
function startListening(cb) { server.listen(port, host, cb); }
function stopListening() { server.close(); for (const s of sockets) s.destroy(); }

// ---- admin ----
function admin(req, res, body) {
  const url = new URL(req.url, 'http://x');
  const reply = (code, obj) => { res.writeHead(code, { 'content-type': 'application/json' }); res.end(JSON.stringify(obj)); };
  try {
    if (url.pathname === '/__fault' && req.method === 'POST') {
      const f = JSON.parse(body.toString() || '{}');
      if (!MODES.includes(String(f.mode))) return reply(400, { ok: false, error: 'unknown mode: ' + f.mode, modes: MODES });
      // answer first: with `refuse` this very connection is about to be destroyed
      res.on('finish', () => setFault(f));
      return reply(200, { ok: true, fault: { ...f, mode: String(f.mode) } });
    }
    if (url.pathname === '/__fault') return reply(200, { ok: true, fault });
    if (url.pathname === '/__stats') return reply(200, statsJson(Number(url.searchParams.get('window_ms')) || 1000));
    if (url.pathname === '/__reset_stats') { resetStats(); return reply(200, { ok: true }); }
    reply(404, { ok: false, error: 'no such admin path' });
  } catch (e) { reply(400, { ok: false, error: String(e.message || e) }); }
}

function statsJson(windowMs) {
  // max number of proxied requests that arrived within any window of windowMs (sliding)
  const a = stats.arrivals_ms; let max = 0;
  for (let i = 0, j = 0; i < a.length; i++) { while (a[i] - a[j] >= windowMs) j++; max = Math.max(max, i - j + 1); }
  return { mode: fault.mode, fault, ...stats, window_ms: windowMs, max_in_window: max };
}

// ---- JSON-RPC helpers ----
function parseCalls(body) {
  try { const j = JSON.parse(body.toString()); return Array.isArray(j) ? j : [j]; } catch { return []; }
}
// the `reply` modes' answer: f.result or f.error, with the request's id
function lie(f, calls) {
  const id = calls[0] ? calls[0].id : null;
  return JSON.stringify('error' in f ? { jsonrpc: '2.0', id, error: f.error } : { jsonrpc: '2.0', id, result: f.result ?? null });
}
function rewrite(buf, calls, method, value) {
  const ids = new Set(calls.filter((c) => c && c.method === method).map((c) => JSON.stringify(c.id)));
  if (!ids.size) return buf;
  let j; try { j = JSON.parse(buf.toString()); } catch { return buf; }
  for (const r of Array.isArray(j) ? j : [j]) if (r && ids.has(JSON.stringify(r.id)) && 'result' in r) r.result = value;
  return Buffer.from(JSON.stringify(j));
}

// ---- proxying ----
function onRequest(req, res) {
  const chunks = [];
  req.on('data', (c) => chunks.push(c));
  req.on('end', () => {
    const body = Buffer.concat(chunks);
    if (req.url.startsWith('/__')) return admin(req, res, body);
    const calls = parseCalls(body);
    stats.requests++; stats.calls += calls.length; stats.arrivals_ms.push(nowMs());
    for (const c of calls) if (c && c.method) stats.methods[c.method] = (stats.methods[c.method] || 0) + 1;

    let f = fault;
    if (f.methods && !calls.some((c) => c && f.methods.includes(c.method))) f = { mode: 'pass' };
    else if (f.param != null && !calls.some((c) => c && JSON.stringify(c.params || []).includes(JSON.stringify(f.param)))) f = { mode: 'pass' };
    else if (f.count > 0 && --fault.count === 0) setFault({ mode: 'pass' });  // this one is the last faulted
    const ms = modeStats(f.mode); ms.requests++;
    const answer = (code, headers, data) => {
      ms.answered++; stats.answered++;
      res.writeHead(code, { 'content-length': Buffer.byteLength(data), ...headers }); res.end(data);
    };
    const json = { 'content-type': 'application/json' };

    switch (f.mode) {
      case 'refuse': return req.socket.destroy();  // raced with the mode switch
      case 'hang': return;                          // never answer
      case '429': return answer(429, { ...json, ...(f.retry_after != null ? { 'retry-after': String(f.retry_after) } : {}) },
        JSON.stringify({ jsonrpc: '2.0', id: calls[0] ? calls[0].id : null, error: { code: 429, message: 'Too Many Requests' } }));
      case '500': return answer(Number(f.status) || 500, { 'content-type': 'text/plain' }, 'Internal Server Error\n');
      case 'garbage': return answer(200, json, '<html><body>502 Bad Gateway? not json</body></html>');
      case 'delay': return setTimeout(() => forward(f, req, body, calls, ms, answer), Number(f.ms) || 0);
      case 'reply': return answer(Number(f.status) || 200, json, lie(f, calls));
      case 'forward_then_reply': return forward(f, req, body, calls, ms, () => answer(Number(f.status) || 200, json, lie(f, calls)));
      case 'huge': {
        const n = Number(f.bytes) || 50 * 1024 * 1024;
        const id = JSON.stringify(calls[0] ? calls[0].id : 1);
        return answer(200, json, `{"jsonrpc":"2.0","id":${id},"result":"` + 'a'.repeat(n) + '"}');
      }
      case 'deep': {
        const d = Number(f.depth) || 100000;
        const id = JSON.stringify(calls[0] ? calls[0].id : 1);
        return answer(200, json, `{"jsonrpc":"2.0","id":${id},"result":` + '['.repeat(d) + ']'.repeat(d) + '}');
      }
      default: return forward(f, req, body, calls, ms, answer);
    }
  });
}

function forward(f, req, body, calls, ms, answer) {
  const headers = { ...req.headers, host: target.host, 'content-length': body.length };
  delete headers.connection;
  const up = http.request({ host: target.hostname, port: target.port, method: req.method, path: req.url, headers, agent }, (ur) => {
    const chunks = [];
    ur.on('data', (c) => chunks.push(c));
    ur.on('end', () => {
      let out = Buffer.concat(chunks);
      if (f.mode === 'truncated') out = out.subarray(0, Math.floor(out.length / 2));
      if (f.mode === 'wrong_id') {
        try {
          const j = JSON.parse(out.toString());
          for (const r of Array.isArray(j) ? j : [j]) if (r && typeof r.id === 'number') r.id += 1000;
          out = Buffer.from(JSON.stringify(j));
        } catch { /* not JSON: leave it */ }
      }
      if (f.mode === 'stale_head') out = rewrite(out, calls, 'eth_blockNumber', '0x' + BigInt(f.block ?? 1).toString(16));
      if (f.mode === 'wrong_chain') {
        const id = BigInt(f.chain_id ?? 1);
        out = rewrite(rewrite(out, calls, 'eth_chainId', '0x' + id.toString(16)), calls, 'net_version', id.toString());
      }
      answer(ur.statusCode, { 'content-type': ur.headers['content-type'] || 'application/json' }, out);
    });
  });
  ms.forwarded++; stats.forwarded++;
  up.on('error', (e) => { stats.upstream_errors++; answer(502, { 'content-type': 'text/plain' }, 'upstream error: ' + e.message + '\n'); });
  up.end(body);
}

// WebSocket (or any upgrade): raw TCP pipe to the target. `refuse` affects it, and the ws_*
// modes act on the open WebSocket connections (the server -> client direction):
//   ws_drop             destroy every open WS connection now (then back to pass)
//   ws_stall            stop forwarding both ways on open connections and hang new upgrades
//                       (until the mode changes; stalled connections stay silent for good)
//   ws_garbage | ws_binary | ws_huge {bytes} | ws_close {code}: send each open connection a
//                       text frame that is not JSON | a binary frame | a text frame that long |
//                       a close frame with that code (then back to pass)
//   ws_refuse           answer upgrades with HTTP 403 (until the mode changes)
//   ws_flood {subscription, count}: send each open connection `count` eth_subscription
//                       notifications for that subscription id, each a distinct tx hash
//                       (a node's newPendingTransactions at a rate no test node reaches)
// A frame is injected between the node's frames only when the connection is idle between
// them; tests inject while the node is quiet.
const wsConns = new Set();
function wsFrame(opcode, payload) {
  const n = payload.length;
  let h;
  if (n < 126) h = Buffer.from([0x80 | opcode, n]);
  else if (n < 65536) { h = Buffer.alloc(4); h[0] = 0x80 | opcode; h[1] = 126; h.writeUInt16BE(n, 2); }
  else { h = Buffer.alloc(10); h[0] = 0x80 | opcode; h[1] = 127; h.writeBigUInt64BE(BigInt(n), 2); }
  return Buffer.concat([h, payload]);
}
function applyWsFault(f) {
  stats.ws_faults = (stats.ws_faults || 0) + 1;
  for (const c of wsConns) {
    if (f.mode === 'ws_drop') { c.socket.destroy(); c.up.destroy(); }
    else if (f.mode === 'ws_stall') { c.socket.unpipe(c.up); c.up.unpipe(c.socket); c.up.pause(); c.socket.pause(); }
    else if (f.mode === 'ws_garbage') c.socket.write(wsFrame(1, Buffer.from('{"jsonrpc":"2.0", this is not json')));
    else if (f.mode === 'ws_binary') c.socket.write(wsFrame(2, Buffer.from([1, 2, 3, 4])));
    else if (f.mode === 'ws_huge') c.socket.write(wsFrame(1, Buffer.alloc(Number(f.bytes || 1 << 20), 'a')));
    else if (f.mode === 'ws_flood') {
      const chunks = [];
      for (let i = 0; i < Number(f.count || 1000); i++) {
        const hash = '0x' + i.toString(16).padStart(64, '0');
        chunks.push(wsFrame(1, Buffer.from(`{"jsonrpc":"2.0","method":"eth_subscription","params":{"subscription":"${f.subscription}","result":"${hash}"}}`)));
      }
      c.socket.write(Buffer.concat(chunks));
    }
    else if (f.mode === 'ws_close') { const b = Buffer.alloc(2); b.writeUInt16BE(Number(f.code || 1000)); c.socket.write(wsFrame(8, b)); }
  }
  if (!['ws_stall', 'ws_refuse'].includes(f.mode)) fault = { mode: 'pass' };
}
function onUpgrade(req, socket, head) {
  stats.ws_connections++;
  if (fault.mode === 'ws_refuse') { socket.end('HTTP/1.1 403 Forbidden\r\nContent-Length: 0\r\n\r\n'); return; }
  if (fault.mode === 'ws_stall') { socket.on('error', () => {}); return; }
  const up = net.connect(Number(target.port), target.hostname, () => {
    let h = `${req.method} ${req.url} HTTP/1.1\r\n`;
    for (let i = 0; i < req.rawHeaders.length; i += 2)
      h += `${req.rawHeaders[i]}: ${/^host$/i.test(req.rawHeaders[i]) ? target.host : req.rawHeaders[i + 1]}\r\n`;
    up.write(h + '\r\n'); up.write(head);
    socket.pipe(up).pipe(socket);
  });
  const c = { socket, up };
  wsConns.add(c);
  up.on('error', () => socket.destroy()); socket.on('error', () => up.destroy());
  socket.on('close', () => { wsConns.delete(c); up.destroy(); }); up.on('close', () => socket.destroy());
}

// ---- start ----
const adminServer = http.createServer((req, res) => {
  const chunks = []; req.on('data', (c) => chunks.push(c)); req.on('end', () => admin(req, res, Buffer.concat(chunks)));
});
startListening(() => {
  port = server.address().port;  // keep it for re-listening after `refuse`
  console.log(`listening on ${host}:${port}`);
  adminServer.listen(0, host, () => console.log(`admin on ${host}:${adminServer.address().port}`));
});
let stdinBuf = '';
process.stdin.on('data', (d) => {
  stdinBuf += d; let nl;
  while ((nl = stdinBuf.indexOf('\n')) >= 0) {
    const line = stdinBuf.slice(0, nl).trim(); stdinBuf = stdinBuf.slice(nl + 1);
    if (line) try { setFault(JSON.parse(line)); } catch (e) { console.error('faultproxy: ' + e.message); }
  }
});
process.stdin.on('error', () => {});
process.on('SIGTERM', () => process.exit(0));
