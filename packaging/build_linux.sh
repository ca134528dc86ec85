#!/usr/bin/env bash
# Build the one-folder app with PyInstaller, then a tarball and a .deb from it.
# Usage: packaging/build_linux.sh  (run by `make package`, inside the venv)
set -euo pipefail
ROOT="$(cd "$(dirname "$0")/.." && pwd)"
cd "$ROOT"
# shellcheck source=packaging/project.sh
source packaging/project.sh
DIST="$ROOT/dist"
BUILD="$ROOT/build"

started=$(date +%s)
"$PY" -m PyInstaller --noconfirm --clean --log-level WARN \
  --distpath "$DIST" --workpath "$BUILD/pyinstaller" packaging/zeta_desktop.spec
# Nothing the app needs lives in a test or stub folder.
find "$DIST/$NAME" -type d \( -name tests -o -name __pycache__ \) -prune -exec rm -rf {} +

tar -C "$DIST" -czf "$DIST/$NAME-$VERSION-linux-x86_64.tar.gz" "$NAME"

stage="$BUILD/deb/${NAME}_${VERSION}_amd64"
rm -rf "$stage"
mkdir -p "$stage/DEBIAN" "$stage/opt/$NAME" "$stage/usr/bin" "$stage/usr/share/applications"
cp -a "$DIST/$NAME/." "$stage/opt/$NAME/"
cat > "$stage/usr/bin/$NAME" <<SH
#!/bin/sh
exec /opt/$NAME/$NAME "\$@"
SH
chmod 755 "$stage/usr/bin/$NAME"
cp "resources/$APP_ID.desktop" "$stage/usr/share/applications/"
# The GGUF type the .desktop entry opens (shared-mime-info's trigger indexes it).
mkdir -p "$stage/usr/share/mime/packages"
cp "resources/$APP_ID.mime.xml" "$stage/usr/share/mime/packages/$APP_ID.xml"
mkdir -p "$stage/usr/share/icons"
cp -r resources/icons/hicolor "$stage/usr/share/icons/"
installed_kb=$(du -sk --exclude=DEBIAN "$stage" | cut -f1)
cat > "$stage/DEBIAN/control" <<CONTROL
Package: $NAME
Version: $VERSION
Architecture: amd64
Maintainer: Zeta Desktop developers <dev@zeta-desktop.invalid>
Installed-Size: $installed_kb
Section: utils
Priority: optional
Depends: libc6 (>= 2.34), libxcb-cursor0, libxcb-icccm4, libxcb-keysyms1, libxcb-image0, libxcb-render-util0, libxcb-shape0, libxcb-xkb1, libxkbcommon-x11-0, libxkbcommon0, libegl1, libgl1, libopengl0, libfontconfig1, libdbus-1-3, libglib2.0-0
Homepage: https://zeta-desktop.invalid
Description: Chat with several local GGUF models, routed per prompt
 Zeta Desktop keeps a coder, an embedder and a reasoner model loaded with
 llama.cpp, routes every prompt to the right one from live load signals and
 plots each model's load beside the chat. Includes a small demo model.
CONTROL
dpkg-deb --root-owner-group -Zxz --build "$stage" "$DIST/${NAME}_${VERSION}_amd64.deb" >/dev/null
elapsed=$(( $(date +%s) - started ))

demo_mb=$(du -sm "$DIST/$NAME/_internal/models" 2>/dev/null | cut -f1 || echo 0)
echo "built in ${elapsed} s:"
echo "  folder   $DIST/$NAME  $(du -sm "$DIST/$NAME" | cut -f1) MB (demo model ${demo_mb} MB of it)"
echo "  tarball  $(du -h "$DIST/$NAME-$VERSION-linux-x86_64.tar.gz" | cut -f1)"
echo "  deb      $(du -h "$DIST/${NAME}_${VERSION}_amd64.deb" | cut -f1), installed $((installed_kb / 1024)) MB"
