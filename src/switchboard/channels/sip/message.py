"""SIP messages (RFC 3261 §7, §20, §25): parsing, building and stream framing.

Headers are kept losslessly in order, case-insensitively and multi-valued; typed values (`Via`, `CSeq`,
`Address`, `SipURI`) are parsed on access. Anything malformed or oversized raises `SipParseError`, never
another exception, so a hostile peer can cost a parse but not a crash.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field, replace

from switchboard.errors import SwitchboardError

MAX_MESSAGE_SIZE = 65_535
MAX_HEADER_COUNT = 200
MAX_HEADER_SIZE = 16_384
"""Start line plus headers of a message received over a stream, before its body."""

SIP_VERSION = "SIP/2.0"
BRANCH_MAGIC = "z9hG4bK"

COMPACT_FORMS = {
    "a": "Accept-Contact",
    "b": "Referred-By",
    "c": "Content-Type",
    "d": "Request-Disposition",
    "e": "Content-Encoding",
    "f": "From",
    "i": "Call-ID",
    "j": "Reject-Contact",
    "k": "Supported",
    "l": "Content-Length",
    "m": "Contact",
    "o": "Event",
    "r": "Refer-To",
    "s": "Subject",
    "t": "To",
    "u": "Allow-Events",
    "v": "Via",
    "x": "Session-Expires",
    "y": "Identity",
}
_CANONICAL = {
    name.lower(): name
    for name in (
        *COMPACT_FORMS.values(),
        "CSeq",
        "Max-Forwards",
        "Record-Route",
        "Route",
        "WWW-Authenticate",
        "Proxy-Authenticate",
        "Authorization",
        "Proxy-Authorization",
        "User-Agent",
        "Server",
        "Allow",
        "Expires",
        "Reason",
        "Min-Expires",
        "Accept",
        "Require",
        "Unsupported",
        "Retry-After",
    )
}
_TOKEN = re.compile(r"^[A-Za-z0-9.!%*_+`'~-]+$")
_STATUS_LINE = re.compile(r"^SIP/2\.0 ([1-6][0-9][0-9]) ?(.*)$")
_REQUEST_LINE = re.compile(r"^([A-Za-z0-9.!%*_+`'~-]+) (\S+) SIP/2\.0$")
_USER = re.compile(r"^[^\s\"<>@]+$")
_HOST = re.compile(r"^(\[[0-9A-Fa-f:.]+\]|[A-Za-z0-9._-]+)$")

REASON_PHRASES = {
    100: "Trying",
    180: "Ringing",
    181: "Call Is Being Forwarded",
    182: "Queued",
    183: "Session Progress",
    200: "OK",
    202: "Accepted",
    400: "Bad Request",
    401: "Unauthorized",
    403: "Forbidden",
    404: "Not Found",
    405: "Method Not Allowed",
    407: "Proxy Authentication Required",
    408: "Request Timeout",
    413: "Request Entity Too Large",
    415: "Unsupported Media Type",
    420: "Bad Extension",
    423: "Interval Too Brief",
    480: "Temporarily Unavailable",
    481: "Call/Transaction Does Not Exist",
    482: "Loop Detected",
    483: "Too Many Hops",
    486: "Busy Here",
    487: "Request Terminated",
    488: "Not Acceptable Here",
    491: "Request Pending",
    500: "Server Internal Error",
    501: "Not Implemented",
    503: "Service Unavailable",
    504: "Server Time-out",
    505: "Version Not Supported",
    600: "Busy Everywhere",
    603: "Decline",
    604: "Does Not Exist Anywhere",
    606: "Not Acceptable",
}


class SipParseError(SwitchboardError):
    """A message or header value that is not valid SIP (or is larger than we accept)."""


def canonical_name(name: str) -> str:
    lower = name.lower()
    if lower in COMPACT_FORMS:
        return COMPACT_FORMS[lower]
    return _CANONICAL.get(lower, name)


def split_list(value: str) -> list[str]:
    """Split a comma-separated header value, keeping commas inside quotes and <...> (RFC 3261 §7.3.1)."""
    parts: list[str] = []
    start, depth, quoted, escaped = 0, 0, False, False
    for i, ch in enumerate(value):
        if escaped:
            escaped = False
        elif quoted:
            if ch == "\\":
                escaped = True
            elif ch == '"':
                quoted = False
        elif ch == '"':
            quoted = True
        elif ch == "<":
            depth += 1
        elif ch == ">":
            depth = max(0, depth - 1)
        elif ch == "," and depth == 0:
            parts.append(value[start:i].strip())
            start = i + 1
    if quoted or depth:
        raise SipParseError(f"unbalanced quotes or brackets in {value!r}")
    parts.append(value[start:].strip())
    return [p for p in parts if p]


def _parse_params(text: str) -> tuple[tuple[str, str | None], ...]:
    """`;a=b;c` → (("a", "b"), ("c", None)); values may be quoted."""
    params: list[tuple[str, str | None]] = []
    for raw in _split_outside_quotes(text, ";"):
        item = raw.strip()
        if not item:
            continue
        name, sep, value = item.partition("=")
        name = name.strip()
        if not _TOKEN.match(name):
            raise SipParseError(f"bad parameter {item!r}")
        params.append((name, value.strip() if sep else None))
    return tuple(params)


def _split_outside_quotes(text: str, sep: str) -> list[str]:
    parts: list[str] = []
    start, quoted = 0, False
    for i, ch in enumerate(text):
        if ch == '"':
            quoted = not quoted
        elif ch == sep and not quoted:
            parts.append(text[start:i])
            start = i + 1
    parts.append(text[start:])
    return parts


def _format_params(params: Iterable[tuple[str, str | None]]) -> str:
    return "".join(f";{k}" if v is None else f";{k}={v}" for k, v in params)


def _get_param(params: tuple[tuple[str, str | None], ...], name: str) -> str | None:
    lower = name.lower()
    for key, value in params:
        if key.lower() == lower:
            return value
    return None


def _set_param(
    params: tuple[tuple[str, str | None], ...], name: str, value: str | None
) -> tuple[tuple[str, str | None], ...]:
    lower = name.lower()
    kept = tuple(p for p in params if p[0].lower() != lower)
    return (*kept, (name, value))


def _has_param(params: tuple[tuple[str, str | None], ...], name: str) -> bool:
    return any(k.lower() == name.lower() for k, _ in params)


def _parse_hostport(text: str) -> tuple[str, int | None]:
    if text.startswith("["):
        end = text.find("]")
        if end < 0:
            raise SipParseError(f"bad host {text!r}")
        host, rest = text[: end + 1], text[end + 1 :]
    else:
        host, _, port_text = text.partition(":")
        rest = ":" + port_text if _ else ""
    if not _HOST.match(host):
        raise SipParseError(f"bad host {text!r}")
    if not rest:
        return host, None
    if not rest.startswith(":") or not rest[1:].isdigit() or not 0 < int(rest[1:]) < 65536:
        raise SipParseError(f"bad port in {text!r}")
    return host, int(rest[1:])


def format_hostport(host: str, port: int | None) -> str:
    if ":" in host and not host.startswith("["):
        host = f"[{host}]"
    return host if port is None else f"{host}:{port}"


@dataclass(frozen=True, slots=True)
class SipURI:
    """A sip: or sips: URI (RFC 3261 §19.1)."""

    host: str
    user: str | None = None
    port: int | None = None
    scheme: str = "sip"
    params: tuple[tuple[str, str | None], ...] = ()
    headers: str = ""

    @classmethod
    def parse(cls, text: str) -> SipURI:
        scheme, sep, rest = text.strip().partition(":")
        scheme = scheme.lower()
        if not sep or scheme not in ("sip", "sips"):
            raise SipParseError(f"not a sip URI: {text!r}")
        rest, _, headers = rest.partition("?")
        user: str | None = None
        if "@" in rest:
            userinfo, _, rest = rest.rpartition("@")
            user = userinfo.partition(":")[0]
            if not _USER.match(user):
                raise SipParseError(f"bad user in {text!r}")
        hostport, _, params = rest.partition(";")
        host, port = _parse_hostport(hostport)
        return cls(host, user, port, scheme, _parse_params(params), headers)

    def param(self, name: str) -> str | None:
        return _get_param(self.params, name)

    def has_param(self, name: str) -> bool:
        return _has_param(self.params, name)

    @property
    def transport(self) -> str:
        return (self.param("transport") or ("tls" if self.scheme == "sips" else "udp")).lower()

    def __str__(self) -> str:
        user = f"{self.user}@" if self.user else ""
        headers = f"?{self.headers}" if self.headers else ""
        hostport = format_hostport(self.host, self.port)
        return f"{self.scheme}:{user}{hostport}{_format_params(self.params)}{headers}"


@dataclass(frozen=True, slots=True)
class Address:
    """A name-addr or addr-spec with header parameters (From, To, Contact, Route; RFC 3261 §20.10)."""

    uri: SipURI
    display_name: str | None = None
    params: tuple[tuple[str, str | None], ...] = ()

    @classmethod
    def parse(cls, text: str) -> Address:
        text = text.strip()
        display: str | None = None
        if "<" in text:
            start = text.find("<")
            end = text.find(">", start)
            if end < 0:
                raise SipParseError(f"unterminated <...> in {text!r}")
            display = text[:start].strip() or None
            if display and display.startswith('"'):
                if len(display) < 2 or not display.endswith('"'):
                    raise SipParseError(f"bad display name in {text!r}")
                display = display[1:-1].replace('\\"', '"')
            uri = SipURI.parse(text[start + 1 : end])
            rest = text[end + 1 :].strip()
            if rest and not rest.startswith(";"):
                raise SipParseError(f"unexpected text after address in {text!r}")
            return cls(uri, display, _parse_params(rest))
        uri_text, _, params = text.partition(";")
        return cls(SipURI.parse(uri_text), None, _parse_params(params))

    @property
    def tag(self) -> str | None:
        return _get_param(self.params, "tag")

    def with_tag(self, tag: str) -> Address:
        return replace(self, params=_set_param(self.params, "tag", tag))

    def param(self, name: str) -> str | None:
        return _get_param(self.params, name)

    def __str__(self) -> str:
        display = ""
        if self.display_name:
            escaped = self.display_name.replace('"', '\\"')
            display = f'"{escaped}" '
        return f"{display}<{self.uri}>{_format_params(self.params)}"


@dataclass(frozen=True, slots=True)
class Via:
    """One Via value (RFC 3261 §20.42, RFC 3581 rport)."""

    transport: str
    host: str
    port: int | None = None
    params: tuple[tuple[str, str | None], ...] = ()

    @classmethod
    def parse(cls, text: str) -> Via:
        protocol, _, rest = text.strip().partition(" ")
        parts = [p.strip() for p in protocol.split("/")]
        if len(parts) != 3 or parts[0].upper() != "SIP" or parts[1] != "2.0" or not _TOKEN.match(parts[2]):
            raise SipParseError(f"bad Via {text!r}")
        sent_by, _, params = rest.strip().partition(";")
        host, port = _parse_hostport(sent_by.strip())
        return cls(parts[2].upper(), host, port, _parse_params(params))

    @property
    def branch(self) -> str | None:
        return _get_param(self.params, "branch")

    @property
    def received(self) -> str | None:
        return _get_param(self.params, "received")

    @property
    def rport(self) -> int | None:
        value = _get_param(self.params, "rport")
        return int(value) if value and value.isdigit() else None

    @property
    def wants_rport(self) -> bool:
        return _has_param(self.params, "rport")

    @property
    def sent_by(self) -> str:
        return format_hostport(self.host, self.port)

    def with_param(self, name: str, value: str | None) -> Via:
        return replace(self, params=_set_param(self.params, name, value))

    def __str__(self) -> str:
        return f"SIP/2.0/{self.transport} {self.sent_by}{_format_params(self.params)}"


@dataclass(frozen=True, slots=True)
class CSeq:
    number: int
    method: str

    @classmethod
    def parse(cls, text: str) -> CSeq:
        number, _, method = text.strip().partition(" ")
        method = method.strip()
        if not number.isdigit() or len(number) > 10 or not _TOKEN.match(method):
            raise SipParseError(f"bad CSeq {text!r}")
        value = int(number)
        if value >= 2**31:
            raise SipParseError(f"CSeq number out of range in {text!r}")
        return cls(value, method.upper())

    def __str__(self) -> str:
        return f"{self.number} {self.method}"


class Headers:
    """Ordered, case-insensitive, multi-valued headers stored as they came (names in long form)."""

    __slots__ = ("_items",)

    def __init__(self, items: Iterable[tuple[str, str]] = ()) -> None:
        self._items: list[tuple[str, str]] = [(canonical_name(k), v) for k, v in items]

    def __iter__(self) -> Iterator[tuple[str, str]]:
        return iter(self._items)

    def __len__(self) -> int:
        return len(self._items)

    def get(self, name: str) -> str | None:
        key = canonical_name(name).lower()
        for k, v in self._items:
            if k.lower() == key:
                return v
        return None

    def get_all(self, name: str) -> list[str]:
        """Every line of `name`, each split on top-level commas (for list-valued headers)."""
        key = canonical_name(name).lower()
        values: list[str] = []
        for k, v in self._items:
            if k.lower() == key:
                values.extend(split_list(v))
        return values

    def lines(self, name: str) -> list[str]:
        key = canonical_name(name).lower()
        return [v for k, v in self._items if k.lower() == key]

    def add(self, name: str, value: str) -> None:
        self._items.append((canonical_name(name), value))

    def prepend(self, name: str, value: str) -> None:
        self._items.insert(0, (canonical_name(name), value))

    def set(self, name: str, value: str) -> None:
        canonical = canonical_name(name)
        key = canonical.lower()
        index = next((i for i, (k, _) in enumerate(self._items) if k.lower() == key), None)
        self.remove(name)
        self._items.insert(len(self._items) if index is None else index, (canonical, value))

    def remove(self, name: str) -> None:
        key = canonical_name(name).lower()
        self._items = [(k, v) for k, v in self._items if k.lower() != key]

    def copy(self) -> Headers:
        return Headers(self._items)


@dataclass(slots=True, kw_only=True)
class _Message:
    headers: Headers = field(default_factory=Headers)
    body: bytes = b""

    @property
    def call_id(self) -> str:
        return self._required("Call-ID")

    @property
    def cseq(self) -> CSeq:
        return CSeq.parse(self._required("CSeq"))

    @property
    def from_(self) -> Address:
        return Address.parse(self._required("From"))

    @property
    def to(self) -> Address:
        return Address.parse(self._required("To"))

    @property
    def vias(self) -> list[Via]:
        return [Via.parse(v) for v in self.headers.get_all("Via")]

    @property
    def top_via(self) -> Via:
        vias = self.headers.get_all("Via")
        if not vias:
            raise SipParseError("Via: missing")
        return Via.parse(vias[0])

    @property
    def contacts(self) -> list[Address]:
        return [Address.parse(v) for v in self.headers.get_all("Contact") if v.strip() != "*"]

    @property
    def record_routes(self) -> list[Address]:
        return [Address.parse(v) for v in self.headers.get_all("Record-Route")]

    @property
    def content_type(self) -> str | None:
        value = self.headers.get("Content-Type")
        return value.partition(";")[0].strip().lower() if value else None

    def _required(self, name: str) -> str:
        value = self.headers.get(name)
        if value is None:
            raise SipParseError(f"{name}: missing")
        return value.strip()

    def _head_and_body(self, start_line: str) -> bytes:
        lines = [start_line]
        lines += [f"{k}: {v}" for k, v in self.headers if k != "Content-Length"]
        lines.append(f"Content-Length: {len(self.body)}")
        return ("\r\n".join(lines) + "\r\n\r\n").encode() + self.body


@dataclass(slots=True, kw_only=True)
class Request(_Message):
    method: str
    uri: SipURI

    def to_bytes(self) -> bytes:
        return self._head_and_body(f"{self.method} {self.uri} {SIP_VERSION}")

    def __str__(self) -> str:
        return f"{self.method} {self.uri}"


@dataclass(slots=True, kw_only=True)
class Response(_Message):
    status: int
    reason: str = ""

    def to_bytes(self) -> bytes:
        reason = self.reason or REASON_PHRASES.get(self.status, "")
        return self._head_and_body(f"{SIP_VERSION} {self.status} {reason}")

    def __str__(self) -> str:
        return f"{self.status} {self.reason}"


Message = Request | Response


def _unfold(head: str) -> list[str]:
    lines: list[str] = []
    for line in head.split("\r\n") if "\r\n" in head else head.split("\n"):
        if line[:1] in (" ", "\t") and lines:
            lines[-1] += " " + line.strip()
        else:
            lines.append(line)
    return lines


def _parse_head(head: bytes) -> tuple[str, Headers]:
    try:
        text = head.decode("utf-8")
    except UnicodeDecodeError:
        raise SipParseError("message head is not UTF-8") from None
    lines = _unfold(text)
    if len(lines) - 1 > MAX_HEADER_COUNT:
        raise SipParseError(f"more than {MAX_HEADER_COUNT} headers")
    headers = Headers()
    for line in lines[1:]:
        name, sep, value = line.partition(":")
        name = name.strip()
        if not sep or not _TOKEN.match(name):
            raise SipParseError(f"bad header line {line[:80]!r}")
        headers.add(name, value.strip())
    return lines[0], headers


def _build(start: str, headers: Headers, body: bytes) -> Message:
    if match := _STATUS_LINE.match(start):
        return Response(status=int(match.group(1)), reason=match.group(2), headers=headers, body=body)
    if match := _REQUEST_LINE.match(start):
        method = match.group(1).upper()
        message = Request(method=method, uri=SipURI.parse(match.group(2)), headers=headers, body=body)
        _check_request(message)
        return message
    raise SipParseError(f"bad start line {start[:80]!r}")


def _check_request(request: Request) -> None:
    """The fields every request must carry (RFC 3261 §8.1.1), parsed once so later access cannot fail."""
    request.top_via  # noqa: B018
    request.from_  # noqa: B018
    request.to  # noqa: B018
    request.call_id  # noqa: B018
    cseq = request.cseq
    if cseq.method != request.method:
        raise SipParseError("CSeq: method does not match the request line")


def _content_length(headers: Headers) -> int | None:
    value = headers.get("Content-Length")
    if value is None:
        return None
    if not value.isdigit() or int(value) > MAX_MESSAGE_SIZE:
        raise SipParseError(f"Content-Length: bad value {value[:20]!r}")
    return int(value)


def parse_message(data: bytes) -> Message:
    """Parse one datagram (RFC 3261 §18.3: the body is cut at Content-Length; a shorter body is an error)."""
    if len(data) > MAX_MESSAGE_SIZE:
        raise SipParseError("message too large")
    head, sep, body = data.partition(b"\r\n\r\n")
    if not sep:
        head, sep, body = data.partition(b"\n\n")
        if not sep:
            raise SipParseError("no blank line after the headers")
    start, headers = _parse_head(head.lstrip(b"\r\n"))
    length = _content_length(headers)
    if length is not None:
        if length > len(body):
            raise SipParseError("body shorter than Content-Length")
        body = body[:length]
    message = _build(start, headers, body)
    if isinstance(message, Response):
        message.top_via  # noqa: B018
        message.cseq  # noqa: B018
        message.call_id  # noqa: B018
    return message


class StreamParser:
    """Frames messages out of a TCP/TLS byte stream by Content-Length (RFC 3261 §18.3).

    `feed` returns the complete messages; an error means the stream cannot be trusted any more and the
    connection should be closed. CRLF keep-alives (RFC 5626 §3.5.1) between messages are skipped."""

    def __init__(self, max_buffered: int = MAX_HEADER_SIZE + 4 + MAX_MESSAGE_SIZE) -> None:
        self._buffer = bytearray()
        self._max_buffered = max_buffered

    @property
    def buffered(self) -> int:
        """Bytes of a message not yet complete."""
        return len(self._buffer)

    def feed(self, data: bytes) -> list[Message]:
        """The messages `data` completes; SipParseError when the stream is broken or more than
        `max_buffered` bytes are held for an incomplete message."""
        self._buffer += data
        messages: list[Message] = []
        while True:
            while self._buffer[:2] == b"\r\n":
                del self._buffer[:2]
            end = self._buffer.find(b"\r\n\r\n")
            if end < 0:
                if len(self._buffer) > min(MAX_HEADER_SIZE, self._max_buffered):
                    raise SipParseError("headers too large")
                return messages
            if end > MAX_HEADER_SIZE:
                raise SipParseError("headers too large")
            _, headers = _parse_head(bytes(self._buffer[:end]))
            length = _content_length(headers)
            if length is None:
                raise SipParseError("Content-Length: missing on a stream")
            total = end + 4 + length
            if total > self._max_buffered:
                raise SipParseError(f"a message of {total} bytes exceeds the {self._max_buffered} allowed")
            if len(self._buffer) < total:
                return messages
            frame = bytes(self._buffer[:total])
            del self._buffer[:total]
            messages.append(parse_message(frame))


def make_response(
    request: Request,
    status: int,
    reason: str = "",
    *,
    to_tag: str | None = None,
    headers: Iterable[tuple[str, str]] = (),
    body: bytes = b"",
    content_type: str | None = None,
) -> Response:
    """A response to `request` (RFC 3261 §8.2.6): its Vias, From, Call-ID and CSeq copied, a To tag added
    when the request had none and one is given (100 Trying never gets one), and Record-Route copied into
    the responses that can create a dialog (§12.1.1)."""
    response = Response(status=status, reason=reason or REASON_PHRASES.get(status, ""))
    for via in request.headers.lines("Via"):
        response.headers.add("Via", via)
    response.headers.add("From", request.headers.get("From") or "")
    to = request.to
    if to_tag and to.tag is None and status > 100:
        to = to.with_tag(to_tag)
    response.headers.add("To", str(to) if to is not request.to else request.headers.get("To") or "")
    response.headers.add("Call-ID", request.call_id)
    response.headers.add("CSeq", request.headers.get("CSeq") or "")
    if 100 < status < 300:
        for route in request.headers.lines("Record-Route"):
            response.headers.add("Record-Route", route)
    for name, value in headers:
        response.headers.add(name, value)
    if body:
        response.headers.add("Content-Type", content_type or "application/sdp")
        response.body = body
    return response
