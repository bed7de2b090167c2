"""The dcgm-exporter mapping table covers the stock dashboard and renders consistent artifacts."""

from __future__ import annotations

import json
import re

from tests.paths import FIXTURES
from tuneloop.generate import dcgm_compat
from tuneloop.generate.dcgm_table import MAPPINGS, by_name

DASHBOARD = FIXTURES / "dcgm" / "dcgm-exporter-dashboard.json"


def dashboard_names() -> set[str]:
    return set(re.findall(r"DCGM_FI_\w+", DASHBOARD.read_text()))


def test_every_name_the_stock_dashboard_uses_is_mapped_and_marked() -> None:
    table = by_name()
    for name in dashboard_names():
        assert table[name].mapped, name
        assert "dashboard" in table[name].stock, name
    marked = {m.dcgm for m in MAPPINGS if "dashboard" in m.stock}
    assert marked == dashboard_names()


def test_the_requested_sources_map_to_their_dcgm_names() -> None:
    table = by_name()
    expected = {
        "DCGM_FI_PROF_SM_ACTIVE": "tuneloop_gpu_sm_active_ratio",
        "DCGM_FI_PROF_SM_OCCUPANCY": "tuneloop_gpu_sm_occupancy_ratio",
        "DCGM_FI_PROF_DRAM_ACTIVE": "tuneloop_gpu_dram_active_ratio",
        "DCGM_FI_PROF_PIPE_FP64_ACTIVE": "tuneloop_gpu_pipe_active_ratio",
        "DCGM_FI_PROF_NVLINK_TX_BYTES": "tuneloop_gpu_nvlink_transmit_bytes_total",
        "DCGM_FI_PROF_NVLINK_RX_BYTES": "tuneloop_gpu_nvlink_receive_bytes_total",
        "DCGM_FI_DEV_NVLINK_BANDWIDTH_TOTAL": "tuneloop_gpu_nvlink_transmit_bytes_total",
        "DCGM_FI_DEV_PCIE_REPLAY_COUNTER": "tuneloop_gpu_pcie_replays_total",
        "DCGM_FI_DEV_MEMORY_TEMP": "tuneloop_gpu_memory_temperature_celsius",
        "DCGM_FI_DEV_ENC_UTIL": "tuneloop_gpu_encoder_utilization_ratio",
        "DCGM_FI_DEV_DEC_UTIL": "tuneloop_gpu_decoder_utilization_ratio",
        "DCGM_FI_DEV_XID_ERRORS": "tuneloop_gpu_xid_last_seen_timestamp_seconds",
    }
    for dcgm, source in expected.items():
        assert table[dcgm].mapped and source in table[dcgm].tuneloop, dcgm


def test_unmapped_names_say_why_and_mapped_ones_are_rules() -> None:
    rules = dcgm_compat.rule_groups()["groups"][0]["rules"]
    recorded = {r["record"] for r in rules}
    for mapping in MAPPINGS:
        if mapping.mapped:
            assert mapping.dcgm in recorded
            assert dcgm_compat.LABELS_RECORD in rule_for_expr(rules, mapping.dcgm)
        else:
            assert mapping.note and mapping.dcgm not in recorded


def rule_for_expr(rules: list[dict[str, str]], record: str) -> str:
    (expr,) = [r["expr"] for r in rules if r["record"] == record]
    return expr


def test_scales_render_as_exact_operations() -> None:
    assert dcgm_compat.scale_operation(1 / 1048576) == "/ 1048576"
    assert dcgm_compat.scale_operation(1e-6) == "/ 1000000"
    assert dcgm_compat.scale_operation(100) == "* 100"


def test_docs_page_lists_every_name_with_its_source_or_reason() -> None:
    page = dcgm_compat.docs_page()
    for mapping in MAPPINGS:
        (row,) = [line for line in page.splitlines() if line.startswith(f"| `{mapping.dcgm}` |")]
        assert (mapping.tuneloop if mapping.mapped else mapping.note) in row


def test_the_dashboard_fixture_names_its_origin() -> None:
    readme = (DASHBOARD.parent / "README.md").read_text()
    assert "NVIDIA/dcgm-exporter" in readme and "Apache License 2.0" in readme
    assert json.loads(DASHBOARD.read_text())["panels"]
