"""Issue 11: tracing to an OTLP/HTTP collector (here a local receiver that decodes the protobuf export), sampling,
and the light tracer's spans in the store."""
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

from aiwb.core import connect, load_config
from aiwb.observability import disable_tracing, enable_tracing, flush_tracing
from aiwb.trace import LiteTracer, _STATE, span


class Collector(BaseHTTPRequestHandler):
    "An OTLP/HTTP receiver: decodes each ExportTraceServiceRequest it is sent."
    received: list = []

    def do_POST(self):
        from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import ExportTraceServiceRequest
        body = self.rfile.read(int(self.headers["Content-Length"]))
        req = ExportTraceServiceRequest()
        req.ParseFromString(body)
        for rs in req.resource_spans:
            for ss in rs.scope_spans:
                for s in ss.spans:
                    attrs = {a.key: a.value.string_value or a.value.int_value for a in s.attributes}
                    Collector.received.append((self.path, s.name, attrs))
        self.send_response(200)
        self.send_header("Content-Type", "application/x-protobuf")
        self.send_header("Content-Length", "0")
        self.end_headers()

    def log_message(self, *args):
        pass


def test_spans_reach_an_otlp_collector_redacted_and_the_store(tmp_path):
    httpd = ThreadingHTTPServer(("127.0.0.1", 0), Collector)
    threading.Thread(target=httpd.serve_forever, daemon=True).start()
    con = connect(config=load_config(env={"AIWB_HOME": str(tmp_path)}))
    Collector.received.clear()
    try:
        enable_tracing(con, otlp_endpoint=f"http://127.0.0.1:{httpd.server_address[1]}")
        assert not isinstance(_STATE.tracer, LiteTracer)  # another exporter: the OpenTelemetry SDK
        with span("rag.ask", question="q", auth="Bearer sk-proj-OTLPSECRETOTLPSECRET12"):
            with span("retrieve", k=4):
                pass
        flush_tracing()
    finally:
        disable_tracing()
        httpd.shutdown()
    names = sorted(n for _, n, _ in Collector.received)
    assert names == ["rag.ask", "retrieve"] and {p for p, _, _ in Collector.received} == {"/v1/traces"}
    assert all("OTLPSECRET" not in str(a) for *_, a in Collector.received)
    stored = sorted(r[0] for r in con.execute("SELECT name FROM obs_spans").fetchall())
    assert stored == ["rag.ask", "retrieve"]
    con.close()


def test_sampling_keeps_about_the_share_asked_for(tmp_path):
    con = connect(config=load_config(env={"AIWB_HOME": str(tmp_path)}))
    enable_tracing(con, sample_rate=0.25)
    assert isinstance(_STATE.tracer, LiteTracer)  # only the store: no SDK
    try:
        for _ in range(400):
            with span("rag.ask"):
                with span("retrieve"):
                    pass
        flush_tracing()
    finally:
        disable_tracing()
    roots, children = con.execute("SELECT count(*) FILTER (WHERE parent_id IS NULL), "
                                  "count(*) FILTER (WHERE parent_id IS NOT NULL) FROM obs_spans").fetchone()
    assert 60 <= roots <= 140 and children == roots  # a sampled root keeps its children; an unsampled one, none
    con.close()
