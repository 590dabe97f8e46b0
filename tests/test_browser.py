"""The chat page in a real browser (headless Chromium through Selenium) against ``twistd -n msgsvc --web``.

Set MSGSVC_SCREENSHOTS=docs/images to save the chat page and the status page as PNGs.
"""

from __future__ import annotations

import os
import re
import shutil
import signal
import socket
import subprocess
import sys
import threading

from selenium import webdriver
from selenium.webdriver.chrome.service import Service
from selenium.webdriver.common.by import By
from selenium.webdriver.support.ui import WebDriverWait
from twisted.trial.unittest import SkipTest, SynchronousTestCase

from tests.helpers import CHECKOUT_ENV, ROOT, temp_dir

CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")
CHROMEDRIVER = "/usr/bin/chromedriver"
MISSING = "chromium/chromedriver not installed: apt-get install chromium chromium-driver"
WAIT = 15.0
"""Seconds any one expected thing may take to appear."""


class Twistd:
    """``twistd -n msgsvc --port 0 --web tcp:0`` in a subprocess, with the ports its log names.

    A thread keeps reading its log, so the server never blocks on a full pipe.
    """

    def __init__(self, directory: str) -> None:
        script = "from twisted.scripts.twistd import run; run()"
        args = ["-n", "--pidfile=", "--logfile=-", "msgsvc", "--port", "0", "--store", "memory", "--max-clients", "0"]
        self.process = subprocess.Popen(
            [sys.executable, "-c", script, *args, "--web", "tcp:0:interface=127.0.0.1"],
            cwd=directory,
            env=CHECKOUT_ENV,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
        )
        self.log = b""
        self._ended = False
        self._changed = threading.Condition()
        self._reader = threading.Thread(target=self._read_log, daemon=True)
        self._reader.start()
        web = self._wait_for(rb"Web interface on (http://127\.0\.0\.1:\d+/)")
        self.url = web.group(1).decode()
        self.tcp_port = int(self._wait_for(rb"Server started on 127\.0\.0\.1:(\d+)").group(1))

    def _read_log(self) -> None:
        assert self.process.stdout is not None
        for chunk in iter(lambda: self.process.stdout.read1(65536), b""):  # type: ignore[union-attr]
            with self._changed:
                self.log += chunk
                self._changed.notify_all()
        with self._changed:
            self._ended = True
            self._changed.notify_all()

    def _wait_for(self, pattern: bytes) -> re.Match[bytes]:
        """The first match of ``pattern`` in the log, within WAIT seconds."""
        with self._changed:
            self._changed.wait_for(lambda: self._ended or re.search(pattern, self.log), WAIT)
            found = re.search(pattern, self.log)
            if found is None:
                raise AssertionError(f"twistd did not start:\n{self.log.decode(errors='replace')}")
            return found

    def stop(self) -> None:
        self.process.send_signal(signal.SIGTERM)
        try:
            self.process.wait(WAIT)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait()
        self._reader.join(WAIT)
        assert self.process.stdout is not None
        self.process.stdout.close()


class LineClient:
    """A blocking TCP client of the server: send lines, wait for a line."""

    def __init__(self, port: int) -> None:
        self.socket = socket.create_connection(("127.0.0.1", port), timeout=WAIT)
        self.lines = self.socket.makefile("rb")
        self.wait_for(b"OK msgsvc ")

    def send(self, line: str) -> None:
        self.socket.sendall(line.encode() + b"\n")

    def wait_for(self, start: bytes) -> bytes:
        """The first line from the server that starts with ``start`` (skipping others)."""
        while True:
            line = self.lines.readline()
            if not line:
                raise AssertionError(f"connection closed before a line starting {start!r}")
            if line.startswith(start):
                return line.rstrip(b"\r\n")

    def close(self) -> None:
        self.lines.close()
        self.socket.close()


