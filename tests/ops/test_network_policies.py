"""NetworkPolicies: every pod isolated both ways; the worker's egress refuses every range the URL guard refuses."""

from __future__ import annotations

import ipaddress
import random
from collections.abc import Iterator
from typing import Any

import pytest

from gleaner.shared.urlguard import BLOCKED_NETWORKS, DEFAULT_PORTS, address_blocked
from tests.ops.test_kubernetes import render

TARGET = "overlays/production"
Network = ipaddress.IPv4Network | ipaddress.IPv6Network
Address = ipaddress.IPv4Address | ipaddress.IPv6Address
PUBLIC = ("8.8.8.8", "1.1.1.1", "93.184.215.14", "2606:4700:4700::1111", "2a00:1450:4001:82b::200e")
SERVICE_PEERS = {"rabbitmq": {5672, 5671}, "postgresql": {5432}, "kube-dns": {53}}


def _policies() -> dict[str, dict[str, Any]]:
    return {o["metadata"]["name"]: o["spec"] for o in render(TARGET) if o["kind"] == "NetworkPolicy"}


def _selecting(workload: str) -> dict[str, Any]:
    [policy] = [
        p for p in _policies().values() if p["podSelector"]["matchLabels"] == {"app.kubernetes.io/name": workload}
    ]
    return policy


def guard_refused_networks() -> list[Network]:
    """The ranges address_blocked refuses: its own BLOCKED_NETWORKS plus the stdlib tables behind is_private,
    is_loopback, is_link_local, is_multicast, is_reserved, is_global (ipaddress keeps them in `_constants`, so a
    Python that changes them changes what the guard refuses, and this list follows)."""
    networks: list[Network] = list(BLOCKED_NETWORKS)
    v4: Any = ipaddress.IPv4Address._constants  # type: ignore[attr-defined]
    v6: Any = ipaddress.IPv6Address._constants  # type: ignore[attr-defined]
    networks += [*v4._private_networks, v4._public_network, v4._loopback_network, v4._linklocal_network]
    networks += [v4._multicast_network, v4._reserved_network, ipaddress.ip_network(v4._unspecified_address)]
    networks += [*v6._private_networks, *v6._reserved_networks, v6._linklocal_network, v6._multicast_network]
    # addresses embedding IPv4 (mapped, 6to4, Teredo) are refused when the embedded address is
    networks += [ipaddress.ip_network(n) for n in ("::ffff:0:0/96", "2002::/16", "2001::/32")]
    return sorted(set(networks), key=lambda n: (n.version, n))


def _allowed_blocks() -> list[dict[str, Any]]:
    egress = _selecting("gleaner-worker")["egress"]
    return [peer["ipBlock"] for rule in egress for peer in rule["to"] if "ipBlock" in peer]


def _policy_allows(network: Network) -> bool:
    """Whether any address of `network` may be reached through the worker's ipBlocks."""
    for block in _allowed_blocks():
        cidr = ipaddress.ip_network(block["cidr"])
        if cidr.version != network.version or not cidr.overlaps(network):
            continue
        if not any(network.subnet_of(ipaddress.ip_network(e)) for e in block.get("except", [])):  # type: ignore[arg-type]
            return True
    return False


def test_the_worker_cannot_reach_any_range_the_url_guard_refuses() -> None:
    reachable = [str(n) for n in guard_refused_networks() if _policy_allows(n)]
    assert not reachable, f"add these to the worker's ipBlock excepts: {reachable}"


def _samples() -> Iterator[Address]:
    """Every /16 of IPv4, a deterministic random spread of both families, and the edges of every refused range."""
    rng = random.Random(11)
    yield from (ipaddress.IPv4Address((n << 16) + 1) for n in range(1 << 16))
    yield from (ipaddress.IPv4Address(rng.getrandbits(32)) for _ in range(20_000))
    yield from (ipaddress.IPv6Address(rng.getrandbits(128)) for _ in range(20_000))
    yield from (
        ipaddress.IPv6Address((0x2000 + rng.getrandbits(13)) << 112 | rng.getrandbits(112)) for _ in range(20_000)
    )
    for network in guard_refused_networks():
        family = type(network.network_address)
        for edge in (int(network.network_address) - 1, int(network.broadcast_address) + 1):
            if 0 <= edge < 1 << network.max_prefixlen:
                yield family(edge)


