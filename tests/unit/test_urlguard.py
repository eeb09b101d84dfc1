"""The SSRF guard refuses every way of spelling a private, loopback or metadata address."""

from __future__ import annotations

import pytest

from gleaner.services.worker.handlers import load_registry
from gleaner.shared.config import Config
from gleaner.shared.submission import parse_one
from gleaner.shared.urlguard import BlockedURL, Policy, check_address, check_url

HOSTILE = [
    "http://127.0.0.1/",
    "http://2130706433/",
    "http://0177.0.0.1/",
    "http://0x7f.0.0.1/",
    "http://0x7f000001/",
    "http://127.1/",
    "http://017700000001/",
    "http://[::ffff:127.0.0.1]/",
    "http://[::ffff:7f00:1]/",
    "http://[::1]/",
    "http://[::]/",
    "http://0.0.0.0/",
    "http://0/",
    "http://169.254.169.254/latest/meta-data/",
    "http://[fd00:ec2::254]/",
    "http://10.0.0.1/",
    "http://10.255.255.255/",
    "http://172.16.0.1/",
    "http://172.31.255.255/",
    "http://192.168.1.1/",
    "http://100.64.0.1/",
    "http://[fe80::1]/",
    "http://[fc00::1]/",
    "http://[2002:7f00:1::]/",
    "http://[64:ff9b::7f00:1]/",
    "http://224.0.0.1/",
    "http://localhost/",
    "http://app.localhost/",
    "http://printer.local/",
    "file:///etc/passwd",
    "gopher://example.com/",
    "ftp://example.com/",
    "http://user:pw@example.com/",
    "http://example.com:22/",
    "//example.com/",
]


@pytest.mark.parametrize("url", HOSTILE)
def test_a_hostile_url_is_refused(url: str) -> None:
    with pytest.raises(BlockedURL):
        check_url(url, Policy())


@pytest.mark.parametrize("url", ["http://example.com/", "https://example.com:8443/x?y=1", "http://93.184.216.34/"])
def test_a_public_url_is_allowed(url: str) -> None:
    assert str(check_url(url, Policy())).startswith(url.split("?")[0][:12])


def test_resolved_addresses_are_checked_again() -> None:
    with pytest.raises(BlockedURL):
        check_address("10.1.2.3", Policy())
    check_address("93.184.216.34", Policy())


def test_private_addresses_are_allowed_when_configured() -> None:
    check_url("http://127.0.0.1:9999/", Policy(allow_private=True, allowed_ports=None))
    check_address("127.0.0.1", Policy(allow_private=True))


def test_the_configured_policy_lifts_address_and_port_checks_together_at_submit_and_fetch() -> None:
    local = {"kind": "http.fetch", "payload": {"url": "http://127.0.0.1:44023/page"}}
    check_url("http://127.0.0.1:44023/page", Policy.configured(allow_private=True))
    config = Config(fetch_allow_private=True)
    assert parse_one(local, config, load_registry(config).rules()).payload == local["payload"]
    with pytest.raises(BlockedURL):
        check_url("http://example.com:44023/", Policy.configured(allow_private=False))
