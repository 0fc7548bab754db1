"""HTTP digest authentication for SIP (RFC 3261 §22, RFC 7616, RFC 8760): MD5 and SHA-256, qop=auth.

Client side: `digest_flow` is a generator that yields the request, receives each response and, on a 401 or
407 it can answer, yields the request again with credentials and the next CSeq. Server side:
`DigestServer` issues stateless nonces (a timestamp signed with a secret), verifies `Authorization` and
asks for a fresh challenge with `stale=true` when only the nonce expired.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import os
import struct
from collections.abc import Callable, Generator, Mapping
from dataclasses import dataclass

from switchboard.channels.sip.message import CSeq, Request, Response, SipParseError

ALGORITHMS = {"MD5": hashlib.md5, "SHA-256": hashlib.sha256}
"""Supported algorithms, the server's preference first in `DigestServer.challenge`."""


def _hash(algorithm: str, text: str) -> str:
    return ALGORITHMS[algorithm](text.encode()).hexdigest()


def parse_params(value: str) -> tuple[str, dict[str, str]]:
    """`Digest realm="x", nonce="y", qop="auth"` → ("digest", {"realm": "x", ...}); names lower-cased."""
    scheme, _, rest = value.strip().partition(" ")
    params: dict[str, str] = {}
    i, n = 0, len(rest)
    while i < n:
        while i < n and rest[i] in " ,\t":
            i += 1
        eq = rest.find("=", i)
        if eq < 0:
            if rest[i:].strip():
                raise SipParseError(f"bad auth parameter in {value[:80]!r}")
            break
        name = rest[i:eq].strip().lower()
        i = eq + 1
        if i < n and rest[i] == '"':
            end = i + 1
            chars: list[str] = []
            while end < n and rest[end] != '"':
                if rest[end] == "\\" and end + 1 < n:
                    end += 1
                chars.append(rest[end])
                end += 1
            if end >= n:
                raise SipParseError(f"unterminated quoted auth parameter in {value[:80]!r}")
            params[name] = "".join(chars)
            i = end + 1
        else:
            end = rest.find(",", i)
            end = n if end < 0 else end
            params[name] = rest[i:end].strip()
            i = end
    return scheme.lower(), params


def compute_ha1(algorithm: str, username: str, realm: str, password: str) -> str:
    return _hash(algorithm, f"{username}:{realm}:{password}")


def compute_response(
    *,
    algorithm: str,
    username: str,
    realm: str,
    password: str | None = None,
    ha1: str | None = None,
    method: str,
    uri: str,
    nonce: str,
    qop: str | None,
    nc: str,
    cnonce: str,
) -> str:
    """The digest `response` (RFC 7616 §3.4.1), from the password or from a kept HA1."""
    if ha1 is None:
        ha1 = compute_ha1(algorithm, username, realm, password or "")
    ha2 = _hash(algorithm, f"{method}:{uri}")
    if qop:
        return _hash(algorithm, f"{ha1}:{nonce}:{nc}:{cnonce}:{qop}:{ha2}")
    return _hash(algorithm, f"{ha1}:{nonce}:{ha2}")


def _quote(value: str) -> str:
    return '"' + value.replace("\\", "\\\\").replace('"', '\\"') + '"'


@dataclass(frozen=True, slots=True)
class Credentials:
    username: str
    password: str


def authorization_for(
    request: Request, challenge: dict[str, str], credentials: Credentials, *, cnonce: str | None = None
) -> str | None:
    """The Authorization value answering `challenge`, or None when its algorithm or qop is not ours."""
    algorithm = challenge.get("algorithm", "MD5").upper()
    if algorithm not in ALGORITHMS or "nonce" not in challenge:
        return None
    qops = [q.strip() for q in challenge.get("qop", "").split(",") if q.strip()]
    if qops and "auth" not in qops:
        return None
    qop = "auth" if qops else None
    realm, nonce, uri = challenge.get("realm", ""), challenge["nonce"], str(request.uri)
    cnonce = cnonce or os.urandom(8).hex()
    nc = "00000001"
    response = compute_response(
        algorithm=algorithm,
        username=credentials.username,
        realm=realm,
        password=credentials.password,
        method=request.method,
        uri=uri,
        nonce=nonce,
        qop=qop,
        nc=nc,
        cnonce=cnonce,
    )
    parts = [
        f"username={_quote(credentials.username)}",
        f"realm={_quote(realm)}",
        f"nonce={_quote(nonce)}",
        f"uri={_quote(uri)}",
        f"response={_quote(response)}",
        f"algorithm={algorithm}",
    ]
    if qop:
        parts += [f"qop={qop}", f"nc={nc}", f"cnonce={_quote(cnonce)}"]
    if "opaque" in challenge:
        parts.append(f"opaque={_quote(challenge['opaque'])}")
    return "Digest " + ", ".join(parts)


def _pick_challenge(response: Response, header: str) -> dict[str, str] | None:
    for value in response.headers.lines(header):
        try:
            scheme, params = parse_params(value)
        except SipParseError:
            continue
        if scheme == "digest" and params.get("algorithm", "MD5").upper() in ALGORITHMS:
            return params
    return None


