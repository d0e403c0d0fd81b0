"""The drmgr hook contract against a real guest and real migrations, through the pytest
plugin's own fixtures (mobile_partition, migrate, hmc)."""

from __future__ import annotations

import pytest

pytestmark = pytest.mark.integration

# Each hook records its name, phase, environment and stdin in /tmp/hooklog.
RECORDER = r"""#!/bin/sh
me=$(basename "$0")
env=$(tr '\0' ' ' < /proc/$$/environ)
if read -r line; then stdin="data"; else stdin="eof"; fi
echo "$me phase=$PHASE stdin=$stdin env=[$env]" >> /tmp/hooklog
echo "$me says hello in $PHASE"
"""


def hooklog(part) -> list[str]:
    return part.run("cat /tmp/hooklog 2>/dev/null; rm -f /tmp/hooklog").stdout.splitlines()


@pytest.fixture
def lpmlab_hooks() -> dict[str, str]:
    # version order: 9-first < 10-second < a-third (a plain sort would put 10 before 9)
    return {"10-second": RECORDER, "9-first": RECORDER, "a-third": RECORDER}


def test_hooks_run_in_version_order_with_only_the_contract_environment(mobile_partition,
                                                                       migrate):
    hooklog(mobile_partition)
    out = migrate()
    assert out.ok, out.stderr
    assert out.frame == out.dest
    # the outcome carries the pre-copy telemetry too
    assert [s["iteration"] for s in out.samples if s["kind"] == "iteration"] == \
        list(range(1, out.precopy["iterations"] + 1))
    assert out.samples[-1]["downtime_ms"] == out.job["downtime"]
    for phase in ("check", "pre", "post"):
        assert [h.hook for h in out.hooks[phase]] == ["9-first", "10-second", "a-third"]
        assert all(h.rc == 0 for h in out.hooks[phase])
        assert "says hello in " + phase in out.hooks[phase][0].stdout
    assert "undocheck" not in out.hooks
    lines = hooklog(mobile_partition)
    assert [ln.split()[1] for ln in lines] == ["phase=" + p for p in
                                               ("check",) * 3 + ("pre",) * 3 + ("post",) * 3]
    for ln in lines:
        assert "stdin=eof" in ln  # stdin is /dev/null
        env = set(ln.split("env=[", 1)[1].rstrip("]").split())
        phase = ln.split()[1].split("=")[1]
        assert env == {f"PHASE={phase}", "ACTION=migrate", "DRC_TYPE=pmig", "DRC_COUNT=0"}


class TestCheckFailure:
    @pytest.fixture
    def lpmlab_hooks(self) -> dict[str, str]:
        return {
            "10-refuse": '#!/bin/sh\n[ "$PHASE" = check ] || exit 0\n'
                         'echo "database is not flushed"; echo "try later" >&2; exit 3\n',
            "20-mark": '#!/bin/sh\necho "$PHASE" >> /tmp/marks\n',
        }

    def test_a_failing_check_refuses_before_anything_moves(self, mobile_partition, migrate):
        mobile_partition.run("rm -f /tmp/marks")
        home = mobile_partition.frame
        out = migrate()
        assert not out.ok and out.code == "HSCLL450"
        assert "database is not flushed" in out.stderr and "try later" in out.stderr
        assert out.frame == home  # nothing moved
        assert "pre" not in out.hooks and "transfer" not in out.phases
        assert [h.rc for h in out.hooks["check"]] == [3, 0]
        assert [h.hook for h in out.hooks["undocheck"]] == ["10-refuse", "20-mark"]
        marks = mobile_partition.run("cat /tmp/marks").stdout.split()
        assert marks == ["check", "undocheck"]  # no pre, no post


class TestPreFailure:
    @pytest.fixture
    def lpmlab_hooks(self) -> dict[str, str]:
        return {"10-pre-fails": '#!/bin/sh\n[ "$PHASE" = pre ] && exit 5\nexit 0\n'}

    def test_a_failing_pre_hook_is_logged_and_the_migration_goes_on(self, migrate):
        out = migrate()
        assert out.ok, out.stderr
        assert out.frame == out.dest
        assert out.hooks["pre"][0].rc == 5
        assert out.hooks["post"][0].rc == 0


