#!/usr/bin/env bash
# Builds artifacts/relayd_<version>_amd64.deb from this checkout, without debhelper: the NativeAOT binary (any trim or
# AOT warning fails the build), the hardened unit, the example config as a conffile, the relayd system user
# (sysusers.d), the man page, and maintainer scripts that do what dh_installsystemd would.
#   packaging/build-deb.sh            # relayd_<Version from Directory.Build.props>-1_amd64.deb
#   packaging/build-deb.sh 0.1.1      # another upstream version (also what the binary's version option prints)
#   DEB_REVISION=2 packaging/build-deb.sh   # the Debian revision (default 1): a packaging-only change
#   RELAYD_PUBLISHED=DIR packaging/build-deb.sh  # package DIR/relayd from an earlier NativeAOT publish instead
# packaging/deb/control and changelog carry @VERSION@ / @DEB_VERSION@, replaced by <version>-<revision>.
# Check the result with: lintian --fail-on error,warning artifacts/relayd_*.deb
set -euo pipefail
cd "$(dirname "$0")/.."
export DOTNET_CLI_TELEMETRY_OPTOUT=1 DOTNET_NOLOGO=1

version="${1:-$(dotnet msbuild src/Relayd/Relayd.csproj -getProperty:Version)}"
revision="${DEB_REVISION:-1}"
if [[ ! "$version" =~ ^[0-9][A-Za-z0-9.+~]*$ || ! "$revision" =~ ^[0-9][A-Za-z0-9.+~]*$ ]]; then
  echo "build-deb.sh: '$version-$revision' is not a Debian version (upstream version, then DEB_REVISION)" >&2
  exit 64
fi
deb_version="$version-$revision"

work="$(mktemp -d)"
trap 'rm -rf "$work"' EXIT
publish="$work/publish"
root="$work/root"

if [[ -n "${RELAYD_PUBLISHED:-}" ]]; then
  publish="$RELAYD_PUBLISHED"
  echo "packaging $publish/relayd as $version"
else
  echo "publishing relayd $version (NativeAOT) ..."
  if ! dotnet publish src/Relayd/Relayd.csproj -r linux-x64 -c Release -p:PublishAot=true -p:Version="$version" \
      -o "$publish" >"$work/publish.log" 2>&1; then
    cat "$work/publish.log" >&2
    echo "build-deb.sh: dotnet publish failed" >&2
    exit 1
  fi
  # The csproj makes trim/AOT warnings errors; this also catches any that a package would only print.
  if grep -iE '\b(warning|error) (IL[0-9]{4}|NETSDK)' "$work/publish.log" >&2; then
    echo "build-deb.sh: the NativeAOT publish printed trim/AOT warnings (above)" >&2
    exit 1
  fi
fi

install -d -m 0755 "$root/DEBIAN" "$root/usr/bin" "$root/lib/systemd/system" "$root/etc/relayd" \
  "$root/usr/lib/sysusers.d" "$root/usr/share/doc/relayd" "$root/usr/share/man/man8" "$root/usr/share/lintian/overrides"
# relayd.dbg (the symbols) stays out of the package; strip drops what dh_strip drops.
install -m 0755 "$publish/relayd" "$root/usr/bin/relayd"
strip --strip-unneeded --remove-section=.comment --remove-section=.note "$root/usr/bin/relayd"
install -m 0644 packaging/relayd.service "$root/lib/systemd/system/relayd.service"
install -m 0644 packaging/relayd.toml "$root/etc/relayd/relayd.toml"
install -m 0644 packaging/deb/sysusers.conf "$root/usr/lib/sysusers.d/relayd.conf"
install -m 0644 packaging/deb/copyright "$root/usr/share/doc/relayd/copyright"
install -m 0644 packaging/deb/lintian-overrides "$root/usr/share/lintian/overrides/relayd"
install -m 0644 README.md "$root/usr/share/doc/relayd/README.md"
sed "s/@DEB_VERSION@/$deb_version/" packaging/deb/changelog | gzip -9n >"$root/usr/share/doc/relayd/changelog.Debian.gz"
gzip -9n <packaging/deb/relayd.8 >"$root/usr/share/man/man8/relayd.8.gz"
chmod 0644 "$root/usr/share/doc/relayd/changelog.Debian.gz" "$root/usr/share/man/man8/relayd.8.gz"

for script in postinst prerm postrm; do
  install -m 0755 "packaging/deb/$script" "$root/DEBIAN/$script"
done
install -m 0644 packaging/deb/conffiles "$root/DEBIAN/conffiles"
installed_size="$(du -sk --exclude=DEBIAN "$root" | cut -f1)"
sed -e "s/@VERSION@/$deb_version/" -e "s/@INSTALLED_SIZE@/$installed_size/" packaging/deb/control >"$root/DEBIAN/control"
(cd "$root" && find . -path ./DEBIAN -prune -o -type f -printf '%P\n' | sort | xargs md5sum) >"$root/DEBIAN/md5sums"
chmod 0644 "$root/DEBIAN/control" "$root/DEBIAN/md5sums"

mkdir -p artifacts
deb="artifacts/relayd_${deb_version}_amd64.deb"
dpkg-deb --root-owner-group -Zxz --build "$root" "$deb" >/dev/null
echo "$deb"
