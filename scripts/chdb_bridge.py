#!/usr/bin/env python3
"""Test-only bridge: ClickHouse's HTTP interface, served from chdb (ClickHouse embedded in Python).

chdb runs the ClickHouse engine in-process and cannot listen on a socket. This bridge gives it the part of
ClickHouse's HTTP interface that clickhouse-go's HTTP protocol (clickhouse.HTTP) uses, so the store's tests can run
the project's real statements, exactly as clickhouse-go sends them, on a current ClickHouse engine. Started and
stopped by scripts/chdb.sh; not for production.

What it implements (see docs/services.md):
  GET /ping, GET / without a query     "Ok.\\n"
  GET or POST / with a statement       the statement is the `query` URL parameter, the POST body, or the `query`
                                       parameter followed by a newline and the body (as ClickHouse concatenates them);
                                       it is run as is, never rewritten
  database=NAME (or X-ClickHouse-Database)
                                       made current with USE before the statement (default: `default`)
  param_NAME=VALUE                     query parameters for {NAME:Type} placeholders
  other URL parameters                 settings: SET NAME = 'VALUE' before the statement, SET NAME = DEFAULT after
  default_format=FMT                   output format when the statement has no FORMAT clause (default TabSeparated)
  client_protocol_version=N            Native output is written in protocol revision N's layout, like the server does
  query=INSERT ... FORMAT FMT + body   THE ONE MAPPING: the body is the data; the statement minus its trailing
                                       "FORMAT FMT" goes to chdb's streaming insert (Session.send_insert) with format
                                       FMT, so the table and column list stay exactly as sent
  errors                               HTTP 500, body "Code: NNN. DB::Exception: ...", header X-ClickHouse-Exception-Code
  request bodies                       Content-Length or chunked; Content-Encoding gzip/deflate are decoded.
                                       ClickHouse's own block compression (compress=1/decompress=1) and external
                                       tables are rejected with a clear error.

One chdb Session (persistent data directory) serves every request, one statement at a time under a lock: HTTP
requests without session_id are independent in ClickHouse, and USE/SET are re-applied for every request.

Why Native output is transcoded: over HTTP, ClickHouse writes Native blocks for the client's protocol revision
(client_protocol_version), i.e. with a block-info header and a per-column "custom serialization" flag. chdb offers no
way to set that revision and writes the revision-0 layout, which clickhouse-go cannot read. The bridge therefore adds
those bytes, walking each column's data by its type to find where it ends; the data itself is copied unchanged.
Inserts need nothing of the kind: clickhouse-go sends revision-0 Native blocks over HTTP.

Standard library and chdb only.
"""

import argparse
import gzip
import json
import logging
import os
import re
import signal
import struct
import sys
import threading
import time
import uuid
import zlib
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import parse_qsl, urlsplit

# The test ClickHouse 18.16 server runs in UTC; make chdb's server time zone the same. Must precede importing chdb.
os.environ.setdefault("TZ", "UTC")

import chdb  # noqa: E402
from chdb import session as chdb_session  # noqa: E402

log = logging.getLogger("chdb_bridge")

# ---------------------------------------------------------------------------------------------------------------------
# Errors


class ClickHouseError(Exception):
    """An error to report as ClickHouse does: HTTP 500, exception text, X-ClickHouse-Exception-Code."""

    def __init__(self, code, text):
        super().__init__(text)
        self.code = code
        self.text = text


_CODE_RE = re.compile(r"^Code:\s*(\d+)\.")


def from_chdb(exc):
    """chdb raises RuntimeError subclasses whose text is ClickHouse's exception text ("Code: NNN. DB::Exception")."""
    text = str(exc).strip()
    m = _CODE_RE.match(text)
    if m:
        return ClickHouseError(int(m.group(1)), text)
    return ClickHouseError(1001, "Code: 1001. DB::Exception: chdb: %s. (STD_EXCEPTION)" % text)


