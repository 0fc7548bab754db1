import re
from pathlib import Path

import pytest

from switchboard.cli import main
from switchboard.config import ConfigError, load_settings

SENDER = """
[[whatsapp.senders]]
phone_number_id = "100"
display_phone_number = "15550100"
waba_id = "900"
access_token = "token"
app_secret = "secret"
verify_token = "verify"
inbound = { action = "SUBSCRIPTION", calls_configuration_id = "app" }
"""


def write(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "switchboard.toml"
    path.write_text(text)
    return path


def test_defaults_need_no_file(tmp_path: Path) -> None:
    settings = load_settings(environ={})
    assert settings.server.port == 8080
    assert settings.database_url.startswith("sqlite+aiosqlite:///")
    assert settings.whatsapp.senders == []


def test_a_full_file_loads(tmp_path: Path) -> None:
    text = '[server]\nport = 9000\n[api]\nkeys = ["0123456789abcdef0123"]\n' + SENDER
    settings = load_settings(write(tmp_path, text), environ={})
    assert settings.server.port == 9000
    assert settings.whatsapp.senders[0].graph_api_url == "https://graph.facebook.com"


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("[server]\nport = 70000\n", "server.port: Input should be less than or equal to 65535"),
        ("[server]\nprot = 1\n", "server.prot: unknown key"),
        ('[api]\nkeys = ["short"]\n', "api.keys: each API key must be at least 16 characters"),
        ('[database]\nurl = "mysql://x"\n', "database.url: use a sqlite+aiosqlite://"),
        ('[server]\nmedia_addresses = ["not-an-ip"]\n', "server.media_addresses"),
        (SENDER.replace('app_secret = "secret"\n', ""), "whatsapp.senders[0].app_secret: Field required"),
        (
            SENDER.replace(', calls_configuration_id = "app"', ""),
            "whatsapp.senders[0].inbound: action SUBSCRIPTION needs calls_configuration_id",
        ),
        (SENDER.replace('"SUBSCRIPTION"', '"PSTN"'), "whatsapp.senders[0].inbound.action"),
        (
            SENDER.replace('"SUBSCRIPTION", calls_configuration_id = "app"', '"CONTACT_CENTER"'),
            "whatsapp.senders[0].inbound: action CONTACT_CENTER needs queue_id",
        ),
        ('[media]\nengine = "rtpengine"\n', "media.engine: Input should be 'embedded'"),
        ("[server\n", "is not valid TOML"),
    ],
)
def test_bad_values_name_their_key(tmp_path: Path, text: str, message: str) -> None:
    with pytest.raises(ConfigError) as info:
        load_settings(write(tmp_path, text), environ={})
    assert message in str(info.value)


def test_environment_overrides(tmp_path: Path) -> None:
    settings = load_settings(
        environ={"DATABASE_URL": "postgresql://u@db/sb", "SWITCHBOARD_API_KEYS": "k" * 16 + ",  "}
    )
    assert settings.database_url == "postgresql+asyncpg://u@db/sb"
    assert settings.api.keys == ["k" * 16]


