#!/usr/bin/env bash
# Installs what the unit tests need beyond node_modules, from Debian's packages (runs before `npm test`, as the
# `pretest` script):
#   - chromium: the webview tests drive it with playwright-core (which downloads no browser of its own);
#   - python3-torch (with python3-numpy): Debian's PyTorch, the independent side of the interop tests (AdapterHub's
#     and Hugging Face's computations written from their source, and torch.save / torch.load for .bin files);
#   - dataset-fashion-mnist: real IDX files (gzipped), for the image readers' tests;
#   - python3-pil (Pillow, on libjpeg): writes and decodes the JPEGs the JPEG reader's tests compare against.
# Installs only what is missing, with apt-get update first, as root (as CI runs), and says so. When it cannot
# install (not root, no apt-get, apt failed) it exits non-zero and says what to install: the suite must not run
# half-equipped, since a test that cannot find its tool fails rather than skips anyway.
set -uo pipefail

missing=()
[ -x /usr/bin/chromium ] || missing+=(chromium)
# Debian's own interpreter: a python3 earlier on PATH (pyenv, a venv) does not see Debian's packages, so the tests
# run /usr/bin/python3 (test/helpers/python.ts).
[ -x /usr/bin/python3 ] && /usr/bin/python3 -c 'import torch, numpy' >/dev/null 2>&1 || missing+=(python3 python3-torch python3-numpy)
[ -f /usr/share/datasets/fashion-mnist/t10k-images-idx3-ubyte.gz ] || missing+=(dataset-fashion-mnist)
[ -x /usr/bin/python3 ] && /usr/bin/python3 -c 'import PIL' >/dev/null 2>&1 || missing+=(python3-pil)
[ ${#missing[@]} -eq 0 ] && exit 0

echo "ensure-test-deps: missing Debian packages the tests need: ${missing[*]}"
if [ "$(id -u)" != "0" ]; then
  echo "ensure-test-deps: ERROR: not root, so not installing them. Run as root: apt-get install ${missing[*]}" >&2
  exit 1
fi
if ! command -v apt-get >/dev/null 2>&1; then
  echo "ensure-test-deps: ERROR: no apt-get here; install ${missing[*]} by hand." >&2
  exit 1
fi
export DEBIAN_FRONTEND=noninteractive
aptlog="$(mktemp -t adapter-lab-test-deps-apt-XXXXXX.log)"
echo "ensure-test-deps: apt-get update && apt-get install ${missing[*]} (log: $aptlog)"
if { apt-get update -qq && apt-get install -y -qq --no-install-recommends "${missing[@]}"; } >"$aptlog" 2>&1; then
  rm -f "$aptlog"
  echo "ensure-test-deps: installed ${missing[*]}"
else
  echo "ensure-test-deps: ERROR: apt-get could not install ${missing[*]} (log: $aptlog):" >&2
  tail -n 20 "$aptlog" >&2
  exit 1
fi
exit 0