def not_implemented(what):
    return ClickHouseError(48, "Code: 48. DB::Exception: chdb bridge: %s. (NOT_IMPLEMENTED)" % what)


def bad_request(what):
    return ClickHouseError(27, "Code: 27. DB::Exception: chdb bridge: %s. (CANNOT_PARSE_INPUT_ASSERTION_FAILED)" % what)


# ---------------------------------------------------------------------------------------------------------------------
# Native format: from chdb's revision-0 layout to the layout of the client's protocol revision.

MIN_REVISION_WITH_CUSTOM_SERIALIZATION = 54454

# BlockInfo as the server writes it: field 1 is_overflows = false, field 2 bucket_num = -1, field 0 = end.
BLOCK_INFO = b"\x01\x00\x02\xff\xff\xff\xff\x00"

FIXED_SIZES = {
    "Nothing": 1,
    "UInt8": 1, "Int8": 1, "Bool": 1, "Enum8": 1,
    "UInt16": 2, "Int16": 2, "Enum16": 2, "Date": 2, "BFloat16": 2,
    "UInt32": 4, "Int32": 4, "Float32": 4, "DateTime": 4, "Date32": 4, "IPv4": 4, "Decimal32": 4, "Time": 4,
    "UInt64": 8, "Int64": 8, "Float64": 8, "DateTime64": 8, "Decimal64": 8, "Time64": 8,
    "UInt128": 16, "Int128": 16, "UUID": 16, "IPv6": 16, "Decimal128": 16,
    "UInt256": 32, "Int256": 32, "Decimal256": 32,
}
for _unit in ("Nanosecond", "Microsecond", "Millisecond", "Second", "Minute", "Hour", "Day", "Week", "Month",
              "Quarter", "Year"):
    FIXED_SIZES["Interval" + _unit] = 8

# Geo types are aliases of arrays and tuples of Float64.
ALIASES = {
    "Point": "Tuple(Float64, Float64)",
    "Ring": "Array(Point)",
    "LineString": "Array(Point)",
    "Polygon": "Array(Ring)",
    "MultiLineString": "Array(LineString)",
    "MultiPolygon": "Array(Polygon)",
}


class TranscodeError(Exception):
    pass


def read_varint(buf, pos):
    result = shift = 0
    while True:
        if pos >= len(buf):
            raise TranscodeError("truncated varint")
        b = buf[pos]
        pos += 1
        result |= (b & 0x7F) << shift
        if b < 0x80:
            return result, pos
        shift += 7
        if shift > 63:
            raise TranscodeError("varint too long")


def read_string(buf, pos):
    n, pos = read_varint(buf, pos)
    end = pos + n
    if end > len(buf):
        raise TranscodeError("truncated string")
    return bytes(buf[pos:end]), end


def split_args(s):
    """Split a type's argument list at top-level commas, respecting parentheses and quotes."""
    args, depth, start, i, quote = [], 0, 0, 0, None
    while i < len(s):
        c = s[i]
        if quote:
            if c == "\\":
                i += 1
            elif c == quote:
                quote = None
        elif c in "'`\"":
            quote = c
        elif c == "(":
            depth += 1
        elif c == ")":
            depth -= 1
        elif c == "," and depth == 0:
            args.append(s[start:i].strip())
            start = i + 1
        i += 1
    tail = s[start:].strip()
    if tail:
        args.append(tail)
    return args


_NAMED_ELEMENT_RE = re.compile(r"^(`(?:[^`\\]|\\.)*`|\"(?:[^\"\\]|\\.)*\"|[A-Za-z_][A-Za-z0-9_]*)\s+(.+)$", re.S)


def element_type(arg):
    """A Tuple element is "Type" or "name Type"."""
    paren = arg.find("(")
    head = arg if paren < 0 else arg[:paren]
    if arg[:1] in "`\"" or re.search(r"\s", head.strip()):
        m = _NAMED_ELEMENT_RE.match(arg)
        if m:
            return m.group(2).strip()
    return arg


_type_cache = {}


