"""Audio at a URL: fetched once and cached, capped, refused on private addresses unless allowed."""

from __future__ import annotations

from pathlib import Path

import httpx
import pytest

from switchboard.httpapi.fetch import MAX_DOWNLOAD, UrlAudioFetcher, UrlFetchError
from switchboard.httpapi.urls import UrlPolicy

WAV = b"RIFF\x24\x00\x00\x00WAVEfmt "


def fetcher(tmp_path: Path, handler: httpx.MockTransport, *, allow_private: bool) -> UrlAudioFetcher:
    urls = UrlPolicy(allow_private=allow_private)
    return UrlAudioFetcher(httpx.AsyncClient(transport=handler), tmp_path, urls=urls)


async def test_fetched_once_then_served_from_the_cache(tmp_path: Path) -> None:
    hits: list[str] = []

    def handle(request: httpx.Request) -> httpx.Response:
        hits.append(str(request.url))
        return httpx.Response(200, content=WAV)

    urls = fetcher(tmp_path, httpx.MockTransport(handle), allow_private=True)
    first = await urls.fetch("http://127.0.0.1:9/prompt.wav?x=1", None)
    second = await urls.fetch("http://127.0.0.1:9/prompt.wav?x=1", None)
    assert first == second and first.path.read_bytes() == WAV
    assert first.path.suffix == ".wav" and len(hits) == 1
    assert not list(tmp_path.glob("*.part")), "no partial file is left behind"


async def test_refusals_name_the_field(tmp_path: Path) -> None:
    def handle(request: httpx.Request) -> httpx.Response:
        if request.url.path == "/big":
            return httpx.Response(200, content=b"x" * (MAX_DOWNLOAD + 1))
        return httpx.Response(404)

    private = fetcher(tmp_path, httpx.MockTransport(handle), allow_private=False)
    with pytest.raises(UrlFetchError, match=r"content\.fileUrl: .*private address"):
        await private.fetch("http://127.0.0.1:9/a.wav", None)
    allowed = fetcher(tmp_path, httpx.MockTransport(handle), allow_private=True)
    with pytest.raises(UrlFetchError, match="answered HTTP 404"):
        await allowed.fetch("http://127.0.0.1:9/missing.wav", None)
    with pytest.raises(UrlFetchError, match="larger than 50 MB"):
        await allowed.fetch("http://127.0.0.1:9/big", None)
    assert not list(tmp_path.iterdir()), "refused downloads leave nothing in the cache"
