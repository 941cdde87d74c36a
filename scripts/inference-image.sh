#!/usr/bin/env bash
# The inference worker's image (inference/Dockerfile), built once per content.
#
#   scripts/inference-image.sh              build it unless already built,
#                                           then print the exports
#   scripts/inference-image.sh --if-present print the exports only if it is
#                                           built (never builds)
#
# The image is keyed by the hash of everything it is made of (the
# Dockerfile, .dockerignore, requirements.lock and src/), and tagged
#   visgate-inference-worker:<12 hex>   (and INFERENCE_IMAGE_TAG, if set)
# so an unchanged worker is not rebuilt and a changed one gets a new tag.
#
# It builds with docker where a Docker engine runs, else with buildah
# (`buildah bud --isolation chroot`, as root), which needs no daemon. The
# Dockerfile's base (debian:bookworm-slim) is taken from local storage; where
# it is missing and no engine can pull it, it is made from Debian's packages
# with mmdebstrap (Debian 12 minbase, what bookworm-slim is) and stored
# under that name. Use: eval "$(bash scripts/inference-image.sh)". Everything
# but the export lines goes to stderr.
set -euo pipefail

root=$(cd "$(dirname "$0")/.." && pwd)
ctx="$root/inference"
name=visgate-inference-worker

log() { echo "inference-image: $*" >&2; }

# The build context, as the .dockerignore lets it in: the hash covers exactly it.
key=$(cd "$ctx" && {
	sha256sum Dockerfile .dockerignore requirements.lock
	find src -type f ! -name '*.pyc' ! -path '*/__pycache__/*' -print0 | LC_ALL=C sort -z | xargs -0 sha256sum
} | sha256sum | cut -c1-12)
image="$name:$key"

# INFERENCE_IMAGE_ENGINE=docker|buildah picks one (make test asks for
# buildah, which its tests run the image with); else docker where an engine
# runs, else buildah.
engine=${INFERENCE_IMAGE_ENGINE:-}
case $engine in
"")
	if command -v docker >/dev/null 2>&1 && docker info >/dev/null 2>&1; then
		engine=docker
	elif command -v buildah >/dev/null 2>&1; then
		engine=buildah
	fi
	;;
docker | buildah)
	if ! command -v "$engine" >/dev/null 2>&1; then
		log "INFERENCE_IMAGE_ENGINE=$engine, which is not installed"
		exit 1
	fi
	;;
*)
	log "INFERENCE_IMAGE_ENGINE=$engine: use docker or buildah"
	exit 2
	;;
esac

built() {
	case $engine in
	docker) docker image inspect "$image" >/dev/null 2>&1 ;;
	buildah) buildah inspect --type image "$image" >/dev/null 2>&1 ;;
	*) return 1 ;;
	esac
}

print_env() {
	printf 'export VISGATE_INFERENCE_IMAGE=%q\n' "$image"
	printf 'export VISGATE_INFERENCE_IMAGE_ENGINE=%q\n' "$engine"
}

case "${1:-}" in
--if-present)
	if built; then print_env; fi
	exit 0
	;;
"") ;;
*)
	log "unknown argument: $1 (use no argument, or --if-present)"
	exit 2
	;;
esac

if [ -z "$engine" ]; then
	log "neither a running Docker engine nor buildah is here: nothing was built."
	log "Install buildah (Debian: apt-get install buildah mmdebstrap) and run this as root, or build where Docker runs:"
	log "  docker build --platform linux/amd64 -t $image inference"
	exit 1
fi
if [ "$engine" = buildah ] && [ "$(id -u)" -ne 0 ]; then
	log "buildah builds here as root only (--isolation chroot): run as root, or where a Docker engine runs"
	exit 1
fi

lockdir=/var/tmp/visgate
mkdir -p -m 1777 "$lockdir" 2>/dev/null || true
[ -w "$lockdir" ] || lockdir="${XDG_CACHE_HOME:-$HOME/.cache}/visgate-orchestrator"
mkdir -p "$lockdir"
exec 9>"$lockdir/inference-image-$engine.lock"
flock 9 # one build at a time on this machine

