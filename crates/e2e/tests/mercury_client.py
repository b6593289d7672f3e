#!/usr/bin/env python3
"""A Mercury (Hecate) client on Python's `websockets`, for enc's integration tests and
benchmarks: a WebSocket implementation not written here.

  upload   --dialect text|json --key K --name N --file F [--declared N] [--drop-after N]
  download --dialect text|json --key K --name N --out F
  list     --dialect text|json --key K
  script   STEP...   (text:S | json:S | bin:N | binbg:N | recv | recvall | drop | sleep:S)

Every command takes --url (wss://HOST:PORT/PATH) and --cafile (the server's certificate).
Results go to stdout; a refusal by the server is printed as it came and exits with 3.
"""

import argparse
import asyncio
import hashlib
import json
import os
import ssl
import sys
import time

import websockets

CHUNK = 1 << 20
# Bytes as JSON numbers, looked up rather than formatted one by one.
NUMBERS = [str(i) for i in range(256)]


class Refused(Exception):
    pass


# Set when a command cut its own connection on purpose: whatever closing it then raises (older
# `websockets` releases raise from the context manager's exit) is the expected outcome.
DROPPED = False


def drop(ws):
    global DROPPED
    DROPPED = True
    ws.transport.abort()


def connect(args):
    ctx = None
    if args.url.startswith("wss://"):
        ctx = ssl.create_default_context(cafile=args.cafile)
    return websockets.connect(
        args.url, ssl=ctx, max_size=8 << 20, compression=None, open_timeout=30,
        ping_interval=None,
    )


async def recv_json(ws):
    msg = await ws.recv()
    if isinstance(msg, bytes):
        raise Refused(f"unexpected binary frame of {len(msg)} bytes")
    return json.loads(msg)


async def auth(ws, dialect, key):
    if dialect == "text":
        await ws.send(f"AUTH {key}")
        reply = await ws.recv()
        if reply != "OK":
            raise Refused(reply)
    else:
        await ws.send(json.dumps({"type": "Auth", "key": key}))
        reply = await recv_json(ws)
        if reply.get("type") != "AuthResult" or not reply.get("success"):
            raise Refused(json.dumps(reply))


def chunks(path):
    with open(path, "rb") as f:
        while True:
            block = f.read(CHUNK)
            if not block:
                return
            yield block


async def refusal(ws, exc):
    """The server's last words after it closed the connection on us, if it said any."""
    last = None
    try:
        while True:
            msg = await asyncio.wait_for(ws.recv(), timeout=5)
            if isinstance(msg, str):
                last = msg
    except (websockets.exceptions.ConnectionClosed, asyncio.TimeoutError):
        pass
    return Refused(last or f"connection closed: {exc}")


async def upload(args):
    try:
        await upload_inner(args)
    except UploadCut as cut:
        raise await refusal(cut.ws, cut.exc)


class UploadCut(Exception):
    def __init__(self, ws, exc):
        self.ws = ws
        self.exc = exc


async def upload_inner(args):
    size = os.path.getsize(args.file)
    declared = size if args.declared is None else args.declared
    async with connect(args) as ws:
        await auth(ws, args.dialect, args.key)
        sent = 0
        n = 0
        if args.dialect == "text":
            await ws.send(f"NAME {args.name}")
            reply = await ws.recv()
            if not isinstance(reply, str) or not reply.startswith("ACCEPT "):
                raise Refused(reply)
            accepted = reply[len("ACCEPT "):]
            try:
                await ws.send("DATA")
                for block in chunks(args.file):
                    if args.drop_after is not None and n >= args.drop_after:
                        drop(ws)
                        print(f"dropped after {sent} bytes")
                        return
                    await ws.send(block)
                    sent += len(block)
                    n += 1
                await ws.send("END")
            except websockets.exceptions.ConnectionClosed as e:
                raise UploadCut(ws, e)
            reply = await ws.recv()
            if reply != f"OK {sent}":
                raise Refused(reply)
        else:
            await ws.send(json.dumps({"type": "UploadRequest", "name": args.name,
                                      "size": declared}))
            reply = await recv_json(ws)
            if reply.get("type") != "UploadAccepted":
                raise Refused(json.dumps(reply))
            accepted = reply["name"]
            blocks = chunks(args.file)
            pending = next(blocks, None)
            if pending is None:
                await ws.send('{"type":"DataChunk","data":[],"is_final":true}')
            while pending is not None:
                if args.drop_after is not None and n >= args.drop_after:
                    drop(ws)
                    print(f"dropped after {sent} bytes")
                    return
                following = next(blocks, None)
                final = following is None
                data = ",".join(map(NUMBERS.__getitem__, pending))
                try:
                    await ws.send('{"type":"DataChunk","data":[%s],"is_final":%s}'
                                  % (data, "true" if final else "false"))
                except websockets.exceptions.ConnectionClosed as e:
                    raise UploadCut(ws, e)
                sent += len(pending)
                n += 1
                reply = await recv_json(ws)
                if reply.get("type") != "ChunkReceived" or reply["bytes_received"] != sent:
                    raise Refused(json.dumps(reply))
                pending = following
            reply = await recv_json(ws)
            if reply.get("type") != "UploadComplete" or reply["total_bytes"] != sent:
                raise Refused(json.dumps(reply))
        print(accepted)


