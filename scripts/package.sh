#!/usr/bin/env bash
# Builds the Debian package attestd_<version>_amd64.deb from this checkout with dpkg-deb.
#
#   bash scripts/package.sh [OUT_DIR]        (default OUT_DIR: ./out)
#
# Builds the checkout first (scripts/prepare.sh) unless ATTESTD_PACKAGE_SKIP_BUILD=1, which
# packages dist/ and build/ as they are (the tests use it: they must not rebuild a tree that
# others are compiling). The Debian revision is ATTESTD_DEB_REVISION (default 1).
# Prints the path of the .deb on stdout.
set -euo pipefail
cd "$(dirname "$0")/.."
root=$(pwd)

out=${1:-out}
mkdir -p "$out"
out=$(cd "$out" && pwd)

if [ "${ATTESTD_PACKAGE_SKIP_BUILD:-0}" != 1 ]; then bash scripts/prepare.sh; fi
for need in dist/daemon/main.js dist/daemon/cli/attestctl.js dist/daemon/hooks/oci-hook.js build/Release/attestd_native.node build/Release/attestd-proc-opener; do
  [ -f "$need" ] || { echo "package: $need is missing; build the checkout first" >&2; exit 1; }
done

upstream=$(node -p 'require("./package.json").version')
version="$upstream-${ATTESTD_DEB_REVISION:-1}"
arch=amd64
# Debian's usual variables name the maintainer; the default is a reserved, non-routable address.
maintainer="${DEBFULLNAME:-attestd maintainers} <${DEBEMAIL:-maintainers@attestd.invalid}>"

stage=$(mktemp -d)
trap 'rm -rf "$stage"' EXIT
pkg=$stage/attestd
lib=$pkg/usr/lib/attestd
doc=$pkg/usr/share/doc/attestd
install -d "$lib" "$pkg/usr/bin" "$pkg/etc/attestd" "$pkg/lib/systemd/system" "$doc" "$pkg/DEBIAN" \
  "$pkg/usr/share/lintian/overrides"

# Compiled program without source maps (the TypeScript they point to is not shipped).
mkdir -p "$lib/dist"
cp -r dist/daemon "$lib/dist/daemon"
find "$lib/dist" -name '*.map' -delete
install -D -m 0644 build/Release/attestd_native.node "$lib/build/Release/attestd_native.node"
strip --strip-unneeded --remove-section=.comment --remove-section=.note "$lib/build/Release/attestd_native.node"

# The package root: native.ts finds the addon beside the nearest package.json, and
# "type": "module" makes Node load dist/ as ES modules.
node -e '
  const p = require("./package.json");
  const keep = { name: p.name, version: p.version, description: p.description, license: p.license,
    private: true, type: p.type, engines: p.engines, dependencies: p.dependencies };
  process.stdout.write(JSON.stringify(keep, null, 2) + "\n");
' > "$lib/package.json"