class TestStopped:
    @pytest.fixture
    def lpmlab_hooks(self) -> dict[str, str]:
        return {"10-post": '#!/bin/sh\n[ "$PHASE" = post ] && echo post-ran >> /tmp/marks\n'
                           'exit 0\n'}

    def test_post_runs_after_a_stopped_migration(self, mobile_partition, hmc, lpmlab_lab):
        lab = lpmlab_lab.ensure_up()
        mobile_partition.run("rm -f /tmp/marks")
        mobile_partition.run("lpm-dirty --rate 400 --wss 200 --daemon", check=True)
        home = mobile_partition.frame
        vios = next(v.vios.name for v in lab.plan.all_vios() if v.vios.frame == home)
        msp = lab.plan.vios(vios).mover_service()
        msp.limit_bandwidth(40)  # the transfer cannot converge: time to stop it
        try:
            running = hmc.start_migration(mobile_partition.name)
            running.wait_transferring()
            again = hmc.run("migrlpar", "-o", "v", "-m", home, "-t", running.dest, "-p",
                            mobile_partition.name)
            assert again.returncode != 0 and "HSCLL531" in again.stderr  # already migrating
            stop = running.stop()
            assert stop.returncode == 0, stop.stderr
            out = running.wait()
        finally:
            msp.limit_bandwidth(None)
            mobile_partition.run("echo 0 0 > /run/lpm-dirty.ctl; killall lpm-dirty")
        assert out.code == "HSCLL408" and out.state == "Migration Stopped"
        assert out.frame == home
        assert [h.hook for h in out.hooks["post"]] == ["10-post"]
        assert "post-ran" in mobile_partition.run("cat /tmp/marks").stdout


class TestWaitTime:
    @pytest.fixture
    def lpmlab_hooks(self) -> dict[str, str]:
        return {"10-slow-pre": '#!/bin/sh\n[ "$PHASE" = pre ] && sleep 600\nexit 0\n',
                "20-post": '#!/bin/sh\n[ "$PHASE" = post ] && echo post-ran >> /tmp/marks\n'
                           'exit 0\n'}

    def test_past_w_the_migration_is_stopped_and_stays_home(self, mobile_partition, migrate):
        mobile_partition.run("rm -f /tmp/marks")
        home = mobile_partition.frame
        out = migrate(wait_minutes=1)
        assert not out.ok and out.code == "HSCLL451"
        assert out.frame == home and "transfer" not in out.phases
        assert out.hooks["pre"][0].timed_out
        assert "post-ran" in mobile_partition.run("cat /tmp/marks").stdout
        # the slow hook was killed, not left behind
        assert "sleep 600" not in mobile_partition.run("ps").stdout


def test_hook_output_reaches_the_user_with_v(mobile_partition, hmc):
    mobile_partition.push("/etc/drmgr.d/pmig/10-hello",
                          '#!/bin/sh\necho "hello from $PHASE"\n', mode=0o755)
    out = hmc.migrate(mobile_partition.name, extra=("-v",))
    assert out.ok, out.stderr
    for phase in ("check", "pre", "post"):
        assert f"hello from {phase}" in out.stderr


def test_push_installs_hooks_and_rmc_state_follows_the_os(mobile_partition, hmc, tmp_path):
    import subprocess

    from lpmlab.pytest_plugin import BIN

    hook = tmp_path / "30-pushed"
    hook.write_text('#!/bin/sh\necho "pushed hook in $PHASE"\n')
    hook.chmod(0o755)
    cp = subprocess.run([str(BIN / "lpmlab"), "partition", "push", mobile_partition.name,
                         str(hook), "/etc/drmgr.d/pmig/"], capture_output=True, text=True)
    assert cp.returncode == 0, cp.stderr
    listing = mobile_partition.run("ls -l /etc/drmgr.d/pmig/30-pushed", check=True).stdout
    assert listing.startswith("-rwxr-xr-x")
    frame = mobile_partition.frame

    def rmc_state() -> str:
        out = hmc.run("lssyscfg", "-r", "lpar", "-m", frame, "--filter",
                      f"lpar_names={mobile_partition.name}", "-F", "rmc_state", check=True)
        return out.stdout.strip()

    assert rmc_state() == "active"
    vt = subprocess.run([str(BIN / "mkvterm"), "-m", frame, "-p", mobile_partition.name],
                        input="\nip link set eth0 down\n", capture_output=True, text=True,
                        timeout=60)
    assert vt.returncode == 0, vt.stderr
    try:
        assert rmc_state() == "inactive"
    finally:
        subprocess.run([str(BIN / "mkvterm"), "-m", frame, "-p", mobile_partition.name],
                       input="\nip link set eth0 up\n", capture_output=True, text=True,
                       timeout=60)
    mobile_partition.wait_ready(60)
    out = hmc.migrate(mobile_partition.name, extra=("-v",))
    assert out.ok and "pushed hook in post" in out.stderr