def parse_type(t):
    """Returns (name, [argument strings])."""
    t = t.strip()
    cached = _type_cache.get(t)
    if cached is not None:
        return cached
    paren = t.find("(")
    if paren < 0:
        result = (t, [])
    else:
        if not t.endswith(")"):
            raise TranscodeError("cannot parse type %r" % t)
        result = (t[:paren].strip(), split_args(t[paren + 1:-1]))
    if result[0] in ALIASES and not result[1]:
        result = parse_type(ALIASES[result[0]])
    _type_cache[t] = result
    return result


def skip_prefix(t, buf, pos):
    """Skip a column's serialization state prefix (written once, before its data)."""
    name, args = parse_type(t)
    if name == "LowCardinality":
        return pos + 8  # key serialization version, UInt64
    if name in ("Array", "Nullable"):
        return skip_prefix(args[0], buf, pos)
    if name == "Tuple":
        for a in args:
            pos = skip_prefix(element_type(a), buf, pos)
        return pos
    if name == "Map":
        return skip_prefix(args[1], buf, skip_prefix(args[0], buf, pos))
    return pos


def skip_data(t, n, buf, pos):
    """Skip the data of n values of type t."""
    if n == 0:
        return pos
    name, args = parse_type(t)
    size = FIXED_SIZES.get(name)
    if size is not None:
        return pos + size * n
    if name == "String":
        for _ in range(n):
            length, pos = read_varint(buf, pos)
            pos += length
        return pos
    if name == "FixedString":
        return pos + int(args[0]) * n
    if name == "Decimal":
        precision = int(args[0])
        width = 4 if precision <= 9 else 8 if precision <= 18 else 16 if precision <= 38 else 32
        return pos + width * n
    if name == "Nullable":
        return skip_data(args[0], n, buf, pos + n)
    if name in ("Array", "Map"):
        end = pos + 8 * n
        if end > len(buf):
            raise TranscodeError("truncated array offsets")
        total = struct.unpack_from("<Q", buf, end - 8)[0]
        if name == "Array":
            return skip_data(args[0], total, buf, end)
        return skip_data(args[1], total, buf, skip_data(args[0], total, buf, end))
    if name == "Tuple":
        for a in args:
            pos = skip_data(element_type(a), n, buf, pos)
        return pos
    if name == "LowCardinality":
        inner = args[0]
        inner_name, inner_args = parse_type(inner)
        dictionary = inner_args[0] if inner_name == "Nullable" else inner
        done = 0
        while done < n:
            flags = struct.unpack_from("<Q", buf, pos)[0]
            pos += 8
            if flags & (1 << 8):
                raise TranscodeError("LowCardinality with a global dictionary")
            if flags & (1 << 9):  # additional keys: the granule's dictionary
                keys = struct.unpack_from("<Q", buf, pos)[0]
                pos = skip_data(dictionary, keys, buf, pos + 8)
            rows = struct.unpack_from("<Q", buf, pos)[0]
            pos += 8 + rows * (1, 2, 4, 8)[flags & 0xFF]
            done += rows
        return pos
    raise TranscodeError("column type %s" % t)


def transcode_native(data, revision):
    """chdb's Native output (revision 0) -> the Native layout ClickHouse writes for a client of `revision`."""
    if revision <= 0 or not data:
        return data
    buf = memoryview(data)
    out = bytearray()
    pos = 0
    while pos < len(buf):
        out += BLOCK_INFO
        start = pos
        ncols, pos = read_varint(buf, pos)
        nrows, pos = read_varint(buf, pos)
        out += buf[start:pos]
        for _ in range(ncols):
            start = pos
            _, pos = read_string(buf, pos)
            col_type, pos = read_string(buf, pos)
            out += buf[start:pos]
            if revision >= MIN_REVISION_WITH_CUSTOM_SERIALIZATION:
                out.append(0)  # no custom serialization
            if nrows:
                start = pos
                t = col_type.decode()
                pos = skip_data(t, nrows, buf, skip_prefix(t, buf, pos))
                if pos > len(buf):
                    raise TranscodeError("column data of type %s runs past the end of the output" % t)
                out += buf[start:pos]
    return bytes(out)


