import logging
import time
from pathlib import Path

import pytest
from google.protobuf import descriptor_pb2, descriptor_pool, message_factory
from google.protobuf.message import Message

from agent.collectors.gpu import GpuCollector
from agent.nvml import load_nvml
from agent.podattr import (
    ContainerDevices,
    ContainerResources,
    PodResolver,
    PodResources,
    PodResourcesClient,
    PodResourcesError,
)
from agent.podattr.podresources import decode_list_response, encode_list_response
from tests.fakes.kubelet import FakeKubelet

TESTS = Path(__file__).resolve().parents[1]
PROCFS = TESTS / "fixtures" / "node" / "proc"
SYSFS = TESTS / "fixtures" / "node" / "sys"
GPU0 = "GPU-5d7f3c8a-0b1e-4f2a-9c3d-000000000000"
GPU1 = "GPU-5d7f3c8a-0b1e-4f2a-9c3d-000000000001"

F = descriptor_pb2.FieldDescriptorProto


def _podresources_v1_classes() -> dict[str, type[Message]]:
    """The kubelet's podresources v1 messages (api.proto), built with the protobuf runtime."""
    fdp = descriptor_pb2.FileDescriptorProto(
        name="podresources_v1_api.proto", package="v1", syntax="proto3"
    )
    rep, opt = F.LABEL_REPEATED, F.LABEL_OPTIONAL
    # (field name, number, type, label, message type name)
    schema: dict[str, list[tuple[str, int, int, int, str | None]]] = {
        "ListPodResourcesRequest": [],
        "ListPodResourcesResponse": [("pod_resources", 1, F.TYPE_MESSAGE, rep, ".v1.PodResources")],
        "PodResources": [
            ("name", 1, F.TYPE_STRING, opt, None),
            ("namespace", 2, F.TYPE_STRING, opt, None),
            ("containers", 3, F.TYPE_MESSAGE, rep, ".v1.ContainerResources"),
        ],
        "ContainerResources": [
            ("name", 1, F.TYPE_STRING, opt, None),
            ("devices", 2, F.TYPE_MESSAGE, rep, ".v1.ContainerDevices"),
            ("cpu_ids", 3, F.TYPE_INT64, rep, None),
            ("memory", 4, F.TYPE_MESSAGE, rep, ".v1.ContainerMemory"),
        ],
        "ContainerMemory": [
            ("memory_type", 1, F.TYPE_STRING, opt, None),
            ("size", 2, F.TYPE_UINT64, opt, None),
            ("topology", 3, F.TYPE_MESSAGE, opt, ".v1.TopologyInfo"),
        ],
        "ContainerDevices": [
            ("resource_name", 1, F.TYPE_STRING, opt, None),
            ("device_ids", 2, F.TYPE_STRING, rep, None),
            ("topology", 3, F.TYPE_MESSAGE, opt, ".v1.TopologyInfo"),
        ],
        "TopologyInfo": [("nodes", 1, F.TYPE_MESSAGE, rep, ".v1.NUMANode")],
        "NUMANode": [("ID", 1, F.TYPE_INT64, opt, None)],
    }
    for name, fields in schema.items():
        msg = fdp.message_type.add(name=name)
        for fname, number, ftype, label, type_name in fields:
            field = msg.field.add(name=fname, number=number, type=ftype, label=label)
            if type_name:
                field.type_name = type_name
    pool = descriptor_pool.DescriptorPool()
    pool.Add(fdp)
    return {
        name: message_factory.GetMessageClass(pool.FindMessageTypeByName(f"v1.{name}"))
        for name in schema
    }


PB = _podresources_v1_classes()


