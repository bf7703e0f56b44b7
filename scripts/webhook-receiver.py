#!/usr/bin/env python3
"""A webhook receiver for Campana's tests: verifies every delivery with the Standard Webhooks
reference library (PyPI `standardwebhooks`, an implementation independent of Campana's), and
fails a share of them on purpose.

Usage: webhook-receiver.py --port P --log FILE --secret whsec_... [--secret whsec_...]
                           [--fail-rate 0.3] [--gone] [--delay-ms 0] [--seed N]

Prints `listening on PORT` first. Each request is answered:
- 400 when no secret verifies its signature (or a header is missing), logged as `bad_signature`;
- 410 with --gone;
- 500/502/503 at random with probability --fail-rate (503 sometimes with `Retry-After: 1`);
- 200 otherwise, logged as `ok`.
Every request appends one JSON line to --log: {"outcome", "msg_id", "type", "signatures"}.
"""
import argparse
import json
import random
import sys
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

from standardwebhooks.webhooks import Webhook, WebhookVerificationError

p = argparse.ArgumentParser()
p.add_argument("--port", type=int, default=0)
p.add_argument("--log", required=True)
p.add_argument("--secret", action="append", required=True)
p.add_argument("--fail-rate", type=float, default=0.0)
p.add_argument("--gone", action="store_true")
p.add_argument("--delay-ms", type=int, default=0)
p.add_argument("--seed", type=int, default=1)
args = p.parse_args()
rng = random.Random(args.seed)
lock = threading.Lock()
hooks = [Webhook(s) for s in args.secret]


def log(entry):
    with lock:
        with open(args.log, "a") as f:
            f.write(json.dumps(entry) + "\n")


class Handler(BaseHTTPRequestHandler):
    def log_message(self, *a):
        pass

    def answer(self, status, headers=()):
        self.send_response(status)
        for k, v in headers:
            self.send_header(k, v)
        self.send_header("content-length", "0")
        self.end_headers()

    def do_POST(self):
        body = self.rfile.read(int(self.headers.get("content-length", "0")))
        headers = {k.lower(): v for k, v in self.headers.items()}
        entry = {"msg_id": headers.get("webhook-id"), "signatures": len(headers.get("webhook-signature", "").split())}
        try:
            entry["type"] = json.loads(body)["type"]
        except Exception:
            entry["type"] = None
        verified = 0
        for h in hooks:
            try:
                h.verify(body, headers)
                verified += 1
            except WebhookVerificationError:
                pass
        entry["verified_by"] = verified
        if args.delay_ms:
            time.sleep(args.delay_ms / 1000)
        if verified == 0:
            entry["outcome"] = "bad_signature"
            log(entry)
            return self.answer(400)
        if args.gone:
            entry["outcome"] = "gone"
            log(entry)
            return self.answer(410)
        with lock:
            fail = rng.random() < args.fail_rate
            status = rng.choice([500, 502, 503])
            retry_after = rng.random() < 0.5
        if fail:
            entry["outcome"] = f"failed_{status}"
            log(entry)
            return self.answer(status, [("Retry-After", "1")] if status == 503 and retry_after else [])
        entry["outcome"] = "ok"
        log(entry)
        self.answer(200)


srv = ThreadingHTTPServer(("127.0.0.1", args.port), Handler)
print(f"listening on {srv.server_address[1]}", flush=True)
srv.serve_forever()
