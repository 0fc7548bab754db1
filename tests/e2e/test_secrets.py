"""Secrets stay secret: not in the log, even at DEBUG; not in API responses; and only admin keys may
touch the senders (and so their Meta tokens)."""

from __future__ import annotations

import json
import subprocess
import time
from pathlib import Path
from typing import Any

import httpx
import pytest

from support.cli import SWITCHBOARD, cli_env
from support.platform import Platform, free_port, running_platform
from switchboard.store.calls_api import SubscriptionRow

pytestmark = pytest.mark.e2e

ADMIN_KEY = "admin-key-0123456789abcdef"
APP_KEY = "application-key-0123456789"
PLAIN_KEY = "plain-key-0123456789abcdef"
SECRETS = {
    "access_token": "EAAG-access-token-from-config-73ac",
    "app_secret": "app-secret-from-config-91d2",
    "verify_token": "verify-token-from-config-5e0f",
    "new_access_token": "EAAG-access-token-from-api-2b7e",
    "new_app_secret": "app-secret-from-api-cc01",
    "new_verify_token": "verify-token-from-api-4410",
    "hmac": "hmac-subscription-secret-d3f9",
    "password": "basic-password-8e21",
    "header": "custom-header-token-6a5c",
}


def sender(token: str, secret: str, verify: str) -> dict[str, Any]:
    return {
        "phoneNumberId": "100200300",
        "displayPhoneNumber": "15550100200",
        "wabaId": "900800700",
        "accessToken": token,
        "appSecret": secret,
        "verifyToken": verify,
        "graphApiUrl": "http://127.0.0.1:9",
        "inbound": {"action": "SUBSCRIPTION", "callsConfigurationId": "app"},
    }


def subscription(security: dict[str, Any]) -> dict[str, Any]:
    return {
        "name": "events",
        "events": ["CALL_RECEIVED"],
        "criteria": [{"callsConfigurationId": "app"}],
        "profile": {
            "webhook": {
                "notifyUrl": "http://127.0.0.1:9/events",
                "headers": [{"key": "X-App-Token", "value": SECRETS["header"]}],
            },
            "security": security,
        },
    }


def exercise(url: str) -> list[str]:
    """Everything that carries a secret, through the API; returns every response body."""
    bodies: list[str] = []
    admin = {"Authorization": f"App {ADMIN_KEY}"}
    app = {"Authorization": f"App {APP_KEY}"}
    with httpx.Client(base_url=url, timeout=30) as client:
        assert client.post("/calls/1/configurations", json={"id": "app"}, headers=app).status_code == 201
        hmac = {"type": "HMAC", "credentials": {"secretKey": SECRETS["hmac"], "algorithm": "HMAC_SHA_256"}}
        basic = {"type": "BASIC", "credentials": {"username": "u", "password": SECRETS["password"]}}
        for security in (hmac, basic):
            made = client.post(
                "/subscriptions/1/subscription/VOICE_VIDEO", json=subscription(security), headers=app
            )
            assert made.status_code == 201, made.text
            bodies += [made.text, client.get("/subscriptions/1/subscription/VOICE_VIDEO", headers=app).text]
            one = f"/subscriptions/1/subscription/VOICE_VIDEO/{made.json()['subscriptionId']}"
            bodies.append(client.get(one, headers=app).text)
        new = sender(SECRETS["new_access_token"], SECRETS["new_app_secret"], SECRETS["new_verify_token"])
        for response in (
            client.put("/admin/1/senders/100200300", json=new, headers=admin),
            client.get("/admin/1/senders", headers=admin),
            client.get("/admin/1/senders/100200300", headers=admin),
            client.post("/admin/1/senders", json={**new, "phoneNumberId": "7"}, headers=admin),
            client.get("/whatsapp/1/senders/100200300/calls/15550001234/permissions", headers=app),
        ):
            assert response.status_code < 500, response.text
            bodies.append(response.text)
    return bodies


