"""The CPU guard in fastmlp/__init__.py: on an x86-64 CPU the installed NumPy cannot run on (NumPy
2.4 and later need x86-64-v2: SSE4.2, POPCNT), ``python -m fastmlp.*`` stops before NumPy is
imported with one line and exit code 2 instead of dying of SIGILL.

CPUID's leaf-1 ECX words below are what QEMU 7.2's CPU models report (bit 20 SSE4.2, 23 POPCNT,
19 SSE4.1, 9 SSSE3, 0 SSE3). The last tests run the real thing under ``qemu-x86_64 -cpu
core2duo`` (Debian's qemu-user) when it is installed, as CI does."""

import os
import platform
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

import fastmlp

CORE2DUO, NEHALEM, NO_SSE3 = 0x80002209, 0x80982201, 0x80002000
QEMU = shutil.which("qemu-x86_64")
X86_LINUX = platform.machine() == "x86_64" and sys.platform.startswith("linux")


def _stop(capsys, ecx, numpy_version):
    with pytest.raises(SystemExit) as stop:
        fastmlp._cpu_check(lambda: ecx, numpy_version)
    err = capsys.readouterr().err
    assert stop.value.code == 2
    assert err.count("\n") == 1, err
    return err


def test_a_cpu_without_sse42_and_numpy_2_4_stops_with_one_line_naming_it_and_the_fix(capsys):
    err = _stop(capsys, CORE2DUO, "2.4.6")
    assert "no SSE4.1, SSE4.2, POPCNT" in err and "NumPy 2.4.6" in err
    assert 'pip install "numpy<2.4"' in err


def test_a_cpu_without_sse3_stops_whatever_numpy(capsys):
    err = _stop(capsys, NO_SSE3, "2.3.5")
    assert "no SSE3" in err and "SSE4.2" not in err  # NumPy 2.3 does not need SSE4.2
    assert "needs an x86-64 CPU with SSE3" in err


@pytest.mark.parametrize("ecx,numpy_version", [(CORE2DUO, "2.3.5"), (CORE2DUO, "1.26.4"),
                                               (NEHALEM, "2.4.6"), (NEHALEM, "3.0.0")])
def test_a_cpu_the_installed_numpy_runs_on_passes(capsys, ecx, numpy_version):
    assert fastmlp._cpu_check(lambda: ecx, numpy_version) is None
    assert capsys.readouterr().err == ""


def test_the_check_can_be_turned_off(monkeypatch, capsys):
    monkeypatch.setenv("FASTMLP_NO_CPU_CHECK", "1")
    assert fastmlp._cpu_check(lambda: CORE2DUO, "2.4.6") is None
    assert capsys.readouterr().err == ""


def test_no_cpuid_means_no_verdict(capsys):
    def fails():
        raise PermissionError("no executable memory")
    assert fastmlp._cpu_check(fails, "2.4.6") is None
    assert capsys.readouterr().err == ""


@pytest.mark.skipif(not X86_LINUX, reason="CPUID is read on x86-64 Linux only")
def test_cpuid_reads_the_same_features_as_the_kernel_on_real_hardware():
    # natively (this test is not emulated) /proc/cpuinfo is the kernel's own CPUID reading
    flags = next(line for line in Path("/proc/cpuinfo").read_text().splitlines()
                 if line.startswith("flags")).split(":")[1].split()
    ecx = fastmlp._cpuid_leaf1_ecx()
    for bit, name in [(0, "pni"), (9, "ssse3"), (19, "sse4_1"), (20, "sse4_2"), (23, "popcnt")]:
        assert bool(ecx >> bit & 1) == (name in flags), name


def _numpy_needs_sse42():
    from importlib.metadata import version
    return tuple(int(x) for x in version("numpy").split(".")[:2]) >= (2, 4)


@pytest.mark.skipif(not (QEMU and X86_LINUX), reason="needs qemu-x86_64 (apt-get install "
                    "qemu-user)")
@pytest.mark.parametrize("command", ["fastmlp.train", "fastmlp.evaluate", "fastmlp.sweep"])
def test_under_an_emulated_core2duo_the_commands_stop_before_numpy(command):
    if not _numpy_needs_sse42():
        pytest.skip("the installed NumPy runs without SSE4.2")
    env = {k: v for k, v in os.environ.items() if k != "FASTMLP_NO_CPU_CHECK"}
    proc = subprocess.run([QEMU, "-cpu", "core2duo", sys.executable, "-m", command, "--help"],
                          capture_output=True, text=True, env=env, timeout=120)
    assert proc.returncode == 2, proc.stderr  # SIGILL would be -4 (or 132 from a shell)
    assert proc.stdout == ""
    assert proc.stderr.count("\n") == 1 and "no SSE4.1, SSE4.2, POPCNT" in proc.stderr
