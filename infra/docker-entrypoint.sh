#!/bin/sh
# Entrypoint of the reasonbrain image.
#   docker run IMAGE train --params params.paper.yaml …   →  reasonbrain train --params …
#   docker run IMAGE                                       →  reasonbrain --help
# A few programs run as they are, because orchestrators pass their own command as container
# *arguments*: Prefect's Kubernetes worker (`prefect flow-run execute`), `ray` (KubeRay sets the
# container command itself, so it never reaches this script), and shells/python for debugging.
set -e
case "${1:-}" in
  prefect|ray|python|python3|bash|sh)
    exec "$@"
    ;;
esac
exec reasonbrain "$@"
