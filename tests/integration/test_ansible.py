"""Ansible as a client: a disaster-recovery playbook (amazon.aws and community.aws, the
modules users run) copies a snapshot across regions under a customer key, waits for it and
restores a volume from it; the copy's data is then read back block by block."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from snapferry.testing import ServerProcess

from .blocks import digests, random_blocks, read_digests, write_snapshot
from .conftest import DEV, ClientFactory

pytestmark = pytest.mark.long(seconds=40)  # scheduled first: tests/conftest.py

PLAYBOOK = Path(__file__).parents[1] / "clients" / "ansible" / "copy_snapshot.yml"
SRC, DST = "us-east-1", "eu-west-1"


def ansible_playbook() -> Path:
    """The ansible-playbook of this interpreter's environment (the test extras pin it)."""
    path = Path(sys.executable).parent / "ansible-playbook"
    assert path.exists(), f"{path} is missing: install the test extras (make test does)"
    return path


def test_a_dr_playbook_copies_a_snapshot_and_restores_it(
        client: ClientFactory, server: ServerProcess, tmp_path: Path) -> None:
    blocks = random_blocks([0, 3, 7])
    source = write_snapshot(client("ebs", region=SRC), blocks)
    key_arn = client("kms", region=DST).create_key()["KeyMetadata"]["Arn"]
    report = tmp_path / "report.json"
    variables = {"endpoint": server.url, "access_key": DEV[0], "secret_key": DEV[1],
                 "source_region": SRC, "destination_region": DST,
                 "source_snapshot_id": source, "kms_key_arn": key_arn, "report": str(report),
                 "ansible_python_interpreter": sys.executable}
    (tmp_path / "vars.json").write_text(json.dumps(variables))
    env = {**os.environ, "ANSIBLE_LOCALHOST_WARNING": "false",
           "ANSIBLE_INVENTORY_UNPARSED_WARNING": "false", "ANSIBLE_NOCOLOR": "1",
           "ANSIBLE_HOME": str(tmp_path / "ansible"), "ANSIBLE_LOCAL_TEMP": str(tmp_path)}
    run = subprocess.run([str(ansible_playbook()), "-e", f"@{tmp_path / 'vars.json'}",
                          str(PLAYBOOK)], capture_output=True, text=True, env=env, timeout=300)
    assert run.returncode == 0, run.stdout[-4000:] + run.stderr[-4000:]

    made = json.loads(report.read_text())
    copy, volume = made["copy"], made["volume"]
    assert (copy["state"], copy["encrypted"], copy["kms_key_id"]) == (
        "completed", True, key_arn)
    assert copy["tags"] == {"purpose": "disaster-recovery"}
    assert (volume["snapshot_id"], volume["encrypted"], volume["zone"]) == (
        copy["snapshot_id"], True, f"{DST}a")
    assert read_digests(client("ebs", region=DST), copy["snapshot_id"]) == digests(blocks)
