// SPDX-License-Identifier: MIT
// A real OTLP/HTTP metrics receiver on loopback for rtm's tests.
//
// Every request body is decoded with the OpenTelemetry JS project's generated
// protobuf schema (@opentelemetry/otlp-transformer's root.js, built from the
// upstream opentelemetry-proto files), never with rtm's own .proto, so the
// wire format is checked against the official definition.
//
// usage: node receiver.js --out FILE [--script A,B,...]
// Prints "listening PORT" once ready.  Each request is appended to FILE as
// one JSON line: {seq, t, path, headers, status, action, body}.  The script
// answers successive requests; after it runs out every answer is 200:
//   200 | 400 | 502 | 503 | 504    that status
//   429 | 429:ra=N | 429:date=N      429, optionally Retry-After: N seconds
//   503:ra=N | 503:date=N            (or an HTTP-date N seconds ahead)
//   partial=N                        200 with partial_success rejecting N points
//   drop                             close the connection without answering
'use strict';

const http = require('http');
const fs = require('fs');
const zlib = require('zlib');
const { Request, Response, commandLine } = require('./common');

const { out, script } = commandLine('receiver');
let seq = 0;

const isDefault = (v) => v === 0 || v === '0' || v === false || v === '' ||
  (Array.isArray(v) && v.length === 0);

// Every key we sent must survive a round trip through the official schema
// (an unknown or misspelt field would be dropped by fromObject), with the
// same value; keys the round trip omits must hold their default.
function sameAfterRoundTrip(sent, back, path) {
  if (Array.isArray(sent)) {
    if (!Array.isArray(back) || back.length !== sent.length) throw new Error(path + ': array differs');
    sent.forEach((v, i) => sameAfterRoundTrip(v, back[i], path + '[' + i + ']'));
  } else if (sent !== null && typeof sent === 'object') {
    for (const k of Object.keys(sent)) {
      if (!(k in (back || {}))) {
        if (!isDefault(sent[k])) throw new Error(path + '.' + k + ': not an OTLP field');
        continue;
      }
      sameAfterRoundTrip(sent[k], back[k], path + '.' + k);
    }
  } else if (String(sent) !== String(back)) {
    throw new Error(path + ': ' + JSON.stringify(sent) + ' became ' + JSON.stringify(back));
  }
}

function decode(req, raw) {
  let body = raw;
  if ((req.headers['content-encoding'] || '') === 'gzip') body = zlib.gunzipSync(raw);
  const type = req.headers['content-type'] || '';
  let msg;
  if (type.startsWith('application/json')) {
    const obj = JSON.parse(body.toString('utf8'));
    msg = Request.fromObject(obj);
    sameAfterRoundTrip(obj, Request.toObject(msg, { longs: String, enums: Number }), 'request');
  } else if (type.startsWith('application/x-protobuf')) {
    msg = Request.decode(body);
  } else {
    throw new Error('unexpected content-type ' + type);
  }
  return Request.toObject(msg, { longs: String, enums: Number, defaults: false, arrays: true });
}

const server = http.createServer((req, res) => {
  const chunks = [];
  req.on('data', (c) => chunks.push(c));
  req.on('end', () => {
    const action = seq < script.length ? script[seq] : '200';
    const rec = {
      seq: seq++, t: Date.now(), method: req.method, path: req.url, action,
      headers: {
        'content-type': req.headers['content-type'],
        'content-encoding': req.headers['content-encoding'],
        'user-agent': req.headers['user-agent'],
        'x-test': req.headers['x-test'],
      },
      bytes: 0,
    };
    const raw = Buffer.concat(chunks);
    rec.bytes = raw.length;
    try {
      rec.body = decode(req, raw);
    } catch (e) {
      rec.error = String(e && e.message || e);
    }
    let status = 200;
    const headers = { 'content-type': 'application/x-protobuf' };
    let payload = Response.encode({}).finish();
    const [verb, opt] = action.split(':');
    if (verb === 'drop') {
      rec.status = 0;
      fs.appendFileSync(out, JSON.stringify(rec) + '\n');
      req.socket.destroy();
      return;
    }
    if (verb.startsWith('partial=')) {
      payload = Response.encode({
        partialSuccess: { rejectedDataPoints: Number(verb.slice(8)), errorMessage: 'test rejects some points' },
      }).finish();
    } else {
      status = Number(verb);
    }
    if (opt && opt.startsWith('ra=')) headers['retry-after'] = opt.slice(3);
    if (opt && opt.startsWith('date=')) {
      headers['retry-after'] = new Date(Date.now() + 1000 * Number(opt.slice(5)) + 999).toUTCString();
    }
    if (status >= 300) payload = Buffer.from('scripted ' + status);
    rec.status = status;
    fs.appendFileSync(out, JSON.stringify(rec) + '\n');
    res.writeHead(status, headers);
    res.end(payload);
  });
});

server.listen(0, '127.0.0.1', () => {
  process.stdout.write('listening ' + server.address().port + '\n');
});
process.on('SIGTERM', () => server.close(() => process.exit(0)));
