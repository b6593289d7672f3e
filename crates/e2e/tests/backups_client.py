#!/usr/bin/env python3
"""An app's device-backup client for enc, written from the OpenAPI document alone.

It knows no enc code: routes and parameters come from /v1/openapi.json (the script checks
that every one it uses is there), and the signed encoding from the description of
`POST /v1/backups`. Uses `requests` and `cryptography` (Ed25519).

    backups_client.py keygen PRIVATE_FILE PUBLIC_FILE
    backups_client.py run --url URL --cafile PEM --token T --key F --device D \
        --other-token T2 --other-key F2 --other-device D2
    backups_client.py revoked --url URL --cafile PEM --token T --key F --device D

`run` prints a JSON summary on stdout; any failed expectation exits 1 with the reason.
"""

import argparse
import base64
import hashlib
import json
import os
import struct
import sys

import requests
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey


def fail(msg):
    print(f"FAIL: {msg}", file=sys.stderr)
    sys.exit(1)


def expect(cond, msg):
    if not cond:
        fail(msg)


def keygen(private_file, public_file):
    key = Ed25519PrivateKey.generate()
    raw = key.private_bytes_raw()
    with open(private_file, "w") as f:
        f.write(raw.hex())
    with open(public_file, "w") as f:
        f.write(base64.b64encode(key.public_key().public_bytes_raw()).decode())


def load_key(path):
    with open(path) as f:
        return Ed25519PrivateKey.from_private_bytes(bytes.fromhex(f.read().strip()))


def message(user_id, server_id, device, kind, prev, classification, content_hash, target,
            counter, size, created):
    out = b"enc backup v1\0"
    for field in (user_id, server_id, device, kind, prev, classification, content_hash, target):
        data = field.encode()
        out += struct.pack(">Q", len(data)) + data
    out += struct.pack(">Q", counter) + struct.pack(">Q", size) + struct.pack(">q", created)
    return out


class App:
    def __init__(self, url, cafile, token, key, device):
        self.url = url.rstrip("/")
        self.s = requests.Session()
        self.cafile = cafile
        self.s.headers["Authorization"] = f"Bearer {token}"
        self.key = key
        self.device = device

    def request(self, method, path, **kw):
        # Passed on every request: a session-wide `verify` loses to REQUESTS_CA_BUNDLE.
        return self.s.request(method, self.url + path, verify=self.cafile, timeout=30, **kw)

    def get(self, path, **kw):
        return self.request("GET", path, **kw)

    def chain(self):
        r = self.get(f"/v1/devices/{self.device}/chain")
        expect(r.status_code == 200, f"chain: {r.status_code} {r.text}")
        return r.json()

    def head(self):
        c = self.chain()
        entries = c["entries"]
        last = entries[-1] if entries else None
        return c, (last["counter"] + 1 if last else 1), (last["id"] if last else "")

    def signed_put(self, body, classification, counter=None, prev=None, created=1_700_000_000,
                   device=None, sign_with=None, user_id=None, server_id=None):
        c, next_counter, last = self.head()
        counter = next_counter if counter is None else counter
        prev = last if prev is None else prev
        device = device or self.device
        content_hash = hashlib.sha256(body).hexdigest()
        msg = message(user_id or c["user_id"], server_id or c["server_id"], device, "backup",
                      prev, classification, content_hash, "", counter, len(body), created)
        sig = base64.b64encode((sign_with or self.key).sign(msg)).decode()
        params = {"device": device, "classification": classification, "created": created,
                  "counter": counter, "prev": prev, "size": len(body), "hash": content_hash,
                  "signature": sig}
        return params, hashlib.sha256(msg).hexdigest()

    def post(self, params, body):
        return self.request("POST", "/v1/backups", params=params, data=body,
                            headers={"Content-Type": "application/octet-stream"})

    def count(self):
        r = self.get("/v1/backups", params={"limit": 1000})
        expect(r.status_code == 200, f"list: {r.status_code} {r.text}")
        return len(r.json()["backups"])


