"""A Google Cloud Storage stand-in on loopback that TensorFlow's own `gs://` filesystem talks to.

Run as a subprocess (``python tests/gcs_stand_in.py DIR TOKEN``); it prints one
line ``READY <proxy_port> <emulator_port>`` once both servers listen, and
serves until killed.

TensorFlow 2.16's built-in GCS filesystem has no endpoint override: it always
calls https://www.googleapis.com (listing, metadata) and
https://storage.googleapis.com (reads). What it does honour is libcurl's
``https_proxy`` and TF's ``CURL_CA_BUNDLE``. So this process runs:

- gcp-storage-emulator (PyPI), in memory, plain HTTP on a loopback port;
- an HTTPS proxy on another loopback port that answers CONNECT for those two
  Google hosts only, terminates TLS with a certificate for them signed by a CA
  made here (written to ``DIR/ca.pem``), and passes each request to the
  emulator. A request without ``Authorization: Bearer TOKEN`` gets GCS's
  answer to an anonymous caller (HTTP 401), which the emulator never gives.

A client then sets ``https_proxy=http://127.0.0.1:<proxy_port>``,
``CURL_CA_BUNDLE=DIR/ca.pem``, ``GOOGLE_AUTH_TOKEN_FOR_TESTING=TOKEN`` and
``NO_GCE_CHECK=true`` and uses ``gs://`` paths unchanged: the requests TF
sends are the ones it would send to GCS, over TLS, through its own libcurl.
Both servers live in this separate process so that a TF call holding the GIL
in the test process cannot starve them.
"""

from __future__ import annotations

import datetime
import http.client
import http.server
import json
import os
import socket
import socketserver
import ssl
import sys

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID

# The hosts TF's GCS filesystem calls (gcs_file_system.cc: kGcsUriBase, kGcsUploadUriBase, kStorageHost).
GOOGLE_HOSTS = ("www.googleapis.com", "storage.googleapis.com")


def write_certificates(directory: str) -> tuple[str, str, str]:
    """A throwaway CA and a leaf certificate for GOOGLE_HOSTS: (ca.pem, leaf.pem, leaf.key) paths."""
    now = datetime.datetime.now(datetime.timezone.utc)
    validity = (now - datetime.timedelta(days=1), now + datetime.timedelta(days=2))
    ca_key = ec.generate_private_key(ec.SECP256R1())
    ca_name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "ganpipe test CA")])
    ca = (x509.CertificateBuilder().subject_name(ca_name).issuer_name(ca_name).public_key(ca_key.public_key())
          .serial_number(x509.random_serial_number()).not_valid_before(validity[0]).not_valid_after(validity[1])
          .add_extension(x509.BasicConstraints(ca=True, path_length=0), critical=True)
          .add_extension(x509.KeyUsage(digital_signature=True, content_commitment=False, key_encipherment=False,
                                       data_encipherment=False, key_agreement=False, key_cert_sign=True,
                                       crl_sign=True, encipher_only=False, decipher_only=False), critical=True)
          .sign(ca_key, hashes.SHA256()))
    leaf_key = ec.generate_private_key(ec.SECP256R1())
    leaf = (x509.CertificateBuilder()
            .subject_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, GOOGLE_HOSTS[0])]))
            .issuer_name(ca_name).public_key(leaf_key.public_key()).serial_number(x509.random_serial_number())
            .not_valid_before(validity[0]).not_valid_after(validity[1])
            .add_extension(x509.SubjectAlternativeName([x509.DNSName(host) for host in GOOGLE_HOSTS]), critical=False)
            .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
            .sign(ca_key, hashes.SHA256()))
    paths = tuple(os.path.join(directory, name) for name in ("ca.pem", "leaf.pem", "leaf.key"))
    with open(paths[0], "wb") as handle:
        handle.write(ca.public_bytes(serialization.Encoding.PEM))
    with open(paths[1], "wb") as handle:
        handle.write(leaf.public_bytes(serialization.Encoding.PEM))
    with open(paths[2], "wb") as handle:
        handle.write(leaf_key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                                            serialization.NoEncryption()))
    return paths


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


