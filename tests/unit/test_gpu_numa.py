import pytest

from agent.collectors.gpu_numa import node_cpus, parse_cpulist, pci_numa_node, sysfs_bus_id
from tests.paths import FIXTURES

SYSFS = FIXTURES / "node" / "sys"


@pytest.mark.parametrize(
    ("nvml", "sysfs"),
    [
        ("00000000:17:00.0", "0000:17:00.0"),
        ("00000000:9A:00.0", "0000:9a:00.0"),
        ("00000001:C1:1F.7", "0001:c1:1f.7"),
        ("0000:3b:00.0", "0000:3b:00.0"),
    ],
)
def test_bus_ids_are_normalised(nvml, sysfs):
    assert sysfs_bus_id(nvml) == sysfs


def test_bad_bus_id_is_rejected():
    with pytest.raises(ValueError, match="not a PCI bus ID"):
        sysfs_bus_id("GPU-0")


def test_cpulist():
    assert parse_cpulist("0-3,8,10-11\n") == {0, 1, 2, 3, 8, 10, 11}
    assert parse_cpulist("") == set()


def test_pci_numa_node_from_sysfs():
    assert pci_numa_node(SYSFS, "00000000:18:00.0") == 0
    assert pci_numa_node(SYSFS, "00000000:DB:00.0") == 1
    assert pci_numa_node(SYSFS, "00000000:C1:00.0") is None  # numa_node reads -1
    assert pci_numa_node(SYSFS, "00000000:E1:00.0") is None  # no such device


def test_node_cpus_of_the_fixture_tree(tmp_path):
    nodes = node_cpus(SYSFS)
    assert set(nodes) == {0, 1} and not nodes[0] & nodes[1]
    assert node_cpus(tmp_path) == {}
