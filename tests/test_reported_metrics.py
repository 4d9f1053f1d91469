"""Reported numbers carry the protocol that produced them; `vistok zoo list --metrics` tables only numbers that
share one (protocol and dataset)."""

from __future__ import annotations

import json

import pytest

from vistok.cli import main as vistok_main
from vistok.families import all_entries
from vistok.metrics.protocols import PROTOCOLS
from vistok.metrics.reported import UNKNOWN, reported_groups


def test_every_reported_number_names_its_protocol_or_says_why_not():
    """A family module tags each reported_metric(...) with protocol=<a vistok protocol>, or protocol="unknown" plus
    protocol_note="<what the source says>" (docs/evaluation.md lists the protocols)."""
    untagged = []
    for entry in all_entries():
        for metric in entry.reported_metrics:
            protocol = metric.get("protocol")
            if protocol in PROTOCOLS:
                continue
            if protocol == UNKNOWN and metric.get("protocol_note"):
                continue
            untagged.append(f"{entry.name}: {metric['metric']} {metric['value']} (protocol={protocol!r})")
    assert not untagged, "reported numbers without a protocol: " + "; ".join(untagged)


def test_known_reported_protocols():
    by_name = {entry.name: entry for entry in all_entries()}
    assert {m["protocol"] for m in by_name["vqgan-llamagen-vq16"].reported_metrics} == {"llamagen"}
    assert {m["protocol"] for m in by_name["titok-sl256-vq8k-imagenet256"].reported_metrics} == {"torch-fidelity"}
    assert {m["protocol"] for m in by_name["ibq-imagenet256-16384"].reported_metrics} == {"seed-voken"}


def test_groups_hold_only_numbers_measured_the_same_way():
    groups = reported_groups(all_entries())
    by_name = {entry.name: entry for entry in all_entries()}
    seen = set()
    for group in groups:
        if group["protocol"] == UNKNOWN:
            assert all(row["note"] for row in group["rows"])
            continue
        key = (group["protocol"], group["dataset"])
        assert key not in seen
        seen.add(key)
        for row in group["rows"]:
            for metric, value in row["metrics"].items():
                (source,) = [m for m in by_name[row["name"]].reported_metrics if m["metric"] == metric]
                assert source["protocol"] == group["protocol"] and source["dataset"] == group["dataset"]
                assert source["value"] == value
    with pytest.raises(ValueError, match="valid: vistok"):
        reported_groups(all_entries(), "nope")


def test_zoo_list_metrics_command(capsys):
    assert vistok_main(["zoo", "list", "--metrics", "--protocol", "llamagen"]) == 0
    out = capsys.readouterr().out
    assert "Protocol llamagen on ImageNet 256x256 validation" in out and "vqgan-llamagen-vq16" in out
    assert "titok" not in out and "Protocol torch-fidelity" not in out
    assert vistok_main(["zoo", "list", "--metrics", "--json"]) == 0
    groups = json.loads(capsys.readouterr().out)
    assert {g["protocol"] for g in groups} >= {"llamagen", "torch-fidelity", "seed-voken", UNKNOWN}
    with pytest.raises(SystemExit, match="unknown protocol"):
        vistok_main(["zoo", "list", "--metrics", "--protocol", "nope"])