class BrowserChatTests(SynchronousTestCase):
    """Two chat pages and a TCP client talk; a followed tag's tweet appears live."""

    def setUp(self) -> None:
        if CHROMIUM is None or not os.path.exists(CHROMEDRIVER):
            raise SkipTest(MISSING)
        self.server = Twistd(temp_dir(self))
        self.addCleanup(self.server.stop)
        self.browsers = []
        for _ in range(2):
            options = webdriver.ChromeOptions()
            options.binary_location = CHROMIUM
            for argument in ("--headless=new", "--no-sandbox", "--disable-dev-shm-usage", "--window-size=1100,760"):
                options.add_argument(argument)
            browser = webdriver.Chrome(service=Service(CHROMEDRIVER), options=options)
            self.addCleanup(browser.quit)
            self.browsers.append(browser)

    def until(self, browser, element: str, text: str) -> None:
        """Wait until the element with id ``element`` shows ``text``."""
        WebDriverWait(browser, WAIT).until(
            lambda b: text in b.find_element(By.ID, element).text,
            f"#{element} never showed {text!r}",
        )

    def type(self, browser, element: str, text: str, button: str) -> None:
        browser.find_element(By.ID, element).send_keys(text)
        browser.find_element(By.ID, button).click()

    def join(self, browser, name: str) -> None:
        browser.get(self.server.url + "chat")
        self.until(browser, "state", "Connected. Pick a name")
        self.type(browser, "name", name, "join")
        self.until(browser, "people", f"{name} (you)")

    def test_chat_and_tweets(self) -> None:
        """Pages chat with each other and with a TCP client, see who is here, and get followed tweets live."""
        alice, bob = self.browsers
        self.join(alice, "alice")
        self.join(bob, "bob")
        self.until(bob, "people", "alice")
        self.until(alice, "people", "bob")  # a JOIN event, live

        self.type(alice, "say", "hello bob <b>&amp;</b>", "send")
        self.until(bob, "log", "alice")
        self.until(bob, "log", "hello bob <b>&amp;</b>")  # shown as text, not markup

        carol = LineClient(self.server.tcp_port)
        self.addCleanup(carol.close)
        carol.send("NAME carol")
        carol.wait_for(b"OK ")
        self.until(alice, "people", "carol")
        self.until(bob, "people", "carol")
        carol.send("SAY hi from tcp")
        self.until(alice, "log", "hi from tcp")
        self.type(bob, "say", "hey carol", "send")
        self.assertEqual(carol.wait_for(b"* CHAT "), b"* CHAT bob hey carol")

        self.type(alice, "tag", "twisted", "follow")
        self.until(alice, "following", "following #twisted")
        carol.send("TWEET released #Twisted 26.10")
        self.until(alice, "log", "released #Twisted 26.10")
        self.type(bob, "tweet", "me too #twisted", "post")
        self.until(alice, "log", "me too #twisted")
        self.until(bob, "log", "You posted: me too #twisted")
        self.assertNotIn("released", bob.find_element(By.ID, "log").text)  # bob follows nothing

        carol.send("SEND @jobs build 26.10")
        carol.send("SEND @jobs publish 26.10")
        carol.wait_for(b"OK 2 queued")
        self._screenshots(alice)
        carol.send("QUIT")
        self.until(alice, "log", "carol left")

    def _screenshots(self, chat) -> None:
        """Save the chat page and the status page under $MSGSVC_SCREENSHOTS, if set."""
        directory = os.environ.get("MSGSVC_SCREENSHOTS")
        if not directory:
            return
        directory = os.path.join(ROOT, directory)
        os.makedirs(directory, exist_ok=True)
        chat.save_screenshot(os.path.join(directory, "chat.png"))
        status = self.browsers[1]
        status.set_window_size(1100, 1080)
        status.get(self.server.url)
        self.until(status, "clients", "~carol")
        status.save_screenshot(os.path.join(directory, "status.png"))
