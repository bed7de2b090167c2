"""A serving fleet behind the fake Kubernetes API server, as Prometheus would see it.

The plant reads what the tuner applied (a Deployment's replicas and its container's
``--max-num-seqs`` flag, the node-tuning ConfigMap's ``net.core.rmem_max`` and congestion
control) from :class:`tests.fakes.kube_apiserver.FakeApiServer` and exports what a cluster's
Prometheus holds for that configuration: the agent's normalised ``tuneloop_inference_*`` series
(labels ``target``/``engine``/``model``), its ``tuneloop_iperf3_throughput_bytes_per_second``
gauge, and kube-state-metrics' ``kube_deployment_status_replicas_available``. A second service
(``model="other"``, always slow) shares the exporter, so an unscoped signal would be wrong.

The service model is a small closed form, not the simulator: each replica serves
``4 * sqrt(max_num_seqs)`` requests/s at ``ARRIVALS`` requests/s offered; TTFT grows with
utilisation as in an M/M/1 queue and inter-token latency with the batch; past saturation TTFT is
10 s and errors appear. Each tick (0.2 s) observes that tick's requests with a little jitter.
"""

from __future__ import annotations

import math
import random
import threading
from typing import Any

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram, start_http_server

from lab.processes import free_port
from tests.fakes.kube_apiserver import FakeApiServer

ARRIVALS = 20.0  # requests/s offered to the service
TICK_S = 0.2
OUTPUT_TOKENS = 100
LINK_BYTES_S = 12.5e9  # 100 Gb/s
RTT_S = 200e-6
BUCKETS: tuple[float, ...] = (0.01, 0.02, 0.04, 0.06, 0.08, 0.1, 0.15, 0.2, 0.3, 0.5, 0.75, 1)
BUCKETS += (1.25, 1.5, 1.75, 2, 2.5, 3, 4, 5, 7.5, 10, 20)
SERIES = ("target", "engine", "model")


def service_times(replicas: int, max_num_seqs: int) -> tuple[float, float, float]:
    """(ttft_s, itl_s, error_ratio) of the model service."""
    capacity = max(1, replicas) * 4.0 * math.sqrt(max(1, max_num_seqs))
    rho = ARRIVALS / capacity
    itl = 0.01 * (1.0 + max_num_seqs / 64.0)
    if rho >= 0.98:
        return 10.0, itl, min(0.5, rho - 0.9)
    return 0.05 + 0.05 * rho / (1.0 - rho), itl, 0.0


def tcp_throughput(rmem_max: int, congestion: str) -> float:
    """Bytes/s of one stream: window-limited below the bandwidth-delay product."""
    efficiency = 0.97 if congestion == "bbr" else 0.9
    return min(LINK_BYTES_S, rmem_max / RTT_S) * efficiency


