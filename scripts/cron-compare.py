#!/usr/bin/env python3
"""Imported crontabs against Debian's cron: the same jobs, run by both, print the same.

Usage: scripts/cron-compare.py [--belfry PATH]     (root; installs Debian's cron when missing)

Writes a user crontab and a system crontab (/etc/cron.d format) whose jobs all fire every
minute and print what a job sees: its arguments, the variables the crontab sets, its stdin
(`%`), its shell, its working directory and HOME, LOGNAME and PATH. Then:

1. cron runs them: the system file goes to /etc/cron.d, the user crontab is installed for root
   with `crontab` (root's own crontab is saved first and put back at the end); cron is started if
   it is not running. Each job writes to a file of its own.
2. `belfry import crontab` (and `--system --user root`) turns each into definitions, which are
   deployed into a fresh database, and `belfry run` runs every imported task once.
3. The two outputs of every job are compared byte for byte. Exit 0 when all agree.
"""
import argparse
import os
import shutil
import subprocess
import sys
import tempfile
import time

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))

# What every job prints: enough to see cron's meaning kept (variables, stdin, shell, directory).
SHOW = 'printf "args=%s\\n" "$*"; printf "greeting=%s\\n" "$GREETING"; printf "path=%s\\n" "$PATH"; ' \
       'printf "home=%s\\n" "$HOME"; printf "logname=%s\\n" "$LOGNAME"; printf "shell=%s\\n" "$SHELL"; ' \
       'printf "pwd=%s\\n" "$(pwd)"; printf "stdin=<"; cat; printf ">\\n"'


def crontabs(out):
    """The user crontab and the system crontab, each job writing to OUT/<name>.<who>. In a
    crontab `%` ends the command (the rest is stdin): the job's own are written `\\%`."""
    show = SHOW.replace("%", "\\%")
    user = f"""# A user crontab: variables, quoting, tabs, % as stdin
GREETING = "hello  world"
MAILTO=""
# plain
* * * * *\t{{ {show}; }} > {out}/plain.WHO 2>&1
# percent signs: the first starts stdin, the others are newlines; \\% is a literal %
*/1 * * * * {{ {show}; }} > {out}/percent.WHO 2>&1 %first line%second line, 100\\% sure%
# a macro and odd spacing
@hourly    true
*   *   *   *   *   {{ {show}; }} > {out}/spacing.WHO 2>&1 < /dev/null
"""
    system = f"""SHELL=/bin/bash
PATH=/usr/local/bin:/usr/bin:/bin
GREETING=system
* * * * * root {{ {show}; echo "bash=$BASH_VERSION" | cut -c1-6; }} > {out}/system.WHO 2>&1
* * * * * root cd /tmp && {{ {show}; }} > {out}/system-cd.WHO 2>&1 %in%put
"""
    return user, system


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--belfry", default=os.path.join(ROOT, ".build/debug/belfry"))
    args = parser.parse_args()
    if os.geteuid() != 0:
        sys.exit("cron-compare.py needs root: it installs /etc/cron.d/belfry-compare and root's crontab")
    if not shutil.which("cron"):
        subprocess.run(["apt-get", "install", "-y", "-qq", "cron"], check=True, stdout=subprocess.DEVNULL)
    work = tempfile.mkdtemp(prefix="belfry-cron-compare-")
    out = os.path.join(work, "out")
    os.makedirs(out)
    user, system = crontabs(out)
    with open(os.path.join(work, "crontab"), "w") as f:
        f.write(user.replace("WHO", "belfry"))
    with open(os.path.join(work, "belfry-compare"), "w") as f:
        f.write(system.replace("WHO", "belfry"))

    # cron's side.
    saved = subprocess.run(["crontab", "-l"], capture_output=True, text=True)
    cron_file = "/etc/cron.d/belfry-compare"
    with open(cron_file, "w") as f:
        f.write(system.replace("WHO", "cron"))
    subprocess.run(["crontab", "-"], input=user.replace("WHO", "cron"), text=True, check=True)
    started_cron = None
    if subprocess.run(["pgrep", "-x", "cron"], capture_output=True).returncode != 0:
        started_cron = subprocess.Popen(["cron", "-f"], stderr=subprocess.DEVNULL)
    try:
        names = ["plain", "percent", "spacing", "system", "system-cd"]
        # cron reads new files at the next minute; give it two.
        deadline = time.time() + 150
        while time.time() < deadline and not all(os.path.exists(os.path.join(out, f"{n}.cron")) for n in names):
            time.sleep(2)
        time.sleep(2)  # let the last job finish writing
    finally:
        os.remove(cron_file)
        if saved.returncode == 0:
            subprocess.run(["crontab", "-"], input=saved.stdout, text=True, check=True)
        else:
            subprocess.run(["crontab", "-r"], stderr=subprocess.DEVNULL)
        if started_cron:
            started_cron.terminate()
            started_cron.wait()

    # Belfry's side: import, deploy, run each task once.
    schedules = os.path.join(work, "schedules")
    os.makedirs(schedules)
    for source, name, extra in [("crontab", "mine", []), ("belfry-compare", "system", ["--system", "--user", "root"])]:
        imported = subprocess.run([args.belfry, "import", "crontab", os.path.join(work, source), "--environment", name] + extra,
                                  capture_output=True, text=True)
        if imported.returncode != 0:
            sys.exit(f"import of {source} failed:\n{imported.stderr}")
        print(f"import {source}: {imported.stderr.strip() or 'no remarks'}")
        with open(os.path.join(schedules, f"{name}.yaml"), "w") as f:
            f.write(imported.stdout)
    database = os.path.join(work, "belfry.sqlite")
    subprocess.run([args.belfry, "deploy", schedules, "--database", database], check=True, stdout=subprocess.DEVNULL)
    import json
    tasks = sorted({t["task"] for t in json.loads(subprocess.run([args.belfry, "trigger", "list", "--database", database, "--json"],
                                                                capture_output=True, text=True, check=True).stdout)})
    for task in tasks:
        subprocess.run([args.belfry, "run", task, "--database", database], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)

    failures = 0
    for name in names:
        paths = [os.path.join(out, f"{name}.{who}") for who in ("cron", "belfry")]
        texts = [open(p).read() if os.path.exists(p) else None for p in paths]
        if texts[0] is None or texts[1] is None:
            print(f"{name}: missing output ({'cron' if texts[0] is None else 'belfry'})")
            failures += 1
        elif texts[0] != texts[1]:
            failures += 1
            print(f"{name}: differs\n--- cron\n{texts[0]}--- belfry\n{texts[1]}")
        else:
            print(f"{name}: same ({len(texts[0].splitlines())} lines)")
    print(f"{len(names) - failures} of {len(names)} jobs print the same under cron and under belfry (work directory {work})")
    sys.exit(1 if failures else 0)


main()
