#!/bin/sh
# The training pod's entrypoint: install the training code at start time, then train.
#
# FLEETDECK_TRAINING_CODE names the code: a wheel path (e.g. on a mounted volume), an
# hdfs://namenode:port/path/to.whl (fetched through WebHDFS), or any pip requirement
# ("fleetdeck[training]==0.1.0"). Unset: the code is already in the image.
# Arguments and FLEETDECK_* variables go to `python -m training` (or to the module named by
# FLEETDECK_ENTRY_MODULE, e.g. training.score for a scoring Job). exec hands SIGTERM straight
# to Python, which stops without publishing (exit 143).
set -eu

code="${FLEETDECK_TRAINING_CODE:-}"
python="${PYTHON:-python}"

if [ -n "$code" ]; then
    case "$code" in
        hdfs://*)
            wheel_dir=$(mktemp -d)
            wheel="$wheel_dir/$(basename "$code")"
            echo "start.sh: fetching $code" >&2
            "$python" - "$code" "$wheel" <<'PY'
import getpass, os, sys, urllib.parse, urllib.request
uri, dest = sys.argv[1], sys.argv[2]
parts = urllib.parse.urlsplit(uri)
user = os.environ.get("HADOOP_USER_NAME") or getpass.getuser()
url = f"http://{parts.netloc}/webhdfs/v1{parts.path}?op=OPEN&user.name={user}"
try:
    with urllib.request.urlopen(url, timeout=60) as answer, open(dest, "wb") as out:
        out.write(answer.read())
except OSError as exc:
    sys.exit(f"start.sh: cannot fetch {uri} from WebHDFS ({url}): {exc}")
PY
            code="$wheel"
            ;;
    esac
    echo "start.sh: installing training code: $code" >&2
    "$python" -m pip install --quiet --no-cache-dir --disable-pip-version-check "$code"
fi

exec "$python" -m "${FLEETDECK_ENTRY_MODULE:-training}" "$@"