# Production dependencies, copied from the checkout's lock-file install (no registry access at
# package time). Documentation, sources and other platforms' prebuilt binaries are left out.
# npm ls exits non-zero for mere warnings (an extraneous package); an empty list is the error.
deps=$(npm ls --omit=dev --all --parseable 2>/dev/null || true)
[ "$(printf '%s\n' "$deps" | grep -c /node_modules/)" -gt 0 ] || { echo "package: npm ls found no production dependencies" >&2; exit 1; }
printf '%s\n' "$deps" | while read -r dir; do
  [ "$dir" = "$root" ] && continue
  rel=${dir#"$root"/}
  mkdir -p "$lib/$(dirname "$rel")"
  cp -r "$dir" "$lib/$rel"
done
nm=$lib/node_modules
# koffi ships its C++ sources beside its JavaScript (src/); the compiled module comes from
# @koromix/koffi-linux-x64, of which only the glibc build is kept.
rm -rf "$nm/koffi/lib" "$nm/koffi/vendor" "$nm/koffi/doc" "$nm/@koromix/koffi-linux-x64/musl_x64" "$nm/.package-lock.json"
find "$nm/koffi/src" -type f ! -name '*.js' ! -name '*.cjs' -delete
# Command-line tools of the dependencies (their package.json "bin"), build helpers and web pages:
# never run by attestd.
node -e '
  const { readdirSync, existsSync, readFileSync } = require("fs"); const { join } = require("path");
  const walk = (d) => { for (const e of readdirSync(d, { withFileTypes: true })) { if (!e.isDirectory()) continue;
    const p = join(d, e.name), pj = join(p, "package.json");
    if (existsSync(pj)) { const bin = JSON.parse(readFileSync(pj, "utf8")).bin;
      for (const b of typeof bin === "string" ? [bin] : Object.values(bin ?? {})) console.log(join(p, b)); }
    walk(p); } };
  walk(process.argv[1]);
' "$nm" | while read -r f; do rm -f "$f"; done
rm -f "$nm/koffi/cnoke.cjs"
find "$nm" \( -name .husky -o -name '.git*' -o -name '*.sh' -o -name '*.html' \) -prune -exec rm -rf {} +
find "$nm" -type d \( -name test -o -name tests -o -name __tests__ -o -name example -o -name examples -o -name .github \) -prune -exec rm -rf {} +
find "$nm" -type f \( -iname '*.md' -o -iname '*.markdown' -o -name '*.map' -o -name '*.ts' -o -name '.npmignore' \
  -o -name '.eslintrc*' -o -name '.editorconfig' -o -name '.travis.yml' -o -iname 'changelog*' -o -iname 'history*' \) \
  ! -name '*.d.ts' ! -name '*.js' ! -name '*.cjs' ! -name '*.mjs' ! -name '*.json' -delete
find "$nm" -type f -name '*.d.ts' -delete
find "$nm" -type d -empty -delete
# A "#!" line in a module that is never run as a program is noise to Node (it skips it) but
# marks the file as a script that should be executable; blank it, keeping line numbers.
{ grep -rlZ --include='*.js' --include='*.cjs' --include='*.mjs' -m1 '^#!' "$nm" || true; } | xargs -0 -r sed -i '1s/^#!.*$//'
# Nothing under /usr/lib/attestd is run directly but the entry points, made executable below.
find "$lib" -type f -exec chmod 0644 {} +
find "$lib" -type d -exec chmod 0755 {} +
# The service's first program: it keeps CAP_SYS_PTRACE in a process of its own and starts Node
# without it (deploy/systemd/README.md).
install -m 0755 build/Release/attestd-proc-opener "$lib/attestd-proc-opener"
strip --strip-unneeded --remove-section=.comment --remove-section=.note "$lib/attestd-proc-opener"

# Entry points, and a manual page for each made from its --help text.
install -d "$pkg/usr/share/man/man1" "$pkg/usr/share/man/man8"
for cmd in attestd:8:dist/daemon/main.js attestctl:1:dist/daemon/cli/attestctl.js attestd-oci-hook:8:dist/daemon/hooks/oci-hook.js; do
  name=${cmd%%:*}; rest=${cmd#*:}; section=${rest%%:*}; js=${rest#*:}
  printf '#!/bin/sh\nexec /usr/bin/node /usr/lib/attestd/%s "$@"\n' "$js" > "$pkg/usr/bin/$name"
  chmod 0755 "$pkg/usr/bin/$name" "$lib/$js"
  man=$pkg/usr/share/man/man$section/$name.$section
  {
    printf '.TH %s %s "" "attestd %s" "attestd"\n.SH NAME\n%s \\- %s\n.SH DESCRIPTION\n.nf\n' \
      "$(echo "$name" | tr a-z A-Z)" "$section" "$upstream" "$name" "part of attestd, the node attestation daemon"
    node "$js" --help | sed -e 's/\\/\\e/g' -e 's/^\./\\\&./' -e "s/^'/\\\\\&'/"
    printf '.fi\n.SH SEE ALSO\n/usr/share/doc/attestd/\n'
  } > "$man"
  gzip -9n "$man"
  chmod 0644 "$man.gz"
done

# Configuration: the commented reference policy. Its digests are examples, so a host with it
# unchanged appraises UNTRUSTED and grants nothing until the operator writes its own values.
{
  echo '# attestd policy. Installed from the reference policy: every digest below is an EXAMPLE.'
  echo '# Until you replace them with your host'"'"'s values the daemon appraises this host UNTRUSTED'
  echo '# and grants no lease. See /usr/share/doc/attestd/operator-guide.md and docs/policy.md.'
  echo '# Check a changed file with:  attestctl policy check /etc/attestd/policy.yaml'
  echo '# Apply it with:              systemctl reload attestd'
  echo '#'
  cat policies/reference.yaml
} > "$pkg/etc/attestd/policy.yaml"
chmod 0644 "$pkg/etc/attestd/policy.yaml"

install -m 0644 deploy/systemd/attestd.service deploy/systemd/attestd.socket "$pkg/lib/systemd/system/"

# Documentation.
install -m 0644 README.md "$doc/README.md"
for f in docs/operator-guide.md docs/integrator-guide.md docs/auditor-guide.md docs/policy.md docs/attestctl.md \
  docs/audit-log.md docs/errors.md docs/logging.md proto/README.md; do
  [ -f "$f" ] || continue
  name=$(basename "$f"); [ "$f" = proto/README.md ] && name=wire-protocol.md
  install -m 0644 "$f" "$doc/$name"
done
install -m 0644 deploy/systemd/README.md "$doc/systemd.md"
install -m 0644 clients/python/attestd_client.py "$doc/attestd_client.py"
gzip -9n "$doc"/*.md
install -m 0644 deploy/debian/copyright "$doc/copyright"
date=$(date -R -d "@${SOURCE_DATE_EPOCH:-$(git log -1 --format=%ct 2>/dev/null || date +%s)}")
printf 'attestd (%s) unstable; urgency=medium\n\n  * Package built from the attestd source tree.\n\n -- %s  %s\n' \
  "$version" "$maintainer" "$date" | gzip -9n > "$doc/changelog.Debian.gz"
chmod 0644 "$doc/changelog.Debian.gz"
install -m 0644 deploy/debian/lintian-overrides "$pkg/usr/share/lintian/overrides/attestd"

# Control area.
install -m 0755 deploy/debian/postinst deploy/debian/prerm deploy/debian/postrm "$pkg/DEBIAN/"
echo /etc/attestd/policy.yaml > "$pkg/DEBIAN/conffiles"
chmod 0644 "$pkg/DEBIAN/conffiles"
shlibs='libc6 (>= 2.34), libgcc-s1 (>= 3.0), libstdc++6 (>= 10.2)'
if command -v dpkg-shlibdeps > /dev/null; then
  (
    mkdir -p "$stage/debian"
    printf 'Source: attestd\n\nPackage: attestd\nArchitecture: any\n' > "$stage/debian/control"
    cd "$stage"
    dpkg-shlibdeps -O -e "$lib/build/Release/attestd_native.node" -e "$nm/@koromix/koffi-linux-x64/linux_x64/koffi.node" 2>/dev/null
  ) > "$stage/shlibs" && shlibs=$(sed -n 's/^shlibs:Depends=//p' "$stage/shlibs")
  rm -rf "$stage/debian"
fi
size=$(du -k -s --exclude=DEBIAN "$pkg" | cut -f1)
sed -e "s/@VERSION@/$version/" -e "s/@ARCH@/$arch/" -e "s/@SIZE@/$size/" -e "s/@SHLIBS@/$shlibs/" \
  -e "s/@MAINTAINER@/$maintainer/" deploy/debian/control.in > "$pkg/DEBIAN/control"
(cd "$pkg" && find . -path ./DEBIAN -prune -o -type f -print0 | sort -z | xargs -0 md5sum | sed 's| \./| |') > "$pkg/DEBIAN/md5sums"
chmod 0644 "$pkg/DEBIAN/control" "$pkg/DEBIAN/md5sums"

deb=$out/attestd_${version}_$arch.deb
dpkg-deb --root-owner-group -Zxz --build "$pkg" "$deb" > /dev/null
echo "$deb"
