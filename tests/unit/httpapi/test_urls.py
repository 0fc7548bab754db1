"""Where user-supplied URLs may lead: public unicast only, unless configuration allows more."""

from __future__ import annotations

import ipaddress

import pytest

from support.network import ScriptedResolver
from switchboard.httpapi.urls import UnsafeUrl, UrlPolicy, is_public, parse_networks

NOT_PUBLIC = (
    "127.0.0.1",
    "10.1.2.3",
    "172.16.0.1",
    "192.168.1.1",
    "169.254.169.254",
    "100.64.0.1",
    "100.127.255.254",
    "0.0.0.0",
    "192.0.0.8",
    "198.18.0.1",
    "224.0.0.1",
    "240.0.0.1",
    "255.255.255.255",
    "::1",
    "::",
    "fe80::1",
    "fc00::1",
    "ff02::1",
    "2002::1",
    "2002:7f00:1::1",
    "2002:a00:1::1",
    "2001::1",
    "2001:db8::1",
    "::ffff:127.0.0.1",
    "::ffff:8.8.8.8",
    "64:ff9b::a00:1",
    "64:ff9b:1::1",
)
PUBLIC = ("8.8.8.8", "93.184.216.34", "2606:4700:4700::1111", "2a00:1450:4001:80b::200e")


@pytest.mark.parametrize("address", NOT_PUBLIC)
def test_only_public_unicast_addresses_are_public(address: str) -> None:
    assert not is_public(ipaddress.ip_address(address))


@pytest.mark.parametrize("address", PUBLIC)
def test_public_addresses(address: str) -> None:
    assert is_public(ipaddress.ip_address(address))


@pytest.mark.parametrize(
    "url",
    [
        "http://100.64.0.1/hook",
        "http://[2002:7f00:1::1]/hook",
        "http://[::ffff:127.0.0.1]:8080/",
        "https://shared.example/hook",
        "https://six-to-four.example/hook",
    ],
)
async def test_urls_leading_to_addresses_that_are_not_public_are_refused(url: str) -> None:
    resolver = ScriptedResolver(
        {"shared.example": [["100.64.1.2"]], "six-to-four.example": [["93.184.216.34", "2002:a00:1::1"]]}
    )
    with pytest.raises(UnsafeUrl, match=r"^profile\.webhook\.notifyUrl: .*private address"):
        await UrlPolicy(resolver=resolver).check_url(url, "profile.webhook.notifyUrl")


async def test_allowed_networks_and_allow_private() -> None:
    resolver = ScriptedResolver({"app.internal": [["10.20.0.5"]], "other.internal": [["10.30.0.5"]]})
    listed = UrlPolicy(allowed_networks=parse_networks(["10.20.0.0/16"]), resolver=resolver)
    await listed.check_url("http://app.internal:8080/events", "notifyUrl")
    with pytest.raises(UnsafeUrl, match="allowed_url_networks"):
        await listed.check_url("http://other.internal/events", "notifyUrl")
    await UrlPolicy(allow_private=True, resolver=resolver).check_url("http://127.0.0.1:9/", "notifyUrl")


async def test_bad_urls_and_unknown_names_name_the_field() -> None:
    policy = UrlPolicy(resolver=ScriptedResolver({}))
    for url in ("ftp://example.com/", "http://", "http://example.com:99999/", "file:///etc/passwd"):
        with pytest.raises(UnsafeUrl, match=r"^graphApiUrl: .* is not an http\(s\) URL"):
            await policy.check_url(url, "graphApiUrl")
    with pytest.raises(UnsafeUrl, match=r"^graphApiUrl: cannot resolve 'nowhere\.example'"):
        await policy.check_url("https://nowhere.example/", "graphApiUrl")
