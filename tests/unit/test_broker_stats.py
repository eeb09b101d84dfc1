"""Where the management API is, derived from the AMQP URL unless given (pure)."""

from __future__ import annotations

import pytest

from gleaner.shared.broker_stats import Management, management_of
from gleaner.shared.config import Config, ConfigError


@pytest.mark.parametrize(
    ("amqp", "given", "expected"),
    [
        ("amqp://guest:guest@127.0.0.1:5672/", "", Management("http://127.0.0.1:15672", "guest", "guest", "/")),
        ("amqp://app:s%40cret@rabbit:5672/%2F", "", Management("http://rabbit:15672", "app", "s@cret", "/")),
        ("amqps://app:pw@rabbit.example/jobs", "", Management("https://rabbit.example:15672", "app", "pw", "jobs")),
        ("amqp://rabbit", "", Management("http://rabbit:15672", "guest", "guest", "/")),
        (
            "amqp://app:pw@rabbit/jobs",
            "https://mgmt.example/rabbit/",
            Management("https://mgmt.example/rabbit", "app", "pw", "jobs"),
        ),
        (
            "amqp://app:pw@rabbit/",
            "http://monitor:ro@mgmt:8080",
            Management("http://mgmt:8080", "monitor", "ro", "/"),
        ),
    ],
)
def test_the_management_api_is_found_from_the_amqp_url_or_the_setting(
    amqp: str, given: str, expected: Management
) -> None:
    assert management_of(amqp, given) == expected


def test_off_turns_the_management_api_off() -> None:
    assert management_of("amqp://rabbit/", "off") is None


def test_a_management_url_that_is_not_http_is_a_config_error() -> None:
    with pytest.raises(ConfigError, match="GLEANER_RABBITMQ_MANAGEMENT_URL"):
        Config.from_env({"GLEANER_RABBITMQ_MANAGEMENT_URL": "rabbit:15672"})
