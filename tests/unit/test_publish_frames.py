"""The hand-encoded basic.publish frames read back, through pamqp's decoder, as the message we meant."""

from __future__ import annotations

from typing import Any

import pytest
from pamqp import commands, frame, header
from pamqp.body import ContentBody

from gleaner.shared.publish_frames import PublishEncoder, table


def decode_all(data: bytes) -> list[tuple[int, Any]]:
    frames = []
    while data:
        used, channel, decoded = frame.unmarshal(data)
        frames.append((channel, decoded))
        data = data[used:]
    return frames


def test_a_job_message_decodes_to_a_persistent_publish_with_its_priority_headers_and_id() -> None:
    encoder = PublishEncoder(channel=7, max_body=4096, content_type="application/json")
    body = b'{"v":1,"id":42}'
    data = encoder.encode(
        "g.jobs",
        "default",
        body,
        priority=5,
        headers={"job_id": 42, "attempt": 3, "request_id": "req-ü"},
        message_id="gateway-1",
    )

    (c1, method), (c2, content), (c3, payload) = decode_all(data)

    assert (c1, c2, c3) == (7, 7, 7)
    assert isinstance(method, commands.Basic.Publish)
    assert (method.exchange, method.routing_key, method.mandatory, method.immediate) == (
        "g.jobs",
        "default",
        True,
        False,
    )
    assert isinstance(content, header.ContentHeader)
    assert content.body_size == len(body)
    props = content.properties
    assert (props.content_type, props.delivery_mode, props.priority, props.message_id) == (
        "application/json",
        2,
        5,
        "gateway-1",
    )
    assert props.headers == {"job_id": 42, "attempt": 3, "request_id": "req-ü"}
    assert isinstance(payload, ContentBody) and payload.value == body


def test_a_body_longer_than_the_frame_limit_is_split_into_body_frames_that_add_up() -> None:
    encoder = PublishEncoder(channel=1, max_body=10, content_type="application/json")
    body = bytes(range(25))

    frames = decode_all(encoder.encode("x", "k", body, priority=0, headers={}, message_id="m"))

    bodies = [f.value for _, f in frames[2:]]
    assert [len(b) for b in bodies] == [10, 10, 5]
    assert b"".join(bodies) == body
    assert frames[1][1].body_size == 25


def test_an_empty_body_has_no_body_frame() -> None:
    encoder = PublishEncoder(channel=1, max_body=10, content_type="text/plain")

    frames = decode_all(encoder.encode("x", "k", b"", priority=0, headers={}, message_id="m"))

    assert len(frames) == 2 and frames[1][1].body_size == 0


def test_the_method_frame_is_reused_for_the_same_exchange_and_key() -> None:
    encoder = PublishEncoder(channel=1, max_body=10, content_type="text/plain")

    first = encoder.method_frame("x", "k", True)

    assert encoder.method_frame("x", "k", True) is first
    assert encoder.method_frame("x", "k", False) != first


def test_large_and_negative_integers_survive_as_64_bit_header_values() -> None:
    encoder = PublishEncoder(channel=1, max_body=100, content_type="text/plain")
    headers = {"big": 2**62, "negative": -5}

    frames = decode_all(encoder.encode("x", "k", b"b", priority=0, headers=headers, message_id="m"))

    assert frames[1][1].properties.headers == headers


@pytest.mark.parametrize(
    ("call", "message"),
    [
        (lambda e: e.encode("x" * 256, "k", b"", priority=0, headers={}, message_id="m"), "255 bytes"),
        (lambda e: e.encode("x", "k", b"", priority=256, headers={}, message_id="m"), "priority"),
        (lambda e: e.encode("x", "k", b"", priority=0, headers={}, message_id="é" * 200), "255 bytes"),
    ],
)
def test_values_the_protocol_cannot_carry_are_refused(call: Any, message: str) -> None:
    encoder = PublishEncoder(channel=1, max_body=100, content_type="text/plain")

    with pytest.raises(ValueError, match=message):
        call(encoder)


def test_header_values_other_than_integers_and_strings_are_refused() -> None:
    with pytest.raises(TypeError, match="'flag'"):
        table({"flag": True})
    with pytest.raises(TypeError, match="'ratio'"):
        table({"ratio": 0.5})  # type: ignore[dict-item]


def test_a_non_positive_body_limit_is_refused() -> None:
    with pytest.raises(ValueError, match="max_body"):
        PublishEncoder(channel=1, max_body=0, content_type="text/plain")
