"""SIP trunks and media-stream configurations through Infobip's own Python SDK, against a running server.

Every call must come back as a parsed SDK object with the SDK's status code: a wrong code or shape
leaves `data=None`.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from pathlib import Path
from typing import Any, TypeVar

import pytest
from infobip_api_client import ApiClient, Configuration
from infobip_api_client.api.calls_api import CallsApi as SdkCallsApi
from infobip_api_client.models.calls_audio_codec import CallsAudioCodec
from infobip_api_client.models.calls_billing_package import CallsBillingPackage
from infobip_api_client.models.calls_billing_package_type import CallsBillingPackageType
from infobip_api_client.models.calls_create_registered_sip_trunk_response import (
    CallsCreateRegisteredSipTrunkResponse,
)
from infobip_api_client.models.calls_create_static_sip_trunk_response import (
    CallsCreateStaticSipTrunkResponse,
)
from infobip_api_client.models.calls_dtmf_type import CallsDtmfType
from infobip_api_client.models.calls_media_streaming_config_request import (
    CallsMediaStreamingConfigRequest,
)
from infobip_api_client.models.calls_media_streaming_config_response import (
    CallsMediaStreamingConfigResponse,
)
from infobip_api_client.models.calls_registered_sip_trunk_request import CallsRegisteredSipTrunkRequest
from infobip_api_client.models.calls_registered_sip_trunk_response import (
    CallsRegisteredSipTrunkResponse,
)
from infobip_api_client.models.calls_registered_sip_trunk_update_request import (
    CallsRegisteredSipTrunkUpdateRequest,
)
from infobip_api_client.models.calls_selection_strategy import CallsSelectionStrategy
from infobip_api_client.models.calls_sip_options import CallsSipOptions
from infobip_api_client.models.calls_sip_trunk_admin_status import CallsSipTrunkAdminStatus
from infobip_api_client.models.calls_sip_trunk_status_request import CallsSipTrunkStatusRequest
from infobip_api_client.models.calls_static_sip_trunk_request import CallsStaticSipTrunkRequest
from infobip_api_client.models.calls_static_sip_trunk_response import CallsStaticSipTrunkResponse
from infobip_api_client.models.calls_static_sip_trunk_update_request import (
    CallsStaticSipTrunkUpdateRequest,
)
from infobip_api_client.models.calls_websocket_endpoint_config_request import (
    CallsWebsocketEndpointConfigRequest,
)
from infobip_api_client.models.calls_websocket_endpoint_config_response import (
    CallsWebsocketEndpointConfigResponse,
)
from infobip_api_client.models.hmac_algorithm import HmacAlgorithm
from infobip_api_client.models.hmac_security_config import HmacSecurityConfig
from infobip_api_client.rest import ApiException

from support.calls_api_harness import API_KEY, Harness, running_harness
from switchboard.channels.sip.trunks import RegisteredTrunk

T = TypeVar("T")


def sdk(h: Harness) -> SdkCallsApi:
    return SdkCallsApi(ApiClient(Configuration(host=h.base_url, api_key=API_KEY)))


async def run(fn: Callable[..., T], *args: Any) -> T:
    return await asyncio.to_thread(fn, *args)


def metered() -> CallsBillingPackage:
    return CallsBillingPackage(packageType=CallsBillingPackageType.METERED)


def static_request(name: str = "Office PBX") -> CallsStaticSipTrunkRequest:
    return CallsStaticSipTrunkRequest(
        name=name,
        channelLimit=10,
        billingPackage=metered(),
        codecs=[CallsAudioCodec.PCMA, CallsAudioCodec.PCMU],
        sourceHosts=["192.0.2.10", "pbx.example.com"],
        destinationHosts=["192.0.2.10:5070"],
        strategy=CallsSelectionStrategy.ROUND_ROBIN,
        sipOptions=CallsSipOptions(enabled=True),
    )


async def test_static_trunk_lifecycle_through_the_sdk(tmp_path: Path) -> None:
    async with running_harness(tmp_path) as h:
        api = sdk(h)
        created = await run(api.create_sip_trunk_with_http_info, static_request())
        assert created.status_code == 202
        trunk = created.data
        assert isinstance(trunk, CallsCreateStaticSipTrunkResponse) and trunk.id
        assert trunk.source_hosts == ["192.0.2.10", "pbx.example.com"]
        assert trunk.destination_hosts == ["192.0.2.10:5070"]
        assert trunk.strategy is CallsSelectionStrategy.ROUND_ROBIN
        assert trunk.codecs == [CallsAudioCodec.PCMA, CallsAudioCodec.PCMU]
        assert trunk.sip_options is not None and trunk.sip_options.enabled is True
        assert trunk.dtmf is CallsDtmfType.RFC2833 and trunk.tls is False
        assert trunk.billing_package is not None
        assert trunk.billing_package.package_type is CallsBillingPackageType.METERED

        fetched = await run(api.get_sip_trunk, trunk.id)
        assert isinstance(fetched, CallsStaticSipTrunkResponse)
        assert fetched.channel_limit == 10 and fetched.name == "Office PBX"

        update = CallsStaticSipTrunkUpdateRequest(
            name="Renamed",
            channelLimit=3,
            sourceHosts=["198.51.100.7:5060"],
            codecs=[CallsAudioCodec.PCMU],
            dtmf=CallsDtmfType.INBAND,
        )
        updated = await run(api.update_sip_trunk_with_http_info, trunk.id, update)
        assert updated.status_code == 202
        assert isinstance(updated.data, CallsStaticSipTrunkResponse)
        assert updated.data.name == "Renamed" and updated.data.channel_limit == 3
        assert updated.data.source_hosts == ["198.51.100.7:5060"]
        assert updated.data.destination_hosts == ["192.0.2.10:5070"]
        assert updated.data.dtmf is CallsDtmfType.INBAND
        assert updated.data.strategy is CallsSelectionStrategy.FAILOVER  # the SDK sends its default

        found = await h.server.components.trunks.identify("198.51.100.7", 5060)
        assert found is not None and found.id == trunk.id

        status = await run(api.get_sip_trunk_status, trunk.id)
        assert status.admin_status is CallsSipTrunkAdminStatus.ENABLED and status.active_calls == 0
        assert status.registration_status is None
        disabled = await run(
            api.set_sip_trunk_status,
            trunk.id,
            CallsSipTrunkStatusRequest(adminStatus=CallsSipTrunkAdminStatus.DISABLED),
        )
        assert disabled.admin_status is CallsSipTrunkAdminStatus.DISABLED
        status = await run(api.get_sip_trunk_status, trunk.id)
        assert status.admin_status is CallsSipTrunkAdminStatus.DISABLED

        deleted = await run(api.delete_sip_trunk_with_http_info, trunk.id)
        assert deleted.status_code == 202 and deleted.data is not None and deleted.data.id == trunk.id
        with pytest.raises(ApiException) as missing:
            await run(api.get_sip_trunk, trunk.id)
        assert missing.value.status == 404 and "serviceException" in (missing.value.body or "")


async def test_registered_trunk_credentials_through_the_sdk(tmp_path: Path) -> None:
    async with running_harness(tmp_path) as h:
        api = sdk(h)
        request = CallsRegisteredSipTrunkRequest(
            name="Branch", channelLimit=2, billingPackage=metered(), inviteAuthentication=True
        )
        created = await run(api.create_sip_trunk_with_http_info, request)
        assert created.status_code == 202
        trunk = created.data
        assert isinstance(trunk, CallsCreateRegisteredSipTrunkResponse)
        assert trunk.username and trunk.password and trunk.invite_authentication is True
        assert trunk.id is not None

        stored = await h.server.components.trunks.by_username(trunk.username)
        assert isinstance(stored, RegisteredTrunk) and stored.credentials.verifies(trunk.password)

        fetched = await run(api.get_sip_trunk_with_http_info, trunk.id)
        assert isinstance(fetched.data, CallsRegisteredSipTrunkResponse)
        assert fetched.data.username == trunk.username
        assert trunk.password not in fetched.raw_data.decode()

        status = await run(api.get_sip_trunk_status, trunk.id)
        assert status.registration_status is not None
        assert status.registration_status.value == "UNREGISTERED"

        reset = await run(api.reset_sip_trunk_password, trunk.id)
        assert reset.username == trunk.username and reset.password and reset.password != trunk.password
        stored = await h.server.components.trunks.by_username(trunk.username)
        assert stored is not None and stored.credentials.verifies(reset.password)
        assert not stored.credentials.verifies(trunk.password)

        update = CallsRegisteredSipTrunkUpdateRequest(
            name="Branch 2", channelLimit=4, inviteAuthentication=False
        )
        updated = await run(api.update_sip_trunk, trunk.id, update)
        assert isinstance(updated, CallsRegisteredSipTrunkResponse)
        assert updated.invite_authentication is False and updated.channel_limit == 4

        page = await run(api.get_sip_trunks)
        assert page.paging is not None and page.paging.total_results == 1
        assert [t.id for t in page.results or []] == [trunk.id]


async def test_trunk_list_pages_and_filters_by_name(tmp_path: Path) -> None:
    async with running_harness(tmp_path) as h:
        api = sdk(h)
        for name in ("a", "b", "a"):
            await run(api.create_sip_trunk, static_request(name))
        page = await run(api.get_sip_trunks, None, 1, 2)
        assert page.paging is not None
        assert (page.paging.page, page.paging.size, page.paging.total_pages) == (1, 2, 2)
        assert page.paging.total_results == 3 and len(page.results or []) == 1
        named = await run(api.get_sip_trunks, "a")
        assert [t.name for t in named.results or []] == ["a", "a"]
        empty = await run(api.get_sip_trunks, "nobody")
        assert empty.results == [] and empty.paging is not None and empty.paging.size >= 1


async def test_media_stream_configs_through_the_sdk(tmp_path: Path) -> None:
    async with running_harness(tmp_path) as h:
        api = sdk(h)
        request = CallsWebsocketEndpointConfigRequest(
            name="Voice bot", url="ws://127.0.0.1:9000/audio", sampleRate="16000"
        )
        created = await run(api.create_media_stream_config_with_http_info, request)
        assert created.status_code == 201
        config = created.data
        assert isinstance(config, CallsWebsocketEndpointConfigResponse) and config.id
        assert config.sample_rate == "16000" and config.url == "ws://127.0.0.1:9000/audio"

        fetched = await run(api.get_media_stream_config, config.id)
        assert isinstance(fetched, CallsWebsocketEndpointConfigResponse) and fetched.name == "Voice bot"

        change = CallsWebsocketEndpointConfigRequest(name="Bot 2", url="wss://127.0.0.1:9443/audio")
        updated = await run(api.update_media_stream_config, config.id, change)
        assert isinstance(updated, CallsWebsocketEndpointConfigResponse)
        assert updated.name == "Bot 2" and updated.sample_rate == "8000"

        streaming = CallsMediaStreamingConfigRequest(
            name="Recorder",
            url="wss://127.0.0.1:9443/stream",
            securityConfig=HmacSecurityConfig(secretKey="k3y", algorithm=HmacAlgorithm.HMAC_SHA_256),
        )
        other = await run(api.create_media_stream_config_with_http_info, streaming)
        assert isinstance(other.data, CallsMediaStreamingConfigResponse) and other.data.id
        assert "k3y" not in other.raw_data.decode()

        page = await run(api.get_media_stream_configs)
        assert page.paging is not None and page.paging.total_results == 2
        assert [c.id for c in page.results or []] == [config.id, other.data.id]

        deleted = await run(api.delete_media_stream_config_with_http_info, config.id)
        assert deleted.status_code == 200 and deleted.data is not None and deleted.data.id == config.id
        with pytest.raises(ApiException) as missing:
            await run(api.get_media_stream_config, config.id)
        assert missing.value.status == 404