# ---------------------------------------------------------------------------------------------------------------------
# Requests

# URL parameters of the HTTP interface itself, not settings.
HTTP_PARAMS = {
    "query", "database", "default_format", "client_protocol_version", "query_id", "quota_key", "user", "password",
    "session_id", "session_timeout", "session_check", "buffer_size", "wait_end_of_query", "stacktrace", "role",
}
# Settings that only steer the HTTP layer: accepted and ignored (the bridge never compresses and answers in one piece).
HTTP_SETTINGS_IGNORED = {
    "enable_http_compression", "http_zlib_compression_level", "send_progress_in_http_headers",
    "http_headers_progress_interval_ms", "add_http_cors_header", "http_response_buffer_size",
    "http_wait_end_of_query", "http_write_exception_in_output_format", "http_response_headers",
}

_SETTING_NAME_RE = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*$")
_INSERT_FORMAT_RE = re.compile(r"^(\s*INSERT\s+INTO\s.*?)\s+FORMAT\s+([A-Za-z0-9_]+)\s*$", re.I | re.S)
_FORMAT_CLAUSE_RE = re.compile(r"\bFORMAT\s+([A-Za-z0-9_]+)\s*;?\s*$", re.I)

CONTENT_TYPES = {
    "TabSeparated": "text/tab-separated-values; charset=UTF-8",
    "TSV": "text/tab-separated-values; charset=UTF-8",
    "CSV": "text/csv; charset=UTF-8; header=absent",
    "JSON": "application/json; charset=UTF-8",
    "JSONEachRow": "application/x-ndjson; charset=UTF-8",
}


def sql_string(value):
    return "'" + value.replace("\\", "\\\\").replace("'", "\\'") + "'"


def sql_identifier(name):
    return "`" + name.replace("\\", "\\\\").replace("`", "\\`") + "`"


class Engine:
    """One chdb Session, one statement at a time."""

    def __init__(self, path):
        self.lock = threading.Lock()
        self.session = chdb_session.Session(path)
        self.version = self._scalar("SELECT version()")
        self.timezone = self._scalar("SELECT timezone()")
        self.display_name = self._scalar("SELECT displayName()")

    def _scalar(self, sql):
        return self.session.query(sql, "TabSeparatedRaw").bytes().decode().strip()

    def close(self):
        with self.lock:
            self.session.close()

    def run(self, database, settings, statement, fmt, params, insert_data):
        """Runs one statement; returns (output bytes, summary dict). Raises ClickHouseError."""
        with self.lock:
            applied = []
            try:
                try:
                    self.session.query("USE " + sql_identifier(database), "TabSeparated")
                    for name, value in settings:
                        self.session.query("SET %s = %s" % (name, sql_string(value)), "TabSeparated")
                        applied.append(name)
                    if insert_data is not None:
                        inserter = self.session.send_insert(statement, fmt)
                        try:
                            inserter.append(insert_data)
                        except BaseException:
                            inserter.cancel()
                            raise
                        res = inserter.finish()
                        return b"", {"written_rows": res.rows_written, "written_bytes": res.bytes_written,
                                     "elapsed_ns": int(res.elapsed * 1e9)}
                    res = self.session.query(statement, fmt, params=params or None)
                    if res.has_error():
                        raise RuntimeError(res.error_message())
                    return res.bytes(), {"read_rows": res.rows_read(), "read_bytes": res.bytes_read(),
                                         "written_rows": res.rows_written(), "written_bytes": res.bytes_written(),
                                         "elapsed_ns": int(res.elapsed() * 1e9)}
                except (RuntimeError, ValueError) as e:  # chdb.ChdbError is a RuntimeError
                    raise from_chdb(e) from None
            finally:
                for name in applied:
                    try:
                        self.session.query("SET %s = DEFAULT" % name, "TabSeparated")
                    except RuntimeError as e:
                        log.warning("could not reset setting %s: %s", name, e)


class Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    server_version = "chdb-bridge"
    # Idle keep-alive connections are closed after this many seconds. Long, so that a client never sends a request
    # on a connection the bridge is closing (clickhouse-go's requests are POSTs, which Go does not retry).
    timeout = KEEP_ALIVE_SECONDS = 600
    engine = None  # set in main

    def log_message(self, fmt, *args):  # the default logs every request to stderr; we log our own line
        pass

    def do_GET(self):
        self.handle_request(b"")

    def do_POST(self):
        try:
            body = self.read_body()
        except ClickHouseError as e:
            self.close_connection = True
            self.send_error_text(e)
            return
        self.handle_request(body)

    def read_body(self):
        if "chunked" in self.headers.get("Transfer-Encoding", "").lower():
            parts = []
            while True:
                line = self.rfile.readline(65537)
                if not line:
                    raise bad_request("truncated chunked request body")
                size = int(line.split(b";", 1)[0].strip() or b"0", 16)
                if size == 0:
                    while self.rfile.readline(65537) not in (b"\r\n", b"\n", b""):
                        pass  # trailers
                    break
                parts.append(self.rfile.read(size))
                self.rfile.readline()
            body = b"".join(parts)
        else:
            length = int(self.headers.get("Content-Length") or 0)
            body = self.rfile.read(length) if length else b""
        encoding = self.headers.get("Content-Encoding", "").strip().lower()
        if encoding in ("", "identity"):
            return body
        if encoding == "gzip":
            return gzip.decompress(body)
        if encoding == "deflate":
            return zlib.decompress(body)
        raise not_implemented("request Content-Encoding %r (use no compression, or gzip/deflate)" % encoding)

    def handle_request(self, body):
        t0 = time.monotonic()
        url = urlsplit(self.path)
        params = dict(parse_qsl(url.query, keep_blank_values=True))
        query_id = params.get("query_id") or str(uuid.uuid4())
        status, summary, statement = 200, {}, ""
        try:
            if url.path == "/ping" or (url.path == "/" and self.command == "GET" and "query" not in params):
                self.send_bytes(200, b"Ok.\n", "text/html; charset=UTF-8", query_id)
                return
            if url.path != "/":
                self.send_bytes(404, b"There is no handle %s\n" % url.path.encode(), "text/plain; charset=UTF-8",
                                query_id)
                return
            if params.get("decompress") == "1" or params.get("compress") == "1":
                raise not_implemented("ClickHouse block compression (compress=1/decompress=1); "
                                      "disable compression in the client")
            if "multipart/form-data" in self.headers.get("Content-Type", ""):
                raise not_implemented("external tables (multipart/form-data requests)")

            database = params.get("database") or self.headers.get("X-ClickHouse-Database") or "default"
            settings, query_params = [], {}
            for name, value in params.items():
                if name.startswith("param_"):
                    query_params[name[len("param_"):]] = value
                elif name in HTTP_PARAMS or name in HTTP_SETTINGS_IGNORED:
                    continue
                elif name.endswith("_format") or name.endswith("_structure") or name.endswith("_types"):
                    raise not_implemented("external tables (URL parameter %s)" % name)
                elif not _SETTING_NAME_RE.match(name):
                    raise bad_request("invalid setting name %r" % name)
                else:
                    settings.append((name, value))

            query = params.get("query")
            text = body.decode("utf-8", "surrogateescape")
            insert_data = None
            insert = _INSERT_FORMAT_RE.match(query) if query is not None and body else None
            if insert:
                statement, fmt, insert_data = insert.group(1), insert.group(2), body
            else:
                if query is not None:
                    statement = query + ("\n" + text if text else "")
                else:
                    statement = text
                if not statement.strip():
                    raise ClickHouseError(62, "Code: 62. DB::Exception: Empty query. (SYNTAX_ERROR)")
                m = _FORMAT_CLAUSE_RE.search(statement)
                fmt = m.group(1) if m else (params.get("default_format") or "TabSeparated")

            output, summary = self.engine.run(database, settings, statement, fmt, query_params, insert_data)
            if insert_data is None and fmt == "Native":
                revision = int(params.get("client_protocol_version") or 0)
                try:
                    output = transcode_native(output, revision)
                except (TranscodeError, IndexError, struct.error) as e:
                    raise not_implemented("cannot write Native output for protocol revision %d: %s"
                                          % (revision, e)) from None
            self.send_bytes(200, output, CONTENT_TYPES.get(fmt, "application/octet-stream"), query_id,
                            fmt=fmt, summary=summary)
        except ClickHouseError as e:
            status = 500
            self.send_error_text(e, query_id)
        except Exception as e:  # a bug in the bridge: still answer like ClickHouse, and log it
            log.exception("bridge error")
            status = 500
            self.send_error_text(ClickHouseError(
                1001, "Code: 1001. DB::Exception: chdb bridge: %s: %s. (STD_EXCEPTION)" % (type(e).__name__, e)),
                query_id)
        finally:
            if statement:
                first = " ".join(statement.split())[:160]
                log.info("%s %d %.1fms %s", self.command, status, (time.monotonic() - t0) * 1000, first)

    def send_error_text(self, err, query_id=""):
        self.send_response(500)
        self.send_header("X-ClickHouse-Exception-Code", str(err.code))
        body = (err.text + "\n").encode("utf-8", "replace")
        self.common_headers(query_id)
        self.send_header("Content-Type", "text/plain; charset=UTF-8")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def send_bytes(self, status, body, content_type, query_id, fmt=None, summary=None):
        self.send_response(status)
        self.common_headers(query_id)
        if fmt:
            self.send_header("X-ClickHouse-Format", fmt)
        if summary is not None:
            self.send_header("X-ClickHouse-Summary", json.dumps({k: str(v) for k, v in summary.items()}))
        self.send_header("Content-Type", content_type)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        if self.command != "HEAD":
            self.wfile.write(body)

    def common_headers(self, query_id):
        if query_id:
            self.send_header("X-ClickHouse-Query-Id", query_id)
        self.send_header("X-ClickHouse-Server-Display-Name", self.engine.display_name)
        self.send_header("X-ClickHouse-Timezone", self.engine.timezone)
        self.send_header("Keep-Alive", "timeout=%d" % self.KEEP_ALIVE_SECONDS)