tag_extra() {
	if [ -n "${INFERENCE_IMAGE_TAG:-}" ]; then
		$engine tag "$image" "$INFERENCE_IMAGE_TAG" >/dev/null
		log "also tagged $INFERENCE_IMAGE_TAG"
	fi
}

if built; then
	log "reusing $image ($engine)"
	tag_extra
	print_env
	exit 0
fi

base=$(sed -n 's/^ARG BASE_IMAGE=//p' "$ctx/Dockerfile")
if [ "$engine" = buildah ] && ! buildah inspect --type image "$base" >/dev/null 2>&1; then
	if ! command -v mmdebstrap >/dev/null 2>&1; then
		log "the base $base is not in local storage and mmdebstrap is missing (Debian: apt-get install mmdebstrap)"
		exit 1
	fi
	log "making the base $base from Debian's packages (mmdebstrap, Debian 12 minbase)"
	start=$(date +%s)
	tmp=$(mktemp -d /var/tmp/base.XXXXXX)
	ctr=""
	trap 'rm -rf "$tmp"; if [ -n "$ctr" ]; then buildah rm "$ctr" >/dev/null 2>&1; fi' EXIT
	# The sources bookworm-slim has: updates and security fixes included.
	mmdebstrap --quiet --variant=minbase bookworm "$tmp/rootfs.tar" \
		"deb http://deb.debian.org/debian bookworm main" \
		"deb http://deb.debian.org/debian bookworm-updates main" \
		"deb http://deb.debian.org/debian-security bookworm-security main" >&2
	ctr=$(buildah from scratch)
	buildah add --quiet "$ctr" "$tmp/rootfs.tar" / >/dev/null
	buildah config --env PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin \
		--cmd bash --os linux --arch amd64 "$ctr"
	buildah commit --quiet --rm "$ctr" "$base" >/dev/null
	ctr=""
	rm -rf "$tmp"
	log "base ready in $(($(date +%s) - start)) s"
fi

# The CA bundle this machine's own pip trusts (a TLS-inspecting proxy's
# included) goes to the build as a secret: used by pip, never stored.
secret=()
for ca in "${PIP_CERT:-}" "${SSL_CERT_FILE:-}" /etc/ssl/certs/ca-certificates.crt; do
	if [ -n "$ca" ] && [ -s "$ca" ]; then
		secret=(--secret "id=ca-bundle,src=$ca")
		break
	fi
done

log "building $image with $engine (first build: about 6 GB of packages)"
start=$(date +%s)
case $engine in
docker)
	DOCKER_BUILDKIT=1 docker build --platform linux/amd64 "${secret[@]}" -t "$image" "$ctx" >&2
	;;
buildah)
	buildah bud --isolation chroot --layers --force-rm --pull=never --platform linux/amd64 "${secret[@]}" \
		-f "$ctx/Dockerfile" -t "$image" "$ctx" >&2
	;;
esac
size=$($engine images --format '{{.Size}}' "$image" 2>/dev/null | head -n 1)
log "built $image in $(($(date +%s) - start)) s (${size:-size unknown})"
# Earlier builds of the worker: a lock change leaves 6 GB behind, so only
# the newest three are kept (other clones on this machine may be testing
# with theirs); the listing is newest first.
case $engine in
docker) listing='{{.Repository}}:{{.Tag}}' ;;
buildah) listing='{{.Name}}:{{.Tag}}' ;;
esac
for old in $($engine images --format "$listing" | grep -E "(^|/)$name:[0-9a-f]{12}\$" | tail -n +4 || true); do
	if out=$($engine rmi "$old" 2>&1); then
		log "removed the earlier build $old"
	else
		log "kept the earlier build $old: $out"
	fi
done
tag_extra
print_env
