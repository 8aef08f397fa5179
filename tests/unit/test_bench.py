"""hack/bench.py end to end with the real runc (and a runtime that always fails)."""
import json
import os
import subprocess
import sys

import pytest

REPO = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
sys.path.insert(0, os.path.join(REPO, "hack"))
import bench  # noqa: E402


def test_summarize_median_and_nearest_rank_p90():
    s = bench.summarize([5, 1, 4, 2, 3, 10, 9, 8, 7, 6], "ms")
    assert (s["n"], s["median"], s["p90"], s["min"], s["max"]) == (10, 5.5, 9, 1, 10)
    assert bench.summarize([3.0], "ms")["p90"] == 3.0
    assert bench.summarize([], "ms")["median"] is None


def test_bench_runc_json_shape(tmp_path):
    if os.geteuid() != 0:
        pytest.skip("needs root")
    if not os.access("/usr/sbin/runc", os.X_OK):
        pytest.fail("runc missing: run hack/setup.sh")
    out = tmp_path / "bench.json"
    tmp = tmp_path / "tmp"
    tmp.mkdir()
    p = subprocess.run(
        [sys.executable, os.path.join(REPO, "hack", "bench.py"), "--runtimes", "runc,false",
         "-n", "2", "--cases", "state,create-rss", "--json", str(out)],
        capture_output=True, text=True, timeout=300, env=dict(os.environ, TMPDIR=str(tmp)))
    assert p.returncode == 0, p.stderr
    d = json.loads(out.read_text())
    assert set(d) == {"meta", "runtimes", "cases", "ratios"}
    assert d["meta"]["iterations"] == 2
    assert d["meta"]["units"] == {"state": "ms", "create-rss": "KiB"}
    assert d["runtimes"]["runc"]["available"] is True
    assert d["runtimes"]["runc"]["version"].startswith("runc version")
    assert list(d["cases"]) == ["state", "create-rss"]
    st = d["cases"]["state"]["runc"]
    assert st["n"] == 2 and st["failures"] == 0 and len(st["samples"]) == 2
    assert 0 < st["min"] <= st["median"] <= st["p90"] <= st["max"] < 10_000
    rss = d["cases"]["create-rss"]["runc"]
    assert rss["unit"] == "KiB" and 1_000 < rss["median"] < 200_000
    # a runtime that fails everything is reported per case; the bench goes on
    bad = d["cases"]["state"]["false"]
    assert bad["n"] == 0 and bad["failures"] == 2 and bad["median"] is None
    assert "exited 1" in bad["errors"][0]
    assert d["ratios"] == {"state": {}, "create-rss": {}}   # no ocirun in this run
    assert "state" in p.stdout and "runc med/p90" in p.stdout and "FAIL x2" in p.stdout
    # nothing left behind: temp dirs, containers' cgroups
    assert os.listdir(tmp) == []
    parent = d["meta"]["cgroup_parent"]
    assert parent.startswith("/ocibench-")
    for top in ("/sys/fs/cgroup", "/sys/fs/cgroup/unified", "/sys/fs/cgroup/memory",
                "/sys/fs/cgroup/pids", "/sys/fs/cgroup/cpu"):
        assert not os.path.exists(top + parent)
