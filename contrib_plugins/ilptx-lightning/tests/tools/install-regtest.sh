#!/bin/bash
# Installs the regtest Lightning network the plugin's slow tests run on, into one folder
# (default ~/.cache/ilptx-regtest, or $ILPTX_REGTEST_DIR / $1); idempotent, for Debian 12 as root.
#   bitcoind     Bitcoin Knots from Debian unstable: its .debs unpacked into <dir>/bitcoin (bookworm has
#                no bitcoind; sid's needs a newer glibc/libstdc++, so it runs through sid's own loader)
#   ElectrumX    e-x 1.20.0 + plyvel from PyPI, in its own virtualenv <dir>/electrumx-venv
#                (e-x 2.x refuses a bitcoind older than Core 31)
#   Electrum     4.3.4 from bookworm (apt). No Debian Electrum (4.5.8 backports/trixie, 4.8.3 sid) can pay
#                an amountless invoice from its command interface, so the newest buys nothing here.
# Any failure stops the script with a non-zero status: the tests then fail naming the missing tool.
set -euo pipefail
D=$(realpath -m "${1:-${ILPTX_REGTEST_DIR:-$HOME/.cache/ilptx-regtest}}")
mkdir -p "$D"
say() { echo "install-regtest: $*" >&2; }

# --- Electrum (Debian bookworm) -------------------------------------------------------------------
if ! command -v electrum >/dev/null 2>&1; then
  say "apt-get install electrum"
  # another apt run (e.g. .ci/run's own install) may hold the lock: wait for it
  apt-get -o DPkg::Lock::Timeout=600 update -qq
  DEBIAN_FRONTEND=noninteractive apt-get -o DPkg::Lock::Timeout=600 install -y -qq --no-install-recommends electrum
fi

# --- bitcoind (Bitcoin Knots, Debian unstable .debs unpacked; host apt/dpkg state untouched) -------
B="$D/bitcoin"
if ! { [ -x "$B/bitcoind" ] && "$B/bitcoind" -version >/dev/null 2>&1; }; then
  say "unpacking bitcoin-knots from Debian unstable into $B"
  rm -rf "$B"; mkdir -p "$B"/{lists/partial,cache/archives/partial,debs,root,none}; : > "$B/empty-status"
  URI=$(awk '/^URIs:/{print $2; exit}' /etc/apt/sources.list.d/debian.sources 2>/dev/null || true)
  URI=${URI:-http://deb.debian.org/debian}
  echo "deb [signed-by=/usr/share/keyrings/debian-archive-keyring.gpg] $URI sid main" > "$B/sources.list"
  A=(-o Dir::Etc::sourcelist="$B/sources.list" -o Dir::Etc::sourceparts="$B/none" -o Dir::State::Lists="$B/lists"
     -o Dir::Cache="$B/cache" -o Dir::State::status="$B/empty-status" -o Dir::Etc::preferencesparts="$B/none"
     -o APT::Architecture=amd64 -o APT::Sandbox::User=root)
  apt-get "${A[@]}" -qq update
  PKGS=$(apt-cache "${A[@]}" depends --recurse --no-recommends --no-suggests --no-conflicts --no-breaks \
           --no-replaces --no-enhances bitcoin-knots | grep -E '^(bitcoin-knots|lib[a-z0-9.+-]*|gcc-[0-9]+-base)$' | sort -u)
  [ -n "$PKGS" ] || { say "FAILED: no bitcoin-knots in Debian unstable"; exit 1; }
  # shellcheck disable=SC2086
  (cd "$B/debs" && apt-get "${A[@]}" -qq download $PKGS)
  for f in "$B"/debs/*.deb; do dpkg -x "$f" "$B/root"; done
  L="$B/root/usr/lib/x86_64-linux-gnu"
  for b in bitcoind bitcoin-cli; do
    # exec: the PID a test starts is bitcoind's own, so it can be stopped by PID
    printf '#!/bin/sh\nexec %s/ld-linux-x86-64.so.2 --library-path %s %s/root/usr/bin/%s "$@"\n' "$L" "$L" "$B" "$b" > "$B/$b"
    chmod +x "$B/$b"
  done
  rm -rf "$B/debs" "$B/cache" "$B/lists"
  "$B/bitcoind" -version | head -1 >&2 || { say "FAILED: the unpacked bitcoind does not run"; exit 1; }
fi

# --- ElectrumX (e-x 1.20.0 + plyvel, own virtualenv) ------------------------------------------------
X="$D/electrumx-venv"
if ! [ -x "$X/bin/electrumx_server" ]; then
  say "pip install e-x==1.20.0 plyvel into $X"
  rm -rf "$X"
  python3 -m venv "$X"
  "$X/bin/pip" install -q "e-x==1.20.0" "plyvel>=1.5"
fi
"$X/bin/python" -c 'import electrumx, plyvel' || { say "FAILED: ElectrumX does not import"; exit 1; }
say "ready in $D"
