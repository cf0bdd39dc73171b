"""Local benchmark target: an asyncio HTTP/1.1 server (keep-alive) answering small JSON after a fixed latency.

    python bench/target.py --latency 0.1 [--port 0] [--host 127.0.0.1]

Prints one line ``READY <port>`` on stdout once it listens. Every request waits ``--latency`` seconds
(``asyncio.sleep``: no thread per connection, so hundreds of concurrent keep-alive connections cost
little CPU) and gets ``{"ok": true, "path": ..., "n": ...}`` with status 200.

Control endpoints (not delayed):

- ``POST /__flaky`` with ``{"paths": [...], "fail_times": 2, "status": 503}``: each listed path answers
  ``status`` for its first ``fail_times`` requests, then 200. Resets all counters.
- ``GET /__stats``: ``{"requests": total, "failed": answered-with-failure, "max_inflight": ...,
  "per_path_failed": {...}}``.
- ``POST /__reset``: zero the counters (keeps the flaky list).

Only the standard library; runs as a separate process (bench/run.py starts it).
"""

from __future__ import annotations

import argparse
import asyncio
import json
import sys

MAX_HEADER_BYTES = 64 * 1024


class State:
    def __init__(self, latency: float) -> None:
        self.latency = latency
        self.requests = 0
        self.failed = 0
        self.inflight = 0
        self.max_inflight = 0
        self.connections = 0
        self.max_connections = 0
        self.flaky: dict[str, int] = {}  # path -> failures still to give
        self.flaky_status = 503
        self.per_path_failed: dict[str, int] = {}

    def reset(self) -> None:
        self.requests = self.failed = self.max_inflight = self.max_connections = 0
        self.per_path_failed = {}


def _response(status: int, body: bytes, keep_alive: bool) -> bytes:
    reason = {200: "OK", 404: "Not Found", 400: "Bad Request", 503: "Service Unavailable"}.get(status, "Status")
    head = (
        f"HTTP/1.1 {status} {reason}\r\n"
        "Content-Type: application/json\r\n"
        f"Content-Length: {len(body)}\r\n"
        f"Connection: {'keep-alive' if keep_alive else 'close'}\r\n"
        "\r\n"
    )
    return head.encode("ascii") + body


async def _control(state: State, method: str, path: str, body: bytes) -> tuple[int, bytes]:
    if path == "/__stats":
        data = {
            "requests": state.requests, "failed": state.failed, "max_inflight": state.max_inflight,
            "max_connections": state.max_connections, "per_path_failed": state.per_path_failed,
        }
        return 200, json.dumps(data).encode()
    if path == "/__reset" and method == "POST":
        state.reset()
        return 200, b'{"ok": true}'
    if path == "/__flaky" and method == "POST":
        spec = json.loads(body or b"{}")
        times = int(spec.get("fail_times", 2))
        state.flaky = {p: times for p in spec.get("paths", [])}
        state.flaky_status = int(spec.get("status", 503))
        state.reset()
        return 200, json.dumps({"ok": True, "paths": len(state.flaky)}).encode()
    return 404, b'{"error": "unknown control endpoint"}'


async def handle(state: State, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
    state.connections += 1
    state.max_connections = max(state.max_connections, state.connections)
    try:
        while True:
            try:
                head = await reader.readuntil(b"\r\n\r\n")
            except (asyncio.IncompleteReadError, ConnectionError):
                return
            except asyncio.LimitOverrunError:
                writer.write(_response(400, b'{"error": "headers too large"}', False))
                return
            lines = head.decode("latin-1").split("\r\n")
            try:
                method, target, version = lines[0].split(" ", 2)
            except ValueError:
                writer.write(_response(400, b'{"error": "bad request line"}', False))
                return
            headers = {}
            for line in lines[1:]:
                if ":" in line:
                    k, v = line.split(":", 1)
                    headers[k.strip().lower()] = v.strip()
            length = int(headers.get("content-length", "0") or 0)
            body = await reader.readexactly(length) if length else b""
            conn = headers.get("connection", "").lower()
            keep_alive = conn != "close" if version == "HTTP/1.1" else conn == "keep-alive"
            path = target.split("?", 1)[0]

            if path.startswith("/__"):
                status, payload = await _control(state, method, path, body)
            else:
                state.requests += 1
                state.inflight += 1
                state.max_inflight = max(state.max_inflight, state.inflight)
                try:
                    if state.latency > 0:
                        await asyncio.sleep(state.latency)
                finally:
                    state.inflight -= 1
                left = state.flaky.get(path, 0)
                if left > 0:
                    state.flaky[path] = left - 1
                    state.failed += 1
                    state.per_path_failed[path] = state.per_path_failed.get(path, 0) + 1
                    status, payload = state.flaky_status, b'{"ok": false, "error": "try again"}'
                else:
                    status = 200
                    payload = json.dumps({"ok": True, "path": path, "n": state.requests}).encode()
            writer.write(_response(status, payload, keep_alive))
            await writer.drain()
            if not keep_alive:
                return
    finally:
        state.connections -= 1
        try:
            writer.close()
        except Exception:  # noqa: S110 - peer already gone
            pass


async def serve(host: str, port: int, latency: float) -> None:
    state = State(latency)
    server = await asyncio.start_server(
        lambda r, w: handle(state, r, w), host, port, backlog=2048, limit=MAX_HEADER_BYTES,
    )
    bound = server.sockets[0].getsockname()[1]
    print(f"READY {bound}", flush=True)
    async with server:
        await server.serve_forever()


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--host", default="127.0.0.1")
    ap.add_argument("--port", type=int, default=0, help="0 = any free port (printed as READY <port>)")
    ap.add_argument("--latency", type=float, default=0.1, help="seconds before each answer (default 0.1)")
    args = ap.parse_args(argv)
    try:
        asyncio.run(serve(args.host, args.port, args.latency))
    except KeyboardInterrupt:
        pass
    return 0


if __name__ == "__main__":
    sys.exit(main())
