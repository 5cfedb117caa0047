"""The course's deployment files hold together: hub/k8s/ (zero-to-jupyterhub) against the chart's own
schema, the measured memory, the lock and nbgrader's exchange; hub/README.md's numbers against the stored
measurements. No helm, docker or network needed: the chart's schema and defaults are vendored in hub/k8s/.
"""

from __future__ import annotations

import json
import re
from pathlib import Path

import jsonschema
import pytest
import yaml

ROOT = Path(__file__).resolve().parents[1]
K8S = ROOT / "hub" / "k8s"
MEASURED = json.loads((ROOT / "hub" / "results" / "measurements.json").read_text())
LOCK = (ROOT / "requirements" / "course.lock").read_text()


def load(name: str):
    return yaml.safe_load((K8S / name).read_text())


def merged(defaults: dict, values: dict) -> dict:
    """What helm does with ``-f values.yaml``: maps merged key by key, anything else replaced, null removes."""
    out = dict(defaults)
    for key, value in values.items():
        if value is None:
            out.pop(key, None)
        elif isinstance(value, dict) and isinstance(out.get(key), dict):
            out[key] = merged(out[key], value)
        else:
            out[key] = value
    return out


def schema_errors(values: dict) -> list[str]:
    validator = jsonschema.Draft7Validator(load("z2jh-values.schema.yaml"))
    full = merged(load("z2jh-default-values.yaml"), values)
    return [f"{'.'.join(map(str, e.path))}: {e.message}" for e in validator.iter_errors(full)]


def to_mib(quantity: str) -> float:
    """A Kubernetes memory quantity ("2G", "1536Mi") in MiB."""
    number, unit = re.fullmatch(r"([\d.]+)\s*([KMGT]i?)?", str(quantity)).groups()
    scale = {"K": 1e3, "M": 1e6, "G": 1e9, "T": 1e12, "Ki": 2**10, "Mi": 2**20, "Gi": 2**30, "Ti": 2**40}
    return float(number) * scale.get(unit, 1) / 2**20


def test_values_follow_the_charts_schema():
    assert schema_errors(load("values.yaml")) == []


@pytest.mark.parametrize(
    "typo",
    [
        {"singleuser": {"memroy": {"limit": "2G"}}},  # a misspelt key
        {"cull": {"enabled": "yes"}},  # a string where a boolean goes
        {"singleuser": {"storage": {"type": "ephemeral"}}},  # a value the chart does not know
    ],
)
def test_the_schema_check_catches_mistakes(typo):
    assert schema_errors(merged(load("values.yaml"), typo)) != []


def test_memory_per_student_covers_what_was_measured():
    """The guarantee holds a server running the heaviest notebook; the limit two of them at once."""
    memory = load("values.yaml")["singleuser"]["memory"]
    notebooks = MEASURED["notebooks"]["value"]
    assert len(notebooks) == 8, "every lecture notebook measured"
    kernel = max(n["kernel_peak_mib"] for n in notebooks.values())
    server = max(n["server_peak_mib"] for n in notebooks.values())
    assert to_mib(memory["guarantee"]) >= server + kernel
    assert to_mib(memory["limit"]) >= server + 2 * kernel


def test_servers_are_culled_start_with_the_lecture_and_one_thread():
    values = load("values.yaml")
    start = " ".join(values["singleuser"]["lifecycleHooks"]["postStart"]["exec"]["command"])
    assert "cp -rn /opt/rlcourse/lecture/." in start  # the lecture reaches the home volume, keeping students' edits
    assert values["cull"]["enabled"] is True and values["cull"]["timeout"] <= 3600
    assert values["singleuser"]["extraEnv"]["OMP_NUM_THREADS"] == "1"


def test_the_exchange_is_one_shared_volume_where_nbgrader_looks():
    singleuser = load("values.yaml")["singleuser"]
    claim = load("exchange.yaml")
    assert claim["kind"] == "PersistentVolumeClaim" and claim["spec"]["accessModes"] == ["ReadWriteMany"]
    (volume,) = singleuser["storage"]["extraVolumes"]
    (mount,) = singleuser["storage"]["extraVolumeMounts"]
    assert volume["persistentVolumeClaim"]["claimName"] == claim["metadata"]["name"]
    assert mount["name"] == volume["name"]
    config = (K8S / "nbgrader_config.py").read_text()
    assert f'c.Exchange.root = "{mount["mountPath"]}"' in config


def test_the_image_is_built_from_the_lock_without_the_solutions():
    dockerfile = (K8S / "Dockerfile").read_text()
    final = dockerfile.split("\nFROM ")[-1]  # the stage the image is made of
    assert "-c /tmp/constraints.txt" in final and "course.lock" in final
    assert "COPY . " not in final, "the repository (with the exercises' solutions) must not enter the image"
    build = dockerfile.split("\nFROM ")[1]  # the build stage: only the wheel and the lecture go on
    assert "cp /src/notebooks/0*.ipynb /out/lecture/" in build and "exercises" not in build
    # The single-user server's JupyterHub is the chart's (the hub runs that one), as the vendored schema says
    schema_head = (K8S / "z2jh-values.schema.yaml").read_text()[:400]
    chart_hub = re.search(r"the chart's JupyterHub is (\S+?)\)", schema_head).group(1)
    assert f"ARG JUPYTERHUB={chart_hub}" in final


def test_the_guide_states_the_measured_numbers():
    guide = (ROOT / "hub" / "README.md").read_text()
    start = MEASURED["start"]["value"]
    assert f"{start['hub_start_s']:.1f} s" in guide
    assert f"{start['spawn_one_s']:.1f} s" in guide
    for name, notebook in MEASURED["notebooks"]["value"].items():
        row = f"| {name.removesuffix('.ipynb')} | {notebook['kernel_peak_mib']:.0f} |"
        assert row in guide, f"hub/README.md lacks the row {row!r}"
    serial = MEASURED["grading"]["value"]["serial"]
    for assignment, result in serial.items():
        assert f"| {assignment} | {result['per_submission_s']:.2f} |" in guide


# ------------------------------------------------------------------------ hub/classroom.py, without root


def _classroom():
    import importlib.util
    import sys

    spec = importlib.util.spec_from_file_location("classroom", ROOT / "hub" / "classroom.py")
    module = importlib.util.module_from_spec(spec)
    sys.modules.setdefault("classroom", module)
    spec.loader.exec_module(module)
    return module


def test_a_class_says_why_it_cannot_start_without_root(monkeypatch):
    classroom = _classroom()
    monkeypatch.setattr(classroom.os, "geteuid", lambda: 1000)
    monkeypatch.setattr(classroom.sys, "platform", "linux")
    assert "needs root" in classroom.unavailable()


def test_an_interpreter_behind_a_private_folder_is_not_runnable_by_students(tmp_path):
    """Pitfall of a venv made from a Python under /root (0700): every spawn fails; the class refuses it."""
    classroom = _classroom()
    private = tmp_path / "private"
    private.mkdir()
    python = private / "python"
    python.write_text("#!/bin/sh\n")
    python.chmod(0o755)
    tmp_path.chmod(0o755)
    private.chmod(0o700)
    assert not classroom._world_runnable(str(python))
    private.chmod(0o755)
    if all(p.stat().st_mode & 0o001 for p in tmp_path.parents):
        assert classroom._world_runnable(str(python))