class Server(ThreadingHTTPServer):
    daemon_threads = True
    allow_reuse_address = True


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--host", default="127.0.0.1")
    ap.add_argument("--port", type=int, default=8124)
    ap.add_argument("--data", required=True, help="chdb data directory (created if missing)")
    args = ap.parse_args()
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(message)s", stream=sys.stderr)

    os.makedirs(args.data, exist_ok=True)
    try:
        engine = Engine(args.data)
    except Exception as e:
        log.error("cannot open chdb at %s: %s", args.data, e)
        return 1
    Handler.engine = engine
    try:
        server = Server((args.host, args.port), Handler)
    except OSError as e:
        log.error("cannot listen on %s:%d: %s", args.host, args.port, e)
        engine.close()
        return 1

    def stop(signum, _frame):
        log.info("signal %d: shutting down", signum)
        threading.Thread(target=server.shutdown, daemon=True).start()

    signal.signal(signal.SIGTERM, stop)
    signal.signal(signal.SIGINT, stop)
    log.info("chdb %s (ClickHouse %s, time zone %s) serving http://%s:%d, data %s, pid %d",
             chdb.__version__, engine.version, engine.timezone, args.host, args.port, args.data, os.getpid())
    try:
        server.serve_forever(poll_interval=0.2)
    finally:
        server.server_close()
        engine.close()
        log.info("stopped")
    return 0


if __name__ == "__main__":
    sys.exit(main())
