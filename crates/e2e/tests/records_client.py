#!/usr/bin/env python3
"""An app that used enc-server-go's record service, moved to enc's /records.

Its requests are those of enc-server-go's v2 client (pkg/v2-apis/fe/client/client.go):
`POST /records` with `{"id": HEX, "key": "", "data": HEX}` expecting 201 and a hex `key`;
`GET /records/ID?key=KEY` expecting 200 and the plaintext in `data`; `DELETE /records/ID`
expecting 202. The differences enc makes (TLS, a bearer token, the key needed to delete, one
404 for an unknown id and a wrong key) are checked too, with every bad input the README
lists: wrong key, unknown id, oversize, malformed bodies, batches.

    records_client.py run --url URL --cafile PEM --token T --read-only-token R \
        --marker TEXT --out FILE
    records_client.py open --url URL --cafile PEM --token T --id HEX --key HEX
    records_client.py create --url URL --cafile PEM --token T --id HEX --data TEXT
    records_client.py disabled --url URL --cafile PEM --token T

`run` writes the keys and ids it saw to FILE (JSON), so the caller can search the server's
data directory for them; any failed expectation exits 1 with the reason.
"""

import argparse
import json
import os
import statistics
import sys
import time

import requests


def fail(msg):
    print(f"FAIL: {msg}", file=sys.stderr)
    sys.exit(1)


def expect(cond, msg):
    if not cond:
        fail(msg)


class Client:
    def __init__(self, url, cafile, token):
        self.url = url.rstrip("/")
        self.cafile = cafile
        self.s = requests.Session()
        if token:
            self.s.headers["Authorization"] = f"Bearer {token}"

    def req(self, method, path, **kw):
        # Passed on every request: a session-wide `verify` loses to REQUESTS_CA_BUNDLE.
        return self.s.request(method, self.url + path, verify=self.cafile, timeout=30, **kw)

    def post(self, path, body=None, raw=None, headers=None):
        if raw is not None:
            return self.req("POST", path, data=raw, headers=headers or {})
        return self.req("POST", path, json=body, headers=headers or {})

    def get(self, path, headers=None):
        return self.req("GET", path, headers=headers or {})

    def delete(self, path, headers=None):
        return self.req("DELETE", path, headers=headers or {})


def go_create(c, id_text, data):
    """enc-server-go's client: both fields hex, an empty key, Content-Type JSON."""
    body = json.dumps({"id": id_text.encode().hex(), "key": "", "data": data.hex()})
    return c.post("/records", raw=body, headers={"Content-Type": "application/json"})


def error_of(r):
    try:
        return r.json()["error"]["message"]
    except Exception:
        return r.text


