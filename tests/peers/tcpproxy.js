#!/usr/bin/env node
// tcpproxy.js -- a byte-for-byte TCP proxy whose link a test can cut: a network partition
// between one client and its server (Redis, say) while others still reach the server.
//
//   node tests/peers/tcpproxy.js --target 127.0.0.1:6379
//
// stdout line 1: "listening on 127.0.0.1:NNNNN"
// stdout line 2: "admin on 127.0.0.1:MMMMM"    (HTTP: POST /pass, /hang or /reset)
// The modes:
//   pass      forward both ways (the start); bytes held while hung are delivered now
//   hang      keep every connection open and accept new ones, but forward nothing (a
//             partition: the client's requests wait, as if the server were silent)
//   reset     destroy every connection (clients see ECONNRESET), then pass
'use strict';
const http = require('http');
const net = require('net');

const args = {};
for (let i = 2; i < process.argv.length; i += 2) args[process.argv[i].replace(/^--/, '')] = process.argv[i + 1];
if (!args.target) { console.error('usage: tcpproxy.js --target HOST:PORT'); process.exit(2); }
const [thost, tport] = args.target.split(':');
let mode = 'pass';
const links = new Set();

function link(client) {
  const server = net.connect(Number(tport), thost);
  const l = { client, server, held: [] };
  links.add(l);
  // while hung, what either side sends waits here, in order, with the side it goes to
  const relay = (to) => (chunk) => { if (mode === 'hang') l.held.push([to, chunk]); else to.write(chunk); };
  client.on('data', relay(server));
  server.on('data', relay(client));
  const end = () => { links.delete(l); client.destroy(); server.destroy(); };
  client.on('error', end); server.on('error', end); client.on('close', end); server.on('close', end);
}

const srv = net.createServer(link);
srv.listen(Number(args.port || 0), '127.0.0.1', () => console.log(`listening on 127.0.0.1:${srv.address().port}`));

function set(m) {
  if (m === 'pass') {
    mode = 'pass';
    for (const l of links) { for (const [to, chunk] of l.held) to.write(chunk); l.held = []; }
  } else if (m === 'hang') {
    mode = 'hang';
  } else if (m === 'reset') {
    for (const l of links) { l.client.destroy(); l.server.destroy(); }
    links.clear();
    mode = 'pass';
  } else {
    return false;
  }
  return true;
}

const admin = http.createServer((req, res) => {
  const ok = req.method === 'POST' && set(req.url.slice(1));
  res.writeHead(ok ? 200 : 400, { 'Content-Type': 'text/plain' });
  res.end(ok ? `ok ${mode}` : 'POST /pass | /hang | /reset');
});
srv.on('listening', () => admin.listen(0, '127.0.0.1', () => console.log(`admin on 127.0.0.1:${admin.address().port}`)));
