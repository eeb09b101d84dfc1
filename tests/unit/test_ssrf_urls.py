"""`check_static`, the gateway's submit-time SSRF check, refuses every statically visible hostile URL."""

from __future__ import annotations

import pytest

from gleaner.shared.urlguard import BlockedURL, Policy, check_address, check_static, check_url

# Each one would reach this machine, a private network or a cloud metadata service, or is no web URL.
HOSTILE = [
    "http://127.0.0.1/",
    "http://2130706433/",  # decimal 127.0.0.1
    "http://0177.0.0.1/",  # octal
    "http://0x7f.0.0.1/",  # hex octet
    "http://0x7f000001/",  # hex integer
    "http://017700000001/",  # octal integer
    "http://127.1/",  # short form
    "http://0x7f.1/",
    "http://[::ffff:127.0.0.1]/",
    "http://[::ffff:7f00:1]/",
    "http://[::1]/",
    "http://[0:0:0:0:0:0:0:1]/",
    "http://0.0.0.0/",
    "http://169.254.169.254/latest/meta-data/",
    "http://2852039166/",  # decimal 169.254.169.254
    "http://[::ffff:169.254.169.254]/",
    "http://[fd00:ec2::254]/",
    "http://10.0.0.1/",
    "http://10.255.255.254:8080/",
    "http://012.0.0.1/",  # octal 10.0.0.1
    "http://172.16.0.1/",
    "http://192.168.0.1/",
    "http://100.64.0.1/",  # CGNAT
    "http://[fe80::1]/",
    "http://[fc00::1]/",
    "http://[2002:7f00:1::]/",  # 6to4 of loopback
    "http://[64:ff9b::a00:1]/",  # NAT64 of 10.0.0.1
    "http://localhost/",
    "http://LOCALHOST./",
    "http://metadata.google.internal/",
    "http://printer.local/",
    "file:///etc/passwd",
    "gopher://127.0.0.1:70/_GET",
    "ftp://example.com/",
    "dict://127.0.0.1:11211/",
    "http://user:pw@example.com/",
    "http://example.com:22/",
    "//example.com/",
    "not a url",
]


def test_the_hostile_list_is_long_enough() -> None:
    assert len(HOSTILE) >= 30


@pytest.mark.parametrize("url", HOSTILE)
def test_a_hostile_url_is_refused_at_submit_with_a_reason(url: str) -> None:
    reason = check_static(url)
    assert reason, url


@pytest.mark.parametrize("url", ["http://example.com/", "https://jobs.example.org:443/list?page=2"])
def test_an_ordinary_url_passes(url: str) -> None:
    assert check_static(url) is None


def test_a_trusted_address_is_reachable_and_only_that_one() -> None:
    policy = Policy(allowed_ports=None, trusted_addresses=frozenset({"10.1.2.3"}))
    assert check_url("http://10.1.2.3:9000/", policy)
    check_address("10.1.2.3", policy)
    with pytest.raises(BlockedURL):
        check_address("10.1.2.4", policy)
