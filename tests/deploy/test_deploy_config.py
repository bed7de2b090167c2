"""The configuration files shipped in deploy/ load with the programs' own validators."""

from pathlib import Path

import yaml

from agent.config import load_config
from agent.nodetune.desired import load_desired
from tuner.controller_config import load_controller_config
from tuner.spec import load_experiment

CONFIG = Path(__file__).resolve().parents[2] / "deploy" / "base" / "config"


def test_agent_config_validates(monkeypatch):
    monkeypatch.setenv("NODE_NAME", "gpu-node-1")
    config = load_config(CONFIG / "agent.yaml")
    assert config.procfs == Path("/host/proc") and config.sysfs == Path("/host/sys")
    assert config.inference.discover_pods and config.inference.node_name == "gpu-node-1"
    daemonset = yaml.safe_load((CONFIG.parent / "agent-daemonset.yaml").read_text())
    mounts = {
        m["mountPath"]
        for m in daemonset["spec"]["template"]["spec"]["containers"][0]["volumeMounts"]
    }
    assert (
        config.nodetune.desired is not None and config.nodetune.desired.parent.as_posix() in mounts
    )
    assert config.nodetune.journal.parent.as_posix() in mounts


def test_node_tuning_desired_state_is_valid_and_changes_nothing():
    desired = load_desired(CONFIG / "node-tuning.yaml")
    assert desired.sysctls == {}


def test_experiment_targets_the_configmap_the_tuner_may_patch():
    experiment = load_experiment(CONFIG / "experiment.yaml")
    assert experiment.mode == "advisory"
    roles = list(yaml.safe_load_all((CONFIG.parent / "tuner-rbac.yaml").read_text()))
    allowed = {
        (role["metadata"]["namespace"], name)
        for role in roles
        if role["kind"] == "Role"
        for rule in role["rules"]
        if "configmaps" in rule["resources"]
        for name in rule.get("resourceNames", [])
    }
    for knob in experiment.knobs:
        namespace, _, rest = knob.target.partition("/")
        assert (namespace, rest.partition(":")[0]) in allowed, knob.target


def test_controller_config_validates():
    config = load_controller_config(CONFIG / "controller.yaml")
    assert config.experiments == (CONFIG / "experiment.yaml",)
    assert config.lease is not None and config.lease.namespace == "tuneloop"
    assert config.metrics_port == 9451
