#!/usr/bin/env bash
# Builds the callevents .deb into OUTDIR and prints its path:
#
#   cmd/callevents/packaging/build.sh OUTDIR
#
# The binary is static (CGO_ENABLED=0) and carries the module version and
# VCS revision (`callevents version`); the package's version follows them:
# tag v0.3.0 gives 0.3.0, an untagged commit 0.0.0~20261202135400.c5ff64ffa2ab
# (sorting before the next tag, like Go's pseudo-version), with +dirty for
# uncommitted changes. nfpm is the Go tool pinned in go.mod.
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
root=$(cd "$here/../../.." && pwd)
[ $# -eq 1 ] || { echo "usage: $0 OUTDIR" >&2; exit 2; }
mkdir -p "$1"
out=$(cd "$1" && pwd)
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT

# Go records VCS information only where .git is a directory; in a linked
# worktree it is a file, and the binary would say "devel". There, build
# from a clone at the same commit with the working tree's files on top: the
# same revision, and +dirty exactly when the working tree differs.
src=$root
if [ ! -d "$root/.git" ] && git -C "$root" rev-parse --git-dir >/dev/null 2>&1; then
  src=$work/src
  git clone --quiet --shared --no-checkout "$root" "$src"
  git -C "$src" checkout --quiet --detach "$(git -C "$root" rev-parse HEAD)"
  (cd "$root" && git ls-files -z --cached --others --exclude-standard) |
    while IFS= read -r -d '' f; do
      if [ -e "$root/$f" ]; then
        (cd "$root" && cp -p --parents -- "$f" "$src")
      else
        rm -f -- "$src/$f"
      fi
    done
fi

# -buildvcs=true: a GOFLAGS=-buildvcs=false in the environment would
# otherwise leave the revision out.
CGO_ENABLED=0 go -C "$src" build -buildvcs=true -trimpath -ldflags="-s -w" -o "$work/callevents" ./cmd/callevents
modversion=$(go version -m "$work/callevents" | awk '$1 == "mod" { print $3; exit }')
case $modversion in
  v[0-9]*)
    # v1.2.3 → 1.2.3; v0.0.0-20261202135400-c5ff64ffa2ab+dirty → 0.0.0~20261202135400.c5ff64ffa2ab+dirty
    debversion=${modversion#v}
    if [[ $debversion == *-* ]]; then
      pre=${debversion#*-}
      debversion=${debversion%%-*}~${pre//-/.}
    fi
    ;;
  *) debversion=0.0.0~devel ;; # no VCS information at all (a tarball)
esac

export CALLEVENTS_BINARY=$work/callevents CALLEVENTS_DEB_VERSION=$debversion
GOARCH=$(go env GOARCH)
export GOARCH
deb=$out/callevents_${debversion}_${GOARCH}.deb
(cd "$root" && go tool nfpm package --config cmd/callevents/packaging/nfpm.yaml --packager deb --target "$deb" >&2)
echo "$deb"
