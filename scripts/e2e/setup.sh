#!/usr/bin/env bash
# Installs what the end-to-end suite (test/e2e/) needs on a fresh machine of this project's kind, reusing
# whatever is already there:
#   - Debian packages: chromium (the browser Playwright drives), ripgrep (code-server's search; its npm
#     package would download the binary from GitHub), libkrb5-dev and a C++ toolchain (code-server's native
#     modules build from source here);
#   - code-server $CODE_SERVER_VERSION (VS Code's workbench served to a browser, with a real Node extension
#     host), from the npm registry, in a folder of its own outside this project's node_modules:
#     $ADAPTER_LAB_E2E_CACHE/code-server-<version> (default $XDG_CACHE_HOME/adapter-lab-e2e, else
#     ~/.cache/adapter-lab-e2e), reused when complete;
#   - the extension's .vsix, built by `npm run package` into test-results/e2e/adapter-lab.vsix (always rebuilt,
#     so the suite never tests a stale package).
# Exits non-zero, saying what is missing, when it cannot install something: the suite then fails, never skips.
# It never reads or writes the user's own code-server state: every code-server it runs gets its own config file
# and XDG folders inside the install folder (code-server's first run ever writes ~/.config/code-server/config.yaml
# and says so before it prints anything else), and it depends on nothing in the home folder (npm's `nodedir` for
# native builds is set here, not taken from a ~/.npmrc).
# See ENVIRONMENT.md ("A real VS Code here") for the recipe this follows.
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)"
CODE_SERVER_VERSION="${ADAPTER_LAB_E2E_CODE_SERVER_VERSION:-4.100.3}"
CACHE="${ADAPTER_LAB_E2E_CACHE:-${XDG_CACHE_HOME:-$HOME/.cache}/adapter-lab-e2e}"
CS_DIR="$CACHE/code-server-$CODE_SERVER_VERSION"
ARTIFACTS="$ROOT/test-results/e2e"
VSIX="$ARTIFACTS/adapter-lab.vsix"

log() { echo "e2e-setup: $*"; }
die() { echo "e2e-setup: ERROR: $*" >&2; exit 1; }
started=$(date +%s)

# ---- Debian packages --------------------------------------------------------------------------------
cs_installed() { [ -f "$CS_DIR/.complete" ] && [ -f "$CS_DIR/node_modules/code-server/out/node/entry.js" ]; }

missing=()
[ -x /usr/bin/chromium ] || missing+=(chromium)
command -v rg >/dev/null 2>&1 || missing+=(ripgrep)
if ! cs_installed; then
  # Only needed to build code-server's native modules.
  dpkg -s libkrb5-dev >/dev/null 2>&1 || missing+=(libkrb5-dev)
  command -v g++ >/dev/null 2>&1 || missing+=(g++)
  command -v make >/dev/null 2>&1 || missing+=(make)
  command -v python3 >/dev/null 2>&1 || missing+=(python3)
