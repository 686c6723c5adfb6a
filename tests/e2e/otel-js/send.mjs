// Sends a small, fully known trace and/or a few log records to an OTLP receiver with the official
// OpenTelemetry JS SDK and its real exporters, then prints on stdout, as one JSON object,
// everything a test must find at the receiving end (ids, parents, names, kinds, times in ns,
// typed attributes, log bodies...).
//
// Usage:
//   node send.mjs --transport grpc|proto|http
//                 [--traces-endpoint URL] [--logs-endpoint URL] [--spec JSON]
// Endpoints are used as given: gRPC "http://127.0.0.1:4317"; HTTP (proto or JSON)
// "http://127.0.0.1:4318/v1/traces" and ".../v1/logs". The signals sent are those given an
// endpoint (at least one). The spec (--spec, else the environment variable MESHTEL_OTEL_SPEC) is
// a JSON object, every field optional:
//   service_name ("checkout"), service_namespace ("shop"), k8s_namespace ("shop-prod"),
//   run ("" : added as the attribute test.run to every span and log record when not empty),
//   start_unix_nano (a decimal string; default: now minus 60 s, in whole ms, + 123456 ns),
//   compression ("none" | "gzip"; default "none"), headers ({name: value}), timeout_ms (10000).
// Output (stdout): {"transport", "resource": {key: typed}, "scope": {name, version},
//   "spans": [{trace_id, span_id, parent_span_id, name, kind, start_unix_nano, end_unix_nano,
//              trace_flags, status, status_message, attributes: {key: typed}}],   (root first)
//   "logs": [{time_unix_nano, observed_time_unix_nano, severity_number, severity_text,
//             body: typed, attributes: {key: typed}, trace_id, span_id, trace_flags}],
//   "exports": [{signal, items, code, error}], "partial_successes": [text], "ok"}
// where typed is {"type": "string"|"int"|"double"|"bool"|"string_array"|"kvlist", "value": ...}
// (int values and all times as decimal strings: they exceed JSON's exact integers).
// Spans and logs are listed even for a signal that was not sent (logs need the spans' ids).
// Exit status: 0 when every export of every requested signal succeeded and carried all items;
// 1 when one failed or was answered with a partial success (the reasons on stderr and in
// "exports" / "partial_successes"); 2 on bad usage.
//
// OTEL_* environment variables are removed first: the exporters would otherwise read them.

import { context, diag, DiagConsoleLogger, DiagLogLevel, SpanKind, SpanStatusCode, trace, TraceFlags } from '@opentelemetry/api';
import { SeverityNumber } from '@opentelemetry/api-logs';
import { ExportResultCode } from '@opentelemetry/core';
import { resourceFromAttributes } from '@opentelemetry/resources';
import { BasicTracerProvider, BatchSpanProcessor } from '@opentelemetry/sdk-trace-base';
import { BatchLogRecordProcessor, LoggerProvider } from '@opentelemetry/sdk-logs';
import { ATTR_SERVICE_NAME } from '@opentelemetry/semantic-conventions';
import { OTLPTraceExporter as GrpcTraceExporter } from '@opentelemetry/exporter-trace-otlp-grpc';
import { OTLPTraceExporter as ProtoTraceExporter } from '@opentelemetry/exporter-trace-otlp-proto';
import { OTLPTraceExporter as JsonTraceExporter } from '@opentelemetry/exporter-trace-otlp-http';
import { OTLPLogExporter as GrpcLogExporter } from '@opentelemetry/exporter-logs-otlp-grpc';
import { OTLPLogExporter as ProtoLogExporter } from '@opentelemetry/exporter-logs-otlp-proto';
import { OTLPLogExporter as JsonLogExporter } from '@opentelemetry/exporter-logs-otlp-http';

for (const name of Object.keys(process.env)) {
  if (name.startsWith('OTEL_')) delete process.env[name];
}
// Warnings and errors of the SDK (failed exports among them) go to stderr; stdout stays JSON.
// A partial success (items the receiver rejected) is only a warning to the SDK, whose export
// result is SUCCESS: it is recorded here and fails the run like a failed export.
const partialSuccesses = [];
const consoleLogger = new DiagConsoleLogger();
diag.setLogger(
  {
    ...Object.fromEntries(
      ['error', 'info', 'debug', 'verbose'].map((level) => [level, (...a) => consoleLogger[level](...a)]),
    ),
    warn: (message, ...rest) => {
      if (String(message).startsWith('Received Partial Success response')) {
        partialSuccesses.push(rest.map(String).join(' '));
      }
      consoleLogger.warn(message, ...rest);
    },
  },
  DiagLogLevel.WARN,
);

