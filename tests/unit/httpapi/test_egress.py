"""The outgoing HTTP client dials the address it checked, with Host and TLS on the name."""

from __future__ import annotations

import httpx
import pytest

from support.network import OK, RecordingNetwork, ScriptedResolver
from switchboard.httpapi.egress import guarded_client
from switchboard.httpapi.urls import UrlPolicy

PUBLIC = "93.184.216.34"


async def test_a_name_that_rebinds_to_a_private_address_never_reaches_it() -> None:
    resolver = ScriptedResolver({"rebind.example": [[PUBLIC], ["127.0.0.1"]]})
    policy = UrlPolicy(resolver=resolver)
    await policy.check_url("https://rebind.example/hook", "notifyUrl")  # accepted: public then
    network = RecordingNetwork()
    async with guarded_client(policy, network) as client:
        with pytest.raises(httpx.ConnectError, match="private address"):
            await client.post("https://rebind.example/hook", content=b"{}")
    assert network.dialled == []
    assert resolver.lookups == ["rebind.example", "rebind.example"]


async def test_the_checked_address_is_dialled_with_host_and_sni_on_the_name() -> None:
    resolver = ScriptedResolver({"hooks.example": [[PUBLIC], ["127.0.0.1"]]})
    network = RecordingNetwork(response=OK * 2)
    async with guarded_client(UrlPolicy(resolver=resolver), network) as client:
        response = await client.get("https://hooks.example/events")
        assert response.status_code == 200
        assert response.request.headers["host"] == "hooks.example"
        again = await client.get("https://hooks.example/events")  # the pooled, checked connection
        assert again.status_code == 200
    assert network.dialled == [(PUBLIC, 443)]
    assert network.tls_names == ["hooks.example"]
    assert resolver.lookups == ["hooks.example"]


async def test_mixed_answers_are_refused_whole_and_literals_are_checked_too() -> None:
    resolver = ScriptedResolver({"mixed.example": [[PUBLIC, "10.0.0.1"]]})
    network = RecordingNetwork()
    async with guarded_client(UrlPolicy(resolver=resolver), network) as client:
        for url in (
            "http://mixed.example/",
            "http://100.64.0.1/",
            "http://[2002:7f00:1::1]/",
            "http://[::1]/",
        ):
            with pytest.raises(httpx.ConnectError, match="private address"):
                await client.get(url)
    assert network.dialled == []


async def test_allow_private_reaches_any_address(unused_tcp_port: int) -> None:
    network = RecordingNetwork()
    async with guarded_client(UrlPolicy(allow_private=True), network) as client:
        assert (await client.get(f"http://127.0.0.1:{unused_tcp_port}/")).status_code == 200
    assert network.dialled == [("127.0.0.1", unused_tcp_port)]