def test_cli_reports_a_bad_config_and_exits_2(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    path = write(tmp_path, "[server]\nport = -1\n")
    assert main(["serve", "--config", str(path)]) == 2
    assert "server.port" in capsys.readouterr().err
    assert main(["serve", "--config", str(tmp_path / "missing.toml")]) == 2
    assert "does not exist" in capsys.readouterr().err


def test_every_inbound_action_names_its_target(tmp_path: Path) -> None:
    queue = SENDER.replace(
        '"SUBSCRIPTION", calls_configuration_id = "app"', '"CONTACT_CENTER", queue_id = "q1"'
    )
    routing = SENDER.replace('"SUBSCRIPTION", calls_configuration_id = "app"', '"CALL_ROUTING"')
    assert load_settings(write(tmp_path, queue), environ={}).whatsapp.senders[0].inbound.target_id == "q1"
    assert load_settings(write(tmp_path, routing), environ={}).whatsapp.senders[0].inbound.target_id is None


def test_api_keys_with_scopes(tmp_path: Path) -> None:
    text = """
[api]
keys = ["plain-key-0123456789"]

[[api.key]]
key = "admin-key-0123456789"
scopes = ["admin"]

[[api.key]]
key = "app-key-01234567890"
scopes = ["application"]
"""
    environ = {
        "SWITCHBOARD_API_KEYS": "env-key-0123456789ab",
        "SWITCHBOARD_ADMIN_KEYS": "operator-0123456789ab",
    }
    settings = load_settings(write(tmp_path, text), environ=environ)
    assert settings.api.all_keys() == [
        ("env-key-0123456789ab", ("application",)),
        ("operator-0123456789ab", ("admin", "application")),
        ("admin-key-0123456789", ("admin",)),
        ("app-key-01234567890", ("application",)),
    ]


@pytest.mark.parametrize(
    ("entry", "message"),
    [
        ('key = "short"\nscopes = ["admin"]', "api.key[0].key: String should have at least 16 characters"),
        ('key = "admin-key-0123456789"\nscopes = ["root"]', "api.key[0].scopes[0]: Input should be"),
        ('key = "admin-key-0123456789"\nscopes = []', "api.key[0].scopes: List should have at least 1 item"),
        ('key = "admin-key-0123456789"', "api.key[0].scopes: Field required"),
    ],
)
def test_bad_scoped_keys_are_named(tmp_path: Path, entry: str, message: str) -> None:
    with pytest.raises(ConfigError, match=re.escape(message)):
        load_settings(write(tmp_path, f"[[api.key]]\n{entry}\n"), environ={})


def test_url_networks_are_checked(tmp_path: Path) -> None:
    settings = load_settings(
        write(tmp_path, '[server]\nallowed_url_networks = ["10.20.0.0/16"]\n'), environ={}
    )
    assert settings.server.allowed_url_networks == ["10.20.0.0/16"]
    with pytest.raises(ConfigError, match=r"server\.allowed_url_networks"):
        load_settings(write(tmp_path, '[server]\nallowed_url_networks = ["10.20.0.0/99"]\n'), environ={})


def test_no_sip_section_means_no_sip_listener(tmp_path: Path) -> None:
    assert load_settings(write(tmp_path, ""), environ={}).sip is None
    sip = load_settings(write(tmp_path, "[sip]\n"), environ={}).sip
    assert sip is not None and sip.listen == ["udp:127.0.0.1:5060"] and sip.rtp_ports == (20000, 29999)
    assert sip.digest_algorithms == ("MD5", "SHA-256")


def test_a_full_sip_section_loads(tmp_path: Path) -> None:
    (tmp_path / "cert.pem").write_text("x")
    (tmp_path / "key.pem").write_text("x")
    text = (
        '[sip]\nlisten = ["udp:127.0.0.1:5060", "tcp:127.0.0.1:5060", "tls:[::1]:5061"]\n'
        f'public_address = "203.0.113.7"\nrtp_ports = [30000, 30100]\n'
        f'tls_certificate = "{tmp_path / "cert.pem"}"\ntls_key = "{tmp_path / "key.pem"}"\n'
    )
    sip = load_settings(write(tmp_path, text), environ={}).sip
    assert sip is not None and sip.public_address == "203.0.113.7" and sip.rtp_ports == (30000, 30100)


def test_sip_connection_limits_load(tmp_path: Path) -> None:
    text = (
        "[sip]\nconnection_idle_s = 60\nmessage_timeout_s = 5\nmax_connections = 10\n"
        "max_connection_buffer = 4096\n"
    )
    sip = load_settings(write(tmp_path, text), environ={}).sip
    assert sip is not None
    assert (sip.connection_idle_s, sip.message_timeout_s, sip.max_connections, sip.max_connection_buffer) == (
        60,
        5,
        10,
        4096,
    )


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ('[sip]\nlisten = ["sctp:127.0.0.1:5060"]\n', "sip.listen: "),
        ('[sip]\nlisten = ["udp:127.0.0.1:70000"]\n', "sip.listen: "),
        ("[sip]\nlisten = []\n", "sip.listen: "),
        ('[sip]\npublic_address = "pbx.example"\n', "sip.public_address: 'pbx.example' is not an IP address"),
        ("[sip]\nrtp_ports = [30000, 20000]\n", "sip.rtp_ports: expected [low, high]"),
        ('[sip]\nlisten = ["tls:127.0.0.1:5061"]\n', "sip: tls_certificate and tls_key are required"),
        (
            '[sip]\ntls_key = "/nonexistent/key.pem"\n',
            "sip.tls_key: /nonexistent/key.pem is not a readable file",
        ),
        ("[sip]\nlisten_on = 1\n", "sip.listen_on: unknown key"),
        ("[sip]\nconnection_idle_s = 0\n", "sip.connection_idle_s: "),
        ("[sip]\nmessage_timeout_s = -1\n", "sip.message_timeout_s: "),
        ("[sip]\nmax_connections = 0\n", "sip.max_connections: "),
        ("[sip]\nmax_connection_buffer = 10\n", "sip.max_connection_buffer: "),
        (
            '[sip]\ndigest_algorithms = ["SHA-512"]\n',
            "sip.digest_algorithms[0]: Input should be 'MD5' or 'SHA-256'",
        ),
        ("[sip]\ndigest_algorithms = []\n", "sip.digest_algorithms: "),
    ],
)
def test_bad_sip_values_name_their_key(tmp_path: Path, text: str, message: str) -> None:
    with pytest.raises(ConfigError) as info:
        load_settings(write(tmp_path, text), environ={})
    assert message in str(info.value)


def test_routing_time_zone_is_an_iana_zone() -> None:
    assert load_settings(environ={}).routing.time_zone == "UTC"
    settings = load_settings(overrides={"routing": {"time_zone": "Europe/Berlin"}}, environ={})
    assert settings.routing.time_zone == "Europe/Berlin"
    with pytest.raises(ConfigError, match=r"routing\.time_zone: 'Mars/Olympus' is not an IANA time zone"):
        load_settings(overrides={"routing": {"time_zone": "Mars/Olympus"}}, environ={})