class _Forward(http.server.BaseHTTPRequestHandler):
    """Passes each HTTP request read from the decrypted tunnel to the emulator, and its answer back."""

    protocol_version = "HTTP/1.1"  # keep-alive towards libcurl, as GCS does
    emulator_port = 0
    token = ""
    # What GCS says to a request without credentials on a bucket that is not public.
    _ANONYMOUS = json.dumps({"error": {"code": 401, "message": "Anonymous caller does not have storage.objects.list "
                                       "access to the Google Cloud Storage bucket.",
                                       "errors": [{"reason": "required", "domain": "global"}]}}, indent=2).encode()
    _HOP_BY_HOP = {"connection", "keep-alive", "transfer-encoding", "proxy-connection", "content-length"}

    def _forward(self) -> None:
        length = int(self.headers.get("Content-Length") or 0)
        body = self.rfile.read(length) if length else None
        if self.headers.get("Authorization") != f"Bearer {self.token}":
            self._answer(401, "Unauthorized", [("Content-Type", "application/json")], self._ANONYMOUS)
            return
        headers = {key: value for key, value in self.headers.items() if key.lower() not in self._HOP_BY_HOP}
        upstream = http.client.HTTPConnection("127.0.0.1", self.emulator_port, timeout=60)
        try:
            upstream.request(self.command, self.path, body=body, headers=headers)
            answer = upstream.getresponse()
            payload = answer.read()
        finally:
            upstream.close()
        self._answer(answer.status, answer.reason, answer.getheaders(), payload)

    def _answer(self, status: int, reason: str, headers: list, payload: bytes) -> None:
        self.send_response_only(status, reason)
        for key, value in headers:
            if key.lower() not in self._HOP_BY_HOP:
                self.send_header(key, value)
        self.send_header("Content-Length", str(len(payload)))
        self.end_headers()
        if self.command != "HEAD":
            self.wfile.write(payload)

    do_GET = do_POST = do_PUT = do_PATCH = do_DELETE = do_HEAD = _forward

    def log_message(self, format, *args) -> None:  # noqa: A002 - the base class's name
        pass


def make_proxy(emulator_port: int, leaf: str, key: str, token: str) -> socketserver.ThreadingTCPServer:
    """A CONNECT proxy for GOOGLE_HOSTS whose tunnels end here, in TLS, and are answered by the emulator."""
    context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    context.load_cert_chain(leaf, key)
    context.set_alpn_protocols(["http/1.1"])  # the emulator speaks HTTP/1.x only
    forward = type("Forward", (_Forward,), {"emulator_port": emulator_port, "token": token})

    class ConnectHandler(socketserver.StreamRequestHandler):
        def setup(self) -> None:
            # Headers and body leave in separate writes: without this, Nagle's algorithm meets the
            # client's delayed ACK and every request waits 40 ms.
            self.request.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
            super().setup()

        def handle(self) -> None:
            request_line = self.rfile.readline(65537).decode("latin-1").split()
            while self.rfile.readline(65537) not in (b"\r\n", b"\n", b""):
                pass  # the proxy request's headers
            host = request_line[1].rsplit(":", 1)[0] if len(request_line) == 3 else ""
            if request_line[:1] != ["CONNECT"] or host not in GOOGLE_HOSTS:  # nothing else leaves through here
                self.wfile.write(b"HTTP/1.1 403 Forbidden\r\nContent-Length: 0\r\nConnection: close\r\n\r\n")
                return
            self.wfile.write(b"HTTP/1.1 200 Connection established\r\n\r\n")
            self.wfile.flush()
            try:
                tunnel = context.wrap_socket(self.connection, server_side=True)
            except (ssl.SSLError, OSError) as error:
                print(f"gcs_stand_in: TLS handshake failed: {error}", file=sys.stderr, flush=True)
                return
            forward(tunnel, self.client_address, self.server)

    class Server(socketserver.ThreadingTCPServer):
        daemon_threads = True
        allow_reuse_address = True
        request_queue_size = 64

    return Server(("127.0.0.1", 0), ConnectHandler)


def main(directory: str, token: str) -> None:
    import logging

    from gcp_storage_emulator.server import create_server

    logging.disable(logging.INFO)  # one log line per request otherwise
    _, leaf, key = write_certificates(directory)
    emulator_port = free_port()
    emulator = create_server("127.0.0.1", emulator_port, in_memory=True)
    emulator.start()
    proxy = make_proxy(emulator_port, leaf, key, token)
    print(f"READY {proxy.server_address[1]} {emulator_port}", flush=True)
    proxy.serve_forever()


if __name__ == "__main__":
    main(*sys.argv[1:3])