def kubelet_answer() -> bytes:
    """What a kubelet with the two_gpus pods says, serialised by the protobuf runtime."""
    resp = PB["ListPodResourcesResponse"]()
    for pod_name, gpu, cpus in (("vllm-llama-0", GPU0, [2, 3]), ("vllm-llama-1", GPU1, [20])):
        pod = resp.pod_resources.add(name=pod_name, namespace="inference")
        sidecar = pod.containers.add(name="log-shipper")
        sidecar.memory.add(memory_type="memory", size=1 << 30)
        ctr = pod.containers.add(name="vllm", cpu_ids=cpus)
        dev = ctr.devices.add(resource_name="nvidia.com/gpu", device_ids=[gpu])
        dev.topology.nodes.add(ID=0 if gpu == GPU0 else 1)
        ctr.devices.add(resource_name="rdma/hca", device_ids=["mlx5_2"])
    resp.pod_resources.add(name="coredns-5d78c9869d-x2x8z", namespace="kube-system")
    return resp.SerializeToString()


def test_codec_matches_the_protobuf_runtime():
    pods = decode_list_response(kubelet_answer())
    assert [(p.name, p.namespace) for p in pods] == [
        ("vllm-llama-0", "inference"),
        ("vllm-llama-1", "inference"),
        ("coredns-5d78c9869d-x2x8z", "kube-system"),
    ]
    vllm = pods[1].containers[1]
    assert vllm.name == "vllm"
    assert vllm.devices == (
        ContainerDevices("nvidia.com/gpu", (GPU1,), (1,)),
        ContainerDevices("rdma/hca", ("mlx5_2",)),
    )
    # and our encoder writes what the protobuf runtime reads back identically
    again = PB["ListPodResourcesResponse"].FromString(encode_list_response(pods))
    assert decode_list_response(again.SerializeToString()) == pods
    assert again.pod_resources[0].containers[1].devices[0].topology.nodes[0].ID == 0


def test_list_round_trip_over_a_unix_socket(tmp_path):
    sock = tmp_path / "kubelet.sock"
    with FakeKubelet(sock, kubelet_answer()) as kubelet:
        client = PodResourcesClient(sock, timeout=5)
        pods = client.list()
        client.close()
    assert kubelet.calls == 1
    assert pods[0].containers[1] == ContainerResources(
        "vllm",
        (
            ContainerDevices("nvidia.com/gpu", (GPU0,), (0,)),
            ContainerDevices("rdma/hca", ("mlx5_2",)),
        ),
    )


def test_unreachable_socket_is_one_line_error(tmp_path):
    client = PodResourcesClient(tmp_path / "absent.sock", timeout=1)
    with pytest.raises(PodResourcesError, match=r"absent\.sock failed: UNAVAILABLE"):
        client.list()
    client.close()


def test_resolver_names_pods_from_the_fixture_tree(tmp_path):
    sock = tmp_path / "kubelet.sock"
    with FakeKubelet(sock, kubelet_answer()) as kubelet:
        resolver = PodResolver(PROCFS, sock, timeout=5)
        found = resolver.resolve_all([(2101, GPU0), (2104, GPU0), (2102, GPU1), (2103, GPU1)])
        resolver.close()
    assert kubelet.calls == 1  # one List per pass, however many processes
    assert (found[2101].pod, found[2101].namespace, found[2101].container) == (
        "vllm-llama-0",
        "inference",
        "vllm",
    )
    assert found[2104].pod == "vllm-llama-0"
    assert found[2102].pod == "vllm-llama-1"
    assert found[2102].pod_uid == "2a6b1d4f-8e7c-4d2f-8b9a-3c4d5e6f7081"
    assert found[2103].pod == "" and found[2103].pod_uid == ""  # a host process stays unattributed


def write_proc(procfs: Path, pid: int, uid: str, cid: str) -> None:
    (procfs / str(pid)).mkdir(parents=True)
    (procfs / str(pid) / "cgroup").write_text(
        f"0::/kubepods.slice/kubepods-pod{uid.replace('-', '_')}.slice/cri-containerd-{cid}.scope\n"
    )