async def download(args):
    digest = hashlib.sha256()
    total = 0
    with open(args.out, "wb") as out:
        async with connect(args) as ws:
            await auth(ws, args.dialect, args.key)
            if args.dialect == "text":
                await ws.send(f"GET {args.name}")
                first = await ws.recv()
                if first != "DATA":
                    raise Refused(first)
                while True:
                    msg = await ws.recv()
                    if isinstance(msg, str):
                        if msg == "END":
                            break
                        raise Refused(msg)
                    if len(msg) > CHUNK:
                        raise Refused(f"frame of {len(msg)} bytes")
                    out.write(msg)
                    digest.update(msg)
                    total += len(msg)
            else:
                await ws.send(json.dumps({"type": "GetRequest", "name": args.name}))
                while True:
                    reply = await recv_json(ws)
                    if reply.get("type") != "DataChunk":
                        raise Refused(json.dumps(reply))
                    data = bytes(reply["data"])
                    if len(data) > CHUNK:
                        raise Refused(f"chunk of {len(data)} bytes")
                    out.write(data)
                    digest.update(data)
                    total += len(data)
                    if reply["is_final"]:
                        break
    print(f"{total} {digest.hexdigest()}")


async def listing(args):
    async with connect(args) as ws:
        await auth(ws, args.dialect, args.key)
        if args.dialect == "text":
            await ws.send("LIST")
            while True:
                msg = await ws.recv()
                if msg == "END":
                    break
                if not isinstance(msg, str) or msg.startswith("ERROR "):
                    raise Refused(msg)
                print(msg)
        else:
            await ws.send(json.dumps({"type": "ListRequest"}))
            reply = await recv_json(ws)
            if reply.get("type") != "FileList":
                raise Refused(json.dumps(reply))
            for f in reply["files"]:
                print(f"{f['name']}\t{f['size']}\t{f['created']}")


async def script(args):
    """Runs steps on one connection and prints what the server sent, one line per message
    (`<binary N>` for binary frames, `<closed CODE>` when it closed, `<timeout>`)."""
    background = []
    async with connect(args) as ws:
        for step in args.steps:
            kind, _, arg = step.partition(":")
            if kind == "text" or kind == "json":
                await ws.send(arg)
            elif kind == "bin":
                await ws.send(os.urandom(int(arg)))
            elif kind == "binbg":
                # Sent in the background: a frame the server refuses unread may never finish
                # sending, and what the server says meanwhile is still read.
                background.append(asyncio.ensure_future(ws.send(os.urandom(int(arg)))))
            elif kind == "sleep":
                await asyncio.sleep(float(arg))
            elif kind == "drop":
                drop(ws)
                return
            elif kind in ("recv", "recvall"):
                while True:
                    try:
                        msg = await asyncio.wait_for(ws.recv(), timeout=float(arg or 10))
                    except asyncio.TimeoutError:
                        print("<timeout>")
                        break
                    except websockets.exceptions.ConnectionClosed as e:
                        code = e.rcvd.code if e.rcvd else "none"
                        print(f"<closed {code}>")
                        return
                    if isinstance(msg, bytes):
                        print(f"<binary {len(msg)}>")
                    else:
                        print(msg[:300])
                    sys.stdout.flush()
                    if kind == "recv":
                        break
            else:
                raise SystemExit(f"unknown step {step!r}")


def main():
    p = argparse.ArgumentParser()
    p.add_argument("--url", required=True)
    p.add_argument("--cafile")
    sub = p.add_subparsers(dest="cmd", required=True)
    for name in ("upload", "download", "list"):
        s = sub.add_parser(name)
        s.add_argument("--dialect", choices=["text", "json"], default="text")
        s.add_argument("--key", required=True)
        if name != "list":
            s.add_argument("--name", required=True)
        if name == "upload":
            s.add_argument("--file", required=True)
            s.add_argument("--declared", type=int)
            s.add_argument("--drop-after", type=int)
        if name == "download":
            s.add_argument("--out", required=True)
    s = sub.add_parser("script")
    s.add_argument("steps", nargs="+")
    args = p.parse_args()
    run = {"upload": upload, "download": download, "list": listing, "script": script}
    started = time.monotonic()
    try:
        asyncio.run(run[args.cmd](args))
    except Refused as e:
        print(f"refused: {e}", file=sys.stderr)
        sys.exit(3)
    except websockets.exceptions.ConnectionClosed as e:
        if not DROPPED:
            print(f"connection closed: {e}", file=sys.stderr)
            sys.exit(4)
    print(f"elapsed {time.monotonic() - started:.3f}", file=sys.stderr)


if __name__ == "__main__":
    main()