def check_document(url, cafile):
    doc = requests.get(url.rstrip("/") + "/v1/openapi.json", verify=cafile, timeout=30).json()
    paths = doc["paths"]
    need = {
        "/v1/backups": ["get", "post"],
        "/v1/backups/{id}": ["get", "delete"],
        "/v1/backups/{id}/content": ["get"],
        "/v1/devices/{id}/chain": ["get"],
    }
    for path, methods in need.items():
        expect(path in paths, f"the OpenAPI document has no {path}")
        for m in methods:
            expect(m in paths[path], f"the OpenAPI document has no {m.upper()} {path}")
    post = paths["/v1/backups"]["post"]
    names = {p["name"] for p in post.get("parameters", [])}
    expect(names >= {"device", "classification", "created", "counter", "prev", "size", "hash",
                     "signature"}, f"POST /v1/backups parameters: {names}")
    text = post.get("description", "") + post.get("summary", "")
    expect("enc backup v1" in text, "POST /v1/backups does not describe what is signed")
    delete = {p["name"] for p in paths["/v1/backups/{id}"]["delete"].get("parameters", [])}
    expect(delete >= {"device", "created", "counter", "prev", "signature"}, f"DELETE: {delete}")


def refused(app, what, resp, status, before):
    expect(resp.status_code == status,
           f"{what}: expected {status}, got {resp.status_code} {resp.text}")
    body = resp.json()
    expect(body["error"]["message"], f"{what}: no message")
    expect(app.count() == before, f"{what}: something was stored")


def run(a):
    check_document(a.url, a.cafile)
    app = App(a.url, a.cafile, a.token, load_key(a.key), a.device)
    other = App(a.url, a.cafile, a.other_token, load_key(a.other_key), a.other_device)
    start = app.count()

    # Three backups, each the next in the device's chain.
    bodies = [os.urandom(4096), os.urandom(100), os.urandom(70_000)]
    ids = []
    for i, body in enumerate(bodies):
        cls = ["Internal", "Confidential", "Restricted"][i]
        params, entry_id = app.signed_put(body, cls, created=1_700_000_000 + i)
        r = app.post(params, body)
        expect(r.status_code == 201, f"put {i}: {r.status_code} {r.text}")
        info = r.json()
        expect(info["id"] == entry_id, "the id is not the hash of the signed message")
        expect(info["counter"] == i + 1 and info["classification"] == cls, f"stored {info}")
        ids.append(entry_id)

    # Newest first, in pages, with the opaque cursor.
    seen, cursor = [], None
    while True:
        q = {"limit": 2}
        if cursor:
            q["cursor"] = cursor
        page = app.get("/v1/backups", params=q).json()
        seen += [b["id"] for b in page["backups"]]
        cursor = page.get("next_cursor")
        if not cursor:
            break
    expect(seen[:3] == ids[::-1], f"listing order: {seen} vs {ids[::-1]}")
    only = app.get("/v1/backups", params={"classification": "Confidential"}).json()["backups"]
    expect([b["id"] for b in only] == [ids[1]], "classification filter")
    bad_cursor = app.get("/v1/backups", params={"cursor": "bm90IG9uZSBvZiBvdXJz"})
    expect(bad_cursor.status_code == 400, f"forged cursor: {bad_cursor.status_code}")

    # Metadata and content come back as signed.
    for entry_id, body in zip(ids, bodies):
        meta = app.get(f"/v1/backups/{entry_id}").json()
        expect(meta["size"] == len(body) and meta["hash"] == hashlib.sha256(body).hexdigest(),
               "metadata")
        got = app.get(f"/v1/backups/{entry_id}/content")
        expect(got.status_code == 200 and got.content == body, "content differs")

    before = app.count()
    body = os.urandom(4096)
    # A tampered signature.
    params, _ = app.signed_put(body, "Internal")
    sig = bytearray(base64.b64decode(params["signature"]))
    sig[0] ^= 1
    refused(app, "tampered signature", app.post(dict(params, signature=base64.b64encode(
        bytes(sig)).decode()), body), 403, before)
    # A swapped device: the other device's entry (signed by it) sent with this one's token.
    params, _ = other.signed_put(body, "Internal")
    refused(app, "swapped device", app.post(params, body), 403, before)
    # Signed for this device but by another key.
    params, _ = app.signed_put(body, "Internal", sign_with=other.key)
    refused(app, "another key", app.post(params, body), 403, before)
    # Moved to another account or server: the signature names this one.
    params, _ = app.signed_put(body, "Internal", user_id="someone-else")
    refused(app, "another account", app.post(params, body), 403, before)
    # A replay of the first backup exactly as it was sent.
    params, _ = app.signed_put(bodies[0], "Internal", counter=1, prev="", created=1_700_000_000)
    refused(app, "replay", app.post(params, bodies[0]), 409, before)
    # Relabelled: Restricted signed, Internal claimed.
    params, _ = app.signed_put(body, "Restricted")
    refused(app, "relabelled", app.post(dict(params, classification="Internal"), body), 403,
            before)
    # Out of order: a counter ahead (properly signed), and a prev that is not the last entry.
    _, next_counter, last = app.head()
    params, _ = app.signed_put(body, "Internal", counter=next_counter + 1)
    refused(app, "counter ahead", app.post(params, body), 409, before)
    params, _ = app.signed_put(body, "Internal", prev=ids[0])
    refused(app, "wrong prev", app.post(params, body), 409, before)
    # A body that is not what was signed, and malformed metadata.
    params, _ = app.signed_put(body, "Internal")
    refused(app, "other body", app.post(params, os.urandom(4096)), 400, before)
    refused(app, "bad class", app.post(dict(params, classification="Secret"), body), 400, before)
    refused(app, "bad hash", app.post(dict(params, hash="zz"), body), 400, before)
    refused(app, "no signature", app.post({k: v for k, v in params.items() if k != "signature"},
                                          body), 400, before)

    # Deletion is a signed tombstone: the next entry of the deleting device's chain.
    c, counter, prev = app.head()
    target = app.get(f"/v1/backups/{ids[0]}").json()
    msg = message(c["user_id"], c["server_id"], app.device, "tombstone", prev,
                  target["classification"], "", target["id"], counter, 0, 1_700_000_100)
    tomb = {"device": app.device, "created": 1_700_000_100, "counter": counter, "prev": prev,
            "signature": base64.b64encode(app.key.sign(msg)).decode()}
    forged = dict(tomb, counter=counter + 5)
    r = app.request("DELETE", f"/v1/backups/{ids[0]}", params=forged)
    expect(r.status_code == 403, f"forged tombstone: {r.status_code} {r.text}")
    r = app.request("DELETE", f"/v1/backups/{ids[0]}", params=tomb)
    expect(r.status_code == 200, f"tombstone: {r.status_code} {r.text}")
    expect(r.json()["id"] == hashlib.sha256(msg).hexdigest(), "tombstone id")
    expect(app.count() == before - 1, "the deleted backup is still listed")
    expect(app.get(f"/v1/backups/{ids[0]}/content").status_code == 404, "deleted content")
    expect(app.get(f"/v1/backups/{ids[0]}").json()["deleted"], "deleted mark")
    chain = app.chain()["entries"]
    expect([e["counter"] for e in chain] == list(range(1, len(chain) + 1)), "chain has a gap")
    expect(chain[-1]["kind"] == "tombstone", "the tombstone is not in the chain")

    # The other device's chain starts at 1, independently.
    params, other_id = other.signed_put(body, "Confidential")
    r = other.post(params, body)
    expect(r.status_code == 201, f"other device: {r.status_code} {r.text}")
    print(json.dumps({"stored": len(bodies) - 1 + 1 + start, "ids": ids, "other": other_id,
                      "tombstone": hashlib.sha256(msg).hexdigest()}))


