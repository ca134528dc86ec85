# Sourced by the packaging scripts: the project's name and version from pyproject.toml.
PY="${PYTHON:-.venv/bin/python}"
read -r NAME VERSION < <("$PY" -c 'import tomllib; p = tomllib.load(open("pyproject.toml", "rb"))["project"]; print(p["name"], p["version"])')
APP_ID=io.github.zeta_desktop.ZetaDesktop