def run(args):
    c = Client(args.url, args.cafile, args.token)
    seen = {"keys": [], "ids": []}
    marker = args.marker.encode()

    # The enc-server-go client's three calls, unchanged.
    payload = b"PAYLOADS " + marker + b" one"
    r = go_create(c, "JTH", payload)
    expect(r.status_code == 201, f"create: {r.status_code} {r.text}")
    created = r.json()
    rid = "JTH".encode().hex()
    expect(created["id"] == rid, f"create echoes the id: {created}")
    expect(created["data"] == payload.hex(), "create echoes the data as sent (hex)")
    key = created["key"]
    expect(len(key) == 64 and bytes.fromhex(key), "the key is 64 hex digits")
    seen["keys"].append(key)
    seen["ids"].append(rid)
    r = c.get(f"/records/{rid}?key={key}")
    expect(r.status_code == 200, f"get: {r.status_code} {r.text}")
    expect(r.json()["data"].encode() == payload, f"get answers the plaintext: {r.json()}")
    expect(r.json()["data_hex"] == payload.hex(), "and exactly, in hex")
    # The key in a header (stays out of access logs) opens it too.
    r = c.get(f"/records/{rid}", headers={"X-Record-Key": key})
    expect(r.status_code == 200, f"get with X-Record-Key: {r.status_code}")

    # Wrong key and unknown id: the same status and body.
    wrong = "00" * 32
    other = "ab" * 32
    a = c.get(f"/records/{rid}?key={wrong}")
    b = c.get(f"/records/{'ff' * 8}?key={key}")
    expect(a.status_code == 404 and b.status_code == 404, f"{a.status_code} {b.status_code}")
    expect(a.text == b.text, f"a wrong key and an unknown id differ: {a.text!r} / {b.text!r}")
    # …and the same timing class (interleaved, medians of 30 each).
    ta, tb = [], []
    for i in range(30):
        for path, out in ((f"/records/{rid}?key={other}", ta), (f"/records/{'ee' * 8}?key={other}", tb)):
            t0 = time.perf_counter()
            r = c.get(path)
            out.append(time.perf_counter() - t0)
            expect(r.status_code == 404, f"timing probe: {r.status_code}")
    ma, mb = statistics.median(ta), statistics.median(tb)
    expect(abs(ma - mb) < max(0.010, 0.5 * max(ma, mb)),
           f"wrong key {ma * 1000:.2f} ms against unknown id {mb * 1000:.2f} ms")

    # Delete: the Go client sends no key; enc asks for proof of it.
    r = c.delete(f"/records/{rid}")
    expect(r.status_code == 400 and "key" in error_of(r), f"keyless delete: {r.status_code} {r.text}")
    r = c.delete(f"/records/{rid}?key={wrong}")
    expect(r.status_code == 404, f"delete with a wrong key: {r.status_code}")
    r = c.delete(f"/records/{rid}", headers={"X-Record-Key": key})
    expect(r.status_code == 202, f"delete: {r.status_code} {r.text}")
    r = c.get(f"/records/{rid}?key={key}")
    expect(r.status_code == 404, f"deleted, then get: {r.status_code}")

    # Ids are taken once: a second create of the same id is refused, the first kept.
    r = go_create(c, "dup", marker)
    expect(r.status_code == 201, f"{r.status_code}")
    seen["keys"].append(r.json()["key"])
    r2 = go_create(c, "dup", b"replacement " + marker)
    expect(r2.status_code == 409, f"a taken id: {r2.status_code} {r2.text}")
    r3 = c.get(f"/records/{'dup'.encode().hex()}?key={r.json()['key']}")
    expect(r3.json()["data"].encode() == marker, "the first record stays")

    # Sizes: 64 KiB is accepted, one byte more is not.
    r = go_create(c, "big", b"x" * 65536)
    expect(r.status_code == 201, f"64 KiB: {r.status_code} {r.text}")
    seen["keys"].append(r.json()["key"])
    r = go_create(c, "bigger", b"x" * 65537)
    expect(r.status_code == 413, f"64 KiB + 1: {r.status_code} {r.text}")

    # Malformed bodies: each a 400 with a message, nothing stored.
    for raw, what in [
        ("not json", "not JSON"),
        (json.dumps({"id": "zz", "data": "00"}), "id not hex"),
        (json.dumps({"id": "abc", "data": "00"}), "odd id"),
        (json.dumps({"id": "", "data": "00"}), "empty id"),
        (json.dumps({"id": "0a", "data": "xyz"}), "data not hex"),
        (json.dumps({"id": "0a"}), "data missing"),
        (json.dumps({"id": 5, "data": "00"}), "id a number"),
        (json.dumps([1, 2]), "an array"),
    ]:
        r = c.post("/records", raw=raw, headers={"Content-Type": "application/json"})
        expect(r.status_code == 400, f"{what}: {r.status_code} {r.text}")
        expect(error_of(r), f"{what}: no message")
    r = c.get(f"/records/0a?key={key}")
    expect(r.status_code == 404, "nothing was stored by a malformed body")
    for path, what in [("/records/zz?key=" + key, "id not hex"),
                       ("/records/0a?key=abc", "short key"),
                       ("/records/0a", "no key")]:
        r = c.get(path)
        expect(r.status_code == 400, f"get with {what}: {r.status_code} {r.text}")

    # Batches: 1,000 records in one call, read back with one wrong key and one unknown id.
    batch = [{"id": f"{i:08x}", "data": (f"batch {i} ".encode() + marker).hex()}
             for i in range(1000)]
    r = c.post("/records/batch", {"records": batch})
    expect(r.status_code == 201, f"batch create: {r.status_code} {r.text[:200]}")
    made = r.json()["records"]
    expect(len(made) == 1000 and [m["id"] for m in made] == [b["id"] for b in batch],
           "the batch answers every record in order")
    seen["keys"].extend(m["key"] for m in made)
    refs = [{"id": m["id"], "key": m["key"]} for m in made]
    refs[3]["key"] = wrong
    refs[998] = {"id": "ffffffffff", "key": made[0]["key"]}
    r = c.post("/records/batch/get", {"records": refs})
    expect(r.status_code == 200, f"batch get: {r.status_code} {r.text[:200]}")
    got = r.json()["records"]
    expect(len(got) == 1000, "every record answered")
    expect(got[0]["data"] == f"batch 0 {args.marker}", f"batch get opens: {got[0]}")
    expect(got[3] == {"id": refs[3]["id"], "error": "not found"}, f"wrong key: {got[3]}")
    expect(got[998] == {"id": "ffffffffff", "error": "not found"}, f"unknown: {got[998]}")
    expect(got[999]["data"] == f"batch 999 {args.marker}", "the last one opens")
    too_many = [{"id": f"{i:08x}", "data": "00"} for i in range(1001)]
    r = c.post("/records/batch", {"records": too_many})
    expect(r.status_code == 400, f"1,001 records: {r.status_code}")
    r = c.post("/records/batch", {"records": [{"id": "0b", "data": "00"}, {"id": "0B", "data": "00"}]})
    expect(r.status_code == 400, f"an id twice: {r.status_code} {r.text}")
    r = c.post("/records/batch", {"records": [{"id": "0c", "data": "00"}, {"id": "00000001", "data": "00"}]})
    expect(r.status_code == 409, f"a batch with a taken id: {r.status_code} {r.text}")
    r = c.get(f"/records/0c?key={key}")
    expect(r.status_code == 404, "a refused batch stores nothing")
    dels = [{"id": m["id"], "key": m["key"]} for m in made[:500]]
    dels[0]["key"] = wrong
    r = c.post("/records/batch/delete", {"records": dels})
    expect(r.status_code == 200, f"batch delete: {r.status_code} {r.text[:200]}")
    out = r.json()["records"]
    expect(out[0] == {"id": made[0]["id"], "deleted": False}, f"wrong key kept: {out[0]}")
    expect(all(o["deleted"] for o in out[1:]), "the rest deleted")

    # Credentials: none, a wrong one, a read-only token.
    anon = Client(args.url, args.cafile, None)
    r = anon.post("/records", {"id": "0d", "data": "00"})
    expect(r.status_code == 401, f"no token: {r.status_code}")
    bad = Client(args.url, args.cafile, "enc_0000000000000000_" + "A" * 43)
    r = bad.get(f"/records/{made[600]['id']}?key={made[600]['key']}")
    expect(r.status_code == 401, f"a wrong token: {r.status_code}")
    ro = Client(args.url, args.cafile, args.read_only_token)
    r = ro.get(f"/records/{made[600]['id']}?key={made[600]['key']}")
    expect(r.status_code == 200, f"a read-only token reads: {r.status_code} {r.text}")
    r = ro.post("/records", {"id": "0e", "data": "00"})
    expect(r.status_code == 403, f"a read-only token writes: {r.status_code}")
    r = ro.delete(f"/records/{made[600]['id']}", headers={"X-Record-Key": made[600]["key"]})
    expect(r.status_code == 403, f"a read-only token deletes: {r.status_code}")
    # Plain HTTP is not spoken.
    try:
        requests.get(args.url.replace("https://", "http://") + "/records/0a", timeout=5)
        fail("plain HTTP answered")
    except requests.exceptions.RequestException:
        pass

    # One record left for the caller: made[999].
    seen["left"] = {"id": made[999]["id"], "key": made[999]["key"]}
    with open(args.out, "w") as f:
        json.dump(seen, f)
    print(json.dumps({"ok": True, "keys": len(seen["keys"])}))


