"""The browser suite's machinery: a real manager and real agent processes on loopback, a local webhook
receiver, headless Chromium through selenium, screenshots at two sizes, and the page's own logs.

Every wait is a condition polled until a generous deadline (a loaded 2-core CI machine is slow, never
a reason to fail); nothing sleeps to synchronise. Everything started here is stopped by `close()`, by
its process id (agents run in their own process group, so the scripts of their runs go with them).
"""
import base64
import http.server as http_server
import json
import os
import re
import shlex
import signal
import socket
import subprocess
import threading
import time
import urllib.error
import urllib.request

from selenium import webdriver
from selenium.common.exceptions import StaleElementReferenceException, WebDriverException
from selenium.webdriver.chrome.service import Service
from selenium.webdriver.common.by import By
from selenium.webdriver.support.ui import Select

# Deadlines (seconds). Generous on purpose: they bound a hang, they do not measure speed.
WAIT = float(os.environ.get("KLEVR_CONSOLE_WAIT", "60"))
START_WAIT = 90.0

SIZES = {"1280x800": (1280, 800, False), "390x844": (390, 844, True)}


class Failure(Exception):
    """A check of the suite that did not hold."""


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def wait_until(what, condition, timeout=WAIT, interval=0.2):
    """Polls `condition()` until it returns something truthy (returned) or the deadline passes."""
    deadline = time.monotonic() + timeout
    last_error = None
    while True:
        try:
            value = condition()
            if value:
                return value
        except (StaleElementReferenceException, Failure) as error:
            last_error = error
        if time.monotonic() >= deadline:
            raise Failure(f"timed out after {timeout:.0f}s waiting for {what}" + (f" (last: {last_error})" if last_error else ""))
        time.sleep(interval)  # the polling interval of a condition, not a synchronisation


# Loopback only: never through a proxy from the environment.
_opener = urllib.request.build_opener(urllib.request.ProxyHandler({}))


def http(method, url, body=None, headers=None, timeout=30):
    """One HTTP request; returns (status, headers, body bytes) without raising on 4xx/5xx."""
    data = json.dumps(body).encode() if body is not None else None
    request = urllib.request.Request(url, data=data, method=method, headers=dict(headers or {}))
    if data is not None:
        request.add_header("Content-Type", "application/json")
    try:
        with _opener.open(request, timeout=timeout) as response:
            return response.status, response.headers, response.read()
    except urllib.error.HTTPError as error:
        return error.code, error.headers, error.read()


class Manager:
    """`klevr manager` on a free loopback port, SQLite in a temp dir, no --admin-password: the first
    admin's password is generated and read from the manager's output."""

    def __init__(self, binary, directory):
        self.binary = binary
        self.directory = directory
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.log_path = os.path.join(directory, "manager.log")
        os.makedirs(directory, exist_ok=True)
        self.log = open(self.log_path, "wb")
        self.process = subprocess.Popen(
            [binary, "manager", "--data-dir", os.path.join(directory, "data"), "--listen", f"127.0.0.1:{self.port}"],
            stdout=self.log, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL, start_new_session=True)
        wait_until("the manager to answer /readyz", lambda: self._ready(), timeout=START_WAIT)
        self.admin_password = wait_until("the generated admin password in the manager's output", self._password, timeout=START_WAIT)

    def _ready(self):
        if self.process.poll() is not None:
            raise SystemExit(f"the manager exited ({self.process.returncode}):\n{self.tail()}")
        try:
            return http("GET", self.url + "/readyz", timeout=5)[0] == 200
        except OSError:
            return False

    def _password(self):
        with open(self.log_path, "rb") as f:
            match = re.search(rb"created user 'admin' with password (\S+)", f.read())
        return match.group(1).decode() if match else None

    def tail(self, lines=60):
        try:
            with open(self.log_path, "rb") as f:
                return b"\n".join(f.read().splitlines()[-lines:]).decode(errors="replace")
        except OSError:
            return ""

    def alive(self):
        return self.process.poll() is None

    def stop(self):
        stop_process(self.process)
        self.log.close()


