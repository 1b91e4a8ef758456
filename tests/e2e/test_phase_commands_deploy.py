"""deploy/tekton and deploy/k8s/creator-job.yaml: structural checks against the fields of the
Kubernetes batch/v1 Job and Tekton v1 Task schemas they use (offline: no cluster, no CRDs).

PyYAML is needed to read them; without it these tests skip.
"""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import Any

import yaml
from support.cli import ROOT

PHASES = {"analyzer", "detector", "restorer", "builder", "exporter"}
_CONTAINER = {
    "name": str,
    "image": str,
    "command": list,
    "args": list,
    "env": list,
    "volumeMounts": list,
    "securityContext": dict,
    "script": str,
}
_STEP_TEMPLATE = {k: v for k, v in _CONTAINER.items() if k != "name"}


def _load(relative: str) -> dict[str, Any]:
    return dict(yaml.safe_load((ROOT / relative).read_text()))


def _check(obj: dict[str, Any], fields: Mapping[str, type], where: str) -> None:
    """No field outside the schema subset, each of its type (as a strict apiserver would)."""
    for key, value in obj.items():
        assert key in fields, f"{where}.{key} is not a field"
        assert isinstance(value, fields[key]), f"{where}.{key} should be {fields[key].__name__}"


def _volumes_mounted(volumes: list[dict[str, Any]], mounts: list[dict[str, Any]], where: str) -> None:
    names = {v["name"] for v in volumes}
    for mount in mounts:
        assert mount["name"] in names, f"{where} mounts undeclared volume {mount['name']}"
        assert mount["mountPath"].startswith("/")


def test_tekton_task_runs_the_five_phases_in_the_builder_image() -> None:
    task = _load("deploy/tekton/pybuild-phases-task.yaml")
    _check(task, {"apiVersion": str, "kind": str, "metadata": dict, "spec": dict}, "task")
    assert (task["apiVersion"], task["kind"]) == ("tekton.dev/v1", "Task")
    spec = task["spec"]
    _check(
        spec,
        {
            "description": str,
            "params": list,
            "workspaces": list,
            "results": list,
            "volumes": list,
            "stepTemplate": dict,
            "steps": list,
        },
        "spec",
    )
    _check(spec["stepTemplate"], _STEP_TEMPLATE, "stepTemplate")
    params = {p["name"] for p in spec["params"]}
    assert "bookworm" in next(p["default"] for p in spec["params"] if p["name"] == "BUILDER_IMAGE")
    commands = []
    for step in spec["steps"]:
        _check(step, _CONTAINER, f"step {step['name']}")
        assert not ("command" in step and "script" in step)
        commands += [c.rsplit("/", 1)[-1] for c in step.get("command", [])]
        for arg in step.get("args", []):
            for ref in [a.split(")")[0] for a in arg.split("$(params.")[1:]]:
                assert ref in params, f"step {step['name']} uses unknown param {ref}"
    assert commands == ["analyzer", "detector", "restorer", "builder", "exporter"]
    _volumes_mounted(spec["volumes"], spec["stepTemplate"]["volumeMounts"], "stepTemplate")
    env = {e["name"]: e["value"] for e in spec["stepTemplate"]["env"]}
    assert env["CNB_PLATFORM_API"] == "$(params.PLATFORM_API)"


def test_creator_job_is_a_batch_v1_job_running_creator() -> None:
    job = _load("deploy/k8s/creator-job.yaml")
    assert (job["apiVersion"], job["kind"]) == ("batch/v1", "Job")
    _check(job["spec"], {"backoffLimit": int, "activeDeadlineSeconds": int, "template": dict}, "spec")
    pod = job["spec"]["template"]["spec"]
    _check(pod, {"restartPolicy": str, "securityContext": dict, "containers": list, "volumes": list}, "pod")
    assert pod["restartPolicy"] in {"Never", "OnFailure"}  # a Job's pods may not restart Always
    (container,) = pod["containers"]
    _check(container, _CONTAINER, "container")
    assert container["image"].endswith("builder:bookworm")
    assert container["command"] == ["/cnb/lifecycle/creator"]
    assert {"name": "CNB_PLATFORM_API", "value": "0.15"} in container["env"]
    _volumes_mounted(pod["volumes"], container["volumeMounts"], "creator")
    assert Path(ROOT / "deploy" / "k8s" / "creator-job.yaml").read_text().count("\t") == 0