function usage(message) {
  process.stderr.write(`send.mjs: ${message}\n`);
  process.exit(2);
}

function parseArgs(argv) {
  const args = {};
  for (let i = 0; i < argv.length; i += 2) {
    const flag = argv[i];
    const value = argv[i + 1];
    if (!flag.startsWith('--') || value === undefined) usage(`bad argument ${flag}`);
    args[flag.slice(2)] = value;
  }
  return args;
}

const args = parseArgs(process.argv.slice(2));
const transport = args.transport;
if (!['grpc', 'proto', 'http'].includes(transport)) usage('--transport must be grpc, proto or http');
const tracesEndpoint = args['traces-endpoint'];
const logsEndpoint = args['logs-endpoint'];
if (!tracesEndpoint && !logsEndpoint) usage('give --traces-endpoint and/or --logs-endpoint');
let spec = {};
try {
  spec = JSON.parse(args.spec ?? process.env.MESHTEL_OTEL_SPEC ?? '{}');
} catch (error) {
  usage(`the spec is not JSON: ${error.message}`);
}

const serviceName = spec.service_name ?? 'checkout';
const serviceNamespace = spec.service_namespace ?? 'shop';
const k8sNamespace = spec.k8s_namespace ?? 'shop-prod';
const run = spec.run ?? '';
const compression = spec.compression ?? 'none';
const headers = spec.headers ?? {};
const timeoutMillis = spec.timeout_ms ?? 10000;
const base =
  spec.start_unix_nano !== undefined
    ? BigInt(spec.start_unix_nano)
    : BigInt(Date.now() - 60000) * 1000000n + 123456n;

const NS_PER_MS = 1000000n;
// An HrTime ([seconds, nanoseconds]) keeps every nanosecond; a number of ms would not.
function hrTime(ns) {
  return [Number(ns / 1000000000n), Number(ns % 1000000000n)];
}

// Attribute values are given typed so that the output says what the receiver must decode.
// The JS SDK sends an integral number as intValue and any other number as doubleValue: doubles
// here are never integral.
const int = (value) => ({ type: 'int', value: BigInt(value) });
const dbl = (value) => ({ type: 'double', value });
const str = (value) => ({ type: 'string', value });
const bool = (value) => ({ type: 'bool', value });
const strs = (value) => ({ type: 'string_array', value });
const kvlist = (value) => ({ type: 'kvlist', value });

function sdkValue(typed) {
  switch (typed.type) {
    case 'int':
      return Number(typed.value);
    case 'kvlist':
      return Object.fromEntries(Object.entries(typed.value).map(([k, v]) => [k, sdkValue(v)]));
    default:
      return typed.value;
  }
}
function sdkAttributes(typedMap) {
  return Object.fromEntries(Object.entries(typedMap).map(([k, v]) => [k, sdkValue(v)]));
}
function jsonValue(typed) {
  switch (typed.type) {
    case 'int':
      return { type: 'int', value: typed.value.toString() };
    case 'kvlist':
      return {
        type: 'kvlist',
        value: Object.fromEntries(Object.entries(typed.value).map(([k, v]) => [k, jsonValue(v)])),
      };
    default:
      return typed;
  }
}
function jsonAttributes(typedMap) {
  return Object.fromEntries(Object.entries(typedMap).map(([k, v]) => [k, jsonValue(v)]));
}
const withRun = (typedMap) => (run === '' ? typedMap : { ...typedMap, 'test.run': str(run) });

const resourceAttributes = {
  [ATTR_SERVICE_NAME]: str(serviceName),
  'service.namespace': str(serviceNamespace),
  'k8s.namespace.name': str(k8sNamespace),
  'deployment.environment.name': str('e2e'),
};
const resource = resourceFromAttributes(sdkAttributes(resourceAttributes));
const scope = { name: 'meshtel.e2e.otel-js', version: '1.2.3' };

