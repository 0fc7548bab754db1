"""`GET /`: what this emulator is, which business numbers it serves and where to go next."""

from __future__ import annotations

from html import escape

from fastapi import FastAPI, Request
from fastapi.responses import HTMLResponse

from ._state import EmulatorState

_PAGE = """<!doctype html>
<html lang="en">
<head><meta charset="utf-8"><title>Meta Cloud API emulator (Switchboard)</title>
<style>body {{ font-family: sans-serif; max-width: 44rem; margin: 2rem auto; }}
code {{ background: #f3f3f3; padding: 0 .2em; }}</style></head>
<body>
<h1>Meta Cloud API emulator</h1>
<p>This server plays Meta for a Switchboard server: it answers the Graph API calling endpoints and
sends Meta-shaped, signed webhooks to <code>{webhook_url}</code>.</p>
<p><a href="/phone">Open the phone page</a> to call a business number from this browser.</p>
<h2>Business numbers</h2>
<ul>{numbers}</ul>
<h2>For the server</h2>
<p>Graph API base URL (a sender's <code>graph_api_url</code>): <code>{base}</code></p>
<h2>Scripted calls</h2>
<p><code>switchboard emulator call --emulator {base} --to &lt;phone_number_id&gt; --dtmf 123#</code>
(or <code>POST {base}/_emulator/calls</code>)</p>
</body>
</html>
"""


def add_home_route(app: FastAPI, state: EmulatorState) -> None:
    @app.get("/", include_in_schema=False)
    async def home(request: Request) -> HTMLResponse:
        numbers = "".join(
            f"<li>{escape(n.display_phone_number)} (phone_number_id {escape(n.phone_number_id)})</li>"
            for n in state.numbers.values()
        )
        base = str(request.base_url).rstrip("/")
        return HTMLResponse(
            _PAGE.format(
                webhook_url=escape(state.webhooks.url),
                numbers=numbers or "<li>none configured</li>",
                base=escape(base),
            )
        )
