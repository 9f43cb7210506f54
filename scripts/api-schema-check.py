#!/usr/bin/env python3
"""The HTTP API against its own OpenAPI document, with schemathesis.

Usage: scripts/api-schema-check.py [--belfry PATH] [--max-examples N] [--seed N]

Starts `belfry daemon --http` on a free loopback port with a tokens file of its own, on a
deployment with a few tasks (one run of each already in the history, so that runs, logs and
statistics have something to show), then lets schemathesis call every operation of
`/api/v1/openapi.yaml` with generated input, as an admin. Fails when any answer is a 5xx, or a
status, a content type, a header or a body is off the document. Needs schemathesis (PyPI);
`.ci/run` installs it.
"""
import argparse
import os
import subprocess
import sys
import tempfile
import time
import urllib.request

from harness import free_port

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--belfry", default=os.path.join(ROOT, ".build", "debug", "belfry"))
    parser.add_argument("--max-examples", type=int, default=40, help="examples per operation")
    parser.add_argument("--seed", type=int, default=1, help="schemathesis's seed, for a run that can be repeated")
    args = parser.parse_args()
    work = tempfile.mkdtemp(prefix="belfry-schema-")
    os.makedirs(f"{work}/schedules")
    with open(f"{work}/schedules/api.yaml", "w") as f:
        f.write("""environment: { name: api }
tasks:
  - name: echo
    description: Prints its input.
    params: { who: { default: world } }
    command: ["/bin/echo", "hello {{who}}"]
    triggers:
      - { name: hourly, cron: "0 * * * *" }
      - { name: nightly, cron: "30 2 * * *", timezone: America/New_York, auto_activate: false }
  - name: fails
    command: { shell: 'echo failing; exit 3' }
    triggers:
      - { name: rate, every: 90m }
""")
    database = f"{work}/belfry.sqlite"
    token = "schema-admin-token-0123456789abcdef"
    with open(f"{work}/tokens", "w") as f:
        f.write(f"schemathesis admin {token}\n")
    os.chmod(f"{work}/tokens", 0o600)
    for command in (["deploy", "--database", database, f"{work}/schedules"],
                    ["run", "api.echo", "--database", database],
                    ["run", "api.fails", "--database", database]):
        subprocess.run([args.belfry, *command], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    port = free_port()
    base = f"http://127.0.0.1:{port}"
    log = open(f"{work}/daemon.log", "w")
    daemon = subprocess.Popen([args.belfry, "daemon", "--database", database, "--http", f"127.0.0.1:{port}",
                               "--http-tokens", f"{work}/tokens", f"{work}/schedules"], stdout=log, stderr=log)
    try:
        for _ in range(300):
            try:
                urllib.request.urlopen(f"{base}/healthz", timeout=1)
                break
            except OSError:
                time.sleep(0.1)
        else:
            print(f"the daemon did not answer; its log: {work}/daemon.log")
            return 1
        result = subprocess.run([
            "schemathesis", "run", f"{base}/api/v1/openapi.yaml", "--url", f"{base}/api/v1",
            "-H", f"Authorization: Bearer {token}",
            "--checks", "not_a_server_error,status_code_conformance,content_type_conformance,response_headers_conformance,response_schema_conformance",
            "--max-examples", str(args.max_examples), "--seed", str(args.seed), "--workers", "1",
            "--phases", "examples,coverage,fuzzing,stateful", "--request-timeout", "10", "--no-color",
        ])
        if daemon.poll() is not None:
            print(f"the daemon died during the run; its log: {work}/daemon.log")
            return 1
        return result.returncode
    finally:
        daemon.terminate()
        daemon.wait(timeout=30)
        log.close()


if __name__ == "__main__":
    sys.exit(main())
