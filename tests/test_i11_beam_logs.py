"""Issue 11: Beam's own log records never reach the CLI's output (the demo's dataset stage included).

The demo builds its dataset the way ``dataset build`` does, with the DirectRunner's worker
processes (``multi_processing``, the default); the build here runs the same way, as a real
``eoengine`` process with progress on, as users run it.
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

from conftest import REPO, save_config, tiny_config

BEAM_RECORDS = ("apache_beam", "pipeline_options", "Discarding", "unparseable", "semi_persistent_directory",
                "apitools", "Worker: severity", "Logging handler created", "bigquery")


def test_a_cli_build_prints_no_beam_record_on_either_stream(tmp_path: Path) -> None:
    config = save_config(tmp_path, tiny_config(tmp_path, **{"dataset.running_mode": "multi_processing",
                                                            "dataset.num_workers": 2}))
    env = {k: v for k, v in os.environ.items() if k != "EOENGINE_PROGRESS"}
    proc = subprocess.run([sys.executable, "-m", "eoengine", "dataset", "build", str(config)],
                          capture_output=True, text=True, timeout=600, cwd=REPO, env=env)
    assert proc.returncode == 0, proc.stderr
    assert "dataset built" in proc.stdout and "building chips" in proc.stderr  # its own output is all there
    for stream in (proc.stdout, proc.stderr):
        assert [r for r in BEAM_RECORDS if r in stream] == [], stream
