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
import json
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
from urllib.parse import urlsplit

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from harness import WAIT, Agent, Browser, Failure, Manager, Receiver, http, wait_until  # noqa: E402

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

    def console_problems(self):
        if not self.browser:
            return []
        problems = []
        for entry in self.browser.drain_logs():
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
        # The console answers 401 to the session probe of a visitor who is not logged in yet.
        self.expect_network(r"/api/v1/auth/session$", 401)

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
        """The API as the admin, from the page (session cookie + CSRF); fails on a non-2xx answer."""
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
        logged = wait_until("the violation in the page log", lambda: [
            e for e in self.b.drain_logs() if "Content Security Policy" in e.get("message", "")])
        if not logged:
            raise Failure("the CSP violation did not reach the page log")

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
        self.b.click(self.b.one("#logout"))
        self.b.wait_rendered("login")
        self.expect_network(r"/api/v1/(auth/session|zones)$", 401)
        answer = self.page_fetch("GET", "/api/v1/zones", None, csrf=False)
        if answer["status"] != 401:
            raise Failure(f"after logging out the API answered {answer['status']}")
        self.b.js("window.location.hash = '#/zones';")
        self.b.wait_rendered("login")
        if self.b.js("return !document.getElementById('top').hidden;"):
            raise Failure("the navigation is shown to a visitor who is logged out")

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
        s("failover", self.step_failover, needs=["more-agents"])
        s("csrf", self.step_csrf, needs=["login"])
        s("csp-enforced", self.step_csp_enforced, needs=["login"])
        s("origins", self.step_origins, needs=["login"])
        s("logout", self.step_logout, needs=["login"])
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
