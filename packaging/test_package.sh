#!/usr/bin/env bash
# Install the .deb into a temporary root, run the frozen app's self-test there
# (real model, real tokens, window offscreen), check it wrote nothing into its
# own folder, time its start against `make run`, then uninstall and check that
# nothing is left. Run by `make package-test` after `make package`.
set -euo pipefail
ROOT="$(cd "$(dirname "$0")/.." && pwd)"
cd "$ROOT"
# shellcheck source=packaging/project.sh
source packaging/project.sh
DEB="dist/${NAME}_${VERSION}_amd64.deb"
fail() { echo "package-test: FAIL: $*" >&2; exit 1; }

[ -f "$DEB" ] || fail "$DEB is missing: run make package"
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
root="$work/root"
mkdir -p "$root/var/lib/dpkg/info" "$root/var/lib/dpkg/updates"
touch "$root/var/lib/dpkg/status"
# A private dpkg database: a real install and removal without touching this system.
dpkg_root=(dpkg --root="$root" --force-depends --force-not-root --force-script-chrootless)
# --force-depends: the private root has none of the system libraries it depends on.
"${dpkg_root[@]}" -i "$DEB" > "$work/dpkg.log" 2>&1 || fail "dpkg -i: $(cat "$work/dpkg.log")"
app="$root/opt/$NAME/$NAME"
[ -x "$app" ] || fail "no executable at /opt/$NAME/$NAME"
[ -x "$root/usr/bin/$NAME" ] || fail "no launcher on PATH (/usr/bin/$NAME)"
[ -f "$root/usr/share/applications/$APP_ID.desktop" ] || fail "no .desktop entry"
[ -f "$root/usr/share/icons/hicolor/256x256/apps/$APP_ID.png" ] || fail "no icon"
[ -f "$root/usr/share/mime/packages/$APP_ID.xml" ] || fail "no MIME type for .gguf files"
grep -q "^MimeType=application/x-gguf;" "$root/usr/share/applications/$APP_ID.desktop" \
  || fail "the .desktop entry declares no MIME types"
# The frozen app takes files: "Open with" hands it one.
"$app" --help | grep -q "FILE" || fail "the frozen app takes no file argument"
if command -v desktop-file-validate >/dev/null; then
  desktop-file-validate "$root/usr/share/applications/$APP_ID.desktop" || fail "invalid .desktop"
  echo "desktop-file-validate: ok"
else
  echo "desktop-file-validate: not installed here (apt-get install desktop-file-utils)"
fi

# Settings and data must go to the user's dirs, never into the install folder.
export HOME="$work/home" XDG_CONFIG_HOME="$work/home/.config" XDG_DATA_HOME="$work/home/.local/share"
export XDG_CACHE_HOME="$work/home/.cache" QT_QPA_PLATFORM=offscreen
mkdir -p "$HOME"
touch "$work/marker"
echo "frozen self-test:"
"$app" --self-test | tee "$work/self-test.log" || fail "the frozen self-test failed"
grep -q "^ok   coder: .* tok/s" "$work/self-test.log" || fail "no tokens streamed"
grep -q "embedding 2x" "$work/self-test.log" || fail "no embedding"
grep -q "^ok   markdown" "$work/self-test.log" || fail "answers did not render as highlighted Markdown"
grep -q "^ok   server: http://127.0.0.1:" "$work/self-test.log" || fail "the OpenAI-compatible server did not answer"
grep -q "^window: ok" "$work/self-test.log" || fail "the window did not start"
written=$(find "$root/opt/$NAME" -newer "$work/marker" -print | head -5)
[ -z "$written" ] || fail "the app wrote into its install folder: $written"
# The window, really shown (offscreen), closes cleanly after its first token.
ZETA_STARTUP_PROBE="Say hi." "$app" > "$work/probe.log" 2>&1 || fail "the window run failed: $(cat "$work/probe.log")"
grep -q "probe first_token" "$work/probe.log" || fail "the frozen window streamed no token"

# Start-up: frozen app vs `make run`, same machine, same run.
"$PY" packaging/startup_compare.py "$app"

"${dpkg_root[@]}" -P "$NAME" > "$work/dpkg.log" 2>&1 || fail "dpkg -P: $(cat "$work/dpkg.log")"
left=$(find "$root" -path "$root/var" -prune -o -type f -print | head -5)
[ -z "$left" ] || fail "uninstall left files behind: $left"
echo "install, self-test, start-up and uninstall: ok"