def test_the_derived_ranges_match_what_the_guard_refuses() -> None:
    refused = guard_refused_networks()
    for network in refused:
        assert address_blocked(network.network_address), network
        assert address_blocked(network.broadcast_address), network
    missed = [
        str(address)
        for address in _samples()
        if address_blocked(address) and not any(address in n for n in refused if n.version == address.version)
    ]
    assert not missed, f"the guard refuses addresses outside the derived ranges: {missed[:20]}"


@pytest.mark.parametrize("address", PUBLIC)
def test_the_worker_still_reaches_public_addresses(address: str) -> None:
    assert address_blocked(ipaddress.ip_address(address)) is None
    assert _policy_allows(ipaddress.ip_network(address))


def test_the_worker_fetches_only_on_the_ports_the_url_guard_allows() -> None:
    [rule] = [r for r in _selecting("gleaner-worker")["egress"] if any("ipBlock" in peer for peer in r["to"])]
    assert {p["port"] for p in rule["ports"]} == set(DEFAULT_PORTS)
    assert {p["protocol"] for p in rule["ports"]} == {"TCP"}


def test_every_except_lies_inside_its_cidr_as_kubernetes_requires() -> None:
    for block in _allowed_blocks():
        cidr = ipaddress.ip_network(block["cidr"])
        for excepted in block.get("except", []):
            network = ipaddress.ip_network(excepted)
            assert network.version == cidr.version and network.subnet_of(cidr) and network != cidr, (cidr, network)  # type: ignore[arg-type]


@pytest.mark.parametrize("workload", ["gleaner-gateway", "gleaner-worker", "gleaner-scheduler", "gleaner-migrate"])
def test_every_gleaner_pod_is_isolated_for_ingress_and_egress(workload: str) -> None:
    assert set(_selecting(workload)["policyTypes"]) == {"Ingress", "Egress"}


def _peers(policy: dict[str, Any]) -> dict[str, set[int]]:
    """Peer name (the app label or k8s-app) → ports, for every egress rule; ipBlocks under `ipBlock`."""
    found: dict[str, set[int]] = {}
    for rule in policy["egress"]:
        for peer in rule["to"]:
            labels = peer.get("podSelector", {}).get("matchLabels", {})
            name = labels.get("app.kubernetes.io/name") or labels.get("k8s-app") or "ipBlock"
            found.setdefault(name, set()).update(p["port"] for p in rule["ports"])
    return found


@pytest.mark.parametrize("workload", ["gleaner-gateway", "gleaner-scheduler", "gleaner-migrate"])
def test_gateway_scheduler_and_migration_reach_only_dns_the_broker_and_the_database(workload: str) -> None:
    peers = _peers(_selecting(workload))
    assert set(peers) == set(SERVICE_PEERS), peers
    for name, ports in SERVICE_PEERS.items():
        # the gateway reads unacked counts from the management API (GET /queues)
        extra = {15672} if (workload, name) == ("gleaner-gateway", "rabbitmq") else set()
        assert peers[name] == ports | extra, (workload, name, peers[name])


def test_anyone_may_call_the_gateway_api_and_only_prometheus_scrapes_worker_and_scheduler() -> None:
    assert _selecting("gleaner-gateway")["ingress"] == [{"ports": [{"port": 8080, "protocol": "TCP"}]}]
    for workload, port in (("gleaner-worker", 8081), ("gleaner-scheduler", 8082)):
        [rule] = _selecting(workload)["ingress"]
        assert [peer["podSelector"]["matchLabels"] for peer in rule["from"]] == [
            {"app.kubernetes.io/name": "prometheus"}
        ]
        assert [p["port"] for p in rule["ports"]] == [port]
    assert "ingress" not in _selecting("gleaner-migrate")