class FleetPlant:
    """Exporter on 127.0.0.1 whose series follow the configuration in ``api``."""

    def __init__(
        self,
        api: FakeApiServer,
        *,
        namespace: str = "llm",
        deployment: str = "vllm-llama",
        model: str = "llama-3-8b",
        configmap: tuple[str, str] = ("tuneloop", "tuneloop-node-tuning"),
    ) -> None:
        self.api = api
        self.namespace, self.deployment, self.model = namespace, deployment, model
        self.configmap = configmap
        self.registry = r = CollectorRegistry()
        self.ttft = Histogram(
            "tuneloop_inference_ttft_seconds", "", SERIES, buckets=BUCKETS, registry=r
        )
        self.itl = Histogram(
            "tuneloop_inference_inter_token_latency_seconds",
            "",
            SERIES,
            buckets=BUCKETS,
            registry=r,
        )
        self.e2e = Histogram(
            "tuneloop_inference_e2e_latency_seconds", "", SERIES, buckets=BUCKETS, registry=r
        )
        self.requests = Counter("tuneloop_inference_requests", "", (*SERIES, "outcome"), registry=r)
        self.tokens = Counter("tuneloop_inference_generation_tokens", "", SERIES, registry=r)
        self.waiting = Gauge("tuneloop_inference_requests_waiting", "", SERIES, registry=r)
        self.running = Gauge("tuneloop_inference_requests_running", "", SERIES, registry=r)
        self.iperf3 = Gauge("tuneloop_iperf3_throughput_bytes_per_second", "", ["peer"], registry=r)
        self.available = Gauge(
            "kube_deployment_status_replicas_available", "", ["namespace", "deployment"], registry=r
        )
        self.port = free_port()
        self._rng = random.Random(7)
        self._stop = threading.Event()
        self._server: Any = None
        self._thread = threading.Thread(target=self._run, daemon=True)

    # configuration -----------------------------------------------------------------------------
    def config(self) -> dict[str, Any]:
        """What is applied now: replicas, max_num_seqs, rmem_max, congestion control."""
        dep = self.api.get("deployments", self.namespace, self.deployment)
        args = dep["spec"]["template"]["spec"]["containers"][0].get("args", [])
        seqs = 256
        for i, arg in enumerate(args):
            if arg.startswith("--max-num-seqs="):
                seqs = int(arg.split("=", 1)[1])
            elif arg == "--max-num-seqs" and i + 1 < len(args):
                seqs = int(args[i + 1])
        out: dict[str, Any] = {"replicas": int(dep["spec"]["replicas"]), "max_num_seqs": seqs}
        ns, name = self.configmap
        try:
            cm = self.api.get("configmaps", ns, name)
        except KeyError:
            return out
        desired = _sysctls(cm.get("data", {}))
        out["rmem_max"] = int(desired.get("net.core.rmem_max", 212992))
        out["congestion"] = desired.get("net.ipv4.tcp_congestion_control", "cubic")
        return out

    # exporting ---------------------------------------------------------------------------------
    def tick(self) -> None:
        """One tick of traffic for the current configuration."""
        cfg = self.config()
        ttft, itl, errors = service_times(cfg["replicas"], cfg["max_num_seqs"])
        self._serve((self.namespace + "/" + self.deployment + "-0", self.model), ttft, itl, errors)
        self._serve(("other/slow-0", "other"), 4.0, 0.2, 0.3)  # another service, never tuned
        self.available.labels(self.namespace, self.deployment).set(cfg["replicas"])
        if "rmem_max" in cfg:
            self.iperf3.labels("10.0.0.2").set(tcp_throughput(cfg["rmem_max"], cfg["congestion"]))

    def _serve(self, who: tuple[str, str], ttft: float, itl: float, errors: float) -> None:
        labels = (who[0], "vllm", who[1])
        n = max(1, round(ARRIVALS * TICK_S))
        for _ in range(n):
            jitter = self._rng.uniform(0.9, 1.1)
            ok = self._rng.random() >= errors
            self.requests.labels(*labels, "success" if ok else "error").inc()
            if not ok:
                continue
            self.ttft.labels(*labels).observe(ttft * jitter)
            self.itl.labels(*labels).observe(itl * jitter)
            self.e2e.labels(*labels).observe((ttft + OUTPUT_TOKENS * itl) * jitter)
            self.tokens.labels(*labels).inc(OUTPUT_TOKENS)
        self.waiting.labels(*labels).set(max(0.0, ttft - 0.05) * ARRIVALS)
        self.running.labels(*labels).set(min(ARRIVALS * OUTPUT_TOKENS * itl, 512))

    def _run(self) -> None:
        while not self._stop.wait(TICK_S):
            try:
                self.tick()
            except Exception:  # the API server is going away at the end of a test
                if self._stop.is_set():
                    return
                raise

    def __enter__(self) -> FleetPlant:
        self.tick()
        self._server, _ = start_http_server(self.port, addr="127.0.0.1", registry=self.registry)
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join(timeout=5)
        self._server.shutdown()
        self._server.server_close()


def _sysctls(data: dict[str, str]) -> dict[str, str]:
    """The sysctls in a node-tuning ConfigMap's ``desired.yaml`` (or flat keys)."""
    import yaml

    out: dict[str, str] = {}
    for key, value in data.items():
        if key.endswith((".yaml", ".yml")):
            doc = yaml.safe_load(value) or {}
            sysctls = doc.get("sysctls", doc) if isinstance(doc, dict) else {}
            out.update({str(k): str(v) for k, v in sysctls.items()})
        else:
            out[key] = str(value)
    return out
