"""lpmlab.fabric.ansible against the real ansible-runner, and hostprep's version checks.

No root needed: tiny playbooks in tmp_path run on localhost with a local connection.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import textwrap
import threading
import time
from pathlib import Path

import pytest

from lpmlab import hostprep
from lpmlab.errors import PlaybookError
from lpmlab.fabric.ansible import load_events, run_playbook

OK_PLAYBOOK = """
- hosts: all
  tasks:
    - name: say hello
      ansible.builtin.debug:
        msg: hello from the lab
    - name: run true
      ansible.builtin.command: "true"
      changed_when: false
    - name: show an extra var
      ansible.builtin.debug:
        msg: "colour is {{ colour }}"
"""

FAILING_PLAYBOOK = """
- hosts: all
  tasks:
    - name: fine first
      ansible.builtin.debug:
        msg: fine
    - name: break the build
      ansible.builtin.command: sh -c "echo some-stdout; echo disk-on-fire >&2; exit 3"
    - name: never reached
      ansible.builtin.debug:
        msg: unreachable
"""

FAIL_MODULE_PLAYBOOK = """
- hosts: all
  tasks:
    - name: refuse politely
      ansible.builtin.fail:
        msg: QEMU 7.2 found; fix it
"""

SLOW_PLAYBOOK = """
- hosts: all
  tasks:
    - name: sleep a long time
      ansible.builtin.command: sleep 61
