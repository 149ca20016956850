#!/usr/bin/env python3
"""A webhook receiver for the demo: prints each Alertmanager notification (payload version 4) on one line per
alert, and answers 200 so that Alertmanager does not retry. Usage: webhook-sink.py PORT"""
import json
import sys
from datetime import datetime
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer


class Sink(BaseHTTPRequestHandler):
    def do_POST(self) -> None:
        length = int(self.headers.get("Content-Length", "0"))
        body = self.rfile.read(length)
        self.send_response(200)
        self.end_headers()
        try:
            payload = json.loads(body)
        except ValueError:
            print(f"webhook: {self.path}: not JSON ({length} bytes)", flush=True)
            return
        now = datetime.now().strftime("%H:%M:%S")
        for alert in payload.get("alerts", []):
            labels, annotations = alert.get("labels", {}), alert.get("annotations", {})
            print(
                f"{now} notification to {payload.get('receiver')}: {alert.get('status', '?').upper()} "
                f"{labels.get('alertname')} ({labels.get('severity')}) on {labels.get('namespace')}/"
                f"{labels.get('chatbot')}: {annotations.get('summary', '')}\n"
                f"         runbook: {annotations.get('runbook_url', '-')}",
                flush=True,
            )

    def log_message(self, format: str, *args: object) -> None:  # one line per alert is enough
        pass


if __name__ == "__main__":
    ThreadingHTTPServer(("127.0.0.1", int(sys.argv[1])), Sink).serve_forever()
