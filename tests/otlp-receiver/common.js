// SPDX-License-Identifier: MIT
// What both test receivers share: the OpenTelemetry JS project's schema for
// the metrics service's messages (never rtm's own .proto files), and the
// command line (--out FILE, --script A,B,...).
'use strict';

const root = require('@opentelemetry/otlp-transformer/build/src/generated/root');

const v1 = root.opentelemetry.proto.collector.metrics.v1;
const args = process.argv.slice(2);

function arg(name, def) {
  const i = args.indexOf(name);
  return i >= 0 ? args[i + 1] : def;
}

// The command line of the receiver called `who`: exits 2 without --out.
function commandLine(who) {
  const out = arg('--out');
  if (!out) {
    console.error(who + ': --out FILE is required');
    process.exit(2);
  }
  return {
    out,
    script: (arg('--script', '') || '').split(',').filter(Boolean),
    arg,
    has: (name) => args.includes(name),
  };
}

module.exports = {
  Request: v1.ExportMetricsServiceRequest,
  Response: v1.ExportMetricsServiceResponse,
  commandLine,
};
