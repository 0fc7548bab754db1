"""Infobip's own Python SDK (`CallRoutingApi`) against a running Switchboard: routes are created, read,
listed, updated, reordered, disabled, simulated and deleted through the SDK's own models, and every
answer comes back parsed (a wrong status code or shape would leave `data=None`). The SDK cannot read
back WHATSAPP endpoints or APPLICATION destinations; those are served to raw JSON clients
(`tests/integration/apps/test_routing_api.py`)."""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from pathlib import Path
from typing import Any, TypeVar

import pytest
from infobip_api_client import ApiClient, Configuration
from infobip_api_client.api.call_routing_api import CallRoutingApi
from infobip_api_client.exceptions import ApiException
from infobip_api_client.models.basic_security_config import BasicSecurityConfig
from infobip_api_client.models.call_routing_endpoint_destination import CallRoutingEndpointDestination
from infobip_api_client.models.call_routing_phone_criteria import CallRoutingPhoneCriteria
from infobip_api_client.models.call_routing_phone_endpoint import CallRoutingPhoneEndpoint
from infobip_api_client.models.call_routing_recording import CallRoutingRecording
from infobip_api_client.models.call_routing_route_order_request import CallRoutingRouteOrderRequest
from infobip_api_client.models.call_routing_route_request import CallRoutingRouteRequest
from infobip_api_client.models.call_routing_route_simulator_request import (
    CallRoutingRouteSimulatorRequest,
)
from infobip_api_client.models.call_routing_route_status import CallRoutingRouteStatus
from infobip_api_client.models.call_routing_route_status_request import CallRoutingRouteStatusRequest
from infobip_api_client.models.call_routing_search_criteria import CallRoutingSearchCriteria
from infobip_api_client.models.call_routing_simulator_phone_endpoint import (
    CallRoutingSimulatorPhoneEndpoint,
)
from infobip_api_client.models.call_routing_simulator_sip_endpoint import CallRoutingSimulatorSipEndpoint
from infobip_api_client.models.call_routing_simulator_web_rtc_endpoint import (
    CallRoutingSimulatorWebRTCEndpoint,
)
from infobip_api_client.models.call_routing_sip_criteria import CallRoutingSipCriteria
from infobip_api_client.models.call_routing_sip_endpoint import CallRoutingSipEndpoint
from infobip_api_client.models.call_routing_sip_header import CallRoutingSipHeader
from infobip_api_client.models.call_routing_url_destination import CallRoutingUrlDestination
from infobip_api_client.models.call_routing_web_rtc_criteria import CallRoutingWebRTCCriteria
from infobip_api_client.models.call_routing_web_rtc_endpoint import CallRoutingWebRtcEndpoint
from infobip_api_client.models.delivery_day import DeliveryDay
from infobip_api_client.models.delivery_time import DeliveryTime
from infobip_api_client.models.delivery_time_window import DeliveryTimeWindow

from support.calls_api_harness import API_KEY, Harness, running_harness

T = TypeVar("T")


async def run(fn: Callable[..., T], *args: Any, **kwargs: Any) -> T:
    return await asyncio.to_thread(fn, *args, **kwargs)


def sdk(h: Harness) -> CallRoutingApi:
    return CallRoutingApi(ApiClient(Configuration(host=h.base_url, api_key=API_KEY)))


def sip_route(name: str) -> CallRoutingRouteRequest:
    return CallRoutingRouteRequest(
        name=name,
        criteria=[
            CallRoutingSearchCriteria(
                to="4420(.+)",
                value=CallRoutingSipCriteria(
                    sipTrunkId="trunk-1",
                    username="alice.*",
                    headers=[CallRoutingSipHeader(headerName="X-Team", headerValue="sales|support")],
                ),
            )
        ],
        destinations=[
            CallRoutingEndpointDestination(
                value=CallRoutingSipEndpoint(sipTrunkId="pbx", username="100", customHeaders={"X-A": "b"}),
                connectTimeout=20,
                recording=CallRoutingRecording(recordingType="AUDIO", filePrefix="route_a"),
                allowedTimeWindows=[
                    DeliveryTimeWindow(
                        days=[DeliveryDay.MONDAY, DeliveryDay.FRIDAY],
                        var_from=DeliveryTime(hour=9, minute=0),
                        to=DeliveryTime(hour=17, minute=30),
                    )
                ],
                priority=1,
                weight=3,
            ),
            CallRoutingUrlDestination(
                url="http://localhost:8081/route",
                securityConfig=BasicSecurityConfig(username="u", password="secret"),
                priority=2,
                weight=1,
            ),
        ],
    )


