#!/usr/bin/env python3
"""Writes the seed corpus of the HTTP fuzz target into tests/fuzz/corpus/: one request (or a few
pipelined ones) for every route of docs/openapi.yaml and the malformed shapes the edge must
refuse. The first byte of each file picks the caller (0 none, 1 admin, 2 and 3 tenants). Run it
again after adding a route; crashes that libFuzzer finds go to tests/fuzz/crashes/ by hand."""
import os

HERE = os.path.dirname(os.path.abspath(__file__))
OUT = os.path.join(HERE, "corpus")
ACT = "act_000000000000000000000"
TEN = "ten_000000000000000000000"
GRP = "grp_000000000000000000000"


def req(method, target, body=b"", headers=()):
    lines = [f"{method} {target} HTTP/1.1".encode("latin-1"), b"Host: mufld"]
    lines += [h.encode("latin-1") if isinstance(h, str) else h for h in headers]
    if body or method in ("POST", "PATCH", "PUT"):
        lines.append(b"Content-Length: %d" % len(body))
    return b"\r\n".join(lines) + b"\r\n\r\n" + body


seeds = {
    "healthz": (0, req("GET", "/healthz")),
    "readyz": (0, req("GET", "/readyz")),
    "metrics": (0, req("GET", "/metrics")),
    "index": (0, req("GET", "/")),
    "asset": (0, req("GET", "/assets/app.js")),
    "catalog": (2, req("GET", "/v1/catalog")),
    "me": (2, req("GET", "/v1/me")),
    "tenants-post": (1, req("POST", "/v1/tenants", b'{"name":"seed-team","quotas":{"max_active_activities":3}}')),
    "tenants-list": (1, req("GET", "/v1/tenants?limit=2")),
    "tenant-get": (1, req("GET", f"/v1/tenants/{TEN}")),
    "tenant-patch": (1, req("PATCH", f"/v1/tenants/{TEN}", b'{"quotas":{"max_active_activities":1}}')),
    "tenant-delete": (1, req("DELETE", f"/v1/tenants/{TEN}")),
    "activity-post": (2, req("POST", "/v1/activities",
                             b'{"name":"d","dataset":"synthetic","task":"class","rounds":2,"clients":4,'
                             b'"clients_per_round":2,"partition":{"kind":"dirichlet","alpha":0.5}}',
                             ["Idempotency-Key: k1"])),
    "activities-list": (2, req("GET", "/v1/activities?state=queued&limit=5&cursor=abc")),
    "activity-get": (2, req("GET", f"/v1/activities/{ACT}")),
    "activity-delete": (3, req("DELETE", f"/v1/activities/{ACT}")),
    "activity-rounds": (2, req("GET", f"/v1/activities/{ACT}/rounds?limit=10")),
    "activity-model": (2, req("GET", f"/v1/activities/{ACT}/model")),
    "groups": (2, req("GET", "/v1/groups?phase=consolidating")),
    "group-get": (2, req("GET", f"/v1/groups/{GRP}")),
    "devices": (1, req("GET", "/v1/devices")),
    "device-drain": (1, req("POST", "/v1/devices/cpu:0/drain")),
    "device-resume": (1, req("POST", "/v1/devices/cpu:0/resume")),
    "usage": (2, req("GET", "/v1/usage?from=2026-01-01&to=2026-12-31")),
    "events": (2, req("GET", "/v1/events?types=round.finished&activity=" + ACT, headers=["Last-Event-ID: 3"])),
    "head": (0, req("HEAD", "/healthz")),
    "options": (2, req("OPTIONS", "/v1/activities")),
    "pipelined": (2, req("GET", "/v1/me") + req("GET", "/v1/catalog") + req("GET", "/healthz")),
    "bad-utf8-target": (0, b"GET /\xff HTTP/1.1\r\nHost: x\r\n\r\n"),
    "bad-utf8-query": (2, req("GET", "/v1/groups?phase=%ff")),
    "bad-utf8-body": (2, req("POST", "/v1/activities", b"\xff\xfe")),
    "bad-utf8-header": (2, req("GET", "/v1/me", headers=[b"X-Trace: \xc3"])),
    "bad-json": (1, req("POST", "/v1/tenants", b'{"name": [1, {')),
    "wrong-types": (2, req("POST", "/v1/activities", b'{"name":1,"dataset":true,"task":null,"rounds":"x"}')),
    "bad-escape": (0, req("GET", "/healthz?x=%zz")),
    "absolute-form": (0, b"GET http://mufld/healthz HTTP/1.1\r\nHost: x\r\n\r\n"),
    "dup-length": (1, b"POST /v1/tenants HTTP/1.1\r\nContent-Length: 2\r\nContent-Length: 3\r\n\r\n{}"),
    "chunked": (1, b"POST /v1/tenants HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\n"
                   b"d\r\n{\"name\":\"c1\"}\r\n0\r\n\r\n"),
    "bad-chunk": (1, b"POST /v1/tenants HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\nzz\r\n{}\r\n0\r\n\r\n"),
    "wrong-token": (0, req("GET", "/v1/me", headers=["Authorization: Bearer mufl_nope"])),
    "http10": (0, b"GET /healthz HTTP/1.0\r\n\r\n"),
}

os.makedirs(OUT, exist_ok=True)
for name, (caller, data) in seeds.items():
    with open(os.path.join(OUT, name), "wb") as f:
        f.write(bytes([caller]) + data)
print(f"{len(seeds)} seeds in {OUT}")