def test_no_secret_in_debug_logs_or_in_responses(tmp_path: Path) -> None:
    port = free_port()
    config = tmp_path / "switchboard.toml"
    config.write_text(
        f"""
[server]
port = {port}
data_dir = "{tmp_path / "data"}"
allow_private_urls = true

[api]
keys = ["{PLAIN_KEY}"]

[[api.key]]
key = "{ADMIN_KEY}"
scopes = ["admin"]

[[api.key]]
key = "{APP_KEY}"
scopes = ["application"]

[[whatsapp.senders]]
phone_number_id = "100200300"
display_phone_number = "15550100200"
waba_id = "900800700"
access_token = "{SECRETS["access_token"]}"
app_secret = "{SECRETS["app_secret"]}"
verify_token = "{SECRETS["verify_token"]}"
graph_api_url = "http://127.0.0.1:9"
inbound = {{ action = "SUBSCRIPTION", calls_configuration_id = "app" }}
"""
    )
    log = tmp_path / "server.log"
    with log.open("w") as out:
        process = subprocess.Popen(
            [*SWITCHBOARD, "--log-level", "DEBUG", "serve", "--config", str(config)],
            cwd=tmp_path,
            env=cli_env(),
            stdout=out,
            stderr=subprocess.STDOUT,
        )
        try:
            url = f"http://127.0.0.1:{port}"
            deadline = time.monotonic() + 60
            while True:
                try:
                    if httpx.get(f"{url}/health").status_code == 200:
                        break
                except httpx.TransportError:
                    pass
                assert process.poll() is None and time.monotonic() < deadline, log.read_text()[-3000:]
                time.sleep(0.2)
            bodies = exercise(url)
        finally:
            process.terminate()
            process.wait(20)
    text = log.read_text()
    assert " DEBUG " in text, "the server did not log at DEBUG"
    for name, secret in SECRETS.items():
        assert secret not in text, f"the {name} is in the DEBUG log"
        for body in bodies:
            assert secret not in body, f"the {name} is in a response: {body}"
    listed = json.loads(bodies[1])["results"][0]
    assert listed["profile"]["webhook"]["headers"] == {"X-App-Token": "********"}


async def test_application_keys_cannot_touch_senders_and_admin_keys_only_can(tmp_path: Path) -> None:
    keys = {
        "keys": [PLAIN_KEY],
        "key": [{"key": ADMIN_KEY, "scopes": ["admin"]}, {"key": APP_KEY, "scopes": ["application"]}],
    }
    async with (
        running_platform(tmp_path, api=keys) as platform,
        httpx.AsyncClient(base_url=platform.server.url) as client,
    ):

        async def status(method: str, path: str, key: str, **kwargs: Any) -> tuple[int, dict[str, Any]]:
            response = await client.request(method, path, headers={"Authorization": f"App {key}"}, **kwargs)
            return response.status_code, response.json() if response.content else {}

        new = sender("token-x", "secret-x", "verify-x") | {"phoneNumberId": "555"}
        for method, path, body in (
            ("GET", "/admin/1/senders", None),
            ("GET", "/admin/1/senders/100200300", None),
            ("POST", "/admin/1/senders", new),
            ("PUT", "/admin/1/senders/100200300", sender("token-x", "secret-x", "verify-x")),
            ("DELETE", "/admin/1/senders/100200300", None),
        ):
            code, error = await status(method, path, APP_KEY, json=body)
            assert code == 403, (method, path, code)
            assert error["requestError"]["serviceException"]["messageId"] == "FORBIDDEN"
            assert "'admin' scope" in error["requestError"]["serviceException"]["text"]
        assert (await status("GET", "/calls/1/calls", APP_KEY))[0] == 200
        assert (await status("GET", "/admin/1/senders", ADMIN_KEY))[0] == 200
        code, error = await status("GET", "/calls/1/calls", ADMIN_KEY)
        assert code == 403 and "'application' scope" in error["requestError"]["serviceException"]["text"]
        assert (await status("GET", "/admin/1/senders", PLAIN_KEY))[0] == 403, "plain keys are not admin"
        assert (await status("GET", "/calls/1/calls", PLAIN_KEY))[0] == 200
        assert (await client.get("/admin/1/senders", auth=("user", APP_KEY))).status_code == 403
        assert (await status("GET", "/calls/1/calls", "not-a-key-0123456789"))[0] == 401
        assert (await status("GET", "/admin/1/senders", "not-a-key-0123456789"))[0] == 401


async def test_subscription_header_values_are_masked_and_kept_on_put(platform: Platform) -> None:
    await platform.api.post("/calls/1/configurations", json={"id": "app"})
    body = subscription({"type": "NONE"})
    made = await platform.api.post("/subscriptions/1/subscription/VOICE_VIDEO", json=body)
    assert made.status_code == 201, made.text
    path = f"/subscriptions/1/subscription/VOICE_VIDEO/{made.json()['subscriptionId']}"
    got = (await platform.api.get(path)).json()
    assert got["profile"]["webhook"]["headers"] == {"X-App-Token": "********"}
    got["events"] = ["CALL_RECEIVED", "CALL_FINISHED"]
    assert (await platform.api.put(path, json=got)).status_code == 200
    async with platform.server.components.db.session() as s:
        row = await s.get(SubscriptionRow, made.json()["subscriptionId"])
    assert row is not None and row.events == json.dumps(["CALL_RECEIVED", "CALL_FINISHED"])
    assert json.loads(row.profile)["webhook"]["headers"] == {"X-App-Token": SECRETS["header"]}