def test_shared_gpu_is_disambiguated_by_pod_uid_or_left_empty(tmp_path):
    procfs = tmp_path / "proc"
    ux, uy = "11111111-1111-1111-1111-111111111111", "22222222-2222-2222-2222-222222222222"
    write_proc(procfs, 10, ux, "a" * 64)  # pod x on the shared GPU0
    write_proc(procfs, 11, ux, "a" * 64)  # pod x on its own GPU1
    write_proc(procfs, 12, uy, "b" * 64)  # pod y on the shared GPU0 only
    pods = [
        PodResources(
            "x",
            "ns",
            (
                ContainerResources(
                    "main", (ContainerDevices("nvidia.com/gpu", (f"{GPU0}::0", GPU1)),)
                ),
            ),
        ),
        PodResources(
            "y",
            "ns",
            (ContainerResources("main", (ContainerDevices("nvidia.com/gpu", (f"{GPU0}::1",)),)),),
        ),
    ]
    sock = tmp_path / "kubelet.sock"
    with FakeKubelet(sock, encode_list_response(pods)):
        resolver = PodResolver(procfs, sock, timeout=5)
        found = resolver.resolve_all([(10, GPU0), (11, GPU1), (12, GPU0)])
        resolver.close()
    assert (found[10].pod, found[10].container) == ("x", "main")  # learnt from pid 11
    assert found[11].pod == "x"
    assert found[12].pod == "" and found[12].pod_uid == uy  # ambiguous: not guessed


def test_socket_down_resolves_from_cgroups_and_logs_once(tmp_path, caplog):
    sock = tmp_path / "kubelet.sock"
    resolver = PodResolver(PROCFS, sock, timeout=1)
    with caplog.at_level(logging.INFO, logger="agent.podattr.resolver"):
        for _ in range(3):
            found = resolver.resolve(2101, GPU0)
            assert found.pod == "" and found.pod_uid == "1f5a0c3e-7d6b-4c1e-9a8f-2b3c4d5e6f70"
        warnings = [r for r in caplog.records if r.levelno == logging.WARNING]
        assert len(warnings) == 1 and "kubelet.sock" in warnings[0].getMessage()
        with FakeKubelet(sock, kubelet_answer()):
            deadline = time.monotonic() + 10
            while resolver.resolve(2101, GPU0).pod == "" and time.monotonic() < deadline:
                time.sleep(0.1)
            assert resolver.resolve(2101, GPU0).pod == "vllm-llama-0"
    assert any("answers again" in r.getMessage() for r in caplog.records)
    resolver.close()


def test_collector_labels_processes_with_pods(tmp_path):
    sock = tmp_path / "kubelet.sock"
    with FakeKubelet(sock, kubelet_answer()):
        nvml = load_nvml("fake", TESTS / "fixtures" / "gpu" / "two_gpus.json")
        resolver = PodResolver(PROCFS, sock, timeout=5)
        collector = GpuCollector(nvml, SYSFS, PROCFS, resolver, process_metrics=True)
        collector.refresh()
    by_pid = {p.pid: p for p in collector.processes()}
    assert (by_pid[2104].pod, by_pid[2104].namespace, by_pid[2104].container) == (
        "vllm-llama-0",
        "inference",
        "vllm",
    )
    assert by_pid[2103].pod == ""
    memory = {
        s.labels["pid"]: s.labels
        for f in collector.collect()
        for s in f.samples
        if s.name == "tuneloop_gpu_process_memory_used_bytes"
    }
    assert memory["2102"]["pod"] == "vllm-llama-1" and memory["2102"]["container"] == "vllm"
    # device series carry the pod holding the GPU, from the same pod-resources listing
    power = {
        s.labels["gpu"]: (s.labels["namespace"], s.labels["pod"], s.labels["container"])
        for f in collector.collect()
        for s in f.samples
        if s.name == "tuneloop_gpu_power_watts"
    }
    assert power == {
        "0": ("inference", "vllm-llama-0", "vllm"),
        "1": ("inference", "vllm-llama-1", "vllm"),
    }