// The spans, root first. Times are offsets from `base` in ns with sub-ms digits.
const spanPlan = [
  {
    name: 'GET /checkout',
    kind: SpanKind.SERVER,
    kindName: 'server',
    start: 0n,
    end: 250n * NS_PER_MS + 789n,
    status: { code: SpanStatusCode.UNSET },
    attributes: withRun({
      'http.request.method': str('GET'),
      'url.path': str('/checkout'),
      'http.response.status_code': int(200),
      'meshtel.test.big_int': int(1234567890123),
      'meshtel.test.ratio': dbl(0.75),
      'meshtel.test.cached': bool(true),
      'meshtel.test.tags': strs(['blue', 'green', 'red']),
    }),
  },
  {
    name: 'POST cart.Cart/Add',
    kind: SpanKind.CLIENT,
    kindName: 'client',
    parent: 0,
    start: 10n * NS_PER_MS + 1n,
    end: 200n * NS_PER_MS + 2n,
    status: { code: SpanStatusCode.ERROR, message: 'upstream reset before headers' },
    attributes: withRun({
      'server.address': str('cart.shop.svc.cluster.local'),
      'server.port': int(8080),
      'meshtel.test.retries': int(-3),
      'meshtel.test.latency_ratio': dbl(-12.5),
      'meshtel.test.retried': bool(false),
      'meshtel.test.routes': strs(['/cart/add', '']),
    }),
  },
  {
    name: 'serialize cart',
    kind: SpanKind.INTERNAL,
    kindName: 'internal',
    parent: 1,
    start: 20n * NS_PER_MS + 3n,
    end: 30n * NS_PER_MS + 4n,
    status: { code: SpanStatusCode.OK },
    attributes: withRun({
      'meshtel.test.items': int(0),
      'meshtel.test.share': dbl(0.125),
      'meshtel.test.compressed': bool(true),
      'meshtel.test.formats': strs(['json']),
      'meshtel.test.unicode': str('größe ✓'),
    }),
  },
];

// Wraps a real exporter to record what each export returned: the SDK's processors only log a
// failure, this makes it the exit status.
const exports = [];
function recording(signal, exporter) {
  return {
    export(items, resultCallback) {
      exporter.export(items, (result) => {
        exports.push({
          signal,
          items: items.length,
          code: result.code === ExportResultCode.SUCCESS ? 'SUCCESS' : 'FAILED',
          error: result.error ? String(result.error.message ?? result.error) : '',
        });
        resultCallback(result);
      });
    },
    shutdown: () => exporter.shutdown(),
    forceFlush: () => (exporter.forceFlush ? exporter.forceFlush() : Promise.resolve()),
  };
}

function exporterConfig(url) {
  const config = { url, timeoutMillis, compression };
  if (transport === 'grpc') {
    // The gRPC exporters take metadata, not headers.
    return config;
  }
  return { ...config, headers };
}

function traceExporter() {
  const config = exporterConfig(tracesEndpoint);
  if (transport === 'grpc') return new GrpcTraceExporter(config);
  if (transport === 'proto') return new ProtoTraceExporter(config);
  return new JsonTraceExporter(config);
}
function logExporter() {
  const config = exporterConfig(logsEndpoint);
  if (transport === 'grpc') return new GrpcLogExporter(config);
  if (transport === 'proto') return new ProtoLogExporter(config);
  return new JsonLogExporter(config);
}

// One batch for everything: the whole trace in one export request, the logs in another.
const batch = { maxExportBatchSize: 512, scheduledDelayMillis: 60000, exportTimeoutMillis: timeoutMillis };

const tracerProvider = new BasicTracerProvider({
  resource,
  spanProcessors: tracesEndpoint
    ? [new BatchSpanProcessor(recording('traces', traceExporter()), batch)]
    : [],
});
const tracer = tracerProvider.getTracer(scope.name, scope.version);

const spans = [];
const spanOut = [];
for (const plan of spanPlan) {
  const parentContext =
    plan.parent === undefined ? context.active() : trace.setSpan(context.active(), spans[plan.parent]);
  const span = tracer.startSpan(
    plan.name,
    { kind: plan.kind, startTime: hrTime(base + plan.start), attributes: sdkAttributes(plan.attributes) },
    parentContext,
  );
  spans.push(span);
  const ctx = span.spanContext();
  spanOut.push({
    trace_id: ctx.traceId,
    span_id: ctx.spanId,
    parent_span_id: plan.parent === undefined ? '' : spans[plan.parent].spanContext().spanId,
    name: plan.name,
    kind: plan.kindName,
    start_unix_nano: (base + plan.start).toString(),
    end_unix_nano: (base + plan.end).toString(),
    trace_flags: ctx.traceFlags,
    status: plan.status.code === SpanStatusCode.ERROR ? 'ERROR' : plan.status.code === SpanStatusCode.OK ? 'OK' : '',
    status_message: plan.status.message ?? '',
    attributes: jsonAttributes(plan.attributes),
  });
}
// End the children first, as an application would.
for (let i = spanPlan.length - 1; i >= 0; i--) {
  spans[i].setStatus(spanPlan[i].status);
  spans[i].end(hrTime(base + spanPlan[i].end));
}

