#!/usr/bin/env node
// solana_ws_probe.js -- a WebSocket client for the Solana peer's subscriptions (ferry has no
// WebSocket client yet; the specs use this to check the peer's side).
//
//   node tests/peers/solana_ws_probe.js ws://127.0.0.1:PORT <account> <signature>
// Subscribes to slots, the account and the signature (confirmed), and prints one JSON line once
// it has seen 3 slot notifications, the signature's notification and one account change:
// {"slots":[...], "signature":{err}, "account":{lamports}}. Exits 1 after 20 s.
'use strict';
const WebSocket = require('ws');
const [url, account, signature] = process.argv.slice(2);
const ws = new WebSocket(url);
const got = { slots: [], signature: null, account: null };
const done = () => got.slots.length >= 3 && got.signature && got.account;
setTimeout(() => { console.log(JSON.stringify({ timeout: true, ...got })); process.exit(1); }, 20000).unref();
ws.on('open', () => {
  ws.send(JSON.stringify({ jsonrpc: '2.0', id: 1, method: 'slotSubscribe' }));
  ws.send(JSON.stringify({ jsonrpc: '2.0', id: 2, method: 'accountSubscribe', params: [account, { encoding: 'base64' }] }));
  ws.send(JSON.stringify({ jsonrpc: '2.0', id: 3, method: 'signatureSubscribe', params: [signature, { commitment: 'confirmed' }] }));
  ws.send(JSON.stringify({ jsonrpc: '2.0', id: 4, method: 'getSlot' }));
  console.log('subscribed');
});
ws.on('message', (data) => {
  const m = JSON.parse(String(data));
  if (m.method === 'slotNotification') got.slots.push(m.params.result.slot);
  if (m.method === 'signatureNotification') got.signature = m.params.result.value;
  if (m.method === 'accountNotification') got.account = { lamports: m.params.result.value && m.params.result.value.lamports };
  if (m.id === 4) got.get_slot = m.result;
  if (done()) { console.log(JSON.stringify(got)); ws.close(); process.exit(0); }
});
