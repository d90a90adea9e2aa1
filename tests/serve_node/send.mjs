// Sends spans to `workbench serve` with the OpenTelemetry JS SDK and its OTLP/HTTP exporter (protobuf or JSON).
// Usage: node send.mjs '{"url": "http://127.0.0.1:4318/v1/traces", "key": "wb_sk_...", "protocol": "proto",
//                        "attributes": {...}}'  -> an "agent" span with one LLM child span carrying `attributes`.
import { context, trace, SpanKind, SpanStatusCode } from "@opentelemetry/api";
import { resourceFromAttributes } from "@opentelemetry/resources";
import { BasicTracerProvider, SimpleSpanProcessor } from "@opentelemetry/sdk-trace-base";
import { OTLPTraceExporter as ProtoExporter } from "@opentelemetry/exporter-trace-otlp-proto";
import { OTLPTraceExporter as JsonExporter } from "@opentelemetry/exporter-trace-otlp-http";

const args = JSON.parse(process.argv[2]);
const Exporter = args.protocol === "json" ? JsonExporter : ProtoExporter;
const exporter = new Exporter({ url: args.url, headers: { Authorization: `Bearer ${args.key}` } });
let failed = null;
const reporting = {
  export(spans, done) {
    exporter.export(spans, (result) => {
      if (result.code !== 0) failed = result.error ? String(result.error) : "export failed";
      done(result);
    });
  },
  shutdown: () => exporter.shutdown(),
  forceFlush: () => exporter.forceFlush(),
};
const provider = new BasicTracerProvider({
  resource: resourceFromAttributes({ "service.name": "node-frontend" }),
  spanProcessors: [new SimpleSpanProcessor(reporting)],
});
const tracer = provider.getTracer("workbench-node-test");
const agent = tracer.startSpan("agent run", { kind: SpanKind.INTERNAL });
const llm = tracer.startSpan(
  "chat gpt-4o-mini",
  { kind: SpanKind.CLIENT, attributes: args.attributes },
  trace.setSpan(context.active(), agent),
);
llm.setStatus({ code: SpanStatusCode.OK });
llm.end();
agent.end();
await provider.forceFlush();
await provider.shutdown();
if (failed) {
  console.error(failed);
  process.exit(1);
}
console.log(JSON.stringify({ traceId: llm.spanContext().traceId, spanId: llm.spanContext().spanId }));
