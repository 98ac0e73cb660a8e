"""Runs a command and prints its whole-process cost as JSON on stderr's last line:
user and system CPU seconds (all threads, children included), wall seconds, peak resident memory.
Usage: measure.py OUT_JSON -- CMD ARG... (the command's stdout goes to this process's stdout)."""

import json
import resource
import subprocess
import sys
import time

out_file = sys.argv[1]
cmd = sys.argv[sys.argv.index("--") + 1 :]
t0 = time.monotonic()
rc = subprocess.call(cmd)
wall = time.monotonic() - t0
ru = resource.getrusage(resource.RUSAGE_CHILDREN)
with open(out_file, "w") as f:
    json.dump({"rc": rc, "user": ru.ru_utime, "sys": ru.ru_stime, "wall": wall, "maxRssKiB": ru.ru_maxrss}, f)
sys.exit(rc)
