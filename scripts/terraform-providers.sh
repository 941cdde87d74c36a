#!/usr/bin/env bash
# The Terraform providers that terraform/versions.tf pins, as a filesystem
# mirror, so that the tests run the real `terraform init`, `validate` and
# `plan` with no registry (functions_terraform_plan_test.go).
#
#   scripts/terraform-providers.sh              make the mirror once, then print the export
#   scripts/terraform-providers.sh --if-present print the export only if it is complete
#
# The mirror lives outside the clone, keyed by the pinned versions, so every
# clone on this machine shares it and a changed pin gets a new one:
#   ${XDG_CACHE_HOME:-$HOME/.cache}/visgate-orchestrator/terraform-providers-<key>
# with <key> = archive-2.8.0_google-6.50.0_... (name-version, by name). It is
# made in a temporary directory and renamed when complete: a half-made one is
# never used. It is made with `terraform providers mirror`, which fetches the
# registry's own signed packages (so a lock file made from it carries the
# registry's hashes); that needs registry.terraform.io once.
# Use: eval "$(bash scripts/terraform-providers.sh)". Everything but the
# export line goes to stderr.
set -euo pipefail

root=$(cd "$(dirname "$0")/.." && pwd)
versions="$root/terraform/versions.tf"
platform="$(go env GOOS 2>/dev/null || echo linux)_$(go env GOARCH 2>/dev/null || echo amd64)"

log() { echo "terraform-providers: $*" >&2; }

# pins prints "name version" per required provider of versions.tf, by name.
pins() {
	awk '
		/required_providers[[:space:]]*\{/ { inside = 1; next }
		inside && /^[[:space:]]*[a-z0-9-]+[[:space:]]*=[[:space:]]*\{/ { name = $1 }
		inside && name != "" && /^[[:space:]]*version[[:space:]]*=/ {
			v = $0; sub(/^[^"]*"/, "", v); sub(/".*$/, "", v); print name, v; name = ""
		}
		inside && /^  \}/ { inside = 0 }
	' "$versions" | sort
}

mapfile -t pinned < <(pins)
if [ ${#pinned[@]} -eq 0 ]; then
	log "no required_providers found in $versions"
	exit 1
fi
key=""
for p in "${pinned[@]}"; do
	read -r name version <<<"$p"
	if ! [[ $version =~ ^[0-9]+\.[0-9]+\.[0-9]+$ ]]; then
		log "provider $name: version \"$version\" in terraform/versions.tf is not one exact version"
		exit 1
	fi
	key+="${key:+_}$name-$version"
done
mirror="${XDG_CACHE_HOME:-$HOME/.cache}/visgate-orchestrator/terraform-providers-$key"

# complete DIR: every pinned provider is in DIR, packed (the zip `terraform
# providers mirror` writes) or unpacked (a binary in its platform directory).
complete() {
	local dir=$1 p name version base
	for p in "${pinned[@]}"; do
		read -r name version <<<"$p"
		base="$dir/registry.terraform.io/hashicorp/$name"
		[ -f "$base/terraform-provider-${name}_${version}_$platform.zip" ] ||
			[ -x "$base/$version/$platform/terraform-provider-${name}_v$version" ] ||
			return 1
	done
}

print_env() { printf 'export VISGATE_TERRAFORM_MIRROR=%q\n' "$mirror"; }

case "${1:-}" in
--if-present)
	if complete "$mirror"; then print_env; fi
	exit 0
	;;
"") ;;
*)
	log "unknown argument: $1 (use no argument, or --if-present)"
	exit 2
	;;
esac

if complete "$mirror"; then
	log "reusing $mirror"
	print_env
	exit 0
fi
if ! command -v terraform >/dev/null; then
	log "terraform is not installed (https://developer.hashicorp.com/terraform/install)"
	exit 1
fi

mkdir -p "$(dirname "$mirror")"
# One maker at a time: another clone may be making the same mirror.
exec 9>"$mirror.lock"
flock 9
if complete "$mirror"; then
	log "reusing $mirror (made meanwhile)"
	print_env
	exit 0
fi

work=$(mktemp -d "$mirror.tmp.XXXXXX")
trap 'rm -rf "$work"' EXIT
log "making $mirror: ${pinned[*]} for $platform from registry.terraform.io"
start=$(date +%s)
mkdir "$work/config" "$work/mirror"
cp "$root"/terraform/*.tf "$work/config/"
# Only the registry: no CLI configuration of the user's redirects it.
TF_CLI_CONFIG_FILE=/dev/null CHECKPOINT_DISABLE=1 \
	terraform -chdir="$work/config" providers mirror -platform="$platform" "$work/mirror" >&2
if ! complete "$work/mirror"; then
	log "terraform providers mirror finished but the mirror lacks a pinned provider"
	exit 1
fi
rm -rf "$mirror"
mv "$work/mirror" "$mirror"
log "mirror ready in $(($(date +%s) - start)) s ($(du -sh "$mirror" | cut -f1))"
print_env
