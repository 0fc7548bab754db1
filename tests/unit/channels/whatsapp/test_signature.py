import hashlib
import hmac

from switchboard.channels.whatsapp.signature import matching_secret, sign


def test_signature_is_hmac_sha256_of_raw_body() -> None:
    body = b'{"url":"https:\\/\\/example.com"}'
    expected = "sha256=" + hmac.new(b"s3cret", body, hashlib.sha256).hexdigest()
    assert sign(body, "s3cret") == expected
    assert matching_secret(body, expected, ["other", "s3cret"]) == "s3cret"
    assert matching_secret(body + b" ", expected, ["s3cret"]) is None
    assert matching_secret(body, expected.removeprefix("sha256="), ["s3cret"]) is None