fi
command -v unzip >/dev/null 2>&1 || missing+=(unzip) # npm run package checks the .vsix with it
if [ ${#missing[@]} -gt 0 ]; then
  log "missing Debian packages: ${missing[*]}"
  [ "$(id -u)" = 0 ] || die "not root, so not installing them: run apt-get install -y ${missing[*]} as root"
  command -v apt-get >/dev/null 2>&1 || die "no apt-get here: install ${missing[*]} by hand"
  export DEBIAN_FRONTEND=noninteractive
  aptlog="$(mktemp -t adapter-lab-e2e-apt-XXXXXX.log)"
  log "apt-get update && apt-get install ${missing[*]} (log: $aptlog)"
  if ! { apt-get update -qq && apt-get install -y -qq --no-install-recommends "${missing[@]}"; } >"$aptlog" 2>&1; then
    tail -n 30 "$aptlog" >&2
    die "apt-get could not install ${missing[*]} (log: $aptlog)"
  fi
fi
log "chromium: $(/usr/bin/chromium --version 2>/dev/null || echo '?'); ripgrep: $(rg --version | sed -n 1p)"

# ---- code-server --------------------------------------------------------------------------------------
node_major="$(node -p 'process.versions.node.split(".")[0]')"
[ "$node_major" = 20 ] || die "code-server $CODE_SERVER_VERSION runs on Node 20; this is Node $(node --version)"

if cs_installed; then
  log "code-server $CODE_SERVER_VERSION: reusing $CS_DIR"
else
  log "code-server $CODE_SERVER_VERSION: installing into $CS_DIR from the npm registry (a few minutes)"
  mkdir -p "$CACHE"
  work="$(mktemp -d "$CACHE/.install-$CODE_SERVER_VERSION-XXXXXX")"
  trap 'rm -rf "$work"' EXIT
  # npm 11 runs dependencies' install scripts only when the project allows them (allowScripts).
  cat >"$work/package.json" <<JSON
{ "name": "adapter-lab-e2e-code-server", "private": true, "allowScripts": { "code-server": true, "argon2": true } }
JSON
  cslog="$work/install.log"
  # code-server's native modules build with node-gyp, which downloads Node's headers from nodejs.org unless npm's
  # nodedir names a local copy: this machine kind has them (Node's own headers in /usr/include/node), and the
  # network to nodejs.org is closed. Set it here rather than rely on a ~/.npmrc.
  if [ -z "${npm_config_nodedir:-}" ] && [ -f /usr/include/node/common.gypi ]; then export npm_config_nodedir=/usr; fi
  # 1. The packages, without running their scripts: the postinstall needs the ripgrep cache below.
  (cd "$work" && npm install --ignore-scripts --no-audit --no-fund --loglevel=error "code-server@$CODE_SERVER_VERSION") >"$cslog" 2>&1 \
    || { tail -n 30 "$cslog" >&2; die "npm install code-server@$CODE_SERVER_VERSION failed (log above)"; }
  # 2. @vscode/ripgrep's postinstall downloads rg from GitHub unless its cache holds the archive: give it
  #    Debian's rg (a tar.gz with rg at its root is accepted).
  shrinkwrap="$work/node_modules/code-server/lib/vscode/npm-shrinkwrap.json"
  rg_version="$(node -e 'const l=require(process.argv[1]); const p=l.packages&&l.packages["node_modules/@vscode/ripgrep"]; if(!p) process.exit(1); console.log(p.version)' "$shrinkwrap")" \
    || die "cannot find @vscode/ripgrep's version in $shrinkwrap"
  export TMPDIR="$work/tmp"
  mkdir -p "$TMPDIR/vscode-ripgrep-cache-$rg_version" "$work/rg"
  cp "$(command -v rg)" "$work/rg/rg"
  tar -czf "$TMPDIR/vscode-ripgrep-cache-$rg_version/ripgrep-v13.0.0-10-x86_64-unknown-linux-musl.tar.gz" -C "$work/rg" rg
  # 3. The install scripts: argon2 and code-server's postinstall (which installs VS Code's own dependencies
  #    and builds their native modules).
  (cd "$work" && npm_config_yes=true npm_config_unsafe_perm=true npm rebuild --foreground-scripts) >>"$cslog" 2>&1 \
    || { tail -n 40 "$cslog" >&2; die "code-server's install scripts failed (log above: $cslog)"; }
  unset TMPDIR
  entry="$work/node_modules/code-server/out/node/entry.js"
  [ -f "$work/node_modules/code-server/lib/vscode/node_modules/@vscode/ripgrep/bin/rg" ] \
    || { tail -n 40 "$cslog" >&2; die "code-server installed without VS Code's dependencies (log above)"; }
  # The version check runs code-server with its own config file and XDG folders (never the user's), and finds
  # the version line among whatever else it prints (a first run logs "Wrote default config file" first).
  got="$(XDG_CONFIG_HOME="$work/tmp/xdg-config" XDG_DATA_HOME="$work/tmp/xdg-data" \
    node "$entry" --config "$work/tmp/version-check.yaml" --version 2>&1 || true)"
  printf '%s\n' "$got" | grep -Eq "^$CODE_SERVER_VERSION( |\$)" \
    || { tail -n 40 "$cslog" >&2; die "code-server --version did not print $CODE_SERVER_VERSION; it printed: $got"; }
  touch "$work/.complete"
  rm -rf "$CS_DIR" "$work/tmp" "$work/rg"
  mv "$work" "$CS_DIR"
  trap - EXIT
  log "code-server $CODE_SERVER_VERSION installed in $CS_DIR"
fi

# ---- the .vsix -----------------------------------------------------------------------------------------
mkdir -p "$ARTIFACTS"
# The artifacts are not the project's: keep git from listing them.
[ -f "$ROOT/test-results/.gitignore" ] || echo '*' >"$ROOT/test-results/.gitignore"
log "npm run package -> $VSIX"
(cd "$ROOT" && node scripts/package.mjs --out "$VSIX") >"$ARTIFACTS/package.log" 2>&1 \
  || { tail -n 30 "$ARTIFACTS/package.log" >&2; die "npm run package failed (log: $ARTIFACTS/package.log)"; }
tail -n 1 "$ARTIFACTS/package.log" | sed 's/^/e2e-setup: /'

log "ready in $(( $(date +%s) - started )) s"
