"""A GPU machine can install recsys for its GPU: the `gpu` extra, and the prepared GPU check."""

import subprocess
import tomllib
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]


def test_the_gpu_extra_brings_tensorflows_cuda_build_and_the_default_stays_cpu_only() -> None:
    project = tomllib.loads((REPO / "pyproject.toml").read_text())["project"]
    linux = "sys_platform == 'linux' and platform_machine == 'x86_64'"
    assert f"tensorflow[and-cuda]>=2.16; {linux}" in project["optional-dependencies"]["gpu"]
    assert f"tensorflow-cpu>=2.16; {linux}" in project["dependencies"]
    readme = (REPO / "README.md").read_text()
    assert "pip install -e '.[test,gpu]'" in readme


def test_the_gpu_check_script_parses() -> None:
    script = REPO / "bench" / "gpu_check.sh"
    assert subprocess.run(["bash", "-n", str(script)], check=False).returncode == 0
    assert "bench/gpu_check.py" in script.read_text()
