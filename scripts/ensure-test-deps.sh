#!/usr/bin/env bash
# Installs what the tests need beyond node_modules: Debian's Chromium, which the webview tests drive with
# playwright-core (it downloads no browser of its own). Runs before `npm test` (the `pretest` script).
# Installs only when /usr/bin/chromium is missing, with Debian's apt as root (as CI runs), and says so.
# If it cannot install, it says why and lets the tests run: the webview tests then fail, never skip.
set -uo pipefail

CHROMIUM=/usr/bin/chromium
if [ -x "$CHROMIUM" ]; then
  exit 0
fi

echo "ensure-test-deps: $CHROMIUM is missing; the webview tests need it."
if [ "$(id -u)" != "0" ]; then
  echo "ensure-test-deps: not root, so not installing it. Install Debian's chromium package (apt-get install chromium)." >&2
  exit 0
fi
if ! command -v apt-get >/dev/null 2>&1; then
  echo "ensure-test-deps: no apt-get here; install Chromium at $CHROMIUM by hand." >&2
  exit 0
fi
echo "ensure-test-deps: installing chromium with apt-get (running as root)..."
export DEBIAN_FRONTEND=noninteractive
if apt-get update -qq && apt-get install -y -qq --no-install-recommends chromium >/tmp/ensure-test-deps-apt.log 2>&1; then
  echo "ensure-test-deps: installed $("$CHROMIUM" --version 2>/dev/null || echo chromium)"
else
  echo "ensure-test-deps: apt-get could not install chromium (log: /tmp/ensure-test-deps-apt.log):" >&2
  tail -n 20 /tmp/ensure-test-deps-apt.log >&2
fi
exit 0