"""


@pytest.fixture(autouse=True)
def lab_home(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    home = tmp_path / "home"
    monkeypatch.setenv("LPMLAB_HOME", str(home))
    return home


def write(tmp_path: Path, name: str, text: str) -> Path:
    path = tmp_path / name
    path.write_text(textwrap.dedent(text))
    return path


def test_success_reports_status_and_task_durations(tmp_path, capsys, lab_home):
    playbook = write(tmp_path, "ok.yml", OK_PLAYBOOK)

    result = run_playbook(playbook, extravars={"colour": "blue"}, label="ok test")

    assert result.status == "successful"
    assert result.rc == 0
    assert result.duration_s > 0
    tasks = [task for _, task, _ in result.task_durations]
    assert tasks == ["say hello", "run true", "show an extra var"]
    assert all(host == "localhost" and secs >= 0 for host, _, secs in result.task_durations)
    # Default artifact folder: state_root()/runs/<timestamp>-<label>, in runner's layout.
    assert result.artifact_dir.parent == lab_home / "runs"
    assert result.artifact_dir.name.endswith("-ok-test")
    assert (result.artifact_dir / "status").read_text() == "successful"
    assert (result.artifact_dir / "rc").read_text() == "0"
    assert (result.artifact_dir / "command").is_file()
    assert any(e.get("event") == "playbook_on_stats" for e in load_events(result.artifact_dir))

    out, err = capsys.readouterr()
    assert out == ""  # nothing on stdout: that is for machine-readable output
    assert "  [localhost] TASK say hello ..." in err
    assert "  [localhost] TASK run true ... ok" in err
    assert "colour is blue" in err  # a debug task's message is shown
    assert "\x1b[" not in err


def test_failing_task_raises_with_task_host_and_stderr(tmp_path, capsys):
    playbook = write(tmp_path, "bad.yml", FAILING_PLAYBOOK)
    artifacts = tmp_path / "run"

    with pytest.raises(PlaybookError) as caught:
        run_playbook(playbook, artifacts=artifacts)

    err = caught.value
    assert "bad.yml" in err.message
    assert "break the build" in err.message
    assert "localhost" in err.message
    assert err.evidence is not None
    assert "disk-on-fire" in err.evidence
    assert "some-stdout" in err.evidence
    assert "rc: 3" in err.evidence
    assert str(artifacts) in err.evidence
    assert (artifacts / "status").read_text() == "failed"
    assert (artifacts / "rc").read_text() == "2"
    out, err_text = capsys.readouterr()
    assert out == ""
    assert "never reached" not in err_text


def test_fail_module_message_is_the_evidence(tmp_path, capsys):
    playbook = write(tmp_path, "refuse.yml", FAIL_MODULE_PLAYBOOK)

    with pytest.raises(PlaybookError) as caught:
        run_playbook(playbook, artifacts=tmp_path / "run", quiet=True)

    assert "refuse politely" in caught.value.message
    assert "QEMU 7.2 found; fix it" in (caught.value.evidence or "")
    assert "LPM1004" in caught.value.render()
    out, err = capsys.readouterr()
    assert out == "" and err == ""  # quiet means quiet


def test_progress_lines_go_to_stderr_and_name_the_outcome(tmp_path, capsys):
    playbook = write(tmp_path, "bad.yml", FAILING_PLAYBOOK)

    with pytest.raises(PlaybookError):
        run_playbook(playbook, artifacts=tmp_path / "run")

    out, err = capsys.readouterr()
    assert out == ""
    lines = [line for line in err.splitlines() if "TASK" in line]
    assert lines[0] == "  [localhost] TASK fine first ..."
    assert lines[1].startswith("  [localhost] TASK fine first ... ok ")
    assert lines[-1].startswith("  [localhost] TASK break the build ... FAILED ")
    assert lines[-1].endswith("s")


def test_missing_playbook_is_a_playbook_error(tmp_path):
    with pytest.raises(PlaybookError, match="not found"):
        run_playbook(tmp_path / "nope.yml", artifacts=tmp_path / "run")


def test_inventory_dict_gets_local_connection_and_this_interpreter(tmp_path):
    playbook = write(tmp_path, "facts.yml", """
        - hosts: all
          tasks:
            - name: show interpreter
              ansible.builtin.debug:
                msg: "{{ ansible_python_interpreter }} {{ ansible_connection }}"
        """)
    inventory = {"all": {"hosts": {"frame1": {}, "frame2": {}}}}

    result = run_playbook(playbook, inventory=inventory, artifacts=tmp_path / "run",
                          limit="frame2", quiet=True)

    assert inventory == {"all": {"hosts": {"frame1": {}, "frame2": {}}}}  # caller's dict kept
    assert [host for host, _, _ in result.task_durations] == ["frame2"]
    ok = [e for e in load_events(result.artifact_dir) if e.get("event") == "runner_on_ok"]
    assert ok[0]["event_data"]["res"]["msg"] == f"{sys.executable} local"


def test_cancel_event_stops_the_run_and_records_cancelled(tmp_path):
    playbook = write(tmp_path, "slow.yml", SLOW_PLAYBOOK)
    cancel = threading.Event()
    threading.Timer(3.0, cancel.set).start()
    started = time.monotonic()

    with pytest.raises(PlaybookError, match="cancelled"):
        run_playbook(playbook, artifacts=tmp_path / "run", cancel_event=cancel, quiet=True)

    assert time.monotonic() - started < 20
    assert (tmp_path / "run" / "status").read_text() == "cancelled"
    assert not _sleepers("sleep 61")


def test_timeout_names_the_task_it_was_in(tmp_path):
    playbook = write(tmp_path, "slow.yml", SLOW_PLAYBOOK)

    with pytest.raises(PlaybookError) as caught:
        run_playbook(playbook, artifacts=tmp_path / "run", timeout_s=8, quiet=True)

    assert "sleep a long time" in caught.value.message
    assert "8 s" in caught.value.message
    assert (tmp_path / "run" / "status").read_text() == "timeout"
    assert not _sleepers("sleep 61")


def test_sigint_kills_workers_and_raises_keyboard_interrupt(tmp_path):
    playbook = write(tmp_path, "slow.yml", SLOW_PLAYBOOK)
    run_dir = tmp_path / "run"
    script = (
        "import sys, pathlib\n"
        "from lpmlab.fabric.ansible import run_playbook\n"
        "try:\n"
        f"    run_playbook({str(playbook)!r}, artifacts=pathlib.Path({str(run_dir)!r}))\n"
        "except KeyboardInterrupt:\n"
        "    sys.exit(130)\n"
    )
    env = dict(os.environ, PYTHONPATH=str(Path(__file__).resolve().parents[2]))
    # A shell's background job starts with SIGINT ignored (and run_playbook respects that).
    proc = subprocess.Popen([sys.executable, "-c", script], env=env,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                            preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_DFL))
    deadline = time.monotonic() + 30
    while not _sleepers("sleep 61") and time.monotonic() < deadline:
        time.sleep(0.2)
    assert _sleepers("sleep 61"), "the slow task never started"

    proc.send_signal(signal.SIGINT)
    _, err = proc.communicate(timeout=30)

    assert proc.returncode == 130, err.decode()
    assert (run_dir / "status").read_text() == "cancelled"
    assert not _sleepers("sleep 61")
    assert b"cancelled" in err


def _sleepers(cmdline: str) -> list[int]:
    """Live processes whose command line is exactly ``cmdline`` (zombies excluded)."""
    found = []
    for proc in Path("/proc").iterdir():
        if not proc.name.isdigit():
            continue
        try:
            args = (proc / "cmdline").read_bytes().replace(b"\0", b" ").strip().decode()
        except OSError:
            continue
        if args == cmdline:
            found.append(int(proc.name))
    return found


# --- hostprep version checks -------------------------------------------------------------

QEMU_72 = "QEMU emulator version 7.2.15 (Debian 1:7.2+dfsg-7+deb12u18)\nCopyright (c) 2003-2022"
QEMU_10 = ("QEMU emulator version 10.0.2 (Debian 1:10.0.2+ds-2+deb13u1~bpo12+1)\n"
           "Copyright (c) 2003-2025 Fabrice Bellard and the QEMU Project developers")


def test_qemu_version_parsing():
    assert hostprep.parse_qemu_version(QEMU_72) == (7, 2, 15)
    assert hostprep.parse_qemu_version(QEMU_10) == (10, 0, 2)
    assert hostprep.parse_qemu_version("QEMU emulator version 11.1") == (11, 1)
    assert hostprep.parse_qemu_version("bash: qemu-system-ppc64: not found") is None


def test_qemu_72_is_rejected_with_a_reason():
    problem = hostprep.qemu_version_problem(QEMU_72)
    assert problem is not None
    assert "7.2.15" in problem and ">= 10.0" in problem and "backports" in problem


def test_qemu_10_is_accepted():
    assert hostprep.qemu_version_problem(QEMU_10) is None


def test_unreadable_qemu_version_is_a_problem():
    assert "cannot read" in (hostprep.qemu_version_problem("garbage") or "")


def test_libvirt_versions():
    assert hostprep.parse_libvirt_version("libvirtd (libvirt) 11.3.0") == (11, 3, 0)
    assert hostprep.parse_libvirt_version("11.3.0\n") == (11, 3, 0)  # pkg-config --modversion
    assert hostprep.libvirt_version_problem("libvirtd (libvirt) 11.3.0") is None
    old = hostprep.libvirt_version_problem("libvirtd (libvirt) 9.0.0")
    assert old is not None and "9.0.0" in old and "too old" in old


@pytest.mark.parametrize(("text", "ok"), [
    ('PRETTY_NAME="Debian GNU/Linux 12 (bookworm)"\nID=debian\nVERSION_ID="12"\n', True),
    ('PRETTY_NAME="Debian GNU/Linux 13 (trixie)"\nID=debian\nVERSION_ID="13"\n', True),
    ('PRETTY_NAME="Debian GNU/Linux 11 (bullseye)"\nID=debian\nVERSION_ID="11"\n', False),
    ('PRETTY_NAME="Ubuntu 24.04 LTS"\nID=ubuntu\nVERSION_ID="24.04"\n', False),
    ('PRETTY_NAME="Debian GNU/Linux forky/sid"\nID=debian\n', False),
])
def test_os_release(text, ok):
    problem = hostprep.os_release_problem(text)
    assert (problem is None) == ok
    if not ok:
        assert "Debian 12" in problem


def test_check_host_returns_a_list_of_strings():
    problems = hostprep.check_host()
    assert isinstance(problems, list)
    assert all(isinstance(p, str) and p for p in problems)


def test_bootstrap_modules_import_without_libvirt():
    # Run before libvirt-python exists: importing them must not pull it (or paramiko) in.
    code = ("import sys, lpmlab.hostprep, lpmlab.fabric.ansible; "
            "bad = [m for m in ('libvirt', 'paramiko', 'tenacity') if m in sys.modules]; "
            "sys.exit(1 if bad else 0)")
    env = dict(os.environ, PYTHONPATH=str(Path(__file__).resolve().parents[2]))
    assert subprocess.run([sys.executable, "-c", code], env=env).returncode == 0
