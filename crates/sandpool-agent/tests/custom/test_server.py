"""Workload of the custom-sandbox tests: an HTTP server on 8000 and a raw TCP echo on 8001.

GET /          -> "label=<LABEL> token=<random> uid=<uid> cwd=<cwd>"
POST /upload   -> "bytes=<n> sha256=<hex>" (the body is hashed as it streams in)
GET /exit      -> answers, then the process exits with status 7
GET /upgrade   -> 101 Switching Protocols to "echo", then echoes raw bytes until EOF
"""
import hashlib
import os
import secrets
import socket
import sys
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

TOKEN = secrets.token_hex(8)


class Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"

    def log_message(self, fmt, *args):
        sys.stderr.write("test-server: " + (fmt % args) + "\n")

    def reply(self, text):
        body = text.encode()
        self.send_response(200)
        self.send_header("content-type", "text/plain")
        self.send_header("content-length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def do_GET(self):
        if self.path == "/upgrade":
            self.send_response(101)
            self.send_header("connection", "upgrade")
            self.send_header("upgrade", "echo")
            self.end_headers()
            self.wfile.flush()
            while True:
                data = self.rfile.read1(1 << 16)
                if not data:
                    break
                self.wfile.write(data)
            self.close_connection = True
            return
        if self.path == "/exit":
            self.reply("bye")
            self.wfile.flush()
            threading.Timer(0.2, lambda: os._exit(7)).start()
            return
        self.reply(
            f"label={os.environ.get('LABEL')} token={TOKEN} uid={os.getuid()} cwd={os.getcwd()}"
        )

    def do_POST(self):
        remaining = int(self.headers["content-length"])
        digest, total = hashlib.sha256(), 0
        while remaining:
            chunk = self.rfile.read(min(remaining, 1 << 16))
            if not chunk:
                break
            digest.update(chunk)
            total += len(chunk)
            remaining -= len(chunk)
        self.reply(f"bytes={total} sha256={digest.hexdigest()}")


def echo(conn):
    with conn:
        while True:
            data = conn.recv(1 << 16)
            if not data:
                conn.shutdown(socket.SHUT_WR)
                return
            conn.sendall(data)


def echo_server():
    srv = socket.create_server(("127.0.0.1", 8001))
    while True:
        conn, _ = srv.accept()
        threading.Thread(target=echo, args=(conn,), daemon=True).start()


threading.Thread(target=echo_server, daemon=True).start()
print(f"test-server up, token {TOKEN}", flush=True)
ThreadingHTTPServer(("127.0.0.1", 8000), Handler).serve_forever()