def open_one(args):
    c = Client(args.url, args.cafile, args.token)
    r = c.get(f"/records/{args.id}", headers={"X-Record-Key": args.key})
    if r.status_code != 200:
        fail(f"open: {r.status_code} {r.text}")
    sys.stdout.write(r.json()["data"])


def create_one(args):
    c = Client(args.url, args.cafile, args.token)
    r = c.post("/records", {"id": args.id, "data": args.data.encode().hex()})
    if r.status_code != 201:
        fail(f"create: {r.status_code} {r.text}")
    print(r.json()["key"])


def disabled(args):
    c = Client(args.url, args.cafile, args.token)
    r = go_create(c, "off", b"x")
    expect(r.status_code == 403 and "enc record" in error_of(r), f"{r.status_code} {r.text}")
    r = c.get(f"/records/0a?key={'00' * 32}")
    expect(r.status_code == 403, f"get: {r.status_code}")
    print(json.dumps({"ok": True}))


def main():
    p = argparse.ArgumentParser()
    p.add_argument("command", choices=["run", "open", "create", "disabled"])
    p.add_argument("--url", required=True)
    p.add_argument("--cafile", required=True)
    p.add_argument("--token", required=True)
    p.add_argument("--read-only-token")
    p.add_argument("--marker", default="")
    p.add_argument("--out")
    p.add_argument("--id")
    p.add_argument("--key")
    p.add_argument("--data")
    args = p.parse_args()
    {"run": run, "open": open_one, "create": create_one, "disabled": disabled}[args.command](args)


if __name__ == "__main__":
    main()
