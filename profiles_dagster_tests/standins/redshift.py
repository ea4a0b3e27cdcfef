"""Redshift's stand-in: Postgres 15 behind a small asyncio proxy that speaks to redshift-connector.

Why a proxy: the connector sends Redshift-only startup parameters (client_protocol_version, driver
and OS versions) that Postgres rejects, and it cannot parse Debian's version string "15.18 (Debian ...)".
The proxy answers the SSL request with "no", drops unknown startup parameters and trims server_version.
Redshift-only functions the product emits get SQL shims in the stand-in database (SHIMS), so a statement
that uses something we did not shim fails loudly instead of passing by accident.
"""

from __future__ import annotations

import asyncio
import contextlib
import re
import struct
import threading
from collections.abc import Iterator

from profiles_dagster_tests.standins.postgres import PostgresServer, free_port

_SSL_REQUEST = 80877103
_GSS_REQUEST = 80877104
_PROTOCOL_3 = 196608
_KEEP = {b"user", b"database", b"options", b"application_name", b"client_encoding", b"datestyle", b"timezone"}

SHIMS = [
    # Redshift's SHA1(varchar) and its synonym SHA return lowercase hex text
    "CREATE EXTENSION IF NOT EXISTS pgcrypto",
    "CREATE OR REPLACE FUNCTION sha1(text) RETURNS text LANGUAGE sql IMMUTABLE AS "
    "$$ SELECT encode(digest($1, 'sha1'), 'hex') $$",
    "CREATE OR REPLACE FUNCTION sha(text) RETURNS text LANGUAGE sql IMMUTABLE AS $$ SELECT sha1($1) $$",
    # DATEDIFF(part, a, b) counts the part's boundaries crossed (the REWRITES quote the part)
    """CREATE OR REPLACE FUNCTION datediff(part text, a timestamp, b timestamp) RETURNS bigint
    LANGUAGE sql IMMUTABLE AS $$ SELECT CASE lower(part)
      WHEN 'day' THEN (b::date - a::date)::bigint
      WHEN 'week' THEN ((date_trunc('week', b)::date - date_trunc('week', a)::date) / 7)::bigint
      WHEN 'month' THEN ((extract(year FROM b) * 12 + extract(month FROM b))
                        - (extract(year FROM a) * 12 + extract(month FROM a)))::bigint
      WHEN 'year' THEN (extract(year FROM b) - extract(year FROM a))::bigint
      WHEN 'hour' THEN ((extract(epoch FROM date_trunc('hour', b))
                         - extract(epoch FROM date_trunc('hour', a))) / 3600)::bigint
      WHEN 'minute' THEN ((extract(epoch FROM date_trunc('minute', b))
                           - extract(epoch FROM date_trunc('minute', a))) / 60)::bigint
      WHEN 'second' THEN (extract(epoch FROM date_trunc('second', b))
                          - extract(epoch FROM date_trunc('second', a)))::bigint
    END $$""",
]