def revoked(a):
    app = App(a.url, a.cafile, a.token, load_key(a.key), a.device)
    r = app.get("/v1/backups")
    expect(r.status_code == 401, f"a revoked device's token lists: {r.status_code} {r.text}")
    body = os.urandom(64)
    r = app.post({"device": a.device, "classification": "Internal", "created": 1, "counter": 9,
                  "prev": "", "size": len(body), "hash": hashlib.sha256(body).hexdigest(),
                  "signature": "AAAA"}, body)
    expect(r.status_code == 401, f"a revoked device's token posts: {r.status_code} {r.text}")
    print(json.dumps({"refused": True}))


def main():
    p = argparse.ArgumentParser()
    sub = p.add_subparsers(dest="cmd", required=True)
    k = sub.add_parser("keygen")
    k.add_argument("private")
    k.add_argument("public")
    for name in ("run", "revoked"):
        s = sub.add_parser(name)
        s.add_argument("--url", required=True)
        s.add_argument("--cafile", required=True)
        s.add_argument("--token", required=True)
        s.add_argument("--key", required=True)
        s.add_argument("--device", required=True)
        if name == "run":
            s.add_argument("--other-token", required=True)
            s.add_argument("--other-key", required=True)
            s.add_argument("--other-device", required=True)
    a = p.parse_args()
    if a.cmd == "keygen":
        keygen(a.private, a.public)
    elif a.cmd == "run":
        run(a)
    else:
        revoked(a)


if __name__ == "__main__":
    main()