// The log records: two inside the CLIENT span, one outside any trace.
const client = spans[1].spanContext();
const logPlan = [
  {
    time: 15n * NS_PER_MS + 5n,
    observed: 15n * NS_PER_MS + 6n,
    severity: SeverityNumber.INFO,
    severityText: 'INFO',
    body: str('cart updated: 3 items'),
    attributes: withRun({
      'code.function.name': str('addToCart'),
      'meshtel.test.items': int(3),
      'meshtel.test.ok': bool(true),
    }),
    span: client,
  },
  {
    time: 199n * NS_PER_MS + 7n,
    observed: 199n * NS_PER_MS + 8n,
    severity: SeverityNumber.ERROR,
    severityText: 'ERROR',
    body: kvlist({
      event: str('cart.add.failed'),
      attempt: int(2),
      amount: dbl(12.5),
      retryable: bool(false),
      codes: strs(['E_RESET', 'E_UPSTREAM']),
    }),
    attributes: withRun({
      'error.type': str('upstream_reset'),
      'meshtel.test.latency_ms': dbl(189.5),
    }),
    span: client,
  },
  {
    time: 300n * NS_PER_MS + 9n,
    observed: 300n * NS_PER_MS + 10n,
    severity: SeverityNumber.WARN,
    severityText: 'WARN',
    body: str('cache nearly full'),
    attributes: withRun({ 'meshtel.test.fill': dbl(0.875) }),
    span: undefined,
  },
];

let loggerProvider;
const logOut = [];
if (logsEndpoint) {
  loggerProvider = new LoggerProvider({
    resource,
    processors: [new BatchLogRecordProcessor({ exporter: recording('logs', logExporter()), ...batch })],
  });
  const logger = loggerProvider.getLogger(scope.name, scope.version);
  for (const plan of logPlan) {
    const record = {
      timestamp: hrTime(base + plan.time),
      observedTimestamp: hrTime(base + plan.observed),
      severityNumber: plan.severity,
      severityText: plan.severityText,
      body: sdkValue(plan.body),
      attributes: sdkAttributes(plan.attributes),
    };
    if (plan.span) record.context = trace.setSpanContext(context.active(), plan.span);
    logger.emit(record);
  }
}
for (const plan of logPlan) {
  logOut.push({
    time_unix_nano: (base + plan.time).toString(),
    observed_time_unix_nano: (base + plan.observed).toString(),
    severity_number: plan.severity,
    severity_text: plan.severityText,
    body: jsonValue(plan.body),
    attributes: jsonAttributes(plan.attributes),
    trace_id: plan.span ? plan.span.traceId : '',
    span_id: plan.span ? plan.span.spanId : '',
    trace_flags: plan.span ? plan.span.traceFlags : 0,
  });
}

const problems = [];
async function flush(signal, provider) {
  try {
    await provider.forceFlush();
  } catch (error) {
    problems.push(`${signal}: forceFlush: ${error.message ?? error}`);
  }
  try {
    await provider.shutdown();
  } catch (error) {
    problems.push(`${signal}: shutdown: ${error.message ?? error}`);
  }
}
await flush('traces', tracerProvider);
if (loggerProvider) await flush('logs', loggerProvider);

function checkSignal(signal, expected) {
  const done = exports.filter((e) => e.signal === signal);
  for (const e of done) {
    if (e.code !== 'SUCCESS') problems.push(`${signal}: export of ${e.items} failed: ${e.error}`);
  }
  const carried = done.filter((e) => e.code === 'SUCCESS').reduce((n, e) => n + e.items, 0);
  if (carried !== expected) problems.push(`${signal}: ${carried} of ${expected} exported`);
}
for (const partial of partialSuccesses) problems.push(`partial success: ${partial}`);
if (tracesEndpoint) checkSignal('traces', spanPlan.length);
if (logsEndpoint) checkSignal('logs', logPlan.length);

const output = {
  transport,
  resource: jsonAttributes(resourceAttributes),
  scope,
  spans: spanOut,
  logs: logOut,
  exports,
  partial_successes: partialSuccesses,
  ok: problems.length === 0,
};
process.stdout.write(`${JSON.stringify(output)}\n`);
for (const problem of problems) process.stderr.write(`send.mjs: ${problem}\n`);
process.exitCode = problems.length === 0 ? 0 : 1;