def digest_flow(request: Request, credentials: Credentials) -> Generator[Request, Response, None]:
    """Yield `request`; after a 401/407 we can answer, yield it again with credentials and CSeq + 1.
    A second challenge is answered only when it says `stale=true` (the password was right)."""
    response = yield request
    answered = False
    while response.status in (401, 407):
        header = "WWW-Authenticate" if response.status == 401 else "Proxy-Authenticate"
        challenge = _pick_challenge(response, header)
        if challenge is None or (answered and challenge.get("stale", "").lower() != "true"):
            return
        cseq = request.cseq
        request = Request(
            method=request.method, uri=request.uri, headers=request.headers.copy(), body=request.body
        )
        request.headers.remove("Via")
        request.headers.set("CSeq", str(CSeq(cseq.number + 1, cseq.method)))
        value = authorization_for(request, challenge, credentials)
        if value is None:
            return
        request.headers.set("Authorization" if response.status == 401 else "Proxy-Authorization", value)
        answered = True
        response = yield request


Ha1Lookup = Callable[[str, str], str | None]
"""(username, algorithm) → HA1 = H(username:realm:password), or None for an unknown user."""


def passwords(table: Mapping[str, str], realm: str) -> Ha1Lookup:
    """An `Ha1Lookup` over plain passwords."""

    def lookup(username: str, algorithm: str) -> str | None:
        password = table.get(username)
        return None if password is None else compute_ha1(algorithm, username, realm, password)

    return lookup


def authorization_user(request: Request, realm: str) -> tuple[str, str] | None:
    """(username, algorithm) an `Authorization` for `realm` claims, before it is checked."""
    for value in request.headers.lines("Authorization"):
        try:
            scheme, params = parse_params(value)
        except SipParseError:
            continue
        if scheme == "digest" and params.get("realm") == realm and params.get("username"):
            return params["username"], params.get("algorithm", "MD5").upper()
    return None


@dataclass(frozen=True, slots=True)
class Authenticated:
    username: str


@dataclass(frozen=True, slots=True)
class Challenge:
    stale: bool = False


class DigestServer:
    """Challenges requests and checks their credentials (we are the UAS or registrar: 401)."""

    def __init__(
        self,
        realm: str,
        *,
        secret: bytes | None = None,
        nonce_lifetime: float = 300.0,
        algorithms: tuple[str, ...] = ("SHA-256", "MD5"),
    ) -> None:
        self.realm = realm
        self._secret = secret or os.urandom(32)
        self.nonce_lifetime = nonce_lifetime
        self.algorithms = algorithms

    def make_nonce(self, now: float) -> str:
        stamp = struct.pack(">d", now)
        mac = hmac.new(self._secret, stamp, hashlib.sha256).digest()[:16]
        return base64.urlsafe_b64encode(stamp + mac).decode().rstrip("=")

    def _nonce_time(self, nonce: str) -> float | None:
        try:
            raw = base64.urlsafe_b64decode(nonce + "=" * (-len(nonce) % 4))
        except ValueError:
            return None
        if len(raw) != 24:
            return None
        stamp, mac = raw[:8], raw[8:]
        expected = hmac.new(self._secret, stamp, hashlib.sha256).digest()[:16]
        if not hmac.compare_digest(mac, expected):
            return None
        value: float = struct.unpack(">d", stamp)[0]
        return value

    def challenge(self, now: float, *, stale: bool = False) -> list[tuple[str, str]]:
        """WWW-Authenticate headers for a 401, one per algorithm."""
        nonce = self.make_nonce(now)
        suffix = ", stale=true" if stale else ""
        return [
            (
                "WWW-Authenticate",
                f'Digest realm="{self.realm}", nonce="{nonce}", algorithm={algorithm}, qop="auth"{suffix}',
            )
            for algorithm in self.algorithms
        ]

    def verify(self, request: Request, ha1_for: Ha1Lookup, now: float) -> Authenticated | Challenge:
        """Check the request's `Authorization`; `ha1_for(username, algorithm)` gives the user's HA1."""
        for value in request.headers.lines("Authorization"):
            try:
                scheme, params = parse_params(value)
            except SipParseError:
                continue
            if scheme != "digest" or params.get("realm") != self.realm:
                continue
            return self._check(request, params, ha1_for, now)
        return Challenge()

    def _check(
        self, request: Request, params: dict[str, str], ha1_for: Ha1Lookup, now: float
    ) -> Authenticated | Challenge:
        algorithm = params.get("algorithm", "MD5").upper()
        username, nonce = params.get("username", ""), params.get("nonce", "")
        ha1 = ha1_for(username, algorithm) if username and algorithm in self.algorithms else None
        issued = self._nonce_time(nonce)
        if ha1 is None or issued is None:
            return Challenge()
        qop = params.get("qop")
        if qop not in (None, "auth"):
            return Challenge()
        expected = compute_response(
            algorithm=algorithm,
            username=username,
            realm=self.realm,
            ha1=ha1,
            method=request.method,
            uri=params.get("uri", ""),
            nonce=nonce,
            qop=qop,
            nc=params.get("nc", ""),
            cnonce=params.get("cnonce", ""),
        )
        if not hmac.compare_digest(expected, params.get("response", "").lower()):
            return Challenge()
        if not issued <= now < issued + self.nonce_lifetime:
            return Challenge(stale=True)
        return Authenticated(username)