def stop_process(process, grace=10):
    """SIGTERM to the process group the process leads, then SIGKILL after `grace` seconds."""
    if process is None:
        return
    if process.poll() is None:
        try:
            os.killpg(process.pid, signal.SIGTERM)
        except ProcessLookupError:
            pass
        try:
            process.wait(timeout=grace)
        except subprocess.TimeoutExpired:
            pass
    try:
        os.killpg(process.pid, signal.SIGKILL)  # whatever the group still holds (a run's script)
    except (ProcessLookupError, PermissionError):
        pass
    try:
        process.wait(timeout=grace)
    except subprocess.TimeoutExpired:
        pass


class Agent:
    """A real agent process started from the command the console shows (`KLEVR_ENROLL_KEY=… klevr agent
    run --manager … --zone …`), with `klevr` replaced by the binary under test and the flags a test
    needs appended."""

    def __init__(self, binary, shown_command, directory, name, peers=()):
        words = shlex.split(shown_command)
        env = dict(os.environ)
        while words and re.match(r"^[A-Z_][A-Z0-9_]*=", words[0]):
            key, _, value = words.pop(0).partition("=")
            env[key] = value
        if words[:3] != ["klevr", "agent", "run"]:
            raise Failure(f"the agent command shown is not `klevr agent run …`: {shown_command!r}")
        if "KLEVR_ENROLL_KEY" not in env:
            raise Failure(f"the agent command shown carries no KLEVR_ENROLL_KEY: {shown_command!r}")
        self.name = name
        self.port = free_port()
        self.address = f"127.0.0.1:{self.port}"
        self.state_dir = os.path.join(directory, name, "state")
        os.makedirs(os.path.join(directory, name, "work"), exist_ok=True)
        self.argv = [binary] + words[1:] + [
            "--state-dir", self.state_dir,
            "--work-dir", os.path.join(directory, name, "work"),
            "--listen", self.address,
        ]
        for peer in peers:
            self.argv += ["--peer", peer]
        self.log_path = os.path.join(directory, name, "agent.log")
        self.log = open(self.log_path, "wb")
        self.process = subprocess.Popen(self.argv, env=env, stdout=self.log, stderr=subprocess.STDOUT,
                                        stdin=subprocess.DEVNULL, start_new_session=True)
        self.id = None

    def identity(self):
        """The agent's id, once it enrolled (its identity file)."""
        if self.id:
            return self.id
        if self.process.poll() is not None:
            raise SystemExit(f"agent {self.name} exited ({self.process.returncode}):\n{self.tail()}")
        path = os.path.join(self.state_dir, "identity.json")
        try:
            with open(path) as f:
                data = json.load(f)
        except (OSError, ValueError):
            return None
        self.id = data.get("agentId") or data.get("id")
        return self.id

    def tail(self, lines=40):
        try:
            with open(self.log_path, "rb") as f:
                return b"\n".join(f.read().splitlines()[-lines:]).decode(errors="replace")
        except OSError:
            return ""

    def kill9(self):
        """SIGKILL of the agent process alone (as a crash would be)."""
        os.kill(self.process.pid, signal.SIGKILL)
        self.process.wait(timeout=30)

    def stop(self):
        stop_process(self.process)
        self.log.close()


class Receiver:
    """A webhook receiver on loopback: records every request, answers 204."""

    def __init__(self):
        self.requests = []
        self.lock = threading.Lock()
        receiver = self

        class Handler(http_server.BaseHTTPRequestHandler):
            def do_POST(self):  # noqa: N802 (http.server's naming)
                length = int(self.headers.get("Content-Length") or 0)
                body = self.rfile.read(length)
                with receiver.lock:
                    receiver.requests.append({"path": self.path, "headers": dict(self.headers), "body": body})
                self.send_response(204)
                self.end_headers()

            def log_message(self, *args):
                pass

        self.server = http_server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.port = self.server.server_address[1]
        self.url = f"http://127.0.0.1:{self.port}/hook"
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self.thread.start()

    def received(self):
        with self.lock:
            return list(self.requests)

    def stop(self):
        self.server.shutdown()
        self.server.server_close()


