"""A minimal OTLP/HTTP trace receiver for the server's tracing test.

Listens on 127.0.0.1 (port from argv[2], 0 = any free one), accepts POST /v1/traces with an
application/x-protobuf body, decodes it as an ExportTraceServiceRequest with the official
opentelemetry-proto package and appends each span as one JSON line to the file argv[1].
Prints "port N" once listening. Anything else gets 404 (wrong path) or 415 (wrong type).
"""

import json
import sys
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import (
    ExportTraceServiceRequest,
    ExportTraceServiceResponse,
)

OUT = sys.argv[1]


def value(v):
    kind = v.WhichOneof("value")
    if kind == "array_value":
        return [value(x) for x in v.array_value.values]
    if kind is None:
        return None
    return getattr(v, kind)


def attributes(kvs):
    return {kv.key: value(kv.value) for kv in kvs}


class Handler(BaseHTTPRequestHandler):
    def answer(self, status, body=b"", ctype="text/plain"):
        self.send_response(status)
        self.send_header("Content-Type", ctype)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def do_POST(self):
        body = self.rfile.read(int(self.headers.get("Content-Length", "0")))
        if self.path != "/v1/traces":
            return self.answer(404, b"only /v1/traces")
        if self.headers.get("Content-Type") != "application/x-protobuf":
            return self.answer(415, b"expected application/x-protobuf")
        req = ExportTraceServiceRequest()
        req.ParseFromString(body)
        with open(OUT, "a", encoding="utf-8") as out:
            for rs in req.resource_spans:
                resource = attributes(rs.resource.attributes)
                for ss in rs.scope_spans:
                    for s in ss.spans:
                        line = {
                            "service": resource.get("service.name"),
                            "scope": ss.scope.name,
                            "trace_id": s.trace_id.hex(),
                            "span_id": s.span_id.hex(),
                            "parent_span_id": s.parent_span_id.hex(),
                            "name": s.name,
                            "kind": s.kind,
                            "start": s.start_time_unix_nano,
                            "end": s.end_time_unix_nano,
                            "status": s.status.code,
                            "attributes": attributes(s.attributes),
                        }
                        out.write(json.dumps(line) + "\n")
        self.answer(
            200,
            ExportTraceServiceResponse().SerializeToString(),
            "application/x-protobuf",
        )

    def log_message(self, *args):
        pass


server = ThreadingHTTPServer(("127.0.0.1", int(sys.argv[2]) if len(sys.argv) > 2 else 0), Handler)
print(f"port {server.server_address[1]}", flush=True)
server.serve_forever()
