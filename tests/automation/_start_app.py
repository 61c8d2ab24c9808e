"""A stand-in rollout command for the command target's test: record the image, start the app.

``python _start_app.py IMAGE VENV PORT STATE_DIR``: writes IMAGE to STATE_DIR/image,
starts uvicorn from VENV on 127.0.0.1:PORT in the background (its pid in
STATE_DIR/app.pid) with the environment the deploy gave this command, and exits,
as ``kubectl set image`` returns before the rollout is done.
"""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

image, venv, port, state = sys.argv[1:5]
previous = Path(state, "app.pid")
if previous.is_file():  # the platform replaces the running release
    with contextlib.suppress(ProcessLookupError):
        os.kill(int(previous.read_text()), signal.SIGTERM)
        for _ in range(150):
            os.kill(int(previous.read_text()), 0)
            time.sleep(0.1)
Path(state, "image").write_text(image)
with Path(state, "app.log").open("ab") as log:
    process = subprocess.Popen(
        [f"{venv}/bin/python", "-m", "uvicorn", "backend_sample.app:create_app", "--factory",
         "--host", "127.0.0.1", "--port", port],
        env=os.environ,
        cwd=state,  # as an image's WORKDIR: never a checkout the app could import from
        stdin=subprocess.DEVNULL,
        stdout=log,
        stderr=subprocess.STDOUT,
        start_new_session=True,
    )  # fmt: skip
Path(state, "app.pid").write_text(str(process.pid))