FOCUS_HOOK = """
document.addEventListener('focusin', (e) => {
  if (e.target && e.target.id === 'main') window.__klevrRendered = document.querySelector('#main > .page');
}, true);
"""


class Browser:
    """Headless Chromium with the console open. Collects the page's console log and every network
    request (Chrome's performance log) as it goes; saves screenshots of every page at both sizes."""

    def __init__(self, origin, shots_dir):
        self.origin = origin
        self.shots_dir = shots_dir
        os.makedirs(shots_dir, exist_ok=True)
        options = webdriver.ChromeOptions()
        options.binary_location = os.environ.get("KLEVR_CHROMIUM", "/usr/bin/chromium")
        for arg in [
            "--headless=new", "--window-size=1280,800", "--disable-gpu", "--disable-dev-shm-usage",
            "--no-first-run", "--no-default-browser-check", "--disable-background-networking",
            "--disable-component-update", "--disable-sync", "--disable-default-apps", "--disable-extensions",
            "--disable-domain-reliability", "--disable-client-side-phishing-detection", "--no-proxy-server",
            "--disable-features=Translate,OptimizationHints,MediaRouter,AutofillServerCommunication",
            "--hide-scrollbars", "--force-color-profile=srgb", "--lang=en-US",
        ]:
            options.add_argument(arg)
        if os.geteuid() == 0:
            options.add_argument("--no-sandbox")
        options.set_capability("goog:loggingPrefs", {"browser": "ALL", "performance": "ALL"})
        service = Service(os.environ.get("KLEVR_CHROMEDRIVER", "/usr/bin/chromedriver"))
        self.driver = webdriver.Chrome(options=options, service=service)
        self.driver.set_script_timeout(WAIT)
        self.driver.execute_cdp_cmd("Network.enable", {})
        # The shell focuses <main> when a page's render() is done: remember which page root was current
        # then, so that a later loss of focus (a click, a live refresh) does not hide that it rendered.
        self.driver.execute_cdp_cmd("Page.addScriptToEvaluateOnNewDocument", {"source": FOCUS_HOOK})
        self.set_size("1280x800")
        self.console_entries = []   # every browser log entry seen (with the step it came in)
        self.unchecked = []         # those the suite has not judged yet
        self.requests = []          # every URL the page requested
        self.pending = {}           # requests not finished yet (id → URL), for diagnosis
        self.shots = []
        self.overflows = []         # (shot, size, what overflows): pages wider than the screen
        self.unlabeled = set()      # (route, control): form controls without a label
        self.step = "start"

    # --- logs -------------------------------------------------------------------------------------
    def drain_logs(self):
        """Moves the browser's console log and network requests into the suite's lists; returns the
        new console entries."""
        new = []
        for entry in self.driver.get_log("browser"):
            entry["step"] = self.step
            new.append(entry)
        self.console_entries.extend(new)
        self.unchecked.extend(new)
        for entry in self.driver.get_log("performance"):
            try:
                message = json.loads(entry["message"])["message"]
            except (KeyError, ValueError):
                continue
            method = message.get("method")
            params = message.get("params", {})
            if method == "Network.requestWillBeSent":
                url = params["request"]["url"]
                self.requests.append((self.step, url))
                self.pending[params.get("requestId")] = url
            elif method in ("Network.loadingFinished", "Network.loadingFailed"):
                self.pending.pop(params.get("requestId"), None)
        return new

    # --- navigation and waiting -------------------------------------------------------------------
    def js(self, script, *args):
        return self.driver.execute_script(script, *args)

    def js_async(self, script, *args):
        """Runs an async function body (`arguments` as usual); resolves with its return value."""
        wrapped = ("const done = arguments[arguments.length - 1];"
                   "(async (...args) => { " + script + " })(...Array.from(arguments).slice(0, -1))"
                   ".then((v) => done({ ok: v }), (e) => done({ error: String(e && e.stack || e) }));")
        answer = self.driver.execute_async_script(wrapped, *args)
        if answer is None or "error" in answer:
            raise Failure(f"script failed: {answer}")
        return answer.get("ok")

    def open_console(self):
        self.driver.get(self.origin + "/console/")

    def goto(self, route, page, shot=None):
        """Opens `#route` and waits until page `page` has rendered (the shell focuses <main> once the
        page's render() is done); fails if the page shows its error. Saves screenshots under `shot`."""
        self.js("if (document.activeElement) document.activeElement.blur();")
        if self.js("return window.location.hash;") == route:
            self.driver.refresh()  # the same route again: hash assignment would not render it anew
        elif self.driver.current_url.startswith(self.origin + "/console/"):
            self.js("window.location.hash = arguments[0];", route)
        else:
            self.driver.get(self.origin + "/console/" + route)
        self.wait_rendered(page)
        # Every form control has a label (a <label for>, a wrapping <label>, or an aria-label).
        for control in self.js("""
            return [...document.querySelectorAll('#main input, #main select, #main textarea')]
              .filter((el) => el.type !== 'hidden' && !(el.labels && el.labels.length)
                && !el.getAttribute('aria-label') && !el.getAttribute('aria-labelledby'))
              .map((el) => `${el.tagName.toLowerCase()}[name=${el.name || '?'}]`);"""):
            self.unlabeled.add((route.split("?")[0], control))
        if shot:
            self.screenshot(shot)

    def wait_rendered(self, page, timeout=WAIT):
        def rendered():
            state = self.js("""
                const root = document.querySelector('#main > .page');
                if (!root) return null;
                const error = root.querySelector(':scope > p.error');
                const a = document.activeElement;
                return { page: root.dataset.page, done: window.__klevrRendered === root || a === document.getElementById('main'),
                         error: error ? error.textContent : null,
                         focus: a ? `${a.tagName}#${a.id}.${a.className}` : 'none', hash: location.hash };""")
            self._last_render_state = state
            if state and state["page"] == page and state["error"]:
                raise SystemExit(f"page {page} shows an error: {state['error']}")
            return state and state["page"] == page and state["done"]
        self._last_render_state = None
        try:
            wait_until(f"page '{page}' to render", rendered, timeout=timeout)
        except Failure as error:
            self.drain_logs()
            raise Failure(f"{error}; the page: {self._last_render_state}; requests not finished: {sorted(self.pending.values())}")
        except SystemExit as error:
            raise Failure(str(error))

    def q(self, css, root=None):
        return (root or self.driver).find_elements(By.CSS_SELECTOR, css)

    def one(self, css, what=None, timeout=WAIT):
        """Waits until an element matching `css` is displayed; returns it."""
        def find():
            for el in self.q(css):
                if el.is_displayed():
                    return el
            return None
        return wait_until(what or f"element {css}", find, timeout=timeout)

    def text(self, css):
        return self.js("const el = document.querySelector(arguments[0]); return el ? el.textContent : null;", css)

    def fill(self, form_name, values):
        """Sets the named fields of form[data-form=form_name]: text inputs and textareas are typed into
        (cleared first), selects chosen by value, checkboxes set."""
        form = self.one(f'form[data-form="{form_name}"]')
        for name, value in values.items():
            fields = self.q(f'[name="{name}"]', form)
            if not fields:
                raise Failure(f'form "{form_name}" has no field named "{name}"')
            el = fields[0]
            tag = el.tag_name.lower()
            kind = (el.get_attribute("type") or "").lower()
            if tag == "select":
                Select(el).select_by_value(value)
            elif kind in ("checkbox", "radio"):
                if el.is_selected() != bool(value):
                    self.click(el)
            else:
                self.js("arguments[0].scrollIntoView({block: 'center'});", el)
                el.clear()
                el.send_keys(value)
        return form

    def submit(self, form_name):
        form = self.one(f'form[data-form="{form_name}"]')
        buttons = [b for b in self.q('button[type="submit"]', form) if b.is_displayed()]
        if not buttons:
            raise Failure(f'form "{form_name}" has no submit button')
        self.click(buttons[-1])
        return form

    def form_error(self, form_name):
        return self.js("""const f = document.querySelector(`form[data-form="${arguments[0]}"]`);
            const e = f && f.querySelector('p.error'); return e && !e.hidden ? e.textContent : null;""", form_name)

    def click(self, el):
        self.js("arguments[0].scrollIntoView({block: 'center'});", el)
        try:
            el.click()
        except WebDriverException:
            self.js("arguments[0].click();", el)

    def action(self, name, root_css="#main", confirms=False):
        """Clicks button[data-action=name]; one that `confirms` (asks "Really …?") is clicked twice. A
        live page may redraw the button: then the clicks start again on the new one."""
        def clicked():
            button = self.one(f'{root_css} [data-action="{name}"]')
            try:
                self.js("arguments[0].scrollIntoView({block: 'center'});", button)
                button.click()
            except StaleElementReferenceException:
                return False  # redrawn before the click: again with the new one
            if not confirms:
                return True
            try:
                if not self.js("return arguments[0].classList.contains('armed');", button):
                    raise AssertionError(f"{name} did not ask for a confirmation")
                button.click()
                return True
            except StaleElementReferenceException:
                return False  # redrawn while armed (unarmed again): both clicks anew
        wait_until(f"a click on {name}", clicked)

    # --- screenshots ------------------------------------------------------------------------------
    def set_size(self, size):
        width, height, mobile = SIZES[size]
        self.driver.execute_cdp_cmd("Emulation.setDeviceMetricsOverride", {
            "width": width, "height": height, "deviceScaleFactor": 1, "mobile": mobile})

    def settle(self):
        """Two animation frames: the layout of the current size is painted."""
        self.js_async("await new Promise((r) => requestAnimationFrame(() => requestAnimationFrame(r)));")

    def screenshot(self, name):
        """Saves `<name>-1280x800.png` and `<name>-390x844.png` (the viewport as a user sees it)."""
        for size in SIZES:
            self.set_size(size)
            self.js("window.scrollTo(0, 0);")
            self.settle()
            # Wider than the screen: the page scrolls sideways (what overflows is named).
            overflow = self.js("""
                const width = document.documentElement.clientWidth;
                if (document.documentElement.scrollWidth <= width + 1) return null;
                const culprits = [...document.querySelectorAll('#main *, header *')].filter((el) => {
                  const r = el.getBoundingClientRect();
                  return r.right > width + 1 && r.width > 0 && getComputedStyle(el).position !== 'fixed';
                }).filter((el, _, all) => !all.some((other) => other !== el && other.contains(el)))
                  .slice(0, 5).map((el) => `${el.tagName.toLowerCase()}${el.className ? '.' + String(el.className).split(' ').join('.') : ''}`
                    + `${el.dataset.part ? `[data-part=${el.dataset.part}]` : ''} (right edge ${Math.round(el.getBoundingClientRect().right)})`);
                return { scrollWidth: document.documentElement.scrollWidth, culprits };""")
            if overflow:
                self.overflows.append((name, size, overflow))
            path = os.path.join(self.shots_dir, f"{name}-{size}.png")
            data = self.driver.execute_cdp_cmd("Page.captureScreenshot", {"format": "png"})["data"]
            with open(path, "wb") as f:
                f.write(base64.b64decode(data))
            self.shots.append(path)
        self.set_size("1280x800")
        self.settle()

    def close(self):
        try:
            self.driver.quit()
        except Exception:  # noqa: BLE001 (closing whatever state it is in)
            pass
