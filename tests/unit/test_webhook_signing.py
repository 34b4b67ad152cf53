"""Webhook signatures (contract §8): what the server signs, and what the SDK accepts."""

from __future__ import annotations

import hashlib
import hmac
import json
import time
from email.message import Message

import pytest

from abmhub.client import WebhookVerificationError, verify_webhook
from abmhub.webhooks.signing import SIGNATURE_HEADER, new_secret, signature

SECRET = "whsec_" + "k" * 43
EVENT = {"id": "evt_1", "type": "ping", "createdAt": "2025-01-01T00:00:00.000Z", "data": {}}
BODY = json.dumps(EVENT).encode()


def _signed(body: bytes = BODY, secret: str = SECRET, at: int | None = None) -> dict[str, str]:
    return {SIGNATURE_HEADER: signature(secret, body, int(time.time()) if at is None else at)}


def test_the_signature_is_hmac_sha256_of_timestamp_dot_body():
    expected = hmac.new(SECRET.encode("utf-8"), b"1700000000." + BODY, hashlib.sha256).hexdigest()
    assert signature(SECRET, BODY, 1700000000) == f"t=1700000000,v1={expected}"


def test_a_new_secret_is_prefixed_and_long_enough():
    first, second = new_secret(), new_secret()
    assert first.startswith("whsec_"), "the contract's prefix"
    assert len(first) - len("whsec_") >= 32, "32+ random characters"
    assert first != second, "every secret is new"


def test_verify_returns_the_event():
    assert verify_webhook(SECRET, _signed(), BODY) == EVENT


@pytest.mark.parametrize(
    "shape",
    [
        pytest.param(lambda headers: {name.lower(): value for name, value in headers.items()}, id="lowercase"),
        pytest.param(lambda headers: {name.upper(): value for name, value in headers.items()}, id="uppercase"),
        pytest.param(lambda headers: [("Content-Type", "application/json"), *headers.items()], id="pairs"),
        pytest.param(lambda headers: _message(headers), id="http.server-message"),
    ],
)
def test_verify_reads_the_header_from_any_shape_of_headers(shape):
    assert verify_webhook(SECRET, shape(_signed()), BODY) == EVENT


def _message(headers: dict[str, str]) -> Message:
    message = Message()
    for name, value in headers.items():
        message[name.lower()] = value
    return message


def test_verify_accepts_the_body_as_text():
    assert verify_webhook(SECRET, _signed(), BODY.decode()) == EVENT


def test_verify_accepts_when_one_of_two_signatures_matches():
    now = int(time.time())
    good = signature(SECRET, BODY, now).split(",")[1]
    other = signature("whsec_another", BODY, now).split(",")[1]
    assert verify_webhook(SECRET, {SIGNATURE_HEADER: f"t={now},{other},{good}"}, BODY) == EVENT
    assert verify_webhook(SECRET, {SIGNATURE_HEADER: f"t={now}, {good}, {other}"}, BODY) == EVENT


def test_verify_ignores_signatures_of_other_schemes():
    now = int(time.time())
    good = signature(SECRET, BODY, now).split(",")[1]
    assert verify_webhook(SECRET, {SIGNATURE_HEADER: f"t={now},v0=abc,{good}"}, BODY) == EVENT


def test_verify_refuses_another_secret():
    with pytest.raises(WebhookVerificationError, match="does not match"):
        verify_webhook(SECRET, _signed(secret="whsec_someone_else"), BODY)


def test_verify_refuses_a_changed_body():
    with pytest.raises(WebhookVerificationError, match="does not match"):
        verify_webhook(SECRET, _signed(), BODY.replace(b"ping", b"pong"))


def test_verify_refuses_a_changed_timestamp():
    now = int(time.time())
    forged = signature(SECRET, BODY, now).replace(f"t={now}", f"t={now - 1}")
    with pytest.raises(WebhookVerificationError, match="does not match"):
        verify_webhook(SECRET, {SIGNATURE_HEADER: forged}, BODY)


def test_verify_refuses_an_old_timestamp():
    with pytest.raises(WebhookVerificationError, match="older than 300 s"):
        verify_webhook(SECRET, _signed(at=int(time.time()) - 301), BODY)
    assert verify_webhook(SECRET, _signed(at=int(time.time()) - 290), BODY) == EVENT, "within the tolerance"
    assert verify_webhook(SECRET, _signed(at=int(time.time()) - 3000), BODY, tolerance=3600) == EVENT


def test_verify_refuses_a_timestamp_far_in_the_future():
    with pytest.raises(WebhookVerificationError, match="in the future"):
        verify_webhook(SECRET, _signed(at=int(time.time()) + 301), BODY)


def test_verify_refuses_a_missing_header():
    with pytest.raises(WebhookVerificationError, match="No X-Abmhub-Signature header"):
        verify_webhook(SECRET, {"Content-Type": "application/json"}, BODY)


@pytest.mark.parametrize(
    "value",
    [
        "",
        "garbage",
        "v1=abc",  # no timestamp
        "t=1700000000",  # no signature
        "t=soon,v1=abc",
        "t=-5,v1=abc",
        "t=1,t=2,v1=abc",
        "t=1700000000,v1=",
        "t=١٧٠٠٠٠٠٠٠٠,v1=abc",  # digits, but not ASCII ones
    ],
)
def test_verify_refuses_a_malformed_header(value):
    with pytest.raises(WebhookVerificationError, match="Malformed"):
        verify_webhook(SECRET, {SIGNATURE_HEADER: value}, BODY)


def test_verify_refuses_a_signed_body_that_is_not_a_json_object():
    with pytest.raises(WebhookVerificationError, match="not a JSON object"):
        verify_webhook(SECRET, _signed(b"[1, 2]"), b"[1, 2]")
    with pytest.raises(WebhookVerificationError, match="not JSON"):
        verify_webhook(SECRET, _signed(b"not json"), b"not json")


def test_the_error_never_shows_the_secret():
    with pytest.raises(WebhookVerificationError) as raised:
        verify_webhook(SECRET, _signed(secret="whsec_other"), BODY)
    assert SECRET not in str(raised.value)