async def test_route_lifecycle_through_the_sdk(tmp_path: Path) -> None:
    async with running_harness(tmp_path) as h:
        api = sdk(h)
        first = await run(api.create_call_route, sip_route("to the PBX"))
        assert first.id and first.status is CallRoutingRouteStatus.ENABLED and first.order == 1
        sip = first.destinations[0]
        assert sip.type == "ENDPOINT" and sip.connect_timeout == 20
        url = first.destinations[1]
        assert url.url == "http://localhost:8081/route"
        assert url.security_config.password == "********"
        criterion = first.criteria[0]
        assert criterion.to == "4420(.+)" and criterion.value.headers[0].header_name == "X-Team"

        second = await run(
            api.create_call_route,
            CallRoutingRouteRequest(
                name="webrtc agents",
                criteria=[
                    CallRoutingSearchCriteria(value=CallRoutingWebRTCCriteria(identity="agent-.*")),
                    CallRoutingSearchCriteria(value=CallRoutingPhoneCriteria(var_from="4477.*")),
                ],
                destinations=[
                    CallRoutingEndpointDestination(value=CallRoutingWebRtcEndpoint(identity="desk"))
                ],
            ),
        )
        assert second.order == 2

        fetched = await run(api.get_call_route, first.id)
        assert fetched.name == "to the PBX" and len(fetched.destinations) == 2
        page = await run(api.get_call_routes, name_contains="PBX", page=0, size=10)
        assert [r.id for r in page.results] == [first.id]
        assert page.paging.total_results == 1 and page.paging.size == 10
        empty = await run(api.get_call_routes, name_contains="nothing")
        assert empty.results == [] and empty.paging.size >= 1

        # the secret sent back masked is kept
        update = sip_route("to the PBX, renamed")
        update.destinations[1].security_config.password = "********"
        renamed = await run(api.update_call_route, first.id, update)
        assert renamed.name == "to the PBX, renamed" and renamed.order == 1

        moved = await run(api.set_order_call_route, second.id, CallRoutingRouteOrderRequest(order=1))
        assert moved.order == 1
        assert (await run(api.get_call_route, first.id)).order == 2

        sip_call = CallRoutingRouteSimulatorRequest(
            to="442071234567",
            endpoint=CallRoutingSimulatorSipEndpoint(
                var_from="alice.smith", sipTrunkId="trunk-1", headers={"X-Team": "sales"}
            ),
        )
        assert (await run(api.simulate_route_selection, sip_call)).id == first.id
        webrtc_call = CallRoutingRouteSimulatorRequest(
            to="anything", endpoint=CallRoutingSimulatorWebRTCEndpoint(var_from="agent-7")
        )
        assert (await run(api.simulate_route_selection, webrtc_call)).id == second.id
        phone_call = CallRoutingRouteSimulatorRequest(
            to="1", endpoint=CallRoutingSimulatorPhoneEndpoint(var_from="447700900123")
        )
        assert (await run(api.simulate_route_selection, phone_call)).id == second.id

        disabled = await run(
            api.update_call_route_status,
            second.id,
            CallRoutingRouteStatusRequest(routeStatus=CallRoutingRouteStatus.DISABLED),
        )
        assert disabled.status is CallRoutingRouteStatus.DISABLED
        with pytest.raises(ApiException) as missing:
            await run(api.simulate_route_selection, webrtc_call)
        assert missing.value.status == 404
        webrtc_call.use_disabled_routes = True
        assert (await run(api.simulate_route_selection, webrtc_call)).id == second.id

        deleted = await run(api.delete_call_route, second.id)
        assert deleted.id == second.id
        assert (await run(api.get_call_route, first.id)).order == 1
        with pytest.raises(ApiException) as gone:
            await run(api.get_call_route, second.id)
        assert gone.value.status == 404
        assert '"errorCode"' in (gone.value.body or "")

        recordings = await run(api.search_call_routing_recording, route_id=first.id, page=0, size=5)
        assert recordings.results == [] and recordings.paging.total_results == 0


async def test_the_sdk_sees_bad_routes_refused(tmp_path: Path) -> None:
    async with running_harness(tmp_path) as h:
        api = sdk(h)
        bad_regex = CallRoutingRouteRequest(
            name="bad",
            criteria=[CallRoutingSearchCriteria(value=CallRoutingPhoneCriteria(var_from="44(("))],
            destinations=[
                CallRoutingEndpointDestination(value=CallRoutingPhoneEndpoint(phoneNumber="447700900123"))
            ],
        )
        with pytest.raises(ApiException) as refused:
            await run(api.create_call_route, bad_regex)
        assert refused.value.status == 400
        assert "criteria.0.value.PHONE.from" in (refused.value.body or "")
