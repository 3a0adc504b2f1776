#!/usr/bin/env python3
"""The web console's browser suite (GitHub issue 9, "Done when"): headless Chromium against a real
manager (SQLite, generated admin password) and real agent processes, all on loopback.

    python3 Tests/browser/console_suite.py --bin KLEVR_BIN --shots DIR [--only STEP,...] [--keep]

Run through scripts/console-test.sh, which installs what is missing. The steps run in order and share
one browser session (the scenario of an operator's day); a step that fails is reported and the suite
goes on where it can (steps that need a failed one are skipped); the exit status is non-zero on any
failure. Every page visited is saved at 1280x800 and 390x844 under --shots.
"""
import argparse
import glob
import os
import re
import secrets
import shutil
import signal
import subprocess
import sys
import tempfile
import time
import traceback

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from harness import Agent, Browser, Failure, Manager, Receiver, http, wait_until  # noqa: E402

REPO = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
CONSOLE_JS = os.path.join(REPO, "Sources", "KlevrManager", "Console", "js")
ZONE = "web"


class Suite:
    def __init__(self, args):
        self.args = args
        self.tmp = args.tmp or tempfile.mkdtemp(prefix="klevr-console.")
        self.shots = args.shots
        self.manager = None
        self.browser = None
        self.receiver = None
        self.agents = []
        self.results = []        # (step, "ok" | "FAILED" | "skipped", detail)
        self.failed_steps = set()
        self.state = {}          # what steps hand on to later ones
        self.mark = secrets.token_hex(4)

    # --- the step runner ----------------------------------------------------------------------------
    def run_step(self, name, fn, needs=()):
        if self.args.only and name not in self.args.only:
            return
        missing = [n for n in needs if n in self.failed_steps]
        if missing:
            self.failed_steps.add(name)
            self.results.append((name, "skipped", f"needs {', '.join(missing)}"))
            print(f"-- {name}: skipped (needs {', '.join(missing)})", flush=True)
            return
        print(f"-- {name} …", flush=True)
        started = time.monotonic()
        self.expected_network = list(self.base_expected_network)  # what a step expects is its own
        if self.browser:
            self.browser.step = name
        try:
            fn()
            problems = self.console_problems()
            if problems:
                # The flow itself worked: the steps that need this one still run.
                detail = "the page logged errors:\n  " + "\n  ".join(problems)
                self.results.append((name, "FAILED", detail))
                print(f"-- {name}: FAILED\n{detail}", flush=True)
                return
            self.results.append((name, "ok", f"{time.monotonic() - started:.1f}s"))
            print(f"-- {name}: ok ({time.monotonic() - started:.1f}s)", flush=True)
        except Exception as error:  # noqa: BLE001 (every failure is reported, the suite goes on)
            self.failed_steps.add(name)
            detail = str(error) if isinstance(error, Failure) else traceback.format_exc()
            self.results.append((name, "FAILED", detail))
            print(f"-- {name}: FAILED\n{detail}", flush=True)
            if self.browser:
                try:
                    self.browser.screenshot(f"failed-{name}")
                    self.console_problems()
                except Exception:  # noqa: BLE001
                    pass

    # Network errors of the API that a step provoked on purpose (a refused write) are expected; any
    # other console entry of level SEVERE fails the step: a JS exception, a console.error, a CSP
    # violation, a console asset that did not load, an API 5xx.
    expected_network = []  # (url regex, status) pairs a step declares before provoking them
    # The console asks for its session at start: 401 to a visitor who is not logged in.
    base_expected_network = [(r"/api/v1/auth/session$", 401)]

    def console_problems(self):
        if not self.browser:
            return []
        problems = []
        self.browser.drain_logs()
        entries, self.browser.unchecked = self.browser.unchecked, []
        for entry in entries:
            if entry.get("level") != "SEVERE":
                continue
            message = entry.get("message", "")
            if entry.get("source") == "network":
                status = re.search(r"status of (\d{3})", message)
                url = message.split(" ", 1)[0]
                if status and any(re.search(pattern, url) and int(status.group(1)) == code
                                  for pattern, code in self.expected_network):
                    continue
            problems.append(f"[{entry.get('source')}] {message}")
        return problems

    def expect_network(self, pattern, status):
        self.expected_network.append((pattern, status))

    # --- set-up and tear-down ---------------------------------------------------------------------
    def start(self):
        print(f"== console: manager {self.args.bin} (temp dir {self.tmp})", flush=True)
        self.manager = Manager(self.args.bin, os.path.join(self.tmp, "manager"))
        print(f"== console: manager on {self.manager.url}; admin password generated", flush=True)
        self.receiver = Receiver()
        self.browser = Browser(self.manager.url, self.shots)

    def close(self):
        for agent in self.agents:
            agent.stop()
        if self.browser:
            self.browser.close()
        if self.receiver:
            self.receiver.stop()
        if self.manager:
            self.manager.stop()
        if self.args.keep:
            print(f"== console: kept {self.tmp}")
        elif not self.args.tmp:
            shutil.rmtree(self.tmp, ignore_errors=True)

    # --- helpers ----------------------------------------------------------------------------------
    @property
    def b(self):
        return self.browser

    def page_fetch(self, method, path, body=None, csrf=True):
        """A request from the page's context with its session cookie; with the session's CSRF token
        in X-Klevr-CSRF when `csrf`. Returns {status, body}."""
        return self.b.js_async("""
            const [method, path, body, withCsrf] = args;
            const headers = { 'Content-Type': 'application/json', Accept: 'application/json' };
            if (withCsrf) {
              const session = await (await fetch('/api/v1/auth/session', { credentials: 'same-origin' })).json();
              headers['X-Klevr-CSRF'] = session.csrfToken;
            }
            const response = await fetch(path, { method, headers, credentials: 'same-origin',
              body: body === null ? undefined : JSON.stringify(body) });
            const text = await response.text();
            let data = null; try { data = JSON.parse(text); } catch { data = text; }
            return { status: response.status, body: data };""", method, path, body, csrf)

    def api(self, method, path, body=None):
        """The API as the user logged in, from the page (session cookie + CSRF); fails on a non-2xx answer."""
        answer = self.page_fetch(method, path, body)
        if answer["status"] >= 300:
            raise Failure(f"{method} {path} answered {answer['status']}: {answer['body']}")
        return answer["body"]

    def set_reload_mark(self):
        """A value in the page's window: it survives anything but a reload."""
        self.b.js("window.__klevrNoReload = arguments[0];", self.mark)

    def assert_no_reload(self):
        if self.b.js("return window.__klevrNoReload;") != self.mark:
            raise Failure("the page was reloaded (the live update must not need one)")

    def login(self, username, password, shot=None):
        self.b.goto("#/login", "login", shot=shot)
        self.b.fill("login", {"username": username, "password": password})
        self.b.submit("login")

    def start_agent(self, name, peers=()):
        agent = Agent(self.args.bin, self.state["agent_command"], self.tmp, name, peers=peers)
        self.agents.append(agent)
        wait_until(f"agent {name} to enroll", agent.identity, timeout=90)
        return agent

    def map_state(self):
        return self.b.js("""
            const map = document.querySelector('[data-part="zone-map"] .zone-map');
            if (!map) return null;
            const nodes = [...map.querySelectorAll('[data-role]')].map((n) => ({
              agent: n.dataset.agent || '', role: n.dataset.role, status: n.dataset.status || '' }));
            return { primary: map.dataset.primary, epoch: Number(map.dataset.epoch), nodes };""")

    # ============================================================================================
    # The steps
    # ============================================================================================
    def step_js_syntax(self):
        """Done-when 4: every console module parses (node --check, as an ES module)."""
        files = sorted(glob.glob(os.path.join(CONSOLE_JS, "**", "*.js"), recursive=True))
        if not files:
            raise Failure(f"no JavaScript under {CONSOLE_JS}")
        out = os.path.join(self.tmp, "node-check")
        bad = []
        for path in files:
            copy = os.path.join(out, os.path.relpath(path, CONSOLE_JS))[:-3] + ".mjs"
            os.makedirs(os.path.dirname(copy), exist_ok=True)
            shutil.copyfile(path, copy)
            result = subprocess.run(["node", "--check", copy], capture_output=True, text=True)
            if result.returncode != 0:
                bad.append(f"{os.path.relpath(path, REPO)}:\n{result.stderr.replace(copy, path)}")
        if bad:
            raise Failure("node --check refused:\n" + "\n".join(bad))
        print(f"   {len(files)} modules parse", flush=True)

    def step_csp_header(self):
        """Done-when 3: every console answer carries a strict Content-Security-Policy."""
        for path in ["/console/", "/console/index.html", "/console/js/app.js", "/console/css/console.css",
                     "/console/js/pages/zone.js"]:
            status, headers, _ = http("GET", self.manager.url + path)
            if status != 200:
                raise Failure(f"GET {path} answered {status}")
            csp = headers.get("Content-Security-Policy") or ""
            directives = {d.strip().split(" ")[0]: d.strip().split(" ")[1:] for d in csp.split(";") if d.strip()}
            want = {"default-src": ["'none'"], "script-src": ["'self'"], "style-src": ["'self'"],
                    "connect-src": ["'self'"], "frame-ancestors": ["'none'"]}
            for key, value in want.items():
                if directives.get(key) != value:
                    raise Failure(f"GET {path}: CSP {key} is {directives.get(key)}, want {value} (header: {csp!r})")
            for key, value in directives.items():
                for source in value:
                    if source not in ("'self'", "'none'", "data:"):
                        raise Failure(f"GET {path}: CSP {key} allows {source} (header: {csp!r})")

    def step_login_refused(self):
        """A wrong password is refused, and the login page says so."""
        self.b.open_console()
        self.b.wait_rendered("login")
        self.expect_network(r"/api/v1/auth/login$", 401)
        self.b.fill("login", {"username": "admin", "password": "not-the-password"})
        self.b.submit("login")
        wait_until("the refusal shown under the login form", lambda: self.b.form_error("login"))
        self.b.screenshot("login-refused")

    def step_login_forced_change(self):
        self.b.open_console()
        self.b.wait_rendered("login")
        self.b.screenshot("login")
        self.b.fill("login", {"username": "admin", "password": self.manager.admin_password})
        self.b.submit("login")
        # The generated password must be changed before anything else.
        self.b.wait_rendered("password")
        notice = self.b.text('[data-page="password"] .notice') or ""
        if "generated" not in notice:
            raise Failure(f"the forced change does not say why: {notice!r}")
        self.b.screenshot("password-forced")
        self.state["admin_password"] = "console-admin-" + secrets.token_hex(8)
        self.b.fill("password", {"current": self.manager.admin_password, "new": self.state["admin_password"],
                                 "again": self.state["admin_password"]})
        self.b.submit("password")
        self.b.wait_rendered("overview")
        who = self.b.text("#who")
        if "admin" not in (who or ""):
            raise Failure(f"the header does not name the user: {who!r}")
        wait_until("the live stream to connect", lambda: self.b.js("return document.getElementById('live').dataset.state") == "on")
        self.b.screenshot("overview-empty")

    def step_zone_and_key(self):
        self.b.goto("#/zones", "zones", shot="zones-empty")
        self.b.fill("create-zone", {"name": ZONE, "description": "Browser suite zone"})
        self.b.submit("create-zone")
        self.b.wait_rendered("zone")
        if self.b.js("return decodeURIComponent(location.hash)") != f"#/zones/{ZONE}":
            raise Failure(f"creating the zone did not open its page: {self.b.driver.current_url}")
        # A second zone of the same name is refused, and the refusal is shown.
        self.b.goto("#/zones", "zones")
        self.expect_network(r"/api/v1/zones$", 409)
        self.b.fill("create-zone", {"name": ZONE})
        self.b.submit("create-zone")
        error = wait_until("the refusal of a duplicate zone", lambda: self.b.form_error("create-zone"))
        print(f"   duplicate zone refused: {error}", flush=True)
        self.b.screenshot("zones")
        self.b.goto(f"#/zones/{ZONE}", "zone")
        self.b.fill("create-key", {"expires": "86400"})
        self.b.submit("create-key")
        command = wait_until("the agent command", lambda: self.b.text('[data-value="agent-command"]'))
        key = self.b.text('[data-value="enroll-key"]')
        if not key or key not in command:
            raise Failure(f"the agent command does not carry the key shown: {command!r}")
        if f"--manager '{self.manager.url}'" not in command or f"--zone '{ZONE}'" not in command:
            raise Failure(f"the agent command does not name this manager and zone: {command!r}")
        self.state["agent_command"] = command
        wait_until("the key in the list", lambda: self.b.q('[data-action="revoke-key"]'))
        self.b.screenshot("zone-key")

    def step_agent_online(self):
        """The first agent, started with the command shown, appears online as primary on the map."""
        self.set_reload_mark()
        agent = self.start_agent("agent-a")
        def primary_online():
            state = self.map_state()
            return state and state["primary"] == agent.id and any(
                n["role"] == "primary" and n["agent"] == agent.id and n["status"] == "online" for n in state["nodes"])
        wait_until("agent-a online as primary on the zone map", primary_online, timeout=90)
        self.assert_no_reload()

    def step_more_agents(self):
        """Two more agents (with --peer to the first): three online on the map, one primary."""
        first = self.agents[0]
        for name in ("agent-b", "agent-c"):
            self.start_agent(name, peers=[first.address])
        ids = {a.id for a in self.agents}
        def all_online():
            state = self.map_state()
            if not state:
                return False
            online = {n["agent"] for n in state["nodes"] if n["status"] == "online"}
            primaries = [n for n in state["nodes"] if n["role"] == "primary"]
            return ids <= online and len(primaries) == 1
        wait_until("three agents online on the zone map", all_online, timeout=120)
        self.assert_no_reload()
        self.b.screenshot("zone-map")

    def step_agents_pages(self):
        self.b.goto("#/agents", "agents", shot="agents")
        rows = self.b.q("tr[data-agent]")
        if len(rows) < len(self.agents):
            raise Failure(f"the agents list shows {len(rows)} agents, want {len(self.agents)}")
        self.b.goto(f"#/agents/{self.agents[0].id}", "agent", shot="agent")
        wait_until("the agent's facts", lambda: self.b.q('[data-part="host-facts"] dl'))

    # --- tasks and runs ---------------------------------------------------------------------------
    def create_task(self, values, credentials=(), recurring=None):
        """Creates a task through the console's New task form; returns its id (from the page it opens)."""
        self.b.goto(f"#/tasks/new?zone={ZONE}", "task-new")
        if "new_task_shot" not in self.state:
            self.state["new_task_shot"] = True
            self.b.screenshot("task-new")
        form_values = {"zone": ZONE}
        form_values.update(values)
        if recurring:
            form_values["recurring"] = True
        target_kind = form_values.pop("target-kind", None)
        agent_id = form_values.pop("agent-id", None)
        if target_kind:
            self.b.fill("create-task", {"target-kind": target_kind})
        if agent_id:
            wait_until("the agent in the target list", lambda: self.b.js(
                "return [...document.querySelectorAll('select[name=\"agent-id\"] option')].some((o) => o.value === arguments[0]);", agent_id))
            self.b.fill("create-task", {"agent-id": agent_id})
        if recurring:
            self.b.fill("create-task", {"recurring": True})
            form_values.pop("recurring")
            form_values.update(recurring)
        self.b.fill("create-task", form_values)
        for name in credentials:
            wait_until(f"credential {name} in the form", lambda: self.b.js(
                "return [...document.querySelectorAll('select[name=\"credentials\"] option')].some((o) => o.value === arguments[0]);", name))
            self.b.js("""const o = [...document.querySelectorAll('select[name="credentials"] option')].find((o) => o.value === arguments[0]);
                o.selected = true;""", name)
        self.b.submit("create-task")
        def opened():
            error = self.b.form_error("create-task")
            if error:
                raise SystemExit(f"the task was refused: {error}")
            m = re.match(r"#/tasks/([0-9a-f-]{36})$", self.b.js("return location.hash;"))
            return m.group(1) if m else None
        try:
            task_id = wait_until("the new task's page", opened)
        except SystemExit as error:
            raise Failure(str(error))
        self.b.wait_rendered("task")
        return task_id

    def open_first_run(self, task_id):
        run_id = wait_until("a run in the task's runs", lambda: self.b.js(
            "const r = document.querySelector('[data-part=\"task-runs\"] tr[data-run]'); return r && r.dataset.run;"))
        # The link's target, read at once (the runs table is redrawn live as the run moves on).
        href = wait_until("the run's link", lambda: self.b.js(
            "const a = document.querySelector(`[data-part=\"task-runs\"] tr[data-run=\"${arguments[0]}\"] a[href^=\"#/runs/\"]`);"
            "return a && a.getAttribute('href');", run_id))
        if href != f"#/runs/{run_id}":
            raise Failure(f"the run's link leads to {href!r}")
        self.b.goto(href, "run")
        return run_id

    def run_log(self):
        return self.b.js("const l = document.querySelector('pre[data-part=\"run-log\"]'); return l ? l.textContent : '';") or ""

    def run_status(self):
        return self.b.js("const s = document.querySelector('[data-part=\"run-status\"]'); return s ? s.dataset.status : null;")

    def step_task_live_log(self):
        """A task on the first agent; its output appears on the run page while it runs."""
        go = os.path.join(self.tmp, "go-" + self.mark)
        script = (f'echo "first line {self.mark}"\n'
                  f'i=0; while [ ! -e "{go}" ] && [ $i -lt 3000 ]; do sleep 0.1; i=$((i+1)); done\n'
                  f'echo "second line {self.mark}"\n')
        try:
            self.live_log_flow(script, go)
        finally:
            with open(go, "w"):  # the script ends in any case
                pass

    def live_log_flow(self, script, go):
        task_id = self.create_task({"name": "live-log", "target-kind": "agent", "agent-id": self.agents[0].id,
                                    "step-script": script})
        self.b.screenshot("task")
        self.open_first_run(task_id)
        self.set_reload_mark()
        wait_until("the first line in the live log", lambda: f"first line {self.mark}" in self.run_log())
        if f"second line {self.mark}" in self.run_log():
            raise Failure("the second line is there before the script was let go")
        wait_until("the run shown running", lambda: self.run_status() == "running")
        self.b.screenshot("run-live")
        with open(go, "w"):
            pass
        wait_until("the second line in the live log", lambda: f"second line {self.mark}" in self.run_log())
        wait_until("the run shown succeeded", lambda: self.run_status() == "succeeded")
        wait_until("the log marked finished", lambda: self.b.js(
            "return document.querySelector('pre[data-part=\"run-log\"]').dataset.state;") == "ended")
        self.assert_no_reload()
        self.b.screenshot("run-succeeded")
        self.b.goto("#/runs", "runs", shot="runs")
        if not self.b.q("tr[data-run]"):
            raise Failure("the runs list shows no run")

    def step_cron(self):
        """A recurring task shows its next fire times (those of the API), pause and resume."""
        task_id = self.create_task({"name": "yearly", "target-kind": "any", "step-script": "echo yearly"},
                                   recurring={"cron": "0 0 1 1 *", "time-zone": "UTC"})
        shown = lambda: self.b.js("""return [...document.querySelectorAll('[data-part="next-fire-times"] li[data-at]')]
            .map((li) => Number(li.dataset.at));""")
        times = wait_until("the next fire times", shown)
        task = self.api("GET", f"/api/v1/tasks/{task_id}")
        if times != task["schedule"]["nextFireTimes"]:
            raise Failure(f"the page shows fire times {times}, the API {task['schedule']['nextFireTimes']}")
        year = time.gmtime().tm_year
        first = time.gmtime(times[0] / 1000)
        if (first.tm_year, first.tm_mon, first.tm_mday, first.tm_hour, first.tm_min) != (year + 1, 1, 1, 0, 0):
            raise Failure(f"the first fire time is {time.strftime('%Y-%m-%d %H:%M', first)} UTC, want {year + 1}-01-01 00:00")
        self.b.screenshot("task-recurring")
        self.b.action("pause-task")
        wait_until("no fire time while paused", lambda: not shown() and self.b.q('[data-action="resume-task"]'))
        self.b.action("resume-task")
        wait_until("the fire times back after resuming", lambda: shown() == times)
        # Run now: a run appears on the page at once; the schedule does not move.
        self.b.action("run-now")
        wait_until("the run started now on the page", lambda: self.b.q('[data-part="task-runs"] tr[data-run]'))
        task = self.api("GET", f"/api/v1/tasks/{task_id}")
        if len(task["runs"]) != 1 or task["schedule"]["nextFireTimes"] != times:
            raise Failure(f"after run now: {len(task['runs'])} runs, fire times {task['schedule']['nextFireTimes']} (were {times})")
        self.b.screenshot("task-run-now")
        self.b.goto("#/tasks", "tasks", shot="tasks")
        wait_until("the recurring task in the list", lambda: self.b.q(f'tr[data-task="{task_id}"][data-recurring="true"]'))

    def step_credential_masked(self):
        """A credential created in the console; a task using it shows it masked in its log."""
        value = "s3cr3t-" + secrets.token_hex(12)
        self.b.goto("#/credentials", "credentials")
        self.b.fill("create-credential", {"name": "DB_PASSWORD", "zone": ZONE, "description": "browser suite", "value": value})
        self.b.submit("create-credential")
        wait_until("the credential in the list", lambda: self.b.q('tr[data-name="DB_PASSWORD"]'))
        if value in self.b.js("return document.documentElement.outerHTML;"):
            raise Failure("the credential's value is in the page after it was stored")
        self.b.screenshot("credentials")
        self.create_task({"name": "uses-credential", "target-kind": "agent", "agent-id": self.agents[0].id,
                          "step-script": 'echo "the password is $KLEVR_CRED_DB_PASSWORD."'}, credentials=["DB_PASSWORD"])
        self.open_first_run(None)
        wait_until("the run's log", lambda: "the password is" in self.run_log())
        wait_until("the run shown succeeded", lambda: self.run_status() == "succeeded")
        log = self.run_log()
        if value in log or value in self.b.js("return document.documentElement.outerHTML;"):
            raise Failure(f"the credential's value is shown in the run page: {log!r}")
        if "the password is ********." not in log:
            raise Failure(f"the log does not show the value masked: {log!r}")
        self.b.screenshot("run-masked")

    def step_webhook(self):
        """A webhook to the suite's own receiver: a delivery attempt shows on its page."""
        self.b.goto("#/webhooks", "webhooks")
        self.b.fill("create-webhook", {"url": self.receiver.url, "description": "browser suite receiver"})
        self.b.submit("create-webhook")
        secret = wait_until("the webhook's secret shown once", lambda: self.b.text('[data-value="webhook-secret"]'))
        if not secret.startswith("whsec_"):
            raise Failure(f"the secret shown is not a whsec_ secret: {secret!r}")
        self.b.screenshot("webhooks")
        webhook_id = wait_until("the webhook in the list", lambda: self.b.js(
            "const r = document.querySelector('tr[data-webhook]'); return r && r.dataset.webhook;"))
        self.b.goto(f"#/webhooks/{webhook_id}", "webhook")
        # Something happens: a zone is created and deleted (zone.created, zone.deleted).
        self.api("POST", "/api/v1/zones", {"name": "hooked"})
        self.api("DELETE", "/api/v1/zones/hooked")
        wait_until("the receiver to get a delivery", lambda: self.receiver.received(), timeout=90)
        headers = {k.lower() for k in self.receiver.received()[0]["headers"]}
        if not {"webhook-id", "webhook-signature", "webhook-timestamp"} <= headers:
            raise Failure(f"the delivery lacks the Standard Webhooks headers: {sorted(headers)}")
        wait_until("a delivery attempt answered 204 on the webhook's page",
                   lambda: self.b.q('tr[data-delivery] li.attempt [data-code="204"]'), timeout=90)
        self.b.screenshot("webhook")

    def step_cancel_run(self):
        """A long run is canceled from its page."""
        self.create_task({"name": "long", "target-kind": "agent", "agent-id": self.agents[0].id,
                          "step-script": f'echo "long run {self.mark}"; sleep 600'})
        self.open_first_run(None)
        wait_until("the long run's output", lambda: f"long run {self.mark}" in self.run_log())
        wait_until("the run shown running", lambda: self.run_status() == "running")
        run_page = self.b.js("return location.hash;")
        # The overview while it runs: zones, agents, the run in progress, recent events.
        self.b.goto("#/", "overview")
        wait_until("the run in progress on the overview", lambda: int(self.b.text('[data-stat="running"] b') or 0) >= 1)
        self.b.screenshot("overview")
        self.b.goto(run_page, "run")
        wait_until("the run shown running", lambda: self.run_status() == "running")
        self.set_reload_mark()
        self.b.action("cancel-run", confirms=True)
        wait_until("the run shown canceled", lambda: self.run_status() == "canceled", timeout=90)
        self.assert_no_reload()
        if self.b.q('[data-action="cancel-run"]'):
            raise Failure("a canceled run still offers Cancel")
        self.b.screenshot("run-canceled")

    # --- admin pages ------------------------------------------------------------------------------
    def step_users_tokens(self):
        """Users (a viewer is created here for the viewer step), tokens, events and the audit log."""
        self.b.goto("#/users", "users")
        self.state["viewer_password"] = "viewer-pass-" + secrets.token_hex(6)
        self.b.fill("create-user", {"username": "viewer1", "role": "viewer", "password": self.state["viewer_password"]})
        self.b.submit("create-user")
        wait_until("the viewer in the users list", lambda: self.b.q('tr[data-user="viewer1"][data-role="viewer"]'))
        self.b.screenshot("users")
        self.b.goto("#/tokens", "tokens")
        self.b.fill("create-token", {"name": "browser-suite"})
        self.b.submit("create-token")
        token = wait_until("the token shown once", lambda: self.b.text('[data-value="api-token"]'))
        status, _, _ = http("GET", self.manager.url + "/api/v1/zones", headers={"Authorization": f"Bearer {token}"})
        if status != 200:
            raise Failure(f"the token shown does not work: GET /api/v1/zones answered {status}")
        self.b.screenshot("tokens")
        self.b.goto("#/events", "events")
        wait_until("events in the list", lambda: self.b.q("tr[data-event]"))
        self.b.screenshot("events")
        self.b.goto("#/audit", "audit")
        wait_until("entries in the audit log", lambda: self.b.q("tr[data-event]"))
        self.b.screenshot("audit")

    # --- the viewer -------------------------------------------------------------------------------
    # Buttons and forms that change nothing (filters, paging, live toggles): a viewer may see them.
    READ_ONLY_ACTIONS = {"older", "live", "clear-filters", "load-more", "tab-form", "tab-yaml"}
    # What a viewer may change: their own API tokens and password.
    VIEWER_WRITES = {"create-token", "revoke-token", "password"}

    def write_controls(self):
        return self.b.js("""
            const main = document.getElementById('main');
            const actions = [...main.querySelectorAll('[data-action]')].filter((e) => e.offsetParent !== null)
              .map((e) => e.dataset.action);
            const forms = [...main.querySelectorAll('form[data-form]')].filter((e) => e.offsetParent !== null)
              .map((e) => e.dataset.form);
            return { actions, forms };""")

    def step_viewer(self):
        """A viewer sees no write action on any page, and the API refuses a forced write (403)."""
        self.login("viewer1", self.state["viewer_password"])
        page = wait_until("the viewer logged in", lambda: self.b.js(
            "const r = document.querySelector('#main > .page'); return r && ['overview', 'password'].includes(r.dataset.page) && r.dataset.page;"))
        if page == "password":
            new = "viewer-new-" + secrets.token_hex(6)
            self.b.wait_rendered("password")
            self.b.fill("password", {"current": self.state["viewer_password"], "new": new, "again": new})
            self.b.submit("password")
            self.state["viewer_password"] = new
            self.b.wait_rendered("overview")
        if "viewer" not in (self.b.text("#who") or ""):
            raise Failure(f"the header does not say the viewer's role: {self.b.text('#who')!r}")
        if self.b.js("return !document.querySelector('#nav a[data-nav=\"users\"]').hidden;"):
            raise Failure("the Users link is shown to a viewer")
        task_id = self.api("GET", "/api/v1/tasks", None)["items"][0]["id"]
        run_id = self.api("GET", "/api/v1/runs", None)["items"][0]["id"]
        webhooks_visible = None
        pages = [("#/", "overview"), ("#/zones", "zones"), (f"#/zones/{ZONE}", "zone"), ("#/agents", "agents"),
                 (f"#/agents/{self.agents[-1].id}", "agent"), ("#/tasks", "tasks"), ("#/tasks/new", "task-new"),
                 (f"#/tasks/{task_id}", "task"), ("#/runs", "runs"), (f"#/runs/{run_id}", "run"),
                 ("#/credentials", "credentials"), ("#/webhooks", "webhooks"), ("#/events", "events"),
                 ("#/audit", "audit"), ("#/tokens", "tokens")]
        offending = []
        for route, page in pages:
            self.b.goto(route, page, shot=f"viewer-{page}")
            controls = self.write_controls()
            writes = [f"action {a}" for a in controls["actions"] if a not in self.READ_ONLY_ACTIONS | self.VIEWER_WRITES]
            writes += [f"form {f}" for f in controls["forms"] if not f.endswith("-filters") and f not in self.VIEWER_WRITES]
            if writes:
                offending.append(f"{route}: {', '.join(sorted(set(writes)))}")
        if offending:
            raise Failure("write actions shown to a viewer:\n  " + "\n  ".join(offending))
        # Forced: the viewer's own session, with its CSRF token, still may not write.
        self.expect_network(r"/api/v1/(zones|tasks|runs/[0-9a-f-]+/cancel|credentials)$", 403)
        for method, path, body in [
            ("POST", "/api/v1/zones", {"name": "by-viewer"}),
            ("POST", "/api/v1/tasks", {"zone": ZONE, "target": {"kind": "any"}, "steps": [{"script": "echo no"}]}),
            ("POST", f"/api/v1/runs/{run_id}/cancel", {}),
            ("POST", "/api/v1/credentials", {"name": "BY_VIEWER", "value": "nope-nope"}),
        ]:
            answer = self.page_fetch(method, path, body)
            if answer["status"] != 403:
                raise Failure(f"the viewer's {method} {path} answered {answer['status']}: {answer['body']}")
        self.b.click(self.b.one("#logout"))
        self.b.wait_rendered("login")

    def step_failover(self):
        """SIGKILL of the primary: the map shows the new primary and a higher epoch without a reload."""
        self.b.goto(f"#/zones/{ZONE}", "zone")
        self.set_reload_mark()
        before = wait_until("a primary on the map", lambda: (lambda s: s if s and s["primary"] else None)(self.map_state()))
        victim = next(a for a in self.agents if a.id == before["primary"])
        print(f"   killing primary {victim.name} ({victim.id}) at epoch {before['epoch']}", flush=True)
        victim.kill9()
        self.state["killed"] = victim.name
        def new_primary():
            state = self.map_state()
            return state and state["primary"] and state["primary"] != victim.id and state["epoch"] > before["epoch"] and any(
                n["role"] == "primary" and n["agent"] == state["primary"] and n["status"] == "online" for n in state["nodes"])
        after = wait_until("the map to show a new primary with a higher epoch", new_primary, timeout=120)
        state = self.map_state()
        print(f"   new primary {state['primary']} at epoch {state['epoch']}", flush=True)
        # The dead one is shown offline (missed heartbeats: 3 heartbeats of 5 s), with its reason.
        wait_until("the killed agent shown offline on the map", lambda: any(
            n["agent"] == victim.id and n["status"] == "offline" for n in self.map_state()["nodes"]), timeout=120)
        reason = self.b.js("const n = document.querySelector(`[data-part=\"zone-map\"] [data-agent=\"${arguments[0]}\"]`); return n && n.textContent;", victim.id)
        if "reason:" not in (reason or ""):
            raise Failure(f"the offline agent's node gives no reason: {reason!r}")
        self.assert_no_reload()
        self.b.screenshot("zone-map-failover")
        return after

    def step_csrf(self):
        """Done-when 3: a state-changing request without the CSRF token is refused (403); the same with
        the token goes through (so the 403 was the missing token)."""
        self.expect_network(r"/api/v1/zones(/[a-z0-9-]+)?$", 403)
        refused = self.page_fetch("POST", "/api/v1/zones", {"name": "csrf-less"}, csrf=False)
        if refused["status"] != 403:
            raise Failure(f"a POST without X-Klevr-CSRF answered {refused['status']}: {refused['body']}")
        refused = self.page_fetch("DELETE", f"/api/v1/zones/{ZONE}", None, csrf=False)
        if refused["status"] != 403:
            raise Failure(f"a DELETE without X-Klevr-CSRF answered {refused['status']}: {refused['body']}")
        accepted = self.page_fetch("POST", "/api/v1/zones", {"name": "csrf-ok"}, csrf=True)
        if accepted["status"] != 201:
            raise Failure(f"the same POST with the token answered {accepted['status']}: {accepted['body']}")
        self.api("DELETE", "/api/v1/zones/csrf-ok")

    def step_csp_enforced(self):
        """The browser enforces the policy: an injected inline script does not run, and the violation
        shows in the page's log (which every other step requires to be free of errors)."""
        ran = self.b.js_async("""
            window.__inlineRan = false;
            const violation = new Promise((resolve) => document.addEventListener('securitypolicyviolation',
              (e) => resolve(e.violatedDirective), { once: true }));
            const s = document.createElement('script');
            s.textContent = 'window.__inlineRan = true;';
            document.body.append(s);
            const directive = await violation;
            s.remove();
            return { ran: window.__inlineRan, directive };""")
        if ran["ran"] or not ran["directive"].startswith("script-src"):
            raise Failure(f"an inline script was not blocked by the CSP: {ran}")
        def violation_logged():
            self.b.drain_logs()
            return [e for e in self.b.unchecked if "Content Security Policy" in e.get("message", "")]
        logged = wait_until("the violation in the page log", violation_logged)
        # That one was provoked: it is not a finding (any other entry still is).
        self.b.unchecked = [e for e in self.b.unchecked if e not in logged]

    def step_origins(self):
        """Done-when 3: nothing was requested from anywhere but the manager (the page's Resource
        Timing entries and Chrome's network log of the whole session)."""
        self.b.drain_logs()
        origin = self.manager.url
        entries = self.b.js("return performance.getEntriesByType('resource').map((e) => e.name);")
        foreign = [u for u in entries if not u.startswith(origin + "/")]
        foreign += [f"{step}: {u}" for step, u in self.b.requests
                    if not u.startswith(origin + "/") and not u.startswith("data:")]
        if foreign:
            raise Failure("requests to elsewhere than the manager:\n  " + "\n  ".join(sorted(set(foreign))))
        if len(self.b.requests) < 10:
            raise Failure(f"the network log holds only {len(self.b.requests)} requests: it is not being recorded")
        print(f"   {len(self.b.requests)} requests, all to {origin}", flush=True)

    def step_logout(self):
        self.b.goto("#/", "overview")
        # A refresh of the page in flight when the session ends is answered 401, as it should be.
        self.expect_network(r"/api/v1/", 401)
        self.b.click(self.b.one("#logout"))
        self.b.wait_rendered("login")
        answer = self.page_fetch("GET", "/api/v1/zones", None, csrf=False)
        if answer["status"] != 401:
            raise Failure(f"after logging out the API answered {answer['status']}")
        self.b.js("window.location.hash = '#/zones';")
        self.b.wait_rendered("login")
        if self.b.js("return !document.getElementById('top').hidden;"):
            raise Failure("the navigation is shown to a visitor who is logged out")

    def step_layout(self):
        """No page visited was wider than the screen at either size (no sideways scrolling; wide
        tables scroll inside their own box), and every form control of every page has a label."""
        if self.b.unlabeled:
            raise Failure("form controls without a label:\n  " + "\n  ".join(f"{r}: {c}" for r, c in sorted(self.b.unlabeled)))
        if self.b.overflows:
            raise Failure("pages wider than the screen:\n  " + "\n  ".join(
                f"{name} at {size}: {o['scrollWidth']} px wide; {', '.join(o['culprits']) or '?'}"
                for name, size, o in self.b.overflows))

    # ============================================================================================
    def run(self):
        s = self.run_step
        s("js-syntax", self.step_js_syntax)
        s("csp-header", self.step_csp_header)
        s("login-refused", self.step_login_refused)
        s("login", self.step_login_forced_change)
        s("zone-and-key", self.step_zone_and_key, needs=["login"])
        s("agent-online", self.step_agent_online, needs=["zone-and-key"])
        s("more-agents", self.step_more_agents, needs=["agent-online"])
        s("agents-pages", self.step_agents_pages, needs=["agent-online"])
        s("task-live-log", self.step_task_live_log, needs=["agent-online"])
        s("cron", self.step_cron, needs=["login", "agent-online"])
        s("credential-masked", self.step_credential_masked, needs=["agent-online"])
        s("webhook", self.step_webhook, needs=["login"])
        s("cancel-run", self.step_cancel_run, needs=["agent-online"])
        s("users-tokens-logs", self.step_users_tokens, needs=["login"])
        s("failover", self.step_failover, needs=["more-agents"])
        s("csrf", self.step_csrf, needs=["login"])
        s("csp-enforced", self.step_csp_enforced, needs=["login"])
        s("origins", self.step_origins, needs=["login"])
        s("logout", self.step_logout, needs=["login"])
        s("viewer", self.step_viewer, needs=["users-tokens-logs"])
        s("layout", self.step_layout, needs=["login"])
        if not self.manager.alive():
            self.results.append(("manager", "FAILED", "the manager died:\n" + self.manager.tail()))


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--bin", required=True, help="the klevr binary under test")
    parser.add_argument("--shots", required=True, help="directory for the screenshots")
    parser.add_argument("--tmp", help="temp dir to use (default: a new one, removed at the end)")
    parser.add_argument("--only", type=lambda s: set(s.split(",")), help="run only these steps (comma-separated)")
    parser.add_argument("--keep", action="store_true", help="keep the temp dir (logs, agent state)")
    args = parser.parse_args()

    suite = Suite(args)
    # SIGTERM (the script's trap, a CI timeout) ends the suite through the same clean-up.
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(143))
    started = time.monotonic()
    try:
        suite.start()
        suite.run()
    except BaseException as error:  # noqa: BLE001
        detail = "".join(traceback.format_exception(error))
        print(f"-- suite: FAILED\n{detail}", flush=True)
        suite.results.append(("suite", "FAILED", detail))
    finally:
        failures = [r for r in suite.results if r[1] != "ok"]
        if failures and suite.manager:
            print("== console: manager log (last lines):\n" + suite.manager.tail(), flush=True)
            for agent in suite.agents:
                print(f"== console: {agent.name} log (last lines):\n{agent.tail(15)}", flush=True)
        suite.close()
    print(f"\n== console: {len(suite.results)} steps in {time.monotonic() - started:.0f}s")
    for name, status, detail in suite.results:
        first = detail.strip().splitlines()[0] if detail.strip() else ""
        print(f"   {status:8} {name}  {first}")
    shots = suite.browser.shots if suite.browser else []
    print(f"== console: {len(shots)} screenshots in {os.path.abspath(args.shots)}")
    return 1 if any(r[1] != "ok" for r in suite.results) else 0


if __name__ == "__main__":
    sys.exit(main())
