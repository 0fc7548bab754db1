"""Audio at a URL is judged by its content: a page or any other non-audio body is refused (400, naming
`content.fileUrl`) and not cached, whatever the URL's extension says."""

from __future__ import annotations

from pathlib import Path

import httpx
import pytest

from switchboard.httpapi.fetch import UrlAudioFetcher, UrlFetchError
from switchboard.httpapi.urls import UrlPolicy

OGG = b"OggS\x00\x02" + b"\x00" * 22


async def test_a_url_whose_content_is_not_audio_is_refused_and_not_cached(tmp_path: Path) -> None:
    def handle(request: httpx.Request) -> httpx.Response:
        if request.url.path == "/prompt.mp3":
            return httpx.Response(200, content=OGG)
        return httpx.Response(
            200, content=b"<!doctype html><title>Sign in</title>", headers={"content-type": "audio/wav"}
        )

    urls = UrlAudioFetcher(
        httpx.AsyncClient(transport=httpx.MockTransport(handle)), tmp_path, urls=UrlPolicy(allow_private=True)
    )
    with pytest.raises(UrlFetchError, match=r"^content\.fileUrl: .*login\.wav.* is not audio") as caught:
        await urls.fetch("http://127.0.0.1:9/login.wav", None)
    assert caught.value.status_hint == 400 and str(tmp_path) not in str(caught.value)
    assert not list(tmp_path.iterdir()), "nothing is cached"
    located = await urls.fetch("http://127.0.0.1:9/prompt.mp3", None)
    assert located.path.read_bytes() == OGG, "an extension that lies about audio content does not matter"
