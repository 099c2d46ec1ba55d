// A real Connect client for the gateway's tests: connect-es (@connectrpc/connect-node) with its
// JSON codec (useBinaryFormat: false), over HTTP/1.1 or HTTP/2 (h2c), typed by the gateway's own
// descriptor set loaded at run time (no generated code).
//
// node client.cjs DESCRIPTORS BASE_URL HTTP_VERSION CALLS
//   DESCRIPTORS   the FileDescriptorSet file (draftstore_proto::DESCRIPTORS)
//   HTTP_VERSION  "1.1" or "2"
//   CALLS         JSON: [{"service", "method", "request": <proto3 JSON>}]
// Prints one JSON array: per call {"ok": <answer as proto3 JSON>} or
// {"error": {"code": "<Code name>", "message": "..."}}. The modules come from NODE_PATH
// (scripts/grpc-tools.sh installs them).
"use strict";
const { readFileSync } = require("node:fs");
const { createClient, ConnectError, Code } = require("@connectrpc/connect");
const { createConnectTransport } = require("@connectrpc/connect-node");
const { createFileRegistry, fromBinary, fromJson, toJson } = require("@bufbuild/protobuf");
const { FileDescriptorSetSchema } = require("@bufbuild/protobuf/wkt");

async function main() {
  const [descriptors, baseUrl, httpVersion, calls] = process.argv.slice(2);
  const registry = createFileRegistry(
    fromBinary(FileDescriptorSetSchema, readFileSync(descriptors)),
  );
  const transport = createConnectTransport({ baseUrl, httpVersion, useBinaryFormat: false });
  const out = [];
  for (const { service, method, request } of JSON.parse(calls)) {
    const desc = registry.getService(service);
    if (!desc) throw new Error(`no service ${service}`);
    const rpc = desc.methods.find((m) => m.name === method);
    if (!rpc) throw new Error(`no method ${service}/${method}`);
    const client = createClient(desc, transport);
    try {
      const answer = await client[rpc.localName](fromJson(rpc.input, request));
      out.push({ ok: toJson(rpc.output, answer) });
    } catch (e) {
      const error = ConnectError.from(e);
      out.push({ error: { code: Code[error.code], message: error.rawMessage } });
    }
  }
  process.stdout.write(JSON.stringify(out));
}

main().catch((e) => {
  console.error(e);
  process.exit(1);
});
