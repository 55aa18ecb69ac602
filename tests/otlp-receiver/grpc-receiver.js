// SPDX-License-Identifier: MIT
// A real OTLP/gRPC metrics receiver on loopback for rtm's tests: @grpc/grpc-js
// serving opentelemetry.proto.collector.metrics.v1.MetricsService/Export.
//
// Requests are decoded with the OpenTelemetry JS project's generated protobuf
// schema (as receiver.js does), never with rtm's own .proto files.
//
// usage: node grpc-receiver.js --out FILE [--script A,B,...] [--tls DIR [--mtls]]
// Prints "listening PORT" once ready.  Each request is appended to FILE as one
// JSON line: {seq, t, action, peer, encoding, timeout_ms, metadata, body}.  The
// script answers successive requests; after it runs out every answer is OK:
//   ok                       OK, empty response
//   partial=N                OK with partial_success rejecting N points
//   unavailable[:ri=MS]      UNAVAILABLE (with RetryInfo retry_delay MS)
//   exhausted[:ri=MS]        RESOURCE_EXHAUSTED (with RetryInfo)
//   invalid                  INVALID_ARGUMENT
//   drop                     the connection is closed without an answer
// --tls DIR serves TLS with DIR/server.crt and DIR/server.key; --mtls also
// requires a client certificate signed by DIR/ca.crt.
'use strict';

const fs = require('fs');
const path = require('path');
const grpc = require('@grpc/grpc-js');
const protobuf = require('protobufjs/minimal');
const { Request, Response, commandLine } = require('./common');

const { out, script, arg, has } = commandLine('grpc-receiver');
const tlsDir = arg('--tls');
const mtls = has('--mtls');
let seq = 0;

// google.rpc.Status{code, message, details: [Any{RetryInfo{retry_delay}}]},
// written field by field: the schemas are tiny and public.
function statusWithRetryInfo(code, message, ms) {
  const duration = protobuf.Writer.create()
    .uint32((1 << 3) | 0).int64(Math.floor(ms / 1000))
    .uint32((2 << 3) | 0).int32((ms % 1000) * 1e6).finish();
  const retryInfo = protobuf.Writer.create().uint32((1 << 3) | 2).bytes(duration).finish();
  const any = protobuf.Writer.create()
    .uint32((1 << 3) | 2).string('type.googleapis.com/google.rpc.RetryInfo')
    .uint32((2 << 3) | 2).bytes(retryInfo).finish();
  return protobuf.Writer.create()
    .uint32((1 << 3) | 0).int32(code)
    .uint32((2 << 3) | 2).string(message)
    .uint32((3 << 3) | 2).bytes(any).finish();
}

// The transport stream under a call, through grpc-js's interceptor chain.
function transport(call) {
  let c = call.call;
  while (c && !c.stream) c = c.nextCall;
  return c || {};
}

function exportHandler(call, callback) {
  const action = seq < script.length ? script[seq] : 'ok';
  const t = transport(call);
  const deadline = call.getDeadline();
  const rec = {
    seq: seq++, t: Date.now(), action, peer: call.getPeer(),
    encoding: t.incomingEncoding,
    timeout_ms: deadline instanceof Date ? deadline.getTime() - Date.now() :
      (deadline === Infinity ? null : deadline - Date.now()),
    metadata: {},
  };
  for (const [k, v] of Object.entries(call.metadata.getMap())) rec.metadata[k] = String(v);
  rec.body = Request.toObject(call.request, { longs: String, enums: Number, defaults: false, arrays: true });
  const [verb, opt] = action.split(':');
  const ri = opt && opt.startsWith('ri=') ? Number(opt.slice(3)) : null;
  fs.appendFileSync(out, JSON.stringify(rec) + '\n');
  if (verb === 'drop') {
    if (t.stream && t.stream.session) t.stream.session.destroy();
    return;
  }
  if (verb === 'ok') return callback(null, {});
  if (verb.startsWith('partial=')) {
    return callback(null, {
      partialSuccess: { rejectedDataPoints: Number(verb.slice(8)), errorMessage: 'test rejects some points' },
    });
  }
  const codes = { unavailable: grpc.status.UNAVAILABLE, exhausted: grpc.status.RESOURCE_EXHAUSTED,
    invalid: grpc.status.INVALID_ARGUMENT };
  const code = codes[verb];
  if (code === undefined) throw new Error('grpc-receiver: unknown action ' + action);
  const metadata = new grpc.Metadata();
  const message = 'scripted ' + verb + ' 100%';
  if (ri !== null) metadata.set('grpc-status-details-bin', Buffer.from(statusWithRetryInfo(code, message, ri)));
  return callback({ code, details: message, metadata });
}

const service = {
  Export: {
    path: '/opentelemetry.proto.collector.metrics.v1.MetricsService/Export',
    requestStream: false,
    responseStream: false,
    requestDeserialize: (buf) => Request.decode(buf),
    requestSerialize: (msg) => Buffer.from(Request.encode(msg).finish()),
    responseSerialize: (msg) => Buffer.from(Response.encode(Response.fromObject(msg)).finish()),
    responseDeserialize: (buf) => Response.decode(buf),
  },
};

const server = new grpc.Server();
server.addService(service, { Export: exportHandler });
let creds = grpc.ServerCredentials.createInsecure();
if (tlsDir) {
  creds = grpc.ServerCredentials.createSsl(
    mtls ? fs.readFileSync(path.join(tlsDir, 'ca.crt')) : null,
    [{ private_key: fs.readFileSync(path.join(tlsDir, 'server.key')),
      cert_chain: fs.readFileSync(path.join(tlsDir, 'server.crt')) }],
    mtls);
}
server.bindAsync('127.0.0.1:0', creds, (err, port) => {
  if (err) {
    console.error('grpc-receiver: ' + err.message);
    process.exit(1);
  }
  process.stdout.write('listening ' + port + '\n');
});
process.on('SIGTERM', () => server.tryShutdown(() => process.exit(0)));
