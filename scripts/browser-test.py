#!/usr/bin/env python3
"""The web dashboard in a real browser: headless Chromium, driven by Selenium.

Usage: scripts/browser-test.py [--belfry PATH] [--screenshot FILE]

Starts `belfry daemon --http` on a free loopback port with a tokens file of its own and
definitions whose description and output hold markup, then, in the browser:
  - logs in with the token;
  - deactivates a trigger from the Triggers page, and checks with `belfry trigger show` that the
    database agrees;
  - runs a task now and follows its live log until its last line appears;
  - opens the run of a task whose output holds `<script>` and `"><img onerror>`, and checks that
    it shows as text: no alert, no injected element.
Exits 0 when all of it held; prints what failed otherwise. Needs chromium, chromium-driver
(Debian) and selenium (PyPI); `.ci/run` installs them.
"""
import argparse
import json
import os
import subprocess
import sys
import tempfile
import time

from selenium import webdriver
from selenium.common.exceptions import NoAlertPresentException
from selenium.webdriver.chrome.service import Service
from selenium.webdriver.common.by import By

from harness import free_port

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
HOSTILE = "<script>alert(1)</script>\"><img src=x onerror=alert(2)>"


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--belfry", default=os.path.join(ROOT, ".build", "debug", "belfry"))
    parser.add_argument("--screenshot", default=None, help="where to save a screenshot of the Overview")
    args = parser.parse_args()
    work = tempfile.mkdtemp(prefix="belfry-browser-")
    os.makedirs(f"{work}/schedules")
    with open(f"{work}/schedules/web.yaml", "w") as f:
        f.write(f"""environment: {{ name: web }}
tasks:
  - name: hostile
    description: {json.dumps(HOSTILE)}
    command: ["/bin/echo", {json.dumps(HOSTILE)}]
  - name: slow
    command: {{ shell: 'for i in 1 2 3 4 5 6; do echo "line $i"; sleep 0.5; done; echo finished' }}
    triggers:
      - {{ name: nightly, cron: "30 2 * * *", timezone: America/New_York }}
      - {{ name: hourly, cron: "0 * * * *" }}
""")
    token = "browser-admin-token-0123456789"
    tokens = f"{work}/http-tokens"
    with open(tokens, "w") as f:
        f.write(f"tester admin {token}\n")
    os.chmod(tokens, 0o600)
    port = free_port()
    database = f"{work}/belfry.sqlite"
    log = open(f"{work}/daemon.log", "w")
    daemon = subprocess.Popen([args.belfry, "daemon", "--schedules", f"{work}/schedules", "--database", database,
                               "--http", f"127.0.0.1:{port}", "--http-tokens", tokens], stderr=log, stdout=log)
    failures = []
    driver = None
    try:
        for _ in range(300):
            if "HTTP API listening" in open(f"{work}/daemon.log").read():
                break
            time.sleep(0.05)
        options = webdriver.ChromeOptions()
        # A profile of its own: a profile another Chromium holds (or left locked) makes it exit at once.
        for flag in ("--headless=new", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage", "--window-size=1280,900",
                     f"--user-data-dir={work}/chromium-profile"):
            options.add_argument(flag)
        # Through a shell that records how Chromium ended: "Chrome instance exited" says nothing
        # more (exit 133, SIGTRAP, was a umask of 0177 inherited from the test process).
        wrapper = f"{work}/chromium-wrapper"
        with open(wrapper, "w") as f:
            f.write(f'#!/bin/sh\n/usr/bin/chromium "$@"\necho "exit status $?" >> {work}/chromium-exits\n')
        os.chmod(wrapper, 0o755)
        options.binary_location = wrapper
        driver_log = f"{work}/chromedriver.log"
        try:
            service = Service("/usr/bin/chromedriver", service_args=["--verbose"], log_output=driver_log)
            driver = webdriver.Chrome(service=service, options=options)
        except Exception as error:  # noqa: BLE001
            lines = open(driver_log, errors="replace").read().splitlines()
            ended = open(f"{work}/chromium-exits").read() if os.path.exists(f"{work}/chromium-exits") else "still running\n"
            raise RuntimeError(f"{error}\nChromium: {ended}chromedriver's log, last lines:\n" + "\n".join(lines[-40:])) from None
        driver.set_page_load_timeout(30)
        base = f"http://127.0.0.1:{port}"

        def no_alert(where):
            try:
                driver.switch_to.alert
                failures.append(f"{where}: a script ran (an alert is open)")
            except NoAlertPresentException:
                pass

        driver.get(base + "/")
        if not driver.current_url.endswith("/login"):
            failures.append(f"without a session / did not lead to /login but to {driver.current_url}")
        driver.find_element(By.NAME, "token").send_keys(token)
        driver.find_element(By.CSS_SELECTOR, "form.login button").click()
        for _ in range(100):
            if "Overview" in driver.title:
                break
            time.sleep(0.1)
        if "Overview" not in driver.title:
            failures.append(f"after login: title {driver.title!r}")

        # Deactivate web.slow hourly from the Triggers page.
        driver.get(base + "/triggers?q=hourly")
        row = driver.find_element(By.XPATH, "//tr[td[contains(., 'web.slow') and contains(., 'hourly')]]")
        row.find_element(By.XPATH, ".//button[text()='Deactivate']").click()
        shown = json.loads(subprocess.run([args.belfry, "trigger", "show", "web.slow", "hourly", "--json", "--database", database],
                                          capture_output=True, text=True, check=True).stdout)
        if shown["active"] or shown["updated_by"] != "tester":
            failures.append(f"after Deactivate in the browser, belfry trigger show says active={shown['active']}, updated_by={shown['updated_by']}")

        # Run web.slow now and follow its log live.
        driver.get(base + "/tasks/web.slow")
        driver.find_element(By.XPATH, "//button[text()='Run now']").click()
        for _ in range(100):  # the click's navigation
            if "/runs/" in driver.current_url:
                break
            time.sleep(0.1)
        if "/runs/" not in driver.current_url:
            failures.append(f"Run now led to {driver.current_url}")
        deadline = time.time() + 20
        text = ""
        while time.time() < deadline:
            text = driver.find_element(By.ID, "log").text
            if "finished" in text:
                break
            time.sleep(0.25)
        if "line 6" not in text or "finished" not in text:
            failures.append(f"the live log did not follow the run to its end: {text!r}")

        # The hostile task: run it, then look at its run page and its task page.
        driver.get(base + "/tasks/web.hostile")
        no_alert("task page")
        driver.find_element(By.XPATH, "//button[text()='Run now']").click()
        for _ in range(100):
            if "/runs/" in driver.current_url:
                break
            time.sleep(0.1)
        time.sleep(1.5)  # the job's end
        driver.refresh()
        no_alert("run page")
        log_text = driver.find_element(By.ID, "log").text
        if "<script>alert(1)</script>" not in log_text:
            failures.append(f"the hostile output is not shown as text: {log_text!r}")
        if driver.find_elements(By.CSS_SELECTOR, "img"):
            failures.append("an <img> element was injected into the run page")
        if driver.find_elements(By.XPATH, "//main//script[not(@src)]"):
            failures.append("an inline script is on the run page")
        driver.get(base + "/tasks/web.hostile")
        no_alert("task page after the run")
        if HOSTILE not in driver.find_element(By.TAG_NAME, "main").text:
            failures.append("the hostile description is not shown as text on the task page")
        if args.screenshot:
            driver.get(base + "/")
            driver.set_window_size(1280, 1100)
            driver.save_screenshot(args.screenshot)
    except Exception as error:  # noqa: BLE001 - report whatever broke, with the daemon's log
        failures.append(f"{type(error).__name__}: {error}")
    finally:
        if driver:
            driver.quit()
        daemon.terminate()
        daemon.wait(timeout=30)
    if failures:
        print("browser test FAILED:")
        for failure in failures:
            print("  -", failure)
        print("daemon log:", open(f"{work}/daemon.log").read()[-3000:])
        sys.exit(1)
    print("browser test: login, deactivate (belfry trigger show agrees), run now with a live log, markup shown as text: ok")


main()
