"""Real local servers for the remote-data tests: an HTTP file server (with Range requests) that counts bytes and
injects faults, moto S3."""
from __future__ import annotations

import contextlib
import functools
import http.server
import io
import os
import re
import threading
from collections import Counter


class _Handler(http.server.SimpleHTTPRequestHandler):
    def log_message(self, *args) -> None:  # quiet
        pass

    def send_head(self):
        """Serve `Range: bytes=a-b` as 206 with exactly those bytes (as object stores and nginx do)."""
        match = re.fullmatch(r"bytes=(\d+)-(\d*)", self.headers.get("Range", ""))
        path = self.translate_path(self.path)
        if match is None or not os.path.isfile(path) or not self.server.ranges:
            return super().send_head()
        size = os.path.getsize(path)
        start, end = int(match[1]), min(int(match[2] or size - 1), size - 1)
        if start >= size:
            self.send_error(416)
            return None
        with open(path, "rb") as fh:
            fh.seek(start)
            body = fh.read(end - start + 1)
        self.send_response(206)
        self.send_header("Content-Range", f"bytes {start}-{end}/{size}")
        self.send_header("Content-Length", str(len(body)))
        self.send_header("Accept-Ranges", "bytes")
        self.end_headers()
        self.range = (start, end + 1)
        return io.BytesIO(body)

    def copyfile(self, source, outputfile) -> None:
        name = os.path.basename(self.path)
        server = self.server
        with server.lock:
            server.requests[name] += 1
            fail = server.fail_times.get(name, 0) >= server.requests[name]
        data = source.read()
        if fail:  # send half the promised body, then drop the connection
            data = data[: len(data) // 2]
        with server.lock:  # counted before the write: a client done reading must find its request counted
            server.bytes_sent += len(data)
            server.sent_by_file[name] += len(data)
            server.served.append((name, *getattr(self, "range", (0, len(data)))))
        outputfile.write(data)
        if fail:
            self.close_connection = True
            with contextlib.suppress(OSError):
                self.connection.shutdown(2)


@contextlib.contextmanager
def http_server(root: str, fail_times: dict[str, int] | None = None, ranges: bool = True):
    """Serve `root` on 127.0.0.1:<free port>; yields the server (.url, .bytes_sent, .sent_by_file, .requests (GETs
    by file name), .served [(name, start, end)] of every GET, .fail_times {name: first GETs cut mid-body}).
    `ranges=False` answers like `python -m http.server`: Range is ignored, the whole file is sent."""
    handler = functools.partial(_Handler, directory=root)
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    server.lock, server.bytes_sent, server.requests = threading.Lock(), 0, Counter()
    server.sent_by_file, server.served, server.ranges = Counter(), [], ranges
    server.fail_times = fail_times or {}
    server.url = f"http://127.0.0.1:{server.server_address[1]}"
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield server
    finally:
        server.shutdown()
        server.server_close()
        thread.join()


@contextlib.contextmanager
def s3_server(bucket: str, files: dict[str, str], monkeypatch):
    """moto's S3 server on 127.0.0.1:<free port> with `files` (key -> local path) uploaded; fake credentials."""
    import boto3
    from moto.server import ThreadedMotoServer

    server = ThreadedMotoServer(ip_address="127.0.0.1", port=0, verbose=False)
    server.start()
    host, port = server.get_host_and_port()
    endpoint = f"http://{host}:{port}"
    for name, value in {"AWS_ACCESS_KEY_ID": "testing", "AWS_SECRET_ACCESS_KEY": "testing",
                        "AWS_DEFAULT_REGION": "us-east-1", "AWS_ENDPOINT_URL": endpoint}.items():
        monkeypatch.setenv(name, value)
    try:
        s3 = boto3.client("s3", endpoint_url=endpoint)
        s3.create_bucket(Bucket=bucket)
        for key, path in files.items():
            s3.upload_file(path, bucket, key)
        yield endpoint
    finally:
        server.stop()