async def _read_startup(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> bytes | None:
    while True:
        (length,) = struct.unpack("!i", await reader.readexactly(4))
        body = await reader.readexactly(length - 4)
        (code,) = struct.unpack("!i", body[:4])
        if code in (_SSL_REQUEST, _GSS_REQUEST):
            writer.write(b"N")
            await writer.drain()
            continue
        if code != _PROTOCOL_3:
            return struct.pack("!i", length) + body  # e.g. a cancel request: pass through
        fields = body[4:].split(b"\x00")
        pairs = [(fields[i], fields[i + 1]) for i in range(0, len(fields) - 1, 2) if fields[i]]
        kept = b"".join(k + b"\x00" + v + b"\x00" for k, v in pairs if k.lower() in _KEEP) + b"\x00"
        payload = struct.pack("!i", _PROTOCOL_3) + kept
        return struct.pack("!i", len(payload) + 4) + payload


async def _server_to_client(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
    while True:
        header = await reader.readexactly(5)
        kind, length = header[:1], struct.unpack("!i", header[1:])[0]
        body = await reader.readexactly(length - 4)
        if kind == b"S":
            name, _, rest = body.partition(b"\x00")
            if name == b"server_version":
                value = rest.rstrip(b"\x00").split(b" ")[0]
                body = name + b"\x00" + value + b"\x00"
                header = kind + struct.pack("!i", len(body) + 4)
        writer.write(header + body)
        await writer.drain()


# Redshift syntax Postgres lacks, emulated by rewriting the statement text on its way to the server.
REWRITES = [
    # VARCHAR(MAX) is Redshift's longest VARCHAR (sqlglot writes it for a bare VARCHAR, Redshift's own is 256)
    (re.compile(rb"VARCHAR\(MAX\)", re.IGNORECASE), b"VARCHAR"),
    # the date part of DATEDIFF/DATEADD is a bare keyword in Redshift; the shims take it as text
    (re.compile(rb"\b(DATEDIFF|DATEADD)\(\s*([A-Za-z]+)\s*,", re.IGNORECASE), rb"\1('\2',"),
]


def _rewrite(sql: bytes) -> bytes:
    for pattern, replacement in REWRITES:
        sql = pattern.sub(replacement, sql)
    return sql


async def _client_to_server(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
    """Frontend messages; the text of simple ('Q') and extended ('P') queries is rewritten."""
    while True:
        header = await reader.readexactly(5)
        kind, length = header[:1], struct.unpack("!i", header[1:])[0]
        body = await reader.readexactly(length - 4)
        if kind == b"Q":
            body = _rewrite(body[:-1]) + b"\x00"
        elif kind == b"P":
            name, _, rest = body.partition(b"\x00")
            query, _, params = rest.partition(b"\x00")
            body = name + b"\x00" + _rewrite(query) + b"\x00" + params
        if kind in (b"Q", b"P"):
            header = kind + struct.pack("!i", len(body) + 4)
        writer.write(header + body)
        await writer.drain()


class RedshiftProxy:
    """Listens on 127.0.0.1:<port> and forwards to a Postgres server, in a background thread."""

    def __init__(self, upstream: PostgresServer) -> None:
        self.upstream = upstream
        self.port = free_port()
        self.loop = asyncio.new_event_loop()
        self.thread = threading.Thread(target=self.loop.run_forever, daemon=True)
        self.server: asyncio.base_events.Server | None = None

    async def _handle(self, client_r: asyncio.StreamReader, client_w: asyncio.StreamWriter) -> None:
        server_w = None
        try:
            startup = await _read_startup(client_r, client_w)
            server_r, server_w = await asyncio.open_connection(self.upstream.host, self.upstream.port)
            server_w.write(startup)
            await server_w.drain()
            await asyncio.gather(_client_to_server(client_r, server_w), _server_to_client(server_r, client_w))
        except (asyncio.IncompleteReadError, ConnectionError):
            pass
        finally:
            for w in (client_w, server_w):
                if w is not None:
                    with contextlib.suppress(Exception):
                        w.close()

    def start(self) -> RedshiftProxy:
        self.thread.start()
        future = asyncio.run_coroutine_threadsafe(asyncio.start_server(self._handle, "127.0.0.1", self.port), self.loop)
        self.server = future.result(timeout=10)
        return self

    def stop(self) -> None:
        if self.server is not None:
            self.loop.call_soon_threadsafe(self.server.close)
        self.loop.call_soon_threadsafe(self.loop.stop)
        self.thread.join(timeout=5)


@contextlib.contextmanager
def redshift_proxy(upstream: PostgresServer, database: str) -> Iterator[RedshiftProxy]:
    with upstream.connect(database) as con:
        for statement in SHIMS:
            con.execute(statement)
    proxy = RedshiftProxy(upstream).start()
    try:
        yield proxy
    finally:
        proxy.stop()
